"""The local drill's verdict: checks judged from the emulator's state and its write log.

Nothing here takes the runbook's word (its report, the latch it wrote) as proof that something
happened: each check reads what the emulated AWS holds (which database AWS last made the writer,
the capacities, the switch metric, Route 53's answer, the databases' contents) and the emulator's
log of acknowledged writes, as ``docs/safety.md`` states the invariants.

The figures a responder asks for are computed the same way, per phase:

* **the lag at promotion** (:class:`Promotion`): the writes the new writer never received when it
  stopped replicating (its unapplied tail), the age of the oldest of them, and the last replication
  lag datapoint RDS published before that instant;
* **the writes** (:class:`PhaseWrites`): acknowledged, refused, held by the final writer, lost; the
  lost writes of an unplanned failover are its unapplied tail, the documented price of promoting a
  replica whose source does not answer.

A check that fails for a known defect of the runbook would be listed in :data:`KNOWN_DEFECTS` and
reported as an *expected failure*; the list is empty, so any failure fails the drill, and so would a
known defect that no longer shows (its mark must go).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from automation.drill_world import Attempt, Client, Deployment, datapoints

if TYPE_CHECKING:  # the emulator package needs moto, a development dependency: imported when a drill runs
    from automation.emulator.data import Write


class Phase(StrEnum):
    """The drill's two phases; writes and checks are reported per phase."""

    FAILOVER = "failover"
    """From the first client write until region A answers again: the outage and the unplanned
    promotion of region B's database (its lost writes may be the unapplied tail, and only that)."""
    FAILBACK = "failback"
    """From region A's return to the end of the drill: the planned return of the writer (nothing
    acknowledged may be lost)."""


class Verdict(StrEnum):
    """How a check came out, against what is known of today's runbook."""

    OK = "ok"
    """The claim holds and no known defect says otherwise."""
    FAILED = "FAILED"
    """The claim does not hold and no known defect explains it: the drill fails."""
    EXPECTED_FAILURE = "expected failure"
    """The claim does not hold, as a known defect of today's runbook predicts (``KNOWN_DEFECTS``)."""
    UNEXPECTED_PASS = "unexpected pass"
    """The claim holds although a known defect says it should not: the mark is stale and must go."""


class CheckKey(StrEnum):
    """What a check judges; with the phase, the key under which a known defect is recorded."""

    WRITER = "writer"
    """The database AWS last made the writer is in the region that should serve, and takes writes."""
    APPLICATION = "application"
    """That region serves, and its application writes to that database (not to another copy)."""
    WEB_TIER = "web_tier"
    """The web tiers' desired capacities are what the phase leaves them at."""
    FUNCTIONS = "functions"
    """The functions' reserved concurrency: region B's on after a failover, off after a failback."""
    EVENT_SOURCE = "event_source"
    """Region B's queue event source: enabled after a failover, disabled after a failback."""
    SWITCH = "switch"
    """The failover switch's latest datapoint: 1 after a failover, 0 after a failback."""
    ROUTE = "route"
    """Route 53's answer for the web name, once its health checks and the switch alarm have run."""
    LATCH = "latch"
    """The failover latch in SSM: active after a failover, standby after a failback."""
    PROMOTION_TAIL = "promotion_tail"
    """A planned change moves the writer at zero lag: nothing left unapplied when it stops replicating."""
    NO_LOSS = "no_loss"
    """Every write acknowledged in the phase is held by the final writer (an unplanned tail excepted)."""
    ONE_WRITER = "one_writer"
    """Never two regions serving with a writable database, judged at every client write."""
    PROTECTED_AGAIN = "protected_again"
    """After a failback, region B's database replicates from the writer again."""
    DISCARDED_KEPT = "discarded_kept"
    """Writes an unplanned Aurora failover discarded outlive the automated snapshot (a manual copy)."""
    LOSS_BOUND = "loss_bound"
    """What an unplanned failover lost is within the bound the runbook reported ("may lose up to N s")."""


