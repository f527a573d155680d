"""The two multi-writer stores: the DynamoDB global table and the S3 receipts buckets, both ways.

Each region's copy takes writes, and each write is replicated into the other region asynchronously
(``data.Link``s both ways, paused while either region is dark). The copies are ``table:<region>``
and ``receipts:<region>``, which is where ``Emulator.write(region, Store.TABLE / Store.RECEIPTS)``
records a client's write. Their lag is computed from the unapplied tail of the write log and
published as the metrics AWS publishes, stamped with virtual time:

* **DynamoDB** ``ReplicationLatency`` (``AWS/DynamoDB``, unit ``Milliseconds``, dimensions
  ``TableName`` and ``ReceivingRegion``): "the elapsed time between an updated item appearing in the
  DynamoDB stream for one replica table, and that item appearing in another replica in the global
  table", "emitted for every source- and destination-Region pair"
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html).

  - *Region*: published in the sending replica's region, the ``ReceivingRegion`` dimension naming
    the other one (the dimension "limits the data to a particular AWS region. It is used with
    metrics originating from replica tables"). The pages say it this way, not in so many words.
  - *Period*: five minutes. The metrics page lists the metrics CloudWatch aggregates at one-minute
    intervals, and ``ReplicationLatency`` is not among them: "For all other DynamoDB metrics, the
    aggregation granularity is five minutes" (``Timings.table_metric_period``).
  - *Value*: the largest of the latencies of the writes that arrived during the period, and nothing
    for a write still on its way: the metric is "the elapsed time between when an item is written
    to a replica table, and when that item appears in another replica in the global table"
    (V2globaltables_monitoring.html), a latency per item that appeared. An impaired region makes it
    grow ("ReplicationLatency can increase if an AWS Region becomes degraded") only as its late
    items arrive; a period in which nothing arrived publishes nothing (no item, no sample), so a
    stalled link publishes no latency at all. (Until break34 B34-2 the emulator also published the
    age of the oldest write still waiting, an assumption kinder than AWS that the pages do not make.)

* **S3 Replication metrics** (``AWS/S3``, dimensions ``SourceBucket``, ``DestinationBucket`` and
  ``RuleId``): ``ReplicationLatency`` ("the maximum number of seconds by which the replication
  destination bucket is behind the source bucket for a given replication rule", unit ``Seconds``)
  and ``OperationsPendingReplication`` (unit ``Count``), minute by minute, "published in the Region
  of the destination bucket", published even when nothing replicates, and only for a rule with
  S3 Replication metrics on: its ``Metrics`` enabled, or S3 Replication Time Control, which turns
  them on, "CloudWatch begins reporting replication metrics 15 minutes after you enable S3 RTC"
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html#s3-cloudwatch-replication-metrics).
  Byte counts (``BytesPendingReplication``) are not modelled: the write log has no sizes.

This module holds the pure part (what a replication configuration says, which datapoints a period
publishes); ``aws.Emulator`` registers the stores and puts the datapoints into moto's CloudWatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from automation.emulator.data import DataPlane, Store
from automation.emulator.exceptions import SpecError

TABLE_NAMESPACE = "AWS/DynamoDB"
BUCKET_NAMESPACE = "AWS/S3"


def store_key(store: Store, region: str) -> str:
    """The copy of ``store`` in ``region`` (the key ``Emulator.write`` records a client's write at)."""
    return f"{store.value}:{region}"


@dataclass(frozen=True)
class GlobalTable:
    """A DynamoDB global table with a replica in each of two regions."""

    name: str
    regions: tuple[str, str]


@dataclass(frozen=True)
class BucketRule:
    """One enabled replication rule: ``source_bucket`` replicates into ``destination_bucket``."""

    rule_id: str
    source_bucket: str
    source_region: str
    destination_bucket: str
    destination_region: str
    metrics: bool
    """S3 Replication metrics are on for the rule (its ``Metrics`` or its RTC enabled)."""
    time_control: bool
    """S3 Replication Time Control is enabled (metrics start 15 minutes after it is)."""


@dataclass(frozen=True)
class Datapoint:
    """One datapoint a store publishes, in the region AWS publishes it in."""

    region: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: float
    unit: str


def bucket_rules(
    source_bucket: str,
    source_region: str,
    configuration: Mapping[str, Any] | None,
    destinations: Mapping[str, str],
) -> list[BucketRule]:
    """The enabled rules of ``source_bucket``'s replication configuration into ``destinations``.

    ``configuration`` is the configuration as PutBucketReplication stored it (moto keeps the parsed
    XML: ``Rule`` is one rule or a list); ``destinations`` maps bucket names to their regions. A rule
    that is disabled or replicates elsewhere is not one of the pair's.
    """
    if not configuration:
        return []
    rules = configuration.get("Rule") or []
    if isinstance(rules, Mapping):
        rules = [rules]
    found: list[BucketRule] = []
    for rule in rules:
        destination = rule.get("Destination") or {}
        bucket = str(destination.get("Bucket") or "").removeprefix("arn:aws:s3:::")
        if rule.get("Status") != "Enabled" or bucket not in destinations or bucket == source_bucket:
            continue
        metrics = (destination.get("Metrics") or {}).get("Status") == "Enabled"
        rtc = (destination.get("ReplicationTime") or {}).get("Status") == "Enabled"
        found.append(
            BucketRule(
                rule_id=str(rule.get("ID") or ""),
                source_bucket=source_bucket,
                source_region=source_region,
                destination_bucket=bucket,
                destination_region=destinations[bucket],
                metrics=metrics or rtc,
                time_control=rtc,
            )
        )
    return found


def table_datapoints(
    data: DataPlane, table: GlobalTable, since: datetime, now: datetime, reachable: Callable[[str], bool]
) -> list[Datapoint]:
    """``ReplicationLatency`` of each direction of ``table`` for the period ``[since, now)``: the
    largest latency of the items that arrived in it, none for items still on their way (AWS defines
    the metric per item that "appears in another replica":
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html)."""
    points: list[Datapoint] = []
    for source, receiving in (table.regions, table.regions[::-1]):
        if not reachable(source):
            continue  # the sending region publishes; a dark one publishes nothing
        arrived = data.arrivals(store_key(Store.TABLE, receiving), since, now)
        if not arrived:
            continue
        value = max(arrived) * 1000.0
        dims = (("TableName", table.name), ("ReceivingRegion", receiving))
        points.append(Datapoint(source, TABLE_NAMESPACE, "ReplicationLatency", dims, value, "Milliseconds"))
    return points


def bucket_datapoints(data: DataPlane, rule: BucketRule, reachable: Callable[[str], bool]) -> list[Datapoint]:
    """This minute's ``ReplicationLatency`` and ``OperationsPendingReplication`` of ``rule``."""
    if not rule.metrics or not reachable(rule.destination_region):
        return []
    target = store_key(Store.RECEIPTS, rule.destination_region)
    link = data.link_into(target)
    pending = len(link.tail()) if link is not None else 0
    behind = data.lag_seconds(target) or 0.0
    dims = (
        ("SourceBucket", rule.source_bucket),
        ("DestinationBucket", rule.destination_bucket),
        ("RuleId", rule.rule_id),
    )
    region = rule.destination_region
    return [
        Datapoint(region, BUCKET_NAMESPACE, "ReplicationLatency", dims, behind, "Seconds"),
        Datapoint(region, BUCKET_NAMESPACE, "OperationsPendingReplication", dims, float(pending), "Count"),
    ]


def create_receipts_buckets(
    s3: Callable[[str], Any], buckets: Mapping[str, str], role_arn: str, rule_id: str
) -> None:
    """Create ``buckets`` (region -> name, two of them) in moto as components/storage.py deploys
    them: versioned, each replicating every object into the other under rule ``rule_id``, with S3
    Replication metrics on (always, in the program) and Replication Time Control off (its
    default). ``s3(region)`` is an S3 client of that region. Register them with
    ``Emulator.register_bucket_replication`` afterwards."""
    a, b = two_regions(tuple(buckets), f"buckets {', '.join(buckets.values())}")
    for region, name in buckets.items():
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3(region).create_bucket(Bucket=name, **where)
        s3(region).put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for source, destination in ((a, b), (b, a)):
        s3(source).put_bucket_replication(
            Bucket=buckets[source],
            ReplicationConfiguration={
                "Role": role_arn,
                "Rules": [
                    {
                        "ID": rule_id,
                        "Status": "Enabled",
                        "Priority": 1,
                        "Filter": {"Prefix": ""},
                        "DeleteMarkerReplication": {"Status": "Enabled"},
                        "Destination": {
                            "Bucket": f"arn:aws:s3:::{buckets[destination]}",
                            "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}},
                        },
                    }
                ],
            },
        )


def two_regions(regions: tuple[str, ...], what: str) -> tuple[str, str]:
    """``regions`` if they are two distinct regions (each copy replicates from exactly one other)."""
    if len(regions) != 2 or regions[0] == regions[1]:
        raise SpecError(f"{what}: the emulator replicates between exactly two regions, got {regions}")
    return regions[0], regions[1]
