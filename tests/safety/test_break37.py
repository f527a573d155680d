"""break37: the late look as a verdict over time (ee3a638, break36 B36-2 fix) attacked in the safety model.
Each finding names the invariant of docs/safety.md it protects (B37-1, B37-1b, B37-2 fixed; they were strict xfails); controls beside them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.failover import promotion
from lambdas.failover.journal import UNFENCING_MARK
from lambdas.failover.traffic import _switch_pending
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import EXECUTORS, Deployment
from tests.safety.scenarios import journal
from tests.safety.test_break36 import (
    _back_with_services_down,
    _forced_failover_region_a_back,
    _journal_marks,
    _promotion_events,
    _settle_and_judge,
)

Deploy = Callable[..., Deployment]


# --------------------------------------------------------------------------------------------------------------
# F1: the late look finds region A answering; a blip at the late fence right after it promotes unplanned at once.
# --------------------------------------------------------------------------------------------------------------


def _fence_blip_faults(mode: str = "rds-replica") -> tuple[Fault, ...]:
    """A blip on every region-A endpoint the late fence touches, disarmed until armed: fence_region_a's first
    call (DescribeAutoScalingGroups) and region_a_answering's three looks (DescribeDBInstances,
    DescribeAutoScalingGroups, GetFunctionConcurrency), each two attempts (PRIMARY_SETTINGS max_attempts=2)."""
    return (
        Fault(
            service="auto-scaling",
            operation="DescribeAutoScalingGroups",
            region=REGION_A,
            unreachable=True,
            times=0,
        ),
        Fault(
            service="rds",
            operation="DescribeDBInstances" if mode == "rds-replica" else "DescribeDBClusters",
            region=REGION_A,
            unreachable=True,
            times=0,
        ),
        Fault(
            service="lambda", operation="GetFunctionConcurrency", region=REGION_A, unreachable=True, times=0
        ),
    )


def _arm_at_the_late_fence(
    monkeypatch: pytest.MonkeyPatch, faults: tuple[Fault, ...], armed: list[bool]
) -> None:
    """Arm the blip when promote_database calls fence_primary (the late look has just found region A's
    database answering): the fence's first call and region_a_answering's looks fail to connect once each."""
    real = promotion.fence_primary

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        if not armed:
            armed.append(True)
            asg, rds, lam = faults
            asg.times = asg.injected + 4  # fence's _asg + region_a_answering's autoscaling look
            rds.times = rds.injected + 2
            lam.times = lam.injected + 2
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)


@pytest.mark.parametrize(("mode", "executor_name"), [("rds-replica", "cli"), ("rds-replica", "sfn")])
def test_b37_1_region_a_answers_the_late_look_then_a_blip_at_the_late_fence_promotes_unplanned(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, mode: str, executor_name: str
) -> None:
    """No_loss (docs/safety.md: 'the writer moves unplanned only once 120 s of [looks] all found the database
    dark'; darkness.py: 'a blip on every endpoint is not an outage', B33-3). The late look finds region A's
    database answering and calls fence_primary(onlyIfPending, beforePromotion); one blip of connection errors on
    region A's endpoints at that fence returns 'warning: fence pending' at once, because fence_primary skips its
    FENCE_DARK_MARK confirmation whenever fencePending is already set ('a fence already pending needs no such
    wait'), and _promote_database re-reads _latest_fence (source_answers False) and promotes unplanned with zero
    dark looks since region A answered: the 900-s tail region A acknowledged is lost. botocore retries
    connection errors as transient (https://docs.aws.amazon.com/boto3/latest/guide/retries.html). Fixed: this
    test failed before the fix (it was a strict xfail)."""
    d = deploy(mode)
    faults = _fence_blip_faults(mode)
    armed: list[bool] = []
    # The canary's minute has not come until the blip has hit the late fence (as in break36 B36-2): only the
    # promotion's late fence can complete the pending fence before it.
    real_step = d._async_step
    monkeypatch.setattr(d, "_async_step", lambda event: real_step(event) if faults[0].injected >= 4 else None)
    _arm_at_the_late_fence(monkeypatch, faults, armed)

    def back(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)

    run = _forced_failover_region_a_back(d, monkeypatch, back, faults=faults, executor_name=executor_name)
    marks = _journal_marks(d)
    monkeypatch.undo()
    _settle_and_judge(d)
    assert armed, ("the late look never found region A answering", run.outcome, run.detail)
    assert [f.injected for f in faults] == [4, 2, 2], [f.injected for f in faults]
    assert not d.violations, "\n".join(
        [run.outcome, run.detail[:400], str(marks), *_promotion_events(d), *map(str, d.violations)]
    )


def _every_late_fence_blipped(
    d: Deployment, monkeypatch: pytest.MonkeyPatch, executor_name: str = "cli"
) -> tuple[Any, int]:
    """Region A back: its database answers every late look, and every late fence then finds none of region A's
    endpoints answering (the canary's minute never comes within the run). Returns (run, late fences)."""
    faults = _fence_blip_faults()
    fences: list[bool] = []
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    real = promotion.fence_primary

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        fences.append(True)
        asg, rds, lam = faults
        asg.times = asg.injected + 4
        rds.times = rds.injected + 2
        lam.times = lam.injected + 2
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)

    def back(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)

    run = _forced_failover_region_a_back(d, monkeypatch, back, faults=faults, executor_name=executor_name)
    monkeypatch.undo()
    _settle_and_judge(d)
    return run, len(fences)


def test_a_region_a_that_answers_every_look_and_no_late_fence_stops_the_run_rolled_back(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """converges, no_loss, one_writer (B37-1's bound): the promotion completes the pending fence
    ``LATE_FENCE_TRIES`` times and stops with RegionAFlapping: nothing promoted, region A the writer."""
    d = deploy("rds-replica")
    run, fences = _every_late_fence_blipped(d, monkeypatch)
    assert fences == promotion.LATE_FENCE_TRIES, (fences, run.outcome, run.detail)
    assert run.outcome == "stopped" and "region A answers some looks and not others" in run.detail, run.detail
    assert not _promotion_events(d)
    assert d.emulator.database_writable(REGION_A) and not d.emulator.database_writable(REGION_B)
    broken = {v.invariant for v in d.violations}
    assert not broken & {"no_loss", "one_writer"}, [run.detail[:300], *map(str, d.violations)]


@pytest.mark.parametrize("executor_name", EXECUTORS)
def test_b37_3_a_flapping_region_a_keeps_traffic_on_region_b_while_the_promotion_retries(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, executor_name: str
) -> None:
    """traffic_follows_writer (docs/safety.md: Route 53 answers a region with capacity and the writer whatever
    step a run stopped at). While the promotion looked and fenced again (LATE_FENCE_TRIES, then 5, 15 s apart),
    region A was back, serving its writer, unfenced, and the thrown switch kept Route 53 on region B, which has
    no writer; after RegionAFlapping the roll-back released the switch, and Route 53 took the switch alarm's
    evaluation to follow: observed 'Route 53 answers us-west-2 while us-east-1 serves the writer ex1-db (since
    12:07:40)' at 12:10:40. Under Step Functions the bound never fired (each poll counted from zero) and
    RegionAFlapping was retried by the state machine. Fixed: a look during the switch wait that finds region A
    answering completes its fence at once, the misses are counted in the run journal per pending fence,
    LATE_FENCE_TRIES is 3 and RegionAFlapping is not retried; this test failed before the fix (it was a strict
    xfail, cli)."""
    d = deploy("rds-replica")
    run, fences = _every_late_fence_blipped(d, monkeypatch, executor_name)
    assert run.outcome == "stopped" and "region A answers some looks and not others" in run.detail, run.detail
    assert fences == promotion.LATE_FENCE_TRIES, (fences, run.detail)
    assert not _promotion_events(d)
    assert not d.violations, [run.detail[:300], *map(str, d.violations)]


def test_b37_1b_real_flap_answering_at_the_late_look_dark_at_the_late_fence_promotes_unplanned_at_once(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No_loss as docs/safety.md states it for the late look ('the writer moves unplanned only once 120 s of
    [looks] all found the database dark'; 'one look that reaches it completes the fence'). Region A FLAPS: its
    database answers the late look, region A goes dark at the fence right after and is back 60 s later.
    fence_primary(onlyIfPending) leaves the fence pending at once (no FENCE_DARK_MARK confirmation for a fence
    already pending) and _promote_database promotes unplanned within a second of a look that found region A
    answering. The checker forgives the lost tail (region A dark at the request: Emulator.on_promote), so the
    evidence is the time from the answering look to the unplanned promotion, not a violation. Fixed: this test
    failed before the fix (it was a strict xfail)."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)  # the canary's minute not come yet
    seen: dict[str, Any] = {}
    real = promotion.fence_primary

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        if "answered" not in seen:
            seen["answered"] = d.emulator.clock.now()  # the late look has just found region A answering
            d.op_outage()
            d.emulator.clock.after(60.0, d.op_recover)
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)

    def back(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)

    run = _forced_failover_region_a_back(d, monkeypatch, back)
    monkeypatch.undo()
    assert "answered" in seen, (run.outcome, run.detail)
    started = [e.at for e in d.emulator.events if e.kind == "promotion-started"]
    lost = sum(len(v) for v in d.emulator.lost_at_promotion.values())
    assert not (started and lost and (started[0] - seen["answered"]).total_seconds() < 120), (
        f"unplanned promotion {(started[0] - seen['answered']).total_seconds():.1f} s after region A answered "
        f"the late look; {lost} acknowledged write(s) cut off; {run.outcome}: {run.detail[:300]}"
    )


# --------------------------------------------------------------------------------------------------------------
# F2: the late look reuses the lossless wait's verdict (RDS API + Lambda), which assumed a FENCED region A.
# --------------------------------------------------------------------------------------------------------------


def test_b37_2_rds_and_lambda_apis_down_autoscaling_up_late_look_promotes_unplanned(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No_loss / one_writer (docs/safety.md; stepkit.region_a_answering, break32 B32-1/B32-7: 'one endpoint
    failing to connect while another answers is an impaired region A, not a dark one: its web tier may still
    serve its writer, so ... a replication tail it still holds is not lost'). The late look
    (darkness.source_database_dark) asks only region A's RDS API and Lambda: with those two services' endpoints
    down and region A's Auto Scaling API and web tier up (a two-service control-plane incident, 'control planes
    ... are statistically more likely to fail than data planes',
    https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/control-planes-and-data-
    planes.html), 120 s of such looks promote unplanned over a region A whose fence is still pending and whose
    database holds the 900-s tail it acknowledged: that verdict was built for the lossless wait, where the fence
    had already stopped region A. Fixed: this test failed before the fix (it was a strict xfail)."""
    d = deploy("rds-replica")
    run, marks = _rds_and_lambda_down_autoscaling_up(d, monkeypatch)
    assert not _promotion_events(d), "\n".join(
        [run.outcome, run.detail[:400], str(marks), *_promotion_events(d)]
    )
    broken = {v.invariant for v in d.violations}
    assert not broken & {"no_loss", "one_writer"}, "\n".join(
        [run.outcome, run.detail[:400], str(marks), *map(str, d.violations)]
    )


def _rds_and_lambda_down_autoscaling_up(
    d: Deployment, monkeypatch: pytest.MonkeyPatch, *, canary_first: bool = False
) -> tuple[Any, Any]:
    """``canary_first``: the canary's minute comes before the promotion's first look, so the canary's fence
    (joining the run) stops region A's web tier and the run takes the lossless wait."""
    faults, back_impaired = _back_with_services_down("rds", "lambda")
    at_promotion = back_impaired
    if canary_first:

        def at_promotion(d: Deployment) -> None:
            back_impaired(d)
            d.op_advance(60)

    run = _forced_failover_region_a_back(d, monkeypatch, at_promotion, faults=faults)
    marks = _journal_marks(d)
    monkeypatch.undo()
    d.op_clear_faults()  # the two services come back after the run: the canary may fence region A then
    _settle_and_judge(d)
    return run, marks


def test_b37_2b_rollback_with_region_a_lambda_api_down_keeps_traffic_on_region_b(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traffic_follows_writer (docs/safety.md: 'Route 53 answers with a region that has capacity and the writer,
    whatever step a run stopped at'). B37-2's schedule after its fix: the lossless wait gives up (LagTimeout)
    and roll_back_fence sets the latch to standby, releases the switch and gives region A its web tier back,
    then unfence_primary fails on region A's Lambda API (EndpointConnectionError) before it clears
    primaryStoppedAt; the canary reads that failover mark under the standby latch, holds region A out and throws
    the switch to region B, which has no writer, while region A's web tier serves it. Fix sketch: once region
    A's web tier serves again, clear the canary-hold marks before the functions' unfence, keeping a mark of what
    is left to unthrottle for a resume. Fixed: this test failed before the fix (it was a strict xfail)."""
    d = deploy("rds-replica")
    run, marks = _rds_and_lambda_down_autoscaling_up(d, monkeypatch, canary_first=True)
    assert "gave up waiting for zero lag" in run.detail, (run.outcome, run.detail, marks)
    assert not d.violations, "\n".join([run.outcome, run.detail[:400], str(marks), *map(str, d.violations)])
    # converges: with region A's Lambda API back, resuming the run gives region A its functions back and
    # clears what the roll-back left to do.
    assert journal(d).get(UNFENCING_MARK), journal(d)
    assert not d.emulator.functions_serving(REGION_A)
    again = d.op_run("failover", resuming=True, run_id=run.run_id)
    d.op_advance(120)
    d.judge()
    assert not journal(d).get(UNFENCING_MARK), (again.outcome, again.detail, journal(d))
    assert d.emulator.functions_serving(REGION_A), (again.outcome, again.detail)
    assert not d.violations, [again.outcome, again.detail, *map(str, d.violations)]


def test_b37_control_only_autoscaling_api_down_stops_at_the_late_fence(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control (the B32-1 side that holds): region A back with only its Auto Scaling API down. The late look
    finds the database answering (RDS API up): the late fence meets RegionAPartlyUnreachable and the run stops
    before any promotion; nothing lost."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    fault = Fault(service="auto-scaling", region=REGION_A, unreachable=True, times=0)

    def back_impaired(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        fault.times = None

    run = _forced_failover_region_a_back(d, monkeypatch, back_impaired, faults=(fault,))
    monkeypatch.undo()
    d.op_clear_faults()
    _settle_and_judge(d)
    assert run.outcome == "stopped", run.detail
    assert not d.emulator.database_writable(REGION_B), run.detail
    assert not d.violations, [run.detail[:300], *map(str, d.violations)]


# --------------------------------------------------------------------------------------------------------------
# Attack 4: a real outage (region A dark the whole time). Converges, and the RTO cost of the confirmation.
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor_name", ["cli", "sfn"])
def test_b37_control_real_outage_converges_and_rto(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, executor_name: str
) -> None:
    """Control (attack 4): region A dark for the whole run. The failover completes (unplanned, the documented
    exception), traffic follows the writer, nothing else lost. Prints the time from promote_database's first
    call to the PromoteReadReplica request, and how much of it the switch wait already took: the confirmation's
    RTO cost is what is left."""
    d = deploy("rds-replica")
    seen: dict[str, Any] = {}
    real_promote = promotion._promote_rds

    def promote(ctx, clients, params, side, ident, step):  # type: ignore[no-untyped-def]
        seen.setdefault("promote", clients.clock.now())
        return real_promote(ctx, clients, params, side, ident, step)

    monkeypatch.setattr(promotion, "_promote_rds", promote)

    def stay_dark(d: Deployment) -> None:
        seen["entered"] = d.emulator.clock.now()
        seen["switch_pending"] = _switch_pending(d.ctx, d.runbook_clients())

    run = _forced_failover_region_a_back(d, monkeypatch, stay_dark, executor_name=executor_name)
    monkeypatch.undo()
    assert run.outcome == "done", (run.outcome, run.detail[:400])
    took = (seen["promote"] - seen["entered"]).total_seconds()
    print(
        f"RTO[{executor_name}]: promote_database entered {seen['entered']:%H:%M:%S} with the switch "
        f"{seen['switch_pending']:.0f} s from effect; PromoteReadReplica asked {seen['promote']:%H:%M:%S} "
        f"({took:.0f} s after entry, {took - seen['switch_pending']:.0f} s after the switch took effect)"
    )
    assert took - seen["switch_pending"] <= 60, (
        took
    )  # the confirmation adds less than a minute past the switch
    _settle_and_judge(d)
    assert not d.violations, "\n".join([run.detail[:300], *map(str, d.violations)])


@pytest.mark.parametrize("executor_name", ["cli", "sfn"])
def test_b37_control_region_a_back_during_the_confirmation_after_the_switch_took_effect(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, executor_name: str
) -> None:
    """Control (attack 1/3): region A dark at the fence and through the switch wait, back 20 s after the switch
    took effect (inside the confirmation's last part, before 120 s of looks agree); the canary's minute not come.
    A look finds it answering: the late fence completes the pending fence and the promotion takes the lossless
    path (or rolls back at its budget). Nothing lost, one writer, traffic follows the writer."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    seen: dict[str, Any] = {}

    def back_later(d: Deployment) -> None:
        pending = _switch_pending(d.ctx, d.runbook_clients())
        seen["pending"] = pending
        d.emulator.clock.after(pending + 20.0, d.op_recover)

    run = _forced_failover_region_a_back(d, monkeypatch, back_later, executor_name=executor_name)
    monkeypatch.undo()
    lost = sum(len(v) for v in d.emulator.lost_at_promotion.values())
    _settle_and_judge(d)
    assert seen["pending"] > 0
    assert lost == 0, (run.outcome, run.detail[:300], _promotion_events(d))
    assert not d.violations, "\n".join([run.outcome, run.detail[:300], *map(str, d.violations)])
