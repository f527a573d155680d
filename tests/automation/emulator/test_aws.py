"""The AWS behaviours the emulator adds to moto, each asserted through the AWS API (boto3 on moto).

Every test names the behaviour and cites the AWS page it follows, as ``automation/emulator/aws.py``
does. Durations are the emulator's ``Timings`` (AWS's figures where AWS documents them, stated
assumptions otherwise); the tests read them rather than repeat them.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from automation.emulator.data import Store
from tests.automation.emulator.conftest import A, Aws, B
from tests.lambdas.failover.harness import new_session

# -- building blocks ------------------------------------------------------------------------------------


@dataclass
class RdsPair:
    """An encrypted source instance in region A and its cross-region read replica in region B."""

    source: str
    replica: str
    source_arn: str
    replica_arn: str
    key_a: str
    key_b: str


def kms_key(aws: Aws, region: str) -> str:
    return aws.client("kms", region).create_key(Description=aws.name("data"))["KeyMetadata"]["Arn"]


def source_instance(
    aws: Aws, name: str, *, key: str | None, backups: int = 7, engine: str = "postgres"
) -> dict[str, Any]:
    return aws.client("rds", A).create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine=engine,
        MasterUsername="app",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=backups,
        **({"StorageEncrypted": True, "KmsKeyId": key} if key else {}),
    )["DBInstance"]


def rds_pair(aws: Aws, engine: str = "postgres") -> RdsPair:
    """What the program deploys in rds-replica mode (encrypted, a key per region), available."""
    key_a, key_b = kms_key(aws, A), kms_key(aws, B)
    source = source_instance(aws, aws.name("db"), key=key_a, engine=engine)
    replica = aws.client("rds", B).create_db_instance_read_replica(
        DBInstanceIdentifier=aws.name("replica"),
        SourceDBInstanceIdentifier=source["DBInstanceArn"],
        DBInstanceClass="db.t3.micro",
        KmsKeyId=key_b,
        SourceRegion=A,
    )["DBInstance"]
    aws.emulator.provisioning = False
    return RdsPair(
        aws.name("db"), aws.name("replica"), source["DBInstanceArn"], replica["DBInstanceArn"], key_a, key_b
    )


def instance(aws: Aws, region: str, name: str) -> dict[str, Any]:
    return aws.client("rds", region).describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


@dataclass
class AuroraPair:
    """A global cluster: the writer cluster in region A, a secondary in region B."""

    gid: str
    a: str
    b: str
    a_arn: str
    b_arn: str


def aurora_pair(aws: Aws, *, headless: bool = False) -> AuroraPair:
    """What the program deploys in aurora-global mode; ``headless``: B has no instance (a pilot light)."""
    rds_a, rds_b = aws.client("rds", A), aws.client("rds", B)
    gid = aws.name("global")
    rds_a.create_global_cluster(GlobalClusterIdentifier=gid, Engine="aurora-postgresql")
    a = rds_a.create_db_cluster(
        DBClusterIdentifier=aws.name("a"),
        Engine="aurora-postgresql",
        GlobalClusterIdentifier=gid,
        MasterUsername="app",
        MasterUserPassword="not-a-secret-1",
    )["DBCluster"]
    rds_a.create_db_instance(
        DBInstanceIdentifier=aws.name("a-1"),
        DBClusterIdentifier=aws.name("a"),
        DBInstanceClass="db.r6g.large",
        Engine="aurora-postgresql",
    )
    b = rds_b.create_db_cluster(
        DBClusterIdentifier=aws.name("b"), Engine="aurora-postgresql", GlobalClusterIdentifier=gid
    )["DBCluster"]
    if not headless:
        rds_b.create_db_instance(
            DBInstanceIdentifier=aws.name("b-1"),
            DBClusterIdentifier=aws.name("b"),
            DBInstanceClass="db.r6g.large",
            Engine="aurora-postgresql",
        )
    aws.emulator.provisioning = False
    return AuroraPair(gid, aws.name("a"), aws.name("b"), a["DBClusterArn"], b["DBClusterArn"])


def global_cluster(aws: Aws, gid: str) -> dict[str, Any]:
    return aws.client("rds", B).describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]


def writer_of(group: dict[str, Any]) -> str | None:
    return next((m["DBClusterArn"] for m in group["GlobalClusterMembers"] if m["IsWriter"]), None)


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


# -- RDS read replica promotion ---------------------------------------------------------------------------


def test_promotion_passes_through_modifying_and_keeps_its_source_until_it_completes(aws: Aws) -> None:
    """https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html: the replica
    is rebooted and becomes available as a standalone instance; the runbook knows the promotion is
    over when ``ReadReplicaSourceDBInstanceIdentifier`` is gone."""
    pair = rds_pair(aws)
    seconds = aws.emulator.timings.promote_seconds
    started = aws.client("rds", B).promote_read_replica(DBInstanceIdentifier=pair.replica)["DBInstance"]
    assert started["DBInstanceStatus"] == "modifying"
    assert started["ReadReplicaSourceDBInstanceIdentifier"] == pair.source_arn
    aws.emulator.advance(seconds - 1)
    during = instance(aws, B, pair.replica)
    assert (during["DBInstanceStatus"], during["ReadReplicaSourceDBInstanceIdentifier"]) == (
        "modifying",
        pair.source_arn,
    )
    aws.emulator.advance(1)
    done = instance(aws, B, pair.replica)
    assert done["DBInstanceStatus"] == "available"
    assert "ReadReplicaSourceDBInstanceIdentifier" not in done
    assert pair.replica_arn not in instance(aws, A, pair.source).get("ReadReplicaDBInstanceIdentifiers", [])


@pytest.mark.parametrize(
    "target",
    ["replica while modifying", "replica once promoted", "source (never a replica)"],
)
def test_promoting_what_is_not_an_available_replica_is_refused(aws: Aws, target: str) -> None:
    """PromoteReadReplica answers ``InvalidDBInstanceState`` for an instance that is not a read replica
    in the available state (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html,
    Errors). A re-run of the runbook must not be able to "promote" twice."""
    pair = rds_pair(aws)
    rds_b = aws.client("rds", B)
    rds_b.promote_read_replica(DBInstanceIdentifier=pair.replica)
    if target == "replica once promoted":
        aws.emulator.advance(aws.emulator.timings.promote_seconds)
    region, name = (A, pair.source) if target.startswith("source") else (B, pair.replica)
    rds = aws.client("rds", region)
    assert error_code(lambda: rds.promote_read_replica(DBInstanceIdentifier=name)) == "InvalidDBInstanceState"


@pytest.mark.parametrize("source_dark", [True, False], ids=["unplanned (A dark)", "A answering"])
def test_the_unapplied_tail_at_promotion_is_never_held_by_the_promoted_instance(
    aws: Aws, source_dark: bool
) -> None:
    """Promotion stops replication when it starts (USER_ReadRepl.Promote.html: "stop any transactions
    from being written to the source DB instance, and then wait for all updates to be made to the read
    replica" is the operator's job): what the replica had not applied never reaches it. Only an
    unplanned promotion (the source's region dark) excuses that tail."""
    pair = rds_pair(aws)
    emu = aws.emulator
    emu.data.write(pair.source_arn)
    emu.advance(5)
    tail = [emu.data.write(pair.source_arn).id for _ in range(3)]
    if source_dark:
        emu.go_dark(A)
    aws.client("rds", B).promote_read_replica(DBInstanceIdentifier=pair.replica)
    emu.advance(3600)
    if source_dark:
        emu.come_back(A)
        emu.advance(3600)
    held = emu.data.held(pair.replica_arn)
    assert len(held) == 1 and held.isdisjoint(tail), "the promoted instance holds only what it had applied"
    assert emu.lost_at_promotion.get(pair.replica_arn, []) == (tail if source_dark else [])


def test_the_old_primary_stays_a_standalone_writer(aws: Aws) -> None:
    """RDS does not touch the source when a replica is promoted: both now take writes (the runbook must
    fence region A), and nothing replicates between them."""
    pair = rds_pair(aws)
    emu = aws.emulator
    aws.client("rds", B).promote_read_replica(DBInstanceIdentifier=pair.replica)
    emu.advance(emu.timings.promote_seconds)
    old = instance(aws, A, pair.source)
    assert old["DBInstanceStatus"] == "available"
    assert "ReadReplicaSourceDBInstanceIdentifier" not in old
    assert sorted(emu.writers()) == sorted([pair.source_arn, pair.replica_arn])
    late = emu.data.write(pair.source_arn)
    emu.advance(600)
    assert late.id not in emu.data.held(pair.replica_arn)


def test_a_waiter_on_a_promotion_advances_virtual_time_instead_of_sleeping(aws: Aws) -> None:
    """The runbook's boto3 waiters sleep ``Delay`` (30 s for ``db_instance_available``) between polls:
    five minutes of promotion pass in well under a second of wall time."""
    pair = rds_pair(aws)
    rds_b = aws.client("rds", B)
    rds_b.promote_read_replica(DBInstanceIdentifier=pair.replica)
    before, wall = aws.emulator.clock.monotonic(), time.monotonic()
    rds_b.get_waiter("db_instance_available").wait(DBInstanceIdentifier=pair.replica)
    waited = aws.emulator.clock.monotonic() - before
    assert time.monotonic() - wall < 5.0
    assert aws.emulator.timings.promote_seconds <= waited < aws.emulator.timings.promote_seconds + 31


# -- cross-region read replicas -----------------------------------------------------------------------------


def _replica_request(aws: Aws, source_arn: str, **kwargs: Any) -> Callable[[], Any]:
    return lambda: aws.client("rds", B).create_db_instance_read_replica(
        DBInstanceIdentifier=aws.name("r"),
        SourceDBInstanceIdentifier=source_arn,
        DBInstanceClass="db.t3.micro",
        SourceRegion=A,
        **kwargs,
    )


REPLICA_REFUSALS = {
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html: "you must
    # specify a KMS key identifier for the destination AWS Region".
    "encrypted, no KmsKeyId": ("no key", "InvalidParameterCombination"),
    # CreateDBInstanceReadReplica, KmsKeyId: "KMS keys are specific to the AWS Region".
    "encrypted, key of the source region": ("key A", "KMSKeyNotAccessibleFault"),
    "encrypted, no such key in the destination": ("missing key B", "KMSKeyNotAccessibleFault"),
    "encrypted, key disabled": ("disabled key B", "KMSKeyNotAccessibleFault"),
    # USER_ReadRepl.html: "automatic backups must be turned on for the source DB instance".
    "source without automated backups": ("no backups", "InvalidDBInstanceState"),
}


@pytest.mark.parametrize("case", list(REPLICA_REFUSALS))
def test_a_cross_region_replica_rds_would_refuse_is_refused(aws: Aws, case: str) -> None:
    how, code = REPLICA_REFUSALS[case]
    key_a, key_b = kms_key(aws, A), kms_key(aws, B)
    source = source_instance(aws, aws.name("db"), key=key_a, backups=0 if how == "no backups" else 7)
    aws.emulator.provisioning = False
    kms_id: dict[str, str] = {
        "no key": {},
        "key A": {"KmsKeyId": key_a},
        "missing key B": {"KmsKeyId": key_b.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"},
        "disabled key B": {"KmsKeyId": key_b},
        "no backups": {"KmsKeyId": key_b},
    }[how]
    if how == "disabled key B":
        aws.client("kms", B).disable_key(KeyId=key_b.rsplit("/", 1)[1])
    assert error_code(_replica_request(aws, source["DBInstanceArn"], **kms_id)) == code
    assert not aws.client("rds", B).describe_db_instances(
        Filters=[{"Name": "db-instance-id", "Values": [aws.name("r")]}]
    )["DBInstances"]


def test_an_encrypted_cross_region_replica_is_created_then_available_and_catches_up(aws: Aws) -> None:
    """USER_ReadRepl.XRgn.html: a replica with a key of its own region is created (``creating``),
    starts from the source's data and catches up once available."""
    key_a, key_b = kms_key(aws, A), kms_key(aws, B)
    source = source_instance(aws, aws.name("db"), key=key_a)
    emu = aws.emulator
    emu.provisioning = False
    before = [emu.data.write(source["DBInstanceArn"]).id for _ in range(3)]
    made = _replica_request(aws, source["DBInstanceArn"], KmsKeyId=key_b)()["DBInstance"]
    assert (made["DBInstanceStatus"], made["StorageEncrypted"], made["KmsKeyId"]) == ("creating", True, key_b)
    emu.advance(emu.timings.replica_create_seconds - 1)
    assert instance(aws, B, aws.name("r"))["DBInstanceStatus"] == "creating"
    assert emu.data.held(made["DBInstanceArn"]) == set()
    emu.advance(1 + emu.timings.rds_apply * len(before))
    assert instance(aws, B, aws.name("r"))["DBInstanceStatus"] == "available"
    assert emu.data.held(made["DBInstanceArn"]) == set(before)


def test_deleting_a_cross_region_replica_takes_it_off_its_source(aws: Aws) -> None:
    """DeleteDBInstance of a cross-region replica: the source no longer lists it (moto kept it by ARN
    and tried to remove it by identifier)."""
    pair = rds_pair(aws)
    aws.client("rds", B).delete_db_instance(DBInstanceIdentifier=pair.replica, SkipFinalSnapshot=True)
    assert instance(aws, A, pair.source).get("ReadReplicaDBInstanceIdentifiers", []) == []


# -- Aurora global database: managed failover and switchover ---------------------------------------------------


def test_a_managed_failover_shows_failover_state_then_moves_the_writer(aws: Aws) -> None:
    """FailoverGlobalCluster(AllowDataLoss): ``FailoverState.Status`` pending, then failing-over, the
    global cluster's ``Status`` failing-over, then the target is the writer
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html,
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html).
    Read back through DescribeGlobalClusters, i.e. through moto's response serializer."""
    pair = aurora_pair(aws)
    timings = aws.emulator.timings
    aws.client("rds", B).failover_global_cluster(
        GlobalClusterIdentifier=pair.gid, TargetDbClusterIdentifier=pair.b_arn, AllowDataLoss=True
    )
    group = global_cluster(aws, pair.gid)
    assert group["Status"] == "failing-over"
    assert group["FailoverState"] == {
        "Status": "pending",
        "FromDbClusterArn": pair.a_arn,
        "ToDbClusterArn": pair.b_arn,
        "IsDataLossAllowed": True,
    }
    assert writer_of(group) == pair.a_arn
    aws.emulator.advance(timings.failover_pending_seconds)
    group = global_cluster(aws, pair.gid)
    assert (group["Status"], group["FailoverState"]["Status"]) == ("failing-over", "failing-over")
    assert not aws.emulator.accepts_writes(pair.a_arn), "writes are blocked while failing over"
    aws.emulator.advance(timings.global_failover_seconds - timings.failover_pending_seconds)
    group = global_cluster(aws, pair.gid)
    assert group["Status"] == "available"
    assert "FailoverState" not in group
    assert writer_of(group) == pair.b_arn


GLOBAL_REFUSALS = {
    # API_FailoverGlobalCluster.html, Errors.
    "unknown global cluster": "GlobalClusterNotFoundFault",
    "target not a member": "DBClusterNotFoundFault",
    "headless target": "InvalidDBClusterStateFault",
    "already failing over": "InvalidGlobalClusterStateFault",
    # AllowDataLoss: "Can't be specified together with the Switchover parameter."
    "AllowDataLoss with Switchover": "InvalidParameterCombination",
    # aurora-global-database-disaster-recovery.html: a switchover needs every member healthy.
    "switchover with region A dark": "InvalidGlobalClusterStateFault",
}


@pytest.mark.parametrize("case", list(GLOBAL_REFUSALS))
def test_a_global_failover_aurora_would_refuse_is_refused(aws: Aws, case: str) -> None:
    pair = aurora_pair(aws, headless=case == "headless target")
    rds_b = aws.client("rds", B)
    gid, target = pair.gid, pair.b_arn
    kwargs: dict[str, Any] = {"AllowDataLoss": True}
    if case == "unknown global cluster":
        gid = aws.name("nope")
    elif case == "target not a member":
        target = pair.b_arn.replace(pair.b, aws.name("nope"))
    elif case == "already failing over":
        rds_b.failover_global_cluster(GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target, **kwargs)
    elif case == "AllowDataLoss with Switchover":
        kwargs["Switchover"] = True
    elif case == "switchover with region A dark":
        aws.emulator.go_dark(A)
        kwargs = {"Switchover": True}
    call = lambda: rds_b.failover_global_cluster(  # noqa: E731
        GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target, **kwargs
    )
    assert error_code(call) == GLOBAL_REFUSALS[case]
    if case == "switchover with region A dark":
        assert (
            error_code(
                lambda: rds_b.switchover_global_cluster(
                    GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target
                )
            )
            == GLOBAL_REFUSALS[case]
        )


def test_a_switchover_waits_for_the_target_to_catch_up_and_loses_nothing(aws: Aws) -> None:
    """SwitchoverGlobalCluster "synchronizes secondary DB clusters with the primary" before it changes
    the writer: a backlog longer than the switchover itself delays it; every write arrives, and the old
    primary then replicates from the new writer (aurora-global-database-disaster-recovery.html)."""
    emu = aws.emulator
    emu.timings = replace(emu.timings, aurora_apply=0.1)  # 2000 writes: 200 s of backlog
    pair = aurora_pair(aws)
    written = {emu.data.write(pair.a_arn).id for _ in range(2000)}
    aws.client("rds", B).switchover_global_cluster(
        GlobalClusterIdentifier=pair.gid, TargetDbClusterIdentifier=pair.b_arn
    )
    emu.advance(emu.timings.failover_pending_seconds)
    group = global_cluster(aws, pair.gid)
    assert group["FailoverState"]["Status"] == "switching-over"
    assert group["FailoverState"]["IsDataLossAllowed"] is False
    emu.advance(emu.timings.switchover_seconds)
    assert writer_of(global_cluster(aws, pair.gid)) == pair.a_arn, "still catching up after 120 s"
    assert not emu.accepts_writes(pair.a_arn), "writes stay blocked while it waits"
    emu.advance(120)
    assert writer_of(global_cluster(aws, pair.gid)) == pair.b_arn
    assert written <= emu.data.held(pair.b_arn)
    assert emu.data.source_of(pair.a_arn) is emu.data.copies[pair.b_arn]
    assert pair.b_arn not in emu.lost_at_promotion


def test_region_a_returning_after_an_unplanned_failover_is_snapshotted_then_rebuilt(aws: Aws) -> None:
    """After a managed failover with the old primary's region down, Aurora "attempts to take a
    snapshot" (``rds:unplanned-global-failover-...``) of the old primary when it becomes available,
    then rebuilds it as a secondary: its unreplicated writes survive only in that snapshot
    (aurora-global-database-disaster-recovery.html, "Recovering an Amazon Aurora global database from
    an unplanned outage")."""
    pair = aurora_pair(aws)
    emu = aws.emulator
    emu.data.write(pair.a_arn)
    emu.advance(2)
    tail = [emu.data.write(pair.a_arn).id for _ in range(3)]
    emu.go_dark(A)
    aws.client("rds", B).failover_global_cluster(
        GlobalClusterIdentifier=pair.gid, TargetDbClusterIdentifier=pair.b_arn, AllowDataLoss=True
    )
    emu.advance(emu.timings.global_failover_seconds)
    assert emu.lost_at_promotion[pair.b_arn] == tail
    emu.advance(3600)
    assert not emu.snapshots, "nothing is snapshotted while region A is dark"
    after = emu.data.write(pair.b_arn).id
    back = emu.clock.now()
    emu.come_back(A)
    snaps = aws.client("rds", A).describe_db_cluster_snapshots(
        DBClusterIdentifier=pair.a, SnapshotType="automated"
    )["DBClusterSnapshots"]
    (snap,) = [
        s for s in snaps if s["DBClusterSnapshotIdentifier"].startswith("rds:unplanned-global-failover-")
    ]
    assert snap["SnapshotCreateTime"] == back
    (model,) = emu.snapshots
    assert set(tail) <= model.holds
    assert emu.data.held(pair.a_arn) == set(), "rebuilt from scratch"
    emu.advance(emu.timings.rebuild_seconds + 1)
    held = emu.data.held(pair.a_arn)
    assert after in held and held.isdisjoint(tail)


def test_a_cluster_snapshot_holds_its_cluster_s_content_when_taken_and_a_copy_its_source_s(aws: Aws) -> None:
    """A cluster snapshot is of the cluster as it is when taken (CreateDBClusterSnapshot), never of
    writes made after; a copy holds what its source snapshot held (CopyDBClusterSnapshot), whatever
    the cluster holds by then. The automated unplanned-failover snapshot is the old primary's content
    before the rebuild. What no_loss reads to judge whether discarded writes survive (9B-7)."""
    pair = aurora_pair(aws)
    emu, rds = aws.emulator, aws.client("rds", A)
    before = {emu.data.write(pair.a_arn).id for _ in range(3)}
    rds.create_db_cluster_snapshot(DBClusterIdentifier=pair.a, DBClusterSnapshotIdentifier=aws.name("s1"))
    later = emu.data.write(pair.a_arn).id
    assert emu.snapshot_holds(A, aws.name("s1")) == before
    rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=aws.name("s1"), TargetDBClusterSnapshotIdentifier=aws.name("c1")
    )
    assert emu.snapshot_holds(A, aws.name("c1")) == before, "a copy holds its source's content"
    # An unplanned failover: the old primary's tail is discarded by the rebuild.
    emu.go_dark(A)
    aws.client("rds", B).failover_global_cluster(
        GlobalClusterIdentifier=pair.gid, TargetDbClusterIdentifier=pair.b_arn, AllowDataLoss=True
    )
    emu.advance(emu.timings.global_failover_seconds)
    emu.come_back(A)
    (auto,) = emu.snapshots
    holds = emu.snapshot_holds(A, auto.identifier)
    assert holds is not None and {*before, later} <= holds
    rds.create_db_cluster_snapshot(DBClusterIdentifier=pair.a, DBClusterSnapshotIdentifier=aws.name("s2"))
    after_rebuild = emu.snapshot_holds(A, aws.name("s2"))
    assert after_rebuild is not None and later not in after_rebuild, "taken after the rebuild"


# -- lag metrics -------------------------------------------------------------------------------------------------


def test_replica_lag_is_published_each_minute_and_grows_during_an_outage_then_drains(aws: Aws) -> None:
    """``ReplicaLag`` (seconds, per replica, in the replica's region) every minute, stamped with virtual
    time (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html); MySQL's
    ``Seconds_Behind_Master``, from the unapplied tail: 0 while caught up, -1 ("replication is
    currently not active") while region A is dark, 0 again once the backlog drained after it answers
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_MySQL.Replication.ReadReplicas.Monitor.html)."""
    pair = rds_pair(aws, engine="mysql")
    emu = aws.emulator
    start = emu.clock.now()
    emu.advance(150)  # 12:02:30
    for _ in range(1000):  # a burst: 50 s of applying at rds_apply
        emu.data.write(pair.source_arn)
    emu.advance(1)
    emu.go_dark(A)  # 12:02:31, before any of it crossed (rds_delay)
    emu.advance(274)
    emu.come_back(A)  # 12:07:05: the backlog drains by 12:07:55, before the next datapoint
    emu.advance(116)  # 12:09:01
    points = aws.datapoints(
        B, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": pair.replica}, unit="Seconds"
    )
    assert [t for t, _ in points] == [start + timedelta(minutes=m) for m in range(1, 10)]
    lag = [v for _, v in points]
    assert lag[:2] == [0.0, 0.0]
    assert lag[2:7] == [-1.0] * 5, "replication not active while A is dark"
    assert lag[7:] == [0.0, 0.0], "drained from the instant region A answered"


def test_aurora_global_lag_is_published_in_milliseconds_for_the_secondary(aws: Aws) -> None:
    """``AuroraGlobalDBReplicationLag`` (milliseconds, per secondary cluster, in its region)
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-monitoring.html)."""
    pair = aurora_pair(aws)
    emu = aws.emulator
    emu.advance(30)
    emu.data.write(pair.a_arn)
    emu.go_dark(A)
    emu.advance(90)
    points = aws.datapoints(
        B, "AWS/RDS", "AuroraGlobalDBReplicationLag", {"DBClusterIdentifier": pair.b}, unit="Milliseconds"
    )
    assert [v for _, v in points] == [30_000.0, 90_000.0]


def test_no_lag_is_published_from_a_dark_region(aws: Aws) -> None:
    pair = rds_pair(aws)
    aws.emulator.go_dark(B)
    aws.emulator.advance(300)
    aws.emulator.come_back(B)
    assert aws.datapoints(B, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": pair.replica}) == []


# -- dark regions and capacity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "call"),
    [
        ("rds", lambda c: c.describe_db_instances()),
        ("autoscaling", lambda c: c.describe_auto_scaling_groups()),
        ("cloudwatch", lambda c: c.list_metrics()),
        ("ssm", lambda c: c.describe_parameters()),
        ("lambda", lambda c: c.list_functions()),
    ],
    ids=["rds", "autoscaling", "cloudwatch", "ssm", "lambda"],
)
def test_a_dark_region_refuses_connections_and_answers_again_when_back(
    aws: Aws, service: str, call: Callable[[Any], Any]
) -> None:
    """A regional outage as a client sees it: the endpoint does not answer; the other region does.
    ``Emulator.attach`` installs this on a session (here a fresh one, as the runbook's are)."""
    session = new_session()
    aws.emulator.attach(session)
    a, b = (session.client(service, region_name=r) for r in (A, B))  # type: ignore[call-overload]
    aws.emulator.go_dark(A)
    with pytest.raises(EndpointConnectionError):
        call(a)
    call(b)
    aws.emulator.come_back(A)
    call(a)


CAPACITY_CALLS: dict[str, Callable[[Any, str, int], Any]] = {
    "UpdateAutoScalingGroup": lambda c, n, d: c.update_auto_scaling_group(
        AutoScalingGroupName=n, MinSize=d, DesiredCapacity=d
    ),
    "SetDesiredCapacity": lambda c, n, d: c.set_desired_capacity(AutoScalingGroupName=n, DesiredCapacity=d),
}


@pytest.mark.parametrize("api", list(CAPACITY_CALLS))
def test_a_web_tier_raised_from_zero_serves_only_after_launch(aws: Aws, api: str) -> None:
    """Instances launch and pass the load balancer's health checks before they take requests
    (``Timings.launch_seconds``, an assumption: boot and checks take minutes)."""
    name = aws.web_tier(B, desired=0)
    aws.emulator.provisioning = False
    assert not aws.emulator.web_serving(B)
    CAPACITY_CALLS[api](aws.client("autoscaling", B), name, 2)
    aws.emulator.advance(aws.emulator.timings.launch_seconds - 1)
    assert not aws.emulator.web_serving(B)
    aws.emulator.advance(1)
    assert aws.emulator.web_serving(B)


@pytest.mark.parametrize("api", list(CAPACITY_CALLS))
def test_a_web_tier_lowered_to_zero_stops_at_once_and_drains_for_the_deregistration_delay(
    aws: Aws, api: str
) -> None:
    """New requests stop at once; in-flight ones may finish for the target group's deregistration
    delay, 300 s by default (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#deregistration-delay)."""
    name = aws.web_tier(A, desired=2)
    aws.emulator.provisioning = False
    assert aws.emulator.web_serving(A)
    CAPACITY_CALLS[api](aws.client("autoscaling", A), name, 0)
    assert not aws.emulator.web_serving(A)
    assert aws.emulator.web_draining_until(A) == aws.emulator.clock.now() + timedelta(
        seconds=aws.emulator.timings.deregistration_delay
    )


def test_client_writes_go_through_a_serving_region_only(aws: Aws) -> None:
    """A write is acknowledged only by a region that answers, serves, and holds a writable database."""
    aws.emulator.provisioning = True
    pair = rds_pair(aws)
    aws.emulator.provisioning = True
    aws.web_tier(A, desired=2, database=pair.source_arn)
    aws.emulator.provisioning = False
    written = aws.emulator.write(A)
    assert written is not None and written.store is Store.DATABASE and written.copy == pair.source_arn
    aws.emulator.go_dark(A)
    assert aws.emulator.write(A) is None


# -- renaming a DB instance (rename to replace) ----------------------------------------------------------
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html


def test_a_renamed_instance_loses_its_old_name_at_once_and_is_unavailable_until_the_new_one_works(
    aws: Aws,
) -> None:
    """ "the old DNS name ... is immediately deleted"; "The new DNS name for the renamed DB instance becomes
    effective in about 10 minutes. The renamed DB instance is not available until the new name becomes
    effective". Its data goes with it: what it held is held under the new name."""
    pair = rds_pair(aws)
    emu, rds_a = aws.emulator, aws.client("rds", A)
    held = emu.data.write(pair.source_arn)
    new = aws.name("db-old")
    answer = rds_a.modify_db_instance(
        DBInstanceIdentifier=pair.source, NewDBInstanceIdentifier=new, ApplyImmediately=True
    )["DBInstance"]
    assert answer["DBInstanceIdentifier"] == new
    assert error_code(lambda: instance(aws, A, pair.source)) == "DBInstanceNotFound"
    assert instance(aws, A, new)["DBInstanceStatus"] == "renaming"
    new_arn = instance(aws, A, new)["DBInstanceArn"]
    assert not emu.accepts_writes(new_arn) and not emu.accepts_writes(pair.source_arn)
    emu.advance(emu.timings.rename_seconds - 1)
    assert instance(aws, A, new)["DBInstanceStatus"] == "renaming"
    emu.advance(1)
    assert instance(aws, A, new)["DBInstanceStatus"] == "available"
    assert held.id in emu.data.held(new_arn) and pair.source_arn not in emu.data.copies


def test_a_rename_to_a_name_in_use_is_refused_and_replicas_stay_associated(aws: Aws) -> None:
    """ "You cannot use an existing DB instance name when renaming an instance"; "All read replicas
    associated with a DB instance remain associated with that instance after it is renamed": the
    replica keeps replicating from the renamed instance."""
    pair = rds_pair(aws)
    emu, rds_a = aws.emulator, aws.client("rds", A)
    taken = source_instance(aws, aws.name("other"), key=None)["DBInstanceIdentifier"]
    assert (
        error_code(
            lambda: rds_a.modify_db_instance(
                DBInstanceIdentifier=pair.source, NewDBInstanceIdentifier=taken, ApplyImmediately=True
            )
        )
        == "DBInstanceAlreadyExists"
    )
    new = aws.name("db-renamed")
    rds_a.modify_db_instance(
        DBInstanceIdentifier=pair.source, NewDBInstanceIdentifier=new, ApplyImmediately=True
    )
    new_arn = instance(aws, A, new)["DBInstanceArn"]
    assert instance(aws, B, pair.replica)["ReadReplicaSourceDBInstanceIdentifier"] == new_arn
    assert instance(aws, A, new)["ReadReplicaDBInstanceIdentifiers"] == [pair.replica_arn]
    emu.advance(emu.timings.rename_seconds)
    later = emu.data.write(new_arn)
    emu.advance(60)
    assert later.id in emu.data.held(pair.replica_arn)


def test_an_application_configured_with_a_name_reaches_whatever_instance_bears_it(aws: Aws) -> None:
    """The endpoint includes the name: region A's application, configured with the primary's name,
    writes nowhere while the name is free, is refused while a replica bears it, and writes to the
    replica once it is promoted; the renamed old primary takes none of its writes."""
    aws.emulator.provisioning = True
    pair = rds_pair(aws)
    emu, rds_a = aws.emulator, aws.client("rds", A)
    emu.provisioning = True
    aws.web_tier(A, desired=2, database=pair.source_arn)  # configured by name: the ARN holds it
    emu.provisioning = False
    assert emu.write(A) is not None
    rds_b = aws.client("rds", B)
    rds_b.promote_read_replica(DBInstanceIdentifier=pair.replica)
    emu.advance(emu.timings.promote_seconds)
    old = aws.name("db-pre-failback-1")
    rds_a.modify_db_instance(
        DBInstanceIdentifier=pair.source, NewDBInstanceIdentifier=old, ApplyImmediately=True
    )
    assert emu.write(A) is None, "no instance bears the name: connections fail"
    emu.advance(emu.timings.rename_seconds)
    rds_a.create_db_instance_read_replica(
        DBInstanceIdentifier=pair.source,
        SourceDBInstanceIdentifier=pair.replica_arn,
        DBInstanceClass="db.t3.micro",
        KmsKeyId=pair.key_a,
        SourceRegion=B,
    )
    emu.advance(emu.timings.replica_create_seconds)
    assert emu.write(A) is None, "a replica bears the name: writes refused"
    rds_a.promote_read_replica(DBInstanceIdentifier=pair.source)
    emu.advance(emu.timings.promote_seconds)
    written = emu.write(A)
    assert written is not None and written.copy == pair.source_arn
    old_arn = instance(aws, A, old)["DBInstanceArn"]
    assert written.id not in emu.data.held(old_arn) and emu.authority(lambda _: True, "") == pair.source_arn


@pytest.mark.parametrize(
    ("engine", "flowing", "since_replay", "expected"),
    [
        ("mysql", False, 30.0, -1.0),
        ("mariadb", False, 30.0, -1.0),
        ("mysql", True, 30.0, 7.0),
        ("postgres", False, 30.0, 30.0),
        ("postgres", True, 30.0, 30.0),
        ("postgres", True, None, None),
    ],
)
def test_replica_lag_is_minus_one_only_where_rds_documents_it(
    engine: str, flowing: bool, since_replay: float | None, expected: float | None
) -> None:
    """MySQL/MariaDB: Seconds_Behind_Master (the unapplied tail's age, 7 s here), -1 while replication
    is not active; PostgreSQL: the documented ``now() - pg_last_xact_replay_timestamp()``, whether
    replication flows or not, no -1, and no datapoint before anything was replayed (NULL)."""
    from automation.emulator.aws import replica_lag

    assert replica_lag(engine, 7.0, flowing, since_replay) == expected


def test_postgres_replica_lag_is_the_age_of_the_last_replayed_commit(aws: Aws) -> None:
    """RDS for PostgreSQL's ``ReplicaLag`` "reports the result of ... SELECT extract(epoch from now() -
    pg_last_xact_replay_timestamp())"
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PostgreSQL.Replication.ReadReplicas.Monitor.html):
    no datapoint before anything is replayed, then the age of the last replayed commit, which grows
    a minute a minute on a caught-up replica of an idle source and falls back when a commit is
    replayed."""
    pair = rds_pair(aws)
    emu = aws.emulator
    start = emu.clock.now()
    emu.advance(150)  # 12:02:30: nothing committed yet, nothing replayed
    committed = emu.data.write(pair.source_arn).at
    emu.advance(270)  # 12:07:00
    emu.data.write(pair.source_arn)
    emu.advance(61)  # 12:08:01
    points = aws.datapoints(
        B, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": pair.replica}, unit="Seconds"
    )
    assert [t for t, _ in points] == [start + timedelta(minutes=m) for m in range(3, 9)]
    assert committed == start + timedelta(seconds=150)
    assert [v for _, v in points] == [30.0, 90.0, 150.0, 210.0, 270.0, 60.0], (
        "the last replayed commit's age: growing while the source is idle although the replica holds "
        "everything, back to 60 s once the 12:07:00 commit is replayed"
    )
    assert emu.data.lag_seconds(pair.replica_arn) == 0.0, "the replica holds everything"


def test_the_ledger_marker_function_commits_on_its_regions_writer_and_is_no_client_write(aws: Aws) -> None:
    """The marker the PostgreSQL zero-lag proof needs: Lambda ``Invoke`` of a region's ledger marker
    function commits one row on the database its application writes to, even with the web tier
    drained (the function serves no client and is never fenced); the replica replays it, so its
    ``ReplicaLag`` (age of the last replayed commit) falls; it is no acknowledged client write; and
    on a replica, which refuses writes, it commits nothing and says so."""
    pair = rds_pair(aws)
    emu = aws.emulator
    emu.provisioning = True
    aws.web_tier(A, 0, pair.source_arn)  # drained: no client write reaches the source
    aws.web_tier(B, 0, pair.replica_arn)
    emu.provisioning = False
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    role = aws.client("iam", A).create_role(RoleName=aws.name("marker"), AssumeRolePolicyDocument="{}")
    name = aws.name("ledger-marker")
    for region in (A, B):
        aws.client("lambda", region).create_function(
            FunctionName=name, Runtime="python3.12", Role=role["Role"]["Arn"], Handler="handler.handler",
            Code={"ZipFile": buf.getvalue()},
        )  # fmt: skip
        emu.register_marker_function(region, name)
    emu.advance(150)
    emu.data.write(pair.source_arn)  # the last client write, 12:02:30
    emu.advance(200)  # 12:05:50
    # A DryRun (the preflight's check) runs nothing: it validates and checks permission only
    # (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html); an unknown function is refused.
    dry = aws.client("lambda", A).invoke(FunctionName=name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204 and dry["Payload"].read() == b""
    assert [w for w in emu.data.writes.values() if not w.client] == [], "a DryRun committed a marker"
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        aws.client("lambda", A).invoke(FunctionName=aws.name("no-such-marker"), InvocationType="DryRun")
    answer = aws.client("lambda", A).invoke(FunctionName=name, Payload=b'{"marker": "drain-1"}')
    body = json.loads(answer["Payload"].read())
    assert body["committed"] is True, body
    [marker] = [w for w in emu.data.writes.values() if not w.client]
    assert marker.copy == pair.source_arn and marker.id not in {
        w.id for w in emu.data.acknowledged(Store.DATABASE)
    }
    emu.advance(70)  # 12:07:00
    points = aws.datapoints(
        B, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": pair.replica}, unit="Seconds"
    )
    assert [v for _, v in points][-3:] == [150.0, 10.0, 70.0], (
        "the replayed marker (12:05:50) is the last replayed commit"
    )
    refused = json.loads(aws.client("lambda", B).invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert refused["committed"] is False and refused["reason"], refused


def test_describe_db_parameter_groups_naming_a_missing_group_is_refused(aws: Any) -> None:
    """RDS answers DBParameterGroupNotFound for a name that does not exist
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBParameterGroups.html); moto
    answered an empty list, so the preflight's describe of ``primaryDbParameterGroupName`` passed a name
    that names nothing (the emulator's gap, automation/emulator/gaps.py)."""
    rds = aws.client("rds", A)
    name = aws.name("params")
    rds.create_db_parameter_group(
        DBParameterGroupName=name, DBParameterGroupFamily="postgres16", Description="d"
    )
    assert [
        g["DBParameterGroupName"]
        for g in rds.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"]
    ] == [name]
    with pytest.raises(ClientError, match="DBParameterGroupNotFound"):
        rds.describe_db_parameter_groups(DBParameterGroupName=name + "-gone")
    assert rds.describe_db_parameter_groups()["DBParameterGroups"], "unnamed: every group, as before"
