"""``python -m automation iam --for boundary``: the permissions boundary of one deployment's roles.

Review brk12, F1: a deployer may write its environment's roles' policies (the program does, on every
``pulumi up``) and replace its functions' code, so it can act as any of those roles; with
``PutRolePolicy "*"`` that was administrator. A permissions boundary caps a role: its effective
permissions are what both its identity policies and its boundary allow
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html, "Evaluating
effective permissions with boundaries"). Every role the program creates carries this one
(components.iam.with_permissions_boundary) and the deploy policy creates or writes no role without it
(automation/iam.py, ``_roles_within_the_boundary``).

Why a boundary and not only narrower role writes: IAM has no condition on the content of an inline
policy or of a trust policy, and the program must write both (its roles' statements change with the
configuration; the provider calls ``PutRolePolicy`` and ``UpdateAssumeRolePolicy`` in place). What it
can condition is the boundary the role carries (``iam:PermissionsBoundary``), which is AWS's
documented pattern for delegated role creation (same page, "Delegating responsibility to others
using permissions boundaries").

The boundary allows (its Allow statements):

- the actions the program's roles are granted on ``"*"`` (AWS defines no resource type for them),
  on ``"*"``; PutMetricData only into the deployment's own namespaces (:data:`OWN_NAMESPACES`);
- the other actions of the roles' inline policies, on the union of the resources those policies
  name: any region, the deployment's names as ``<app>-<env>-*`` (and ``<app>/<env>/*``), buckets by
  the program's prefix, queues and log groups by their names; what only a deployment knows (a key's
  id) as ``*``, fenced by the tag Deny;
- what the AWS managed policies the program attaches grant, for what the program uses them for
  (:data:`MANAGED_POLICY_ACTIONS`), on ``"*"`` (DynamoDB's on the program's tables and their
  backups, :data:`ON_THE_PROGRAMS_TABLES`).

and it denies (Deny statements): every action on a resource tagged as another deployment's (the
same Deny as the deploy policy, automation/iam.py ``other_deployments_denied``) and every IAM and
STS action (the program's roles create, change and assume no identity). It must fit one managed
policy (6,144 characters: IAM quotas), so it names no statement's conditions but one (PutMetricData's
namespace, :data:`OWN_NAMESPACES`: without it a role could write another environment's failover switch):
it is a ceiling, the roles' own policies stay the exact grant.

The program never creates or changes the boundary: a deployer who could would write ``"*"`` into it.
An administrator creates it once per environment, and again when a new version of the program
grants its roles something new (the boundary would cap it: the test
``tests/automation/test_review_iam_escalation.py`` says which role statements the boundary must cover).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from automation import iam, synth
from lambdas.failover.names import health_namespace, switch_namespace

MANAGED_POLICY_ACTIONS: dict[str, tuple[str, ...]] = {
    # AmazonSSMManagedInstanceCore, v2 (unchanged since 2019), all of it, on "*":
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonSSMManagedInstanceCore.html
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore": (
        "ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument",
        "ssm:DescribeDocument", "ssm:GetManifest", "ssm:GetParameter", "ssm:GetParameters",
        "ssm:ListAssociations", "ssm:ListInstanceAssociations", "ssm:PutInventory", "ssm:PutComplianceItems",
        "ssm:PutConfigurePackageResult", "ssm:UpdateAssociationStatus", "ssm:UpdateInstanceAssociationStatus",
        "ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage", "ec2messages:FailMessage", "ec2messages:GetEndpoint",
        "ec2messages:GetMessages", "ec2messages:SendReply",
    ),
    # AWSBackupServiceRolePolicyForBackup: the statements for what the program backs up (the Aurora
    # or RDS database and the DynamoDB table, components/storage.py ``Backup``), copied cross-region
    # into a vault under a customer-managed key; AWS's guidance for a narrower Backup role is to "start
    # with" its DynamoDB, RDS, GetResources, BackupVault and KMS statements
    # (https://docs.aws.amazon.com/aws-backup/latest/devguide/security-iam-awsmanpol.html, "Customer
    # managed policies"; the policy itself:
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSBackupServiceRolePolicyForBackup.html).
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup": (
        "dynamodb:DescribeTable", "dynamodb:CreateBackup", "dynamodb:DescribeBackup", "dynamodb:DeleteBackup",
        "dynamodb:ListTagsOfResource", "dynamodb:StartAwsBackupJob",
        "rds:AddTagsToResource", "rds:ListTagsForResource", "rds:DescribeDBSnapshots", "rds:CreateDBSnapshot",
        "rds:CopyDBSnapshot", "rds:DescribeDBInstances", "rds:CreateDBClusterSnapshot", "rds:DescribeDBClusters",
        "rds:DescribeDBClusterSnapshots", "rds:CopyDBClusterSnapshot", "rds:DescribeDBClusterAutomatedBackups",
        "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot",
        "rds:ModifyDBCluster", "rds:ModifyDBInstance",
        "tag:GetResources", "backup:DescribeBackupVault", "backup:CopyIntoBackupVault",
        "kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
        "kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:RetireGrant",
    ),
    # AWSBackupServiceRolePolicyForRestores, for the same two stores: a database restores from its
    # snapshot, a table from its backup
    # (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSBackupServiceRolePolicyForRestores.html).
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores": (
        "rds:RestoreDBClusterFromSnapshot", "rds:RestoreDBInstanceFromDBSnapshot", "rds:CreateDBInstance",
        "rds:DescribeDBClusters", "rds:DescribeDBInstances", "rds:AddTagsToResource",
        "dynamodb:RestoreTableFromBackup", "dynamodb:RestoreTableFromAwsBackup", "dynamodb:DescribeTable",
        "kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey",
    ),
}  # fmt: skip
"""What the boundary lets the AWS managed policies the program attaches do: each policy's statements
for the program's use of it. A Backup job on another resource type, or an action AWS adds to the
policy later, is capped by the boundary until it is listed here (and the boundary updated)."""

ON_THE_PROGRAMS_TABLES = "dynamodb"
"""The managed policies' DynamoDB actions are allowed on the program's tables and their backups only
(``table/<name>`` and ``table/<name>/backup/*``): a DynamoDB backup's resource type defines no
``aws:ResourceTag`` (Service Authorization Reference, list_amazondynamodb.html), so the tag Deny
could not keep a role from deleting, or restoring into a table of its own, another deployment's
backups; its ARN carries the table's name, which can."""

IDENTITY_SERVICES = ("iam", "sts")
"""The program's roles create, change and assume no identity: a boundary that denied neither would let a
role given ``iam:*`` create an unbounded one."""


OWN_NAMESPACES = "cloudwatch:PutMetricData"
"""The one action on ``"*"`` the boundary fences by a condition: PutMetricData has no resource type and
its one condition key is ``cloudwatch:namespace`` (Service Authorization Reference, CloudWatch:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html; AWS's
example: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
The failover switch and ``PrimaryHealthy`` move production's traffic; each deployment writes them in
namespaces of its own (lambdas/failover/names.py), and the boundary allows only those: a deployer who
rewrites one of its roles' policies, or runs its own code as the runbook or canary, cannot write
another environment's."""


def own_namespaces(app: str, environment: str) -> list[str]:
    """The CloudWatch namespaces the deployment's roles may write: its health metrics and its switch."""
    prefix = f"{app}-{environment}"
    return [health_namespace(prefix), switch_namespace(prefix)]


def _statement_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def role_statements(syntheses: Iterable[synth.Synthesis]) -> list[dict[str, Any]]:
    """Every statement of every inline policy the stacks give their roles (``aws.iam.RolePolicy``), as
    written, values only a deployment knows still marked :data:`synth.COMPUTED`."""
    out: list[dict[str, Any]] = []
    for s in syntheses:
        for r in s.by_type("aws:iam/rolePolicy:RolePolicy"):
            out.extend(json.loads(r.inputs["policy"])["Statement"])
    return out


NAMED_IN_ARN = frozenset({"aws:sqs/queue:Queue", "aws:cloudwatch/logGroup:LogGroup"})
"""Types whose ARN ends in the resource's name: a role statement naming one by its ARN (known only once
created) names it in the boundary by that name (or, auto-named, ``<logical>-*``) instead of ``*``, so
the boundary reaches no queue or log group of another application that carries no tags."""


def arn_names(syntheses: Iterable[synth.Synthesis]) -> dict[str, str]:
    """Logical name -> the name in its ARN, for the stacks' resources of :data:`NAMED_IN_ARN`."""
    return {
        r.name: str(r.inputs.get("name") or f"{r.name}-*")
        for s in syntheses
        for r in s.aws_resources()
        if r.type in NAMED_IN_ARN
    }


def _generalized(
    arn: str, regions: Sequence[str], buckets: Sequence[str], names: Mapping[str, str] | None = None
) -> list[str]:
    """A role statement's resource as the boundary names it: any region (the program's names carry the
    deployment; a region-free ARN stays so), a bucket only known once created by the program's
    bucket prefixes, a queue or log group by its name (``names``, :func:`arn_names`), anything else
    only a deployment knows as ``*``."""
    match = re.fullmatch(rf"arn:aws:s3:::{synth.COMPUTED}[^/]*(/.*)?", arn)
    if match:
        return [f"{b}{match.group(1) or ''}" for b in buckets]
    arn = re.sub(
        rf"{synth.COMPUTED}([^:/\".]+)(?=$|:)", lambda m: (names or {}).get(m.group(1), m.group(0)), arn
    )
    arn = iam._offline(arn)
    for region in regions:
        arn = arn.replace(f":{region}:", ":*:")
    return [arn]


def _deployment_wide(pattern: str, app: str, environment: str) -> str:
    """``pattern`` with a name that starts with the deployment's prefix (``<app>-<env>-...``, or the
    path form ``<app>/<env>/...`` of secrets and parameters) widened to every such name: every
    function, table, log group... of this deployment, none of another (an environment has no hyphen,
    components/config.py, so ``<app>-<env>-`` starts no other environment's names). Keeps the
    boundary one managed policy for the longest accepted names; the roles' own policies name each."""
    for head in (f"{app}-{environment}-", f"{app}/{environment}/"):
        pattern = re.sub(rf"(?<=[:/]){re.escape(head)}[^:]*", f"{head}*", pattern)
    return pattern


def _resource_pattern(pattern: str) -> re.Pattern[str]:
    """IAM's reading of a Resource ARN with wildcards: ``?`` one character, ``*`` any within its
    colon-separated segment, and, "if the * wildcard is the last character of a resource ARN segment,
    it can expand to match beyond colon boundaries"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html,
    "Using wildcards in resource ARNs")."""
    out = []
    for i, char in enumerate(pattern):
        if char == "*":
            last = i + 1 == len(pattern) or pattern[i + 1] == ":"
            out.append(".*" if last else "[^:]*")
        elif char == "?":
            out.append("[^:]")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out) + "$")


def _without_subsumed(patterns: Iterable[str]) -> list[str]:
    """``patterns`` without those another one already covers (IAM's matching, :func:`_resource_pattern`,
    applied to the covered pattern as text): the same resources, fewer characters."""
    unique = sorted(set(patterns))
    return [p for p in unique if not any(q != p and _resource_pattern(q).match(p) for q in unique)]


def _tag_denies(syntheses: Sequence[synth.Synthesis], services: set[str]) -> list[dict[str, Any]]:
    """The deploy policy's Deny of other deployments' tagged resources, for the services the boundary
    allows at all (a Deny of what no Allow grants changes nothing and costs characters)."""
    out = []
    for statement in iam.other_deployments_denied(iam.deployment_tags(syntheses)):
        actions = [a for a in statement["Action"] if a.split(":", 1)[0] in services]
        out.append({**statement, "Action": actions})
    return out


SWITCHED_LATER: tuple[Mapping[str, Any], ...] = (
    {"dr:autoFailover": True},
    {"dr:active": True, "dr:autoFailover": True},
)
"""The dr stack's switches an operator turns without re-creating the environment, each at the value
that gives the roles the most (``dr:autoFailover`` adds the EventBridge role's ``states:StartExecution``;
``dr:active`` lights region B): the boundary is made from the stack under each, so turning one later
needs no new boundary (review breakiam21, BI21-2: enabling ``dr:autoFailover`` after the boundary was
made left the automated failover implicitly denied at run time). The failback phases change no role
statement (``tests/automation/test_review_iam_escalation.py`` checks every phase against a boundary made
without them). ``database.mode`` and the names are the environment's own: changing them re-creates it."""


def deployment_syntheses(overrides: Mapping[str, Any]) -> list[synth.Synthesis]:
    """The stacks the boundary is made from: the primary under ``overrides`` (``dr:`` keys aside) and the
    dr stack under each of :data:`SWITCHED_LATER` (with the latch the documented procedure leaves)."""
    shared = {k: v for k, v in overrides.items() if not k.startswith("dr:")}
    primary = synth.synthesize("primary", shared)
    out = [primary]
    for switches in SWITCHED_LATER:
        values = {**shared, **switches}
        out.append(
            synth.synthesize(
                "dr", values, latch=synth.procedure_latch(values), primary_outputs=primary.outputs
            )
        )
    return out


def boundary_policy(syntheses: Sequence[synth.Synthesis], account: str) -> dict[str, Any]:
    """The boundary document for the deployment the stacks belong to (see the module docstring)."""
    regions = sorted({r.region for s in syntheses for r in s.aws_resources() if r.region})
    buckets = iam.bucket_resources(syntheses)
    names = arn_names(syntheses)
    tags = iam.deployment_tags(syntheses)
    tables = {
        f"arn:aws:dynamodb:*:{synth.ACCOUNT_ID}:table/{name}{suffix}"
        for name in iam.resource_names(syntheses).get("${TableName}", [])
        for suffix in ("", "/backup/*")
    }
    on_star: set[str] = set()
    on_resources: dict[str, set[str]] = {}
    for statement in role_statements(syntheses):
        if statement["Effect"] != "Allow":
            continue
        actions = _statement_list(statement["Action"])
        resources = _statement_list(statement["Resource"])
        if "*" in resources:
            on_star.update(actions)
            continue
        for action in actions:
            for resource in resources:
                on_resources.setdefault(action, set()).update(_generalized(resource, regions, buckets, names))
    for s in syntheses:
        for r in s.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
            arn = str(r.inputs.get("policyArn"))
            if arn not in MANAGED_POLICY_ACTIONS:
                raise KeyError(
                    f"{r.name} attaches {arn}: add what the program uses it for to MANAGED_POLICY_ACTIONS"
                )
            for action in MANAGED_POLICY_ACTIONS[arn]:
                if action.startswith(f"{ON_THE_PROGRAMS_TABLES}:"):
                    on_resources.setdefault(action, set()).update(tables)
                else:
                    on_star.add(action)
    named = sorted(a for a in on_resources if a not in on_star)
    fenced = [
        {
            "Sid": "RolesOwnMetrics",
            "Effect": "Allow",
            "Action": OWN_NAMESPACES,
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "cloudwatch:namespace": own_namespaces(tags["Application"], tags["Environment"])
                }
            },
        }
    ]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "RolesOnStar",
            "Effect": "Allow",
            "Action": sorted(on_star - {OWN_NAMESPACES}),
            "Resource": "*",
        },
        *(fenced if OWN_NAMESPACES in on_star else []),
        {
            "Sid": "RolesOnTheirResources",
            "Effect": "Allow",
            "Action": named,
            "Resource": _without_subsumed(
                {
                    _deployment_wide(r, tags["Application"], tags["Environment"])
                    for a in named
                    for r in on_resources[a]
                }
            ),
        },
        *_tag_denies(syntheses, {a.split(":", 1)[0] for a in (*on_star, *named)}),
        {
            "Sid": "NoIamNoSts",
            "Effect": "Deny",
            "Action": [f"{service}:*" for service in IDENTITY_SERVICES],
            "Resource": "*",
        },
    ]
    document = {"Version": "2012-10-17", "Statement": statements}
    text = json.dumps(document).replace(synth.ACCOUNT_ID, account)
    return json.loads(text)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def _action_matches(pattern: str, action: str) -> bool:
    """IAM's matching of an Action element: case-insensitive, ``*`` and ``?`` wildcards
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, action.lower()) is not None


def _matches(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    """Whether ``statement`` names ``action`` and every resource ``resource`` names."""
    return any(_action_matches(p, action) for p in _as_list(statement.get("Action"))) and any(
        _resource_pattern(p).match(resource) for p in _as_list(statement.get("Resource"))
    )


def _grants(live: Mapping[str, Any], action: str, resource: str, condition: Any) -> bool:
    """Whether one Allow statement of ``live`` grants ``action`` on every resource ``resource`` names,
    with no condition or ``condition`` itself, and no unconditional Deny of ``live`` takes it back."""
    statements = _as_list_of_statements(live)
    if any(
        s.get("Effect") == "Deny" and not s.get("Condition") and _matches(s, action, resource)
        for s in statements
    ):
        return False
    return any(
        s.get("Effect") == "Allow"
        and s.get("Condition", condition) == condition
        and _matches(s, action, resource)
        for s in statements
    )


def _unfenced(live: Mapping[str, Any], action: str, resource: str, condition: Any) -> bool:
    """Whether ``live`` allows ``action`` on ``resource`` without the ``condition`` the boundary fences it
    with (a boundary made before :data:`OWN_NAMESPACES` allowed PutMetricData into any namespace)."""
    return any(
        s.get("Effect") == "Allow" and s.get("Condition") != condition and _matches(s, action, resource)
        for s in _as_list_of_statements(live)
    )


def _as_list_of_statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def boundary_gaps(required: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """What ``required`` (the boundary this version and configuration need) has that the ``live``
    boundary lacks, one line each: an action on a resource the roles need and the live boundary does not
    allow (it would be implicitly denied at run time, review breakiam21 BI21-2); an action ``required``
    allows only under a condition and the live one allows without it; or a Deny of ``required`` the
    live one does not carry (in both, the boundary would fence less than it should).
    Empty when the live boundary does at least what ``required`` does."""
    gaps: list[str] = []
    live_denies = [s for s in _as_list_of_statements(live) if s.get("Effect") == "Deny"]
    for statement in _as_list_of_statements(required):
        actions, resources = _as_list(statement["Action"]), _as_list(statement["Resource"])
        condition = statement.get("Condition")
        if statement["Effect"] == "Deny":
            if not any(
                set(actions) <= set(_as_list(d.get("Action")))
                and set(resources) <= set(_as_list(d.get("Resource")))
                and d.get("Condition") == condition
                for d in live_denies
            ):
                gaps.append(f"missing Deny {statement.get('Sid', '')}: {', '.join(actions)}".rstrip())
            continue
        for action in actions:
            for resource in resources:
                fence = f" {json.dumps(condition)}" if condition else ""
                if not _grants(live, action, resource, condition):
                    gaps.append(f"not allowed: {action} on {resource}{fence}")
                elif condition and _unfenced(live, action, resource, condition):
                    gaps.append(f"allowed without its condition: {action} on {resource}{fence}")
    return gaps
