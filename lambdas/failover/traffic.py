"""Traffic follows the latch and the switch: ``write_latch``, ``throw_switch``, ``release_switch``.

The latch (SSM, region B) says region B is active; the switch is a CloudWatch metric whose alarm
fails the Route 53 health check of region A's records. The latch leads, the switch follows, the
writer moves last: :func:`switch_effect_due` says when Route 53 has taken a thrown switch into
account, which an unplanned promotion waits for (``lambdas/failover/promotion.py``). The runbook's own
throw is recorded in the run journal (``SWITCH_THROWN_MARK``) before its datapoint is put, since
GetMetricData may not return a datapoint for some time after it was put: a switch the runbook threw
is waited for, and released, whether or not its datapoint can be read yet (break32 B32-4).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.journal import _journal, _read_latch, _write_latch, _writer_moving, read_journal
from lambdas.failover.stepkit import (
    StepResult,
    _already,
    _done,
    _latest,
    _metric_query,
    _now,
    _parse_time,
    _step,
    log_event,
)

SWITCH_EVALUATION_SECONDS = 10.0
"""Seconds allowed, after the switch alarm's one-minute period ends, for CloudWatch to evaluate it and
Route 53's CloudWatch-metric health check to read the new state. An assumption: CloudWatch evaluates
a period once it is complete (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html)
and documents no bound on the delay."""


def switch_takes_effect_at(points: list[tuple[datetime, float]]) -> datetime | None:
    """When the switch alarm (1-minute period, 1 of 1, Maximum >= 1: components/global_failover.py) has
    seen the current thrown stretch: the end of the first thrown minute after the last released one,
    plus ``SWITCH_EVALUATION_SECONDS``. ``points``: (minute start, Maximum) per minute, any order.
    None when the latest minute is not thrown (the switch is not thrown)."""
    ordered = sorted(points)
    if not ordered or ordered[-1][1] < 1:
        return None
    first = ordered[-1][0]
    for at, value in reversed(ordered):
        if value < 1:
            break
        first = at
    return first + timedelta(seconds=60 + SWITCH_EVALUATION_SECONDS)


SWITCH_THROWN_MARK = "switchThrownAt"
"""Run journal key: the instant the runbook last put 1 on the switch (its own clock, the very value the
datapoint's ``Timestamp`` carries), written before the put and removed after the runbook puts 0.
CloudWatch documents no bound on when a datapoint just put is returned by GetMetricData, so what it
returns cannot say the runbook's own throw did not happen; this record can (break32 B32-4)."""


def switch_effect_due(
    points: list[tuple[datetime, float]], thrown_at: datetime | None, now: datetime
) -> datetime | None:
    """When an unplanned writer move may go: the later of when the switch alarm has seen the thrown
    stretch GetMetricData shows (:func:`switch_takes_effect_at`, ``points``) and when it has seen the
    minute of the runbook's own recorded throw (``thrown_at``: the end of that minute, plus
    ``SWITCH_EVALUATION_SECONDS``), whether or not its datapoint is among ``points`` yet. A recorded
    throw later than ``now`` (another clock's record) counts as thrown ``now``. None when neither
    says thrown. All on the runbook's clock, which stamped the datapoint: its ``Timestamp`` decides
    the minute the alarm evaluates it in."""
    due = [at for at in (switch_takes_effect_at(points),) if at is not None]
    if thrown_at is not None:
        minute = min(thrown_at, now).astimezone(UTC).replace(second=0, microsecond=0)
        due.append(minute + timedelta(seconds=60 + SWITCH_EVALUATION_SECONDS))
    return max(due) if due else None


def _recorded_throw(journal: Mapping[str, Any], now: datetime) -> datetime | None:
    """The runbook's recorded throw (``SWITCH_THROWN_MARK``); one that cannot be read counts as ``now``."""
    value = journal.get(SWITCH_THROWN_MARK)
    if value is None:
        return None
    at = _parse_time(value)
    return at if at is not None and at.tzinfo is not None else now


def _switch_pending(ctx: RunbookContext, clients: Clients) -> float:
    """Seconds until Route 53 has taken the thrown switch into account (0: it has, or it is not thrown):
    the switch as GetMetricData shows it, and the runbook's own recorded throw (``switch_effect_due``)."""
    m = ctx.switch_metric
    now = clients.clock.now()
    thrown_at = _recorded_throw(read_journal(clients, ctx), now)
    query = _metric_query(
        now, m.namespace, m.name, m.dimensions, "Maximum", timedelta(minutes=15), timedelta(minutes=1)
    )
    results = clients.cloudwatch("dr").get_metric_data(**query)["MetricDataResults"]
    points = (
        list(zip(results[0].get("Timestamps", []), results[0].get("Values", []), strict=False))
        if results
        else []
    )
    effect = switch_effect_due([(t, float(v)) for t, v in points], thrown_at, now)
    return 0.0 if effect is None else max(0.0, (effect - now).total_seconds())


def _put_switch(ctx: RunbookContext, clients: Clients, value: float) -> None:
    m = ctx.switch_metric
    at = clients.clock.now()
    if value == 1:
        # Written ahead: a run that dies between the two still waits for, and rolls back, this throw.
        _journal(clients, ctx, **{SWITCH_THROWN_MARK: at.astimezone(UTC).isoformat()})
    clients.cloudwatch("dr").put_metric_data(
        Namespace=m.namespace,
        MetricData=[
            {
                "MetricName": m.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions.items()],
                "Value": value,
                # Stamped by the runbook's clock: the switch alarm evaluates datapoints by time.
                "Timestamp": at,
            }
        ],
    )


