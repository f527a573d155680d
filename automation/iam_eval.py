"""IAM's evaluation of one request against a set of policy statements, for ``iam --for boundary --check-live``.

The check asks of the boundary in the account what IAM would answer for the requests the roles make
(review breakiam22: reading a live document's ``Action``/``Resource`` as text missed Denies with a
Condition, ``NotAction``, ``NotResource``, and Denies of one resource inside a needed pattern). It follows
AWS's documented evaluation:

- an explicit Deny that applies wins; else an Allow that applies is needed; else the request is implicitly
  denied (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html);
- a statement applies when its ``Action`` names the action, or its ``NotAction`` does not
  (reference_policies_elements_notaction.html), case-insensitively; when its ``Resource`` names the
  resource, or its ``NotResource`` does not (reference_policies_elements_notresource.html); and when every
  condition holds: operators are ANDed, keys in one operator ANDed, a key's values ORed
  (reference_policies_elements_condition_logic_multiple_context_keys_or_values.html).

What it cannot evaluate (an operator it does not know, a numeric, date or IP condition) is neither
granted nor ignored: the request's decision is :attr:`Decision.UNKNOWN`, which the check reports, since a
boundary that may deny a failover step is not one to deploy against.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any


class Decision(enum.Enum):
    ALLOW = "allowed"
    DENY = "explicitly denied"
    IMPLICIT = "not allowed"
    UNKNOWN = "cannot be evaluated"


def _text(value: Any) -> str:
    """A policy value as text: "Quotation marks are optional for numeric and Boolean values"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_list(value: Any) -> list[str]:
    """An element that may be one value or a list of them."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    return [_text(value)]


def statements_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A document's statements: ``Statement`` may be one object or a list of them (IAM JSON grammar:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html)."""
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _wildcard(pattern: str, *, across_colons: bool = True) -> str:
    out = []
    for i, char in enumerate(pattern):
        if char == "*":
            last = i + 1 == len(pattern) or pattern[i + 1] == ":"
            out.append(".*" if across_colons or last else "[^:]*")
        elif char == "?":
            out.append("." if across_colons else "[^:]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def action_matches(pattern: str, action: str) -> bool:
    """An Action element's entry against an action: case-insensitive, ``*`` and ``?`` wildcards
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html)."""
    return re.fullmatch(_wildcard(pattern.lower()), action.lower()) is not None


def resource_pattern(pattern: str) -> re.Pattern[str]:
    """A Resource element's entry: ``?`` one character, ``*`` any within its colon-separated segment and,
    "if the * wildcard is the last character of a resource ARN segment, it can expand to match beyond
    colon boundaries" (reference_policies_elements_resource.html, "Using wildcards in resource ARNs")."""
    return re.compile(_wildcard(pattern, across_colons=False) + "$")


def resource_matches(pattern: str, resource: str) -> bool:
    return resource_pattern(pattern).match(resource) is not None


_STRING = {
    "StringEquals": (False, False, True),
    "StringNotEquals": (True, False, True),
    "StringEqualsIgnoreCase": (False, False, False),
    "StringNotEqualsIgnoreCase": (True, False, False),
    "StringLike": (False, True, True),
    "StringNotLike": (True, True, True),
    # ArnEquals and ArnLike behave alike (both take wildcards); their negations likewise
    # (reference_policies_elements_condition_operators.html, "Amazon Resource Name (ARN) condition
    # operators").
    "ArnEquals": (False, True, True),
    "ArnLike": (False, True, True),
    "ArnNotEquals": (True, True, True),
    "ArnNotLike": (True, True, True),
}
"""operator -> (negated, wildcards, case-sensitive)."""


def condition_holds(
    condition: Mapping[str, Mapping[str, Any]],
    context: Mapping[str, str],
    known: Collection[str] | None = None,
) -> bool | None:
    """Whether ``condition`` holds for a request with ``context`` (one value per key; keys compared
    case-insensitively); None when an operator is one this module does not evaluate.

    A key absent from the request fails a positive operator and satisfies a negated one; the
    ``...IfExists`` form holds when the key is absent; ``Null: true`` holds when it is absent
    (reference_policies_elements_condition_operators.html). ``ForAnyValue:``/``ForAllValues:`` on
    single-valued keys: the first fails on an absent key, the second holds
    (reference_policies_condition-single-vs-multi-valued-context-keys.html: "For no matching context key
    or a null dataset, the condition returns false" for ForAnyValue, whatever the operator).

    ``known``: the keys whose absence from ``context`` the caller vouches for; a key outside it is one
    the request may carry with any value (``aws:PrincipalArn`` is in every signed request:
    reference_policies_condition-keys.html), so a condition on it is None. Without ``known``, every
    key absent from ``context`` is absent."""
    request = {k.lower(): v for k, v in context.items()}
    vouched = None if known is None else {k.lower() for k in (*known, *context)}
    verdicts: list[bool | None] = []
    for raw_operator, keys in condition.items():
        qualifier, _, operator = raw_operator.rpartition(":")
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        for key, values in keys.items():
            value = request.get(key.lower())
            if value is None and vouched is not None and key.lower() not in vouched:
                verdicts.append(None)
                continue
            if operator == "Null":
                verdicts.append((value is None) == (str(as_list(values)[0]).lower() == "true"))
                continue
            if operator not in _STRING and operator != "Bool":
                verdicts.append(None)
                continue
            negated = operator != "Bool" and _STRING[operator][0]
            if value is None:
                absent = {"ForAnyValue": False, "ForAllValues": True}.get(qualifier, if_exists or negated)
                verdicts.append(absent)
                continue
            if operator == "Bool":
                verdicts.append(value.lower() in (v.lower() for v in as_list(values)))
                continue
            _, wildcards, case = _STRING[operator]
            text = value if case else value.lower()
            patterns = [v if case else v.lower() for v in as_list(values)]
            matched = any(
                re.fullmatch(_wildcard(p), text) is not None if wildcards else text == p for p in patterns
            )
            verdicts.append(matched != negated)
    if any(v is False for v in verdicts):
        return False
    return None if any(v is None for v in verdicts) else True


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERALS = {"*": "*", "?": "?", "$": "$"}


def with_variables(pattern: str, context: Mapping[str, str]) -> str | None:
    """``pattern`` with its policy variables (``${aws:RequestedRegion}``) replaced by the request's
    values; None when one names a key the request does not carry and gives no default
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html)."""
    request = {k.lower(): v for k, v in context.items()}
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        key = match.group(1)
        if key in _LITERALS:
            return _LITERALS[key]
        name, _, default = key.partition(",")
        found = request.get(name.strip().lower())
        if found is not None:
            return found
        if default.strip():
            return default.strip().strip("'")
        missing = True
        return ""

    out = _VARIABLE.sub(value, pattern)
    return None if missing else out


def names_action(statement: Mapping[str, Any], action: str) -> bool:
    """Whether ``statement``'s Action names ``action``, or its NotAction does not."""
    if "NotAction" in statement:
        return not any(action_matches(p, action) for p in as_list(statement["NotAction"]))
    return any(action_matches(p, action) for p in as_list(statement.get("Action")))


def applies(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, str],
    known: Collection[str] | None = None,
) -> bool | None:
    """Whether ``statement`` applies to the request (None: a condition, or a policy variable in its
    resources, cannot be evaluated)."""
    if not names_action(statement, action):
        return False
    element = "NotResource" if "NotResource" in statement else "Resource"
    patterns = [with_variables(p, context) for p in as_list(statement.get(element))]
    if any(p is None for p in patterns):
        return None
    matched = any(resource_matches(p, resource) for p in patterns if p is not None)
    if matched == (element == "NotResource"):
        return False
    return condition_holds(statement.get("Condition") or {}, context, known)


