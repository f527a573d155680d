"""Where the system stands, read-only: what ``status`` prints and what a dry run plans from.

``observe(ctx, clients)`` reads both regions with Describe/Get/List calls only: the writer and each
database's role, the replica lag, the latch, the switch metric, both web tiers' capacities, the
functions' concurrency and event sources, the run journal and the runbook lock.
A reading that fails is kept as :class:`Unread` with its reason, and once a region stops answering
its other readings are not tried, so a dark region costs one timeout and is printed, not raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.failover import lock as runbook_lock
from lambdas.failover.clients import SIDES, Clients, Side
from lambdas.failover.context import Capacity, RunbookContext
from lambdas.failover.fencing import journal_missing_refusal
from lambdas.failover.journal import (
    WRITER_MOVE_MARK,
    _iac_failback_phase,
    _journal_name,
    _read_journal_version,
    accounts_for_failover,
)
from lambdas.failover.names import (
    current_failback_id,
    failback_stamp,
    generation_parameter_name,
    stamped_after,
)
from lambdas.failover.preflight import UNREACHABLE
from lambdas.failover.stepkit import _from_client_error

T = TypeVar("T")


@dataclass(frozen=True)
class Unread:
    """A reading that failed: why (the region, and the AWS code or the connection error)."""

    reason: str
    retryable: bool = False
    """Region answered, asking to be asked again (throttling): the runbook retries such a call."""

    def __str__(self) -> str:
        return f"unreadable: {self.reason}"


@dataclass(frozen=True)
class DbMember:
    """One database of the pair (or the failback replica), as AWS describes it now."""

    side: Side
    identifier: str
    role: str  # writer | replica | reader | missing
    status: str
    source: str | None = None
    engine: str | None = None
    failback: bool = False  # rds-replica: the IaC failback instance of region B's current generation
    retryable: bool = False  # role "unknown": the region answered, throttled (the runbook asks again)
    stamp: str | None = None  # rds-replica: its failback-stamp tag (the runbook's failback made it)
    created: datetime | None = None  # its InstanceCreateTime


@dataclass(frozen=True)
class Datapoint:
    """The latest datapoint of a metric, and what it measures."""

    value: float
    at: datetime
    what: str


@dataclass
class Observation:
    """Both regions, as read now (see the module docstring)."""

    ctx: RunbookContext
    read_at: datetime
    asg: dict[Side, Capacity | Unread] = field(default_factory=dict)
    concurrency: dict[Side, dict[str, int | None] | Unread] = field(default_factory=dict)
    mappings: dict[Side, dict[str, str] | Unread] = field(default_factory=dict)
    databases: list[DbMember] | Unread = field(default_factory=list)
    writer_side: Side | None = None
    lag: Datapoint | Unread | None = None
    latch: dict[str, Any] | Unread | None = None
    switch: Datapoint | Unread | None = None
    journal: dict[str, Any] | Unread = field(default_factory=dict)
    journal_missing: bool = False
    journal_silent: bool = False  # missing, or no record of a failover (journal.accounts_for_failover)
    """The run journal's parameter does not exist (``ParameterNotFound``), as against an empty one."""
    generation: str | Unread | None = None
    lock: runbook_lock.Lease | Unread | None = None
    dark: dict[Side, str] = field(default_factory=dict)
    failback_phase: str | Unread | None = None
    """rds-replica: the phase the dr stack's failback applied under the active latch (its record in
    region B, ``names.phase_record_name``), None when none did."""
    global_failover: str | None = None
    """aurora-global: the global database's ``FailoverState`` status (``pending``, ``failing-over``,
    ``cancelling``) while a switchover or failover is under way, None when none is
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html)."""


class _Reader:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.dark: dict[Side, str] = {}

    def read(self, side: Side, fn: Callable[[], T]) -> T | Unread:
        region = self.clients.region(side)
        if side in self.dark:
            return Unread(f"{region} did not answer ({self.dark[side]})")
        try:
            return fn()
        except UNREACHABLE as exc:
            self.dark[side] = type(exc).__name__
            return Unread(f"{region} did not answer ({type(exc).__name__})")
        except ClientError as exc:
            err = exc.response.get("Error", {})
            return Unread(
                f"{region}: {exc.operation_name}: {err.get('Code')}: {err.get('Message', '')}",
                retryable=_from_client_error("", exc).retryable,
            )
        except BotoCoreError as exc:
            return Unread(f"{region}: {type(exc).__name__}: {exc}")


