"""``python -m automation iam``: the IAM a human needs, derived from what the program does.

The deploy policy covers every resource type and look-up the stacks record (in every configuration
the other tests synthesize), names only actions of the Service Authorization Reference, never a
``service:*``, passes parliament, and fits IAM's managed-policy size. The break-glass policy is the
runbook role's statements for the stack's own ``runbook`` output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from automation import iam, synth
from automation.__main__ import main as automation_main
from components import iam_audit
from tests.components.conftest import synthesize

CONFIGS: list[dict[str, Any]] = [
    {},
    {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}},
    {
        "pilotlight:routing": {
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/a",
            "drCertificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/b",
            "alertEmail": "ops@example.com",
        },
        "pilotlight:compute": {"amiId": "ami-0123456789abcdef0", "drWarmPool": 1},
    },
]
DR_FLAGS = {"dr:active": True, "dr:autoFailover": True}


def _pair(overrides: dict[str, Any]) -> list[synth.Synthesis]:
    return [synthesize("primary", overrides), synthesize("dr", {**overrides, **DR_FLAGS})]


def _actions(document: dict[str, Any]) -> list[str]:
    return [
        a
        for s in document["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


@pytest.mark.parametrize("overrides", CONFIGS, ids=["aurora", "rds-postgres", "certificates"])
def test_every_recorded_type_and_look_up_has_its_actions(overrides: dict[str, Any]) -> None:
    syntheses = _pair(overrides)
    types = {r.type for s in syntheses for r in s.aws_resources()}
    tokens = {token for s in syntheses for token, _, _ in s.invokes}
    assert sorted(types - set(iam.DEPLOY_ACTIONS)) == []
    assert sorted(tokens - set(iam.INVOKE_ACTIONS)) == []


def test_every_action_of_the_tables_is_in_the_service_authorization_reference() -> None:
    actions = {a for group in (*iam.DEPLOY_ACTIONS.values(), *iam.INVOKE_ACTIONS.values()) for a in group}
    for action in sorted(actions):
        assert "*" not in action, f"{action}: name actions, never a wildcard"
        assert iam_audit.resource_types(action) is not None  # raises KeyError when unknown
        assert action.split(":")[0] in iam.SAR_PAGES, f"{action}: cite its service's page in SAR_PAGES"


def test_the_deploy_policies_pass_parliament_and_fit_iam_limits() -> None:
    docs = iam.deploy_policies(_pair({}), "210987654321")
    assert docs
    for doc in docs:
        assert iam._size(doc) <= iam.MANAGED_POLICY_MAX
        assert iam_audit.findings(doc, iam_audit.PolicyKind.IDENTITY) == []
        for statement in doc["Statement"]:
            if statement["Effect"] == "Allow" and statement["Resource"] == "*":
                for action in _actions({"Statement": [statement]}):
                    assert iam_audit.resource_types(action) in ([], [""]), (
                        f"{action} on * could name resources"
                    )
                assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == [
                    "us-east-1",
                    "us-west-2",
                ]
    actions = {a for d in docs for a in _actions(d)}
    assert {"rds:CreateGlobalCluster", "lambda:CreateFunction", "iam:PassRole", "kms:CreateKey"} <= actions
    create = next(
        s
        for d in docs
        for s in d["Statement"]
        if s["Effect"] == "Allow" and "iam:CreateRole" in _actions({"Statement": [s]})
    )
    # Roles under the deployment's IAM path (components.iam.iam_path), with its boundary only.
    assert create["Resource"] == ["arn:aws:iam::210987654321:role/pilotlight-production/*"]
    assert create["Condition"] == {
        "ArnEquals": {
            "iam:PermissionsBoundary": "arn:aws:iam::210987654321:policy/pilotlight-production/"
            "pilotlight-production-boundary"
        }
    }


def test_break_glass_from_the_outputs_file_is_the_runbook_roles_statements(tmp_path: Path) -> None:
    dr = synthesize("dr")
    outputs = tmp_path / "runbook.json"
    outputs.write_text(json.dumps({"runbook": dr.outputs["runbook"]}))
    docs = iam.policies("break-glass", account="123456789012", overrides=[], outputs=str(outputs))
    (role_policy,) = [
        p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "dr-orchestrator-runbook-policy"
    ]
    deployed = json.loads(role_policy.inputs["policy"])["Statement"]
    # split into managed-policy-sized documents (review breakiam24 BI24-3): together, the role's statements
    printed = [s for d in docs for s in d["Statement"]]
    assert sorted(printed, key=json.dumps) == sorted(
        [s for s in deployed if s["Sid"] != "OwnLogs"], key=json.dumps
    )
    policy = {"Version": "2012-10-17", "Statement": printed}
    assert iam_audit.star_grants(policy) == []
    assert iam_audit.findings(policy, iam_audit.PolicyKind.IDENTITY) == []


def test_break_glass_offline_names_the_program_s_resources(capsys: pytest.CaptureFixture[str]) -> None:
    assert automation_main(["iam", "--for", "break-glass", "--account", "210987654321"]) == 0
    entries = json.loads(capsys.readouterr().out)["policies"]
    doc = {"Version": "2012-10-17", "Statement": [s for e in entries for s in e["document"]["Statement"]]}
    assert synth.COMPUTED not in json.dumps(doc) and "123456789012" not in json.dumps(doc)
    assert iam_audit.star_grants(doc) == [] and iam_audit.findings(doc, iam_audit.PolicyKind.IDENTITY) == []
    assert not any(a.endswith(":*") for a in _actions(doc))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--for", "admin"],
            "invalid choice: 'admin' (choose from 'deploy', 'break-glass', 'boundary', 'operator')",
        ),
        (["--for", "deploy", "--account", "12"], "an AWS account id is 12 digits"),
        (["--for", "operator", "--account", "12"], "an AWS account id is 12 digits"),
        (
            ["--for", "break-glass", "--outputs", "/nonexistent/runbook.json"],
            "--outputs /nonexistent/runbook.json",
        ),
        (["--for", "deploy", "--set", "database.mode=mongo"], "pilotlight:database.mode"),
    ],
    ids=["bad-for", "bad-account", "operator-bad-account", "missing-outputs", "bad-config"],
)
def test_bad_input_gets_one_clear_error_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = automation_main(["iam", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_a_runbook_output_without_the_keys_is_refused(tmp_path: Path) -> None:
    outputs = tmp_path / "old.json"
    outputs.write_text(json.dumps({"runbook": {"notifyTopicArn": "arn:aws:sns:us-west-2:123456789012:t"}}))
    with pytest.raises(iam.IamInputError, match="redeploy the dr stack"):
        iam.policies("break-glass", account="123456789012", overrides=[], outputs=str(outputs))


def test_deploy_names_what_iam_cannot_fence_on_stderr_and_keeps_stdout_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The writes no policy of one account can keep between environments (UNFENCEABLE_IN_ONE_ACCOUNT,
    exactly the blind writes: tests/automation/test_review_iam_break12c.py) are told to the person on
    stderr, each by action and resource type, with the one fence: an account per environment (AWS
    Well-Architected SEC01-BP01). stdout stays the JSON a pipeline parses."""
    assert automation_main(["iam", "--for", "deploy", "--account", "210987654321"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["policies"]
    missing = [f"{a} on {k}" for a, k in iam.UNFENCEABLE_IN_ONE_ACCOUNT if f"{a} on {k}" not in err]
    assert missing == [], f"stderr does not name {missing}: {err!r}"
    assert "one AWS account per environment" in err and "SEC01-BP01" in err
    assert "SEC01" not in out
