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

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from components.config import FAILBACK_PHASES, DrFlags
from lambdas.failover.names import PHASE_RECORD_SUFFIX

Traffic = Literal["primary", "dr"]
Promotion = Literal["none", "iac", "runbook"]
LATCH_ACTIVE = "active"
LATCH_STANDBY = "standby"


LATCH_RELEASED_PHASES = ("route-back", "complete")
"""The failback phases that hand traffic back to region A: they run only once the latch is released."""

LATCH_HELD_PHASES = tuple(p for p in FAILBACK_PHASES if p not in LATCH_RELEASED_PHASES)
"""The failback phases that undo a failover (``replicate``, ``drain``, ``switch-writer``): they run under
the failover's latch, active until ``latch release`` (README "Failing back"), and only there. With no
failover behind them they would promote region B's replica and light region B beside region A's writer
(break24 BR24-7)."""


class FailoverRefused(ValueError):
    """The requested flags would undo a failover or skip a failback phase."""


class FailbackInProgress(FailoverRefused):
    """``pulumi up -s primary`` while the runbook's failback is moving region A's writer."""


# The run journal's entries (lambdas/failover/journal.py; SSM ``<latch>-journal`` in region B, beside
# the latch). Named here, not imported: the program does not depend on the runbook's package.
JOURNAL_FAILBACK = "failback"
"""rds-replica: written before the runbook's failback renames region A's primary, cleared by its
``clear_latch`` (failback.FAILBACK_JOURNAL_KEY)."""
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
    # The value was not the runbook's JSON: read as active (the safe side for dr:active false), but it
    # says nothing about whether a failover happened (the safe side for a failback phase: refused).
    unreadable: bool = False

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
            return cls(LATCH_ACTIVE, None, f"unreadable latch value {raw!r}", unreadable=True)

    def to_json(self) -> str:
        return json.dumps({"state": self.state, "since": self.since, "runbook": self.runbook})


def phase_record_parameter_name(latch_parameter_name: str) -> str:
    """The SSM parameter (region B, beside the latch) where the dr stack records the failback phase
    its last update applied. Only the program writes it (no ``ignore_changes``: nothing else does), so
    its live value is the last applied phase; the program reads it live, as it reads the latch."""
    return f"{latch_parameter_name}{PHASE_RECORD_SUFFIX}"


