"""break26: findings against int26 (33fa9cc, 0b6c5c6, 6da274c, da64100: complete needs route-back, the
failback record's place in the update, the failback-stamp-tag evidence, ``latch activate``'s refusal).

They run the product's unmodified runbook (``lambdas/failover``) and CLI against the moto world of the
runbook tests (``tests/lambdas/failover``), as tests/automation/test_break25.py does. A strict xfail is
the failing evidence of an open finding; a plain test pins what held (and what the lifecycle harness
must model: tests/components/test_break26.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.harness import clients_for, run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def test_b26_held_after_a_completed_runbook_failback_latch_activate_and_the_failover_refuse(
    make_world: Callable[..., World],
) -> None:
    """Held (and B26-1's reference). The runbook's failback ran to the end (latch standby, run journal
    cleared, writer-move mark gone) and ``pulumi up -s dr`` has not re-seeded region B yet: region A's
    ``<primary>`` is the promoted replica of region B's instance, tagged with the failback stamp; region B's
    instance is a copy frozen at that promotion ("A promoted read replica ... can't be made a read replica
    again": https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). A declared
    failover (``latch activate``) refuses, changing nothing, and so does the runbook's failover: region B's
    frozen copy is never served."""
    from automation import latch_cli
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.exceptions import StepFailed
    from lambdas.failover.journal import WRITER_MOVE_MARK, read_journal

    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    done = run_book(world, "failback")
    assert done.outcome == "done", done.format_table()
    ctx = RunbookContext.from_dict(world.context)
    assert not read_journal(clients_for(world), ctx).get(WRITER_MOVE_MARK), (
        "the completed failback cleared it"
    )
    latch_before = world.latch()

    with pytest.raises(StepFailed) as refused:
        latch_cli.activate(ctx, clients_for(world), reason="declared")
    report = run_book(world, "failover")

    assert "region A holds the writer" in str(refused.value), refused.value
    assert world.latch() == latch_before, "latch activate changed nothing"
    assert report.stopped_at == "confirm_primary_down" and world.asg(REGION_B)[1] == 0, (
        f"{report.outcome}; region A {world.asg(REGION_A)}, region B {world.asg(REGION_B)}\n{report.format_table()}"
    )
