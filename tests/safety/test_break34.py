"""break34: the runbook-safety work on ``integ`` at 67180c7 (issue 10: the DynamoDB global table's wait, the
wait budget counted from the drain, RDS for MySQL refused, break30 B30-1) attacked in the safety model.

Each finding is a strict xfail naming the invariant of docs/safety.md it protects: it fails for the reason its
``reason`` states until the product (or the checker) is fixed. Controls (no xfail) show the schedule is
otherwise sound.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from automation import latch_cli
from automation.emulator import aws as emulator_aws
from automation.emulator.data import DataPlane, Store
from automation.emulator.stores import TABLE_NAMESPACE, Datapoint, store_key
from lambdas.failover.exceptions import StepFailed
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment, actor_clients

Deploy = Callable[..., Deployment]


def _declared_failover(d: Deployment, *, planned: bool = True) -> list[str]:
    """``python -m automation latch activate`` (automation/latch_cli.py ``activate``), as an operator runs it
    for a declared failover, under its own actor so that the checker attributes its calls."""
    session = new_session()
    d.emulator.attach(session)
    operator = actor_clients(d, session)
    operator.actor = "latch-activate"
    d._begin_actor("latch-activate")
    try:
        return latch_cli.activate(d.ctx, operator, reason="declared failover", planned=planned)
    finally:
        d._end_actor("latch-activate")
        operator.actor = None


def test_b34_1_a_declared_aurora_failover_moves_the_writer_before_the_global_table_replicates(
    deploy: Deploy,
) -> None:
    """aurora-global. Region A is degraded: its DynamoDB replica's updates reach region B 15 minutes late
    ("ReplicationLatency can increase if an AWS Region becomes degraded",
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html). Clients
    pay through region A; the operator declares a failover: ``latch activate`` (planned unless
    ``--unplanned``), whose ``promote_database`` asks for a switchover ("Switchovers ... for controlled
    scenarios": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html),
    which waits for the Aurora secondary only. docs/safety.md (no_loss): "when the writer moves on a planned
    change, the new writer's region holds every DynamoDB item and S3 receipt acknowledged in the old one";
    issue 10 item 2: "--planned (in both database modes) ... stop writes ... and for S3 and DynamoDB
    replication to drain; then move the writer". ``_request_switchover`` waits for the stores only when the
    run journal holds ``primaryStoppedAt`` (a fence's stamp); a declared failover fences nothing and stamps
    ``failoverDeclaredAt`` instead, so the switchover is asked at once, region A serving and its last 15 minutes of
    payment items still on their way.

    Fixed: ``latch activate`` runs the runbook's fence first (primaryStoppedAt stamped) and the switchover
    waits for the stores from it. A table 15 minutes behind needs ten times that after the drain (AWS's
    evacuation procedure, ``lossless.settled_evidence``), beyond the 20-minute budget: the declared failover
    stops on its own decision (``LagTimeout``), rolled back to region A serving its writer, nothing lost."""
    d = deploy("aurora-global")
    d.op_advance(120)
    d.emulator.slow_replication(Store.TABLE, 900.0)
    d.op_write(20)
    d.op_advance(20)
    d.op_write(20)
    try:
        lines = _declared_failover(d)
    except StepFailed as exc:
        lines = [f"refused: {exc.step}: {exc.code}: {exc.reason}"]
        assert exc.code == "LagTimeout", lines
    d.op_advance(600)
    d.judge()
    assert not [v for v in d.violations if v.invariant == "no_loss"], [*lines, *map(str, d.violations)]
    assert bool(d.emulator.database_writable(REGION_B)) != bool(d.emulator.database_writable(REGION_A)), lines
    if d.emulator.database_writable(REGION_A):
        # Stopped on its own decision: region A given back what the fence took, serving its writer.
        assert d.emulator.serving(REGION_A), lines


def test_control_a_declared_aurora_failover_with_the_table_at_its_pace(deploy: Deploy) -> None:
    """The same declared failover with the table replicating at its usual pace (about a second): nothing the
    checker can see is late, the switchover moves the writer to region B."""
    d = deploy("aurora-global")
    d.op_advance(120)
    d.op_write(20)
    d.op_advance(20)
    lines = _declared_failover(d)
    d.op_advance(600)
    d.judge()
    assert not [v for v in d.violations if v.invariant == "no_loss"], [*lines, *map(str, d.violations)]
    assert d.emulator.database_writable(REGION_B) and not d.emulator.database_writable(REGION_A), lines


def _latency_of_arrived_items_only(
    data: DataPlane, table: Any, since: datetime, now: datetime, reachable: Callable[[str], bool]
) -> list[Datapoint]:
    """``ReplicationLatency`` as AWS defines it: "The elapsed time between when an item is written to a replica
    table, and when that item appears in another replica in the global table"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html): one
    latency per item that appeared, the period's maximum of them. The emulator's ``stores.table_datapoints``
    adds the age of the oldest item still on its way, an assumption of its own ("the pages define the metric
    per replicated item and do not say what a period with items still in flight reports"); docs/safety.md
    says the opposite of it ("replication stalled completely publishes no latency at all")."""
    points: list[Datapoint] = []
    for source, receiving in (table.regions, table.regions[::-1]):
        if not reachable(source):
            continue
        arrived = data.arrivals(store_key(Store.TABLE, receiving), since, now)
        if not arrived:
            continue
        dims = (("TableName", table.name), ("ReceivingRegion", receiving))
        points.append(
            Datapoint(
                source, TABLE_NAMESPACE, "ReplicationLatency", dims, max(arrived) * 1000.0, "Milliseconds"
            )
        )
    return points


def _planned_failover_as_the_table_slows(d: Deployment) -> Any:
    """Clients pay through region A with the table at its pace for ten minutes (the recent maximum
    latency about a second); then its replication slows to 15 minutes an item, the clients pay on, and the
    operator runs a ``--planned`` failover at once."""
    for _ in range(10):
        d.op_write(5)
        d.op_advance(60)
    d.emulator.slow_replication(Store.TABLE, 900.0)
    d.op_write(20)
    d.op_advance(10)
    run = d.op_run("failover", params={"force": True, "planned": True, "waiterMaxAttempts": 120})
    d.op_advance(300)
    d.judge()
    return run


def test_b34_2_the_global_table_s_wait_ends_at_its_floor_while_items_are_in_flight(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rds-replica (PostgreSQL). The global table's replication slows from about a second to 15 minutes just
    before a ``--planned`` failover (region A degraded: "ReplicationLatency can increase if an AWS Region becomes
    degraded"). ``settled_evidence`` waits ten times the largest ``ReplicationLatency`` published, at least
    ``SETTLE_FLOOR`` (6 min) after the drain. AWS publishes a latency for an item when it appears in the other
    replica (its definition, above), so until the first slowed item arrives (15 minutes after it was written)
    the largest latency published is about a second: the wait ends at its floor, 11 minutes after the stop, and
    the writer moves with the last payments still on their way. docs/safety.md promises "a latency that grows
    while it waits makes it wait longer", but a latency is published only once the slow items arrive, and the
    checker's emulator (``stores.table_datapoints``) hides this by publishing the age of items in flight,
    an assumption the AWS pages do not make. AWS's evacuation page waits "10 times the recent maximum value" and
    says "If Region A is unhealthy and shows other areas of increased latencies, you'd choose a larger multiple"
    (https://docs.aws.amazon.com/prescriptive-guidance/latest/dynamodb-global-tables/evacuation-processes.html).

    Fixed: the emulator publishes the metric as AWS defines it (``stores.table_datapoints``, the same as
    ``_latency_of_arrived_items_only`` here), and the runbook writes a drain marker into region A's replica
    after the drain and waits until region B's replica shows it, folding its latency (15 minutes here) into
    the maximum (``lossless.table_marker_latency``): the wait gives up at its budget, the writer stays in
    region A and nothing is lost."""
    monkeypatch.setattr(emulator_aws, "table_datapoints", _latency_of_arrived_items_only)
    d = deploy("rds-replica")
    run = _planned_failover_as_the_table_slows(d)
    assert not [v for v in d.violations if v.invariant == "no_loss"], [
        f"run {run.outcome}: {run.detail}",
        *map(str, d.violations),
    ]


def test_control_the_slowed_table_s_drain_marker_makes_the_wait_give_up(deploy: Deploy) -> None:
    """The same schedule against the emulator as it is (``ReplicationLatency`` per item that arrived, as AWS
    defines it): the drain marker reaches region B's replica 15 minutes after the drain, its latency makes
    the wait 150 minutes, and the wait gives up at its budget, the writer staying in region A, nothing lost."""
    d = deploy("rds-replica")
    run = _planned_failover_as_the_table_slows(d)
    assert not [v for v in d.violations if v.invariant == "no_loss"], [str(v) for v in d.violations]
    assert run.outcome == "stopped", run.detail
    assert "the drain marker's 900 s" in str(run.detail), run.detail
    assert d.emulator.database_writable(REGION_A) and not d.emulator.database_writable(REGION_B)


def test_control_a_planned_failover_with_the_table_at_its_pace_moves_the_writer(deploy: Deploy) -> None:
    """The drain marker does not hold up an ordinary planned failover: with the table at its pace (about a
    second) the marker is readable in region B within a poll, the wait ends at its 6-minute floor and the
    writer moves to region B with nothing lost."""
    d = deploy("rds-replica")
    for _ in range(3):
        d.op_write(5)
        d.op_advance(60)
    run = d.op_run("failover", params={"force": True, "planned": True, "waiterMaxAttempts": 120})
    d.op_advance(300)
    d.judge()
    assert not [v for v in d.violations if v.invariant == "no_loss"], [str(v) for v in d.violations]
    assert run.outcome == "done", run.detail
    assert d.emulator.database_writable(REGION_B), run.detail