@dataclass(frozen=True)
class PhaseRecord:
    """The failback phase the dr stack's last update applied, and the latch's ``since`` it ran under.

    :func:`decide` has no other memory of the phase before (BL21-8): ``dr:failback`` is a config
    value anyone can set back (a typo, a re-run script, a reverted commit). The latch's ``since``
    ties the record to one failover: a new failover writes a new ``since``, and the record of the
    last cycle's failback does not bind it.
    """

    phase: str | None
    latch_since: str | None
    unreadable: bool = False
    drains: int = 0
    """How many times an update under this latch drained region B (``drain`` after a phase that kept it
    serving): the zero-lag proof before the rds-replica writer move names the drain it measured
    (:func:`refuse_unproven_failback_promotion`), so a proof taken before region B served again proves
    nothing about the writes it took since."""

    @classmethod
    def parse(cls, raw: str | None) -> PhaseRecord | None:
        """None when never written; a value that is not the program's JSON fails safe: taken to say
        the writer moved back under this failover (``switch-writer``)."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            phase = data.get("phase")
            if phase is not None and phase not in FAILBACK_PHASES:
                raise ValueError(phase)
            drains = data.get("drains", 0)
            if not isinstance(drains, int) or isinstance(drains, bool) or drains < 0:
                raise ValueError(drains)
            return cls(phase, data.get("latchSince"), drains=drains)
        except (json.JSONDecodeError, AttributeError, ValueError):
            return cls("switch-writer", None, unreadable=True)

    def to_json(self) -> str:
        value: dict[str, Any] = {"phase": self.phase, "latchSince": self.latch_since}
        if self.drains:
            value["drains"] = self.drains
        return json.dumps(value)


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
    # What the dr stack records of this update (the phase and the latch it ran under): PhaseRecord.
    latch_since: str | None = None
    drains: int = 0

    @property
    def region_b_serves(self) -> bool:
        """Region B takes requests or writes in this tier (web tier, functions or event sources)."""
        return self.capacity.max > 0 or self.functions_enabled or self.event_sources_enabled


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


FENCE_MARKS = ("primaryStoppedAt", "fencePending")
"""Run journal keys that say a failover fenced region A, or will when it answers (steps.fence_region_a
stamps ``primaryStoppedAt`` whenever it fences, steps.fence_primary ``fencePending``): the fencing
part of the runbook's ``FAILOVER_MARKS``, cleared only by a failback (``confirm_primary_healthy``,
``unfence_primary``) or by ``latch release`` (``steps.end_failover_hold``)."""


def region_a_fenced(journal: Mapping[str, Any]) -> str | None:
    """Why region A's fence must be kept by a ``pulumi up -s primary`` now (None: no fence holds it).

    A failover fences region A by hand-off, out of band (web tier min/desired 0, functions at
    reserved concurrency 0, event sources disabled) and "a failover never un-fences region A"
    (docs/safety.md, single flight): the stack's state still holds the values before the fence, so an
    update that changes one of them (a new ``compute.minSize``) would send it and un-fence region A
    while region B holds the writer (BL21-7). The primary stack keeps the fenced properties as they
    are instead (``ignore_changes``), rather than refusing the update: the rds-replica IaC failback
    needs ``pulumi up -s primary`` before ``latch release`` ends the hold (README, "Failing back").
    """
    marks = [m for m in FENCE_MARKS if journal.get(m)]
    if not marks:
        return None
    return f"the run journal says a failover fenced region A ({', '.join(marks)})"


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


def refuse_iac_failback_beside_runbook(latch: Latch, journal: Mapping[str, Any]) -> None:
    """Raise :class:`FailbackInProgress` for any ``dr:failback`` phase once the runbook's rds-replica
    failback has begun under this failover (its journal entry: the old primary renamed, its replica under
    ``<primary>`` created), before any resource (break24 BR24-1).

    One failback at a time, and the one begun first owns it. The runbook's failback that stopped after it
    re-created replication gives region B back and keeps its entry (BL21-1); the IaC failback begun then
    would create a second replica of region B in region A (``<primary>-failback``), after which each
    procedure refuses for the other (this refusal's remedy and the runbook's ``IacFailbackUnderWay``,
    break23 BR23-6, the other order), and region A never gets the writer back. So the IaC failback is
    refused at its start, naming the owner, how to finish it and how to abandon it (README, "Abandoning a
    failback"); routine updates (no ``dr:failback``) stay allowed, as :func:`failback_draining` says.
    """
    record = journal.get(JOURNAL_FAILBACK)
    if not latch.active or not (isinstance(record, Mapping) and record):
        return
    doing = failback_in_progress(latch, {JOURNAL_FAILBACK: record})
    raise FailbackInProgress(
        f"pulumi up -s dr with dr:failback is refused: the runbook's failback owns this failback, {doing} "
        f"(failover latch in region B: active since {latch.since or 'an unknown time'}; run journal entry "
        f"{JOURNAL_FAILBACK!r}). Nothing was changed. The IaC failback beside it would create a second replica "
        "of region B in region A, and neither failback could then finish. Finish the runbook's failback: "
        "`python -m automation failback --stack dr --outputs runbook.json` (it resumes where it stopped; add "
        '`--run-id <id>` to resume a run whose process died). Or abandon it for now (README, "Abandoning a '
        "failback\"): leave it stopped, region B serving and the runbook's replica under the primary's name "
        "keeping up with region B; `pulumi up -s dr` without dr:failback stays allowed; resume it later with "
        "the same command. Remove dr:failback from the dr stack's config."
    )


def refuse_dr_update(
    latch: Latch,
    journal: Journal,
    *,
    journal_parameter: str = "<latch>-journal",
    tier: DesiredTier | None = None,
) -> None:
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
    if tier is not None and tier.failback_phase is not None and journal is not None:
        refuse_iac_failback_beside_runbook(latch, journal)
    if tier is not None and not tier.region_b_serves:
        # The update keeps region B drained (a failback phase from drain on): it gives region B no
        # writes back, so the writer-move mark alone does not refuse it (the IaC failback's
        # `dr:failback switch-writer` runs here in aurora-global mode, after `latch switch-writer`
        # wrote it). The runbook's own failback under way still does (breaklife22 BL22-1): in
        # rds-replica mode this update promotes region A's replica while the runbook promotes the one
        # it made under `<primary>`, two writers in region A.
        doing = failback_in_progress(
            latch, None if journal is None else {k: v for k, v in journal.items() if k != JOURNAL_WRITER_MOVE}
        )
    else:
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


class NotRead:
    """The type of :data:`NOT_READ`."""


NOT_READ = NotRead()
"""``decide(previous=NOT_READ)``: the failback record was not read (the flags judged alone)."""


def decide(
    flags: DrFlags,
    primary: Capacity,
    *,
    database_mode: str,
    latch: Latch,
    warm_pool: int = 0,
    previous: PhaseRecord | NotRead | None = NOT_READ,
) -> DesiredTier:
    """The desired DR tier. Raises FailoverRefused when the flags would undo a latched failover, or
    step a failback back past ``switch-writer``, or skip a phase (``previous``: what the last update
    applied, None when no update recorded one; :data:`NOT_READ`, for a caller that judges the flags
    alone, checks neither the step back nor the skip against a record. The program always reads it.)"""
    if isinstance(previous, NotRead):
        tier = _decide(flags, primary, database_mode=database_mode, latch=latch, warm_pool=warm_pool)
        return dataclasses.replace(tier, latch_since=latch.since if tier.failback_phase else None)
    tier = _decide(flags, primary, database_mode=database_mode, latch=latch, warm_pool=warm_pool)
    # Only a failback phase is tied to its failover's latch: a failover itself (no phase) records
    # nothing that changes with the latch, so `dr:active true` stays a capacity-only diff.
    tier = dataclasses.replace(
        tier,
        latch_since=latch.since if tier.failback_phase else None,
        drains=drains_recorded(previous, tier),
    )
    refuse_step_back(previous, tier, latch)
    refuse_phase_skip(previous, tier, latch)
    refuse_failback_instance_drop(previous, tier, database_mode)
    return tier


JOURNAL_DRAIN_PROVEN = "failbackDrainProven"
"""rds-replica IaC failback: written by ``python -m automation latch switch-writer`` once it saw region B
drained and region A's failback instance at zero lag measured after that drain; withdrawn by a failover
(which gives region B its writes back) and by ``latch release`` (lambdas/failover/journal.py
``DRAIN_PROOF_MARK``). ``{"latchSince", "drains", "at", "instance"}``."""


def drains_recorded(previous: PhaseRecord | NotRead | None, tier: DesiredTier) -> int:
    """The ``drains`` this update records (:attr:`PhaseRecord.drains`): one more than the record before for
    every ``drain`` update, the record's count for the other phases, whatever the latch: a count that never
    goes back, so a zero-lag proof names exactly one drain update. Every drain update counts, not only one
    after a phase that served region B: region B may have served since the last record without any record
    saying so (a ``replicate`` update that stopped after region B's changes and before its record, which
    depends on them; region B scaled by hand), and the documented remedy for either is to drain again
    (break27 B27-1, B27-2). An update without a phase records ``latchSince`` null, so a count kept per
    latch would start again there; the proof is bound to the latch besides
    (:func:`refuse_unproven_failback_promotion`)."""
    if isinstance(previous, NotRead):
        return 0
    prior = previous.drains if previous is not None and not previous.unreadable else 0
    return prior + 1 if tier.failback_phase == "drain" else prior


def promotes_failback_instance(tier: DesiredTier, latch: Latch, database_mode: str) -> bool:
    """Whether this dr update is rds-replica ``dr:failback switch-writer`` under an active latch: the one
    that promotes region A's failback instance (components/dr_data.py, ``replicate_source_db`` removed),
    so the one the promotion guards judge (:func:`refuse_unproven_failback_promotion`,
    components/region_b_serving.py ``refuse_promotion_while_region_b_serves``)."""
    return database_mode != "aurora-global" and tier.failback_phase == "switch-writer" and latch.active


def drain_proof(journal: Journal) -> Mapping[str, Any] | None:
    """The zero-lag proof in the run journal (:data:`JOURNAL_DRAIN_PROVEN`), None when there is none."""
    proof = journal.get(JOURNAL_DRAIN_PROVEN) if journal is not None else None
    return proof if isinstance(proof, Mapping) else None


def refuse_unproven_failback_promotion(
    previous: PhaseRecord | None, tier: DesiredTier, latch: Latch, journal: Journal, database_mode: str
) -> None:
    """Raise :class:`FailoverRefused` when rds-replica ``dr:failback switch-writer`` would promote region
    A's failback instance with no proof that it holds every write region B acknowledged (break26 B26-2,
    B26-3).

    docs/safety.md, "Nothing acknowledged is lost": on a planned change the writer moves only at zero lag
    measured after writes stopped. This update promotes region A's replica (``replicate_source_db``
    removed: PromoteReadReplica), and a promoted replica keeps what had replicated when the promotion was
    asked and never replicates again ("A promoted read replica ... can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html, which says to stop
    the writes and wait for the replica to catch up first). A program cannot wait for CloudWatch
    datapoints, and the state it plans against does not see what the runbook changed out of band (no
    refresh: a failover that gave region B its web tier back after the drain). So the update needs the
    proof ``python -m automation latch switch-writer`` writes (:data:`JOURNAL_DRAIN_PROVEN`): region B
    seen drained, then zero lag from datapoints taken after that, under this latch and for the drain the
    record names (:attr:`PhaseRecord.drains`; a failover in between withdraws it).
    """
    if not promotes_failback_instance(tier, latch, database_mode):
        return
    proof = journal.get(JOURNAL_DRAIN_PROVEN) if journal is not None else None
    drains = previous.drains if previous is not None and not previous.unreadable else None
    if (
        isinstance(proof, Mapping)
        and drains is not None
        and previous is not None
        and previous.latch_since == latch.since
        and proof.get("latchSince") == latch.since
        and proof.get("drains") == drains
    ):
        return
    if isinstance(proof, Mapping) and proof.get("latchSince") == latch.since:
        why = (
            f"the zero-lag proof in the run journal ({JOURNAL_DRAIN_PROVEN}, at {proof.get('at')}) is for drain "
            f"{proof.get('drains')} and the failback record says drain {drains}: region B served again since"
        )
    elif journal is None:
        why = "the run journal (SSM, region B) cannot be read, so it is no proof"
    else:
        why = f"the run journal has no zero-lag proof ({JOURNAL_DRAIN_PROVEN}) for this drain"
    raise FailoverRefused(
        f"dr:failback switch-writer is refused: {why}. This update promotes region A's failback replica, which "
        "keeps only what had replicated when it is promoted: every write region B acknowledged and had not "
        "shipped would be lost. Run `python -m automation latch switch-writer --outputs runbook.json` first: "
        "it checks that region B is drained and waits for zero replica lag measured after the drain, then "
        "records the proof; then run this update again (`python -m automation cloud failback` does both). "
        "If a failover gave region B its capacity back since the drain, re-drain it first: "
        '`pulumi up --refresh -s dr` with dr:failback drain (README, "Failing back").'
    )


def promotes_on_failover(tier: DesiredTier, latch: Latch, database_mode: str) -> bool:
    """Whether this dr update is a failover's rds-replica ``dr:active true`` (an active latch, no failback
    phase), which wants region B's database promoted: the one :func:`refuse_program_promotion` judges."""
    return (
        database_mode == "rds-replica" and latch.active and tier.promote_database and not tier.failback_phase
    )


