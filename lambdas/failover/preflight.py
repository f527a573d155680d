"""The preflight: before its first change, a run checks that the outputs describe the live system.

``check(ctx, clients)`` makes one read-only call per resource the ``runbook`` output names, in the
region the output puts it in, and compares the output's generation stamp with the live one the
program keeps in region B (``lambdas/failover/names.py``, ``generation_parameter_name``). Every
problem is collected, each naming its key, and :meth:`PreflightReport.require` raises one
``PreflightError`` listing them all, so a stale or mistyped outputs file changes nothing in either
region.

Region A is checked best effort: a failover must work while region A is dark, so a connection
error there is a warning (and the rest of region A is not tried); an answer from region A that says
a resource is missing or access is denied is an error, as anywhere in region B.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lambdas.failover import lock
from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import GENERATION_KEY, RunbookContext
from lambdas.failover.exceptions import PreflightError
from lambdas.failover.names import REPLICATION_RULE_ID, generation_parameter_name, ledger_marker_function_name

REFRESH_HINT = (
    "refresh the file from the stack: pulumi stack output runbook --json -s dr > runbook.json "
    "(and keep that copy next to the runbook)"
)
"""How to get a current outputs file (README, "Failing over")."""

UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)

NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",  # lambda, dynamodb
        "ParameterNotFound",  # ssm
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBClusterNotFoundFault",
        "GlobalClusterNotFoundFault",
        "NotFound",  # sns
        "NotFoundException",  # kms
        "NoSuchBucket",  # s3
        "ReplicationConfigurationNotFoundError",  # s3: a bucket that replicates nowhere
        "DBSubnetGroupNotFoundFault",
        "DBParameterGroupNotFound",
    }
)


@dataclass
class PreflightReport:
    """What the preflight found.

    Attributes:
        problems: one line per problem, each naming its key; any problem stops the run.
        warnings: what could not be checked (region A not answering), for the operator.
        checked: one line per resource found where the outputs say.
        live_generation: the generation the program last deployed (None if unreadable).
    """

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    live_generation: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run may go on."""
        return not self.problems

    def require(self) -> None:
        """Raise ``PreflightError`` listing every problem, if there is any."""
        if self.problems:
            count = len(self.problems)
            raise PreflightError(
                f"preflight found {count} problem{'s' if count > 1 else ''} with the outputs; "
                "nothing was changed:\n" + "\n".join(f"  - {p}" for p in self.problems)
            )

    def format(self) -> str:
        """A few lines for people."""
        lines = [f"preflight: {len(self.checked)} resources found where the outputs say"]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "Unknown")


def _matches_every_object(rule: Mapping[str, Any]) -> bool:
    """Whether a replication rule's filter matches every object: no filter, an empty one, or an empty
    prefix with no tag (a V1 rule's top-level ``Prefix`` too). S3 publishes a rule's
    ``OperationsPendingReplication`` for the objects it matches only
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html), so a narrower rule reads 0
    while receipts outside it never replicate (break37 P2)."""
    if "Filter" not in rule:
        return not rule.get("Prefix")
    flt = rule.get("Filter") or {}
    return set(flt) <= {"Prefix"} and not flt.get("Prefix")


REPLICA_NOT_THERE = (
    "CREATING",
    "CREATION_FAILED",
    "DELETING",
    "REPLICATION_NOT_AUTHORIZED",
    "ARCHIVING",
    "ARCHIVED",
)
"""Replica statuses that refuse a run: the replica in the other region is still being created (its first copy
not done), never was, or is going away; replication to and from it has stopped for want of permission
("replication to and from affected replicas will stop",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/globaltables-security.html); or it was
archived (its key out of reach for days: no operation is allowed on it). Other statuses short of ACTIVE
(UPDATING, REGION_DISABLED, INACCESSIBLE_ENCRYPTION_CREDENTIALS, ...) are warned about, not refused: AWS does not document what one
region's answer says of the other region's replica while that region is down, and a preflight that refused
a failover on it would block the failover exactly when it is needed; the lossless wait measures the table's
replication itself (``ReplicationLatency`` and the drain marker) before a planned change moves the writer."""


UNUSABLE_TABLE_STATUSES = ("DELETING", "INACCESSIBLE_ENCRYPTION_CREDENTIALS", "ARCHIVING", "ARCHIVED")
"""A table's own ``TableStatus`` values in which it takes no read or write
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html): refused in the region
a run moves the writer to (break39 P39-2: the region-B health check refuses such a table, the preflight did
not), warned about in the region it leaves."""


