"""The failover Lambda: event validation, the Step Functions poll loop, error names for Catch/Retry."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from lambdas.failover import handler as handler_mod
from lambdas.failover.exceptions import LockHeld, LockLost
from lambdas.failover.graph import FAILOVER
from lambdas.failover.steps import StepFailed
from tests.lambdas.failover.faults import Fault, deny
from tests.lambdas.failover.harness import FORCED, HealthServer, assert_failed_over, clients_for, run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point the handler at a world: RUNBOOK_CONTEXT, and clients with the given faults."""
    monkeypatch.setattr(handler_mod, "_cached", None)

    def point(world: World, *faults: Fault) -> None:
        monkeypatch.setenv(handler_mod.CONTEXT_ENV, json.dumps(world.context))

        class FaultyClients:
            @staticmethod
            def for_context(ctx: Any) -> Any:
                return clients_for(world, *faults)

        monkeypatch.setattr(handler_mod, "Clients", FaultyClients)

    return point


def invoke(runbook: str, step: str, **params: Any) -> dict[str, Any]:
    result = handler_mod.handler({"runbook": runbook, "step": step, "params": params}, None)
    json.dumps(result)  # Step Functions needs it as JSON
    return result


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "event must be a JSON object"),
        (["failover"], "event must be a JSON object"),
        ("failover", "event must be a JSON object"),
        ({}, "'runbook' must be one of"),
        ({"step": "verify"}, "'runbook' must be one of"),
        ({"runbook": "failsideways", "step": "verify"}, "got 'failsideways'"),
        ({"runbook": "failover"}, "'step' must be a step of the failover runbook"),
        ({"runbook": "failover", "step": "reboot_everything"}, "got 'reboot_everything'"),
        (
            {"runbook": "failback", "step": "promote_database"},
            "'step' must be a step of the failback runbook",
        ),
        ({"runbook": "failover", "step": 3}, "got 3"),
        ({"runbook": "failover", "step": "verify", "params": ["force"]}, "'params' must be a JSON object"),
    ],
)
def test_malformed_event_is_refused_before_anything_runs(
    event: object, message: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def must_not_run() -> None:
        raise AssertionError("a malformed event reached the runbook context")

    monkeypatch.setattr(handler_mod, "_context_and_clients", must_not_run)

    result = handler_mod.handler(event, None)

    assert result["status"] == "error" and result["statusCode"] == 400
    assert message in result["error"]
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pilotlight.failover"]
    assert logged and logged[-1]["message"] == "malformed event" and message in logged[-1]["error"]


def test_state_machine_loop_fails_over(world: World, lambda_env: Callable[..., None]) -> None:
    """Call every step as Step Functions would: wait=False, polling while in_progress."""
    lambda_env(world)
    answers: dict[str, list[str]] = {}
    for layer in FAILOVER.layers():
        for step in layer:
            for _ in range(5):
                result = invoke("failover", step.name, force=True, reason="alarm", drainSeconds=0)
                answers.setdefault(step.name, []).append(result["status"])
                if result["status"] != "in_progress":
                    break
    assert answers["confirm_primary_down"] == ["skipped"]
    # the promotion is started, then found finished on the next poll
    assert answers["promote_database"] == ["in_progress", "already_done"]
    assert all(a[-1] in ("done", "already_done", "skipped") for a in answers.values()), answers
    assert_failed_over(world)
    assert world.latch()["reason"] == "alarm"


def test_poll_flag_in_params_makes_the_finishing_call_done(
    world: World, lambda_env: Callable[..., None]
) -> None:
    lambda_env(world)
    started = invoke("failover", "promote_database")  # fence_primary never ran: nothing to wait for
    assert started["status"] == "in_progress" and started["data"]["polling"] is True
    finished = invoke("failover", "promote_database", **started["data"])
    assert finished["status"] == "done"


def test_permanent_failure_raises_step_failed(world: World, lambda_env: Callable[..., None]) -> None:
    lambda_env(world, deny("rds", "PromoteReadReplica", REGION_B))
    with pytest.raises(StepFailed) as raised:
        invoke("failover", "promote_database")
    assert type(raised.value).__name__ == "StepFailed"  # the error name Step Functions' Catch sees
    assert "AccessDenied" in str(raised.value) and not raised.value.retryable


def test_exhausted_throttling_raises_step_retryable(world: World, lambda_env: Callable[..., None]) -> None:
    lambda_env(world, Fault("auto-scaling", "UpdateAutoScalingGroup", REGION_B, code="Throttling"))
    with pytest.raises(StepFailed) as raised:
        invoke("failover", "scale_web_tier")
    assert type(raised.value).__name__ == "StepRetryable"
    assert raised.value.retryable and raised.value.code == "Throttling"


def test_verify_answers_in_progress_until_region_b_serves(
    world: World, health: HealthServer, lambda_env: Callable[..., None]
) -> None:
    lambda_env(world)
    assert run_book(world, "failover").outcome == "done"
    health.set("/dr", 200, {"region": REGION_B, "writer": False})
    assert invoke("failover", "verify")["status"] == "in_progress"
    health.set("/dr", 503, {})
    assert "HTTP 503" in invoke("failover", "verify")["detail"]
    health.routes["/dr"] = world.dr_health
    assert invoke("failover", "verify")["status"] == "already_done"


def test_verify_without_health_url_checks_the_apis(
    make_world: Callable[..., World], lambda_env: Callable[..., None]
) -> None:
    world = make_world("aurora-global", dr_health=False)
    lambda_env(world)
    assert invoke("failover", "verify")["status"] == "in_progress"
    assert run_book(world, "failover").outcome == "done"
    result = invoke("failover", "verify")
    assert result["status"] == "already_done"
    assert "HTTP check skipped" in result["detail"] and "global writer" in result["detail"]


def test_replication_lag_without_datapoints_is_in_progress(
    make_world: Callable[..., World], lambda_env: Callable[..., None]
) -> None:
    world = make_world(lag_metrics=False)
    lambda_env(world)
    assert run_book(world, "failover", params={**FORCED, "allowDataLoss": True}).outcome == "done"
    assert invoke("failback", "reestablish_replication")["status"] == "in_progress"
    assert invoke("failback", "scale_down_dr")["status"] == "done"
    result = invoke("failback", "wait_replication_lag", drainSeconds=0)
    assert result["status"] == "in_progress" and "no datapoint" in result["detail"]


def test_missing_context_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler_mod, "_cached", None)
    monkeypatch.delenv(handler_mod.CONTEXT_ENV, raising=False)
    with pytest.raises(StepFailed, match="RUNBOOK_CONTEXT") as raised:
        handler_mod.handler({"runbook": "failover", "step": "verify"}, None)
    assert raised.value.code == "ContextError"


