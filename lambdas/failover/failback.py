"""The failback's database and latch steps: region A gets the writer back.

``confirm_primary_healthy`` (region A answers; a pending fence completes first),
``reestablish_replication`` (rds-replica: rename to replace, a replica of region B's writer under
region A's primary's name; aurora-global: region A's cluster is a member), ``wait_replication_lag``
(zero lag B -> A after region B's drain, else the drain is undone), ``switch_writer`` (write-ahead
``WRITER_MOVE_MARK``, then promotion or switchover) and ``clear_latch``. The run journal's
``FAILBACK_JOURNAL_KEY`` entry is what tells the replica this failback created from the old primary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.failover import regressions
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.fencing import _writer_moved_back, fence_region_a, keep_unplanned_snapshots
from lambdas.failover.journal import (
    PROMOTING_STATUSES,
    PROMOTION_MARK,
    WRITER_MOVE_MARK,
    _forget_drain_proof,
    _iac_failback_phase,
    _journal,
    _promotion_requested,
    _read_latch,
    _write_latch,
    _writer_move_requested,
    read_journal,
)
from lambdas.failover.lossless import (
    database_lag,
    store_lags,
    unprovable_engine,
    unprovable_engine_reason,
    wait_lossless,
)
from lambdas.failover.names import FAILBACK_STAMP_TAG, phase_record_name, retained_instance_id, retained_stamp
from lambdas.failover.promotion import _inherited_tags, _promote_rds
from lambdas.failover.regressions import Regression
from lambdas.failover.stepkit import (
    CONNECTION_ERRORS,
    StepResult,
    _already,
    _asg,
    _db_instance,
    _done,
    _finished,
    _global_members,
    _in_progress,
    _member,
    _need,
    _now,
    _parse_time,
    _primary_cluster_arn,
    _probe,
    _require_db_instance,
    _reserved_concurrency,
    _set_asg,
    _set_mappings,
    _step,
    _wait,
    _waiter_config,
    _writer_waiter,
    log_event,
)

FAILBACK_JOURNAL_KEY = "failback"
"""Journal entry of the rds-replica failback under way: ``retained`` (the name region A's old primary
is renamed to), ``replicaOf`` (region B's writer), ``created`` (the replica was requested under the
primary's name). Written before each change it describes, cleared by ``clear_latch``: it is what
tells the instance this failback created under ``<primary>`` from the old primary it replaced."""


RETAINED_JOURNAL_KEY = "retainedPrimaries"
"""Journal list, never cleared: every old primary a failback renamed and kept, and when."""


def _failback_writer_id(ctx: RunbookContext, step: str) -> str:
    """rds-replica failback: the replica is created, and promoted, under region A's primary's own
    name (rename to replace), the endpoint region A's application is configured with."""
    primary = _need(ctx.primary_db_instance_id, "primaryDbInstanceId", step)
    if regressions.on(Regression.FAILBACK_BESIDE_PRIMARY):
        return f"{primary}-failback"
    return primary


def _same_instance(ref: Any, ident: str) -> bool:
    """Whether ``ref`` (an identifier or an ARN, as RDS reports a replication source) names ``ident``."""
    return ref == ident or str(ref).endswith(f":db:{ident}")


def _writer_never_left_a(ctx: RunbookContext, clients: Clients, step: str) -> str | None:
    """What shows, from AWS state, that region A holds the writer and region B's database follows it
    (None: it does not): rds-replica, region B's instance is a replica of region A's primary, which is
    standalone; aurora-global, region A's cluster is the writer of the global database and no
    failover or switchover is under way. Then no failover moved the writer (or region B was
    re-seeded after a failback): a failback has no database to move back. Region B's replica in a
    status a promotion passes through (``PROMOTING_STATUSES``) does not say so: it keeps naming its
    source until the promotion ends
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html), and not every
    promotion is journaled (the runbook's is, ``PROMOTION_MARK``; the dr stack's ``dr:active`` update
    promotes it by dropping ``replicate_source_db`` and writes none: break29 B29-1), so a replica being
    modified or rebooted for maintenance reads as a writer possibly leaving region A until it is
    ``available`` again (the safe side: a failback waits, :func:`_refuse_while_region_b_may_be_promoted`)."""
    if ctx.database_mode == "rds-replica":
        dr_id = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
        dr = _db_instance(clients, "dr", dr_id) or {}
        if (
            dr.get("ReadReplicaSourceDBInstanceIdentifier")
            and dr.get("DBInstanceStatus") in PROMOTING_STATUSES
        ):
            return None
        source = str(dr.get("ReadReplicaSourceDBInstanceIdentifier") or "")
        # A cross-region replica names its source by ARN (arn:aws:rds:<region>:<account>:db:<id>):
        # region A's primary, or the instance an IaC failback left region A's writer.
        parts = source.split(":")
        if len(parts) != 7 or parts[3] != ctx.primary_region or parts[5] != "db":
            return None
        writer = _db_instance(clients, "primary", parts[6])
        if writer is None or writer.get("ReadReplicaSourceDBInstanceIdentifier"):
            return None
        return (
            f"{dr_id} in {ctx.dr_region} replicates from {parts[6]}, region A's standalone writer: "
            "the writer never left region A"
        )
    group, members = _global_members(ctx, clients, step)
    me = _member(members, _primary_cluster_arn(ctx, step)) or {}
    if not me.get("IsWriter") or group.get("FailoverState"):
        return None
    return f"{ctx.primary_cluster_id} is the writer of {ctx.global_cluster_id}: the writer is in region A"


def _refuse_while_region_b_may_be_promoted(
    ctx: RunbookContext, clients: Clients, replica: Mapping[str, Any], step: str
) -> None:
    """Refuse, before the failback moves anything, while region B's replica is in a status a promotion
    passes through (:func:`_writer_never_left_a`): a promotion AWS is carrying out makes region B's
    instance the writer minutes from now, whatever the failback decided from its replica status."""
    status = replica.get("DBInstanceStatus")
    if status not in PROMOTING_STATUSES:
        return
    ident = str(replica.get("DBInstanceIdentifier") or "")
    seen = (
        f"{ident} in {ctx.dr_region} is being promoted ({status}), as the failover asked"
        if _promotion_requested(clients, ctx, "dr", ident)
        else f"{ident} in {ctx.dr_region} is {status}: it is being promoted if the dr stack's dr:active "
        "update promoted it (that writes no journal mark; maintenance shows the same status)"
    )
    raise StepFailed(
        step,
        f"{seen}, so the writer may be leaving region A. The failback moved no database and no traffic. "
        "Wait until it is available (`python -m automation status`), then fail back",
        code="PromotionUnderWay",
    )


def _refuse_during_iac_failback(
    ctx: RunbookContext, clients: Clients, latch: Mapping[str, Any], step: str
) -> None:
    """Refuse the runbook's failback, before anything changes, while the dr stack's failback is under way.

    rds-replica. From ``dr:failback replicate`` the dr stack holds region A's failback instance
    (``<primary>-failback``), a replica of region B's writer, protected. The runbook's failback makes its
    own replica under ``<primary>`` (rename-to-replace); the IaC one, released by the standby updates
    after it, stays in region A's instance lineage as a replica of region B's released instance, and
    once it is standalone (promoted by hand, or its source deleted) the primary stack takes it for region
    A's newest writer and points the application at a copy frozen at the failback (break23 BR23-6). Two
    failback procedures at once: one of them has to be finished, or the IaC one held at ``replicate``.
    """
    if ctx.database_mode != "rds-replica":
        return
    phase = _iac_failback_phase(ctx, clients, latch)
    if phase is None:
        return
    raise StepFailed(
        step,
        f"the dr stack's failback is under way (dr:failback {phase} applied under this failover: "
        f"{phase_record_name(ctx.latch_parameter_name)}); the runbook's failback would leave that failback's "
        "replica in region A beside its own. Nothing was changed. Finish the IaC failback one phase at a time "
        '(README, "Failing back"), or hold it at dr:failback replicate (region B serves, region A\'s replica '
        "keeps up) and resume it later",
        code="IacFailbackUnderWay",
    )


def _refuse_unprovable_engine(
    ctx: RunbookContext, clients: Clients, journal: Mapping[str, Any], step: str
) -> None:
    """Refuse the failback, before anything changes, when region B's writer is RDS for MySQL or MariaDB
    (``lossless.UNPROVABLE_ENGINES``): its replica in region A would have no sound zero-lag proof, and a
    failback is always planned. Not once a failback asked to move the writer (``WRITER_MOVE_MARK``): that
    run is finished, not begun."""
    if ctx.database_mode != "rds-replica" or journal.get(WRITER_MOVE_MARK):
        return
    ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
    writer = _db_instance(clients, "dr", ident)
    if writer is None or not unprovable_engine(writer.get("Engine")):
        return
    raise StepFailed(
        step,
        f"{unprovable_engine_reason(ident, ctx.dr_region, writer.get('Engine'))}; a failback is a planned "
        "change: the writer moves back only on that proof. Nothing was changed; region B keeps serving",
        code="UnprovableEngine",
    )


@_step
def confirm_primary_healthy(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Region A's control plane answers (and its endpoint is reachable) before anything moves back.

    The web tier in region A is fenced at 0 after a failover, so its health endpoint cannot be
    expected to answer 200: any HTTP answer shows the network path is back; what failback really
    needs is region A's APIs, checked by describing its Auto Scaling group.
    """
    step = "confirm_primary_healthy"
    try:
        group = _asg(clients, "primary", ctx.primary_asg_name, step)
    except CONNECTION_ERRORS as exc:
        # The first call of the failback, before anything changes: say so, and what to do. Where region B
        # stands is the run journal's word: a failback that already asked to move the writer left region B
        # drained, and service waits for region A (break25 BR25-3).
        try:
            moving = read_journal(clients, ctx).get(WRITER_MOVE_MARK)
        except (ClientError, BotoCoreError):
            moving = None
        where = (
            f"region B stays drained: a failback asked to move the writer to region A at {moving} (the run "
            "journal), so service waits for region A"
            if moving
            else "region B keeps serving"
        )
        raise StepFailed(
            step,
            f"region A ({ctx.primary_region}) does not answer ({type(exc).__name__}): a failback needs "
            "region A (it re-creates replication there and moves the writer back). Nothing was changed; "
            f"{where}. Run the failback again once region A answers",
            retryable=True,
            code=type(exc).__name__,
        ) from exc
    notes = [f"region A API answers ({ctx.primary_asg_name} desired {group['DesiredCapacity']})"]
    journal = read_journal(clients, ctx)
    latch = _read_latch(clients, ctx) or {}
    _refuse_during_iac_failback(ctx, clients, latch, step)
    stopped = (
        journal.get("primaryStoppedAt") or journal.get("fencePending") or journal.get("failoverDeclaredAt")
    )
    # A failover that stopped region A before it moved the writer (it died, or was refused) leaves
    # the same journal marks as one that moved it: AWS state says which.
    in_a = _writer_never_left_a(ctx, clients, step)
    if in_a:
        notes.append(in_a)
    moved = None if in_a else _writer_moved_back(ctx, clients, runbook_failback=False)
    if moved is not None and (latch.get("state") == "active" or stopped):
        # AWS's word, whatever the latch and the dr stack's record say (break24b BR24b-3): the failback
        # would rename region A's writer out of the way and replace it with a replica of region B's copy.
        raise StepFailed(
            step,
            f"region A already holds the writer: {moved}, so the dr stack's failback promoted it after "
            f"{ctx.dr_db_instance_id} in {ctx.dr_region}, now a copy frozen at that promotion; the runbook's "
            "failback would rename region A's writer out of the way and replace it with a replica of that "
            "copy. Nothing was changed. Finish the dr stack's failback one phase at a time (README, "
            '"Failing back"): `python -m automation latch release`, dr:failback route-back, then complete',
            code="IacFailbackUnderWay",
        )
    if not in_a:
        _refuse_unprovable_engine(ctx, clients, journal, step)
    changed = False
    if latch.get("state") != "active" and stopped and not in_a:
        changed = True
        # The journal says a failover stopped region A and no failback gave it back, whatever the
        # latch says (deleted, garbled, or set to standby by hand): region B holds the writer. The
        # latch is restored from that evidence, so the steps after this one move the writer back
        # instead of answering "no failover is latched" and handing region A its stale database.
        _write_latch(
            clients,
            ctx,
            {
                "state": "active",
                "since": _now(clients),
                "runbook": "failover",
                "reason": f"restored by the failback from the run journal (latch was {latch or 'absent'})"[
                    :500
                ],
            },
        )
        notes.append("latch restored to active from the run journal (region A was fenced by a failover)")
    pending = journal.get("fencePending")
    if pending:
        changed = True
    if pending and in_a:
        # Region A's database is the writer: region A is where writes belong, and a fence would
        # only leave nothing serving until unfence_primary. The mark is stale.
        _journal(clients, ctx, fencePending=None)
        notes.append(f"cleared the pending fence of region A (since {pending}): it holds the writer")
    elif pending:
        # The failover could not reach region A and nothing has fenced it since: it may still take
        # writes its old database keeps. Fence it before anything replicates back, and clear the
        # mark so the canary does not fence the region this failback is about to give writes back to.
        actions = fence_region_a(ctx, clients, step)
        _journal(clients, ctx, fencePending=None)
        notes.append(
            f"fenced region A first (pending since {pending}): {'; '.join(actions) or 'already fenced'}"
        )
    kept = keep_unplanned_snapshots(ctx, clients)
    if kept:
        notes.append(
            "the writes the unplanned failover discarded are kept in manual snapshot(s) " + ", ".join(kept)
        )
    if ctx.primary_health_url:
        probe = _probe(step, ctx.primary_health_url, params, clients)
        if probe.status is None:
            raise StepFailed(
                step, f"region A endpoint {ctx.primary_health_url} {probe.describe()}", retryable=True
            )
        notes.append(f"{ctx.primary_health_url} {probe.describe()}")
    if in_a and not changed and not kept:
        # A check that changed nothing over a writer that is in region A: the failback's steps
        # will find their end states in place (the run says "nothing to do" when they all do).
        return _already("; ".join(notes))
    return _done("; ".join(notes))


@_step
def reestablish_replication(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Replicate region B's writer back into region A (new RDS replica / Aurora secondary)."""
    step = "reestablish_replication"
    if ctx.database_mode == "aurora-global":
        _, members = _global_members(ctx, clients, step)
        primary_arn = _primary_cluster_arn(ctx, step)
        me = _member(members, primary_arn)
        if me is None:
            raise StepFailed(
                step,
                f"{ctx.primary_cluster_id} is not a member of global cluster {ctx.global_cluster_id}. After an "
                "unplanned failover Aurora re-adds the old primary once region A recovers; if it did not, "
                "delete the old primary cluster and create it again as a secondary (create-db-cluster "
                f"--global-cluster-identifier {ctx.global_cluster_id} in {ctx.primary_region}), then re-run",
                code="NotAMember",
            )
        role = "writer" if me.get("IsWriter") else "secondary (replicating from region B)"
        return _already(f"{ctx.primary_cluster_id} is a member of {ctx.global_cluster_id}: {role}")

    return _reestablish_rds(ctx, clients, params)


def _reestablish_rds(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Rename to replace (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html,
    "Renaming to replace an existing DB instance"): region A's old primary, left a standalone writer by
    the failover, is renamed ``<primary>-pre-failback-<stamp>`` and kept; a cross-region replica of region
    B's writer is created under ``<primary>``, in region A's VPC, so that once ``switch_writer`` promotes
    it, region A's application finds the writer at the endpoint it has always used.

    Resumable at every point, from AWS state and the journal: ``<primary>`` a replica of region B's
    writer (created: wait for it), ``<primary>`` missing with the rename journaled (wait for the renamed
    instance, then create), ``<primary>`` standalone with no replica journaled (the old primary: rename).
    """
    step = "reestablish_replication"
    dr_id = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
    primary_id = _failback_writer_id(ctx, step)
    rds = clients.rds("primary")
    record = dict(read_journal(clients, ctx).get(FAILBACK_JOURNAL_KEY) or {})
    current = _db_instance(clients, "primary", primary_id)
    changes: list[str] = []
    source_arn = current.get("ReadReplicaSourceDBInstanceIdentifier") if current else None
    if current is not None and source_arn:
        if not _same_instance(source_arn, dr_id):
            raise StepFailed(
                step,
                f"{primary_id} in {ctx.primary_region} replicates from {source_arn}, not from {dr_id}: "
                "the failback only promotes a replica of region B's writer",
                code="UnexpectedReplicationSource",
            )
        if not record.get("created"):
            # Created by a call that stopped before journaling it.
            record["created"] = True
            _journal(clients, ctx, **{FAILBACK_JOURNAL_KEY: record})
        return _await_failback_replica(ctx, clients, params, primary_id, dr_id, record, changes)
    if current is not None and record.get("created"):
        # A re-run after switch_writer: the replica this failback created is region A's writer.
        return _already(
            f"{primary_id} in {ctx.primary_region} is already promoted (writer): nothing to replicate",
            instance=primary_id,
            retained=record.get("retained"),
        )
    source = _require_db_instance(clients, "dr", dr_id, step)
    if source.get("ReadReplicaSourceDBInstanceIdentifier"):
        _refuse_while_region_b_may_be_promoted(ctx, clients, source, step)
        in_a = _writer_never_left_a(ctx, clients, step)
        if in_a:
            return _already(f"{in_a}: nothing to re-establish", instance=str(ctx.primary_db_instance_id))
        raise StepFailed(
            step, f"{dr_id} in {ctx.dr_region} is still a replica: fail over first", code="NotPromoted"
        )
    if regressions.on(Regression.FAILBACK_BESIDE_PRIMARY):
        # The old behaviour: a second instance beside the old primary, which keeps its name.
        model = _require_db_instance(clients, "primary", str(ctx.primary_db_instance_id), step)
        return _create_failback_replica(ctx, clients, params, source, model, primary_id, record, changes)
    if current is not None:
        # The old primary, standalone since the failover. Renamed only while the latch says region B
        # holds the writer: with no failover latched, <primary> *is* the writer (a failback that
        # completed, or none needed) and renaming it would take region A's database away.
        if (_read_latch(clients, ctx) or {}).get("state") != "active":
            return _already(
                f"{primary_id} is region A's standalone writer and no failover is latched: nothing to "
                "re-establish",
                instance=primary_id,
            )
        retained = str(record.get("retained") or retained_instance_id(primary_id, clients.clock.now()))
        now = _now(clients)
        record = {"retained": retained, "replicaOf": source["DBInstanceArn"], "renamedAt": now}
        history = [h for h in read_journal(clients, ctx).get(RETAINED_JOURNAL_KEY, []) if isinstance(h, dict)]
        if not any(h.get("instance") == retained for h in history):
            history.append({"instance": retained, "was": primary_id, "region": ctx.primary_region, "at": now})
        # Journaled before the call: a run stopped right after it finds the name it chose.
        _journal(clients, ctx, **{FAILBACK_JOURNAL_KEY: record, RETAINED_JOURNAL_KEY: history})
        rds.modify_db_instance(
            DBInstanceIdentifier=primary_id, NewDBInstanceIdentifier=retained, ApplyImmediately=True
        )
        log_event(logging.INFO, "old primary renamed", step=step, instance=primary_id, retained=retained)
        changes.append(
            f"renamed the old primary {primary_id} to {retained} (kept: region A's writes before the failover)"
        )
    retained = record.get("retained")
    if not retained:
        raise StepFailed(
            step,
            f"no DB instance {primary_id} in {ctx.primary_region} and the journal records no rename of it: "
            "restore region A's primary under that name (or rename it back), then re-run",
            code="DBInstanceNotFound",
        )
    old = _require_db_instance(clients, "primary", str(retained), step)
    if old.get("DBInstanceStatus") != "available":
        # "The renamed DB instance is not available until the new name becomes effective" (about 10
        # minutes); the old name is free for the replacement only then.
        if not _wait(params):
            return _in_progress(
                "; ".join([*changes, f"{retained} is {old.get('DBInstanceStatus')}: waiting for the rename"]),
                instance=primary_id,
                retained=retained,
            )
        rds.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=str(retained), WaiterConfig=_waiter_config(params)
        )
        old = _require_db_instance(clients, "primary", str(retained), step)
    return _create_failback_replica(ctx, clients, params, source, old, primary_id, record, changes)


def _create_failback_replica(
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    source: Mapping[str, Any],
    old: Mapping[str, Any],
    primary_id: str,
    record: dict[str, Any],
    changes: list[str],
) -> StepResult:
    """Request the replica of region B's writer under ``primary_id``, modelled on ``old``."""
    step = "reestablish_replication"
    dr_id = str(source["DBInstanceIdentifier"])
    retained = record.get("retained")
    rds = clients.rds("primary")
    kwargs = _failback_replica_request(ctx, params, source, old, primary_id, step)
    stamp = retained_stamp(primary_id, str(retained)) if retained else None
    if _inherited_tags(old):  # the deployment's tags, as the instance it replaces carries them
        kwargs["Tags"] = _inherited_tags(old)
    if stamp and not regressions.on(Regression.FAILBACK_UNTAGGED):
        # Which retained instance this replica replaces, on the instance itself (tags survive the
        # promotion and any later rename): the primary stack reads it live and adopts the instance
        # under a name derived from the stamp (components/primary_data.py), so region A's writer is in its
        # state with no hand edit of state. Tagging on create is authorized as rds:AddTagsToResource too
        # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-grant-permissions-tags-on-create.html).
        kwargs["Tags"] = [*kwargs.get("Tags", []), {"Key": FAILBACK_STAMP_TAG, "Value": stamp}]
    # Journaled before the call: from now on a standalone <primary> is this failback's writer. A
    # promotion an earlier failback requested under the same name was of another instance.
    record["created"] = True
    stale = {PROMOTION_MARK: None} if _promotion_requested(clients, ctx, "primary", primary_id) else {}
    _journal(clients, ctx, **{FAILBACK_JOURNAL_KEY: record, **stale})
    rds.create_db_instance_read_replica(**kwargs)
    log_event(
        logging.INFO,
        "failback replica created",
        step=step,
        instance=primary_id,
        source=source["DBInstanceArn"],
        retained=retained,
    )
    changes.append(f"created replica {primary_id} of {dr_id} in {ctx.primary_region}'s VPC")
    if not _wait(params):
        # RDS answers "creating" for minutes: the state machine comes back for it.
        return _in_progress("; ".join(changes), instance=primary_id, retained=retained)
    return _await_failback_replica(ctx, clients, params, primary_id, dr_id, record, changes)


def _failback_replica_request(
    ctx: RunbookContext,
    params: Mapping[str, Any],
    source: Mapping[str, Any],
    old: Mapping[str, Any],
    primary_id: str,
    step: str,
) -> dict[str, Any]:
    """CreateDBInstanceReadReplica arguments: region B's writer as source, region A's old primary as the
    model of where and how the replacement runs (its VPC, security groups, size, availability)."""
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": primary_id,
        "SourceDBInstanceIdentifier": source["DBInstanceArn"],
        "DBInstanceClass": old.get("DBInstanceClass") or source["DBInstanceClass"],
        # botocore builds the cross-region pre-signed URL from SourceRegion.
        "SourceRegion": ctx.dr_region,
        "MultiAZ": bool(old.get("MultiAZ")),
        "PubliclyAccessible": bool(old.get("PubliclyAccessible")),
    }
    subnet_group = (old.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    if subnet_group:
        # "If no DB subnet group is specified, then the new DB instance isn't created in a VPC"
        # (CreateDBInstanceReadReplica, DBSubnetGroupName).
        kwargs["DBSubnetGroupName"] = subnet_group
    groups = [
        g["VpcSecurityGroupId"] for g in old.get("VpcSecurityGroups", []) if g.get("VpcSecurityGroupId")
    ]
    if groups:
        kwargs["VpcSecurityGroupIds"] = groups
    parameter_groups = [g["DBParameterGroupName"] for g in old.get("DBParameterGroups", [])]
    if parameter_groups and str(old.get("Engine", "")).startswith("mysql"):
        # DBParameterGroupName: a cross-Region replica takes a named group only for MySQL (and Oracle,
        # Db2); other engines get the engine's default group (CreateDBInstanceReadReplica API reference).
        kwargs["DBParameterGroupName"] = parameter_groups[0]
    options = [g["OptionGroupName"] for g in old.get("OptionGroupMemberships", [])]
    if options and not options[0].startswith("default:"):
        kwargs["OptionGroupName"] = options[0]
    if old.get("IAMDatabaseAuthenticationEnabled"):
        kwargs["EnableIAMDatabaseAuthentication"] = True
    if old.get("DeletionProtection"):
        kwargs["DeletionProtection"] = True
    if source.get("StorageEncrypted"):
        # A cross-region replica of an encrypted instance needs a key in its own region:
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html
        # The outputs name region A's key (primaryKmsKeyArn); an explicit parameter wins.
        kms = params.get("failbackKmsKeyId")
        if not kms and not regressions.on(Regression.NO_PRIMARY_KMS_KEY):
            kms = ctx.primary_kms_key_arn
        if not kms:
            raise StepFailed(
                step,
                f"{source['DBInstanceIdentifier']} is encrypted and the outputs name no primaryKmsKeyArn: pass "
                f"failbackKmsKeyId (a KMS key in {ctx.primary_region}) for the replica in region A",
                code="MissingKmsKey",
            )
        kwargs["KmsKeyId"] = kms
    return kwargs


def _await_failback_replica(
    ctx: RunbookContext,
    clients: Clients,
    params: Mapping[str, Any],
    primary_id: str,
    dr_id: str,
    record: Mapping[str, Any],
    changes: list[str],
) -> StepResult:
    """Wait for the replica under ``<primary>`` to be available (it replicates from then on)."""
    instance = _require_db_instance(clients, "primary", primary_id, "reestablish_replication")
    retained = record.get("retained")
    status = instance.get("DBInstanceStatus")
    if status != "available":
        if not _wait(params):
            return _in_progress(
                "; ".join([*changes, f"replica {primary_id} in {ctx.primary_region} is {status}"]),
                instance=primary_id,
                retained=retained,
            )
        clients.rds("primary").get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=primary_id, WaiterConfig=_waiter_config(params)
        )
    detail = f"{primary_id} in {ctx.primary_region} replicates from {dr_id} in {ctx.dr_region}"
    if retained:
        detail += f"; region A's old primary is kept as {retained}"
    return _finished(
        params, bool(changes), "; ".join([*changes, detail]), instance=primary_id, retained=retained
    )


@_step
def wait_replication_lag(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Wait for region B's drain, then for zero lag B -> A measured after it (not the bound).

    When zero lag cannot be reached in the wait budget, the drain is undone (region B serves the
    writer again) and the step fails: the failback stopped on its own decision and left a region
    serving the writer. Re-run it later.
    """
    step = "wait_replication_lag"
    if ctx.database_mode == "aurora-global":
        _, members = _global_members(ctx, clients, step)
        me = _member(members, _primary_cluster_arn(ctx, step))
        if me and me.get("IsWriter"):
            return _already(f"{ctx.primary_cluster_id} is already the writer: no lag to wait for")
        # A switchover itself waits for the secondary to catch up: nothing of the database is lost
        # by it. The receipts and the global table are not the database's: their drain is waited for here.
        what, lags = "the receipts' and the global table's replication", store_lags(ctx, "dr", "primary")
        if not lags:
            return _done("Aurora switchover waits for zero lag itself (switch_writer)")
    else:
        what = fb_id = _failback_writer_id(ctx, step)
        instance = _require_db_instance(clients, "primary", fb_id, step)
        if not instance.get("ReadReplicaSourceDBInstanceIdentifier"):
            return _already(f"{fb_id} is already promoted: no lag to wait for")
        lags = [
            database_lag(
                ctx,
                "primary",
                "ReplicaLag",
                {"DBInstanceIdentifier": fb_id},
                instance.get("Engine"),
                step=step,
            ),
            *store_lags(ctx, "dr", "primary"),
        ]
    stamp = _parse_time(read_journal(clients, ctx).get("drStoppedAt"))
    if stamp is None:
        raise StepFailed(
            step,
            "the journal has no record of region B's writes stopping: run scale_down_dr",
            code="NotDrained",
        )
    try:
        pending = wait_lossless(clients, params, stopped_at=stamp, lags=lags, step=step)
    except StepFailed as exc:
        undone = _undo_drain(ctx, clients, step)
        raise StepFailed(
            step,
            f"{exc.reason}; region B serves again ({'; '.join(undone) or 'nothing to undo'}). Run the "
            "failback again when the replica keeps up",
            retryable=True,
            code=exc.code,
        ) from exc
    if pending is not None:
        return _in_progress(f"{what}: {pending}")
    return _done(f"{', '.join(lag.describe() for lag in lags)}: 0, measured after region B's drain")


def _undo_drain(ctx: RunbookContext, clients: Clients, step: str) -> list[str]:
    """Give region B back its serving capacity (a failback that gave up must not leave it dark)."""
    if regressions.on(Regression.FAILBACK_STAYS_DRAINED):
        return []
    if "drStoppedAt" in read_journal(clients, ctx):
        _journal(clients, ctx, drStoppedAt=None)
    _forget_drain_proof(clients, ctx)  # region B takes writes again (capacity.scale_web_tier)
    changes: list[str] = []
    changed, before = _set_asg(clients, "dr", ctx.dr_asg_name, ctx.dr_capacity, step)
    if changed:
        changes.append(f"{ctx.dr_asg_name} {before.min}/{before.desired}/{before.max} -> serving capacity")
    for name in ctx.dr_function_names:
        if _reserved_concurrency(clients, "dr", name) == 0:
            clients.lambda_("dr").delete_function_concurrency(FunctionName=name)
            changes.append(f"function {name} unthrottled")
    changes += _set_mappings(clients, ctx.dr_event_source_mapping_ids, enabled=True)
    return changes


@_step
def switch_writer(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Make region A the writer again: promote the failback replica / Aurora switchover. Writes
    ``WRITER_MOVE_MARK`` before it asks AWS for anything (region B is drained and its lag was measured
    at zero after the drain): from here on, a failback that stops or dies rolls forward."""
    return _move_writer_to_a(ctx, clients, params, "switch_writer")


def _move_writer_to_a(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str
) -> StepResult:
    """``switch_writer``'s move, also ``restore_dr``'s roll-forward (``params`` without ``wait``)."""
    if ctx.database_mode == "rds-replica":
        writer = _failback_writer_id(ctx, step)
        latched = (_read_latch(clients, ctx) or {}).get("state") == "active"
        if latched and not (read_journal(clients, ctx).get(FAILBACK_JOURNAL_KEY) or {}).get("created"):
            in_a = _writer_never_left_a(ctx, clients, step)
            if in_a:
                # Nothing to move, but a failover to give back (the latch is active): traffic may
                # follow region A's writer.
                _writer_move_requested(clients, ctx)
                return _already(f"{in_a}: nothing to switch", instance=str(ctx.primary_db_instance_id))
            # <primary> is still the old primary (standalone): "promoting" it would move nothing.
            raise StepFailed(
                step,
                f"no failback replica under {writer} yet: run reestablish_replication",
                code="NotReplicating",
            )
        replica = (_db_instance(clients, "primary", writer) or {}).get(
            "ReadReplicaSourceDBInstanceIdentifier"
        )
        if latched or replica:
            # (Not when there is neither a failover to give back nor a replica to promote: a
            # failback with nothing to do changes nothing.)
            _writer_move_requested(clients, ctx)
        return _promote_rds(ctx, clients, params, "primary", writer, step)
    gid = _need(ctx.global_cluster_id, "globalClusterId", step)
    primary_arn = _primary_cluster_arn(ctx, step)
    group, members = _global_members(ctx, clients, step)
    me = _member(members, primary_arn)
    if me is None:
        raise StepFailed(
            step, f"{primary_arn} is not a member of {gid}: run reestablish_replication", code="NotAMember"
        )
    if me.get("IsWriter"):
        if (_read_latch(clients, ctx) or {}).get("state") == "active":
            # Nothing to move, but a failover to give back: traffic may follow region A's writer.
            _writer_move_requested(clients, ctx)
        return _finished(params, False, f"{ctx.primary_cluster_id} is the writer of {gid}")
    _writer_move_requested(clients, ctx)
    started = False
    failover_state = str((group.get("FailoverState") or {}).get("Status") or "")
    if failover_state == "cancelling" and not _wait(params):
        # "returning to their previous states" (FailoverState): region B stays the writer, nothing
        # moves it (B21-2).
        return _in_progress(f"switchover of {gid} cancelled by AWS: nothing moves the writer", underWay=False)
    if group.get("Status") not in ("failing-over", "switching-over"):
        # Switchover, not failover: both regions are up, and a switchover loses no data.
        clients.rds("dr").switchover_global_cluster(
            GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=primary_arn
        )
        started = True
    if not _wait(params):
        return _in_progress(
            f"switchover of {gid} to {ctx.primary_cluster_id} {'started' if started else 'under way'}",
            underWay=True,
        )
    _writer_waiter(clients.rds("dr"), primary_arn).wait(
        GlobalClusterIdentifier=gid, WaiterConfig=_waiter_config(params)
    )
    return _done(f"switched {gid} over to {ctx.primary_cluster_id}")


@_step
def clear_latch(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Set the latch back to standby: ``dr:active false`` is accepted again."""
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "standby":
        _end_failback_journal(clients, ctx)
        return _already(f"latch {ctx.latch_parameter_name} already standby")
    value = {
        "state": "standby",
        "since": _now(clients),
        "runbook": "failback",
        "reason": params.get("reason") or "failback",
    }
    _write_latch(clients, ctx, value)
    _end_failback_journal(clients, ctx)
    return _done(f"latch {ctx.latch_parameter_name} set to standby", latch=value)


def _end_failback_journal(clients: Clients, ctx: RunbookContext) -> None:
    """Forget the rds-replica failback's entry once the latch says standby, never before: while the
    latch says active, the entry is what tells reestablish_replication that the standalone
    ``<primary>`` is this failback's promoted writer, not the old primary to rename. (The retained
    names stay listed under ``retainedPrimaries``.)"""
    journal = read_journal(clients, ctx)
    if FAILBACK_JOURNAL_KEY in journal or WRITER_MOVE_MARK in journal:
        _journal(clients, ctx, **{FAILBACK_JOURNAL_KEY: None, WRITER_MOVE_MARK: None})
