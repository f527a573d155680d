"""The emulator with real PostgreSQL behind its databases (``Emulator(postgres=...)``).

The control plane is the emulator's (states and durations on the virtual clock); the data is real:
each RDS instance or Aurora cluster is a PostgreSQL 18 server on 127.0.0.1, replicating by physical
streaming. Each test names the AWS behaviour it holds the emulator to.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from automation.emulator import pg as pg_module
from automation.emulator.aws import Emulator
from automation.emulator.pg import payment_id
from automation.postgres import PgCluster, is_fenced, is_in_recovery, payment_ids
from lambdas.failover.promotion import _loss_estimate
from tests.automation.emulator.conftest import A, Aws, B, _prefixes
from tests.automation.emulator.test_aws import aurora_pair, global_cluster, instance, rds_pair, writer_of


@pytest.fixture
def aws_pg(clients: tuple[Any, dict[tuple[str, str], Any]], pg_cluster: PgCluster) -> Iterator[Aws]:
    """An installed emulator whose databases are real servers; the servers are discarded after the test."""
    emulator = Emulator(postgres=pg_cluster)
    session, cache = clients
    try:
        with emulator.installed():
            yield Aws(emulator, session, f"pg{next(_prefixes)}", cache)
    finally:
        assert emulator.pg is not None
        emulator.pg.close_sessions()
        for server in list(emulator.pg.servers.values()):
            pg_cluster.discard(server)


def server(aws: Aws, key: str) -> Any:
    assert aws.emulator.pg is not None
    return aws.emulator.pg.servers[key]


def serve(aws: Aws, region: str, key: str) -> None:
    """``region``'s web tier serving (as deployed) and writing to database copy ``key``."""
    aws.emulator.provisioning = True
    aws.web_tier(region, 1, key)
    aws.emulator.provisioning = False


def lost_within_bound(lost: list[Any], bound_at: datetime, note: str) -> list[str]:
    """The lost writes older (at ``bound_at``) than the runbook's "may lose up to N s" (none is fine)."""
    bound = float(note.split("may lose up to ")[1].split(" s")[0])
    return [f"#{w.id} {w.at:%H:%M:%S}" for w in lost if (bound_at - w.at).total_seconds() > bound + 0.5]


# -- endpoints, replication, metrics ---------------------------------------------------------------------


def test_describe_gives_the_real_servers_endpoint_and_the_replica_streams_what_the_writer_commits(
    aws_pg: Aws,
) -> None:
    """DescribeDBInstances ``Endpoint`` is where a driver connects: here 127.0.0.1 and the server's port.
    A committed payment reaches the read replica, and ``ReplicaLag`` (Seconds, per replica, each
    minute: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html) reads, as RDS for
    PostgreSQL documents it (``now() - pg_last_xact_replay_timestamp()``,
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PostgreSQL.Replication.ReadReplicas.Monitor.html),
    the age of that payment's commit, the last one replayed: 60 s at the next minute's sample."""
    pair = rds_pair(aws_pg)
    emu = aws_pg.emulator
    for region, name, arn in ((A, pair.source, pair.source_arn), (B, pair.replica, pair.replica_arn)):
        endpoint = instance(aws_pg, region, name)["Endpoint"]
        assert endpoint == {"Address": "127.0.0.1", "Port": server(aws_pg, arn).port}, name
    assert is_in_recovery(server(aws_pg, pair.replica_arn))
    serve(aws_pg, A, pair.source_arn)
    write = emu.write(A)
    assert write is not None
    assert payment_id(write.id) in payment_ids(server(aws_pg, pair.source_arn))
    emu.advance(61)  # a minute tick publishes the replica's lag
    assert write.id in emu.database_held(pair.replica_arn)
    points = aws_pg.datapoints(
        B, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": pair.replica}, unit="Seconds"
    )
    assert points and points[-1][1] == 60.0


# -- unplanned: kill the writer mid-write ---------------------------------------------------------------


