"""PrimaryRegion: everything region A runs, the full application stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.config import StackConfig
from components.network import Network, NetworkArgs


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
        }
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs: everything the dr stack and the runbook read."""
        return dict(self._exports)
