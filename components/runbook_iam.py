"""What the failover runbook may do, resource by resource (pure: no Pulumi, no AWS).

The runbook's Lambda role, and the break-glass policy ``python -m automation iam --for
break-glass`` prints, are built here from the runbook context the dr stack exports: every statement
that changes something names the Auto Scaling groups, functions, event source mappings, databases,
latch, lock table, topic and keys it acts on. The tests run both runbooks against moto, record each call with
its target's ARN and region, and check that one of these statements allows it.

Actions AWS only authorizes on ``"*"`` (no resource types in the Service Authorization Reference)
are listed in :data:`STAR_ONLY_ACTIONS` with their page, and are narrowed by a condition where AWS
offers one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.failover.names import (
    FAILBACK_STAMP_TAG,
    REQUIRED_TAG_KEYS,
    current_failback_id,
    failover_instance_pattern,
    generation_parameter_name,
    kept_snapshot_pattern,
    ledger_marker_function_name,
    phase_record_name,
    retained_instance_pattern,
)

SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference"


def _own_tag_values(t: RunbookTargets) -> dict[str, dict[str, str]]:
    """A tagging request may set the deployment's tags only to the deployment's values: without it the
    runbook role could tag the database it creates ``Environment=<another deployment>``, handing it to
    that deployment's deployer past the tag Deny (review breakiam22b BI22b-6). ``aws:RequestTag/<key>``
    is the value a request sets ("the tag key-value pair that was passed in the request":
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html); IfExists:
    a request that sets neither is not refused for it."""
    values = {"Application": t.application, "Environment": t.environment}
    return {"StringEqualsIfExists": {f"aws:RequestTag/{k}": v for k, v in values.items() if v is not None}}


STAR_ONLY_ACTIONS: dict[str, str] = {
    # action: the Service Authorization Reference page listing it with no resource type
    "autoscaling:DescribeAutoScalingGroups": f"{SAR}/list_amazonec2autoscaling.html",
    "autoscaling:DescribeScalingActivities": f"{SAR}/list_amazonec2autoscaling.html",
    "cloudwatch:PutMetricData": f"{SAR}/list_amazoncloudwatch.html (condition key cloudwatch:namespace)",
    "cloudwatch:GetMetricData": f"{SAR}/list_amazoncloudwatch.html",
    # A function in a VPC (the driver ledger path, components/ledger_access.py) describes its
    # interfaces and subnets: EC2's Describe* calls have no resource type.
    "ec2:DescribeNetworkInterfaces": f"{SAR}/list_amazonec2.html",
    "ec2:DescribeSubnets": f"{SAR}/list_amazonec2.html",
    "lambda:ListEventSourceMappings": f"{SAR}/list_awslambda.html",
    "xray:PutTraceSegments": f"{SAR}/list_awsx-ray.html",
    "xray:PutTelemetryRecords": f"{SAR}/list_awsx-ray.html",
}
"""Every action this program grants on ``Resource: "*"``, and where AWS says it has no resource type.

