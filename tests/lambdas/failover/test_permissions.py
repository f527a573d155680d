"""The runbook role allows every AWS call the runbooks really make, on the resource each acts on.

Both runbooks run against moto while a hook records each API call: its IAM action, the region of
the client (``aws:RequestedRegion``) and the ARN of its target, built from the call's parameters.
Each call must be allowed by a statement of the runbook policy (``components/runbook_iam.py``, built
for the world's resources) whose Action, Resource and Condition all match. A step that starts calling
a new API, or acting on a resource the policy does not name, would otherwise fail only in AWS, with
AccessDenied, during a real failover. The synthesized dr stack's runbook role carries exactly these
statements.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from components.runbook_iam import RunbookTargets, runbook_statements
from lambdas.failover import executor, preflight
from lambdas.failover.context import RunbookContext
from lambdas.failover.names import (
    FAILBACK_STAMP_TAG,
    REQUIRED_TAG_KEYS,
    ledger_marker_function_name,
    retained_stamp,
    switch_namespace,
)
from tests.components.conftest import synthesize
from tests.lambdas.failover.harness import FAST, FORCED, clients_for
from tests.lambdas.failover.world import ACCOUNT, REGION_A, REGION_B, World, all_db_instances

# IAM action prefixes where they differ from the lower-cased botocore service id.
IAM_PREFIX = {"Auto Scaling": "autoscaling", "CloudWatch": "cloudwatch"}
# IAM actions whose name differs from the API operation's (Service Authorization Reference: Lambda's
# Invoke is authorized as lambda:InvokeFunction, a DryRun included).
IAM_ACTION = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
}
ANY_ASG_ID = "00000000-0000-0000-0000-000000000000"  # a group's id is AWS's; the policy names the group


def _arn_or(value: str, build: Callable[[str], str]) -> str:
    return value if value.startswith("arn:") else build(value)


def _db(region: str, ident: str) -> str:
    return _arn_or(ident, lambda i: f"arn:aws:rds:{region}:{ACCOUNT}:db:{i}")


def _cluster(region: str, ident: str) -> str:
    return _arn_or(ident, lambda i: f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{i}")


def _global(ident: str) -> str:
    return _arn_or(ident, lambda i: f"arn:aws:rds::{ACCOUNT}:global-cluster:{i}")


# How each operation the runbook calls names its target (Service Authorization Reference resource
# types); "*" where AWS defines none. An operation missing here fails the test: add its rule.
TARGETS: dict[str, Callable[[dict[str, Any], str], list[str]]] = {
    "autoscaling:DescribeAutoScalingGroups": lambda p, r: ["*"],
    "autoscaling:UpdateAutoScalingGroup": lambda p, r: [
        f"arn:aws:autoscaling:{r}:{ACCOUNT}:autoScalingGroup:{ANY_ASG_ID}:autoScalingGroupName/"
        + p["AutoScalingGroupName"]
    ],
    **{
        f"lambda:{op}": lambda p, r: [
            _arn_or(p["FunctionName"], lambda n: f"arn:aws:lambda:{r}:{ACCOUNT}:function:{n}")
        ]
        for op in (
            "GetFunctionConcurrency",
            "PutFunctionConcurrency",
            "DeleteFunctionConcurrency",
            "InvokeFunction",
        )
    },
    **{
        f"lambda:{op}": lambda p, r: [f"arn:aws:lambda:{r}:{ACCOUNT}:event-source-mapping:{p['UUID']}"]
        for op in ("GetEventSourceMapping", "UpdateEventSourceMapping")
    },
    **{
        f"ssm:{op}": lambda p, r: [f"arn:aws:ssm:{r}:{ACCOUNT}:parameter/{p['Name'].lstrip('/')}"]
        for op in ("GetParameter", "PutParameter")
    },
    **{
        f"dynamodb:{op}": lambda p, r: [f"arn:aws:dynamodb:{r}:{ACCOUNT}:table/{p['TableName']}"]
        for op in ("DescribeTable", "GetItem", "PutItem", "UpdateItem", "DeleteItem")
    },
    "lambda:ListEventSourceMappings": lambda p, r: ["*"],
    "sns:Publish": lambda p, r: [p["TopicArn"]],
    "sns:GetTopicAttributes": lambda p, r: [p["TopicArn"]],
    "kms:DescribeKey": lambda p, r: [p["KeyId"]],
    "cloudwatch:PutMetricData": lambda p, r: ["*"],
    "cloudwatch:GetMetricData": lambda p, r: ["*"],
    "rds:DescribeDBInstances": lambda p, r: [_db(r, p["DBInstanceIdentifier"])],
    "rds:DescribeDBClusters": lambda p, r: [_cluster(r, p["DBClusterIdentifier"])],
    "rds:DescribeGlobalClusters": lambda p, r: [_global(p["GlobalClusterIdentifier"])],
    "rds:DescribeDBClusterSnapshots": lambda p, r: [_cluster(r, p["DBClusterIdentifier"])],
    "s3:GetReplicationConfiguration": lambda p, r: [f"arn:aws:s3:::{p['Bucket']}"],
    **{
        "rds:CopyDBClusterSnapshot": lambda p, r: [
            f"arn:aws:rds:{r}:{ACCOUNT}:cluster-snapshot:{p[k]}"
            for k in ("SourceDBClusterSnapshotIdentifier", "TargetDBClusterSnapshotIdentifier")
        ]
    },
    "rds:PromoteReadReplica": lambda p, r: [_db(r, p["DBInstanceIdentifier"])],
    "rds:CreateDBInstance": lambda p, r: [
        _db(r, p["DBInstanceIdentifier"]),
        _cluster(r, p["DBClusterIdentifier"]),
    ],
    # Authorized on the new instance, on the source (region B's, by ARN for a cross-region replica) and
    # on the subnet, parameter and option groups it names (db*, og*, pg*, subgrp*: Service
    # Authorization Reference, list_amazonrds.html); security groups are EC2's, not RDS resources.
    "rds:CreateDBInstanceReadReplica": lambda p, r: [
        _db(r, p["DBInstanceIdentifier"]),
        _db(r, p["SourceDBInstanceIdentifier"]),
        *([f"arn:aws:rds:{r}:{ACCOUNT}:subgrp:{p['DBSubnetGroupName']}"] if "DBSubnetGroupName" in p else []),
        *(
            [f"arn:aws:rds:{r}:{ACCOUNT}:pg:{p['DBParameterGroupName']}"]
            if "DBParameterGroupName" in p
            else []
        ),
        *([f"arn:aws:rds:{r}:{ACCOUNT}:og:{p['OptionGroupName']}"] if "OptionGroupName" in p else []),
    ],
    # Authorized on the instance (db*, list_amazonrds.html). For a rename the reference does not say
    # whether the new name is evaluated too: the test requires both to be allowed.
    "rds:ModifyDBInstance": lambda p, r: [
        _db(r, p["DBInstanceIdentifier"]),
        *([_db(r, p["NewDBInstanceIdentifier"])] if "NewDBInstanceIdentifier" in p else []),
    ],
    **{
        f"rds:{op}": lambda p, r: [_global(p["GlobalClusterIdentifier"]), p["TargetDbClusterIdentifier"]]
        for op in ("FailoverGlobalCluster", "SwitchoverGlobalCluster")
    },
}


@dataclass(frozen=True)
class Call:
    """One API call: IAM action, the client's region, the resource it acts on, its parameters."""

    action: str
    region: str
    target: str
    namespace: str | None = None  # cloudwatch:namespace, for PutMetricData
    via: str | None = None  # kms:ViaService, for a KMS call a service makes on the caller's behalf
    tag_keys: tuple[str, ...] | None = None  # aws:TagKeys, for the tagging a create with Tags implies
    request_tags: tuple[tuple[str, str], ...] = ()  # aws:RequestTag/<key>: the tags it sets
    grant_for_aws: bool = False  # kms:GrantIsForAWSResource: a grant a service creates for its resource
    table_context: str | None = None  # kms:EncryptionContext:aws:dynamodb:tableName, for DynamoDB's KMS calls


