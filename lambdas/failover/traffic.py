"""Traffic follows the latch and the switch: ``write_latch``, ``throw_switch``, ``release_switch``.

The latch (SSM, region B) says region B is active; the switch is a CloudWatch metric whose alarm
fails the Route 53 health check of region A's records. The latch leads, the switch follows, the
writer moves last: :func:`switch_takes_effect_at` says when Route 53 has taken a thrown switch into
account, which an unplanned promotion waits for (``lambdas/failover/promotion.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.journal import _read_latch, _write_latch, _writer_moving
from lambdas.failover.stepkit import (
    StepResult,
    _already,
    _done,
    _latest,
    _metric_query,
    _now,
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


def _switch_pending(ctx: RunbookContext, clients: Clients) -> float:
    """Seconds until Route 53 has taken the thrown switch into account (0: it has, or it is not thrown)."""
    m = ctx.switch_metric
    now = clients.clock.now()
    query = _metric_query(
        now, m.namespace, m.name, m.dimensions, "Maximum", timedelta(minutes=15), timedelta(minutes=1)
    )
    results = clients.cloudwatch("dr").get_metric_data(**query)["MetricDataResults"]
    points = (
        list(zip(results[0].get("Timestamps", []), results[0].get("Values", []), strict=False))
        if results
        else []
    )
    effect = switch_takes_effect_at([(t, float(v)) for t, v in points])
    return 0.0 if effect is None else max(0.0, (effect - now).total_seconds())


def _put_switch(ctx: RunbookContext, clients: Clients, value: float) -> None:
    m = ctx.switch_metric
    clients.cloudwatch("dr").put_metric_data(
        Namespace=m.namespace,
        MetricData=[
            {
                "MetricName": m.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions.items()],
                "Value": value,
                # Stamped by the runbook's clock: the switch alarm evaluates datapoints by time.
                "Timestamp": clients.clock.now(),
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
    if latest is not None and latest[0] == value:
        return _already(
            f"switch already {word}: latest {where} datapoint is {value:g} at {latest[1]}", value=value
        )
    _put_switch(ctx, clients, value)
    log_event(logging.INFO, f"switch {word}", step=step, metric=where, previous=latest[0] if latest else None)
    return _done(f"switch {word}: put {value:g} on {where}", value=value)


def _latest_switch(ctx: RunbookContext, clients: Clients, stat: str) -> tuple[float, datetime] | None:
    """The switch metric's latest one-minute ``stat`` datapoint of the last day (region B), if any."""
    m = ctx.switch_metric
    query = _metric_query(
        clients.clock.now(), m.namespace, m.name, m.dimensions, stat, timedelta(days=1), timedelta(minutes=5)
    )
    return _latest(clients, "dr", query)


def _switch_thrown(ctx: RunbookContext, clients: Clients) -> bool:
    """Whether the switch metric's latest datapoint (one day back) says thrown (any 1 in its minute)."""
    latest = _latest_switch(ctx, clients, "Maximum")
    return latest is not None and latest[0] >= 1


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
