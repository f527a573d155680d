"""The in-process runbook executor used by the break-glass CLI and the local drill.

It walks the runbook graph layer by layer (``Runbook.layers()``): the steps of a layer are
independent and run in parallel threads; a layer starts only when the previous one finished. Long-
running steps are called with ``params["wait"] = True`` so they block on boto3 waiters instead of
answering ``in_progress`` (that answer is for the Step Functions state machine, which waits between
calls itself).

A failed step stops the run once its layer's siblings have finished: no later layer starts; the
runbook's ``on_stop`` step (the failover's ``roll_back_fence``) then runs, inside the lock, and its
record ends the timeline. A best-effort step (fencing region A) never stops the run: its failure becomes a ``warning``. Because
every step is idempotent, resuming a stopped run is running it again: the steps that completed
answer ``already_done``.

Single flight (docs/safety.md): before its first change the run takes the runbook lock
(``lambdas.failover.lock``) under its run id, and gives it back when it ends, done or stopped. A
lock held by another live run stops the run before any step, naming the holder; an expired one is
taken over, and the report says so. While the run goes on, a heartbeat thread refreshes the lock
every ``HEARTBEAT_SECONDS`` (and every step start refreshes it when due); a run whose lock was lost
stops before its next layer. A process that dies (``BaseException``: a kill, Ctrl-C, the checker's
``Crash``) leaves the lock: the same run resumed with the same ``run_id`` re-enters it at once, any
other run waits for its expiry, or for the operator's explicit ``break_lock``.

The result is a ``RunReport`` with a timeline (one ``StepRecord`` per step, including those that
never ran) for people (``format_table``) and machines (``to_dict``).
"""

from __future__ import annotations

import getpass
import logging
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.failover import lock
from lambdas.failover.budget import HEARTBEAT_SECONDS, LOCK_TTL_SECONDS
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import LockHeld, LockLost
from lambdas.failover.graph import RUNBOOKS, Runbook, Step
from lambdas.failover.state_machine import STEP_RETRY
from lambdas.failover.steps import StepFailed, StepResult, log_event, step_handler

RecordStatus = Literal[
    "done", "already_done", "in_progress", "warning", "skipped", "failed", "not_run", "running"
]
OK_STATUSES = frozenset({"done", "already_done", "warning", "skipped"})


@dataclass
class StepRecord:
    """One step's line in the timeline.

    ``started_at`` / ``ended_at`` are UTC datetimes (None when the step did not run);
    ``duration_s`` is measured with a monotonic clock.
    """

    step: str
    layer: int
    description: str = ""
    status: RecordStatus = "not_run"
    detail: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float = 0.0
    code: str | None = None
    retryable: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "step": self.step,
            "layer": self.layer,
            "status": self.status,
            "detail": self.detail,
            "start": self.started_at.isoformat() if self.started_at else None,
            "end": self.ended_at.isoformat() if self.ended_at else None,
            "durationSeconds": round(self.duration_s, 3),
            "code": self.code,
            "retryable": self.retryable,
            "data": self.data,
        }


