"""The orchestrator in region B: state machines from the graph, triggers, and who may start them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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


_IMPORT_THE_RUNBOOK = """
import json
import lambdas.failover.handler as handler
from lambdas.failover import graph, steps
names = {s.name for b in graph.RUNBOOKS.values() for s in (*b.steps, *([b.on_stop] if b.on_stop else []))}
print(json.dumps({"handler": handler.__file__, "missing": sorted(names - set(steps.STEPS))}))
"""


def test_the_runbook_lambda_imports_from_its_archive_alone_with_every_step_registered(
    tmp_path: Path,
) -> None:
    """The runbook Lambda's archive holds every module its handler imports: the step modules
    ``lambdas/failover/steps.py`` gathers (stepkit, journal, fencing, ...) register the handlers on
    import, so a module left out is a step Lambda cannot find ("no step handler") or a handler that
    does not import at all. The Lambda loads ``lambdas.failover.handler.handler`` from the archive's
    root ("the handler ... in the format file-name.function-name", the file path relative to the
    root of the .zip: https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html); here the
    archive is unpacked alone, without the repository on the path, and imported the same way."""
    from components.serverless import lambda_code

    for key, asset in lambda_code().assets.items():
        target = tmp_path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(asset.path, target)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran = subprocess.run(
        [sys.executable, "-c", _IMPORT_THE_RUNBOOK],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, f"runbook Lambda archive: the handler does not import: {ran.stderr[-2000:]}"
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    assert Path(found["handler"]).resolve().is_relative_to(tmp_path.resolve()), found
    assert found["missing"] == [], f"runbook Lambda archive: no handler for steps {found['missing']}"


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
