"""PrimaryRegion: everything region A runs, the full application stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.compute import WebTier, WebTierArgs
from components.config import StackConfig
from components.failover import Capacity
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.serverless import ApiTier, ApiTierArgs


@dataclass
class PrimaryRegionArgs:
    """Inputs of :class:`PrimaryRegion`.

    Attributes:
        config: the parsed stack configuration (role primary).
        dr_provider: region B's provider, for the few region-A-owned resources that reach B
            (the DynamoDB replica, the secret replica, backup copies).
    """

    config: StackConfig
    dr_provider: pulumi.ProviderResource


class PrimaryRegion(pulumi.ComponentResource):
    """Region A: network, data tier, web and API tiers, monitoring. Exports what the dr stack needs."""

    network: Network
    web: WebTier
    api: ApiTier
    observability: Observability

    def __init__(
        self, name: str, args: PrimaryRegionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:PrimaryRegion", name, None, opts)
        cfg = args.config
        self.network = Network(
            f"{name}-net",
            NetworkArgs(
                region=cfg.primary_region,
                cidr=cfg.primary_cidr,
                az_count=cfg.az_count,
                nat_strategy=cfg.nat_strategy,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        # --- app tier ---
        capacity = Capacity(cfg.compute.min_size, cfg.compute.desired_capacity, cfg.compute.max_size)
        self.web = WebTier(
            f"{name}-web",
            WebTierArgs(
                region=cfg.primary_region,
                role="primary",
                app_name=cfg.app_name,
                vpc_id=self.network.vpc_id,
                public_subnet_ids=self.network.public_subnet_ids,
                private_subnet_ids=self.network.private_subnet_ids,
                capacity=capacity,
                instance_type=cfg.compute.instance_type,
                ami_id=cfg.compute.ami_id,
                certificate_arn=cfg.routing.certificate_arn,
                volume_size=cfg.compute.volume_size,
                manage_desired=True,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.api = ApiTier(
            f"{name}-api",
            ApiTierArgs(
                region=cfg.primary_region,
                role="primary",
                enabled=True,
                reserved_concurrency=None,
                environment={"LATCH_PARAMETER": cfg.latch_parameter_name, "LATCH_REGION": cfg.dr_region},
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.observability = Observability(
            f"{name}-obs",
            ObservabilityArgs(
                prefix=cfg.prefix,
                region=cfg.primary_region,
                alb_arn_suffix=self.web.alb_arn_suffix,
                target_group_arn_suffix=self.web.target_group_arn_suffix,
                function_name=self.api.function_name,
                api_name=f"{name}-api",
                api_stage=self.api.stage_name,
                alert_email=cfg.routing.alert_email,
            ),
            pulumi.ResourceOptions(parent=self),
        )

        self._exports: dict[str, Any] = {
            "primaryRegion": cfg.primary_region,
            "drRegion": cfg.dr_region,
            "vpcId": self.network.vpc_id,
            "vpcCidr": cfg.primary_cidr,
            "webCapacity": {
                "min": cfg.compute.min_size,
                "desired": cfg.compute.desired_capacity,
                "max": cfg.compute.max_size,
            },
            "webAlbDns": self.web.alb_dns_name,
            "webHealthUrl": self.web.health_url,
            "asgName": self.web.asg_name,
            "apiHost": self.api.api_host,
            "apiStage": self.api.stage_name,
            "apiInvokeUrl": self.api.invoke_url,
            "apiHealthUrl": self.api.health_url,
            "functionNames": [self.api.function_name],
            "alertTopicArn": self.observability.topic_arn,
        }
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs: everything the dr stack and the runbook read."""
        return dict(self._exports)
