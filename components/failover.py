"""The failover module: ``dr:*`` flags + primary outputs + latch -> the desired DR tier. Pure Python.

``PilotLightRegion`` and ``GlobalFailover`` only apply what :func:`decide` returns, so every rule of
failover lives here and is tested directly (including property tests):

- standby: web tier 0/0/0, database a replica, functions at reserved concurrency 0 with their
  event sources disabled, Route 53 prefers region A;
- active: web tier at ``dr:capacityPercent`` of the primary's, database promoted, functions on,
  traffic to region B;
- the latch: the SSM parameter in region B that says whether region B is the active site. The
  program reads it live (an invoke) and never writes its value: the runbook and
  ``python -m automation latch`` own it. While it says active, ``dr:active false`` is refused, so a
  routine ``pulumi up`` never reverts a failover, and so are the failback phases that hand traffic
  back (``route-back``, ``complete``) until the latch is released; ``dr:active true`` is refused
  until it is activated (a declared failover moves traffic through the latch, as the runbook does);
- failback: explicit phases (``dr:failback``), each one step further back to standby;
- the primary stack during the runbook's failback: refused (:func:`refuse_primary_update`) while the
  run journal beside the latch says the failback is moving region A's writer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from components.config import FAILBACK_PHASES, DrFlags

Traffic = Literal["primary", "dr"]
Promotion = Literal["none", "iac", "runbook"]
LATCH_ACTIVE = "active"
LATCH_STANDBY = "standby"


LATCH_RELEASED_PHASES = ("route-back", "complete")
"""The failback phases that hand traffic back to region A: they run only once the latch is released."""


class FailoverRefused(ValueError):
    """The requested flags would undo a failover or skip a failback phase."""


class FailbackInProgress(FailoverRefused):
    """``pulumi up -s primary`` while the runbook's failback is moving region A's writer."""


# The run journal's entries (lambdas/failover/steps.py; SSM ``<latch>-journal`` in region B, beside
# the latch). Named here, not imported: the program does not depend on the runbook's package.
JOURNAL_FAILBACK = "failback"
"""rds-replica: written before the runbook's failback renames region A's primary, cleared by its
``clear_latch`` (steps.FAILBACK_JOURNAL_KEY)."""
JOURNAL_DR_STOPPED = "drStoppedAt"
"""When a failback stopped region B's writes (``scale_down_dr``), before the writer moves."""

Journal = Mapping[str, Any] | None
"""The run journal as the program read it: None when the parameter exists but is not a JSON object
(garbled, cut mid-write, hand-edited). Absent is ``{}``: no runbook run ever wrote it."""

JOURNAL_UNREADABLE = (
    "the run journal ({parameter}, SSM, region B) is not a JSON object, so whether a runbook run "
    "holds region A or has region B drained cannot be told"
)


def _unreadable_journal(stack: str, parameter: str, latch: Latch) -> FailbackInProgress:
    """The refusal for a journal that cannot be read: it fails safe, as an unreadable latch does."""
    return FailbackInProgress(
        f"pulumi up -s {stack} is refused: "
        + JOURNAL_UNREADABLE.format(parameter=parameter)
        + f" (failover latch: {latch.state}{', since ' + latch.since if latch.since else ''}). "
        "An update now could give back capacity a failback drained or a failover fenced. Check that no "
        "run is under way (`python -m automation status --outputs runbook.json`), then put back the "
        f"journal's last readable version: `aws ssm get-parameter-history --name {parameter}` lists "
        f"them, `aws ssm put-parameter --name {parameter} --type String --overwrite --value '<that JSON "
        "object>'` restores one; then run this update again."
    )


@dataclass(frozen=True)
class Capacity:
    """Auto Scaling group sizes."""

    min: int
    desired: int
    max: int

    def __post_init__(self) -> None:
        if not 0 <= self.min <= self.desired <= self.max:
            raise ValueError(f"capacity must satisfy 0 <= min <= desired <= max, got {self}")


STANDBY_CAPACITY = Capacity(0, 0, 0)


@dataclass(frozen=True)
class Latch:
    """The failover state the automated runbook writes to SSM in region B."""

    state: str = LATCH_STANDBY
    since: str | None = None
    runbook: str | None = None

    @property
    def active(self) -> bool:
        return self.state == LATCH_ACTIVE

    @classmethod
    def parse(cls, raw: str | None) -> Latch:
        """Parse the parameter's value; absent means standby, unreadable JSON is treated as active.

        An unreadable latch fails safe: treating it as active refuses ``dr:active false`` rather
        than risk sending traffic back to a region that is no longer the writer.
        """
        if raw is None or raw == "":
            return cls()
        try:
            data = json.loads(raw)
            return cls(str(data.get("state", LATCH_STANDBY)), data.get("since"), data.get("runbook"))
        except (json.JSONDecodeError, AttributeError):
            return cls(LATCH_ACTIVE, None, f"unreadable latch value {raw!r}")

    def to_json(self) -> str:
        return json.dumps({"state": self.state, "since": self.since, "runbook": self.runbook})