def may_overlap(first: str, second: str) -> bool:
    """Whether some resource matches both patterns, reading each ``*`` as any text and ``?`` as any one
    character (wider than IAM's segment rule, so an overlap is never missed)."""

    @functools.cache
    def overlap(i: int, j: int) -> bool:
        if i == len(first) and j == len(second):
            return True
        if (
            i < len(first)
            and first[i] == "*"
            and (overlap(i + 1, j) or (j < len(second) and overlap(i, j + 1)))
        ):
            return True
        if (
            j < len(second)
            and second[j] == "*"
            and (overlap(i, j + 1) or (i < len(first) and overlap(i + 1, j)))
        ):
            return True
        if i < len(first) and j < len(second) and "*" not in (first[i], second[j]):
            return (first[i] == second[j] or "?" in (first[i], second[j])) and overlap(i + 1, j + 1)
        return False

    return overlap(0, 0)


def decide(
    statements: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str],
    known: Collection[str] | None = None,
) -> Decision:
    """IAM's decision for one request under ``statements`` (one policy, or a boundary); ``known`` as
    :func:`condition_holds`."""
    allow: bool | None = False
    deny: bool | None = False
    for statement in statements:
        verdict = applies(statement, action, resource, context, known)
        if statement.get("Effect") == "Deny":
            deny = True if verdict is True or deny is True else (None if verdict is None else deny)
        elif statement.get("Effect") == "Allow":
            allow = True if verdict is True or allow is True else (None if verdict is None else allow)
    if deny is True:
        return Decision.DENY
    if deny is None:
        return Decision.UNKNOWN
    if allow is True:
        return Decision.ALLOW
    return Decision.UNKNOWN if allow is None else Decision.IMPLICIT
