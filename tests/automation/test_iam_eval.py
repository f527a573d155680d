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
    may_overlap,
    resource_matches,
    statements_of,
    with_variables,
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


def test_unquoted_booleans_and_numbers_are_values() -> None:
    """ "Quotation marks are optional for numeric and Boolean values" (IAM JSON policy grammar)."""
    assert as_list(True) == ["true"] and as_list(False) == ["false"] and as_list(2) == ["2"]
    assert as_list([True, 3, "x"]) == ["true", "3", "x"]
    assert condition_holds({"Null": {"k": True}}, {}) is True
    assert condition_holds({"StringEquals": {"k": 2}}, {"k": "2"}) is True


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # a key the caller does not vouch for may be in the request with any value
        ({"StringEquals": {"aws:PrincipalType": "AssumedRole"}}, {}, None),
        ({"Null": {"aws:PrincipalAccount": "false"}}, {}, None),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "Environment"}}, {}, None),
        # one it sets, or vouches absent, is evaluated
        ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": "us-east-1"}, True),
        ({"StringEquals": {"vouched": "x"}}, {}, False),
        ({"StringEquals": {"aws:PrincipalType": "AssumedRole", "vouched": "x"}}, {}, False),  # False wins
    ],
)
def test_keys_the_caller_does_not_vouch_for_are_unknown(
    condition: dict[str, Any], context: dict[str, str], expected: bool | None
) -> None:
    assert condition_holds(condition, context, known=("vouched",)) is expected
    assert condition_holds(condition, context) is not None  # without known: absent is absent


def test_for_any_value_on_an_absent_key_is_false_whatever_the_operator() -> None:
    """ "For no matching context key or a null dataset, the condition returns false" (ForAnyValue)."""
    assert condition_holds({"ForAnyValue:StringNotEquals": {"k": "x"}}, {}) is False
    assert condition_holds({"ForAllValues:StringNotEquals": {"k": "x"}}, {}) is True


@pytest.mark.parametrize(
    ("pattern", "context", "expected"),
    [
        ("arn:aws:lambda:${aws:RequestedRegion}:1:function:*", {"aws:RequestedRegion": "us-west-2"},
         "arn:aws:lambda:us-west-2:1:function:*"),
        ("arn:aws:s3:::b/${AWS:UserName}/*", {"aws:username": "ann"}, "arn:aws:s3:::b/ann/*"),
        ("arn:aws:s3:::b/${aws:username, 'nobody'}/*", {}, "arn:aws:s3:::b/nobody/*"),
        ("arn:aws:s3:::b/${aws:username}/*", {}, None),
        ("arn:aws:s3:::b/${*}${?}${$}", {}, "arn:aws:s3:::b/*?$"),
        ("arn:aws:s3:::b/plain", {}, "arn:aws:s3:::b/plain"),
    ],
)  # fmt: skip
def test_policy_variables(pattern: str, context: dict[str, str], expected: str | None) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html"""
    assert with_variables(pattern, context) == expected


def test_a_statement_with_a_variable_it_cannot_fill_may_apply() -> None:
    deny = {"Effect": "Deny", "Action": "lambda:*", "Resource": "arn:aws:lambda:${aws:SourceVpc}:*"}
    assert applies(deny, "lambda:InvokeFunction", FN, {}) is None
    region = {"Effect": "Deny", "Action": "lambda:*", "Resource": "arn:aws:lambda:${aws:RequestedRegion}:*"}
    assert applies(region, "lambda:InvokeFunction", FN, {"aws:RequestedRegion": "us-west-2"}) is True
    assert applies(region, "lambda:InvokeFunction", FN, {"aws:RequestedRegion": "us-east-1"}) is False
    assert decide([ALLOW, deny], "lambda:InvokeFunction", FN, {}) is Decision.UNKNOWN


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("arn:aws:lambda:*:*:function:*-runbook", "arn:aws:lambda:us-west-2:1:function:a-b-*", True),
        ("arn:aws:lambda:us-west-2:1:function:x-*", "arn:aws:lambda:us-west-2:1:function:a-b-*", False),
        ("a?c", "abc", True),
        ("a?c", "ab", False),
        ("abc", "abd", False),
        ("*", "anything", True),
        ("", "", True),
        ("a*", "", False),
        ("*a", "b*", True),
        ("a*b", "*c", False),
    ],
)
def test_two_patterns_overlap_when_some_text_matches_both(first: str, second: str, expected: bool) -> None:
    assert may_overlap(first, second) is expected
    assert may_overlap(second, first) is expected


def test_decide_with_known_keys() -> None:
    deny = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringLike": {"aws:PrincipalArn": "*"}},
    }
    context = {"aws:RequestedRegion": "us-west-2"}
    assert decide([ALLOW, deny], "lambda:InvokeFunction", FN, context) is Decision.ALLOW
    assert decide([ALLOW, deny], "lambda:InvokeFunction", FN, context, known=()) is Decision.UNKNOWN
