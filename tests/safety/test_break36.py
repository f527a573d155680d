"""break36: the late fence at the promotion (break35 B35-2 fix, branch f5 at 3eaec30) attacked in the safety
model. Each finding names the invariant of docs/safety.md it protects (all four fixed; they were strict xfails); controls
beside them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.failover.exceptions import StepFailed
from lambdas.failover.journal import read_journal
from lambdas.failover.stepkit import STEPS
from lambdas.failover.traffic import _switch_pending
from tests.lambdas.failover.faults import Fault, throttling_code
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment
from tests.safety.scenarios import dark_with_a_tail

Deploy = Callable[..., Deployment]


def _forced_failover_region_a_back(
    d: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    at_promotion: Callable[[Deployment], None],
    *,
    params: dict[str, Any] | None = None,
    executor_name: str = "cli",
    faults: tuple[Fault, ...] = (),
) -> Any:
    """The runbook's forced failover over a region A dark at ``fence_primary`` (its fence left pending once
    the darkness was confirmed), region A's database link 900 s behind; ``at_promotion(d)`` runs once, right
    before ``promote_database`` (region A coming back, faults, ...)."""
    dark_with_a_tail(d)
    for fault in faults:
        d.add_fault(fault)  # installed before the run builds its clients; armed by ``at_promotion``
    real = STEPS["promote_database"]
    came: list[bool] = []

    def hook(ctx, clients, p):  # type: ignore[no-untyped-def]
        if not came:
            came.append(True)
            at_promotion(d)
        return real(ctx, clients, p)

    monkeypatch.setitem(STEPS, "promote_database", hook)
    try:
        run = d.op_run("failover", params=params, executor_name=executor_name)
    finally:
        monkeypatch.setitem(STEPS, "promote_database", real)
    assert came, "the run never reached promote_database"
    return run


def _settle_and_judge(d: Deployment) -> None:
    d.op_advance(600)
    d.op_write(5)
    d.op_advance(300)
    d.judge()


def _blip_faults(mode: str = "rds-replica") -> tuple[Fault, ...]:
    """Region A's RDS API and its Lambda API each failing one call to connect (the late look's two calls,
    ``darkness._rds_look`` and ``_data_plane_look``), disarmed (``times=0``) until armed: a blip ("a
    connection error or two is not an outage", darkness.DARK_CONFIRM_SECONDS)."""
    if mode == "rds-replica":
        rds, lam = "DescribeDBInstances", "Invoke"
    else:
        rds, lam = "DescribeDBClusters", "GetFunctionConcurrency"
    return (
        Fault(service="rds", operation=rds, region=REGION_A, unreachable=True, times=0),
        Fault(service="lambda", operation=lam, region=REGION_A, unreachable=True, times=0),
    )


def _back_then_blip(faults: tuple[Fault, ...]) -> Callable[[Deployment], None]:
    def act(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        for f in faults:
            # both of the fail-fast client's attempts (PRIMARY_SETTINGS max_attempts=2)
            f.times = f.injected + 2

    return act


def _back_then_blip_when_the_switch_took_effect(faults: tuple[Fault, ...]) -> Callable[[Deployment], None]:
    """Region A back, and the blip armed for the moment the thrown switch has taken effect: it hits the
    late look itself (after the switch wait's own looks all found region A answering), not the first look."""

    def act(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        pending = _switch_pending(d.ctx, d.runbook_clients())
        assert pending > 0, "the switch wait is where the look's window starts"

        def arm() -> None:
            for f in faults:
                f.times = f.injected + 2

        d.emulator.clock.after(pending, arm)

    return act


BLIPS: dict[str, Callable[[tuple[Fault, ...]], Callable[[Deployment], None]]] = {
    "at-the-first-look": _back_then_blip,
    "at-the-look-after-the-switch": _back_then_blip_when_the_switch_took_effect,
}


def _back_with_services_down(*services: str) -> tuple[tuple[Fault, ...], Callable[[Deployment], None]]:
    """Region A back at the promotion with ``services``' endpoints failing to connect from then on (one or more
    control planes down): the faults to install, and the ``at_promotion`` that arms them."""
    faults = tuple(Fault(service=s, region=REGION_A, unreachable=True, times=0) for s in services)

    def act(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        for f in faults:
            f.times = None

    return faults, act


def _canary_late_until(
    d: Deployment, monkeypatch: pytest.MonkeyPatch, faults: tuple[Fault, ...]
) -> list[object]:
    """The canary's minute has not come (its Event invocations dropped, as a failed invocation is after
    Lambda's retries) until the blip has hit the late look; from then on the canary acts as usual."""
    real = d._async_step
    dropped: list[object] = []

    def step(event: Any) -> None:
        if all(f.injected >= 2 for f in faults):
            real(event)
        else:
            dropped.append(event)

    monkeypatch.setattr(d, "_async_step", step)
    return dropped


def _journal_marks(d: Deployment) -> dict[str, Any]:
    j = read_journal(d.runbook_clients(), d.ctx)
    return {k: j.get(k) for k in ("fencePending", "primaryStoppedAt")}


def _promotion_events(d: Deployment) -> list[str]:
    return [f"{e.kind}: {e.detail}" for e in d.emulator.events if e.kind == "promotion-started"]


def test_b36_1_canary_fences_during_the_switch_wait_then_a_blip_promotes_unplanned_on_a_stale_read(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No_loss (docs/safety.md: the unplanned exception is a writer move while the old writer's region does not
    answer; 'did not answer is judged right before the writer moves'). The canary completes the pending fence
    during promote_database's in-process switch wait (primaryStoppedAt stamped after fencePending), but
    _promote_database keeps the journal marks it read BEFORE the wait; the late look then meets one blip (region
    A's RDS and Lambda APIs each fail one call's two attempts) and the stale source_answers=False promotes
    unplanned at once, skipping the lossless wait and its 120-s darkness confirmation (_forced_source_dark).
    botocore retries connection errors as transient
    (https://docs.aws.amazon.com/boto3/latest/guide/retries.html): one failed call is not an outage. Fixed: this
    test failed before the fix."""
    d = deploy("rds-replica")
    faults = _blip_faults()
    run = _forced_failover_region_a_back(d, monkeypatch, _back_then_blip(faults), faults=faults)
    marks = _journal_marks(d)
    _settle_and_judge(d)
    assert [f.injected for f in faults] == [2, 2], "the blip hit the late look's two calls"
    assert not d.violations, [run.outcome, run.detail, marks, *_promotion_events(d), *map(str, d.violations)]


@pytest.mark.parametrize("blip", sorted(BLIPS))
def test_b36_2_one_blip_at_the_late_look_promotes_unplanned_over_a_region_a_that_answers(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, blip: str
) -> None:
    """No_loss (docs/safety.md). The late look (_late_fence_due -> darkness.source_database_dark) is ONE look,
    while darkness.py's own rule is 'a verdict over time, never one look' (B21b-1, B33-3: DARK_CONFIRM_SECONDS).
    Region A back before the promotion (the canary's Event invocation not run yet), its fence still pending; one
    blip at the look and the promotion goes unplanned over a region A that answers and was never fenced: its
    acknowledged tail is lost. botocore retries connection errors as transient
    (https://docs.aws.amazon.com/boto3/latest/guide/retries.html). Fixed: this test failed before the fix."""
    d = deploy("rds-replica")
    faults = _blip_faults()
    # The canary's minute has not come (or its Event invocation failed and was dropped): nothing but the
    # promotion's late look can complete the fence.
    dropped = _canary_late_until(d, monkeypatch, faults)
    run = _forced_failover_region_a_back(d, monkeypatch, BLIPS[blip](faults), faults=faults)
    marks = _journal_marks(d)
    monkeypatch.undo()
    _settle_and_judge(d)
    assert [f.injected for f in faults] == [2, 2], "the blip hit the late look's two calls"
    assert not d.violations, [
        run.outcome,
        run.detail,
        marks,
        len(dropped),
        *_promotion_events(d),
        *map(str, d.violations),
    ]


def test_b36_control_region_a_back_no_blip(deploy: Deploy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: the same run, region A back with no blip (and the canary's invocation dropped): the late fence
    completes the pending fence, and the lossless wait moves the writer or rolls back. Nothing lost."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)

    def back(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)

    run = _forced_failover_region_a_back(d, monkeypatch, back)
    monkeypatch.undo()
    _settle_and_judge(d)
    assert not d.violations, [run.outcome, run.detail, *map(str, d.violations)]
    assert "unplanned" not in run.detail, run.detail


@pytest.mark.parametrize("blip", sorted(BLIPS))
def test_b36_2_sfn_one_blip_at_the_late_look_promotes_unplanned(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, blip: str
) -> None:
    """No_loss (docs/safety.md), B36-2 by the Step Functions executor: each poll of promote_database re-reads
    the journal, but the late look is still one look; one blip at it and the poll promotes unplanned over a
    region A that answers and whose fence is still pending. botocore retries connection errors as transient
    (https://docs.aws.amazon.com/boto3/latest/guide/retries.html). Fixed: this test failed before the fix."""
    d = deploy("rds-replica")
    faults = _blip_faults()
    _canary_late_until(d, monkeypatch, faults)
    run = _forced_failover_region_a_back(
        d, monkeypatch, BLIPS[blip](faults), faults=faults, executor_name="sfn"
    )
    marks = _journal_marks(d)
    monkeypatch.undo()
    _settle_and_judge(d)
    assert [f.injected for f in faults] == [2, 2], (
        "the blip hit the late look's two calls",
        run.outcome,
        run.detail,
    )
    assert not d.violations, [run.outcome, run.detail, marks, *_promotion_events(d), *map(str, d.violations)]


def test_b36_control_region_a_rds_answers_but_autoscaling_and_lambda_do_not(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: region A back with its RDS API answering and its Auto Scaling and Lambda APIs failing to
    connect (one service's control plane down). The late fence meets RegionAPartlyUnreachable inside
    promote_database: the wrapper puts the latch back to standby and roll_back_fence releases the switch; the
    writer stays in region A, traffic follows it, nothing lost; a resume refuses the same way."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    faults, back_partly = _back_with_services_down("auto-scaling", "lambda")
    run = _forced_failover_region_a_back(d, monkeypatch, back_partly, faults=faults)
    monkeypatch.undo()
    assert run.outcome == "stopped", run.detail
    assert "region A answers" in run.detail, run.detail
    d.op_advance(600)
    d.op_write(5)
    again = d.op_run("failover", resuming=True, run_id=run.run_id)
    d.op_advance(300)
    d.op_write(5)
    d.judge()
    assert not d.violations, [run.detail, again.outcome, again.detail, *map(str, d.violations)]
    assert d.emulator.database_writable(REGION_A) and not d.emulator.database_writable(REGION_B)
    assert d.where() == REGION_A, (d.where(), run.detail)


def test_b36_control_late_fence_denied(deploy: Deploy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: region A back but refusing the runbook's changes (AccessDenied on Auto Scaling, Lambda, RDS:
    an SCP) at the late fence: the run stops before any promotion, rolled back, region A the writer."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)

    def back_denied(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        d.op_deny_fence()

    run = _forced_failover_region_a_back(d, monkeypatch, back_denied)
    monkeypatch.undo()
    _settle_and_judge(d)
    assert run.outcome == "stopped", run.detail
    assert not d.emulator.database_writable(REGION_B), run.detail
    assert not d.violations, [run.detail, *map(str, d.violations)]


def test_b36_control_late_fence_web_tier_protected_from_scale_in(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: region A back with its web tier's instances protected from scale in ("the Auto Scaling group
    can't terminate the required number of instances until their instance scale-in protection settings are
    disabled", https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html):
    the late fence refuses before any change (beforePromotion), the run stops, nothing promoted."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)

    def back_protected(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        asg = d.world.client("autoscaling", REGION_A)
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[d.ctx.primary_asg_name])[
            "AutoScalingGroups"
        ][0]
        ids = [i["InstanceId"] for i in group["Instances"]]
        assert ids, group
        asg.set_instance_protection(
            AutoScalingGroupName=d.ctx.primary_asg_name, InstanceIds=ids, ProtectedFromScaleIn=True
        )

    run = _forced_failover_region_a_back(d, monkeypatch, back_protected)
    monkeypatch.undo()
    _settle_and_judge(d)
    assert run.outcome == "stopped" and "protected from scale in" in run.detail, run.detail
    assert "Nothing was promoted" in run.detail or "run the failover again" in run.detail, run.detail
    assert not d.emulator.database_writable(REGION_B), run.detail
    assert not d.violations, [run.detail, *map(str, d.violations)]


def test_b36_1_latch_activate_unplanned_stale_read_and_a_blip(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No_loss (docs/safety.md), B36-1 by `latch activate --unplanned` (automation/latch_cli.py runs the
    runbook's promote_database in process, wait=True): the canary completes the pending fence during the switch
    wait, the promotion keeps its pre-wait journal read, and one blip at the late look promotes unplanned.
    botocore retries connection errors as transient
    (https://docs.aws.amazon.com/boto3/latest/guide/retries.html). Fixed: this test failed before the fix."""
    from automation import latch_cli
    from lambdas.failover import steps
    from tests.lambdas.failover.harness import new_session
    from tests.safety.model import actor_clients

    d = deploy("rds-replica")
    dark_with_a_tail(d)
    faults = _blip_faults()
    session = new_session()
    d.emulator.attach(session)
    for f in faults:
        f.install(session)
    operator = actor_clients(d, session)
    real = steps.promote_database
    came: list[bool] = []

    def hook(ctx, clients, p):  # type: ignore[no-untyped-def]
        if not came:
            came.append(True)
            _back_then_blip(faults)(d)
        return real(ctx, clients, p)

    monkeypatch.setattr(steps, "promote_database", hook)
    operator.actor = "latch-activate"
    d._begin_actor("latch-activate")
    try:
        lines = latch_cli.activate(d.ctx, operator, reason="declared failover", planned=False)
    except StepFailed as exc:
        lines = [f"stopped: {exc.code}: {exc.reason}"]
    finally:
        d._end_actor("latch-activate")
        operator.actor = None
        monkeypatch.setattr(steps, "promote_database", real)
    assert came
    marks = _journal_marks(d)
    _settle_and_judge(d)
    assert [f.injected for f in faults] == [2, 2], ("the blip hit the late look's two calls", lines)
    assert not d.violations, [*lines, marks, *_promotion_events(d), *map(str, d.violations)]


@pytest.mark.parametrize("executor_name", ["cli"])
def test_b36_control_crash_inside_the_late_fence_then_resume(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, executor_name: str
) -> None:
    """Control: the run dies right after the late fence's first throttle of region A (primaryStoppedAt
    stamped, fencePending still set); the canary may finish the fence; the run is resumed by the same
    executor (new link pace: the tail drains). Nothing lost, one writer, traffic follows the writer."""
    d = deploy("rds-replica")
    dark_with_a_tail(d, 120.0)
    real = STEPS["promote_database"]
    came: list[bool] = []

    def hook(ctx, clients, p):  # type: ignore[no-untyped-def]
        if not came:
            came.append(True)
            d.op_recover()
            d.op_advance(30)
        return real(ctx, clients, p)

    monkeypatch.setitem(STEPS, "promote_database", hook)
    monkeypatch.setattr(d, "_async_step", lambda event: None)  # the canary's minute not come yet
    run = d.op_run("failover", executor_name=executor_name, crash_on=frozenset({"PutFunctionConcurrency"}))
    monkeypatch.undo()
    marks = _journal_marks(d)
    assert came and run.outcome == "crashed", (run.outcome, run.detail)
    d.op_advance(200)
    d.op_write(5)
    d.op_resume()
    again = d.last_run
    _settle_and_judge(d)
    assert not d.violations, [run.detail, marks, again.outcome, again.detail, *map(str, d.violations)]
    assert again.outcome in ("done", "stopped"), again.detail


@pytest.mark.parametrize("dark_for", [60.0, 400.0])
def test_b36_control_region_a_fenced_late_then_dark_again_during_the_lossless_wait(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, dark_for: float
) -> None:
    """Control: region A back, fenced late, then dark again during the lossless wait, for less than the
    darkness confirmation (60 s: the wait goes on) or longer (400 s: _forced_source_dark confirms it and the
    promotion goes unplanned over a dark region A, the documented exception). Judged by the checker."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)

    def back_then_flap(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        d.emulator.clock.after(200.0, d.op_outage)
        d.emulator.clock.after(200.0 + dark_for, d.op_recover)

    run = _forced_failover_region_a_back(d, monkeypatch, back_then_flap)
    monkeypatch.undo()
    _settle_and_judge(d)
    assert not d.violations, [run.outcome, run.detail, *_promotion_events(d), *map(str, d.violations)]


def test_b36_3_region_b_throttled_at_the_late_look_skips_the_fence_and_promotes_unplanned(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No_loss (docs/safety.md). _late_fence_due asks journal._writer_moving, which answers True ('moving')
    whenever region B's DescribeDBInstances cannot be told (a ClientError after the client's 8 attempts): the
    late fence is skipped and _promote_database goes on with source_answers=False, promoting unplanned over a
    region A that answers and whose fence is still pending. RDS throttles API requests per account and Region
    from any source ('ThrottlingException ... Rate exceeded', 300 burst / 12 per s:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-api-throttling.html); a regional failover is when
    region B's RDS API is busiest. Fixed: this test failed before the fix."""
    d = deploy("rds-replica")
    storm = Fault(
        service="rds", operation="DescribeDBInstances", region=REGION_B, code=throttling_code("rds"), times=0
    )

    def back_then_storm(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        storm.skip = len(storm.seen) + 1  # promote_database's first _writer_moving look passes
        # the next call's 8 attempts (DR_SETTINGS) throttled: _late_fence_due's _writer_moving look
        storm.times = storm.injected + 8

    # The canary's minute has not come until the storm has hit the late look: nothing but the promotion's
    # late look can complete the fence before it; the canary acts as usual after it.
    real = d._async_step
    monkeypatch.setattr(d, "_async_step", lambda event: real(event) if storm.injected >= 8 else None)
    run = _forced_failover_region_a_back(d, monkeypatch, back_then_storm, faults=(storm,))
    monkeypatch.undo()
    marks = _journal_marks(d)
    _settle_and_judge(d)
    assert storm.injected == 8, storm.seen
    assert not d.violations, [run.outcome, run.detail, marks, *_promotion_events(d), *map(str, d.violations)]


def _stamp_then_throttled(d: Deployment, monkeypatch: pytest.MonkeyPatch, executor_name: str) -> Any:
    """Region A back before the promotion (the canary's Event invocations dropped for the run: its minute not
    come, or its invocation failing); the late fence stamps primaryStoppedAt and then its first
    PutFunctionConcurrency is throttled past the client's two attempts (TooManyRequestsException: retryable):
    nothing of region A was changed."""
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    refusal = Fault(
        service="lambda",
        operation="PutFunctionConcurrency",
        region=REGION_A,
        code=throttling_code("lambda"),
        status=429,
        times=0,
    )

    def back_then_throttle(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)
        refusal.times = refusal.injected + 2

    run = _forced_failover_region_a_back(
        d, monkeypatch, back_then_throttle, faults=(refusal,), executor_name=executor_name
    )
    monkeypatch.undo()
    assert refusal.injected == 2, refusal.seen
    return run


def test_b36_4_sfn_retry_after_a_late_fence_that_stamped_then_failed_skips_the_fence(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traffic_follows_writer / one_writer (docs/safety.md: every planned move starts with the fence).
    fence_region_a stamps primaryStoppedAt BEFORE its changes; a late fence whose first change is throttled
    (retryable StepFailed) leaves that stamp newer than fencePending with nothing fenced. Step Functions retries
    promote_database alone (STEP_RETRY on StepRetryable), and the retry's _latest_fence reads 'the latest fence
    reached region A': no late fence again, straight into the lossless wait with region A's web tier and
    functions serving its writer while Route 53 answers region B. Only the canary (if its invocation runs)
    fences it. Lambda throttles with TooManyRequestsException (429)
    (https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html). Fixed: this test failed
    before the fix."""
    d = deploy("rds-replica")
    run = _stamp_then_throttled(d, monkeypatch, "sfn")
    _settle_and_judge(d)
    assert not d.violations, [run.outcome, run.detail[:300], *map(str, d.violations)]


def test_b36_control_cli_late_fence_stamped_then_failed_rolls_back(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the same throttled late fence under the in-process executor, which does not retry the step:
    the run stops, roll_back_fence un-fences region A (its stamp says the fence reached it) and releases the
    switch. Nothing lost, traffic follows the writer."""
    d = deploy("rds-replica")
    run = _stamp_then_throttled(d, monkeypatch, "cli")
    _settle_and_judge(d)
    assert run.outcome == "stopped", run.detail
    assert not d.violations, [run.outcome, run.detail[:300], *map(str, d.violations)]
