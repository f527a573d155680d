"""break37: the preflight's new describes (f8df289: receipts buckets' replication rules, the global table in each
region, the failback replica's groups) attacked. Strict xfails name what a run would do after a preflight that
passed; controls beside them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.failover import preflight
from lambdas.failover.context import RunbookContext
from lambdas.failover.names import REPLICATION_RULE_ID
from tests.lambdas.failover.harness import clients_for, new_session, recorded_calls
from tests.lambdas.failover.world import REGION_A, REGION_B, World, build_world

_apps = itertools.count(1)


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    yield build_world(
        "rds-replica",
        app=f"b37pf{next(_apps)}",
        encrypted=True,
        primary_health_url="http://127.0.0.1:9/primary",
        session=new_session(),
        global_table=True,
    )


def _check(world: World) -> preflight.PreflightReport:
    return preflight.check(RunbookContext.from_dict(world.context), clients_for(world), "failover")


def _rule(world: World, region: str) -> dict[str, Any]:
    bucket = world.context["primaryBucketName" if region == REGION_A else "drBucketName"]
    return world.client("s3", region).get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]


def _put_rule(world: World, region: str, config: dict[str, Any]) -> None:
    bucket = world.context["primaryBucketName" if region == REGION_A else "drBucketName"]
    world.client("s3", region).put_bucket_replication(Bucket=bucket, ReplicationConfiguration=config)


def test_b37_control_preflight_passes_the_world_as_built(world: World) -> None:
    with recorded_calls() as calls:
        report = _check(world)
    assert report.ok, report.format()
    assert [c for c in calls if c.mutating] == []
    assert {c.operation for c in calls} >= {"GetBucketReplication", "DescribeTable"}


@pytest.mark.parametrize(("region", "key"), [(REGION_A, "primaryBucketName"), (REGION_B, "drBucketName")])
def test_b37_control_receipts_rule_without_metrics_is_refused_naming_the_key(
    world: World, region: str, key: str
) -> None:
    """Control: a receipts bucket whose rule has S3 Replication metrics off (no OperationsPendingReplication to
    wait on) is refused before any change, naming the key."""
    config = _rule(world, region)
    config["Rules"][0]["Destination"].pop("Metrics", None)
    _put_rule(world, region, config)
    report = _check(world)
    assert not report.ok
    assert any(p.startswith(f"'{key}'") and "metrics off" in p for p in report.problems), report.problems


def test_b37_control_global_table_missing_in_region_b_is_refused_naming_the_key(world: World) -> None:
    world.client("dynamodb", REGION_B).delete_table(TableName=world.context["globalTableName"])
    report = _check(world)
    assert not report.ok
    assert any(p.startswith("'globalTableName'") for p in report.problems), report.problems


@pytest.mark.xfail(
    strict=True,
    reason=(
        "no_loss/converges preflight promise ('a stale or mistyped outputs file changes nothing', docs/safety.md: "
        "the global table's drain marker is put in the sending replica and read in the receiving one). "
        "preflight.global_table only DescribeTable's a table of that name in each region; it never reads "
        "TableDescription.Replicas (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html), "
        "so two unrelated same-named tables (the outputs naming a table that is not a global table with a replica "
        "in the other region) pass, and a planned failover drains region A before its marker wait can never "
        "settle"
    ),
)
def test_b37_p1_a_table_with_no_replica_in_the_other_region_passes_the_preflight(world: World) -> None:
    name = world.context["globalTableName"]
    described = world.client("dynamodb", REGION_A).describe_table(TableName=name)["Table"]
    replicas = {r.get("RegionName") for r in described.get("Replicas") or []}
    assert REGION_B not in replicas, described.get("Replicas")  # region A's table replicates nowhere
    report = _check(world)
    assert not report.ok and any(p.startswith("'globalTableName'") for p in report.problems), report.format()


class _NarrowedRule:
    """GetBucketReplication answering each receipts bucket's rule as narrowed by hand to a prefix no receipt has,
    as AWS would answer it (moto stores no rule Filter: its GetBucketReplication always answers
    ``{"Prefix": ""}``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.answered = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        for rule in parsed.get("ReplicationConfiguration", {}).get("Rules", []):
            if rule.get("ID") == REPLICATION_RULE_ID:
                rule["Filter"] = {"Prefix": self.prefix}
                self.answered += 1

    def install(self, session: Any) -> _NarrowedRule:
        session.events.register("after-call.s3.GetBucketReplication", self)
        return self


def test_b37_p2_a_receipts_rule_narrowed_to_another_prefix_passes_the_preflight(world: World) -> None:
    """No_loss (docs/safety.md: receipts are waited for until OperationsPendingReplication is proven 0).
    preflight.receipts checked the rule's ID, status, destination and metrics but not its Filter: a rule
    narrowed to a prefix no receipt has passed, and its OperationsPendingReplication (per rule, only objects
    the rule matches: https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html) reads 0 while
    no receipt replicates. Fixed (``preflight._matches_every_object``): this test failed before the fix (it
    was a strict xfail)."""
    narrowed = _NarrowedRule("not-receipts/")
    report = preflight.check(
        RunbookContext.from_dict(world.context), clients_for(world, narrowed), "failover"
    )  # type: ignore[arg-type]
    assert narrowed.answered == 2, "both receipts rules were read (and answered narrowed)"
    assert not report.ok and any(
        p.startswith(("'primaryBucketName'", "'drBucketName'")) for p in report.problems
    ), report.format()


class _OutrankingRule:
    """GetBucketReplication answering a second enabled rule into the same destination bucket with a higher
    Priority than the program's rule (added by hand): S3 replicates objects both match by the higher one."""

    def __init__(self) -> None:
        self.answered = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        config = parsed.get("ReplicationConfiguration", {})
        ours = next((r for r in config.get("Rules", []) if r.get("ID") == REPLICATION_RULE_ID), None)
        if ours is not None:
            config["Rules"].append(
                {
                    "ID": "by-hand",
                    "Status": "Enabled",
                    "Priority": int(ours.get("Priority") or 0) + 1,
                    "Filter": {"Prefix": ""},
                    "Destination": {"Bucket": ours["Destination"]["Bucket"]},
                }
            )
            self.answered += 1

    def install(self, session: Any) -> _OutrankingRule:
        session.events.register("after-call.s3.GetBucketReplication", self)
        return self


def test_b37_p2b_a_higher_priority_rule_into_the_same_bucket_is_refused_naming_the_key(world: World) -> None:
    """No_loss: "if there are two or more rules with the same destination bucket, then objects will be
    replicated according to the rule with the highest priority"
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ReplicationRule.html), so the program's rule's
    OperationsPendingReplication no longer counts the receipts: the preflight names the bucket's key."""
    outranking = _OutrankingRule()
    report = preflight.check(
        RunbookContext.from_dict(world.context), clients_for(world, outranking), "failover"
    )  # type: ignore[arg-type]
    assert outranking.answered == 2, "both receipts rules were read"
    problems = [p for p in report.problems if "outranked" in p]
    assert {p.split(":", 1)[0] for p in problems} == {"'primaryBucketName'", "'drBucketName'"}, (
        report.format()
    )


@pytest.mark.parametrize(
    ("rule", "every_object"),
    [
        ({"Filter": {"Prefix": ""}}, True),
        ({"Filter": {}}, True),
        ({}, True),
        ({"Prefix": ""}, True),
        ({"Filter": {"Prefix": "receipts/"}}, False),
        ({"Prefix": "receipts/"}, False),
        ({"Filter": {"Tag": {"Key": "k", "Value": "v"}}}, False),
        ({"Filter": {"And": {"Prefix": "", "Tags": [{"Key": "k", "Value": "v"}]}}}, False),
    ],
)
def test_a_receipts_rule_replicates_every_object_only_with_no_prefix_and_no_tag(
    rule: dict[str, Any], every_object: bool
) -> None:
    """What S3 replicates under a rule is what its filter matches (a V1 rule's top-level Prefix, or a V2
    Filter's Prefix, Tag or And), so only an empty or absent filter covers every receipt
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ReplicationRuleFilter.html)."""
    assert preflight._matches_every_object(rule) is every_object
