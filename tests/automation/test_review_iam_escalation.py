"""Review brk12, F1 (high): privilege escalation through the deploy policy (branch iam21).

A staging deployer may write its own roles (it must: ``pulumi up`` does) and replace its functions'
code, so whatever its roles may do, it may do. The probes of the review (not committed,
``test_brk12_esc.py``): attach AdministratorAccess to one of its roles, put an inline ``"*"`` policy on
one, rewrite one's trust policy to trust itself, create a role with no permissions boundary. The fix:
a permissions boundary per deployment, which every role carries and the deploy policy requires
(``iam:PermissionsBoundary``), attachments only of the policies the program attaches
(``iam:PolicyARN``), and no way to remove or rewrite the boundary. What the deployer still writes
freely (an inline policy's content, a trust policy's) is capped by the boundary, so the class test
here runs production's roles' statements against a staging role's boundary.

The harness is ``allows`` (tests/automation/test_review_iam.py): Allow and Deny statements, with the
condition keys of the request given as context.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from typing import Any

import pytest

from automation import iam, synth
from automation.iam_boundary import (
    MANAGED_POLICY_ACTIONS,
    boundary_policy,
    deployment_syntheses,
    role_statements,
)
from components import iam_audit
from tests.automation.test_review_iam import ACCOUNT, allows
from tests.automation.test_review_iam_break12c import STAGING, _stacks

ROLE = f"arn:aws:iam::{ACCOUNT}:role/pilotlight-staging/primary-api-fn-role-abc1234"
"""One of staging's roles as IAM names it (path ``/<app>-<env>/``, an auto-name)."""
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/pilotlight-staging/pilotlight-staging-boundary"
PRODUCTION_BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/pilotlight-production/pilotlight-production-boundary"
STAGING_TAGS = {"aws_ResourceTag/Environment": "staging", "aws_ResourceTag/Application": "pilotlight"}
WITH_BOUNDARY = {**STAGING_TAGS, "iam_PermissionsBoundary": BOUNDARY}
"""A request on one of staging's roles once it carries the boundary (IAM puts the role's boundary in
``iam:PermissionsBoundary`` for PutRolePolicy, AttachRolePolicy...: Service Authorization Reference,
list_awsidentityandaccessmanagementiam.html)."""


def _staging() -> tuple[dict[str, Any], ...]:
    return _stacks(*STAGING)[1]


@functools.cache
def _pair(*overrides: str) -> tuple[synth.Synthesis, synth.Synthesis]:
    """Both stacks under ``overrides`` (``dr:`` keys to the dr stack only), with the latch the
    documented procedure leaves for them (synth.procedure_latch: ``dr:active`` is planned active)."""
    parsed = synth.parse_overrides(list(overrides))
    primary = synth.synthesize("primary", {k: v for k, v in parsed.items() if not k.startswith("dr:")})
    dr = synth.synthesize_as_procedure("dr", parsed, primary_outputs=primary.outputs)
    return primary, dr


@functools.cache
def _boundary(*overrides: str) -> tuple[dict[str, Any], ...]:
    """The boundary ``iam --for boundary`` makes for ``overrides``: its ``dr:`` switches are not the
    boundary's to know (iam_boundary.SWITCHED_LATER), so a boundary is the same whichever are set."""
    shared = tuple(o for o in overrides if not o.startswith("dr:"))
    return _shared_boundary(*shared)


@functools.cache
def _shared_boundary(*shared: str) -> tuple[dict[str, Any], ...]:
    return (boundary_policy(deployment_syntheses(synth.parse_overrides(list(shared))), ACCOUNT),)


@pytest.mark.parametrize(
    "policy",
    [
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::aws:policy/IAMFullAccess",
        "arn:aws:iam::aws:policy/PowerUserAccess",
        # The program's own managed policy is for operators, not for its roles.
        f"arn:aws:iam::{ACCOUNT}:policy/pilotlight-staging/pilotlight-staging-failover-operator",
        BOUNDARY,  # as a permissions policy it would grant everything it caps
    ],
)
def test_a_staging_deployer_cannot_attach_to_its_roles_a_policy_the_program_does_not(policy: str) -> None:
    """F1: AttachRolePolicy was allowed on staging's roles with any ``PolicyArn``. ``iam:PolicyARN`` is
    the policy a request attaches or detaches (Service Authorization Reference, IAM); the program
    attaches exactly the AWS managed policies of components/storage.py (BACKUP_POLICIES) and
    components/compute.py (AmazonSSMManagedInstanceCore)."""
    staging = _staging()
    assert not allows(staging, "iam:AttachRolePolicy", ROLE, **WITH_BOUNDARY, iam_PolicyARN=policy)


