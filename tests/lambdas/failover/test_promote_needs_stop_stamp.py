"""lambdas/failover/promotion.py: a planned Aurora writer move never switches over without a record of
region A's writes stopping (break34 B34-1).

Invariant (docs/safety.md, no_loss): "when the writer moves on a planned change, the new writer's region
holds every DynamoDB item and S3 receipt acknowledged in the old one". A switchover waits for the Aurora
secondary only (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html);
the receipts and the global table are waited for from the fence's ``primaryStoppedAt``. With no such stamp
since the latest fence attempt (a declared failover that fenced nothing; ``--planned`` over a region A dark
at its fence, its fence only pending, and back by the promotion) the step refuses and the writer stays.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from lambdas.failover import promotion
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.journal import _journal
from tests.lambdas.failover.harness import ShiftedClock, clients_for
from tests.lambdas.failover.world import World


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


@pytest.mark.parametrize(
    "marks",
    [
        pytest.param(lambda now: {"failoverDeclaredAt": _stamp(now)}, id="declared-failover-no-fence"),
        pytest.param(
            lambda now: {
                "primaryStoppedAt": _stamp(now - timedelta(hours=2)),
                "fencePending": _stamp(now - timedelta(minutes=3)),
            },
            id="planned-region-a-dark-at-fence-back-by-promotion",
        ),
        pytest.param(
            lambda now: {"fencePending": _stamp(now - timedelta(minutes=3))}, id="fence-pending-only"
        ),
    ],
)
def test_a_planned_aurora_move_with_no_stop_recorded_is_refused_and_the_writer_stays(
    make_world: Callable[..., World], marks: Callable[[datetime], dict[str, str]]
) -> None:
    world = make_world("aurora-global")
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world, clock=ShiftedClock())
    _journal(clients, ctx, **marks(clients.clock.now()))
    writer = world.global_writer()

    with pytest.raises(StepFailed) as refused:
        promotion.promote_database(ctx, clients, {"planned": True, "wait": True, "reason": "test"})

    assert refused.value.code == "PlannedNeedsRegionA", refused.value.reason
    assert world.global_writer() == writer, (
        "no_loss: the writer moved with no record of region A's writes stopping"
    )
