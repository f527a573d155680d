"""``--dry-run``: what each step of a runbook would do, given where the system stands now.

Built from one :class:`~lambdas.failover.observe.Observation` (read-only calls only) and the run's
parameters; nothing here calls AWS itself. A step's line says what it would change, or that it
would answer ``already_done``. Later steps are planned from the state as it is now, not as the
earlier steps would leave it, and the plan says so.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from lambdas.failover.context import Capacity, RunbookContext
from lambdas.failover.graph import RUNBOOKS
from lambdas.failover.journal import FAILOVER_MARKS, PROMOTING_STATUSES, WRITER_MOVE_MARK
from lambdas.failover.lossless import unprovable_engine, unprovable_engine_reason
from lambdas.failover.names import (
    FAILBACK_STAMP_TAG,
    WRITER_BACK_PHASES,
    failover_instance_pattern,
    ledger_marker_function_name,
    phase_record_name,
    stamped_after,
)
from lambdas.failover.observe import DbMember, Observation, Unread, journal_lost
from lambdas.failover.steps import DRAIN_SECONDS

Probe = Callable[[str], str]


def probe_url(url: str, timeout: float = 5.0) -> str:
    """One GET of a health URL: ``answers <status>`` or ``does not answer (<why>)``. Read-only."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return f"answers {response.status}"
    except urllib.error.HTTPError as exc:
        return f"answers {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"does not answer ({getattr(exc, 'reason', exc)})"


def _cap(c: Capacity) -> str:
    return f"{c.min}/{c.desired}/{c.max}"


def _asg(obs: Observation, side: str, target: Capacity, name: str) -> str:
    now = obs.asg[side]  # type: ignore[index]
    if isinstance(now, Unread):
        return f"would set {name} to {_cap(target)} ({now})"
    if now == target:
        return f"already_done: {name} is {_cap(now)}"
    return f"would set {name} {_cap(now)} -> {_cap(target)} (min/desired/max)"


def _region_b_replica(obs: Observation) -> DbMember | None:
    """rds-replica: region B's instance (``drDbInstanceId``) as read, when it is a replica."""
    members = [] if isinstance(obs.databases, Unread) else obs.databases
    return next(
        (
            m
            for m in members
            if m.side == "dr" and m.identifier == obs.ctx.dr_db_instance_id and m.role == "replica"
        ),
        None,
    )


def _writer_never_left_a(obs: Observation) -> bool:
    """The run's ``failback._writer_never_left_a``, from the observation: rds-replica, region B's instance
    replicates from region A's standalone writer and is in no status a promotion passes through;
    aurora-global, region A's cluster is the writer."""
    if obs.ctx.database_mode != "rds-replica":
        # (Region A's cluster is the writer until a switchover or failover completes: FailoverState says
        # one is under way; break30 B30-4.)
        return obs.writer_side == "primary" and obs.global_failover is None
    replica = _region_b_replica(obs)
    if replica is None or replica.status in PROMOTING_STATUSES or not replica.source:
        return False
    members = [] if isinstance(obs.databases, Unread) else obs.databases
    return any(
        m.side == "primary" and m.role == "writer" and str(replica.source).endswith(f":db:{m.identifier}")
        for m in members
    )


def _warm_primary(obs: Observation, switch: float | None) -> str:
    """``warm_primary``: region A's web tier; over a writer that never left region A while a failover
    holds it, the switch released first (capacity.py ``_free_traffic_for_unmoved_writer``)."""
    ctx = obs.ctx
    launch = _asg(obs, "primary", ctx.primary_capacity, ctx.primary_asg_name)
    latch = obs.latch if isinstance(obs.latch, dict) else {}
    journal = obs.journal if isinstance(obs.journal, dict) else {}
    held = latch.get("state") == "active" or any(journal.get(m) for m in FAILOVER_MARKS)
    if not held or not _writer_never_left_a(obs):
        return launch
    release = (
        "the switch is released" if switch in (None, 0) else f"would put 0 on the switch (now {switch:g})"
    )
    return f"the writer never left region A: {release} first; {launch}"


