"""The rds-replica IaC failback's zero-lag proof: ``python -m automation latch switch-writer``.

The dr stack's ``dr:failback switch-writer`` update promotes region A's failback instance (removing
``replicate_source_db``: PromoteReadReplica). A promoted replica holds what had replicated when the
promotion was asked and never replicates again; AWS's procedure is to stop the writes to the source
and wait until the replica has every update first
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). A Pulumi update
cannot wait for CloudWatch datapoints, and plans against its state, which does not see what a runbook
changed out of band. So before that update this module:

1. reads the failback record the dr stack wrote (``drain`` or ``switch-writer`` under this failover's
   latch, and which drain it was: ``drains``);
2. sees region B drained in AWS (web tier 0/0/0, its functions at reserved concurrency 0, its event
   source mappings off): a failover that gave region B its capacity back after the drain (break26
   B26-3) is seen here, whatever the stack's state says;
3. waits for the drain (``lossless.DRAIN_SECONDS`` from the moment it saw region B drained, the
   conservative side of when its writes stopped) and then for zero lag of region A's failback instance
   and of the receipts' replication, from datapoints taken after it (``lossless.wait_lossless``, as the
   runbook's own failback does);
4. under the runbook lock (single flight: a failover's ``scale_web_tier`` withdraws the proof under
   it), sees region B still drained and the record unchanged, and writes ``DRAIN_PROOF_MARK`` with the
   moment of step 2 (``drainedAt``), from which the switch-writer update reads what region B did.

Run again over its own proof, it answers "already proven" only when AWS recorded nothing of region B
taking writes since that proof's drain (region_b_quiet.py: launches, invocations); region B served by hand
after it and drained again is measured anew (break30 B30-1).
   ``latch switch-writer`` holds the lock for the whole command (``automation/latch_cli.py``
   ``LatchLock``) and passes its refresh (``refresh_lock``); called alone, the proof takes it for step 4.

The program refuses the promotion without a proof for this latch and this drain (components/failover.py
``refuse_unproven_failback_promotion``). Nothing here changes region A or region B's capacity.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lambdas.failover import lock, region_b_quiet
from lambdas.failover.budget import call_seconds
from lambdas.failover.clients import DR_SETTINGS, Clients
from lambdas.failover.context import RunbookContext, function_serving
from lambdas.failover.exceptions import LockHeld, LockLost, StepFailed
from lambdas.failover.journal import (
    DRAIN_PROOF_MARK,
    UnreadableRecord,
    _journal,
    _read_latch,
    read_failback_record,
    read_journal,
)
from lambdas.failover.lossless import (
    database_lag,
    store_lags,
    unprovable_engine,
    unprovable_engine_reason,
    wait_lossless,
)
from lambdas.failover.names import current_failback_id, phase_record_name
from lambdas.failover.stepkit import (
    _asg,
    _asg_capacity,
    _db_instance,
    _now,
    _reserved_concurrency,
)

STEP = "prove_drain"

PROOF_LOCK_CALLS = 3
"""Region-B calls the proof makes after it refreshes its lease, with room to spare: the journal's read and
its PutParameter (a concurrent write's repair reads once more)."""

PROOF_LOCK_SECONDS = int(PROOF_LOCK_CALLS * call_seconds(DR_SETTINGS)) + 1
"""The lease the proof holds the runbook lock for: it outlasts :data:`PROOF_LOCK_CALLS` region-B calls at
the runbook's own client settings (``budget.call_seconds``: attempts x (connect + read timeout) plus
botocore's back-offs), so a slow but live proof never loses the lock between its refresh and its write
(lambdas/failover/budget.py: a lease must outlast the work done under it; break27 B27-3). The lease is
refreshed right before the write, which refuses when the lock is no longer the proof's."""


def _refused(reason: str, code: str) -> StepFailed:
    return StepFailed(STEP, reason, code=code)


def _record(ctx: RunbookContext, clients: Clients) -> dict[str, Any] | None:
    """The dr stack's failback record (``journal.read_failback_record``), None when no update wrote one."""
    try:
        return read_failback_record(ctx, clients)
    except UnreadableRecord:
        raise _refused(
            f"the failback record {phase_record_name(ctx.latch_parameter_name)} (SSM, {ctx.dr_region}) is "
            "not the program's JSON, so which drain this is cannot be told; run `pulumi up -s dr` with "
            "dr:failback drain to write it again",
            "UnreadableRecord",
        ) from None


def _drained_record(ctx: RunbookContext, clients: Clients, since: str | None) -> tuple[str, int]:
    """The record's phase and ``drains`` when it says ``drain`` or ``switch-writer`` under this latch; else
    refused."""
    record = _record(ctx, clients)
    phase = None if record is None else record.get("phase")
    if record is None or phase not in ("drain", "switch-writer") or record.get("latchSince") != since:
        said = (
            "no update recorded a failback phase"
            if record is None
            else f"the last update applied dr:failback {phase or '(none)'} under the latch since "
            f"{record.get('latchSince') or '(none)'}"
        )
        raise _refused(
            f"the failback record says {said}, not dr:failback drain under this failover (latch since "
            f"{since}): region B's writes have not been stopped by the failback. Run `pulumi up -s dr` with "
            'dr:failback drain first (README, "Failing back")',
            "NotDrained",
        )
    drains = record.get("drains", 0)
    return str(phase), drains if isinstance(drains, int) and not isinstance(drains, bool) else -1


def _serving(ctx: RunbookContext, clients: Clients) -> list[str]:
    """What of region B can still take writes, read from AWS (empty: drained)."""
    found: list[str] = []
    capacity = _asg_capacity(_asg(clients, "dr", ctx.dr_asg_name, STEP))
    if capacity.serving:
        found.append(f"web tier {ctx.dr_asg_name} at {capacity.min}/{capacity.desired}/{capacity.max}")
    for name in ctx.dr_function_names:
        if function_serving(_reserved_concurrency(clients, "dr", name)):
            found.append(f"function {name} not at reserved concurrency 0")
    for mapping in ctx.dr_event_source_mapping_ids:
        state = clients.lambda_("dr").get_event_source_mapping(UUID=mapping).get("State")
        if state not in ("Disabled", "Disabling"):
            found.append(f"event source mapping {mapping} {state}")
    return found


def _served_since_proof(ctx: RunbookContext, clients: Clients, proof: Mapping[str, Any]) -> list[str]:
    """What region B's web tier and functions did since ``proof``'s drain that could take writes, from
    AWS's records (region_b_quiet.py); a proof without a readable moment counts as served (measure anew)."""
    moment = region_b_quiet.proof_drained_at(proof)
    if moment is None:
        return [f"the proof names no readable drain time ({proof.get('drainedAt') or proof.get('at')})"]
    found = region_b_quiet.served_since(
        clients.autoscaling("dr"),
        clients.cloudwatch("dr"),
        [ctx.dr_asg_name] if ctx.dr_asg_name else [],
        ctx.dr_function_names,
        moment,
        clients.clock.now(),
    )
    return [s.describe() for s in found]


def _require_drained(ctx: RunbookContext, clients: Clients) -> None:
    serving = _serving(ctx, clients)
    if serving:
        raise _refused(
            f"region B is not drained: {'; '.join(serving)}. A failover may have given it its capacity back "
            "after the drain, or the drain update did not finish; the stack's state cannot show either. "
            "Re-drain it with `pulumi up --refresh -s dr` (dr:failback drain), then run this again",
            "NotDrained",
        )


def prove_drain(
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    *,
    refresh_lock: Callable[[], object] | None = None,
) -> str:
    """Write ``DRAIN_PROOF_MARK`` once region B is drained and region A's failback instance has every
    write (module docstring); returns what it saw. Raises StepFailed (nothing changed) when it cannot.

    ``refresh_lock``: the caller already holds the runbook lock; this refreshes it (raising ``LockLost``
    when it is no longer the caller's) and the proof takes no lock of its own."""
    if ctx.database_mode != "rds-replica":
        raise _refused(
            "the zero-lag proof is the rds-replica failback's (aurora-global: switchover)", "NotRdsReplica"
        )
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") != "active":
        raise _refused(
            f"the failover latch {ctx.latch_parameter_name} says {latch.get('state') or 'nothing readable'}, "
            "not active: there is no failover to fail back from",
            "NoFailover",
        )
    since = latch.get("since")
    phase, drains = _drained_record(ctx, clients, since)
    primary = ctx.primary_db_instance_id
    if not primary or not ctx.dr_db_instance_id:
        raise _refused("the outputs name no primaryDbInstanceId / drDbInstanceId", "MissingOutput")
    failback = current_failback_id(primary, ctx.dr_db_instance_id)
    proof = read_journal(clients, ctx).get(DRAIN_PROOF_MARK)
    if isinstance(proof, Mapping) and (proof.get("latchSince"), proof.get("drains")) == (since, drains):
        _require_drained(ctx, clients)
        served = _served_since_proof(ctx, clients, proof)
        if not served:
            return f"already proven at {proof.get('at')}: {failback} held every write of region B's drain {drains}"
        # Region B served after that proof's drain (by hand: break30 B30-1) and is drained again: what it
        # acknowledged since is in the replica only if a new measurement says so. Measured anew below.
    _require_drained(ctx, clients)
    seen = clients.clock.now()
    instance = _db_instance(clients, "primary", failback)
    if instance is None:
        raise _refused(
            f"region A's failback instance {failback} does not exist: run dr:failback replicate", "NoReplica"
        )
    if unprovable_engine(instance.get("Engine")):
        raise _refused(
            f"{unprovable_engine_reason(failback, ctx.primary_region, instance.get('Engine'))}. Nothing moved: "
            "region B stays drained (the dr stack's drain); give it its writes back with dr:failback replicate",
            "UnprovableEngine",
        )
    source = instance.get("ReadReplicaSourceDBInstanceIdentifier")
    if not source and phase == "switch-writer":
        # The switch-writer update already promoted it (its record is written ahead of the promotion) and
        # stopped on a later resource, e.g. under a version of the program that needed no proof (break27
        # B27-4): nothing is left to promote, so re-running the update loses no write.
        return _write_proof(
            ctx, clients, since, (phase, drains), failback, f"{failback} is already promoted", refresh_lock,
            drained_at=seen,
        )  # fmt: skip
    if not source or not (
        source == ctx.dr_db_instance_id or str(source).endswith(f":db:{ctx.dr_db_instance_id}")
    ):
        raise _refused(
            f"region A's failback instance {failback} is not a replica of {ctx.dr_db_instance_id} "
            f"(source: {source or 'none, standalone'}): its lag says nothing about region B's writes",
            "NotReplicating",
        )
    lags = [
        database_lag(
            ctx,
            "primary",
            "ReplicaLag",
            {"DBInstanceIdentifier": failback},
            instance.get("Engine"),
            step=STEP,
        ),
        *store_lags(ctx, "dr", "primary"),
    ]
    try:
        pending = wait_lossless(clients, {**params, "wait": True}, stopped_at=seen, lags=lags, step=STEP)
    except StepFailed as exc:
        raise StepFailed(
            STEP,
            f"{exc.reason}. Region B stays drained (the dr stack's drain) and nothing moved: run this again "
            "when the replica keeps up, or give region B its writes back with dr:failback replicate",
            retryable=True,
            code=exc.code,
        ) from exc
    assert pending is None  # waited
    described = ", ".join(lag.describe() for lag in lags)
    return _write_proof(
        ctx,
        clients,
        since,
        (phase, drains),
        failback,
        f"region B drained since {seen:%H:%M:%S} or earlier; {described}: 0, measured after the drain",
        refresh_lock,
        drained_at=seen,
    )


def _write_proof(
    ctx: RunbookContext,
    clients: Clients,
    since: str | None,
    record: tuple[str, int],
    failback: str,
    seen: str,
    refresh_lock: Callable[[], object] | None = None,
    *,
    drained_at: datetime,
) -> str:
    """Under the runbook lock: region B still drained, the record unchanged, the lease still the proof's;
    then ``DRAIN_PROOF_MARK``. Returns what it did. With ``refresh_lock`` the caller holds the lock.

    ``drained_at``: when region B was seen drained, the start of what the lag measurement covers; the
    switch-writer update refuses when region B served after it (``drainedAt``: region_b_quiet.py)."""
    run_id = f"prove-drain-{uuid.uuid4().hex[:12]}"
    own = refresh_lock is None
    if own:
        try:
            lock.acquire(
                clients, ctx, run_id=run_id, owner="python -m automation latch switch-writer",
                runbook="failback", ttl_seconds=PROOF_LOCK_SECONDS,
            )  # fmt: skip
        except LockHeld as exc:
            raise _refused(
                f"{exc.reason}; a run that may give region B its writes back is under way, so no proof is "
                "written",
                "LockHeld",
            ) from exc
    try:
        # Under the lock: a failover's scale_web_tier cannot run between this look and the write.
        _require_drained(ctx, clients)
        if _drained_record(ctx, clients, since) != record:
            raise _refused(
                "the failback record changed while the lag was measured: run this again", "RecordChanged"
            )
        try:
            # Still this proof's lock (a stall past the lease lets a failover take it: break27 B27-3).
            if refresh_lock is None:
                lock.refresh(clients, ctx, run_id=run_id, ttl_seconds=PROOF_LOCK_SECONDS)
            else:
                refresh_lock()
        except LockLost as exc:
            raise _refused(
                f"{exc.reason}; another run may have given region B its writes back, so no proof is written: "
                "run this again",
                "LockLost",
            ) from exc
        proof = {
            "latchSince": since,
            "drains": record[1],
            "at": _now(clients),
            "drainedAt": drained_at.astimezone(UTC).isoformat(),
            "instance": failback,
        }
        _journal(clients, ctx, **{DRAIN_PROOF_MARK: proof})
    finally:
        if own:
            lock.release(clients, ctx, run_id=run_id)
    return (
        f"{seen}; proof written ({DRAIN_PROOF_MARK}, drain {record[1]}): dr:failback switch-writer may "
        f"promote {failback}"
    )
