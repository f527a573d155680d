"""The runbook's step handlers: one function per step name in the FAILOVER and FAILBACK graphs.

Every handler has the same shape, ``handler(ctx, clients, params) -> StepResult``, and is called
by both executors: the Step Functions state machine (through ``lambdas.failover.handler``, with
``params["wait"] = False``) and the in-process executor of the break-glass CLI and the local drill
(``lambdas.failover.executor``, with ``params["wait"] = True`` for long-running steps).

Rules every handler keeps:

* **Idempotent.** It reads the current state first; when the target state is already there it
  changes nothing and answers ``already_done`` saying what it found. A run that stopped half-way is
  resumed by running it again.
* **Errors by AWS error code.** A ``ClientError`` is turned into ``StepFailed`` whose reason
  carries the code. Throttling and transient failures are retried by botocore (adaptive mode,
  configured in ``clients.py``); when botocore gives up they surface as ``StepFailed`` with
  ``retryable=True`` so Step Functions can retry the whole step later. Nothing is swallowed: each
  failure is logged as one JSON line with its context.
* **Long-running work** (RDS promotion, Aurora failover, replication catch-up) either blocks on a
  boto3 waiter (``wait=True``) or starts the operation and answers ``in_progress``
  (``wait=False``); the state machine then waits and calls the step again, which finds the
  operation under way or finished. An ``in_progress`` result's ``data`` holds ``{"polling": true}``;
  passing it back in ``params`` lets the finishing call answer ``done`` rather than
  ``already_done``.

Parameters read from ``params`` (all optional): ``wait``, ``force``, ``reason``, ``planned``
(switch over instead of failing over: region A is healthy), ``runbook``, ``summary`` (for notify),
``failbackKmsKeyId`` (default: the outputs' ``primaryKmsKeyArn``),
``waiterDelay`` / ``waiterMaxAttempts`` (boto3 ``WaiterConfig``), ``probeTries`` /
``probeInterval`` / ``probeTimeout`` (health URL probes), ``drainSeconds`` (how long a fenced tier
may still commit writes; default 300, the ALB deregistration delay), ``fenceDarkSeconds`` (how long
``fence_primary`` confirms region A unreachable before leaving its fence pending; default
``DARK_CONFIRM_SECONDS``, 120), ``allowDataLoss`` (promote a
replica whose source answers without waiting for zero lag: the operator's explicit choice).

Safety rules (docs/safety.md):

* **Fencing is a precondition.** ``fence_primary`` must succeed when region A answers; only
  connection errors (region A unreachable) make it a warning.
* **Planned changes are lossless.** When region A was fenced (its stop is stamped in the run
  journal, an SSM parameter next to the latch), the promotion waits for the drain and then for a
  zero-lag datapoint taken after it; Aurora switches over. The failback does the same after
  ``scale_down_dr``, and undoes its drain when zero lag does not come in time.
* **The latch leads, the switch follows, the writer moves last.** The failover fences region A
  (functions and event sources, then the web tier), writes the latch, throws the switch, and only
  then moves the writer (an unplanned move waits for the switch to take effect); the canary never
  releases the switch on doubt. A run stopped on a failed step before the writer moved rolls back
  (``roll_back_fence``, the failover's ``on_stop``).

Layout: this module is the registry, the handler of every step by name (``STEPS``,
:func:`step_handler`), and re-exports each step module's public names, so callers keep writing
``steps.write_latch``. The handlers live by responsibility, each module importing only those
above it in this list:

* ``stepkit``: ``StepResult``, the ``_step`` registration and error translation, small AWS helpers.
* ``journal``: the latch and the run journal (SSM, region B), and the marks kept in the journal.
* ``lossless``: the drain and the zero-lag proof of planned changes.
* ``traffic``: the latch step and the switch (``write_latch``, ``throw_switch``, ``release_switch``).
* ``serving``: ``verify``, ``verify_primary``, ``notify``.
* ``fencing``: ``confirm_primary_down``, ``fence_primary``, ``unfence_primary``.
* ``promotion``: ``promote_database`` (and the RDS promotion the failback shares).
* ``failback``: ``confirm_primary_healthy``, ``reestablish_replication``, ``wait_replication_lag``,
  ``switch_writer``, ``clear_latch``.
* ``capacity``: ``scale_web_tier``, ``enable_functions``, ``warm_primary``, ``scale_down_dr``.
* ``on_stop``: what a stopped run does (``roll_back_fence``, ``restore_dr``).

The runbook's exceptions are in ``lambdas.failover.exceptions``.
"""

