"""The promotion mark (``steps.PROMOTION_MARK``): the runbook's own record that it asked RDS to promote a
read replica, written before PromoteReadReplica (issue 10, the B21b-2/6/9 fixes).

The B21b tests (``test_break21b.py``) show what the mark makes possible: a replica modified or rebooted
for maintenance is not read as promoting, and a stopped failback over a dark region A knows no
promotion was requested. These hold the other side: where a promotion was (or may have been)
requested, the runbook still reads it as under way, so nothing acknowledged is lost.

AWS behaviour relied on:

* RDS documents ``modifying`` "because of a customer request to modify the DB instance" and
  ``rebooting`` "because of a customer request or an Amazon RDS process that requires the rebooting
  of the DB instance" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html),
  and a promotion passes through both ("RDS reboots the DB instance before making it available",
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html): the status
  alone cannot tell them apart.
* A promotion ends replication: a write region B takes once region A's replica is promoting never
  reaches region A (same page).
* FailoverState ``cancelling``: "The request to switch over or fail over the global cluster was
  cancelled" (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html); a
  switchover is for "controlled scenarios ... where all the Aurora clusters ... are in a healthy
  state"
  (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdas.failover import journal, steps
from lambdas.failover.exceptions import StepFailed
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment
from tests.safety.scenarios import after_first_call
from tests.safety.scenarios import failed_over as _failed_over
from tests.safety.scenarios import journal as _journal

Deploy = Callable[..., Deployment]


def test_no_loss_region_a_dark_after_the_promotion_was_requested_keeps_region_b_drained(
    deploy: Deploy,
) -> None:
    """no_loss, one_writer (docs/safety.md, converges: "Once the failback has asked AWS to move the
    writer ... ``restore_dr`` rolls the move forward instead and keeps region B drained"). B21b-9's
    twin: the failback dies right after PromoteReadReplica (the mark written ahead of it), and region
    A goes dark. ``restore_dr`` cannot describe region A's replica; the journal says a promotion was
    requested, so region B stays drained (a write it took would never reach the promoted replica)
    and the rollback fails retryably, saying so. Region A back, the resumed failback completes: region
    A holds the writer and nothing acknowledged was lost. (Read as "no promotion requested", as
    B21b-9's region A is, region B would serve again while AWS promotes region A's replica.)"""
    d = deploy("rds-replica")
    _failed_over(d)
    died = d.op_run("failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"PromoteReadReplica"}))
    assert died.outcome == "crashed", died
    mark = _journal(d).get(steps.PROMOTION_MARK)
    assert mark == {**mark, "instance": str(d.ctx.primary_db_instance_id), "region": REGION_A}, mark
    d.op_outage()
    with pytest.raises(StepFailed) as kept:
        steps.restore_dr(d.ctx, d.runbook_clients(), {})
    assert kept.value.retryable and "stays drained" in kept.value.reason, kept.value
    d.op_advance(60)
    for _ in range(6):  # clients keep writing through Route 53's answer meanwhile
        d.op_write()
        d.op_advance(20)
    assert not d.emulator.serving(REGION_B), "region B serves while region A's replica is promoted"
    d.op_recover()
    resumed = d.op_run("failback", params={"waiterMaxAttempts": 240}, run_id=died.run_id)
    assert resumed.outcome == "done", resumed.detail[-400:]
    d.op_advance(TRAFFIC_GRACE + 60)
    violations = [str(v) for v in d.judge()]
    assert not [v for v in violations if v.startswith(("no_loss", "one_writer"))], violations
    assert d.writer().split(":")[3] == REGION_A and d.where() == REGION_A, violations


def test_converges_a_journal_that_cannot_say_leaves_a_promoting_status_its_word(deploy: Deploy) -> None:
    """no_loss (the safe reading): when the run journal cannot say whether the runbook asked for the
    promotion (empty, or garbled, which reads the same), a replica ``modifying`` is taken for one
    being promoted, as before the mark existed; with a journal that names no request of it, it is
    not (B21b-6)."""
    from moto.rds.models import rds_backends

    from automation.emulator.aws import ACCOUNT

    d = deploy("rds-replica")
    clients = d.runbook_clients()
    replica_id = str(d.ctx.dr_db_instance_id)
    rds_backends[ACCOUNT][REGION_B].databases[replica_id].status = "modifying"
    instance = clients.rds("dr").describe_db_instances(DBInstanceIdentifier=replica_id)["DBInstances"][0]
    assert not _journal(d), "a fresh deployment's journal is empty"
    under_way = journal._promotion_under_way  # pyright: ignore[reportPrivateUsage]
    assert under_way(clients, d.ctx, "dr", instance), "an empty journal read as 'no promotion requested'"
    journal._journal(clients, d.ctx, fencePending="2026-12-01T00:00:00+00:00")  # pyright: ignore[reportPrivateUsage]
    assert not under_way(clients, d.ctx, "dr", instance), "maintenance read as a promotion"
    journal._request_promotion(clients, d.ctx, "dr", replica_id)  # pyright: ignore[reportPrivateUsage]
    assert under_way(clients, d.ctx, "dr", instance), "the runbook's own request not read as a promotion"


def test_no_loss_a_planned_aurora_failover_whose_switchover_aws_cancels_never_fails_over_with_data_loss(
    deploy: Deploy,
) -> None:
    """no_loss (docs/safety.md: a forced failover that lost region A fails over with ``AllowDataLoss``;
    "``--planned`` still stops"). B21b-7's ``--planned`` twin: the switchover AWS accepted is cancelled
    (region A dark right after the request); the run asks again, AWS refuses the switchover of an
    unreachable primary, and the run stops: no managed failover, which ``--planned`` never asked
    for."""
    d = deploy("aurora-global")
    d.op_advance(120)
    with after_first_call(d, "SwitchoverGlobalCluster", d.op_outage):  # region A dark right after it
        run = d.op_run("failover", params={"force": True, "planned": True})
    assert any(e.kind == "switching-over-cancelling" for e in d.emulator.events), "AWS cancelled"
    assert run.outcome == "stopped", run.detail[-400:]
    assert not any(e.kind == "failing-over" for e in d.emulator.events), (
        "a managed failover (AllowDataLoss) for --planned",
        run.detail[-400:],
    )
    assert d.writer() == d.keys()[0], "region A's cluster is the writer again"
