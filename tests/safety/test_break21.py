"""break21: adversarial findings against fb21's failback writer-move mark (issue 10).

Each test is named after its finding (B21-n) and the invariant of docs/safety.md it holds the runbook
to. They fail on branch fb21 (the finding) and are meant to pass once it is fixed.

AWS behaviour relied on:

* RDS PromoteReadReplica: "RDS reboots the DB instance before making it available. The promotion
  process can take several minutes or longer"
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). The emulator
  (``automation/emulator/aws.py``) shows the replica ``modifying`` with its
  ``ReadReplicaSourceDBInstanceIdentifier`` until the promotion completes, which is what fb21's own
  ``restore_dr`` and tests rely on.
* Aurora global database ``FailoverState``: ``pending`` (verified before the operation starts), and
  ``cancelling``: "The request to switch over or fail over the global cluster was cancelled and the
  primary Aurora DB cluster and the selected secondary Aurora DB cluster are returning to their
  previous states" (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html).
* botocore retries: a throttled call is retried up to the client's maximum attempts and then raised
  to the caller (https://docs.aws.amazon.com/boto3/latest/guide/retries.html); the runbook's region-A
  clients make 2 attempts (``lambdas/failover/clients.py`` PRIMARY_SETTINGS).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdas.failover import on_stop, steps
from lambdas.failover.exceptions import StepFailed
from tests.lambdas.failover.faults import Fault, throttling_code
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment, RunState
from tests.safety.scenarios import failed_over as _failed_over
from tests.safety.scenarios import journal as _journal
from tests.safety.scenarios import no_region_serves_a_writer as _no_region_serves_a_writer

Deploy = Callable[..., Deployment]


def _failback_stopped_while_its_switchover_is_cancelled(d: Deployment) -> RunState:
    """aurora-global: a failback dies right after SwitchoverGlobalCluster; region A goes dark while
    the switchover is ``pending`` (AWS cancels it); the failback, resumed during ``cancelling``, stops
    at once (its writer wait gives up). Returns the stopped run, once the cancellation has ended and
    Route 53 has had its time."""
    _failed_over(d)
    died = d.op_run(
        "failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"SwitchoverGlobalCluster"})
    )
    assert died.outcome == "crashed", died
    assert _journal(d).get(steps.WRITER_MOVE_MARK), "the move was not written ahead"
    d.op_outage()  # region A goes dark while the switchover is pending: AWS cancels it
    d.op_advance(d.emulator.timings.failover_pending_seconds + 10)
    # The operator resumes the failback; its writer wait gives up at once and the run stops.
    stopped = d.op_run("failback", params={"waiterMaxAttempts": 1}, run_id=died.run_id)
    assert stopped.outcome != "done", stopped
    d.op_advance(d.emulator.timings.failover_cancel_seconds + TRAFFIC_GRACE + 60)
    return stopped


def test_b21_1_no_loss_one_writer_a_throttled_describe_in_restore_dr_undoes_the_drain_mid_promotion(
    deploy: Deploy,
) -> None:
    """B21-1 (no_loss, one_writer, the B10-1 loss back through a transient error).

    The failback dies right after PromoteReadReplica (the mark written ahead). Its rollback
    ``restore_dr`` runs while RDS promotes region A's replica (status ``modifying``, its source still
    set). Its roll-forward (``_move_writer_to_a``) describes region A's ``<primary>`` first; one
    throttled DescribeDBInstances in region A (2 attempts, both throttled: a busy account) raises a
    ClientError, which ``restore_dr`` takes for "AWS refused to move the writer". It then asks
    ``_writer_still_in_b``, which (its describes now answered) reads the promotion under way as
    "region B is the writer" (the replica still names region B's instance as its source), drops the
    mark and undoes the drain: region B takes client writes that the promotion already cut off from
    region A, and the promotion then makes region A a second writer. A throttle is not a refusal of
    the move: nothing showed that no promotion was under way."""
    d = deploy("rds-replica")
    _failed_over(d)
    died = d.op_run("failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"PromoteReadReplica"}))
    assert died.outcome == "crashed", died
    assert _journal(d).get(steps.WRITER_MOVE_MARK), "the move was not written ahead"
    # Exactly one region-A DescribeDBInstances fails (both of botocore's attempts): the roll-forward's
    # first look at <primary>. Every later call answers.
    d.add_fault(
        Fault(
            service="rds",
            operation="DescribeDBInstances",
            region=REGION_A,
            code=throttling_code("rds"),
            times=2,
        )
    )
    # Throttled past the client's retries: a retryable failure (both executors retry it), never
    # "AWS refused the move"; the retry finds the promotion under way.
    with pytest.raises(StepFailed) as throttled:
        steps.restore_dr(d.ctx, d.runbook_clients(), {})
    assert throttled.value.retryable, throttled.value
    d.clear_faults()
    result = steps.restore_dr(d.ctx, d.runbook_clients(), {})
    d.op_advance(60)
    for _ in range(6):  # clients keep writing through Route 53's answer meanwhile
        d.op_write()
        d.op_advance(20)
    d.op_advance(TRAFFIC_GRACE + 600)
    violations = {v.invariant for v in d.judge()}
    assert not ({"no_loss", "one_writer"} & violations), (result, [str(v) for v in d.violations])
    assert not d.emulator.serving(REGION_B), ("region B serves again mid-promotion", result)
    assert d.where() == REGION_A, result


def test_b21_2_converges_a_failback_stopped_while_aws_cancels_its_switchover_leaves_region_b_drained(
    deploy: Deploy,
) -> None:
    """B21-2 (converges; docs/safety.md: "Every way a failback stops after draining region B while
    region B still holds the writer (... a switchover AWS cancelled ...) gives region B back its
    capacity and functions before the run ends").

    aurora-global. The failback asks for the switchover (the mark written ahead) and dies; region A
    stops answering while the switchover is ``pending``, so AWS cancels it: FailoverState
    ``cancelling``, "the primary Aurora DB cluster and the selected secondary Aurora DB cluster are
    returning to their previous states"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html). The failback,
    resumed during ``cancelling``, stops (its writer wait gives up) and runs ``restore_dr``. The
    roll-forward sees the global cluster still ``switching-over`` and answers "the writer moves to
    region A ... region B stays drained": but nothing moves the writer. Once the cancellation ends,
    region B's cluster is the writer again, region B is drained, region A is dark, the latch keeps
    traffic on region B: no region serves the writer and no run is under way. A cancelling
    switchover is not a move under way."""
    d = deploy("aurora-global")
    stopped = _failback_stopped_while_its_switchover_is_cancelled(d)
    assert d.writer().split(":")[3] == REGION_B, "the cancelled switchover left region B the writer"
    violations = [str(v) for v in d.judge()]
    assert d.emulator.serving(REGION_B), (
        "a stopped failback left region B drained while it holds the writer",
        stopped.detail,
        violations,
    )


DEAD_RUN = "local-b21dead00000"


def _a_crashed_failover_s_state_and_region_a_refused(deploy: Deploy) -> Deployment:
    """Nothing serves the writer, as a failover that died after its fence leaves it (the dead run is
    the last run), and the database's reads are refused: a failover stops at confirm_primary_down
    without a mutating call."""
    d = deploy("rds-replica")
    _no_region_serves_a_writer(d)
    d.last_run = RunState(
        "failover", {}, "crashed", "crashed after UpdateAutoScalingGroup", mutated=True, run_id=DEAD_RUN
    )
    d.add_fault(Fault(service="rds", operation="DescribeDBInstances"))
    return d


def test_b21_3_checker_a_crashed_run_resumed_into_a_stop_that_changes_nothing_is_judged(
    deploy: Deploy,
) -> None:
    """B21-3 (the checker, ``tests/safety/model.py``; converges after a stopped run). A run that died
    after changing AWS is not judged (it is to be resumed); its resume that stops without a mutating
    call was excused as "a run that changed nothing left the state it found", but the state it found
    was its own crashed predecessor's (same run id). So the state a crash left was never judged, and
    the soak could not see B21-2 (a resumed failback whose rollback made no call). Here: region A
    fenced by hand and region B the pilot light (nothing serves the writer, as a failover that died
    after its fence leaves it); the dead run, resumed under its id, is refused region A's database
    and stops at confirm_primary_down without a mutating call. It must be judged (converges), as the
    run it resumes would be; a different run refused the same way is not (control)."""
    d = _a_crashed_failover_s_state_and_region_a_refused(deploy)
    resumed = d.op_run("failover", run_id=DEAD_RUN)
    d.clear_faults()
    assert resumed.outcome == "stopped" and not resumed.mutated, resumed
    d.op_advance(TRAFFIC_GRACE + 1)
    assert "converges" in {v.invariant for v in d.judge()}, [str(v) for v in d.violations]


def test_b21_3_control_a_different_run_refused_over_a_crash_s_state_is_not_blamed(deploy: Deploy) -> None:
    """Control for B21-3: another run (its own id) refused the same way is not blamed for the state the
    crashed run left (single flight and refusals are judged elsewhere)."""
    d = _a_crashed_failover_s_state_and_region_a_refused(deploy)
    other = d.op_run("failover")
    d.clear_faults()
    assert other.outcome == "stopped" and not other.mutated, other
    d.op_advance(TRAFFIC_GRACE + 1)
    assert not d.judge(), [str(v) for v in d.violations]


def test_b21_1_writer_still_in_b_reads_a_promotion_under_way_as_region_b_the_writer(deploy: Deploy) -> None:
    """B21-1, its root: ``_writer_still_in_b`` says (docstring) that "a promotion of ``<primary>``
    under way has already cut it off, and then region B must stay drained", but it only compares
    ``<primary>``'s ``ReadReplicaSourceDBInstanceIdentifier`` with region B's instance, which RDS keeps
    until the promotion completes; it never looks at the replica's status (``modifying``). So while
    AWS promotes region A's replica it answers "region B is the writer", and whichever path reaches
    it then (``restore_dr`` after any error of its roll-forward) undoes the drain."""
    d = deploy("rds-replica")
    _failed_over(d)
    died = d.op_run("failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"PromoteReadReplica"}))
    assert died.outcome == "crashed", died
    clients = d.runbook_clients()
    primary = clients.rds("primary").describe_db_instances(
        DBInstanceIdentifier=str(d.ctx.primary_db_instance_id)
    )["DBInstances"][0]
    assert primary["DBInstanceStatus"] != "available", primary["DBInstanceStatus"]  # being promoted
    said = on_stop._writer_still_in_b(d.ctx, clients, "restore_dr")  # pyright: ignore[reportPrivateUsage]
    assert said is None, f"a promotion under way ({primary['DBInstanceStatus']}) read as: {said}"


def test_b21_4_converges_a_failback_stopped_while_region_a_replica_is_backing_up_leaves_region_b_drained(
    deploy: Deploy,
) -> None:
    """B21-4 (converges; docs/safety.md: a failback that stops after draining region B while region B
    still holds the writer gives region B back its capacity before the run ends).

    rds-replica. ``_promote_rds`` reads *any* status but ``available`` of a replica that still has its
    source as "promotion under way" and calls nothing. RDS documents other such statuses:
    PromoteReadReplica: "a read replica cannot be promoted to a standalone instance when it is in the
    backing-up status" (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html).
    Region A's failback replica is ``backing-up`` (an automated backup; the guide recommends backups
    on a replica to be promoted) from the failback's drain on. ``switch_writer`` writes the mark, asks
    for nothing and waits; its wait gives up and the failback stops. ``restore_dr`` rolls "forward":
    the replica is still ``backing-up``, so it answers "the writer moves to region A ... region B
    stays drained" and asks for nothing either. The backup ends: region A's instance is an available
    replica again, region B's the writer, drained, under an active latch. No promotion was ever
    requested, no run is under way, and no region serves the writer."""
    from moto.rds.models import rds_backends

    from automation.emulator.aws import ACCOUNT

    d = deploy("rds-replica")
    _failed_over(d)
    backends = rds_backends[ACCOUNT][REGION_A]
    primary_id = str(d.ctx.primary_db_instance_id)

    def backup_starts(event: str, actor: str) -> None:
        # From the failback's drain on (its PutFunctionConcurrency in region B, after
        # reestablish_replication found the replica available), an automated backup of region A's
        # failback replica runs, longer than the failback's writer wait.
        replica = backends.databases.get(primary_id)
        if event == "call:PutFunctionConcurrency" and replica is not None and replica.status == "available":
            replica.status = "backing-up"

    d.on_actor = backup_starts
    try:
        # 100 attempts: the replica's creation (20 min) and the rename pass; the writer wait is 25 min.
        stopped = d.op_run("failback", params={"waiterMaxAttempts": 100})
    finally:
        d.on_actor = None
    replica = backends.databases[primary_id]
    assert stopped.outcome == "stopped" and "switch_writer" in stopped.detail, stopped.detail
    assert not _journal(d).get(steps.WRITER_MOVE_MARK), "restore_dr dropped the mark: nothing moves"
    assert replica.status == "backing-up" and replica.read_replica_source_db_instance_identifier, (
        "nothing was promoted"
    )
    replica.status = "available"  # the backup ends
    d.op_advance(TRAFFIC_GRACE + 60)
    assert d.writer().split(":")[3] == REGION_B, "no promotion was requested: region B holds the writer"
    violations = [str(v) for v in d.judge()]
    assert d.emulator.serving(REGION_B), (
        "a stopped failback left region B drained while it holds the writer, nothing under way",
        violations,
        stopped.detail,
    )