def _latest(clients: Clients, side: Side, namespace: str, name: str, dims: dict[str, str], window: timedelta,
            now: datetime, ahead: timedelta = timedelta(0)) -> tuple[float, datetime] | None:  # fmt: skip
    answer = clients.cloudwatch(side).get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    },
                    "Period": 60,
                    "Stat": "Average",
                },
            }
        ],
        StartTime=now - window,
        EndTime=now + ahead,
        ScanBy="TimestampDescending",
    )["MetricDataResults"]
    if not answer or not answer[0].get("Values"):
        return None
    return float(answer[0]["Values"][0]), answer[0]["Timestamps"][0]


def _rds_members(ctx: RunbookContext, clients: Clients, r: _Reader) -> list[DbMember]:
    out: list[DbMember] = []
    assert ctx.primary_db_instance_id and ctx.dr_db_instance_id
    # Region A's writer as the primary stack declares it, the IaC failback instance of region B's
    # *current* generation (<primary>-failback for generation 0, -failback-g<n> after: an earlier
    # cycle's failback instance is a standalone ex-writer, never the writer now), region B's instance.
    # The outputs name whichever instance the primary stack declares as region A's writer, and once the
    # primary stack followed an IaC switch-writer (`pulumi up -s primary`), any later `pulumi up -s dr`
    # hands the runbook that failback instance itself (break24 BR24-6): the name then says nothing about
    # which region writes, so it is read as the failback instance it is, and replication as AWS
    # describes it decides (_rds_writer).
    failback = current_failback_id(ctx.primary_db_instance_id, ctx.dr_db_instance_id)
    named_failback = failback == ctx.primary_db_instance_id
    wanted: list[tuple[Side, str, bool]] = [
        ("primary", ctx.primary_db_instance_id, named_failback),
        *([("primary", failback, True)] if not named_failback else []),
        ("dr", ctx.dr_db_instance_id, False),
    ]
    for side, ident, is_failback in wanted:

        def describe(side: Side = side, ident: str = ident) -> dict[str, Any] | None:
            try:
                return clients.rds(side).describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in (
                    "DBInstanceNotFound",
                    "DBInstanceNotFoundFault",
                ):
                    return None
                raise

        got = r.read(side, describe)
        if isinstance(got, Unread):
            out.append(
                DbMember(side, ident, "unknown", str(got), failback=is_failback, retryable=got.retryable)
            )
        elif got is None:
            if not is_failback or ident == ctx.primary_db_instance_id:
                out.append(DbMember(side, ident, "missing", "not found"))
        else:
            source = got.get("ReadReplicaSourceDBInstanceIdentifier")
            role = "replica" if source else "writer"
            status, engine = str(got.get("DBInstanceStatus")), got.get("Engine")
            created = got.get("InstanceCreateTime")
            out.append(
                DbMember(
                    side,
                    ident,
                    role,
                    status,
                    source,
                    engine,
                    failback=is_failback,
                    stamp=failback_stamp(got),
                    created=created if isinstance(created, datetime) else None,
                )
            )
    return out


def _rds_writer(members: list[DbMember], mark: Any = None, journal_missing: bool = False) -> Side | None:
    """Which region holds the writer, from replication as AWS describes it.

    Region B's instance replicating means region A holds the writer (its source). Region B's instance
    standalone means region B was promoted and holds it, unless the IaC failback instance of region
    B's current generation (created as a replica of it, nothing else) is standalone too: then it was
    promoted after region B's, and region A holds the writer. So too when region A's declared writer is
    the runbook's failback's replica, promoted: standalone with the failback's writer-move mark in region
    B's journal (``mark``), or stamped no earlier than region B's instance (names.stamped_after), as the
    failover's refusal reads it (fencing.py ``_writer_moved_back``, break25 BR25-2). Region A's other standalone instances
    (its old writer, an earlier cycle's failback instance) are ex-writers: a promotion leaves its
    source standalone, so "standalone" alone never makes a writer. The failback instance is read under
    its name whether or not the outputs name it as region A's writer (:func:`_rds_members`, BR24-6).
    With region A's declared writer unread and no run journal (``journal_missing``: the mark could not
    have been read), nothing tells region B's promotion from a failback's move back: unknown, as the
    failover reads it (fencing.py ``_refuse_without_journal``, break25 BR25-4).
    """
    dr = next((m for m in members if m.side == "dr"), None)
    failback = next((m for m in members if m.failback), None)
    if dr is not None and dr.role == "replica":
        return "primary"
    if dr is not None and dr.role == "writer":
        declared = next((m for m in members if m.side == "primary" and not m.failback), None)
        runbook_moved = (
            declared is not None
            and declared.role == "writer"
            and bool(mark or stamped_after(declared.stamp, dr.created))
        )
        if (failback is not None and failback.role == "writer") or runbook_moved:
            return "primary"
        return None if journal_missing and declared is not None and declared.role == "unknown" else "dr"
    # Region B's instance unknown or missing: only a writer in region A can be named.
    if failback is not None and failback.role == "writer":
        return "primary"
    primary = next((m for m in members if m.side == "primary" and not m.failback), None)
    return "primary" if primary and primary.role == "writer" else None