def test_killing_region_a_mid_write_loses_only_what_the_runbook_said_it_may_lose(aws_pg: Aws) -> None:
    """An unplanned promotion loses the replica's unapplied tail, and only it: payments acknowledged by
    region A's server that region B's never received (the replication link failed first, then region A
    went dark while a workload was writing). Each lost payment is younger, when the runbook estimated
    the loss, than the bound the runbook reported ("may lose up to N s", from the last ``ReplicaLag``
    datapoint plus its age): the lag the emulator publishes is measured on the real servers, in virtual
    seconds."""
    pair = rds_pair(aws_pg)
    emu = aws_pg.emulator
    serve(aws_pg, A, pair.source_arn)
    acked: list[Any] = []
    failures: list[int] = []
    stop = threading.Event()

    def workload() -> None:
        while not stop.is_set():
            write = emu.write(A)
            if write is None:
                failures.append(1)
                if not emu.reachable(A):
                    return
            else:
                acked.append(write)

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 20
        while len(acked) < count:
            assert time.monotonic() < deadline, f"only {len(acked)} payments acknowledged"
            time.sleep(0.01)

    thread = threading.Thread(target=workload, daemon=True)
    thread.start()
    try:
        wait_for(20)
        assert emu.pg is not None
        from automation.postgres import disconnect

        disconnect(server(aws_pg, pair.replica_arn))  # the link between the regions fails first
        wait_for(len(acked) + 20)
        emu.advance(61)  # a ReplicaLag datapoint is published while the writes go on unreplicated
        wait_for(len(acked) + 20)
        emu.go_dark(A)  # region A's server is killed while the workload is writing
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    emu.advance(60)
    clients = cast(
        Any, SimpleNamespace(clock=emu.clock, cloudwatch=lambda side: aws_pg.client("cloudwatch", B))
    )
    estimated_at = emu.clock.now()
    note = _loss_estimate(clients, "ReplicaLag", {"DBInstanceIdentifier": pair.replica}, 1.0)
    aws_pg.client("rds", B).promote_read_replica(DBInstanceIdentifier=pair.replica)
    emu.advance(emu.timings.promote_seconds)

    present = emu.database_held(pair.replica_arn)
    lost = [w for w in acked if w.id not in present]
    assert lost, "payments acknowledged after the link failed are lost"
    assert {w.id for w in lost} == set(emu.lost_at_promotion[pair.replica_arn]), (
        "the emulator's count is the ledger's"
    )
    assert not lost_within_bound(lost, estimated_at, note), f"lost beyond the runbook's bound ({note})"
    assert not is_in_recovery(server(aws_pg, pair.replica_arn)), "the promoted replica is a writer"
    emu.come_back(A)
    assert {w.id for w in acked} <= emu.database_held(pair.source_arn), (
        "region A's server kept every acknowledged commit through the kill (a standalone writer)"
    )


