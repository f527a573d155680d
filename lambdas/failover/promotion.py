"""Making region B's database the writer: ``promote_database``.

RDS: the read replica is promoted (``_promote_rds``, shared with the failback), after the drain and
zero lag when region A was fenced (planned), or at once with an upper estimate of the loss when region
A was not reachable (unplanned; the writer then moves only once the thrown switch has taken effect).
Aurora: a switchover when region A answered its fence, a managed failover (``AllowDataLoss``) when it
did not; ``FailoverState`` is polled, and a change AWS cancels is asked again. A forced failover whose
source database goes dark during the lossless wait, and stays dark (``DARK_CONFIRM_SECONDS``, both its
RDS API and a data-plane look agreeing: ``darkness.source_database_dark``), promotes unplanned.
``_writer_moving`` says whether region B's database is (becoming) the writer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from lambdas.failover import regressions
from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import RunbookContext
from lambdas.failover.darkness import (
    DARK_CONFIRM_SECONDS,
    Window,
    fence_confirm_seconds,
    source_dark_long_enough,
    source_dark_window,
)
from lambdas.failover.exceptions import SourceDark as _SourceDark
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.fencing import PLANNED_NEEDS_REGION_A, _planned_how, fence_primary
from lambdas.failover.journal import (
    _journal,
    _promotion_under_way,
    _read_latch,
    _request_promotion,
    _write_latch,
    _writer_moving,
    read_journal,
)
from lambdas.failover.lossless import database_lag, store_lags, wait_lossless
from lambdas.failover.names import (
    FAILOVER_NAME_ATTEMPTS,
    FAILOVER_WRITER_MARK,
    REQUIRED_TAG_KEYS,
    failover_instance_id,
    failover_instance_pattern,
    failover_token,
    new_failover_token,
)
from lambdas.failover.regressions import Regression
from lambdas.failover.stepkit import (
    StepResult,
    _db_cluster,
    _db_instance,
    _describe_failure,
    _done,
    _finished,
    _global_members,
    _in_progress,
    _latest,
    _member,
    _metric_query,
    _need,
    _now,
    _parse_time,
    _promoted_waiter,
    _require_db_instance,
    _step,
    _wait,
    _waiter_config,
    error_code,
    log_event,
)
from lambdas.failover.traffic import _switch_pending

AURORA_ENGINE = "aurora-postgresql"


def _promote_rds(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], side: Side, ident: str, step: str
) -> StepResult:
    """Promote read replica ``ident`` in ``side`` to a standalone instance (shared by both runbooks)."""
    rds = clients.rds(side)
    instance = _require_db_instance(clients, side, ident, step)
    source = instance.get("ReadReplicaSourceDBInstanceIdentifier")
    status = instance.get("DBInstanceStatus")
    region = clients.region(side)
    if not source:
        if status != "available":
            if not _wait(params):
                return _in_progress(
                    f"{ident} is standalone, status {status}: waiting for available", instance=ident
                )
            _promoted_waiter(rds).wait(DBInstanceIdentifier=ident, WaiterConfig=_waiter_config(params))
        return _finished(
            params, False, f"{ident} is a standalone writer in {region}", instance=ident, region=region
        )
    started = False
    under_way = _promotion_under_way(clients, ctx, side, instance)
    if status != "available" and not under_way:
        # Busy with something else: a backup ("a read replica cannot be promoted to a standalone
        # instance when it is in the backing-up status", PromoteReadReplica; B21-4), or modified or
        # rebooted at a customer's request or for maintenance, not at the runbook's (B21b-2,
        # B21b-6). Nothing is promoting it, and nothing may until it is available again.
        if not _wait(params):
            return _in_progress(
                f"{ident} is {status} (no promotion requested): it cannot be promoted until it is available",
                instance=ident,
                region=region,
                underWay=False,
            )
        rds.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=ident, WaiterConfig=_waiter_config(params)
        )
        status = "available"
    if status == "available":
        _request_promotion(clients, ctx, side, ident)
        try:
            rds.promote_read_replica(DBInstanceIdentifier=ident)
            started = True
            log_event(
                logging.INFO, "promotion started", step=step, instance=ident, region=region, source=source
            )
        except ClientError as exc:
            # A promotion requested by an earlier call that RDS has not picked up yet.
            if error_code(exc) != "InvalidDBInstanceState":
                raise
    if not _wait(params):
        verb = "started promoting" if started else f"promotion under way (status {status})"
        return _in_progress(
            f"{verb} {ident} (replica of {source})", instance=ident, region=region, underWay=True
        )
    _promoted_waiter(rds).wait(DBInstanceIdentifier=ident, WaiterConfig=_waiter_config(params))
    return _done(
        f"promoted {ident} in {region}: no longer a replica of {source}", instance=ident, region=region
    )


def _inherited_tags(described: Mapping[str, Any]) -> list[dict[str, str]]:
    """The program's tags (:data:`REQUIRED_TAG_KEYS`) of a described cluster or instance, for the
    database the runbook creates in its image (the Describe answers carry ``TagList``)."""
    return [
        {"Key": str(t["Key"]), "Value": str(t["Value"])}
        for t in described.get("TagList") or []
        if t.get("Key") in REQUIRED_TAG_KEYS
    ]


def _promote_aurora(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], *, stopped_at: datetime | None
) -> StepResult:
    """``stopped_at``: when region A's writes stopped (its latest fence reached it), None when no fence
    did: the change is then planned only by ``params["planned"]``, and is refused before the writer moves
    (``_request_switchover``)."""
    planned = stopped_at is not None
    step = "promote_database"
    rds = clients.rds("dr")
    cluster_id = _need(ctx.dr_cluster_id, "drClusterId", step)
    arn = _need(ctx.dr_cluster_arn, "drClusterArn", step)
    gid = _need(ctx.global_cluster_id, "globalClusterId", step)
    changes: list[str] = []

    # A headless secondary (the cheapest pilot light) cannot become writer: it needs an instance.
    cluster = _db_cluster(clients, "dr", cluster_id, step)
    members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
    if not members:
        # The writer's name carries a token no one can predict (names.failover_instance_id): DB instance
        # identifiers are unique per account and region, so a fixed name could be taken ahead of time
        # by another deployment's deployer (breakiam22b BI22b-9). It is journaled before
        # CreateDBInstance, so a resumed step asks for the same name and finds a creation whose answer
        # was lost (DBInstanceAlreadyExists, the instance in this cluster) even before DescribeDBClusters
        # lists it as a member ("DBClusterMembers": the DB instances that make up the cluster,
        # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html).
        tags = _inherited_tags(cluster)
        journaled = str(read_journal(clients, ctx).get(FAILOVER_WRITER_MARK) or "")
        instance_id = journaled if failover_token(cluster_id, journaled) else ""
        taken: list[str] = []
        while True:
            if not instance_id:
                if len(taken) >= FAILOVER_NAME_ATTEMPTS:
                    raise StepFailed(
                        step,
                        f"cannot add a writer to {cluster_id}: every name drawn was taken outside the "
                        f"cluster ({', '.join(taken)}); find who creates instances under "
                        f"{failover_instance_pattern(cluster_id)}, then resume the failover",
                        code="DBInstanceAlreadyExists",
                    )
                instance_id = failover_instance_id(cluster_id, new_failover_token())
                _journal(clients, ctx, **{FAILOVER_WRITER_MARK: instance_id})
            try:
                rds.create_db_instance(
                    DBInstanceIdentifier=instance_id,
                    DBClusterIdentifier=cluster_id,
                    DBInstanceClass=_need(ctx.dr_instance_class, "drInstanceClass", step),
                    Engine=AURORA_ENGINE,
                    **({"Tags": tags} if tags else {}),
                )
                changes.append(f"created instance {instance_id}")
                log_event(
                    logging.INFO,
                    "aurora instance created",
                    step=step,
                    instance=instance_id,
                    cluster=cluster_id,
                )
                break
            except ClientError as exc:
                if error_code(exc) != "DBInstanceAlreadyExists":
                    raise
                # Only a member of this cluster is ours (an earlier attempt's); any other holder of the
                # name (by chance, or someone who read the journal) is left alone and a new name drawn.
                existing = _db_instance(clients, "dr", instance_id) or {}
                if existing.get("DBClusterIdentifier") == cluster_id:
                    break
                taken.append(f"{instance_id} in {existing.get('DBClusterIdentifier') or 'no cluster'}")
                log_event(
                    logging.WARNING, "writer name taken: drawing another", step=step, instance=instance_id,
                    cluster=cluster_id,
                )  # fmt: skip
                instance_id = ""
        # The mark stays: were it cleared, a resume after the clear and before DescribeDBClusters lists
        # the new member (no AWS page says it is listed at once) would draw a second writer.
        members = [instance_id]
    if _wait(params):
        rds.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=members[0], WaiterConfig=_waiter_config(params)
        )
    else:
        statuses = [(_db_instance(clients, "dr", m) or {}).get("DBInstanceStatus") for m in members]
        if "available" not in statuses:
            return _in_progress(
                f"waiting for an instance of {cluster_id} to be available ({statuses})", cluster=cluster_id
            )

    for _ in range(AURORA_MOVE_ROUNDS):
        group, global_members = _global_members(ctx, clients, step)
        me = _member(global_members, arn)
        if me is None:
            raise StepFailed(step, f"{arn} is not a member of global cluster {gid}", code="NotAMember")
        if me.get("IsWriter"):
            detail = f"{cluster_id} is the writer of global cluster {gid}"
            return _finished(params, bool(changes), "; ".join([*changes, detail]), cluster=cluster_id)

        # FailoverState says whether a writer change is under way (DescribeGlobalClusters:
        # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html); the
        # cluster status is the fallback only.
        state = str((group.get("FailoverState") or {}).get("Status") or "")
        status = state or str(group.get("Status", ""))
        if state == "cancelling":
            # "returning to their previous states": nothing moves the writer, and nothing can be
            # asked until the global cluster is back (B21b-7).
            if not _wait(params):
                return _in_progress(
                    f"AWS is cancelling the writer change of {gid}: waiting to ask again", cluster=cluster_id
                )
            _await_failover_state_cleared(ctx, clients, params, step)
            continue
        if status in ("pending", "failing-over", "switching-over"):
            if not _wait(params):
                return _in_progress(f"global cluster {gid} is {status}", cluster=cluster_id)
        elif planned or params.get("planned"):
            pending = _request_switchover(ctx, clients, params, cluster_id, arn, gid, changes, stopped_at)
            if pending is not None:
                return _in_progress(pending, cluster=cluster_id)
        else:
            # Region A is down: a managed failover accepts the loss of writes not yet replicated
            # (RPO ~1 s) and, once region A is back, re-adds the old primary as a secondary.
            note = _loss_estimate(
                clients, "AuroraGlobalDBReplicationLag", {"DBClusterIdentifier": cluster_id}, 1000.0
            )
            rds.failover_global_cluster(
                GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=arn, AllowDataLoss=True
            )
            changes.append(f"failover of {gid} to {cluster_id} started (unplanned: {note})")
        log_event(
            logging.INFO, "aurora writer change", step=step, global_cluster=gid, target=arn, changes=changes
        )
        if not _wait(params):
            return _in_progress("; ".join(changes) or f"global cluster {gid} is {status}", cluster=cluster_id)
        if _await_aurora_writer(ctx, clients, params, arn, step):
            return _done("; ".join([*changes, f"{cluster_id} is now the writer"]), cluster=cluster_id)
        # AWS cancelled the change it had accepted (a switchover whose old primary's region stopped
        # answering while AWS verified the clusters): ask again once the clusters are back, as a
        # forced failover over a region A that went dark after its fence does (B10-4, B21b-7).
        changes.append(f"AWS cancelled the writer change of {gid}")
        log_event(logging.WARNING, "aurora writer change cancelled by AWS", step=step, global_cluster=gid)
        _await_failover_state_cleared(ctx, clients, params, step)
    raise StepFailed(
        step,
        f"AWS cancelled every writer change of {gid} asked for ({'; '.join(changes)}): {cluster_id} is not "
        "the writer; run the failover again",
        retryable=True,
        code="WriterChangeCancelled",
    )


AURORA_MOVE_ROUNDS = 3
"""How many times a waiting ``promote_database`` looks at the global cluster and asks for a writer
change (or waits for one under way): one change, its cancellation by AWS, and one change asked again
after it (B21b-7). A further cancellation stops the step (retryable)."""


def _request_switchover(
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    cluster_id: str,
    arn: str,
    gid: str,
    changes: list[str],
    stopped_at: datetime | None,
) -> str | None:
    """Region A answered its fence (its writes stopped at ``stopped_at``): the receipts' drain, then a
    switchover to ``arn``; or, for a forced failover whose region A went dark since, the managed failover
    (B10-4). Appends what it asked for to ``changes``; returns what is still awaited when the step may not
    wait (None: asked). Refused (``PlannedNeedsRegionA``) with no stop recorded since the latest fence
    attempt: a planned change that no fence reached (a declared failover before it fenced, or ``--planned``
    over a region A dark at its fence and back by now, its fence only pending) would switch over while
    region A may still take writes the stores have not replicated (break34 B34-1)."""
    step = "promote_database"
    rds = clients.rds("dr")
    if stopped_at is None:
        raise StepFailed(
            step,
            "no record that region A's writes stopped (no fence reached it: the run journal's "
            "primaryStoppedAt is missing or older than its pending fence), so the receipts' and the global "
            "table's replication cannot be waited for from that moment: "
            + PLANNED_NEEDS_REGION_A.format(how=_planned_how(ctx)),
            code="PlannedNeedsRegionA",
        )
    # Region A answers: a switchover waits for the database to catch up, losing nothing
    # (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html);
    # the receipts and the global table are not the database's to wait for: their drain, from the moment
    # the fence stopped region A's writes, is waited for first.
    lags = store_lags(ctx, "primary", "dr")
    dark = _forced_source_dark(ctx, clients, params)
    try:
        if lags:
            pending = wait_lossless(
                clients, params, stopped_at=stopped_at, lags=lags, step=step, source_dark=dark
            )
            if pending is not None:
                return pending
        rds.switchover_global_cluster(GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=arn)
        changes.append(f"switchover of {gid} to {cluster_id} started")
    except (ClientError, _SourceDark) as exc:
        refused = isinstance(exc, ClientError) and error_code(exc) == "InvalidGlobalClusterStateFault"
        if dark is None or not (
            isinstance(exc, _SourceDark) or (refused and _stays_dark(dark, clients, params))
        ):
            raise
        # Region A answered its fence and has stopped answering since. A switchover is for
        # "controlled scenarios ... where all the Aurora clusters ... are in a healthy state"
        # and AWS refuses it now; for a Regional outage AWS documents the managed failover
        # (FailoverGlobalCluster with AllowDataLoss; "Using switchover or failover in Amazon Aurora
        # Global Database", https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html).
        # Not for --planned, which asked for no loss: that refusal stands (B10-4).
        note = _loss_estimate(
            clients, "AuroraGlobalDBReplicationLag", {"DBClusterIdentifier": cluster_id}, 1000.0
        )
        why = (
            f"switchover of {gid} refused ({error_code(exc)})"
            if isinstance(exc, ClientError)
            else f"zero lag not proven ({exc})"
        )
        log_event(
            logging.WARNING,
            "region A went dark after its fence: managed failover",
            step=step,
            global_cluster=gid,
            why=why,
            mayLose=note,
        )
        rds.failover_global_cluster(
            GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=arn, AllowDataLoss=True
        )
        changes.append(
            f"{why}: region A stopped answering after its fence; failover to {cluster_id} started "
            f"(unplanned: {note})"
        )
    return None


def _await_aurora_writer(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], arn: str, step: str
) -> bool:
    """Poll the global cluster until ``arn`` is its writer (True) or AWS has cancelled the change
    (False): ``FailoverState`` ``cancelling`` ("The request to switch over or fail over the global
    cluster was cancelled and the primary Aurora DB cluster and the selected secondary Aurora DB
    cluster are returning to their previous states"), or no ``FailoverState`` ("empty unless a
    switchover or failover operation is scheduled or is in progress") on an available global cluster
    whose writer ``arn`` is not (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html).
    Raises StepFailed (retryable) when the waiter budget runs out, the change still under way."""
    config = _waiter_config(params)
    attempts = max(1, int(config["MaxAttempts"]))
    state = ""
    for attempt in range(attempts):
        group, members = _global_members(ctx, clients, step)
        if (_member(members, arn) or {}).get("IsWriter"):
            return True
        state = str((group.get("FailoverState") or {}).get("Status") or "")
        if state == "cancelling" or (not state and group.get("Status") == "available"):
            return False
        if attempt + 1 < attempts:
            clients.clock.sleep(float(config["Delay"]) or 15.0)
    raise StepFailed(
        step,
        f"{arn} is not yet the writer of {ctx.global_cluster_id} (FailoverState {state or 'none'}) after "
        f"{attempts} looks: the change is still under way; run the step again",
        retryable=True,
        code="WaiterTimeout",
    )


def _await_failover_state_cleared(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str
) -> None:
    """Wait, within the waiter budget, until the global cluster's ``FailoverState`` is empty again (a
    cancelled change's clusters back in their previous states); raises StepFailed (retryable) if not."""
    config = _waiter_config(params)
    attempts = max(1, int(config["MaxAttempts"]))
    for attempt in range(attempts):
        group, _ = _global_members(ctx, clients, step)
        if not group.get("FailoverState") and group.get("Status") == "available":
            return
        if attempt + 1 < attempts:
            clients.clock.sleep(float(config["Delay"]) or 15.0)
    raise StepFailed(
        step,
        f"global cluster {ctx.global_cluster_id} still not back from a cancelled writer change",
        retryable=True,
        code="WaiterTimeout",
    )


def _stays_dark(dark: Callable[[], bool], clients: Clients, params: Mapping[str, Any]) -> bool:
    """Whether ``dark`` confirms the source dark, polling for ``DARK_CONFIRM_SECONDS`` when the step
    may wait (else one look: a later poll of the state machine looks again)."""
    if dark():
        return True
    if not _wait(params):
        return False
    delay = float(_waiter_config(params)["Delay"]) or 15.0
    waited = 0.0
    while waited <= DARK_CONFIRM_SECONDS:
        clients.clock.sleep(delay)
        waited += delay
        if dark():
            return True
    return False


def _forced_source_dark(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]
) -> Callable[[], bool] | None:
    """For a forced failover, how its lossless wait tells that the source database went dark and stayed
    dark (B10-4, B21b-1, B33-2: ``darkness.source_dark_long_enough``, the database's own control and data
    planes, not every region-A endpoint); None for ``--planned``, which asked for no loss and stops
    instead."""
    if params.get("planned"):
        return None
    return lambda: source_dark_long_enough(ctx, clients, "promote_database")


