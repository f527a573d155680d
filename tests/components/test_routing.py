"""Route 53: failover pairs, TTLs, health checks on region A, and the failover switch in region B."""

from __future__ import annotations

import json
from collections import defaultdict

from automation import synth
from components.global_failover import SWITCH_ALARM
from components.observability import dashboard_body


def test_failover_records_come_in_primary_secondary_pairs_with_short_ttl(dr: synth.Synthesis) -> None:
    records = dr.by_type("aws:route53/record:Record")
    assert records
    by_name: dict[str, set[str]] = defaultdict(set)
    for r in records:
        assert r.inputs["ttl"] <= 60, r.name
        (policy,) = r.inputs["failoverRoutingPolicies"]
        by_name[r.inputs["name"]].add(policy["type"])
    assert all(kinds == {"PRIMARY", "SECONDARY"} for kinds in by_name.values()), by_name


def test_primary_record_is_gated_by_region_a_health_and_the_switch(dr: synth.Synthesis) -> None:
    checks = {r.name: r for r in dr.by_type("aws:route53/healthCheck:HealthCheck")}
    (primary,) = [r for r in dr.by_type("aws:route53/record:Record") if "primary" in r.name]
    gate = next(c for c in checks.values() if c.type and c.inputs.get("type") == "CALCULATED")
    assert gate.inputs["childHealthThreshold"] == 2 and len(gate.inputs["childHealthchecks"]) == 2
    switch = next(c for c in checks.values() if c.inputs.get("type") == "CLOUDWATCH_METRIC")
    assert switch.inputs["cloudwatchAlarmRegion"] == dr.config["pilotlight:drRegion"]
    assert switch.inputs["insufficientDataHealthStatus"] == "LastKnownStatus"
    assert primary.inputs["healthCheckId"]


def test_every_endpoint_health_check_points_at_region_a(
    primary: synth.Synthesis, dr: synth.Synthesis
) -> None:
    endpoint_checks = [c for c in dr.by_type("aws:route53/healthCheck:HealthCheck") if c.inputs.get("fqdn")]
    assert len(endpoint_checks) == 2
    region_a_hosts = {primary.outputs["webAlbDns"], primary.outputs["apiHost"]}
    for check in endpoint_checks:
        assert check.inputs["fqdn"] in region_a_hosts
        assert check.inputs["requestInterval"] == 10 and check.inputs["failureThreshold"] == 3


def test_switch_alarm_follows_only_the_switch_metric() -> None:
    # In ALARM at 1 only; missing data keeps the last state (the runbook's or canary's datapoint holds).
    assert SWITCH_ALARM == {"threshold": 1, "treat_missing_data": "missing"}


def test_dashboard_has_a_column_per_region_and_the_switch() -> None:
    body = json.loads(
        dashboard_body(
            "shop-prod",
            {
                "us-east-1": {"alb": "app/a", "function": "fa", "api": "apia", "stage": "prod"},
                "us-west-2": {"alb": "app/b", "function": "fb", "api": "apib", "stage": "prod"},
            },
        )
    )
    regions = {w["properties"]["region"] for w in body["widgets"]}
    assert regions == {"us-east-1", "us-west-2"}
    assert any("FailoverSwitch" in json.dumps(w) for w in body["widgets"])


CERTS = {
    "pilotlight:routing": {
        "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/a",
        "drCertificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/b",
    }
}


def test_with_certificates_the_api_fails_over_through_regional_custom_domains() -> None:
    from tests.components.conftest import synthesize

    primary, dr = synthesize("primary", CERTS), synthesize("dr", CERTS)
    (domain_a,) = [
        d for d in primary.by_type("aws:apigateway/domainName:DomainName") if d.name == "primary-api-domain"
    ]
    (domain_b,) = [d for d in dr.by_type("aws:apigateway/domainName:DomainName") if d.name == "dr-api-domain"]
    assert domain_a.inputs["domainName"] == domain_b.inputs["domainName"] == "api.app.example.com"
    assert domain_a.inputs["regionalCertificateArn"].startswith("arn:aws:acm:us-east-1:")
    assert domain_b.inputs["regionalCertificateArn"].startswith("arn:aws:acm:us-west-2:")
    api_records = [
        r for r in dr.by_type("aws:route53/record:Record") if r.inputs["name"] == "api.app.example.com"
    ]
    kinds = {r.inputs["failoverRoutingPolicies"][0]["type"]: r.inputs["records"][0] for r in api_records}
    assert set(kinds) == {"PRIMARY", "SECONDARY"}
    assert kinds["PRIMARY"] == primary.outputs["apiDomainTarget"]
    # HTTPS everywhere once certificates exist: listeners and the web health check.
    assert any(r.inputs["protocol"] == "HTTPS" for r in dr.by_type("aws:lb/listener:Listener"))
    web_check = next(
        c for c in dr.by_type("aws:route53/healthCheck:HealthCheck") if c.name.endswith("web-check")
    )
    assert web_check.inputs["type"] == "HTTPS"


def test_without_certificates_no_api_record_is_published(dr: synth.Synthesis) -> None:
    """API Gateway answers only for its own names: a CNAME to execute-api would serve 403s."""
    assert [r for r in dr.by_type("aws:route53/record:Record") if r.inputs["name"].startswith("api.")] == []


def test_dashboard_lives_in_region_b_and_covers_both_regions(dr: synth.Synthesis) -> None:
    (board,) = dr.by_type("aws:cloudwatch/dashboard:Dashboard")
    assert board.region == dr.config["pilotlight:drRegion"]
    regions = {w["properties"]["region"] for w in json.loads(board.inputs["dashboardBody"])["widgets"]}
    assert regions == {dr.config["pilotlight:primaryRegion"], dr.config["pilotlight:drRegion"]}


def test_a_configured_ami_is_copied_to_region_b_and_used_there() -> None:
    from tests.components.conftest import synthesize

    ami = {"pilotlight:compute": {"amiId": "ami-0123456789abcdef0"}}
    primary, dr = synthesize("primary", ami), synthesize("dr", ami)
    (template_a,) = primary.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert template_a.inputs["imageId"] == "ami-0123456789abcdef0"
    (copy,) = dr.by_type("aws:ec2/amiCopy:AmiCopy")
    assert (copy.region, copy.inputs["sourceAmiRegion"], copy.inputs["encrypted"]) == (
        "us-west-2",
        "us-east-1",
        True,
    )
    (template_b,) = dr.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert template_b.inputs["imageId"] == copy.outputs["id"]
