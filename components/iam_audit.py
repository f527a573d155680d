"""Audit of the policy documents the program writes: parliament, and no change granted on ``"*"``.

Two checks, both pure (no Pulumi, no AWS), run by the tests on every policy document of every
synthesized stack and on what ``python -m automation iam`` prints:

1. `parliament <https://github.com/duo-labs/parliament>`_, the IAM policy linter built on the Service
   Authorization Reference: every finding must be in :data:`ALLOWED_FINDINGS`, each with its reason.
2. :func:`star_grants`: an identity policy may grant a mutating action (access level Write,
   Permissions management or Tagging) on ``Resource: "*"`` only if AWS defines no resource type
   for it (:data:`components.runbook_iam.STAR_ONLY_ACTIONS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from components.runbook_iam import STAR_ONLY_ACTIONS

MUTATING_ACCESS_LEVELS = frozenset({"Write", "Permissions management", "Tagging"})


class PolicyKind(StrEnum):
    """What a policy document is attached to, which decides what its elements mean."""

    IDENTITY = "identity"
    """A role's inline policy or a managed policy: ``Resource`` names what may be acted on."""
    TRUST = "trust"
    """A role's trust policy: who may assume the role; it has no ``Resource`` (the role is it)."""
    KEY = "key"
    """A KMS key policy: ``Resource: "*"`` means this key."""
    BUCKET = "bucket"
    """An S3 bucket policy."""
    BOUNDARY = "boundary"
    """A permissions boundary: the most a role may do, not a grant; the role's own policies grant."""


# Where the program keeps policy documents, by resource type and input.
POLICY_INPUTS: dict[tuple[str, str], PolicyKind] = {
    ("aws:iam/rolePolicy:RolePolicy", "policy"): PolicyKind.IDENTITY,
    ("aws:iam/policy:Policy", "policy"): PolicyKind.IDENTITY,
    ("aws:iam/role:Role", "assumeRolePolicy"): PolicyKind.TRUST,
    ("aws:kms/key:Key", "policy"): PolicyKind.KEY,
    ("aws:s3/bucketPolicy:BucketPolicy", "policy"): PolicyKind.BUCKET,
}

_IAM = "https://docs.aws.amazon.com/IAM/latest/UserGuide"
_SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference"

# Actions whose Service Authorization Reference entry lists alternative resource types, each marked
# required: a request involves one of them, and parliament wants a Resource matching every one.
ALTERNATIVE_RESOURCE_TYPES: dict[str, str] = {
    "states:ListExecutions": f"stateMachine or mapRun ({_SAR}/list_awsstepfunctions.html); "
    "the operator lists executions of the two state machines, which run no Map state",
    "states:DescribeExecution": f"execution or express ({_SAR}/list_awsstepfunctions.html); "
    "both state machines are STANDARD, so no express execution exists",
    "rds:CreateDBInstanceReadReplica": f"the source is a DB instance or a Multi-AZ DB cluster "
    f"({_SAR}/list_amazonrds.html); the failback replica's source is an instance",
}


@dataclass(frozen=True)
class Allowance:
    """A parliament finding the program accepts, where, and why."""

    issue: str
    kinds: frozenset[PolicyKind]
    reason: str
    applies: Callable[[Any], bool] = lambda detail: True


def _alternative_types_only(detail: Any) -> bool:
    return isinstance(detail, list) and all(d.get("action") in ALTERNATIVE_RESOURCE_TYPES for d in detail)


def _tls_version(detail: Any) -> bool:
    return "s3:TlsVersion" in str(detail)


