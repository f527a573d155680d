"""GlobalFailover: what spans both regions — Route 53 failover, the failover switch, replication rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.config import StackConfig
from components.failover import DesiredTier
from components.wiring import PrimaryOutputs


@dataclass
class GlobalFailoverArgs:
    """Inputs of :class:`GlobalFailover`. Both providers are explicit: nothing here has a home region.

    Attributes:
        config: the parsed dr stack configuration.
        primary: region A's outputs.
        tier: the desired DR tier (where traffic goes).
        primary_provider: region A's provider; must not need region A to answer (see providers.py).
        dr_provider: region B's provider.
    """

    config: StackConfig
    primary: PrimaryOutputs
    tier: DesiredTier
    primary_provider: pulumi.ProviderResource
    dr_provider: pulumi.ProviderResource


class GlobalFailover(pulumi.ComponentResource):
    """Cross-region resources of the dr stack."""

    def __init__(
        self, name: str, args: GlobalFailoverArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:GlobalFailover", name, None, opts)
        self._exports: dict[str, Any] = {"traffic": args.tier.traffic}
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs of the global layer."""
        return dict(self._exports)