Outside key policies (where ``"*"`` means the key itself), no other action is granted on ``"*"``:
``tests/components/test_iam.py`` checks every policy document against this list and against the
Service Authorization Reference (parliament's copy of it).
"""


@dataclass(frozen=True)
class RunbookTargets:
    """The resources the runbook acts on, as plain values.

    Attributes:
        account: the AWS account id.
        primary_region, dr_region: regions A and B.
        database_mode: ``aurora-global`` or ``rds-replica``.
        primary_asg, dr_asg: the web tiers' Auto Scaling groups.
        primary_functions, dr_functions: the API functions the runbook throttles and releases.
        primary_mapping_ids, dr_mapping_ids: region A's and region B's event source mappings (UUIDs).
        latch_parameter: the SSM latch's name (region B).
        lock_table: the runbook lock's DynamoDB table (region B).
        notify_topic_arn, notify_key_arn: region B's alert topic and its KMS key.
        switch_namespace: the failover switch metric's CloudWatch namespace.
        primary_db_instance_id, dr_db_instance_id: rds-replica: region A's and B's instances.
        global_cluster_id, primary_cluster_id, dr_cluster_id: aurora-global: the global database and
            its two member clusters.
        data_key_arns: KMS keys an encrypted failback replica may be created under (rds-replica).
        primary_db_subnet_group, primary_db_parameter_group: rds-replica: region A's primary's subnet
            group (default: named like the instance, as the program names it) and parameter group,
            which the failback replica is created in.
    """

    account: str
    primary_region: str
    dr_region: str
    database_mode: str
    primary_asg: str
    dr_asg: str
    primary_functions: tuple[str, ...]
    dr_functions: tuple[str, ...]
    dr_mapping_ids: tuple[str, ...]
    latch_parameter: str
    lock_table: str
    notify_topic_arn: str
    notify_key_arn: str
    switch_namespace: str
    primary_db_instance_id: str | None = None
    dr_db_instance_id: str | None = None
    global_cluster_id: str | None = None
    primary_cluster_id: str | None = None
    dr_cluster_id: str | None = None
    data_key_arns: tuple[str, ...] = ()
    primary_mapping_ids: tuple[str, ...] = ()
    primary_db_subnet_group: str | None = None
    primary_db_parameter_group: str | None = None
    kms_key_arns: tuple[str, ...] = ()
    lock_table_key_arn: str | None = None
    marker_function: str | None = None
    global_table: str | None = None
    primary_bucket: str | None = None
    dr_bucket: str | None = None
    application: str | None = None
    environment: str | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunbookTargets:
        """From the ``runbook`` output (``lambdas/failover/context.py`` keys, plus ``notifyKeyArn`` and
        ``dataKeyArns``); the account is the alert topic's. Raises KeyError naming a missing key."""
        return cls(  # a list given as a string would name one resource per character: ValueError
            account=account_of(str(context["notifyTopicArn"])),
            primary_region=str(context["primaryRegion"]),
            dr_region=str(context["drRegion"]),
            database_mode=str(context["databaseMode"]),
            primary_asg=str(context["primaryAsgName"]),
            dr_asg=str(context["drAsgName"]),
            primary_functions=_strings(context, "primaryFunctionNames"),
            dr_functions=_strings(context, "drFunctionNames"),
            dr_mapping_ids=_strings(context, "drEventSourceMappingIds"),
            primary_mapping_ids=_strings(context, "primaryEventSourceMappingIds"),
            latch_parameter=str(context["latchParameterName"]),
            lock_table=str(context["lockTableName"]),
            notify_topic_arn=str(context["notifyTopicArn"]),
            notify_key_arn=str(context["notifyKeyArn"]),
            switch_namespace=str(context["switchMetric"]["namespace"]),
            primary_db_instance_id=context.get("primaryDbInstanceId"),
            dr_db_instance_id=context.get("drDbInstanceId"),
            global_cluster_id=context.get("globalClusterId"),
            primary_cluster_id=context.get("primaryClusterId"),
            dr_cluster_id=context.get("drClusterId"),
            data_key_arns=_strings(context, "dataKeyArns"),
            primary_db_subnet_group=context.get("primaryDbSubnetGroupName"),
            primary_db_parameter_group=context.get("primaryDbParameterGroupName"),
            lock_table_key_arn=context.get("lockTableKeyArn"),
            # The deployment's tags, which the databases the runbook creates may carry only with the
            # deployment's own values (review breakiam22b BI22b-6).
            application=context.get("appName"),
            environment=context.get("environment"),
            # rds-replica: each region's ledger marker function, the commit after a drain that the
            # RDS for PostgreSQL zero-lag proof needs (lambdas/failover/lossless.py, replay_evidence).
            marker_function=ledger_marker_function_name(f"{context['appName']}-{context['environment']}")
            if context["databaseMode"] == "rds-replica"
            else None,
            # The payments global table: the global table's wait writes and reads its drain marker
            # (lambdas/failover/lossless.py table_marker_latency).
            global_table=context.get("globalTableName"),
            # The receipts buckets: the preflight reads each one's replication rule (read-only).
            primary_bucket=context.get("primaryBucketName"),
            dr_bucket=context.get("drBucketName"),
            # Every key the outputs name, for the preflight's DescribeKey (one per key, read-only).
            kms_key_arns=tuple(
                dict.fromkeys(
                    [
                        *[
                            str(context[k])
                            for k in ("notifyKeyArn", "primaryKmsKeyArn", "drKmsKeyArn")
                            if context.get(k)
                        ],
                        *_strings(context, "dataKeyArns"),
                    ]
                )
            ),
        )


def _strings(context: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """``context[key]``, a list of strings (absent: none). Raises ValueError for anything else."""
    value = context.get(key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings, not {value!r}")
    return tuple(value)


def account_of(arn: str) -> str:
    """The account id field of an ARN."""
    parts = arn.split(":")
    if len(parts) < 6:
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[4]


def asg_arn(region: str, account: str, name: str) -> str:
    """An Auto Scaling group's ARN, whatever its id (the id is only known after creation)."""
    return f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"


DYNAMODB_KEY_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
)
"""What a caller of DynamoDB item calls on a table encrypted with a customer-managed key must be allowed on
that key, through DynamoDB (kms:ViaService): DynamoDB uses the key on the caller's behalf
(https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-authz; CreateGrant is
for the table's creator). The runbook's lock table and the payments function's table both need it."""


def function_arn(region: str, account: str, name: str) -> str:
    """A Lambda function's ARN."""
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def parameter_arn(region: str, account: str, name: str) -> str:
    """An SSM parameter's ARN (a leading ``/`` of the name is not repeated)."""
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def table_arn(region: str, account: str, name: str) -> str:
    """A DynamoDB table's ARN."""
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def rds_arn(region: str, account: str, kind: str, ident: str) -> str:
    """An RDS ARN: ``db``, ``cluster``, ``subgrp``, ``og``, ``pg``; ``global-cluster`` has no region."""
    return f"arn:aws:rds:{'' if kind == 'global-cluster' else region}:{account}:{kind}:{ident}"


def _in(*regions: str) -> dict[str, Any]:
    return {"StringEquals": {"aws:RequestedRegion": list(regions)}}


def runbook_statements(t: RunbookTargets) -> list[dict[str, Any]]:
    """Every permission both runbooks need, each on the resources it acts on."""
    a, b, acct = t.primary_region, t.dr_region, t.account
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DescribeWebTiers",
            "Effect": "Allow",
            "Action": "autoscaling:DescribeAutoScalingGroups",
            "Resource": "*",
            "Condition": _in(a, b),
        },
        {
            # ``latch switch-writer``'s proof, already written: whether region B's web tier launched since
            # its drain (lambdas/failover/region_b_quiet.py; break30 B30-1). Its invocations are read with
            # GetMetricData (ReadMetrics).
            "Sid": "ReadWebTierActivities",
            "Effect": "Allow",
            "Action": "autoscaling:DescribeScalingActivities",
            "Resource": "*",
            "Condition": _in(b),
        },
        {
            "Sid": "SizeWebTiers",
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": [asg_arn(a, acct, t.primary_asg), asg_arn(b, acct, t.dr_asg)],
        },
        {
            "Sid": "ThrottleAndReleaseFunctions",
            "Effect": "Allow",
            "Action": [
                "lambda:GetFunctionConcurrency",
                "lambda:PutFunctionConcurrency",
                "lambda:DeleteFunctionConcurrency",
            ],
            "Resource": [function_arn(a, acct, f) for f in t.primary_functions]
            + [function_arn(b, acct, f) for f in t.dr_functions],
        },
        {
            "Sid": "LatchReadWrite",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:PutParameter"],
            # The latch, and the run journal beside it (lambdas/failover/journal.py, _journal_name).
            "Resource": [
                parameter_arn(b, acct, t.latch_parameter),
                parameter_arn(b, acct, f"{t.latch_parameter}-journal"),
            ],
        },
        {
            # The dr stack's failback phase record: a failover under an active latch refuses once the IaC
            # failback moved the writer back (lambdas/failover/fencing.py _refuse_after_iac_writer_move).
            "Sid": "ReadFailbackPhaseRecord",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": parameter_arn(b, acct, phase_record_name(t.latch_parameter)),
        },
        {
            # Single flight: take, read, refresh and give back the one lock item
            # (lambdas/failover/lock.py), in this table only; DescribeTable is the preflight's
            # describe of it before the first change.
            "Sid": "RunbookLock",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": table_arn(b, acct, t.lock_table),
        },
        {
            # The preflight reads the live generation of the outputs (never writes it: the program does).
            "Sid": "ReadOutputsGeneration",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": parameter_arn(b, acct, generation_parameter_name(t.latch_parameter)),
        },
        {
            "Sid": "Notify",
            "Effect": "Allow",
            # GetTopicAttributes: the preflight's describe of the topic before the first change.
            "Action": ["sns:Publish", "sns:GetTopicAttributes"],
            "Resource": t.notify_topic_arn,
        },
        {
            # Publishing to an encrypted topic takes a data key of the topic's key
            # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
            "Sid": "NotifyEncryptedTopic",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": t.notify_key_arn,
        },
        {
            "Sid": "ThrowAndReleaseTheSwitch",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:RequestedRegion": b, "cloudwatch:namespace": t.switch_namespace}
            },
        },
        {
            # The switch's position (B), the replication lag (B; A at failback) and the receipts'
            # pending replications (S3 publishes them in the destination bucket's region).
            "Sid": "ReadMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:GetMetricData",
            "Resource": "*",
            "Condition": _in(a, b),
        },
    ]
    if t.lock_table_key_arn:
        statements.append(
            {
                # The lock table is encrypted with region B's customer-managed key: DynamoDB uses it
                # on behalf of the caller of each item call, so the caller must be allowed to use it
                # through DynamoDB (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-authz:
                # Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey; CreateGrant is for the
                # table's creator). Without it every run stops at take_lock with a KMS AccessDenied.
                "Sid": "RunbookLockKey",
                "Effect": "Allow",
                "Action": list(DYNAMODB_KEY_ACTIONS),
                "Resource": t.lock_table_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"dynamodb.{b}.amazonaws.com"}},
            }
        )
    if t.global_table:
        statements += _drain_marker(t)
    buckets = [b for b in (t.primary_bucket, t.dr_bucket) if b]
    if buckets:
        statements.append(
            {
                # The preflight reads each receipts bucket's replication rule, whose metrics a planned
                # change's wait reads (GetBucketReplication is authorized as
                # s3:GetReplicationConfiguration on the bucket: Service Authorization Reference,
                # list_amazons3.html). Read-only; no object is read or listed.
                "Sid": "DescribeReceiptsReplication",
                "Effect": "Allow",
                "Action": "s3:GetReplicationConfiguration",
                "Resource": [f"arn:aws:s3:::{b}" for b in buckets],
            }
        )
    if t.kms_key_arns:
        statements.append(
            {
                # The preflight's describe of every key the outputs name (read-only, no key material).
                "Sid": "DescribeKeys",
                "Effect": "Allow",
                "Action": "kms:DescribeKey",
                "Resource": list(t.kms_key_arns),
            }
        )
    mappings = [f"arn:aws:lambda:{a}:{acct}:event-source-mapping:{m}" for m in t.primary_mapping_ids]
    mappings += [f"arn:aws:lambda:{b}:{acct}:event-source-mapping:{m}" for m in t.dr_mapping_ids]
    if mappings:
        statements.append(
            {
                "Sid": "EnableAndDisableEventSources",
                "Effect": "Allow",
                "Action": ["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
                "Resource": mappings,
            }
        )
    statements.append(
        {
            # The fence lists region A's mappings by function, so one added outside the program is
            # found too (and refused above: the fence then stops the run instead of leaving it on).
            "Sid": "FindRegionAEventSources",
            "Effect": "Allow",
            "Action": "lambda:ListEventSourceMappings",
            "Resource": "*",
            "Condition": _in(a),
        }
    )
    if t.marker_function:
        statements.append(
            {
                # The commit after a drain that the RDS for PostgreSQL zero-lag proof needs, made
                # on the source (region A at a planned failover, region B at a failback).
                "Sid": "CommitDrainMarkers",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [
                    function_arn(a, acct, t.marker_function),
                    function_arn(b, acct, t.marker_function),
                ],
            }
        )
    if t.database_mode == "rds-replica":
        statements += _rds_replica(t)
    else:
        statements += _aurora_global(t)
    return statements


def _drain_marker(t: RunbookTargets) -> list[dict[str, Any]]:
    """The global table's drain marker: after the drain the runbook writes one item into the sending
    region's replica, reads it (and writes and reads its arrival stamp) in the receiving region's, and
    deletes both once the wait is over, in either direction (failover A to B, failback B to A).

    The replicas are encrypted with their region's customer-managed key (components/storage.py
    ``application_table``): DynamoDB uses it on behalf of the caller of each item call, so the caller
    must be allowed to use it through DynamoDB
    (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-authz). The
    outputs do not name region B's replica key (the primary stack makes it), so the key statement names
    the keys of the two regions by ``kms:ViaService`` (DynamoDB in that region) and by the encryption
    context DynamoDB sends, which names the table ("aws:dynamodb:tableName":
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html#dynamodb-encryption-context;
    ``kms:EncryptionContext:<key>``: https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html):
    no other table's items and no direct use of a key. ``kms:DescribeKey`` carries no encryption
    context and is DynamoDB's at the table's creation, not at an item call: not granted here."""
    a, b, acct = t.primary_region, t.dr_region, t.account
    assert t.global_table is not None
    return [
        {
            # DescribeTable: the preflight's describe of each replica before the first change.
            "Sid": "GlobalTableDrainMarker",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeTable",
                "dynamodb:PutItem",
                "dynamodb:GetItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": [table_arn(a, acct, t.global_table), table_arn(b, acct, t.global_table)],
        },
        *(
            {
                "Sid": f"GlobalTableDrainMarkerKey{side}",
                "Effect": "Allow",
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                ],
                "Resource": f"arn:aws:kms:{region}:{acct}:key/*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"dynamodb.{region}.amazonaws.com",
                        "kms:EncryptionContext:aws:dynamodb:tableName": t.global_table,
                    }
                },
            }
            for side, region in (("A", a), ("B", b))
        ),
    ]