ALLOWED_FINDINGS: tuple[Allowance, ...] = (
    Allowance(
        "MALFORMED",
        frozenset({PolicyKind.TRUST}),
        f"a role trust policy has no Resource element: the role is the resource ({_IAM}/"
        "reference_policies_elements_resource.html; parliament reads every document as an identity policy)",
        lambda detail: "neither Resource nor NotResource" in str(detail),
    ),
    Allowance(
        "RESOURCE_STAR",
        frozenset({PolicyKind.KEY}),
        'in a key policy Resource "*" means this key and nothing else '
        "(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html)",
    ),
    Allowance(
        "RESOURCE_STAR",
        frozenset({PolicyKind.BOUNDARY}),
        "a permissions boundary grants nothing: a role may do an action only where its own policies "
        f'allow it too ({_IAM}/access_policies_boundaries.html); on "*" it caps what the AWS managed '
        "policies the program attaches grant there, and its Deny of other deployments' tags fences it "
        "(automation/iam_boundary.py)",
    ),
    Allowance(
        "MISMATCHED_TYPE",
        frozenset({PolicyKind.BUCKET}),
        "parliament's Numeric pattern takes integers only; S3 compares s3:TlsVersion with 1.2 "
        "(https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html)",
        _tls_version,
    ),
    Allowance(
        "UNKNOWN_CONDITION_FOR_ACTION",
        frozenset({PolicyKind.BUCKET}),
        "the TLS guard denies every S3 action (s3:*) below TLS 1.2; the few actions that do not carry "
        "s3:TlsVersion are simply not matched by the Deny, as AWS's own example intends",
        _tls_version,
    ),
    Allowance(
        "RESOURCE_POLICY_PRIVILEGE_ESCALATION",
        frozenset({PolicyKind.IDENTITY}),
        "the deploy policy writes the program's bucket policies (TLS only) and lifecycle rules, so its "
        "holder could grant itself access to those buckets' objects; it is narrowed to the program's "
        "bucket names, and no runtime role holds it",
        lambda detail: "arn:aws:s3:::" in str(detail) and "arn:aws:s3:::*" not in str(detail),
    ),
    Allowance(
        "RESOURCE_MISMATCH",
        frozenset({PolicyKind.IDENTITY, PolicyKind.BOUNDARY}),
        "alternative resource types: "
        + "; ".join(f"{a}: {r}" for a, r in ALTERNATIVE_RESOURCE_TYPES.items()),
        _alternative_types_only,
    ),
)


def _parliament() -> Any:
    import parliament  # a dev dependency: imported only when auditing

    return parliament


def findings(document: str | dict[str, Any], kind: PolicyKind) -> list[str]:
    """Parliament's findings on ``document`` that :data:`ALLOWED_FINDINGS` does not cover."""
    text = document if isinstance(document, str) else json.dumps(document)
    policy = _parliament().analyze_policy_string(text)
    out: list[str] = []
    for finding in policy.findings:
        if any(
            a.issue == finding.issue and kind in a.kinds and a.applies(finding.detail)
            for a in ALLOWED_FINDINGS
        ):
            continue
        out.append(f"{finding.issue}: {finding.detail}")
    return out


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def star_grants(document: str | dict[str, Any]) -> list[str]:
    """Mutating actions an identity policy allows on ``"*"`` although AWS lets them name resources."""
    parliament = _parliament()
    doc = json.loads(document) if isinstance(document, str) else document
    levels = {
        f"{s['prefix']}:{p['privilege']}": p["access_level"]
        for s in parliament.iam_definition
        for p in s["privileges"]
    }
    out: list[str] = []
    for statement in _as_list(doc.get("Statement")):
        if statement.get("Effect") != "Allow" or "*" not in _as_list(statement.get("Resource")):
            continue
        for pattern in _as_list(statement.get("Action")):
            for expanded in parliament.expand_action(pattern):
                action = f"{expanded['service']}:{expanded['action']}"
                if levels.get(action) in MUTATING_ACCESS_LEVELS and action not in STAR_ONLY_ACTIONS:
                    out.append(f'{statement.get("Sid", "(no Sid)")}: {action} ({levels[action]}) on "*"')
    return out


def resource_types(action: str) -> list[str]:
    """The resource types the Service Authorization Reference defines for ``action`` ('' = none)."""
    service, name = action.split(":", 1)
    for s in _parliament().iam_definition:
        if s["prefix"] == service:
            for p in s["privileges"]:
                if p["privilege"] == name:
                    return [r["resource_type"] for r in p["resource_types"]]
    raise KeyError(f"{action} is not in the Service Authorization Reference")
