"""break25: findings against int25 (e5b725b: a failover refused when region B's journal holds the runbook
failback's ``WRITER_MOVE_MARK`` and region A's declared writer is standalone or region A cannot be read;
c71305a: the dry run says that refusal).

Each test is the failing evidence of one finding, marked xfail(strict=True) until it is fixed. They run the
product's unmodified runbook (``lambdas/failover``) against the moto world of the runbook tests
(``tests/lambdas/failover``), as tests/automation/test_break24c.py does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import Fault, deny, throttling_code, unreachable
from tests.lambdas.failover.harness import FAST, FORCED, clients_for, run_book, shifted_runs
from tests.lambdas.failover.world import REGION_A, REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def _runbook_failback_moved_the_writer(world: World) -> None:
    """The state of test_break24c BR24c-1/BR24c-3: a completed failover, then the runbook's failback, which
    promoted region A's new ``<primary>`` (a replica of region B created under the declared name: AWS
    "Renaming to replace an existing DB instance",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html) and stopped at
    ``release_switch`` (CloudWatch PutMetricData refused in region B). Region A holds the writer; region B's
    instance is a standalone copy frozen at the promotion ("A promoted read replica ... can't be made a
    read replica again": https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html)."""
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import WRITER_MOVE_MARK, read_journal

    assert run_book(world, "failover").outcome == "done"
    stopped = run_book(world, "failback", deny("cloudwatch", "PutMetricData", REGION_B), params=FAST)
    assert stopped.stopped_at == "release_switch", stopped.format_table()
    ctx = RunbookContext.from_dict(world.context)
    assert read_journal(clients_for(world), ctx).get(WRITER_MOVE_MARK), "region B's journal: the writer moved"
    primary = world.context["primaryDbInstanceId"]
    writer = world.client("rds", REGION_A).describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"][
        0
    ]
    assert not writer.get("ReadReplicaSourceDBInstanceIdentifier"), "region A's <primary> was promoted"


def test_br25_1_a_declared_failover_does_not_unbind_the_runbook_failback_s_writer_move(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, "protected again, or refuse" and "one writer" (docs/safety.md). The state of BR24c-3: the
    runbook's failback moved the writer to region A and stopped; region A then goes dark. e5b725b refuses the
    failover on the journal's writer-move mark (region B's only evidence while region A is dark). The
    operator, refused, declares the failover instead (`python -m automation latch activate`, the documented
    first step of a declared failover: README / docs/safety.md "A declared failover activates the latch").
    ``journal.declare_failover_hold`` drops ``WRITER_MOVE_MARK`` unconditionally ("a new failover: no earlier
    failback's writer move speaks for region A any more"), and nothing before it asks whether region A holds
    the writer; so the mark, the one record of the move, is gone, and a failover now finds nothing to refuse
    on and lights region B's frozen copy: every write region A's writer took since the failback is lost to
    the clients region B serves, and region A's writer is a second writer when it answers again."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    refused = run_book(world, "failover", unreachable(REGION_A))
    assert refused.stopped_at == "confirm_primary_down", refused.format_table()  # e5b725b holds so far

    ctx = RunbookContext.from_dict(world.context)
    try:
        lines = latch_cli.activate(ctx, clients_for(world, unreachable(REGION_A)), reason="region A dark")
    except Exception as exc:  # a refusal of the declared failover is what a fix may do
        lines = [f"refused: {exc!r}"]
    report = run_book(world, "failover", unreachable(REGION_A))

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"after `latch activate` ({lines}) the failover {report.outcome} at {report.stopped_at}; region B's "
        f"frozen copy serving: {world.asg(REGION_B)}\n{report.format_table()}"
    )