def test_bad_context_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler_mod, "_cached", None)
    monkeypatch.setenv(handler_mod.CONTEXT_ENV, json.dumps({"appName": "x"}))
    with pytest.raises(StepFailed, match="missing key 'drRegion'"):
        handler_mod.handler({"runbook": "failover", "step": "verify"}, None)


# ------------------------------------------------------------------------------ single flight


def lock_event(step: str, run_id: str | None, **params: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"runbook": "failover", "step": step, "params": {**FORCED, **params}}
    if run_id is not None:
        event["lockRunId"] = run_id
    return event


def test_a_lock_step_needs_the_execution_id() -> None:
    answer = handler_mod.handler(lock_event("take_lock", None), None)
    assert answer["statusCode"] == 400 and "lockRunId" in answer["error"]


def test_an_execution_takes_the_lock_and_a_second_stops_naming_the_first(
    world: World, lambda_env: Callable[..., None]
) -> None:
    """single_flight: two executions (the alarm's rule fired twice, or an operator started one): the
    second's take_lock raises LockHeld naming the first; the first's steps refresh the lock; it
    releases it, and only its own."""
    lambda_env(world)
    first, second = (
        "arn:aws:states:us-west-2:1:execution:failover:a",
        "arn:aws:states:us-west-2:1:execution:failover:b",
    )
    taken = handler_mod.handler(lock_event("take_lock", first, reason="automated: alarm"), None)
    assert taken["status"] == "done" and taken["data"]["runId"] == first
    with pytest.raises(LockHeld) as held:
        handler_mod.handler(lock_event("take_lock", second), None)
    assert first in held.value.reason and "automated: alarm" in held.value.reason
    # A step of the second execution refreshes nothing it does not hold: it stops.
    with pytest.raises(LockLost):
        handler_mod.handler(lock_event("confirm_primary_down", second), None)
    assert handler_mod.handler(lock_event("confirm_primary_down", first), None)["status"] == "skipped"
    assert handler_mod.handler(lock_event("release_lock", second), None)["status"] == "already_done"
    assert handler_mod.handler(lock_event("release_lock", first), None)["status"] == "done"
    assert handler_mod.handler(lock_event("take_lock", second), None)["status"] == "done"