@dataclass
class RunReport:
    """The outcome of one run of a runbook.

    Attributes:
        runbook: ``failover`` or ``failback``.
        outcome: ``done`` when every step finished (done, already done, skipped or warned),
            ``stopped`` when a step failed (``stopped_at`` names it and ``reason`` says why).
        timeline: one record per step of the runbook, in graph order.
    """

    runbook: str
    outcome: Literal["done", "stopped"]
    stopped_at: str | None
    reason: str | None
    timeline: list[StepRecord]
    started_at: datetime
    ended_at: datetime
    duration_s: float
    run_id: str = ""
    lock_notes: list[str] = field(default_factory=list)
    """What happened to the runbook lock: taken, re-entered, taken over, broken, released."""

    def record(self, step: str) -> StepRecord:
        """The record of ``step``."""
        for r in self.timeline:
            if r.step == step:
                return r
        raise KeyError(f"no step {step!r} in the {self.runbook} timeline")

    @property
    def statuses(self) -> dict[str, str]:
        """Step name -> status."""
        return {r.step: r.status for r in self.timeline}

    @property
    def warnings(self) -> list[StepRecord]:
        """Records of steps that finished with a warning."""
        return [r for r in self.timeline if r.status == "warning"]

    @property
    def nothing_to_do(self) -> bool:
        """Done, and every step answered ``already_done``: the run found its end state in place (a
        failback when no failover moved the writer, a completed run re-run) and changed nothing."""
        return self.outcome == "done" and all(r.status == "already_done" for r in self.timeline)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return {
            "runbook": self.runbook,
            "outcome": self.outcome,
            "nothingToDo": self.nothing_to_do,
            "stoppedAt": self.stopped_at,
            "reason": self.reason,
            "start": self.started_at.isoformat(),
            "end": self.ended_at.isoformat(),
            "durationSeconds": round(self.duration_s, 3),
            "runId": self.run_id,
            "lock": list(self.lock_notes),
            "timeline": [r.to_dict() for r in self.timeline],
        }

    def summary(self) -> str:
        """A few lines for a notification."""
        lines = [f"{self.runbook}: {self.outcome} in {self.duration_s:.1f}s"]
        lines += [f"  {r.step}: {r.status} ({r.duration_s:.1f}s) {r.detail}" for r in self.timeline]
        return "\n".join(lines)

    def format_table(self, width: int = 100) -> str:
        """The timeline as a fixed-width table for a terminal."""
        t0 = self.started_at
        name_w = max(len("step"), *(len(r.step) for r in self.timeline))
        status_w = max(len("status"), *(len(r.status) for r in self.timeline))
        head = f"{'step':<{name_w}}  {'start':>7}  {'took':>7}  {'status':<{status_w}}  detail"
        rows = [head, "-" * min(width, max(len(head), 60))]
        for r in self.timeline:
            start = f"+{(r.started_at - t0).total_seconds():.2f}s" if r.started_at else "-"
            took = f"{r.duration_s:.2f}s" if r.started_at else "-"
            room = max(20, width - (name_w + status_w + 24))
            detail = r.detail if len(r.detail) <= room else r.detail[: room - 3] + "..."
            rows.append(f"{r.step:<{name_w}}  {start:>7}  {took:>7}  {r.status:<{status_w}}  {detail}")
        rows.append("-" * min(width, max(len(head), 60)))
        rows += [f"run {self.run_id}: {note}" for note in self.lock_notes]
        if self.outcome == "done" and self.nothing_to_do:
            rows.append(
                f"{self.runbook}: done in {self.duration_s:.2f}s: nothing to do (every step found its end "
                "state already in place; nothing was changed)"
            )
        elif self.outcome == "done":
            warned = f", {len(self.warnings)} warning(s)" if self.warnings else ""
            rows.append(f"{self.runbook}: done in {self.duration_s:.2f}s{warned}")
        elif self.stopped_at == lock.TAKE:
            rows.append(f"{self.runbook}: NOT STARTED: {self.reason}")
        else:
            rows.append(f"{self.runbook}: STOPPED at {self.stopped_at}: {self.reason}")
            rows.append("Fix the cause and run the same command again: finished steps answer already_done.")
        return "\n".join(rows)


ProgressCallback = Callable[[Literal["start", "end"], StepRecord], None]
"""Called from the worker thread when a step starts and when it ends (must be thread-safe)."""


def _call_step(
    step: Step,
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    record: StepRecord,
    on_progress: ProgressCallback | None,
) -> None:
    """Run one step and fill ``record``; never raises (failures are recorded, logged, reported)."""
    clock = clients.clock
    record.started_at = clock.now()
    record.status = "running"
    t0 = clock.monotonic()
    if on_progress:
        on_progress("start", record)
    try:
        result: StepResult = step_handler(step.name)(ctx, clients, params)
        record.status = result.status
        record.detail = result.detail
        record.data = dict(result.data)
        if result.status == "in_progress":
            # With wait=True a step blocks until done; in_progress here means it could not.
            record.status = "failed"
            record.detail = f"still in progress: {result.detail}"
            record.retryable = True
    except StepFailed as exc:
        record.status = "failed"
        record.detail = exc.reason
        record.code = exc.code
        record.retryable = exc.retryable
    except Exception as exc:  # a bug in a step must stop the run with its trace, not kill the thread pool
        record.status = "failed"
        record.detail = f"{type(exc).__name__}: {exc}"
        record.code = type(exc).__name__
        log_event(
            logging.ERROR,
            "step raised unexpectedly",
            step=step.name,
            runbook=params.get("runbook"),
            error=record.detail,
            traceback=traceback.format_exc(),
        )
    if record.status == "failed" and step.best_effort:
        record.status = "warning"
        record.detail = f"best-effort step failed, run continues: {record.detail}"
    record.duration_s = clock.monotonic() - t0
    record.ended_at = clock.now()
    log_event(
        logging.INFO if record.status != "failed" else logging.ERROR,
        "step finished",
        step=step.name,
        runbook=params.get("runbook"),
        status=record.status,
        duration_s=round(record.duration_s, 3),
        detail=record.detail,
        code=record.code,
    )
    if on_progress:
        on_progress("end", record)


