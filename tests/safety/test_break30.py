"""break30: break29's fixes (fix28) attacked in the safety model: the dry run's reading of "the writer never
left region A" (lambdas/failover/dryrun.py ``_writer_never_left_a``) against the run's
(lambdas/failover/failback.py ``_writer_never_left_a``), in aurora-global.

Invariant: the dry run says what the run would do ("Each step, planned from the state as read now"), and the
run's ``warm_primary`` releases the switch only over a writer that never left region A (traffic follows the
writer). Each finding is a strict xfail: it fails for the reason its ``reason`` states until the product is
fixed.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdas.failover import dryrun
from lambdas.failover.failback import _writer_never_left_a
from lambdas.failover.observe import observe
from tests.lambdas.failover.world import REGION_B
from tests.safety.model import Deployment

Deploy = Callable[..., Deployment]


def test_the_dry_run_during_a_failover_s_switchover_does_not_say_the_writer_never_left_region_a(
    deploy: Deploy,
) -> None:
    """A forced failover fences region A (which answers), waits for zero lag and asks for the switchover
    (SwitchoverGlobalCluster), then its process dies. While AWS switches over, the global cluster's
    ``FailoverState`` is set and region A's cluster keeps ``IsWriter`` until the switchover completes
    ("This data type is empty unless a switchover or failover operation is scheduled or is in progress":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html). The run's
    ``_writer_never_left_a`` answers None (the writer is leaving region A), so its ``warm_primary``
    releases nothing; the dry run tells the operator it would put 0 on the switch because the writer
    never left region A."""
    d = deploy("aurora-global")
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_on=frozenset({"SwitchoverGlobalCluster"}))
    assert died.outcome == "crashed", died
    group = d.world.client("rds", REGION_B).describe_global_clusters(
        GlobalClusterIdentifier=str(d.ctx.global_cluster_id)
    )["GlobalClusters"][0]
    assert group.get("FailoverState"), f"the switchover is under way: {group}"
    assert _writer_never_left_a(d.ctx, d.runbook_clients(), "t") is None, "the run: the writer is leaving A"

    plan = dict(dryrun.plan("failback", d.ctx, observe(d.ctx, d.runbook_clients()), {"reason": "t"}))

    assert "never left region A" not in plan["warm_primary"], plan["warm_primary"]
