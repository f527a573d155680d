"""The orchestrator in region B: state machines from the graph, triggers, and who may start them."""

from __future__ import annotations

import json

from automation import synth
from lambdas.failover.context import RunbookContext
from lambdas.failover.state_machine import validate_definition
from tests.components.conftest import synthesize


def test_both_state_machines_are_registered_in_region_b_with_valid_definitions(dr: synth.Synthesis) -> None:
    machines = {r.inputs["name"]: r for r in dr.by_type("aws:sfn/stateMachine:StateMachine")}
    assert set(machines) == {"pilotlight-production-failover", "pilotlight-production-failback"}
    for machine in machines.values():
        assert machine.region == dr.config["pilotlight:drRegion"]
        validate_definition(json.loads(machine.inputs["definition"]))


def test_the_runbook_lambda_carries_the_runbook_context(dr: synth.Synthesis) -> None:
    (fn,) = [f for f in dr.by_type("aws:lambda/function:Function") if f.inputs["name"].endswith("-runbook")]
    context = json.loads(fn.inputs["environment"]["variables"]["RUNBOOK_CONTEXT"])
    parsed = RunbookContext.from_dict(context)  # every key the steps need is there
    assert parsed.dr_region == "us-west-2" and parsed.database_mode == "aurora-global"
    assert context == dr.outputs["runbook"]


def test_automatic_trigger_only_with_dr_auto_failover(dr: synth.Synthesis) -> None:
    assert dr.by_type("aws:cloudwatch/eventTarget:EventTarget") and not [
        r for r in dr.by_type("aws:cloudwatch/eventRule:EventRule") if "auto-failover" in r.name
    ]
    auto = synthesize("dr", {"dr:autoFailover": True})
    (rule,) = [r for r in auto.by_type("aws:cloudwatch/eventRule:EventRule") if "auto-failover" in r.name]
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    (alarm,) = [
        a for a in auto.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "primary-unhealthy" in a.name
    ]
    assert (
        alarm.inputs["evaluationPeriods"] == alarm.inputs["datapointsToAlarm"] == 3
    )  # the confirmation window


def test_lambda_code_is_the_package_source_only() -> None:
    """Same bytes on every machine: no bytecode caches in the archive, every handler module in it."""
    from components.serverless import lambda_code

    names = set(lambda_code().assets)
    assert names and all(n.startswith("lambdas/") and n.endswith(".py") for n in names)
    assert {
        "lambdas/api/handler.py",
        "lambdas/failover/handler.py",
        "lambdas/health_check/handler.py",
    } <= names


def test_the_canary_may_read_the_latch_and_the_run_journal_beside_it(dr: synth.Synthesis) -> None:
    """Traffic follows the writer whatever the latch says: the canary reads the run journal
    (``<latch>-journal``, lambdas/health_check/probe.py ``read_journal``) before a standby latch
    releases the switch, so its role may read exactly those two parameters, in region B."""
    from lambdas.health_check.probe import JOURNAL_SUFFIX

    (fn,) = [f for f in dr.by_type("aws:lambda/function:Function") if f.name == "dr-orchestrator-canary"]
    latch = fn.inputs["environment"]["variables"]["LATCH_PARAMETER"]
    (policy,) = [
        p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "dr-orchestrator-canary-policy"
    ]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    (read,) = [s for s in statements if s["Action"] == "ssm:GetParameter"]
    prefix = f"arn:aws:ssm:{dr.config['pilotlight:drRegion']}:{synth.ACCOUNT_ID}:parameter/"
    assert sorted(read["Resource"]) == sorted(
        [f"{prefix}{latch.lstrip('/')}", f"{prefix}{latch.lstrip('/')}{JOURNAL_SUFFIX}"]
    ), f"canary role dr-orchestrator-canary-role: ssm:GetParameter on {read['Resource']}"