@dataclass(frozen=True)
class DesiredTier:
    """What the DR tier should look like. Only these fields change between standby and active."""

    active: bool
    capacity: Capacity
    warm_pool: int
    promote_database: bool
    promotion: Promotion
    functions_enabled: bool
    reserved_concurrency: int | None  # 0 in standby; None removes the reservation
    event_sources_enabled: bool
    traffic: Traffic
    failback_phase: str | None
    failback_replica: bool  # rds-replica failback: a replica of B's database in region A
    failback_replica_promoted: bool
    # A failover has happened (the latch was written by a runbook or `latch`, or says active): what the
    # runbook may have added out of band (Aurora's failover instance) is read live and adopted.
    after_failover: bool = False


def failback_in_progress(latch: Latch, journal: Journal) -> str | None:
    """What the runbook's failback is doing to region A's writer, read from the latch and the run
    journal; None when no failback is under way.

    A failback runs under the failover's latch (``active``) until its last step sets it to standby.
    Under it, either mark says the writer may be moving: the rds-replica failback's entry (the old
    primary renamed, a replica under ``<primary>`` being created or promoted), or region B's writes
    stopped *since the failover* (``drStoppedAt`` later than the latch's ``since``: the switch of
    writers follows; an older stamp is a finished failback's, left in the journal). A stamp that
    cannot be compared counts as under way: refusing an update is the safe side, and so does a
    journal that cannot be read at all (None, BL21-4).
    """
    if not latch.active:
        return None
    if journal is None:
        return JOURNAL_UNREADABLE.format(parameter="<latch>-journal")
    record = journal.get(JOURNAL_FAILBACK)
    if isinstance(record, Mapping) and record:
        retained = record.get("retained")
        return (
            "the runbook's rds-replica failback is replacing region A's primary"
            + (f" (the old primary renamed {retained}" if retained else " (")
            + (", its replica under the primary's name created)" if record.get("created") else ")")
        )
    stopped = journal.get(JOURNAL_DR_STOPPED)
    if stopped:
        try:
            since = _instant(latch.since) if latch.since else None
            later = since is None or _instant(stopped) >= since
        except (ValueError, TypeError):  # unreadable, or one stamp without an offset (BL21-3)
            later = True
        if later:
            return f"the runbook's failback stopped region B's writes at {stopped} and is moving the writer to region A"
    return None


