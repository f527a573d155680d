"""Physical names: the one helper every component names AWS resources with, and AWS's limits.

:func:`physical_name` joins parts with hyphens and, only when the result is longer than the
resource type's limit, cuts it and appends a short hash of the whole name
(:func:`lambdas.failover.names.fit`). A name that fits is never changed, so existing stacks keep
their names; two long names that differ only at the end stay different.

:data:`LIMITS` is the table of documented limits, one row per resource type and input that carries
a physical name, each citing its AWS page. :func:`name_problems` checks recorded resources against
it (the tests run it on the longest configuration the config accepts). botocore's input shapes are
no substitute: many accept an ARN where a name goes, or set no maximum at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lambdas.failover.names import (  # noqa: F401 (the generation helpers are re-exported)
    FAILBACK_RESERVE,
    GENERATION_MARK,
    RDS_IDENTIFIER_MAX,
    fit,
    generation_identifier,
    generation_of,
)

COMPUTED = "\u29d7"  # automation.synth's marker of values only known after deploy (kept in step by a test)
AUTONAME_SUFFIX = 8
"""Pulumi's auto-naming appends ``-`` and 7 random characters to the logical name."""
S3_PREFIX_SUFFIX = 26
"""The provider appends 26 characters to ``bucket_prefix`` (pulumi-aws ``aws.s3.Bucket``)."""


class Scope(StrEnum):
    """Where a physical name must be unique, which decides what two deployments may share."""

    REGION = "region"
    """Unique per account and region (most names)."""
    ACCOUNT = "account"
    """Unique per account across regions (IAM, global clusters, dashboards)."""
    GLOBAL = "global"
    """Unique across all AWS accounts (S3 buckets)."""


@dataclass(frozen=True)
class NameLimit:
    """AWS's documented limit on one name-carrying input of one resource type.

    Attributes:
        max_length: the longest name AWS accepts (None: no documented maximum).
        source: the AWS page stating it.
        scope: where the name must be unique.
        pattern: the characters AWS allows, when narrower than "anything printable".
        auto_named: the program leaves the name to Pulumi's auto-naming (logical name + 8).
        unique: AWS refuses a second resource with the name (False: duplicates are allowed).
    """

    max_length: int | None
    source: str
    scope: Scope = Scope.REGION
    pattern: str | None = None
    auto_named: bool = False
    unique: bool = True


_RDS_ID = r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]$"
_RDS_API = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference"

