"""The runbook's records in SSM, region B: the latch, and the run journal beside it.

The latch (``ctx.latch_parameter_name``) says which region is active; ``pulumi up`` and the canary
read it. The run journal (``<latch>-journal``) records a run's progress so that a stopped or dead run
converges when resumed: when region A's and region B's writes stopped, a fence pending, a declared
failover's hold (``FAILOVER_MARKS``), a failback's write-ahead writer move (``WRITER_MOVE_MARK``), a
requested promotion (``PROMOTION_MARK``), when region A or its database was first seen dark (``FENCE_DARK_MARK``, ``DARK_MARK``). Two runs
may write the journal at once; ``_journal`` repairs what a concurrent put lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.failover import regressions
from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.names import phase_record_name
from lambdas.failover.regressions import Regression
from lambdas.failover.stepkit import (
    _db_instance,
    _from_client_error,
    _global_members,
    _member,
    _need,
    _now,
    error_code,
    log_event,
)


def _read_latch(clients: Clients, ctx: RunbookContext) -> dict[str, Any] | None:
    try:
        value = clients.ssm("dr").get_parameter(Name=ctx.latch_parameter_name)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        # A hand-edited latch is treated as "not in the target state": the step rewrites it.
        log_event(logging.WARNING, "latch is not JSON", parameter=ctx.latch_parameter_name, value=value)
        return {"state": value}
    return parsed if isinstance(parsed, dict) else {"state": str(parsed)}


def _write_latch(clients: Clients, ctx: RunbookContext, value: Mapping[str, Any]) -> None:
    clients.ssm("dr").put_parameter(
        Name=ctx.latch_parameter_name, Value=json.dumps(value), Type="String", Overwrite=True
    )


def _journal_name(ctx: RunbookContext) -> str:
    return f"{ctx.latch_parameter_name}-journal"


def _parse_journal(value: str) -> dict[str, Any] | None:
    """The journal's JSON object; None when the value is not one (garbled by hand, or tampered with)."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


JOURNAL_HISTORY = 20
"""How many earlier versions a run reads back to find the journal before it was garbled."""


def _read_journal_version(
    clients: Clients, ctx: RunbookContext, version: int | None = None
) -> tuple[dict[str, Any], int]:
    """The journal and its SSM version (``({}, 0)`` before the first write); ``version``: that one.

    A version is read as ``name:version`` ("To query by parameter version, use "Name": "name:version"":
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html)."""
    name = _journal_name(ctx) if version is None else f"{_journal_name(ctx)}:{version}"
    try:
        parameter = clients.ssm("dr").get_parameter(Name=name)["Parameter"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return {}, 0
        raise
    current = int(parameter.get("Version") or 0)
    journal = _parse_journal(str(parameter["Value"]))
    if journal is not None or version is not None:  # an earlier version (a concurrent write's repair)
        return journal or {}, current
    # Not a JSON object (written by hand, or tampered with). Read as empty it would fail open: a
    # failover's fence marks gone, a failback's writer move forgotten (breaklife21 BL21-4, the
    # runbook's side). SSM keeps a parameter's earlier versions (GetParameter "name:version", above):
    # the run goes on from the last readable one, and its next write puts it back on top.
    for earlier in range(current - 1, max(0, current - 1 - JOURNAL_HISTORY), -1):
        try:
            value = clients.ssm("dr").get_parameter(Name=f"{_journal_name(ctx)}:{earlier}")["Parameter"][
                "Value"
            ]
        except ClientError as exc:
            if error_code(exc) in ("ParameterNotFound", "ParameterVersionNotFound"):
                break
            raise
        journal = _parse_journal(str(value))
        if journal is not None:
            log_event(
                logging.WARNING, "run journal unreadable: read its last readable version",
                parameter=_journal_name(ctx), version=current, readable=earlier,
            )  # fmt: skip
            return journal, current
    raise StepFailed(
        "read_journal",
        f"the run journal {_journal_name(ctx)} (version {current}) is not a JSON object, nor are its "
        f"{JOURNAL_HISTORY} earlier versions: restore it (aws ssm get-parameter-history, then put-parameter "
        "--overwrite with the last JSON object) and run again; nothing was changed by this read",
        code="MalformedJournal",
    )


def read_journal(clients: Clients, ctx: RunbookContext) -> dict[str, Any]:
    """The run journal (SSM, region B, next to the latch): when writes were last stopped, per region."""
    return _read_journal_version(clients, ctx)[0]


def _merge(journal: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**journal, **changes}.items() if v is not None}