# What a call makes the caller do besides itself: publishing to a topic encrypted with a customer
# managed key needs kms:GenerateDataKey and kms:Decrypt on that key for the publisher
# (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, "Allow a publisher to send
# messages to an encrypted topic"). Keyed by action: the keys of the resources it targets.
# An item call on a DynamoDB table encrypted with a customer managed key makes DynamoDB use the key on
# the caller's behalf, through DynamoDB (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-authz;
# aws/aws-cdk#10010: PutItem on such a table fails "KMS key access denied" without kms:Decrypt).
# Creating an Aurora or RDS instance under a customer managed key (the instance's own KmsKeyId, or
# its encrypted cluster's key) makes RDS create a grant on the key for it, on the creator's behalf:
# "a user must have permissions to call the following operations on the customer managed key:
# kms:CreateGrant, kms:DescribeKey" (Aurora User Guide, "Authorizing use of a customer managed key":
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html; RDS User
# Guide, same section), through RDS in the key's region, kms:GrantIsForAWSResource true
# (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html) (review breakiam24 BI24-4).
IMPLIED_KMS = {
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    **{f"dynamodb:{op}": ("kms:Decrypt",) for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")},
    **{
        f"rds:{op}": ("kms:CreateGrant", "kms:DescribeKey")
        for op in ("CreateDBInstance", "CreateDBInstanceReadReplica")
    },
}
# An RDS create that carries Tags is also authorized as rds:AddTagsToResource on the new resource
# ("If tags are specified in the create action, RDS performs additional authorization on the
# rds:AddTagsToResource action":
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-grant-permissions-tags-on-create.html).
# Keyed by action: the ARN of the resource it creates.
IMPLIED_TAGGING: dict[str, Callable[[dict[str, Any], str], str]] = {
    "rds:CreateDBInstanceReadReplica": lambda p, r: _db(r, p["DBInstanceIdentifier"]),
    "rds:CreateDBInstance": lambda p, r: _db(r, p["DBInstanceIdentifier"]),
}
VIA_SERVICE = {"dynamodb", "rds"}
"""Services whose implied KMS calls carry ``kms:ViaService`` (SNS publishes with the caller's own call)."""
GRANTS_FOR_RESOURCES = {"rds"}
"""Services whose implied ``kms:CreateGrant`` is a grant for the resource they create
(``kms:GrantIsForAWSResource`` true)."""