def refuse_program_promotion(
    tier: DesiredTier, latch: Latch, database_mode: str, dr_replicating: bool | None
) -> None:
    """Raise :class:`FailoverRefused` when a failover's rds-replica update would promote region B's replica
    itself (break34 B34-5).

    docs/safety.md, "Nothing acknowledged is lost": on a planned change (a declared failover while region A
    answers is one) the writer moves only at zero lag measured after writes stopped. Removing
    ``replicate_source_db`` promotes the replica in place (PromoteReadReplica), and a promoted replica keeps
    only what it had replayed ("A promoted read replica ... can't be made a read replica again":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html, which says to stop
    the writes and wait for the replica to catch up first). A Pulumi update cannot wait for the drain and
    the datapoints after it, so on a failover the program never promotes: the runbook's
    ``promote_database`` does, by the runbook's failover or by ``python -m automation latch activate``
    (planned: drain, zero replica lag and the stores' replication proven after it; ``--unplanned`` over a
    region A that does not answer, once the switch has taken effect, with an upper estimate of the loss).
    The update then finds the instance standalone and keeps the source in its state
    (components/dr_data.py). ``dr_replicating``: region B's instance replicates now (a live read; None when
    it does not exist). A replica mid-promotion still names its source ("modifying") and is refused too:
    the update would ask for a second promotion, which RDS refuses (InvalidDBInstanceState)."""
    if not promotes_on_failover(tier, latch, database_mode) or not dr_replicating:
        return
    raise FailoverRefused(
        "dr:active true is refused: region B's database is still a read replica of region A (or its promotion "
        "has not ended), and this update would promote it with whatever it has replayed: every write region "
        "A acknowledged and had not shipped would be lost. The program never promotes on a failover; "
        "`python -m automation latch activate --outputs runbook.json` does, at zero replica lag measured "
        "after region A's writes stopped (add --unplanned when region A does not answer: it reports an upper "
        "estimate of what may be lost). Run it (again: it resumes, and answers at once once the database is "
        "promoted), then this update (`python -m automation cloud failover` does both)"
    )