def journal_lost(obs: Observation) -> str | None:
    """Why the failover would be refused for a lost run journal (fencing.py ``_refuse_without_journal``,
    break25 BR25-4), or None: rds-replica, the latch active, the journal's parameter missing, region B's
    instance standalone (or unread) and region A's declared writer unread (not throttled: the run asks
    again then)."""
    ctx = obs.ctx
    latch = obs.latch
    if ctx.database_mode != "rds-replica" or not obs.journal_silent or isinstance(obs.databases, Unread):
        return None
    if not isinstance(latch, dict) or latch.get("state") != "active":
        return None
    dr = next((m for m in obs.databases if m.side == "dr"), None)
    if dr is None or dr.role in ("replica", "missing") or (dr.role == "unknown" and dr.retryable):
        return None
    declared = next(
        (m for m in obs.databases if m.side == "primary" and m.identifier == ctx.primary_db_instance_id), None
    )
    if declared is None or declared.role != "unknown" or declared.retryable:
        return None
    reason, remedy = journal_missing_refusal(ctx, declared.status.removeprefix("unreadable: "))
    return f"{reason}. {remedy}"


def _aurora_members(
    ctx: RunbookContext, clients: Clients, r: _Reader, obs: Observation
) -> list[DbMember] | Unread:
    group: Any = Unread("not read")
    for side in ("dr", "primary"):
        group = r.read(
            side,
            lambda side=side: clients.rds(side).describe_global_clusters(
                GlobalClusterIdentifier=ctx.global_cluster_id
            )["GlobalClusters"][0],
        )
        if not isinstance(group, Unread):
            break
    if isinstance(group, Unread):
        return group
    obs.global_failover = (group.get("FailoverState") or {}).get("Status") or None
    out = []
    for m in group.get("GlobalClusterMembers", []):
        arn = str(m["DBClusterArn"])
        side: Side = "dr" if arn.split(":")[3] == ctx.dr_region else "primary"
        out.append(
            DbMember(
                side,
                arn.rsplit(":", 1)[-1],
                "writer" if m.get("IsWriter") else "reader",
                f"global database {group.get('Status', '?')}",
            )
        )
    return out


def _lag(ctx: RunbookContext, clients: Clients, r: _Reader, obs: Observation) -> Datapoint | Unread | None:
    if isinstance(obs.databases, Unread):
        return obs.databases
    if ctx.database_mode == "rds-replica":
        replicas = [m for m in obs.databases if m.role == "replica"]
        metric, dim = "ReplicaLag", "DBInstanceIdentifier"
        unit = "s"
    else:
        replicas = [m for m in obs.databases if m.role == "reader"]
        metric, dim = "AuroraGlobalDBReplicationLag", "DBClusterIdentifier"
        unit = "ms"
    if not replicas:
        return None
    m = replicas[0]
    got = r.read(
        m.side,
        lambda: _latest(
            clients, m.side, "AWS/RDS", metric, {dim: m.identifier}, timedelta(hours=1), obs.read_at
        ),
    )
    if got is None or isinstance(got, Unread):
        return got
    return Datapoint(
        got[0], got[1], f"AWS/RDS {metric} ({unit}) of {m.identifier} in {clients.region(m.side)}"
    )


def _lock(ctx: RunbookContext, clients: Clients, r: _Reader) -> runbook_lock.Lease | Unread | None:
    """The runbook lock as stored, read as ``lambdas.failover.lock`` writes it (None: free)."""
    return r.read("dr", lambda: runbook_lock.read(clients, ctx))