def _latest_fence(clients: Clients, ctx: RunbookContext) -> tuple[datetime | None, datetime | None, bool]:
    """(``primaryStoppedAt``, ``fencePending``, whether the latest fence reached region A): the later of
    the two journal marks says how the latest fence went."""
    journal = read_journal(clients, ctx)
    stamp, pending = _parse_time(journal.get("primaryStoppedAt")), _parse_time(journal.get("fencePending"))
    # Reached region A only when no fence is pending: a fence stamps primaryStoppedAt before its first
    # change and clears fencePending only once it succeeded, so a stamp beside a pending mark (the same
    # second) is a fence that stamped and then failed (break36 B36-4), not one that reached region A.
    return stamp, pending, stamp is not None and pending is None


LATE_FENCE_TRIES = 3
"""How many times one promotion completes a pending fence that region A then does not let it finish (it
answered the look, then none of its endpoints answered the fence) before it stops, rolled back: a region A
that flaps this often is neither reachable nor dark (assumption). Kept small because all the while region A
serves its writer unfenced and the thrown switch keeps Route 53 on region B, which has no writer: three
tries a look gap apart (``_look_gap``; a look counts region A answering while its web tier serves, even
with its API endpoints dark: break38 B38-1) hold it so for about 45 s, and the stop's roll-back then releases the
switch, which Route 53 follows within the switch alarm's period and the health checks' thresholds; the
whole stays inside the 3 minutes docs/safety.md gives traffic to follow the writer (break37 B37-3: five
tries took longer than that)."""