def refuse_unmoved_aurora_writer(
    previous: PhaseRecord | None, tier: DesiredTier, latch: Latch, journal: Journal, database_mode: str
) -> None:
    """Raise :class:`FailoverRefused` when aurora-global ``dr:failback switch-writer`` would be recorded
    while nothing moved the writer (break23 BR23-5).

    The program cannot move an Aurora writer: ``python -m automation latch switch-writer`` runs the
    runbook's ``switch_writer``, which writes the writer-move mark in the run journal before it asks
    for the switchover (lambdas/failover/journal.py ``WRITER_MOVE_MARK``), and the update then records
    the phase (README "Failing back"). Recorded without it, the record says region A holds the writer
    while region B does, and :func:`refuse_step_back` then refuses ``dr:active true`` for a false
    reason. So the update needs the mark, or a readable record of ``switch-writer`` (or later) under this
    latch already (the mark is cleared by ``latch release``). A record that cannot be read is no proof
    (break24 BR24-10): :meth:`PhaseRecord.parse` reads it as ``switch-writer`` because that is the safe
    side for :func:`refuse_step_back` (region B stays drained), and here the safe side is the opposite
    one, the refusal. Each reader fails safe for itself.
    """
    if database_mode != "aurora-global" or tier.failback_phase != "switch-writer" or not latch.active:
        return
    if journal is not None and journal.get(JOURNAL_WRITER_MOVE):
        return
    if (
        previous is not None
        and not previous.unreadable
        and previous.phase in WRITER_MOVED_PHASES
        and previous.latch_since == latch.since
    ):
        return
    unreadable = (
        " The failback record (SSM, region B) cannot be read, so it is no proof that the writer moved either."
        if previous is not None and previous.unreadable
        else ""
    )
    raise FailoverRefused(
        "dr:failback switch-writer is refused: nothing has moved the Aurora writer to region A (the run "
        f"journal has no {JOURNAL_WRITER_MOVE} mark): the program cannot move it, and recording the phase "
        f"now would say region A holds the writer while region B does.{unreadable} Run `python -m automation "
        "latch switch-writer --outputs runbook.json` first (the runbook's switchover; it answers at once "
        "when region A already holds the writer), then this update "
        '(README, "Failing back").'
    )


