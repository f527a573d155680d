"""break29: the seed-2036 fix (fix28: a failback over a writer that never left region A releases the switch
before it warms region A, ``lambdas/failover/capacity.py`` ``_free_traffic_for_unmoved_writer``; the canary
leaves the switch where it is under an active latch and the writer-move mark, ``lambdas/health_check/probe.py``
``switch_position``; a failback during region B's promotion refuses, ``lambdas/failover/failback.py``
``_writer_never_left_a`` / ``reestablish_replication``), attacked in the safety model.

Invariants (docs/safety.md): *one writer*, *nothing acknowledged is lost*, *traffic follows the writer*.
Each finding is a strict xfail: it fails for the reason its ``reason`` states until the product is fixed.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdas.failover import dryrun, executor
from lambdas.failover.observe import observe
from lambdas.failover.steps import enable_functions, scale_web_tier
from tests.lambdas.failover.harness import declare_without_promotion
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment
from tests.safety.scenarios import failed_over
from tests.safety.scenarios import journal as steps_journal

Deploy = Callable[..., Deployment]


def _declared_failover_promoting(d: Deployment) -> None:
    """Region A goes dark; a failover is declared and region B's replica is promoted by a call the runbook
    did not make: the dr stack's ``dr:active true`` update of a pilotlight before break34 B34-5 (which
    promoted by dropping ``replicate_source_db``: PromoteReadReplica, called here as the provider calls it),
    or an operator in the console. Today's ``latch activate`` promotes with the runbook's own step (it
    journals ``promotionRequested``) and the update never promotes, but a promotion the runbook did not ask
    for must still be told from maintenance. The declared failover's first steps are those of ``latch
    activate`` before it promoted: the failover's hold, the fence (pending: region A is dark), the latch
    and the switch. RDS keeps ``ReadReplicaSourceDBInstanceIdentifier`` and shows ``modifying`` until the
    promotion ends, minutes later
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Region A
    answers again meanwhile."""
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    declare_without_promotion(d.ctx, d.runbook_clients(), reason="declared: region A is down")
    rds_b = d.world.client("rds", REGION_B)
    rds_b.promote_read_replica(DBInstanceIdentifier=str(d.ctx.dr_db_instance_id))
    dr = rds_b.describe_db_instances(DBInstanceIdentifier=str(d.ctx.dr_db_instance_id))["DBInstances"][0]
    assert dr["DBInstanceStatus"] == "modifying" and dr.get("ReadReplicaSourceDBInstanceIdentifier"), dr
    assert d.writer() == d.keys()[1], "the promotion made region B's instance the writer (when it started)"
    # The same update lights region B (its web tier's floor, its functions' concurrency and event source:
    # the README's failover diff), modelled by the runbook's steps that make the same changes. Since
    # break34 B34-1 ``latch activate`` fences region A (pending here: region A is dark, and the canary
    # completes it when region A answers), so region B's tiers are what serves the writer.
    clients = d.runbook_clients()
    scale_web_tier(d.ctx, clients, {"reason": "dr:active true"})
    enable_functions(d.ctx, clients, {"reason": "dr:active true"})
    d.op_advance(30)
    d.op_recover()


def test_b29_1_a_failback_during_the_dr_stacks_promotion_refuses_as_during_the_runbooks(
    deploy: Deploy,
) -> None:
    """no_loss / one writer (the fix's own invariant, test_failback_ends.py
    ``test_no_loss_a_failback_while_region_b_is_being_promoted_refuses_before_any_change``): a failback
    while region B's replica is being promoted must refuse before any change, naming the promotion. fix28
    tells a promotion from maintenance by the runbook's ``promotionRequested`` mark
    (``journal._promotion_under_way``, B21b-6), but region B's replica is promoted by the dr stack's
    update too (the declared failover), which writes none: the journal holds ``failoverDeclaredAt``, so
    ``_promotion_requested`` answers False (not None), ``modifying`` reads as maintenance, and
    ``_writer_never_left_a`` says region A holds the writer. The failback (a second operator, seeing region
    A back) releases the switch, drains region B, clears the hold and the latch and ends done; the promotion
    then completes: two standalone writers, Route 53 on region A's old one, every write it takes missing
    from region B's."""
    d = deploy("rds-replica")
    _declared_failover_promoting(d)
    report = executor.run("failback", d.ctx, d.runbook_clients(), params={"reason": "t"}, max_workers=1)
    d.op_advance(d.emulator.timings.promote_seconds + TRAFFIC_GRACE + 1)
    d.op_write(5)
    assert report.outcome == "stopped" and "is being promoted" in report.format_table(), (
        report.format_table(),
        [str(v) for v in d.judge()],
    )
    assert not d.judge(), [str(v) for v in d.violations]


def _failback_plan(d: Deployment) -> dict[str, str]:
    """The failback's dry run (``python -m automation failback --dry-run``), read from AWS now."""
    return dict(dryrun.plan("failback", d.ctx, observe(d.ctx, d.runbook_clients()), {"reason": "t"}))


