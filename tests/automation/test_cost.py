"""Cost estimator: known figures computed by hand from the price table, and what is never dropped."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from automation.cost import (
    GLOBAL_REGION,
    CostReport,
    PriceTable,
    compare,
    estimate,
    format_table,
    load_prices,
    parse_prices,
)

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
)
A, B = "us-east-1", "us-west-2"


@dataclass(frozen=True)
class Res:
    """A recorded resource, as the offline plan hands it over."""

    type: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    region: str | None = A
    stack: str = "primary"


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices()


def one(report: CostReport, name: str) -> float:
    """The monthly cost of the single line item called ``name``."""
    items = [i for i in report.items if i.name == name]
    assert len(items) == 1, [i.name for i in report.items]
    return items[0].monthly_usd


def asg(name: str, desired: int, *, stack: str = "primary", region: str = A, **extra: Any) -> Res:
    inputs = {"minSize": desired, "desiredCapacity": desired, "maxSize": 6, "launchTemplate": {"id": None}}
    inputs.update(extra)
    return Res("aws:autoscaling/group:Group", name, inputs, region, stack)


def launch_template(
    name: str, itype: str, *, volume: int = 8, stack: str = "primary", region: str = A
) -> Res:
    inputs = {
        "instanceType": itype,
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": volume}}],
    }
    return Res("aws:ec2/launchTemplate:LaunchTemplate", name, inputs, region, stack)


# -- the price table --------------------------------------------------------------------------


def test_price_table_has_every_region_a_date_and_sources(prices: PriceTable) -> None:
    for region in REQUIRED_REGIONS:
        assert region in prices.regions, region
    date.fromisoformat(prices.as_of)
    assert prices.currency == "USD"
    assert prices.hours_per_month == 730
    assert prices.source and all(url.startswith("https://aws.amazon.com/") for url in prices.source.values())
    assert prices.notes, "uncertain figures must be called out in notes"


def test_price_table_has_the_regions_the_stacks_are_configured_for(prices: PriceTable) -> None:
    regions = set()
    for path in ROOT.glob("Pulumi.*.yaml"):
        regions |= set(re.findall(r"pilotlight:(?:primaryRegion|drRegion):\s*([a-z0-9-]+)", path.read_text()))
    for region in regions:
        assert region in prices.regions, f"{region} (from Pulumi.*.yaml) is not in automation/prices.json"


def test_anchor_prices_match_the_published_us_east_1_list(prices: PriceTable) -> None:
    # Spot checks against the AWS pricing pages: a slip in prices.json shows up here.
    use1 = prices.regions["us-east-1"]
    assert use1["ec2_linux_hourly"]["t3.medium"] == 0.0416
    assert use1["nat_gateway_hourly"] == 0.045
    assert use1["alb_hourly"] == 0.0225
    assert use1["aurora_postgresql_hourly"]["db.r6g.large"] == 0.26
    assert use1["public_ipv4_hourly"] == 0.005
    assert prices.global_prices["route53_health_check_month"]["aws_endpoint"] == 0.50


def test_regions_outside_the_us_cost_more(prices: PriceTable) -> None:
    use1 = prices.regions["us-east-1"]
    for region in ("eu-west-1", "eu-central-1", "ap-southeast-1", "ap-southeast-2"):
        other = prices.regions[region]
        assert other["ec2_linux_hourly"]["t3.medium"] > use1["ec2_linux_hourly"]["t3.medium"]
        assert other["nat_gateway_hourly"] > use1["nat_gateway_hourly"]
    for region in ("ap-southeast-1", "ap-southeast-2"):
        ratio = (
            prices.regions[region]["ec2_linux_hourly"]["t3.medium"] / use1["ec2_linux_hourly"]["t3.medium"]
        )
        assert 1.10 <= ratio <= 1.30


def test_multi_az_rds_is_twice_single_az_in_the_table(prices: PriceTable) -> None:
    for table in prices.regions.values():
        for engine in ("mysql", "postgres"):
            single, multi = table["rds_hourly"][engine]["single_az"], table["rds_hourly"][engine]["multi_az"]
            for cls, hourly in single.items():
                assert multi[cls] == pytest.approx(2 * hourly, abs=1e-4)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("as_of"), "as_of"),
        (lambda d: d.update(as_of="last spring"), "as_of"),
        (lambda d: d.pop("source"), "source"),
        (lambda d: d["regions"]["us-east-1"].pop("nat_gateway_hourly"), "nat_gateway_hourly"),
        (lambda d: d.update(hours_per_month=0), "hours_per_month"),
    ],
)
def test_a_broken_price_table_is_refused_naming_the_key(mutate: Any, message: str) -> None:
    raw = json.loads((ROOT / "automation" / "prices.json").read_text())
    mutate(raw)
    with pytest.raises(ValueError, match=message):
        parse_prices(raw)


# -- known configuration, known figure ----------------------------------------------------------


def test_a_known_primary_stack_costs_what_the_table_says(prices: PriceTable) -> None:
    resources = [
        Res("aws:ec2/vpc:Vpc", "net-vpc"),
        Res("aws:ec2/subnet:Subnet", "net-private-0"),
        Res("aws:ec2/eip:Eip", "net-nat-eip-0"),
        Res("aws:ec2/natGateway:NatGateway", "net-nat-0"),
        Res(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "net-ssm",
            {"vpcEndpointType": "Interface", "subnetIds": ["a", "b", "c"]},
        ),
        Res("aws:ec2/vpcEndpoint:VpcEndpoint", "net-s3", {"vpcEndpointType": "Gateway"}),
        launch_template("web-lt", "t3.small", volume=20),
        asg("web-asg", 2, launchTemplate={"id": "web-lt_id", "version": "$Latest"}),
        Res("aws:lb/loadBalancer:LoadBalancer", "web-alb", {"internal": False, "subnets": ["a", "b"]}),
        Res("aws:rds/cluster:Cluster", "db", {"engine": "aurora-postgresql", "globalClusterIdentifier": "g"}),
        Res(
            "aws:rds/clusterInstance:ClusterInstance",
            "db-0",
            {"instanceClass": "db.r6g.large", "engine": "aurora-postgresql"},
        ),
        Res(
            "aws:rds/clusterInstance:ClusterInstance",
            "db-1",
            {"instanceClass": "db.r6g.large", "engine": "aurora-postgresql"},
        ),
        Res("aws:kms/key:Key", "key"),
        Res("aws:secretsmanager/secret:Secret", "db-credentials", {"replicas": [{"region": B}]}),
        Res("aws:lambda/function:Function", "api"),
        Res("aws:iam/role:Role", "api-role"),
    ]
    report = estimate(resources, prices)

    p = prices.regions[A]
    pb = prices.regions[B]
    h = 730
    serving = prices.assumptions["traffic"]["serving"]
    a = prices.assumptions
    expected = {
        "net-nat-eip-0": p["public_ipv4_hourly"] * h,
        "net-nat-0": p["nat_gateway_hourly"] * h
        + serving["nat_gb_processed_per_gateway"] * p["nat_gateway_gb_processed"],
        "net-ssm": 3 * p["vpc_interface_endpoint_az_hourly"] * h
        + serving["interface_endpoint_gb_processed_per_endpoint"] * p["vpc_interface_endpoint_gb_processed"],
        "net-s3": 0.0,
        "web-asg": 2 * (p["ec2_linux_hourly"]["t3.small"] * h + 20 * p["ebs_gp3_gb_month"]),
        "web-alb": (p["alb_hourly"] + serving["alb_average_lcu"] * p["alb_lcu_hourly"]) * h
        + 2 * p["public_ipv4_hourly"] * h,
        "db": a["aurora_storage_gb"] * p["aurora_storage_gb_month"]
        + a["aurora_io_million_per_month"] * p["aurora_io_million"],
        "db-0": p["aurora_postgresql_hourly"]["db.r6g.large"] * h,
        "db-1": p["aurora_postgresql_hourly"]["db.r6g.large"] * h,
        "key": p["kms_key_month"],
        "db-credentials": p["secrets_manager_secret_month"],
        "db-credentials (replica)": pb["secrets_manager_secret_month"],
        "net-vpc": 0.0,
        "net-private-0": 0.0,
        "web-lt": 0.0,
        "api": 0.0,
        "api-role": 0.0,
    }
    for name, usd in expected.items():
        assert one(report, name) == pytest.approx(usd), name
    assert report.total == pytest.approx(sum(expected.values()))
    assert report.not_priced == ()
    # A sanity anchor in plain numbers: 2 x t3.small (0.0208 $/h) x 730 h + 2 x 20 GB x 0.08 = 33.568.
    assert one(report, "web-asg") == pytest.approx(33.568)
    # The replica secret is billed in region B, the rest in region A.
    assert report.totals_by_region()["primary"][B] == pytest.approx(pb["secrets_manager_secret_month"])


def test_line_items_carry_a_readable_basis(prices: PriceTable) -> None:
    report = estimate([launch_template("lt", "t3.medium"), asg("web", 2)], prices)
    basis = next(i.basis for i in report.items if i.name == "web")
    assert "2 x t3.medium x 730 h" in basis
    assert next(i.basis for i in report.items if i.name == "lt").startswith("no standing charge")


# -- compute ------------------------------------------------------------------------------------


def test_a_warm_pool_of_stopped_instances_costs_ebs_only(prices: PriceTable) -> None:
    p = prices.regions[B]
    warm = {"poolState": "Stopped", "minSize": 2, "maxGroupPreparedCapacity": 2}
    resources = [launch_template("lt", "m6i.large", volume=30, stack="dr", region=B)]
    resources.append(asg("web", 0, stack="dr", region=B, warmPool=warm))
    report = estimate(resources, prices)
    assert one(report, "web (warm pool)") == pytest.approx(2 * 30 * p["ebs_gp3_gb_month"])
    assert "EBS only" in next(i.basis for i in report.items if i.name == "web (warm pool)")
    assert not [i for i in report.items if i.name == "web"]  # no running instances at desired 0


def test_an_asg_at_zero_without_a_warm_pool_costs_nothing(prices: PriceTable) -> None:
    report = estimate([asg("web", 0, stack="dr", region=B)], prices)
    assert one(report, "web") == 0.0
    assert report.not_priced == ()


def test_the_caller_can_name_the_instance_type_when_the_template_is_unresolved(prices: PriceTable) -> None:
    p = prices.regions[A]
    two_templates = [launch_template("lt-a", "t3.micro"), launch_template("lt-b", "t3.small")]
    unresolved = estimate([*two_templates, asg("web", 3)], prices)
    assert [n.name for n in unresolved.not_priced] == ["web"]
    assert "instance_types" in unresolved.not_priced[0].reason

    resolved = estimate([*two_templates, asg("web", 3)], prices, instance_types={"web": "m7g.large"})
    expected = 3 * (p["ec2_linux_hourly"]["m7g.large"] * 730 + 8 * p["ebs_gp3_gb_month"])
    assert one(resolved, "web") == pytest.approx(expected)


# -- databases ----------------------------------------------------------------------------------


def test_rds_multi_az_doubles_instance_and_storage(prices: PriceTable) -> None:
    p = prices.regions[A]
    base = {"engine": "postgres", "instanceClass": "db.t4g.medium", "allocatedStorage": 100}
    single = estimate([Res("aws:rds/instance:Instance", "db", {**base, "multiAz": False})], prices)
    multi = estimate([Res("aws:rds/instance:Instance", "db", {**base, "multiAz": True})], prices)
    single_expected = (
        p["rds_hourly"]["postgres"]["single_az"]["db.t4g.medium"] * 730
        + 100 * p["rds_gp3_storage_gb_month"]["single_az"]
    )
    assert one(single, "db") == pytest.approx(single_expected)
    assert one(multi, "db") == pytest.approx(2 * single_expected)


def test_a_headless_aurora_secondary_costs_less_than_one_with_an_instance(prices: PriceTable) -> None:
    p = prices.regions[B]
    cluster = Res(
        "aws:rds/cluster:Cluster",
        "db-dr",
        {"engine": "aurora-postgresql", "globalClusterIdentifier": "g"},
        B,
        "dr",
    )
    instance = Res(
        "aws:rds/clusterInstance:ClusterInstance", "db-dr-0", {"instanceClass": "db.r6g.large"}, B, "dr"
    )
    headless = estimate([cluster], prices)
    one_instance = estimate([cluster, instance], prices)
    assert headless.total < one_instance.total
    assert one_instance.total - headless.total == pytest.approx(
        p["aurora_postgresql_hourly"]["db.r6g.large"] * 730
    )
    # The standby secondary pays replicated write I/Os, not the primary's I/O.
    a = prices.assumptions
    assert one(headless, "db-dr") == pytest.approx(
        a["aurora_storage_gb"] * p["aurora_storage_gb_month"]
        + a["aurora_replicated_write_io_million_per_month"] * p["aurora_global_replicated_write_io_million"]
    )


# -- Route 53 -----------------------------------------------------------------------------------


def test_health_checks_are_priced_by_type_and_options(prices: PriceTable) -> None:
    hc = prices.global_prices["route53_health_check_month"]
    t = "aws:route53/healthCheck:HealthCheck"
    resources = [
        Res(t, "fast-https", {"type": "HTTPS", "requestInterval": 10, "fqdn": None}, A, "dr"),
        Res(t, "plain-http", {"type": "HTTP", "requestInterval": 30, "fqdn": "x.elb.amazonaws.com"}, A, "dr"),
        Res(t, "outside", {"type": "HTTP", "requestInterval": 30, "fqdn": "status.example.org"}, A, "dr"),
        Res(
            t,
            "outside-match",
            {"type": "HTTPS_STR_MATCH", "requestInterval": 10, "fqdn": "example.org"},
            A,
            "dr",
        ),
        Res(t, "switch", {"type": "CLOUDWATCH_METRIC", "cloudwatchAlarmName": "x"}, A, "dr"),
        Res(t, "both", {"type": "CALCULATED", "childHealthchecks": ["a", "b"]}, A, "dr"),
        Res("aws:route53/zone:Zone", "zone", {"name": "example.com"}, A, "dr"),
        Res("aws:route53/record:Record", "www", {"type": "A"}, A, "dr"),
    ]
    report = estimate(resources, prices)
    assert one(report, "fast-https") == pytest.approx(
        hc["aws_endpoint"] + 2 * hc["optional_feature_aws_endpoint"]
    )
    assert one(report, "plain-http") == pytest.approx(hc["aws_endpoint"])
    assert one(report, "outside") == pytest.approx(hc["non_aws_endpoint"])
    assert one(report, "outside-match") == pytest.approx(
        hc["non_aws_endpoint"] + 3 * hc["optional_feature_non_aws_endpoint"]
    )
    assert one(report, "switch") == pytest.approx(hc["cloudwatch_metric"])
    assert one(report, "both") == pytest.approx(hc["calculated"])
    assert one(report, "zone") == pytest.approx(prices.global_prices["route53_hosted_zone_month"])
    assert one(report, "www") == 0.0
    assert {i.region for i in report.items} == {GLOBAL_REGION}


# -- observability ------------------------------------------------------------------------------


def test_alarms_count_metrics_and_custom_metrics_are_charged_once(prices: PriceTable) -> None:
    p = prices.regions[A]
    custom = {"namespace": "Pilotlight/Canary", "metricName": "Success", "dimensions": {"Region": A}}
    resources = [
        Res("aws:cloudwatch/metricAlarm:MetricAlarm", "canary-low", {**custom, "period": 60}),
        Res("aws:cloudwatch/metricAlarm:MetricAlarm", "canary-high", {**custom, "period": 60}),
        Res(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "errors-ratio",
            {
                "metricQueries": [
                    {"id": "e", "metric": {"namespace": "AWS/Lambda", "metricName": "Errors", "period": 60}},
                    {
                        "id": "i",
                        "metric": {"namespace": "AWS/Lambda", "metricName": "Invocations", "period": 60},
                    },
                    {"id": "r", "expression": "e / i", "returnData": True},
                ]
            },
        ),
        Res(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "fast",
            {"namespace": "AWS/EC2", "metricName": "X", "period": 10},
        ),
        Res("aws:cloudwatch/dashboard:Dashboard", "dash"),
    ]
    report = estimate(resources, prices)
    std, hi = p["cloudwatch_standard_alarm_metric_month"], p["cloudwatch_high_resolution_alarm_metric_month"]
    assert one(report, "canary-low") == pytest.approx(std)
    assert one(report, "errors-ratio") == pytest.approx(2 * std)
    assert one(report, "fast") == pytest.approx(hi)
    assert one(report, "metric Pilotlight/Canary/Success") == pytest.approx(
        p["cloudwatch_custom_metric_month"]
    )
    assert one(report, "dash") == pytest.approx(p["cloudwatch_dashboard_month"])


# -- traffic profiles, comparison ---------------------------------------------------------------


def test_active_switches_the_dr_stack_to_the_serving_profile(prices: PriceTable) -> None:
    nat = [Res("aws:ec2/natGateway:NatGateway", "nat", {}, B, "dr")]
    standby, active = estimate(nat, prices), estimate(nat, prices, active=True)
    p = prices.regions[B]
    t = prices.assumptions["traffic"]
    for report, profile in ((standby, "standby"), (active, "serving")):
        gb = t[profile]["nat_gb_processed_per_gateway"]
        assert one(report, "nat") == pytest.approx(
            p["nat_gateway_hourly"] * 730 + gb * p["nat_gateway_gb_processed"]
        )
    assert active.total > standby.total


def test_standby_ratio_is_dr_total_over_primary_total(prices: PriceTable) -> None:
    p_res = [launch_template("lt", "t3.small"), asg("web", 2), Res("aws:kms/key:Key", "key")]
    d_res = [Res("aws:kms/key:Key", "key", {}, B, "dr"), Res("aws:ec2/eip:Eip", "eip", {}, B, "dr")]
    primary, dr = estimate(p_res, prices), estimate(d_res, prices)
    comparison = compare(primary, dr)
    pa, pb = prices.regions[A], prices.regions[B]
    primary_total = (
        2 * (pa["ec2_linux_hourly"]["t3.small"] * 730 + 8 * pa["ebs_gp3_gb_month"]) + pa["kms_key_month"]
    )
    dr_total = pb["kms_key_month"] + pb["public_ipv4_hourly"] * 730
    assert comparison.primary_total == pytest.approx(primary_total)
    assert comparison.dr_total == pytest.approx(dr_total)
    assert comparison.standby_ratio == pytest.approx(100 * dr_total / primary_total)
    assert "standby ratio" in format_table(dr, comparison=comparison)


def test_compare_refuses_a_free_primary(prices: PriceTable) -> None:
    empty = estimate([], prices)
    with pytest.raises(ValueError, match="primary"):
        compare(empty, empty)


# -- nothing is silently dropped ------------------------------------------------------------------


def test_unknown_types_and_regions_are_listed_as_not_priced(prices: PriceTable) -> None:
    resources = [
        Res("aws:elasticache/cluster:Cluster", "cache"),
        Res("aws:kms/key:Key", "key-in-mars", {}, "mars-north-1"),
        Res("aws:rds/clusterInstance:ClusterInstance", "big", {"instanceClass": "db.x2g.16xlarge"}),
        Res("aws:kms/key:Key", "key"),
    ]
    report = estimate(resources, prices)
    not_priced = {n.name: n.reason for n in report.not_priced}
    assert set(not_priced) == {"cache", "key-in-mars", "big"}
    assert "not in the estimator" in not_priced["cache"]
    assert "mars-north-1" in not_priced["key-in-mars"]
    assert "db.x2g.16xlarge" in not_priced["big"]
    assert report.total == pytest.approx(prices.regions[A]["kms_key_month"])
    text = format_table(report)
    assert "not priced" in text and "cache" in text and "aws:elasticache/cluster:Cluster" in text


def test_every_resource_is_accounted_for(prices: PriceTable) -> None:
    resources = [Res("aws:ec2/subnet:Subnet", f"s{i}") for i in range(3)] + [
        Res("aws:elasticache/cluster:Cluster", "cache"),
        Res("pilotlight:index:PrimaryRegion", "primary"),
    ]
    report = estimate(resources, prices)
    accounted = {i.name for i in report.items} | {n.name for n in report.not_priced} | set(report.structural)
    assert {r.name for r in resources} <= accounted
    assert report.structural == ("primary",)


# -- presentation -------------------------------------------------------------------------------


def test_report_prints_date_sources_and_assumptions_and_serialises(prices: PriceTable) -> None:
    resources = [Res("aws:ec2/natGateway:NatGateway", "nat"), Res("aws:ec2/subnet:Subnet", "s")]
    report = estimate(resources, prices)
    text = format_table(report)
    assert prices.as_of in text
    assert "https://aws.amazon.com/vpc/pricing/" in text
    assert "traffic.serving" in text and "nat_gb_processed_per_gateway" in text
    assert "resources at $0" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["as_of"] == prices.as_of
    assert data["totals_by_stack"]["primary"] == pytest.approx(round(report.total, 2))
    assert {i["name"] for i in data["items"]} == {"nat", "s"}


def test_ssm_parameters_cost_only_in_the_advanced_tier(prices: PriceTable) -> None:
    t = "aws:ssm/parameter:Parameter"
    report = estimate(
        [Res(t, "latch", {"tier": "Standard"}, B, "dr"), Res(t, "big", {"tier": "Advanced"}, B, "dr")], prices
    )
    assert one(report, "latch") == 0.0
    assert one(report, "big") == pytest.approx(prices.regions[B]["ssm_advanced_parameter_month"])