def test_the_program_still_attaches_the_policies_it_attaches() -> None:
    """The other side: every policy the stacks attach (RolePolicyAttachment) may be attached and
    detached by their deployer, on a role with the boundary."""
    syntheses, staging = _stacks(*STAGING)
    attached = sorted(
        {
            str(r.inputs["policyArn"])
            for s in syntheses
            for r in s.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        }
    )
    assert attached == sorted(MANAGED_POLICY_ACTIONS)  # the probe sees the three the program attaches
    for action in iam.ATTACHMENTS:
        for policy in attached:
            assert allows(staging, action, ROLE, **WITH_BOUNDARY, iam_PolicyARN=policy), (action, policy)
            # ... and not onto a role without the boundary (created before it, or stripped of it).
            assert not allows(staging, action, ROLE, **STAGING_TAGS, iam_PolicyARN=policy)


@pytest.mark.parametrize(
    "boundary",
    [None, PRODUCTION_BOUNDARY, "arn:aws:iam::aws:policy/AdministratorAccess"],
    ids=["none", "production-s", "admin"],
)
@pytest.mark.parametrize("action", ["iam:PutRolePolicy", "iam:CreateRole", "iam:DeleteRolePolicy"])
def test_a_staging_deployer_writes_a_role_only_with_staging_s_boundary(
    action: str, boundary: str | None
) -> None:
    """F1: PutRolePolicy with an inline ``"*"`` on staging's own role, and CreateRole with no
    boundary, were allowed. IAM has no condition on an inline policy's content; it has the role's
    boundary (``iam:PermissionsBoundary``: the one a CreateRole request sets, the one the role has for
    PutRolePolicy and DeleteRolePolicy), which AWS's delegation pattern requires
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html). With staging's
    boundary the write is allowed (the program needs it) and the boundary caps what it grants
    (test_no_role_statement_of_production_is_within_staging_s_boundary)."""
    staging = _staging()
    context = {**STAGING_TAGS, **({"iam_PermissionsBoundary": boundary} if boundary else {})}
    assert not allows(staging, action, ROLE, **context)
    assert allows(staging, action, ROLE, **WITH_BOUNDARY)


def test_a_staging_deployer_creates_roles_only_under_its_path() -> None:
    """With the right boundary still only under ``/pilotlight-staging/``: not production's path, not
    the account's root path."""
    staging = _staging()
    for role in (
        f"arn:aws:iam::{ACCOUNT}:role/pilotlight-production/primary-api-fn-role-abc1234",
        f"arn:aws:iam::{ACCOUNT}:role/escalate",
    ):
        assert not allows(staging, "iam:CreateRole", role, iam_PermissionsBoundary=BOUNDARY), role


def test_a_staging_deployer_cannot_remove_or_rewrite_the_boundary() -> None:
    """Removing a role's boundary, setting another, or rewriting the boundary policy would undo the
    fence; AWS's delegation example denies the same (access_policies_boundaries.html). The deployer
    may set staging's boundary on a role created before it (the provider's PutRolePermissionsBoundary
    when ``permissions_boundary`` changes)."""
    staging = _staging()
    assert not allows(staging, "iam:DeleteRolePermissionsBoundary", ROLE, **WITH_BOUNDARY)
    for other in (PRODUCTION_BOUNDARY, "arn:aws:iam::aws:policy/AdministratorAccess"):
        assert not allows(
            staging, "iam:PutRolePermissionsBoundary", ROLE, **STAGING_TAGS, iam_PermissionsBoundary=other
        )
    assert allows(
        staging, "iam:PutRolePermissionsBoundary", ROLE, **STAGING_TAGS, iam_PermissionsBoundary=BOUNDARY
    )
    for action in (*iam.BOUNDARY_WRITES, "iam:TagPolicy", "iam:UntagPolicy"):
        for boundary in (BOUNDARY, PRODUCTION_BOUNDARY):
            assert not allows(staging, action, boundary, **STAGING_TAGS), (action, boundary)


