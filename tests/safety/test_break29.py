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

import pytest

from automation.latch_cli import activate
from lambdas.failover import dryrun, executor
from lambdas.failover.observe import observe
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment

Deploy = Callable[..., Deployment]


def _declared_failover_promoting(d: Deployment) -> None:
    """Region A goes dark; the operator declares the failover (README, the IaC path): ``python -m automation
    latch activate`` (the failover's hold ``failoverDeclaredAt``, the latch active, the switch thrown), then
    ``pulumi up -s dr`` with ``dr:active true``, whose update promotes region B's replica in place by
    dropping ``replicate_source_db`` (components/dr_data.py: "Removing the replicate_source_db attribute
    from an existing RDS Replicate database ... will promote the database"), i.e. PromoteReadReplica,
    called here as the provider calls it. The program writes no ``promotionRequested`` mark (only the
    runbook's ``_request_promotion`` does). RDS keeps ``ReadReplicaSourceDBInstanceIdentifier`` and shows
    ``modifying`` until the promotion ends, minutes later
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Region A
    answers again meanwhile."""
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    activate(d.ctx, d.runbook_clients(), reason="declared: region A is down")
    rds_b = d.world.client("rds", REGION_B)
    rds_b.promote_read_replica(DBInstanceIdentifier=str(d.ctx.dr_db_instance_id))
    dr = rds_b.describe_db_instances(DBInstanceIdentifier=str(d.ctx.dr_db_instance_id))["DBInstances"][0]
    assert dr["DBInstanceStatus"] == "modifying" and dr.get("ReadReplicaSourceDBInstanceIdentifier"), dr
    assert d.writer() == d.keys()[1], "the promotion made region B's instance the writer (when it started)"
    d.op_advance(30)
    d.op_recover()


@pytest.mark.xfail(
    strict=True,
    reason="B29-1 open: _writer_never_left_a/_promotion_under_way see a promotion only with the runbook's "
    "promotionRequested mark; the dr stack's dr:active promotion writes none, so a failback during it reads "
    "'the writer never left region A', ends done, and region A keeps taking writes region B's new writer "
    "never gets (no_loss)",
)
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
