"""Explicitly-regioned, lazily built, cached clients with per-side retry and timeout settings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from lambdas.failover.clients import DR_SETTINGS, PRIMARY_SETTINGS, Clients


def test_sides_get_their_region_retries_and_timeouts() -> None:
    clients = Clients(boto3.Session(), "us-east-1", "us-west-2", endpoint_url="http://127.0.0.1:1")
    a, b = clients.rds("primary"), clients.rds("dr")
    assert a.meta.region_name == "us-east-1" and b.meta.region_name == "us-west-2"
    assert a.meta.endpoint_url == b.meta.endpoint_url == "http://127.0.0.1:1"
    assert a.meta.config.retries == {"mode": "adaptive", "total_max_attempts": PRIMARY_SETTINGS.max_attempts}
    assert b.meta.config.retries == {"mode": "adaptive", "total_max_attempts": DR_SETTINGS.max_attempts}
    # region A may be the one that is down: it must fail fast
    assert a.meta.config.connect_timeout < b.meta.config.connect_timeout
    assert PRIMARY_SETTINGS.max_attempts < DR_SETTINGS.max_attempts


def test_clients_are_lazy_and_cached_across_threads() -> None:
    clients = Clients(boto3.Session(), "us-east-1", "us-west-2")
    assert clients._cache == {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda _: clients.lambda_("dr"), range(32)))
    assert all(c is got[0] for c in got)
    assert list(clients._cache) == [("lambda", "dr")]
    assert clients.lambda_("primary") is not got[0]


def test_same_region_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="both 'us-east-1'"):
        Clients(boto3.Session(), "us-east-1", "us-east-1")


def test_unknown_side_is_refused() -> None:
    clients = Clients(boto3.Session(), "us-east-1", "us-west-2")
    with pytest.raises(ValueError, match="side must be one of"):
        clients.client("rds", "secondary")  # type: ignore[arg-type]