LIMITS: dict[tuple[str, str], NameLimit] = {
    ("aws:lambda/function:Function", "name"): NameLimit(
        64,
        "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (FunctionName: a name "
        "alone is limited to 64 characters)",
        pattern=r"^[a-zA-Z0-9-_]+$",
    ),
    ("aws:cloudwatch/logGroup:LogGroup", "name"): NameLimit(
        512, "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html"
    ),
    ("aws:lb/loadBalancer:LoadBalancer", "name"): NameLimit(
        32,
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html",
        auto_named=True,
    ),
    ("aws:lb/targetGroup:TargetGroup", "name"): NameLimit(
        32,
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html",
        auto_named=True,
    ),
    ("aws:rds/instance:Instance", "identifier"): NameLimit(
        RDS_IDENTIFIER_MAX, f"{_RDS_API}/API_CreateDBInstance.html", pattern=_RDS_ID
    ),
    ("aws:rds/clusterInstance:ClusterInstance", "identifier"): NameLimit(
        RDS_IDENTIFIER_MAX, f"{_RDS_API}/API_CreateDBInstance.html", pattern=_RDS_ID
    ),
    ("aws:rds/cluster:Cluster", "clusterIdentifier"): NameLimit(
        63, f"{_RDS_API}/API_CreateDBCluster.html", pattern=_RDS_ID
    ),
    ("aws:rds/globalCluster:GlobalCluster", "globalClusterIdentifier"): NameLimit(
        63, f"{_RDS_API}/API_CreateGlobalCluster.html", scope=Scope.ACCOUNT, pattern=_RDS_ID
    ),
    ("aws:rds/cluster:Cluster", "finalSnapshotIdentifier"): NameLimit(
        255, f"{_RDS_API}/API_DeleteDBCluster.html (FinalDBSnapshotIdentifier)", pattern=_RDS_ID
    ),
    ("aws:rds/instance:Instance", "finalSnapshotIdentifier"): NameLimit(
        255, f"{_RDS_API}/API_DeleteDBInstance.html (FinalDBSnapshotIdentifier)", pattern=_RDS_ID
    ),
    ("aws:rds/subnetGroup:SubnetGroup", "name"): NameLimit(255, f"{_RDS_API}/API_CreateDBSubnetGroup.html"),
    ("aws:rds/parameterGroup:ParameterGroup", "name"): NameLimit(
        255, f"{_RDS_API}/API_CreateDBParameterGroup.html", pattern=_RDS_ID
    ),
    ("aws:rds/clusterParameterGroup:ClusterParameterGroup", "name"): NameLimit(
        255, f"{_RDS_API}/API_CreateDBClusterParameterGroup.html", pattern=_RDS_ID
    ),
    ("aws:backup/vault:Vault", "name"): NameLimit(
        50,
        "https://docs.aws.amazon.com/aws-backup/latest/devguide/API_CreateBackupVault.html "
        "(pattern ^[a-zA-Z0-9\\-\\_]{2,50}$)",
        pattern=r"^[a-zA-Z0-9\-_]{2,50}$",
    ),
    ("aws:backup/plan:Plan", "name"): NameLimit(
        50,
        "https://docs.aws.amazon.com/aws-backup/latest/devguide/API_BackupPlanInput.html (BackupPlanName)",
        auto_named=True,
    ),
    ("aws:backup/selection:Selection", "name"): NameLimit(
        50,
        "https://docs.aws.amazon.com/aws-backup/latest/devguide/API_BackupSelection.html (SelectionName)",
        unique=False,
    ),
    ("aws:sns/topic:Topic", "name"): NameLimit(
        256, "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html", pattern=r"^[a-zA-Z0-9_-]+$"
    ),
    ("aws:sqs/queue:Queue", "name"): NameLimit(
        80,
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html",
        auto_named=True,
    ),
    ("aws:iam/role:Role", "name"): NameLimit(
        64,
        "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html",
        scope=Scope.ACCOUNT,
        auto_named=True,
    ),
    ("aws:iam/policy:Policy", "name"): NameLimit(
        128, "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html", scope=Scope.ACCOUNT
    ),
    ("aws:iam/instanceProfile:InstanceProfile", "name"): NameLimit(
        128,
        "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateInstanceProfile.html",
        scope=Scope.ACCOUNT,
        auto_named=True,
    ),
    ("aws:iam/rolePolicy:RolePolicy", "name"): NameLimit(
        128,
        "https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html",
        auto_named=True,
        unique=False,  # unique per role only
    ),
    # The limit counts the whole ARN: "the maximum length for a parameter name, including the full
    # length of the parameter ARN, is 1011 characters" (measured on the ARN, see ``ARN_MEASURED``).
    ("aws:ssm/parameter:Parameter", "name"): NameLimit(
        1011, "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html"
    ),
    ("aws:s3/bucket:Bucket", "bucketPrefix"): NameLimit(
        63,
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (3-63 characters; "
        "the prefix gets 26 more)",
        scope=Scope.GLOBAL,
    ),
    ("aws:dynamodb/table:Table", "name"): NameLimit(
        255, "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html"
    ),
    ("aws:sfn/stateMachine:StateMachine", "name"): NameLimit(
        80, "https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html"
    ),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "name"): NameLimit(
        255, "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html"
    ),
    ("aws:cloudwatch/dashboard:Dashboard", "dashboardName"): NameLimit(
        255,
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html",
        scope=Scope.ACCOUNT,
    ),
    ("aws:cloudwatch/eventRule:EventRule", "name"): NameLimit(
        64, "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html", auto_named=True
    ),
    ("aws:kms/alias:Alias", "name"): NameLimit(
        256, "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html"
    ),
    ("aws:secretsmanager/secret:Secret", "name"): NameLimit(
        512, "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html"
    ),
    ("aws:ec2/amiCopy:AmiCopy", "name"): NameLimit(
        128, "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html (Name: 3-128)"
    ),
    ("aws:autoscaling/group:Group", "name"): NameLimit(
        255,
        "https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html",
        auto_named=True,
    ),
    ("aws:ec2/launchTemplate:LaunchTemplate", "name"): NameLimit(
        128,
        "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html",
        auto_named=True,
    ),
    # No documented maximum, and duplicates are allowed; but CloudWatch's ApiName dimension is this
    # name, so two deployments' alarms would watch each other's APIs unless it is theirs alone.
    ("aws:apigateway/restApi:RestApi", "name"): NameLimit(
        None, "https://docs.aws.amazon.com/apigateway/latest/api/API_CreateRestApi.html"
    ),
    # DNS: a name is at most 255 octets on the wire, 253 characters written out (RFC 1035 2.3.4;
    # https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DomainNameFormat.html).
    ("aws:route53/record:Record", "name"): NameLimit(
        253, "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DomainNameFormat.html", unique=False
    ),
    ("aws:apigateway/domainName:DomainName", "domainName"): NameLimit(
        253, "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DomainNameFormat.html"
    ),
    ("aws:route53/record:Record", "setIdentifier"): NameLimit(
        128,
        "https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html (SetIdentifier)",
        unique=False,
    ),
}

