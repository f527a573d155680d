"""Turn a fixed safety defect back on, for one schedule: the checker must still report it.

Each name brings back one old behaviour of the runbook or the canary (``lambdas.failover.regressions``
and ``lambdas.health_check.probe._REGRESSIONS``), or restores an old shape of the runbook graph. The
product never turns any of them on; ``regressed(...)`` undoes what it did on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from lambdas.failover import graph, regressions
from lambdas.failover.regressions import Regression
from lambdas.health_check import probe

CANARY_RELEASES_ON_DOUBT = "canary-releases-on-doubt"
"""The canary read an absent latch as standby and released the switch on anything but ``active``."""
CANARY_TRUSTS_STANDBY = "canary-trusts-standby"
"""The canary did not read the run journal: a standby latch released the switch whenever region A
said it held the writer (its stale one after a failover too), and a pending fence was asked for
only under an active or unreadable latch (seeds 20, 48)."""
CANARY_IGNORES_WRITER_MOVE = "canary-ignores-writer-move"
"""The canary kept an active latch's 1 after a failback moved the writer back to region A and died
before ``clear_latch``: Route 53 answered drained region B (soak seeds 98, 615)."""
CANARY_REGRESSIONS = (CANARY_RELEASES_ON_DOUBT, CANARY_TRUSTS_STANDBY, CANARY_IGNORES_WRITER_MOVE)


def _switch_before_latch() -> graph.Runbook:
    """The failover graph as it was: promote, switch, verify, then latch."""
    steps = {s.name: s for s in graph.FAILOVER.steps}
    return graph.Runbook(
        name="failover",
        steps=(
            steps["confirm_primary_down"],
            steps["fence_primary"],
            steps["scale_web_tier"],
            steps["enable_functions"],
            replace(steps["promote_database"], needs=("fence_primary",)),
            replace(steps["throw_switch"], needs=("promote_database", "scale_web_tier", "enable_functions")),
            replace(steps["verify"], needs=("throw_switch",)),
            replace(steps["write_latch"], needs=("verify",)),
            replace(steps["notify"], needs=("write_latch",)),
        ),
        on_stop=graph.FAILOVER.on_stop,
    )


def _switch_after_promotion() -> graph.Runbook:
    """The failover graph before the switch led the writer move: latch, promote, switch, verify."""
    steps = {s.name: s for s in graph.FAILOVER.steps}
    return graph.Runbook(
        name="failover",
        steps=(
            steps["confirm_primary_down"],
            steps["fence_primary"],
            steps["scale_web_tier"],
            steps["enable_functions"],
            steps["write_latch"],
            replace(steps["promote_database"], needs=("write_latch",)),
            replace(steps["throw_switch"], needs=("promote_database", "scale_web_tier", "enable_functions")),
            replace(steps["verify"], needs=("throw_switch",)),
            steps["notify"],
        ),
        on_stop=graph.FAILOVER.on_stop,
    )


@contextmanager
def regressed(*names: str) -> Iterator[None]:
    """Old behaviours ``names`` on while the block runs (``Regression`` values or the canary's)."""
    known = {r.value for r in Regression} | set(CANARY_REGRESSIONS)
    unknown = set(names) - known
    if unknown:
        raise ValueError(f"unknown regressions {sorted(unknown)}; known: {sorted(known)}")
    saved_graph = graph.RUNBOOKS["failover"]
    try:
        for name in names:
            if name in CANARY_REGRESSIONS:
                probe._REGRESSIONS.add(name)
            else:
                regressions.ACTIVE.add(name)
            if name == Regression.SWITCH_BEFORE_LATCH:
                graph.RUNBOOKS["failover"] = _switch_before_latch()
            if name == Regression.SWITCH_AFTER_PROMOTION:
                graph.RUNBOOKS["failover"] = _switch_after_promotion()
        yield
    finally:
        graph.RUNBOOKS["failover"] = saved_graph
        regressions.ACTIVE.difference_update(names)
        probe._REGRESSIONS.difference_update(names)
