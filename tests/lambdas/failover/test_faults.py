"""Faults injected into every step through botocore's event hooks: retried, stopped, resumed.

For each step, the call that only that step makes is hit (``FAULTS``):

1. a permanent error (AccessDenied) on it: the run stops at that step, the report names the step
   and the AWS code, and no later layer starts (fencing a region A that answers included);
2. the same command again, with one throttling answer on that call: botocore's adaptive retry
   absorbs it, the run resumes (finished steps answer already_done) and completes.

``confirm_primary_down`` calls no AWS API; its fault is region A answering healthy.
"""

from __future__ import annotations

import pytest

from lambdas.failover.executor import RunReport
from lambdas.failover.graph import FAILBACK, FAILOVER, RUNBOOKS
from tests.lambdas.failover.faults import Fault, access_denied_code, deny, throttle_once
from tests.lambdas.failover.harness import (
    FAST,
    FORCED,
    HealthServer,
    assert_failed_over,
    run_book,
    shifted_runs,
)
from tests.lambdas.failover.world import REGION_A, REGION_B, World

# step -> (service id, operation, region, matching calls to let through first)
FAILOVER_FAULTS: dict[str, tuple[str, str, str, int]] = {
    "fence_primary": ("auto-scaling", "UpdateAutoScalingGroup", REGION_A, 0),
    "scale_web_tier": ("auto-scaling", "UpdateAutoScalingGroup", REGION_B, 0),
    "enable_functions": ("lambda", "DeleteFunctionConcurrency", REGION_B, 0),
    "promote_database": ("rds", "PromoteReadReplica", REGION_B, 0),
    "throw_switch": ("cloudwatch", "PutMetricData", REGION_B, 0),
    # scale_web_tier's two DescribeAutoScalingGroups come first (an earlier layer): skip them
    "verify": ("auto-scaling", "DescribeAutoScalingGroups", REGION_B, 2),
    "write_latch": ("ssm", "PutParameter", REGION_B, 0),
    "notify": ("sns", "Publish", REGION_B, 0),
}
FAILBACK_FAULTS: dict[str, tuple[str, str, str, int]] = {
    "confirm_primary_healthy": ("auto-scaling", "DescribeAutoScalingGroups", REGION_A, 0),
    "reestablish_replication": ("rds", "CreateDBInstanceReadReplica", REGION_A, 0),
    "wait_replication_lag": ("cloudwatch", "GetMetricData", REGION_A, 0),
    "switch_writer": ("rds", "PromoteReadReplica", REGION_A, 0),
    "warm_primary": ("auto-scaling", "UpdateAutoScalingGroup", REGION_A, 0),
    "unfence_primary": ("lambda", "DeleteFunctionConcurrency", REGION_A, 0),
    # confirm_primary_healthy (1), warm_primary (2) and unfence_primary (1) describe region A's
    # group first: skip them
    "verify_primary": ("auto-scaling", "DescribeAutoScalingGroups", REGION_A, 4),
    "release_switch": ("cloudwatch", "PutMetricData", REGION_B, 0),
    "scale_down_dr": ("auto-scaling", "UpdateAutoScalingGroup", REGION_B, 0),
    "clear_latch": ("ssm", "PutParameter", REGION_B, 0),
    "notify": ("sns", "Publish", REGION_B, 0),
}


def latch_only(fault: Fault) -> Fault:
    """The latch's PutParameter, not the run journal's (both live in SSM in region B)."""
    if fault.operation == "PutParameter":
        fault.body_excludes = "-journal"
    return fault


def test_every_step_has_a_fault() -> None:
    assert set(FAILOVER_FAULTS) | {"confirm_primary_down"} == set(FAILOVER.names())
    assert set(FAILBACK_FAULTS) == set(FAILBACK.names())


def assert_stopped_at(report_step: str, report: RunReport, code: str) -> None:
    assert report.outcome == "stopped", report.format_table()
    assert report.stopped_at == report_step
    assert code in (report.reason or "") and report_step in (report.reason or "")
    record = report.record(report_step)
    assert record.status == "failed" and record.code == code and not record.retryable
    # no later layer started (for the last step there is none); the runbook's on_stop (the rollback
    # both executors run when a step stops the run) is not a layer of the graph
    on_stop = RUNBOOKS[report.runbook].on_stop
    stop_name = on_stop.name if on_stop else None
    assert all(
        r.status == "not_run" for r in report.timeline if r.layer > record.layer and r.step != stop_name
    )
    if stop_name is not None:
        assert report.record(stop_name).status != "not_run", "the rollback did not run on the stop"
    assert f"STOPPED at {report_step}" in report.format_table()


