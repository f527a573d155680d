"""The DynamoDB global table and the S3 receipts buckets: writes both ways, outages, lag metrics.

Each test names the AWS behaviour and cites its page (see ``automation/emulator/stores.py``); the
metrics are read back through CloudWatch's GetMetricStatistics, naming the documented unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from automation.emulator.data import Store
from automation.emulator.exceptions import SpecError
from automation.emulator.stores import store_key
from tests.automation.emulator.conftest import A, Aws, B


def serving(aws: Aws) -> None:
    """Both regions serve (a client write needs a region whose application takes requests)."""
    aws.web_tier(A, desired=2)
    aws.web_tier(B, desired=2)
    aws.emulator.provisioning = False


def copy(store: Store, region: str) -> str:
    return store_key(store, region)


# -- DynamoDB global table --------------------------------------------------------------------------------


def global_table(aws: Aws) -> str:
    name = aws.name("payments")
    aws.emulator.register_global_table(name, (A, B))
    serving(aws)
    return name


def test_a_write_to_either_replica_reaches_the_other_after_the_table_delay(aws: Aws) -> None:
    """Global tables are multi-active and replicate asynchronously, "typically within a second"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html);
    ``Timings.table_delay``."""
    global_table(aws)
    emu = aws.emulator
    a, b = emu.write(A, Store.TABLE), emu.write(B, Store.TABLE)
    assert a is not None and b is not None
    assert emu.data.held(copy(Store.TABLE, A)) == {a.id}
    emu.advance(emu.timings.table_delay)
    assert emu.data.held(copy(Store.TABLE, A)) == emu.data.held(copy(Store.TABLE, B)) == {a.id, b.id}


def _moto_table(aws: Aws, name: str) -> None:
    for region in (A, B):
        aws.client("dynamodb", region).create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )


def test_an_item_written_through_moto_appears_in_the_other_replica_after_the_table_delay(aws: Aws) -> None:
    """ "When an application writes data to a replica in one Region, DynamoDB automatically replicates the
    write to all other replicas" (V2globaltables_HowItWorks.html): a PutItem in region A's replica is
    readable in region B's (GetItem, ConsistentRead: strong within region B only) once the table's link
    delivered it, a DeleteItem the same way (the table's link: it pauses while a region is dark, and
    each write counts in ``ReplicationLatency`` once it arrives). The runbook's drain marker relies on it
    (lambdas/failover/lossless.py table_marker_latency)."""
    name = global_table(aws)
    _moto_table(aws, name)
    emu = aws.emulator
    key = {"pk": {"S": "pilotlight#drain"}, "sk": {"S": "x"}}
    aws.client("dynamodb", A).put_item(TableName=name, Item={**key, "writtenAt": {"S": "t"}})

    def in_b() -> dict[str, Any] | None:
        return aws.client("dynamodb", B).get_item(TableName=name, Key=key, ConsistentRead=True).get("Item")

    assert in_b() is None, "not before the link delivered it"
    emu.advance(emu.timings.table_delay)
    assert in_b() == {**key, "writtenAt": {"S": "t"}}
    aws.client("dynamodb", A).delete_item(TableName=name, Key=key)
    assert in_b() is not None, "the delete replicates too, after the delay"
    emu.advance(emu.timings.table_delay)
    assert in_b() is None


def test_only_the_moto_items_a_table_was_registered_for_replicate(aws: Aws) -> None:
    """``moto_items``: a world (the drill) whose payments function writes real items through moto may
    replicate only the runbook's (its ``pk`` prefix); the others stay where they were written."""
    name = aws.name("only-markers")
    aws.emulator.register_global_table(name, (A, B), moto_items="pilotlight#")
    serving(aws)
    _moto_table(aws, name)
    marker = {"pk": {"S": "pilotlight#drain"}, "sk": {"S": "x"}}
    payment = {"pk": {"S": "PAYMENT#p1"}, "sk": {"S": "PAYMENT"}}
    for key in (marker, payment):
        aws.client("dynamodb", A).put_item(TableName=name, Item=key)
    aws.emulator.advance(aws.emulator.timings.table_delay)
    b = aws.client("dynamodb", B)
    assert b.get_item(TableName=name, Key=marker, ConsistentRead=True).get("Item") == marker
    assert b.get_item(TableName=name, Key=payment, ConsistentRead=True).get("Item") is None


