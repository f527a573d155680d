"""breakiam21: adversarial review of issue 12's IAM work (boundary, deploy policy, namespaces).

Each finding's test failed on main (bc4eed3) and passes with its fix.

BI21-1, the class: a managed policy people hold is the administrator's, never the deployer's. No
boundary caps a person, and IAM has no condition on a policy document's content, so a deployer who may
write such a policy (CreatePolicyVersion with SetAsDefault, or CreatePolicy before the administrator)
makes its holders administrators. The program creates no managed policy at all; the boundary and the
operator policy are printed by ``iam --for boundary|operator`` for an administrator to create.

BI21-2, the class: the boundary an administrator made once must cover what the roles need under every
``dr:`` switch an operator turns later (iam_boundary.SWITCHED_LATER), or the first automated failover is
implicitly denied at run time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from automation import synth
from components.iam import legacy_operator_policy_arn, operator_policy_arn
from tests.automation.test_review_iam import ACCOUNT, allows
from tests.automation.test_review_iam_break12c import STAGING
from tests.automation.test_review_iam_escalation import (
    BOUNDARY,
    STAGING_TAGS,
    _boundary,
    _pair,
    _staging,
)

OPERATOR_POLICY = operator_policy_arn(ACCOUNT, "pilotlight-staging")
LEGACY_OPERATOR_POLICY = legacy_operator_policy_arn(ACCOUNT, "pilotlight-staging")
POLICY_WRITES = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)
"""What makes a managed policy allow something new (CreatePolicy before its owner does, or a new
default version: https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicyVersion.html)."""


def test_operator_policy_is_at_the_deployment_s_path_under_its_own_name() -> None:
    assert (
        f"arn:aws:iam::{ACCOUNT}:policy/pilotlight-staging/pilotlight-staging-operator"
    ) == OPERATOR_POLICY
    assert LEGACY_OPERATOR_POLICY.endswith("/pilotlight-staging/pilotlight-staging-failover-operator")


@pytest.mark.parametrize("action", POLICY_WRITES)
@pytest.mark.parametrize(
    "policy",
    [
        OPERATOR_POLICY,
        LEGACY_OPERATOR_POLICY,
        BOUNDARY,
        f"arn:aws:iam::{ACCOUNT}:policy/pilotlight-staging/anything",
        f"arn:aws:iam::{ACCOUNT}:policy/anything",
    ],
    ids=["operator", "legacy-operator", "boundary", "own-path", "account"],
)
def test_bi21_1_a_staging_deployer_cannot_write_a_managed_policy(action: str, policy: str) -> None:
    """BI21-1 (high): the staging deploy policy allowed ``iam:CreatePolicyVersion`` on the program's
    ``<app>-<env>-failover-operator``, which the README has operators hold; a staging deployer wrote
    ``"*"`` into it and every operator became administrator, production included. Now no managed
    policy is the deployer's to create or rewrite, and the operator policy and the boundary are denied
    explicitly (a deployer could otherwise create either first, before the administrator)."""
    assert not allows(_staging(), action, policy, **STAGING_TAGS)


def test_the_program_creates_no_managed_policy() -> None:
    """The class behind BI21-1: a managed policy can be attached to people, whom no boundary caps."""
    for s in _pair(*STAGING, "dr:active=true", "dr:autoFailover=true"):
        assert s.by_type("aws:iam/policy:Policy") == [], s.stack


def test_the_deployer_may_not_delete_the_operator_policy_an_earlier_version_created() -> None:
    """The old ``failover-operator`` policy leaves the dr stack's state by ``pulumi state delete``
    (README), not by a deletion the deployer would need a grant for: the deploy policy stays within
    ten managed policies, and no policy people hold is the deployer's to touch."""
    staging = _staging()
    for action in ("iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:CreatePolicyVersion"):
        assert not allows(staging, action, LEGACY_OPERATOR_POLICY, **STAGING_TAGS), action
        assert not allows(staging, action, OPERATOR_POLICY, **STAGING_TAGS), action
    assert not allows(staging, "iam:DeletePolicy", BOUNDARY, **STAGING_TAGS)


def test_the_dr_stack_exports_the_administrator_s_operator_policy() -> None:
    """README "manual in AWS" names the ``operatorPolicyArn`` output: it is the policy the
    administrator creates from ``iam --for operator``, at the name and path that command prints."""
    _, dr = _pair(*STAGING)
    assert dr.outputs["operatorPolicyArn"] == operator_policy_arn(synth.ACCOUNT_ID, "pilotlight-staging")


