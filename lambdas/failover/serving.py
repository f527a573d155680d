"""Whether a region serves as the writer (``verify``, ``verify_primary``), and telling the operators
once a run completed (``notify``).

The checks are read-only: web tier at capacity, and the region's health URL answering 200 with
``{"region": <its region>, "writer": true}`` (without a URL, region B's database the writer). With
``wait`` they are polled within the waiter budget.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.journal import _read_latch, _write_latch
from lambdas.failover.stepkit import (
    StepResult,
    _already,
    _asg,
    _done,
    _global_members,
    _http_get,
    _in_progress,
    _member,
    _need,
    _now,
    _require_db_instance,
    _step,
    _wait,
    _waiter_config,
)


def _db_writer_in_dr(ctx: RunbookContext, clients: Clients, step: str) -> tuple[bool, str]:
    if ctx.database_mode == "rds-replica":
        ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
        inst = _require_db_instance(clients, "dr", ident, step)
        ok = (
            not inst.get("ReadReplicaSourceDBInstanceIdentifier")
            and inst.get("DBInstanceStatus") == "available"
        )
        return ok, f"{ident} {'is' if ok else 'is not yet'} a standalone writer"
    _, members = _global_members(ctx, clients, step)
    me = _member(members, _need(ctx.dr_cluster_arn, "drClusterArn", step))
    ok = bool(me and me.get("IsWriter"))
    return ok, f"{ctx.dr_cluster_id} {'is' if ok else 'is not yet'} the global writer"


def _verify_once(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], side: Side = "dr"
) -> tuple[bool, list[str]]:
    """One check that ``side`` serves as the writer: web tier at capacity, health URL 200 with
    ``{"region": <its region>, "writer": true}`` (or, without a URL, its database the writer)."""
    step = "verify" if side == "dr" else "verify_primary"
    notes: list[str] = []
    asg_name, capacity = (
        (ctx.dr_asg_name, ctx.dr_capacity) if side == "dr" else (ctx.primary_asg_name, ctx.primary_capacity)
    )
    region = clients.region(side)
    url = ctx.dr_health_url if side == "dr" else ctx.primary_health_url
    group = _asg(clients, side, asg_name, step)
    desired = int(group["DesiredCapacity"])
    asg_ok = desired >= capacity.desired  # autoscaling may have raised it
    notes.append(f"{asg_name} desired {desired}/{capacity.desired}")
    if side == "primary":
        if not url:
            notes.append("HTTP check skipped: no primaryHealthUrl in the runbook context")
            return asg_ok, notes
        http = _http_get(step, url, float(params.get("probeTimeout", 3.0)))
        body_a: Any = None
        if http.status == 200:
            try:
                body_a = json.loads(http.body or b"null")
            except json.JSONDecodeError:
                body_a = None
        ok = isinstance(body_a, dict) and body_a.get("region") == region and body_a.get("writer") is True
        notes.append(
            f"{url} answers 200 from {region} as writer" if ok else f"{url} {http.describe()}: {body_a!r}"
        )
        return asg_ok and ok, notes
    if ctx.dr_health_url:
        http = _http_get(step, ctx.dr_health_url, float(params.get("probeTimeout", 3.0)))
        body: Any = None
        if http.status == 200:
            try:
                body = json.loads(http.body or b"null")
            except json.JSONDecodeError:
                body = None
        http_ok = (
            isinstance(body, dict) and body.get("region") == ctx.dr_region and body.get("writer") is True
        )
        if http_ok:
            notes.append(f"{ctx.dr_health_url} answers 200 from {ctx.dr_region} as writer")
        elif http.status == 200:
            notes.append(
                f"{ctx.dr_health_url} answers 200 but not region={ctx.dr_region} writer=true: {body!r}"
            )
        else:
            notes.append(f"{ctx.dr_health_url} {http.describe()}")
        return asg_ok and http_ok, notes
    db_ok, db_note = _db_writer_in_dr(ctx, clients, step)
    notes.append(db_note)
    notes.append("HTTP check skipped: no drHealthUrl in the runbook context")
    return asg_ok and db_ok, notes


def _poll_serving(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], side: Side
) -> tuple[bool, list[str]]:
    """``_verify_once`` for ``side``; with ``wait``, polled until it holds or the budget ends.

    The condition spans HTTP and several APIs, which no boto3 waiter covers: it is polled with the
    same Delay/MaxAttempts budget the waiters get, and running out raises a retryable StepFailed.
    """
    ok, notes = _verify_once(ctx, clients, params, side)
    if ok or not _wait(params):
        return ok, notes
    config = _waiter_config(params)
    for _ in range(max(0, int(config["MaxAttempts"]) - 1)):
        clients.clock.sleep(float(config["Delay"]))
        ok, notes = _verify_once(ctx, clients, params, side)
        if ok:
            return ok, notes
    step, what = (
        ("verify", "region B not serving")
        if side == "dr"
        else (
            "verify_primary",
            "region A not serving as the writer",
        )
    )
    raise StepFailed(
        step,
        f"{what} after {config['MaxAttempts']} checks: {'; '.join(notes)}",
        retryable=True,
        code="VerifyTimeout",
    )


@_step
def verify(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Check region B serves: health endpoint 200 with region B as writer, web tier at capacity."""
    ok, notes = _poll_serving(ctx, clients, params, "dr")
    if not ok:
        return _in_progress("; ".join(notes))
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "active" and latch.get("notifiedAt"):
        # Verification is read-only: what makes a re-run "already done" is that an earlier run
        # got past it and told the operators (the latch is written before the switch now).
        return _already(
            "still serving (latched active since " + str(latch.get("since")) + "): " + "; ".join(notes)
        )
    return _done("; ".join(notes))


