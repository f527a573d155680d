"""Lambda entry point of the orders/payments API (``lambdas.api.handler.handler``).

API Gateway REST API, proxy integration, event format 1.0. Routes:

- ``POST /payments``       record a payment (201; 200 for an identical retry; 409 for a reused id;
                           503 when this region's database is not the writer or does not answer)
- ``GET /payments/{id}``   read a payment from the ledger, or DynamoDB without one (200, 404, 503)
- ``GET /health``          this region's health, role, writer and active flags (200, 503)

The same function consumes the partner inbox queue (SQS, partial batch failures; see ``inbox``).
Any other event is refused loudly: answering it with a 404 would let its source count it as handled.

The work is done by ``payments``, ``health`` and ``inbox``; this module only reads the event, picks
the route and turns exceptions into answers (see ``responses``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.api import health, inbox, payments
from lambdas.api.clients import ClientCache
from lambdas.api.config import ConfigError, HealthSettings, PaymentSettings
from lambdas.api.ledger import Ledger, LedgerUnavailable, executor_for, open_ledger
from lambdas.api.responses import (
    GENERIC_500,
    ApiError,
    aws_error_response,
    error_response,
    json_response,
    log_json,
    retry_after_headers,
    unexpected_error_response,
)

Event = Mapping[str, Any]
Response = dict[str, Any]
RouteCall = Callable[[Event, Mapping[str, str], Mapping[str, str], ClientCache, dict[str, Any]], Response]

# Kept across invocations of a warm container; made on the first request, never at import.
_CLIENTS: ClientCache | None = None


def ledger_for(settings: PaymentSettings, clients: ClientCache) -> Ledger | None:
    """This region's ledger (clients of the function's own region only), or None without a database."""
    if settings.ledger is None:
        return None
    return open_ledger(
        settings.ledger, lambda service: clients.client(service, settings.region), clients.memo
    )


def post_payment(
    event: Event, params: Mapping[str, str], env: Mapping[str, str], clients: ClientCache, ctx: dict[str, Any]
) -> Response:
    """``POST /payments``."""
    settings = PaymentSettings.from_env(env)
    body = payments.parse_json_body(event.get("body"), bool(event.get("isBase64Encoded")))
    request = payments.validate_payment_request(body)
    ctx["payment_id"] = request.payment_id
    result = payments.create_payment(
        clients.client("dynamodb", settings.region),
        clients.client("s3", settings.region),
        settings,
        request,
        now=datetime.now(UTC),
        ledger=ledger_for(settings, clients),
    )
    return json_response(
        201 if result.created else 200, {"payment": result.payment, "receipt_key": result.receipt_key}
    )


def get_payment(
    event: Event, params: Mapping[str, str], env: Mapping[str, str], clients: ClientCache, ctx: dict[str, Any]
) -> Response:
    """``GET /payments/{id}``."""
    settings = PaymentSettings.from_env(env)
    payment_id = payments.validate_payment_id(params.get("id"), field="id")
    ctx["payment_id"] = payment_id
    ledger = ledger_for(settings, clients)
    if ledger is not None:
        payment = ledger.read(payment_id)
    else:
        payment = payments.get_payment(
            clients.client("dynamodb", settings.region), settings.table_name, payment_id
        )
    if payment is None:
        raise ApiError(404, "payment not found")
    return json_response(200, {"payment": payment})


def get_health(
    event: Event, params: Mapping[str, str], env: Mapping[str, str], clients: ClientCache, ctx: dict[str, Any]
) -> Response:
    """``GET /health``: 503 when a check failed, so Route 53 takes the region out of service."""
    settings = HealthSettings.from_env(env)
    execute = None
    if settings.ledger is not None:
        # The database's own answer, with a socket bound well inside a Route 53 checker's wait.
        execute = executor_for(
            settings.ledger,
            lambda service: clients.client(service, settings.region, health=True),
            clients.memo,
            timeout=health.PROBE_TIMEOUT_SECONDS,
        )
    report = health.evaluate_health(
        settings,
        dynamodb=clients.client("dynamodb", settings.region, health=True),
        rds=clients.client("rds", settings.region, health=True) if settings.database is not None else None,
        latch_ssm=clients.client("ssm", settings.latch_region, remote_latch=settings.role == "primary"),
        context=ctx,
        latch_memo=clients.memo.setdefault("latch", health.LatchMemo()),
        execute=execute,
    )
    # A cached "healthy" must never outlive a failover.
    headers = {"Cache-Control": "no-store"}
    if report.throttled:
        headers.update(retry_after_headers())
    return json_response(200 if report.healthy else 503, report.body(), headers)


@dataclass(frozen=True)
class Route:
    """A resource path template, the methods it accepts and the function that answers it."""

    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    call: RouteCall


ROUTES = (
    Route("/payments", re.compile(r"/payments/?"), frozenset({"POST"}), post_payment),
    Route("/payments/{id}", re.compile(r"/payments/(?P<id>[^/]+)/?"), frozenset({"GET"}), get_payment),
    Route("/health", re.compile(r"/health/?"), frozenset({"GET"}), get_health),
)


def match_route(event: Event) -> tuple[Route, dict[str, str]]:
    """The route for the event and its path parameters; ApiError 404 when none matches.

    ``resource`` is the API Gateway template (``/payments/{id}``) when the API declares our routes;
    behind a greedy ``/{proxy+}`` resource only ``path`` tells them apart.
    """
    resource = event.get("resource")
    for route in ROUTES:
        if resource == route.template:
            return route, {str(k): str(v) for k, v in (event.get("pathParameters") or {}).items()}
    path = str(event.get("path") or "")
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            return route, match.groupdict()
    raise ApiError(404, "no such route")


def dispatch(
    event: Event, env: Mapping[str, str], clients: ClientCache, request_id: str | None = None
) -> Response:
    """Answer one API Gateway event. Every failure becomes a JSON answer and, when it is ours, a log line."""
    method = str(event.get("httpMethod") or "").upper()
    request_context = event.get("requestContext") or {}
    ctx: dict[str, Any] = {
        "request_id": request_id or request_context.get("requestId"),
        "method": method,
        "path": event.get("path"),
    }
    try:
        route, params = match_route(event)
        ctx["route"] = route.template
        if method not in route.methods:
            allowed = ", ".join(sorted(route.methods))
            raise ApiError(405, f"method not allowed; allowed: {allowed}", headers={"Allow": allowed})
        return route.call(event, params, env, clients, ctx)
    except ApiError as err:
        log_json(
            logging.WARNING, "request refused", status=err.status, field=err.field, error=err.message, **ctx
        )
        return error_response(err)
    except ConfigError as err:
        log_json(logging.ERROR, "configuration error", error=str(err), **ctx)
        return json_response(500, {"error": GENERIC_500})
    except LedgerUnavailable as err:
        return ledger_unavailable_response(err, ctx)
    except (ClientError, BotoCoreError) as err:
        return aws_error_response(err, ctx)
    except Exception as err:
        return unexpected_error_response(err, ctx)


def ledger_unavailable_response(error: LedgerUnavailable, context: Mapping[str, Any]) -> Response:
    """503 + Retry-After naming why (``reason``); what the database said goes to the log only."""
    log_json(
        logging.WARNING,
        "ledger unavailable",
        reason=error.reason,
        error=error.message,
        detail=error.detail,
        **context,
    )
    return json_response(503, {"error": error.message, "reason": error.reason}, retry_after_headers())


class UnsupportedEventError(ValueError):
    """The function was invoked with an event that is neither an API Gateway request nor an SQS batch."""


def handle_inbox(
    event: Event, env: Mapping[str, str], clients: ClientCache, request_id: str | None = None
) -> dict[str, list[dict[str, str]]]:
    """Record the payments of an SQS batch. A configuration error fails the whole batch, loudly."""
    ctx = {"request_id": request_id}
    try:
        settings = PaymentSettings.from_env(env)
    except ConfigError as err:
        log_json(logging.ERROR, "configuration error", source="sqs", error=str(err), **ctx)
        raise
    return inbox.process_batch(
        event["Records"],
        clients.client("dynamodb", settings.region),
        clients.client("s3", settings.region),
        settings,
        clock=lambda: datetime.now(UTC),
        context=ctx,
        ledger=ledger_for(settings, clients),
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler: API Gateway requests and SQS inbox batches."""
    global _CLIENTS
    if _CLIENTS is None:
        _CLIENTS = ClientCache()
    request_id = getattr(context, "aws_request_id", None)
    if "httpMethod" in event:
        return dispatch(event, os.environ, _CLIENTS, request_id=request_id)
    if inbox.is_sqs_event(event):
        return handle_inbox(event, os.environ, _CLIENTS, request_id=request_id)
    log_json(
        logging.ERROR, "unsupported event", event_keys=sorted(map(str, event))[:20], request_id=request_id
    )
    raise UnsupportedEventError("event is neither an API Gateway REST request nor an SQS batch")
