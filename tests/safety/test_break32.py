"""break32: the runbook safety work at c46a4b2 (issues 9 and 10) attacked in the safety model.

Each finding is a strict xfail naming the invariant of docs/safety.md it protects: it fails for the reason
its ``reason`` states until the product (or the checker) is fixed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from automation import latch_cli
from automation.emulator import aws as emulator_aws
from automation.emulator.data import Store
from lambdas.failover import journal, promotion, stepkit
from lambdas.failover.budget import LOCK_TTL_SECONDS
from lambdas.failover.lossless import DRAIN_SECONDS
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety import generator
from tests.safety.model import Deployment, actor_clients

Deploy = Callable[..., Deployment]


def _everywhere(d: Deployment, fault: Fault) -> None:
    """``fault`` on every caller of AWS in the deployment: the operator's runs and the runbook Lambda the
    canary invokes (an AWS endpoint that does not answer, does not answer anyone)."""
    d.add_fault(fault)
    session = new_session()
    d.emulator.attach(session)
    fault.install(session)
    d._async_clients = actor_clients(d, session)


def test_a_forced_failover_whose_fence_meets_one_unreachable_endpoint_of_a_live_region_a(
    deploy: Deploy,
) -> None:
    """Region A is impaired, not dark: its Auto Scaling API does not answer (connection errors: an endpoint
    whose connections time out, as during a control-plane incident), while its load balancer, web tier,
    functions and database serve. The operator forces a failover.

    docs/safety.md (one writer; issue 10 item 1): "When region A answers, fencing it ... must succeed
    before promotion; ... Fencing is best effort only when region A is unreachable". The fence's first
    call (DescribeAutoScalingGroups) fails to connect, and ``fence_primary`` catches ``CONNECTION_ERRORS``
    from any region-A call as "region A unreachable" (region A's clients give up after 2 attempts,
    lambdas/failover/clients.py PRIMARY_SETTINGS): nothing of region A is fenced, no ``primaryStoppedAt``
    is stamped, so ``_promote_database`` takes the change for unplanned and promotes region B's replica
    as soon as the switch has taken effect, without the drain or the zero-lag proof (and without
    ``DARK_CONFIRM_SECONDS``, which guards only the lossless wait). Region A's web tier keeps serving its
    database, which the promotion leaves a standalone writer (PromoteReadReplica: "the source DB instance
    ... remains" and the replica "becomes a standalone DB instance",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). The canary's pending
    fence meets the same endpoint and cannot complete it. The run reports ``done``."""
    d = deploy("rds-replica")
    d.op_advance(300)
    _everywhere(d, Fault(service="auto-scaling", region=REGION_A, unreachable=True))
    assert d.emulator.reachable(REGION_A)

    run = d.op_run("failover", params={"force": True})
    for _ in range(10):
        d.op_advance(60)
    d.judge()

    state = f"run {run.outcome}; A serving {d.emulator.serving(REGION_A)}, B writable {d.emulator.database_writable(REGION_B)}"
    assert not d.violations, [state, *map(str, d.violations)]


@pytest.mark.parametrize(
    "blip",
    [
        True,
        False,
    ],
)
def test_a_connection_blip_on_the_fence_makes_a_forced_failover_promote_unplanned(
    deploy: Deploy, blip: bool
) -> None:
    """B21b-1's schedule with the blip moved from the lossless wait to the fence. rds-replica: a burst of client
    writes leaves region B's replica minutes behind; a forced failover (region A answers). Its fence's first
    call, DescribeAutoScalingGroups in region A, fails to connect on both of the region-A client's attempts
    (PRIMARY_SETTINGS ``max_attempts=2``); region A answers before and after, and every later call succeeds.
    ``fence_primary`` catches the connection error as "region A unreachable": fence pending, no
    ``primaryStoppedAt``, so ``_promote_database`` takes the change for unplanned and promotes at once
    (docs/safety.md: "Lost means region A's database endpoint has not answered for 120 s
    (``DARK_CONFIRM_SECONDS``) ... so a blip of connection errors never turns a lossless failover into a
    lossy one (B21b-1)"). The canary's next minute completes the fence, but the replica was promoted with
    the burst's tail unapplied; the emulator forgives a promotion's tail only when the source's region is
    dark at the request. Control (no blip): the same burst and failover wait for zero lag and lose
    nothing."""
    d = deploy("rds-replica")
    d.op_advance(120)
    fault = Fault(
        service="auto-scaling",
        operation="DescribeAutoScalingGroups",
        region=REGION_A,
        unreachable=True,
        times=2 if blip else 0,
    )
    d.add_fault(fault)
    d.op_write(10_000)  # ~500 s of replica apply (Timings.rds_apply 0.05 s a write), past the 300 s drain
    run = d.op_run("failover", params={"force": True})
    assert fault.injected == (2 if blip else 0), fault.seen[-5:]
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    d.op_advance(181)
    d.judge()
    assert not d.violations, [f"run {run.outcome}", *map(str, d.violations)]


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_a_planned_failover_while_the_global_table_replicates_slowly(deploy: Deploy, mode: str) -> None:
    """Region A is degraded: its DynamoDB replica's updates reach region B 15 minutes late ("ReplicationLatency
    can increase if an AWS Region becomes degraded and you have a replica table in that Region",
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html; AWS
    promises no replication time for global tables). The operator runs a ``--planned`` failover.

    docs/safety.md (no_loss): "when the writer moves on a planned change, the new writer's region holds every
    DynamoDB item and S3 receipt acknowledged in the old one". The runbook waits for the database's zero lag and
    the receipts' ``OperationsPendingReplication`` (``lossless.wait_lossless``), never for the table: the
    writer moves after the 5-minute drain with every payment item of the last 15 minutes still on its way.
    The same schedule with the receipts slowed instead passes (tests/safety/test_lossless.py)."""
    d = deploy(mode)
    d.emulator.slow_replication(Store.TABLE, 900.0)
    d.op_advance(300)
    run = d.op_run("failover", params={"force": True, "planned": True, "waiterMaxAttempts": 120})
    d.op_advance(300)
    d.judge()
    assert not d.violations, [f"run {run.outcome}", *map(str, d.violations)]
    # 10 x 900 s after the drain outlasts the wait budget: the run rolls back, region A keeps the writer.
    assert run.outcome == "stopped" and "ReplicationLatency" in run.detail, run.detail
    assert d.emulator.database_writable(REGION_A) and not d.emulator.database_writable(REGION_B)


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_control_a_planned_failover_with_the_global_table_at_its_pace_moves_the_writer(
    deploy: Deploy, mode: str
) -> None:
    """The same planned failover with the table replicating in about a second: the runbook waits AWS's
    ten times the recent maximum ``ReplicationLatency`` (at least ``lossless.SETTLE_FLOOR`` after the drain,
    so that the latency of the drain's last five-minute period is published) and moves the writer,
    losing nothing."""
    d = deploy(mode)
    d.op_write(50)
    d.op_advance(300)
    run = d.op_run("failover", params={"force": True, "planned": True, "waiterMaxAttempts": 120})
    d.op_advance(300)
    d.judge()
    assert run.outcome == "done", run.detail
    assert not d.violations, [str(v) for v in d.violations]
    assert d.emulator.database_writable(REGION_B)


def test_a_failback_while_the_global_table_replicates_slowly(deploy: Deploy) -> None:
    """B32-2 in the other direction, aurora-global: a forced failover completes, clients write through region
    B, then region B's DynamoDB replica's updates reach region A 15 minutes late and the operator runs the
    failback. It drains region B and waits for the switchover (the database) and the receipts'
    ``OperationsPendingReplication`` (the same schedule with the receipts slowed instead loses nothing), never
    for the table: the writer moves back with the payment items of the last minutes still on their way."""
    d = deploy("aurora-global")
    d.op_advance(120)
    over = d.op_run("failover", params={"force": True})
    d.op_advance(300)
    d.emulator.slow_replication(Store.TABLE, 900.0)
    d.op_advance(300)
    back = d.op_run("failback", params={"waiterMaxAttempts": 240})
    d.op_advance(300)
    d.judge()
    assert not d.violations, [f"failover {over.outcome}, failback {back.outcome}", *map(str, d.violations)]
    # The failback gives up and undoes its drain: region B keeps the writer and serves again.
    assert back.outcome == "stopped" and "ReplicationLatency" in back.detail, back.detail
    assert d.emulator.database_writable(REGION_B) and d.emulator.serving(REGION_B)


def _mysql_seconds_behind_source(
    engine: str, behind: float, flowing: bool, since_replay: float | None
) -> float | None:
    """RDS for MySQL's ``ReplicaLag`` ("the value of the ``Seconds_Behind_Master`` field",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_MySQL.Replication.ReadReplicas.Monitor.html)
    over a slow network, as MySQL documents the field: it "measures the time difference between the
    timestamps of the replica SQL thread and the replica I/O thread. If the network connection between
    source and replica is fast, the replica I/O thread is very close to the source ... If the network is
    slow, this is not a good approximation; the replica SQL thread may quite often be caught up with the
    slow-reading replica I/O thread, so Seconds_Behind_Source often shows a value of 0, even if the I/O
    thread is late compared to the source"
    (https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html). The emulator applies each write the
    instant it arrives, so the SQL thread is always caught up with what arrived: 0 while replication is
    active. Anything else as the emulator publishes it."""
    if engine == "mysql" and flowing:
        return 0.0
    return _emulator_replica_lag(engine, behind, flowing, since_replay)


_emulator_replica_lag = emulator_aws.replica_lag


def _dry_run(d: Deployment, runbook: str, params: dict[str, Any]) -> dict[str, str]:
    """The run's dry run (``python -m automation <runbook> --dry-run``), read from AWS now."""
    from lambdas.failover import dryrun
    from lambdas.failover.observe import observe

    return dict(dryrun.plan(runbook, d.ctx, observe(d.ctx, d.runbook_clients()), params))


def _refused_before_any_change(d: Deployment, run: Any, writer: str) -> None:
    """The run stopped on its own decision, naming the engine, with no mutating call: the writer is where it
    was and region B still replicates (one_writer, no_loss: nothing moved in either region)."""
    assert run.outcome == "stopped" and not run.mutated, run
    assert "RDS for mysql" in run.detail and "Nothing was changed" in run.detail, run.detail
    assert d.writer() == writer, (d.writer(), writer)
    assert d.where() == REGION_A, d.where()


def test_a_planned_failover_over_rds_for_mysql_is_refused_before_any_change(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B32-3 (no_loss, one_writer), now absent. rds-replica on RDS for MySQL (a database made outside the
    program, which refuses ``engine: mysql``; or outputs edited by hand). The cross-region link is slow (each
    binlog event reaches region B ten minutes after its commit), and ``ReplicaLag`` reads as MySQL documents
    ``Seconds_Behind_Source`` over a slow network: 0 while the I/O thread is behind ("the replica SQL thread
    may quite often be caught up with the slow-reading replica I/O thread, so Seconds_Behind_Source often
    shows a value of 0, even if the I/O thread is late compared to the source",
    https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html). The zero-lag proof that trusted those
    zeros cut off the writes still on the wire. No AWS metric gives a sound proof for MySQL, so the operator's
    ``--planned`` failover is refused by ``confirm_primary_down`` before any change, the engine named: no
    fence, no latch, no promotion; every write stays on region A's writer."""
    monkeypatch.setattr(emulator_aws, "replica_lag", _mysql_seconds_behind_source)
    d = deploy("rds-replica", engine="mysql")
    writer = d.writer()
    d.op_advance(60)
    d.emulator.slow_replication(Store.DATABASE, 600.0)
    d.op_advance(300)
    params = {"force": True, "planned": True, "waiterMaxAttempts": 120}
    said = _dry_run(d, "failover", params)["confirm_primary_down"]
    assert said.startswith("would be refused, changing nothing (UnprovableEngine)") and "mysql" in said, said
    run = d.op_run("failover", params=params)
    d.op_advance(300)
    d.judge()
    assert not d.violations, [f"run {run.outcome}", *map(str, d.violations)]
    _refused_before_any_change(d, run, writer)


def test_control_a_forced_failover_over_rds_for_mysql_whose_region_a_answers_is_refused_too(
    deploy: Deploy,
) -> None:
    """B32-3's control: the same slow link with the emulator's ``ReplicaLag`` (the age of the oldest write not
    yet applied), and a forced failover without ``--planned``. Region A answers, so the change would be
    planned (the fence reaches region A and the promotion waits for the proof MySQL does not have): refused
    before any change too, the engine named."""
    d = deploy("rds-replica", engine="mysql")
    writer = d.writer()
    d.op_advance(60)
    d.emulator.slow_replication(Store.DATABASE, 600.0)
    d.op_advance(300)
    said = _dry_run(d, "failover", {"force": True})["confirm_primary_down"]
    assert said.startswith("would be refused, changing nothing (UnprovableEngine)"), said
    run = d.op_run("failover", params={"force": True, "waiterMaxAttempts": 120})
    d.op_advance(300)
    d.judge()
    assert not d.violations, [str(v) for v in d.violations]
    _refused_before_any_change(d, run, writer)


def test_an_unplanned_failover_over_rds_for_mysql_with_region_a_dark_is_unaffected(deploy: Deploy) -> None:
    """The refusal is of planned changes only: region A dark, the failover over RDS for MySQL promotes
    unplanned (it waits for no proof; no_loss forgives the unreplicated tail) and ends done."""
    d = deploy("rds-replica", engine="mysql")
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    said = _dry_run(d, "failover", {"waiterMaxAttempts": 120})["confirm_primary_down"]
    assert "UnprovableEngine" not in said, said
    run = d.op_run("failover", params={"waiterMaxAttempts": 120})
    d.op_advance(300)
    d.judge()
    assert run.outcome == "done", run
    assert not d.violations, [str(v) for v in d.violations]
    assert d.writer().split(":")[3] == REGION_B, d.writer()


def test_a_failback_onto_rds_for_mysql_is_refused_before_any_change(deploy: Deploy) -> None:
    """A failback is always planned: over RDS for MySQL (region B's writer, after an unplanned failover over a
    dark region A) it is refused by ``confirm_primary_healthy`` before any change, the engine named: no replica
    made in region A, region B not drained, the writer stays in region B (no_loss, one_writer)."""
    d = deploy("rds-replica", engine="mysql")
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    over = d.op_run("failover", params={"waiterMaxAttempts": 120})
    assert over.outcome == "done", over
    d.op_recover()
    d.op_advance(300)
    writer = d.writer()
    assert writer.split(":")[3] == REGION_B, writer
    said = _dry_run(d, "failback", {"reason": "t"})["confirm_primary_healthy"]
    assert said.startswith("would be refused, changing nothing (UnprovableEngine)") and "mysql" in said, said
    back = d.op_run("failback", params={"waiterMaxAttempts": 120})
    d.op_advance(120)
    d.judge()
    broken = [str(v) for v in d.violations if v.invariant in ("no_loss", "one_writer")]
    assert not broken, [f"failback {back.outcome}", *broken]
    assert back.outcome == "stopped" and not back.mutated, back
    assert "RDS for mysql" in back.detail and "Nothing was changed" in back.detail, back.detail
    assert d.writer() == writer, (d.writer(), writer)


def _complete_minutes_only(d: Deployment) -> None:
    """The runbook's GetMetricData answers hold a one-minute datapoint only once its minute is over: a
    datapoint put now is not returned until the minute it falls in has ended. CloudWatch documents no
    bound on when a datapoint becomes available to GetMetricData, only longer ones for old timestamps
    ("Data points with time stamps between 3 and 24 hours ago can take as much as 2 hours to become
    available", https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html);
    the emulator (moto) returns a datapoint the instant it is put. Registered on the runbook's session
    before its clients are made; the switch alarm and Route 53 still see every datapoint at once (kinder
    than AWS, which only shortens the window below)."""
    clock = d.emulator.clock

    def hide(parsed: dict[str, Any] | None = None, **_: Any) -> None:
        for result in (parsed or {}).get("MetricDataResults", []):
            kept = [
                (t, v)
                for t, v in zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                if t + timedelta(seconds=60) <= clock.now()
            ]
            result["Timestamps"] = [t for t, _ in kept]
            result["Values"] = [v for _, v in kept]

    d.session.events.register("after-call.cloudwatch.GetMetricData", hide)


def test_an_unplanned_promotion_that_cannot_see_its_own_switch_yet_does_not_wait_for_it(
    deploy: Deploy,
) -> None:
    """tests/safety/test_crash_points.py's ``rds-replica-dark-PromoteReadReplica`` case with GetMetricData
    returning only complete minutes (``_complete_minutes_only``). Region A dark; a forced failover: fence
    pending, latch, switch thrown (PutMetricData 1 at 12:04:00), then ``_promote_database`` asks
    ``_switch_pending`` how long until Route 53 has taken the switch into account (docs/safety.md, the
    order: "the writer then moves only once the thrown switch has taken effect"). The 1 is not returned
    yet; the latest datapoints returned are the canary's 0s, so ``switch_takes_effect_at`` answers None
    ("not thrown") and the wait is 0: PromoteReadReplica at 12:04:00, and the run dies right after it.
    Region A answers again at once, its web tier never fenced; Route 53's check of region A passes before
    the switch alarm has seen its minute, clients write to region A's old primary (a standalone writer
    since the promotion started), and those acknowledged writes are not on the new writer. With moto's
    instant GetMetricData (the test_crash_points case) the run waits until 12:05:10 and loses nothing.
    Fixed: ``throw_switch`` records its throw in the run journal (``traffic.SWITCH_THROWN_MARK``) and the
    wait counts it (``traffic.switch_effect_due``), so this run too waits until 12:05:10."""
    d = deploy("rds-replica")
    _complete_minutes_only(d)
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    run = d.op_run("failover", params={"force": True}, crash_on=frozenset({"PromoteReadReplica"}))
    promoted_at = d.emulator.clock.now()
    d.op_recover()
    for _ in range(5):
        d.op_advance(60)
        d.judge()
    assert not d.violations, [
        f"run {run.outcome}, promoted at {promoted_at:%H:%M:%S}",
        *map(str, d.violations),
    ]


@pytest.mark.parametrize(
    "control_plane_down",
    [
        True,
        False,
    ],
)
def test_an_rds_control_plane_outage_in_region_a_is_taken_for_a_dark_database(
    deploy: Deploy, control_plane_down: bool
) -> None:
    """rds-replica. A burst of client writes leaves region B's replica minutes behind (B21b-1's burst); region
    A's RDS API endpoint stops answering (connection errors) while its database instance, web tier, functions
    and replication keep working: a control-plane impairment (AWS separates every service's control plane, its
    APIs, from its data plane, the running resources:
    https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/aws-infrastructure.html). A
    forced failover fences region A (Auto Scaling and Lambda answer), stamps its writes stopped and waits for
    zero lag. Its ``source_dark`` asks ``_region_a_dark``, which describes region A's instance through the RDS
    API: connection errors for ``DARK_CONFIRM_SECONDS``, so "region A went dark" and the replica is promoted
    unplanned while it is still applying the burst. docs/safety.md: "Lost means region A's database endpoint
    has not answered for 120 s"; here it answered throughout, and the tail it had not yet replicated is lost
    (the emulator forgives a promotion's tail only when the source's region is dark). Control: the same burst
    and failover with the RDS API up wait for zero lag and lose nothing."""
    d = deploy("rds-replica")
    d.op_advance(120)
    fault = Fault(service="rds", region=REGION_A, unreachable=True, times=None if control_plane_down else 0)
    d.add_fault(fault)
    d.op_write(10_000)  # ~500 s of replica apply (Timings.rds_apply 0.05 s a write), past the 300 s drain
    run = d.op_run("failover", params={"force": True})
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    d.op_advance(181)
    d.judge()
    assert not d.violations, [
        f"run {run.outcome}; RDS API refusals {fault.injected}",
        *map(str, d.violations),
    ]


def test_an_rds_control_plane_outage_makes_an_aurora_forced_failover_fail_over_with_data_loss(
    deploy: Deploy,
) -> None:
    """aurora-global, B32-7's root through ``_promote_aurora``: the receipts replicate slowly (no S3 RTC: 15
    minutes a receipt, as tests/safety/test_lossless.py), so the forced failover's lossless wait (the receipts'
    ``OperationsPendingReplication``) is still waiting when ``_region_a_dark_long_enough`` has seen region A's
    RDS API refuse connections for ``DARK_CONFIRM_SECONDS``; the run calls FailoverGlobalCluster with
    ``AllowDataLoss`` instead of waiting, and the writer moves to region B with region A's receipts still
    unreplicated, although region A and its cluster answer throughout (docs/safety.md no_loss: "when the
    writer moves on a planned change ... the new writer's region holds every DynamoDB item and S3 receipt
    acknowledged in the old one"). With the RDS API up, the same failover waits for the receipts and loses
    nothing (test_lossless's ``test_no_loss_a_planned_failover_waits_for_the_receipts_to_replicate`` shape)."""
    d = deploy("aurora-global")
    d.emulator.slow_replication(Store.RECEIPTS, 900.0)
    d.op_advance(300)
    fault = Fault(service="rds", region=REGION_A, unreachable=True)
    d.add_fault(fault)
    run = d.op_run("failover", params={"force": True, "waiterMaxAttempts": 120})
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    d.op_advance(300)
    d.judge()
    assert not d.violations, [
        f"run {run.outcome}; RDS API refusals {fault.injected}",
        *map(str, d.violations),
    ]


def test_latch_release_by_a_second_operator_while_a_failover_runs(deploy: Deploy) -> None:
    """Two operators. A forced failover is running (the alarm's Step Functions execution, or a colleague's
    break-glass CLI: here the in-process executor, holding the runbook lock); right after it threw the switch
    (its first PutMetricData), a second operator on the IaC path runs ``latch release`` (automation/latch_cli.py
    ``release``: "refuses unless region A's database is the writer", which it still is: the failover has not
    moved it yet). ``release`` runs ``unfence_primary``, ``verify_primary``, ``end_failover_hold`` (the
    journal's ``primaryStoppedAt``/``fencePending`` cleared), ``release_switch`` and ``clear_latch``, none
    under the lock (docs/safety.md, single flight: "two runs cannot act at once"; issue 10 item 6: "A lock with
    owner and expiry in region B; automated runs take it too"). The failover goes on: ``promote_database``
    rewrites the latch, finds no stamp (cleared), takes the change for unplanned and promotes region B while
    region A, given back its web tier and functions, serves its old primary (a standalone writer since the
    promotion). The release's calls are attributed to their own actor, so the checker's single-flight
    judgment sees them. Fixed (B32-8): every latch command takes the runbook lock (latch_cli ``LatchLock``),
    so the release refuses before changing anything, naming the failover that holds it."""
    d = deploy("rds-replica")
    d.op_advance(120)
    session = new_session()
    d.emulator.attach(session)
    operator_2 = actor_clients(d, session)
    released: list[tuple[bool, list[str]]] = []

    def second_operator(event: str, actor: str) -> None:
        if event == "call:PutMetricData" and actor != "latch-release" and not released:
            operator_2.actor = "latch-release"
            d._begin_actor("latch-release")
            try:
                released.append(
                    latch_cli.release(d.ctx, operator_2, reason="operator 2: region A looks fine")
                )
            finally:
                d._end_actor("latch-release")
                operator_2.actor = None

    d.on_actor = second_operator
    try:
        run = d.op_run("failover", params={"force": True})
    finally:
        d.on_actor = None
    assert released, "the failover never threw the switch"
    d.op_advance(600)
    d.judge()
    broken = [v for v in d.violations if v.invariant in ("single_flight", "one_writer")]
    invariants = sorted({v.invariant for v in broken})
    assert not broken, [f"run {run.outcome}; release done={released[0][0]}", invariants, *map(str, broken)]
    done, lines = released[0]
    assert not done and "another run holds the runbook lock: failover run local-" in lines[0], lines


# -- the checker's blind spots ------------------------------------------------------------------------


def test_the_random_schedules_build_rds_for_postgresql_only(
    moto_world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RDS for MySQL is absent (B32-3: the program refuses ``engine: mysql``, the runbook its planned changes):
    the soak's world no longer draws it (it did beside PostgreSQL: B32-5a). Each of 20 seeds' deployment is
    recorded as the driver builds it in the soak's world (``make soak``) (the build is then abandoned: only
    the deployment's kind is looked at)."""
    from tests.safety import driver

    built: list[tuple[str, str]] = []

    class Abandon(Exception):
        pass

    def record(
        mode: str, app: str, emulator: object, *, encrypted: bool = True, engine: str = "postgres"
    ) -> None:
        built.append((mode, engine))
        raise Abandon

    monkeypatch.setattr(driver.Deployment, "build", staticmethod(record))
    # run_schedule empties every moto backend first (break31 B31-2): not the package's shared moto.
    monkeypatch.setattr(driver, "cloudwatch_backends", SimpleNamespace(reset=lambda: None))
    for seed in range(20):
        with contextlib.suppress(Abandon):
            driver.run_schedule(seed, length=1, soak=True)
    assert ("rds-replica", "postgres") in built, sorted(set(built))
    assert {engine for _, engine in built} == {"postgres"}, sorted(set(built))


def _drain_only(
    clients: Any, params: Any, *, stopped_at: datetime, lags: Any, step: str, source_dark: Any = None
) -> str | None:
    """``wait_lossless`` without its proof: wait out the drain (``DRAIN_SECONDS``), then move the writer."""
    drained = stopped_at + timedelta(seconds=DRAIN_SECONDS)
    now = clients.clock.now()
    if now < drained:
        clients.clock.sleep((drained - now).total_seconds())
    return None


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_a_planned_failover_without_its_zero_lag_proof_is_seen_in_a_world_the_generator_draws(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The largest client load the soak's generator draws before a planned failover (``SLOW_LINK_SECONDS``, the
    "slow_link" episode: in the CI world replication always caught up within the drain). The
    runbook's lossless wait is replaced by the drain alone (``_drain_only``): no ReplicaLag, no marker, no
    receipts. The checker should report the loss of a runbook that moves the writer without proof; in this
    world there is none to report, so the random schedules can hardly tell the proof from its absence (B32-2 and
    B32-3 were found only by slowing replication by hand)."""
    monkeypatch.setattr(promotion, "wait_lossless", _drain_only)
    d = deploy(mode)
    d.op_advance(300)
    d.op_slow_link(max(generator.SLOW_LINK_SECONDS))  # the soak world's (generator.SOAK_EPISODES "slow_link")
    d.op_write(5)
    run = d.op_run("failover", params={"force": True, "planned": True, "waiterMaxAttempts": 120})
    d.op_advance(600)
    d.judge()
    assert any(v.invariant == "no_loss" for v in d.violations), (run.outcome, [str(v) for v in d.violations])


def test_a_forced_failover_over_a_web_tier_whose_terminate_process_is_suspended(deploy: Deploy) -> None:
    """Region A answers; its web tier's Auto Scaling group has the ``Terminate`` process suspended (an operator
    investigating the incident, as AWS suggests: "Suspending processes can be useful when you need to
    investigate or troubleshoot an issue"; with Terminate suspended the group does not remove instances when
    it scales in: https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-suspend-resume-processes.html). The
    suspension is in AWS state (moto keeps it; the runbook's DescribeAutoScalingGroups answers it); moto and
    the emulator do not honour it, so the test models it: region A's web tier serves while the suspension
    stands and region A answers.

    A forced failover: the fence's calls all succeed, so ``fence_primary`` reports region A fenced, stamps its
    writes stopped, waits the drain and zero lag (clients left region A when the switch took effect) and
    promotes region B; region A's instances never stopped serving its old primary, a standalone writer since
    the promotion (one writer: "At no observable point do both regions take writes")."""
    d = deploy("rds-replica")
    asg = d.world.client("autoscaling", REGION_A)
    group = str(d.ctx.primary_asg_name)
    asg.suspend_processes(AutoScalingGroupName=group, ScalingProcesses=["Terminate"])
    emulator_web_serving = d.emulator.web_serving

    def web_serving(region: str) -> bool:
        if region == REGION_A and d.emulator.reachable(REGION_A):
            described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][
                0
            ]
            if any(p["ProcessName"] == "Terminate" for p in described.get("SuspendedProcesses", [])):
                return True  # no instance is removed: those in service stay in service
        return emulator_web_serving(region)

    d.emulator.web_serving = web_serving  # type: ignore[method-assign]
    d.op_advance(300)
    run = d.op_run("failover", params={"force": True})
    d.op_advance(600)
    d.judge()
    assert not any(v.invariant == "one_writer" for v in d.violations), [
        f"run {run.outcome}",
        *map(str, d.violations),
    ]


def _found_outage_then_throttled_failover(deploy: Deploy, *, stale_dark_mark: bool) -> list[str]:
    """Soak seed 21030 (length 120, aurora-global; reproduced here in rds-replica): a forced failover dies
    right after its fence's last call (region A fenced, holding the writer: the found outage of
    tests/safety/test_found_outage.py); its lease runs out; region A throttles (the generator's ``throttle``,
    20 refusals); a failover is run. Its fence is throttled (two attempts), its ``roll_back_fence`` too (the
    executor's three retries, as soak seed 219's fix): it stops, region A still fenced with the writer. With
    ``stale_dark_mark`` the journal holds a ``primaryDarkSince`` an earlier run left (in the seed: a failover
    over a dark region A, ops 87-89), which ``fence_primary`` clears (one PutParameter) before its fence.
    Returns the converges verdicts once Route 53 has had its time."""
    d = deploy("rds-replica")
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_on=frozenset({"UpdateAutoScalingGroup"}))
    assert died.outcome == "crashed" and not d.emulator.serving(REGION_A), died
    d.op_advance(LOCK_TTL_SECONDS + 60)
    if stale_dark_mark:
        clients = d.runbook_clients()
        journal._journal(clients, d.ctx, **{journal.DARK_MARK: stepkit._now(clients)})
    d.op_throttle(REGION_A, 20)
    run = d.op_run("failover")
    assert run.outcome == "stopped" and "could not roll back" in run.detail, run
    d.op_advance(181)
    d.judge()
    return [v.invariant for v in d.violations]


@pytest.mark.parametrize(
    "stale_dark_mark",
    [
        True,
        False,
    ],
)
def test_a_failover_throttled_over_a_found_outage_is_judged_as_without_a_stale_journal_mark(
    deploy: Deploy, stale_dark_mark: bool
) -> None:
    """The run found the outage (region A fenced with the writer, left by a dead run) and changed nothing that
    decides who serves; without the stale mark the checker does not blame it (no mutating call: "it is not
    blamed for an outage it found"), with it the checker reports converges. The journal's bookkeeping must not
    decide the verdict: either the found-outage exemption also covers a refusal by throttling that outlasts the
    run's retries (judged at the resume, as a standing AccessDenied is), or the runbook must outlast the storm
    and both cases are blamed; the ``False`` case documents today's verdict without the mark."""
    assert "converges" not in _found_outage_then_throttled_failover(deploy, stale_dark_mark=stale_dark_mark)