from __future__ import annotations

from lambdas.failover.capacity import enable_functions, scale_down_dr, scale_web_tier, warm_primary
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.failback import (
    FAILBACK_JOURNAL_KEY,
    RETAINED_JOURNAL_KEY,
    clear_latch,
    confirm_primary_healthy,
    reestablish_replication,
    switch_writer,
    wait_replication_lag,
)
from lambdas.failover.fencing import (
    PLANNED_NEEDS_REGION_A,
    confirm_primary_down,
    fence_primary,
    fence_region_a,
    keep_unplanned_snapshots,
    unfence_primary,
)
from lambdas.failover.journal import (
    DARK_MARK,
    FAILOVER_MARKS,
    JOURNAL_HISTORY,
    JOURNAL_REPAIRS,
    PROMOTING_STATUSES,
    PROMOTION_MARK,
    WRITER_MOVE_MARK,
    declare_failover_hold,
    end_failover_hold,
    read_journal,
)
from lambdas.failover.lossless import (
    DRAIN_SECONDS,
    LAG_PERIOD,
    MARKER_AFTER,
    REPLAY_MARGIN,
    Lag,
    database_lag,
    replay_evidence,
    store_lags,
    zero_lag_evidence,
)
from lambdas.failover.on_stop import restore_dr, roll_back_fence
from lambdas.failover.promotion import (
    AURORA_ENGINE,
    AURORA_MOVE_ROUNDS,
    DARK_CONFIRM_SECONDS,
    promote_database,
)
from lambdas.failover.serving import notify, verify, verify_primary
from lambdas.failover.stepkit import (
    CONNECTION_ERRORS,
    LOGGER,
    POLL_KEY,
    RETRYABLE_CODES,
    STEP_STATUSES,
    STEPS,
    StepFn,
    StepResult,
    StepStatus,
    error_code,
    log_event,
)
from lambdas.failover.traffic import (
    SWITCH_EVALUATION_SECONDS,
    SWITCH_THROWN_MARK,
    release_switch,
    switch_effect_due,
    switch_takes_effect_at,
    throw_switch,
    write_latch,
)

__all__ = [
    "AURORA_ENGINE",
    "AURORA_MOVE_ROUNDS",
    "CONNECTION_ERRORS",
    "DARK_CONFIRM_SECONDS",
    "DARK_MARK",
    "DRAIN_SECONDS",
    "FAILBACK_JOURNAL_KEY",
    "FAILOVER_MARKS",
    "JOURNAL_HISTORY",
    "JOURNAL_REPAIRS",
    "LAG_PERIOD",
    "LOGGER",
    "MARKER_AFTER",
    "PLANNED_NEEDS_REGION_A",
    "POLL_KEY",
    "PROMOTING_STATUSES",
    "PROMOTION_MARK",
    "REPLAY_MARGIN",
    "RETAINED_JOURNAL_KEY",
    "RETRYABLE_CODES",
    "STEPS",
    "STEP_STATUSES",
    "SWITCH_EVALUATION_SECONDS",
    "SWITCH_THROWN_MARK",
    "WRITER_MOVE_MARK",
    "Lag",
    "StepFailed",
    "StepFn",
    "StepResult",
    "StepStatus",
    "clear_latch",
    "confirm_primary_down",
    "confirm_primary_healthy",
    "database_lag",
    "declare_failover_hold",
    "enable_functions",
    "end_failover_hold",
    "error_code",
    "fence_primary",
    "fence_region_a",
    "keep_unplanned_snapshots",
    "log_event",
    "notify",
    "promote_database",
    "read_journal",
    "reestablish_replication",
    "release_switch",
    "replay_evidence",
    "restore_dr",
    "roll_back_fence",
    "scale_down_dr",
    "scale_web_tier",
    "step_handler",
    "store_lags",
    "switch_effect_due",
    "switch_takes_effect_at",
    "switch_writer",
    "throw_switch",
    "unfence_primary",
    "verify",
    "verify_primary",
    "wait_replication_lag",
    "warm_primary",
    "write_latch",
    "zero_lag_evidence",
]


def step_handler(name: str) -> StepFn:
    """The handler for step ``name``; KeyError lists the known steps."""
    try:
        return STEPS[name]
    except KeyError:
        raise KeyError(f"no step handler {name!r}; known: {sorted(STEPS)}") from None