KNOWN_DEFECTS: dict[tuple[str, Phase, CheckKey], str] = {}
"""(database mode, phase, check) -> the known defect of today's runbook that makes the check fail.

Empty: the drill runs the canary on its schedule and the re-seed after an rds-replica failback, as
AWS and the operator would, so every check that fails fails the drill.

Static, never inferred from a run: a check listed here that holds is an *unexpected pass* (the
defect is fixed or no longer reached, and its line must go), one that fails is an expected failure.
"""


@dataclass(frozen=True)
class Check:
    """One claim about the emulated world, and what the emulator shows."""

    phase: Phase
    key: CheckKey
    what: str
    ok: bool
    observed: str
    known_defect: str | None = None

    @property
    def verdict(self) -> Verdict:
        if self.known_defect is None:
            return Verdict.OK if self.ok else Verdict.FAILED
        return Verdict.UNEXPECTED_PASS if self.ok else Verdict.EXPECTED_FAILURE

    @property
    def fails_the_drill(self) -> bool:
        return self.verdict in (Verdict.FAILED, Verdict.UNEXPECTED_PASS)


def short(key: str | None) -> str:
    """The identifier at the end of an ARN."""
    return "none" if key is None else key.split(":")[-1]


def region_of(key: str) -> str:
    return key.split(":")[3]


def final_writer(dep: Deployment) -> str:
    """The database copy AWS last made the writer (region A's until a promotion)."""
    return dep.emulator.authority(lambda _: True, dep.databases[dep.region_a])


# --------------------------------------------------------------------------------------------------
# the lag at promotion


PROMOTION_EVENTS = ("promotion-started", "failing-over-completed", "switching-over-completed")
"""When the writer moves: an RDS replica stops replicating when its promotion starts; an Aurora
secondary when the failover or switchover completes."""


@dataclass(frozen=True)
class Promotion:
    """The instant the writer moved in one phase, and what its new writer had not received."""

    phase: Phase
    at: datetime
    writer: str
    tail: tuple[Write, ...]
    """Writes the new writer's source held that it never received (its unapplied tail)."""
    unplanned: bool
    """The source's region did not answer: the tail is the documented price of the promotion."""
    metric: str
    last_datapoint: tuple[datetime, float] | None
    """The last lag datapoint RDS published for the new writer before it moved, in seconds."""

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest unapplied write when the writer moved (0 when nothing was unapplied)."""
        if not self.tail:
            return 0.0
        return max(0.0, (self.at - min(w.at for w in self.tail)).total_seconds())


def promotion(dep: Deployment, phase: Phase, start: datetime, end: datetime) -> Promotion | None:
    """The first change of writer between ``start`` and ``end``, from the emulator's events."""
    emulator = dep.emulator
    event = next(
        (
            e
            for e in emulator.events
            if e.kind in PROMOTION_EVENTS and e.data.get("writer") and start <= e.at < end
        ),
        None,
    )
    if event is None:
        return None
    writer = str(event.data["writer"])
    tail = tuple(emulator.data.writes[w] for w in event.data.get("lost", []))
    if ":cluster:" in writer:
        metric, dims, scale = "AuroraGlobalDBReplicationLag", {"DBClusterIdentifier": short(writer)}, 0.001
    else:
        metric, dims, scale = "ReplicaLag", {"DBInstanceIdentifier": short(writer)}, 1.0
    points = datapoints(
        region_of(writer),
        "AWS/RDS",
        metric,
        dims,
        event.at - timedelta(hours=1),
        event.at + timedelta(microseconds=1),
    )
    last = (points[-1][0], points[-1][1] * scale) if points else None
    return Promotion(phase, event.at, writer, tail, writer in emulator.lost_at_promotion, metric, last)


# --------------------------------------------------------------------------------------------------
# the writes


