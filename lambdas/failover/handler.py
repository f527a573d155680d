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
* Single flight (``lambdas.failover.lock``): ``{"step": "take_lock" | "release_lock", "lockRunId":
  "<execution id>"}`` takes or gives back the runbook lock (``LockHeld`` names the holder); any
  other step given a ``lockRunId`` first refreshes the lock (``LockLost``: the run stops there). A
  step invoked without one (the canary's pending fence) is a run of one step under the lock
  (``_one_step_run``: deferred while another run holds it).

Configuration: ``RUNBOOK_CONTEXT`` (the DR stack's ``runbook`` output as JSON), ``LOG_LEVEL``
(default INFO).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.failover import lock
from lambdas.failover.budget import INVOCATION_LOCK_TTL_SECONDS
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import ContextError, EventError, LockHeld, StepFailed, StepRetryable
from lambdas.failover.graph import RUNBOOKS
from lambdas.failover.state_machine import RELEASE_LOCK, TAKE_LOCK
from lambdas.failover.steps import StepResult, log_event, read_journal, step_handler

CONTEXT_ENV = "RUNBOOK_CONTEXT"


_cache_lock = threading.Lock()
_cached: tuple[str, RunbookContext, Clients] | None = None


LOCK_STEPS = (TAKE_LOCK, RELEASE_LOCK)


def parse_event(event: Any) -> tuple[str, str, dict[str, Any]]:
    """Validate the event and return (runbook, step, params); EventError says what is wrong.

    ``step`` may also be ``take_lock`` / ``release_lock``, which need a ``lockRunId``; a
    ``lockRunId`` given is returned in ``params["lockRunId"]``.
    """
    if not isinstance(event, Mapping):
        raise EventError(f"event must be a JSON object; got {type(event).__name__}")
    runbook = event.get("runbook")
    if not isinstance(runbook, str) or runbook not in RUNBOOKS:
        raise EventError(f"'runbook' must be one of {sorted(RUNBOOKS)}; got {runbook!r}")
    step = event.get("step")
    book = RUNBOOKS[runbook]
    names = [*book.names(), *([book.on_stop.name] if book.on_stop else [])]
    if not isinstance(step, str) or step not in (*names, *LOCK_STEPS):
        raise EventError(
            f"'step' must be a step of the {runbook} runbook ({', '.join(names)}) or one of "
            f"{', '.join(LOCK_STEPS)}; got {step!r}"
        )
    params = event.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise EventError(f"'params' must be a JSON object; got {type(params).__name__}")
    run_id = event.get("lockRunId")
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise EventError(f"'lockRunId' must be a non-empty string; got {run_id!r}")
    if step in LOCK_STEPS and run_id is None:
        raise EventError(f"'{step}' needs 'lockRunId' (the execution id the lock is held by)")
    out = dict(params)
    if run_id is not None:
        out["lockRunId"] = run_id
    return runbook, step, out


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
        result = dispatch(step, ctx, clients, params, request_id)
    except StepFailed as exc:
        # The step logged the failure with its context; Step Functions gets it by error name.
        if exc.retryable:
            raise StepRetryable(exc.step, exc.reason, retryable=True, code=exc.code) from exc
        raise
    log_event(
        logging.INFO,
        "step finished",
        run_id=params.get("lockRunId"),
        runbook=runbook,
        step=step,
        status=result.status,
        detail=result.detail,
        duration_s=round(time.monotonic() - t0, 3),
        request_id=request_id,
    )
    return result.to_dict()


def dispatch(
    step: str, ctx: RunbookContext, clients: Clients, params: dict[str, Any], request_id: str | None = None
) -> StepResult:
    """Run one parsed event's step under the lock rules of the module docstring."""
    if step in LOCK_STEPS:
        return _lock_step(step, ctx, clients, params)
    if params.get("lockRunId"):
        _refresh(ctx, clients, str(params["lockRunId"]))
        return step_handler(step)(ctx, clients, params)
    return _one_step_run(step, ctx, clients, params, request_id)


def _owner(params: dict[str, Any]) -> str:
    return f"step-functions ({params.get('reason') or 'no reason given'})"


def _aws_failure(step: str, exc: ClientError | BotoCoreError) -> StepFailed:
    # The lock table unreachable: retried by the state machine (StepRetryable); a run never goes
    # on without its lock.
    code = (
        str(exc.response.get("Error", {}).get("Code")) if isinstance(exc, ClientError) else type(exc).__name__
    )
    return StepFailed(step, f"runbook lock: {exc}", retryable=True, code=code)


def _lock_step(step: str, ctx: RunbookContext, clients: Clients, params: dict[str, Any]) -> StepResult:
    run_id = str(params["lockRunId"])
    try:
        if step == TAKE_LOCK:
            got = lock.acquire(
                clients, ctx, run_id=run_id, owner=_owner(params), runbook=str(params["runbook"])
            )
            level = logging.WARNING if got.taken_over or got.broken else logging.INFO
            log_event(level, "runbook lock taken", run_id=run_id, detail=got.describe())
            return StepResult("done", got.describe(), got.lease.to_dict())
        released = lock.release(clients, ctx, run_id=run_id)
    except StepFailed:
        raise  # LockHeld: another live run holds it
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(step, exc) from exc
    detail = "lock released" if released else "lock was no longer this run's: nothing released"
    return StepResult("done" if released else "already_done", detail, {"runId": run_id})


def _one_step_run(
    step: str, ctx: RunbookContext, clients: Clients, params: dict[str, Any], request_id: str | None
) -> StepResult:
    """A step invoked on its own, outside any execution: a run of one step, under the runbook lock.

    Its one caller in the product is the canary (``lambdas.health_check.probe.complete_pending_fence``),
    whose Event invocation of ``fence_primary`` with ``onlyIfPending`` finishes a fence a failover
    could not make while region A was dark. Single flight (docs/safety.md) decides how it meets the
    lock:

    * lock free: it takes the lock under ``invoke-<request id>`` with a lease of one invocation
      (``INVOCATION_LOCK_TTL_SECONDS``), fences, gives it back;
    * held by a live **failover** run: it joins that run (``lock.join_fence``: a conditional write
      marks the fence and its window in the holder's item) and fences at once. A failover never
      un-fences region A, so the fence is a step of the holder's own plan, not a second run; it must
      not wait, since region A takes writes (lost at the promotion) until it is fenced. The mark keeps
      the item, even once the holder releases it, until the fence leaves or its window ends, so no
      next run (a failback) starts while the fence may still act;
    * held by a failback (which clears the pending mark first): deferred, answered ``skipped`` (not an error: Lambda does not retry
      it); the canary asks again next minute while region A answers under an active latch.

    Any other step invoked on its own stops with ``LockHeld`` while another run holds the lock.
    """
    run_id = f"invoke-{request_id or uuid.uuid4().hex[:12]}"
    if step == "fence_primary" and params.get("onlyIfPending"):
        # Nothing pending, nothing to do, and no lock touched: the canary asks every minute while
        # region A answers under an active or unreadable latch, and a request that joined a dead
        # failover holding the lock would extend its lease each time, so it would never expire and
        # no next run could start (seed 504). The step checks again under the lock.
        try:
            pending = read_journal(clients, ctx).get("fencePending")
        except (ClientError, BotoCoreError) as exc:
            raise StepFailed(step, f"run journal: {exc}", retryable=True, code=type(exc).__name__) from exc
        if not pending:
            return StepResult("already_done", "no fence of region A pending", {})
    owner = f"runbook Lambda, one step ({params.get('reason') or 'no reason given'})"
    try:
        got = lock.acquire(
            clients,
            ctx,
            run_id=run_id,
            owner=owner,
            # "<runbook>/<step>": a one-step run is never a failover run a pending fence may join.
            runbook=f"{params['runbook']}/{step}",
            ttl_seconds=INVOCATION_LOCK_TTL_SECONDS,
        )
    except LockHeld:
        if step == "fence_primary" and params.get("onlyIfPending"):
            return _join_for_fence(ctx, clients, params, run_id)
        raise
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(TAKE_LOCK, exc) from exc
    log_event(logging.INFO, "runbook lock taken", run_id=run_id, detail=got.describe())
    try:
        result = step_handler(step)(ctx, clients, {**params, "lockRunId": run_id})
    except Exception:
        _release_quietly(ctx, clients, run_id)
        raise
    _release_quietly(ctx, clients, run_id)
    return result


def _join_for_fence(ctx: RunbookContext, clients: Clients, params: dict[str, Any], run_id: str) -> StepResult:
    """The pending fence while another run holds the lock: inside a live failover run, or deferred."""
    try:
        joined = lock.join_fence(clients, ctx, fencer_id=run_id, window_seconds=INVOCATION_LOCK_TTL_SECONDS)
    except LockHeld as exc:
        log_event(logging.WARNING, "pending fence deferred: the runbook lock is held", holder=exc.holder)
        return StepResult(
            "skipped",
            f"deferred: {exc.reason}; the canary asks again next minute",
            {"deferred": True, "holder": exc.holder},
        )
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(TAKE_LOCK, exc) from exc
    log_event(logging.WARNING, "pending fence joins the failover run holding the lock", run_id=joined.run_id)
    try:
        result = step_handler("fence_primary")(ctx, clients, {**params, "lockRunId": joined.run_id})
    except Exception:
        _leave_quietly(ctx, clients, run_id)
        raise
    _leave_quietly(ctx, clients, run_id)
    return StepResult(result.status, f"{result.detail} (inside failover run {joined.run_id})", result.data)


def _leave_quietly(ctx: RunbookContext, clients: Clients, fencer_id: str) -> None:
    # A mark left behind ends with its window (INVOCATION_LOCK_TTL_SECONDS): logged, not raised.
    try:
        lock.leave_fence(clients, ctx, fencer_id=fencer_id)
    except (ClientError, BotoCoreError) as exc:
        log_event(logging.ERROR, "runbook lock: fence mark not cleared", fencer=fencer_id, error=str(exc))


def _release_quietly(ctx: RunbookContext, clients: Clients, run_id: str) -> None:
    # A release that fails leaves the lock to expire (one invocation's lease): logged, not raised,
    # so the step's own answer is what the caller gets.
    try:
        lock.release(clients, ctx, run_id=run_id)
    except (ClientError, BotoCoreError) as exc:
        log_event(logging.ERROR, "runbook lock release failed", run_id=run_id, error=str(exc))


def _refresh(ctx: RunbookContext, clients: Clients, run_id: str) -> None:
    try:
        lock.refresh(clients, ctx, run_id=run_id)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(TAKE_LOCK, exc) from exc