def assert_retried_once(fault: Fault) -> None:
    assert fault.injected == 1
    # the throttled attempt and botocore's retry both went through the hook
    assert len(fault.seen) >= fault.skip + 2


@pytest.mark.parametrize("step", FAILOVER.names())
def test_failover_fault_in_step(world: World, health: HealthServer, step: str) -> None:
    # A stop's rollback refused by the same fault is retried on the state machine's schedule (executor.py,
    # STEP_RETRY: 5 + 10 + 20 s); those waits pass at once on the runs' virtual clock.
    shifted_runs(world)
    if step == "confirm_primary_down":
        health.set("/primary", 200, {"region": REGION_A})
        stopped = run_book(world, "failover", params=FAST)
        assert stopped.stopped_at == step and "primary answers healthy" in (stopped.reason or "")
        health.set("/primary", 502, {})
        resumed = run_book(world, "failover", params=FAST)
        assert resumed.outcome == "done"
        assert_failed_over(world)
        return

    service, operation, region, skip = FAILOVER_FAULTS[step]
    code = access_denied_code(service)
    first = run_book(world, "failover", latch_only(deny(service, operation, region, skip)))
    assert_stopped_at(step, first, code)
    if step == "fence_primary":
        # A precondition: region A answers and refuses its fence, so nothing is promoted.
        assert "region A answers but could not be fenced" in (first.reason or "")
        assert first.record("promote_database").status == "not_run"
        assert not world.dr_is_writer()

    throttled = latch_only(throttle_once(service, operation, region, skip))
    resumed = run_book(world, "failover", throttled)

    assert resumed.outcome == "done", resumed.format_table()
    assert resumed.record(step).status == "done"
    assert_retried_once(throttled)
    # what the first run changed is not changed again (verify only reads: it checks again)
    # A promotion that fails before the writer moves puts the latch back: the resume latches again.
    again = {"verify", "roll_back_fence"} | ({"write_latch"} if step == "promote_database" else set())
    if first.record("roll_back_fence").status in ("done", "failed"):
        # The stopped run rolled its fence back (converges, 9B-3): the resume fences, latches and
        # throws the switch again.
        again |= {"fence_primary", "write_latch", "throw_switch"}
    done_before = [r.step for r in first.timeline if r.status == "done" and r.step not in again]
    assert all(resumed.record(s).status == "already_done" for s in done_before), resumed.format_table()
    if step == "promote_database":
        assert first.record("write_latch").status == "done"
        assert resumed.record("write_latch").status == "done"
    assert_failed_over(world)


@pytest.mark.parametrize("step", FAILBACK.names())
def test_failback_fault_in_step(world: World, step: str) -> None:
    assert run_book(world, "failover").outcome == "done"
    world.age_metrics(minutes=5)
    service, operation, region, skip = FAILBACK_FAULTS[step]
    code = access_denied_code(service)

    first = run_book(world, "failback", latch_only(deny(service, operation, region, skip)), params=FAST)
    assert_stopped_at(step, first, code)

    throttled = latch_only(throttle_once(service, operation, region, skip))
    resumed = run_book(world, "failback", throttled, params=FAST)

    assert resumed.outcome == "done", resumed.format_table()
    assert resumed.record(step).status == "done"
    assert_retried_once(throttled)
    assert world.asg(REGION_B) == (0, 0, 0)
    assert world.asg(REGION_A) == (1, 2, 4)
    assert world.latch()["state"] == "standby"
    assert world.switch_values()[-1] == 0.0


def test_throttling_that_outlasts_botocores_retries_is_retryable(world: World) -> None:
    endless = Fault("rds", "PromoteReadReplica", REGION_B, code="Throttling")

    report = run_book(world, "failover", endless, params=FORCED)

    assert report.stopped_at == "promote_database"
    record = report.record("promote_database")
    assert record.code == "Throttling" and record.retryable
    assert endless.injected == 8  # region B clients: 8 attempts in all, then give up