LATE_FENCE_MISSES_MARK = "lateFenceMisses"
"""Run journal key: how many late fences region A left pending, with the ``fencePending`` stamp they were
counted under (a new pending fence counts from zero). In the journal, not the step, because under Step
Functions each poll of ``promote_database`` is a new invocation."""


def _late_fence_missed(clients: Clients, ctx: RunbookContext) -> int:
    """Count one more late fence that region A left pending; returns the count for its pending fence."""
    journal = read_journal(clients, ctx)
    pending = journal.get("fencePending")
    seen = journal.get(LATE_FENCE_MISSES_MARK)
    misses = 1
    if isinstance(seen, dict) and seen.get("fencePending") == pending and isinstance(seen.get("misses"), int):
        misses += seen["misses"]
    _journal(clients, ctx, **{LATE_FENCE_MISSES_MARK: {"fencePending": pending, "misses": misses}})
    return misses


class _StillLooking(Exception):
    """The late look found region A's database dark, not yet for long enough to act on."""


def _late_look_due(params: Mapping[str, Any], pending: datetime | None, source_answers: bool) -> bool:
    """Whether the promotion looks at region A's database before moving the writer (break35 B35-2): a
    forced failover (not ``planned``: that one asked for no loss and refuses instead, B34-1) whose latest
    fence found region A dark."""
    return not params.get("planned") and pending is not None and not source_answers


