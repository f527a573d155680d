"""Region A's writers: whether a failover may take region A over, fencing it, and giving it back.

* ``confirm_primary_down``: refuses, before anything changes, while region A answers healthy (unless
  forced), to promote a region B database that is not replicating (``_refuse_unprotected``), a
  ``--planned`` change region A cannot take part in (``_refuse_planned_without_region_a``), and a
  planned change over RDS for MySQL or MariaDB, which has no sound zero-lag proof
  (``_refuse_unprovable_engine``).
* ``fence_primary`` (``fence_region_a``): region A's functions at reserved concurrency 0, their event
  sources off, then its web tier at 0. A precondition when region A answers; pending until it
  answers when it does not, after ``darkness.DARK_CONFIRM_SECONDS`` of looks that found it so. ``keep_unplanned_snapshots`` keeps what an unplanned Aurora failover
  discarded.
* ``unfence_primary``: the failback gives region A its capacity, functions and event sources back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.failover import darkness, regressions
from lambdas.failover.clients import Clients
from lambdas.failover.context import Capacity, RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.journal import (
    FENCE_DARK_MARK,
    UNFENCING_MARK,
    WRITER_MOVE_MARK,
    _forget_writer_move,
    _iac_failback_phase,
    _journal,
    _journal_name,
    _promotion_requested,
    _read_journal_version,
    _read_latch,
    accounts_for_failover,
    read_journal,
)
from lambdas.failover.lossless import unprovable_engine, unprovable_engine_reason
from lambdas.failover.names import (
    FAILBACK_STAMP_TAG,
    UNPLANNED_SNAPSHOT_PREFIX,
    WRITER_BACK_PHASES,
    current_failback_id,
    failback_stamp,
    kept_snapshot_id,
    phase_record_name,
    stamped_after,
)
from lambdas.failover.regressions import Regression
from lambdas.failover.stepkit import (
    CONNECTION_ERRORS,
    StepResult,
    _already,
    _asg,
    _asg_capacity,
    _db_instance,
    _describe_failure,
    _done,
    _from_client_error,
    _in_progress,
    _need,
    _now,
    _probe,
    _require_db_instance,
    _reserved_concurrency,
    _set_asg,
    _set_mappings,
    _step,
    _wait,
    _waiter_config,
    error_code,
    log_event,
    region_a_answering,
)


@_step
def confirm_primary_down(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Refuse to fail over while region A's health endpoint answers 200, unless forced; and, forced or
    not, refuse before anything changes when region B's database is not replicating (the steps after
    this one start region B's tiers in parallel with the fence)."""
    _refuse_unprotected(ctx, clients, "confirm_primary_down")
    _refuse_planned_without_region_a(ctx, clients, params, "confirm_primary_down")
    _refuse_unprovable_engine(ctx, clients, params, "confirm_primary_down")
    if params.get("force"):
        return StepResult("skipped", f"forced by operator: {params.get('reason') or 'no reason given'}")
    if not ctx.primary_health_url:
        raise StepFailed(
            "confirm_primary_down",
            "the runbook context has no primaryHealthUrl to probe; re-run with --force to fail over anyway",
        )
    probe = _probe("confirm_primary_down", ctx.primary_health_url, params, clients)
    if probe.status == 200:
        raise StepFailed(
            "confirm_primary_down",
            f"primary answers healthy ({ctx.primary_health_url} returned 200); "
            "re-run with --force to fail over anyway",
        )
    return _done(
        f"region A health endpoint {probe.describe()}", url=ctx.primary_health_url, status=probe.status
    )