def _fence_asg(obs: Observation, name: str) -> str:
    now = obs.asg["primary"]
    if isinstance(now, Unread):
        return f"would set {name} min and desired to 0 ({now})"
    return _asg(obs, "primary", Capacity(0, 0, now.max), name)  # the fence keeps MaxSize


def _scale_asg(obs: Observation, wanted: Capacity, name: str) -> str:
    now = obs.asg["dr"]
    if isinstance(now, Unread):
        return _asg(obs, "dr", wanted, name)
    # never below what target tracking raised it to (scale_web_tier)
    desired = min(max(now.desired, wanted.desired), wanted.max)
    return _asg(obs, "dr", Capacity(wanted.min, desired, wanted.max), name)


def _functions(obs: Observation, side: str, to: int | None) -> str:
    now = obs.concurrency[side]  # type: ignore[index]
    word = "unreserved" if to is None else f"reserved concurrency {to}"
    if isinstance(now, Unread):
        return f"would set functions to {word} ({now})"
    todo = [n for n, c in now.items() if c != to]
    return f"would set {', '.join(todo)} to {word}" if todo else f"functions already {word}"


def _mappings(obs: Observation, side: str, enabled: bool) -> str:
    now = obs.mappings[side]  # type: ignore[index]
    word = "Enabled" if enabled else "Disabled"
    if isinstance(now, Unread):
        return f"would set event sources {word} ({now})"
    todo = [u for u, s in now.items() if s != word]
    return f"would set event sources {', '.join(todo)} {word}" if todo else f"event sources already {word}"


def _latch_state(obs: Observation) -> str | None:
    return None if obs.latch is None or isinstance(obs.latch, Unread) else str(obs.latch.get("state"))


def _switch_value(obs: Observation) -> float | None:
    return None if obs.switch is None or isinstance(obs.switch, Unread) else obs.switch.value


def _marker(ctx: RunbookContext, obs: Observation, source: str) -> str:
    """The drain marker a planned RDS for PostgreSQL change invokes on ``source`` (its zero-lag proof
    replays a commit made after the drain: ``lambdas.failover.steps.replay_evidence``); "" otherwise."""
    members = [] if isinstance(obs.databases, Unread) else obs.databases
    engines = {str(m.engine) for m in members if m.engine}
    if ctx.database_mode != "rds-replica" or not any(e.startswith("postgres") for e in engines):
        return ""
    side, region = ("region A", ctx.primary_region) if source == "primary" else ("region B", ctx.dr_region)
    name = ledger_marker_function_name(f"{ctx.app_name}-{ctx.environment}")
    return (
        f", invoking {side}'s ledger marker function {name} in {region} (Lambda Invoke) once the drain "
        "has ended, the commit whose replay proves the replica holds every write"
    )


def _unprovable(ctx: RunbookContext, obs: Observation, *, planned: bool) -> str | None:
    """Why the run would be refused over RDS for MySQL or MariaDB (``lossless.UNPROVABLE_ENGINES``: no
    sound zero-lag proof), when its change would be planned (fencing.py and failback.py
    ``_refuse_unprovable_engine``); None otherwise."""
    if ctx.database_mode != "rds-replica" or isinstance(obs.databases, Unread):
        return None
    dr = next((m for m in obs.databases if m.side == "dr" and not m.failback), None)
    if dr is None or not planned or not unprovable_engine(dr.engine):
        return None
    return unprovable_engine_reason(dr.identifier, ctx.dr_region, dr.engine)


def _writer(obs: Observation) -> str:
    return {"primary": "region A", "dr": "region B", None: "unknown"}[obs.writer_side]


