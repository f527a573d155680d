"""lambdas/failover/promotion.py: a forced failover whose fence was left pending completes it before the
writer moves when region A's database answers again (break35 B35-2).

Invariant (docs/safety.md, no_loss): the one exception to "nothing acknowledged is lost" is an unplanned
change, a writer move while the old writer's region does not answer. "Does not answer" is judged right
before the writer moves, not only at the fence: a region A back between its fence (left pending) and the
promotion still holds its unshipped tail, so the promotion fences it there (the canary's pending fence,
``fence_primary`` with ``onlyIfPending``) and takes the lossless wait. A ``--planned`` run is never
completed that way (it refuses: test_promote_needs_stop_stamp.py), and over a region A still dark the
promotion stays unplanned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta

import pytest

from lambdas.failover import promotion
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.journal import _journal, read_journal
from tests.lambdas.failover.faults import Fault, unreachable
from tests.lambdas.failover.harness import HealthServer, ShiftedClock, clients_for
from tests.lambdas.failover.world import REGION_A, World

MODES = ["rds-replica", "aurora-global"]


def _pending_fence(world: World, *faults: Fault) -> tuple[RunbookContext, Clients]:
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world, *faults, clock=ShiftedClock())
    pending = clients.clock.now() - timedelta(minutes=3)
    _journal(clients, ctx, fencePending=pending.astimezone(UTC).isoformat(timespec="seconds"))
    return ctx, clients


def _writer(world: World, mode: str) -> object:
    return world.dr_is_writer() if mode == "rds-replica" else world.global_writer()


@pytest.mark.parametrize("mode", MODES)
def test_a_forced_promotion_fences_a_region_a_that_answers_again_and_waits_losslessly(
    make_world: Callable[..., World], mode: str
) -> None:
    world = make_world(mode)
    ctx, clients = _pending_fence(world)
    writer = _writer(world, mode)

    result = promotion.promote_database(ctx, clients, {"wait": False, "reason": "test"})

    journal = read_journal(clients, ctx)
    assert journal.get("fencePending") is None, "the pending fence was completed"
    assert journal.get("primaryStoppedAt"), "one_writer: region A's writes stopped, and when, recorded"
    assert world.asg(REGION_A)[:2] == (0, 0), "one_writer: region A's web tier fenced before the writer moves"
    assert result.status == "in_progress", (result.status, result.detail)
    assert _writer(world, mode) == writer, (
        "no_loss: the writer moved before zero lag was seen after region A's writes stopped"
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_forced_promotion_over_a_region_a_still_dark_stays_unplanned(
    make_world: Callable[..., World], health: HealthServer, mode: str
) -> None:
    world = make_world(mode)
    # Dark: every AWS endpoint fails to connect and its web tier answers nothing healthy (the late look
    # counts a web tier answering 200 as region A answering: break38 B38-1).
    health.routes["/primary"] = lambda: (503, {"region": REGION_A, "error": "unreachable"})
    ctx, clients = _pending_fence(world, unreachable(REGION_A))
    before_a = world.asg(REGION_A)

    result = promotion.promote_database(ctx, clients, {"wait": True, "reason": "test"})

    journal = read_journal(clients, ctx)
    assert journal.get("fencePending"), "nothing reached region A: its fence stays pending for the canary"
    assert not journal.get("primaryStoppedAt")
    assert world.asg(REGION_A) == before_a
    assert result.status == "done", (result.status, result.detail)
    if mode == "rds-replica":
        assert world.dr_is_writer()
        assert "unplanned" in result.detail, result.detail


def test_a_planned_promotion_is_not_fenced_late_but_refused(make_world: Callable[..., World]) -> None:
    """``--planned`` asked for no loss: region A dark at its fence and back by the promotion is refused
    (PlannedNeedsRegionA), not fenced here and promoted (the Aurora case: test_promote_needs_stop_stamp.py)."""
    world = make_world("rds-replica")
    ctx, clients = _pending_fence(world)
    before_a = world.asg(REGION_A)

    with pytest.raises(StepFailed) as refused:
        promotion.promote_database(ctx, clients, {"wait": True, "planned": True, "reason": "test"})

    assert refused.value.code == "PlannedNeedsRegionA", refused.value.reason
    assert world.asg(REGION_A) == before_a, "a refused planned run changes nothing in region A"
    assert read_journal(clients, ctx).get("fencePending")
    assert not world.dr_is_writer()


def test_late_fence_misses_count_per_pending_fence_across_invocations(
    make_world: Callable[..., World],
) -> None:
    """converges and traffic_follows_writer (break37 B37-3): the bound on late fences region A does not let
    finish holds under Step Functions, where each poll of ``promote_database`` is a new invocation, so the
    misses are counted in the run journal; a new pending fence (another ``fencePending`` stamp) counts from
    zero, so one failover's flapping never shortens the next one's."""
    world = make_world("rds-replica")
    ctx, clients = _pending_fence(world)
    assert [promotion._late_fence_missed(clients, ctx) for _ in range(3)] == [1, 2, 3]
    later = (clients.clock.now() - timedelta(minutes=1)).astimezone(UTC).isoformat(timespec="seconds")
    _journal(clients, ctx, fencePending=later)
    assert promotion._late_fence_missed(clients, ctx) == 1
    assert read_journal(clients, ctx)[promotion.LATE_FENCE_MISSES_MARK] == {
        "fencePending": later,
        "misses": 1,
    }