def _primary_mappings(clients: Clients, function_names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(UUID, state) of every event source mapping of region A's functions."""
    found: list[tuple[str, str]] = []
    lam = clients.lambda_("primary")
    for name in function_names:
        for page in lam.get_paginator("list_event_source_mappings").paginate(FunctionName=name):
            found += [(str(m["UUID"]), str(m.get("State", ""))) for m in page.get("EventSourceMappings", [])]
    return found


def _refuse_unprotected(ctx: RunbookContext, clients: Clients, step: str) -> None:
    """Refuse, before anything changes, to fail over to a database that is not replicating.

    With the latch in standby region A is meant to be the writer, so region B's RDS instance must
    be its replica. A standalone instance there (left by a failback that did not re-create the
    replica) holds a frozen copy: "promoting" it would serve stale data and lose every write since.
    """
    if ctx.database_mode != "rds-replica" or regressions.on(Regression.PROMOTE_UNPROTECTED):
        return
    moved = _writer_moved_back(ctx, clients)
    if moved is not None:
        # Whatever the latch says (active, set to standby by hand, deleted, garbled) and whatever the
        # dr stack's record says (an update can promote region A's replica and fail before its record).
        raise StepFailed(step, moved_back_refusal(ctx, moved), code="NotReplicating")
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "active":
        # A failover already latched: region B is (becoming) the writer, resume it; unless the dr
        # stack's failback has since moved the writer back to region A under this latch, or nothing in
        # region B can say that no failback did (the run journal lost, region A dark).
        _refuse_after_iac_writer_move(ctx, clients, latch, step)
        _refuse_without_journal(ctx, clients, latch, step)
        return
    if read_journal(clients, ctx).get("primaryStoppedAt"):
        # Region A was fenced by a failover and never unfenced by a failback: region B's standalone
        # instance is the writer (the latch was lost or tampered with), not a frozen copy.
        return
    ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
    instance = _require_db_instance(clients, "dr", ident, step)
    if not instance.get("ReadReplicaSourceDBInstanceIdentifier"):
        raise StepFailed(
            step,
            f"{ident} in {ctx.dr_region} is not replicating from the writer (it is a standalone instance "
            "while the latch says standby): promoting it would serve a frozen copy. Re-seed it, then fail "
            "over: `pulumi up -s dr` with dr:active false creates a new read replica of region A's writer "
            '(README, "Protected again"). Nothing was changed',
            code="NotReplicating",
        )


def _refuse_without_journal(
    ctx: RunbookContext, clients: Clients, latch: Mapping[str, Any], step: str
) -> None:
    """Refuse, before anything changes, a failover that :func:`journal_lost` says cannot tell a resume from
    a failback's move (break25 BR25-4)."""
    unread = journal_lost(ctx, clients, latch, step)
    if unread is not None:
        reason, remedy = journal_missing_refusal(ctx, unread)
        raise StepFailed(step, f"{reason}. Nothing was changed. {remedy}", code="JournalMissing")


def journal_lost(ctx: RunbookContext, clients: Clients, latch: Mapping[str, Any], step: str) -> str | None:
    """Why region A could not be read, when the latch is active, the run journal does not exist or holds no
    record of this failover (:func:`journal.accounts_for_failover`: reset to ``{}``, or a latch set active
    by hand: break28 B28-1, B28-2) and region B's instance is standalone; None otherwise (and for
    aurora-global). Read-only.

    rds-replica. No run leaves an active latch without the journal: the failover writes its fence marks
    (``primaryStoppedAt``, or ``fencePending`` when region A does not answer) in ``fence_primary``, which
    ``write_latch`` needs (graph.py), and ``latch activate`` writes ``failoverDeclaredAt``
    (``journal.declare_failover_hold``) before the latch; nothing in the product deletes it. A journal
    deleted since (DeleteParameter removes the parameter with its history:
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html) takes the
    runbook failback's writer-move mark with it, and with region A dark :func:`_writer_moved_back` has
    nothing else to read: a standalone region B instance may be this failover's promotion, or a copy frozen
    at a failback's move of the writer back to region A, and resuming would serve it. The journal is read
    for its existence, not its content: ``ParameterNotFound`` reads as version 0
    (``journal._read_journal_version``; versions start at 1: API_PutParameter.html), and a garbled value
    exists (its last readable version is read). Region B still a replica: promoting it loses nothing.
    Region A answers: AWS's word decides (:func:`_writer_moved_back`: the failback instance, the runbook
    failback's stamp tag). Throttling is raised (retryable): the executor asks again (break24b BR24b-2).
    """
    if ctx.database_mode != "rds-replica" or latch.get("state") != "active":
        return None
    journal, version = _read_journal_version(clients, ctx)
    if version > 0 and accounts_for_failover(journal):
        return None
    try:
        dr = _db_instance(clients, "dr", _need(ctx.dr_db_instance_id, "drDbInstanceId", step))
    except ClientError as exc:
        if _from_client_error("", exc).retryable:
            raise
        dr = {}  # cannot tell whether it replicates: the safe side
    if dr is None or dr.get("ReadReplicaSourceDBInstanceIdentifier"):
        return None
    try:
        _db_instance(clients, "primary", _need(ctx.primary_db_instance_id, "primaryDbInstanceId", step))
    except ClientError as exc:
        if _from_client_error("", exc).retryable:
            raise
        return error_code(exc)
    except BotoCoreError as exc:
        return type(exc).__name__
    return None


def journal_missing_refusal(ctx: RunbookContext, unread: str) -> tuple[str, str]:
    """(reason, remedy) of the refusal for a lost journal (:func:`journal_lost`; ``unread``: why region A
    could not be read), as the run, the dry run and ``status`` say it."""
    journal = _journal_name(ctx)
    reason = (
        f"the latch says active but the run journal {journal} ({ctx.dr_region}) is missing or holds no record "
        "of a failover (no fence or hold mark, no failback's writer move), "
        f"{ctx.dr_db_instance_id} in {ctx.dr_region} is standalone and region A cannot be read ({unread}): no "
        "run leaves that state (a failover writes its marks before the latch, `latch activate` its hold), "
        "so nothing says whether this failover made it the writer or a failback has since moved the writer "
        "back to region A, leaving it a copy frozen at that move, which promoting would serve, losing every "
        "write region A took since"
    )
    remedy = (
        "Run the failover again once region A answers (AWS then says where the writer is, as `python -m "
        "automation status` does). If you know that no failback moved the writer since this failover, put the "
        f"journal back with the failover's hold, then run it again: aws ssm put-parameter --region {ctx.dr_region} "
        f"""--name {journal} --type String --value '{{"failoverDeclaredAt": "<UTC now>"}}'"""
    )
    return reason, remedy


def _writer_moved_back(ctx: RunbookContext, clients: Clients, *, runbook_failback: bool = True) -> str | None:
    """AWS's evidence that a failback moved the writer back to region A, or None.

    rds-replica. Region B's instance is standalone and so is region A's IaC failback instance of region
    B's *current* generation (:func:`names.current_failback_id`): that instance was created as a
    cross-region replica of region B's instance, and only a promotion makes it standalone ("A promoted
    read replica ... can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html), so it was
    promoted after region B's and region A holds the writer: region B's instance is a copy frozen at that
    promotion (the evidence ``observe._rds_writer`` reads for ``status``). Read-only; None when either
    instance is a replica or missing, or when region A's API cannot be read (the run goes on as before:
    fencing is best effort only when region A is unreachable, and the dr stack's record still binds).

    ``runbook_failback``: also the runbook's own failback (break24b BR24b-4), whose replica takes region
    A's declared name (rename to replace): its writer-move mark in region B's journal (written before it
    asks AWS to promote, withdrawn only when AWS refused the move) with region A's declared writer
    standalone, or with region A unreadable (break24c BR24c-3: fail safe, as the dr stack's record does).
    A standalone declared writer alone proves nothing (restored or re-created by hand: break24c BR24c-2).
    Not for the runbook's failback itself, whose resume after its own writer move must finish.
    """
    if not (ctx.primary_db_instance_id and ctx.dr_db_instance_id):
        return None
    # The outputs may already name it region A's writer (``pulumi up -s primary`` after switch-writer).
    failback = current_failback_id(ctx.primary_db_instance_id, ctx.dr_db_instance_id)
    # The runbook's failback writes its writer-move mark in region B's journal before it promotes region
    # A's replica, and withdraws it only when AWS refused the move (on_stop ``restore_dr``).
    mark = read_journal(clients, ctx).get(WRITER_MOVE_MARK) if runbook_failback else None
    try:
        dr = _db_instance(clients, "dr", ctx.dr_db_instance_id)
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and _from_client_error("", exc).retryable:
            raise
        if mark:
            # Region B's own instance cannot be read (AccessDenied, ...): the mark still binds (break25
            # BR25-7), before anything changes.
            return (
                f"the runbook's failback asked to move the writer to {ctx.primary_db_instance_id} at {mark} "
                f"(the run journal, {ctx.dr_region}) and {ctx.dr_db_instance_id} cannot be read ({type(exc).__name__})"
            )
        return None
    if dr is None or dr.get("ReadReplicaSourceDBInstanceIdentifier"):
        return None
    try:
        promoted = _db_instance(clients, "primary", failback)
        declared = (
            _db_instance(clients, "primary", ctx.primary_db_instance_id)
            if runbook_failback and failback != ctx.primary_db_instance_id
            else None
        )
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and _from_client_error("", exc).retryable:
            # Region A answers, throttled: cannot tell yet; the executor tries again (break24b BR24b-2).
            raise
        if mark and _promotion_requested(clients, ctx, "primary", ctx.primary_db_instance_id) is not False:
            # Region A cannot be read, but region B's journal says the runbook's failback asked for the
            # writer move (break24c BR24c-3): fail safe, as the dr stack's record does. Unless the same
            # journal says no promotion of region A's replica was ever asked of RDS (PROMOTION_MARK is
            # written before PromoteReadReplica): region B still holds the writer, as the failback's own
            # restore_dr reads it (break25 BR25-6).
            return (
                f"the runbook's failback asked to move the writer to {ctx.primary_db_instance_id} at {mark} "
                f"(the run journal, {ctx.dr_region}) and region A cannot be read ({type(exc).__name__})"
            )
        log_event(
            logging.WARNING, "could not read the IaC failback instance", failback=failback, error=repr(exc)
        )
        return None
    if promoted is not None and not promoted.get("ReadReplicaSourceDBInstanceIdentifier"):
        return f"{failback} in {ctx.primary_region} (created as a replica of {ctx.dr_db_instance_id}) is standalone"
    if declared is None or declared.get("ReadReplicaSourceDBInstanceIdentifier"):
        return None
    if mark:
        # The mark and a standalone declared writer: the failback's replica (rename to replace) promoted.
        # A standalone writer alone proves nothing (re-created, restored: break24c BR24c-2).
        return (
            f"{ctx.primary_db_instance_id} in {ctx.primary_region} is standalone and the runbook's failback "
            f"asked to move the writer there at {mark} (the run journal)"
        )
    stamp = failback_stamp(declared)
    if stamped_after(stamp, dr.get("InstanceCreateTime")):
        # Without the mark (a deleted journal, a mark withdrawn by hand or by `latch activate`: break25
        # BR25-1, BR25-4), AWS still says it: the failback's stamp tag (names.stamped_after).
        return (
            f"{ctx.primary_db_instance_id} in {ctx.primary_region} is standalone and was created by the runbook's "
            f"failback as a replica of {ctx.dr_db_instance_id} (its {FAILBACK_STAMP_TAG} tag: {stamp})"
        )
    return None


def moved_back_refusal(ctx: RunbookContext, evidence: str) -> str:
    return (
        f"region A holds the writer: {evidence}, so a failback promoted it after "
        f"{ctx.dr_db_instance_id} in {ctx.dr_region}, which is a standalone copy frozen at that promotion; "
        "promoting it would lose every write region A took since. Nothing was changed. Finish the failback "
        "that moved it (the dr stack's: dr:failback switch-writer, route-back, then complete, with `python -m "
        "automation latch release` before route-back; the runbook's: `python -m automation failback` resumes "
        "it), let `pulumi up -s dr` re-seed region B, then fail over"
    )


def region_a_took_the_writer_back(ctx: RunbookContext, clients: Clients) -> str | None:
    """Why region A holds the writer the dr stack's failback moved back (AWS's evidence, or the dr
    stack's record under the active latch), or None. For the failover's ``on_stop``: a failover refused
    for this changed nothing, and resuming it is refused the same way."""
    if ctx.database_mode != "rds-replica":
        return None
    moved = _writer_moved_back(ctx, clients)
    if moved is not None:
        return moved
    try:
        phase = _iac_failback_phase(ctx, clients, _read_latch(clients, ctx) or {})
    except (ClientError, BotoCoreError):
        return None  # cannot tell: the on_stop reads AWS's state as before
    if phase in WRITER_BACK_PHASES:
        record = phase_record_name(ctx.latch_parameter_name)
        return f"the dr stack's failback applied {phase!r} under this latch ({record})"
    return None


def _refuse_after_iac_writer_move(
    ctx: RunbookContext, clients: Clients, latch: Mapping[str, Any], step: str
) -> None:
    """Refuse a failover under an active latch once the IaC failback moved the writer to region A.

    rds-replica. The dr stack's ``dr:failback switch-writer`` update promotes region A's replica
    (README "Failing back"), and the latch stays active until ``latch release``. From then on region
    B's instance is a standalone copy frozen at the switch ("A promoted read replica ... can't be made
    a read replica again": https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html),
    not the writer: a failover that "promoted" it would serve it and lose every write region A took
    since. The dr stack records the phase it applied, and the latch's ``since`` it applied it under, in
    region B (:func:`names.phase_record_name`); a record of another failover (another ``since``) says
    nothing about this one. A record that is not the program's JSON fails safe, as the program reads
    it (components/failover.py ``PhaseRecord.parse``): the writer moved.
    """
    if ctx.database_mode != "rds-replica":
        return  # Aurora: the switchover leaves region B's cluster a replicating secondary
    phase = _iac_failback_phase(ctx, clients, latch)
    if phase not in WRITER_BACK_PHASES:
        return
    name = phase_record_name(ctx.latch_parameter_name)
    ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
    raise StepFailed(
        step,
        f"region A holds the writer: the dr stack's failback applied {phase!r} under this latch (since "
        f"{latch.get('since')}; {name}), so {ident} in {ctx.dr_region} is a standalone copy frozen at that "
        "switch and promoting it would lose every write region A took since. Nothing was changed. Finish "
        "the failback (dr:failback route-back, then complete; `python -m automation latch release`), let "
        "`pulumi up -s dr` re-seed region B, then fail over",
        code="NotReplicating",
    )


PLANNED_NEEDS_REGION_A = (
    "--planned (planned: true) asks for a lossless writer move, which needs region A: {how}. Nothing "
    "was changed. To fail over now, accepting the loss of what region A had not replicated (the run "
    "reports an upper estimate), run the failover again without --planned (add --force if region A's "
    "health endpoint answers); or wait until region A answers and run --planned again"
)
"""The refusal of a planned change region A cannot take part in ({how}: why this database needs it)."""


def _planned_how(ctx: RunbookContext) -> str:
    if ctx.database_mode == "aurora-global":
        # "Switchover ... All of the secondary clusters and the primary cluster must be in the
        # available state": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html
        return "an Aurora switchover needs every member of the global database available"
    return "the promotion waits for region A's writers to be fenced and for zero lag after their drain"


def _refuse_planned_without_region_a(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str
) -> None:
    """Refuse ``planned``, before anything changes, when region A's database does not answer.

    One read-only describe of region A's database (its cluster, or its instance). Without this the
    run would scale region B, write the latch and try the fence before failing at the switchover
    (Aurora), or promote unplanned, losing the unreplicated tail the operator asked not to lose (RDS).
    """
    if not params.get("planned"):
        return
    rds = clients.rds("primary")
    try:
        if ctx.database_mode == "aurora-global":
            ident = _need(ctx.primary_cluster_id, "primaryClusterId", step)
            rds.describe_db_clusters(DBClusterIdentifier=ident)
        else:
            rds.describe_db_instances(
                DBInstanceIdentifier=_need(ctx.primary_db_instance_id, "primaryDbInstanceId", step)
            )
    except CONNECTION_ERRORS as exc:
        raise StepFailed(
            step,
            f"region A ({ctx.primary_region}) does not answer ({type(exc).__name__}): "
            + PLANNED_NEEDS_REGION_A.format(how=_planned_how(ctx)),
            code="PlannedNeedsRegionA",
        ) from exc


def _refuse_unprovable_engine(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str
) -> None:
    """Refuse, before anything changes, a planned failover over an RDS replica that has no sound zero-lag
    proof (``lossless.UNPROVABLE_ENGINES``: RDS for MySQL and MariaDB, which the program does not make;
    outputs edited by hand or a database made outside it). Planned: ``planned``, or region A's database
    answers (the fence then reaches region A and the promotion waits for the proof, forced or not:
    ``promotion.promote_database``). A region A that does not answer (connection errors) makes the
    failover unplanned: it waits for no proof, and goes on. ``allowDataLoss`` (promote without the proof,
    the operator's explicit choice) goes on too. One describe in region B, one in region A."""
    if ctx.database_mode != "rds-replica" or params.get("allowDataLoss"):
        return
    ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
    replica = _db_instance(clients, "dr", ident)
    if (
        replica is None
        or not unprovable_engine(replica.get("Engine"))
        or not replica.get("ReadReplicaSourceDBInstanceIdentifier")  # promoted already: nothing to prove
    ):
        return
    if params.get("planned"):
        why = "--planned (planned: true) asks for a lossless writer move"
    else:
        try:
            clients.rds("primary").describe_db_instances(
                DBInstanceIdentifier=_need(ctx.primary_db_instance_id, "primaryDbInstanceId", step)
            )
        except CONNECTION_ERRORS:
            return  # region A does not answer: unplanned, no proof is waited for
        except ClientError:
            pass  # region A answers (whatever it says): the fence would reach it
        why = f"region A ({ctx.primary_region}) answers, so the failover is planned: the writer moves only on that proof"
    raise StepFailed(
        step,
        f"{unprovable_engine_reason(ident, ctx.dr_region, replica.get('Engine'))}; {why}. Nothing was changed. "
        "Fail over when region A does not answer (unplanned: what it had not replicated may be lost), or start "
        "the failover state machine with allowDataLoss to promote without the proof",
        code="UnprovableEngine",
    )


def fence_region_a(
    ctx: RunbookContext, clients: Clients, step: str, *, before_promotion: bool = True
) -> list[str]:
    """Stop region A's writers: functions at 0, their event sources off, then web tier to min/desired 0.

    Returns what changed (empty: region A was already fenced). AWS errors propagate: the caller
    decides what an unreachable region A means (see ``fence_primary``). A web tier the fence cannot
    stop (``web_tier_cannot_stop``): ``before_promotion``, refused before any change (the failover
    stops, region A keeps its writer); otherwise (the canary's pending fence, region B may already be
    the writer) everything else is fenced first and then the step fails, so region A's functions and
    event sources never keep serving beside region B's writer for want of its instances (break33 B33-1).
    """
    actions: list[str] = []
    group = _asg(clients, "primary", ctx.primary_asg_name, step)
    if before_promotion:
        _require_web_tier_can_stop(group, step)
    before = _asg_capacity(group)
    concurrency = {
        name: _reserved_concurrency(clients, "primary", name) for name in ctx.primary_function_names
    }
    mappings = _primary_mappings(clients, ctx.primary_function_names)
    journal = read_journal(clients, ctx)
    needed = (
        before.min != 0
        or before.desired != 0
        or any(c != 0 for c in concurrency.values())
        or any(state not in ("Disabled", "Disabling") for _, state in mappings)
    )
    if needed or not journal.get("primaryStoppedAt"):
        # Stamped before the change (a crash after it must not leave an older stamp): a planned
        # promotion waits for the drain and the lag measured after this instant.
        _journal(clients, ctx, primaryStoppedAt=_now(clients))
    web_first = regressions.on(Regression.FENCE_WEB_TIER_FIRST)
    if web_first:
        _fence_web_tier(ctx, clients, before, actions)
    for name in ctx.primary_function_names:
        if concurrency[name] != 0:
            # Reserved concurrency 0 throttles every new invocation, synchronous or from an event
            # source: https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
            clients.lambda_("primary").put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=0
            )
            actions.append(f"function {name} -> reserved concurrency 0")
    enabled = [uuid for uuid, state in mappings if state not in ("Disabled", "Disabling")]
    if enabled:
        # Journalled before the change, so the failback turns back on exactly what the fence
        # turned off (a mapping the operator had disabled stays disabled).
        fenced = sorted({*journal.get("primaryFencedMappings", []), *enabled})
        _journal(clients, ctx, primaryFencedMappings=fenced)
    for uuid in enabled:
        # Disabled, the mapping stops polling its source: queued messages stay for region B.
        clients.lambda_("primary").update_event_source_mapping(UUID=uuid, Enabled=False)
        actions.append(f"mapping {uuid} -> Disabled")
    if not web_first:
        # The web tier last: Route 53 follows region A's load balancer, so while the web tier
        # serves, traffic still goes to region A. A fence that stops half-way (a process death, a
        # refusal) leaves region A serving its writer with Route 53 answering it, or serving
        # nothing; never functions serving the writer behind a Route 53 that answers region B.
        _fence_web_tier(ctx, clients, before, actions)
    if not before_promotion:
        why = web_tier_cannot_stop(group)
        if why is not None:
            done = "; ".join(actions) or "nothing left to change"
            raise StepFailed(
                step,
                f"{why}. Region A's functions and event sources are fenced ({done}); its web tier keeps serving "
                "region A's old writer until its instances stop: stop them by hand now",
                retryable=True,
                code="WebTierCannotStop",
            )
    return actions