@dataclass(frozen=True)
class PhaseWrites:
    """The client's writes in one phase, judged against the final writer."""

    phase: Phase
    start: datetime
    end: datetime
    writer: str
    """The final writer: the database copy AWS last made the writer, at the end of the drill."""
    attempts: int
    refused: int
    acknowledged: tuple[Write, ...]
    present: tuple[Write, ...]
    lost: tuple[Write, ...]
    unplanned_tail: tuple[Write, ...]
    """The lost writes that an unplanned promotion left unapplied (excused by docs/safety.md)."""
    held_elsewhere: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """The other lost writes, by the database copy that holds them (if any does)."""
    outage: tuple[datetime, datetime] | None = None
    """The longest run of refused writes: its first refusal, and the next acknowledged write."""
    refusals: dict[str, int] = field(default_factory=dict)
    """Refused writes by what the client was told: ``503 not_writer``, ``503 database_unreachable``...,
    ``not_served`` (no function or web tier took it), ``no_answer`` (Route 53 named no region)."""

    @property
    def unexcused(self) -> tuple[Write, ...]:
        tail = {w.id for w in self.unplanned_tail}
        return tuple(w for w in self.lost if w.id not in tail)


def excused(dep: Deployment) -> set[int]:
    """Writes an unplanned change may lose: unapplied tails, and what a rebuild discarded after one."""
    emulator = dep.emulator
    ids = {w for tail in emulator.lost_at_promotion.values() for w in tail}
    ids |= {
        w
        for e in emulator.events
        if e.kind == "rebuild" and e.data.get("unplanned")
        for w in e.data.get("discarded", [])
    }
    return ids


def tally(dep: Deployment, client: Client, phase: Phase, start: datetime, end: datetime) -> PhaseWrites:
    """Acknowledged, refused, present in the final writer and lost, for writes in ``[start, end)``."""
    from automation.emulator.data import Store

    emulator = dep.emulator
    data = emulator.data
    writer = final_writer(dep)
    acknowledged = tuple(w for w in data.acknowledged(Store.DATABASE) if start <= w.at < end)
    # With real servers: the ledger rows in each server (read once each), not the modelled copies.
    holdings = {k: emulator.database_held(k) for k, c in data.copies.items() if c.store is Store.DATABASE}
    held = holdings.get(writer) or emulator.database_held(writer)
    present = tuple(w for w in acknowledged if w.id in held)
    lost = tuple(w for w in acknowledged if w.id not in held)
    forgiven = excused(dep)
    tail = tuple(w for w in lost if w.id in forgiven)
    elsewhere: dict[str, list[int]] = {}
    for w in lost:
        if w.id in forgiven:
            continue
        holders = [k for k, ids in holdings.items() if w.id in ids]
        for k in holders or ["none"]:
            elsewhere.setdefault(k, []).append(w.id)
    attempts = [a for a in client.attempts if start <= a.at < end]
    return PhaseWrites(
        phase=phase,
        start=start,
        end=end,
        writer=writer,
        attempts=len(attempts),
        refused=sum(1 for a in attempts if a.write is None),
        acknowledged=acknowledged,
        present=present,
        lost=lost,
        unplanned_tail=tail,
        held_elsewhere={k: tuple(v) for k, v in elsewhere.items()},
        outage=max(refused_spans(attempts, end), key=lambda span: span[1] - span[0], default=None),
        refusals=refusals(attempts),
    )


def refusals(attempts: list[Attempt]) -> dict[str, int]:
    """Refused attempts counted by answer (``<status> <reason>``, or the reason alone when nothing answered)."""
    counts: dict[str, int] = {}
    for a in attempts:
        if a.write is None:
            label = f"{a.status} {a.reason}" if a.status is not None else str(a.reason)
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def refused_spans(attempts: list[Attempt], end: datetime) -> list[tuple[datetime, datetime]]:
    """Runs of refused writes: each from its first refusal to the next acknowledged write (or ``end``)."""
    spans: list[tuple[datetime, datetime]] = []
    first: datetime | None = None
    for attempt in attempts:
        if attempt.write is None:
            first = first or attempt.at
        elif first is not None:
            spans.append((first, attempt.at))
            first = None
    if first is not None:
        spans.append((first, end))
    return spans


