"""Fixtures for the emulator tests that talk to AWS: one in-process moto, an installed emulator per test.

Each test gets a fresh ``Emulator`` (its own virtual clock, data plane and dark regions) and a name
prefix of its own, so the tests of the package share one moto without seeing each other's resources.
Clients are shared too (creating one costs ~50 ms): their session sends every request past the
installed emulator's ``refuse_if_dark``, which is what ``Emulator.attach`` registers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from automation.emulator.aws import AppTier, Emulator, active
from tests.lambdas.failover.harness import new_session

A, B = "us-east-1", "us-west-2"
_prefixes = itertools.count(1)


@dataclass
class Aws:
    """The emulated AWS of one test: the emulator, clients on an attached session, unique names."""

    emulator: Emulator
    session: boto3.Session
    prefix: str
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    """Shared by every test of the package (the session's hook finds each test's emulator)."""

    def client(self, service: str, region: str) -> Any:
        """A client of ``service`` in ``region`` (requests to a dark region fail to connect)."""
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.session.client(service, region_name=region)  # type: ignore[call-overload]
        return self._clients[key]

    def name(self, suffix: str) -> str:
        """A resource name no other test uses."""
        return f"{self.prefix}-{suffix}"

    def web_tier(self, region: str, desired: int, database: str | None = None) -> str:
        """A launch template and Auto Scaling group in ``region``, registered as the region's web tier
        (writing to database copy ``database``)."""
        name = self.name(f"web-{region}")
        self.client("ec2", region).create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
        )
        self.client("autoscaling", region).create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
            MinSize=0,
            MaxSize=4,
            DesiredCapacity=desired,
            AvailabilityZones=[f"{region}a"],
        )
        self.emulator.register_app(AppTier(region, name, (), lambda: database))
        return name

    def datapoints(
        self, region: str, namespace: str, metric: str, dimensions: dict[str, str], *, unit: str | None = None
    ) -> list[tuple[datetime, float]]:
        """Every datapoint of the last day of virtual time, one per minute (Maximum), oldest first."""
        now = self.emulator.clock.now()
        query: dict[str, Any] = {
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "StartTime": now - timedelta(days=1),
            "EndTime": now + timedelta(seconds=1),
            "Period": 60,
            "Statistics": ["Maximum"],
        }
        if unit is not None:
            query["Unit"] = unit
        got = self.client("cloudwatch", region).get_metric_statistics(**query)["Datapoints"]
        return sorted((d["Timestamp"], d["Maximum"]) for d in got)


@pytest.fixture(scope="package")
def moto_aws() -> Iterator[None]:
    """In-process moto for the package (started once: starting it costs seconds on a loaded host)."""
    mock = mock_aws()
    mock.start()
    try:
        yield
    finally:
        mock.stop()


def _refuse_if_dark(request: Any, **kwargs: Any) -> None:
    emulator = active()
    if emulator is not None:
        emulator.refuse_if_dark(request, **kwargs)


@pytest.fixture(scope="package")
def clients(moto_aws: None) -> tuple[boto3.Session, dict[tuple[str, str], Any]]:
    """One session for the package, whose requests to a dark region fail to connect, and its clients."""
    session = new_session()
    session.events.register_first("before-send", _refuse_if_dark)
    return session, {}


@pytest.fixture
def aws(clients: tuple[boto3.Session, dict[tuple[str, str], Any]]) -> Iterator[Aws]:
    """An installed emulator, still provisioning (resources are created available at once)."""
    emulator = Emulator()
    session, cache = clients
    with emulator.installed():
        yield Aws(emulator, session, f"t{next(_prefixes)}", cache)