def web_tier_cannot_stop(group: Mapping[str, Any]) -> str | None:
    """Why scaling the group (a DescribeAutoScalingGroups entry) to 0 would leave instances serving, or
    None: its ``Terminate`` process suspended with instances in it (the group then "does not remove
    instances" when its desired capacity falls:
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-suspend-resume-processes.html), or instances
    protected from scale in ("the Auto Scaling group can't terminate the required number of instances
    until their instance scale-in protection settings are disabled":
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html).
    Instances already leaving (``Terminating*``) or out of the load balancer (``Standby``) do not count."""
    name = group["AutoScalingGroupName"]
    staying = [
        i
        for i in group.get("Instances") or []
        if not str(i["LifecycleState"]).startswith(("Terminating", "Terminated", "Standby"))
    ]
    suspended = {str(p["ProcessName"]) for p in group.get("SuspendedProcesses") or []}
    if "Terminate" in suspended and staying:
        return (
            f"region A's web tier {name} has its Terminate process suspended: scaled to 0, its "
            f"{len(staying)} instance(s) stay in service. Resume it (aws autoscaling resume-processes "
            f"--auto-scaling-group-name {name} --scaling-processes Terminate) or stop the instances"
        )
    protected = sorted(str(i["InstanceId"]) for i in staying if i.get("ProtectedFromScaleIn"))
    if protected:
        return (
            f"region A's web tier {name} has instance(s) {', '.join(protected)} protected from scale in: scaled "
            f"to 0, they stay in service. Remove the protection (aws autoscaling set-instance-protection "
            f"--auto-scaling-group-name {name} --no-protected-from-scale-in --instance-ids ...) or stop them"
        )
    return None


