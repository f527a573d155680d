"""break24c: findings against 506c2e0 (BR24b-4's fix: a failover refused when region A's declared writer is
standalone and was created after region B's standalone instance).

Each test is the failing evidence of one finding, marked xfail(strict=True) until it is fixed. They run the
product's unmodified runbook (``lambdas/failover``) against the moto world of the runbook tests
(``tests/lambdas/failover``), as tests/automation/test_break24b.py does.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import deny, unreachable
from tests.lambdas.failover.harness import FAST, FORCED, clients_for, run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def test_br24c_1_the_dry_run_says_the_refusal_after_the_runbook_s_failback_moved_the_writer(
    make_world: Callable[..., World],
) -> None:
    """rds-replica. The state of test_break24b BR24b-4: the runbook's failback promoted region A's new
    ``<primary>`` (a replica of region B created under the declared name: AWS "Renaming to replace an
    existing DB instance", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html)
    and stopped at ``release_switch``. The failover refuses at ``confirm_primary_down`` (506c2e0); the
    dry run, which exists to say what the run would do, must say it would be refused."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.observe import observe

    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    stopped = run_book(world, "failback", deny("cloudwatch", "PutMetricData", REGION_B), params=FAST)
    assert stopped.stopped_at == "release_switch", stopped.format_table()

    ctx = RunbookContext.from_dict(world.context)
    plan = dict(dryrun.plan("failover", ctx, observe(ctx, clients_for(world)), FORCED))  # as the run
    report = run_book(world, "failover")

    assert report.stopped_at == "confirm_primary_down", report.format_table()
    said = plan["confirm_primary_down"]
    assert "refused" in said, f"dry run: confirm_primary_down: {said!r}; the run: {report.reason}"


def test_br24c_2_a_failover_s_resume_is_not_refused_because_region_a_s_writer_was_restored(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, ``converges`` (docs/safety.md: "A run stopped at any step and resumed ends done ... with
    or without region A back"; on_stop.py: "resuming the run completes it"). The failover promotes region B and
    stops at ``notify`` (SNS Publish refused). Region A's writer was lost in the outage and the operator
    restores it from its snapshot under its declared name (RestoreDBInstanceFromDBSnapshot creates a *new*
    DB instance: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceFromDBSnapshot.html;
    the old one must be deleted first, identifiers are unique per account and region), e.g. to read what
    region B never received. Region A's declared writer is now standalone and created after region B's
    instance, which was never its replica and never a failback's source: no failback ran. Region B holds
    the writer and the latch is active; resuming the failover must complete it, not refuse it as a
    frozen copy."""
    world = make_world("rds-replica")
    first = run_book(world, "failover", deny("sns", "Publish", REGION_B))
    if first.outcome == "done":
        pytest.skip("notify does not stop the failover here")
    assert world.dr_is_writer() and world.latch()["state"] == "active", first.format_table()
    primary = world.context["primaryDbInstanceId"]
    rds = world.client("rds", REGION_A)
    old = rds.describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"][0]
    rds.create_db_snapshot(DBInstanceIdentifier=primary, DBSnapshotIdentifier="br24c-2-kept")
    rds.delete_db_instance(DBInstanceIdentifier=primary, SkipFinalSnapshot=True)
    rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=primary,
        DBSnapshotIdentifier="br24c-2-kept",
        DBInstanceClass=old["DBInstanceClass"],
    )
    restored = rds.describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"][0]
    assert restored["InstanceCreateTime"] > old["InstanceCreateTime"], "a restore is a new DB instance"

    report = run_book(world, "failover")

    assert report.outcome == "done", report.format_table()


def test_br24c_3_a_failover_after_the_runbook_s_failback_moved_the_writer_is_refused_with_region_a_dark(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, "protected again, or refuse" (docs/safety.md). The state of test_break24b BR24b-4 (the
    runbook's failback promoted region A's new ``<primary>``, a replica of region B created under the
    declared name, and stopped at ``release_switch``), then region A's API stops answering. 506c2e0 reads
    the creation order in region A only; when it cannot, ``_writer_moved_back`` says None and the active
    latch lets the failover resume ("a failover already latched"). For the dr stack's failback the record
    in region B still binds when region A is dark (fencing.py ``_refuse_after_iac_writer_move``); for the
    runbook's own failback region B holds the same evidence, the journal's writer-move mark
    (journal.py ``_writer_move_requested``), and region B's instance is a copy frozen at the switch ("A
    promoted read replica ... can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Serving it loses
    every write region A's writer took since, which is not the unplanned failover's bounded loss (the
    lag of a replicating copy) but a copy that replicates nothing."""
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import WRITER_MOVE_MARK, read_journal

    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    stopped = run_book(world, "failback", deny("cloudwatch", "PutMetricData", REGION_B), params=FAST)
    assert stopped.stopped_at == "release_switch", stopped.format_table()
    ctx = RunbookContext.from_dict(world.context)
    assert read_journal(clients_for(world), ctx).get(WRITER_MOVE_MARK), "region B's journal: the writer moved"

    report = run_book(world, "failover", unreachable(REGION_A))

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"the failover {report.outcome}; region B's frozen copy serving: {world.asg(REGION_B)}\n"
        f"{report.format_table()}"
    )
