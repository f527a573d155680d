"""break24: findings against the runbook split and the refusals int23/fix23 added (issues 10 and 13).

Each test is the failing evidence of one finding, marked xfail(strict=True) until it is fixed. They run
the product's unmodified runbook (``lambdas/failover``) against the moto world of the runbook tests
(``tests/lambdas/failover``), and the program's pure refusals (``components/failover.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.config import DrFlags
from components.failover import (
    Capacity,
    FailoverRefused,
    Latch,
    PhaseRecord,
    decide,
    refuse_unmoved_aurora_writer,
)
from lambdas.failover.names import phase_record_name
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import deny
from tests.lambdas.failover.harness import FAST, run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World

# The runbook tests' fixtures (moto with its gaps filled, the health server, the world builder).
aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world

PRIMARY = Capacity(2, 2, 4)
"""Region A's web tier capacity (min, desired, max) as the program's config would give it."""


def _record(world: World, phase: str, since: str) -> None:
    """The dr stack's failback record, as its ``dr:failback <phase>`` update writes it
    (components/pilot_light_region.py ``<latch>-failback-phase``; components/failover.py ``PhaseRecord``)."""
    world.client("ssm", REGION_B).put_parameter(
        Name=phase_record_name(world.context["latchParameterName"]),
        Value=json.dumps({"phase": phase, "latchSince": since}),
        Type="String",
        Overwrite=True,
    )


def _journal(world: World) -> dict[str, Any]:
    name = f"{world.context['latchParameterName']}-journal"
    try:
        value = world.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"]
    except world.client("ssm", REGION_B).exceptions.ParameterNotFound:
        return {}
    return json.loads(value)


def _iac_drain(world: World) -> None:
    """What ``pulumi up -s dr`` with ``dr:failback drain`` does to region B (components/failover.py
    ``_decide``: capacity 0, reserved concurrency 0, event sources disabled; compute.py sets
    ``min_size``/``max_size`` only, and "If you specify a new value for MaxSize without specifying a value
    for DesiredCapacity, and the new MaxSize is smaller than the current size of the group, there is an
    implied change to DesiredCapacity": https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html)."""
    ctx = world.context
    world.client("autoscaling", REGION_B).update_auto_scaling_group(
        AutoScalingGroupName=ctx["drAsgName"], MinSize=0, MaxSize=0, DesiredCapacity=0
    )
    lam = world.client("lambda", REGION_B)
    for name in ctx["drFunctionNames"]:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for uuid in ctx["drEventSourceMappingIds"]:
        lam.update_event_source_mapping(UUID=uuid, Enabled=False)


def _iac_replica(world: World) -> str:
    """``dr:failback replicate``: region A's failback instance, a cross-region replica of region B's
    promoted instance (``dr-data-db-failback``, ``<primary>-failback``;
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html)."""
    primary = world.context["primaryDbInstanceId"]
    dr = world.db(REGION_B, world.context["drDbInstanceId"])
    assert dr and not dr.get("ReadReplicaSourceDBInstanceIdentifier"), dr
    world.client("rds", REGION_A).create_db_instance_read_replica(
        DBInstanceIdentifier=f"{primary}-failback",
        SourceDBInstanceIdentifier=dr["DBInstanceArn"],
        DBInstanceClass="db.t3.micro",
    )
    return f"{primary}-failback"


def _region_b(world: World) -> tuple[Any, ...]:
    return (world.asg(REGION_B), world.concurrency(REGION_B), world.mappings(REGION_B))


def _tier(world: World, latch: Latch, phase: str | None, previous: PhaseRecord | None) -> Any:
    """The dr stack's decision for ``dr:active true`` with ``dr:failback <phase>`` (components/program.py)."""
    return decide(
        DrFlags(active=True, failback=phase),
        PRIMARY,
        database_mode=world.mode,
        latch=latch,
        previous=previous,
    )


def _dr_update_refusal(world: World, phase: str | None, previous: PhaseRecord | None) -> str | None:
    """Why ``pulumi up -s dr`` with ``dr:active true`` and ``dr:failback <phase>`` is refused before any
    resource, in components/program.py's order (decide, refuse_dr_update, refuse_unmoved_aurora_writer);
    None when it is not."""
    from components.failover import FailbackInProgress, refuse_dr_update

    latch = Latch.parse(json.dumps(world.latch()))
    journal = _journal(world)
    try:
        tier = _tier(world, latch, phase, previous)
        refuse_dr_update(latch, journal, tier=tier)
        refuse_unmoved_aurora_writer(previous, tier, latch, journal, world.mode)
    except (FailoverRefused, FailbackInProgress) as exc:
        return str(exc)
    return None


def test_br24_1_a_stopped_runbook_failback_then_the_iac_failback_can_still_be_finished(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, every run converges (docs/safety.md). A runbook failback stops after it re-created
    replication (here AWS refuses PromoteReadReplica at ``switch_writer``; a lag that does not come to
    zero in time stops it the same way): ``restore_dr`` gives region B back, and the failback's journal
    entry (old primary renamed, replica under ``<primary>`` created) stays (BL21-1, by design). The
    operator turns to the IaC failback (README "Failing back"): ``dr:failback replicate`` is accepted
    (``refuse_dr_update`` ignores that entry while the update lets region B serve: ``failback_draining``),
    and creates ``<primary>-failback``, a second replica of region B in region A, and records the phase.
    From then on:

    * ``dr:failback drain`` is refused by ``refuse_dr_update`` (``failback_in_progress``: "the runbook's
      rds-replica failback is replacing region A's primary"), whose remedy is to resume the runbook's
      failback;
    * the runbook's failback, resumed, is refused at ``confirm_primary_healthy`` (``IacFailbackUnderWay``,
      break23 BR23-6's fix), whose remedy is to finish the IaC failback one phase at a time;
    * ``dr:active true`` without ``dr:failback`` is refused (``refuse_failback_instance_drop``), and
      ``dr:active false`` under the active latch by ``decide``.

    Neither failback can finish, and no remedy named gets out: region A never gets the writer back by
    any documented command. BR23-6 was closed for one order (IaC first, runbook second); the other order
    (runbook first, stopped, then IaC) is not refused at ``replicate`` and ends here."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]

    stopped = run_book(world, "failback", deny("rds", "PromoteReadReplica", REGION_A), params=FAST)
    assert stopped.stopped_at == "switch_writer", stopped.format_table()
    assert world.asg(REGION_B)[1] > 0, "restore_dr gave region B back"
    entry = _journal(world).get("failback")
    assert entry, _journal(world)

    # `pulumi up -s dr` with dr:failback replicate: accepted, so it runs (creates region A's IaC replica).
    refused_replicate = _dr_update_refusal(world, "replicate", None)
    assert refused_replicate is None or "replicate" not in refused_replicate
    if refused_replicate is not None:
        return  # fixed at the entry: the IaC failback is refused before it begins (nothing to finish)
    _iac_replica(world)
    _record(world, "replicate", since)
    record = PhaseRecord("replicate", since)

    drain = _dr_update_refusal(world, "drain", record)
    resumed = run_book(world, "failback", params=FAST)
    runbook = None if resumed.outcome == "done" else resumed.format_table()
    assert drain is None or runbook is None, (
        f"dr:failback drain refused: {drain}\n---\nthe runbook's failback resumed: {runbook}"
    )


def test_br24_1_the_runbook_owns_a_failback_it_began_and_its_documented_ways_out_work(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, every run converges (docs/safety.md). The fix of BR24-1: once the runbook's failback has
    begun (its journal entry), the IaC failback is refused at its start, before anything changes, naming the
    owner, how to finish it and how to abandon it (README "Abandoning a failback"); and each way out works:
    holding it (a routine ``pulumi up -s dr``, no ``dr:failback``, is not refused) and finishing it (the
    runbook's failback resumed moves the writer to region A)."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    stopped = run_book(world, "failback", deny("rds", "PromoteReadReplica", REGION_A), params=FAST)
    assert stopped.stopped_at == "switch_writer", stopped.format_table()
    primary = world.context["primaryDbInstanceId"]

    refused = _dr_update_refusal(world, "replicate", None)
    assert refused is not None, "dr:failback replicate accepted beside the runbook's failback"
    for says in ("runbook's failback owns", "python -m automation failback", "Abandoning a failback"):
        assert says in refused, f"the refusal does not say {says!r}: {refused}"
    assert world.db(REGION_A, f"{primary}-failback") is None, "nothing created in region A"

    assert _dr_update_refusal(world, None, None) is None, "holding it: a routine dr update is refused"
    resumed = run_book(world, "failback", params=FAST)
    assert resumed.outcome == "done", resumed.format_table()
    writer = world.db(REGION_A, primary)
    assert writer and not writer.get("ReadReplicaSourceDBInstanceIdentifier"), writer


def test_br24_2_aurora_switch_writer_is_not_recorded_after_a_switchover_aws_refused(
    make_world: Callable[..., World],
) -> None:
    """aurora-global. break23 BR23-5's fix (components/failover.py ``refuse_unmoved_aurora_writer``) refuses
    ``dr:failback switch-writer`` "until something moved the writer", and takes the run journal's
    writer-move mark for that proof. The mark is written ahead of the request (lambdas/failover/failback.py
    ``_move_writer_to_a``: ``_writer_move_requested`` before ``switchover_global_cluster``), so it says a
    move was *asked for*, not that one happened. SwitchoverGlobalCluster can be refused
    (``InvalidGlobalClusterStateFault``, ``InvalidDBClusterStateFault``:
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverGlobalCluster.html; "All of the
    secondary clusters and the primary cluster must be in the available state"), and a switchover started
    may be cancelled ("cancelling ... returning to their previous states":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html). ``python -m
    automation latch switch-writer`` runs the step alone (automation/latch_cli.py ``switch_writer``): no
    lock, no ``on_stop``, so nothing withdraws the mark when AWS refuses. The operator's next documented
    command, ``dr:failback switch-writer``, is then accepted and records that region A holds the writer
    while region B's cluster is the global writer (DescribeGlobalClusters ``IsWriter``): BR23-5's state,
    reached through a refused call instead of a skipped one. ``refuse_step_back`` then refuses
    ``dr:active true`` for a false reason, and the runbook reads the record as "the writer moved"
    (``_iac_failback_phase``)."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.exceptions import StepFailed
    from tests.lambdas.failover.faults import Fault
    from tests.lambdas.failover.harness import clients_for

    world = make_world("aurora-global")
    assert run_book(world, "failover").outcome == "done"
    assert world.dr_is_writer()
    since = world.latch()["since"]
    _record(world, "replicate", since)
    _iac_drain(world)
    _record(world, "drain", since)

    refused = Fault("rds", "SwitchoverGlobalCluster", REGION_B, code="InvalidGlobalClusterStateFault")
    ctx = RunbookContext.from_dict(world.context)
    try:
        _, lines = latch_cli.switch_writer(ctx, clients_for(world, refused), reason="IaC failback")
        outcome = "; ".join(lines)
    except StepFailed as exc:
        outcome = f"StepFailed {exc.code}: {exc.reason}"
    assert refused.injected == 1, outcome
    assert world.dr_is_writer(), "AWS refused the switchover: region B's cluster is still the writer"

    refusal = _dr_update_refusal(world, "switch-writer", PhaseRecord("drain", since))
    assert refusal is not None, (
        f"latch switch-writer: {outcome}; the journal: {_journal(world)}; region B's cluster is the global "
        f"writer ({world.global_writer()}), yet dr:failback switch-writer was accepted and would be recorded"
    )


def _iac_switch_writer(world: World) -> None:
    """``dr:failback switch-writer`` (rds-replica): region A's failback instance promoted
    (PromoteReadReplica: "can't be made a read replica again",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html); then ``pulumi up -s
    primary`` points region A's outputs (the runbook's context) at it (README "Failing back")."""
    replica = _iac_replica(world)
    world.client("rds", REGION_A).promote_read_replica(DBInstanceIdentifier=replica)
    assert not world.db(REGION_A, replica).get("ReadReplicaSourceDBInstanceIdentifier")
    world.context["primaryDbInstanceId"] = replica


@pytest.mark.parametrize("latch", ["standby", "delete", "garble"])
def test_br24_3_after_the_iac_switch_writer_a_lost_latch_does_not_light_region_b_s_frozen_copy(
    make_world: Callable[..., World], latch: str
) -> None:
    """rds-replica. Protected again, or refuse; and "an absent, garbled or unexpected latch fails safe"
    (docs/safety.md, the latch set to standby by hand, deleted or garbled are the cases of seeds 20 and
    48). The IaC failback's ``switch-writer`` promotes region A's failback instance; the latch stays
    active until ``latch release``, so region B's instance is a standalone copy frozen at the switch.
    fix23's guard (fencing.py ``_refuse_after_iac_writer_move``) reads the dr stack's record only under
    an *active* latch. With the latch lost (standby by hand, deleted, garbled) ``_refuse_unprotected``
    goes on to the journal: ``primaryStoppedAt`` (the failover's fence stamp, which the IaC failback never
    clears: only ``latch release`` and the runbook's failback do) says "region B's standalone instance is
    the writer (the latch was lost)" and returns. The failover then takes the frozen copy for the writer
    (``promote_database``: already standalone), throws the switch and serves it: every write region A's
    new writer took since the switch-writer is gone from what Route 53 answers (no_loss beyond an
    unplanned failover's unreplicated tail; the program itself fails safe on the record: under a latch
    that is not active the record binds, components/failover.py ``refuse_step_back``)."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    _record(world, "replicate", since)
    _record(world, "drain", since)
    _iac_switch_writer(world)
    _record(world, "switch-writer", since)
    assert world.dr_is_writer(), "region B's instance: standalone (frozen at the switch)"

    ssm = world.client("ssm", REGION_B)
    name = world.context["latchParameterName"]
    if latch == "delete":
        ssm.delete_parameter(Name=name)
    else:
        value = (
            json.dumps({"state": "standby", "since": since, "reason": "set by hand"})
            if latch == "standby"
            else "active??"
        )
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    report = run_book(world, "failover")  # region A dark: its health endpoint answers 503; forced

    served = world.dr_is_writer() and world.asg(REGION_B)[1] > 0 and world.switch_values()[-1] == 1.0
    assert report.stopped_at == "confirm_primary_down", (
        f"latch {latch}: the failover {report.outcome}, region B serving its frozen copy: {served}\n"
        f"{report.format_table()}"
    )


@pytest.mark.parametrize(
    ("runbook", "phase", "refused_at"),
    [("failover", "switch-writer", "confirm_primary_down"), ("failback", "drain", "confirm_primary_healthy")],
)
def test_br24_4_the_dry_run_says_the_run_would_be_refused(
    make_world: Callable[..., World], runbook: str, phase: str, refused_at: str
) -> None:
    """``python -m automation failover|failback --dry-run`` prints "what each step would do, given where
    the system stands now" (automation/runbook_cli.py, lambdas/failover/dryrun.py), the operator's one
    read-only look before a break-glass run. fix23's refusals are read from the dr stack's failback record
    (fencing.py ``_refuse_after_iac_writer_move``, failback.py ``_refuse_during_iac_failback``), which the
    dry run never reads: its first line says the run would go on (or is forced past) and the rest plan
    renames, replicas, promotions and the switch, while the run itself stops at its first step having
    changed nothing. The plan must say the run would be refused, and why (docs/safety.md's status and
    dry-run telling the truth; README "Failing back"). (The failback's first line says "would stop" here,
    but for another reason, and a wrong one: region A's endpoint answers 503 because the failover fenced
    its web tier, and the step itself goes on with any HTTP answer: ``confirm_primary_healthy``.)"""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.observe import observe
    from tests.lambdas.failover.harness import clients_for

    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    _record(world, "replicate", since)
    _iac_replica(world)
    _iac_drain(world)
    _record(world, "drain", since)
    if phase == "switch-writer":
        world.client("rds", REGION_A).promote_read_replica(
            DBInstanceIdentifier=f"{world.context['primaryDbInstanceId']}-failback"
        )
        world.context["primaryDbInstanceId"] = f"{world.context['primaryDbInstanceId']}-failback"
        _record(world, "switch-writer", since)

    ctx = RunbookContext.from_dict(world.context)
    params = {"force": True, "reason": "dry run"}
    plan = dict(dryrun.plan(runbook, ctx, observe(ctx, clients_for(world)), params))
    report = run_book(world, runbook, params={**FAST, **params})
    assert report.stopped_at == refused_at, report.format_table()  # the run is refused, nothing changed
    said = plan[refused_at]
    record = phase_record_name(world.context["latchParameterName"])
    # The refusal's reason names the dr stack's record; the plan's line for that step must too.
    assert "dr stack" in said or record in said, (
        f"dry run of the {runbook}: {refused_at}: {said!r}; the run: {report.reason}\n"
        + "\n".join(f"  {k}: {v}" for k, v in plan.items())
    )


def test_br24_5_a_failover_refused_after_the_iac_switch_writer_does_not_say_resuming_completes_it(
    make_world: Callable[..., World],
) -> None:
    """rds-replica. The refusal (fencing.py ``_refuse_after_iac_writer_move``) says region A holds the writer
    and names the way out (finish the failback, re-seed, then fail over). The failover's ``on_stop``
    (``roll_back_fence``) then runs, asks ``_writer_moving`` (region B's instance not a replica: "the
    writer"), and appends to the same reason "the writer moved or is moving to region B: nothing rolled
    back; the latch keeps traffic on region B and resuming the failover completes it". Resuming it is
    refused again, every time, by the same check: the run's report names a way out that is none and
    contradicts its own first half (docs/safety.md: a refusal names its reason; a stopped run says what
    finishes it)."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    _record(world, "replicate", since)
    _record(world, "drain", since)
    _iac_switch_writer(world)
    _record(world, "switch-writer", since)

    report = run_book(world, "failover")
    again = run_book(world, "failover")

    assert report.stopped_at == again.stopped_at == "confirm_primary_down", again.format_table()
    assert "resuming the failover completes it" not in str(report.reason), report.reason


def test_br24_6_latch_release_after_switch_writer_with_the_outputs_of_a_later_dr_update(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, every run converges (docs/safety.md). README "Failing back": ``switch-writer``
    (``pulumi up -s dr``), then ``pulumi up -s primary`` (region A's outputs, ``dbInstanceId``, follow the
    promoted ``<primary>-failback``), then ``python -m automation latch release --outputs runbook.json``,
    where ``runbook.json`` is ``pulumi stack output runbook -s dr`` "after every pulumi up -s dr" (README,
    break-glass row; the preflight refuses a stale file). The dr stack's runbook output takes
    ``primaryDbInstanceId`` from the primary stack's outputs (components/dr_data.py), so any ``pulumi up
    -s dr`` after the primary update (``dr:failback switch-writer`` applied again, which the phase checks
    allow; ``automation cloud failback --phase switch-writer`` re-run: it ups dr, then primary) hands the
    runbook ``primaryDbInstanceId = <primary>-failback``. ``observe._rds_members`` then lists region A's
    writer under that name but no failback instance (``current_failback_id`` of ``<primary>-failback`` is
    itself), and ``_rds_writer`` reads region B's standalone copy as the writer: ``latch release`` refuses
    ("the writer is region B"), ``route-back`` and ``complete`` are refused while the latch is active, and
    ``status`` tells the operator region B holds the writer while region A does."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext
    from tests.lambdas.failover.harness import clients_for

    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    _record(world, "replicate", since)
    _record(world, "drain", since)
    _iac_switch_writer(world)  # the outputs (runbook.json) now name <primary>-failback
    _record(world, "switch-writer", since)

    ctx = RunbookContext.from_dict(world.context)
    done, lines = latch_cli.release(ctx, clients_for(world), reason="before route-back")

    assert done, "; ".join(lines)


def test_br24_6_control_latch_release_with_the_outputs_of_the_switch_writer_update(
    make_world: Callable[..., World],
) -> None:
    """Control for BR24-6: with the outputs of the ``switch-writer`` update itself (made before ``pulumi up
    -s primary``: ``primaryDbInstanceId`` still ``<primary>``), the same world releases."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext
    from tests.lambdas.failover.harness import clients_for

    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    primary = world.context["primaryDbInstanceId"]
    _iac_switch_writer(world)
    world.context["primaryDbInstanceId"] = primary  # runbook.json from before the primary update
    _record(world, "switch-writer", since)

    ctx = RunbookContext.from_dict(world.context)
    _, lines = latch_cli.release(ctx, clients_for(world), reason="before route-back")

    assert not any("the writer is region B" in line for line in lines), lines


@pytest.mark.parametrize("after", ["deploy", "a completed IaC failback"])
def test_br24_7_a_failback_phase_with_no_failover_is_refused_before_any_resource(after: str) -> None:
    """rds-replica; one writer, protected again (docs/safety.md). The failback phases run under the
    failover's latch (README "Failing back": the latch stays active until ``latch release``, after
    ``switch-writer``); ``dr:active true`` *without* a phase under a standby latch is refused ("move traffic
    first", components/failover.py ``_decide``), but with ``dr:failback replicate`` nothing refuses it:
    ``refuse_phase_skip`` lets ``replicate`` through (no record, or a record bound by the standby latch
    that the routine update after ``complete`` left without a phase). A slip: ``automation cloud failback
    --phase all`` run again after it finished, or ``dr:failback replicate`` set with no failover. The update
    removes ``replicateSourceDb`` from region B's replica, which promotes it ("Removing the
    replicate_source_db attribute from an existing RDS Replicate database ... will promote the database to
    a fully standalone database": https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/;
    irreversibly: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html),
    gives region B its web tier, function concurrency and event source back, and creates region A's
    "failback instance" as a replica of that frozen copy, while Route 53 (standby latch) keeps sending
    requests to region A's writer: region B's event source feeds its functions, which write to region B's
    standalone instance, so both regions take writes, and region B no longer replicates region A. The
    harness reports the writer moving to region B while region A serves (traffic-follows-writer)."""
    from automation.lifecycle import Lifecycle, Up
    from automation.lifecycle_scenarios import deploy, iac_failback, runbook_failover

    lc = Lifecycle()
    before = deploy("rds-replica")
    if after != "deploy":
        before += [*runbook_failover(), *iac_failback("rds-replica")]
    settled = lc.run(before)[-1].observation
    assert settled.latch == "standby" and settled.writer_region == "A", settled.line()

    slip = lc.step(
        Up("dr", "dr:failback replicate with no failover", {"dr:active": True, "dr:failback": "replicate"})
    )

    promoted = [
        p.name
        for p in slip.plans
        if p.type == "aws:rds/instance:Instance" and p.changed.get("replicateSourceDb", (None, 0))[1] is None
    ]
    assert slip.refused is not None, (
        f"after {after}, latch standby: applied; region B's replica promoted: {promoted}; "
        f"{slip.observation.line()}; {[str(v) for v in slip.violations]}"
    )


@pytest.mark.parametrize(("first", "longest"), [("runbook", False), ("declared", False), ("runbook", True)])
def test_br24_8_region_a_s_writer_is_in_a_stack_after_an_iac_then_a_runbook_failback(
    first: str, longest: bool
) -> None:
    """rds-replica, two failovers with the runbook and IaC mixed (issue 13: region A's writer comes back
    under a stack with no hand edits; the harness's own ``writer-in-state``). After an IaC failback region
    A's writer is ``<primary>-failback`` and the runbook's context follows it (components/dr_data.py:
    ``primaryDbInstanceId`` from the primary stack's outputs). The next failover's *runbook* failback
    renames that instance (``<lineage>-pre-failback-<stamp>``) and creates its replacement under
    ``<primary>-failback``, tagged ``pilotlight:failback-stamp``. The primary stack adopts a runbook
    replacement only under ``<primary>`` or a retained name of ``<primary>``
    (components/primary_data.py ``_live_runbook_failbacks``: ``i == base or retained_stamp(base, i)``), and
    its IaC lineage entry for ``-failback`` follows the renamed instance (the provider's id is the
    resource id, which survives a rename). So region A's writer is in no stack's state after the
    routine updates: no ``protect``, no stack's backup plan selection, and the next update cannot see it
    change. With the runbook first and IaC second, or runbook twice, the scenario ends clean. With the
    longest names the config accepts (tests/components/test_lifecycle.py ``LONG``) the retained name of
    ``<primary>-failback`` is cut with a hash (lambdas/failover/names.py ``retained_head``)."""
    from automation.lifecycle import Lifecycle, final_violations
    from automation.lifecycle_scenarios import (
        declared_failover,
        deploy,
        iac_failback,
        runbook_failback,
        runbook_failover,
    )
    from tests.components.test_lifecycle import LONG

    failover = runbook_failover() if first == "runbook" else declared_failover("rds-replica")
    lc = Lifecycle({"primary": LONG, "dr": LONG} if longest else None)
    results = lc.run(
        [
            *deploy("rds-replica"),
            *failover,
            *iac_failback("rds-replica"),
            *runbook_failover(),
            *runbook_failback(),
        ]
    )
    during = [str(v) for r in results for v in r.violations]
    assert not during, during
    final = [str(v) for v in final_violations(lc)]
    assert not final, final
    writer = lc.outputs["primary"]["dbInstanceId"]
    assert writer.endswith("-failback") and writer == lc.world.writer, (writer, lc.world.writer)
    if longest:
        retained = [i for i in lc.world.dbs if "pre-failback" in i]
        assert retained and all(writer not in i for i in retained), ("the retained name is cut", retained)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_br24_8_every_retained_name_of_the_writer_lineage_is_read_back_with_the_longest_names(
    index: int,
) -> None:
    """BR24-8's adoption reads each lineage member's rename-to-replace chain from the retained names the
    runbook gives it (lambdas/failover/names.py ``retained_instance_id``), which are cut with a hash once
    the member passes 37 characters: with the longest region-A identifier the program makes (63 minus the
    failback reserve: components/naming.py), every member's retained name must be traced back to its
    lineage index, and no other deployment's."""
    from datetime import UTC, datetime

    from components.data import database_identifier
    from components.primary_data import _retained_lineage_index
    from lambdas.failover.names import RDS_IDENTIFIER_MAX, retained_instance_id, writer_lineage_id

    physical = database_identifier("a" * 40 + "-production", "ap-southeast-2", aurora=False)
    assert len(physical) == RDS_IDENTIFIER_MAX - len("-failback"), physical
    member = writer_lineage_id(physical, index)
    retained = retained_instance_id(member, datetime(2026, 12, 1, 22, 7, tzinfo=UTC))
    assert len(retained) <= RDS_IDENTIFIER_MAX and member not in retained, (member, retained)

    assert _retained_lineage_index(physical, retained) == index, (physical, member, retained)
    other = database_identifier("b" * 40 + "-production", "ap-southeast-2", aurora=False)
    assert _retained_lineage_index(other, retained) is None, (other, retained)


def test_br24_9_the_failover_guard_reads_the_promotion_not_only_the_record(
    make_world: Callable[..., World],
) -> None:
    """rds-replica; protected again, or refuse; nothing acknowledged lost (docs/safety.md). The phase
    record (SSM ``<latch>-failback-phase``) is a resource of the dr stack with no dependency on region A's
    failback instance (components/pilot_light_region.py), so ``pulumi up`` applies the two independently,
    and an update stops on its first failed resource while those under way finish ("a failed resource
    stops new operations, not those under way": components/failover.py ``refuse_step_back``, citing
    https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/). The ``switch-writer`` update can therefore
    promote ``<primary>-failback`` (PromoteReadReplica) and fail before the record says so (an SSM
    PutParameter throttled or denied: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html,
    ``ThrottlingException``). Region A then holds the writer; the record still says ``drain``.
    ``_refuse_after_iac_writer_move`` reads only the record, so a failover now (region A fails before the
    operator re-runs the update) promotes nothing, finds region B's standalone frozen copy "already the
    writer", throws the switch and serves it: every write region A took since the promotion is gone from
    what Route 53 answers. AWS says where the writer is: region A's failback instance of region B's
    current generation is standalone (the same evidence ``observe._rds_writer`` uses)."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    _record(world, "replicate", since)
    _record(world, "drain", since)
    replica = _iac_replica(world)
    world.client("rds", REGION_A).promote_read_replica(
        DBInstanceIdentifier=replica
    )  # the record: not written
    assert not world.db(REGION_A, replica).get("ReadReplicaSourceDBInstanceIdentifier")

    report = run_book(world, "failover")  # region A dark again (503), forced

    assert report.stopped_at == "confirm_primary_down", (
        f"{replica} promoted (region A's writer), record 'drain': the failover {report.outcome}, region B "
        f"serving its frozen copy: {world.dr_is_writer() and world.switch_values()[-1] == 1.0}\n"
        f"{report.format_table()}"
    )


def test_br24_10_an_unreadable_record_does_not_stand_in_for_the_aurora_writer_move() -> None:
    """aurora-global. ``PhaseRecord.parse`` reads a value that is not the program's JSON as ``switch-writer``
    ("fails safe: taken to say the writer moved back"): the safe side for ``refuse_step_back`` (region B
    stays drained). ``refuse_unmoved_aurora_writer`` (BR23-5's fix) takes the same reading as its *proof*
    that something moved the writer (``previous.unreadable`` is accepted like a ``switch-writer`` record of
    this latch), so under an active latch, with the run journal holding no writer-move mark (no ``latch
    switch-writer`` ran: region B's cluster is the global writer), ``dr:failback switch-writer`` is accepted
    and the update writes a well-formed ``switch-writer`` record: BR23-5's false "region A holds the
    writer", from a garbled record instead of a skipped command. What fails safe for one refusal fails
    open for the other."""
    latch = Latch.parse(json.dumps({"state": "active", "since": "2026-12-01T20:00:00+00:00"}))
    previous = PhaseRecord.parse("drain, then someone edited this")
    assert previous is not None and previous.unreadable
    tier = decide(
        DrFlags(active=True, failback="switch-writer"),
        PRIMARY,
        database_mode="aurora-global",
        latch=latch,
        previous=previous,
    )
    with pytest.raises(FailoverRefused, match="switch-writer"):
        refuse_unmoved_aurora_writer(previous, tier, latch, {}, "aurora-global")


@pytest.mark.parametrize("outputs", ["before-the-primary-update", "after-the-primary-update"])
def test_the_refusal_reads_the_promoted_failback_instance_with_the_runbook_role_s_rights(
    make_world: Callable[..., World], outputs: str
) -> None:
    """BR24-3/BR24-9's guard reads region A's IaC failback instance (fencing.py ``_writer_moved_back``):
    the runbook role may describe it, whichever name the outputs give region A's writer (the primary
    stack's update after switch-writer names the failback instance itself), and on AWS's word alone (no
    record, a standby latch) the failover is refused before any change, its on_stop saying so."""
    from lambdas.failover import executor
    from lambdas.failover.context import RunbookContext
    from tests.lambdas.failover.harness import clients_for
    from tests.lambdas.failover.test_permissions import (
        CallRecorder,
        allowing,
        table_keys,
        topic_keys,
        world_policy,
    )

    world = make_world("rds-replica", encrypted=True)
    assert run_book(world, "failover").outcome == "done"
    primary = world.context["primaryDbInstanceId"]
    replica = _iac_replica(world)
    world.client("rds", REGION_A).promote_read_replica(DBInstanceIdentifier=replica)
    if outputs == "after-the-primary-update":
        world.context["primaryDbInstanceId"] = replica
    world.client("ssm", REGION_B).put_parameter(
        Name=world.context["latchParameterName"],
        Value=json.dumps({"state": "standby", "since": world.latch()["since"]}),
        Type="String",
        Overwrite=True,
    )
    before = _region_b(world), world.switch_values()
    recorder = CallRecorder({**topic_keys(world), **table_keys(world)})
    report = executor.run(
        "failover",
        RunbookContext.from_dict(world.context),
        clients_for(world, recorder),
        params={"force": True},
    )

    assert report.stopped_at == "confirm_primary_down", report.format_table()
    assert "region A holds the writer" in str(report.reason) and replica in str(report.reason), report.reason
    assert "resuming the failover completes it" not in str(report.reason), report.reason
    assert (_region_b(world), world.switch_values()) == before, (
        "the refused run changed region B or the switch"
    )
    assert world.db(REGION_A, primary) is None or primary != replica
    described = {
        c.target for c in recorder.calls if c.action == "rds:DescribeDBInstances" and c.region == REGION_A
    }
    assert any(t.endswith(f":db:{replica}") for t in described), described
    statements = world_policy(world)
    denied = sorted(
        f"{c.action} on {c.target} in {c.region}" for c in recorder.calls if not allowing(statements, c)
    )
    assert denied == []