def _pending_fence(world: World) -> None:
    """The journal as a failover that could not reach region A leaves it: a fence pending."""
    world.client("ssm", REGION_B).put_parameter(
        Name=world.context["latchParameterName"] + "-journal",
        Value=json.dumps({"fencePending": "2026-11-30T12:00:00+00:00"}),
        Type="String",
        Overwrite=True,
    )


def _lock_item(world: World) -> dict[str, Any] | None:
    got = world.client("dynamodb", REGION_B).get_item(
        TableName=world.context["lockTableName"], Key={"pk": {"S": "runbook"}}, ConsistentRead=True
    )
    return got.get("Item")


def _journal_value(world: World) -> dict[str, Any]:
    name = world.context["latchParameterName"] + "-journal"
    return json.loads(world.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"])


def test_the_canary_s_pending_fence_joins_a_failover_holding_the_lock_and_fences_at_once(
    world: World, lambda_env: Callable[..., None]
) -> None:
    """single_flight / one_writer: the canary's Event invocation of fence_primary (onlyIfPending)
    while a failover execution holds the lock joins that run (a failover never un-fences region A)
    and fences at once; the lock stays the execution's, the fence's mark is gone when it is done."""
    from lambdas.health_check.probe import FENCE_EVENT

    lambda_env(world)
    _pending_fence(world)
    holder = "arn:aws:states:us-west-2:1:execution:failover:a"
    assert handler_mod.handler(lock_event("take_lock", holder), None)["status"] == "done"
    assert world.asg(REGION_A)[1] > 0

    done = handler_mod.handler(FENCE_EVENT, None)

    assert done["status"] == "done" and holder in done["detail"], done
    assert world.asg(REGION_A)[1] == 0, "region A was not fenced"
    assert "fencePending" not in _journal_value(world)
    item = _lock_item(world)
    assert item is not None and item["runId"]["S"] == holder and "fencer" not in item, item
    assert handler_mod.handler(lock_event("release_lock", holder), None)["status"] == "done"
    assert _lock_item(world) is None


def test_a_pending_fence_request_with_nothing_pending_touches_no_lock(
    world: World, lambda_env: Callable[..., None]
) -> None:
    """converges / single_flight (seed 504): the canary asks every minute while region A answers under
    an active or unreadable latch. With no fence pending, the request changes nothing and touches no
    lock: it neither extends the lease of a dead failover holding it (which then never expires, and
    no failback can ever start) nor takes a free lock (which a failback starting then would meet)."""
    from lambdas.health_check.probe import FENCE_EVENT

    lambda_env(world)
    holder = "arn:aws:states:us-west-2:1:execution:failover:dead"
    assert handler_mod.handler(lock_event("take_lock", holder), None)["status"] == "done"
    # The holder died: its lease ends in 30 s, inside a joined fence's window.
    dynamodb = world.client("dynamodb", REGION_B)
    dying = {**(_lock_item(world) or {}), "expiresAt": {"N": str(int(time.time()) + 30)}}
    dynamodb.put_item(TableName=world.context["lockTableName"], Item=dying)
    held = _lock_item(world)

    answer = handler_mod.handler(FENCE_EVENT, None)

    assert answer["status"] == "already_done" and "no fence" in answer["detail"], answer
    assert _lock_item(world) == held, "a request with nothing pending changed the dead run's lease"
    assert handler_mod.handler(lock_event("release_lock", holder), None)["status"] == "done"

    assert handler_mod.handler(FENCE_EVENT, None)["status"] == "already_done"
    assert _lock_item(world) is None, "a request with nothing pending took the free lock"


def test_the_canary_s_pending_fence_is_deferred_while_a_failback_holds_the_lock(
    world: World, lambda_env: Callable[..., None]
) -> None:
    """single_flight: a failback gives region A its writes back, so a pending fence never joins it:
    it changes nothing and answers skipped (not an error: Lambda does not retry it; the canary asks
    again next minute). With the lock free, the same event takes it, fences, and gives it back."""
    from lambdas.health_check.probe import FENCE_EVENT

    lambda_env(world)
    _pending_fence(world)
    holder = "arn:aws:states:us-west-2:1:execution:failback:a"
    event = {**lock_event("take_lock", holder), "runbook": "failback"}
    assert handler_mod.handler(event, None)["status"] == "done"
    before = world.asg(REGION_A)

    deferred = handler_mod.handler(FENCE_EVENT, None)

    assert deferred["status"] == "skipped" and deferred["data"]["deferred"] is True, deferred
    assert holder in deferred["detail"]
    assert world.asg(REGION_A) == before, "the deferred fence changed region A"
    assert handler_mod.handler({**event, "step": "release_lock"}, None)["status"] == "done"

    done = handler_mod.handler(FENCE_EVENT, None)

    assert done["status"] == "done", done
    assert world.asg(REGION_A)[1] == 0 and "fencePending" not in _journal_value(world)
    assert _lock_item(world) is None, "the one-step run did not give the lock back"


def test_a_run_released_under_a_joined_fence_blocks_the_next_run_until_the_fence_leaves(world: World) -> None:
    """single_flight: the failover run a fence joined may end first; its release keeps the item (until
    the fence's window ends) so a failback cannot start while the fence may still act. When the fence
    leaves, the lock is free."""
    from lambdas.failover import lock
    from lambdas.failover.context import RunbookContext

    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world)
    lock.acquire(clients, ctx, run_id="exec-a", owner="sfn", runbook="failover")
    lock.join_fence(clients, ctx, fencer_id="invoke-1", window_seconds=960)
    assert lock.release(clients, ctx, run_id="exec-a") is True
    with pytest.raises(LockHeld):
        lock.acquire(clients, ctx, run_id="failback-b", owner="op", runbook="failback")
    with pytest.raises(LockHeld):  # nor may another fence join a released run
        lock.join_fence(clients, ctx, fencer_id="invoke-2", window_seconds=960)
    lock.leave_fence(clients, ctx, fencer_id="invoke-1")
    assert lock.read(clients, ctx) is None
    assert lock.acquire(clients, ctx, run_id="failback-b", owner="op", runbook="failback").lease.run_id


