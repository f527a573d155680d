"""boto3 clients for the API function, made on first use and kept for the life of the container.

Every client is made for an explicit region: the latch lives in the DR region while everything else
is in the function's own region, and a client quietly following ``AWS_DEFAULT_REGION`` would read
the wrong one.
"""

from __future__ import annotations

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


class ClientCache:
    """One boto3 client per (service, region), made lazily from a private session."""

    def __init__(self, config: Config = CLIENT_CONFIG) -> None:
        self._config = config
        self._session: Session | None = None
        self._clients: dict[tuple[str, str], BaseClient] = {}

    def client(self, service: str, region: str) -> BaseClient:
        """The client for ``service`` in ``region``, made on first use."""
        key = (service, region)
        if key not in self._clients:
            if self._session is None:
                self._session = Session()
            self._clients[key] = self._session.client(service, region_name=region, config=self._config)
        return self._clients[key]
