"""break27: the rds-replica IaC failback's zero-lag proof (issues 10 and 13), attacked.

Invariants (docs/safety.md): *nothing acknowledged is lost* (the writer moves only at zero lag measured
after writes stopped) and *one writer*. The moto world of tests/automation/test_drain_proof.py: the
runbook's failover, then ``dr:failback replicate`` and ``drain`` as the dr stack applies them, the proof
(lambdas/failover/drain_proof.py) on a shifted clock, and the program's decisions
(components/failover.py ``decide`` and ``refuse_unproven_failback_promotion``, in components/program.py's
order) on the failback record the last update wrote.

Each finding is a strict xfail: it fails for the reason its ``reason`` states until the product is fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from components.failover import (
    FailbackInProgress,
    FailoverRefused,
    Latch,
    PhaseRecord,
    refuse_dr_update,
    refuse_unmoved_aurora_writer,
    refuse_unproven_failback_promotion,
)
from components.failover import drain_proof as drain_proof_of
from components.region_b_serving import (
    FunctionSeen,
    GroupSeen,
    refuse_promotion_after_region_b_served,
    refuse_promotion_while_region_b_serves,
)
from lambdas.failover import drain_proof
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.journal import DRAIN_PROOF_MARK
from lambdas.failover.names import phase_record_name
from lambdas.failover.region_b_quiet import Served, proof_drained_at, served_since
from tests.automation.test_break24 import _iac_drain, _iac_replica, _journal, _tier
from tests.automation.test_drain_proof import PARAMS, _drained, _lag
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import unreachable
from tests.lambdas.failover.harness import FAST, ShiftedClock, clients_for, run_book, shifted_runs
from tests.lambdas.failover.world import REGION_A, REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def _read_record(world: World) -> PhaseRecord | None:
    """The failback record as components/program.py ``read_phase_record`` reads it (SSM, region B)."""
    ssm = world.client("ssm", REGION_B)
    try:
        raw = ssm.get_parameter(Name=phase_record_name(world.context["latchParameterName"]))["Parameter"][
            "Value"
        ]
    except ssm.exceptions.ParameterNotFound:
        return None
    return PhaseRecord.parse(str(raw))


def _write_record(world: World, record: PhaseRecord) -> None:
    world.client("ssm", REGION_B).put_parameter(
        Name=phase_record_name(world.context["latchParameterName"]),
        Value=record.to_json(),
        Type="String",
        Overwrite=True,
    )


def _serve_region_b(world: World) -> None:
    """Region B takes writes again: its web tier at its active capacity, its functions unthrottled, its
    event sources on (what ``dr:failback replicate`` applies: components/failover.py ``_decide``; the
    runbook's scale_web_tier and enable_functions do the same)."""
    ctx = world.context
    cap = ctx["drCapacity"]
    world.client("autoscaling", REGION_B).update_auto_scaling_group(
        AutoScalingGroupName=ctx["drAsgName"],
        MinSize=cap["min"],
        MaxSize=cap["max"],
        DesiredCapacity=cap["desired"],
    )
    lam = world.client("lambda", REGION_B)
    for name in ctx["drFunctionNames"]:
        lam.delete_function_concurrency(FunctionName=name)
    for uuid in ctx["drEventSourceMappingIds"]:
        lam.update_event_source_mapping(UUID=uuid, Enabled=True)


def _dr_update(world: World, phase: str, *, record_written: bool = True) -> PhaseRecord:
    """``pulumi up -s dr`` with ``dr:active true`` and ``dr:failback <phase>``: the program's decision on
    the record the last update wrote (components/program.py: ``decide``, ``refuse_dr_update``,
    ``refuse_unmoved_aurora_writer``, ``refuse_unproven_failback_promotion``), then the
    phase's changes and the record (components/pilot_light_region.py ``_failback_record``, written after
    the phase's changes). ``record_written=False``: a resource failed after region B's changes were
    applied, so the record, which depends on them, keeps the phase before ("a failed resource stops new
    operations, not those under way": https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/)."""
    latch = Latch.parse(json.dumps(world.latch()))
    previous = _read_record(world)
    tier = _tier(world, latch, phase, previous)  # decide(): raises FailoverRefused when refused
    journal = _journal(world)
    refuse_dr_update(latch, journal, tier=tier)
    refuse_unmoved_aurora_writer(previous, tier, latch, journal, world.mode)
    refuse_unproven_failback_promotion(previous, tier, latch, journal, world.mode)
    if phase == "drain":
        _iac_drain(world)
    elif phase == "replicate":
        _serve_region_b(world)
    else:  # pragma: no cover - the tests below apply only these two
        raise AssertionError(phase)
    record = PhaseRecord(tier.failback_phase, tier.latch_since, drains=tier.drains)
    if record_written:
        _write_record(world, record)
    return _read_record(world) or record


def _region_b_web_tier(world: World) -> tuple[GroupSeen, ...]:
    """Region B's web tier as components/program.py ``read_region_b_web_tier`` reads it (the group's min,
    desired and max from ``DescribeAutoScalingGroups``, region B). The moto world's group carries no tags,
    so it is found by the name the runbook's outputs give it; the tag filter the program sends is checked
    against the group the program declares in tests/components/test_region_b_serving.py."""
    name = world.context["drAsgName"]
    groups = world.client("autoscaling", REGION_B).describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return tuple(
        GroupSeen(g["AutoScalingGroupName"], int(g["MinSize"]), int(g["DesiredCapacity"]), int(g["MaxSize"]))
        for g in groups["AutoScalingGroups"]
    )


def _region_b_functions(world: World) -> tuple[FunctionSeen, ...]:
    """Region B's functions' reserved concurrency as the program reads it (GetFunction's Concurrency; the
    provider's -1 when there is no reservation, which GetFunctionConcurrency answers with none)."""
    lam = world.client("lambda", REGION_B)
    seen = []
    for name in world.context["drFunctionNames"]:
        reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        seen.append(FunctionSeen(name, -1 if reserved is None else int(reserved)))
    return tuple(seen)


def _region_b_served_since(world: World, proof: Mapping[str, Any] | None) -> list[Served]:
    """What AWS recorded of region B's web tier launching and its functions being invoked since the proof's
    drain, as components/program.py ``read_region_b_served_since`` reads it (region B's Auto Scaling and
    CloudWatch)."""
    since = None if proof is None else proof_drained_at(proof)
    if since is None:
        return []
    return served_since(
        world.client("autoscaling", REGION_B),
        world.client("cloudwatch", REGION_B),
        [world.context["drAsgName"]],
        world.context["drFunctionNames"],
        since,
        datetime.now(UTC),
    )


def _promotion_refusal(world: World) -> str | None:
    """Why ``dr:failback switch-writer`` is refused before any resource (components/program.py), on the
    record and journal as they are now and region B's web tier as AWS has it; None when the update
    promotes region A's failback instance."""
    latch = Latch.parse(json.dumps(world.latch()))
    previous = _read_record(world)
    journal = _journal(world)
    try:
        tier = _tier(world, latch, "switch-writer", previous)
        refuse_dr_update(latch, journal, tier=tier)
        refuse_unmoved_aurora_writer(previous, tier, latch, journal, world.mode)
        refuse_unproven_failback_promotion(previous, tier, latch, journal, world.mode)
        refuse_promotion_while_region_b_serves(
            tier, latch, world.mode, _region_b_web_tier(world), _region_b_functions(world)
        )
        proof = drain_proof_of(journal)
        refuse_promotion_after_region_b_served(
            tier, latch, world.mode, proof, _region_b_served_since(world, proof)
        )
    except (FailoverRefused, FailbackInProgress) as exc:
        return str(exc)
    return None


def test_a_half_applied_step_back_then_a_re_drain_does_not_reuse_the_earlier_proof(
    make_world: Callable[..., World],
) -> None:
    """Nothing acknowledged is lost. Drain 1 is proven. The operator steps back (``dr:failback replicate``,
    allowed: region B's writer never left) and that update fails after region B's web tier, functions
    and event sources are back on but before the failback record (which depends on them) is written: the
    record still says ``drain`` (drains 1) while region B takes writes. ``latch switch-writer`` sees
    region B serving and says to re-drain with ``dr:failback drain``; the re-drain finds the record at
    ``drain`` and keeps drains 1. The proof of drain 1 was measured before region B's new writes, so the
    switch-writer update must stay refused until a proof measured after this drain."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    clients = clients_for(world, clock=ShiftedClock())
    ctx = RunbookContext.from_dict(world.context)
    drain_proof.prove_drain(ctx, clients, PARAMS)
    assert _journal(world)[DRAIN_PROOF_MARK]["drains"] == 1
    assert _promotion_refusal(world) is None, "drain 1 proven: the promotion may go"

    half = _dr_update(world, "replicate", record_written=False)
    assert (half.phase, half.drains) == ("drain", 1), half
    assert world.asg(REGION_B)[1] > 0, "region B serves again: it acknowledges writes region A never saw"
    with pytest.raises(StepFailed, match="region B is not drained"):
        drain_proof.prove_drain(ctx, clients, PARAMS)

    redrained = _dr_update(
        world, "drain"
    )  # README: re-drain with `pulumi up --refresh -s dr`, dr:failback drain
    assert world.asg(REGION_B)[1] == 0

    assert _promotion_refusal(world) is not None, (
        f"the switch-writer update promotes {replica} on the proof of drain 1 ({_journal(world)[DRAIN_PROOF_MARK]}) "
        f"although region B took writes after it; the record after the re-drain is {redrained}"
    )


def test_region_b_served_by_hand_after_the_proof_then_re_drained_needs_a_new_proof(
    make_world: Callable[..., World],
) -> None:
    """Nothing acknowledged is lost. After the proof, region B's web tier is given capacity outside the
    runbook and the program (a hand ``UpdateAutoScalingGroup``, as an operator might to check region B, or
    any tool that is not the runbook's scale_web_tier), and takes writes; then it is re-drained the
    README's way (``pulumi up --refresh -s dr`` with ``dr:failback drain``). ``latch switch-writer`` must
    measure zero lag again after this drain; it answers from the old proof instead, and the switch-writer
    update is allowed."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    clients = clients_for(world, clock=ShiftedClock())
    ctx = RunbookContext.from_dict(world.context)
    drain_proof.prove_drain(ctx, clients, PARAMS)

    _serve_region_b(world)  # out of band: neither the runbook nor the program
    assert world.asg(REGION_B)[1] > 0
    _dr_update(world, "drain")
    assert _promotion_refusal(world) is not None, (
        "the switch-writer update is allowed on a proof taken before region B took writes again"
    )

    said = drain_proof.prove_drain(ctx, clients, PARAMS)
    # A new measurement after this drain (not the old proof's answer), for this drain only.
    assert "already proven" not in said and "measured after the drain" in said, said
    assert _journal(world)[DRAIN_PROOF_MARK]["drains"] == 2 and _promotion_refusal(world) is None


class _StallThenFailover:
    """A session hook on the proof's clients: at its second read of the failback record (the last look
    under the runbook lock, after it saw region B drained), the proof process stalls for ``stall``
    seconds while region A fails again and the runbook's failover runs on AWS's clock (``run_book``, its
    clock ``stall`` seconds past the proof's). The stall is one slow region-B call: with the runbook's own
    client settings one may take 386 s (lambdas/failover/budget.py ``call_seconds(DR_SETTINGS)``); an
    operator's clock more than 120 s behind AWS's has the same effect with no stall at all (expiry is
    judged on the caller's clock, lock.py). Its lock has a 120 s lease (drain_proof.PROOF_LOCK_SECONDS)
    that nothing refreshes; a lock past its expiry may be taken over
    (lambdas/failover/lock.py; DynamoDB's conditional PutItem:
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html)."""

    def __init__(self, world: World, proof_clock: ShiftedClock, stall: float) -> None:
        self.world, self.proof_clock, self.stall = world, proof_clock, stall
        self.record = phase_record_name(world.context["latchParameterName"])
        self.fired: list[str] = []

    def install(self, session: Any) -> None:
        session.events.register("before-parameter-build.ssm.GetParameter", self)

    def _proof_holds_lock(self) -> bool:
        item = (
            self.world.client("dynamodb", REGION_B)
            .get_item(TableName=self.world.context["lockTableName"], Key={"pk": {"S": "runbook"}})
            .get("Item")
        )
        return bool(item) and item["runId"]["S"].startswith("prove-drain-")

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self.fired or params.get("Name") != self.record or not self._proof_holds_lock():
            return
        failover_clock = shifted_runs(self.world)
        failover_clock.sleep((self.proof_clock.now() - datetime.now(UTC)).total_seconds() + self.stall)
        report = run_book(self.world, "failover", unreachable(REGION_A), params=FAST)
        self.fired.append(report.format_table())


def test_a_proof_whose_lock_expired_writes_nothing(make_world: Callable[..., World]) -> None:
    """One writer, single flight. The proof's last look and its write are meant to be atomic with respect to
    a failover's scale_web_tier (drain_proof.py step 4: "a failover's scale_web_tier cannot run between this
    look and the write"). When the proof stalls past its lease between the two, a failover takes the lock,
    withdraws the (not yet written) proof, scales region B up and finishes; the proof then writes its mark.
    It must instead see that it no longer holds the lock and write nothing."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    proof_clock = ShiftedClock()
    stall = _StallThenFailover(world, proof_clock, stall=drain_proof.PROOF_LOCK_SECONDS + 30)
    clients = clients_for(world, stall, clock=proof_clock)  # type: ignore[arg-type]
    ctx = RunbookContext.from_dict(world.context)

    try:
        said = drain_proof.prove_drain(ctx, clients, PARAMS)
    except StepFailed as exc:
        said = f"refused: {exc.reason}"

    assert stall.fired, "the failover ran inside the proof's critical section"
    assert world.asg(REGION_B)[1] > 0, f"the failover served region B: {stall.fired[0]}"
    assert DRAIN_PROOF_MARK not in _journal(world) and _promotion_refusal(world) is not None, (
        f"the proof was written after the failover gave region B its writes back ({said!r}); "
        f"journal {_journal(world).get(DRAIN_PROOF_MARK)}: the switch-writer update would promote "
        f"{replica} while region B serves"
    )


def test_held_every_call_of_the_proof_is_allowed_by_the_break_glass_policy(
    make_world: Callable[..., World],
) -> None:
    """Held (tried): ``python -m automation latch switch-writer`` runs under the break-glass policy, which
    is the runbook role's statements (automation/iam.py ``break_glass_policy``). Every call the proof
    makes (the failback record, region B's group, functions and mappings, region A's failback instance,
    the lag datapoints, the marker commit, the lock and the journal) is allowed on its target, as
    tests/lambdas/failover/test_permissions.py checks for the runbooks; else it would fail only in AWS,
    with AccessDenied, in the middle of a failback."""
    from tests.lambdas.failover.test_permissions import (
        CallRecorder,
        allowing,
        cluster_keys,
        table_keys,
        topic_keys,
        world_policy,
    )

    world = make_world("rds-replica", encrypted=True)
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    replica = _iac_replica(world)
    _iac_drain(world)
    _write_record(world, PhaseRecord("drain", since, drains=1))
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    recorder = CallRecorder({**topic_keys(world), **table_keys(world), **cluster_keys(world)})
    clients = clients_for(world, recorder, clock=ShiftedClock())  # type: ignore[arg-type]

    drain_proof.prove_drain(RunbookContext.from_dict(world.context), clients, PARAMS)

    assert recorder.unknown == set()
    actions = {c.action for c in recorder.calls}
    assert {"ssm:GetParameter", "ssm:PutParameter", "dynamodb:PutItem", "cloudwatch:GetMetricData"} <= actions
    assert {"rds:DescribeDBInstances", "lambda:GetEventSourceMapping"} <= actions, actions
    statements = world_policy(world)
    denied = sorted(
        f"{c.action} on {c.target} in {c.region}" for c in recorder.calls if not allowing(statements, c)
    )
    assert denied == []


def test_the_proof_s_lock_lease_outlasts_its_critical_section() -> None:
    """Single flight. lambdas/failover/budget.py: the lock's expiry "must outlast the longest stretch a live
    run may go without refreshing it, so a slow but live run never loses its lock", and one AWS call may
    take ``attempts x (connect + read timeout)`` plus botocore's back-offs (``call_seconds``). The proof
    holds the lock, unrefreshed, across at least its region B reads (the group, each function's
    concurrency, each mapping, the failback record, the journal) and the journal's PutParameter, every one
    a region-B call with DR_SETTINGS (``Clients.for_context``). Its lease must outlast at least one such
    call; B27-3's test shows what a failover does in the gap."""
    from lambdas.failover.budget import call_seconds
    from lambdas.failover.clients import DR_SETTINGS

    assert call_seconds(DR_SETTINGS) <= drain_proof.PROOF_LOCK_SECONDS, (
        drain_proof.PROOF_LOCK_SECONDS,
        call_seconds(DR_SETTINGS),
    )


def test_the_switch_writer_update_is_refused_while_region_b_serves_in_aws(
    make_world: Callable[..., World],
) -> None:
    """One writer. The proof is written; then region B's web tier is scaled up outside the runbook and the
    program, and takes writes. The switch-writer update plans against its state, which says 0/0/0 and is
    not refreshed ("pulumi up" diffs against the last recorded state unless --refresh:
    https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), so it neither scales region B down nor sees
    it; the promotion it makes then leaves two writers, region B's acknowledging writes region A never
    gets. The program (components/program.py) reads the latch, the journal and the failback record live;
    it must not promote on a journal entry while region B serves (fixed: it reads region B's web tier live,
    components/program.py ``read_region_b_web_tier``, components/region_b_serving.py)."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    clients = clients_for(world, clock=ShiftedClock())
    ctx = RunbookContext.from_dict(world.context)
    drain_proof.prove_drain(ctx, clients, PARAMS)

    _serve_region_b(world)  # out of band: neither the runbook nor the program

    assert world.asg(REGION_B)[1] > 0
    refused = _promotion_refusal(world)
    assert refused is not None, (
        f"dr:failback switch-writer promotes {replica} while region B's web tier is {world.asg(REGION_B)} in AWS"
    )
    # One line that names what serves and the remedy.
    assert "\n" not in refused and world.context["drAsgName"] in refused, refused
    assert "pulumi up --refresh -s dr" in refused and "latch switch-writer" in refused, refused

    _dr_update(world, "drain")  # the remedy: re-drain, then a new proof, then switch-writer
    drain_proof.prove_drain(ctx, clients, PARAMS)
    assert _promotion_refusal(world) is None, "re-drained and proven again, the promotion may go"


def test_region_b_s_functions_unthrottled_by_hand_after_the_proof_refuse_the_switch_writer_update(
    make_world: Callable[..., World],
) -> None:
    """One writer. As above with only region B's functions given their concurrency back by hand
    (DeleteFunctionConcurrency: no reservation, so they run: https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html),
    its web tier left at 0/0/0: the payments function takes writes in region B all the same."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    clients = clients_for(world, clock=ShiftedClock())
    drain_proof.prove_drain(RunbookContext.from_dict(world.context), clients, PARAMS)
    assert _promotion_refusal(world) is None

    [name, *_] = world.context["drFunctionNames"]
    world.client("lambda", REGION_B).delete_function_concurrency(FunctionName=name)

    assert world.asg(REGION_B)[1] == 0
    refused = _promotion_refusal(world)
    assert refused is not None and f"function {name} at reserved concurrency -1" in refused, refused


def test_a_switch_writer_half_applied_before_the_upgrade_can_be_re_run(
    make_world: Callable[..., World],
) -> None:
    """A documented failback the proof must not block (brief: a deployment upgraded mid-failback; re-running
    switch-writer after a half-applied update). Before fix27 the switch-writer update needed no proof: it
    wrote the record (``switch-writer``, no ``drains``) ahead of the promotion and promoted region A's
    failback instance (PromoteReadReplica: standalone from then on,
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html), then failed on a
    later resource. The upgraded program is run again with the same ``dr:failback switch-writer``, as a
    half-applied update is (https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/: a failed resource
    stops new operations, not those under way). Its refusal says to run ``latch switch-writer`` first; that
    must then let the update through (the writer already moved: there is no promotion left to lose writes
    by), not refuse for good."""
    world, since, replica = _drained(make_world)
    _write_record(world, PhaseRecord("switch-writer", since))  # the old program's record: no drains
    world.client("rds", REGION_A).promote_read_replica(DBInstanceIdentifier=replica)
    assert not (world.db(REGION_A, replica) or {}).get("ReadReplicaSourceDBInstanceIdentifier")
    refused_before = _promotion_refusal(world)
    assert refused_before is not None and "latch switch-writer" in refused_before

    clients = clients_for(world, clock=ShiftedClock())
    try:
        said = drain_proof.prove_drain(RunbookContext.from_dict(world.context), clients, PARAMS)
    except StepFailed as exc:
        said = f"refused ({exc.code}): {exc.reason}"

    assert _promotion_refusal(world) is None, f"latch switch-writer: {said}; the update stays refused"