# --------------------------------------------------------------------------------------------------
# the bound the runbook reported


_BOUND = re.compile(r"may lose up to (\d+(?:\.\d+)?) s")
_NOTE = re.compile(r"may lose [^()]*(\([^()]*\))?")
REQUEST_EVENTS = ("promotion-started", "failing-over")
"""When the writer change was requested: the runbook estimates the loss just before it asks."""


@dataclass(frozen=True)
class LossBound:
    """The runbook's estimate of what an unplanned promotion may lose, as its step reported it."""

    note: str
    seconds: float | None
    """The "may lose up to N s" figure; None when the runbook could not date the lag."""
    at: datetime
    """When the runbook estimated it (the instant the writer change was requested)."""


def reported_bound(dep: Deployment, run: Any, start: datetime, end: datetime) -> LossBound | None:
    """The bound ``run``'s promote_database step reported, if it reported one (an unplanned change)."""
    try:
        detail = str(run.record("promote_database").detail or "")
    except (KeyError, StopIteration, AttributeError):
        return None
    if "may lose" not in detail:
        return None
    request = next((e for e in dep.emulator.events if e.kind in REQUEST_EVENTS and start <= e.at < end), None)
    if request is None:
        return None
    found = _BOUND.search(detail)
    # The note ends with its parenthesis ("... (last <metric> <value> at <time>, <age> s old)").
    shown = _NOTE.search(detail)
    note = shown.group(0) if shown else detail[detail.index("may lose") :]
    return LossBound(note, float(found.group(1)) if found else None, request.at)


def beyond_bound(writes: PhaseWrites, bound: LossBound) -> list[Write]:
    """Lost writes older, when the runbook estimated the loss, than the bound it reported.

    With no figure (the runbook reported "an unknown span") no lost write can be shown within it:
    every lost write is beyond it, so the check fails rather than passing with no bound.
    """
    if bound.seconds is None:
        return list(writes.lost)
    # The note rounds to whole seconds.
    return [w for w in writes.lost if (bound.at - w.at).total_seconds() > bound.seconds + 0.5]


def judge_loss_bound(writes: PhaseWrites, bound: LossBound | None) -> tuple[bool, str]:
    """Whether what the phase lost is within the bound the runbook reported; what was observed.

    Fails, saying why, when the runbook reported no bound, or a bound with no figure: a loss is
    never judged "within" a bound nobody stated.
    """
    if bound is None:
        return False, f"{len(writes.lost)} lost; the runbook reported no bound"
    over = beyond_bound(writes, bound)
    if bound.seconds is None:
        return False, (
            f"{len(writes.lost)} lost; not judged: the runbook reported no figure ({bound.note}), "
            "so no loss can be shown within it"
        )
    observed = f"{len(writes.lost)} lost, runbook: {bound.note}"
    if over:
        observed += f"; {len(over)} older than it: " + ", ".join(f"#{w.id} {w.at:%H:%M:%S}" for w in over[:5])
    return not over, observed


# --------------------------------------------------------------------------------------------------
# the checks


class _Judge:
    """Builds one phase's checks, marking those a known defect explains."""

    def __init__(self, dep: Deployment, phase: Phase) -> None:
        self.dep = dep
        self.phase = phase
        self.checks: list[Check] = []

    def add(self, key: CheckKey, what: str, ok: bool, observed: str) -> None:
        known = KNOWN_DEFECTS.get((self.dep.mode, self.phase, key))
        self.checks.append(Check(self.phase, key, what, bool(ok), observed, known))


def _asg_desired(dep: Deployment, region: str, name: str) -> int:
    group = dep.client("autoscaling", region).describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    return int(group["DesiredCapacity"])


