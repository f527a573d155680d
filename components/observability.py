"""Alerts and dashboards: an SNS topic and tier alarms per region, and a cross-region dashboard.

The "primary unhealthy" alarm lives in region B and watches the canary's ``PrimaryHealthy`` metric
(published in B by ``lambdas/health_check`` probing region A from outside), in the deployment's own
namespace ``Pilotlight/Health/<app>-<env>`` (:func:`lambdas.failover.names.health_namespace`): IAM
fences PutMetricData by namespace only, and this alarm starts the automated failover. Route 53's own
health-check metrics exist only in us-east-1, which may be region A: an alarm there could fail
with the region it watches. Its evaluation window is the automated failover's confirmation window,
so a short blip does not fail over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.naming import limit_of, physical_name
from lambdas.failover.names import health_namespace, switch_namespace

_TOPIC = "aws:sns/topic:Topic"
_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@dataclass
class ObservabilityArgs:
    """Inputs of :class:`Observability` (one per region).

    Attributes:
        prefix: ``<app>-<env>``, used in alarm names.
        region: this region.
        alert_email: optional email subscription on the topic.
        alb_arn_suffix / target_group_arn_suffix: the web tier's metrics dimensions.
        function_name, api_name, api_stage: the API tier's metrics dimensions.
        replica_lag: (namespace-free) ``(metric, dimension_name, dimension_value, threshold)`` for the
            replica-lag alarm in region B; None in region A.
        watch_primary: create the "primary unhealthy" alarm on the canary metric (region B).
        confirmation_minutes: consecutive failed minutes before that alarm fires.
        protect: protect the topic's key (production), like every key.
    """

    prefix: str
    region: str
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    function_name: pulumi.Input[str]
    api_name: pulumi.Input[str]
    api_stage: pulumi.Input[str]
    alert_email: str | None = None
    replica_lag: tuple[str, str, pulumi.Input[str], float] | None = None
    watch_primary: bool = False
    confirmation_minutes: int = 3
    protect: bool = False
    extra_alarm_actions: list[pulumi.Input[str]] = field(default_factory=list)
    # How the replica-lag alarm treats missing data: "missing" while the watched database is a replica
    # (silence, replication not reporting, turns it INSUFFICIENT_DATA, which notifies), "notBreaching"
    # while it is the writer (no lag exists). Never "breaching": the runbook promotes the replica out of
    # band, and a breaching alarm would then sit in ALARM until the next `pulumi up -s dr` (BL21-6).
    replica_lag_missing_data: str = "missing"


def alert_key_policy(account_id: str) -> dict[str, Any]:
    """Key policy of a region's alert-topic key: the account administers it; CloudWatch may use it.

    An alarm publishes to an encrypted topic as ``cloudwatch.amazonaws.com``, which needs
    ``kms:Decrypt`` and ``kms:GenerateDataKey*`` on the topic's key. The AWS managed key
    ``alias/aws/sns`` cannot grant that (its policy cannot be changed), so every notification would
    fail silently (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, "Enable
    compatibility between event sources from AWS services and encrypted topics"). In a key policy
    ``Resource: "*"`` means this key (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchAlarmsPublishToTheTopic",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    }


class Observability(pulumi.ComponentResource):
    """The region's alert topic (encrypted with its own key) and alarms."""

    topic_arn: pulumi.Output[str]
    topic_key_arn: pulumi.Output[str]
    primary_unhealthy_alarm_arn: pulumi.Output[str] | None
    primary_unhealthy_alarm_name: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        key = aws.kms.Key(
            f"{name}-alerts-key",
            description=f"{args.prefix}: alert topic in {args.region} (CloudWatch alarms may use it)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=account.apply(lambda a: json.dumps(alert_key_policy(a))),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.kms.Alias(
            f"{name}-alerts-key-alias",
            name=physical_name(
                f"alias/{args.prefix}", "alerts", limit=limit_of("aws:kms/alias:Alias", "name")
            ),
            target_key_id=key.key_id,
            opts=child,
        )
        topic = aws.sns.Topic(
            f"{name}-alerts",
            name=physical_name(args.prefix, "alerts", args.region, limit=limit_of(_TOPIC, "name")),
            kms_master_key_id=key.arn,
            opts=child,
        )
        if args.alert_email:
            aws.sns.TopicSubscription(
                f"{name}-alerts-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.alert_email,
                opts=child,
            )
        actions = [topic.arn]

        def alarm(suffix: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                name=physical_name(args.prefix, suffix, args.region, limit=limit_of(_ALARM, "name")),
                alarm_actions=actions,
                ok_actions=actions,
                opts=child,
                **kwargs,
            )

        # 5xx rate on the load balancer: target and ELB errors over requests, above 5 % for 3 minutes.
        def metric(id_: str, name_: str, stat: str = "Sum") -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=id_,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/ApplicationELB",
                    metric_name=name_,
                    dimensions={"LoadBalancer": args.alb_arn_suffix},
                    period=60,
                    stat=stat,
                ),
            )

        alarm(
            "web-5xx-rate",
            alarm_description="Web tier: 5xx responses above 5% of requests",
            comparison_operator="GreaterThanThreshold",
            threshold=5,
            evaluation_periods=3,
            treat_missing_data="notBreaching",
            metric_queries=[
                metric("t5xx", "HTTPCode_Target_5XX_Count"),
                metric("e5xx", "HTTPCode_ELB_5XX_Count"),
                metric("req", "RequestCount"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="100 * (FILL(t5xx,0) + FILL(e5xx,0)) / MAX([req, 1])",
                    return_data=True,
                ),
            ],
        )
        alarm(
            "web-unhealthy-hosts",
            alarm_description="Web tier: unhealthy targets behind the load balancer",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions={"LoadBalancer": args.alb_arn_suffix, "TargetGroup": args.target_group_arn_suffix},
            statistic="Maximum",
            period=60,
            evaluation_periods=3,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        )
        alarm(
            "api-5xx",
            alarm_description="API tier: 5xx responses",
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions={"ApiName": args.api_name, "Stage": args.api_stage},
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            threshold=5,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        )
        alarm(
            "lambda-errors",
            alarm_description="API tier: function errors",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": args.function_name},
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            threshold=5,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        )
        if args.replica_lag is not None:
            metric_name, dim_name, dim_value, threshold = args.replica_lag
            namespace = "AWS/RDS"
            alarm(
                "replica-lag",
                alarm_description=f"Data tier: {metric_name} above the RPO bound ({threshold:g})",
                namespace=namespace,
                metric_name=metric_name,
                dimensions={dim_name: dim_value},
                statistic="Maximum",
                period=60,
                evaluation_periods=5,
                threshold=threshold,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data=args.replica_lag_missing_data,
                # "missing": "If all data points in the alarm evaluation range are missing, the alarm
                # transitions to INSUFFICIENT_DATA"
                # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html);
                # a replica that stops reporting still notifies, through this action, and a database the
                # runbook promoted (no ReplicaLag any more) is not an ALARM for ever.
                insufficient_data_actions=actions,
            )

        self.primary_unhealthy_alarm_arn = None
        self.primary_unhealthy_alarm_name = None
        if args.watch_primary:
            unhealthy = alarm(
                "primary-unhealthy",
                alarm_description=(
                    "Region A failed the canary's health probes from this region for "
                    f"{args.confirmation_minutes} consecutive minutes (automated failover trigger)"
                ),
                # Updated in place from the shared Pilotlight/Health of earlier versions (namespace is
                # not ForceNew: components/global_failover.py, switch_metric).
                namespace=health_namespace(args.prefix),
                metric_name="PrimaryHealthy",
                dimensions={"App": args.prefix},
                statistic="Minimum",
                period=60,
                evaluation_periods=args.confirmation_minutes,
                datapoints_to_alarm=args.confirmation_minutes,
                threshold=1,
                comparison_operator="LessThanThreshold",
                # The canary runs in this region: silence means the canary is broken, not region A.
                treat_missing_data="missing",
            )
            self.primary_unhealthy_alarm_arn = unhealthy.arn
            self.primary_unhealthy_alarm_name = unhealthy.name

        self.topic_arn = topic.arn
        self.topic_key_arn = key.arn
        self.register_outputs({"topic_arn": self.topic_arn})


