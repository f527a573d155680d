"""Subnet planning: subnets inside their VPC, never overlapping, one per tier and AZ."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.cidr import TIERS, plan_subnets


@given(
    prefix=st.integers(min_value=16, max_value=24),
    second=st.integers(min_value=0, max_value=255),
    az_count=st.integers(min_value=1, max_value=4),
)
def test_subnets_are_inside_the_vpc_and_disjoint(prefix: int, second: int, az_count: int) -> None:
    vpc = ipaddress.IPv4Network(f"10.{second}.0.0/{prefix}", strict=False)
    plans = plan_subnets(str(vpc), az_count)
    nets = [ipaddress.IPv4Network(p.cidr) for p in plans]
    assert len(plans) == len(TIERS) * az_count
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(nets, 2))


def test_too_small_vpc_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        plan_subnets("10.0.0.0/25", 2)
