"""break28: the newest BR25-4 fix (a lost run journal under an active latch, lambdas/failover/fencing.py
``journal_lost`` / ``_refuse_without_journal``) and the B26-5 fix (components/pilot_light_region.py
``_LateDependencies``), attacked in the moto world of tests/automation/test_break25.py.

Invariants (docs/safety.md): *protected again, or refuse* and *one writer*. Each finding is a strict xfail:
it fails for the reason its ``reason`` states until the product is fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import unreachable
from tests.lambdas.failover.harness import FAST, FORCED, clients_for, run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def _completed_runbook_failback(world: World) -> None:
    """A failover, then the runbook's failback run to its end: region A's ``<primary>`` is the promoted
    replica of region B's instance, the latch says standby, and ``clear_latch`` dropped the failback's
    writer-move mark (lambdas/failover/failback.py ``_end_failback_journal``). Region B's instance is a
    standalone copy frozen at that promotion until ``pulumi up -s dr`` re-seeds it ("A promoted read
    replica ... can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html)."""
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import WRITER_MOVE_MARK, _read_journal_version

    assert run_book(world, "failover").outcome == "done"
    back = run_book(world, "failback", params=FAST)
    assert back.outcome == "done", back.format_table()
    assert world.latch().get("state") == "standby", world.latch()
    ctx = RunbookContext.from_dict(world.context)
    journal, version = _read_journal_version(clients_for(world), ctx)
    assert version > 0 and not journal.get(WRITER_MOVE_MARK), (version, journal)
    dr = world.client("rds", REGION_B).describe_db_instances(DBInstanceIdentifier=ctx.dr_db_instance_id)
    assert not dr["DBInstances"][0].get("ReadReplicaSourceDBInstanceIdentifier"), "region B: frozen copy"


def test_b28_1_an_active_latch_over_a_mark_less_journal_does_not_serve_the_frozen_copy(
    make_world: Callable[..., World],
) -> None:
    """Protected again, or refuse (docs/safety.md). BR25-4 reasons that "no run leaves an active latch
    without the journal" because every way to an active latch writes a failover mark first (``fence_primary``:
    ``primaryStoppedAt``/``fencePending``; ``latch activate``: ``failoverDeclaredAt``), so under an active
    latch a missing journal means nothing can tell a resume from a failback's move. The same holds of a
    journal that exists but holds none of those marks: every run that latches writes one, and the
    runbook's failback clears them only after the latch says standby. A latch set active by hand (the state
    test_break25's held test names "a latch set by hand") over that journal, with region A dark, is the same
    ambiguity; the failover resumes and scales region B up on the copy frozen at the failback's promotion,
    losing every write region A took since."""
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import FAILOVER_MARKS, read_journal

    world = make_world("rds-replica")
    _completed_runbook_failback(world)
    ctx = RunbookContext.from_dict(world.context)
    journal = read_journal(clients_for(world), ctx)
    assert not any(journal.get(m) for m in FAILOVER_MARKS), journal
    world.client("ssm", REGION_B).put_parameter(
        Name=ctx.latch_parameter_name,
        Value=json.dumps({"state": "active", "since": "2026-12-01T00:00:00Z", "reason": "set by hand"}),
        Type="String",
        Overwrite=True,
    )
    assert world.asg(REGION_B)[1] == 0, world.asg(REGION_B)

    report = run_book(world, "failover", unreachable(REGION_A))

    assert world.asg(REGION_B)[1] == 0 and report.outcome != "done", (
        f"the failover {report.outcome}: region B's frozen copy serves {world.asg(REGION_B)}\n"
        f"{report.format_table()}"
    )


def test_b28_2_a_journal_reset_to_an_empty_object_does_not_let_a_failover_serve_the_frozen_copy(
    make_world: Callable[..., World],
) -> None:
    """Protected again, or refuse (docs/safety.md). The state of test_break25 BR25-4 (the runbook's failback
    moved the writer to region A and stopped at ``release_switch``; the latch still active), but the run
    journal is overwritten with ``{}`` instead of deleted (PutParameter --overwrite: a new version, the
    parameter kept: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
    ``{}`` is a JSON object, so it is not read back through the journal's history (journal.py
    ``_read_journal_version`` reads earlier versions only for a value that is not one): the writer-move mark
    is gone just as after DeleteParameter, and the runbook's own rule reads an empty journal as "cannot
    say" (journal.py ``_promotion_requested``). journal_lost returns None because the parameter's version
    is above 0; with region A dark nothing else speaks, and the active latch resumes the failover onto the
    copy frozen at the failback's promotion."""
    from lambdas.failover import dryrun
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.journal import _journal_name, read_journal
    from lambdas.failover.observe import observe
    from tests.automation.test_break25 import _runbook_failback_moved_the_writer

    world = make_world("rds-replica")
    _runbook_failback_moved_the_writer(world)
    ctx = RunbookContext.from_dict(world.context)
    world.client("ssm", REGION_B).put_parameter(
        Name=_journal_name(ctx), Value="{}", Type="String", Overwrite=True
    )
    assert read_journal(clients_for(world), ctx) == {}
    assert world.latch().get("state") == "active", world.latch()
    plan = dict(dryrun.plan("failover", ctx, observe(ctx, clients_for(world, unreachable(REGION_A))), FORCED))

    report = run_book(world, "failover", unreachable(REGION_A))

    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"the failover {report.outcome}; region B's frozen copy serving: {world.asg(REGION_B)}; the dry run "
        f"said {plan['confirm_primary_down']!r}\n{report.format_table()}"
    )