def replica_problem(table: Mapping[str, Any], other_region: str) -> tuple[str | None, str | None]:
    """(problem, warning) about a DescribeTable answer's ``Table`` as one replica of a global table with a
    replica in ``other_region``; (None, None) when its replica there is ACTIVE.

    A global table (version 2019.11.21) answers ``Replicas``, one ``ReplicaDescription`` per replica with its
    ``RegionName`` and ``ReplicaStatus`` (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicaDescription.html); a regional
    table answers none. Only ``ACTIVE`` is "The replica is ready for use"; ``REPLICA_NOT_THERE`` refuses,
    any other status warns. Whether an answer lists its own region is not documented: only
    ``other_region``'s entry is read."""
    replicas = [r for r in table.get("Replicas") or [] if r.get("RegionName")]
    if not replicas:
        return (
            "is not a global table (DescribeTable answers no Replicas): it replicates into no other region",
            None,
        )
    found = [r for r in replicas if r["RegionName"] == other_region]
    if not found:
        listed = ", ".join(f"{r['RegionName']} ({r.get('ReplicaStatus')})" for r in replicas)
        return f"has no replica in {other_region}: its Replicas are {listed}", None
    status = found[0].get("ReplicaStatus")
    if status in REPLICA_NOT_THERE:
        return (
            f"has its replica in {other_region} in ReplicaStatus {status}: not a replica ready for use",
            None,
        )
    if status != "ACTIVE":
        return (
            None,
            f"has its replica in {other_region} in ReplicaStatus {status}, not ACTIVE (ready for use)",
        )
    return None, None