@pytest.mark.parametrize("dark", [A, B])
def test_table_replication_pauses_while_either_region_is_dark(aws: Aws, dark: str) -> None:
    """A dark region takes no writes, and what the other region took waits for it."""
    global_table(aws)
    emu = aws.emulator
    up = B if dark == A else A
    emu.go_dark(dark)
    assert emu.write(dark, Store.TABLE) is None, "a dark region acknowledges nothing"
    w = emu.write(up, Store.TABLE)
    assert w is not None
    emu.advance(600)
    assert w.id not in emu.data.held(copy(Store.TABLE, dark))
    emu.come_back(dark)
    emu.advance(emu.timings.table_delay)
    assert w.id in emu.data.held(copy(Store.TABLE, dark))


def table_latency(aws: Aws, table: str, sender: str, receiver: str) -> list[tuple[Any, float]]:
    return aws.datapoints(
        sender,
        "AWS/DynamoDB",
        "ReplicationLatency",
        {"TableName": table, "ReceivingRegion": receiver},
        unit="Milliseconds",
    )


def test_replication_latency_is_published_every_five_minutes_in_the_sending_region(aws: Aws) -> None:
    """``ReplicationLatency``: milliseconds, dimensions ``TableName`` and ``ReceivingRegion``, for every
    source-destination pair, at DynamoDB's five-minute granularity
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html); a pair
    with nothing replicated publishes nothing."""
    table = global_table(aws)
    emu = aws.emulator
    start = emu.clock.now()
    emu.advance(30)
    emu.write(A, Store.TABLE)
    emu.advance(330)  # 12:06
    assert table_latency(aws, table, A, B) == [(start + timedelta(minutes=5), 1000.0)]
    assert table_latency(aws, table, B, B) == [], "published in the sending region only"
    assert table_latency(aws, table, B, A) == [], "nothing was written in region B"


def test_replication_latency_is_published_for_an_item_only_once_it_arrives(aws: Aws) -> None:
    """ "ReplicationLatency can increase if an AWS Region becomes degraded and you have a replica table
    in that Region", and it is "the elapsed time between when an item is written to a replica table,
    and when that item appears in another replica" (V2globaltables_monitoring.html): nothing while the
    write waits (break34 B34-2: the emulator published its age, which AWS does not), then its latency
    in the period it arrived in."""
    table = global_table(aws)
    emu = aws.emulator
    emu.advance(60)
    emu.write(A, Store.TABLE)  # 12:01
    emu.go_dark(B)
    emu.advance(540)  # 12:10
    emu.come_back(B)  # arrives at once: it waited 9 minutes
    emu.advance(600)  # 12:20
    emu.write(A, Store.TABLE)
    emu.advance(300)  # 12:25
    values = [v for _, v in table_latency(aws, table, A, B)]
    assert values == [540_000.0, 1000.0]


def test_a_dark_sending_region_publishes_no_table_latency(aws: Aws) -> None:
    table = global_table(aws)
    emu = aws.emulator
    emu.write(A, Store.TABLE)
    emu.go_dark(A)
    emu.advance(600)
    emu.come_back(A)
    assert table_latency(aws, table, A, B) == []


@pytest.mark.parametrize(
    "regions",
    [(A,), (A, A), (A, B, "eu-west-1"), (B, A)],
    ids=["one region", "one region twice", "three regions", "regions of another table"],
)
def test_a_global_table_the_emulator_cannot_model_is_refused(aws: Aws, regions: tuple[str, ...]) -> None:
    """Each copy replicates from exactly one other, and client writes land in ``table:<region>``."""
    aws.emulator.register_global_table(aws.name("orders"), (A, B))
    with pytest.raises(SpecError):
        aws.emulator.register_global_table(aws.name("t"), regions)


def _replicas(aws: Aws, region: str, name: str) -> list[dict[str, Any]] | None:
    return aws.client("dynamodb", region).describe_table(TableName=name)["Table"].get("Replicas")


def test_a_registered_global_table_answers_describe_table_as_a_replica_of_one_global_table(aws: Aws) -> None:
    """A global table (version 2019.11.21) answers DescribeTable with ``Replicas``, each with its ``RegionName``
    and ``ReplicaStatus`` (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicaDescription.html); a regional table
    answers none. moto answers none for any table: the emulator answers a registered table's replicas (made
    before or after it was registered), the other region ACTIVE. The preflight reads them (break37 P1)."""
    name = aws.name("payments")
    aws.emulator.register_global_table(name, (A, B))
    _moto_table(aws, name)
    assert _replicas(aws, A, name) == [{"RegionName": B, "ReplicaStatus": "ACTIVE"}]
    assert _replicas(aws, B, name) == [{"RegionName": A, "ReplicaStatus": "ACTIVE"}]
    assert (
        aws.client("dynamodb", A).describe_table(TableName=name)["Table"]["GlobalTableVersion"]
        == "2019.11.21"
    )
    plain = aws.name("regional")
    _moto_table(aws, plain)  # same-named tables in each region, registered with nothing
    assert _replicas(aws, A, plain) is None and _replicas(aws, B, plain) is None