def _reserved(dep: Deployment, region: str, names: list[str]) -> dict[str, int | None]:
    fn = dep.client("lambda", region)
    return {n: fn.get_function_concurrency(FunctionName=n).get("ReservedConcurrentExecutions") for n in names}


def _latest_switch(dep: Deployment) -> float | None:
    metric = dep.context["switchMetric"]
    now = dep.emulator.clock.now()
    points = datapoints(
        dep.region_b, metric["namespace"], metric["name"], dict(metric["dimensions"]), now - timedelta(days=1), now + timedelta(seconds=1)
    )  # fmt: skip
    return points[-1][1] if points else None


def _latch(dep: Deployment) -> Any:
    value = dep.client("ssm", dep.region_b).get_parameter(Name=dep.context["latchParameterName"])[
        "Parameter"
    ]["Value"]
    try:
        return json.loads(value).get("state")
    except (ValueError, AttributeError):
        return value


def judge_state(dep: Deployment, client: Client, phase: Phase) -> list[Check]:
    """The world after a phase's runbook (and the time Route 53 needs): writer, capacities, switch, latch."""
    ctx = dep.context
    emulator = dep.emulator
    a, b = dep.region_a, dep.region_b
    failed_over = phase is Phase.FAILOVER
    serving, standby = (b, a) if failed_over else (a, b)
    judge = _Judge(dep, phase)
    writer = final_writer(dep)
    takes = emulator.accepts_writes(writer)
    judge.add(
        CheckKey.WRITER,
        f"the database AWS last made the writer is in region {'B' if failed_over else 'A'} ({serving}) and takes writes",
        region_of(writer) == serving and takes,
        f"{short(writer)} in {region_of(writer)}, {'takes' if takes else 'does not take'} writes",
    )
    app_db = emulator.database_writable(serving)
    configured = dep.databases[serving]
    judge.add(
        CheckKey.APPLICATION,
        f"{serving} serves and its application writes to that database",
        emulator.serving(serving) and app_db == writer,
        f"serves: {'yes' if emulator.serving(serving) else 'no'}; its application uses {short(configured)}"
        f" ({'writable' if app_db else 'not writable'})",
    )
    desired_a = _asg_desired(dep, a, ctx["primaryAsgName"])
    desired_b = _asg_desired(dep, b, ctx["drAsgName"])
    want_b = ctx["drCapacity"]["desired"] if failed_over else 0
    if failed_over:
        judge.add(
            CheckKey.WEB_TIER,
            f"region B web tier {ctx['drAsgName']} at desired {want_b}",
            desired_b == want_b,
            f"desired {desired_b} (region A's {ctx['primaryAsgName']}: {desired_a})",
        )
    else:
        want_a = ctx["primaryCapacity"]["desired"]
        judge.add(
            CheckKey.WEB_TIER,
            f"region A web tier {ctx['primaryAsgName']} at desired {want_a}, region B's {ctx['drAsgName']} at 0",
            desired_a == want_a and desired_b == 0,
            f"A desired {desired_a}, B desired {desired_b}",
        )
    dr_fns = _reserved(dep, b, ctx["drFunctionNames"])
    if failed_over:
        judge.add(
            CheckKey.FUNCTIONS,
            "region B functions take invocations (reserved concurrency unset)",
            all(v is None for v in dr_fns.values()),
            ", ".join(f"{n}: {v}" for n, v in dr_fns.items()),
        )
    else:
        primary_fns = _reserved(dep, a, ctx["primaryFunctionNames"])
        judge.add(
            CheckKey.FUNCTIONS,
            "region A functions take invocations, region B's are at reserved concurrency 0",
            all(v is None for v in primary_fns.values()) and all(v == 0 for v in dr_fns.values()),
            ", ".join(f"{n}: {v}" for n, v in (primary_fns | dr_fns).items()),
        )
    lam = dep.client("lambda", b)
    states = [lam.get_event_source_mapping(UUID=u)["State"] for u in ctx["drEventSourceMappingIds"]]
    want_state = "Enabled" if failed_over else "Disabled"
    judge.add(
        CheckKey.EVENT_SOURCE,
        f"region B event source {want_state.lower()}",
        all(s == want_state for s in states),
        ", ".join(states),
    )
    switch = _latest_switch(dep)
    want_switch = 1.0 if failed_over else 0.0
    judge.add(
        CheckKey.SWITCH,
        f"failover switch {'thrown' if failed_over else 'released'}: latest datapoint {want_switch:g}",
        switch == want_switch,
        f"latest {switch if switch is None else f'{switch:g}'}",
    )
    answer = client.where()
    judge.add(
        CheckKey.ROUTE,
        f"Route 53 answers {serving} for {client.name}",
        answer == serving,
        f"answers {answer}",
    )
    want_latch = "active" if failed_over else "standby"
    latch = _latch(dep)
    judge.add(
        CheckKey.LATCH, f"latch {ctx['latchParameterName']} {want_latch}", latch == want_latch, repr(latch)
    )
    if not failed_over:
        source = emulator.data.source_of(dep.databases[standby])
        protected = source is not None and source.key == writer
        observed = f"replicates from {short(source.key) if source else 'nothing (standalone)'}"
        refusal = None if protected else failover_refusal(dep)
        if refusal is not None:
            observed += f"; a failover now refuses: {refusal}"
        judge.add(
            CheckKey.PROTECTED_AGAIN,
            f"region B's database {short(dep.databases[standby])} replicates from the writer, "
            "or a failover run now refuses with the reason",
            protected or refusal is not None,
            observed,
        )
    return judge.checks


