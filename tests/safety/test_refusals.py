"""Refusals up front: a run that cannot do what it was asked refuses before its first change.

Invariants protected: *nothing acknowledged is lost on a planned change* (docs/safety.md) and
*every run converges*. ``--planned`` (``planned: true`` in a Step Functions input) promises a
lossless writer move: an Aurora switchover, or an RDS promotion at zero lag proven after region A's
drain. Both need region A: a switchover needs every member of the global database healthy, and the
drain and the zero-lag proof need region A's writers fenced and its database answering. With region
A dark, a planned failover must refuse before anything changes, naming the flag and what to do
instead (an unplanned failover without ``--planned``), rather than scale, latch and fence, and then
fail at the switchover (Aurora) or quietly promote with data loss (RDS). A failback with region A
dark refuses the same way. Both executors (the CLI's in-process one and Step Functions), both
database modes. Judged from the calls AWS received (``RunState.mutated``: lock calls aside).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.safety.model import EXECUTORS, Deployment

Deploy = Callable[..., Deployment]

MODES = ("rds-replica", "aurora-global")


def _region_a_dark(d: Deployment) -> None:
    d.op_advance(120)
    d.op_write(3)
    d.op_outage()
    d.op_advance(120)


@pytest.mark.parametrize("by", EXECUTORS)
@pytest.mark.parametrize("mode", MODES)
def test_a_planned_failover_with_region_a_dark_refuses_before_any_change(
    deploy: Deploy, mode: str, by: str
) -> None:
    d = deploy(mode)
    _region_a_dark(d)
    b_before = d.emulator.serving("us-west-2")
    run = d.op_run("failover", params={"force": True, "planned": True}, executor_name=by)
    assert run.outcome == "stopped", run
    assert not run.mutated, f"a planned failover with region A dark changed AWS before refusing: {run.detail}"
    assert "--planned" in run.detail and "without --planned" in run.detail, run.detail
    assert d.emulator.serving("us-west-2") == b_before
    if by == "cli":  # what the refusal says to do instead works: an unplanned failover
        again = d.op_run("failover", params={"force": True}, executor_name=by)
        assert again.outcome == "done", again
    assert not d.violations, [str(v) for v in d.violations]


@pytest.mark.parametrize("mode", MODES)
def test_a_failback_with_region_a_dark_refuses_before_any_change(deploy: Deploy, mode: str) -> None:
    d = deploy(mode)
    _region_a_dark(d)
    assert d.op_run("failover", params={"force": True}).outcome == "done"
    d.op_advance(300)
    run = d.op_run("failback")
    assert run.outcome == "stopped", run
    assert not run.mutated, f"a failback with region A dark changed AWS before refusing: {run.detail}"
    assert "region A" in run.detail and "does not answer" in run.detail, run.detail
    assert not d.violations, [str(v) for v in d.violations]