def test_replica_updates_make_and_unmake_a_global_table(aws: Aws) -> None:
    """UpdateTable ``ReplicaUpdates``: a ``Create`` "invokes the CreateTableReplica action in the destination
    Region", a ``Delete`` the DeleteTableReplica action, "deleting the replica and all of its items"
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicationGroupUpdate.html). moto
    ignored them (automation/emulator/gaps.py): the replica is made at once, ACTIVE, and every member's
    describe lists the others; a member deleted leaves a group of one, a regional table again."""
    name = aws.name("made")
    a = aws.client("dynamodb", A)
    a.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    assert _replicas(aws, A, name) is None
    answer = a.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])
    assert answer["TableDescription"]["Replicas"] == [{"RegionName": B, "ReplicaStatus": "ACTIVE"}]
    replica = aws.client("dynamodb", B).describe_table(TableName=name)["Table"]
    assert replica["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert replica["Replicas"] == [{"RegionName": A, "ReplicaStatus": "ACTIVE"}]
    a.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    assert [r["RegionName"] for r in _replicas(aws, B, name) or []] == ["eu-west-1", A]
    a.update_table(TableName=name, ReplicaUpdates=[{"Delete": {"RegionName": "eu-west-1"}}])
    assert name not in aws.client("dynamodb", "eu-west-1").list_tables()["TableNames"]
    assert _replicas(aws, B, name) == [{"RegionName": A, "ReplicaStatus": "ACTIVE"}]
    aws.client("dynamodb", B).delete_table(TableName=name)
    assert _replicas(aws, A, name) is None, "a group of one is a regional table"


# -- S3 receipts buckets ----------------------------------------------------------------------------------


@dataclass
class Buckets:
    a: str
    b: str


def rule(
    destination: str, *, metrics: bool = False, rtc: bool = False, status: str = "Enabled"
) -> dict[str, Any]:
    """A replication rule as components/storage.py deploys it (every object, delete markers too)."""
    target: dict[str, Any] = {"Bucket": f"arn:aws:s3:::{destination}"}
    if metrics or rtc:
        target["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    if rtc:
        target["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": 15}}
    return {
        "ID": "all-objects",
        "Status": status,
        "Priority": 1,
        "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": target,
    }


def buckets(aws: Aws) -> Buckets:
    """Two versioned buckets, one per region, without replication yet."""
    names = Buckets(aws.name("receipts-a"), aws.name("receipts-b"))
    for region, name in ((A, names.a), (B, names.b)):
        s3 = aws.client("s3", region)
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **where)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return names


def replicate(aws: Aws, region: str, bucket: str, *rules: dict[str, Any]) -> None:
    """PutBucketReplication on ``bucket`` with ``rules``."""
    aws.client("s3", region).put_bucket_replication(
        Bucket=bucket,
        ReplicationConfiguration={"Role": "arn:aws:iam::123456789012:role/replication", "Rules": list(rules)},
    )


def both_ways(aws: Aws, *, metrics: bool = True, rtc: bool = False) -> Buckets:
    """The receipts buckets as components/storage.py deploys them: a rule each way, metrics on."""
    names = buckets(aws)
    replicate(aws, A, names.a, rule(names.b, metrics=metrics, rtc=rtc))
    replicate(aws, B, names.b, rule(names.a, metrics=metrics, rtc=rtc))
    return names


def test_the_receipts_buckets_replicate_both_ways_after_the_bucket_delay(aws: Aws) -> None:
    """S3 replication both ways, as the buckets' replication configurations say
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html); ``Timings.bucket_delay``."""
    names = both_ways(aws)
    rules = aws.emulator.register_bucket_replication(names.a, names.b)
    assert {(r.source_bucket, r.destination_bucket, r.rule_id) for r in rules} == {
        (names.a, names.b, "all-objects"),
        (names.b, names.a, "all-objects"),
    }
    serving(aws)
    emu = aws.emulator
    a, b = emu.write(A, Store.RECEIPTS), emu.write(B, Store.RECEIPTS)
    assert a is not None and b is not None
    emu.advance(emu.timings.bucket_delay - 0.1)
    assert emu.data.held(copy(Store.RECEIPTS, B)) == {b.id}
    emu.advance(0.1)
    assert emu.data.held(copy(Store.RECEIPTS, A)) == emu.data.held(copy(Store.RECEIPTS, B)) == {a.id, b.id}


