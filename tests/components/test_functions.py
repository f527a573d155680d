"""Every function can be created on the first ``pulumi up`` and keeps its logs for a bounded time.

Lambda checks a traced function's role for X-Ray's write permission when it creates the function,
so the role policy must grant it and exist first (``depends_on``). A function whose log group the
program does not create gets one from Lambda, which never expires.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from automation import synth
from tests.components.conftest import synthesize

XRAY_WRITE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
STACKS = [("primary", {}), ("dr", {}), ("dr", {"dr:autoFailover": True, "dr:active": True})]


def _logical(value: str) -> str:
    """The logical name inside a computed reference (``<marker><logical>`` or ``<marker><logical>.id``)."""
    tail = value.split(synth.COMPUTED, 1)[1]
    return tail[: -len(".id")] if tail.endswith(".id") else tail


def _actions(policy: Any) -> set[str]:
    out: set[str] = set()
    for s in json.loads(policy)["Statement"]:
        if s["Effect"] == "Allow":
            out |= {s["Action"]} if isinstance(s["Action"], str) else set(s["Action"])
    return out


@pytest.mark.parametrize(("stack", "overrides"), STACKS, ids=["primary", "dr", "dr-active-auto"])
def test_every_function_waits_for_its_role_policy_and_traced_ones_may_write_traces(
    stack: str, overrides: dict[str, Any]
) -> None:
    s = synthesize(stack, overrides)
    functions = s.by_type("aws:lambda/function:Function")
    assert functions
    policies = s.by_type("aws:iam/rolePolicy:RolePolicy")
    for fn in functions:
        role = _logical(fn.inputs["role"])
        own = [p for p in policies if _logical(p.inputs["role"]) == role]
        assert own, f"function {fn.name}: no inline policy on its role {role}"
        missing = [p.name for p in own if p.urn not in fn.depends_on]
        assert missing == [], f"function {fn.name} ({fn.urn}) may be created before its role policy {missing}"
        if (fn.inputs.get("tracingConfig") or {}).get("mode") == "Active":
            granted = set().union(*(_actions(p.inputs["policy"]) for p in own))
            assert granted >= XRAY_WRITE, (
                f"function {fn.name} is traced but its role lacks {XRAY_WRITE - granted}"
            )
    attachments = s.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not [a.name for a in attachments if "AWSLambdaBasicExecutionRole" in a.inputs["policyArn"]]


@pytest.mark.parametrize(("stack", "overrides"), STACKS[:2], ids=["primary", "dr"])
def test_every_function_has_its_own_log_group_with_a_retention(stack: str, overrides: dict[str, Any]) -> None:
    s = synthesize(stack, overrides)
    groups = {g.inputs.get("name"): g for g in s.by_type("aws:cloudwatch/logGroup:LogGroup")}
    for fn in s.by_type("aws:lambda/function:Function"):
        group = groups.get(f"/aws/lambda/{fn.inputs['name']}")
        assert group is not None, (
            f"function {fn.name}: Lambda would create its log group, which never expires"
        )
        assert group.urn in fn.depends_on and group.region == fn.region, fn.name
    for g in s.by_type("aws:cloudwatch/logGroup:LogGroup"):
        assert int(g.inputs.get("retentionInDays") or 0) > 0, f"log group {g.name} never expires"