def _late_fence_due(
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    *,
    pending: datetime | None,
    source_answers: bool,
    step: str,
) -> bool:
    """Whether the promotion completes a pending fence first (break35 B35-2): the late look is due and
    region A's database answers now (``darkness.source_database_dark``: its control plane, then, if that is
    dark, its data plane).

    Dark is a verdict over time like every darkness verdict (break36 B36-2): one blip of connection errors
    at this look would otherwise promote unplanned over a region A that answers and still holds what it
    acknowledged before it went dark. The looks continue the ``DARK_MARK`` window the switch wait began;
    the writer moves unplanned only once they all agreed for ``fence_confirm_seconds``. Raises
    ``_StillLooking`` when the window is not confirmed yet and the step does not wait in process."""
    if not _late_look_due(params, pending, source_answers):
        return False
    # A throttled region B is a retryable failure here, not "moving" (break36 B36-3).
    if _writer_moving(ctx, clients, retry_throttled=True):
        return False
    while True:
        window = _late_look(ctx, clients, params, step)
        if not window.dark:
            return True
        if window.confirmed:
            return False
        if not _wait(params):
            raise _StillLooking(
                f"region A's database has not answered for {window.seconds:.0f} s since its fence was left "
                f"pending: looking again until {window.needed:.0f} s of looks agree before an unplanned promotion"
            )
        clients.clock.sleep(_look_gap(params, window.remaining()))