def _writer_moved_back(ctx: RunbookContext, obs: Observation) -> str | None:
    """Why the failover would be refused because the dr stack's failback moved the writer back to region
    A (fencing.py ``_refuse_unprotected``: AWS's word, or the dr stack's record under the active latch)."""
    if ctx.database_mode != "rds-replica":
        return None
    members = [] if isinstance(obs.databases, Unread) else obs.databases
    dr = next((m for m in members if m.side == "dr"), None)
    failback = next((m for m in members if m.failback), None)
    if dr is not None and dr.role == "writer" and failback is not None and failback.role == "writer":
        return f"{failback.identifier} in {ctx.primary_region} (created as a replica of {dr.identifier}) is standalone"
    # The runbook's own failback (fencing.py, break24c BR24c-1): its writer-move mark in region B's journal,
    # with region A's declared writer standalone, or with region A unread.
    journal = {} if isinstance(obs.journal, Unread) else obs.journal
    mark = journal.get(WRITER_MOVE_MARK)
    if mark and dr is not None and dr.role == "writer":
        region_a = [m for m in members if m.side == "primary"]
        unread = next((m for m in region_a if m.role == "unknown"), None)
        if unread is not None and unread.retryable:
            return (
                None  # throttled: the run asks again (fencing.py) and decides on the answer (break25 BR25-5)
            )
        if unread is not None:
            return (
                f"the runbook's failback asked to move the writer to {ctx.primary_db_instance_id} at {mark} "
                f"(the run journal, {ctx.dr_region}) and region A cannot be read ({unread.status})"
            )
        declared = next((m for m in region_a if m.identifier == ctx.primary_db_instance_id), None)
        if declared is not None and not declared.failback and declared.role == "writer":
            return (
                f"{ctx.primary_db_instance_id} in {ctx.primary_region} is standalone and the runbook's failback "
                f"asked to move the writer there at {mark} (the run journal)"
            )
    if dr is not None and dr.role == "writer":
        # Without the mark, AWS's word: the failback's stamp tag (names.stamped_after, break25 BR25-4).
        declared = next((m for m in members if m.side == "primary" and not m.failback), None)
        if declared is not None and declared.role == "writer" and stamped_after(declared.stamp, dr.created):
            return (
                f"{ctx.primary_db_instance_id} in {ctx.primary_region} is standalone and was created by the "
                f"runbook's failback as a replica of {ctx.dr_db_instance_id} (its {FAILBACK_STAMP_TAG} tag: "
                f"{declared.stamp})"
            )
    if isinstance(obs.failback_phase, str) and obs.failback_phase in WRITER_BACK_PHASES:
        return (
            f"the dr stack's failback applied {obs.failback_phase!r} under this latch "
            f"({phase_record_name(ctx.latch_parameter_name)})"
        )
    return None


