"""GlobalFailover: Route 53 failover between the regions, and the failover switch.

Routing: each public name (``web.<domain>``, ``api.<domain>``) has a PRIMARY record pointing at
region A and a SECONDARY record pointing at region B. The PRIMARY record is tied to a *calculated*
health check that is healthy only when both children are healthy:

1. region A's endpoint health check (HTTP(S), ``healthCheckInterval`` x ``failureThreshold``);
2. the **failover switch**: a CloudWatch-alarm health check on an alarm *in region B*.

Throwing the switch (1 on the switch metric in B: the runbook, ``python -m automation latch
activate``, and the canary every minute while the latch says active) marks the PRIMARY unhealthy, so
Route 53's data plane answers with region B. No API call in region A is needed, and because the
switch holds while the latch says active, traffic does not drift back to region A when its endpoint
recovers: a region whose database is no longer the writer never takes traffic again until an
explicit failback releases the switch. The alarm's configuration never depends on ``dr:active``:
the latch is the one record of where traffic goes, so a runbook failback's release is never
overridden by a configuration the program left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.failover import DesiredTier
from components.iam import iam_path
from components.naming import limit_of, physical_name
from components.observability import dashboard_body
from components.storage import replication_rule
from components.wiring import PrimaryOutputs
from lambdas.failover.names import switch_namespace

SWITCH_METRIC = "FailoverSwitch"


def switch_metric(prefix: str) -> dict[str, Any]:
    """The failover switch metric of the deployment ``prefix`` (``<app>-<env>``): what the switch alarm
    watches, the canary keeps and the runbook throws (its ``switchMetric`` context).

    Its namespace is the deployment's own (``Pilotlight/Failover/<app>-<env>``,
    :func:`lambdas.failover.names.switch_namespace`): IAM fences PutMetricData by namespace only, so a
    namespace shared by every environment let staging's roles throw production's switch (issue 12).
    Deployments from before it watched ``Pilotlight/Failover``: the alarm's ``namespace`` is updated in
    place (not ForceNew in the provider's schema: hashicorp/terraform-provider-aws
    internal/service/cloudwatch/metric_alarm.go, ``namespace``; the update is a PutMetricAlarm, which
    "completely overwrites the previous configuration" and leaves the alarm's state unchanged:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html). Until the
    canary, updated in the same ``pulumi up``, writes the new namespace (within a minute), the alarm
    has no data, and the health check keeps its last known status (``insufficient_data_health_status``
    below): the switch holds where it was.
    """
    return {"namespace": switch_namespace(prefix), "name": SWITCH_METRIC, "dimensions": {"App": prefix}}


SWITCH_ALARM = {"threshold": 1, "treat_missing_data": "missing"}
"""The switch alarm, in every state: in ALARM only when the switch metric reads 1; missing data keeps
the last state (the health check uses LastKnownStatus), so a single datapoint holds. A declared
failover throws the switch through the latch (``python -m automation latch activate``), as the
runbook does, never through this configuration (issue 13, E2)."""


@dataclass
class GlobalFailoverArgs:
    """Inputs of :class:`GlobalFailover`. Both providers are explicit: nothing here has a home region.

    Attributes:
        config: the parsed dr stack configuration.
        primary: region A's outputs (endpoints to health-check and route to).
        tier: the desired DR tier (where traffic goes).
        primary_provider: region A's provider; must not need region A to answer (see providers.py).
        dr_provider: region B's provider: the switch alarm, alert topic and dashboard live in B.
        dr_web_dns: region B's load balancer DNS name.
        dr_api_domain: region B's API custom domain target (None without certificates).
        dr_api_regional: region B's own API name, its target and hosted zone (None without certificates).
        alarm_topic_arn: the SNS topic in region B that alarms notify.
        replica_bucket_arn: region B's replica bucket (data tier); with ``replica_kms_key_arn``, turns
            on S3 replication from the primary's application bucket.
        replica_kms_key_arn: region B's key that encrypts the replicas.
    """

    config: StackConfig
    primary: PrimaryOutputs
    tier: DesiredTier
    primary_provider: pulumi.ProviderResource
    dr_provider: pulumi.ProviderResource
    dr_web_dns: pulumi.Input[str]
    dr_api_domain: pulumi.Input[str] | None
    alarm_topic_arn: pulumi.Input[str]
    dr_dashboard_dimensions: dict[str, Any] | None = None
    dr_api_regional: tuple[str, pulumi.Input[str], pulumi.Input[str]] | None = None
    replica_bucket_arn: pulumi.Input[str] | None = None
    replica_kms_key_arn: pulumi.Input[str] | None = None


class GlobalFailover(pulumi.ComponentResource):
    """Route 53 zone, health checks, failover records, the failover switch, cross-region dashboard."""

    zone_id: pulumi.Output[str]
    web_name: str
    api_name: str
    switch_alarm_name: pulumi.Output[str]
    switch_metric: dict[str, Any]

    def __init__(
        self, name: str, args: GlobalFailoverArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:GlobalFailover", name, None, opts)
        cfg, routing = args.config, args.config.routing
        # Route 53 is a global service; its resources go through region B's provider so that the dr
        # stack's update never needs region A's endpoints.
        in_b = pulumi.ResourceOptions(parent=self, provider=args.dr_provider)
        https = routing.certificate_arn is not None

        if routing.hosted_zone_id is not None:
            zone_id: pulumi.Input[str] = routing.hosted_zone_id
        else:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=routing.domain,
                comment=f"pilotlight {cfg.prefix}: failover records",
                opts=pulumi.ResourceOptions(parent=self, provider=args.dr_provider, protect=cfg.protect),
            )
            zone_id = zone.zone_id

        # --- the failover switch (region B) ---
        self.switch_metric = switch_metric(cfg.prefix)
        switch_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-switch",
            name=physical_name(
                cfg.prefix,
                "failover-switch",
                limit=limit_of("aws:cloudwatch/metricAlarm:MetricAlarm", "name"),
            ),
            alarm_description="pilotlight failover switch: ALARM sends traffic to region "
            f"{cfg.dr_region} ({self.switch_metric['namespace']} {SWITCH_METRIC}=1 while the failover latch "
            "says active)",
            namespace=self.switch_metric["namespace"],
            metric_name=self.switch_metric["name"],
            dimensions=self.switch_metric["dimensions"],
            statistic="Maximum",
            period=60,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=SWITCH_ALARM["threshold"],
            treat_missing_data=SWITCH_ALARM["treat_missing_data"],
            alarm_actions=[args.alarm_topic_arn],
            ok_actions=[args.alarm_topic_arn],
            opts=in_b,
        )
        switch_check = aws.route53.HealthCheck(
            f"{name}-switch-check",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=switch_alarm.name,
            cloudwatch_alarm_region=cfg.dr_region,
            insufficient_data_health_status="LastKnownStatus",
            tags={"Name": f"{cfg.prefix}-failover-switch"},
            opts=in_b,
        )

        # --- region A's endpoints ---
        def endpoint_check(
            suffix: str, fqdn: pulumi.Input[str], path: str, secure: bool
        ) -> aws.route53.HealthCheck:
            return aws.route53.HealthCheck(
                f"{name}-{suffix}-check",
                type="HTTPS" if secure else "HTTP",
                fqdn=fqdn,
                port=443 if secure else 80,
                resource_path=path,
                request_interval=routing.health_check_interval,
                failure_threshold=routing.failure_threshold,
                measure_latency=True,
                tags={"Name": f"{cfg.prefix}-{suffix}-{cfg.primary_region}"},
                opts=in_b,
            )

        def calculated(suffix: str, endpoint: aws.route53.HealthCheck) -> aws.route53.HealthCheck:
            return aws.route53.HealthCheck(
                f"{name}-{suffix}-primary-gate",
                type="CALCULATED",
                child_healthchecks=[endpoint.id, switch_check.id],
                child_health_threshold=2,
                tags={"Name": f"{cfg.prefix}-{suffix}-primary-gate"},
                opts=in_b,
            )

        def failover_pair(suffix: str, record: str, primary_target: pulumi.Input[str], dr_target: pulumi.Input[str],
                          gate: aws.route53.HealthCheck) -> None:  # fmt: skip
            for role, target, check in (("PRIMARY", primary_target, gate.id), ("SECONDARY", dr_target, None)):
                aws.route53.Record(
                    f"{name}-{suffix}-{role.lower()}",
                    zone_id=zone_id,
                    name=record,
                    type="CNAME",
                    ttl=routing.ttl,
                    records=[target],
                    set_identifier=f"{cfg.prefix}-{suffix}-{role.lower()}",
                    failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=role)],
                    health_check_id=check,
                    opts=in_b,
                )

        self.web_name = f"web.{routing.domain}"
        self.api_name = f"api.{routing.domain}"
        web_check = endpoint_check("web", args.primary["webAlbDns"], "/health", https)
        self.web_check_id = web_check.id
        failover_pair(
            "web", self.web_name, args.primary["webAlbDns"], args.dr_web_dns, calculated("web", web_check)
        )

        # The API is checked on region A's own name (api-<region>.<domain>) with custom domains, else
        # on its execute-api host (always HTTPS). Records for the API exist only with custom domains:
        # API Gateway refuses requests whose Host is not one of its names.
        api_check = endpoint_check(
            "api",
            args.primary.get("apiHealthHost") or args.primary["apiHost"],
            args.primary.get("apiHealthPath") or f"/{args.primary['apiStage']}/health",
            True,
        )
        regional = [
            (cfg.primary_region, args.primary.get("apiRegionalDomainName"),
             args.primary.get("apiRegionalDomainTarget"), args.primary.get("apiRegionalZoneId")),
            (cfg.dr_region, *(args.dr_api_regional or (None, None, None))),
        ]  # fmt: skip
        for region, record, target, target_zone in regional:
            if record and target and target_zone:
                # Each region's API by its own name: what health checks, canary and runbook probe.
                aws.route53.Record(
                    f"{name}-api-{region}",
                    zone_id=zone_id,
                    name=record,
                    type="A",
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=target, zone_id=target_zone, evaluate_target_health=False
                        )
                    ],
                    opts=in_b,
                )
        self.api_check_id = api_check.id
        if args.dr_api_domain is not None and args.primary.get("apiDomainTarget"):
            failover_pair(
                "api",
                self.api_name,
                args.primary["apiDomainTarget"],
                args.dr_api_domain,
                calculated("api", api_check),
            )

        # --- data tier: S3 replication of the primary's bucket to region B (components/storage.py) ---
        # The rule lives on the bucket in region A, but the role goes through region B's provider.
        if args.replica_bucket_arn is not None and args.replica_kms_key_arn is not None:
            self.s3_replication = replication_rule(
                f"{name}-s3-replication",
                source_bucket_id=args.primary["appBucketName"],
                source_bucket_arn=args.primary["appBucketArn"],
                source_kms_key_arn=args.primary["kmsKeyArn"],
                dest_bucket_arn=args.replica_bucket_arn,
                dest_kms_key_arn=args.replica_kms_key_arn,
                rtc=cfg.storage.replication_time_control,
                iam_path=iam_path(cfg.prefix),
                parent=self,
                source_provider=args.primary_provider,
                role_provider=args.dr_provider,
            )
        # --- end data tier ---

        # --- the cross-region dashboard (region B: it must be readable while region A is down) ---
        if args.dr_dashboard_dimensions is not None:
            primary_dims = {
                "alb": args.primary["webAlbArnSuffix"],
                "function": args.primary["functionNames"][0],
                "api": args.primary["apiName"],
                "stage": args.primary["apiStage"],
            }
            regions = {cfg.primary_region: primary_dims, cfg.dr_region: args.dr_dashboard_dimensions}
            aws.cloudwatch.Dashboard(
                f"{name}-dashboard",
                dashboard_name=physical_name(
                    cfg.prefix, "dr", limit=limit_of("aws:cloudwatch/dashboard:Dashboard", "dashboardName")
                ),
                dashboard_body=pulumi.Output.from_input(regions).apply(
                    lambda r: dashboard_body(cfg.prefix, r)
                ),
                opts=in_b,
            )

        self.zone_id = pulumi.Output.from_input(zone_id)
        self.switch_alarm_name = switch_alarm.name
        scheme = "https" if https else "http"
        self._exports: dict[str, Any] = {
            "traffic": args.tier.traffic,
            "zoneId": self.zone_id,
            "webName": self.web_name,
            "failoverHealthUrl": f"{scheme}://{self.web_name}/health",
            "switchAlarmName": self.switch_alarm_name,
        }
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs of the global layer."""
        return dict(self._exports)
