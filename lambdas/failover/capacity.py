"""Each region's serving capacity: web tier, functions and event sources.

``scale_web_tier`` and ``enable_functions`` bring region B up for a failover; ``warm_primary``
launches region A's web tier before a failback moves the writer, and ``scale_down_dr`` returns
region B to its pilot light (stamping when its writes stopped). A re-run never lowers a desired
capacity that autoscaling raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdas.failover import regressions
from lambdas.failover.clients import Clients
from lambdas.failover.context import Capacity, RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.failback import _writer_never_left_a
from lambdas.failover.journal import (
    FAILOVER_MARKS,
    WRITER_MOVE_MARK,
    _forget_drain_proof,
    _journal,
    _read_latch,
    _writer_move_requested,
    read_journal,
)
from lambdas.failover.regressions import Regression
from lambdas.failover.stepkit import (
    StepResult,
    _already,
    _asg,
    _asg_capacity,
    _cap,
    _done,
    _finished,
    _in_progress,
    _now,
    _probe,
    _reserved_concurrency,
    _set_asg,
    _set_mappings,
    _step,
    _wait,
    _waiter_config,
)
from lambdas.failover.traffic import _switch


@_step
def scale_web_tier(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Size the DR web tier's Auto Scaling group to its active capacity, never below what it has.

    Min and max are the context's; desired is the larger of the current desired and the context's
    (capped by max). A re-run after target tracking raised the group (the DR region serving real
    load) must not take instances away: Auto Scaling keeps desired within [min, max] and honours an
    explicit ``DesiredCapacity``, so the step passes the higher one
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-capacity-limits.html).
    """
    step = "scale_web_tier"
    if read_journal(clients, ctx).get("drStoppedAt"):
        _journal(clients, ctx, drStoppedAt=None)  # region B takes writes again
    # Before region B takes writes again: an IaC failback's zero-lag proof of its drain no longer holds
    # (break26 B26-3; components/failover.py refuse_unproven_failback_promotion).
    _forget_drain_proof(clients, ctx)
    wanted = ctx.dr_capacity
    current = _asg_capacity(_asg(clients, "dr", ctx.dr_asg_name, step))
    desired = wanted.desired
    if not regressions.on(Regression.SCALE_TO_CONTEXT):
        desired = min(max(current.desired, wanted.desired), wanted.max)
    target = Capacity(wanted.min, desired, wanted.max)
    changed, before = _set_asg(clients, "dr", ctx.dr_asg_name, target, step)
    label = f"{target.min}/{target.desired}/{target.max}"
    if not changed:
        return _already(f"{ctx.dr_asg_name} already at {label}", asg=ctx.dr_asg_name, capacity=_cap(target))
    return _done(
        f"{ctx.dr_asg_name} {before.min}/{before.desired}/{before.max} -> {label}",
        asg=ctx.dr_asg_name,
        before=_cap(before),
        capacity=_cap(target),
    )