def failover_refusal(dep: Deployment) -> str | None:
    """Why a failover started now would refuse over region B's database (the runbook's own guard,
    read-only: ``fencing._refuse_unprotected``), or None when it would not."""
    import boto3

    from lambdas.failover import fencing
    from lambdas.failover.clients import Clients
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.exceptions import StepFailed

    ctx = RunbookContext.from_dict(dep.context)
    session = boto3.Session(aws_access_key_id="drill-judge", aws_secret_access_key="drill")
    clients = Clients.for_context(ctx, session, endpoint_url=dep.endpoint, clock=dep.emulator.clock)
    try:
        fencing._refuse_unprotected(ctx, clients, "confirm_primary_down")
    except StepFailed as exc:
        return f"{exc.code}: {exc.reason}"
    return None


def judge_data(
    dep: Deployment,
    client: Client,
    writes: PhaseWrites,
    promoted: Promotion | None,
    bound: LossBound | None = None,
) -> list[Check]:
    """A phase's data checks, at the end of the drill: loss, one writer, the promotion's tail."""
    judge = _Judge(dep, writes.phase)
    if writes.phase is Phase.FAILBACK:
        tail = promoted.tail if promoted else ()
        judge.add(
            CheckKey.PROMOTION_TAIL,
            "the planned failback moved the writer at zero lag (nothing unapplied)",
            promoted is not None and not tail,
            "no change of writer seen"
            if promoted is None
            else f"{len(tail)} write(s) unapplied when {short(promoted.writer)} stopped replicating",
        )
    unexcused = writes.unexcused
    if writes.phase is Phase.FAILOVER:
        what = "every write acknowledged is held by the final writer, except the unplanned tail"
    else:
        what = "every write acknowledged is held by the final writer"
    observed = (
        f"{len(writes.acknowledged)} acknowledged, {len(writes.present)} held by {short(writes.writer)}"
    )
    if writes.unplanned_tail:
        observed += f", {len(writes.unplanned_tail)} lost in the unplanned tail"
    if unexcused:
        where = "; ".join(f"{len(ids)} held only by {short(k)}" for k, ids in writes.held_elsewhere.items())
        observed += f", {len(unexcused)} lost ({where})"
    judge.add(CheckKey.NO_LOSS, what, not unexcused, observed)
    if writes.lost and writes.phase is Phase.FAILOVER:
        ok, observed = judge_loss_bound(writes, bound)
        judge.add(
            CheckKey.LOSS_BOUND,
            "every write the unplanned failover lost is within the bound the runbook reported",
            ok,
            observed,
        )
    seen = [t for t in client.two_writers if writes.start <= t < writes.end]
    returns = [e.at for e in dep.emulator.events if e.kind == "recovery"]
    in_grace = [t for t in seen if _within_fence_grace(t, returns)]
    two = [t for t in seen if t not in in_grace]
    observed = (
        "never"
        if not two
        else f"{len(two)} write(s) saw two writers, {two[0]:%H:%M:%S} to {two[-1]:%H:%M:%S}"
    )
    if in_grace:
        observed += (
            f" beyond the fence's grace; {len(in_grace)} within {FENCE_GRACE:g} s of region A's return "
            f"({in_grace[0]:%H:%M:%S} to {in_grace[-1]:%H:%M:%S}: the canary's minute and the pending fence)"
        )
    judge.add(
        CheckKey.ONE_WRITER,
        "never two regions serving with a writable database (judged at every client write; "
        f"a region back from an outage fenced within {FENCE_GRACE:g} s)",
        not two,
        observed,
    )
    return judge.checks