def _instant(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def refuse_primary_update(
    latch: Latch, journal: Journal, *, journal_parameter: str = "<latch>-journal"
) -> None:
    """Raise :class:`FailbackInProgress` while the runbook's failback moves region A's writer.

    The primary stack declares region A's writer from what AWS has now (components/primary_data.py reads
    the instances live): mid-failback that is a renamed old primary, a replica being created under
    ``<primary>``, a writer about to be promoted. An update then would adopt, protect or point the
    application at the wrong instance, so it is refused before any resource is registered. A journal
    that cannot be read (None) refuses whatever the latch says: whether a failover fenced region A
    (:func:`region_a_fenced`) cannot be told either (BL21-4).
    """
    if journal is None:
        raise _unreadable_journal("primary", journal_parameter, latch)
    doing = failback_in_progress(latch, journal)
    if doing is None:
        return
    raise FailbackInProgress(
        f"pulumi up -s primary is refused: {doing} (failover latch in region B: active since "
        f"{latch.since or 'an unknown time'}; run journal: {JOURNAL_FAILBACK!r}/{JOURNAL_DR_STOPPED!r}). "
        "Region A's writer may be moving, and this update declares region A's database from what AWS has "
        "now. Wait for the failback to finish (`python -m automation status --outputs runbook.json` shows "
        "the run and the lock), or resume it if it stopped: `python -m automation failback --stack dr "
        "--outputs runbook.json` (add `--run-id <id>` to resume a run whose process died); then run "
        "`pulumi up -s dr` with dr:active false, then this update again."
    )


JOURNAL_WRITER_MOVE = "writerMoveRequestedAt"
"""Written by the failback before it asks AWS to move the writer back to region A (steps.WRITER_MOVE_MARK)."""


def failback_draining(latch: Latch, journal: Journal) -> str | None:
    """What shows that the runbook's failback has region B drained, or the writer moving, now (None:
    it does not): under the failover's latch, region B's writes stopped since the failover, or a
    writer move requested. Narrower than :func:`failback_in_progress`: the rds-replica failback's
    journal entry stays after a failback that stopped and gave region B back (BL21-1), and that
    alone must not keep the dr stack, where the runbook's role is fixed, from updating."""
    if journal is None:
        return failback_in_progress(latch, None)
    doing = failback_in_progress(latch, {k: v for k, v in journal.items() if k != JOURNAL_FAILBACK})
    if doing is not None:
        return doing
    if latch.active and journal.get(JOURNAL_WRITER_MOVE):
        return f"the runbook's failback asked AWS to move the writer to region A at {journal[JOURNAL_WRITER_MOVE]}"
    return None


def refuse_dr_update(latch: Latch, journal: Journal, *, journal_parameter: str = "<latch>-journal") -> None:
    """Raise :class:`FailbackInProgress` for ``pulumi up -s dr`` while the runbook's failback moves
    region A's writer.

    The failback drains region B (web tier to zero, functions at zero concurrency, event sources off)
    before it measures zero lag and moves the writer; the latch it runs under keeps the DR tier
    active in this program (:func:`decide`), so an update now would give region B its capacity back
    while the writer moves to region A: writes region B took then would never reach region A, and
    region B would serve beside region A's new writer. Refused before any resource is registered.

    Under an active latch a journal that cannot be read (None) is refused as an unreadable latch is
    treated as active: the record of a failback draining region B may be the part that is unreadable
    (BL21-4). Under a standby latch no failback is under way and the journal does not matter here.
    """
    if journal is None and latch.active:
        raise _unreadable_journal("dr", journal_parameter, latch)
    doing = failback_draining(latch, journal)
    if doing is None:
        return
    raise FailbackInProgress(
        f"pulumi up -s dr is refused: {doing} (failover latch in region B: active since "
        f"{latch.since or 'an unknown time'}). The failback drained region B to move the writer; this "
        "update would give region B its serving capacity back while the writer moves, and the writes it "
        "took would be lost. Wait for the failback to finish (`python -m automation status --outputs "
        "runbook.json`), or resume it if it stopped: `python -m automation failback --stack dr --outputs "
        "runbook.json` (add `--run-id <id>` to resume a run whose process died); then run this update "
        "with dr:active false."
    )


def dr_capacity(primary: Capacity, percent: int) -> Capacity:
    """The active DR capacity: ``percent`` of the primary's, rounded up, at least one instance.

    ``max`` is scaled too, so the DR tier never grows past what the operator sized it for. The
    floor (``min``) is the scaled *desired* capacity: during a failover the tier must not shrink
    below what serves production, and raising ``min`` is what makes Auto Scaling launch at once
    (the program never writes ``desired_capacity`` on the DR group; see compute.py).
    """
    if not 1 <= percent <= 200:
        raise ValueError(f"dr:capacityPercent must be 1..200, got {percent}")
    top = max(1, _scaled(primary.max, percent))
    desired = min(top, max(1, _scaled(primary.desired, percent)))
    return Capacity(desired, desired, top)


def _scaled(count: int, percent: int) -> int:
    """``ceil(count * percent / 100)`` in integers: 50 x 14 % is 7, not the float's 8."""
    return -(-count * percent // 100)


def decide(
    flags: DrFlags,
    primary: Capacity,
    *,
    database_mode: str,
    latch: Latch,
    warm_pool: int = 0,
) -> DesiredTier:
    """The desired DR tier. Raises FailoverRefused when the flags would undo a latched failover."""
    phase = flags.failback
    if phase is not None and phase not in FAILBACK_PHASES:
        raise FailoverRefused(f"dr:failback: {phase!r} is not a phase; allowed: {', '.join(FAILBACK_PHASES)}")

    if latch.active and not flags.active and phase != "complete":
        raise FailoverRefused(
            "dr:active false is refused: the failover latch (SSM, region B) says region B is active"
            f" since {latch.since or 'an unknown time'} ({latch.runbook or 'failover runbook'}). Setting it"
            " false now would route traffic back to region A, whose database is no longer the writer."
            " Keep dr:active true and fail back explicitly, one phase at a time:"
            " `pulumi config set dr:failback replicate -s dr && pulumi up -s dr`, then switch-writer,"
            " route-back, and finally `dr:active false` with dr:failback complete"
            " (or run `python -m automation failback --stack dr`)."
        )

    if latch.active and phase in LATCH_RELEASED_PHASES:
        raise FailoverRefused(
            f"dr:failback {phase} is refused: the failover latch (SSM, region B) says region B is active"
            f" since {latch.since or 'an unknown time'} ({latch.runbook or 'failover runbook'}), and the latch is"
            " what Route 53 follows (the canary holds the failover switch while it says active). pulumi up"
            " never writes the latch. Once region A is the writer (phase switch-writer done), release it:"
            " `python -m automation latch release --outputs runbook.json` (it checks that region A holds the"
            " writer, releases the switch and sets the latch to standby), then run this phase again."
        )

    after_failover = latch.active or latch.runbook is not None
    if flags.active and phase is None and not latch.active:
        raise FailoverRefused(
            "dr:active true is refused: the failover latch (SSM, region B) says standby"
            f" ({latch.runbook or 'never failed over'}{', since ' + latch.since if latch.since else ''}), and"
            " the latch is what Route 53 follows; pulumi up never writes it. After a completed failback, set"
            " dr:active false. To fail over (declared), move traffic first, then light region B:"
            " `python -m automation latch activate --outputs runbook.json` (traffic goes to region B; writes"
            " pause until this update has run), then this `pulumi up -s dr` again"
            " (`python -m automation cloud failover` does both)."
        )

    aurora = database_mode == "aurora-global"
    promotion: Promotion = "runbook" if aurora else "iac"

    if not flags.active:
        # Standby, or failback phase "complete" (the last step back to standby).
        return DesiredTier(
            active=False,
            capacity=STANDBY_CAPACITY,
            warm_pool=warm_pool,
            # After a failback the DR database stays promoted until it is rebuilt as a replica:
            # putting replication back on an instance that took writes would discard them.
            promote_database=phase == "complete",
            promotion="none" if phase is None else promotion,
            functions_enabled=False,
            reserved_concurrency=0,
            event_sources_enabled=False,
            traffic="primary",
            failback_phase=phase,
            failback_replica=phase == "complete" and not aurora,
            failback_replica_promoted=phase == "complete" and not aurora,
            after_failover=after_failover,
        )

    active_capacity = dr_capacity(primary, flags.capacity_percent)
    index = -1 if phase is None else FAILBACK_PHASES.index(phase)
    # Writes stop in B one phase before A's replica is promoted, in separate updates: a write
    # accepted in B after the promotion would never reach A.
    writes_stopped = index >= FAILBACK_PHASES.index("drain")
    promoted_in_a = index >= FAILBACK_PHASES.index("switch-writer")
    routed_back = index >= FAILBACK_PHASES.index("route-back")
    return DesiredTier(
        active=True,
        # From drain on, region B stops taking writes; from switch-writer on, region A is the writer.
        capacity=STANDBY_CAPACITY if writes_stopped else active_capacity,
        warm_pool=warm_pool,
        promote_database=True,
        promotion=promotion,
        functions_enabled=not writes_stopped,
        reserved_concurrency=0 if writes_stopped else None,
        event_sources_enabled=not writes_stopped,
        traffic="primary" if routed_back else "dr",
        failback_phase=phase,
        failback_replica=index >= 0 and not aurora,
        failback_replica_promoted=promoted_in_a and not aurora,
        after_failover=after_failover,
    )


# --- lifecycle: what the data tier's options follow across updates (issue 13) ---


def failback_replica_released(tier: DesiredTier) -> bool:
    """At ``complete`` the rds-replica failback instance (region A's writer now) is about to leave the
    dr program: the next update without ``dr:failback`` drops it from the stack (retained, never
    deleted), so it must not be protected any more for the engine to let it go.
    """
    return tier.failback_phase == "complete" and tier.failback_replica


def dr_database_replicates(tier: DesiredTier, database_mode: str) -> bool:
    """Whether region B's database is meant to be a replica in this tier, so its lag metric reports.

    rds-replica: until it is promoted. The promoted instance never replicates again; the update that
    re-seeds region B after a failback gives it a new replica (``DrDatabase.reseeded``), whose lag
    reports from then on.
    aurora-global: in standby, and again once the writer has moved back (``switch-writer`` on).
    """
    if database_mode == "rds-replica":
        return not tier.promote_database
    phase = tier.failback_phase
    moved_back = phase is not None and FAILBACK_PHASES.index(phase) >= FAILBACK_PHASES.index("switch-writer")
    return not tier.active or moved_back


def failback_lag_watched(tier: DesiredTier) -> bool:
    """Whether region A's replica of region B must be watched: from ``replicate`` until the writer moves.

    During ``replicate`` and ``drain`` the replica lag B -> A is what decides ``switch-writer``.
    """
    return tier.failback_phase in ("replicate", "drain")
