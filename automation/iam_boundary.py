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

from automation import iam, iam_eval, synth
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


NOT_WIDENED = ("arn:aws:s3:::", "arn:aws:dynamodb:")
"""Resources the boundary names as the roles' policies do, never widened to ``<app>-<env>-*``: S3
objects (and buckets) and DynamoDB backups define no ``aws:ResourceTag`` (Service Authorization
Reference: list_amazons3.html, list_amazondynamodb.html), so only their names keep one deployment's
roles from another's, and ``<app>-<env>-*`` is also every name of an application called ``<app>-<env>``
(an application's name may have hyphens: review breakiam22 BI22-6, app ``pay`` environment ``eu``
reached app ``pay-eu``'s receipts and table backups). A bucket is named by the program's prefix
``<app>-<env>-<region>-``: no other deployment's bucket starts with it unless an application is named
``<app>-<env>-<region>`` (a region ends in a digit, which no environment starts with)."""


def _deployment_wide(pattern: str, app: str, environment: str) -> str:
    """``pattern`` with a name that starts with the deployment's prefix (``<app>-<env>-...``, or the
    path form ``<app>/<env>/...`` of secrets and parameters) widened to every such name: every
    function, queue, log group... of this deployment (an environment has no hyphen, components/config.py,
    so ``<app>-<env>-`` starts no other environment's names of this application; another application's,
    named ``<app>-<env>``, are fenced by the tag Deny, except those of :data:`NOT_WIDENED`). Keeps the
    boundary one managed policy for the longest accepted names; the roles' own policies name each."""
    if pattern.startswith(NOT_WIDENED):
        return pattern
    for head in (f"{app}-{environment}-", f"{app}/{environment}/"):
        pattern = re.sub(rf"(?<=[:/]){re.escape(head)}[^:]*", f"{head}*", pattern)
    return pattern


def _without_subsumed(patterns: Iterable[str]) -> list[str]:
    """``patterns`` without those another one already covers (IAM's matching, iam_eval.resource_matches,
    applied to the covered pattern as text): the same resources, fewer characters."""
    unique = sorted(set(patterns))
    return [p for p in unique if not any(q != p and iam_eval.resource_matches(q, p) for q in unique)]


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
        out.append(synth.synthesize_as_procedure("dr", values, primary_outputs=primary.outputs))
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


SAMPLE = "pilotlight-check"
"""What a wildcard of a needed resource or action stands for in the requests the check makes."""

OUTSIDE = "pilotlight-check-outside"
"""A condition value no statement of the program names: a request outside a condition's values."""


def _instances(pattern: str) -> str:
    return pattern.replace("*", SAMPLE).replace("?", "x")


def _requests(resource: str, regions: Sequence[str]) -> list[tuple[str, str, str]]:
    """(a resource ARN, the requested region, the pattern in that region) for the requests ``resource``
    names: its wildcards filled in (:data:`SAMPLE`), once per region of the deployment where its region
    is ``*`` or absent (S3). ``"*"`` stays ``"*"``: what AWS authorizes only on ``"*"`` is requested on it."""
    if resource == "*":
        return [("*", region, "*") for region in regions]
    parts = resource.split(":")
    if len(parts) < 6:  # not an ARN: leave it to the evaluator as written
        return [(_instances(resource), region, resource) for region in regions]
    if parts[3] not in ("*", ""):
        return [(_instances(resource), parts[3], resource)]
    out = []
    for region in regions:
        pattern = ":".join([*parts[:3], region if parts[3] == "*" else "", *parts[4:]])
        out.append((_instances(pattern), region, pattern))
    return out


def _denying(
    denies: Sequence[Mapping[str, Any]], action: str, pattern: str, context: Mapping[str, str]
) -> list[str]:
    """The live Denies that may take back ``action`` on some resource ``pattern`` names, in ``context``:
    review breakiam22b BI22b-1, a Deny of ``function:*-runbook`` takes the runbook out of
    ``function:<app>-<env>-*`` although no one sample of the pattern shows it. A Deny whose Resource may
    overlap the pattern (iam_eval.may_overlap; a policy variable there may be anything), or whose
    NotResource does not cover all of it, and whose condition may hold."""
    out = []
    for deny in denies:
        if not iam_eval.names_action(deny, action):
            continue
        element = "NotResource" if "NotResource" in deny else "Resource"
        patterns = [iam_eval.with_variables(p, context) or "*" for p in iam_eval.as_list(deny.get(element))]
        if element == "Resource":
            hit = any(iam_eval.may_overlap(p, pattern) for p in patterns)
        else:
            hit = not any(iam_eval.resource_matches(p, pattern) for p in patterns)
        if hit and iam_eval.condition_holds(deny.get("Condition") or {}, context, known=()) is not False:
            out.append(str(deny.get("Sid") or f"{element} {', '.join(iam_eval.as_list(deny.get(element)))}"))
    return out