@pytest.mark.parametrize(
    "b_rules",
    [None, "disabled", "elsewhere"],
    ids=["no configuration on B", "B's rule disabled", "B's rule replicates elsewhere"],
)
def test_a_direction_without_an_enabled_rule_does_not_replicate(aws: Aws, b_rules: str | None) -> None:
    names = buckets(aws)
    replicate(aws, A, names.a, rule(names.b))
    if b_rules == "disabled":
        replicate(aws, B, names.b, rule(names.a, status="Disabled"))
    elif b_rules == "elsewhere":
        replicate(aws, B, names.b, rule(aws.name("archive")))
    (only,) = aws.emulator.register_bucket_replication(names.a, names.b)
    assert (only.source_bucket, only.destination_bucket) == (names.a, names.b)
    serving(aws)
    emu = aws.emulator
    w = emu.write(B, Store.RECEIPTS)
    assert w is not None
    emu.advance(3600)
    assert w.id not in emu.data.held(copy(Store.RECEIPTS, A))


@pytest.mark.parametrize("case", ["no rule either way", "both buckets in one region", "three buckets"])
def test_a_bucket_pair_the_emulator_cannot_model_is_refused(aws: Aws, case: str) -> None:
    names = buckets(aws)
    given = [names.a, names.b]
    if case == "both buckets in one region":
        given[1] = aws.name("receipts-a2")
        aws.client("s3", A).create_bucket(Bucket=given[1])
    elif case == "three buckets":
        given.append(aws.name("receipts-c"))
        aws.client("s3", A).create_bucket(Bucket=given[2])
    with pytest.raises(SpecError):
        aws.emulator.register_bucket_replication(*given)


def s3_metric(aws: Aws, region: str, metric: str, source: str, destination: str) -> list[float]:
    unit = "Seconds" if metric == "ReplicationLatency" else "Count"
    dims = {"SourceBucket": source, "DestinationBucket": destination, "RuleId": "all-objects"}
    return [v for _, v in aws.datapoints(region, "AWS/S3", metric, dims, unit=unit)]


def test_s3_replication_metrics_each_minute_in_the_destination_region(aws: Aws) -> None:
    """With S3 Replication metrics on, ``ReplicationLatency`` (seconds) and ``OperationsPendingReplication``
    (count) per rule, minute by minute, "published in the Region of the destination bucket", also when
    nothing replicates (https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html)."""
    names = buckets(aws)
    replicate(aws, A, names.a, rule(names.b, metrics=True))
    replicate(aws, B, names.b, rule(names.a))
    aws.emulator.register_bucket_replication(names.a, names.b)
    serving(aws)
    emu = aws.emulator
    emu.advance(55)
    for _ in range(3):
        emu.write(A, Store.RECEIPTS)  # 12:00:55, still in flight at 12:01
    emu.advance(5 + 120)  # 12:03
    assert s3_metric(aws, B, "ReplicationLatency", names.a, names.b) == [5.0, 0.0, 0.0]
    assert s3_metric(aws, B, "OperationsPendingReplication", names.a, names.b) == [3.0, 0.0, 0.0]
    assert s3_metric(aws, A, "ReplicationLatency", names.a, names.b) == [], "not in the source region"
    assert s3_metric(aws, A, "ReplicationLatency", names.b, names.a) == [], "B's rule has metrics off"


def test_s3_replication_metrics_grow_while_the_source_region_is_dark_and_drain_after(aws: Aws) -> None:
    names = both_ways(aws)
    aws.emulator.register_bucket_replication(names.a, names.b)
    serving(aws)
    emu = aws.emulator
    emu.advance(30)
    for _ in range(4):
        emu.write(A, Store.RECEIPTS)  # 12:00:30
    emu.go_dark(A)
    emu.advance(150)  # 12:03
    emu.come_back(A)
    emu.advance(60)  # 12:04
    assert s3_metric(aws, B, "ReplicationLatency", names.a, names.b) == [30.0, 90.0, 150.0, 0.0]
    assert s3_metric(aws, B, "OperationsPendingReplication", names.a, names.b) == [4.0, 4.0, 4.0, 0.0]


def test_with_replication_time_control_metrics_start_fifteen_minutes_after_it_is_enabled(aws: Aws) -> None:
    """ "If you're using S3 Replication Time Control, Amazon CloudWatch begins reporting replication
    metrics 15 minutes after you enable S3 RTC" (repl-metrics.html)."""
    names = both_ways(aws, metrics=False, rtc=True)
    aws.emulator.provisioning = False
    aws.emulator.register_bucket_replication(names.a, names.b)
    aws.emulator.advance(14 * 60)
    assert s3_metric(aws, B, "ReplicationLatency", names.a, names.b) == []
    aws.emulator.advance(2 * 60)
    assert s3_metric(aws, B, "ReplicationLatency", names.a, names.b) == [0.0, 0.0]
