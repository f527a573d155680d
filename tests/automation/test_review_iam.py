"""The adversarial review of issue 12 ("deployable for real"), its findings as tests (branch break12).

Probes: ``python -m automation iam --for deploy`` against what ``pulumi up`` needs.

Each probe passes once its finding is fixed; a finding still open is a strict expected failure
naming it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any

from automation import iam

ACCOUNT = "123456789012"


@functools.cache
def _deploy(*overrides: str) -> tuple[dict[str, Any], ...]:
    return tuple(iam.policies("deploy", account=ACCOUNT, overrides=list(overrides), outputs=None))


def _list(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _statements(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [s for d in docs for s in d["Statement"]]


def _conditions_hold(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """IAM's condition operators the policies use
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
    StringEquals/StringLike need the key in the request context and one value to match (a key absent
    from the context fails them); StringNotEquals holds when no value matches, and when the key is
    absent; the ``IfExists`` form of any of them holds when the key is absent; ``Null`` tests presence."""
    for operator, keys in condition.items():
        if operator == "Null":  # "true": the key is absent; "false": it is present
            if any((key not in context) != (str(v).lower() == "true") for key, v in keys.items()):
                return False
            continue
        if operator.startswith("ForAllValues:"):  # one value per request here; an absent key holds
            inner = {operator.removeprefix("ForAllValues:"): {k: v for k, v in keys.items() if k in context}}
            if not _conditions_hold(inner, context):
                return False
            continue
        if operator.startswith("ForAnyValue:"):  # one value per request here; an absent key fails
            if any(key not in context for key in keys):
                return False
            if not _conditions_hold({operator.removeprefix("ForAnyValue:"): keys}, context):
                return False
            continue
        # ArnLike and ArnEquals (the same operator: both take wildcards) as StringLike, their
        # negations as StringNotLike: IAM matches each colon-delimited part alone, so a "*" here,
        # which may span colons, is kinder than IAM to an Allow (a denial the test asserts holds in
        # IAM); the policies' ARN conditions name whole ARNs.
        arn = {"ArnLike": "StringLike", "ArnEquals": "StringLike", "ArnNotLike": "StringNotLike"}
        base = {**arn, "ArnNotEquals": "StringNotLike"}.get(operator, operator).removesuffix("IfExists")
        if base not in ("StringEquals", "StringLike", "StringNotEquals", "StringNotLike"):
            raise AssertionError(f"the test cannot evaluate {operator}: teach it")
        negated = base in ("StringNotEquals", "StringNotLike")
        for key, values in keys.items():
            if key not in context:
                if operator.endswith("IfExists") or negated:
                    continue
                return False
            match = fnmatch.fnmatchcase if base.endswith("Like") else str.__eq__
            matched = any(match(context[key], v) for v in _list(values))
            if matched == negated:
                return False
    return True


def _matches(statement: dict[str, Any], action: str, arn: str, request: dict[str, str]) -> bool:
    return (
        any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _list(statement["Action"]))
        and any(fnmatch.fnmatchcase(arn, r) for r in _list(statement["Resource"]))
        and _conditions_hold(statement.get("Condition", {}), request)
    )


def allows(docs: tuple[dict[str, Any], ...], action: str, arn: str, **context: str) -> bool:
    """Whether the documents allow ``action`` on ``arn`` for a request with ``context`` (condition keys,
    e.g. ``kms_ViaService="rds.us-east-1.amazonaws.com"``, or ``**{"aws_ResourceTag/Environment":
    "production"}`` for the tags the resource carries; ``aws:RequestedRegion`` is the ARN's region):
    some Allow statement matches and no Deny does (an explicit deny wins:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)."""
    request = {k.replace("_", ":", 1): v for k, v in context.items()}
    if not defines_resource_tag(arn, action.split(":", 1)[0].lower()):
        # IAM puts aws:ResourceTag in the request context only for resource types that define it
        # (Service Authorization Reference, "Resource types" table, "Condition keys" column).
        request = {k: v for k, v in request.items() if not k.startswith("aws:ResourceTag/")}
    region = arn.split(":")[3] if arn.count(":") >= 4 else ""
    request.setdefault("aws:RequestedRegion", region or "us-east-1")
    statements = _statements(docs)
    if any(s["Effect"] == "Deny" and _matches(s, action, arn, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, action, arn, request) for s in statements)


@functools.cache
def _arn_types() -> tuple[tuple[re.Pattern[str], int, str, bool], ...]:
    """Every resource type of the Service Authorization Reference (parliament's copy): its ARN format
    as a pattern, how many literal characters the format has, its name, and whether its "Condition
    keys" column lists ``aws:ResourceTag/${TagKey}``."""
    import parliament

    out: list[tuple[re.Pattern[str], int, str, bool]] = []
    for service in parliament.iam_definition:
        for r in service["resources"]:
            # A placeholder, or a literal "*" (recoveryPoint's account: any), stands for any text.
            parts = re.split(r"(\$\{[^}]+\}|\*)", r["arn"])
            pattern = "".join(".*" if p.startswith(("${", "*")) else re.escape(p) for p in parts)
            literal = sum(len(p) for p in parts if not p.startswith(("${", "*")))
            tagged = "aws:ResourceTag/${TagKey}" in (r.get("condition_keys") or [])
            out.append((re.compile(pattern + "$"), literal, f"{service['prefix']}:{r['resource']}", tagged))
    return tuple(out)


def resource_types_of(arn: str, service: str) -> list[tuple[str, bool]]:
    """The resource types of ``service`` (an action's prefix: the type is the one the action's service
    defines) that ``arn`` is one of: the formats it matches with the most literal characters
    (``/restapis/a/stages/b`` is a Stage, not a RestApi), each with whether it defines aws:ResourceTag."""
    matches = [
        (literal, name, tagged)
        for pattern, literal, name, tagged in _arn_types()
        if name.startswith(f"{service}:") and pattern.match(arn)
    ]
    best = max((literal for literal, _, _ in matches), default=0)
    return sorted((name, tagged) for literal, name, tagged in matches if literal == best)


def defines_resource_tag(arn: str, service: str) -> bool:
    """Whether a request of ``service`` on ``arn`` carries ``aws:ResourceTag``: only when its resource
    type lists the key (every type it may be, when formats tie; a ``*`` or unknown ARN names no
    tagged resource)."""
    types = resource_types_of(arn, service)
    return bool(types) and all(tagged for _, tagged in types)


def resources_of(docs: tuple[dict[str, Any], ...], action: str) -> list[str]:
    return sorted(
        {r for s in _statements(docs) if action in _list(s["Action"]) for r in _list(s["Resource"])}
    )


def test_interface_endpoints_with_private_dns_are_allowed() -> None:
    """CreateVpcEndpoint with PrivateDnsEnabled associates a Route 53 private hosted zone with the VPC:
    the Service Authorization Reference lists route53:AssociateVPCWithHostedZone as a dependent action of
    ec2:CreateVpcEndpoint (parliament's copy: iam_definition.json). The dr stack (natStrategy none) creates
    interface endpoints with private_dns_enabled=True (components/network.py)."""
    docs = _deploy()
    assert allows(docs, "ec2:CreateVpcEndpoint", f"arn:aws:ec2:us-west-2:{ACCOUNT}:vpc/vpc-1")
    assert allows(docs, "route53:AssociateVPCWithHostedZone", "arn:aws:route53:::hostedzone/Z123") or allows(
        docs, "route53:AssociateVPCWithHostedZone", f"arn:aws:ec2:us-west-2:{ACCOUNT}:vpc/vpc-1"
    ), "deploy policy lacks route53:AssociateVPCWithHostedZone"


def test_run_instances_covers_every_resource_a_launch_from_the_template_touches() -> None:
    """CreateAutoScalingGroup with a launch template checks the caller's ec2:RunInstances
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-launch-template-permissions.html);
    RunInstances is authorized on every resource of the launch, including the launch template and the
    EBS volumes it creates (the template has an encrypted root volume: components/compute.py)."""
    docs = _deploy()
    missing = [
        arn
        for arn in (
            f"arn:aws:ec2:us-east-1:{ACCOUNT}:launch-template/lt-0123456789abcdef0",
            f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-0123456789abcdef0",
        )
        if not allows(docs, "ec2:RunInstances", arn)
    ]
    assert missing == [], f"ec2:RunInstances resources: {resources_of(docs, 'ec2:RunInstances')}"


def test_staging_deployers_cannot_rewrite_production_roles() -> None:
    """IAM is account-wide: the deploy policy of one environment must not cover another's roles
    (PutRolePolicy/UpdateAssumeRolePolicy/PassRole on them is privilege escalation)."""
    prod = set(resources_of(_deploy("pilotlight:environment=production"), "iam:PutRolePolicy"))
    staging = set(resources_of(_deploy("pilotlight:environment=staging"), "iam:PutRolePolicy"))
    shared = sorted(r for r in prod & staging if "aws-service-role" not in r)
    assert shared == [], f"both environments' deploy policies may rewrite: {shared[:5]}"


def test_deploy_policy_does_not_read_or_delete_every_secret_function_and_table() -> None:
    """The program names these ``<app>-<env>-…`` (components/naming.py); the deploy policy grants
    secretsmanager:GetSecretValue, lambda:DeleteFunction, dynamodb:DeleteTable, ssm:GetParameter and
    kms:Decrypt on every one in the account and regions."""
    docs = _deploy()
    foreign = {
        "secretsmanager:GetSecretValue": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:payroll-db-AbCdEf",
        "lambda:DeleteFunction": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:someone-elses-function",
        "dynamodb:DeleteTable": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/billing",
        "ssm:GetParameter": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/other-team/db-password",
        "kms:Decrypt": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    }
    broad = sorted(a for a, arn in foreign.items() if allows(docs, a, arn))
    assert broad == [], f"deploy policy allows these on resources the program never creates: {broad}"


def test_backup_vault_creation_permissions_are_complete() -> None:
    """AWS Backup, "Backup vault creation and deletion", Required permissions: backup:CreateBackupVault,
    backup-storage:MountCapsule and kms:CreateGrant, DescribeKey, RetireGrant, Decrypt, GenerateDataKey
    (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-a-vault.html)."""
    docs = _deploy()
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    missing = [
        a
        for a in (
            "kms:CreateGrant",
            "kms:DescribeKey",
            "kms:RetireGrant",
            "kms:Decrypt",
            "kms:GenerateDataKey",
        )
        if not allows(docs, a, key, kms_ViaService="backup.us-east-1.amazonaws.com")
    ]
    assert missing == []


def test_security_groups_and_subnets_can_be_deleted() -> None:
    """The provider deletes a security group (and a subnet) only after clearing lingering ENIs, which
    calls ec2:DescribeNetworkInterfaces (terraform-provider-aws resourceSecurityGroupDelete ->
    deleteLingeringENIs); a replacement or `pulumi destroy` fails without it."""
    assert allows(_deploy(), "ec2:DescribeNetworkInterfaces", "*")


def test_route53_health_checks_can_be_created_when_neither_region_is_us_east_1() -> None:
    """Route 53 is a global service whose requests are made to us-east-1 (aws:RequestedRegion is
    us-east-1: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_deny-requested-region.html);
    the deploy policy grants route53:CreateHealthCheck on "*" only where aws:RequestedRegion is one of the
    stacks' regions, so with eu-west-1/eu-central-1 the dr stack's health checks are AccessDenied."""
    docs = _deploy("primaryRegion=eu-west-1", "drRegion=eu-central-1")
    ok = [
        s
        for s in _statements(docs)
        if "route53:CreateHealthCheck" in _list(s["Action"])
        and "us-east-1"
        in _list(s.get("Condition", {}).get("StringEquals", {}).get("aws:RequestedRegion", ["us-east-1"]))
    ]
    assert ok, "no statement allows route53:CreateHealthCheck for a request to us-east-1"


def test_listeners_can_be_read_back() -> None:
    """The provider reads an ALB listener's attributes after creating it and on every refresh
    (terraform-provider-aws internal/service/elbv2/listener.go resourceListenerRead ->
    findListenerAttributesByARN: elasticloadbalancing:DescribeListenerAttributes)."""
    assert allows(_deploy(), "elasticloadbalancing:DescribeListenerAttributes", "*")


def test_break_glass_refuses_a_function_list_that_is_a_string(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``primaryFunctionNames: "pay"`` (a hand-edited or mis-exported output) is iterated character by
    character: the policy names functions ``p``, ``a`` and ``y`` and exits 0."""
    import json as _json

    runbook = {
        "notifyTopicArn": f"arn:aws:sns:us-west-2:{ACCOUNT}:t", "primaryRegion": "us-east-1",
        "drRegion": "us-west-2", "databaseMode": "rds-replica", "primaryAsgName": "a", "drAsgName": "b",
        "latchParameterName": "/x", "lockTableName": "l", "notifyKeyArn": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/k",
        "switchMetric": {"namespace": "N"}, "primaryDbInstanceId": "p", "drDbInstanceId": "d",
        "primaryFunctionNames": "pay",
    }  # fmt: skip
    path = tmp_path / "runbook.json"
    path.write_text(_json.dumps(runbook))
    try:
        docs = iam.policies("break-glass", account=ACCOUNT, overrides=[], outputs=str(path))
    except iam.IamInputError:
        return
    fns = resources_of(tuple(docs), "lambda:PutFunctionConcurrency")
    assert f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pay" in fns, fns


def test_the_narrowed_deploy_policy_still_covers_what_the_program_creates_and_reads() -> None:
    """Narrowing by name (automation/iam.py NAMED_RESOURCES) must not lock the deployer out of its own
    resources: the program's function, table (in both regions), secret (with the six characters Secrets
    Manager appends), latch path, AWS's public image parameter (an ARN with no account), its IAM roles
    under the deployment's path, and its keys through the services that encrypt with them."""
    docs = _deploy()
    prefix = "pilotlight-production"
    needed = [
        ("lambda:CreateFunction", f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:{prefix}-runbook", {}),
        ("dynamodb:DeleteTable", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{prefix}-app", {}),
        (
            "dynamodb:UpdateTable",
            f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/{prefix}-app",
            {},
        ),
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:pilotlight/production/database/master-AbCdEf",
            {},
        ),
        ("ssm:GetParametersByPath", f"arn:aws:ssm:us-west-2:{ACCOUNT}:parameter/pilotlight/production", {}),
        (
            "ssm:GetParameter",
            "arn:aws:ssm:us-east-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            {},
        ),
        # passed to the service its trust policy names, Lambda (iam:PassedToService: review breakiam25 BI25-3)
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/{prefix}/dr-orchestrator-runbook-role-1a2b3c4",
            {"iam_PassedToService": "lambda.amazonaws.com"},
        ),
        (
            "kms:CreateGrant",
            f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            {"kms_ViaService": "rds.us-west-2.amazonaws.com"},
        ),
        (
            "kms:Decrypt",
            f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            {"kms_ViaService": "secretsmanager.us-east-1.amazonaws.com"},
        ),
    ]
    refused = [(a, arn) for a, arn, ctx in needed if not allows(docs, a, arn, **ctx)]
    assert refused == []
    staging = _deploy("pilotlight:environment=staging")
    assert not allows(staging, "lambda:UpdateFunctionCode", needed[0][1]), (
        "staging's deployer reaches production's function"
    )


def test_the_harness_gives_a_resource_its_tags_only_where_its_type_defines_them() -> None:
    """12C-5: ``allows`` took ``aws:ResourceTag`` for every ARN, so a Deny on another deployment's tags
    matched resource types IAM evaluates without them (a Route 53 health check, RDS's global cluster,
    CloudWatch's dashboard, API Gateway's tag paths: no ``aws:ResourceTag/${TagKey}`` in their
    "Condition keys", Service Authorization Reference), hiding what the Deny cannot see."""
    expected = {
        ("apigateway", "arn:aws:apigateway:us-east-1::/restapis/a1b2c3"): True,
        ("apigateway", "arn:aws:apigateway:us-east-1::/restapis/a1b2c3/stages/prod"): True,
        ("apigateway", "arn:aws:apigateway:us-east-1::/tags/arn%3Aaws%3Aapigateway"): False,
        ("route53", "arn:aws:route53:::healthcheck/0f1e2d3c"): False,
        ("rds", f"arn:aws:rds::{ACCOUNT}:global-cluster:pilotlight-production-global"): False,
        ("rds", f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:pilotlight-production"): True,
        ("cloudwatch", f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/pilotlight-production-dr"): False,
        ("kms", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd"): True,
        ("backup", f"arn:aws:backup:us-east-1:{ACCOUNT}:recovery-point:1a2b"): True,
        ("ec2", "*"): False,
    }
    got = {(service, arn): defines_resource_tag(arn, service) for service, arn in expected}
    assert got == expected
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "route53:UpdateHealthCheck", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "route53:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/Environment": "production"}},
            },
        ],
    }
    check = "arn:aws:route53:::healthcheck/0f1e2d3c"
    assert allows(
        (deny,), "route53:UpdateHealthCheck", check, **{"aws_ResourceTag/Environment": "production"}
    )