def _failover_lines(
    ctx: RunbookContext, obs: Observation, params: Mapping[str, Any], probe: Probe
) -> dict[str, str]:
    if params.get("force"):
        confirm = "skipped: --force"
    elif ctx.primary_health_url:
        answer = probe(ctx.primary_health_url)
        verdict = "would stop (pass --force to go on)" if answer.startswith("answers 2") else "would go on"
        confirm = f"region A's health endpoint {answer} now: {verdict}"
    else:
        confirm = "no primaryHealthUrl in the outputs: would stop unless --force"
    fence = "; ".join(
        [
            _fence_asg(obs, ctx.primary_asg_name),
            _functions(obs, "primary", 0),
            _mappings(obs, "primary", False),
        ]
    )
    if "primary" in obs.dark:
        fence = f"region A does not answer ({obs.dark['primary']}): would warn and go on"
    latch = _latch_state(obs)
    if obs.writer_side == "dr":
        promote = f"already_done: the writer is in region B ({ctx.dr_region})"
    elif ctx.database_mode == "rds-replica":
        promote = (
            f"would promote read replica {ctx.dr_db_instance_id} in {ctx.dr_region} (PromoteReadReplica)"
        )
        if "primary" not in obs.dark:
            # Region A answers: the fence stamps its stop and the promotion is planned (lossless).
            drain = params.get("drainSeconds", DRAIN_SECONDS)
            promote = (
                f"would wait {float(drain):g} s for region A's drain, then for proof of zero lag after it"
                f"{_marker(ctx, obs, 'primary')}; then {promote.removeprefix('would ')}"
            )
    else:
        how = "switch over (no data loss)" if params.get("planned") else "fail over"
        promote = (
            f"would {how} global database {ctx.global_cluster_id} to {ctx.dr_cluster_id} "
            f"(adding a writer instance {failover_instance_pattern(str(ctx.dr_cluster_id))} if it has none)"
        )
    switch = _switch_value(obs)
    moved = _writer_moved_back(ctx, obs)
    if moved is not None:
        confirm = (
            f"would be refused, changing nothing (NotReplicating): region A holds the writer ({moved}): a "
            f"failback moved it back, so {ctx.dr_db_instance_id} is a copy frozen at that switch; "
            "finish the failback that moved it (the dr stack's phases, or the runbook's `python -m automation "
            "failback`) and let `pulumi up -s dr` re-seed region B first"
        )
    elif (lost := journal_lost(obs)) is not None:
        confirm = f"would be refused, changing nothing (JournalMissing): {lost}"
    elif (
        not params.get("allowDataLoss")
        and (
            why := _unprovable(
                ctx,
                obs,
                planned=obs.writer_side == "primary"
                and (bool(params.get("planned")) or "primary" not in obs.dark),
            )
        )
        is not None
    ):
        confirm = f"would be refused, changing nothing (UnprovableEngine): {why}"
    elif (
        ctx.database_mode == "rds-replica"
        and not isinstance(obs.databases, Unread)
        and any(m.side == "dr" and m.role == "writer" for m in obs.databases)  # fencing reads region A then
        and any(m.side == "primary" and m.role == "unknown" and m.retryable for m in obs.databases)
    ):
        confirm += (
            "; region A's RDS API is throttled now: the run stops and asks again before any change, and "
            "refuses then if a failback moved the writer to region A"
        )
    return {
        "confirm_primary_down": confirm,
        "fence_primary": fence,
        "scale_web_tier": _scale_asg(obs, ctx.dr_capacity, ctx.dr_asg_name),
        "enable_functions": f"{_functions(obs, 'dr', None)}; {_mappings(obs, 'dr', True)}",
        "write_latch": (
            "already_done: latch active"
            if obs.writer_side != "primary"
            # steps.write_latch: region A holds the writer under an active latch, so a new failover.
            else "would write the latch active with a new since: region A holds the writer"
        )
        if latch == "active"
        else f"would set the latch {latch} -> active",
        "promote_database": promote,
        "throw_switch": "already_done: switch at 1"
        if switch == 1
        else f"would put 1 on the switch (now {'no datapoint' if switch is None else f'{switch:g}'})",
        "verify": f"would probe {ctx.dr_health_url or '(no drHealthUrl)'} and check the writer is in region B",
        "notify": f"would publish to {ctx.notify_topic_arn}",
    }