def _defaults(region: str, account: str) -> list[str]:
    # A new instance that names no option or parameter group gets the engine's defaults, and RDS
    # authorizes those too (Amazon RDS User Guide, "Identity-based policy examples":
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples.html).
    return [rds_arn(region, account, "og", "default:*"), rds_arn(region, account, "pg", "default.*")]


def _rds_replica(t: RunbookTargets) -> list[dict[str, Any]]:
    a, b, acct = t.primary_region, t.dr_region, t.account
    if not (t.primary_db_instance_id and t.dr_db_instance_id):
        raise ValueError("rds-replica runbook targets need primaryDbInstanceId and drDbInstanceId")
    primary = rds_arn(a, acct, "db", t.primary_db_instance_id)
    dr = rds_arn(b, acct, "db", t.dr_db_instance_id)
    # Rename to replace: region A's old primary is renamed <primary>-pre-failback-<stamp> and kept, and
    # the failback replica is created (then promoted) under <primary> itself (lambdas/failover/names.py).
    retained = rds_arn(a, acct, "db", retained_instance_pattern(t.primary_db_instance_id))
    # Where the replica runs: region A's old primary's subnet group and parameter group (the program
    # names the subnet group like the instance), and the engine defaults RDS falls back to.
    network = [
        rds_arn(a, acct, "subgrp", t.primary_db_subnet_group or t.primary_db_instance_id),
        *([rds_arn(a, acct, "pg", t.primary_db_parameter_group)] if t.primary_db_parameter_group else []),
    ]
    # The dr stack's failback instance of region B's current generation: the failover reads whether the
    # IaC failback promoted it (lambdas/failover/fencing.py ``_writer_moved_back``), read-only.
    failback = rds_arn(a, acct, "db", current_failback_id(t.primary_db_instance_id, t.dr_db_instance_id))
    statements: list[dict[str, Any]] = [
        {"Sid": "DescribeDatabases", "Effect": "Allow", "Action": "rds:DescribeDBInstances",
         "Resource": [primary, dr, retained, *([failback] if failback != primary else [])]},
        {"Sid": "PromoteReplicas", "Effect": "Allow", "Action": "rds:PromoteReadReplica", "Resource": [dr, primary]},
        {
            # ModifyDBInstance is authorized on the instance (db*, Service Authorization Reference,
            # list_amazonrds.html); the reference does not say whether a rename is also evaluated on
            # the new name, so both are named. No condition key limits it to renames: the statement
            # names only region A's primary and the retained names.
            "Sid": "RenameOldPrimary",
            "Effect": "Allow",
            "Action": "rds:ModifyDBInstance",
            "Resource": [primary, retained],
        },
        {
            # Failback: a replica of region B's writer, created in region A under the primary's name,
            # in the old primary's VPC (CreateDBInstanceReadReplica: db*, og*, pg*, subgrp*).
            "Sid": "CreateFailbackReplica",
            "Effect": "Allow",
            "Action": "rds:CreateDBInstanceReadReplica",
            "Resource": [primary, dr, *_defaults(a, acct), *network],
        },
        {
            # The replica is created with one tag (FAILBACK_STAMP_TAG: which retained instance it
            # replaces, read by the primary stack). "If tags are specified in the create action, RDS
            # performs additional authorization on the rds:AddTagsToResource action"
            # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-grant-permissions-tags-on-create.html):
            # only on the primary's name and only that tag key.
            # With it, the program's tags of the instance it replaces (REQUIRED_TAG_KEYS: the tag Deny
            # fences only tagged resources, review breakiam22 BI22-8).
            "Sid": "TagFailbackReplica",
            "Effect": "Allow",
            "Action": "rds:AddTagsToResource",
            "Resource": primary,
            "Condition": {
                "ForAllValues:StringEquals": {"aws:TagKeys": [FAILBACK_STAMP_TAG, *REQUIRED_TAG_KEYS]},
                **_own_tag_values(t),
            },
        },
    ]  # fmt: skip
    if t.data_key_arns:
        statements.append(
            {
                # An encrypted cross-region replica needs the caller to let RDS use the key.
                "Sid": "FailbackReplicaEncryption",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:DescribeKey"],
                "Resource": list(t.data_key_arns),
                "Condition": {"StringLike": {"kms:ViaService": [f"rds.{r}.amazonaws.com" for r in (a, b)]}},
            }
        )
    return statements


