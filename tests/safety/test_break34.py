"""break34: the runbook-safety work on ``integ`` at 67180c7 (issue 10: the DynamoDB global table's wait, the
wait budget counted from the drain, RDS for MySQL refused, break30 B30-1) attacked in the safety model.

Each finding is a strict xfail naming the invariant of docs/safety.md it protects: it fails for the reason its
``reason`` states until the product (or the checker) is fixed. Controls (no xfail) show the schedule is
otherwise sound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from automation import latch_cli
from automation.emulator import aws as emulator_aws
from automation.emulator.data import DataPlane, Store
from automation.emulator.stores import TABLE_NAMESPACE, Datapoint, store_key
from lambdas.failover.exceptions import StepFailed
from tests.lambdas.failover.harness import declare_without_promotion, new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment, actor_clients

Deploy = Callable[..., Deployment]


def as_operator(d: Deployment, actor: str, command: Callable[[Any], Any]) -> Any:
    """Run ``command(clients)`` (a ``python -m automation latch`` command) as an operator's host runs it, on
    its own session, under its own actor so that the checker attributes its calls."""
    session = new_session()
    d.emulator.attach(session)
    operator = actor_clients(d, session)
    operator.actor = actor
    d._begin_actor(actor)
    try:
        return command(operator)
    finally:
        d._end_actor(actor)
        operator.actor = None


def _declared_failover(d: Deployment, *, planned: bool = True) -> list[str]:
    """``python -m automation latch activate`` (automation/latch_cli.py ``activate``) for a declared failover."""
    return as_operator(
        d,
        "latch-activate",
        lambda clients: latch_cli.activate(d.ctx, clients, reason="declared failover", planned=planned),
    )


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
    assert not d.violations, [*lines, *map(str, d.violations)]
    assert d.emulator.database_writable(REGION_B) and not d.emulator.serving(REGION_A), lines


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


def _dr_update_active(d: Deployment) -> str | None:
    """``pulumi up -s dr`` with ``dr:active true`` after ``latch activate``: the program's refusal before any
    resource (components/program.py: ``refuse_program_promotion``, over region B's instance read live), its
    reason when it refuses; else what the update changes: rds-replica, a replica still replicating is
    promoted by dropping ``replicate_source_db`` (PromoteReadReplica, called as the provider calls it:
    components/dr_data.py), and region B's web tier and functions are lit (the runbook's steps that make the
    same changes)."""
    from components.config import DrFlags
    from components.failover import FailoverRefused, Latch, decide, refuse_program_promotion
    from lambdas.failover.journal import _read_latch
    from lambdas.failover.steps import enable_functions, scale_web_tier
    from tests.automation.test_break24 import PRIMARY

    clients = d.runbook_clients()
    latch = Latch.parse(json.dumps(_read_latch(clients, d.ctx) or {}))
    rds_b = d.world.client("rds", REGION_B)
    ident = str(d.ctx.dr_db_instance_id)
    (dr,) = rds_b.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"]
    replicating = bool(dr.get("ReadReplicaSourceDBInstanceIdentifier"))
    try:
        tier = decide(DrFlags(active=True), PRIMARY, database_mode="rds-replica", latch=latch, previous=None)
        refuse_program_promotion(tier, latch, "rds-replica", replicating)
    except FailoverRefused as exc:
        return str(exc)
    if replicating and tier.promote_database:
        rds_b.promote_read_replica(DBInstanceIdentifier=ident)
    scale_web_tier(d.ctx, clients, {"reason": "dr:active true"})
    enable_functions(d.ctx, clients, {"reason": "dr:active true"})
    return None


def test_b34_5_a_declared_rds_replica_failover_moves_the_writer_at_zero_lag_after_the_stop(
    deploy: Deploy,
) -> None:
    """no_loss (docs/safety.md: on a planned change, a declared failover while region A answers among them,
    "the writer moves only at zero lag measured after writes stopped"). rds-replica; the link to region B
    slowed to 90 s a write; clients pay through region A up to the declaration. The operator declares a
    failover as the README's table says: ``latch activate``, then ``pulumi up -s dr`` with ``dr:active
    true``.

    Before the fix ``latch activate`` fenced region A, wrote the latch and threw the switch, and the update
    promoted the replica at once by dropping ``replicate_source_db``: the writes of the last 90 s, still on
    the link, were lost ("A promoted read replica ... can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Now ``latch
    activate`` runs the runbook's ``promote_database``, which waits for the drain and zero lag proven after
    it, and the update finds the instance promoted and promotes nothing."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.emulator.slow_replication(Store.DATABASE, 90.0)
    d.op_write(20)
    d.op_advance(20)
    d.op_write(20)
    lines = _declared_failover(d)
    refused = _dr_update_active(d)
    d.op_advance(600)
    d.judge()
    assert refused is None, [*lines, refused]
    assert not [v for v in d.violations if v.invariant == "no_loss"], [*lines, *map(str, d.violations)]
    # RDS leaves region A's old primary a standalone writer; the fence keeps it from serving.
    assert d.emulator.database_writable(REGION_B) and not d.emulator.serving(REGION_A), lines
    assert d.emulator.serving(REGION_B) and d.where() == REGION_B and not d.violations, lines


def test_b34_5_the_dr_update_refuses_to_promote_a_replica_nothing_proved_at_zero_lag(deploy: Deploy) -> None:
    """The same declared failover whose ``latch activate`` stopped after the switch, before its promotion
    (the operator's host lost, or an older pilotlight's ``latch activate`` that did not promote): the
    update that would promote region B's replica is refused, naming ``latch activate``; running it again
    resumes the failover and moves the writer at zero lag, nothing lost."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.emulator.slow_replication(Store.DATABASE, 90.0)
    d.op_write(20)
    declare_without_promotion(d.ctx, d.runbook_clients())
    refused = _dr_update_active(d)
    assert refused is not None and "latch activate" in refused, refused
    lines = _declared_failover(d)
    assert _dr_update_active(d) is None, lines
    d.op_advance(600)
    d.judge()
    assert not d.violations, [*lines, *map(str, d.violations)]
    assert d.emulator.database_writable(REGION_B) and not d.emulator.serving(REGION_A), lines


def test_b34_5_a_declared_failover_over_a_dark_region_a_needs_unplanned(deploy: Deploy) -> None:
    """Region A dark: a declared failover cannot be lossless, so ``latch activate`` refuses before any change
    naming ``--unplanned`` (not the runbook's ``--planned``); with it, the replica is promoted once the switch
    has taken effect, and the command reports an upper estimate of what may be lost."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(5)
    d.op_outage()
    d.op_advance(120)
    with pytest.raises(StepFailed) as refused:
        _declared_failover(d)
    assert refused.value.code == "PlannedNeedsRegionA", refused.value
    assert "--unplanned" in refused.value.reason and "without --planned" not in refused.value.reason, (
        refused.value
    )
    lines = _declared_failover(d, planned=False)
    promoted = next(line for line in lines if line.startswith("promote_database:"))
    assert "unplanned: may lose" in promoted, lines
    assert _dr_update_active(d) is None, lines
    d.op_advance(600)
    d.judge()
    assert not d.violations, [*lines, *map(str, d.violations)]
    assert d.emulator.database_writable(REGION_B), lines


def test_b34_5_a_declared_rds_replica_failover_over_a_link_too_slow_for_the_wait_rolls_back(
    deploy: Deploy,
) -> None:
    """The link to region B 25 minutes behind, beyond the zero-lag wait's budget (80 looks 15 s apart after
    the drain): ``latch activate`` stops on its own decision (``LagTimeout``) with region B's database still a
    replica, and rolls back as the runbook's failover does: latch standby, switch released, region A given
    back what the fence took and serving its writer; nothing lost. Before the fix the update promoted the
    replica 25 minutes behind."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.emulator.slow_replication(Store.DATABASE, 1500.0)
    d.op_write(20)
    d.op_advance(20)
    with pytest.raises(StepFailed) as stopped:
        _declared_failover(d)
    assert stopped.value.code == "LagTimeout", stopped.value
    refused = _dr_update_active(d)
    assert refused is not None, "dr:active true is refused under the standby latch the roll-back wrote"
    d.op_advance(600)
    d.op_write(5)
    d.judge()
    assert not d.violations, [str(stopped.value), *map(str, d.violations)]
    assert d.emulator.serving(REGION_A) and d.where() == REGION_A
    assert not d.emulator.database_writable(REGION_B), "region B's replica was never promoted"
