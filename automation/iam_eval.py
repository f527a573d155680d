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
import re
from collections.abc import Iterable, Mapping
from typing import Any


class Decision(enum.Enum):
    ALLOW = "allowed"
    DENY = "explicitly denied"
    IMPLICIT = "not allowed"
    UNKNOWN = "cannot be evaluated"


def as_list(value: Any) -> list[str]:
    """An element that may be one string or a list of them."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


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


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool | None:
    """Whether ``condition`` holds for a request with ``context`` (one value per key; keys compared
    case-insensitively); None when an operator is one this module does not evaluate.

    A key absent from the request fails a positive operator and satisfies a negated one; the
    ``...IfExists`` form holds when the key is absent; ``Null: true`` holds when it is absent
    (reference_policies_elements_condition_operators.html). ``ForAnyValue:``/``ForAllValues:`` on
    single-valued keys: the first fails on an absent key, the second holds
    (reference_policies_condition-single-vs-multi-valued-context-keys.html)."""
    request = {k.lower(): v for k, v in context.items()}
    verdicts: list[bool | None] = []
    for raw_operator, keys in condition.items():
        qualifier, _, operator = raw_operator.rpartition(":")
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        for key, values in keys.items():
            value = request.get(key.lower())
            if operator == "Null":
                verdicts.append((value is None) == (str(as_list(values)[0]).lower() == "true"))
                continue
            if operator not in _STRING and operator != "Bool":
                verdicts.append(None)
                continue
            negated = operator != "Bool" and _STRING[operator][0]
            if value is None:
                verdicts.append(if_exists or negated or qualifier == "ForAllValues")
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


def applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool | None:
    """Whether ``statement`` applies to the request (None: its condition cannot be evaluated)."""
    if "NotAction" in statement:
        named = not any(action_matches(p, action) for p in as_list(statement["NotAction"]))
    else:
        named = any(action_matches(p, action) for p in as_list(statement.get("Action")))
    if "NotResource" in statement:
        named = named and not any(resource_matches(p, resource) for p in as_list(statement["NotResource"]))
    else:
        named = named and any(resource_matches(p, resource) for p in as_list(statement.get("Resource")))
    if not named:
        return False
    return condition_holds(statement.get("Condition") or {}, context)


def decide(
    statements: Iterable[Mapping[str, Any]], action: str, resource: str, context: Mapping[str, str]
) -> Decision:
    """IAM's decision for one request under ``statements`` (one policy, or a boundary)."""
    allow: bool | None = False
    deny: bool | None = False
    for statement in statements:
        verdict = applies(statement, action, resource, context)
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
