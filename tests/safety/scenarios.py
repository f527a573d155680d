"""Steps the safety tests build their schedules from (shared, so each test states only what it adds)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from automation.emulator.data import Store
from lambdas.failover import steps
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment


def failed_over(d: Deployment) -> None:
    """An unplanned failover while region A is dark, then region A back (rebuilt as a caught-up
    replica or secondary)."""
    d.op_advance(60)
    d.op_outage()
    d.op_advance(120)
    assert d.op_run("failover").outcome == "done"
    d.op_recover()
    d.op_advance(d.emulator.timings.rebuild_seconds + 600)


def dark_with_a_tail(d: Deployment, link_seconds: float = 900.0) -> None:
    """Region A's database link ``link_seconds`` behind, 40 writes acknowledged on it, then region A dark
    for 180 s: a tail that region A holds and region B does not (the break35-37 late-fence schedules)."""
    d.op_advance(120)
    d.emulator.slow_replication(Store.DATABASE, link_seconds)
    d.op_write(20)
    d.op_advance(20)
    d.op_write(20)
    d.op_outage()
    d.op_advance(180)


def journal(d: Deployment) -> dict[str, Any]:
    """The run journal as the runbook reads it."""
    return steps.read_journal(d.runbook_clients(), d.ctx)


def no_region_serves_a_writer(d: Deployment) -> None:
    """Region A's web tier and functions fenced by hand (as a failover's fence leaves them), region
    B still the pilot light: both regions answer, neither serves a writer (AWS state)."""
    d.op_advance(120)
    a = d.world.client("autoscaling", REGION_A)
    a.update_auto_scaling_group(AutoScalingGroupName=d.ctx.primary_asg_name, MinSize=0, DesiredCapacity=0)
    d.emulator.record_asg(REGION_A, d.ctx.primary_asg_name)
    for name in d.ctx.primary_function_names:
        d.world.client("lambda", REGION_A).put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=0
        )
    d.op_advance(d.emulator.timings.deregistration_delay + 60)
    assert not [r for r in (REGION_A, REGION_B) if d.emulator.serving(r) and d.emulator.database_writable(r)]


@contextmanager
def after_first_call(d: Deployment, operation: str, then: Callable[[], None]) -> Iterator[list[bool]]:
    """While the block runs, ``then()`` once, right after a run's first ``operation`` call (AWS applied
    it). Yields a list that holds True once it fired."""
    outer = d.on_actor
    fired: list[bool] = []

    def hook(event: str, actor: str) -> None:
        if outer is not None:
            outer(event, actor)
        if event == f"call:{operation}" and not fired:
            fired.append(True)
            then()

    d.on_actor = hook
    try:
        yield fired
    finally:
        d.on_actor = outer
