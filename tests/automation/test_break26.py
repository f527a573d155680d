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

from automation import cloud
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


def test_b26_2_cloud_failback_proves_zero_lag_after_the_drain_before_it_moves_the_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/safety.md, "Nothing acknowledged is lost": on a planned change (a failback) the writer moves only
    at zero lag measured after writes stopped; the configured lag bound only decides when to start draining.
    The IaC failback's writer move is the rds-replica ``dr:failback switch-writer`` update: removing
    ``replicate_source_db`` promotes region A's replica (PromoteReadReplica); AWS's promotion procedure is to
    stop the writes to the source and wait until the replica has every update before promoting, since a
    promoted replica holds what had replicated when the promotion was asked and never replicates again
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). RDS replication is
    asynchronous (``ReplicaLag``:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Monitoring.html), so every write
    region B acknowledged before the drain and had not shipped is lost to the application when the promotion
    comes right after the drain. ``cloud failback all`` now runs ``latch switch-writer`` (the zero-lag proof,
    lambdas/failover/drain_proof.py: tests/automation/test_drain_proof.py) between the drain's update and the
    switch-writer update, and stops, with no switch-writer update, when the proof is refused."""
    from tests.automation.test_cloud import FakeBackend, _outputs

    def run(refuse: bool) -> tuple[list[str | None], list[str], list[str]]:
        backend = FakeBackend(existing=("primary", "dr"))
        backend.stacks["dr"].config["dr:active"] = "true"
        _outputs(backend)
        latch: list[str] = []

        def write_latch(runbook: object, action: str) -> str:
            latch.append(action)
            if refuse and action == "switch-writer":
                raise cloud.CloudError("refused: region B is not drained")
            return action

        monkeypatch.setattr(cloud, "write_latch", write_latch)
        steps: list[str] = []
        try:
            done = cloud.failback(phase="all", stack_factory=backend, on_output=lambda _: None)
            steps = [f"{s.operation} {s.stack}" for s in done]
        except cloud.CloudError:
            pass
        at_up = [c.config.get("dr:failback") for c in backend.log if c.stack == "dr" and c.method == "up"]
        return at_up, latch, steps

    at_up, latch, steps = run(refuse=False)
    assert at_up[1:3] == ["drain", "switch-writer"], at_up
    between = steps[steps.index("up dr") + 1 :]
    between = between[between.index("up dr") + 1 : between.index("up dr", between.index("up dr") + 1)]
    assert between == ["latch switch-writer dr"], (
        f"between the drain's update and the switch-writer update `cloud failback all` runs {between}"
    )
    at_up, latch, _ = run(refuse=True)
    assert at_up == ["replicate", "drain"] and latch == ["switch-writer"], (
        f"a refused proof stops the failback before the promotion: updates {at_up}, latch actions {latch}"
    )
