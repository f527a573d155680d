"""PilotLightRegion: region B, holding only what keeps data and what is slow to create."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.compute import WebTier, WebTierArgs
from components.config import StackConfig
from components.failover import DesiredTier, Latch, dr_capacity
from components.global_failover import SWITCH_METRIC, SWITCH_NAMESPACE
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.orchestrator import Orchestrator, OrchestratorArgs
from components.serverless import ApiTier, ApiTierArgs
from components.wiring import PrimaryOutputs


@dataclass
class PilotLightRegionArgs:
    """Inputs of :class:`PilotLightRegion`.

    Attributes:
        config: the parsed stack configuration (role dr).
        primary: region A's outputs, read through the StackReference.
        tier: the desired DR tier from :func:`components.failover.decide`; this component only applies it.
        primary_provider: region A's provider (outage-tolerant), for the failback replica only.
    """

    config: StackConfig
    primary: PrimaryOutputs
    tier: DesiredTier
    primary_provider: pulumi.ProviderResource


class PilotLightRegion(pulumi.ComponentResource):
    """Region B: network, replica data tier, dormant web and API tiers, the failover orchestrator."""

    network: Network
    latch_parameter_name: pulumi.Output[str]
    web: WebTier
    api: ApiTier
    observability: Observability
    orchestrator: Orchestrator
    runbook: dict[str, Any]

    def __init__(
        self, name: str, args: PilotLightRegionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:PilotLightRegion", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.network = Network(
            f"{name}-net",
            NetworkArgs(
                region=cfg.dr_region, cidr=cfg.dr_cidr, az_count=cfg.az_count, nat_strategy=cfg.nat_strategy
            ),
            child,
        )

        # The latch is written by the failover runbook; the program only creates it, and rewrites it
        # only at the end of an explicit failback.
        latch = aws.ssm.Parameter(
            f"{name}-failover-latch",
            name=cfg.latch_parameter_name,
            type="String",
            value=Latch().to_json(),
            description="pilotlight failover latch: written by the failover runbook, read by pulumi up",
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=[] if args.tier.reset_latch else ["value"]
            ),
        )
        self.latch_parameter_name = latch.name

        # --- app tier: deployed, dormant until the failover module says otherwise ---
        tier = args.tier
        self.web = WebTier(
            f"{name}-web",
            WebTierArgs(
                region=cfg.dr_region,
                role="dr",
                app_name=cfg.app_name,
                vpc_id=self.network.vpc_id,
                public_subnet_ids=self.network.public_subnet_ids,
                private_subnet_ids=self.network.private_subnet_ids,
                capacity=tier.capacity,
                instance_type=cfg.compute.instance_type,
                ami_id=cfg.compute.ami_id,
                warm_pool=tier.warm_pool,
                certificate_arn=cfg.routing.dr_certificate_arn,
                volume_size=cfg.compute.volume_size,
                manage_desired=False,
            ),
            child,
        )
        self.api = ApiTier(
            f"{name}-api",
            ApiTierArgs(
                region=cfg.dr_region,
                role="dr",
                enabled=tier.event_sources_enabled,
                reserved_concurrency=tier.reserved_concurrency,
                environment={"LATCH_PARAMETER": cfg.latch_parameter_name, "LATCH_REGION": cfg.dr_region},
            ),
            child,
        )
        self.observability = Observability(
            f"{name}-obs",
            ObservabilityArgs(
                prefix=cfg.prefix,
                region=cfg.dr_region,
                alb_arn_suffix=self.web.alb_arn_suffix,
                target_group_arn_suffix=self.web.target_group_arn_suffix,
                function_name=self.api.function_name,
                api_name=f"{name}-api",
                api_stage=self.api.stage_name,
                alert_email=cfg.routing.alert_email,
                watch_primary=True,
                confirmation_minutes=cfg.routing.confirmation_minutes,
            ),
            child,
        )

        # --- the runbook's view of the deployment (lambdas/failover/context.py) ---
        switch_metric = {
            "namespace": SWITCH_NAMESPACE,
            "name": SWITCH_METRIC,
            "dimensions": {"App": cfg.prefix},
        }
        active = dr_capacity(args.primary.web_capacity, cfg.dr.capacity_percent)
        self.runbook = {
            "appName": cfg.app_name,
            "environment": cfg.environment,
            "primaryRegion": cfg.primary_region,
            "drRegion": cfg.dr_region,
            "databaseMode": cfg.database.mode,
            "maxReplicationLagSeconds": cfg.database.max_replication_lag_seconds,
            "primaryAsgName": args.primary["asgName"],
            "primaryCapacity": args.primary["webCapacity"],
            "drAsgName": self.web.asg_name,
            "drCapacity": {"min": active.min, "desired": active.desired, "max": active.max},
            "primaryFunctionNames": list(args.primary["functionNames"]),
            "drFunctionNames": [self.api.function_name],
            "drEventSourceMappingIds": [self.api.event_source_mapping_id],
            "switchMetric": switch_metric,
            "latchParameterName": latch.name,
            "notifyTopicArn": self.observability.topic_arn,
            "primaryHealthUrl": args.primary["apiHealthUrl"],
            "drHealthUrl": self.api.health_url,
            **getattr(self, "runbook_data", {}),
        }
        self.orchestrator = Orchestrator(
            f"{name}-orchestrator",
            OrchestratorArgs(
                prefix=cfg.prefix,
                primary_region=cfg.primary_region,
                dr_region=cfg.dr_region,
                runbook_context=self.runbook,
                auto_failover=cfg.dr.auto_failover,
                primary_unhealthy_alarm_arn=self.observability.primary_unhealthy_alarm_arn,
                canary_targets=[
                    {"name": "web", "url": args.primary["webHealthUrl"]},
                    {"name": "api", "url": args.primary["apiHealthUrl"]},
                ],
                switch_metric=switch_metric,
                latch_parameter_name=latch.name,
            ),
            child,
        )

        self._exports: dict[str, Any] = {
            "drRegion": cfg.dr_region,
            "primaryRegion": cfg.primary_region,
            "drVpcId": self.network.vpc_id,
            "drVpcCidr": cfg.dr_cidr,
            "latchParameterName": latch.name,
            "drActive": args.tier.active,
            "traffic": args.tier.traffic,
            "drWebAlbDns": self.web.alb_dns_name,
            "drWebHealthUrl": self.web.health_url,
            "drApiHealthUrl": self.api.health_url,
            "drAsgName": self.web.asg_name,
            "failoverStateMachineArn": self.orchestrator.failover_state_machine_arn,
            "failbackStateMachineArn": self.orchestrator.failback_state_machine_arn,
            "operatorPolicyArn": self.orchestrator.operator_policy_arn,
            "runbook": self.runbook,
        }
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs of region B."""
        return dict(self._exports)