def _switch(ctx: RunbookContext, clients: Clients, value: float, step: str) -> StepResult:
    m = ctx.switch_metric
    # Average, not Maximum: a minute holding both a 1 and a 0 is neither state, so the step puts
    # its value again rather than trusting a mixed period.
    latest = _latest_switch(ctx, clients, "Average")
    word = "thrown" if value == 1 else "released"
    where = f"{m.namespace}/{m.name} in {ctx.dr_region}"
    # A release is not "already" while the runbook's own recorded throw may be newer than anything
    # GetMetricData returns (``SWITCH_THROWN_MARK``, ``_own_throw_unseen``).
    recorded = _recorded_throw(read_journal(clients, ctx), clients.clock.now()) if value == 0 else None
    if latest is not None and latest[0] == value and not _own_throw_unseen(recorded, latest):
        return _already(
            f"switch already {word}: latest {where} datapoint is {value:g} at {latest[1]}", value=value
        )
    _put_switch(ctx, clients, value)
    if recorded is not None:
        # Removed after the 0 is put: a run that dies in between puts another 0, never forgets a 1.
        _journal(clients, ctx, **{SWITCH_THROWN_MARK: None})
    log_event(logging.INFO, f"switch {word}", step=step, metric=where, previous=latest[0] if latest else None)
    return _done(f"switch {word}: put {value:g} on {where}", value=value)


def _latest_switch(ctx: RunbookContext, clients: Clients, stat: str) -> tuple[float, datetime] | None:
    """The switch metric's latest one-minute ``stat`` datapoint of the last day (region B), if any."""
    m = ctx.switch_metric
    query = _metric_query(
        clients.clock.now(), m.namespace, m.name, m.dimensions, stat, timedelta(days=1), timedelta(minutes=5)
    )
    return _latest(clients, "dr", query)


def _own_throw_unseen(recorded: datetime | None, latest: tuple[float, datetime] | None) -> bool:
    """Whether the runbook's recorded throw (``SWITCH_THROWN_MARK``) may be newer than every datapoint
    GetMetricData returned: it is recorded, and the latest period returned (``latest``: value, start)
    did not begin after it. A period that began after it holds only later datapoints, which decide
    the switch whether or not the recorded 1 is returned yet (a throw left recorded by a failover
    that the canary released since is not thrown again by it)."""
    return recorded is not None and (latest is None or latest[1] <= recorded)


def _switch_thrown(ctx: RunbookContext, clients: Clients) -> bool:
    """Whether the switch may be thrown: the switch metric's latest datapoint (one day back) says thrown
    (any 1 in its minute), or the runbook's own recorded throw may be newer than it
    (``_own_throw_unseen``: its datapoint may not be returned yet)."""
    latest = _latest_switch(ctx, clients, "Maximum")
    if latest is not None and latest[0] >= 1:
        return True
    return _own_throw_unseen(_recorded_throw(read_journal(clients, ctx), clients.clock.now()), latest)


@_step
def throw_switch(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Put 1 on the switch metric: its alarm fails the Route 53 health check of region A's records."""
    return _switch(ctx, clients, 1, "throw_switch")


@_step
def write_latch(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Record in SSM (region B) that region B is active, so a routine ``pulumi up`` cannot revert it.

    The latch's ``since`` names one failover: the dr stack's failback record is tied to it
    (components/failover.py ``PhaseRecord``, ``refuse_step_back``) and a failback's drain is dated
    against it (``failback_in_progress``). Under a latch that already says active:

    * region B holds the writer or is taking it (``_writer_moving``: the promotion done, or under way
      after the runbook's write-ahead ``PROMOTION_MARK``, or an Aurora global failover in progress;
      also when an error other than throttling keeps it from being told): this failover's own latch,
      resumed or run again. Kept as it is, ``since`` included, so nothing that read it changes its
      mind. Throttling that outlasted the client's retries is raised for the executor to retry the
      step (break23 BR23-3): kept on a guess, the old ``since`` would bind the new failover for good,
      since the promotion that follows makes region B the writer for every later look.
    * region A holds the writer: no failover is in effect under that latch. Either a failback moved
      the writer back before ``latch release`` (Aurora: ``latch switch-writer`` or the runbook's
      ``switch_writer``; a switchover leaves region B's cluster a secondary that replicates again:
      https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html)
      and this is a new failover (breaklife22 BL22-4), or this failover's own run stopped between
      this step and its promotion (this step runs after ``fence_primary``, before
      ``promote_database``). Both get a new ``since``: the last failback's record does not bind the
      new failover, and the resumed run ends where a stopped run's resume does anyway
      (``roll_back_fence`` puts such a latch back to standby, and the resume latches again). Nothing
      bound to the old ``since`` is lost: a failback record binds only once region A holds the
      writer, which is what this failover is taking from it.
    """
    latch = _read_latch(clients, ctx) or {}
    previous = latch.get("since")
    if latch.get("state") == "active" and _writer_moving(ctx, clients, retry_throttled=True):
        return _already(f"latch {ctx.latch_parameter_name} already active since {previous}", latch=latch)
    value = {
        "state": "active",
        "since": _now(clients),
        "runbook": "failover",
        "reason": params.get("reason") or "not given",
    }
    _write_latch(clients, ctx, value)
    if latch.get("state") == "active":
        return _done(
            f"latch {ctx.latch_parameter_name} active since {value['since']}: a new failover (it said active "
            f"since {previous}, but region A holds the writer)",
            latch=value,
            previousSince=previous,
        )
    return _done(f"latch {ctx.latch_parameter_name} set to active", latch=value)


@_step
def release_switch(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Put 0 on the switch metric: Route 53 prefers region A again."""
    return _switch(ctx, clients, 0, "release_switch")
