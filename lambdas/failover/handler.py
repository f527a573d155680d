"""Lambda entry point for the failover/failback state machine: one step per invocation.

Event: ``{"runbook": "failover" | "failback", "step": "<step name>", "params": {...}}``.
Response: ``{"status": "done" | "already_done" | "in_progress" | "warning" | "skipped",
"detail": str, "data": {...}}``; the state machine routes on ``status`` (``in_progress`` -> Wait
-> call again, with ``data`` merged into ``params``).

* A malformed event answers ``{"status": "error", "statusCode": 400, "error": "..."}`` before any
  AWS call: a step is never half-applied on bad input.
* A failed step raises ``StepFailed`` (permanent) or ``StepRetryable`` (botocore's retries were
  exhausted on throttling/transient errors, or a wait ran out): Step Functions' Retry/Catch match
  on these error names.
* Steps always run with ``wait=False``: the state machine does the waiting, not the Lambda.

Configuration: ``RUNBOOK_CONTEXT`` (the DR stack's ``runbook`` output as JSON), ``LOG_LEVEL``
(default INFO).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import ContextError, EventError, StepFailed, StepRetryable
from lambdas.failover.graph import RUNBOOKS
from lambdas.failover.steps import log_event, step_handler

CONTEXT_ENV = "RUNBOOK_CONTEXT"


_cache_lock = threading.Lock()
_cached: tuple[str, RunbookContext, Clients] | None = None


def parse_event(event: Any) -> tuple[str, str, dict[str, Any]]:
    """Validate the event and return (runbook, step, params); EventError says what is wrong."""
    if not isinstance(event, Mapping):
        raise EventError(f"event must be a JSON object; got {type(event).__name__}")
    runbook = event.get("runbook")
    if not isinstance(runbook, str) or runbook not in RUNBOOKS:
        raise EventError(f"'runbook' must be one of {sorted(RUNBOOKS)}; got {runbook!r}")
    step = event.get("step")
    names = RUNBOOKS[runbook].names()
    if not isinstance(step, str) or step not in names:
        raise EventError(f"'step' must be a step of the {runbook} runbook ({', '.join(names)}); got {step!r}")
    params = event.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise EventError(f"'params' must be a JSON object; got {type(params).__name__}")
    return runbook, step, dict(params)


def _context_and_clients() -> tuple[RunbookContext, Clients]:
    """Parse RUNBOOK_CONTEXT once per container; re-parse if the variable changed."""
    global _cached
    raw = os.environ.get(CONTEXT_ENV, "")
    with _cache_lock:
        if _cached is not None and _cached[0] == raw:
            return _cached[1], _cached[2]
        if not raw:
            raise ContextError(f"environment variable {CONTEXT_ENV} is not set")
        ctx = RunbookContext.from_json(raw)
        clients = Clients.for_context(ctx)
        _cached = (raw, ctx, clients)
        return ctx, clients


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run one step of a runbook for Step Functions (see the module docstring)."""
    request_id = getattr(context, "aws_request_id", None)
    # The Lambda runtime's root logger drops INFO; the step log lines are the audit trail.
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.getLogger("pilotlight").setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    try:
        runbook, step, params = parse_event(event)
    except EventError as exc:
        log_event(logging.ERROR, "malformed event", error=str(exc), event=event, request_id=request_id)
        return {"status": "error", "statusCode": 400, "error": str(exc)}

    try:
        ctx, clients = _context_and_clients()
    except ContextError as exc:
        # A deployment error, not a bad event: fail the execution loudly through Catch.
        log_event(logging.ERROR, "bad runbook context", error=str(exc), request_id=request_id)
        raise StepFailed(step, f"{CONTEXT_ENV}: {exc}", code="ContextError") from exc

    params = {**params, "runbook": runbook, "wait": False}
    t0 = time.monotonic()
    try:
        result = step_handler(step)(ctx, clients, params)
    except StepFailed as exc:
        # The step logged the failure with its context; Step Functions gets it by error name.
        if exc.retryable:
            raise StepRetryable(exc.step, exc.reason, retryable=True, code=exc.code) from exc
        raise
    log_event(
        logging.INFO,
        "step finished",
        runbook=runbook,
        step=step,
        status=result.status,
        detail=result.detail,
        duration_s=round(time.monotonic() - t0, 3),
        request_id=request_id,
    )
    return result.to_dict()