class _Preflight:
    """Runs the checks of one preflight, tracking which region stopped answering."""

    def __init__(self, ctx: RunbookContext, clients: Clients) -> None:
        self.ctx = ctx
        self.clients = clients
        self.report = PreflightReport()
        self.dark: set[Side] = set()
        self.engine: str | None = None

    def where(self, side: Side) -> str:
        region_key = "primaryRegion" if side == "primary" else "drRegion"
        return f"{self.clients.region(side)} ({region_key})"

    def check(
        self,
        side: Side,
        key: str,
        what: str,
        call: Callable[[], Any],
        verify: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """Make ``call``; record its outcome under ``key``. Returns the answer, or None."""
        if side in self.dark:
            return None
        try:
            answer = call()
        except UNREACHABLE as exc:
            self.dark.add(side)
            if side == "primary":
                self.report.warnings.append(
                    f"region A {self.where(side)} does not answer ({type(exc).__name__}): its resources "
                    f"were not checked, from {key!r} on (region A is checked best effort)"
                )
            else:
                self.report.problems.append(
                    f"{key!r}: region B {self.where(side)} does not answer ({type(exc).__name__}); "
                    "the runbook cannot work without it"
                )
            return None
        except ClientError as exc:
            code = _error_code(exc)
            if code in NOT_FOUND_CODES:
                self.report.problems.append(f"{key!r}: no {what} in {self.where(side)} ({code})")
            else:
                message = exc.response.get("Error", {}).get("Message", "")
                self.report.problems.append(
                    f"{key!r}: {what} in {self.where(side)}: {exc.operation_name} failed: {code}: {message}"
                )
            return None
        except BotoCoreError as exc:  # parameter validation (a malformed name), missing credentials
            self.report.problems.append(f"{key!r}: {what}: {type(exc).__name__}: {exc}")
            return None
        problem = verify(answer) if verify else None
        if problem:
            self.report.problems.append(f"{key!r}: {problem}")
        else:
            self.report.checked.append(f"{key}: {what} in {self.clients.region(side)}")
        return answer

    # -- the checks -----------------------------------------------------------------------------

    def generation(self) -> None:
        ctx = self.ctx
        if ctx.generation is None:
            self.report.problems.append(
                f"{GENERATION_KEY!r}: the outputs carry no generation stamp (exported before stamps, "
                f"or written by hand); {REFRESH_HINT}"
            )
        elif ctx.generation != ctx.content_generation:
            self.report.problems.append(
                f"{GENERATION_KEY!r}: the outputs were edited after export (their stamp is "
                f"{ctx.generation}, their contents stamp {ctx.content_generation}); {REFRESH_HINT}"
            )
        name = generation_parameter_name(ctx.latch_parameter_name)
        answer = self.check(
            "dr",
            GENERATION_KEY,
            f"live generation parameter {name} (latchParameterName + '-generation')",
            lambda: self.clients.ssm("dr").get_parameter(Name=name),
        )
        if answer is None:
            return
        live = str(answer["Parameter"]["Value"])
        self.report.live_generation = live
        if ctx.generation is not None and live != ctx.generation:
            self.report.problems.append(
                f"{GENERATION_KEY!r}: the outputs are stale: their generation is {ctx.generation}, the "
                f"deployed one is {live} (the stack was updated since they were exported); {REFRESH_HINT}"
            )

    def web_tier(self, side: Side, key: str, name: str) -> None:
        def verify(answer: dict[str, Any]) -> str | None:
            groups = answer.get("AutoScalingGroups", [])
            return None if groups else f"no Auto Scaling group {name!r} in {self.where(side)}"

        self.check(
            side,
            key,
            f"Auto Scaling group {name!r}",
            lambda: self.clients.autoscaling(side).describe_auto_scaling_groups(AutoScalingGroupNames=[name]),
            verify,
        )

    def functions(self, side: Side, key: str, names: tuple[str, ...]) -> None:
        for fn in names:
            self.check(
                side,
                key,
                f"Lambda function {fn!r}",
                lambda fn=fn: self.clients.lambda_(side).get_function_concurrency(FunctionName=fn),
            )

    def mappings(self, side: Side, key: str, ids: tuple[str, ...]) -> None:
        for uuid in ids:
            self.check(
                side,
                key,
                f"event source mapping {uuid!r}",
                lambda uuid=uuid: self.clients.lambda_(side).get_event_source_mapping(UUID=uuid),
            )

    def database(self) -> None:
        ctx, rds = self.ctx, self.clients.rds
        if ctx.database_mode == "rds-replica":
            pairs: list[tuple[Side, str, str | None]] = [
                ("dr", "drDbInstanceId", ctx.dr_db_instance_id),
                ("primary", "primaryDbInstanceId", ctx.primary_db_instance_id),
            ]
            for side, key, ident in pairs:
                answer = self.check(
                    side,
                    key,
                    f"DB instance {ident!r}",
                    lambda side=side, ident=ident: rds(side).describe_db_instances(
                        DBInstanceIdentifier=ident
                    ),
                )
                if answer and answer.get("DBInstances") and self.engine is None:
                    self.engine = answer["DBInstances"][0].get("Engine")
                if side == "primary" and answer and answer.get("DBInstances"):
                    self.failback_groups(answer["DBInstances"][0])
            return
        self.check(
            "dr",
            "globalClusterId",
            f"global database {ctx.global_cluster_id!r}",
            lambda: rds("dr").describe_global_clusters(GlobalClusterIdentifier=ctx.global_cluster_id),
        )

        def same_arn(answer: dict[str, Any]) -> str | None:
            arn = answer["DBClusters"][0]["DBClusterArn"]
            if arn != ctx.dr_cluster_arn:
                return (
                    f"{ctx.dr_cluster_arn!r} is not drClusterId {ctx.dr_cluster_id!r}, whose ARN is {arn!r}"
                )
            return None

        answer = self.check(
            "dr",
            "drClusterId",
            f"DB cluster {ctx.dr_cluster_id!r}",
            lambda: rds("dr").describe_db_clusters(DBClusterIdentifier=ctx.dr_cluster_id),
        )
        if answer is not None and (problem := same_arn(answer)):
            self.report.problems.append(f"'drClusterArn': {problem}")
        self.check(
            "primary",
            "primaryClusterId",
            f"DB cluster {ctx.primary_cluster_id!r}",
            lambda: rds("primary").describe_db_clusters(DBClusterIdentifier=ctx.primary_cluster_id),
        )

    def marker(self, side: Side) -> None:
        """The source's ledger marker function, where a planned change's zero-lag proof invokes it.

        RDS for PostgreSQL only (``lambdas/failover/lossless.py``, ``database_lag``): after the drain the
        runbook invokes ``<app>-<env>-ledger-marker`` in the source's region, and without it the wait
        gives up with the source already drained. Checked with ``InvocationType=DryRun``, which runs
        nothing: Lambda only validates the parameters and verifies that the caller may invoke the
        function (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), so a missing function
        and a role that may not invoke it are both found, with the permission the runbook will use.
        """
        ctx = self.ctx
        if ctx.database_mode != "rds-replica" or not str(self.engine or "").startswith("postgres"):
            return
        name = ledger_marker_function_name(f"{ctx.app_name}-{ctx.environment}")
        self.check(
            side,
            "appName/environment",
            f"ledger marker function {name!r} (the PostgreSQL zero-lag proof invokes it after the drain)",
            lambda: self.clients.lambda_(side).invoke(FunctionName=name, InvocationType="DryRun"),
        )

    def receipts(self, side: Side, key: str, bucket: str, destination: str) -> None:
        """A receipts bucket and its replication rule into the other region's bucket, as the program
        makes it (components/storage.py): rule ``REPLICATION_RULE_ID`` enabled, into ``destination``,
        with S3 Replication metrics on. A planned change waits for ``OperationsPendingReplication``
        of that rule (``lossless.store_lags``), which S3 publishes only for a rule with metrics on
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html): without it the
        wait would see no datapoint, drain the source and give up. GetBucketReplication answers
        ``NoSuchBucket`` or ``ReplicationConfigurationNotFoundError``
        (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketReplication.html)."""

        def verify(answer: dict[str, Any]) -> str | None:
            rules = answer.get("ReplicationConfiguration", {}).get("Rules", [])
            rule = next((r for r in rules if r.get("ID") == REPLICATION_RULE_ID), None)
            target = f"arn:aws:s3:::{destination}"
            if rule is None:
                return f"bucket {bucket!r} has no replication rule {REPLICATION_RULE_ID!r}"
            problems = []
            if rule.get("Status") != "Enabled":
                problems.append("is not enabled")
            if rule.get("Destination", {}).get("Bucket") != target:
                problems.append(f"does not replicate into {destination!r}")
            if rule.get("Destination", {}).get("Metrics", {}).get("Status") != "Enabled":
                problems.append("has S3 Replication metrics off (a planned change's wait reads them)")
            if not _matches_every_object(rule):
                problems.append(
                    f"does not replicate every object (filter {rule.get('Filter', {'Prefix': rule.get('Prefix')})}; "
                    "the program's rule has an empty prefix)"
                )
            ahead = [
                str(r.get("ID"))
                for r in rules
                if r is not rule
                and r.get("Status") == "Enabled"
                and r.get("Destination", {}).get("Bucket") == target
                and int(r.get("Priority") or 0) > int(rule.get("Priority") or 0)
            ]
            if ahead:
                # "if there are two or more rules with the same destination bucket, then objects will be
                # replicated according to the rule with the highest priority"
                # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ReplicationRule.html): they take its objects.
                problems.append(
                    f"is outranked into the same bucket by rule(s) {', '.join(ahead)} (higher Priority)"
                )
            if problems:
                return f"bucket {bucket!r} replication rule {REPLICATION_RULE_ID!r} " + ", ".join(problems)
            return None

        self.check(
            side,
            key,
            f"receipts bucket {bucket!r} replicating into {destination!r}",
            lambda: self.clients.client("s3", side).get_bucket_replication(Bucket=bucket),
            verify,
        )

    def global_table(self, side: Side, name: str, *, target: bool) -> None:
        """The global table's replica in ``side`` (a planned change writes its drain marker there), and that it
        is a replica of one global table with the other region, ACTIVE (``replica_problem``): two regional
        tables of that name replicate nothing, so a failover would leave behind every item written in the
        old region, and a planned change's drain marker would never arrive (break37 P1)."""
        other: Side = "primary" if side == "dr" else "dr"

        def verify(answer: dict[str, Any]) -> str | None:
            table = answer.get("Table") or {}
            own = table.get("TableStatus")
            if own in UNUSABLE_TABLE_STATUSES:
                unusable = f"table {name!r} in {self.where(side)} is {own}: it takes no read or write"
                if target:
                    return unusable
                self.report.warnings.append(f"'globalTableName': {unusable}")
            problem, warning = replica_problem(table, self.clients.region(other))
            if warning:
                self.report.warnings.append(
                    f"'globalTableName': table {name!r} in {self.where(side)} {warning}"
                )
            if problem:
                return f"table {name!r} in {self.where(side)} {problem}"
            return None

        self.check(
            side,
            "globalTableName",
            f"global table replica {name!r}",
            lambda: self.clients.dynamodb(side).describe_table(TableName=name),
            verify,
        )

    def failback_groups(self, primary: Mapping[str, Any]) -> None:
        """rds-replica: the subnet and parameter groups the outputs name for the failback replica, read
        from region A's primary instance (its DescribeDBInstances answer, no call of their own): the
        failback creates its replica in that instance's subnet group with its parameter group, and a
        group in use by an instance cannot be deleted ("The specified database subnet group must not be
        associated with any DB instances",
        https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBSubnetGroup.html; "The DB
        parameter group to be deleted can't be associated with any DB instances",
        https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBParameterGroup.html). A name
        that differs is a stale or mistyped outputs file. No describe of their own: the runbook role's
        statements build the permissions boundary, which must stay one managed policy
        (automation/iam_boundary.py)."""
        ctx = self.ctx
        ident = primary.get("DBInstanceIdentifier")
        subnet_group = (primary.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
        if ctx.primary_db_subnet_group_name and ctx.primary_db_subnet_group_name != subnet_group:
            self.report.problems.append(
                f"'primaryDbSubnetGroupName': {ctx.primary_db_subnet_group_name!r} is not the subnet group of "
                f"{ident!r} in {self.where('primary')} ({subnet_group!r}): the outputs are stale or mistyped"
            )
        parameter_groups = [g.get("DBParameterGroupName") for g in primary.get("DBParameterGroups") or []]
        if (
            ctx.primary_db_parameter_group_name
            and ctx.primary_db_parameter_group_name not in parameter_groups
        ):
            self.report.problems.append(
                f"'primaryDbParameterGroupName': {ctx.primary_db_parameter_group_name!r} is not a parameter group "
                f"of {ident!r} in {self.where('primary')} ({', '.join(map(repr, parameter_groups)) or 'none'}): "
                "the outputs are stale or mistyped"
            )

    def keys(self) -> None:
        ctx = self.ctx
        named = [
            ("notifyKeyArn", ctx.notify_key_arn),
            ("drKmsKeyArn", ctx.dr_kms_key_arn),
            ("primaryKmsKeyArn", ctx.primary_kms_key_arn),
            *(("dataKeyArns", arn) for arn in ctx.data_key_arns),
            ("lockTableKeyArn", ctx.lock_table_key_arn),
        ]
        seen: set[str] = set()
        for key, arn in named:
            if not arn or (key in ("dataKeyArns", "lockTableKeyArn") and arn in seen):
                continue
            seen.add(arn)
            side: Side = "primary" if arn.split(":")[3] == ctx.primary_region else "dr"
            self.check(
                side,
                key,
                f"KMS key {arn!r}",
                lambda side=side, arn=arn: self.clients.client("kms", side).describe_key(KeyId=arn),
            )


def check(ctx: RunbookContext, clients: Clients, runbook: str | None = None) -> PreflightReport:
    """Check the outputs against the live system, read-only; see the module docstring.

    Region B first (it must answer), then region A (best effort). Nothing here changes anything:
    ``tests/lambdas/failover/test_preflight.py`` records every call and refuses a mutating one.
    ``runbook`` (``failover``, ``failback``; None: both) chooses which ledger marker function is
    checked (RDS for PostgreSQL): the source's of its planned change, region A's for a failover
    (planned whenever region A answers), region B's for a failback.
    """
    run = _Preflight(ctx, clients)
    run.generation()
    run.check(
        "dr",
        "latchParameterName",
        f"latch parameter {ctx.latch_parameter_name!r}",
        lambda: clients.ssm("dr").get_parameter(Name=ctx.latch_parameter_name),
    )
    run.check(
        "dr",
        "lockTableName",
        f"runbook lock table {ctx.lock_table_name!r}",
        lambda: clients.dynamodb("dr").describe_table(TableName=ctx.lock_table_name),
        lambda answer: lock.schema_problem(answer["Table"]),
    )
    run.web_tier("dr", "drAsgName", ctx.dr_asg_name)
    run.functions("dr", "drFunctionNames", ctx.dr_function_names)
    run.mappings("dr", "drEventSourceMappingIds", ctx.dr_event_source_mapping_ids)
    run.check(
        "dr",
        "notifyTopicArn",
        f"SNS topic {ctx.notify_topic_arn!r}",
        lambda: clients.sns("dr").get_topic_attributes(TopicArn=ctx.notify_topic_arn),
    )
    run.database()
    if runbook in (None, "failback"):
        run.marker("dr")
    run.keys()
    buckets = (ctx.primary_bucket_name, ctx.dr_bucket_name)
    if buckets[0] and buckets[1]:
        run.receipts("dr", "drBucketName", buckets[1], buckets[0])
    if ctx.global_table_name:
        run.global_table("dr", ctx.global_table_name, target=runbook != "failback")
    run.web_tier("primary", "primaryAsgName", ctx.primary_asg_name)
    run.functions("primary", "primaryFunctionNames", ctx.primary_function_names)
    run.mappings("primary", "primaryEventSourceMappingIds", ctx.primary_event_source_mapping_ids)
    if runbook in (None, "failover"):
        run.marker("primary")
    if buckets[0] and buckets[1]:
        run.receipts("primary", "primaryBucketName", buckets[0], buckets[1])
    if ctx.global_table_name:
        run.global_table("primary", ctx.global_table_name, target=runbook != "failover")
    return run.report
