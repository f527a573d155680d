"""``iam --for boundary --check-live``: the boundary in the account against the one the roles need.

The boundary is an administrator's, created once (automation/iam_boundary.py). A new version of the
program, or a configuration the boundary was not made for, can give the roles a statement the live
boundary does not allow: the deploy succeeds (PutRolePolicy is conditioned on the boundary's ARN, not its
content) and the step is implicitly denied at run time, in a failover
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html). The check says so
before a deploy. Invariant: it reports a gap exactly when the live boundary allows less than, or denies
less than, the one this version makes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from automation import iam
from automation.iam_boundary import boundary_gaps

REGIONS = ("us-east-1", "us-west-2")
"""The deployment's regions A and B: the requests the check makes are in them."""
BOTH = " in us-east-1, us-west-2"

REQUIRED: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "RolesOnStar", "Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"},
        {
            "Sid": "RolesOwnMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": ["Pilotlight/Failover/a-b"]}},
        },
        {
            "Sid": "RolesOnTheirResources",
            "Effect": "Allow",
            "Action": ["states:StartExecution", "lambda:InvokeFunction"],
            "Resource": [
                "arn:aws:states:*:111122223333:stateMachine:a-b-*",
                "arn:aws:lambda:*:111122223333:function:a-b-*",
            ],
        },
        {"Sid": "NoIamNoSts", "Effect": "Deny", "Action": ["iam:*", "sts:*"], "Resource": "*"},
    ],
}


def _without(action: str) -> dict[str, Any]:
    live = copy.deepcopy(REQUIRED)
    for statement in live["Statement"]:
        if statement["Effect"] == "Allow" and isinstance(statement["Action"], list):
            statement["Action"] = [a for a in statement["Action"] if a != action]
    return live


def test_the_same_boundary_has_no_gap() -> None:
    assert boundary_gaps(REQUIRED, REQUIRED, REGIONS) == []


def test_a_boundary_made_before_auto_failover_lacks_its_start_execution() -> None:
    """BI21-2's shape: the live boundary lacks the action a later switch gives a role."""
    assert boundary_gaps(REQUIRED, _without("states:StartExecution"), REGIONS) == [
        f"not allowed: states:StartExecution on arn:aws:states:*:111122223333:stateMachine:a-b-*{BOTH}",
        f"not allowed: states:StartExecution on arn:aws:lambda:*:111122223333:function:a-b-*{BOTH}",
    ]


