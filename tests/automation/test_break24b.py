"""break24b: findings against fixc24 (BR24-3/4/5/9's fixes: the failover refused on AWS's word that the IaC
failback moved the writer to region A; the dry run saying so; on_stop saying so) and run24 (refusals as
``pulumi.RunError``).

Each test is the failing evidence of one finding, marked xfail(strict=True) until it is fixed. They run the
product's unmodified runbook (``lambdas/failover``) against the moto world of the runbook tests
(``tests/lambdas/failover``), as tests/automation/test_break24.py does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from lambdas.failover.names import phase_record_name
from tests.automation.test_break24 import _iac_switch_writer, _record
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import Fault, deny, throttling_code
from tests.lambdas.failover.harness import FAST, clients_for, run_book, shifted_runs
from tests.lambdas.failover.world import REGION_A, REGION_B, World

# The runbook tests' fixtures (moto with its gaps filled, the health server, the world builder).
aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def _after_iac_switch_writer(world: World) -> str:
    """A failover, then the IaC failback's ``replicate``, ``drain`` and ``switch-writer`` (README "Failing
    back"), then ``pulumi up -s primary``: the runbook's outputs name ``<primary>-failback`` region A's
    writer (test_break24 ``_iac_switch_writer``). Returns the latch's ``since``."""
    assert run_book(world, "failover").outcome == "done"
    since = str(world.latch()["since"])
    _record(world, "replicate", since)
    _record(world, "drain", since)
    _iac_switch_writer(world)
    _record(world, "switch-writer", since)
    assert world.dr_is_writer(), "region B's instance: standalone (frozen at the switch)"
    return since


def _lose_latch(world: World, how: str, since: str) -> None:
    """The latch set to standby by hand, or deleted (docs/safety.md: "an absent, garbled or unexpected
    latch fails safe"; the cases of seeds 20 and 48)."""
    ssm = world.client("ssm", REGION_B)
    name = world.context["latchParameterName"]
    if how == "delete":
        ssm.delete_parameter(Name=name)
    else:
        value = json.dumps({"state": "standby", "since": since, "reason": "set by hand"})
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


