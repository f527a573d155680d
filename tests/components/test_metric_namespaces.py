"""The failover switch and the canary's health metrics: one namespace per deployment, used by everything
that writes or watches them (issue 12, branch ns21).

IAM fences PutMetricData by ``cloudwatch:namespace`` only (Service Authorization Reference, CloudWatch:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html), so the
namespace, not the ``App`` dimension, is what keeps one environment from writing another's. What
writes them: the runbook (its ``switchMetric`` context, deployed in its function's environment) and
the canary (its environment). What watches them: the switch alarm (behind the Route 53 gate), the
"primary unhealthy" alarm (the automated failover's trigger) and the dashboard. A namespace the writers
and the watchers disagree on is a switch that never moves, or an alarm that never fires.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from automation import synth
from tests.components.conftest import synthesize

STAGING = {"pilotlight:environment": "staging", "pilotlight:routing": {"domain": "staging.example.com"}}


def _used(dr: synth.Synthesis) -> dict[str, set[str]]:
    """Every namespace the dr stack gives the switch and the health metrics, by who uses it."""
    alarms = {r.name: r for r in dr.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    functions = {r.name: r for r in dr.by_type("aws:lambda/function:Function")}
    canary = functions["dr-orchestrator-canary"].inputs["environment"]["variables"]
    deployed = json.loads(
        functions["dr-orchestrator-runbook"].inputs["environment"]["variables"]["RUNBOOK_CONTEXT"]
    )
    (policy,) = [
        p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "dr-orchestrator-canary-policy"
    ]
    (publish,) = [
        s
        for s in json.loads(policy.inputs["policy"])["Statement"]
        if s["Action"] == "cloudwatch:PutMetricData"
    ]
    widgets = [
        w
        for d in dr.by_type("aws:cloudwatch/dashboard:Dashboard")
        for w in json.loads(d.inputs["dashboardBody"])["widgets"]
    ]
    charted = {
        m[0]: m[1]
        for w in widgets
        for m in w["properties"]["metrics"]
        if not str(m[0]).startswith(("AWS/", "."))
    }
    return {
        "switch": {
            alarms["global-switch"].inputs["namespace"],
            canary["SWITCH_NAMESPACE"],
            dr.outputs["runbook"]["switchMetric"]["namespace"],
            deployed["switchMetric"]["namespace"],
            *(ns for ns, name in charted.items() if name == "FailoverSwitch"),
        },
        "health": {
            alarms["dr-obs-primary-unhealthy"].inputs["namespace"],
            canary.get("METRIC_NAMESPACE", "<the canary's default>"),
            *(ns for ns, name in charted.items() if name == "PrimaryHealthy"),
        },
        "canary may write": set(publish["Condition"]["StringEquals"]["cloudwatch:namespace"]),
    }  # fmt: skip


@pytest.mark.parametrize("overrides", [{}, STAGING], ids=["production", "staging"])
def test_the_alarms_the_canary_and_the_runbook_agree_on_the_namespaces(overrides: dict[str, Any]) -> None:
    """One switch namespace and one health namespace per deployment, named alike by the switch alarm,
    the canary's environment, the runbook's context (exported and deployed), the dashboard, and the
    canary's permission to write them."""
    used = _used(synthesize("dr", overrides))
    assert len(used["switch"]) == 1, f"the switch's writers and watchers disagree: {sorted(used['switch'])}"
    assert len(used["health"]) == 1, (
        f"the health metrics' writer and watchers disagree: {sorted(used['health'])}"
    )
    assert used["canary may write"] == used["switch"] | used["health"]


def test_each_deployment_has_namespaces_of_its_own() -> None:
    """Production's and staging's switch and health namespaces differ, and each names its deployment
    (``<root>/<app>-<env>``): the fence IAM can draw."""
    production, staging = _used(synthesize("dr")), _used(synthesize("dr", STAGING))
    for metric, root in (("switch", "Pilotlight/Failover"), ("health", "Pilotlight/Health")):
        assert production[metric] == {f"{root}/pilotlight-production"}, production[metric]
        assert staging[metric] == {f"{root}/pilotlight-staging"}, staging[metric]


def test_namespaces_fit_cloudwatch_s_rules_for_the_longest_names() -> None:
    """A namespace is 1-255 ASCII characters without control characters, not ``AWS/...`` and not
    starting with a colon (CloudWatch API Reference, PutMetricData ``Namespace`` and ``Metric``:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Metric.html): with the
    longest app name and environment the configuration accepts too."""
    from tests.components.test_naming import APP, ENVS, _deployment

    for mode in ("aurora-global", "rds-replica"):
        used = _used(_deployment(ENVS[0], mode)[1])
        for namespace in used["switch"] | used["health"]:
            assert 1 <= len(namespace) <= 255 and all(32 <= ord(c) < 127 for c in namespace), namespace
            assert not namespace.startswith(("AWS/", ":")), namespace
            assert namespace.endswith(f"/{APP}-{ENVS[0]}"), namespace
