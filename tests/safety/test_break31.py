"""break31: fix30 attacked in the safety model (aurora-global): the failback run after a failover that died
while AWS switches the global database over to region B.

Invariant (docs/safety.md): *traffic follows the writer*, *one writer*. While a switchover is under way the
global cluster's ``FailoverState`` is set and region A's cluster keeps ``IsWriter`` until it completes ("This
data type is empty unless a switchover or failover operation is scheduled or is in progress":
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html). A probe of fix30's reading of
``FailoverState`` (observe.py ``global_failover``, failback.py ``_writer_never_left_a``): the failback run
then, judged by the model. It passes at fix30 (no finding): kept as a regression test.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdas.failover.lock import _key
from tests.lambdas.failover.world import REGION_B
from tests.safety.model import Deployment

Deploy = Callable[..., Deployment]


def test_a_failback_during_the_failover_s_switchover_breaks_no_invariant(deploy: Deploy) -> None:
    """A forced failover fences region A, asks for the switchover and dies; the operator runs the failback
    at once (region A answers). The failback must not finish while the writer is on its way to region B."""
    d = deploy("aurora-global")
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_on=frozenset({"SwitchoverGlobalCluster"}))
    assert died.outcome == "crashed", died
    group = d.world.client("rds", REGION_B).describe_global_clusters(
        GlobalClusterIdentifier=str(d.ctx.global_cluster_id)
    )["GlobalClusters"][0]
    assert group.get("FailoverState"), f"the switchover is under way: {group}"

    # The operator knows the failover's process died and breaks its lock (the CLI's --break-lock; the
    # model's op_run has no such switch, so the lease item is deleted as the break replaces it).
    d.world.client("dynamodb", REGION_B).delete_item(TableName=str(d.ctx.lock_table_name), Key=_key())
    back = d.op_run("failback", params={"reason": "t", "waiterMaxAttempts": 240})
    d.judge(after_run=True)
    d.op_advance(600)
    d.judge()
    assert back.outcome in ("done", "stopped"), back
    assert not d.violations, [str(v) for v in d.violations]
