"""boto3 clients for the API function, made on first use and kept for the life of the container.

Every client is made for an explicit region: the latch lives in the DR region while everything else
is in the function's own region, and a client quietly following ``AWS_DEFAULT_REGION`` would read
the wrong one.
"""

from __future__ import annotations

from typing import Any

from boto3.session import Session
from botocore.client import BaseClient
from botocore.config import Config

# API Gateway gives up after 29 s and Route 53 health checkers after a few seconds, so calls fail
# fast rather than hang; standard mode retries throttling with backoff before we answer 503.
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
)


# Region A reads the latch in region B on its health path. A Route 53 health checker counts an
# endpoint unhealthy when the response does not start within 2 seconds of connecting
# (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html),
# so a slow region B must not hold region A's answer: one attempt, no retry, a few hundred
# milliseconds at most (the last value read stands in meanwhile, see lambdas/api/health.py).
# ``total_max_attempts`` counts the first request; botocore reads ``max_attempts`` as retries after it
# (https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html), so
# ``max_attempts: 1`` was two tries (break40 B40-4).
REMOTE_LATCH_CONFIG = Config(
    connect_timeout=0.25,
    read_timeout=0.25,
    retries={"mode": "standard", "total_max_attempts": 1},
)

# The health route's own calls in its region (DescribeTable, GetItem, DescribeDBInstances,
# DescribeGlobalClusters, the Data API and Secrets Manager for the database probe): the same 2-second
# budget, so one attempt each with sub-second timeouts, and they run side by side under one deadline
# (lambdas/api/health.py HEALTH_DEADLINE_SECONDS). A control plane that hangs then costs region A's
# answer half a second, not the 8 s of CLIENT_CONFIG's four tries (break40 B40-4).
HEALTH_CONFIG = Config(
    connect_timeout=0.5,
    read_timeout=0.75,
    retries={"mode": "standard", "total_max_attempts": 1},
)


class ClientCache:
    """One boto3 client per (service, region), made lazily from a private session."""

    def __init__(self, config: Config = CLIENT_CONFIG) -> None:
        self._config = config
        self._session: Session | None = None
        self._clients: dict[tuple[str, str, str], BaseClient] = {}
        self.memo: dict[str, Any] = {}
        """State kept for the life of the container beside the clients (the last latch read)."""

    def client(
        self, service: str, region: str, *, remote_latch: bool = False, health: bool = False
    ) -> BaseClient:
        """The client for ``service`` in ``region``, made on first use.

        ``remote_latch``: the client region A reads region B's latch with (:data:`REMOTE_LATCH_CONFIG`);
        ``health``: the health route's client (:data:`HEALTH_CONFIG`).
        """
        key = (service, region, "remote-latch" if remote_latch else ("health" if health else ""))
        if key not in self._clients:
            if self._session is None:
                self._session = Session()
            config = REMOTE_LATCH_CONFIG if remote_latch else (HEALTH_CONFIG if health else self._config)
            self._clients[key] = self._session.client(service, region_name=region, config=config)
        return self._clients[key]