def test_br25_2_status_names_region_a_the_writer_after_the_runbook_s_failback_moved_it(
    make_world: Callable[..., World],
) -> None:
    """rds-replica. The state of BR24c-1 (region A answers): the runbook's failback promoted ``<primary>`` in
    region A (rename to replace) and stopped at ``release_switch``. AWS shows region A's ``<primary>``
    standalone and region B's instance standalone; the failover refuses ("region A holds the writer",
    fencing.py ``_writer_moved_back`` from the journal's mark). ``python -m automation status`` reads the
    writer from ``observe._rds_writer``, which knows only the IaC failback instance (``<primary>-failback``,
    absent here) as a promoted-after-region-B writer, and so reports "writer in <region B>": the operator's
    one read-only view contradicts the refusal and names the frozen copy the writer. ``latch release``
    reads the same and refuses ("the writer is region B")."""
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.observe import format_status, observe

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    ctx = RunbookContext.from_dict(world.context)
    obs = observe(ctx, clients_for(world))
    report = run_book(world, "failover")
    assert report.stopped_at == "confirm_primary_down", report.format_table()

    assert obs.writer_side == "primary", f"status: {format_status(obs)}\nthe failover: {report.reason}"


def test_br25_3_the_failback_the_refusal_names_says_where_it_leaves_region_b(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, "traffic follows the writer" / "converges" as the operator reads them. The state of
    BR24c-3: the runbook's failback moved the writer to region A and stopped at ``release_switch``; region A
    goes dark. The failover's refusal (e5b725b) says "the runbook's: `python -m automation failback` resumes
    it". Resumed with region A dark, the failback stops at ``confirm_primary_healthy`` with "Nothing was
    changed; region B keeps serving", and its ``restore_dr`` keeps region B drained (a promotion of
    ``<primary>`` was requested: docs/safety.md "one requested, region B stays drained"). Region B serves
    nothing (web tier 0, functions at 0): the run's own report contradicts AWS state, and neither it nor the
    failover's refusal says that service waits for region A to answer."""
    world = make_world("rds-replica")
    shifted_runs(world)  # the stopped failback's restore_dr retries (STEP_RETRY: 35 s) pass at once
    _runbook_failback_moved_the_writer(world)
    refused = run_book(world, "failover", unreachable(REGION_A))
    assert refused.stopped_at == "confirm_primary_down", refused.format_table()
    assert "python -m automation failback" in str(refused.reason)

    resumed = run_book(world, "failback", unreachable(REGION_A), params=FAST)

    assert resumed.outcome != "done", resumed.format_table()
    drained = world.asg(REGION_B)[1] == 0
    assert not (drained and "region B keeps serving" in str(resumed.reason)), (
        f"region B web tier {world.asg(REGION_B)}; the failback: {resumed.reason}"
    )


def test_br25_4_a_deleted_journal_does_not_let_a_failover_serve_the_frozen_copy(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, "protected again, or refuse". The state of BR24c-3, then the run journal
    (``<latch>-journal``, SSM, region B) is deleted, and region A goes dark. A garbled journal is read as its
    last readable version (journal.py ``_read_journal_version``: "Read as empty it would fail open: ... a
    failback's writer move forgotten"), but DeleteParameter removes the parameter with its history
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html), and
    ``ParameterNotFound`` reads as ``{}``: the mark is gone, ``_writer_moved_back`` cannot read region A and
    says None, and the active latch resumes the failover, which scales region B up on a copy frozen at the
    failback's promotion. The runbook's own rule elsewhere reads an empty journal as "cannot say" (journal.py
    ``_promotion_requested``: "None when the journal cannot say (empty ...)") and takes the safe side; an
    active latch with a standalone region B instance and an empty journal is a state no run leaves (a
    failover's marks, a failback's record), so it cannot tell a failover to resume from a failback's move."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import _journal_name
    from lambdas.failover.observe import format_status, observe

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    ctx = RunbookContext.from_dict(world.context)
    world.client("ssm", REGION_B).delete_parameter(Name=_journal_name(ctx))
    obs = observe(ctx, clients_for(world, unreachable(REGION_A)))
    plan = dict(dryrun.plan("failover", ctx, obs, FORCED))
    status = format_status(obs)

    report = run_book(world, "failover", unreachable(REGION_A))

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"the failover {report.outcome}; region B's frozen copy serving: {world.asg(REGION_B)}\n"
        f"{report.format_table()}"
    )
    # One reason, with the remedy (what to check, how to go on), and the dry run and `status` say it too.
    reason = str(report.reason)
    assert f"the run journal {_journal_name(ctx)} ({REGION_B}) is missing or holds no record" in reason, (
        reason
    )
    assert "once region A answers" in reason and "failoverDeclaredAt" in reason, reason
    assert "resuming the failover completes it" not in reason, f"the stop contradicts the refusal: {reason}"
    said = plan["confirm_primary_down"]
    assert said.startswith("would be refused, changing nothing (JournalMissing)"), said
    assert "(JournalMissing)" in status and "writer in unknown" in status, status
    # Nor does a declared failover launder the state: `latch activate` refuses the same way before it writes
    # the journal's hold, which would let the next failover resume onto the frozen copy (as in B26-1).
    from automation import latch_cli
    from lambdas.failover.exceptions import StepFailed

    with pytest.raises(StepFailed, match="is missing or holds no record") as refused:
        latch_cli.activate(ctx, clients_for(world, unreachable(REGION_A)), reason="declared")
    assert refused.value.code == "JournalMissing"
    with pytest.raises(Exception, match="ParameterNotFound"):
        world.client("ssm", REGION_B).get_parameter(Name=_journal_name(ctx))