ARN_MEASURED = frozenset({"aws:ssm/parameter:Parameter"})
"""Types whose limit counts the whole ARN rather than the name."""


def physical_name(*parts: str, limit: int) -> str:
    """``<part>-<part>...`` lower-cased, without doubled hyphens, cut with a hash to ``limit``.

    Hyphens are collapsed because RDS refuses ``--``; parts are joined in order, so put what keeps
    deployments apart (app, environment) first and what keeps a deployment's resources apart last.
    """
    joined = "-".join(p.strip("-") for p in parts if p)
    return fit(re.sub(r"-{2,}", "-", joined.lower()), limit)


def limit_of(type_: str, key: str) -> int:
    """The documented maximum length of ``key`` on ``type_`` (KeyError when there is none)."""
    max_length = LIMITS[(type_, key)].max_length
    if max_length is None:
        raise KeyError(f"{type_}.{key} has no documented maximum length")
    return max_length


def regional_api_name(region: str, domain: str) -> str:
    """A region's own API name under the custom domain: ``api-<region>.<domain>``.

    Route 53, the canary and the runbook must reach one region's API, not whichever ``api.<domain>``
    resolves to; with custom domains the ``execute-api`` endpoint is off, so each region gets this
    name too (the certificates must cover it, e.g. ``*.<domain>``).
    """
    return f"api-{region}.{domain}"


def db_instance_identifier(prefix: str, region: str, kind: str) -> str:
    """A region-A/B DB instance identifier leaving room for the runbook's failback suffix."""
    return physical_name(prefix, region, kind, limit=RDS_IDENTIFIER_MAX - FAILBACK_RESERVE)


@dataclass(frozen=True)
class NamedResource:
    """A physical name as a resource of the stack carries it."""

    type: str
    key: str
    logical: str
    name: str
    region: str | None
    arn: str | None = None
    random_suffix: bool = False
    """AWS or Pulumi appends random characters (auto-names, bucket prefixes): never collides."""

    @property
    def limit(self) -> NameLimit:
        """Its row in :data:`LIMITS`."""
        return LIMITS[(self.type, self.key)]

    def scope_key(self) -> tuple[str, str, str | None, str]:
        """What must differ between two resources AWS would otherwise refuse or confuse."""
        scope = self.limit.scope
        return (self.type, self.key, self.region if scope == Scope.REGION else None, self.name)


def physical_names(
    type_: str, logical: str, inputs: Mapping[str, Any], region: str | None, arn: str | None = None
) -> list[NamedResource]:
    """Every physical name a resource carries, as AWS will see it (auto-names at their longest)."""
    out: list[NamedResource] = []
    for (t, key), limit in LIMITS.items():
        if t != type_:
            continue
        value = inputs.get(key)
        random = False
        if isinstance(value, str) and value and COMPUTED not in value:
            random = key == "bucketPrefix"
            name = value + "x" * S3_PREFIX_SUFFIX if random else value
        elif limit.auto_named and key not in inputs:
            name, random = f"{logical}-{'x' * (AUTONAME_SUFFIX - 1)}", True
        else:
            continue
        out.append(NamedResource(type_, key, logical, name, region, arn, random))
    return out


def name_problems(names: Iterable[NamedResource]) -> list[str]:
    """Each name longer than its type's limit or outside its allowed characters, one line each."""
    problems: list[str] = []
    for n in names:
        limit = n.limit
        measured = n.arn if n.type in ARN_MEASURED and n.arn else n.name
        if limit.max_length is not None and len(measured) > limit.max_length:
            problems.append(
                f"{n.type} {n.logical}: {n.key} {n.name!r} has {len(measured)} characters; AWS allows "
                f"{limit.max_length} ({limit.source})"
            )
        if limit.pattern is not None and n.key != "bucketPrefix" and not re.match(limit.pattern, n.name):
            problems.append(f"{n.type} {n.logical}: {n.key} {n.name!r} breaks AWS's rule {limit.pattern}")
    return problems