JOURNAL_REPAIRS = 5
"""How many times a journal write puts back what a concurrent writer's put lost (two writers: one)."""


def _journal(clients: Clients, ctx: RunbookContext, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into the journal (a None value removes the key); returns the new journal.

    Two runs may write the journal at once: a failover and the canary's fence that joined it
    (``lock.join_fence``). SSM's PutParameter has no condition, but it answers the version it wrote
    ("Version: The new version number of a parameter",
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html), one more
    than the version before it. A put that lands on the version this write read lost nothing. One
    that lands later overwrote the versions in between, each another writer's read-modify-write:
    what each of them changed (its version against the one before) is put back on top of the
    journal as it is now, unless this write changed the same key (it came later) or the key changed
    again since (a later write), and checked the same way. Residue: a writer that dies between such
    a put and its repair leaves the other writer's change lost.
    """
    ssm = clients.ssm("dr")
    base, read = _read_journal_version(clients, ctx)
    value = _merge(base, changes)
    for _ in range(JOURNAL_REPAIRS):
        answer = ssm.put_parameter(
            Name=_journal_name(ctx), Value=json.dumps(value, default=str), Type="String", Overwrite=True
        )
        written = int(answer.get("Version") or 0)
        if written <= read + 1 or regressions.on(Regression.JOURNAL_LAST_WRITER_WINS):
            return value
        latest, latest_version = _read_journal_version(clients, ctx)
        repaired = dict(latest)
        before = base
        for version in range(read + 1, written):
            theirs, _ = _read_journal_version(clients, ctx, version)
            for key in (set(before) | set(theirs)) - set(changes):
                if before.get(key) != theirs.get(key) and latest.get(key) == value.get(key):
                    if key in theirs:
                        repaired[key] = theirs[key]
                    else:
                        repaired.pop(key, None)
            before = theirs
        log_event(logging.WARNING, "journal written concurrently", versions=f"{read + 1}..{written - 1}")
        if repaired == latest:
            return latest
        base, read, value = latest, latest_version, repaired
    return value


UNFENCING_MARK = "primaryUnfencing"
"""Set by ``roll_back_fence`` when it clears the failover marks once region A's web tier serves again, and
cleared by ``unfence_primary`` once region A's functions and event sources are back: what a resumed
roll-back still has to give back (break37 B37-2b). Not a failover mark: the canary does not read it."""

FAILOVER_MARKS = ("fencePending", "primaryStoppedAt", "failoverDeclaredAt")
"""Journal keys a failover sets when it takes region A out and a failback clears when it gives region
A back (``confirm_primary_healthy``, ``unfence_primary``). ``failoverDeclaredAt``: a declared failover
(``python -m automation latch activate``, then ``pulumi up`` with ``dr:active true``) fences region A
where it answers (since break34 B34-1), but its old RDS primary stays a standalone writer after the
promotion and a fence left pending or undone by hand serves it again; the mark is what keeps
the canary from releasing the switch to it under a deleted, garbled or hand-set latch (B20-1, B20-2). Whatever the latch says, while one is set
a failover holds region A: the failback restores the latch from them, and the region-B canary never
releases the switch to region A (``lambdas/health_check/probe.py`` reads the same keys)."""


def declare_failover_hold(clients: Clients, ctx: RunbookContext) -> bool:
    """Set ``failoverDeclaredAt`` (a declared failover, ``python -m automation latch activate``, holds
    region A; ``latch activate`` fences it next, with the runbook's ``fence_primary``) unless it is set;
    returns whether it was set now."""
    # A new failover: no earlier failback's writer move speaks for region A any more, and region B
    # takes writes again, so no zero-lag proof of a drain before it holds.
    _forget_writer_move(clients, ctx)
    _forget_drain_proof(clients, ctx)
    if read_journal(clients, ctx).get("failoverDeclaredAt"):
        return False
    _journal(clients, ctx, failoverDeclaredAt=_now(clients))
    return True


def end_failover_hold(clients: Clients, ctx: RunbookContext) -> list[str]:
    """Clear ``FAILOVER_MARKS`` once region A is known to hold the writer (``python -m automation latch
    release`` checks it from AWS state first: the IaC failback gives region A back by its updates,
    not by ``unfence_primary``); returns the marks cleared."""
    marks = [
        m for m in (*FAILOVER_MARKS, WRITER_MOVE_MARK, DRAIN_PROOF_MARK) if read_journal(clients, ctx).get(m)
    ]
    if marks:
        _journal(clients, ctx, **dict.fromkeys(marks))
    return marks


WRITER_MOVE_MARK = "writerMoveRequestedAt"
"""Journal key a failback writes *before* it asks AWS to move the writer back to region A (write-ahead,
``switch_writer``), once region B is drained and its lag measured at zero after the drain: from then on
the failback's decision is to move the writer, and every way the run ends rolls it forward, never back.

* ``restore_dr`` (a failback that stopped) finishes the move instead of giving region B its writes
  back: a promotion or switchover AWS may already be running would otherwise cut off the writes region
  B took meanwhile (lost), and leave two writers (B10-1/B10-2). Only when AWS refuses the move and
  region B still holds the writer with nothing under way is region B undrained (and the mark dropped).
* The region-B canary, under an active latch, puts the switch to region A when the mark is set and
  every region-A target answers healthy that its database is the writer: a failback that died after
  the writer moved (a CLI process killed before ``clear_latch``) otherwise left Route 53 answering
  drained region B until someone resumed it (soak seeds 98, 112, 150, 448, 615, 734). Without the mark
  region A's word is not enough (an old RDS primary back from an outage is a standalone writer too).

Cleared when the latch goes back to standby (``clear_latch``, ``latch release``), when ``restore_dr``
leaves the writer in region B, and when a new failover starts (``fence_primary``, ``latch activate``).
``lambdas/health_check/probe.py`` reads the same key."""


def accounts_for_failover(journal: Mapping[str, Any]) -> bool:
    """Whether the run journal holds a record of the failover the active latch is for: a failover's mark
    (``FAILOVER_MARKS``) or a failback's writer move (``WRITER_MOVE_MARK``). Every run keeps one of them
    while the latch it wrote says active: ``fence_primary`` and ``latch activate`` write theirs before the
    latch; the failback writes its writer-move mark before ``unfence_primary`` clears the failover's, and
    ``clear_latch`` writes the latch standby before it clears the mark. A journal without either, deleted
    or reset to ``{}`` (break25 BR25-4, break28 B28-2) or under a latch set active by hand (B28-1), cannot
    tell a resumed failover from a failback's move of the writer (fencing.py ``journal_lost``)."""
    return any(journal.get(mark) for mark in (*FAILOVER_MARKS, WRITER_MOVE_MARK))


def _writer_move_requested(clients: Clients, ctx: RunbookContext) -> None:
    """Write ahead of a move of the writer to region A (``WRITER_MOVE_MARK``), unless written."""
    if not read_journal(clients, ctx).get(WRITER_MOVE_MARK):
        _journal(clients, ctx, **{WRITER_MOVE_MARK: _now(clients)})


def _forget_writer_move(clients: Clients, ctx: RunbookContext) -> bool:
    """Drop ``WRITER_MOVE_MARK``; returns whether it was set."""
    if not read_journal(clients, ctx).get(WRITER_MOVE_MARK):
        return False
    _journal(clients, ctx, **{WRITER_MOVE_MARK: None})
    return True


DRAIN_PROOF_MARK = "failbackDrainProven"
"""rds-replica IaC failback: ``python -m automation latch switch-writer`` writes it once it saw region B
drained and region A's failback instance at zero lag measured after that drain
(``lambdas/failover/drain_proof.py``): ``{"latchSince", "drains", "at", "instance"}``. The dr stack's
``dr:failback switch-writer`` update, which promotes that instance, is refused without it
(components/failover.py ``refuse_unproven_failback_promotion``). Withdrawn by whatever gives region B
its writes back or ends the failover: a failover (``fence_primary``, ``latch activate``) and ``latch
release`` (``end_failover_hold``)."""


def _forget_drain_proof(clients: Clients, ctx: RunbookContext) -> bool:
    """Drop ``DRAIN_PROOF_MARK``; returns whether it was set."""
    if not read_journal(clients, ctx).get(DRAIN_PROOF_MARK):
        return False
    _journal(clients, ctx, **{DRAIN_PROOF_MARK: None})
    return True


PROMOTING_STATUSES = ("modifying", "rebooting")
"""The statuses of a read replica whose promotion is under way: PromoteReadReplica modifies it, and "RDS
reboots the DB instance before making it available"
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Its
``ReadReplicaSourceDBInstanceIdentifier`` stays until the promotion completes, so in these statuses
the source is no proof that the replica still follows it. Nor are they proof of a promotion: RDS
documents both for other causes, ``modifying`` "because of a customer request to modify the DB
instance", ``rebooting`` "because of a customer request or an Amazon RDS process that requires the
rebooting of the DB instance" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html).
Only ``PROMOTION_MARK`` tells them apart (:func:`_promotion_under_way`)."""


PROMOTION_MARK = "promotionRequested"
"""Journal entry the runbook writes *before* it asks RDS to promote a read replica (PromoteReadReplica,
write-ahead, in both runbooks): ``{"instance", "region", "at"}``. A replica ``modifying`` or
``rebooting`` is promoting only after the runbook's own request (B21b-2, B21b-6): otherwise it is
being modified or rebooted at a customer's request or for maintenance, and a promotion is asked for
once it is ``available`` again. The absence of the mark is also what a stopped failback trusts when
region A does not answer (B21b-9): no promotion of region A's replica was ever requested, so region B
still holds the only writer. A run that dies between the mark and the call leaves a mark with no
request behind it: read as "a promotion may be under way", the safe side (region B stays drained),
and the next run that finds the replica ``available`` asks again. RDS records the promotion as events
too (DescribeEvents), which the emulator does not model; the journal is the runbook's own record."""


def _promotion_requested(clients: Clients, ctx: RunbookContext, side: Side, ident: str) -> bool | None:
    """Whether ``PROMOTION_MARK`` names ``ident`` in ``side``'s region; None when the journal cannot say
    (empty: every run writes its marks before any promotion; a garbled one is read as its last readable
    version, ``_read_journal_version``)."""
    journal = read_journal(clients, ctx)
    if not journal:
        return None
    mark = journal.get(PROMOTION_MARK)
    return (
        isinstance(mark, dict)
        and mark.get("instance") == ident
        and mark.get("region") == clients.region(side)
    )


def _promotion_under_way(
    clients: Clients, ctx: RunbookContext, side: Side, instance: Mapping[str, Any]
) -> bool:
    """Whether read replica ``instance`` is being promoted: in one of ``PROMOTING_STATUSES`` after the
    runbook asked for it (a journal that cannot say leaves the status its word: the safe reading)."""
    if instance.get("DBInstanceStatus") not in PROMOTING_STATUSES:
        return False
    ident = str(instance.get("DBInstanceIdentifier") or "")
    return _promotion_requested(clients, ctx, side, ident) is not False


def _request_promotion(clients: Clients, ctx: RunbookContext, side: Side, ident: str) -> None:
    """Write ``PROMOTION_MARK`` ahead of PromoteReadReplica of ``ident`` (kept when it names it already)."""
    if not _promotion_requested(clients, ctx, side, ident):
        mark = {"instance": ident, "region": clients.region(side), "at": _now(clients)}
        _journal(clients, ctx, **{PROMOTION_MARK: mark})


DARK_MARK = "primaryDarkSince"
"""Journal key: when a forced failover's lossless wait first found the source database dark, and when it
last looked (``darkness.look``; cleared by a look that finds it answering), so the confirmation spans
polls of either executor and a resumed run."""

FENCE_DARK_MARK = "fenceDarkSince"
"""Journal key: when ``fence_primary`` first found every region-A endpoint failing to connect, and when
it last looked (``darkness.look``; cleared when region A answers), so its "region A unreachable" verdict
is confirmed over ``darkness.DARK_CONFIRM_SECONDS`` across the state machine's polls."""


def _writer_moving(ctx: RunbookContext, clients: Clients, *, retry_throttled: bool = False) -> bool:
    """Whether region B's database is the writer or becoming it (True when that cannot be told).
    ``retry_throttled``: a retryable AWS error (throttling that outlasted the client's retries) is
    raised instead, for the caller's executor to try again later (``roll_back_fence``: "cannot be
    told" there means nothing is rolled back, and a stop then leaves nothing serving)."""
    try:
        if ctx.database_mode == "rds-replica":
            ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", "promote_database")
            instance = _db_instance(clients, "dr", ident) or {}
            # Promoting only in a promotion's statuses, after the runbook asked for it: a replica
            # backing up is not (B21b-5), nor one rebooted for maintenance (B21b-6).
            return not instance.get("ReadReplicaSourceDBInstanceIdentifier") or _promotion_under_way(
                clients, ctx, "dr", instance
            )
        group, members = _global_members(ctx, clients, "promote_database")
        me = _member(members, _need(ctx.dr_cluster_arn, "drClusterArn", "promote_database")) or {}
        return bool(me.get("IsWriter") or group.get("FailoverState") or group.get("Status") != "available")
    except ClientError as exc:
        if retry_throttled and _from_client_error("", exc).retryable:
            raise
        return True
    except (StepFailed, BotoCoreError):
        return True


def _iac_failback_phase(ctx: RunbookContext, clients: Clients, latch: Mapping[str, Any]) -> str | None:
    """The failback phase the dr stack's last update applied under this active latch, or None.

    The dr stack records it in region B (``names.phase_record_name``: ``{"phase", "latchSince"}``); a
    record made under another failover's latch (another ``since``) says nothing about this one, as the
    program reads it (components/failover.py ``refuse_step_back``). A value that is not the program's
    JSON fails safe the program's way (``PhaseRecord.parse``): ``switch-writer``. None under a latch
    that is not active, or when no update recorded a phase.
    """
    if latch.get("state") != "active":
        return None
    try:
        record = read_failback_record(ctx, clients)
    except UnreadableRecord:
        return "switch-writer"
    if record is None:
        return None
    phase, since = record.get("phase"), record.get("latchSince")
    return str(phase) if phase and since == latch.get("since") else None


class UnreadableRecord(ValueError):
    """The failback record's value is not a JSON object (the program writes one)."""


def read_failback_record(ctx: RunbookContext, clients: Clients) -> dict[str, Any] | None:
    """The dr stack's failback record (``names.phase_record_name``, SSM in region B) as the program wrote
    it, or None when no update wrote one; :class:`UnreadableRecord` when its value is not a JSON object.
    One reader for the runbook's two uses: the phase a failback must not cross
    (:func:`_iac_failback_phase`) and the drain ``latch switch-writer`` proves (``drain_proof``)."""
    try:
        raw = clients.ssm("dr").get_parameter(Name=phase_record_name(ctx.latch_parameter_name))["Parameter"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    try:
        value = json.loads(str(raw["Value"]))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UnreadableRecord(phase_record_name(ctx.latch_parameter_name))
    return value
