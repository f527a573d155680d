"""Subnet planning: pure CIDR arithmetic, no Pulumi.

A VPC is cut into 16 equal blocks. Tier ``t`` (public 0, private 1, isolated 2) in availability
zone ``z`` takes block ``4 * t + z``, so each tier keeps room for a fourth AZ and the layout of a
/16 and a /24 is the same shape.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

Tier = Literal["public", "private", "isolated"]
TIERS: tuple[Tier, ...] = ("public", "private", "isolated")


@dataclass(frozen=True)
class SubnetPlan:
    """One subnet to create."""

    tier: Tier
    az_index: int
    cidr: str


def plan_subnets(vpc_cidr: str, az_count: int) -> list[SubnetPlan]:
    """Subnets for every tier in the first ``az_count`` zones (1..4), inside ``vpc_cidr``."""
    if not 1 <= az_count <= 4:
        raise ValueError(f"az_count must be 1..4, got {az_count}")
    vpc = ipaddress.IPv4Network(vpc_cidr, strict=True)
    if vpc.prefixlen > 24:
        raise ValueError(f"{vpc_cidr} is too small: subnets are /{vpc.prefixlen + 4}, AWS allows /28 at most")
    blocks = list(vpc.subnets(prefixlen_diff=4))
    return [
        SubnetPlan(tier, az, str(blocks[4 * t + az]))
        for t, tier in enumerate(TIERS)
        for az in range(az_count)
    ]