class CallRecorder:
    """A ``before-parameter-build`` hook recording every call with its target ARN(s).

    ``resource_keys`` maps a target (an encrypted topic) to its KMS key's ARN: a call in
    :data:`IMPLIED_KMS` on it is recorded with the KMS calls it makes the caller do.
    """

    def __init__(self, resource_keys: dict[str, str] | None = None) -> None:
        self.calls: set[Call] = set()
        self.unknown: set[str] = set()
        self.resource_keys = resource_keys or {}

    def __call__(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        service_id = model.service_model.service_id
        action = f"{IAM_PREFIX.get(service_id, service_id.lower())}:{model.name}"
        action = IAM_ACTION.get(action, action)
        region = context["client_config"].region_name
        rule = TARGETS.get(action)
        if rule is None:
            self.unknown.add(action)
            return
        service = action.split(":")[0]
        # A create naming its own key (an RDS instance's KmsKeyId) uses that key, as an ARN here.
        own_key = self.resource_keys.get(params.get("KmsKeyId", ""), params.get("KmsKeyId"))
        for target in rule(params, region):
            self.calls.add(Call(action, region, target, params.get("Namespace")))
            key = self.resource_keys.get(target) or (own_key if service == "rds" else None)
            via = f"{service}.{region}.amazonaws.com" if service in VIA_SERVICE else None
            # DynamoDB's encryption context names the table ("aws:dynamodb:tableName":
            # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html#dynamodb-encryption-context).
            table = params.get("TableName") if service == "dynamodb" else None
            for implied in IMPLIED_KMS.get(action, ()) if key else ():
                grant = implied == "kms:CreateGrant" and service in GRANTS_FOR_RESOURCES
                self.calls.add(Call(implied, region, key, via=via, grant_for_aws=grant, table_context=table))
        tagging = IMPLIED_TAGGING.get(action)
        if tagging is not None and params.get("Tags"):
            keys = tuple(sorted(t["Key"] for t in params["Tags"]))
            tags = tuple(sorted((t["Key"], t["Value"]) for t in params["Tags"]))
            self.calls.add(
                Call(
                    "rds:AddTagsToResource", region, tagging(params, region), tag_keys=keys, request_tags=tags
                )
            )

    def install(self, session: boto3.Session) -> None:
        session.events.register("before-parameter-build", self)


def _list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(condition: dict[str, Any], call: Call) -> bool:
    known = {
        "aws:RequestedRegion": call.region,
        "cloudwatch:namespace": call.namespace,
        "kms:ViaService": call.via,
        "kms:GrantIsForAWSResource": "true" if call.grant_for_aws else None,
        "kms:EncryptionContext:aws:dynamodb:tableName": call.table_context,
        **{f"aws:RequestTag/{k}": v for k, v in call.request_tags},
    }
    for operator, block in condition.items():
        if operator == "StringEqualsIfExists" and all(k.startswith("aws:RequestTag/") for k in block):
            # A tag the request sets must have the value named; one it does not set passes (IfExists).
            if any(k in known and known[k] not in _list(v) for k, v in block.items()):
                return False
            continue
        if operator == "ForAllValues:StringEquals" and set(block) == {"aws:TagKeys"}:
            # Every tag key of the request among those named (IAM condition operators, ForAllValues).
            if call.tag_keys is None or not set(call.tag_keys) <= set(_list(block["aws:TagKeys"])):
                return False
            continue
        match = {
            "StringEquals": lambda v, p: v == p,
            "StringLike": fnmatch.fnmatchcase,
            "Bool": lambda v, p: v.lower() == str(p).lower(),
        }.get(operator)
        for key, wanted in block.items():
            value = known.get(key)
            # An operator or key this test cannot evaluate never counts as satisfied.
            if match is None or value is None or not any(match(value, w) for w in _list(wanted)):
                return False
    return True


def allowing(statements: list[dict[str, Any]], call: Call) -> list[str]:
    """The Sids of the statements that allow ``call`` (action, resource and condition all match)."""
    return [
        s.get("Sid", "?")
        for s in statements
        if s.get("Effect") == "Allow"
        and any(fnmatch.fnmatchcase(call.action, a) for a in _list(s["Action"]))
        and any(fnmatch.fnmatchcase(call.target, r) for r in _list(s["Resource"]))
        and _condition_holds(s.get("Condition", {}), call)
    ]


def world_policy(world: World) -> list[dict[str, Any]]:
    """The runbook statements the program would build for this world's resources (an unencrypted
    world gets placeholder keys, which its calls never touch)."""
    keys = {
        "notifyKeyArn": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/notify",
        "dataKeyArns": [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/data"],
    }
    return runbook_statements(RunbookTargets.from_context({**keys, **world.context}))


def topic_keys(world: World) -> dict[str, str]:
    """The notification topic's KMS key, as SNS reports it (empty when the topic is not encrypted)."""
    topic = world.context["notifyTopicArn"]
    attrs = world.client("sns", topic.split(":")[3]).get_topic_attributes(TopicArn=topic)["Attributes"]
    key = attrs.get("KmsMasterKeyId")
    if not key:
        return {}
    return {topic: world.client("kms", topic.split(":")[3]).describe_key(KeyId=key)["KeyMetadata"]["Arn"]}


def table_keys(world: World) -> dict[str, str]:
    """The lock table's KMS key, as DynamoDB reports it (empty when the table uses an AWS owned key)."""
    table = world.context["lockTableName"]
    got = world.client("dynamodb", REGION_B).describe_table(TableName=table)["Table"]
    key = (got.get("SSEDescription") or {}).get("KMSMasterKeyArn")
    return {got["TableArn"]: key} if key else {}


def cluster_keys(world: World) -> dict[str, str]:
    """Each encrypted Aurora cluster's KMS key, as RDS reports it (none in rds-replica mode), and each
    key by its id too: a create names its key either way."""
    out: dict[str, str] = {}
    for region in (REGION_A, REGION_B):
        rds = world.client("rds", region)
        for cluster in rds.describe_db_clusters()["DBClusters"]:
            if cluster.get("StorageEncrypted") and cluster.get("KmsKeyId"):
                key = world.client("kms", region).describe_key(KeyId=cluster["KmsKeyId"])["KeyMetadata"]
                out[cluster["DBClusterArn"]] = key["Arn"]
    for key in {*out.values(), *world.context.get("dataKeyArns", [])}:
        out[key.rsplit("/", 1)[-1]] = key
    return out


def record_both_runbooks(world: World) -> CallRecorder:
    recorder = CallRecorder({**topic_keys(world), **table_keys(world), **cluster_keys(world)})
    clients = clients_for(world, recorder)  # type: ignore[arg-type]
    ctx = RunbookContext.from_dict(world.context)
    # The preflight runs under the same role, before either runbook's first change.
    assert preflight.check(ctx, clients).ok
    assert executor.run("failover", ctx, clients, params=FORCED).outcome == "done"
    assert preflight.check(ctx, clients).ok
    world.age_metrics(minutes=5)
    assert executor.run("failback", ctx, clients, params=FAST).outcome == "done"
    return recorder


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_every_call_of_failover_and_failback_is_allowed_on_its_target(
    make_world: Callable[..., World], mode: str
) -> None:
    world = make_world(mode, encrypted=True)  # as the program deploys: every database and the topic
    recorder = record_both_runbooks(world)

    assert recorder.unknown == set(), "calls with no target rule in TARGETS: add one"
    if mode == "rds-replica":
        # The preflight's DryRun of each region's ledger marker (RDS for PostgreSQL), allowed as the
        # drain marker's own invocation is: the same action on the same function.
        invoked = {c.region for c in recorder.calls if c.action == "lambda:InvokeFunction"}
        assert invoked == {"us-east-1", "us-west-2"}, invoked
    assert len({c.action for c in recorder.calls}) >= 10, "the runbooks made fewer calls than they must"
    statements = world_policy(world)
    denied = sorted(
        f"{c.action} on {c.target} in {c.region}" for c in recorder.calls if not allowing(statements, c)
    )
    assert denied == []


@pytest.mark.parametrize("source", ["primary", "dr"])
def test_the_global_table_s_drain_marker_calls_are_allowed_on_its_replicas(
    make_world: Callable[..., World], source: str
) -> None:
    """no_loss (break34 B34-2): the global table's wait writes its drain marker into the sending replica,
    reads it and stamps its arrival in the receiving one, and deletes both, in either direction (failover,
    failback): each call, and the KMS use it makes DynamoDB do with the replica's key, is allowed, on that
    table only. moto does not replicate: the test copies the marker into the receiving replica itself."""
    from lambdas.failover.lossless import Lag, remove_table_markers, table_marker_latency

    world = make_world("rds-replica", encrypted=True, global_table=True)
    table = world.context["globalTableName"]
    keys = {
        REGION_A: f"arn:aws:kms:{REGION_A}:{ACCOUNT}:key/table-a",
        REGION_B: f"arn:aws:kms:{REGION_B}:{ACCOUNT}:key/table-b",
    }
    recorder = CallRecorder({f"arn:aws:dynamodb:{r}:{ACCOUNT}:table/{table}": k for r, k in keys.items()})
    clients = clients_for(world, recorder)  # type: ignore[arg-type]
    target = "dr" if source == "primary" else "primary"
    src, dst = clients.region(source), clients.region(target)  # type: ignore[arg-type]
    lag = Lag(
        source,
        "AWS/DynamoDB",
        "ReplicationLatency",
        {"TableName": table, "ReceivingRegion": dst},
        settle=True,
    )  # type: ignore[arg-type]
    drained = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert table_marker_latency(clients, lag, drained, drained)[0] is None, "not yet in the receiving replica"
    key = {"pk": {"S": "pilotlight#drain"}, "sk": {"S": f"20261202T120000Z#{src}"}}
    item = world.client("dynamodb", src).get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    world.client("dynamodb", dst).put_item(TableName=table, Item=item)  # replicated
    assert table_marker_latency(clients, lag, drained, drained + timedelta(seconds=30))[0] == 30.0
    assert table_marker_latency(clients, lag, drained, drained + timedelta(seconds=45))[0] == 30.0, (
        "first seen"
    )
    remove_table_markers(clients, lag, drained)

    made = {(c.action, c.region) for c in recorder.calls}
    assert {("dynamodb:PutItem", src), ("dynamodb:GetItem", dst), ("dynamodb:PutItem", dst)} <= made, made
    assert {("dynamodb:DeleteItem", src), ("dynamodb:DeleteItem", dst), ("kms:Decrypt", dst)} <= made, made
    statements = world_policy(world)
    denied = sorted(
        f"{c.action} on {c.target} in {c.region}" for c in recorder.calls if not allowing(statements, c)
    )
    assert denied == []
    own = f"arn:aws:dynamodb:{src}:{ACCOUNT}:table/{table}"
    assert not allowing(statements, Call("dynamodb:Scan", src, own)), "the marker's calls only"
    assert not allowing(statements, Call("dynamodb:PutItem", src, own.replace(table, "someone-elses"))), (
        "this table only"
    )
    other = Call(
        "kms:Decrypt", src, keys[src], via=f"dynamodb.{src}.amazonaws.com", table_context="someone-elses"
    )
    assert not allowing(statements, other), "the key through this table only"
    direct = Call("kms:Decrypt", src, keys[src], table_context=table)
    assert not allowing(statements, direct), "the key through DynamoDB only"


def test_the_failback_replica_carries_its_stamp_and_the_role_allows_tagging_it(
    make_world: Callable[..., World],
) -> None:
    """B13-8: the replica the rds-replica failback creates under ``<primary>`` says, in a tag, which
    retained instance it replaced (the primary stack adopts it from that), and the runbook role allows
    the tagging RDS authorizes on create (rds:AddTagsToResource), for that tag key only."""
    world = make_world("rds-replica", encrypted=True)
    recorder = record_both_runbooks(world)
    rds = world.client("rds", REGION_A)
    primary = world.context["primaryDbInstanceId"]
    (writer,) = rds.describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"]
    tags = {
        t["Key"]: t["Value"]
        for t in rds.list_tags_for_resource(ResourceName=writer["DBInstanceArn"])["TagList"]
    }
    retained = [
        i["DBInstanceIdentifier"]
        for i in all_db_instances(rds)
        if retained_stamp(primary, i["DBInstanceIdentifier"])
    ]
    assert len(retained) == 1, retained
    assert tags.get(FAILBACK_STAMP_TAG) == retained_stamp(primary, retained[0])

    # and the program's tags of the instance it replaces (review breakiam22 BI22-8: the tag Deny
    # fences only a tagged instance), primary's as the retained instance carried them
    assert {k: tags[k] for k in REQUIRED_TAG_KEYS} == {
        "Application": world.app, "Environment": "test", "CostCenter": "dr", "Criticality": "high",
        "StackRole": "primary", "ManagedBy": "pulumi",
    }  # fmt: skip
    tagging = [c for c in recorder.calls if c.action == "rds:AddTagsToResource"]
    assert [(c.target, c.tag_keys) for c in tagging] == [
        (writer["DBInstanceArn"], tuple(sorted((*REQUIRED_TAG_KEYS, FAILBACK_STAMP_TAG))))
    ]
    statements = world_policy(world)
    assert allowing(statements, tagging[0]) == ["TagFailbackReplica"]
    other = Call("rds:AddTagsToResource", REGION_A, writer["DBInstanceArn"], tag_keys=("owner",))
    assert not allowing(statements, other), (
        "the role tags the replica with the stamp and the program's tags only"
    )
    elsewhere = Call(
        "rds:AddTagsToResource", REGION_A, writer["DBInstanceArn"], tag_keys=("Environment",),
        request_tags=(("Environment", "production"),),
    )  # fmt: skip
    assert not allowing(statements, elsewhere), "only the deployment's own Environment (breakiam22b BI22b-6)"


def test_a_call_on_another_resource_or_region_is_denied(make_world: Callable[..., World]) -> None:
    world = make_world("rds-replica")
    statements = world_policy(world)
    asg = world.context["drAsgName"]
    update = "autoscaling:UpdateAutoScalingGroup"
    own = f"arn:aws:autoscaling:us-west-2:{ACCOUNT}:autoScalingGroup:{ANY_ASG_ID}:autoScalingGroupName/{asg}"
    assert allowing(statements, Call(update, "us-west-2", own))
    assert not allowing(statements, Call(update, "us-west-2", own.replace(asg, "someone-elses-group")))
    assert not allowing(statements, Call(update, "eu-west-1", own.replace("us-west-2", "eu-west-1")))
    latch = world.context["latchParameterName"].lstrip("/")
    put = Call("ssm:PutParameter", "us-west-2", f"arn:aws:ssm:us-west-2:{ACCOUNT}:parameter/{latch}")
    assert allowing(statements, put)
    assert not allowing(
        statements, Call(put.action, put.region, put.target.replace(latch, "prod/db-password"))
    )
    table = world.context["lockTableName"]
    take = Call("dynamodb:PutItem", "us-west-2", f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/{table}")
    assert allowing(statements, take)
    assert not allowing(statements, Call(take.action, take.region, take.target.replace(table, "shop-app")))
    assert not allowing(statements, Call("dynamodb:Scan", take.region, take.target))
    # The drain marker (RDS for PostgreSQL's zero-lag proof): the ledger marker function of either
    # region, never a workload function (whose fence it would bypass).
    marker = ledger_marker_function_name(f"{world.context['appName']}-{world.context['environment']}")
    for region in ("us-east-1", "us-west-2"):
        invoke = Call("lambda:InvokeFunction", region, f"arn:aws:lambda:{region}:{ACCOUNT}:function:{marker}")
        assert allowing(statements, invoke), invoke
    api = world.context["drFunctionNames"][0]
    assert not allowing(
        statements,
        Call("lambda:InvokeFunction", "us-west-2", f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:{api}"),
    )
    own = world.context["switchMetric"]["namespace"]
    switch = Call("cloudwatch:PutMetricData", "us-west-2", "*", own)
    assert allowing(statements, switch)
    assert not allowing(statements, Call(switch.action, switch.region, "*", "AWS/EC2"))
    # Another deployment's switch, or the shared namespace of earlier versions: IAM tells them apart by
    # namespace only (cloudwatch:namespace; no condition on dimensions), so each has its own.
    for other in (switch_namespace("shop-production"), "Pilotlight/Failover"):
        assert own != other and not allowing(statements, Call(switch.action, switch.region, "*", other))


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_the_deployed_runbook_role_carries_these_statements(mode: str) -> None:
    overrides = {
        "pilotlight:database": {"mode": mode, **({"engine": "postgres"} if mode == "rds-replica" else {})}
    }
    primary, dr = synthesize("primary", overrides), synthesize("dr", overrides)
    (policy,) = [
        p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "dr-orchestrator-runbook-policy"
    ]
    deployed = json.loads(policy.inputs["policy"])["Statement"]
    runbook = dr.outputs["runbook"]
    assert runbook["notifyKeyArn"] == dr.named("dr-obs-alerts-key").outputs["arn"]
    assert runbook["dataKeyArns"] == [primary.outputs["kmsKeyArn"], dr.named("dr-data-key").outputs["arn"]]
    expected = runbook_statements(RunbookTargets.from_context(runbook))
    assert [s for s in expected if s not in deployed] == []
    assert {s.get("Sid") for s in deployed} - {s["Sid"] for s in expected} == {"OwnLogs"}