def test_the_review_s_escalation_probe_is_refused() -> None:
    """brk12's probe (test_brk12_esc.py), as it ran: an inline policy onto staging's function role
    (no boundary in the request: the role as it was) together with replacing the function's code."""
    (staging_primary, _), staging = _stacks(*STAGING)
    (payments,) = [
        f
        for f in staging_primary.by_type("aws:lambda/function:Function")
        if f.inputs["name"].endswith("-payments")
    ]
    fn = f"arn:aws:lambda:{payments.region}:{ACCOUNT}:function:{payments.inputs['name']}"
    put = allows(staging, "iam:PutRolePolicy", ROLE, **STAGING_TAGS)
    attach = allows(
        staging,
        "iam:AttachRolePolicy",
        ROLE,
        **STAGING_TAGS,
        iam_PolicyARN="arn:aws:iam::aws:policy/AdministratorAccess",
    )
    assert allows(
        staging, "lambda:UpdateFunctionCode", fn, **STAGING_TAGS
    )  # its own code: the program's need
    assert (put, attach) == (False, False)


def test_update_assume_role_policy_stays_and_is_fenced_by_the_boundary() -> None:
    """The provider updates a role's trust policy in place (terraform-provider-aws resourceRoleUpdate:
    UpdateAssumeRolePolicy when ``assume_role_policy`` changes), and IAM has no condition key on a
    trust policy's content nor on the role's boundary for this action (Service Authorization
    Reference, IAM): the deployer keeps it on its own roles, and only on them. A role it makes trust
    itself can do what the boundary allows: no IAM, no STS, none of production's resources (the
    class test below)."""
    staging = _staging()
    assert allows(staging, "iam:UpdateAssumeRolePolicy", ROLE, **WITH_BOUNDARY)
    production_role = f"arn:aws:iam::{ACCOUNT}:role/pilotlight-production/primary-api-fn-role-abc1234"
    assert not allows(staging, "iam:UpdateAssumeRolePolicy", production_role)
    (boundary,) = _boundary(*STAGING)
    for action, arn in (
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/escalate"),
        ("iam:PutRolePolicy", ROLE),
        ("iam:AttachRolePolicy", ROLE),
        ("iam:UpdateAssumeRolePolicy", ROLE),
        ("iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/admin"),
        ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"),
        ("ec2:RunInstances", f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*"),
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:payroll-db-AbCdEf",
        ),
        ("dynamodb:DeleteTable", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/pilotlight-staging-app"),
    ):
        # What an inline "*" (or AdministratorAccess) would grant, capped by the boundary.
        assert not allows((boundary,), action, arn, **STAGING_TAGS), f"a staging role may {action} on {arn}"


def _concrete(arn: str) -> str:
    return arn.replace("*", "x").replace("?", "x")


def _arns(resource: str, syntheses: tuple[synth.Synthesis, ...]) -> list[str]:
    """A role statement's resource as a concrete ARN, from the synthesis, not from the code under test:
    a bucket known only once created is its prefix (``bucketPrefix``) plus what S3 appends; anything
    else only a deployment knows is made up."""
    if resource == "*":
        return ["*"]
    # ``⧗<bucket>`` is its ARN's name part; ``⧗<bucket>.bucket`` its ``bucket`` output (the name a
    # runbook output carries): the same bucket.
    match = re.fullmatch(rf"arn:aws:s3:::{synth.COMPUTED}([^/.]+)(?:\.bucket)?(/.*)?", resource)
    if match:
        (bucket,) = [
            r for s in syntheses for r in s.by_type("aws:s3/bucket:Bucket") if r.name == match.group(1)
        ]
        name = bucket.inputs.get("bucket") or f"{bucket.inputs['bucketPrefix']}20261201x"
        return [_concrete(f"arn:aws:s3:::{name}{match.group(2) or ''}")]
    # A queue's or log group's ARN ends in its name (Service Authorization Reference: sqs ``queue``,
    # logs ``log-group``); auto-named, Pulumi appends seven characters to the logical name.
    for r in (r for s in syntheses for r in s.aws_resources() if r.type in ARN_ENDS_IN_NAME):
        resource = re.sub(
            rf"{synth.COMPUTED}{re.escape(r.name)}(?=$|:)",
            str(r.inputs.get("name") or f"{r.name}-a1b2c3d"),
            resource,
        )
    return [_concrete(iam._offline(resource))]


ARN_ENDS_IN_NAME = ("aws:sqs/queue:Queue", "aws:cloudwatch/logGroup:LogGroup")


def _production_tags() -> dict[str, str]:
    syntheses, _ = _stacks()
    return {f"aws_ResourceTag/{k}": v for k, v in iam.deployment_tags(syntheses).items()}


ON_STAR_ONLY = {
    # Role actions AWS authorizes only on "*" (no resource type): no resource of production's to name.
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities", "cloudwatch:GetMetricData",
    "cloudwatch:PutMetricData",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "lambda:ListEventSourceMappings",
    "xray:PutTelemetryRecords", "xray:PutTraceSegments",
}  # fmt: skip


def _segment_wise(pattern: str) -> re.Pattern[str]:
    """A Resource pattern as IAM reads it, stricter than the harness' fnmatch: ``*`` stays within its
    colon-separated segment unless it is the segment's last character ("If the * wildcard is the last
    character of a resource ARN segment, it can expand to match beyond colon boundaries":
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html)."""
    parts = re.split(r"(\*|\?)", pattern)
    out = ""
    for i, part in enumerate(parts):
        if part == "*":
            following = "".join(parts[i + 1 :])
            out += ".*" if following == "" or following.startswith(":") else "[^:]*"
        elif part == "?":
            out += "[^:]"
        else:
            out += re.escape(part)
    return re.compile(out + "$")


def _named_by_an_allow(document: dict[str, Any], action: str, arn: str) -> bool:
    """Some Allow statement of ``document`` names ``action`` and, read segment-wise, ``arn``."""
    for statement in document["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
        if (
            statement["Effect"] == "Allow"
            and any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions)
            and any(_segment_wise(r).match(arn) for r in resources)
        ):
            return True
    return False


@pytest.mark.parametrize(
    "config",
    [
        (),
        ("database.mode=rds-replica", "database.engine=postgres"),
        ("dr:active=true", "dr:autoFailover=true"),
    ],
    ids=["default", "rds-replica", "dr-active"],
)
def test_no_role_statement_of_production_is_within_staging_s_boundary(config: tuple[str, ...]) -> None:
    """The class of F1: whatever a staging deployer writes into one of its roles' policies (or trusts
    it to), the role may do no more than staging's boundary allows. Every action production's roles
    are granted, on every resource they are granted it on (the ARN made concrete; production's tags in
    the context where the type defines them), is refused by staging's boundary. The actions AWS
    authorizes only on ``"*"`` name no resource (:data:`ON_STAR_ONLY`, exactly)."""
    production = _pair(*config)
    (boundary,) = _boundary(*STAGING, *config)
    tags = _production_tags()
    on_star: set[str] = set()
    checked = 0
    reachable: list[str] = []
    for statement in role_statements(production):
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
        if "*" in resources:
            on_star.update(actions)
            continue
        for action in actions:
            for resource in resources:
                for arn in _arns(resource, production):
                    checked += 1
                    if allows((boundary,), action.rstrip("*"), arn, **tags):
                        reachable.append(f"{action} on {arn}")
    assert checked > 50  # the probe sees the statements it exists for
    assert sorted(reachable) == [], (
        f"a staging role may do production's roles' work: {sorted(reachable)[:10]}"
    )
    assert on_star <= ON_STAR_ONLY, sorted(on_star - ON_STAR_ONLY)


@pytest.mark.parametrize(
    "config",
    [
        (),
        ("database.mode=rds-replica", "database.engine=postgres"),
        ("dr:active=true", "dr:autoFailover=true"),
        ("database.mode=rds-replica", "database.engine=postgres", "dr:active=true", "dr:failback=replicate"),
        ("dr:autoFailover=true",),
        ("dr:active=true", "dr:failback=switch-writer"),
        ("dr:failback=complete",),
    ],
    ids=["default", "rds-replica", "dr-active", "rds-failback", "auto-failover", "switch-writer", "complete"],
)
def test_the_boundary_covers_every_statement_the_program_gives_its_roles(config: tuple[str, ...]) -> None:
    """The program's roles keep what they need: every action of every inline policy of staging's roles,
    on every resource it names (concrete, staging's tags), and every action on ``"*"``, is within
    staging's boundary. A role statement the boundary misses would fail at run time (a failover
    step denied), not at deploy time. The boundary is made without the ``dr:`` switches (the one an
    administrator made before any was turned): a switch turned later needs no new boundary (review
    breakiam21, BI21-2: ``dr:autoFailover`` turned on after the boundary was made). A statement's ``cloudwatch:namespace`` condition (PutMetricData,
    which the boundary allows only into the deployment's own namespaces) is the request's: each
    namespace it grants must be within the boundary."""
    syntheses = _pair(*STAGING, *config)
    (boundary,) = _boundary(*STAGING, *config)
    missing: list[str] = []
    for statement in role_statements(syntheses):
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
        granted = statement.get("Condition", {}).get("StringEquals", {}).get("cloudwatch:namespace", [])
        requests = [{"cloudwatch_namespace": n} for n in ([granted] if isinstance(granted, str) else granted)]
        for action in actions:
            for resource in resources:
                for arn in _arns(resource, syntheses):
                    for request in requests or [{}]:
                        if not (
                            allows((boundary,), action.rstrip("*"), arn, **STAGING_TAGS, **request)
                            and _named_by_an_allow(boundary, action.rstrip("*"), arn)
                        ):
                            missing.append(f"{action} on {arn} {request}")
    assert missing == []


@pytest.mark.parametrize("mode", ["aurora-global", "rds-replica"])
def test_the_boundary_is_one_managed_policy_and_passes_parliament(mode: str) -> None:
    """A permissions boundary is one managed policy: 6,144 characters at most (IAM quotas,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), in the longest
    accepted configuration too; parliament finds nothing but the boundary's ``"*"`` cap
    (components/iam_audit.py, PolicyKind.BOUNDARY)."""
    from tests.components.test_naming import DR_FLAGS, ENVS, longest

    shared = longest(ENVS[0], mode)
    primary = synth.synthesize("primary", shared)
    # A failback phase runs under the failover latch the documented procedure leaves.
    values = {**shared, **DR_FLAGS}
    dr = synth.synthesize_as_procedure("dr", values, primary_outputs=primary.outputs)
    boundary = boundary_policy([*deployment_syntheses(shared), dr], ACCOUNT)  # what iam --for boundary makes
    assert iam._size(boundary) <= iam.MANAGED_POLICY_MAX
    assert iam_audit.findings(boundary, iam_audit.PolicyKind.BOUNDARY) == []
    assert iam_audit.findings(boundary, iam_audit.PolicyKind.IDENTITY) != []  # the allowance is needed


def test_the_boundary_denies_identity_changes_and_other_deployments() -> None:
    """Its Deny statements: no IAM, no STS (the roles create, change and assume no identity), nothing
    tagged as another deployment's."""
    (boundary,) = _boundary(*STAGING)
    denies = {s["Sid"]: s for s in boundary["Statement"] if s["Effect"] == "Deny"}
    assert denies["NoIamNoSts"]["Action"] == ["iam:*", "sts:*"]
    assert {"DenyOtherApplication", "DenyOtherEnvironment"} <= denies.keys()
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert allows((boundary,), "kms:Decrypt", key, **STAGING_TAGS)
    assert not allows((boundary,), "kms:Decrypt", key, **_production_tags())


def test_iam_for_boundary_prints_the_document_with_the_name_and_path_the_roles_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--for boundary``: one document, with the name and path of the ARN every role's
    ``permissions_boundary`` carries (components.iam.permissions_boundary_arn), for the administrator
    to create it (the deployer cannot)."""
    from automation.__main__ import main as automation_main

    assert automation_main(["iam", "--for", "boundary", "--account", "210987654321"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["policies"]
    assert (entry["path"], entry["name"]) == ("/pilotlight-production/", "pilotlight-production-boundary")
    assert "123456789012" not in json.dumps(entry["document"])
    syntheses, _ = _stacks()
    arn = iam.boundary_arn(syntheses, "210987654321")
    assert arn == f"arn:aws:iam::210987654321:policy{entry['path']}{entry['name']}"


def test_iam_for_deploy_tells_the_person_to_create_the_boundary_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The deploy policy refuses every role without the boundary, and cannot create the boundary: the
    first ``pulumi up`` fails with AccessDenied on CreateRole unless an administrator created it.
    ``iam --for deploy`` says so on stderr, by its ARN; stdout stays the JSON."""
    from automation.__main__ import main as automation_main

    assert automation_main(["iam", "--for", "deploy", "--account", "210987654321"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["policies"]
    boundary = "arn:aws:iam::210987654321:policy/pilotlight-production/pilotlight-production-boundary"
    assert f"permissions boundary {boundary}" in err and "iam --for boundary" in err