def _within(condition: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """One request context per value a needed statement's condition allows (the boundary's conditions
    are ``StringEquals``: :data:`OWN_NAMESPACES`)."""
    contexts: list[dict[str, str]] = [{}]
    for operator, keys in condition.items():
        if operator not in ("StringEquals", "StringLike"):
            raise ValueError(f"the boundary's Allow conditions are StringEquals/StringLike, not {operator}")
        for key, values in keys.items():
            contexts = [{**c, key: _instances(v)} for c in contexts for v in iam_eval.as_list(values)]
    return contexts


def _satisfying(condition: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """A request context under which a needed Deny's condition holds (the tag Deny: another deployment's
    tag; ``NoIamNoSts`` has none)."""
    context: dict[str, str] = {}
    absent: set[str] = set()
    for operator, keys in condition.items():
        for key, values in keys.items():
            first = iam_eval.as_list(values)[0]
            if operator == "Null":
                if first.lower() == "true":
                    absent.add(key)
                else:
                    context.setdefault(key, OUTSIDE)
            elif "Not" in operator:
                context[key] = OUTSIDE
            else:
                context[key] = _instances(first)
    return {k: v for k, v in context.items() if k not in absent}


def deployment_tags_of(boundary: Mapping[str, Any]) -> dict[str, str]:
    """``{tag key: value}`` of the deployment a boundary is for, from its Deny of other deployments."""
    return {
        key.split("/", 1)[1]: str(value)
        for st in iam_eval.statements_of(boundary)
        if st.get("Effect") == "Deny"
        for key, value in (st.get("Condition") or {}).get("StringNotEquals", {}).items()
        if key.startswith("aws:ResourceTag/")
    }


def boundary_gaps(required: Mapping[str, Any], live: Mapping[str, Any], regions: Sequence[str]) -> list[str]:
    """What the ``live`` boundary would answer differently from ``required`` (the one this version and
    configuration need), one line each, by IAM's evaluation (automation/iam_eval.py) of the requests
    ``required`` stands for in the deployment's ``regions``:

    - a request the roles need that the live boundary does not allow, explicitly denies, or may deny
      under a condition the check cannot evaluate (it would fail at run time, in a failover: review
      breakiam21 BI21-2, breakiam22 BI22-1..4);
    - a request ``required`` allows only under a condition that the live one allows outside it (a
      boundary made before :data:`OWN_NAMESPACES` let a role write any namespace);
    - a request ``required`` denies (another deployment's resources, IAM and STS) that the live one
      does not deny.

    The requests carry the deployment's tags, each region, and for each needed statement's condition
    each of its values. Empty when the live boundary answers every one as ``required`` does."""
    tags = deployment_tags_of(required)
    live_statements = iam_eval.statements_of(live)
    live_denies = [st for st in live_statements if st.get("Effect") == "Deny"]
    gaps: dict[str, list[str]] = {}  # the gap -> the regions it is in

    def gap(text: str, region: str) -> None:
        gaps.setdefault(text, []).append(region)

    for statement in iam_eval.statements_of(required):
        condition = statement.get("Condition") or {}
        deny = statement.get("Effect") == "Deny"
        for resource in iam_eval.as_list(statement.get("Resource")):
            for action in iam_eval.as_list(statement.get("Action")):
                asked = _instances(action)
                for arn, region, pattern in _requests(resource, regions):
                    base = {"aws:RequestedRegion": region}
                    if deny:
                        if arn == "*":  # every resource: one of the action's service stands for them
                            arn = f"arn:aws:{action.split(':', 1)[0]}:{region}:000000000000:{SAMPLE}"
                        # The keys the check does not set are vouched absent (known=()): a Deny that
                        # holds only under them is one IAM would not apply either.
                        decision = iam_eval.decide(
                            live_statements, asked, arn, {**base, **_satisfying(condition)}
                        )
                        if decision is not iam_eval.Decision.DENY:
                            gap(
                                f"not denied ({statement.get('Sid', 'Deny')}): {action} on {resource}", region
                            )
                        continue
                    own = {**base, **{f"aws:ResourceTag/{k}": v for k, v in tags.items()}}
                    for request in _within(condition):
                        context = {**own, **request}
                        # A key the check does not set may be in the request with any value (known=()).
                        decision = iam_eval.decide(live_statements, asked, arn, context, known=())
                        extra = f" {json.dumps(request)}" if request else ""
                        if decision is not iam_eval.Decision.ALLOW:
                            gap(f"{decision.value}: {action} on {resource}{extra}", region)
                        elif pattern != "*":
                            for by in _denying(live_denies, asked, pattern, context):
                                gap(f"may be denied (live Deny {by}): {action} on {resource}{extra}", region)
                    outside = {key: OUTSIDE for request in _within(condition) for key in request}
                    if outside and iam_eval.decide(live_statements, asked, arn, {**own, **outside}) is (
                        iam_eval.Decision.ALLOW
                    ):
                        gap(
                            f"allowed without its condition: {action} on {resource} (needs {json.dumps(condition)})",
                            region,
                        )
    return [f"{text} in {', '.join(dict.fromkeys(where))}" for text, where in gaps.items()]
