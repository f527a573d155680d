"""What a stopped run does: each runbook's ``on_stop`` (``lambdas.failover.graph``).

* ``roll_back_fence`` (the failover's): a run that stopped before the writer moved gives region A
  its writes back; once the writer moved or is moving, nothing is undone.
* ``restore_dr`` (the failback's): before the write-ahead writer move, region B serves again; after
  it, the move is rolled forward, and region B serves again only when AWS refused the move and
  region B still holds the writer with nothing under way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lambdas.failover import regressions
from lambdas.failover.capacity import launch_region_a
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.failback import (
    FAILBACK_JOURNAL_KEY,
    _failback_writer_id,
    _move_writer_to_a,
    _same_instance,
    _undo_drain,
)
from lambdas.failover.fencing import journal_lost, region_a_took_the_writer_back, unfence_primary
from lambdas.failover.journal import (
    UNFENCING_MARK,
    WRITER_MOVE_MARK,
    _forget_writer_move,
    _journal,
    _promotion_requested,
    _promotion_under_way,
    _read_latch,
    _write_latch,
    _writer_moving,
    read_journal,
)
from lambdas.failover.regressions import Regression
from lambdas.failover.serving import _poll_serving
from lambdas.failover.stepkit import (
    CONNECTION_ERRORS,
    StepResult,
    _already,
    _db_instance,
    _done,
    _finished,
    _from_client_error,
    _global_members,
    _in_progress,
    _member,
    _need,
    _now,
    _step,
    _wait,
    _waiter_config,
    log_event,
)
from lambdas.failover.traffic import _switch, _switch_thrown


@_step
def roll_back_fence(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """The failover's ``on_stop``: a run that stopped on a failed step before the writer moved gives
    region A its writes back, so it leaves a safe serving state (docs/safety.md, "Every run converges").

    * The writer moved or is moving (region B's database is, or is becoming, the writer, or that
      cannot be told): nothing is undone. The latch says active, the canary keeps the switch
      thrown, traffic follows the writer, and resuming the run completes it.
    * Otherwise region A still holds the writer. In this order, so a run that dies half-way leaves
      what a stopped failover leaves (resuming completes it): the pending fence is withdrawn (a
      canary that sees region A answer must not fence it), the latch goes back to standby (the
      canary stops throwing the switch) and the switch is released. Where the fence reached region
      A (its journal stamp says so), region A's web tier is given back its capacity and, once it is
      in service, its functions and event sources (as ``unfence_primary`` does): Route 53 follows the
      load balancer, so functions serving the writer before the web tier does would be a region
      serving the writer that Route 53 cannot answer. A region A the fence never reached (it was
      unreachable: the fence was only pending) is not called at all.
    """
    step = "roll_back_fence"
    if regressions.on(Regression.STOP_KEEPS_FENCE):
        return StepResult("skipped", "stopped run left as it stopped (regression)")
    back = region_a_took_the_writer_back(ctx, clients)
    if back is not None:
        # The failover was refused for this (fencing.py ``_refuse_unprotected``), before it changed
        # anything; region B's standalone instance is not "the writer moving" but a frozen copy, and a
        # resume is refused the same way (break24 BR24-5). The dr stack's failback owns this state.
        return StepResult(
            "skipped",
            f"region A holds the writer ({back}): nothing rolled back. Finish the failback, let `pulumi up "
            "-s dr` re-seed region B, then fail over",
        )
    lost = journal_lost(ctx, clients, _read_latch(clients, ctx) or {}, step)
    if lost is not None:
        # The failover was refused for this (fencing.py ``_refuse_without_journal``, break25 BR25-4) before
        # it changed anything: not "the writer moving", which a resume would complete; resuming is refused
        # the same way.
        return StepResult(
            "skipped",
            f"nothing rolled back: the failover was refused before any change (the run journal does not exist "
            f"under the active latch and region A cannot be read: {lost}); a resume is refused the same way",
        )
    if _writer_moving(ctx, clients, retry_throttled=True):
        return StepResult(
            "skipped",
            "the writer moved or is moving to region B: nothing rolled back; the latch keeps traffic on "
            "region B and resuming the failover completes it",
        )
    journal = read_journal(clients, ctx)
    changes: list[str] = []
    if journal.get("fencePending"):
        _journal(clients, ctx, fencePending=None)
        changes.append("pending fence of region A withdrawn")
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "active":
        _write_latch(
            clients,
            ctx,
            {
                "state": "standby",
                "since": _now(clients),
                "runbook": "failover",
                "reason": "failover stopped before the writer moved: rolled back",
            },
        )
        changes.append(f"latch {ctx.latch_parameter_name} set back to standby")
    if _switch_thrown(ctx, clients):
        # Only a switch this failover (or the canary, from its latch) threw: a run that changed
        # nothing, such as a refusal at confirm_primary_down, puts nothing.
        changes.append(_switch(ctx, clients, 0, step).detail)
    if journal.get("primaryStoppedAt") or journal.get("primaryFencedMappings") or journal.get(UNFENCING_MARK):
        warmed = launch_region_a(ctx, clients, params, step)
        if warmed.status == "done":
            changes.append(warmed.detail)
        ok, notes = _poll_serving(ctx, clients, params, "primary")
        if not ok:
            return _in_progress("region A's web tier launching: " + "; ".join(notes), changes=changes)
        # Region A's web tier serves its writer again: the failover no longer holds region A. Its marks
        # go before the functions' un-fence, which may fail on its own (region A's Lambda API down while
        # its Auto Scaling API answers): left set, they would keep the canary throwing the switch to a
        # region B without the writer while region A serves it (break37 B37-2b). UNFENCING_MARK keeps
        # what is left for a resume; unfence_primary clears it once the functions are back.
        _journal(
            clients, ctx, primaryStoppedAt=None, failoverDeclaredAt=None, **{UNFENCING_MARK: _now(clients)}
        )
        undone = unfence_primary(ctx, clients, params)
        changes.append(f"region A un-fenced: {undone.detail}")
    if not changes:
        return _already("nothing to roll back: region A was not fenced and the latch says standby")
    log_event(logging.WARNING, "failover rolled back", step=step, region=ctx.primary_region, changes=changes)
    return _finished(
        params, True, "rolled back (region A holds the writer): " + "; ".join(changes), changes=changes
    )


def _writer_still_in_b(ctx: RunbookContext, clients: Clients, step: str) -> str | None:
    """What shows, from AWS state, that region B's database is the writer and region A's is not
    becoming it (None: it is not, or that cannot be shown). rds-replica: region B's instance is
    standalone and ``<primary>`` still replicates from it (or does not exist yet): a promotion of
    ``<primary>`` under way has already cut it off, and then region B must stay drained (a write it
    took would never reach region A). aurora-global: region B's cluster is the global writer; a
    switchover still pending or under way waits for the secondary itself, so no write region B
    takes meanwhile is lost.

    rds-replica with region A not answering: the run journal shows it instead, or nothing does.
    ``<primary>`` is the replica this failback created of region B's instance (``FAILBACK_JOURNAL_KEY``)
    and no run asked RDS to promote it (``PROMOTION_MARK``, written ahead of every request): then
    nothing is moving the writer to region A (B21b-9)."""
    if ctx.database_mode == "rds-replica":
        dr_id = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
        dr = _db_instance(clients, "dr", dr_id)
        if dr is None or dr.get("ReadReplicaSourceDBInstanceIdentifier"):
            return None
        primary_id = _failback_writer_id(ctx, step)
        try:
            primary = _db_instance(clients, "primary", primary_id)
        except CONNECTION_ERRORS as exc:
            record = read_journal(clients, ctx).get(FAILBACK_JOURNAL_KEY) or {}
            if (
                not isinstance(record, dict)
                or not record.get("created")
                or not _same_instance(record.get("replicaOf") or "", dr_id)
                or _promotion_requested(clients, ctx, "primary", primary_id) is not False
            ):
                return None
            return (
                f"{dr_id} in {ctx.dr_region} is the writer (region A does not answer, "
                f"{type(exc).__name__}; the run journal shows {primary_id} a replica of it that no run "
                "asked RDS to promote)"
            )
        if primary is not None and not _same_instance(
            primary.get("ReadReplicaSourceDBInstanceIdentifier") or "", dr_id
        ):
            return None
        if (
            primary is not None
            and _promotion_under_way(clients, ctx, "primary", primary)
            and not regressions.on(Regression.FAILBACK_UNDOES_MOVE)
        ):
            # Its source stays set until a promotion completes (B21-1): it is promoting. Modifying or
            # rebooting with no promotion requested, it is not (B21b-2).
            return None
        return f"{dr_id} in {ctx.dr_region} is the writer ({primary_id} in {ctx.primary_region} is not)"
    group, members = _global_members(ctx, clients, step)
    me = _member(members, _need(ctx.dr_cluster_arn, "drClusterArn", step)) or {}
    if not me.get("IsWriter"):
        return None
    state = str((group.get("FailoverState") or {}).get("Status") or "")
    if state in ("pending", "switching-over", "failing-over") and not regressions.on(
        Regression.FAILBACK_UNDOES_MOVE
    ):
        # Region B stays the writer until the switchover completes (B21b-8): it may be moving.
        return None
    return f"{ctx.dr_cluster_id} in {ctx.dr_region} is the writer of {ctx.global_cluster_id}"


def withdraw_unmoved_writer_move(ctx: RunbookContext, clients: Clients, step: str) -> str | None:
    """Drop the run journal's ``WRITER_MOVE_MARK`` when AWS shows region B still holds the writer with
    nothing moving it (:func:`_writer_still_in_b`); returns what shows it, or None when the mark stays
    (the writer moved or is moving, or that cannot be shown).

    The mark is written ahead of the request, so it says a move was asked for; once AWS refused it
    (``InvalidGlobalClusterStateFault``, ``InvalidDBClusterStateFault``:
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverGlobalCluster.html) or
    cancelled it ("cancelling ... returning to their previous states":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html), it would say a
    move happened that did not, and the dr stack takes it for proof that region A holds the Aurora
    writer (components/failover.py ``refuse_unmoved_aurora_writer``). :func:`restore_dr` withdraws it
    this way before it gives region B back, and ``python -m automation latch switch-writer`` when AWS
    refused its switchover (break24 BR24-2)."""
    writer = _writer_still_in_b(ctx, clients, step)
    if writer is not None:
        _forget_writer_move(clients, ctx)
    return writer


def _switchover_pending(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str) -> bool:
    """Whether the global cluster's ``FailoverState`` is still ``pending`` ("the ... clusters are being
    verified before the operation starts", API_FailoverState), after waiting it out when ``params``
    say wait (polling every waiter delay, within the waiter's attempts)."""
    config = _waiter_config(params)
    attempts = int(config["MaxAttempts"]) if _wait(params) else 1
    for attempt in range(attempts):
        group, _ = _global_members(ctx, clients, step)
        if str((group.get("FailoverState") or {}).get("Status") or "") != "pending":
            return False
        if attempt + 1 < attempts:
            clients.clock.sleep(float(config["Delay"]) or 5.0)
    return True


@_step
def restore_dr(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """A failback that stopped (any step failed, timed out, or a crashed run resumed and stopped).

    * Before ``switch_writer`` asked for the move (no ``WRITER_MOVE_MARK``): region B gets its serving
      capacity back while it still holds the writer. It drained region B (``scale_down_dr``) to move
      the writer, and the writer did not move.
    * After (the mark is set): the move is rolled forward, never back. Region B's lag was zero after
      its drain, so finishing the promotion or switchover loses nothing, whereas region B taking
      writes again while AWS may be moving the writer would lose them and leave two writers. Region B
      stays drained; the region-B canary moves traffic to region A once it answers as the writer, and
      resuming the failback completes it. Only when AWS refuses the move and region B still holds
      the writer with nothing under way does region B serve again. "Under way" is the runbook's
      record (``PROMOTION_MARK``), not a replica's status alone: a replica modified or rebooted for
      maintenance is not being promoted (B21b-2), and a region A that does not answer leaves region B
      serving when no promotion was requested (B21b-9), drained when one was.

    Run by both executors whenever a failback stops (``graph.FAILBACK.on_stop``); changes nothing when
    region B is not drained or no longer holds the writer."""
    step = "restore_dr"
    if regressions.on(Regression.FAILBACK_STAYS_DRAINED):
        return _already("the failback's drain is left as it is (regression)")
    refused = ""
    if read_journal(clients, ctx).get(WRITER_MOVE_MARK) and not regressions.on(
        Regression.FAILBACK_UNDOES_MOVE
    ):
        if ctx.database_mode != "rds-replica" and _switchover_pending(ctx, clients, params, step):
            # AWS verifies the clusters before it starts or cancels the switchover: which it does
            # decides between waiting for the move and giving region B back (B21b-10).
            return _in_progress(
                f"switchover of {ctx.global_cluster_id} pending: waiting for AWS to start or cancel it"
            )
        try:
            moving = _move_writer_to_a(ctx, clients, {}, step)
        except CONNECTION_ERRORS as exc:
            # Region A does not answer (rds-replica: the move promotes its replica). Whether a
            # promotion was requested is the journal's to say (``PROMOTION_MARK``, written ahead):
            # with none, region B keeps the writer and serves it (B21b-9); with one, or no way to
            # tell, region B stays drained (a write it took may never reach region A), and the canary
            # or a resumed failback finishes the move once region A answers.
            if ctx.database_mode != "rds-replica":
                raise
            writer_id = _failback_writer_id(ctx, step)
            if _promotion_requested(clients, ctx, "primary", writer_id) is not False:
                # (Retryable: a retry once region A answers finishes the move.)
                raise StepFailed(
                    step,
                    f"region A does not answer ({type(exc).__name__}) and a promotion of {writer_id} was "
                    "requested (or the run journal cannot say): region B stays drained, as a write it took "
                    "might never reach region A; resume the failback once region A answers",
                    retryable=True,
                    code=type(exc).__name__,
                ) from exc
            refused = f"; region A does not answer ({type(exc).__name__}) and no promotion of {writer_id} was requested"
        except StepFailed as exc:
            if exc.retryable:
                raise
            refused = f"; AWS refused to move the writer to region A ({exc.reason})"
        except ClientError as exc:
            failure = _from_client_error(step, exc)
            if failure.retryable:
                # Throttling is no refusal: nothing showed that no move is under way (B21b-8).
                raise failure from exc
            refused = f"; AWS refused to move the writer to region A ({failure.reason})"
        else:
            if moving.status != "in_progress" or moving.data.get("underWay"):
                # (Never in_progress: nothing polls a rollback; resuming the failback waits for it.)
                return StepResult(
                    "already_done" if moving.status == "already_done" else "done",
                    f"the writer moves to region A, requested after region B's lag was zero "
                    f"({moving.detail}); region B stays drained: resume the failback to finish it",
                    moving.data,
                )
            # Nothing moves the writer and nothing can now (region A's replica busy, AWS cancelling
            # the switchover): region B keeps it, and must serve it (B21-2, B21-4).
            refused = f"; the writer cannot move now ({moving.detail})"
    writer = withdraw_unmoved_writer_move(ctx, clients, step)
    if writer is None:
        return _already(
            f"region B does not hold the writer (or region A is becoming it): its drain stays{refused}"
        )
    undone = _undo_drain(ctx, clients, step)
    if not undone:
        return _already(f"{writer}; region B already serves{refused}")
    return _done(f"{writer}; region B serves again: {'; '.join(undone)}{refused}", changes=undone)