def refuse_phase_skip(previous: PhaseRecord | None, tier: DesiredTier, latch: Latch) -> None:
    """Raise :class:`FailoverRefused` when ``dr:failback`` jumps forward past a phase not applied under this
    failover (break23 BR23-4).

    The phases run "one phase at a time" (README "Failing back"), and each relies on the one before:
    ``switch-writer`` without ``replicate`` promotes a region-A "failback instance" that was never a
    replica (a new, empty database that the primary stack then adopts as region A's writer), and
    without ``drain`` it moves the writer while region B still takes writes. Going back is
    :func:`refuse_step_back`'s. The record binds as it does there: under an active latch only when it
    was made under the same ``since``, under a released one whatever ``since`` it has.

    ``complete`` follows ``route-back`` like every phase follows the one before, also under a released
    latch. It is not a tidy-up that fits any failback: in rds-replica it promotes region B's database
    and declares region A's failback instance promoted. With no failover behind it, that promotes a
    healthy replica beside region A's writer (two standalone writers, nothing protected); after the
    *runbook's* failback (which records no phase and makes no failback instance) it creates
    ``<primary>-failback`` as a replica of region B's frozen copy, standalone, which the primary stack
    then adopts as region A's writer: every write region A took since the runbook's failback is lost
    to the application (issue 13; ``python -m automation plan --lifecycle`` showed both). The runbook's
    failback ends with ``dr:active false`` and no ``dr:failback`` (README "Failing back").
    """
    phase = tier.failback_phase
    if phase is None:
        return
    binds = previous is not None and (
        not latch.active or previous.unreadable or previous.latch_since == latch.since
    )
    if phase == "complete" and previous is not None and not previous.unreadable:
        # complete follows the route-back made under this released latch (a standby latch is never
        # rewritten: failback.py clear_latch), not a record an earlier cycle left: `cloud failback complete`
        # removes dr:failback without a dr update, so the last cycle's `complete` record outlives it
        # (break26 B26-4).
        binds = binds and previous.latch_since == latch.since
    done = FAILBACK_PHASES.index(previous.phase) if binds and previous and previous.phase else -1
    wanted = FAILBACK_PHASES.index(phase)
    if wanted <= done + 1:
        return
    applied = (
        f"the last phase applied under this failover is {FAILBACK_PHASES[done]}"
        if done >= 0
        else ("no phase has been applied under this failover")
    )
    if phase == "complete" and not latch.active:
        raise FailoverRefused(
            f"dr:failback complete is refused: it ends the dr stack's failback after route-back, and "
            f"{applied.replace('under this failover', 'by the dr stack')} (failback record, SSM, region B): "
            "complete would promote region B's database"
            + (" and create region A's failback instance from it" if tier.failback_replica else "")
            + ". After the runbook's failback (`python -m automation failback`), or with no failover behind "
            "it, leave dr:failback out: `pulumi config rm dr:failback -s dr && pulumi config set dr:active "
            "false -s dr && pulumi up -s dr` (after a failback, that update re-seeds region B from region A's writer). An IaC failback "
            f'runs its phases in order: {", ".join(FAILBACK_PHASES)} (README, "Failing back").'
        )
    raise FailoverRefused(
        f"dr:failback {phase} is refused: failback phases run one at a time and {applied} (failback record, "
        f"SSM, region B), so {phase} would skip {', '.join(FAILBACK_PHASES[done + 1 : wanted])}. Set "
        f"dr:failback to {FAILBACK_PHASES[done + 1]} next (phases in order: {', '.join(FAILBACK_PHASES)}; "
        'README, "Failing back").'
    )