def _aurora_global(t: RunbookTargets) -> list[dict[str, Any]]:
    a, b, acct = t.primary_region, t.dr_region, t.account
    if not (t.global_cluster_id and t.primary_cluster_id and t.dr_cluster_id):
        raise ValueError("aurora-global runbook targets need globalClusterId, primaryClusterId, drClusterId")
    global_cluster = rds_arn(b, acct, "global-cluster", t.global_cluster_id)
    primary = rds_arn(a, acct, "cluster", t.primary_cluster_id)
    dr = rds_arn(b, acct, "cluster", t.dr_cluster_id)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DescribeGlobalDatabase",
            "Effect": "Allow",
            "Action": "rds:DescribeGlobalClusters",
            "Resource": global_cluster,
            "Condition": _in(a, b),
        },
        {"Sid": "DescribeClusters", "Effect": "Allow", "Action": "rds:DescribeDBClusters", "Resource": [primary, dr]},
        {
            # The members of region B's cluster: the program's and the runbook's writer instance.
            "Sid": "DescribeClusterInstances",
            "Effect": "Allow",
            "Action": "rds:DescribeDBInstances",
            "Resource": rds_arn(b, acct, "db", "*"),
        },
        {
            # A headless secondary gets a writer instance, in region B's cluster and its subnet group
            # (named like the cluster, components/dr_data.py). Its name ends in a token drawn at the
            # failover (lambdas/failover/names.py failover_instance_id: a fixed name could be taken
            # first, breakiam22b BI22b-9), so the pattern names the literal prefix and "*" the token.
            "Sid": "AddWriterToHeadlessSecondary",
            "Effect": "Allow",
            "Action": "rds:CreateDBInstance",
            "Resource": [
                rds_arn(b, acct, "db", failover_instance_pattern(t.dr_cluster_id)),
                dr,
                rds_arn(b, acct, "subgrp", t.dr_cluster_id),
                *_defaults(b, acct),
            ],
        },
        {
            # Created with its cluster's program tags (REQUIRED_TAG_KEYS), which RDS authorizes as
            # rds:AddTagsToResource on the new instance
            # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-grant-permissions-tags-on-create.html).
            "Sid": "TagWriterOfHeadlessSecondary",
            "Effect": "Allow",
            "Action": "rds:AddTagsToResource",
            "Resource": rds_arn(b, acct, "db", failover_instance_pattern(t.dr_cluster_id)),
            "Condition": {
                "ForAllValues:StringEquals": {"aws:TagKeys": list(REQUIRED_TAG_KEYS)},
                **_own_tag_values(t),
            },
        },
        {
            "Sid": "MoveTheGlobalWriter",
            "Effect": "Allow",
            "Action": ["rds:FailoverGlobalCluster", "rds:SwitchoverGlobalCluster"],
            "Resource": [global_cluster, primary, dr],
        },
        {
            # Keep Aurora's rds:unplanned-global-failover-* snapshot of region A's old primary as a
            # manual copy (lambdas/failover/fencing.py, keep_unplanned_snapshots).
            "Sid": "FindUnplannedFailoverSnapshots",
            "Effect": "Allow",
            "Action": "rds:DescribeDBClusterSnapshots",
            "Resource": [primary, rds_arn(a, acct, "cluster-snapshot", "*")],
        },
        {
            "Sid": "KeepUnplannedFailoverSnapshots",
            "Effect": "Allow",
            "Action": "rds:CopyDBClusterSnapshot",
            "Resource": [
                rds_arn(a, acct, "cluster-snapshot", f"rds:unplanned-global-failover-{t.primary_cluster_id}-*"),
                # the copy: kept_snapshot_id may cut a long cluster name and append a hash
                rds_arn(a, acct, "cluster-snapshot", kept_snapshot_pattern(str(t.primary_cluster_id))),
            ],
        },
        {
            # CopyTags=True tags the copy with the source's tags (the clusters copy theirs to their
            # snapshots): rds:AddTagsToResource is the copy's dependent action (Service Authorization
            # Reference, list_amazonrds.html), on the copy only.
            "Sid": "TagKeptSnapshots",
            "Effect": "Allow",
            "Action": "rds:AddTagsToResource",
            "Resource": rds_arn(a, acct, "cluster-snapshot", kept_snapshot_pattern(str(t.primary_cluster_id))),
        },
    ]  # fmt: skip
    if _keys_in(t.data_key_arns, a):
        statements.append(
            {
                # Copying an encrypted snapshot lets RDS use its key on the caller's behalf
                # (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-copy-snapshot.html).
                "Sid": "KeepEncryptedSnapshots",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:DescribeKey"],
                # the copy is made in region A, under region A's key (a key is used in its own region)
                "Resource": _keys_in(t.data_key_arns, a),
                "Condition": {"StringLike": {"kms:ViaService": f"rds.{a}.amazonaws.com"}},
            }
        )
    statements += _headless_writer_key(t)
    return statements