def default_owner() -> str:
    """Who runs the in-process executor: ``user@host`` (best effort: for people reading the lock)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in a container
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def new_run_id() -> str:
    """A run id for an in-process run: ``local-<12 hex>`` (printed, so a dead run can be resumed)."""
    return f"local-{uuid.uuid4().hex[:12]}"


class Heartbeat:
    """Keeps the run's lock: refreshes it when due, from a daemon thread and at every step start.

    The thread wakes every ``poll_seconds`` of real time and refreshes once ``HEARTBEAT_SECONDS``
    have passed on the run's clock since the last refresh. A refresh that fails on an AWS error is
    tried again on the next wake (the lease holds until its expiry); one that finds the lock gone
    records it in ``lost`` and the run stops before its next layer. The latch commands
    (``automation/latch_cli.py`` ``LatchLock``) keep their lock with it too.
    """

    def __init__(
        self, ctx: RunbookContext, clients: Clients, run_id: str, ttl_seconds: int, poll_seconds: float = 1.0
    ) -> None:
        self.ctx, self.clients, self.run_id, self.ttl = ctx, clients, run_id, ttl_seconds
        self.poll = poll_seconds
        self.lost: str | None = None
        self._last = clients.clock.now()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lock-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            self.tick()

    def tick(self, *, force: bool = False) -> None:
        """Refresh the lock if it is due, or now (``force``: before acting again after a wait; thread-safe)."""
        with self._mutex:
            if self.lost is not None:
                return
            now = self.clients.clock.now()
            if not force and (now - self._last).total_seconds() < HEARTBEAT_SECONDS:
                return
            try:
                lock.refresh(self.clients, self.ctx, run_id=self.run_id, ttl_seconds=self.ttl)
                self._last = now
            except LockLost as exc:
                self.lost = exc.reason
                log_event(logging.ERROR, "runbook lock lost", run_id=self.run_id, reason=exc.reason)
            except (ClientError, BotoCoreError) as exc:
                log_event(logging.WARNING, "runbook lock refresh failed", run_id=self.run_id, error=str(exc))


def run(
    runbook: Runbook | str,
    ctx: RunbookContext,
    clients: Clients,
    *,
    params: Mapping[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
    max_workers: int = 8,
    run_id: str | None = None,
    owner: str | None = None,
    break_lock: bool = False,
    lock_ttl_seconds: int = LOCK_TTL_SECONDS,
) -> RunReport:
    """Run ``runbook`` in process, holding the runbook lock, and return its report.

    Args:
        runbook: a ``Runbook`` or its name (``failover`` / ``failback``).
        ctx: what the steps act on.
        clients: explicitly-regioned clients (``Clients.for_context``).
        params: passed to every step (``force``, ``reason``, ``planned``, waiter settings, ...).
            ``runbook`` and ``wait`` are set by the executor; ``notify`` also gets ``summary``.
        on_progress: called when each step starts and ends.
        max_workers: threads for the steps of one layer.
        run_id: this run's id in the lock (default: a new one). The same id re-enters a lock a
            dead run of that id left behind.
        owner: who runs it, recorded in the lock (default ``user@host``).
        break_lock: take the lock even from another live run: the operator's explicit choice,
            only for a holder known to be dead.
        lock_ttl_seconds: the lease after each refresh (``budget.LOCK_TTL_SECONDS``).
    """
    book = RUNBOOKS[runbook] if isinstance(runbook, str) else runbook
    base = dict(params or {})
    layers = book.layers()
    records = {s.name: StepRecord(s.name, i, s.description) for i, layer in enumerate(layers) for s in layer}
    started = clients.clock.now()
    t0 = clients.clock.monotonic()
    stopped_at: str | None = None
    reason: str | None = None
    rid = run_id or new_run_id()
    notes: list[str] = []
    heartbeat: Heartbeat | None = None
    try:
        acquired = lock.acquire(
            clients,
            ctx,
            run_id=rid,
            owner=owner or default_owner(),
            runbook=book.name,
            ttl_seconds=lock_ttl_seconds,
            break_lock=break_lock,
        )
    except LockHeld as exc:
        stopped_at, reason = lock.TAKE, exc.reason
        log_event(logging.ERROR, "runbook lock held", runbook=book.name, run_id=rid, holder=exc.holder)
    except (ClientError, BotoCoreError) as exc:
        # No lock, no run: single flight cannot be promised without it.
        stopped_at, reason = lock.TAKE, f"could not take the runbook lock ({ctx.lock_table_name}): {exc}"
        log_event(logging.ERROR, "runbook lock unavailable", runbook=book.name, run_id=rid, error=str(exc))
    else:
        notes.append(acquired.describe())
        level = logging.WARNING if acquired.taken_over or acquired.broken else logging.INFO
        log_event(level, "runbook lock taken", runbook=book.name, run_id=rid, detail=acquired.describe())
        heartbeat = Heartbeat(ctx, clients, rid, lock_ttl_seconds)
        heartbeat.start()
    if heartbeat is not None:
        log_event(
            logging.INFO,
            "runbook started",
            runbook=book.name,
            run_id=rid,
            params={k: base[k] for k in sorted(base)},
        )
        try:
            stopped_at, reason = _run_layers(
                book, layers, ctx, clients, base, records, on_progress, max_workers, heartbeat
            )
            if stopped_at and book.on_stop is not None and heartbeat.lost is None:
                # A step failed (not the lock): the runbook's own undo, still inside the lock.
                record = StepRecord(book.on_stop.name, len(layers), book.on_stop.description)
                records[book.on_stop.name] = record
                params = {
                    **base,
                    "runbook": book.name,
                    "wait": book.on_stop.long_running,
                    "stoppedAt": stopped_at,
                }
                _call_step(book.on_stop, ctx, clients, params, record, on_progress)
                for delay in STEP_RETRY.delays():
                    # As the state machine's Retry on the same Task: a rollback refused by throttling
                    # that outlasted the client's retries is tried again, or the stop leaves region A
                    # fenced and region B not promoted (soak seed 219). Only while this run still
                    # holds the lock (B21b-3: another run may have taken it meanwhile).
                    if record.status != "failed" or not record.retryable:
                        break
                    clients.clock.sleep(delay)
                    heartbeat.tick(force=True)
                    if heartbeat.lost is not None:
                        record.detail = f"{record.detail}; not retried: lock lost ({heartbeat.lost})"
                        break
                    _call_step(book.on_stop, ctx, clients, params, record, on_progress)
                word = "could not roll back" if record.status == "failed" else book.on_stop.name
                reason = f"{reason}; {word}: {record.detail}"
        except BaseException as exc:
            heartbeat.stop()  # a dead process refreshes nothing
            if isinstance(exc, Exception):
                # A bug in the executor: the run is over, so the lock goes back before the trace.
                _release(ctx, clients, rid, notes)
            # Anything else is the process dying (a kill, Ctrl-C, the checker's Crash): the lock
            # stays for the same run id to resume, or until it expires.
            raise
        heartbeat.stop()
        _release(ctx, clients, rid, notes)
    duration = clients.clock.monotonic() - t0
    report = RunReport(
        runbook=book.name,
        outcome="stopped" if stopped_at else "done",
        stopped_at=stopped_at,
        reason=reason,
        timeline=[records[s.name] for s in book.steps]
        + ([records[book.on_stop.name]] if book.on_stop and book.on_stop.name in records else []),
        started_at=started,
        ended_at=clients.clock.now(),
        duration_s=duration,
        run_id=rid,
        lock_notes=notes,
    )
    log_event(
        logging.INFO if not stopped_at else logging.ERROR,
        "runbook finished",
        runbook=book.name,
        run_id=rid,
        outcome=report.outcome,
        stopped_at=stopped_at,
        reason=reason,
        duration_s=round(duration, 3),
    )
    return report


def _release(ctx: RunbookContext, clients: Clients, run_id: str, notes: list[str]) -> None:
    try:
        released = lock.release(clients, ctx, run_id=run_id)
    except (ClientError, BotoCoreError) as exc:
        notes.append(f"lock NOT released ({exc}): it expires on its own")
        log_event(logging.ERROR, "runbook lock release failed", run_id=run_id, error=str(exc))
        return
    notes.append("lock released" if released else "lock was no longer this run's: nothing released")


def _run_layers(
    book: Runbook,
    layers: list[list[Step]],
    ctx: RunbookContext,
    clients: Clients,
    base: dict[str, Any],
    records: dict[str, StepRecord],
    on_progress: ProgressCallback | None,
    max_workers: int,
    heartbeat: Heartbeat,
) -> tuple[str | None, str | None]:
    """Run the layers in order; returns (stopped_at, reason), both None when every step finished."""
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{book.name}-step") as pool:
        for layer in layers:
            heartbeat.tick()
            if heartbeat.lost is not None:
                return layer[0].name, f"lock lost before {layer[0].name}: {heartbeat.lost}"
            futures = []
            for step in layer:
                step_params = {**base, "runbook": book.name, "wait": step.long_running}
                if step.name == "notify":
                    step_params["summary"] = "\n".join(
                        f"{r.step}: {r.status} ({r.duration_s:.1f}s) {r.detail}"
                        for r in records.values()
                        if r.started_at is not None
                    )
                futures.append(
                    pool.submit(_call_step, step, ctx, clients, step_params, records[step.name], on_progress)
                )
            for future in futures:
                future.result()  # _call_step records failures itself; this only joins the layer
            failed = [records[s.name] for s in layer if records[s.name].status == "failed"]
            if failed:
                return failed[0].step, "; ".join(f"{r.step}: {r.detail}" for r in failed)
    return None, None
