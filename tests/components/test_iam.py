"""Least privilege, checked on every policy document the program writes.

Every document of every stack (both database modes, standby and active, failback and automatic
failover) passes parliament with no finding outside ``components/iam_audit.ALLOWED_FINDINGS``, and
no identity policy grants a mutating action on ``"*"`` unless AWS defines no resource type for it.
The synthesis gives resources ARNs in AWS's formats (``automation/synth.py``), so parliament checks
each Resource against the formats the Service Authorization Reference defines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from automation import synth
from components import iam_audit
from components.runbook_iam import STAR_ONLY_ACTIONS
from tests.components.conftest import synthesize

RDS = {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}}
CERTS = {
    "pilotlight:routing": {
        "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/a",
        "drCertificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/b",
    }
}
SYNTHESES: list[tuple[str, dict[str, Any]]] = [
    ("primary", {}),
    ("dr", {}),
    ("dr", {"dr:autoFailover": True, "dr:active": True}),
    ("primary", RDS),
    ("dr", {**RDS, "dr:active": True, "dr:failback": "replicate"}),
    ("dr", CERTS),
]
IDS = ["primary", "dr", "dr-active-auto", "primary-rds", "dr-rds-failback", "dr-certificates"]


def documents(s: synth.Synthesis) -> list[tuple[str, iam_audit.PolicyKind, str]]:
    out = []
    for r in s.aws_resources():
        for (type_, key), kind in iam_audit.POLICY_INPUTS.items():
            if r.type == type_ and isinstance(r.inputs.get(key), str):
                out.append((f"{r.type} {r.name} ({r.urn})", kind, r.inputs[key]))
    return out


@pytest.mark.parametrize(("stack", "overrides"), SYNTHESES, ids=IDS)
def test_every_policy_document_passes_parliament(stack: str, overrides: dict[str, Any]) -> None:
    docs = documents(synthesize(stack, overrides))
    assert {kind for _, kind, _ in docs} >= {iam_audit.PolicyKind.IDENTITY, iam_audit.PolicyKind.TRUST}
    problems = {where: found for where, kind, doc in docs if (found := iam_audit.findings(doc, kind))}
    assert problems == {}


@pytest.mark.parametrize(("stack", "overrides"), SYNTHESES, ids=IDS)
def test_no_mutating_action_is_granted_on_star(stack: str, overrides: dict[str, Any]) -> None:
    docs = documents(synthesize(stack, overrides))
    problems = {
        where: found
        for where, kind, doc in docs
        if kind == iam_audit.PolicyKind.IDENTITY and (found := iam_audit.star_grants(doc))
    }
    assert problems == {}


def test_the_star_allow_list_is_exactly_what_the_program_grants_on_star() -> None:
    """STAR_ONLY_ACTIONS says it is every action the program grants on ``Resource: "*"`` (the closing
    note of issue 12 lists them from it); ``star_grants`` checks only mutating ones, so a read on
    ``"*"`` (the VPC functions' ``ec2:Describe*``) went unlisted. Exactly: a new one, or a stale
    entry, fails."""
    granted: set[str] = set()
    for stack, overrides in SYNTHESES:
        for _, kind, doc in documents(synthesize(stack, overrides)):
            if kind != iam_audit.PolicyKind.IDENTITY:
                continue
            for statement in json.loads(doc)["Statement"]:
                if statement["Effect"] == "Allow" and "*" in _list(statement["Resource"]):
                    granted.update(_list(statement["Action"]))
    assert sorted(granted) == sorted(STAR_ONLY_ACTIONS)


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


@pytest.mark.parametrize("action", sorted(STAR_ONLY_ACTIONS))
def test_the_star_allow_list_holds_only_actions_aws_defines_no_resource_type_for(action: str) -> None:
    assert iam_audit.resource_types(action) in ([], [""]), f"{action} can name resources: scope it"


def test_the_audit_catches_what_it_exists_for() -> None:
    runbook_2025 = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "WebTier", "Effect": "Allow", "Action": "autoscaling:UpdateAutoScalingGroup", "Resource": "*"},
            {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "arn:aws:sqs:us-east-1:123456789012:not-a-parameter"},
        ],
    }  # fmt: skip
    assert iam_audit.star_grants(runbook_2025) == [
        'WebTier: autoscaling:UpdateAutoScalingGroup (Write) on "*"'
    ]
    found = iam_audit.findings(runbook_2025, iam_audit.PolicyKind.IDENTITY)
    assert any(f.startswith("RESOURCE_STAR") for f in found)
    assert any(f.startswith("RESOURCE_MISMATCH") and "ssm:GetParameter" in f for f in found)
    # An allowance never travels to another kind of document.
    key_like = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}],
    }
    assert iam_audit.findings(key_like, iam_audit.PolicyKind.KEY) == []
    assert iam_audit.findings(key_like, iam_audit.PolicyKind.IDENTITY) != []


IDENTITY_TYPES = ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile", "aws:iam/policy:Policy")
"""What the program could create in IAM. It creates no managed policy (tests/automation/test_breakiam21.py:
one people hold is the administrator's); a policy it ever creates must still be under the path."""


@pytest.mark.parametrize(("stack", "overrides"), SYNTHESES, ids=IDS)
def test_every_iam_identity_lives_under_the_deployment_s_path(stack: str, overrides: dict[str, Any]) -> None:
    """IAM is account-wide: every role, instance profile and managed policy the program creates is under
    ``/<app>-<env>/`` (components.iam.iam_path), so a deploy policy can name one environment's identities
    and a staging deployer cannot rewrite production's roles (tests/automation/test_review_iam.py)."""
    s = synthesize(stack, overrides)
    identities = [r for r in s.aws_resources() if r.type in IDENTITY_TYPES]
    assert {r.type for r in identities} == set(IDENTITY_TYPES[:2]) or stack == "primary"
    wrong = {
        r.name: r.inputs.get("path") for r in identities if r.inputs.get("path") != "/pilotlight-production/"
    }
    assert wrong == {}


BOUNDARY = "arn:aws:iam::123456789012:policy/pilotlight-production/pilotlight-production-boundary"


@pytest.mark.parametrize(("stack", "overrides"), SYNTHESES, ids=IDS)
def test_every_role_carries_the_deployment_s_permissions_boundary(
    stack: str, overrides: dict[str, Any]
) -> None:
    """Review brk12, F1: a deployer writes its roles' policies (the program must) and replaces its
    functions' code, so a role's policy is no fence against it; the role's permissions boundary is
    (effective permissions are what both allow:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html). Every role the
    program creates carries its deployment's boundary (components.iam.permissions_boundary_arn), the
    one the deploy policy requires on CreateRole and PutRolePolicy (automation/iam.py): a role created
    without it is refused at deploy time."""
    s = synthesize(stack, overrides)
    roles = s.by_type("aws:iam/role:Role")
    assert roles
    wrong = {f"{r.name} ({r.urn})": r.inputs.get("permissionsBoundary") for r in roles}
    assert {k: v for k, v in wrong.items() if v != BOUNDARY} == {}


def test_the_runbook_s_inherited_tags_are_the_program_s_required_tags() -> None:
    """A database the runbook creates carries the program's tags (lambdas/failover/names.py
    REQUIRED_TAG_KEYS, review breakiam22 BI22-8): they must be the keys every provider's default tags
    carry whatever the user adds (components/config.py ``Tags.as_dict``), or the created database is
    left outside the tag Deny again."""
    import json

    from automation import synth
    from components import config
    from lambdas.failover.names import REQUIRED_TAG_KEYS

    extra = {"owner": "x", "Environment": "not-this"}
    values = synth.merge_overrides(synth.load_stack_config("primary"), {"pilotlight:tags": json.dumps(extra)})
    tags = config.parse(values, stack="primary").tag_map()
    assert set(REQUIRED_TAG_KEYS) == set(tags) - {"owner"}
    assert tags["Environment"] != "not-this"  # the required tags win over the user's