def test_br25_4_held_a_deleted_journal_does_not_refuse_a_failover_whose_region_b_still_replicates(
    make_world: Callable[..., World],
) -> None:
    """What the BR25-4 refusal leaves alone: an active latch without the run journal (deleted, or a latch set
    by hand) while region B's instance is still a replica and region A is dark. Promoting a replica serves
    no frozen copy, so the failover goes on and region B serves; the dry run says it would."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import _journal_name
    from lambdas.failover.observe import observe

    world = make_world("rds-replica")
    ctx = RunbookContext.from_dict(world.context)
    ssm = world.client("ssm", REGION_B)
    ssm.put_parameter(
        Name=ctx.latch_parameter_name,
        Value=json.dumps({"state": "active", "since": "2026-12-01T00:00:00Z", "reason": "set by hand"}),
        Type="String",
        Overwrite=True,
    )
    with pytest.raises(Exception, match="ParameterNotFound"):
        ssm.get_parameter(Name=_journal_name(ctx))
    plan = dict(dryrun.plan("failover", ctx, observe(ctx, clients_for(world, unreachable(REGION_A))), FORCED))

    shifted_runs(world)  # the unplanned promotion's 70 s switch wait passes at once
    report = run_book(world, "failover", unreachable(REGION_A), params=FORCED)

    assert report.outcome == "done" and world.asg(REGION_B)[1] > 0, report.format_table()
    assert "refused" not in plan["confirm_primary_down"], plan["confirm_primary_down"]


def test_br25_held_a_garbled_journal_keeps_the_runbook_failback_s_writer_move_binding(
    make_world: Callable[..., World],
) -> None:
    """What held: the state of BR24c-3 with the run journal overwritten by a value that is not a JSON object
    (by hand, or tampered with), then region A dark. The runbook reads the journal's last readable version
    (SSM keeps a parameter's versions: "name:version",
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html), so the writer-move
    mark still refuses the failover and region B's frozen copy stays drained."""
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import _journal_name

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    ctx = RunbookContext.from_dict(world.context)
    world.client("ssm", REGION_B).put_parameter(
        Name=_journal_name(ctx), Value="not json", Type="String", Overwrite=True
    )

    report = run_book(world, "failover", unreachable(REGION_A))

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, report.format_table()