def _printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    from automation.__main__ import main as automation_main

    assert automation_main(["iam", "--for", "operator", *argv]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["policies"]
    return entry


def test_iam_for_operator_starts_and_watches_only_the_two_runbooks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--for operator``: one document with the name and path of ``operatorPolicyArn``: Step Functions'
    StartExecution and ListExecutions on the failover and failback machines, Describe/GetExecutionHistory
    on their executions, nothing on ``"*"``."""
    entry = _printed(capsys, "--account", "210987654321", "--set", "environment=staging")
    assert f"arn:aws:iam::210987654321:policy{entry['path']}{entry['name']}" == operator_policy_arn(
        "210987654321", "pilotlight-staging"
    )
    statements = entry["document"]["Statement"]
    machines = {"failover", "failback"}
    start = next(s for s in statements if s["Action"] == "states:StartExecution")
    assert {r.rsplit("-", 1)[-1] for r in start["Resource"]} == machines
    assert all(r.startswith("arn:aws:states:us-west-2:210987654321:stateMachine:") for r in start["Resource"])
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "states:StartExecution",
        "states:ListExecutions",
        "states:DescribeExecution",
        "states:GetExecutionHistory",
    }
    assert all(s["Resource"] != "*" and "*" not in s["Resource"] for s in statements)
    assert all(s["Effect"] == "Allow" for s in statements)


def test_iam_for_operator_from_the_dr_outputs_names_the_deployed_machines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outputs = tmp_path / "dr.json"
    machine = "arn:aws:states:eu-west-1:210987654321:stateMachine:shop-prod-{}"
    outputs.write_text(
        json.dumps(
            {
                "failoverStateMachineArn": machine.format("failover"),
                "failbackStateMachineArn": machine.format("failback"),
                "operatorPolicyArn": "arn:aws:iam::210987654321:policy/shop-prod/shop-prod-operator",
            }
        )
    )
    entry = _printed(capsys, "--outputs", str(outputs))
    assert (entry["path"], entry["name"]) == ("/shop-prod/", "shop-prod-operator")
    (watch,) = [s for s in entry["document"]["Statement"] if s["Sid"] == "WatchTheirRuns"]
    assert watch["Resource"] == [
        "arn:aws:states:eu-west-1:210987654321:execution:shop-prod-failover:*",
        "arn:aws:states:eu-west-1:210987654321:execution:shop-prod-failback:*",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"failoverStateMachineArn": "x"}, "no failbackStateMachineArn"),
        (
            {
                "failoverStateMachineArn": "arn:aws:s3:::b",
                "failbackStateMachineArn": "arn:aws:s3:::b",
                "operatorPolicyArn": "arn:aws:iam::210987654321:policy/a-b/a-b-operator",
            },
            "is not a Step Functions state machine ARN",
        ),
        ([], "expected the dr stack's outputs"),
        (
            {
                "failoverStateMachineArn": "arn:aws:states:eu-west-1:210987654321:stateMachine:a-b-failover",
                "failbackStateMachineArn": "arn:aws:states:eu-west-1:210987654321:stateMachine:a-b-failback",
                "operatorPolicyArn": "a-b-operator",
            },
            "operatorPolicyArn is not an IAM policy ARN",
        ),
    ],
)
def test_iam_for_operator_refuses_outputs_it_cannot_use_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: Any, message: str
) -> None:
    from automation.__main__ import main as automation_main

    outputs = tmp_path / "dr.json"
    outputs.write_text(json.dumps(content))
    assert automation_main(["iam", "--for", "operator", "--outputs", str(outputs)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "Traceback" not in captured.err


def _events_role_statements() -> list[dict[str, Any]]:
    out = []
    for s in _pair(*STAGING, "dr:active=true", "dr:autoFailover=true"):
        for r in s.by_type("aws:iam/rolePolicy:RolePolicy"):
            if "events-policy" in r.name:
                out.extend(json.loads(r.inputs["policy"])["Statement"])
    return out


def test_bi21_2_the_boundary_made_before_dr_auto_failover_covers_its_events_role() -> None:
    """BI21-2 (medium, first-failover failure): the boundary an administrator made once (``iam --for
    boundary``) was computed from the configuration at that moment; turning on ``dr:autoFailover``
    later added the EventBridge role's ``states:StartExecution``, which the boundary did not allow, and
    the automated failover was implicitly denied at run time (a boundary caps the role's effective
    permissions: https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
    The boundary is now made from the stack under every later switch (iam_boundary.SWITCHED_LATER)."""
    (boundary,) = _boundary(*STAGING)
    statements = _events_role_statements()
    assert statements, "dr:autoFailover=true creates the events role policy"
    (machine,) = {
        r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert machine.endswith(":stateMachine:pilotlight-staging-failover")
    concrete = f"arn:aws:states:us-west-2:{ACCOUNT}:stateMachine:pilotlight-staging-failover"
    assert allows((boundary,), "states:StartExecution", concrete, **STAGING_TAGS)
