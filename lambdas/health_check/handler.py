"""Lambda entry point of the region-B canary (``lambdas.health_check.handler.handler``).

Invoked every minute by an EventBridge schedule; the event carries nothing it needs. The work is in
``probe``; configuration is read from the environment on every run (see ``probe.Settings``), before
any client is made, so a bad variable fails the run before it probes or calls AWS.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from boto3.session import Session
from botocore.client import BaseClient

from lambdas.health_check import probe

# Kept across invocations of a warm container; made on the first run, never at import.
_CLIENTS: dict[tuple[str, str], BaseClient] = {}
_SESSION: Session | None = None


def _client(service: str, region: str) -> BaseClient:
    global _SESSION
    key = (service, region)
    if key not in _CLIENTS:
        if _SESSION is None:
            _SESSION = Session()
        _CLIENTS[key] = _SESSION.client(service, region_name=region, config=probe.CLIENT_CONFIG)
    return _CLIENTS[key]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Probe region A, publish the health and switch metrics, and return the result."""
    try:
        settings = probe.Settings.from_env(os.environ)
    except probe.ConfigurationError as exc:
        probe.log_event(logging.ERROR, "configuration error", error=str(exc))
        raise
    # The Lambda runtime's root logger drops INFO; the per-run summary line is the canary's record.
    probe.LOGGER.setLevel(settings.log_level)
    return probe.run(
        settings,
        cloudwatch=_client("cloudwatch", settings.region),
        ssm=_client("ssm", settings.region),
        lambda_client=_client("lambda", settings.region) if settings.runbook_function else None,
    )