def test_a_wider_live_boundary_covers_a_narrower_need() -> None:
    """Wildcards read as IAM reads them: ``states:*`` on ``*`` covers StartExecution on the machines,
    ``Lambda:Invoke*`` InvokeFunction (case-insensitive); extra Denies take nothing needed."""
    live = {
        "Statement": [
            {"Effect": "Allow", "Action": ["states:*", "Lambda:Invoke*", "xray:*"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": ["Pilotlight/Failover/a-b"]}},
            },
            {"Effect": "Deny", "Action": ["iam:*", "sts:*", "s3:*"], "Resource": "*"},
        ]
    }
    assert boundary_gaps(REQUIRED, live, REGIONS) == []


def test_a_narrower_resource_or_another_condition_is_a_gap() -> None:
    live = copy.deepcopy(REQUIRED)
    live["Statement"][2]["Resource"] = [
        "arn:aws:states:us-east-1:111122223333:stateMachine:a-b-*",
        "arn:aws:lambda:*:111122223333:function:a-b-*",
    ]
    live["Statement"][1]["Condition"] = {"StringEquals": {"cloudwatch:namespace": ["Other"]}}
    assert boundary_gaps(REQUIRED, live, REGIONS) == [
        f'not allowed: cloudwatch:PutMetricData on * {{"cloudwatch:namespace": "Pilotlight/Failover/a-b"}}{BOTH}',
        "not allowed: states:StartExecution on arn:aws:states:*:111122223333:stateMachine:a-b-* in us-west-2",
        "not allowed: lambda:InvokeFunction on arn:aws:states:*:111122223333:stateMachine:a-b-* in us-west-2",
    ]


def test_a_boundary_from_before_the_namespace_fence_is_reported() -> None:
    """A boundary an earlier version made allowed PutMetricData into any namespace (README): the roles
    have what they need, but another environment's switch is not fenced."""
    live = copy.deepcopy(REQUIRED)
    del live["Statement"][1]["Condition"]
    assert boundary_gaps(REQUIRED, live, REGIONS) == [
        'allowed without its condition: cloudwatch:PutMetricData on * (needs {"StringEquals": '
        f'{{"cloudwatch:namespace": ["Pilotlight/Failover/a-b"]}}}}){BOTH}'
    ]


def test_an_unconditional_live_deny_takes_an_allow_back() -> None:
    live = copy.deepcopy(REQUIRED)
    live["Statement"].append({"Effect": "Deny", "Action": "xray:Put*", "Resource": "*"})
    assert boundary_gaps(REQUIRED, live, REGIONS) == [f"explicitly denied: xray:PutTraceSegments on *{BOTH}"]


def test_a_missing_or_narrower_deny_is_a_gap() -> None:
    live = copy.deepcopy(REQUIRED)
    live["Statement"][3]["Action"] = ["iam:*"]
    assert boundary_gaps(REQUIRED, live, REGIONS) == [f"not denied (NoIamNoSts): sts:* on *{BOTH}"]
    live["Statement"].pop()
    assert boundary_gaps(REQUIRED, live, REGIONS) == [
        f"not denied (NoIamNoSts): iam:* on *{BOTH}",
        f"not denied (NoIamNoSts): sts:* on *{BOTH}",
    ]


ACCOUNT = "123456789012"
"""moto's account: STS GetCallerIdentity answers it, and the boundary is made for it."""


def _create(document: dict[str, Any]) -> None:
    boto3.client("iam", region_name="us-east-1").create_policy(
        PolicyName="pilotlight-production-boundary",
        Path="/pilotlight-production/",
        PolicyDocument=json.dumps(document),
    )


@pytest.fixture(scope="module")
def required() -> dict[str, Any]:
    (document,) = iam.policies("boundary", account=ACCOUNT, overrides=[], outputs=None)
    return document


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from automation.__main__ import main as automation_main

    code = automation_main(["iam", "--for", "boundary", "--check-live", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@mock_aws
def test_check_live_passes_on_the_boundary_it_prints(
    capsys: pytest.CaptureFixture[str], required: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _create(required)
    code, out, _ = _run(capsys)
    assert (code, out.split(":")[0]) == (0, "ok")


@mock_aws
def test_check_live_lists_what_an_older_boundary_lacks_and_exits_1(
    capsys: pytest.CaptureFixture[str], required: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    older = copy.deepcopy(required)
    for statement in older["Statement"]:
        if statement["Effect"] == "Allow" and isinstance(statement["Action"], list):
            statement["Action"] = [a for a in statement["Action"] if a != "states:StartExecution"]
    _create(older)
    code, out, _ = _run(capsys)
    assert code == 1
    assert "lacks" in out and "not allowed: states:StartExecution on arn:aws:states:" in out


@mock_aws
def test_check_live_without_the_boundary_says_who_creates_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    code, out, err = _run(capsys)
    assert (code, out) == (2, "")
    assert "does not exist: an administrator creates it" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["iam", "--for", "deploy", "--check-live", "--account", ACCOUNT],
            "--check-live is for --for boundary",
        ),
        (["iam", "--for", "boundary", "--check-live", "--account", "12"], "an AWS account id is 12 digits"),
    ],
)
def test_check_live_refuses_what_it_cannot_check_before_calling_aws(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from automation.__main__ import main as automation_main

    assert automation_main(argv) == 2
    assert message in capsys.readouterr().err