def test_a_step_invoked_on_its_own_while_a_run_holds_the_lock_stops(
    world: World, lambda_env: Callable[..., None]
) -> None:
    """single_flight: any other step invoked without an execution id is a one-step run too; while an
    execution holds the lock it raises LockHeld (Step Functions' Catch, or the caller, sees it) and
    changes nothing."""
    lambda_env(world)
    holder = "arn:aws:states:us-west-2:1:execution:failover:a"
    handler_mod.handler(lock_event("take_lock", holder), None)
    before = world.snapshot()
    with pytest.raises(LockHeld) as held:
        invoke("failover", "fence_primary", reason="by hand")
    assert holder in held.value.reason
    assert world.snapshot() == before


def test_a_fence_joining_a_dead_failover_near_its_expiry_extends_its_lease_to_the_fence_window(
    world: World,
) -> None:
    """single_flight / traffic_follows_writer: a failover that died holding the lock keeps it until
    its lease ends; region A answering then must still be fenced at once. The fence joins and
    extends the lease to its own window (never past it), so the item cannot expire while it acts."""
    from datetime import timedelta

    from lambdas.failover import lock
    from lambdas.failover.context import RunbookContext

    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world)
    lock.acquire(clients, ctx, run_id="exec-dead", owner="sfn", runbook="failover", ttl_seconds=60)
    lease = lock.join_fence(clients, ctx, fencer_id="invoke-1", window_seconds=960)
    now = clients.clock.now()
    assert now + timedelta(seconds=950) <= lease.expires_at <= now + timedelta(seconds=961), lease
    assert lease.run_id == "exec-dead"
