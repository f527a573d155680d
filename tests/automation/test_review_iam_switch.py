"""Issue 12, iam21 finding (high, cross-environment): the failover switch metric was writable across
environments (branch ns21).

CloudWatch's PutMetricData has no resource type; its one condition key is ``cloudwatch:namespace``,
none on dimensions (Service Authorization Reference, CloudWatch:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html; AWS's
example of fencing it: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
Every environment's switch was in ``Pilotlight/Failover`` and its canary's ``PrimaryHealthy`` in
``Pilotlight/Health``, told apart only by the ``App`` dimension: staging's runbook and canary roles
(and code a staging deployer runs as them) could throw production's switch, moving production's Route
53 traffic, or report production's region A unhealthy, starting its automated failover.

Production's namespaces are read from production's synthesis (the alarms that act on them), not from
the code under test; the harness is ``allows`` (tests/automation/test_review_iam.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from automation import synth
from automation.iam_boundary import role_statements
from tests.automation.test_review_iam import allows
from tests.automation.test_review_iam_break12c import STAGING
from tests.automation.test_review_iam_escalation import _boundary, _pair

PUT = "cloudwatch:PutMetricData"
ROLES = ("dr-orchestrator-runbook-policy", "dr-orchestrator-canary-policy")
"""The inline policies of the two roles that put metric data: the runbook's (it throws and releases
the switch) and the canary's (health metrics, and the switch held while the latch says active)."""


def _acted_on(dr: synth.Synthesis) -> dict[str, str]:
    """The namespaces whose data moves a deployment's traffic, as its alarms watch them: the switch
    alarm (its Route 53 health check gates region A) and the "primary unhealthy" alarm (it starts the
    automated failover)."""
    alarms = {r.name: r for r in dr.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    return {
        "switch": str(alarms["global-switch"].inputs["namespace"]),
        "health": str(alarms["dr-obs-primary-unhealthy"].inputs["namespace"]),
    }


def _policy(dr: synth.Synthesis, name: str) -> dict[str, Any]:
    (policy,) = [p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == name]
    return json.loads(policy.inputs["policy"])


def _region(dr: synth.Synthesis) -> str:
    return str(dr.outputs["runbook"]["drRegion"])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("metric", ["switch", "health"])
def test_staging_s_roles_cannot_put_production_s_traffic_metrics(role: str, metric: str) -> None:
    """Staging's runbook and canary, as deployed, may not put data into the namespace of production's
    switch or of production's ``PrimaryHealthy``, in any region; they may put their own."""
    _, production = _pair()
    _, staging = _pair(*STAGING)
    theirs, own = _acted_on(production)[metric], _acted_on(staging)[metric]
    assert theirs != own, f"staging's and production's {metric} metrics share the namespace {own!r}"
    policy = _policy(staging, role)
    for region in (_region(staging), "us-east-1", "eu-west-1"):
        assert not allows((policy,), PUT, "*", cloudwatch_namespace=theirs, aws_RequestedRegion=region), (
            f"aws:iam/rolePolicy:RolePolicy {role} (staging) may put production's {metric} metric "
            f"({theirs}) in {region}"
        )
    if metric == "switch" or role.endswith("canary-policy"):  # the runbook writes no health metric
        assert allows((policy,), PUT, "*", cloudwatch_namespace=own, aws_RequestedRegion=_region(staging))


@pytest.mark.parametrize("metric", ["switch", "health"])
def test_staging_s_boundary_keeps_production_s_traffic_metrics_from_any_staging_role(metric: str) -> None:
    """What a staging deployer writes into one of its roles' policies is capped by staging's boundary
    (automation/iam_boundary.py): whatever the role is granted, it may not put production's switch or
    health metric. The boundary is the fence the deployer cannot rewrite; the roles' own policies are
    not (it writes them on every ``pulumi up``)."""
    _, production = _pair()
    (boundary,) = _boundary(*STAGING)
    theirs = _acted_on(production)[metric]
    assert not allows((boundary,), PUT, "*", cloudwatch_namespace=theirs), (
        f"staging's permissions boundary allows PutMetricData into production's {metric} namespace {theirs}"
    )
    # ... nor into the shared namespaces of earlier versions, which nothing watches any more.
    for shared in ("Pilotlight/Failover", "Pilotlight/Health"):
        assert not allows((boundary,), PUT, "*", cloudwatch_namespace=shared), shared
    _, staging = _pair(*STAGING)
    assert allows((boundary,), PUT, "*", cloudwatch_namespace=_acted_on(staging)[metric])


@pytest.mark.parametrize("metric", ["switch", "health"])
def test_production_s_roles_still_put_production_s_traffic_metrics(metric: str) -> None:
    """The other side: production's runbook throws production's switch and its canary publishes
    production's health, within production's roles' policies and production's boundary."""
    _, production = _pair()
    (boundary,) = _boundary()
    own = _acted_on(production)[metric]
    writers = ROLES if metric == "switch" else ROLES[1:]
    for role in writers:
        policy = _policy(production, role)
        assert allows((policy,), PUT, "*", cloudwatch_namespace=own, aws_RequestedRegion=_region(production))
    assert allows((boundary,), PUT, "*", cloudwatch_namespace=own)


def test_every_put_metric_data_grant_names_the_deployment_s_namespaces() -> None:
    """The class: no role statement of either environment grants PutMetricData without a
    ``cloudwatch:namespace`` condition, nor with a namespace some alarm of the other environment
    acts on."""
    for here, there in ((_pair(), _pair(*STAGING)), (_pair(*STAGING), _pair())):
        others = set(_acted_on(there[1]).values())
        for statement in role_statements(here):
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            if PUT not in actions:
                continue
            namespaces = statement.get("Condition", {}).get("StringEquals", {}).get("cloudwatch:namespace")
            assert namespaces, f"{statement.get('Sid')}: PutMetricData with no cloudwatch:namespace condition"
            names = {namespaces} if isinstance(namespaces, str) else set(namespaces)
            assert not names & others, (statement.get("Sid"), sorted(names & others))