def test_br25_5_the_dry_run_does_not_say_refused_when_region_a_is_only_throttled(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, the dry run's promise (dryrun.py: what the run would do). A failback wrote its
    writer-move mark and its promotion mark, and its PromoteReadReplica never reached RDS (the connection to
    region A failed: ``EndpointConnectionError``); its ``restore_dr`` keeps region B drained (docs/safety.md
    "one requested, region B stays drained"). Region A answers again: ``<primary>`` is still a replica of
    region B's instance, which holds the writer. With region A's DescribeDBInstances throttled, the dry run
    (c71305a) reads region A as unread and says the failover would be refused because "region A holds the
    writer"; the run's fencing (e5b725b) takes throttling for "cannot tell yet" and raises it retryable
    (break24b BR24b-2), so the run stops on the throttling, not on a refusal, and the executor's retry once
    the throttling lifts (a throttled request is to be retried: "ThrottlingException ... The request was denied
    due to request throttling", https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html)
    resumes the failover: region B serves. The dry run said "refused" and "finish the failback ... re-seed
    region B first" where the run goes on."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import PROMOTION_MARK, WRITER_MOVE_MARK, read_journal
    from lambdas.failover.observe import observe

    world = make_world("rds-replica")
    # Every run's and read's waits on one virtual clock: each stopped run's on_stop retries (STEP_RETRY: 35 s)
    # pass at once, and the dry run reads the journal's stamps at the runs' time.
    clock = shifted_runs(world)
    assert run_book(world, "failover").outcome == "done"
    lost = Fault("rds", "PromoteReadReplica", REGION_A, unreachable=True)
    stopped = run_book(world, "failback", lost, params=FAST)
    assert stopped.stopped_at == "switch_writer" and world.asg(REGION_B)[1] == 0, stopped.format_table()
    ctx = RunbookContext.from_dict(world.context)
    journal = read_journal(clients_for(world, clock=clock), ctx)
    assert journal.get(WRITER_MOVE_MARK) and journal.get(PROMOTION_MARK), journal
    primary = world.context["primaryDbInstanceId"]
    got = world.client("rds", REGION_A).describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"][0]
    assert got.get("ReadReplicaSourceDBInstanceIdentifier"), "RDS never promoted <primary>"

    throttled = Fault("rds", "DescribeDBInstances", REGION_A, code=throttling_code("rds"))
    plan = dict(
        dryrun.plan("failover", ctx, observe(ctx, clients_for(world, throttled, clock=clock)), FORCED)
    )
    first = run_book(
        world, "failover", Fault("rds", "DescribeDBInstances", REGION_A, code=throttling_code("rds"))
    )
    retried = run_book(world, "failover")  # the same run, retried once the throttling lifted

    said = plan["confirm_primary_down"]
    assert "refused" not in said or retried.outcome != "done", (
        f"dry run: {said!r}\nthe run: {first.stopped_at}: {first.reason}\nretried: {retried.outcome}, "
        f"region B web tier {world.asg(REGION_B)}"
    )


def test_br25_held_a_second_cycle_s_runbook_failback_binds_a_failover_with_region_a_dark(
    make_world: Callable[..., World],
) -> None:
    """What held: a whole runbook cycle (failover, failback to done, which clears the writer-move mark with
    the latch: failback.py ``_end_failback_journal``), the re-seed (``<dr>-g1``, a cross-region replica of
    region A's writer: components/dr_data.py ``_rds_replica``), a second failover (it promotes ``<dr>-g1``),
    then a second runbook failback that promotes the new ``<primary>`` and stops at ``release_switch``. With
    region A dark, the failover is refused on the second failback's mark (no first-cycle residue lets it
    through, and the re-seed's generation names no IaC failback instance that could be read instead), and
    the dry run says so."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import WRITER_MOVE_MARK, read_journal
    from lambdas.failover.names import generation_identifier
    from lambdas.failover.observe import observe
    from tests.lambdas.failover.world import _zero_lag_ahead

    world = make_world("rds-replica")
    clock = shifted_runs(world)  # every run and read of this world on one virtual clock
    assert run_book(world, "failover").outcome == "done"
    done = run_book(world, "failback", params=FAST)
    assert done.outcome == "done", done.format_table()
    ctx = RunbookContext.from_dict(world.context)
    assert not read_journal(clients_for(world, clock=clock), ctx).get(WRITER_MOVE_MARK)
    primary = world.context["primaryDbInstanceId"]
    g1 = generation_identifier(world.context["drDbInstanceId"], 1)
    world.client("rds", REGION_B).create_db_instance_read_replica(
        DBInstanceIdentifier=g1,
        SourceDBInstanceIdentifier=world.db(REGION_A, primary)["DBInstanceArn"],  # type: ignore[index]
        DBInstanceClass="db.t3.micro",
    )
    world.context["drDbInstanceId"] = g1  # the re-seed's outputs
    _zero_lag_ahead(world.client("cloudwatch", REGION_B), g1)

    second = run_book(world, "failover")
    assert second.outcome == "done" and world.dr_is_writer(), second.format_table()
    # The retained name carries the minute (names.RETAINED_STAMP_FORMAT): a cycle takes longer in AWS (a
    # cross-region replica's creation alone), so the second failback runs in a later minute.
    # The wait is the runs' virtual clock's: the stamp reads that clock (names.py ``retained_instance_id``).
    clock.sleep(60 - clock.now().second + 1)
    stopped = run_book(world, "failback", deny("cloudwatch", "PutMetricData", REGION_B), params=FAST)
    assert stopped.stopped_at == "release_switch", stopped.format_table()

    ctx = RunbookContext.from_dict(world.context)
    dark = clients_for(world, unreachable(REGION_A), clock=clock)
    plan = dict(dryrun.plan("failover", ctx, observe(ctx, dark), FORCED))
    report = run_book(world, "failover", unreachable(REGION_A))

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, report.format_table()
    assert "refused" in plan["confirm_primary_down"], plan["confirm_primary_down"]


class _DieAtPromotionMark:
    """The failback's process dies (no ``on_stop``) when it writes ``PROMOTION_MARK`` to the run journal:
    after ``WRITER_MOVE_MARK``, before any PromoteReadReplica (the journal write is SSM PutParameter in
    region B, its body the whole journal)."""

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        if not event_name.endswith("ssm.PutParameter") or REGION_B not in str(request.url):
            return None
        body = request.body if isinstance(request.body, bytes | str) else b""
        try:
            value = json.loads(json.loads(body).get("Value") or "{}")
        except (ValueError, AttributeError):
            return None
        mark = value.get("promotionRequested") if isinstance(value, dict) else None
        if isinstance(mark, dict) and mark.get("region") == REGION_A:  # region A's replica: the failback's
            raise SystemExit("the failback's process dies")
        return None

    def install(self, session: Any) -> _DieAtPromotionMark:
        session.events.register_first("before-send", self)
        return self


def _failback_dead_before_its_promotion(world: World) -> Any:
    """A completed failover, then a failback that wrote ``WRITER_MOVE_MARK`` and died at its journal write
    of ``PROMOTION_MARK`` for region A's replica: region B drained, holding the writer; returns the context."""
    from lambdas.failover import executor
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import PROMOTION_MARK, WRITER_MOVE_MARK, read_journal

    assert run_book(world, "failover").outcome == "done"
    ctx = RunbookContext.from_dict(world.context)
    with pytest.raises(SystemExit):
        executor.run("failback", ctx, clients_for(world, _DieAtPromotionMark()), params=FAST)  # type: ignore[arg-type]
    journal = read_journal(clients_for(world), ctx)
    # (The failover's own mark, of region B's replica, stays: the failback never asked for region A's.)
    assert journal.get(WRITER_MOVE_MARK) and (journal.get(PROMOTION_MARK) or {}).get("region") != REGION_A
    assert world.asg(REGION_B)[1] == 0, "the failback drained region B"
    primary = world.context["primaryDbInstanceId"]
    got = world.client("rds", REGION_A).describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"][0]
    assert got.get("ReadReplicaSourceDBInstanceIdentifier"), "<primary> is the failback's replica, unpromoted"
    return ctx


def test_br25_held_a_failback_dead_before_its_promotion_is_resumed_to_region_b_serving_with_region_a_dark(
    make_world: Callable[..., World],
) -> None:
    """What held: the failback writes ``WRITER_MOVE_MARK`` and dies before it asks for a promotion (its
    process ends at the journal write of ``PROMOTION_MARK``; ``on_stop`` never runs, region B stays
    drained). Region A goes dark. The failover is refused on the mark with region A unread (e5b725b) and
    names the failback's resume; resumed with region A still dark, the failback's ``restore_dr`` finds no
    promotion requested (the journal's word, B21b-9) and gives region B back its capacity: the way out the
    refusal names works, and region B serves its writer (docs/safety.md "converges")."""
    from lambdas.failover import executor

    world = make_world("rds-replica")
    ctx = _failback_dead_before_its_promotion(world)
    dark = clients_for(world, unreachable(REGION_A))
    # Since BR25-6's fix the failover goes on (no promotion of region A's replica was asked of RDS: region B
    # holds the writer); before it, it was refused here. Either way the failback's resume ends with region B
    # serving.
    failover = executor.run("failover", ctx, dark, params=FORCED, break_lock=True)
    assert failover.outcome == "done" or failover.stopped_at == "confirm_primary_down", (
        failover.format_table()
    )
    resumed = executor.run("failback", ctx, dark, params=FAST, break_lock=True)

    assert world.asg(REGION_B)[1] > 0 and world.dr_is_writer(), (
        f"region B web tier {world.asg(REGION_B)}; the failback: {resumed.reason}"
    )


def test_br25_6_the_failover_does_not_claim_region_a_holds_the_writer_when_no_promotion_was_requested(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, "converges" (a failover resumed ends done) and the refusal's truth. The failback wrote
    ``WRITER_MOVE_MARK`` and died before it asked RDS for anything (``PROMOTION_MARK``, written ahead of
    every PromoteReadReplica, names no region-A instance); region A goes dark. Region B's instance is the
    writer: nothing was asked of RDS in region A, and the failback's own ``restore_dr`` reads exactly this
    from the journal (on_stop.py ``_writer_still_in_b``: "the run journal shows <primary> a replica of it that
    no run asked RDS to promote") and gives region B back (test_br25_held_...dead_before...). The failover's
    fencing (e5b725b) reads only the writer-move mark and refuses, stating "region A holds the writer ... so
    a failback promoted it after <dr>", which AWS never did, and sends the operator to "let `pulumi up -s dr`
    re-seed region B, then fail over", a re-seed that is refused while the latch is active and region A
    dark (automation/reseed.py). Either the failover resumes (region B holds the writer), or its refusal
    says what is so."""
    from lambdas.failover import executor

    world = make_world("rds-replica")
    ctx = _failback_dead_before_its_promotion(world)

    # (--break-lock: the dead failback's lock, as the operator who knows it died breaks it.)
    report = executor.run(
        "failover", ctx, clients_for(world, unreachable(REGION_A)), params=FORCED, break_lock=True
    )

    assert report.outcome == "done" or "region A holds the writer" not in str(report.reason), (
        f"the failover: {report.stopped_at}: {report.reason}"
    )


def test_br25_7_a_refused_read_of_region_b_s_instance_does_not_unbind_the_writer_move(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, "protected again, or refuse". The state of BR24c-3 (the runbook's failback moved the
    writer to region A and stopped; the writer-move mark in region B's journal), region A dark, and region
    B's ``rds:DescribeDBInstances`` refused (AccessDenied: a standing deny, an SCP; "AccessDenied ... You do
    not have sufficient access to perform this action",
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html). e5b725b reads region B's
    instance first and answers None on any refusal of that read, so the mark is never weighed; the active
    latch resumes the failover, whose ``scale_web_tier`` (before ``promote_database``, which is the first step
    to need the instance) raises region B's web tier on the copy frozen at the failback's promotion."""
    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)

    report = run_book(world, "failover", unreachable(REGION_A), deny("rds", "DescribeDBInstances", REGION_B))

    assert world.asg(REGION_B)[1] == 0, (
        f"the failover {report.outcome} at {report.stopped_at}; region B's web tier {world.asg(REGION_B)}\n"
        f"{report.format_table()}"
    )


def test_br25_1b_a_declared_failover_with_region_a_answering_does_not_serve_the_frozen_copy(
    make_world: Callable[..., World],
) -> None:
    """BR25-1 with region A answering throughout. The state of BR24c-1 (the runbook's failback promoted region
    A's ``<primary>`` and stopped at ``release_switch``); the failover is refused (e5b725b: the mark and a
    standalone declared writer). ``python -m automation latch activate`` then drops the mark
    (``declare_failover_hold``), and since e5b725b a standalone declared writer without the mark is no
    evidence (BR24c-2: a restored one proves nothing). AWS still shows what happened: region B's instance is
    standalone and ``<primary>`` was created as a replica of it (its ``pilotlight:failback-stamp`` tag and
    the journal's ``failback`` record, ``replicaOf`` region B's instance, both still there) and is standalone,
    so promoted after it ("A promoted read replica ... can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). The failover fences
    region A's writer and serves region B's copy frozen at the failback's promotion."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    assert run_book(world, "failover").stopped_at == "confirm_primary_down"
    ctx = RunbookContext.from_dict(world.context)
    try:
        lines = latch_cli.activate(ctx, clients_for(world), reason="declared")
    except Exception as exc:  # a refusal of the declared failover is what a fix may do (as in BR25-1)
        lines = [f"refused: {exc!r}"]

    report = run_book(world, "failover")

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"after `latch activate` ({lines}) the failover {report.outcome}; region A {world.asg(REGION_A)}, "
        f"region B {world.asg(REGION_B)}\n{report.format_table()}"
    )


def test_br25_4b_a_deleted_journal_with_region_a_answering_does_not_serve_the_frozen_copy(
    make_world: Callable[..., World],
) -> None:
    """BR25-4 with region A answering. Before e5b725b, region A's declared writer standalone and created after
    region B's standalone instance refused the failover (506c2e0, BR24b-4); e5b725b makes that evidence need
    the journal's writer-move mark (BR24c-2: a restored writer is new too). With the journal deleted, nothing
    else is read: not the replica's ``pilotlight:failback-stamp`` tag the failback put on ``<primary>`` when it
    created it as a replica of region B's instance (failback.py ``_create_failback_replica``: "tags survive
    the promotion and any later rename"), which a restored or re-created writer does not carry. The failover
    fences region A's writer and serves region B's frozen copy."""
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import _journal_name

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    ctx = RunbookContext.from_dict(world.context)
    world.client("ssm", REGION_B).delete_parameter(Name=_journal_name(ctx))

    report = run_book(world, "failover")

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"the failover {report.outcome}; region A {world.asg(REGION_A)}, region B {world.asg(REGION_B)}\n"
        f"{report.format_table()}"
    )


def test_br25_1_latch_activate_refuses_in_one_line_and_changes_nothing(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """BR25-1's fix as the operator sees it: ``python -m automation latch activate`` after the runbook's
    failback moved the writer exits 1 (stopped) with one ``refused:`` line naming the evidence, no
    traceback, and changes nothing: the latch, the switch and region B's journal mark stay as they were."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import WRITER_MOVE_MARK, read_journal

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    ctx = RunbookContext.from_dict(world.context)
    before = (world.latch(), read_journal(clients_for(world), ctx))
    monkeypatch.setattr(latch_cli, "connect", lambda args: (ctx, clients_for(world)))

    code = latch_cli.main(["activate", "--outputs", "runbook.json"])

    out = capsys.readouterr().out.strip().splitlines()
    assert code == latch_cli.EXIT_STOPPED, out
    assert len(out) == 1 and out[0].startswith("refused: activate: region A holds the writer"), out
    after = (world.latch(), read_journal(clients_for(world), ctx))
    assert after == before and after[1].get(WRITER_MOVE_MARK), "nothing changed, the mark kept"