WRITER_MOVED_PHASES = FAILBACK_PHASES[FAILBACK_PHASES.index("switch-writer") :]
"""From ``switch-writer`` on region A holds the writer and region B stays drained to the end."""


def refuse_step_back(previous: PhaseRecord | None, tier: DesiredTier, latch: Latch) -> None:
    """Raise :class:`FailoverRefused` when, after ``switch-writer`` (region A holds the writer), this
    update would give region B its web tier, functions or event source back (BL21-8).

    ``decide`` alone has no memory: ``dr:failback replicate`` (or no phase with ``dr:active true``)
    after ``switch-writer`` undrains region B while region A's writer takes writes; in rds-replica
    mode region B's promoted instance is then a second writer whose writes never reach region A. The
    engine does not apply an update all-or-nothing (a failed resource stops new operations, not
    those under way: https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), so the refusal comes
    before any resource. Going back is allowed only where it is safe: any phase that keeps region B
    drained (``switch-writer`` onwards), and standby (``dr:active false``, no phase), which also
    ends a failback the runbook finished. A record made under another failover's latch (a new
    ``since``) does not bind this one.
    """
    if previous is None or previous.phase not in WRITER_MOVED_PHASES or not tier.region_b_serves:
        return
    if latch.active and not previous.unreadable and previous.latch_since != latch.since:
        return  # a new failover since that record: its failback starts again
    start = FAILBACK_PHASES.index(previous.phase)
    allowed = ", ".join(FAILBACK_PHASES[start:])
    recorded = (
        "cannot be read (taken as switch-writer)"
        if previous.unreadable
        else f"says the last update applied dr:failback {previous.phase}"
    )
    raise FailoverRefused(
        f"dr:failback {tier.failback_phase or '(unset)'} with dr:active true is refused: the failback record "
        f"(SSM, region B) {recorded}, so region A holds the writer; this update would give region B its web "
        "tier, functions and event source back while region A takes the writes, and what region B took then "
        f"would never reach region A. Failback phases only move forward from switch-writer: set dr:failback "
        f"to one of {allowed} (route-back and complete once `python -m automation latch release` has run), "
        "or dr:active false without dr:failback for standby."
    )