def test_a_wall_clock_lag_would_hide_the_tail_from_the_runbooks_bound(
    aws_pg: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the lag is measured in virtual seconds: the standby's own ``now() - last replayed commit``
    is wall-clock time (milliseconds here), so published as ``ReplicaLag`` it would tell the runbook
    that a replica cut off a minute ago (virtual) is current, and the bound it reports would be
    shorter than what the promotion loses."""
    from automation.postgres import disconnect, replay_lag_seconds

    monkeypatch.setattr(
        pg_module.PgDatabases,
        "lag_seconds",
        lambda self, key: replay_lag_seconds(self.servers[key]) if self.source_name(key) else None,
    )
    # RDS for PostgreSQL's ReplicaLag is read from the last replayed commit's instant: the wall-clock
    # reading of it is the virtual now less the standby's own wall-clock age of that commit.
    monkeypatch.setattr(
        pg_module.PgDatabases,
        "last_replayed_at",
        lambda self, key: (
            self.now() - timedelta(seconds=replay_lag_seconds(self.servers[key]) or 0.0)
            if self.source_name(key)
            else None
        ),
    )
    pair = rds_pair(aws_pg)
    emu = aws_pg.emulator
    serve(aws_pg, A, pair.source_arn)
    assert emu.write(A) is not None
    emu.advance(1)
    disconnect(server(aws_pg, pair.replica_arn))
    tail = [emu.write(A) for _ in range(3)]
    emu.advance(61)
    emu.go_dark(A)
    emu.advance(60)
    clients = cast(
        Any, SimpleNamespace(clock=emu.clock, cloudwatch=lambda side: aws_pg.client("cloudwatch", B))
    )
    note = _loss_estimate(clients, "ReplicaLag", {"DBInstanceIdentifier": pair.replica}, 1.0)
    assert lost_within_bound([w for w in tail if w], emu.clock.now(), note), (
        "with a wall-clock lag the tail is older than the bound"
    )


# -- planned: nothing lost ---------------------------------------------------------------------------------


def test_a_planned_promotion_at_zero_lag_loses_no_committed_payment(aws_pg: Aws) -> None:
    """A planned change: writes stop, the replica replays the last of them (``ReplicaLag``, PostgreSQL's
    age of the last replayed commit, reads the time since that commit: the replica holds it, so
    everything before it), then the replica is promoted
    (PromoteReadReplica: "stop any transactions from being written to the source DB instance, and then
    wait for all updates to be made to the read replica",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Every
    acknowledged payment is in the promoted server's ledger, and it takes writes."""
    pair = rds_pair(aws_pg)
    emu = aws_pg.emulator
    serve(aws_pg, A, pair.source_arn)
    acked = [w for w in (emu.write(A) for _ in range(30)) if w is not None]
    assert len(acked) == 30
    emu.advance(121)
    points = aws_pg.datapoints(
        B, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": pair.replica}, unit="Seconds"
    )
    assert points[-1][1] == (points[-1][0] - acked[-1].at).total_seconds(), "the last payment was replayed"
    aws_pg.client("rds", B).promote_read_replica(DBInstanceIdentifier=pair.replica)
    assert emu.lost_at_promotion.get(pair.replica_arn, []) == []
    replica = server(aws_pg, pair.replica_arn)
    assert is_in_recovery(replica), "still a standby while the promotion runs (modifying)"
    emu.advance(emu.timings.promote_seconds)
    assert {w.id for w in acked} <= emu.database_held(pair.replica_arn)
    assert not is_in_recovery(replica)


def test_a_renamed_instance_keeps_its_server_and_its_endpoint(aws_pg: Aws) -> None:
    """ModifyDBInstance ``NewDBInstanceIdentifier``: the instance, its data and its replicas follow the
    new name (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html)."""
    pair = rds_pair(aws_pg)
    emu = aws_pg.emulator
    serve(aws_pg, A, pair.source_arn)
    write = emu.write(A)
    assert write is not None
    before = server(aws_pg, pair.source_arn)
    aws_pg.client("rds", A).modify_db_instance(
        DBInstanceIdentifier=pair.source, NewDBInstanceIdentifier=aws_pg.name("kept"), ApplyImmediately=True
    )
    emu.advance(emu.timings.rename_seconds)
    renamed = instance(aws_pg, A, aws_pg.name("kept"))
    assert renamed["Endpoint"]["Port"] == before.port
    assert server(aws_pg, renamed["DBInstanceArn"]) is before
    assert write.id in emu.database_held(renamed["DBInstanceArn"])


# -- Aurora: switchover, failover, the Data API ------------------------------------------------------------


def data_api(aws: Aws, region: str, arn: str, sql: str, **params: str) -> dict[str, Any]:
    secret = aws.client("secretsmanager", region).create_secret(
        Name=aws.name(f"app-{region}-{int(time.monotonic_ns())}"),
        SecretString=json.dumps({"username": "app", "password": "unused"}),
    )["ARN"]
    return aws.client("rds-data", region).execute_statement(
        resourceArn=arn,
        secretArn=secret,
        database="pilotlight",
        sql=sql,
        parameters=[{"name": k, "value": {"stringValue": v}} for k, v in params.items()],
    )


INSERT = (
    "INSERT INTO ledger (payment_id, amount, currency, region) VALUES (:id, 1.00, 'EUR', 'test') "
    "ON CONFLICT DO NOTHING"
)


def test_the_data_api_runs_on_the_writer_and_fails_on_the_secondary(aws_pg: Aws) -> None:
    """ExecuteStatement runs on the cluster's writer; "read and write queries sent to the secondary
    cluster fail while it lacks a writer instance"
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html):
    ``DatabaseUnavailableException``, "The writer instance in the DB cluster isn't available"."""
    pair = aurora_pair(aws_pg)
    assert data_api(aws_pg, A, pair.a_arn, INSERT, id="pay-data-api")["numberOfRecordsUpdated"] == 1
    rows = data_api(
        aws_pg,
        A,
        pair.a_arn,
        "SELECT payment_id, amount::text FROM ledger WHERE payment_id = :id",
        id="pay-data-api",
    )
    assert rows["records"] == [[{"stringValue": "pay-data-api"}, {"stringValue": "1.00"}]]
    with pytest.raises(ClientError) as refused:
        data_api(aws_pg, B, pair.b_arn, INSERT, id="pay-on-secondary")
    assert refused.value.response["Error"]["Code"] == "DatabaseUnavailableException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 504
    cluster = aws_pg.client("rds", A).describe_db_clusters(DBClusterIdentifier=pair.a)["DBClusters"][0]
    assert (cluster["Endpoint"], cluster["Port"]) == ("127.0.0.1", server(aws_pg, pair.a_arn).port)


def test_a_switchover_fences_the_writer_waits_for_zero_lag_and_loses_nothing(aws_pg: Aws) -> None:
    """SwitchoverGlobalCluster: the primary is demoted to a read-only secondary and "all secondary
    clusters are synchronized with the primary at the beginning of the process so the new primary
    continues operations ... without losing any data"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverGlobalCluster.html).
    From the request on, the old writer's server refuses the application; once the switchover
    completes the target holds every payment, takes writes, and the old writer streams from it."""
    pair = aurora_pair(aws_pg)
    emu = aws_pg.emulator
    for i in range(10):
        data_api(aws_pg, A, pair.a_arn, INSERT, id=f"pay-{i}")
    aws_pg.client("rds", B).switchover_global_cluster(
        GlobalClusterIdentifier=pair.gid, TargetDbClusterIdentifier=pair.b_arn
    )
    assert is_fenced(server(aws_pg, pair.a_arn)), "writes are refused from the request on"
    with pytest.raises(ClientError):
        data_api(aws_pg, A, pair.a_arn, INSERT, id="pay-during")
    emu.advance(emu.timings.switchover_seconds + 5)
    assert writer_of(global_cluster(aws_pg, pair.gid)) == pair.b_arn
    assert pair.b_arn not in emu.lost_at_promotion or emu.lost_at_promotion[pair.b_arn] == []
    assert {f"pay-{i}" for i in range(10)} <= payment_ids(server(aws_pg, pair.b_arn))
    assert data_api(aws_pg, B, pair.b_arn, INSERT, id="pay-after")["numberOfRecordsUpdated"] == 1
    old = server(aws_pg, pair.a_arn)
    assert is_in_recovery(old) and not is_fenced(old), "the old writer is rebuilt as a secondary"
    deadline = time.monotonic() + 10
    while "pay-after" not in payment_ids(old):
        assert time.monotonic() < deadline, "the old writer does not stream from the new one"
        time.sleep(0.02)


def test_an_unplanned_aurora_failover_discards_the_old_primarys_tail_when_it_is_rebuilt(aws_pg: Aws) -> None:
    """FailoverGlobalCluster with AllowDataLoss while region A is dark: the secondary is promoted with
    what it received; when region A answers, the old primary is rebuilt as a secondary and what only it
    held is discarded (counted from its own ledger before the rebuild)."""
    pair = aurora_pair(aws_pg)
    emu = aws_pg.emulator
    from automation.postgres import disconnect

    serve(aws_pg, A, pair.a_arn)
    replicated = [emu.write(A) for _ in range(5)]
    deadline = time.monotonic() + 10
    while not {payment_id(w.id) for w in replicated if w} <= payment_ids(server(aws_pg, pair.b_arn)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    disconnect(server(aws_pg, pair.b_arn))
    tail = [w for w in (emu.write(A) for _ in range(4)) if w is not None]
    emu.go_dark(A)
    aws_pg.client("rds", B).failover_global_cluster(
        GlobalClusterIdentifier=pair.gid, TargetDbClusterIdentifier=pair.b_arn, AllowDataLoss=True
    )
    emu.advance(emu.timings.global_failover_seconds)
    assert sorted(emu.lost_at_promotion[pair.b_arn]) == sorted(w.id for w in tail)
    emu.come_back(A)
    rebuild = next(e for e in emu.events if e.kind == "rebuild")
    assert sorted(rebuild.data["discarded"]) == sorted(w.id for w in tail)
    assert emu.clock.now() - rebuild.at < timedelta(seconds=1), "rebuilt as soon as region A answers"
    old = server(aws_pg, pair.a_arn)
    assert is_fenced(old), "the old primary takes no writes while Aurora rebuilds it"
    emu.advance(emu.timings.rebuild_seconds)
    assert is_in_recovery(old), "after the rebuild, the old primary is a secondary of the new writer"
    assert {payment_id(w.id) for w in tail}.isdisjoint(payment_ids(old)), "its tail is discarded"