def _keys_in(keys: tuple[str, ...], region: str) -> list[str]:
    """The KMS keys of ``keys`` in ``region`` (the region field of their ARNs)."""
    return [k for k in keys if k.split(":")[3:4] == [region]]


def _headless_writer_key(t: RunbookTargets) -> list[dict[str, Any]]:
    """Region B's data key, for the writer instance the failover adds to region B's (headless, encrypted)
    cluster (AddWriterToHeadlessSecondary; review breakiam24 BI24-4).

    "To create an Aurora resource using a customer managed key, a user must have permissions to call
    the following operations on the customer managed key: kms:CreateGrant, kms:DescribeKey"; RDS acts
    on the creator's behalf, so ``kms:ViaService`` names RDS in region B, where the key and the cluster
    are (Aurora User Guide, "Authorizing use of a customer managed key":
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html; both are
    dependent actions of ``rds:CreateDBInstance``, list_amazonrds.html). The grant is one RDS makes for
    the instance: ``kms:GrantIsForAWSResource`` is true exactly then, and is defined for CreateGrant
    only (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource),
    so DescribeKey has its own statement. Only region B's key: a key is used in its own region."""
    b = t.dr_region
    keys = _keys_in(t.data_key_arns, b)
    if not keys:
        return []
    via = {"kms:ViaService": f"rds.{b}.amazonaws.com"}
    return [
        {
            "Sid": "HeadlessWriterKeyGrant",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": keys,
            "Condition": {"StringEquals": via, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        {
            "Sid": "HeadlessWriterKeyDescribe",
            "Effect": "Allow",
            "Action": "kms:DescribeKey",
            "Resource": keys,
            "Condition": {"StringEquals": via},
        },
    ]