FAILBACK_INSTANCE_PROTECTED_PHASES = FAILBACK_PHASES[: FAILBACK_PHASES.index("complete")]
"""rds-replica: after an update that applied one of these phases the dr stack holds region A's failback
instance (``dr-data-db-failback[-g<n>]``), protected; ``complete`` lifts ``protect`` so that the next
update releases it (:func:`failback_replica_released`)."""


def refuse_failback_instance_drop(
    previous: PhaseRecord | None, tier: DesiredTier, database_mode: str
) -> None:
    """Raise :class:`FailoverRefused` when this update would drop region A's protected failback instance
    from the dr program (breaklife22 BL22-3).

    rds-replica: ``dr:active true`` without ``dr:failback`` (a failback abandoned by removing the key)
    declares no failback instance, while the stack's state holds it protected since the recorded
    phase. Pulumi refuses to delete a protected resource, but as an error of the deployment ("it will
    be an error to do a Pulumi deployment which tries to delete a protected resource for any reason":
    https://www.pulumi.com/docs/iac/concepts/options/protect/), and deletes run after the update's
    creates and updates, so region B's web tier, functions and event source would be given back (and
    the record rewritten) before the update fails, and every later update would fail the same way.
    Releasing it instead (``protect`` lifted, then ``retainOnDelete``: removed from the state, kept in
    AWS, https://www.pulumi.com/docs/iac/concepts/options/retainondelete/) on a removed key would take
    region A's replica out of the program on a config slip, and a failback resumed later would create
    it again under a name RDS already has (DBInstanceAlreadyExists). So the update is refused before
    any resource, and the remedy keeps the replica: ``dr:failback replicate`` holds the failback where
    it began (region B serves, region A's replica keeps up); the runbook's failback refuses while it is
    under way (lambdas/failover/failback.py ``_refuse_during_iac_failback``, break23 BR23-6). Standby
    updates (``dr:active false``) are not refused here: they declare the instance once more,
    unprotected, or are refused by :func:`decide` while the latch is active.
    """
    if database_mode != "rds-replica" or previous is None or not tier.active or tier.failback_phase:
        return
    if previous.phase not in FAILBACK_INSTANCE_PROTECTED_PHASES:
        return
    recorded = (
        "cannot be read (taken as switch-writer)"
        if previous.unreadable
        else f"says the last update applied dr:failback {previous.phase}"
    )
    moved = previous.phase in WRITER_MOVED_PHASES
    raise FailoverRefused(
        "dr:failback is required: dr:active true without it would drop region A's failback instance "
        f"(the dr stack's dr-data-db-failback[-g<n>], protected) from the program: the failback record (SSM, region B) {recorded}. "
        "Pulumi refuses to delete a protected resource only after it has applied the rest of the update. "
        f"Set dr:failback to one of {', '.join(FAILBACK_PHASES)}: "
        + (
            "region A's failback instance holds the writer, so finish the failback from the recorded phase "
            '(README, "Failing back").'
            if moved
            else "to abandon the failback and keep region B serving, set dr:failback replicate (region A's "
            "replica keeps up, protected; resume later with drain; the runbook's failback refuses while this "
            'one is under way). README, "Failing back", "Abandoning a failback".'
        )
    )


