"""break37: the preflight's new describes (f8df289: receipts buckets' replication rules, the global table in each
region, the failback replica's groups) attacked. Each finding's test failed before its fix (a strict xfail then);
controls beside them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.failover import preflight
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import PreflightError
from lambdas.failover.names import REPLICATION_RULE_ID
from tests.lambdas.failover.harness import clients_for, new_session, recorded_calls
from tests.lambdas.failover.world import REGION_A, REGION_B, World, build_world, payments_table, stamp

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


def _retarget(world: World, table: str) -> RunbookContext:
    """The outputs naming ``table`` as ``globalTableName``, stamped and that stamp deployed (as an export of a
    stack that names it would be): only the describes can tell."""
    context = dict(world.context)
    context["globalTableName"] = table
    stamp(world, context)
    return RunbookContext.from_dict(context)


def _table_problems(report: preflight.PreflightReport) -> dict[str, str]:
    """The ``globalTableName`` problems by the region whose table they are about (named with its key)."""
    found = {}
    for problem in report.problems:
        if problem.startswith("'globalTableName'"):
            where = {REGION_A: f"{REGION_A} (primaryRegion)", REGION_B: f"{REGION_B} (drRegion)"}
            region = next((r for r, label in where.items() if label in problem), "?")
            found[region] = problem
    return found


def test_b37_control_the_world_s_table_is_one_global_table_with_a_replica_in_each_region(
    world: World,
) -> None:
    """Control (and the accepted case): the world makes its table as the program does (a replica in region B,
    UpdateTable ReplicaUpdates), so each region's DescribeTable names the other region's replica ACTIVE."""
    name = world.context["globalTableName"]
    for region, other in ((REGION_A, REGION_B), (REGION_B, REGION_A)):
        table = world.client("dynamodb", region).describe_table(TableName=name)["Table"]
        assert table.get("Replicas") == [{"RegionName": other, "ReplicaStatus": "ACTIVE"}], (region, table)
    report = _check(world)
    assert report.ok, report.format()
    assert sum(c.startswith("globalTableName:") for c in report.checked) == 2, report.checked


def test_b37_p1_a_table_with_no_replica_in_the_other_region_is_refused_naming_the_key(world: World) -> None:
    """no_loss/converges preflight promise ('a stale or mistyped outputs file changes nothing', docs/safety.md: the
    global table's drain marker is put in the sending replica and read in the receiving one).
    preflight.global_table only DescribeTable'd a table of that name in each region; it never read
    TableDescription.Replicas (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html),
    so two unrelated same-named tables (the outputs naming a table that is not a global table with a replica in
    the other region) passed, and a planned failover drained region A before its marker wait could never
    settle (and a failover left every item written in region A behind). Fixed (``preflight.replica_problem``):
    this test failed before the fix (it was a strict xfail)."""
    name = f"{world.app}-regional"
    for region in (REGION_A, REGION_B):
        payments_table(world, name, region)  # two regional tables of one name
        described = world.client("dynamodb", region).describe_table(TableName=name)["Table"]
        assert not described.get("Replicas"), described.get("Replicas")
    ctx = _retarget(world, name)
    with recorded_calls() as calls:
        report = preflight.check(ctx, clients_for(world), "failover")
    assert [c for c in calls if c.mutating] == []
    problems = _table_problems(report)
    assert set(problems) == {REGION_A, REGION_B}, report.format()
    for problem in problems.values():
        assert repr(name) in problem and "is not a global table" in problem, problem
    with pytest.raises(PreflightError, match="globalTableName"):
        report.require()


def test_b37_p1_a_global_table_with_no_replica_in_the_other_region_is_refused_naming_the_key(
    world: World,
) -> None:
    """A global table of that name in each region, but not one with the other: region A's replicates into
    eu-west-1 and region B's into eu-central-1 (each a global table, neither with the other). Each region's
    problem names the replicas it found."""
    name = f"{world.app}-elsewhere"
    payments_table(world, name, REGION_A, replica_in="eu-west-1")
    payments_table(world, name, REGION_B, replica_in="eu-central-1")
    report = preflight.check(_retarget(world, name), clients_for(world), "failover")
    problems = _table_problems(report)
    assert set(problems) == {REGION_A, REGION_B}, report.format()
    assert f"has no replica in {REGION_B}: its Replicas are eu-west-1 (ACTIVE)" in problems[REGION_A]
    assert f"has no replica in {REGION_A}: its Replicas are eu-central-1 (ACTIVE)" in problems[REGION_B]


def test_b37_p1_a_third_replica_beside_the_other_region_s_is_accepted(world: World) -> None:
    """Accepted: a global table with a replica in each of the two regions and one more elsewhere."""
    name = f"{world.app}-three"
    payments_table(world, name, REGION_A, replica_in=REGION_B)
    world.client("dynamodb", REGION_A).update_table(
        TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}]
    )
    report = preflight.check(_retarget(world, name), clients_for(world), "failover")
    assert report.ok, report.format()


class _ReplicaStatus:
    """DescribeTable answering the replica in ``region`` with ``status``, as AWS answers a replica being
    created, updated or deleted, or one whose region or key is inaccessible (moto's replicas are ACTIVE at
    once: automation/emulator/gaps.py)."""

    def __init__(self, region: str, status: str) -> None:
        self.region, self.status = region, status
        self.answered = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        for replica in parsed.get("Table", {}).get("Replicas") or []:
            if replica.get("RegionName") == self.region:
                replica["ReplicaStatus"] = self.status
                self.answered += 1

    def install(self, session: Any) -> _ReplicaStatus:
        session.events.register("after-call.dynamodb.DescribeTable", self)
        return self


@pytest.mark.parametrize("status", preflight.REPLICA_NOT_THERE)
@pytest.mark.parametrize(("seen_from", "replica"), [(REGION_A, REGION_B), (REGION_B, REGION_A)])
def test_b37_p1_a_replica_not_there_is_refused_naming_the_key(
    world: World, status: str, seen_from: str, replica: str
) -> None:
    """no_loss: a replica still being created (its first copy not done), whose creation failed, or being
    deleted (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicaDescription.html) is
    not a copy a run may move the writer to or from: refused in the region whose answer says so."""
    answer = _ReplicaStatus(replica, status)
    report = preflight.check(RunbookContext.from_dict(world.context), clients_for(world, answer), "failover")  # type: ignore[arg-type]
    assert answer.answered == 1, f"only {seen_from}'s answer lists the replica in {replica}"
    problems = _table_problems(report)
    assert set(problems) == {seen_from}, report.format()
    assert (
        f"has its replica in {replica} in ReplicaStatus {status}: not a replica ready for use"
        in problems[seen_from]
    )


@pytest.mark.parametrize("status", ["UPDATING", "REGION_DISABLED", "INACCESSIBLE_ENCRYPTION_CREDENTIALS"])
@pytest.mark.parametrize(("seen_from", "replica"), [(REGION_A, REGION_B), (REGION_B, REGION_A)])
def test_a_replica_in_another_status_short_of_active_warns_and_does_not_refuse(
    world: World, status: str, seen_from: str, replica: str
) -> None:
    """A failover must work the first time it is needed: what one region's DescribeTable says of the other
    region's replica while that region is down is not documented, so a status short of ACTIVE that is not
    ``REPLICA_NOT_THERE`` is a warning naming the key, not a refusal (the lossless wait measures the table's
    replication itself before a planned change moves the writer)."""
    answer = _ReplicaStatus(replica, status)
    report = preflight.check(RunbookContext.from_dict(world.context), clients_for(world, answer), "failover")  # type: ignore[arg-type]
    assert answer.answered == 1
    assert report.ok, report.format()
    warned = [w for w in report.warnings if "'globalTableName'" in w and f"ReplicaStatus {status}" in w]
    assert len(warned) == 1 and seen_from in warned[0], report.warnings


@pytest.mark.parametrize(
    ("table", "problem", "warning"),
    [
        ({}, "is not a global table", None),
        ({"Replicas": []}, "is not a global table", None),
        ({"Replicas": [{"RegionName": "eu-west-1", "ReplicaStatus": "ACTIVE"}]}, f"has no replica in {REGION_B}", None),
        ({"Replicas": [{"RegionName": REGION_B, "ReplicaStatus": "CREATING"}]}, "in ReplicaStatus CREATING", None),
        ({"Replicas": [{"RegionName": REGION_B, "ReplicaStatus": "DELETING"}]}, "in ReplicaStatus DELETING", None),
        ({"Replicas": [{"RegionName": REGION_B, "ReplicaStatus": "UPDATING"}]}, None, "ReplicaStatus UPDATING"),
        ({"Replicas": [{"RegionName": REGION_B}]}, None, "in ReplicaStatus None"),
        ({"Replicas": [{"RegionName": REGION_B, "ReplicaStatus": "ACTIVE"}]}, None, None),
        (
            {
                "Replicas": [
                    {"RegionName": REGION_A, "ReplicaStatus": "ACTIVE"},
                    {"RegionName": REGION_B, "ReplicaStatus": "ACTIVE"},
                ]
            },
            None,
            None,
        ),
        (
            {
                "Replicas": [
                    {"RegionName": "eu-west-1", "ReplicaStatus": "CREATING"},
                    {"RegionName": REGION_B, "ReplicaStatus": "ACTIVE"},
                ]
            },
            None,
            None,
        ),
    ],
    ids=[
        "no-replicas-key", "no-replicas", "other-region-missing", "creating", "deleting", "updating-warns",
        "no-status-warns", "active", "own-region-listed-too", "a-third-replica-not-ready",
    ],
)  # fmt: skip
def test_a_table_is_a_replica_of_one_global_table_only_with_the_other_region_s_replica_there(
    table: dict[str, Any], problem: str | None, warning: str | None
) -> None:
    """``preflight.replica_problem`` as region A's preflight reads region A's answer (the other region: B)."""
    found, warned = preflight.replica_problem(table, REGION_B)
    assert found is None if problem is None else found is not None and problem in found, found
    assert warned is None if warning is None else warned is not None and warning in warned, warned


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