def dashboard_body(prefix: str, regions: dict[str, dict[str, Any]]) -> str:
    """A CloudWatch dashboard (JSON) with one column per region: web, API, functions, data, health.

    ``regions`` maps a region to its dimension values: ``alb``, ``function``, ``api``, ``stage``, and
    optionally ``db_metric``/``db_dim``/``db_value``. Pure: tested directly.
    """
    widgets: list[dict[str, Any]] = []
    for col, (region, dims) in enumerate(regions.items()):
        x = col * 12

        def widget(
            y: int, title: str, metrics: list[list[Any]], x: int = x, region: str = region
        ) -> dict[str, Any]:
            return {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": f"{title} ({region})",
                    "region": region,
                    "metrics": metrics,
                    "period": 60,
                },
            }

        widgets += [
            widget(0, "Web requests and 5xx", [
                ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", dims["alb"], {"stat": "Sum"}],
                [".", "HTTPCode_Target_5XX_Count", ".", ".", {"stat": "Sum"}],
            ]),
            widget(6, "API requests and 5xx", [
                ["AWS/ApiGateway", "Count", "ApiName", dims["api"], "Stage", dims["stage"], {"stat": "Sum"}],
                [".", "5XXError", ".", ".", ".", ".", {"stat": "Sum"}],
            ]),
            widget(12, "Function invocations, errors, throttles", [
                ["AWS/Lambda", "Invocations", "FunctionName", dims["function"], {"stat": "Sum"}],
                [".", "Errors", ".", ".", {"stat": "Sum"}],
                [".", "Throttles", ".", ".", {"stat": "Sum"}],
            ]),
        ]  # fmt: skip
        if dims.get("db_metric"):
            widgets.append(
                widget(
                    18, "Replication lag", [["AWS/RDS", dims["db_metric"], dims["db_dim"], dims["db_value"]]]
                )
            )
    widgets.append(
        {
            "type": "metric",
            "x": 0,
            "y": 24,
            "width": 24,
            "height": 6,
            "properties": {
                "title": "Region A health from region B, and the failover switch",
                "region": list(regions)[-1],
                "metrics": [
                    [health_namespace(prefix), "PrimaryHealthy", "App", prefix, {"stat": "Minimum"}],
                    [switch_namespace(prefix), "FailoverSwitch", "App", prefix, {"stat": "Maximum"}],
                ],
                "period": 60,
            },
        }
    )
    return json.dumps({"widgets": widgets})
