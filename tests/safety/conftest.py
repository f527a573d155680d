"""Fixtures for the safety checker: moto (kept across the package), faults honoured, one deployment."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from moto import mock_aws

from automation.emulator.aws import Emulator
from tests.lambdas.failover.faults import moto_respects_faults
from tests.safety.model import Deployment

_apps = itertools.count(1)


@pytest.fixture(scope="package")
def moto_world() -> Iterator[None]:
    """In-process moto for the package; each deployment has its own names."""
    undo = moto_respects_faults()
    mock = mock_aws()
    mock.start(reset=False)
    try:
        yield
    finally:
        mock.stop(remove_data=False)
        undo()


@pytest.fixture
def deploy(moto_world: None) -> Iterator[Callable[..., Deployment]]:
    """Build deployments inside an installed emulator; closed and uninstalled after the test."""
    made: list[Deployment] = []
    emulator = Emulator()
    with emulator.installed():

        def make(
            mode: str = "rds-replica",
            *,
            encrypted: bool = True,
            engine: str = "postgres",
            global_table: bool = True,
        ) -> Deployment:
            d = Deployment.build(
                mode,
                app=f"ex{next(_apps)}",
                emulator=emulator,
                encrypted=encrypted,
                engine=engine,
                global_table=global_table,
            )
            made.append(d)
            return d

        try:
            yield make
        finally:
            for d in made:
                d.close()


@pytest.fixture(scope="module")
def one_moto() -> Iterator[None]:
    """One moto session for a module's random schedules (``driver.run_schedule`` empties it first): the
    state machines are registered once, not per test."""
    from tests.safety.driver import moto_session

    with moto_session():
        yield