def _require_web_tier_can_stop(group: Mapping[str, Any], step: str) -> None:
    """Before the fence changes anything: a web tier the fence cannot stop is a fence that fails against
    a live region A (break32 B32-6: Terminate suspended, the web tier kept serving region A's writer
    beside the promoted region B)."""
    why = web_tier_cannot_stop(group)
    if why is not None:
        raise StepFailed(
            step, f"{why}, then run the failover again", retryable=False, code="WebTierCannotStop"
        )


def _fence_web_tier(ctx: RunbookContext, clients: Clients, before: Capacity, actions: list[str]) -> None:
    if before.min != 0 or before.desired != 0:
        # MaxSize stays: unfence_primary restores the full capacity from the context anyway. The
        # load balancer drains the instances for its deregistration delay; writes they have in
        # flight still commit, which is why promotion waits for the lag measured afterwards.
        clients.autoscaling("primary").update_auto_scaling_group(
            AutoScalingGroupName=ctx.primary_asg_name, MinSize=0, DesiredCapacity=0
        )
        actions.append(
            f"ASG {ctx.primary_asg_name} {before.min}/{before.desired}/{before.max} -> 0/0/{before.max}"
        )


def keep_unplanned_snapshots(ctx: RunbookContext, clients: Clients) -> list[str]:
    """Copy Aurora's ``rds:unplanned-global-failover-*`` snapshots of region A's old primary to manual
    snapshots; returns the kept copies' identifiers (already kept ones included).

    After a managed failover with data loss Aurora *attempts* that snapshot before rebuilding the old
    primary; it holds the writes the failover discarded, and as an automated snapshot it expires with
    the backup retention. A manual copy stays until someone deletes it
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html,
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-copy-snapshot.html).
    """
    if ctx.database_mode != "aurora-global" or not ctx.primary_cluster_id:
        return []
    if regressions.on(Regression.UNPLANNED_SNAPSHOT_NOT_KEPT):
        return []
    rds = clients.rds("primary")

    def snapshots(kind: str) -> list[dict[str, Any]]:
        return list(
            rds.describe_db_cluster_snapshots(DBClusterIdentifier=ctx.primary_cluster_id, SnapshotType=kind)[
                "DBClusterSnapshots"
            ]
        )

    sources = [
        str(s["DBClusterSnapshotIdentifier"])
        for s in snapshots("automated")
        if str(s["DBClusterSnapshotIdentifier"]).startswith(UNPLANNED_SNAPSHOT_PREFIX)
    ]
    if not sources:
        return []
    kept = {str(s["DBClusterSnapshotIdentifier"]) for s in snapshots("manual")}
    out: list[str] = []
    for source in sources:
        target = kept_snapshot_id(source)
        if target not in kept:
            # Same region, same key: the copy stays encrypted under the source's key.
            rds.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=source,
                TargetDBClusterSnapshotIdentifier=target,
                CopyTags=True,
            )
            log_event(logging.WARNING, "kept the unplanned-failover snapshot", source=source, copy=target)
        out.append(target)
    return out