def test_b29_2_the_dry_run_of_a_failback_during_region_bs_promotion_says_the_run_refuses(
    deploy: Deploy,
) -> None:
    """The dry run says what the run would do (docs: "Each step, planned from the state as read now"). A
    forced failover dies right after PromoteReadReplica (test_failback_ends.py's shape): the run refuses
    at ``reestablish_replication`` ("is being promoted", PromotionUnderWay) and changes nothing, but the dry
    run (dryrun.py ``_warm_primary``, new in fix28, and ``_failback_lines``) tells the operator the
    failback would rename region A's primary and put 0 on the switch because "the writer never left
    region A", the opposite of what AWS and the run say (the replica no longer follows region A:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html)."""
    d = deploy("rds-replica")
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_on=frozenset({"PromoteReadReplica"}))
    assert died.outcome == "crashed", died
    d.op_advance(30)
    plan = _failback_plan(d)
    report = executor.run(
        "failback", d.ctx, d.runbook_clients(), params={"reason": "t"}, max_workers=1, break_lock=True
    )
    assert report.outcome == "stopped" and "is being promoted" in report.format_table(), report.format_table()
    assert "never left region A" not in plan["warm_primary"], plan["warm_primary"]
    assert "promot" in plan["reestablish_replication"], plan["reestablish_replication"]


def test_b29_3_the_dry_run_of_a_resumed_failback_does_not_say_the_writer_never_left_region_a(
    deploy: Deploy,
) -> None:
    """The dry run says what the run would do. A failover completes (region A dark, then back); the failback dies right after
    asking RDS to promote region A's replica (its writer move); the promotion completes. Region A holds
    the writer because the failback moved it, region B's instance is a standalone copy, and the failover's
    ``primaryStoppedAt`` is still set (``unfence_primary`` never ran). The resumed run's ``warm_primary``
    releases nothing (``_writer_never_left_a`` answers None: region B's instance does not replicate), but
    its dry run says "the writer never left region A: would put 0 on the switch first"."""
    d = deploy("rds-replica")
    failed_over(d)
    died = d.op_run("failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"PromoteReadReplica"}))
    assert died.outcome == "crashed", died
    d.op_advance(d.emulator.timings.promote_seconds + 60)
    assert d.writer() == d.keys()[0], "the failback moved the writer back to region A"
    plan = _failback_plan(d)
    resumed = d.op_run("failback", params={"waiterMaxAttempts": 240}, run_id=died.run_id)
    assert resumed.outcome == "done", resumed
    assert "never left region A" not in plan["warm_primary"], plan["warm_primary"]


def test_b29_4_a_failback_that_dies_during_the_dr_stacks_promotion_leaves_no_mark_for_the_canary(
    deploy: Deploy,
) -> None:
    """no_loss / traffic follows the writer, and the mark "left behind so the canary misreads it": as
    B29-1, but the runbook's failback dies right after ``warm_primary`` released the switch (its first
    PutMetricData), having written ``writerMoveRequestedAt`` (capacity.py ``_free_traffic_for_unmoved_writer``)
    while region B's replica was being promoted by the dr stack's update. The promotion completes: region
    B's instance is the writer, region A's old primary a standalone ex-writer that answers as a writer.
    Under the active latch the canary trusts region A's word because of the mark (probe.py
    ``switch_position``: "The journal's mark is what makes region A's word enough here: without it an old
    RDS primary back from an outage also says it is a writer") and puts 0 every minute, so Route 53 answers
    region A for good. Without the failback (the control in the report) the latch keeps the switch thrown
    and nothing is lost. (On the code before fix28 the same failback reaches ``switch_writer``, which writes
    the mark over the same misreading, and dies at ``release_switch``: the same end, one step later.)"""
    d = deploy("rds-replica")
    _declared_failover_promoting(d)
    # (Before the fix it died right after warm_primary's release of the switch, its first PutMetricData,
    # having written the mark; now it refuses at reestablish_replication, before warm_primary.)
    run = d.op_run("failback", crash_on=frozenset({"PutMetricData"}))
    assert run.outcome == "stopped" and "is being promoted" in run.detail, run
    assert not steps_journal(d).get("writerMoveRequestedAt"), (
        "the failback journaled a writer move to region A"
    )
    d.op_advance(d.emulator.timings.promote_seconds + TRAFFIC_GRACE + 1)
    assert d.writer() == d.keys()[1], "region B's promoted instance is the writer"
    d.op_write(5)
    assert d.where() == REGION_B or not d.emulator.serving(REGION_A), (
        "Route 53 answers region A's old primary while region B holds the writer"
    )
    assert not d.judge(), [str(v) for v in d.violations]


def test_b29_5_a_rolled_back_failover_leaves_no_failback_writer_move_mark(deploy: Deploy) -> None:
    """The mark "left behind": ``writerMoveRequestedAt`` is the failback's write-ahead record that it asked
    AWS to move the writer to region A (journal.py ``WRITER_MOVE_MARK``); the canary, ``restore_dr``,
    ``fencing._writer_moved_back`` / ``journal.accounts_for_failover`` and ``status`` read it as such. A
    forced failover whose promotion AWS refuses (PromoteReadReplica answering
    InvalidParameterCombination, an error the API documents:
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html) stops before the
    writer moved; its ``roll_back_fence`` sets the latch to standby, releases the switch, and calls
    ``warm_primary`` while the journal still holds ``primaryStoppedAt``, so fix28's
    ``_free_traffic_for_unmoved_writer`` writes the mark (and releases the released switch again) before
    ``unfence_primary`` clears the failover's marks. No failback ran; the journal says one asked to move
    the writer."""
    from tests.lambdas.failover.faults import Fault

    d = deploy("rds-replica")
    d.op_advance(120)
    d.add_fault(
        Fault(
            service="rds", operation="PromoteReadReplica", region=REGION_B, code="InvalidParameterCombination"
        )
    )
    run = d.op_run("failover", params={"force": True})
    d.clear_faults()
    assert run.outcome == "stopped" and "rolled back" in run.detail, run
    assert d.world.latch().get("state") == "standby", d.world.latch()
    assert not steps_journal(d).get("writerMoveRequestedAt"), steps_journal(d)