@_step
def enable_functions(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Lift the DR functions' reserved concurrency 0 and enable their event source mappings."""
    _forget_drain_proof(clients, ctx)  # region B takes writes again (scale_web_tier)
    changed: list[str] = []
    for name in ctx.dr_function_names:
        if _reserved_concurrency(clients, "dr", name) == 0:
            # Deleting the setting (rather than picking a number) returns the function to the
            # account's unreserved pool, as in region A.
            clients.lambda_("dr").delete_function_concurrency(FunctionName=name)
            changed.append(f"function {name} unthrottled")
    changed += _set_mappings(clients, ctx.dr_event_source_mapping_ids, enabled=True)
    if not changed:
        return _already(
            f"{len(ctx.dr_function_names)} DR function(s) already unthrottled, "
            f"{len(ctx.dr_event_source_mapping_ids)} mapping(s) already enabled"
        )
    return _done("; ".join(changed), changes=changed)


@_step
def warm_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Launch region A's web tier while region B still serves, so it is in service when the writer
    moves back: the failback's write outage is then the drain, the lag wait and the switch of the
    writer, not also an instance launch and its health checks.

    Safe before the writer moves: region A's application reaches only a database that is a replica
    (rds-replica) or a global secondary (aurora-global) until ``switch_writer``, and those refuse
    writes; its functions and event sources stay fenced until ``unfence_primary``. Desired capacity
    is never lowered (autoscaling may have raised it). The exception, a writer that never left region
    A, is :func:`_free_traffic_for_unmoved_writer`'s.
    """
    step = "warm_primary"
    freed, freed_changed = _free_traffic_for_unmoved_writer(ctx, clients, step)
    launched = launch_region_a(ctx, clients, params, step)
    if not freed:
        return launched
    detail = f"{freed}; {launched.detail}"
    if launched.status == "in_progress":
        return _in_progress(detail)
    return StepResult(
        "done" if freed_changed or launched.status == "done" else "already_done", detail, launched.data
    )


def launch_region_a(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str
) -> StepResult:
    """Region A's web tier at its serving capacity, in service (``warm_primary``'s launch; also the
    failover's ``roll_back_fence``, which gives back a region A its own fence took out and writes no
    failback's mark). Desired capacity is never lowered (autoscaling may have raised it)."""
    wanted = ctx.primary_capacity
    current = _asg_capacity(_asg(clients, "primary", ctx.primary_asg_name, step))
    target = Capacity(wanted.min, min(max(current.desired, wanted.desired), wanted.max), wanted.max)
    changed, before = _set_asg(clients, "primary", ctx.primary_asg_name, target, step)
    label = f"{target.min}/{target.desired}/{target.max}"
    detail = (
        f"{ctx.primary_asg_name} {before.min}/{before.desired}/{before.max} -> {label}"
        if changed
        else f"{ctx.primary_asg_name} already at {label}"
    )
    if ctx.primary_health_url:
        # In service before the drain: the steps after this one may give region A the writer and
        # its functions within seconds (a failback with no lag to wait for), and Route 53 can answer
        # region A only once its load balancer has healthy targets. Any HTTP 200 will do: region A's
        # database is not the writer yet.
        http = _probe(step, ctx.primary_health_url, params, clients)
        config = _waiter_config(params)
        attempts = int(config["MaxAttempts"]) if _wait(params) else 1
        for _ in range(attempts - 1):
            if http.status == 200:
                break
            clients.clock.sleep(float(config["Delay"]))
            http = _probe(step, ctx.primary_health_url, params, clients)
        if http.status != 200:
            what = f"{detail}; waiting for its web tier to be in service ({ctx.primary_health_url} {http.describe()})"
            if not _wait(params):
                return _in_progress(what)
            raise StepFailed(
                step, f"{what}: gave up after {attempts} checks", retryable=True, code="NotInService"
            )
        detail += f"; {ctx.primary_health_url} answers 200"
    return _finished(params, changed, detail)


def _free_traffic_for_unmoved_writer(
    ctx: RunbookContext, clients: Clients, step: str
) -> tuple[str | None, bool]:
    """Before region A's web tier launches over a writer that never left it (a failover that stopped
    region A and died or was refused before it moved the writer): write ``WRITER_MOVE_MARK`` first.

    Then region A's database *is* the writer, so the moment its web tier is in service region A
    serves the writer, while the switch still sends traffic to region B, whose database is a replica
    or a secondary that refuses writes. The failover's marks make the region-B canary hold the switch
    (``lambdas/health_check/probe.py`` ``switch_position``), and a failback that stops or dies after
    this step (before ``release_switch``) left Route 53 answering region B for as long as nobody
    resumed it (docs/safety.md, *traffic follows the writer*; soak seed 2036). The mark is what lets the
    canary follow region A's writer once every region-A target answers healthy as the writer; it says
    nothing that is not so (the writer is in region A, and there is no writer to move), and nothing
    acknowledged can be lost by it: region B's database accepted no write. Written only while a
    failover holds region A (latch active, or its marks in the journal): a failback with nothing to
    give back changes nothing. Returns what it found and did, for the step's detail, and whether it
    changed anything."""
    journal = read_journal(clients, ctx)
    held = (_read_latch(clients, ctx) or {}).get("state") == "active" or any(
        journal.get(mark) for mark in FAILOVER_MARKS
    )
    in_a = _writer_never_left_a(ctx, clients, step) if held else None
    if not in_a:
        return None, False
    marked = not journal.get(WRITER_MOVE_MARK)
    _writer_move_requested(clients, ctx)
    # Released before region A's web tier launches, so that no stop of this run finds region A
    # serving its writer behind a thrown switch. Route 53 answers region A only once its endpoint
    # check passes too (components/global_failover.py), so until then it keeps answering region B,
    # and the canary, seeing the mark, leaves the released switch as it is until region A answers
    # as the writer (lambdas/health_check/probe.py ``switch_position``).
    released = _switch(ctx, clients, 0, step)
    return (
        f"{in_a}: {released.detail} before region A's web tier launches",
        marked or released.status == "done",
    )


@_step
def scale_down_dr(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Return region B to its pilot light: web tier 0/0/0, functions at 0, event sources disabled."""
    step = "scale_down_dr"
    group = _asg_capacity(_asg(clients, "dr", ctx.dr_asg_name, step))
    on = [n for n in ctx.dr_function_names if _reserved_concurrency(clients, "dr", n) != 0]
    serving = group != Capacity(0, 0, 0) or bool(on)
    if serving or (
        not read_journal(clients, ctx).get("drStoppedAt") and not _writer_never_left_a(ctx, clients, step)
    ):
        # (Region B already in standby with the writer in region A: no lag will be waited for, and
        # a failback with nothing to do changes nothing.)
        # Stamped before the change: the writer moves only at zero lag measured after the drain.
        _journal(clients, ctx, drStoppedAt=_now(clients))
    changed_asg, before = _set_asg(clients, "dr", ctx.dr_asg_name, Capacity(0, 0, 0), step)
    changes: list[str] = []
    if changed_asg:
        changes.append(f"{ctx.dr_asg_name} {before.min}/{before.desired}/{before.max} -> 0/0/0")
    for name in ctx.dr_function_names:
        if _reserved_concurrency(clients, "dr", name) != 0:
            clients.lambda_("dr").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
            changes.append(f"function {name} -> reserved concurrency 0")
    changes += _set_mappings(clients, ctx.dr_event_source_mapping_ids, enabled=False)
    if not changes:
        return _already("region B already in standby")
    return _done("; ".join(changes), changes=changes)