def observe(ctx: RunbookContext, clients: Clients) -> Observation:
    """Read where the system stands (read-only; see the module docstring)."""
    r = _Reader(clients)
    obs = Observation(ctx=ctx, read_at=clients.clock.now())
    # Region B first: a dark region A must not delay what the operator needs most.
    for side in ("dr", "primary"):
        asg = ctx.dr_asg_name if side == "dr" else ctx.primary_asg_name
        group = r.read(
            side,
            lambda side=side, asg=asg: clients.autoscaling(side).describe_auto_scaling_groups(
                AutoScalingGroupNames=[asg]
            )["AutoScalingGroups"],
        )
        if isinstance(group, Unread):
            obs.asg[side] = group
        elif not group:
            obs.asg[side] = Unread(f"no Auto Scaling group {asg!r} in {clients.region(side)}")
        else:
            g = group[0]
            obs.asg[side] = Capacity(int(g["MinSize"]), int(g["DesiredCapacity"]), int(g["MaxSize"]))
        names = ctx.dr_function_names if side == "dr" else ctx.primary_function_names

        def concurrency(side: Side = side, names: tuple[str, ...] = names) -> dict[str, int | None]:
            lam = clients.lambda_(side)
            return {
                n: lam.get_function_concurrency(FunctionName=n).get("ReservedConcurrentExecutions")
                for n in names
            }

        obs.concurrency[side] = r.read(side, concurrency)
        ids = ctx.dr_event_source_mapping_ids if side == "dr" else ctx.primary_event_source_mapping_ids

        def mapping_states(side: Side = side, ids: tuple[str, ...] = ids) -> dict[str, str]:
            lam = clients.lambda_(side)
            return {u: str(lam.get_event_source_mapping(UUID=u).get("State")) for u in ids}

        obs.mappings[side] = r.read(side, mapping_states)

    def latch() -> dict[str, Any] | None:
        try:
            value = clients.ssm("dr").get_parameter(Name=ctx.latch_parameter_name)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {"state": value}
        return parsed if isinstance(parsed, dict) else {"state": str(parsed)}

    obs.latch = r.read("dr", latch)
    if ctx.database_mode == "rds-replica" and isinstance(obs.latch, dict):
        held = obs.latch
        obs.failback_phase = r.read("dr", lambda: _iac_failback_phase(ctx, clients, held))
    journal = r.read("dr", lambda: _read_journal_version(clients, ctx))
    if isinstance(journal, Unread):
        obs.journal = journal
    else:
        obs.journal, obs.journal_missing = journal[0], journal[1] == 0
        obs.journal_silent = obs.journal_missing or not accounts_for_failover(journal[0])
    gen_name = generation_parameter_name(ctx.latch_parameter_name)
    obs.generation = r.read(
        "dr", lambda: str(clients.ssm("dr").get_parameter(Name=gen_name)["Parameter"]["Value"])
    )
    m = ctx.switch_metric
    switch = r.read(
        "dr",
        lambda: _latest(
            clients,
            "dr",
            m.namespace,
            m.name,
            m.dimensions,
            timedelta(days=1),
            obs.read_at,
            timedelta(minutes=5),
        ),
    )
    obs.switch = switch if switch is None or isinstance(switch, Unread) else Datapoint(
        switch[0], switch[1], f"{m.namespace}/{m.name} in {ctx.dr_region}"
    )  # fmt: skip
    if ctx.database_mode == "rds-replica":
        obs.databases = _rds_members(ctx, clients, r)
        journal = {} if isinstance(obs.journal, Unread) else obs.journal
        obs.writer_side = _rds_writer(obs.databases, journal.get(WRITER_MOVE_MARK), obs.journal_silent)
    else:
        obs.databases = _aurora_members(ctx, clients, r, obs)
        if not isinstance(obs.databases, Unread):
            obs.writer_side = next((d.side for d in obs.databases if d.role == "writer"), None)
    obs.lag = _lag(ctx, clients, r, obs)
    obs.lock = _lock(ctx, clients, r)
    obs.dark = dict(r.dark)
    return obs


def _age(now: datetime, at: datetime) -> str:
    seconds = int((now - at).total_seconds())
    if seconds < 0:
        return f"{-seconds} s ahead"
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _cap(c: Capacity | Unread) -> str:
    return str(c) if isinstance(c, Unread) else f"{c.min}/{c.desired}/{c.max} (min/desired/max)"


