"""Review break20: ``promote_database`` reads a journal holding both failover marks as unplanned.

Each test names the finding (B20-n) and the invariant it protects (docs/safety.md). Findings are
regression tests: each failed before its fix (soak20 review) and passes now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from lambdas.failover import steps
from lambdas.failover.context import RunbookContext
from tests.lambdas.failover.faults import FaultSwitch, unreachable
from tests.lambdas.failover.harness import FORCED, clients_for
from tests.lambdas.failover.world import REGION_A, REGION_B, World


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_b20_3_no_unplanned_promotion_while_the_joined_fence_of_a_returning_region_a_is_under_way(
    make_world: Callable[..., World], mode: str
) -> None:
    """Nothing acknowledged is lost on a planned change: a promotion while region A answers moves the
    writer only at zero lag measured after its writes stopped (docs/safety.md, no_loss).

    The schedule: a forced failover's fence finds region A unreachable (``fencePending``), latches
    and throws the switch. Region A answers again; the canary asks for the pending fence, which joins
    the failover holding the lock and fences at once (``lock.join_fence``, docs/safety.md single
    flight). ``fence_primary`` stamps ``primaryStoppedAt`` (in ``fence_region_a``, before the
    change), fences, and only then (after, in aurora-global, copying the unplanned-failover
    snapshots) clears ``fencePending``; a Lambda invocation that dies in between leaves both marks
    until the canary's next minute. The failover's ``promote_database`` polls meanwhile.

    Before soak20 the fresh stamp made the promotion planned: it waited for the drain and zero lag
    after the stamp. Under soak20 a stamp beside ``fencePending`` reads as "region A dark since an
    earlier fence", and the replica is promoted unplanned (PromoteReadReplica with a loss estimate)
    although region A answers and was fenced a moment ago: the writes its tiers acknowledged up to
    the fence and in its drain (the ALB deregistration delay) and not yet replicated are lost.
    RDS: a promoted replica stops replicating for good ("a promoted read replica ... can't be made a
    read replica again", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html).
    Aurora: the managed failover with ``AllowDataLoss`` is the one for an unavailable primary and may
    lose what the secondary has not received, where a switchover (region A answers) waits for it
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html).
    """
    world = make_world(mode, lag_metrics=False)  # no zero lag proven yet
    faults = FaultSwitch()
    clients = clients_for(world, faults)
    ctx = RunbookContext.from_dict(world.context)

    # 1. The failover's fence: region A does not answer.
    faults.active = [unreachable(REGION_A)]
    assert steps.fence_primary(ctx, clients, FORCED).status == "warning"
    steps.write_latch(ctx, clients, FORCED)
    steps.throw_switch(ctx, clients, FORCED)
    faults.active = []
    # The switch has been thrown for minutes: Route 53 answers region B (the unplanned wait is over).
    m = ctx.switch_metric
    now = clients.clock.now()
    world.client("cloudwatch", REGION_B).put_metric_data(
        Namespace=m.namespace,
        MetricData=[
            {
                "MetricName": m.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions.items()],
                "Timestamp": now - timedelta(minutes=k),
                "Value": 1.0,
            }
            for k in range(1, 6)
        ],
    )

    # 2. Region A answers again; the canary's joined fence has stamped and fenced it, and has not
    #    cleared fencePending yet.
    actions = steps.fence_region_a(ctx, clients, "fence_primary")
    assert actions, "region A was not fenced before: the joined fence changed it"
    journal = steps.read_journal(clients, ctx)
    assert journal.get("fencePending") and journal.get("primaryStoppedAt"), journal

    # 3. The failover's promotion poll, region A answering.
    result = steps.promote_database(ctx, clients, FORCED)

    if mode == "aurora-global":
        assert "unplanned" not in result.detail, (
            f"global cluster {ctx.global_cluster_id}: a managed failover with data loss while region A "
            f"({REGION_A}) answers and its writes stopped at {journal['primaryStoppedAt']}: no_loss on a "
            f"planned change ({result.status}: {result.detail})"
        )
        return
    replica = world.db(REGION_B, ctx.dr_db_instance_id or "") or {}
    assert replica.get("ReadReplicaSourceDBInstanceIdentifier"), (
        f"RDS instance {ctx.dr_db_instance_id} ({REGION_B}) promoted unplanned while region A "
        f"({REGION_A}) answers and its writes stopped at {journal['primaryStoppedAt']}, no zero lag "
        f"proven: no_loss on a planned change ({result.status}: {result.detail})"
    )