def _failback_lines(
    ctx: RunbookContext, obs: Observation, params: Mapping[str, Any], probe: Probe
) -> dict[str, str]:
    # The step needs region A's API (it describes region A's Auto Scaling group), not a 200: region A's
    # web tier is fenced at 0 after a failover (failback.py ``confirm_primary_healthy``).
    api = obs.asg["primary"]
    verdict = (
        f"would stop: region A's API does not answer ({api})" if isinstance(api, Unread) else "would go on"
    )
    if ctx.primary_health_url:
        answer = probe(ctx.primary_health_url)
        if not isinstance(api, Unread) and not answer.startswith("answers "):
            # Any HTTP answer shows the network path is back; none stops the step (break24b BR24b-5).
            verdict = "would stop: the endpoint gives no HTTP answer"
        confirm = f"region A's health endpoint {answer} now; {verdict}"
    else:
        confirm = f"no primaryHealthUrl in the outputs; {verdict}"
    if ctx.database_mode == "rds-replica" and isinstance(obs.failback_phase, str):
        confirm = (
            "would be refused, changing nothing (IacFailbackUnderWay): the dr stack's failback is under way "
            f"(dr:failback {obs.failback_phase} applied under this failover: "
            f"{phase_record_name(ctx.latch_parameter_name)}); finish it one phase at a time"
        )
    journal = {} if isinstance(obs.journal, Unread) else obs.journal
    if obs.writer_side == "dr" and not journal.get(WRITER_MOVE_MARK):
        why = _unprovable(ctx, obs, planned=True)
        if why is not None:
            confirm = f"would be refused, changing nothing (UnprovableEngine): {why}"
    members = [] if isinstance(obs.databases, Unread) else obs.databases
    if ctx.database_mode == "rds-replica":
        primary = str(ctx.primary_db_instance_id)
        have = next((m for m in members if m.identifier == primary), None)
        replicate = (
            f"already there: {primary} is a {have.role} ({have.status})"
            if have and have.role != "writer"
            else f"would rename {primary} to {primary}-pre-failback-<stamp> (kept) and create read replica "
            f"{primary} in {ctx.primary_region} from {ctx.dr_db_instance_id}"
        )
        switch_writer = (
            f"would promote {primary} in {ctx.primary_region} at zero lag measured after the drain"
        )
    else:
        replicate = f"{ctx.primary_cluster_id} is a member of {ctx.global_cluster_id}: nothing to create"
        switch_writer = (
            f"would switch global database {ctx.global_cluster_id} over to {ctx.primary_cluster_id}"
        )
    if obs.writer_side == "primary":
        switch_writer = f"already_done: the writer is in region A ({ctx.primary_region})"
    replica = _region_b_replica(obs) if ctx.database_mode == "rds-replica" else None
    if replica is not None and replica.status in PROMOTING_STATUSES:
        replicate = (
            f"would refuse: {replica.identifier} in {ctx.dr_region} is {replica.status}, so it may be being "
            "promoted (the writer leaving region A); wait until it is available"
        )
    lag = obs.lag
    if lag is None:
        lag_text = "no replica datapoint yet"
    else:
        lag_text = str(lag) if isinstance(lag, Unread) else f"latest {lag.value:g} ({lag.what})"
    latch = _latch_state(obs)
    switch = _switch_value(obs)
    return {
        "confirm_primary_healthy": confirm,
        "reestablish_replication": replicate,
        "warm_primary": _warm_primary(obs, switch),
        "scale_down_dr": "; ".join(
            [
                _asg(obs, "dr", Capacity(0, 0, 0), ctx.dr_asg_name),
                _functions(obs, "dr", 0),
                _mappings(obs, "dr", False),
            ]
        ),
        "wait_replication_lag": f"would wait for lag under {ctx.max_replication_lag_seconds} s: {lag_text}"
        f"{_marker(ctx, obs, 'dr')}",
        "switch_writer": switch_writer,
        "unfence_primary": "; ".join(
            [
                _asg(obs, "primary", ctx.primary_capacity, ctx.primary_asg_name),
                _functions(obs, "primary", None),
                _mappings(obs, "primary", True),
            ]
        ),
        "verify_primary": "would wait for region A's health endpoint to answer 200 from "
        f"{ctx.primary_region} as the writer",
        "release_switch": "already_done: switch released"
        if switch in (None, 0)
        else f"would put 0 on the switch (now {switch:g})",
        "clear_latch": "already_done: latch standby"
        if latch == "standby"
        else f"would set the latch {latch} -> standby",
        "notify": f"would publish to {ctx.notify_topic_arn}",
    }


def plan(
    runbook: str,
    ctx: RunbookContext,
    obs: Observation,
    params: Mapping[str, Any] | None = None,
    *,
    probe: Probe = probe_url,
) -> list[tuple[str, str]]:
    """(step, what it would do) for every step of ``runbook``, in graph order."""
    params = params or {}
    lines = (_failover_lines if runbook == "failover" else _failback_lines)(ctx, obs, params, probe)
    return [(name, lines[name]) for name in RUNBOOKS[runbook].names()]


def format_plan(runbook: str, steps: list[tuple[str, str]]) -> str:
    """The plan for people."""
    width = max(len(s) for s, _ in steps)
    rows = [f"DRY RUN of {runbook}: nothing was changed. Each step, planned from the state as read now:"]
    rows += [f"  {step:<{width}}  {text}" for step, text in steps]
    rows.append("Later steps would see the earlier steps' changes; run without --dry-run to act.")
    return "\n".join(rows)
