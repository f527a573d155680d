"""Constants and helpers shared by the API function's tests (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRIMARY = "us-east-1"
DR = "us-west-2"
TABLE = "pilotlight-orders"
BUCKET = {PRIMARY: "pilotlight-receipts-use1", DR: "pilotlight-receipts-usw2"}
LATCH = "/pilotlight/prod/failover-latch"
EVENTS = Path(__file__).parent / "events"


@dataclass(frozen=True)
class FakeContext:
    """The part of the Lambda context object the handler reads."""

    aws_request_id: str = "11111111-2222-3333-4444-555555555555"


@dataclass(frozen=True)
class Answer:
    """A handler response with its body decoded."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]


def load_event(name: str, **overrides: Any) -> dict[str, Any]:
    """A stored API Gateway event, with top-level keys replaced by ``overrides``."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    event.update(copy.deepcopy(overrides))
    return event


def post_event(body: Any) -> dict[str, Any]:
    """The stored POST /payments event with ``body`` (a str is sent as is, anything else as JSON)."""
    return load_event("post_payment", body=body if isinstance(body, str) else json.dumps(body))


def get_event(payment_id: str) -> dict[str, Any]:
    """The stored GET /payments/{id} event for ``payment_id``."""
    return load_event("get_payment", path=f"/payments/{payment_id}", pathParameters={"id": payment_id})


def api_log_lines(records: list[Any]) -> list[dict[str, Any]]:
    """The API's log records, each parsed as the one JSON line it must be."""
    lines = []
    for record in records:
        if record.name == "lambdas.api":
            message = record.getMessage()
            assert "\n" not in message
            lines.append(json.loads(message))
    return lines
