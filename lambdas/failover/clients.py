"""Explicitly-regioned boto3 clients for the runbook steps.

Every step acts on a named side — ``"primary"`` (region A) or ``"dr"`` (region B) — never on a
default region. The two sides get different botocore settings on purpose: region A may be the
region that is down, so its clients connect with a short timeout and give up after few attempts
(fencing it is best effort and must not hold the failover up), while region B's clients retry
patiently because the failover cannot succeed without them. Both use botocore's ``adaptive``
retry mode, which backs off and rate-limits itself on throttling; no step has a retry loop of
its own.

Clients are created lazily (a step that never touches SNS never builds an SNS client) and cached.
Creating clients from one ``boto3.Session`` is not thread-safe, and the executor runs the steps
of a layer in threads, so creation is serialised by a lock. The clients themselves are
thread-safe once built.

Tests reach the clients' event system in two ways: hooks registered on ``session.events`` before
the first call apply to every client built from that session (each client copies the session's
emitter when it is created), and ``Clients.client(service, side).meta.events`` reaches one client.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config

from lambdas.failover.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from lambdas.failover.context import RunbookContext

Side = Literal["primary", "dr"]
SIDES: tuple[Side, ...] = ("primary", "dr")


@dataclass(frozen=True)
class ClientSettings:
    """botocore transport settings for one side.

    Attributes:
        max_attempts: total attempts per API call (first try included) before botocore gives up.
        connect_timeout: seconds to wait for a TCP/TLS connection.
        read_timeout: seconds to wait for a response once connected.
    """

    max_attempts: int
    connect_timeout: float
    read_timeout: float


PRIMARY_SETTINGS = ClientSettings(max_attempts=2, connect_timeout=2.0, read_timeout=10.0)
"""Region A: fail fast, it may be the region that is down."""

DR_SETTINGS = ClientSettings(max_attempts=8, connect_timeout=5.0, read_timeout=30.0)
"""Region B: retry patiently, the failover needs every call to succeed."""


class Clients:
    """Lazily created, cached, explicitly-regioned boto3 clients for both sides of the runbook."""

    def __init__(
        self,
        session: boto3.Session,
        primary_region: str,
        dr_region: str,
        *,
        endpoint_url: str | None = None,
        primary_settings: ClientSettings = PRIMARY_SETTINGS,
        dr_settings: ClientSettings = DR_SETTINGS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if primary_region == dr_region:
            raise ValueError(f"primary and DR region are both {primary_region!r}")
        self.session = session
        self.endpoint_url = endpoint_url
        self.clock = clock
        """What every step waits on and stamps with (the emulator substitutes a virtual clock)."""
        self._regions: dict[Side, str] = {"primary": primary_region, "dr": dr_region}
        self._settings: dict[Side, ClientSettings] = {"primary": primary_settings, "dr": dr_settings}
        self._cache: dict[tuple[str, Side], Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_context(
        cls,
        ctx: RunbookContext,
        session: boto3.Session | None = None,
        *,
        endpoint_url: str | None = None,
        primary_settings: ClientSettings = PRIMARY_SETTINGS,
        dr_settings: ClientSettings = DR_SETTINGS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Clients:
        """Clients for the regions named in ``ctx`` (a new default session unless one is given)."""
        return cls(
            session or boto3.Session(),
            ctx.primary_region,
            ctx.dr_region,
            endpoint_url=endpoint_url,
            primary_settings=primary_settings,
            dr_settings=dr_settings,
            clock=clock,
        )

    def region(self, side: Side) -> str:
        """The AWS region of ``side``."""
        return self._regions[side]

    def settings(self, side: Side) -> ClientSettings:
        """The transport settings used for ``side``."""
        return self._settings[side]

    def config(self, side: Side) -> Config:
        """The botocore ``Config`` every client of ``side`` is built with."""
        s = self._settings[side]
        return Config(
            region_name=self._regions[side],
            # total_max_attempts counts the first try; botocore's max_attempts would not.
            retries={"mode": "adaptive", "total_max_attempts": s.max_attempts},
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            user_agent_extra="pilotlight-runbook",
        )

    def client(self, service: str, side: Side) -> Any:
        """The cached client for ``service`` in ``side``'s region, created on first use."""
        if side not in self._regions:
            raise ValueError(f"side must be one of {SIDES}; got {side!r}")
        key = (service, side)
        client = self._cache.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._cache.get(key)
            if client is None:
                client = self.session.client(
                    service,  # type: ignore[call-overload]  # service names are plain strings here
                    region_name=self._regions[side],
                    endpoint_url=self.endpoint_url,
                    config=self.config(side),
                )
                self._cache[key] = client
        return client

    def rds(self, side: Side = "dr") -> Any:
        """RDS client for ``side``."""
        return self.client("rds", side)

    def autoscaling(self, side: Side = "dr") -> Any:
        """EC2 Auto Scaling client for ``side``."""
        return self.client("autoscaling", side)

    def lambda_(self, side: Side = "dr") -> Any:
        """Lambda client for ``side``."""
        return self.client("lambda", side)

    def cloudwatch(self, side: Side = "dr") -> Any:
        """CloudWatch client for ``side`` (the failover switch metric lives in region B)."""
        return self.client("cloudwatch", side)

    def ssm(self, side: Side = "dr") -> Any:
        """SSM client for ``side`` (the latch lives in region B)."""
        return self.client("ssm", side)

    def sns(self, side: Side = "dr") -> Any:
        """SNS client for ``side`` (the operators' topic lives in region B)."""
        return self.client("sns", side)

    def dynamodb(self, side: Side = "dr") -> Any:
        """DynamoDB client for ``side`` (the runbook lock lives in region B)."""
        return self.client("dynamodb", side)
