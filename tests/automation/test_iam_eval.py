"""automation/iam_eval.py: IAM's decision for one request, as AWS documents it.

Invariant: ``decide`` answers ALLOW only when an Allow applies and no Deny may apply; DENY when a Deny
applies; UNKNOWN when a statement that could change the answer has a condition it cannot evaluate;
IMPLICIT otherwise (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
"""

from __future__ import annotations

from typing import Any

import pytest

from automation.iam_eval import (
    Decision,
    action_matches,
    applies,
    as_list,
    condition_holds,
    decide,
    resource_matches,
    statements_of,
)

FN = "arn:aws:lambda:us-west-2:111122223333:function:a-b-runbook"


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("lambda:InvokeFunction", "lambda:InvokeFunction", True),
        ("Lambda:invokefunction", "lambda:InvokeFunction", True),  # case-insensitive
        ("lambda:Invoke*", "lambda:InvokeFunction", True),
        ("lambda:*", "lambda:InvokeFunction", True),
        ("*", "lambda:InvokeFunction", True),
        ("lambda:Get?unction", "lambda:GetFunction", True),
        ("lambda:Get?unction", "lambda:GetXXunction", False),
        ("lambda:Invoke", "lambda:InvokeFunction", False),
        ("states:*", "lambda:InvokeFunction", False),
        # no segments in an action: a wildcard may stand for the colon
        ("*Function", "lambda:InvokeFunction", True),
        ("lambda?InvokeFunction", "lambda:InvokeFunction", True),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", FN, True),
        (FN, FN, True),
        ("arn:aws:lambda:*:111122223333:function:a-b-*", FN, True),
        ("arn:aws:lambda:us-east-1:111122223333:function:*", FN, False),
        # a * inside a segment stays in it; at a segment's end it may cross colons
        ("arn:aws:lambda:us-*-2:111122223333:function:a-b-runbook", FN, True),
        ("arn:aws:lambda:u*:function:a-b-runbook", FN, True),  # last in its segment: crosses
        ("arn:aws:lambda:u*2:function:a-b-runbook", FN, False),  # inside its segment: does not
        ("arn:aws:lambda:us-west-2:1*runbook", FN, False),
        ("arn:aws:lambda:us-west-2?111122223333:function:a-b-runbook", FN, False),  # ? is one, not :
        ("arn:aws:lambda:*", FN, True),
        ("arn:aws:lambda:us-west-?:111122223333:function:a-b-runbook", FN, True),
        ("arn:aws:lambda:us-west-2:111122223333:function:A-B-runbook", FN, False),  # case-sensitive
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(pattern, resource) is expected


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        (
            {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}},
            {"aws:RequestedRegion": "us-west-2"},
            True,
        ),
        ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "us-west-2"}, False),
        ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {}, False),  # absent: a positive fails
        (
            {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}},
            {"aws:RequestedRegion": "us-west-2"},
            True,
        ),
        (
            {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}},
            {"aws:RequestedRegion": "us-east-1"},
            False,
        ),
        ({"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}, {}, True),  # absent: a negation holds
        ({"StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "x"}, False),
        (
            {"StringEquals": {"AWS:requestedregion": "us-east-1"}},
            {"aws:RequestedRegion": "us-east-1"},
            True,
        ),  # key case
        ({"StringEquals": {"k": "Value"}}, {"k": "value"}, False),  # value case
        ({"StringEqualsIgnoreCase": {"k": "Value"}}, {"k": "value"}, True),
        ({"StringEqualsIgnoreCase": {"k": "value"}}, {"k": "VALUE"}, True),
        ({"StringEquals": {"k": "a*"}}, {"k": "abc"}, False),  # StringEquals takes * literally
        ({"StringLike": {"k": "a*b"}}, {"k": "a:b"}, True),
        ({"StringNotEqualsIgnoreCase": {"k": "Value"}}, {"k": "value"}, False),
        ({"StringLike": {"k": "Pilotlight/*"}}, {"k": "Pilotlight/Failover/a-b"}, True),
        ({"StringLike": {"k": "Pilotlight/?"}}, {"k": "Pilotlight/ab"}, False),
        ({"StringNotLike": {"k": "Pilotlight/*"}}, {"k": "Other"}, True),
        ({"ArnEquals": {"k": "arn:aws:iam::1:policy/*"}}, {"k": "arn:aws:iam::1:policy/x"}, True),
        ({"ArnNotEquals": {"k": "arn:aws:iam::1:policy/b"}}, {"k": "arn:aws:iam::1:policy/b"}, False),
        ({"ArnNotLike": {"k": "arn:aws:iam::1:policy/*"}}, {"k": "arn:aws:iam::2:policy/b"}, True),
        ({"Null": {"k": "true"}}, {}, True),
        ({"Null": {"k": "true"}}, {"k": "x"}, False),
        ({"Null": {"k": "false"}}, {"k": "x"}, True),
        ({"Null": {"k": "false"}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "TRUE"}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {}, False),
        ({"BoolIfExists": {"aws:SecureTransport": "true"}}, {}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": "b"}, False),
        # operators are ANDed, and keys within one
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"}, False),
        ({"Null": {"a": "true", "b": "true"}}, {"b": "x"}, False),
        ({"Bool": {"a": "true", "b": "true"}}, {"a": "true", "b": "false"}, False),
        ({"StringEqualsIfExists": {"a": "1", "b": "2"}}, {"b": "3"}, False),
        ({"IpAddress": {"a": "10.0.0.0/8"}, "StringEquals": {"b": "2"}}, {"b": "3"}, False),
        ({"ForAnyValue:StringEquals": {"a": "1", "b": "2"}}, {"a": "1"}, False),
        ({"StringEquals": {"a": "1"}, "StringNotEquals": {"b": "2"}}, {"a": "1", "b": "3"}, True),
        ({"StringEquals": {"a": "1"}, "StringNotEquals": {"b": "2"}}, {"a": "1", "b": "2"}, False),
        # what it cannot evaluate: None, unless another part already fails
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, None),
        ({"NumericLessThan": {"k": "3"}}, {"k": "1"}, None),
        ({"NumericLessThan": {"k": "3"}, "StringEquals": {"a": "1"}}, {"a": "2"}, False),
        ({}, {}, True),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, str], expected: bool | None) -> None:
    assert condition_holds(condition, context) is expected


def test_not_action_and_not_resource() -> None:
    """NotAction "matches everything except the specified list of actions"; NotResource every
    resource except those listed (reference_policies_elements_notaction.html, ..._notresource.html)."""
    assert (
        applies({"NotAction": ["iam:*", "sts:*"], "Resource": "*"}, "lambda:InvokeFunction", FN, {}) is True
    )
    assert applies({"NotAction": "lambda:*", "Resource": "*"}, "lambda:InvokeFunction", FN, {}) is False
    assert applies({"Action": "lambda:*", "NotResource": FN}, "lambda:InvokeFunction", FN, {}) is False
    assert (
        applies({"Action": "lambda:*", "NotResource": "arn:aws:s3:::*"}, "lambda:InvokeFunction", FN, {})
        is True
    )
    assert applies({"Action": "lambda:*"}, "lambda:InvokeFunction", FN, {}) is False  # no Resource names none


ALLOW = {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        ([ALLOW], Decision.ALLOW),
        ([], Decision.IMPLICIT),
        ([{"Effect": "Allow", "Action": "states:*", "Resource": "*"}], Decision.IMPLICIT),
        ([ALLOW, {"Effect": "Deny", "Action": "lambda:Invoke*", "Resource": FN}], Decision.DENY),
        ([{"Effect": "Deny", "Action": "lambda:Invoke*", "Resource": FN}, ALLOW], Decision.DENY),  # order
        ([ALLOW, {"Effect": "Deny", "Action": "lambda:*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4/32"}}}], Decision.UNKNOWN),
        ([{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-west-2"}}}, ALLOW], Decision.ALLOW),
        ([{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}, ALLOW], Decision.DENY),
        ([{**ALLOW, "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4/32"}}}], Decision.UNKNOWN),
        ([{**ALLOW, "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4/32"}}}, ALLOW], Decision.ALLOW),
        ([{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"x": "1"}}}, {"Effect": "Deny", "Action": "*", "Resource": "*"}, ALLOW], Decision.DENY),
    ],
)  # fmt: skip
def test_decide(statements: list[dict[str, Any]], expected: Decision) -> None:
    assert decide(statements, "lambda:InvokeFunction", FN, {"aws:RequestedRegion": "us-west-2"}) is expected


def test_elements_that_may_be_one_value_or_a_list() -> None:
    assert as_list(None) == [] and as_list("a") == ["a"] and as_list(["a", "b"]) == ["a", "b"]
    one = {"Effect": "Allow", "Action": "a:b", "Resource": "*"}
    assert statements_of({"Statement": one}) == [one]
    assert statements_of({"Statement": [one, one]}) == [one, one]
    assert statements_of({}) == []
