"""Adversarial probes of the wave "fence pending / canary completes it, failback order, rename to
replace" (break10). Each test names the invariant of docs/safety.md it holds the product to."""

from __future__ import annotations

import json
from collections.abc import Callable

from lambdas.failover.regressions import Regression
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment
from tests.safety.regressions import regressed

Deploy = Callable[..., Deployment]


def _journal(d: Deployment) -> dict:
    return json.loads(
        d.world.client("ssm", REGION_B).get_parameter(Name=d.ctx.latch_parameter_name + "-journal")[
            "Parameter"
        ]["Value"]
    )


def test_partial_fence_then_dark_leaves_region_a_functions_writing_for_ever(deploy: Deploy) -> None:
    """one_writer: a fence that got region A's web tier to 0 and then lost region A (connection
    errors on the function calls) is journaled ``fencePending``; when region A answers again its
    web tier is at 0, so its health URL answers 503 and the canary (which completes the fence only
    when a region-A *web* target answers healthy) never asks for the fence. Region A's functions
    (reserved concurrency not 0) keep writing to the old standalone writer: far past FENCE_GRACE."""
    d = deploy("rds-replica")
    d.op_advance(120)
    # A forced failover while region A answers, crashing right after region A's ASG went to 0
    # (mutating calls: 1 the journal's primaryStoppedAt, 2 UpdateAutoScalingGroup in region A).
    # Today's fence stops the functions before the web tier, so this shape needs the old order back
    # for the crashed run (the canary's part, what this test protects, is unchanged by it).
    crash_at = 2
    with regressed(Regression.FENCE_WEB_TIER_FIRST):
        d.op_run("failover", params={"force": True}, crash_after=crash_at)
    assert not d.emulator.web_serving(REGION_A) and d.emulator.functions_serving(REGION_A)
    d.op_outage()  # region A goes dark before the operator resumes
    # (Resumed as is, the failover waits for zero lag from a dark region A and gives up: the partial
    # fence stamped primaryStoppedAt, so promotion counts as planned. The operator allows the loss.)
    # The same run resumed (the CLI's --run-id): it re-enters the runbook lock its process died holding.
    crashed = d.last_run
    assert crashed is not None and crashed.outcome == "crashed", crashed
    d.op_run("failover", params={"force": True, "allowDataLoss": True}, run_id=crashed.run_id)
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    assert _journal(d).get("fencePending"), "the resumed failover journaled the fence as pending"
    d.op_recover()
    for _ in range(20):  # twenty canary minutes
        d.op_canary()
        d.op_advance(60)
    d.judge()
    assert d.emulator.functions_serving(REGION_A) is False, (
        "region A's functions still take invocations 20 minutes after region A answered again; "
        f"fencePending={_journal(d).get('fencePending')!r}; violations={[str(v) for v in d.violations]}"
    )


def test_failback_with_the_latch_lost_gives_region_a_back_its_stale_primary(deploy: Deploy) -> None:
    """no_loss / traffic_follows_writer ("an absent, garbled or unexpected latch fails safe: it never
    sends traffic away from the writer"): after an rds-replica failover region B's promoted instance
    is the writer. The latch parameter is lost (deleted). A failback then finds ``<primary>``
    standalone and "no failover latched" and reestablish_replication answers already-done instead
    of refusing; warm_primary, scale_down_dr, switch_writer (a standalone <primary>: nothing to
    promote), unfence_primary, verify_primary, release_switch and clear_latch follow. Region A
    serves again on its stale pre-failover database, region B is drained, and every write since
    lands in a database that lacks everything region B took (found by seed 515 of the soak)."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    d.op_run("failover")
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    d.op_advance(600)
    d.op_write(5)  # region B takes writes as the writer
    d.op_recover()
    for _ in range(3):
        d.op_canary()
        d.op_advance(60)
    # The outage's DynamoDB backlog reached region A ~10 minutes late: that ReplicationLatency keeps any
    # planned change waiting (10x it, lossless.settled_evidence) until it leaves the wait's one-hour lookback.
    d.op_advance(3600)
    d.op_tamper_latch("delete")
    d.op_run("failback", params={"waiterMaxAttempts": 240})
    d.op_advance(900)
    d.judge()
    assert not d.emulator.serving(REGION_A) or d.emulator.database_writable(REGION_A) == d.writer(), (
        f"failback {d.last_run.outcome if d.last_run else None}: region A serves on "
        f"{d.emulator.database_writable(REGION_A)} while the writer is {d.writer()}; "
        f"violations={[str(v) for v in d.violations]}"
    )


def test_a_step_functions_retry_of_promote_database_completes_the_failover_under_a_standby_latch(
    deploy: Deploy,
) -> None:
    """traffic_follows_writer / one_writer / converges: promote_database puts the latch back to
    standby when it fails before the writer moved (so the canary does not send traffic to a region B
    that is not the writer). But the step's failure is retryable and Step Functions retries the
    *step* (STEP_RETRY: 3 attempts), not write_latch: the retry promotes region B, the run ends
    done, and the latch says standby over a promoted region B. From then on the canary never
    completes the pending fence (it does only under an active latch), it releases the switch to a
    region A that answers as its old standalone writer, and every later failover refuses (region B
    standalone, latch standby, no primaryStoppedAt). Found by seed 512 of the soak."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    # PromoteReadReplica is throttled through botocore's 8 attempts once: a retryable step failure.
    d.add_fault(
        Fault(service="rds", operation="PromoteReadReplica", region=REGION_B, code="Throttling", times=8)
    )
    d.op_run("failover", executor_name="sfn")
    d.clear_faults()
    latch = json.loads(
        d.world.client("ssm", REGION_B).get_parameter(Name=d.ctx.latch_parameter_name)["Parameter"]["Value"]
    )
    assert d.last_run is not None
    assert not (d.last_run.outcome == "done" and latch.get("state") != "active"), (
        f"the failover ended {d.last_run.outcome} with region B promoted "
        f"(writer {d.writer().split(':')[-1]}) and the latch {latch}"
    )
