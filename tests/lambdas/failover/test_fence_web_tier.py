"""One writer: the fence stops region A's web tier, or refuses before it changes anything (break32 B32-6).

Scaling region A's Auto Scaling group to 0 stops its instances only if the group may terminate them: with
its ``Terminate`` process suspended, or its instances protected from scale in, they stay in service and
keep serving region A's writer beside the promoted region B. ``fencing.web_tier_cannot_stop`` says why
the fence cannot stop the web tier; ``fence_primary`` then stops the run before any change.
"""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.failover import journal
from lambdas.failover.context import RunbookContext
from lambdas.failover.fencing import web_tier_cannot_stop
from tests.lambdas.failover.harness import clients_for, run_book
from tests.lambdas.failover.world import REGION_A, World


def _group(suspended: tuple[str, ...] = (), instances: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": "web-a",
        "SuspendedProcesses": [{"ProcessName": p, "SuspensionReason": "User suspended"} for p in suspended],
        "Instances": instances if instances is not None else [_instance("i-1")],
    }


def _instance(ident: str, state: str = "InService", protected: bool = False) -> dict[str, Any]:
    return {"InstanceId": ident, "LifecycleState": state, "ProtectedFromScaleIn": protected}


def test_a_group_that_may_terminate_its_instances_can_stop() -> None:
    assert web_tier_cannot_stop(_group()) is None


@pytest.mark.parametrize(
    "process", ["Launch", "HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AddToLoadBalancer"]
)
def test_other_suspended_processes_do_not_keep_instances_in_service(process: str) -> None:
    assert web_tier_cannot_stop(_group(suspended=(process,))) is None


def test_terminate_suspended_keeps_the_instances_in_service() -> None:
    why = web_tier_cannot_stop(_group(suspended=("Launch", "Terminate")))
    assert why is not None
    assert "web tier web-a has its Terminate process suspended" in why and " 1 instance(s)" in why
    assert "resume-processes --auto-scaling-group-name web-a --scaling-processes Terminate" in why


def test_terminate_suspended_over_no_instance_in_service_is_no_obstacle() -> None:
    """Nothing serves: instances already leaving or in Standby (out of the load balancer) do not count."""
    leaving = [
        _instance("i-1", "Terminating:Wait"),
        _instance("i-2", "Standby"),
        _instance("i-3", "Terminated"),
    ]
    assert web_tier_cannot_stop(_group(suspended=("Terminate",), instances=leaving)) is None
    assert web_tier_cannot_stop(_group(suspended=("Terminate",), instances=[])) is None


@pytest.mark.parametrize("state", ["InService", "Pending", "Pending:Wait", "EnteredStandby"])
def test_protected_instances_stay_in_service(state: str) -> None:
    group = _group(
        instances=[
            _instance("i-3", protected=True),
            _instance("i-1", state, protected=True),
            _instance("i-2"),
        ]
    )
    why = web_tier_cannot_stop(group)
    assert why is not None and "instance(s) i-1, i-3 protected from scale in" in why and "i-2" not in why


def test_protected_instances_already_leaving_are_no_obstacle() -> None:
    assert web_tier_cannot_stop(_group(instances=[_instance("i-1", "Terminating", protected=True)])) is None


def test_the_fence_refuses_before_it_changes_anything(world: World) -> None:
    """fence_primary over a region A whose web tier's Terminate is suspended: the run stops at the fence,
    region A untouched (web tier, functions, mappings, no writes-stopped stamp) and nothing promoted."""
    ctx = RunbookContext.from_dict(world.context)
    world.client("autoscaling", REGION_A).suspend_processes(
        AutoScalingGroupName=ctx.primary_asg_name, ScalingProcesses=["Terminate"]
    )
    before = (world.asg(REGION_A), world.concurrency(REGION_A), world.mappings(REGION_A))

    report = run_book(world, "failover", params={"force": True})

    fence = report.record("fence_primary")
    assert report.outcome == "stopped" and report.stopped_at == "fence_primary", report.format_table()
    assert fence.code == "WebTierCannotStop" and "Terminate process suspended" in fence.detail
    assert (world.asg(REGION_A), world.concurrency(REGION_A), world.mappings(REGION_A)) == before
    assert not journal.read_journal(clients_for(world), ctx).get("primaryStoppedAt")


def test_the_canary_s_pending_fence_fences_the_functions_then_fails_on_the_web_tier(world: World) -> None:
    """After a failover over a dark region A (fence pending, region B may be the writer), the canary's
    ``onlyIfPending`` fence of a region A whose web tier cannot stop still throttles its functions and
    turns off its event sources, then fails retryably saying the web tier keeps serving (break33 B33-1:
    refusing up front left the functions serving beside region B's writer)."""
    from lambdas.failover import steps
    from lambdas.failover.exceptions import StepFailed

    ctx = RunbookContext.from_dict(world.context)
    world.client("autoscaling", REGION_A).suspend_processes(
        AutoScalingGroupName=ctx.primary_asg_name, ScalingProcesses=["Terminate"]
    )
    clients = clients_for(world)
    journal._journal(clients, ctx, fencePending="2026-12-02T12:00:00Z")

    with pytest.raises(StepFailed) as failed:
        steps.fence_primary(ctx, clients, {"onlyIfPending": True, "wait": False})

    assert failed.value.code == "WebTierCannotStop" and failed.value.retryable
    assert "its pending fence could not complete" in failed.value.reason
    assert "Nothing was promoted" not in failed.value.reason
    assert set(world.concurrency(REGION_A).values()) == {0}
    assert world.mappings(REGION_A) == ["Disabled"]
    assert journal.read_journal(clients, ctx).get("fencePending"), "still pending: the canary asks again"
