"""The failover Lambda: event validation, the Step Functions poll loop, error names for Catch/Retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lambdas.failover import handler as handler_mod
from lambdas.failover.graph import FAILOVER
from lambdas.failover.steps import StepFailed
from tests.lambdas.failover.faults import Fault, deny
from tests.lambdas.failover.harness import FORCED, HealthServer, assert_failed_over, clients_for, run_book
from tests.lambdas.failover.world import REGION_B, World


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
