"""The deployed runbook role allows every AWS operation the runbooks really call.

Both runbooks run against moto while a hook records each API call (service, operation, region);
every call must be allowed by the runbook Lambda's policy as the dr stack synthesizes it,
including the statements' region conditions. A step that starts calling a new API without the
policy following would otherwise fail only in AWS, with AccessDenied, during a real failover.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from lambdas.failover import executor
from lambdas.failover.context import RunbookContext
from tests.components.conftest import synthesize
from tests.lambdas.failover.harness import FAST, FORCED, clients_for
from tests.lambdas.failover.world import World

# IAM action prefixes where they differ from the lower-cased botocore service id.
IAM_PREFIX = {"Auto Scaling": "autoscaling", "CloudWatch": "cloudwatch"}


class CallRecorder:
    """A ``before-call`` hook recording ``(iam action, region)`` of every request."""

    def __init__(self) -> None:
        self.calls: set[tuple[str, str]] = set()

    def __call__(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service_id = model.service_model.service_id
        prefix = IAM_PREFIX.get(service_id, service_id.lower())
        self.calls.add((f"{prefix}:{model.name}", context["client_region"]))

    def install(self, session: boto3.Session) -> CallRecorder:
        session.events.register("before-call", self)
        return self


def _region_hook(session: boto3.Session) -> None:
    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["client_region"] = context.get("client_region") or context["client_config"].region_name

    session.events.register_first("before-parameter-build", remember)


def allowed(statements: list[dict[str, Any]], action: str, region: str) -> bool:
    for s in statements:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        if s.get("Effect") != "Allow" or not any(fnmatch.fnmatch(action, a) for a in actions):
            continue
        regions = s.get("Condition", {}).get("StringEquals", {}).get("aws:RequestedRegion")
        if regions is None or region in ([regions] if isinstance(regions, str) else regions):
            return True
    return False


def runbook_policy(mode: str) -> list[dict[str, Any]]:
    overrides = {
        "pilotlight:database": {"mode": mode, **({"engine": "postgres"} if mode == "rds-replica" else {})}
    }
    dr = synthesize("dr", overrides)
    (policy,) = [
        p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "dr-orchestrator-runbook-policy"
    ]
    return json.loads(policy.inputs["policy"])["Statement"]


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_the_runbook_role_allows_every_call_of_failover_and_failback(
    make_world: Callable[..., World], mode: str
) -> None:
    world = make_world(mode)
    recorder = CallRecorder()

    class Install:
        def install(self, session: boto3.Session) -> None:
            _region_hook(session)
            recorder.install(session)

    clients = clients_for(world, Install())  # type: ignore[arg-type]
    ctx = RunbookContext.from_dict(world.context)
    assert executor.run("failover", ctx, clients, params=FORCED).outcome == "done"
    world.age_metrics(minutes=5)
    assert executor.run("failback", ctx, clients, params=FAST).outcome == "done"

    statements = runbook_policy(mode)
    assert recorder.calls, "no AWS call was recorded"
    denied = sorted(
        (action, region) for action, region in recorder.calls if not allowed(statements, action, region)
    )
    assert denied == []
