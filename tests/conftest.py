"""Shared fixtures: fake AWS credentials so no test can reach a real account; real PostgreSQL servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from automation.postgres import PgCluster

# moto builds every region's EC2 backend with its copy of ~5,000 public AMIs (0.7 s a region, each time
# a moto session starts): no test or emulator path reads an AMI (ImageId is only copied into launch
# templates, which moto does not check), so the catalogue is skipped (moto/settings.py
# ``ec2_load_default_amis``: only "false" turns it off).
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture(autouse=True)
def _fault_switches_forgotten() -> Iterator[None]:
    """A test world's web tier answers as the active faults say (``faults.region_dark``): each test's own."""
    yield
    from tests.lambdas.failover.faults import forget_switches

    forget_switches()


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with throwaway credentials and no profile or config file."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One session of real PostgreSQL servers on free ports (one ``initdb``); every server in it is
    stopped and its files deleted at the end of the session, whatever happened."""
    from automation.postgres import PgCluster

    with PgCluster() as cluster:
        yield cluster