@pytest.mark.parametrize("latch", ["standby", "delete"])
def test_br24b_1_the_dry_run_says_the_refusal_the_run_makes_on_aws_s_word(
    make_world: Callable[..., World], latch: str
) -> None:
    """fixc24 refuses the failover "whatever the latch and the record say" when region B's instance and
    region A's IaC failback instance of region B's generation are both standalone (fencing.py
    ``_writer_moved_back``; it reads ``current_failback_id(primaryDbInstanceId, ...)`` even when that is
    ``primaryDbInstanceId`` itself: "The outputs may already name it region A's writer"). The dry run
    (dryrun.py ``_writer_moved_back``) looks for the same evidence in ``observe``'s members, but
    ``observe._rds_members`` lists no failback member when the failback instance *is* the declared
    primary (``failback != ctx.primary_db_instance_id``), and the record is read only under an active latch
    (journal.py ``_iac_failback_phase``). So after ``pulumi up -s primary`` (README "Failing back": the
    outputs follow the promoted instance) and a lost latch, the run stops at ``confirm_primary_down``
    having changed nothing, while ``--dry-run`` (docs/safety.md: the dry run tells the truth, the
    operator's one read-only look before a break-glass run) says it would go on. Same root as break24
    BR24-6 (observe), a different command that lies."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.observe import observe

    world = make_world("rds-replica")
    since = _after_iac_switch_writer(world)
    _lose_latch(world, latch, since)

    ctx = RunbookContext.from_dict(world.context)
    params = {"force": True, "reason": "dry run"}
    plan = dict(dryrun.plan("failover", ctx, observe(ctx, clients_for(world)), params))
    report = run_book(world, "failover", params={**FAST, **params})
    assert report.stopped_at == "confirm_primary_down", report.format_table()  # refused, nothing changed
    said = plan["confirm_primary_down"]
    assert "refused" in said, (
        f"latch {latch}: dry run: confirm_primary_down: {said!r}; the run: {report.reason}\n"
        + "\n".join(f"  {k}: {v}" for k, v in plan.items())
    )


def test_br24b_2_a_throttled_region_a_does_not_skip_the_refusal(make_world: Callable[..., World]) -> None:
    """fencing.py ``_writer_moved_back`` treats any ClientError reading region A's failback instance as
    "cannot tell" and returns None ("fencing is best effort only when region A is unreachable"). A
    throttling answer is not an unreachable region: RDS answers ``Throttling`` when a caller passes its
    request rate ("Amazon RDS API requests are throttled": https://docs.aws.amazon.com/AmazonRDS/latest/
    APIReference/CommonErrors.html, ``ThrottlingException``/``Throttling``, 400), and region A is the
    region that holds the writer here. botocore's retries are spent (the harness's clients retry
    throttles, tests/lambdas/failover/faults.py), and the run goes on to the journal's ``primaryStoppedAt``
    ("the latch was lost") and serves the frozen copy: BR24-3/BR24-9's loss, through a busy API rather
    than a dark region. The product retries throttles elsewhere (on_stop ``_writer_moving(...,
    retry_throttled=True)``); a refusal that protects against losing region A's writes should not give up
    on a region that answers."""
    world = make_world("rds-replica")
    since = _after_iac_switch_writer(world)
    _lose_latch(world, "standby", since)

    throttled = Fault("rds", "DescribeDBInstances", REGION_A, code=throttling_code("rds"))
    shifted_runs(world)  # the stop's rollback retries (STEP_RETRY: 35 s) pass at once
    report = run_book(world, "failover", throttled)

    served = world.dr_is_writer() and world.asg(REGION_B)[1] > 0 and world.switch_values()[-1] == 1.0
    assert report.stopped_at == "confirm_primary_down", (
        f"region A throttled ({throttled.injected} answers): the failover {report.outcome}, region B "
        f"serving its frozen copy: {served}\n{report.format_table()}"
    )


@pytest.mark.parametrize("lost", ["latch", "record"])
def test_br24b_3_the_runbook_s_failback_does_not_replace_region_a_s_writer_with_a_frozen_copy(
    make_world: Callable[..., World], lost: str
) -> None:
    """rds-replica, no_loss and "an absent, garbled or unexpected latch fails safe" (docs/safety.md). fixc24
    reads AWS's word (region B's instance and region A's IaC failback instance of its generation both
    standalone: region A took the writer back) for the *failover* only (fencing.py ``_writer_moved_back``).
    The runbook's failback guards against the IaC one through the record alone, read only under an active
    latch (failback.py ``_refuse_during_iac_failback`` -> journal.py ``_iac_failback_phase``). With the
    latch set to standby by hand after ``switch-writer`` (BR24-3's premise), ``confirm_primary_healthy``
    restores the latch from the journal's ``primaryStoppedAt`` and ``reestablish_replication`` follows
    AWS's "Renaming to replace an existing DB instance"
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html) on region A's
    *writer*: the promoted ``<primary>-failback`` (every write region A took since the switch) is renamed
    to ``...-pre-failback-<stamp>`` and a new cross-region replica of region B's frozen copy takes its name
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html), the endpoint region
    A's application is configured with; region A's web tier is warmed onto it. The run must stop at its
    first step having changed nothing, as the failover does on the same evidence. ``record``: the latch
    stays active and the record is missing (BR24-9's premise: "an update can promote region A's replica and
    fail before its record", the case fixc24 names for the failover)."""
    world = make_world("rds-replica")
    since = _after_iac_switch_writer(world)
    writer = world.context["primaryDbInstanceId"]  # <primary>-failback, promoted: region A's writer
    if lost == "latch":
        _lose_latch(world, "standby", since)
    else:
        name = phase_record_name(world.context["latchParameterName"])
        world.client("ssm", REGION_B).delete_parameter(Name=name)

    report = run_book(world, "failback", params=FAST)

    now = world.db(REGION_A, writer)
    source = now.get("ReadReplicaSourceDBInstanceIdentifier") if now else "missing"
    renamed = sorted(
        d["DBInstanceIdentifier"]
        for d in world.client("rds", REGION_A).describe_db_instances()["DBInstances"]
        if d["DBInstanceIdentifier"].startswith(f"{writer}-pre-failback-")
    )
    assert report.stopped_at == "confirm_primary_healthy" and not source and not renamed, (
        f"{lost} lost: {writer} (region A's writer) is now a replica of {source!r}; renamed out of the way: {renamed}\n"
        f"{report.format_table()}"
    )


def test_br24b_4_a_failover_after_the_runbook_s_failback_moved_the_writer_is_refused(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, no_loss and "protected again, or refuse" (docs/safety.md). fixc24 reads AWS's word for
    the IaC failback only (fencing.py ``_writer_moved_back``: ``<primary>-failback[-g<n>]``). The runbook's
    own failback follows AWS's "Renaming to replace an existing DB instance"
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html): region A's new
    writer is a replica of region B created under ``<primary>`` itself and promoted at ``switch_writer``
    ("can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html), so region B's
    instance is from then on a copy frozen at that switch. Here the failback stops at ``release_switch``
    (PutMetricData refused: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html),
    after ``unfence_primary`` and ``verify_primary`` put region A's tiers back on its new writer; its
    ``on_stop`` keeps region B drained and says "resume the failback to finish it". The latch is still
    active and the switch still thrown to a drained region B, so the operator who sees the outage and
    runs a failover gets one that ``_refuse_unprotected`` lets through ("a failover already latched:
    resume it"; no dr stack record): it fences region A's writer, scales region B up and serves its
    frozen copy (``promote_database``: already standalone), and reports done. Every write region A's
    new writer took since the switch is gone from what is served. The run journal holds the evidence
    (the failback's writer-move mark, which ``fence_primary`` then forgets)."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    primary = world.context["primaryDbInstanceId"]
    stopped = run_book(world, "failback", deny("cloudwatch", "PutMetricData", REGION_B), params=FAST)
    assert stopped.stopped_at == "release_switch", stopped.format_table()
    moved = world.db(REGION_A, primary)
    assert moved and not moved.get("ReadReplicaSourceDBInstanceIdentifier"), "region A's new writer"
    assert world.asg(REGION_B)[1] == 0, "region B drained by the failback"

    report = run_book(world, "failover")  # forced: region A's health endpoint answers 503 here

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"the failover {report.outcome}; region B's frozen copy serving: {world.asg(REGION_B)}, "
        f"region A's writer fenced: {world.asg(REGION_A)}\n{report.format_table()}"
    )


def test_br24b_5_the_failback_dry_run_says_the_first_step_stops_when_region_a_s_endpoint_is_silent(
    make_world: Callable[..., World],
) -> None:
    """fixc24 (BR24-4) made the failback's dry run say "would go on" whenever region A's API answers
    (dryrun.py ``_failback_lines``: ``obs.asg["primary"]`` read), "not only a 200", because
    ``confirm_primary_healthy`` goes on with *any* HTTP answer. But the step still stops when the endpoint
    gives none (failback.py ``confirm_primary_healthy``: ``probe.status is None`` -> StepFailed "region A
    endpoint ... does not answer", retryable): a refused connection, a timeout, a name that does not
    resolve. Region A's control plane answering while its load balancer's path does not is the ordinary
    state of a partial regional recovery. The dry run then prints that the endpoint does not answer and,
    on the same line, "would go on", and plans every step after it; the run stops at its first step."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.observe import observe

    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    # Nothing listens on port 9 (discard) of the loopback: the connection is refused, no HTTP answer.
    world.context["primaryHealthUrl"] = "http://127.0.0.1:9/health"

    ctx = RunbookContext.from_dict(world.context)
    plan = dict(dryrun.plan("failback", ctx, observe(ctx, clients_for(world)), FAST))
    report = run_book(world, "failback", params=FAST)

    assert report.stopped_at == "confirm_primary_healthy", report.format_table()
    said = plan["confirm_primary_healthy"]
    assert "would go on" not in said, f"dry run: confirm_primary_healthy: {said!r}; the run: {report.reason}"


def _second_cycle(world: World) -> str:
    """A failover, a whole IaC failback of generation 0 (``<primary>-failback`` promoted, ``latch release``,
    ``pulumi up -s primary`` naming it region A's writer) and the re-seed (``pulumi up -s dr``: generation 1,
    ``<dr>-g1``, a cross-region replica of region A's writer: components/dr_data.py ``_rds_replica``). The
    old failback instance stays standalone in region A. Returns generation 1's identifier."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.names import generation_identifier
    from tests.automation.test_break24 import _iac_replica
    from tests.lambdas.failover.world import _zero_lag_ahead

    assert run_book(world, "failover").outcome == "done"
    since = str(world.latch()["since"])
    _record(world, "replicate", since)
    _record(world, "drain", since)
    failback = _iac_replica(world)
    world.client("rds", REGION_A).promote_read_replica(DBInstanceIdentifier=failback)
    _record(world, "switch-writer", since)
    done, lines = latch_cli.release(RunbookContext.from_dict(world.context), clients_for(world), reason="t")
    assert done, lines
    # `complete` runs under the released latch (its since: latch release's), as route-back does.
    _record(world, "complete", str(world.latch()["since"]))
    world.context["primaryDbInstanceId"] = failback  # pulumi up -s primary: region A's writer
    g1 = generation_identifier(world.context["drDbInstanceId"], 1)
    world.client("rds", REGION_B).create_db_instance_read_replica(
        DBInstanceIdentifier=g1,
        SourceDBInstanceIdentifier=world.db(REGION_A, failback)["DBInstanceArn"],  # type: ignore[index]
        DBInstanceClass="db.t3.micro",
    )
    world.context["drDbInstanceId"] = g1  # the re-seed's outputs
    _zero_lag_ahead(world.client("cloudwatch", REGION_B), g1)
    # A latch's since is to the second: the next failover must not share the last cycle's since, which AWS
    # time never allows (a failback and a re-seed take minutes), but this world's wall clock can.
    time.sleep(1.05)
    return g1


def test_held_a_second_failover_after_a_complete_iac_cycle_and_a_re_seed_runs_and_resumes(
    make_world: Callable[..., World],
) -> None:
    """What held (fixc24, "a legitimate failover that this wrongly refuses"): after :func:`_second_cycle`
    the next failover promotes ``<dr>-g1`` and is run again (a resume): the refusal reads the failback
    instance of generation 1 (``names.current_failback_id``), which does not exist, and lets both runs
    end done. Fails if the refusal reads an earlier generation's instance."""
    world = make_world("rds-replica")
    _second_cycle(world)

    first = run_book(world, "failover")
    again = run_book(world, "failover")

    assert first.outcome == again.outcome == "done", f"{first.format_table()}\n{again.format_table()}"
    assert world.dr_is_writer()


def test_held_the_resume_reads_generation_1_s_failback_instance_with_the_runbook_role_s_rights(
    make_world: Callable[..., World],
) -> None:
    """What held (the runbook role, components/runbook_iam.py ``_rds_replica``): on the resume of the second
    failover region B's ``<dr>-g1`` is standalone, so the refusal describes region A's failback instance of
    generation 1 (``<primary>-failback-g1``, absent). A denied describe would pass unseen (fencing.py
    ``_writer_moved_back``: a read error is "no refusal"), so the call itself is checked against the policy
    the program builds from the same context: every call of the run is allowed."""
    from lambdas.failover import executor
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.names import failback_generation_id, lineage_base
    from tests.lambdas.failover.test_permissions import (
        CallRecorder,
        allowing,
        table_keys,
        topic_keys,
        world_policy,
    )

    world = make_world("rds-replica", encrypted=True)
    _second_cycle(world)
    assert run_book(world, "failover").outcome == "done"
    recorder = CallRecorder({**topic_keys(world), **table_keys(world)})
    report = executor.run(
        "failover",
        RunbookContext.from_dict(world.context),
        clients_for(world, recorder),
        params={"force": True},
    )

    assert report.outcome == "done", report.format_table()
    wanted = failback_generation_id(lineage_base(world.context["primaryDbInstanceId"]), 1)
    described = {
        c.target for c in recorder.calls if c.action == "rds:DescribeDBInstances" and c.region == REGION_A
    }
    assert any(t.endswith(f":db:{wanted}") for t in described), described
    statements = world_policy(world)
    denied = sorted(
        f"{c.action} on {c.target} in {c.region}" for c in recorder.calls if not allowing(statements, c)
    )
    assert denied == []


@pytest.mark.parametrize("length", [10, 40, 54])
def test_held_the_failback_instance_read_is_the_one_the_dr_stack_names_in_every_generation(
    length: int,
) -> None:
    """What held: for region A's writer of any lineage index (the outputs after k failbacks, cut with a
    hash past 63 characters) and region B of any generation, ``current_failback_id`` (read by the refusal,
    observe and the runbook role's policy) is the instance the dr stack creates for that generation
    (components/dr_data.py ``_failback_identifier``: ``failback_generation_id(<primary base>, g)``)."""
    from lambdas.failover.names import (
        current_failback_id,
        failback_generation_id,
        generation_identifier,
        writer_lineage_id,
    )

    base, dr_base = "p" * (length - 3) + "-db", "d" * (length - 3) + "-db"
    wrong = [
        (k, g)
        for k in range(6)
        for g in range(6)
        if current_failback_id(writer_lineage_id(base, k), generation_identifier(dr_base, g))
        != failback_generation_id(base, g)
    ]
    assert not wrong, f"(lineage index, generation) read another instance: {wrong}"