def _late_look(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str) -> Window:
    """One look of the late verdict: region A's database dark, and none of region A's endpoints answering
    (its fence is pending, so an answering web tier may still serve: break37 B37-2)."""
    return source_dark_window(ctx, clients, step, fence_confirm_seconds(params), whole_region=True)


def _look_gap(params: Mapping[str, Any], remaining: float) -> float:
    """Seconds between two looks of one confirmation, in process: the waiter delay, at most what is left."""
    return min(float(_waiter_config(params)["Delay"]) or 15.0, remaining or 1.0)


def _wait_for_switch_looking(
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    seconds: float,
    *,
    looking: bool,
    step: str,
) -> bool:
    """Sleep until the thrown switch has taken effect; when the late look is due, look at region A's
    database all along (its ``DARK_MARK`` window then needs no more time after the switch than the part
    of ``fence_confirm_seconds`` the switch wait did not cover). A look that finds region A answering ends
    the wait at once: the pending fence is then completed without waiting for the switch (the lossless
    path needs no switch in effect), so region A's writer, back and unfenced, does not serve under a switch
    that sends Route 53 elsewhere for the rest of the wait (break37 B37-3). Returns whether a look cut the
    wait short."""
    if not looking:
        clients.clock.sleep(seconds)
        return False
    while seconds > 0:
        if not _late_look(ctx, clients, params, step).dark:
            return True
        gap = min(seconds, _look_gap(params, seconds))
        clients.clock.sleep(gap)
        seconds -= gap
    return False


