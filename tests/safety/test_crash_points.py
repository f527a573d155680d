"""Every crash point of a failover, in both database modes: a run that dies there (the process, after
AWS applied its call) leaves a state that breaks no invariant while it waits to be resumed, and its
resume ends done (docs/safety.md, "Traffic follows the writer", "Nothing acknowledged is lost",
"Every run converges"; issue 10: the fence, the latch, the switch and the writer move are ordered so
that every crash point is safe or recoverable).

Crash points are the kinds of mutating call a failover makes (``Deployment.op_run``'s ``crash_on``:
the run dies right after its first call of that operation), over a region A that answers (a forced
failover fences it) and a dark one that comes back the moment the run dies (the fence is pending:
the canary completes it). Under Step Functions a dead invocation is retried and the run goes on
(``tests/safety/test_sfn_executor.py``, ``test_a_lambda_that_dies_mid_step_is_retried_and_the_run_converges``). Kept to one deployment per case and five minutes of virtual time, so the
whole class costs what a few schedules do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.failover.regressions import Regression
from tests.safety.model import Deployment
from tests.safety.regressions import regressed

Deploy = Callable[..., Deployment]

WAIT = 300.0
"""Virtual seconds the dead run's state is judged for: past TRAFFIC_GRACE (180) and FENCE_GRACE (150)."""

CASES_BY_CALL = (
    ("rds-replica", False, "PutFunctionConcurrency"),  # the fence half-way: a function stopped
    ("aurora-global", False, "UpdateAutoScalingGroup"),  # the fence's last call: region A stops serving
    ("rds-replica", False, "PutMetricData"),  # the switch, before the writer move
    ("rds-replica", True, "PromoteReadReplica"),  # the writer move over a dark region A (seed 6)
    ("aurora-global", True, "FailoverGlobalCluster"),
)
"""The calls between which the failover's state changes kind (fence half-way, region A stopped, latch
and switch, writer move), in turn over both modes. Every other mutating call of a run falls between
two of these and leaves the state of the one before it; every call by count (``crash_after`` 1 to
18, both modes, region A live and dark) was run once with the same judgment (docs/safety.md)."""


def _crash_and_wait(
    d: Deployment, call: str, *, dark: bool, executor: str = "cli", params: dict[str, Any] | None = None
) -> str:
    """A forced failover that dies right after its first ``call``; the world then goes on for WAIT."""
    d.op_advance(120)
    if dark:
        d.op_outage()
        d.op_advance(120)
    run = d.op_run(
        "failover",
        params={"force": True, **(params or {})},
        crash_on=frozenset({call}),
        executor_name=executor,
    )
    if dark:
        d.op_recover()  # region A answers again at once, its old writer unfenced
    for _ in range(int(WAIT // 60)):
        d.op_advance(60)
        d.judge()
    return run.outcome


CASES = [
    pytest.param(mode, dark, call, id=f"{mode}-{'dark' if dark else 'live'}-{call}")
    for mode, dark, call in CASES_BY_CALL
]


@pytest.mark.parametrize(("mode", "dark", "call"), CASES)
def test_a_failover_that_dies_at_any_call_leaves_a_safe_state_and_resumes_to_done(
    deploy: Deploy, mode: str, dark: bool, call: str
) -> None:
    """one_writer, no_loss, traffic_follows_writer while the dead run waits; converges on its resume."""
    d = deploy(mode)
    outcome = _crash_and_wait(d, call, dark=dark)
    assert outcome == "crashed", f"the run never made a {call} call ({outcome})"
    assert not d.violations, [str(v) for v in d.violations]
    d.op_resume()
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    d.op_advance(WAIT)
    assert not d.judge(), [str(v) for v in d.violations]


def test_the_fence_stopping_the_web_tier_first_is_reported(deploy: Deploy) -> None:
    """The proof for ``Regression.FENCE_WEB_TIER_FIRST`` (seed 26's cause): a run that dies after the
    fence's first function call, with the web tier already at zero, leaves region A's other function
    serving the writer while Route 53, following the load balancer, answers region B."""
    with regressed(Regression.FENCE_WEB_TIER_FIRST):
        d = deploy("rds-replica")
        _crash_and_wait(d, "PutFunctionConcurrency", dark=False)
    assert "traffic_follows_writer" in {v.invariant for v in d.violations}, [str(v) for v in d.violations]


def test_the_switch_after_the_writer_move_is_reported(deploy: Deploy) -> None:
    """The proof for ``Regression.SWITCH_AFTER_PROMOTION`` (seed 6's cause): a failover over a dark
    region A dies right after the promotion started, before the switch; region A comes back and Route
    53 answers it until the canary's switch takes effect: its old writer acknowledges writes the
    promoted database never gets."""
    with regressed(Regression.SWITCH_AFTER_PROMOTION):
        d = deploy("rds-replica")
        # The promotion's late look (break36 B36-2) would otherwise confirm region A dark for 120 s under
        # the active latch first, and the canary would throw the switch meanwhile, hiding the regression:
        # with no confirmation the promotion comes right after the fence, as in seed 6.
        _crash_and_wait(d, "PromoteReadReplica", dark=True, params={"fenceDarkSeconds": 0})
    assert "no_loss" in {v.invariant for v in d.violations}, [str(v) for v in d.violations]
