"""PilotLightRegion: region B, holding only what keeps data and what is slow to create."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import StackConfig
from components.failover import DesiredTier, Latch
from components.network import Network, NetworkArgs
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

        self._exports: dict[str, Any] = {
            "drRegion": cfg.dr_region,
            "primaryRegion": cfg.primary_region,
            "drVpcId": self.network.vpc_id,
            "drVpcCidr": cfg.dr_cidr,
            "latchParameterName": latch.name,
            "drActive": args.tier.active,
            "traffic": args.tier.traffic,
        }
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs of region B."""
        return dict(self._exports)