@_step
def fence_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Stop region A's writers before region B's database is promoted: a precondition, not a wish.

    * Region A answers: the fence must succeed. Any refusal (AccessDenied, an SCP, throttling that
      outlasts botocore's retries) stops the run here, before promotion, with the reason: a region
      A that still serves would be a second writer.
    * Region A does not answer (a fence call fails to connect, and so does every endpoint
      ``region_a_answering`` looks at, at every look for ``darkness.DARK_CONFIRM_SECONDS``: the step
      looks again meanwhile, blocking in process and answering ``in_progress`` to the state machine,
      the window kept in the journal, ``FENCE_DARK_MARK``; break33 B33-3): the failover goes on with a
      warning, since a region that cannot be reached takes no requests either. A call that fails to connect while another of
      region A's endpoints answers is a fence that failed against a live region A: it stops the run
      (retryable), as a refusal does (break32 B32-1). The warning's data says
      ``fencePending``, and so does the run journal: the region-B canary, which probes region A
      every minute, calls this step again with ``onlyIfPending`` as soon as region A answers
      healthy while the latch is active, and the fence completes then (as it does when the
      failover is run again).
    * ``onlyIfPending`` (the canary's call): fence only if the journal says a fence is pending;
      otherwise change nothing. A failback clears the pending mark first (``confirm_primary_healthy``),
      so the canary never fences a region A a failback is giving writes back to.
    * ``beforePromotion`` with ``onlyIfPending`` (``promote_database`` completing a pending fence
      before the writer moves, break35 B35-2): region B is not the writer yet, so a fence that cannot
      stop region A's web tier refuses before any change, as a failover's first fence does.
    """
    step = "fence_primary"
    before_promotion = not params.get("onlyIfPending") or bool(params.get("beforePromotion"))
    if params.get("onlyIfPending"):
        pending = read_journal(clients, ctx).get("fencePending")
        if not pending:
            return _already("no fence of region A pending")
    else:
        _refuse_unprotected(ctx, clients, step)
        # A new failover: no earlier failback's writer move speaks for region A any more (the
        # canary would otherwise put traffic back on region A while this run fences it). An earlier
        # run's looks at a dark region A or database count only while they are recent
        # (``darkness.DARK_LOOK_GAP_SECONDS``): a resumed run continues its window, a later one starts anew.
        _forget_writer_move(clients, ctx)
    actions: list[str] = []
    while True:
        try:
            actions = fence_region_a(ctx, clients, step, before_promotion=before_promotion)
            break
        except CONNECTION_ERRORS as exc:
            reason = f"{type(exc).__name__}: {exc}"
            answering = region_a_answering(ctx, clients)
            if answering is not None:
                # One endpoint failed to connect (a blip, or one service's control plane down) while
                # region A answers: its web tier may still serve its writer, so the fence is not best
                # effort and the change is not unplanned (break32 B32-1). Retried; a fence that keeps
                # failing stops the run before promotion, as a refused one does.
                darkness.forget(clients, ctx, FENCE_DARK_MARK)
                raise StepFailed(
                    step,
                    f"region A answers ({answering} API) but the fence could not reach it: {reason}. Nothing was "
                    "promoted: a region A that still serves would be a second writer. Run the failover again once "
                    "region A's endpoints answer, or fence it by hand",
                    retryable=True,
                    code="RegionAPartlyUnreachable",
                ) from exc
            if not params.get("onlyIfPending") and not read_journal(clients, ctx).get("fencePending"):
                # Region A is unreachable only after every look for DARK_CONFIRM_SECONDS found it so: a
                # blip of connection errors on every region-A endpoint (the runbook's own network, a
                # laptop's Wi-Fi) would otherwise leave the fence pending and make a lossless change
                # lossy (break33 B33-3). A fence already pending needs no such wait (the canary's, asked
                # again next minute; a resumed or re-run failover's, whose verdict stands: nothing has
                # reached region A since, or its fence would have completed and cleared the mark).
                window = darkness.look(
                    clients, ctx, FENCE_DARK_MARK, True, darkness.fence_confirm_seconds(params)
                )
                if not window.confirmed:
                    log_event(
                        logging.WARNING, "region A not answering: confirming before the fence is left pending",
                        step=step, region=ctx.primary_region, reason=reason, seconds=round(window.seconds),
                    )  # fmt: skip
                    if not _wait(params):
                        return _in_progress(
                            f"region A has not answered for {window.seconds:.0f} s ({reason}): looking again until "
                            f"{window.needed:.0f} s of looks agree before its fence is left pending",
                            region=ctx.primary_region,
                            darkSeconds=round(window.seconds),
                        )
                    clients.clock.sleep(
                        min(float(_waiter_config(params)["Delay"]) or 15.0, window.remaining() or 1.0)
                    )
                    continue
            log_event(
                logging.WARNING,
                "region A unreachable: fence pending until it answers",
                step=step,
                region=ctx.primary_region,
                reason=reason,
            )
            if not read_journal(clients, ctx).get("fencePending"):
                _journal(clients, ctx, fencePending=_now(clients))
            return StepResult(
                "warning",
                f"region A could not be fenced: unreachable ({reason}); it is fenced when it answers again",
                {"region": ctx.primary_region, "reason": reason, "fencePending": True},
            )
        except (StepFailed, ClientError, BotoCoreError) as exc:
            reason = _describe_failure(step, exc)
            if regressions.on(Regression.FENCE_BEST_EFFORT):
                return StepResult("warning", f"region A could not be fenced: {reason}", {"reason": reason})
            retryable, code = False, type(exc).__name__
            if isinstance(exc, StepFailed):
                retryable, code = exc.retryable, exc.code or code
            elif isinstance(exc, ClientError):
                retryable, code = _from_client_error(step, exc).retryable, error_code(exc)
            if not before_promotion:
                # The canary's pending fence: the failover may have promoted region B already.
                detail = (
                    f"region A answers again but its pending fence could not complete: {reason}. Until it does, "
                    "region A may serve its old writer beside region B's: fence it by hand; the canary asks "
                    "again every minute"
                )
            else:
                detail = (
                    f"region A answers but could not be fenced: {reason}. Nothing was promoted: a region A that "
                    "still serves would be a second writer. Fix region A's permissions (or fence it by hand) "
                    "and run the failover again"
                )
            raise StepFailed(
                step,
                detail,
                retryable=retryable,
                code=code,
            ) from exc
    darkness.forget(clients, ctx, FENCE_DARK_MARK)
    if read_journal(clients, ctx).get("fencePending"):
        # Region A answers again after a failover that could not reach it: Aurora has started its
        # rebuild and the snapshot of what the failover discarded exists now; keep it.
        actions += [f"kept snapshot {k}" for k in keep_unplanned_snapshots(ctx, clients)]
        _journal(clients, ctx, fencePending=None)
    if not actions:
        return _already(
            f"region A already fenced: {ctx.primary_asg_name} at 0, "
            f"{len(ctx.primary_function_names)} function(s) at reserved concurrency 0",
            region=ctx.primary_region,
        )
    return _done("fenced region A: " + "; ".join(actions), region=ctx.primary_region, actions=actions)


@_step
def unfence_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Give region A back its web tier capacity, unthrottle its functions and turn its event sources
    back on (the program's, and any other the fence turned off)."""
    step = "unfence_primary"
    journal = read_journal(clients, ctx)
    fenced = tuple(str(u) for u in journal.get("primaryFencedMappings", []))
    changes: list[str] = _set_mappings(
        clients,
        tuple(dict.fromkeys(ctx.primary_event_source_mapping_ids + fenced)),
        enabled=True,
        side="primary",
    )
    if journal.get("primaryStoppedAt") or fenced or journal.get("failoverDeclaredAt"):
        # region A takes writes again
        _journal(clients, ctx, primaryStoppedAt=None, primaryFencedMappings=None, failoverDeclaredAt=None)
    changed_asg, before = _set_asg(clients, "primary", ctx.primary_asg_name, ctx.primary_capacity, step)
    if changed_asg:
        c = ctx.primary_capacity
        changes.append(
            f"{ctx.primary_asg_name} {before.min}/{before.desired}/{before.max} -> {c.min}/{c.desired}/{c.max}"
        )
    for name in ctx.primary_function_names:
        if _reserved_concurrency(clients, "primary", name) == 0:
            clients.lambda_("primary").delete_function_concurrency(FunctionName=name)
            changes.append(f"function {name} unthrottled")
    if journal.get(UNFENCING_MARK):
        _journal(clients, ctx, **{UNFENCING_MARK: None})  # roll_back_fence's un-fence is complete
    if not changes:
        return _already(f"region A already at capacity with {len(ctx.primary_function_names)} function(s) on")
    return _done("; ".join(changes), changes=changes)