@_step
def notify(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Tell the operators (SNS in region B) what the runbook did, once per completed run."""
    runbook = str(params.get("runbook") or "failover")
    target_state = "active" if runbook == "failover" else "standby"
    latch = _read_latch(clients, ctx) or {}
    if runbook == "failback" and latch.get("state") == "standby" and latch.get("runbook") != "failback":
        # No failback set this latch to standby (clear_latch names itself): no failover was latched
        # and this run found its end state in place. Nothing happened to page anyone about.
        return _already("no failover was latched: nothing failed back, nothing to notify")
    if latch.get("state") == target_state and latch.get("runbook") == runbook and latch.get("notifiedAt"):
        return _already(f"operators already notified at {latch['notifiedAt']}")
    where = ctx.dr_region if runbook == "failover" else ctx.primary_region
    subject = f"[{ctx.app_name}/{ctx.environment}] {runbook} to {where} completed"[:100]
    lines = [
        f"{runbook} of {ctx.app_name} ({ctx.environment}) completed: {where} now serves.",
        f"Regions: A={ctx.primary_region}, B={ctx.dr_region}. Database mode: {ctx.database_mode}.",
        f"Reason: {params.get('reason') or 'not given'}",
    ]
    if params.get("summary"):
        lines += ["", str(params["summary"])]
    response = clients.sns("dr").publish(
        TopicArn=ctx.notify_topic_arn, Subject=subject, Message="\n".join(lines)
    )
    if latch.get("state") == target_state:
        # Remembering the notification in the latch is what keeps a re-run from paging twice.
        _write_latch(clients, ctx, {**latch, "runbook": runbook, "notifiedAt": _now(clients)})
    return _done(f"published to {ctx.notify_topic_arn}", messageId=response.get("MessageId"))


@_step
def verify_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Region A serves as the writer (health URL 200 from region A with ``writer: true``, web tier at
    capacity) before the switch is released: traffic never moves to a region still launching."""
    ok, notes = _poll_serving(ctx, clients, params, "primary")
    if not ok:
        return _in_progress("; ".join(notes))
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "standby" and (latch.get("runbook") != "failback" or latch.get("notifiedAt")):
        # Read-only, like verify: a re-run after a completed failback finds it already done, and so
        # does a failback when no failover was latched (no failback set the latch to standby).
        return _already("still serving: " + "; ".join(notes))
    return _done("; ".join(notes))
