"""break21b: adversarial findings against b104's second round of runbook fixes (issue 10).

Each test is named after its finding (B21b-n) and the invariant of docs/safety.md it holds the
runbook to. They fail on branch b104 (the finding) and are meant to pass once it is fixed.

AWS behaviour relied on:

* boto3 retries: calls "fail due to unexpected issues on the client side" and "these kinds of
  failures often don't require special handling and the call should be made again"; among the
  errors retried are the "General socket/connection errors ConnectionError ConnectionClosedError
  ReadTimeoutError EndpointConnectionError" (https://docs.aws.amazon.com/boto3/latest/guide/retries.html).
  One that outlasts the client's attempts (2 for the runbook's region-A clients,
  ``lambdas/failover/clients.py``) is raised to the caller: the request got no answer, which is not
  proof that the region is down.
* RDS read replicas replicate asynchronously, and promotion ends replication: "If you are aware of
  the ramifications and limitations of asynchronous replication and you still want to use read
  replica promotion for data recovery, you can"
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). What the
  replica has not applied when it is promoted is not on the new writer (the emulator's model too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from lambdas.failover.exceptions import StepFailed
from tests.lambdas.failover.faults import Fault, throttling_code
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment
from tests.safety.scenarios import after_first_call
from tests.safety.scenarios import failed_over as _failed_over
from tests.safety.scenarios import journal as _journal

Deploy = Callable[..., Deployment]


@pytest.mark.parametrize("blip", [True, False], ids=["blip", "control-no-blip"])
def test_b21b_1_no_loss_a_transient_connection_error_makes_a_forced_failover_promote_unplanned(
    deploy: Deploy, blip: bool
) -> None:
    """B21b-1 (no_loss; docs/safety.md: "On a planned change (failback, ``--planned``, a forced
    failover while the source database answers) the writer moves only at zero lag").

    rds-replica. A burst of client writes leaves region B's replica minutes behind (ReplicaLag).
    A forced failover fences region A, which answers, and takes the lossless path: drain, then zero
    lag proven after it. While it waits, one DescribeDBInstances of region A's database fails with a
    connection error on both of the region-A client's attempts (a network blip; region A answers
    before and after, it never goes dark). ``_region_a_dark`` takes that single connection error for
    "region A went dark" (B10-4), the wait raises ``_SourceDark``, and the run promotes region B's
    replica *unplanned* while region A answers and its replica is still applying the burst: the
    writes region A acknowledged before its fence and had not yet replicated are not on the new
    writer. The emulator excuses a promotion's lost tail only when the source's region is dark at the
    request; here it is not (and was not). Control (no blip): the same burst and failover wait for
    zero lag and lose nothing."""
    d = deploy("rds-replica")
    d.op_advance(120)
    fault = Fault(service="rds", operation="DescribeDBInstances", region=REGION_A, unreachable=True, times=0)
    d.add_fault(fault)
    outer = d.on_actor

    def blip_at_the_marker(event: str, actor: str) -> None:
        # The lossless wait invokes region A's ledger marker (MARKER_AFTER past the drain), then asks
        # whether region A is dark: one network blip there, both attempts.
        if outer is not None:
            outer(event, actor)
        if event == "call:Invoke" and fault.times == 0 and blip:
            fault.times = 2

    # The burst: 0.05 s of replica apply per write (automation/emulator Timings.rds_apply), so 10,000
    # writes leave the replica ~500 s behind, past the 300 s drain.
    d.op_write(10_000)
    d.on_actor = blip_at_the_marker
    try:
        run = d.op_run("failover", params={"force": True})
    finally:
        d.on_actor = outer
        d.clear_faults()
    assert fault.injected == (2 if blip else 0), ("the blip was not reached", fault.seen[-5:], run)
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    d.op_advance(TRAFFIC_GRACE + 1)
    violations = [str(v) for v in d.judge()]
    assert not any(v.startswith("no_loss") for v in violations), (run.detail, violations)
    assert run.outcome == "done", run


@pytest.mark.parametrize("status", ["modifying", "rebooting"])
def test_b21b_2_converges_a_replica_modified_or_rebooted_for_another_reason_is_read_as_promoting(
    deploy: Deploy, status: str
) -> None:
    """B21b-2 (converges; docs/safety.md: "Only when AWS refuses the move and region B still holds the
    writer with nothing under way does region B serve again" and a stopped failback leaves a region
    serving the writer). What the B21-4 fix missed.

    rds-replica. ``PROMOTING_STATUSES`` = ("modifying", "rebooting") are taken for "a promotion is
    under way", whatever caused them. RDS documents both for other causes: ``modifying`` "because of
    a customer request to modify the DB instance", ``rebooting`` "because of a customer request or an
    Amazon RDS process that requires the rebooting of the DB instance"
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html): an
    instance-class or storage change applied immediately, a parameter-group reboot, maintenance.

    Region A's failback replica is in that status (not a promotion) from the failback's drain on,
    longer than its writer wait. ``switch_writer`` writes the mark and, reading a promotion under way,
    asks for nothing; its wait gives up and the failback stops. ``restore_dr`` rolls "forward": the
    replica is still ``status``, so ``_promote_rds`` answers ``underWay`` and ``restore_dr`` says "the
    writer moves to region A ... region B stays drained", asking for nothing either. The
    modification ends: region A's instance is an available replica again, region B's the writer,
    drained, under an active latch. No promotion was ever requested, no run is under way, and no
    region serves the writer (the same end as B21-4's ``backing-up``)."""
    from moto.rds.models import rds_backends

    from automation.emulator.aws import ACCOUNT
    from lambdas.failover import steps

    d = deploy("rds-replica")
    _failed_over(d)
    backends = rds_backends[ACCOUNT][REGION_A]
    primary_id = str(d.ctx.primary_db_instance_id)

    def modified(event: str, actor: str) -> None:
        # From the failback's drain on (its PutFunctionConcurrency in region B, after
        # reestablish_replication found the replica available), region A's failback replica is
        # modified (or rebooted) at a customer's request, longer than the failback's writer wait.
        replica = backends.databases.get(primary_id)
        if event == "call:PutFunctionConcurrency" and replica is not None and replica.status == "available":
            replica.status = status

    d.on_actor = modified
    try:
        # 100 attempts: the replica's creation (20 min) and the rename pass; the writer wait is 25 min.
        stopped = d.op_run("failback", params={"waiterMaxAttempts": 100})
    finally:
        d.on_actor = None
    replica = backends.databases[primary_id]
    assert stopped.outcome == "stopped" and "switch_writer" in stopped.detail, stopped.detail
    assert replica.status == status and replica.read_replica_source_db_instance_identifier, (
        "nothing was promoted"
    )
    assert not any(
        e.kind == "promotion-started" and e.detail.startswith(f"{primary_id} ") for e in d.emulator.events
    ), "a promotion was requested"
    replica.status = "available"  # the modification (or reboot) ends
    d.op_advance(TRAFFIC_GRACE + 60)
    assert d.writer().split(":")[3] == REGION_B, "no promotion was requested: region B holds the writer"
    violations = [str(v) for v in d.judge()]
    journal = steps.read_journal(d.runbook_clients(), d.ctx)
    assert d.emulator.serving(REGION_B), (
        "a stopped failback left region B drained while it holds the writer, nothing under way",
        violations,
        stopped.detail,
        journal.get(steps.WRITER_MOVE_MARK),
    )


def test_b21b_3_single_flight_a_retried_rollback_acts_after_another_run_took_the_lock(
    deploy: Deploy,
) -> None:
    """B21b-3 (single_flight; docs/safety.md: "Two runs never act at once ... Kept by the runbook
    lock"; the executor: a run that finds its lock gone "stops before its next change").

    The CLI now retries a retryable ``on_stop`` failure (``STEP_RETRY.delays()``), but only the first
    attempt is gated on the lock (``heartbeat.lost is None``); the retries neither refresh the lease
    nor look at it. A forced failover fences region A; a throttling storm in region B stops it at
    ``scale_web_tier`` (soak seed 219's shape) and fails ``roll_back_fence``'s first attempt (a
    throttled read of region B's database). Meanwhile a second operator, believing the first CLI
    dead, takes the lock with ``--break-lock`` (``lock.acquire(break_lock=True)``): from then on the
    lock is that run's. The first run's retries still run ``roll_back_fence``: they raise region A's
    web tier, re-enable its event source mapping, write SSM (PutParameter) and unthrottle its
    functions, under the other run's lock (judged from the calls AWS received, attributed to the first
    run, and the lock item naming the other)."""
    from lambdas.failover import lock

    d = deploy("rds-replica")
    d.op_advance(120)
    outer = d.on_actor
    storm: list[bool] = []
    runs: dict[str, str] = {}
    after_takeover: list[str] = []
    other = "local-b21bother0000"

    def throttle_region_b_after_the_fence(event: str, actor: str) -> None:
        if outer is not None:
            outer(event, actor)
        if event == "begin" and "first" not in runs and not actor.startswith("invoke-"):
            runs["first"] = actor
        if runs.get("taken") and actor == runs.get("first") and event.startswith("call:"):
            after_takeover.append(event.removeprefix("call:"))
        if event == "call:UpdateAutoScalingGroup" and not storm:  # the fence's last call
            storm.append(True)
            d.op_throttle(REGION_B, 20)

    class TakeOverAfterTheFirstRollback(logging.Handler):
        # When the executor records roll_back_fence's first attempt as failed (its "step finished"
        # log line), before it sleeps and retries, another operator breaks the lock.
        def emit(self, record: logging.LogRecord) -> None:
            try:
                fields = json.loads(record.getMessage())
            except ValueError:
                return
            if (
                fields.get("message") == "step finished"
                and fields.get("step") == "roll_back_fence"
                and fields.get("status") == "failed"
                and "taken" not in runs
            ):
                runs["taken"] = "yes"
                lock.acquire(
                    d.runbook_clients(),
                    d.ctx,
                    run_id=other,
                    owner="second-operator@host",
                    runbook="failover",
                    break_lock=True,
                )

    handler = TakeOverAfterTheFirstRollback(level=logging.ERROR)
    logger = logging.getLogger("pilotlight.failover")
    logger.addHandler(handler)
    d.on_actor = throttle_region_b_after_the_fence
    try:
        run = d.op_run("failover", params={"force": True})
    finally:
        d.on_actor = outer
        logger.removeHandler(handler)
    assert storm and runs.get("taken"), ("the takeover was not reached", runs, run)
    holder = lock.read(d.runbook_clients(), d.ctx)
    assert holder is not None and holder.run_id == other, holder
    assert not after_takeover, (
        f"run {runs['first']} made mutating calls after {other} took the lock: {after_takeover}",
        run.detail,
    )


@pytest.mark.parametrize("planned", [False, True], ids=["forced", "planned"])
def test_b21b_4_no_loss_a_forced_failover_over_a_backing_up_replica_promotes_without_the_zero_lag_wait(
    deploy: Deploy, planned: bool
) -> None:
    """B21b-4 (no_loss; docs/safety.md: "a forced failover while the source database answers ... the
    writer moves only at zero lag"). What the B21-4 fix broke in the *failover*'s promote_database.

    rds-replica. ``_promote_database`` runs the lossless wait only when region B's replica is
    ``available`` (``replicating and status == "available" and planned``); any other status skips
    it. Before b104, ``_promote_rds`` then read the replica as "promotion under way" and asked for
    nothing. Since the B21-4 fix it waits for ``db_instance_available`` and promotes at once. An
    automated backup is the documented case: "a read replica cannot be promoted to a standalone
    instance when it is in the backing-up status"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html).

    A burst of client writes leaves region B's replica minutes behind. A forced failover fences
    region A, which answers (a planned, lossless change). Region B's replica is ``backing-up`` from the
    fence on, for two minutes. promote_database skips the zero-lag wait, waits for the backup to end,
    and promotes while the replica is still applying the burst: the writes region A acknowledged
    before its fence and had not replicated are not on the new writer, and region A never stopped
    answering. (B21b-1's control runs the same burst and failover with the replica available: it
    waits for zero lag and loses nothing.) ``--planned``, which asked for no loss, goes the same way."""
    from moto.rds.models import rds_backends

    from automation.emulator.aws import ACCOUNT

    d = deploy("rds-replica")
    d.op_advance(120)
    backend = rds_backends[ACCOUNT][REGION_B]
    replica_id = str(d.ctx.dr_db_instance_id)
    outer = d.on_actor
    backups: list[str] = []

    def backup_from_the_fence(event: str, actor: str) -> None:
        if outer is not None:
            outer(event, actor)
        replica = backend.databases.get(replica_id)
        if event == "call:UpdateAutoScalingGroup" and not backups and replica is not None:
            backups.append(replica.status)
            replica.status = "backing-up"

            def backup_ends() -> None:
                if replica.status == "backing-up":
                    replica.status = "available"

            d.emulator.clock.after(120, backup_ends)

    d.op_write(10_000)  # ~500 s of replica apply (Timings.rds_apply 0.05 s a write)
    d.on_actor = backup_from_the_fence
    try:
        run = d.op_run("failover", params={"force": True, "planned": planned})
    finally:
        d.on_actor = outer
    assert backups == ["available"], backups
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    d.op_advance(TRAFFIC_GRACE + 1)
    violations = [str(v) for v in d.judge()]
    assert not any(v.startswith("no_loss") for v in violations), (run.outcome, run.detail[:300], violations)


def test_b21b_5_converges_a_failover_stopped_over_a_backing_up_replica_is_not_rolled_back(
    deploy: Deploy,
) -> None:
    """B21b-5 (converges; docs/safety.md, "A run that stops on a failed step ... roll_back_fence: when
    region B's database is not the writer and not becoming it, region A still holds the writer, so
    the pending fence is withdrawn, the latch set back to standby, the switch released ... and region
    A's web tier given back its capacity"). What the B21-4 fix missed on the failover's side.

    B21-4 established that a replica ``backing-up`` is not being promoted (PromoteReadReplica: "a
    read replica cannot be promoted to a standalone instance when it is in the backing-up status",
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html).
    ``_writer_moving`` (promote_database's latch rollback and ``roll_back_fence``) still reads any
    status but ``available`` as "region B is becoming the writer".

    rds-replica. A forced failover fences region A, which answers; region B's replica is
    ``backing-up`` from the fence on, longer than the run's wait (``waiterMaxAttempts`` 8: two
    minutes). promote_database waits for ``db_instance_available``, gives up, and the run stops.
    ``roll_back_fence`` reads the backing-up replica as "the writer moved or is moving to region B:
    nothing rolled back". The backup ends: region B's instance is an available replica, region A
    holds the writer, fenced, the latch active and the switch thrown: nothing serves the writer, and
    nothing will move it (no promotion was ever requested)."""
    from moto.rds.models import rds_backends

    from automation.emulator.aws import ACCOUNT

    d = deploy("rds-replica")
    d.op_advance(120)
    backend = rds_backends[ACCOUNT][REGION_B]
    replica_id = str(d.ctx.dr_db_instance_id)
    outer = d.on_actor
    backups: list[str] = []

    def backup_from_the_fence(event: str, actor: str) -> None:
        if outer is not None:
            outer(event, actor)
        replica = backend.databases.get(replica_id)
        if event == "call:UpdateAutoScalingGroup" and not backups and replica is not None:
            backups.append(replica.status)
            replica.status = "backing-up"

    d.on_actor = backup_from_the_fence
    try:
        run = d.op_run("failover", params={"force": True, "waiterMaxAttempts": 8})
    finally:
        d.on_actor = outer
    assert backups == ["available"], backups
    assert run.outcome == "stopped", run
    backend.databases[replica_id].status = "available"  # the backup ends
    assert d.writer() == d.keys()[0], "nothing was promoted: region A holds the writer"
    d.op_advance(TRAFFIC_GRACE + 60)
    violations = [str(v) for v in d.judge()]
    assert not violations, violations
    assert d.emulator.serving(REGION_A), run.detail[-300:]


def test_b21b_6_converges_a_failover_over_a_replica_rebooting_for_maintenance_never_asks_for_the_promotion(
    deploy: Deploy,
) -> None:
    """B21b-6 (converges, and the failover's purpose; the failover-side twin of B21b-2). A replica
    ``rebooting`` is read as "promotion under way" (``PROMOTING_STATUSES``), so ``_promote_rds`` asks
    for nothing and waits for a promotion nobody requested. RDS reboots instances for its own
    maintenance and at customers' requests ("rebooting ... because of a customer request or an
    Amazon RDS process that requires the rebooting of the DB instance",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html).

    rds-replica. Region A goes dark; an unplanned CLI failover runs while region B's replica is
    rebooting (two minutes, from the fence on). The reboot ends; the replica is ``available``, still
    a replica. ``_promoted_waiter`` waits for "available and no source", which never comes without a
    promotion: the failover waits its whole budget (20 minutes by default) during a regional outage
    and stops with region B not promoted and nothing serving the writer. Since B21-4 a ``backing-up``
    replica is waited for and then promoted; a rebooting one is not."""
    from moto.rds.models import rds_backends

    from automation.emulator.aws import ACCOUNT

    d = deploy("rds-replica")
    d.op_advance(60)
    d.op_outage()
    d.op_advance(120)
    backend = rds_backends[ACCOUNT][REGION_B]
    replica_id = str(d.ctx.dr_db_instance_id)
    outer = d.on_actor
    reboots: list[str] = []

    def reboot_from_the_latch(event: str, actor: str) -> None:
        if outer is not None:
            outer(event, actor)
        replica = backend.databases.get(replica_id)
        # The run journal's first PutParameter (the fence's fencePending) comes before promote_database.
        if event == "call:PutParameter" and not reboots and replica is not None:
            reboots.append(replica.status)
            replica.status = "rebooting"

            def reboot_ends() -> None:
                if replica.status == "rebooting":
                    replica.status = "available"

            d.emulator.clock.after(120, reboot_ends)

    d.on_actor = reboot_from_the_latch
    try:
        run = d.op_run("failover")
    finally:
        d.on_actor = outer
    assert reboots == ["available"], reboots
    assert run.outcome == "done", run.detail[-400:]
    assert d.writer() == d.keys()[1], "region B holds the writer"


@pytest.mark.parametrize("blip", [True, False], ids=["blip", "control-no-blip"])
def test_b21b_1_aurora_no_loss_a_transient_connection_error_makes_a_forced_failover_fail_over_with_data_loss(
    deploy: Deploy, blip: bool
) -> None:
    """B21b-1, aurora-global: the same root through ``_promote_aurora``. A forced failover fences
    region A, which answers, and waits for the receipts' replication to drain (the database is the
    switchover's to wait for). A burst of payments leaves S3 replication minutes behind. One
    DescribeDBClusters of region A's cluster fails with a connection error on both attempts (a
    blip; region A answers throughout): ``_SourceDark``, and the run calls FailoverGlobalCluster with
    ``AllowDataLoss`` instead of a switchover, while region A answers. The writer moves to region B
    with receipts region A acknowledged still unreplicated (docs/safety.md no_loss: "when the writer
    moves on a planned change ... the new writer's region holds every DynamoDB item and S3 receipt
    acknowledged in the old one"). Control (no blip): the same burst and failover wait for the
    receipts and switch over, losing nothing."""
    d = deploy("aurora-global")
    d.op_advance(120)
    fault = Fault(service="rds", operation="DescribeDBClusters", region=REGION_A, unreachable=True, times=0)
    d.add_fault(fault)
    outer = d.on_actor
    armed: list[bool] = []

    def blip_after_the_drain(event: str, actor: str) -> None:
        if outer is not None:
            outer(event, actor)
        if event == "call:UpdateAutoScalingGroup" and not armed:  # the fence's last call
            armed.append(True)

            def arm() -> None:
                fault.times = 2 if blip else 0

            # After the drain and the headless secondary's new instance (Timings.instance_create_seconds
            # 600 s), while the lossless wait runs.
            d.emulator.clock.after(600 + 90, arm)

    # 0.01 s of S3 replication a receipt (Timings.bucket_apply): 100,000 payments ~1,000 s behind.
    d.op_write(100_000)
    d.on_actor = blip_after_the_drain
    try:
        run = d.op_run("failover", params={"force": True})
    finally:
        d.on_actor = outer
        d.clear_faults()
    assert fault.injected == (2 if blip else 0), ("the blip was not reached", fault.seen[-5:], run)
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    assert run.outcome == "done", run
    d.op_advance(TRAFFIC_GRACE + 1)
    violations = [str(v) for v in d.judge()]
    assert not any(v.startswith("no_loss") for v in violations), (run.outcome, run.detail[:300], violations)
    assert not any(e.kind == "failing-over" and d.ctx.app_name in e.detail for e in d.emulator.events), (
        "a managed failover (AllowDataLoss) while region A answered",
        run.detail[:300],
    )


def test_b21b_7_converges_a_forced_aurora_failover_whose_switchover_aws_cancels_waits_out_its_budget(
    deploy: Deploy,
) -> None:
    """B21b-7 (converges; docs/safety.md B10-4: a forced failover that fenced an answering region A and
    then lost it "promotes as over a region A dark from the start ... rather than waiting 30 minutes
    and stopping"). What the B10-4 fix missed: it handles AWS *refusing* the switchover
    (InvalidGlobalClusterStateFault) and region A going dark *during the lossless wait*, not AWS
    *cancelling* a switchover it accepted. FailoverState ``pending``: "Aurora is verifying the
    primary and secondary clusters before the operation starts"; ``cancelling``: "The request to
    switch over or fail over the global cluster was cancelled and the primary Aurora DB cluster and
    the selected secondary Aurora DB cluster are returning to their previous states"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html); the emulator
    cancels a switchover whose old primary's region stops answering while ``pending``.

    aurora-global. A forced failover fences region A (which answers), waits for zero lag, and asks
    for the switchover; region A goes dark right after. AWS cancels the switchover: region A's dark
    cluster is the writer again. ``_writer_waiter`` waits for region B to become the writer (its
    whole budget, 20 minutes by default) and the run stops, region A fenced and dark, region B not
    the writer: the outcome B10-4 was meant to end. It should fail over (``AllowDataLoss``) as it
    does when the refusal comes up front."""
    d = deploy("aurora-global")
    d.op_advance(120)
    with after_first_call(d, "SwitchoverGlobalCluster", d.op_outage):  # region A dark right after it
        run = d.op_run("failover", params={"force": True})
    assert any(e.kind == "switching-over-cancelling" for e in d.emulator.events), "AWS cancelled"
    assert run.outcome == "done", run.detail[-400:]
    assert d.writer() == d.keys()[1], "region B holds the writer"


def test_b21b_8_traffic_follows_writer_a_throttled_describe_in_restore_dr_undoes_the_drain_mid_switchover(
    deploy: Deploy,
) -> None:
    """B21b-8 (traffic_follows_writer after a stopped run; converges). B21-1's shape in aurora-global,
    which the B21-1 fix (``PROMOTING_STATUSES`` in ``_writer_still_in_b``, rds-replica only) missed.

    The failback dies right after SwitchoverGlobalCluster (the mark written ahead). Its rollback
    ``restore_dr`` runs while AWS switches over. Its roll-forward's DescribeGlobalClusters is
    throttled on all 8 attempts of the region-B client (a busy account: "throttling ... outlasts the
    client's retries", boto3 retries, https://docs.aws.amazon.com/boto3/latest/guide/retries.html):
    ``restore_dr`` takes it for "AWS refused to move the writer", asks ``_writer_still_in_b`` (now
    answered), which says region B's cluster is the global writer (it is, until the switchover
    completes: ``IsWriter`` moves at the end), drops the mark and undoes the drain. The switchover
    completes: region A's cluster is the writer and region A's (warmed) web tier serves it; region B
    serves a secondary; the latch is active and the mark gone, so the canary keeps the switch thrown
    and Route 53 answers region B, whose database refuses every write. A throttle is not a refusal,
    and a switchover under way is not region B holding the writer."""
    d = deploy("aurora-global")
    _failed_over(d)
    died = d.op_run(
        "failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"SwitchoverGlobalCluster"})
    )
    assert died.outcome == "crashed", died
    from lambdas.failover import steps

    assert _journal(d).get(steps.WRITER_MOVE_MARK), "no mark"
    d.add_fault(
        Fault(
            service="rds",
            operation="DescribeGlobalClusters",
            region=REGION_B,
            code=throttling_code("rds"),
            times=8,
        )
    )
    # Throttled past the client's retries: a retryable failure, which both executors retry (the
    # state machine's Retry, the CLI's on_stop retries), never "AWS refused the move".
    with pytest.raises(StepFailed) as throttled:
        steps.restore_dr(d.ctx, d.runbook_clients(), {})
    assert throttled.value.retryable, throttled.value
    d.clear_faults()
    result = steps.restore_dr(d.ctx, d.runbook_clients(), {})  # the retry
    assert result.status == "done" and "stays drained" in result.detail, result
    d.op_advance(d.emulator.timings.switchover_seconds + TRAFFIC_GRACE + 600)
    assert d.writer().split(":")[3] == REGION_A, ("the switchover completed", result)
    violations = [str(v) for v in d.judge()]
    assert d.where() == REGION_A, (result.status, result.detail, violations)


def test_b21b_9_converges_region_a_dark_after_the_mark_restore_dr_fails_and_region_b_stays_drained(
    deploy: Deploy,
) -> None:
    """B21b-9 (converges; docs/safety.md: "Every way a failback stops after draining region B while
    region B still holds the writer ... gives region B back its capacity and functions before the
    run ends"; "Only when AWS refuses the move and region B still holds the writer with nothing
    under way does region B serve again").

    rds-replica. The failback drains region B, proves zero lag, writes the mark, and region A goes
    dark before it asks for the promotion (region A flapping: it answered the failback's health
    check minutes earlier). ``switch_writer`` fails on a connection error describing region A's
    replica, and the failback stops. ``restore_dr``'s roll-forward describes region A's replica too:
    the connection error is neither a ``StepFailed`` nor a ``ClientError``, so it escapes
    ``restore_dr`` (retried 3 times by the CLI, all failing): "could not roll back". No promotion was
    ever requested; region B holds the writer, drained; region A is dark: no region serves the
    writer, for as long as region A's outage lasts."""
    from lambdas.failover import steps

    d = deploy("rds-replica")
    _failed_over(d)
    outer = d.on_actor
    gone: list[bool] = []

    def dark_after_the_mark(event: str, actor: str) -> None:
        if outer is not None:
            outer(event, actor)
        if event == "call:PutParameter" and not gone:
            journal = steps.read_journal(d.runbook_clients(), d.ctx)
            if journal.get(steps.WRITER_MOVE_MARK):
                gone.append(True)
                d.op_outage()

    d.on_actor = dark_after_the_mark
    try:
        stopped = d.op_run("failback", params={"waiterMaxAttempts": 100})
    finally:
        d.on_actor = outer
    assert gone, "the mark was never written"
    assert stopped.outcome == "stopped", stopped
    primary_id = str(d.ctx.primary_db_instance_id)
    assert not any(
        e.kind == "promotion-started" and e.detail.startswith(f"{primary_id} ") for e in d.emulator.events
    ), "a promotion was requested"
    assert d.writer().split(":")[3] == REGION_B, "region B holds the writer"
    d.op_advance(TRAFFIC_GRACE + 60)
    violations = [str(v) for v in d.judge()]
    assert d.emulator.serving(REGION_B), (stopped.detail[-300:], violations)


def test_b21b_10_converges_restore_dr_reads_a_pending_switchover_as_under_way_and_aws_then_cancels_it(
    deploy: Deploy,
) -> None:
    """B21b-10 (converges; docs/safety.md: a failback that stops after draining region B while region
    B still holds the writer, "a switchover AWS cancelled" among the ways, gives region B back its
    capacity). What the B21-2 fix missed: ``restore_dr`` treats only ``cancelling`` as "nothing moves
    the writer"; ``pending`` is read as a move under way. AWS documents ``pending`` as "Aurora is
    verifying the primary and secondary clusters before the operation starts", and ``cancelling``
    as what follows when that fails
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html).

    aurora-global. The failback dies right after SwitchoverGlobalCluster (the mark written ahead);
    region A goes dark at once; the operator resumes the failback straight away. It stops at
    ``confirm_primary_healthy`` (region A does not answer) and runs ``restore_dr`` while the
    switchover is still ``pending``: "the writer moves to region A ... region B stays drained". AWS
    then cancels the switchover: region B's cluster is the writer, drained, under an active latch,
    and no run is under way."""
    from lambdas.failover import steps

    d = deploy("aurora-global")
    _failed_over(d)
    died = d.op_run(
        "failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"SwitchoverGlobalCluster"})
    )
    assert died.outcome == "crashed", died
    assert steps.read_journal(d.runbook_clients(), d.ctx).get(steps.WRITER_MOVE_MARK), "no mark"
    d.op_outage()  # region A goes dark while the switchover is pending: AWS will cancel it
    stopped = d.op_run("failback", params={"waiterMaxAttempts": 1}, run_id=died.run_id)
    assert stopped.outcome == "stopped", stopped
    d.op_advance(d.emulator.timings.failover_cancel_seconds + TRAFFIC_GRACE + 60)
    assert any(e.kind == "switching-over-cancelling" for e in d.emulator.events), "AWS cancelled"
    assert d.writer().split(":")[3] == REGION_B, "the cancelled switchover left region B the writer"
    violations = [str(v) for v in d.judge()]
    assert d.emulator.serving(REGION_B), (stopped.detail[-300:], violations)