def _no_failover_behind(phase: str, latch: Latch) -> FailoverRefused:
    """The refusal of a failback phase that needs the failover's latch when the latch does not say a
    failover holds region B (break24 BR24-7).

    ``replicate``, ``drain`` and ``switch-writer`` run under the failover's latch, active from the failover
    (the runbook, or ``latch activate`` for a declared one) until ``latch release`` (README "Failing
    back"). Under a standby latch (right after deploy; after a completed failback) region A holds the
    writer and Route 53 sends traffic there; ``replicate`` with ``dr:active true`` would still drop
    ``replicateSourceDb`` from region B's replica, which promotes it, irreversibly ("Removing the
    replicate_source_db attribute from an existing RDS Replicate database ... will promote the database
    to a fully standalone database": https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/;
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html), and give region B
    its web tier, functions and event source back beside region A's writer. An absent latch is standby
    (:meth:`Latch.parse`); an unreadable one says nothing about a failover, so it refuses too (fail safe:
    the update changes nothing). ``route-back`` and ``complete`` run once the latch is released and are
    judged on the failback record instead (:func:`refuse_phase_skip`).
    """
    if latch.unreadable:
        said = f"cannot be read ({latch.runbook})"
        forward = (
            "Put back the latch's last readable version first (`aws ssm get-parameter-history --name "
            "<latch>` lists them; `python -m automation latch show --outputs runbook.json` shows where the "
            "writer is), then run this update again."
        )
    else:
        said = (
            f"says {latch.state}"
            f" ({latch.runbook or 'never failed over'}{', since ' + latch.since if latch.since else ''})"
        )
        forward = (
            "If region A holds the writer (nothing failed over, or a failback completed: `python -m "
            "automation latch show --outputs runbook.json`), leave the failback: `pulumi config rm "
            "dr:failback -s dr && pulumi config set dr:active false -s dr && pulumi up -s dr`. After "
            "`latch release` a failback goes on with route-back, then complete. To fail over first: "
            "`python -m automation latch activate --outputs runbook.json`, then `dr:active true`."
        )
    return FailoverRefused(
        f"dr:failback {phase} is refused: the failover latch (SSM, region B) {said}, so no failover holds "
        f"region B behind this failback. {', '.join(LATCH_HELD_PHASES)} run under the failover's active "
        'latch (README, "Failing back"); without one this update would promote region B\'s database and '
        "give region B its web tier, functions and event source back beside region A's writer. " + forward
    )


def _decide(
    flags: DrFlags,
    primary: Capacity,
    *,
    database_mode: str,
    latch: Latch,
    warm_pool: int = 0,
) -> DesiredTier:
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

    if phase in LATCH_HELD_PHASES and (not latch.active or latch.unreadable):
        raise _no_failover_behind(phase, latch)

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
