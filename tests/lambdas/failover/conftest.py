"""Fixtures for the runbook tests: moto with its gaps filled, a local health server, the world.

Test-only speed-ups: moto's data kept between modules (``aws``), each test building its own world
under unique names; botocore's retry back-off set to 0 s (``fast_backoff``: the retries still happen,
the fault tests count them, only the sleeps between them go); waiters polling with Delay 0 and
probes without pause (``harness.FAST``): moto answers at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.retries.bucket import TokenBucket
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws

from automation.emulator import patch_moto
from tests.lambdas.failover.faults import moto_respects_faults
from tests.lambdas.failover.harness import HealthServer, new_session
from tests.lambdas.failover.world import World, build_world

_worlds = itertools.count(1)
_setup_session = new_session()
_setup_clients: dict[tuple[str, str, str | None], Any] = {}


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """In-process moto for a test module, its RDS gaps filled (see automation.emulator) and fault-aware.

    moto's data is kept between these modules (``reset=False`` / ``remove_data=False``): building
    a region's EC2 catalogue (thousands of AMIs and snapshots) costs over a second, and each test
    builds its own world under unique names, so nothing leaks from one test into another. Any
    module that starts moto the usual way resets it first.
    """
    undo_gaps, undo_faults = patch_moto(), moto_respects_faults()
    mock = mock_aws()
    mock.start(reset=False)
    try:
        yield
    finally:
        mock.stop(remove_data=False)
        undo_faults()
        undo_gaps()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries still happen, without sleeping between them.

    Adaptive mode also lowers a client's send rate after a throttle (its token bucket then makes
    later calls wait); the tests check that the runbook gets retried, not botocore's pacing.
    """
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(TokenBucket, "acquire", lambda self, amount=1, block=True: True)


@pytest.fixture
def health() -> Iterator[HealthServer]:
    """Health endpoints: region A answers 503 (down) until a test says otherwise."""
    server = HealthServer()
    server.set("/primary", 503, {"region": "us-east-1", "error": "no healthy targets"})
    yield server
    server.close()


@pytest.fixture
def make_world(aws: None, fast_backoff: None, health: HealthServer) -> Callable[..., World]:
    """Build a world whose health URLs point at ``health``; region B's endpoint reflects its state."""

    def make(
        mode: str = "rds-replica",
        *,
        dr_health: bool = True,
        lag_metrics: bool = True,
        encrypted: bool = False,
        global_table: bool = False,
    ) -> World:
        world = build_world(
            mode,
            app=f"shop{next(_worlds)}",
            primary_health_url=health.url("/primary"),
            dr_health_url=health.url("/dr") if dr_health else None,
            lag_metrics=lag_metrics,
            encrypted=encrypted,
            global_table=global_table,
            session=_setup_session,
            clients_cache=_setup_clients,
        )
        health.routes["/dr"] = world.dr_health
        health.routes["/primary"] = world.primary_health
        return world

    return make


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    """The default world: rds-replica mode."""
    return make_world()
