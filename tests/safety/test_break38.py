"""break38: the late fence's miss bound (f4c4dd6, break37 B37-3 fix: a look that finds region A answering during
the switch wait completes its fence at once; misses counted in the run journal per pending fence,
LATE_FENCE_TRIES=3, RegionAFlapping not retried) attacked in the safety model. Findings (fixed since; each
test failed before its fix) name the invariant of docs/safety.md they broke; controls (what held) beside them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from lambdas.failover import promotion
from lambdas.failover.traffic import _switch_pending
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment, actor_clients
from tests.safety.scenarios import journal
from tests.safety.test_break36 import _forced_failover_region_a_back, _promotion_events, _settle_and_judge

Deploy = Callable[..., Deployment]


def _blackout_faults() -> tuple[Fault, ...]:
    """Every region-A API the late look, the late fence and region_a_answering call (RDS, Auto Scaling, Lambda)
    failing to connect while armed (``times=None``), disarmed (``times=0``) otherwise. Region A itself stays
    reachable: its load balancer serves and its writer takes writes (the B37-3 adversary: the runbook's path to
    region A's control planes flaps, its data plane does not)."""
    return tuple(
        Fault(service=s, region=REGION_A, unreachable=True, times=0)
        for s in ("rds", "auto-scaling", "lambda")
    )


def _mismatch_monitor(d: Deployment, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The longest stretch the checker saw Route 53 answer a region other than the one serving the writer."""
    seen: dict[str, Any] = {"longest": 0.0}
    real = d._judge_now

    def judge_now() -> None:
        real()
        if d.mismatch_since is not None:
            took = (d.emulator.clock.now() - d.mismatch_since).total_seconds()
            if took > seen["longest"]:
                seen.update(longest=took, since=d.mismatch_since, at=d.emulator.clock.now())

    monkeypatch.setattr(d, "_judge_now", judge_now)
    return seen


def _canary_under_the_same_faults(d: Deployment, faults: tuple[Fault, ...]) -> None:
    """The canary's Event invocations of fence_primary (its own session in the model) meet the same faults as
    the run: both reach region A's APIs from region B."""
    session = new_session()
    d.emulator.attach(session)
    for f in faults:
        f.install(session)
    d._async_clients = actor_clients(d, session)


def _misses_spaced_by_dark_looks(
    d: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    executor_name: str,
    *,
    canary: bool,
    dark_for: float = 115.0,
) -> tuple[Any, list[datetime], dict[str, Any]]:
    """B38-1's schedule. A forced failover over a region A dark at its fence (fence pending, a 900-s tail);
    region A back 20 s after the thrown switch took effect (Route 53 on region B, region A serving its writer
    unfenced). Every late fence then meets a blackout of region A's APIs lasting ``dark_for`` seconds (the fence
    misses: none of region A's endpoints answers it), so the looks after it find region A dark, for less than
    DARK_CONFIRM_SECONDS (120 s); the first look after the blackout answers, and the next fence misses again."""
    faults = _blackout_faults()
    if canary:
        _canary_under_the_same_faults(d, faults)
    else:
        monkeypatch.setattr(d, "_async_step", lambda event: None)
    fences: list[datetime] = []
    real = promotion.fence_primary

    def lift() -> None:
        for f in faults:
            f.times = 0

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        fences.append(clients.clock.now())
        for f in faults:
            f.times = None
        d.emulator.clock.after(dark_for, lift)
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)
    seen = _mismatch_monitor(d, monkeypatch)

    def back_after_the_switch(d: Deployment) -> None:
        seen["switch_pending"] = _switch_pending(d.ctx, d.runbook_clients())
        d.emulator.clock.after(seen["switch_pending"] + 20.0, d.op_recover)

    run = _forced_failover_region_a_back(
        d, monkeypatch, back_after_the_switch, faults=faults, executor_name=executor_name
    )
    seen["misses"] = journal(d).get(promotion.LATE_FENCE_MISSES_MARK)
    seen["ended"] = d.emulator.clock.now()
    monkeypatch.setattr(promotion, "fence_primary", real)
    lift()
    _settle_and_judge(d)
    monkeypatch.undo()
    return run, fences, seen


B38_1 = (  # the finding as it was reported, before the fix
    "traffic_follows_writer (docs/safety.md: 'Route 53 answers a region with capacity and the writer, whatever "
    "step a run stopped at', within TRAFFIC_GRACE=180 s; B37-3's fix: 'the third such miss stops the run ... "
    "because all the while region A serves its writer unfenced under a switch that keeps Route 53 on region B'; "
    "promotion.LATE_FENCE_TRIES: 'three tries 15 s apart hold it so for about 45 s ... the whole stays inside the "
    "3 minutes'). The bound counts misses, not time: between two misses the looks may find region A dark for "
    "anything under DARK_CONFIRM_SECONDS without confirming the darkness, and each such dark stretch costs "
    "nothing. Schedule: region A back 20 s after the switch took effect, its web tier serving its writer; each "
    "late fence meets a 115-s blackout of region A's RDS/Auto Scaling/Lambda APIs (the fence misses), the looks "
    "in it are dark (at most 105 s of them), the first look after it answers and the next fence misses again. "
    "Observed (cli): fences at 12:09:03, 12:11:03, 12:13:03, RegionAFlapping at 12:13:03, lateFenceMisses 3; "
    "'traffic_follows_writer at 12:12:00: Route 53 answers us-west-2 while us-east-1 serves the writer ex1-db "
    "(since 12:09:00)', mismatch 340 s (until 12:14:40). sfn: fences 12:08:53, 12:10:53, 12:12:54, mismatch "
    "280 s, same violation; aurora-global the same (writer ex1-a). Fix direction: bound the time region A has "
    "answered with its fence pending (from the first answering look, kept in the journal), not only the count, "
    "or release the switch as soon as a look finds region A answering and its fence cannot reach it."
)


@pytest.mark.parametrize(
    ("mode", "executor_name"),
    [("rds-replica", "cli"), ("rds-replica", "sfn"), ("aurora-global", "cli"), ("aurora-global", "sfn")],
)
def test_b38_1_misses_spaced_by_unconfirmed_darkness_keep_traffic_off_the_writer(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, mode: str, executor_name: str
) -> None:
    """traffic_follows_writer: the finding ``B38_1`` (above). Fixed in ``darkness.source_dark_window``: the late
    look does not count region A dark while its web tier's health endpoint answers 200, so the looks between
    misses find region A answering, the misses come a look gap apart and the third stops the run in time.
    This test failed before the fix (it was a strict xfail)."""
    d = deploy(mode)
    run, fences, seen = _misses_spaced_by_dark_looks(d, monkeypatch, executor_name, canary=False)
    evidence = [
        run.outcome,
        run.detail[:160],
        [f"{f:%H:%M:%S}" for f in fences],
        seen,
        *_promotion_events(d),
        *map(str, d.violations),
    ]
    # The schedule is B37-3's bound doing what it says: three misses, RegionAFlapping, nothing promoted.
    assert run.outcome == "stopped" and "region A answers some looks and not others" in run.detail, evidence
    assert len(fences) == promotion.LATE_FENCE_TRIES, evidence
    assert not _promotion_events(d), evidence
    assert not d.violations, evidence
    assert seen["longest"] < TRAFFIC_GRACE, evidence


def test_b38_1_sfn_with_the_canary_under_the_same_blackout(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``B38_1`` with the canary on (its fence invocations meeting the same blackout, as both reach region A's
    APIs from region B), sfn: the same violation, mismatch 280 s: the canary's minutes fell inside the
    blackouts and its fence left the fence pending. Fixed as above; this test failed before the fix (it was a
    strict xfail)."""
    d = deploy("rds-replica")
    run, fences, seen = _misses_spaced_by_dark_looks(d, monkeypatch, "sfn", canary=True)
    evidence = [
        run.outcome,
        run.detail[:160],
        [f"{f:%H:%M:%S}" for f in fences],
        seen,
        *map(str, d.violations),
    ]
    assert not _promotion_events(d), evidence
    assert not d.violations, evidence


# --------------------------------------------------------------------------------------------------------------
# Controls: what held.
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor_name", ["cli", "sfn"])
@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_control_region_a_back_during_the_switch_wait_fence_completes_at_once(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, mode: str, executor_name: str
) -> None:
    """Attack 1: region A back in the middle of the switch wait (the canary's minute not come): a look cuts the
    wait short and the late fence completes before the switch has taken effect. Held: nothing lost (the 900-s
    tail reaches region B before any writer move, or the run rolls back), one writer; the fenced region A
    serves nothing, so no 'Route 53 answers a fenced region A' window counts against traffic_follows_writer,
    and traffic follows the writer after the run."""
    d = deploy(mode)
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    fenced: list[tuple[datetime, float]] = []
    real = promotion.fence_primary

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        fenced.append((clients.clock.now(), _switch_pending(ctx, clients)))
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)
    seen = _mismatch_monitor(d, monkeypatch)

    def back_mid_wait(d: Deployment) -> None:
        pending = _switch_pending(d.ctx, d.runbook_clients())
        d.emulator.clock.after(pending / 3, d.op_recover)

    run = _forced_failover_region_a_back(d, monkeypatch, back_mid_wait, executor_name=executor_name)
    monkeypatch.setattr(promotion, "fence_primary", real)
    monkeypatch.setattr(d, "_async_step", type(d)._async_step.__get__(d))
    lost = sum(len(v) for v in d.emulator.lost_at_promotion.values())
    _settle_and_judge(d)
    monkeypatch.undo()
    evidence = [run.outcome, run.detail[:200], fenced, seen, *_promotion_events(d), *map(str, d.violations)]
    assert fenced and fenced[0][1] > 0, evidence  # the late fence came before the switch took effect
    assert lost == 0, evidence
    assert not d.violations, evidence


@pytest.mark.parametrize("executor_name", ["cli", "sfn"])
def test_control_answers_a_look_misses_the_fence_then_dark_for_good(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, executor_name: str
) -> None:
    """Attack 2: region A answers a look during the switch wait, the late fence misses (region A goes dark at
    it), and region A stays dark. Held: one miss counted, the promotion goes unplanned only after the switch
    took effect and 120 s of dark looks after the answering one, with region A dark at the request (the
    documented exception); no StepTimedOut under Step Functions; traffic follows the writer."""
    d = deploy("rds-replica")
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    seen: dict[str, Any] = {}
    real = promotion.fence_primary

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        if "answered" not in seen:
            seen["answered"] = clients.clock.now()
            seen["switch_pending"] = _switch_pending(ctx, clients)
            d.op_outage()
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)

    def back_mid_wait(d: Deployment) -> None:
        pending = _switch_pending(d.ctx, d.runbook_clients())
        d.emulator.clock.after(pending / 3, d.op_recover)

    run = _forced_failover_region_a_back(d, monkeypatch, back_mid_wait, executor_name=executor_name)
    misses = journal(d).get(promotion.LATE_FENCE_MISSES_MARK)
    monkeypatch.undo()
    started = [e.at for e in d.emulator.events if e.kind == "promotion-started"]
    evidence = [run.outcome, run.detail[:200], seen, misses, started]
    assert run.outcome == "done", evidence
    assert seen["switch_pending"] > 0, evidence
    assert misses and misses["misses"] == 1, evidence
    assert started and (started[0] - seen["answered"]).total_seconds() >= 120, evidence
    assert (started[0] - seen["answered"]).total_seconds() >= seen["switch_pending"], evidence
    d.op_recover()
    _settle_and_judge(d)
    assert not d.violations, [*evidence, *map(str, d.violations)]


@pytest.mark.parametrize("executor_name", ["cli", "sfn"])
def test_control_region_a_flapping_stop_rolls_back_and_a_resume_converges(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, executor_name: str
) -> None:
    """Attack 5: RegionAFlapping (not retried) under both executors: the stop's roll-back leaves the latch on
    standby, the switch released, region A's functions serving and no fence pending; the CLI/state machine
    report names the reason. A resume once region A answers converges with nothing lost."""
    d = deploy("rds-replica")
    faults = (
        Fault(
            service="auto-scaling",
            operation="DescribeAutoScalingGroups",
            region=REGION_A,
            unreachable=True,
            times=0,
        ),
        Fault(service="rds", operation="DescribeDBInstances", region=REGION_A, unreachable=True, times=0),
        Fault(
            service="lambda", operation="GetFunctionConcurrency", region=REGION_A, unreachable=True, times=0
        ),
    )
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    real = promotion.fence_primary

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        asg, rds, lam = faults
        asg.times, rds.times, lam.times = asg.injected + 4, rds.injected + 2, lam.injected + 2
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)

    def back(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)

    run = _forced_failover_region_a_back(d, monkeypatch, back, faults=faults, executor_name=executor_name)
    monkeypatch.undo()
    j = journal(d)
    latch = d.runbook_clients().ssm("dr").get_parameter(Name=d.ctx.latch_parameter_name)["Parameter"]["Value"]
    assert run.outcome == "stopped", (run.outcome, run.detail)
    assert "region A answers some looks and not others" in run.detail, run.detail
    assert '"standby"' in latch, latch
    assert not j.get("fencePending"), j
    assert d.emulator.functions_serving(REGION_A)
    d.op_advance(300)
    d.judge()
    assert not d.violations, [run.detail[:200], *map(str, d.violations)]
    again = d.op_run(
        "failover",
        resuming=True,
        run_id=run.run_id if executor_name == "cli" else None,
        executor_name=executor_name,
    )
    _settle_and_judge(d)
    assert not d.violations, [again.outcome, again.detail[:300], *map(str, d.violations)]
    assert d.emulator.database_writable(REGION_A) or d.emulator.database_writable(REGION_B)


def test_control_a_run_that_dies_after_two_misses_resumed(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack 3: the CLI run dies (process death) right before its third late fence, two misses in the journal
    under its fencePending stamp, and is resumed under its run id 5 s later with region A answering. Held: the
    resume never reaches the late fence: confirm_primary_down refuses ('primary answers healthy ... re-run with
    --force') and the stop's roll_back_fence withdraws the pending fence, releases the switch and sets the latch
    to standby; the stale lateFenceMisses (keyed by the withdrawn stamp) is never read again, a later failover's
    pending fence gets a new stamp. Nothing lost, traffic follows the writer. (Resumed 60 s after the death
    instead, the checker reports traffic_follows_writer exactly at TRAFFIC_GRACE, 12:07:40 to 12:10:40: region A
    back unfenced under Route 53's health-check answer of region B for the dead run's last 30 s, the operator's
    60 s and Route 53's ~90 s to follow the release: the crash's cost, not the miss bound's.)"""
    from tests.safety.model import Crash

    d = deploy("rds-replica")
    faults = _blackout_faults()
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    real = promotion.fence_primary
    calls: list[datetime] = []

    def blackout(on: bool) -> None:
        for f in faults:
            f.times = None if on else 0

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        calls.append(clients.clock.now())
        if len(calls) == 3:
            raise Crash("the runbook's process died before its third late fence")
        blackout(True)
        d.emulator.clock.after(5.0, lambda: blackout(False))
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)

    def back(d: Deployment) -> None:
        d.op_recover()
        d.op_advance(30)

    died = _forced_failover_region_a_back(d, monkeypatch, back, faults=faults)
    misses = journal(d).get(promotion.LATE_FENCE_MISSES_MARK)
    assert len(calls) == 3 and misses and misses["misses"] == 2, (died.outcome, died.detail, calls, misses)
    d.op_advance(5)
    again = d.op_run("failover", resuming=True, run_id=died.run_id)
    j = journal(d)
    monkeypatch.undo()
    blackout(False)
    _settle_and_judge(d)
    evidence = [again.outcome, again.detail[:400], misses, j, *_promotion_events(d), *map(str, d.violations)]
    assert again.outcome == "stopped" and "re-run with --force" in again.detail, evidence
    assert not j.get("fencePending") and j.get(promotion.LATE_FENCE_MISSES_MARK) == misses, evidence
    assert not d.violations, evidence