def format_status(obs: Observation) -> str:
    """The status report for people."""
    ctx, now = obs.ctx, obs.read_at
    region: dict[Side, str] = {"primary": ctx.primary_region, "dr": ctx.dr_region}
    label: dict[Side, str] = {"primary": f"A {ctx.primary_region}", "dr": f"B {ctx.dr_region}"}
    lines = [f"pilotlight status: {ctx.app_name} ({ctx.environment}) at {now.isoformat(timespec='seconds')}"]
    for side in SIDES:
        if side in obs.dark:
            lines.append(
                f"  region {label[side]} does not answer ({obs.dark[side]}): its readings are missing"
            )
    if isinstance(obs.generation, Unread):
        gen = str(obs.generation)
    elif obs.generation is None or ctx.generation is None:
        gen = f"outputs {ctx.generation or 'unstamped'}, live {obs.generation or 'unknown'}"
    else:
        gen = f"{ctx.generation} ({'current' if obs.generation == ctx.generation else f'STALE: live is {obs.generation}'})"
    lines.append(f"outputs generation: {gen}")
    writer = region[obs.writer_side] if obs.writer_side else "unknown"
    lines.append(f"database ({ctx.database_mode}): writer in {writer}")
    if isinstance(obs.databases, Unread):
        lines.append(f"  {obs.databases}")
    else:
        for d in obs.databases:
            source = f" of {d.source}" if d.source else ""
            lines.append(f"  {label[d.side]:<14} {d.identifier:<32} {d.role}{source}, {d.status}")
    if isinstance(obs.lag, Datapoint):
        lag = f"{obs.lag.value:g} at {obs.lag.at.isoformat(timespec='seconds')} ({_age(now, obs.lag.at)}): {obs.lag.what}"
    else:
        lag = str(obs.lag) if obs.lag is not None else "no replica, or no datapoint in the last hour"
    lines.append(f"  replica lag: {lag}")
    if obs.latch is None:
        latch = "missing"
    elif isinstance(obs.latch, Unread):
        latch = str(obs.latch)
    else:
        latch = " ".join(f"{k}={v}" for k, v in obs.latch.items())
    lines.append(f"latch {ctx.latch_parameter_name}: {latch}")
    if isinstance(obs.switch, Datapoint):
        word = "thrown: traffic to region B" if obs.switch.value == 1 else "released"
        switch = f"{obs.switch.value:g} ({word}) at {obs.switch.at.isoformat(timespec='seconds')} ({_age(now, obs.switch.at)})"
    else:
        switch = str(obs.switch) if obs.switch is not None else "no datapoint in the last day (released)"
    lines.append(f"switch {ctx.switch_metric.namespace}/{ctx.switch_metric.name}: {switch}")
    for side in ("dr", "primary"):
        asg = ctx.dr_asg_name if side == "dr" else ctx.primary_asg_name
        lines.append(f"web tier {label[side]}: {asg} {_cap(obs.asg[side])}")
    for side in ("dr", "primary"):
        fns = obs.concurrency[side]
        text = str(fns) if isinstance(fns, Unread) else ", ".join(
            f"{n}={'unreserved' if c is None else c}" for n, c in fns.items()
        ) or "none"  # fmt: skip
        lines.append(f"functions {label[side]} (reserved concurrency): {text}")
        maps = obs.mappings[side]
        text = (
            str(maps)
            if isinstance(maps, Unread)
            else ", ".join(f"{u} {s}" for u, s in maps.items()) or "none"
        )
        lines.append(f"event sources {label[side]}: {text}")
    held = obs.lock
    if held is None:
        lock_text = "free"
    elif isinstance(held, Unread):
        lock_text = str(held)
    else:
        state = "held" if held.expires_at >= obs.read_at else "EXPIRED (the next run takes it over)"
        lock_text = f"{state}: {held.describe(obs.read_at)}"
    lines.append(f"lock {ctx.lock_table_name}: {lock_text}")
    journal = obs.journal
    if isinstance(journal, Unread):
        lines.append(f"journal: {journal}")
    else:
        lines.append(
            "journal: "
            + (
                json.dumps(journal, sort_keys=True, default=str)
                if journal
                else f"empty (no parameter {_journal_name(ctx)})"
                if obs.journal_missing
                else "empty"
            )
        )
    lost = journal_lost(obs)
    if lost is not None:
        lines.append(f"failover: would be refused, changing nothing (JournalMissing): {lost}")
    return "\n".join(lines)