FENCE_GRACE = 150.0
"""Seconds a region back from an outage may still serve its old writer before the pending fence
reaches it: one canary period (60 s, its EventBridge schedule), the probe, the Event invocation's
start and the fence's calls. The bound docs/safety.md states for one_writer (the safety model's
``FENCE_GRACE``)."""


def _within_fence_grace(at: datetime, returns: list[datetime]) -> bool:
    back = [r for r in returns if r <= at]
    return bool(back) and (at - back[-1]).total_seconds() < FENCE_GRACE


def judge_discarded(dep: Deployment) -> list[Check]:
    """Writes an unplanned Aurora failover discarded must outlive the automated snapshot, before the
    failback starts (the failback's first step would copy it too: judged before, it is the canary's
    pending fence that kept it, within a minute of region A answering). Nothing in rds-replica.

    Judged by content, not by name (the runbook names its copy ``kept_snapshot_id(source)``,
    shortened to RDS's identifier limit): a manual cluster snapshot in region A that holds every
    write the rebuild discarded (CopyDBClusterSnapshot copies what its source held).
    """
    if dep.mode != "aurora-global":
        return []
    judge = _Judge(dep, Phase.FAILOVER)
    emulator = dep.emulator
    rebuilds = [e for e in emulator.events if e.kind == "rebuild" and e.data.get("discarded")]
    rds = dep.client("rds", dep.region_a)
    manual = [
        str(s["DBClusterSnapshotIdentifier"])
        for page in rds.get_paginator("describe_db_cluster_snapshots").paginate(SnapshotType="manual")
        for s in page["DBClusterSnapshots"]
    ]
    kept: list[str] = []
    for event in rebuilds:
        discarded = set(event.data["discarded"])
        holders = [
            m for m in manual if discarded <= (emulator.snapshot_holds(dep.region_a, m) or frozenset())
        ]
        kept += holders[:1]
    discarded_count = sum(len(e.data["discarded"]) for e in rebuilds)
    judge.add(
        CheckKey.DISCARDED_KEPT,
        "writes the unplanned failover discarded outlive the automated snapshot "
        "(a manual copy holds them before the failback starts)",
        len(kept) == len(rebuilds),
        "nothing discarded"
        if not rebuilds
        else f"{discarded_count} write(s) discarded into {', '.join(str(e.data['snapshot']) for e in rebuilds)}; "
        f"manual copies holding them: {', '.join(kept) or 'none'}",
    )
    return judge.checks