@_step
def promote_database(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Make the DR database the writer: RDS replica promotion, or Aurora global failover/switchover.

    The latch was written before this step (traffic follows the latch). When the step fails before
    the writer started moving, it puts the latch back to standby, so the canary does not send
    traffic to a region B that never became the writer. Step Functions retries this step alone
    (not write_latch), so each attempt first makes sure the latch says active: the latch leads."""
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") != "active" and not regressions.on(Regression.SWITCH_BEFORE_LATCH):
        _write_latch(
            clients,
            ctx,
            {
                "state": "active",
                "since": _now(clients),
                "runbook": "failover",
                "reason": params.get("reason") or "not given",
            },
        )
    try:
        return _promote_database(ctx, clients, params)
    except (StepFailed, ClientError, WaiterError) as exc:
        if not _writer_moving(ctx, clients):
            latch = _read_latch(clients, ctx) or {}
            if latch.get("state") == "active" and latch.get("runbook") == "failover":
                reason = (
                    _describe_failure("promote_database", exc)
                    if not isinstance(exc, WaiterError)
                    else str(exc)
                )
                _write_latch(
                    clients,
                    ctx,
                    {
                        "state": "standby",
                        "since": _now(clients),
                        "runbook": "failover",
                        "reason": f"failover stopped before the writer moved: {reason}"[:500],
                    },
                )
        raise


def _promote_database(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    step = "promote_database"
    # Planned (lossless) when fence_primary reached region A and stamped when its writes stopped;
    # unplanned when it found region A unreachable. A forced failover looks at region A's database
    # once more before an unplanned writer move (``_late_fence_due``); nothing else here reads region A.
    # A stamp left by an earlier fence does not make a region A that the latest fence could not
    # reach a healthy source (``fencePending``): zero lag can no longer be measured from it, and a
    # forced failover over a dark region A would wait for it until it gave up (soak seed 10).
    # The later of the two marks says how the latest fence went: a fence that reached region A after
    # one that could not (the canary's, joining this run: B20-3) makes the change planned again.
    stamp, pending, source_answers = _latest_fence(clients, ctx)
    while True:
        cut_short = False
        if not source_answers and not _writer_moving(ctx, clients):
            # Unplanned: region A was not fenced (it did not answer). Should it answer again, its old
            # writer takes whatever Route 53 sends it until the canary has fenced it, and after the
            # writer moves those writes are lost. So the writer moves only once the switch thrown just
            # before has taken effect: Route 53 then answers region B whatever region A's health (seed 6,
            # and the crash point right after the writer move over a region A that comes back at once).
            # The throw counts from the run journal's record of it, whether or not GetMetricData returns
            # its datapoint yet (break32 B32-4).
            switch_pending = _switch_pending(ctx, clients)
            looking = _late_look_due(params, pending, source_answers)
            if switch_pending > 0 and not _wait(params):
                # One look a poll: the late look's window starts with the switch wait (B36-2); a look
                # that finds region A answering goes on to complete its fence now (B37-3).
                cut_short = looking and not _late_look(ctx, clients, params, step).dark
                if not cut_short:
                    return _in_progress(
                        f"waiting {switch_pending:.0f} s for the switch to take effect before the writer moves"
                    )
            elif switch_pending > 0:
                cut_short = _wait_for_switch_looking(
                    ctx, clients, params, switch_pending, looking=looking, step=step
                )
                # The canary may have completed the pending fence during the wait (break36 B36-1).
                stamp, pending, source_answers = _latest_fence(clients, ctx)
        try:
            late_fence = _late_fence_due(
                ctx, clients, params, pending=pending, source_answers=source_answers, step=step
            )
        except _StillLooking as looking_again:
            return _in_progress(str(looking_again))
        if not late_fence:
            if cut_short and not source_answers:
                # Dark again, confirmed, before the switch wait that an answering look cut short ran
                # out: the writer still moves only once the switch has taken effect.
                continue
            break
        # A forced failover whose fence was left pending (region A dark at it), and region A's
        # database answers now (looked at during the switch wait or right before the writer would
        # move), back before the canary's minute joined the fence: what it acknowledged before it
        # went dark may still be on its way to region B, and nothing makes this change unplanned any
        # more (docs/safety.md no_loss: the unplanned exception is a promotion while the old writer's
        # region does not answer; break35 B35-2). The pending fence is completed here, as the canary
        # would (stamping when region A's writes stopped), and the promotion takes the lossless path
        # (it needs no switch in effect); a fence that region A refuses stops the run before any
        # promotion.
        fence_primary(ctx, clients, {**params, "onlyIfPending": True, "beforePromotion": True})
        stamp, pending, source_answers = _latest_fence(clients, ctx)
        if source_answers:
            break
        # Region A answered the look, then its fence found none of its endpoints answering (a blip, or
        # a region flapping) and left the fence pending: that is not 120 s of darkness (break37 B37-1).
        # The answering look restarted the window: look again, never promote unplanned on this.
        misses = _late_fence_missed(clients, ctx)
        detail = (
            "region A's database answered a look but its fence then could not reach region A "
            f"({misses} time(s)): looking again before any unplanned promotion"
        )
        if misses >= LATE_FENCE_TRIES:
            # Not retryable: region A serves its writer unfenced while the thrown switch keeps Route 53
            # on region B; the stop's roll-back gives it the traffic back (break37 B37-3).
            raise StepFailed(
                step,
                f"{detail}; gave up: region A answers some looks and not others. Nothing was promoted: run "
                "the failover again once region A is either reachable or dark",
                code="RegionAFlapping",
            )
        if not _wait(params):
            return _in_progress(detail)
        clients.clock.sleep(_look_gap(params, fence_confirm_seconds(params)))
    if ctx.database_mode == "rds-replica":
        ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
        instance = _require_db_instance(clients, "dr", ident, step)
        replicating = bool(instance.get("ReadReplicaSourceDBInstanceIdentifier"))
        busy = instance.get("DBInstanceStatus")
        if replicating and busy != "available" and not _promotion_under_way(clients, ctx, "dr", instance):
            # A replica busy with something else (backing-up, or modifying or rebooting with no
            # promotion requested: maintenance) cannot be promoted yet; the zero-lag wait comes after
            # it is available again, never skipped (B21b-4, B21b-6).
            if not _wait(params):
                return _in_progress(f"{ident} is {busy}: waiting for it to be available", instance=ident)
            clients.rds("dr").get_waiter("db_instance_available").wait(
                DBInstanceIdentifier=ident, WaiterConfig=_waiter_config(params)
            )
            instance = _require_db_instance(clients, "dr", ident, step)
        planned = source_answers and not params.get("allowDataLoss")
        if params.get("planned") and not source_answers and replicating:
            # Region A stopped answering after confirm_primary_down (the fence found it dark): an
            # unplanned promotion is not what the operator asked for.
            raise StepFailed(
                step,
                "region A could not be fenced (it does not answer), so no lossless promotion is possible: "
                + PLANNED_NEEDS_REGION_A.format(how=_planned_how(ctx)),
                code="PlannedNeedsRegionA",
            )
        if replicating and instance.get("DBInstanceStatus") == "available" and planned:
            # Region A answers: a planned change, lossless (drain, then zero lag after it).
            try:
                pending = _planned_wait(
                    ctx,
                    clients,
                    params,
                    "ReplicaLag",
                    {"DBInstanceIdentifier": ident},
                    step,
                    instance.get("Engine"),
                    source_dark=_forced_source_dark(ctx, clients, params),
                )
            except _SourceDark as dark:
                # A forced failover whose region A (fenced: its writes stopped) went dark during the
                # wait promotes unplanned, as over a region A that was dark from the start.
                log_event(
                    logging.WARNING,
                    "region A went dark during the zero-lag wait",
                    step=step,
                    waited=str(dark),
                )
                pending, source_answers = None, False
            if pending is not None:
                return _in_progress(pending, instance=ident)
        note = ""
        if not source_answers and replicating:
            # Read before promoting: the lag metric stops once the replica stops replicating.
            note = _loss_estimate(clients, "ReplicaLag", {"DBInstanceIdentifier": ident}, 1.0)
            log_event(logging.WARNING, "unplanned promotion", step=step, instance=ident, mayLose=note)
        result = _promote_rds(ctx, clients, params, "dr", ident, step)
        if note:
            return StepResult(
                result.status, f"{result.detail}; unplanned: {note}", {**result.data, "mayLose": note}
            )
        return result
    return _promote_aurora(ctx, clients, params, stopped_at=stamp if source_answers else None)


def _planned_wait(
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    metric: str,
    dims: Mapping[str, str],
    step: str,
    engine: str | None = None,
    source_dark: Callable[[], bool] | None = None,
) -> str | None:
    """A planned failover: region A was fenced (its stamp in the journal); drain, then zero lag."""
    stamp = _parse_time(read_journal(clients, ctx).get("primaryStoppedAt"))
    if stamp is None:
        raise StepFailed(
            step,
            "region A's database answers but the journal has no record of region A being fenced: run "
            "the failover again (fence_primary stamps it), or pass allowDataLoss to promote anyway",
            code="NotFenced",
        )
    lags = [database_lag(ctx, "dr", metric, dims, engine, step=step), *store_lags(ctx, "primary", "dr")]
    return wait_lossless(clients, params, stopped_at=stamp, lags=lags, step=step, source_dark=source_dark)


def _loss_estimate(clients: Clients, metric: str, dims: Mapping[str, str], per_second: float) -> str:
    """An upper estimate of what an unplanned promotion may lose: the last lag plus that datapoint's age."""
    now = clients.clock.now()
    query = _metric_query(now, "AWS/RDS", metric, dims, "Maximum", timedelta(hours=6), timedelta(minutes=5))
    latest = _latest(clients, "dr", query)
    if latest is None:
        return "may lose writes of an unknown span (no lag datapoint)"
    age = max(0.0, (now - latest[1]).total_seconds())
    if latest[0] < 0:
        # -1: replication was not active at that datapoint; how long it has not been is unknown.
        return (
            f"may lose writes of an unknown span (last {metric} {latest[0]:g} at {latest[1]}: "
            "replication not active)"
        )
    lag_s = latest[0] / per_second
    return f"may lose up to {lag_s + age:.0f} s of writes (last {metric} {latest[0]:g} at {latest[1]}, {age:.0f} s old)"
