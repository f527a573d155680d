"""Planned changes are lossless: wait for the drain, then for proof that the target holds every write.

After writes stopped (the journal's stamp), ``wait_lossless`` waits ``DRAIN_SECONDS`` and then for
every replication series (``Lag``: the database's ``ReplicaLag``, the receipts' S3
``OperationsPendingReplication``, the DynamoDB global table's ``ReplicationLatency``) to prove the
target holds every write, by datapoints taken after the drain: two consecutive zero minutes
(:func:`zero_lag_evidence`); for RDS for PostgreSQL, a replayed commit made after the drain
(:func:`replay_evidence`, with the runbook's marker commit); for the global table, which publishes
no count of what is pending, AWS's documented wait of ten times the recent maximum latency
(:func:`settled_evidence`). Used by the failover's promotion, the failback's
``wait_replication_lag`` and the IaC failback's proof (``drain_proof``). RDS for MySQL and MariaDB
have no sound proof (:data:`UNPROVABLE_ENGINES`): refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.failover import regressions
from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import SourceDark as _SourceDark
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.names import REPLICATION_RULE_ID, ledger_marker_function_name
from lambdas.failover.regressions import Regression
from lambdas.failover.stepkit import _metric_query, _wait, _waiter_config, log_event

DRAIN_SECONDS = 300.0
"""How long a fenced tier may still commit writes: the ALB target group's deregistration delay
(300 s by default: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#deregistration-delay),
which also covers an API function's in-flight invocations (reserved concurrency 0 stops new ones;
running ones end within their timeout). ``drainSeconds`` in params overrides it."""


def _drain_seconds(params: Mapping[str, Any]) -> float:
    return float(params.get("drainSeconds", DRAIN_SECONDS))


LAG_PERIOD = timedelta(minutes=1)
"""The period of the lag datapoints the zero-lag wait reads: RDS sends its metrics to CloudWatch
once a minute ("Amazon RDS automatically sends metrics to CloudWatch every minute for each active
database": https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html)."""


def _caught_up(value: float) -> bool:
    """Whether one lag datapoint says the replica holds everything: exactly 0.

    A negative value is not "below the bound": ``ReplicaLag`` -1 means replication is not active
    (MySQL and MariaDB: "If the ReplicaLag metric returns -1, then replication is currently not
    active", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_MySQL.Replication.ReadReplicas.Monitor.html),
    so the replica may lack any number of writes."""
    if regressions.on(Regression.LAG_NOT_ACTIVE_IS_CAUGHT_UP):
        return value <= 0.0
    return value == 0.0


def zero_lag_evidence(points: list[tuple[datetime, float]], drained: datetime) -> tuple[bool, str]:
    """Whether ``points`` (one-minute lag datapoints, any order) prove zero lag after ``drained``.

    The proof: the two latest datapoints are of consecutive minutes that both began after the
    drain ended, and both are exactly 0. Why two: RDS sends one datapoint a minute but does not say
    when in its minute the value is sampled, so a single zero of the first minute after the drain
    may have been sampled before a write committed late in the drain; the second minute began a
    full period after the drain ended, so its zero cannot predate any write the drain let through.
    Why the latest: a later non-zero, negative (-1: replication not active) or absent minute says
    the replica has not shown it holds everything now. Returns (proven, what was seen).
    """
    first_minute = (drained + LAG_PERIOD).replace(second=0, microsecond=0)
    after = sorted(((t, float(v)) for t, v in points if t >= first_minute), reverse=True)
    if regressions.on(Regression.ONE_ZERO_PROVES_ZERO_LAG):
        zero = [t for t, v in after if _caught_up(v)]
        return bool(zero), f"a zero at {zero[0]:%H:%M:%S}" if zero else "no zero"
    if not after:
        return False, f"no datapoint of a minute that began after the drain ended ({drained:%H:%M:%S})"
    (t1, v1), rest = after[0], after[1:]
    if not _caught_up(v1):
        why = " (replication not active)" if v1 < 0 else ""
        return False, f"latest {v1:g} at {t1:%H:%M:%S}{why}"
    if not rest:
        return False, f"one zero at {t1:%H:%M:%S}; waiting for the next minute's"
    t0, v0 = rest[0]
    if t1 - t0 != LAG_PERIOD:
        return False, f"zero at {t1:%H:%M:%S} but no datapoint for the minute before it"
    if not _caught_up(v0):
        return False, f"zero at {t1:%H:%M:%S} after {v0:g} at {t0:%H:%M:%S}; waiting for the next minute's"
    return True, f"0 at {t0:%H:%M:%S} and {t1:%H:%M:%S}"


REPLAY_MARGIN = timedelta(seconds=5)
"""How much later than the drain's end a replayed commit must be to prove anything: it covers the
skew between the clocks involved (the runbook's, the source's that stamps the commit, the replica's
``now()``, CloudWatch's minute), each kept by NTP to well under a second."""


MARKER_AFTER = 2 * REPLAY_MARGIN
"""How long after the drain's end the runbook causes its marker commit, so that the commit's own
timestamp is past ``drained + REPLAY_MARGIN`` whatever the skew."""


def replay_evidence(points: list[tuple[datetime, float]], drained: datetime) -> tuple[bool, str]:
    """Whether RDS for PostgreSQL ``ReplicaLag`` datapoints (one-minute ``Minimum``) prove that the
    replica replayed a commit made after the drain ended at ``drained``.

    The metric is ``now() - pg_last_xact_replay_timestamp()``
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PostgreSQL.Replication.ReadReplicas.Monitor.html):
    it grows on a caught-up replica of a source that commits nothing, so after a drain it is never
    0 and a zero proof (:func:`zero_lag_evidence`) never ends. What it does say: a datapoint of
    the minute starting at ``m`` with minimum ``L`` had a sample at some ``s >= m`` whose last
    replayed commit was made at ``s - L >= m - L``. PostgreSQL replays WAL in commit order, so when
    ``m - L`` is after the drain's end (by :data:`REPLAY_MARGIN`), every commit made before the drain
    ended, so every write the drain let through, is on the replica. One such datapoint suffices: a
    standby never un-replays. The commit after the drain is the runbook's marker (:data:`MARKER_AFTER`).
    Returns (proven, what was seen).
    """
    threshold = drained + REPLAY_MARGIN
    best: tuple[datetime, datetime, float] | None = None
    for t, v in points:
        if v < 0:
            continue  # not documented for PostgreSQL; proves nothing
        replayed_by = t - timedelta(seconds=float(v))
        if best is None or replayed_by > best[0]:
            best = (replayed_by, t, float(v))
    if best is None:
        return False, f"no datapoint of a minute that began after the drain ended ({drained:%H:%M:%S})"
    replayed_by, t, v = best
    seen = f"{v:g} at {t:%H:%M:%S}: replayed a commit of {replayed_by:%H:%M:%S} or later"
    if replayed_by > threshold:
        return True, f"{seen}, after the drain ended ({drained:%H:%M:%S})"
    return False, f"{seen}, not after the drain ended ({drained:%H:%M:%S}) by {REPLAY_MARGIN.seconds} s"


SETTLE_FACTOR = 10.0
"""How many times the recent maximum ``ReplicationLatency`` of the global table the runbook waits
after writes stopped: AWS's own procedure for evacuating a live region of a global table, "There's
no metric that will tell you with absolute certainty that Region A has fully replicated its data to
Region B. If Region A is healthy, pausing writes to Region A and waiting 10 times the recent maximum
value of the ReplicationLatency metric would typically be sufficient to determine replication is
complete. If Region A is unhealthy and shows other areas of increased latencies, you'd choose a
larger multiple for the wait time"
(https://docs.aws.amazon.com/prescriptive-guidance/latest/dynamodb-global-tables/evacuation-processes.html)."""

SETTLE_LOOKBACK = timedelta(hours=1)
"""How far before writes stopped "recent" reaches for the maximum latency. An assumption: AWS's
procedure does not say; an hour covers every item a client had written shortly before the stop."""

SETTLE_FLOOR = timedelta(seconds=360)
"""The shortest wait after the drain for the global table, whatever the latency read: the
``ReplicationLatency`` of the five-minute period the drain ended in (DynamoDB aggregates it over
five minutes: "For all other DynamoDB metrics, the aggregation granularity is five minutes",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html) is only
published once that period is over; the extra minute for its publication is an assumption
(CloudWatch documents no bound)."""


def settled_evidence(
    points: list[tuple[datetime, float]],
    drained: datetime,
    now: datetime,
    marker_latency: float | None = None,
) -> tuple[bool, str]:
    """Whether the DynamoDB global table's ``ReplicationLatency`` datapoints (milliseconds, any
    order, from :data:`SETTLE_LOOKBACK` before writes stopped until ``now``) say it has replicated
    every item written before the drain ended at ``drained``.

    Version 2019.11.21 publishes no count of the updates still pending (only ``ReplicationLatency``,
    per replicated item: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html),
    so zero cannot be measured; the runbook follows AWS's evacuation procedure (:data:`SETTLE_FACTOR`
    times the recent maximum latency after the pause) with the maximum read again at every poll, so
    a latency that grows while it waits makes it wait longer, and never less than
    :data:`SETTLE_FLOOR` after the drain, so the latency of the items the drain let through has been
    published. A negative value is not documented and is ignored.

    ``marker_latency``: the seconds the runbook's drain marker took to become readable in the
    receiving replica (:func:`table_marker_latency`), folded into the maximum. AWS publishes a
    latency only for an item that arrived, so a link that slowed just before the stop publishes
    nothing of its last items within the floor (break34 B34-2); the marker, written after the drain,
    measures the link as it is then. Without it (None) nothing is settled: a stalled link never
    proves. Returns (proven, what was seen).
    """
    if marker_latency is None:
        return False, "the drain marker is not yet readable in the receiving replica"
    latencies = [float(v) / 1000.0 for _, v in points if float(v) >= 0]
    latency = max([*latencies, marker_latency])
    until = drained + max(timedelta(seconds=SETTLE_FACTOR * latency), SETTLE_FLOOR)
    seen = (
        f"recent maximum {latency:g} s ({len(latencies)} datapoints, the drain marker's {marker_latency:g} s)"
    )
    if now >= until:
        return True, f"{seen}: waited until {until:%H:%M:%S}, {SETTLE_FACTOR:g} times it after the drain"
    return False, (
        f"{seen}: waiting until {until:%H:%M:%S} ({SETTLE_FACTOR:g} times it after the drain ended at "
        f"{drained:%H:%M:%S}, at least {int(SETTLE_FLOOR.total_seconds())} s)"
    )


DRAIN_MARKER_PK = "pilotlight#drain"
"""The partition key of the runbook's drain markers in the global table. The payments function's items
are ``PAYMENT#<payment_id>`` / ``PAYMENT`` (lambdas/api/payments.py ``payment_key``) and it reads by key
only (GetItem; no Query or Scan), so a marker can neither collide with a payment nor be served as one."""


def drain_marker_key(drained: datetime, source_region: str, *, seen: bool = False) -> dict[str, Any]:
    """The key of the drain marker of the drain that ended at ``drained``, written in ``source_region``
    (``seen``: the item that records when the receiving replica first showed it)."""
    sk = f"{drained:%Y%m%dT%H%M%SZ}#{source_region}" + ("#seen" if seen else "")
    return {"pk": {"S": DRAIN_MARKER_PK}, "sk": {"S": sk}}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


def _first_stamp(dynamodb: Any, table: str, key: dict[str, Any], field: str, now: datetime) -> datetime:
    """Write ``key`` with ``field`` = ``now`` unless it exists, and return the stamp it holds: the first
    writer's, so that every poll (each Step Functions invocation is a new process) reads the same one.
    Raises ClientError / BotoCoreError."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item={**key, field: {"S": now.isoformat()}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        return now
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}
    stamp = item.get(field, {}).get("S")
    return datetime.fromisoformat(stamp) if stamp else now


def table_marker_latency(
    clients: Clients, lag: Lag, drained: datetime, now: datetime
) -> tuple[float | None, str]:
    """The drain marker of the global table ``lag`` names: written after the drain into the sending
    region's replica, then read in the receiving region's; returns (seconds it took to become readable
    there, what was seen), the seconds None while it is not readable there (or cannot be written).

    ``ReplicationLatency`` is published per item that "appears in another replica"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html),
    so the items still on their way when writes stopped publish nothing until they arrive: a link that
    slowed just before the stop reads as fast as it was (break34 B34-2), a stalled one reads as nothing.
    The marker measures the link after the drain. What it proves: that one item, written after every
    write the drain let through, replicated, and how long it took. A global table (multi-Region eventual
    consistency) replicates each item change asynchronously, "typically within a second", and
    ``ConsistentRead`` is strong within the replica's own region only
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html);
    AWS documents no order across items, so the marker's arrival does not prove that earlier items
    arrived: the ten-times rule (:data:`SETTLE_FACTOR`) stays, with the marker's own latency in the
    maximum. Its stamps (written, first seen) are items of their own, so a poll in a new process
    measures the same latency. The items are deleted once the wait is over (:func:`remove_table_markers`).
    """
    table = lag.dims["TableName"]
    source: Side = lag.side
    target: Side = "dr" if source == "primary" else "primary"
    src, dst = clients.region(source), clients.region(target)
    key = drain_marker_key(drained, src)
    try:
        item = clients.dynamodb(target).get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    except ClientError as exc:
        return None, f"drain marker not readable in {dst} ({_code(exc)})"
    except BotoCoreError as exc:
        return None, f"drain marker not readable in {dst} ({type(exc).__name__})"
    if not item:
        try:
            written = _first_stamp(clients.dynamodb(source), table, key, "writtenAt", now)
        except ClientError as exc:
            log_event(logging.WARNING, "drain marker not written", table=table, region=src, code=_code(exc))
            return None, f"drain marker not written in {src} ({_code(exc)})"
        except BotoCoreError as exc:
            return None, f"drain marker not written in {src} ({type(exc).__name__})"
        return None, f"drain marker written in {src} at {written:%H:%M:%S}, not yet readable in {dst}"
    written = datetime.fromisoformat(item["writtenAt"]["S"])
    try:
        seen_at = _first_stamp(
            clients.dynamodb(target), table, drain_marker_key(drained, src, seen=True), "seenAt", now
        )
    except ClientError as exc:
        return None, f"drain marker readable in {dst}, its arrival not recorded ({_code(exc)})"
    except BotoCoreError as exc:
        return None, f"drain marker readable in {dst}, its arrival not recorded ({type(exc).__name__})"
    latency = max(0.0, (seen_at - written).total_seconds())
    return latency, f"drain marker readable in {dst} {latency:g} s after it was written in {src}"


def remove_table_markers(clients: Clients, lag: Lag, drained: datetime) -> None:
    """Delete the drain marker (sending replica) and its arrival stamp (receiving replica); a failure is
    logged and left: a leftover marker is never served (:data:`DRAIN_MARKER_PK`)."""
    table = lag.dims["TableName"]
    source: Side = lag.side
    target: Side = "dr" if source == "primary" else "primary"
    src = clients.region(source)
    marks: tuple[tuple[Side, dict[str, Any]], ...] = (
        (source, drain_marker_key(drained, src)),
        (target, drain_marker_key(drained, src, seen=True)),
    )
    for side, key in marks:
        try:
            clients.dynamodb(side).delete_item(TableName=table, Key=key)
        except (BotoCoreError, ClientError) as exc:
            log_event(
                logging.WARNING,
                "drain marker not deleted",
                table=table,
                region=clients.region(side),
                error=str(exc),
            )


@dataclass(frozen=True)
class Lag:
    """One replication series whose value, after the drain, proves a store holds every write.

    ``marker``: for RDS for PostgreSQL, the source's side and its ledger marker function: the proof
    is a replayed commit after the drain (:func:`replay_evidence`), which the marker provides.
    ``settle``: the DynamoDB global table's latency, read in the sending region: the proof is the
    documented wait (:func:`settled_evidence`). Else the proof is zero (:func:`zero_lag_evidence`)."""

    side: Side
    namespace: str
    metric: str
    dims: Mapping[str, str]
    marker: tuple[Side, str] | None = None
    settle: bool = False

    def describe(self) -> str:
        return f"{self.namespace} {self.metric} ({', '.join(self.dims.values())})"


UNPROVABLE_ENGINES = ("mysql", "mariadb")
"""RDS engines (DescribeDBInstances ``Engine``) whose planned writer move the runbook refuses before any
change: no AWS metric proves that their replica holds every write. Their ``ReplicaLag`` "reports the
value of the ``Seconds_Behind_Master`` field of the ``SHOW REPLICA STATUS`` command"
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_MySQL.Replication.ReadReplicas.Monitor.html,
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_MariaDB.Replication.ReadReplicas.Monitor.html),
which MySQL documents to "often show a value of 0, even if the I/O thread is late compared to the source"
over a slow network (https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html; break32 B32-3).
The program does not make them (components/config.py ``ENGINES``: its ledger speaks PostgreSQL only);
this guards outputs edited by hand and databases made outside it."""


def unprovable_engine(engine: object) -> bool:
    """Whether a planned change over an RDS instance of ``engine`` has no sound zero-lag proof."""
    return str(engine or "").lower().startswith(UNPROVABLE_ENGINES)


def unprovable_engine_reason(instance: str, region: str, engine: object) -> str:
    """Why a planned change over ``instance`` (``engine``: :func:`unprovable_engine`) is refused."""
    return (
        f"{instance} in {region} is RDS for {engine} (DescribeDBInstances Engine): no AWS metric proves that "
        f"a {engine} replica holds every write before a planned writer move (its ReplicaLag is "
        "Seconds_Behind_Source, which reads 0 over a slow link while the replica's I/O thread is still behind: "
        "https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html), and pilotlight's payments ledger "
        "speaks PostgreSQL only (database.engine: postgres)"
    )


def database_lag(
    ctx: RunbookContext,
    side: Side,
    metric: str,
    dims: Mapping[str, str],
    engine: str | None = None,
    *,
    step: str = "wait_lossless",
) -> Lag:
    """The relational database's lag (``ReplicaLag``), read in the replica's region (``side``).

    ``engine`` (the replica's ``Engine``, DescribeDBInstances) chooses the proof: PostgreSQL's
    ``ReplicaLag`` needs a commit after the drain on the source (:func:`replay_evidence`). MySQL's and
    MariaDB's have none (:data:`UNPROVABLE_ENGINES`): StepFailed (``UnprovableEngine``, not retryable).
    The runbook refuses them before any change (``confirm_primary_down``, ``confirm_primary_healthy``);
    this is reached only by a failover over a region A that was dark then and answers at the fence."""
    if metric == "ReplicaLag" and unprovable_engine(engine):
        raise StepFailed(
            step,
            unprovable_engine_reason(
                str(dims.get("DBInstanceIdentifier", "the replica")),
                ctx.primary_region if side == "primary" else ctx.dr_region,
                engine,
            )
            + ". The writer did not move",
            code="UnprovableEngine",
        )
    postgres = metric == "ReplicaLag" and str(engine or "").startswith("postgres")
    if not postgres or regressions.on(Regression.PG_ZERO_LAG_DATAPOINTS):
        return Lag(side, "AWS/RDS", metric, dims)
    source: Side = "dr" if side == "primary" else "primary"
    return Lag(
        side,
        "AWS/RDS",
        metric,
        dims,
        (source, ledger_marker_function_name(f"{ctx.app_name}-{ctx.environment}")),
    )


def _commit_marker(clients: Clients, lag: Lag, drained: datetime, step: str) -> str:
    """Have the source's ledger marker function commit a marker row; says what happened.

    Not an error when it fails: the wait goes on (and gives up at its budget, undoing a failback's
    drain). The marker is no client write: the drain's promise is about what clients may still
    commit, and the marker function serves no client request.
    """
    assert lag.marker is not None
    side, name = lag.marker
    payload = json.dumps({"marker": f"drain-{drained:%Y%m%dT%H%M%SZ}", "step": step}).encode()
    try:
        answer = clients.lambda_(side).invoke(
            FunctionName=name, InvocationType="RequestResponse", Payload=payload
        )
        body = json.loads(answer["Payload"].read() or b"{}")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        log_event(logging.WARNING, "marker not committed", step=step, function=name, code=code)
        return f"marker function {name} not invoked ({code})"
    except (BotoCoreError, ValueError) as exc:
        log_event(logging.WARNING, "marker not committed", step=step, function=name, error=str(exc))
        return f"marker function {name} not invoked ({type(exc).__name__})"
    if answer.get("FunctionError") or not isinstance(body, dict) or not body.get("committed"):
        reason = body.get("reason") if isinstance(body, dict) else None
        return f"marker not committed by {name}: {reason or body}"
    return f"marker committed on {body.get('database', 'the source')}"


def store_lags(ctx: RunbookContext, source: Side, target: Side) -> list[Lag]:
    """The multi-writer stores' replication from ``source`` into ``target``, those the outputs name.

    The receipts: S3 Replication metrics (on for every rule the program makes, components/storage.py)
    are "published in the Region of the destination bucket", minute by minute,
    ``OperationsPendingReplication`` being "the number of operations pending replication for a given
    replication configuration rule" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html).

    The DynamoDB global table: ``ReplicationLatency`` with dimensions ``TableName`` and
    ``ReceivingRegion``, "emitted for every source- and destination-Region pair"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html), read
    in the sending region (:func:`settled_evidence`).
    """
    if regressions.on(Regression.SKIP_STORE_DRAIN):
        return []
    lags: list[Lag] = []
    names = {"primary": ctx.primary_bucket_name, "dr": ctx.dr_bucket_name}
    src, dst = names[source], names[target]
    if src and dst:
        dims = {"SourceBucket": src, "DestinationBucket": dst, "RuleId": REPLICATION_RULE_ID}
        lags.append(Lag(target, "AWS/S3", "OperationsPendingReplication", dims))
    if ctx.global_table_name:
        receiving = ctx.dr_region if target == "dr" else ctx.primary_region
        dims = {"TableName": ctx.global_table_name, "ReceivingRegion": receiving}
        lags.append(Lag(source, "AWS/DynamoDB", "ReplicationLatency", dims, settle=True))
    return lags


def wait_lossless(
    clients: Clients,
    params: Mapping[str, Any],
    *,
    stopped_at: datetime,
    lags: list[Lag],
    step: str,
    source_dark: Callable[[], bool] | None = None,
) -> str | None:
    """Wait for the drain after writes stopped at ``stopped_at``, then for every series of ``lags``
    to prove zero by datapoints taken after it (:func:`zero_lag_evidence`): the database's lag and
    the receipts' pending replications. Returns None once all hold, else (``wait`` False) what is
    still awaited.

    Zero, not the configured bound: a planned change moves the writer only once the target holds
    every write the source acknowledged, in every store (the bound only decides when to start
    draining). Raises StepFailed (retryable) when the wait budget runs out: ``waiterMaxAttempts``
    looks at the evidence, ``waiterDelay`` apart, counted from the drain's end (Step Functions polls
    the step on the state machine's own budget, ``max_polls``). The drain is a wait of its own
    (``drainSeconds``) in which no datapoint can prove anything: counted against the budget, it left
    the in-process executor 885 s of its default 20 minutes, less than a PostgreSQL proof needs over
    a link 900 s behind (the marker, made ``MARKER_AFTER`` after the drain, reaches the replica the
    link's delay later and shows in the next minute's datapoint). The wait gave up and undid the
    drain, and every resumed run drained again into the same deficit (soak seeds 1 and 372).

    Raises ``_SourceDark`` when ``source_dark`` (a forced failover's, never a ``--planned`` one's)
    says region A stopped answering while zero was not yet proven: what it had not replicated then
    waits for region A.

    A stop stamp ahead of this host's clock (the fencing host's clock ahead of it) is waited out for the
    drain's own length only: every poll of the drain beyond that counts against the budget (break34 B34-4).
    """
    drain = _drain_seconds(params)
    drained = stopped_at + timedelta(seconds=drain)
    config = _waiter_config(params)
    attempts = max(1, int(config["MaxAttempts"]))
    note = "not checked"
    looked = 0  # looks at the evidence; the polls of the drain are not counted (see the docstring)
    began = clients.clock.now()
    while True:
        now = clients.clock.now()
        if now < drained:
            note = f"draining until {drained:%H:%M:%S} (writes stopped at {stopped_at:%H:%M:%S})"
            if (now - began).total_seconds() > drain:
                # break34 B34-4: the stamp was written by the host that fenced (stepkit._now), whose clock
                # may run ahead of this one (EC2 keeps time with the Amazon Time Sync Service, an
                # operator's host need not: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/set-time.html).
                # Only the drain's own length is free; a poll of the drain beyond it counts against the
                # budget, so a skewed stamp gives up as a LagTimeout instead of waiting the skew out.
                # The evidence window stays on the stamp (never this host's clock): moving it earlier to
                # this host's now would let datapoints from before the real stop prove zero were it this
                # host's clock that lags.
                looked += 1
                note += (
                    f"; the stop stamp is {(stopped_at - began).total_seconds():.0f} s ahead of this host's "
                    "clock when the wait began: check the clocks of the host that fenced and of this one"
                )
        else:
            looked += 1
            waiting: list[str] = []
            for lag in lags:
                query = _metric_query(
                    now,
                    lag.namespace,
                    lag.metric,
                    lag.dims,
                    "Maximum" if lag.marker is None else "Minimum",
                    timedelta(hours=1),
                    timedelta(minutes=5),
                )
                query["StartTime"] = (
                    stopped_at - SETTLE_LOOKBACK
                    if lag.settle
                    else (drained + LAG_PERIOD).replace(second=0, microsecond=0)
                )
                try:
                    results = clients.cloudwatch(lag.side).get_metric_data(**query)["MetricDataResults"]
                except (BotoCoreError, ClientError) as exc:
                    if not lag.settle:
                        raise
                    # Read in the sending region, which may be region A going dark during a forced
                    # failover: not proven, and ``source_dark`` below decides.
                    waiting.append(f"{lag.describe()} not readable in the sending region: {exc}")
                    continue
                points = (
                    list(zip(results[0].get("Timestamps", []), results[0].get("Values", []), strict=False))
                    if results
                    else []
                )
                if lag.settle:
                    latency, marker = table_marker_latency(clients, lag, drained, now)
                    proven, seen = settled_evidence(points, drained, now, latency)
                    if not proven:
                        waiting.append(f"{lag.describe()} not yet settled after the drain: {seen}; {marker}")
                    continue
                if lag.marker is None:
                    proven, seen = zero_lag_evidence(points, drained)
                    if not proven:
                        waiting.append(f"{lag.describe()} not yet proven 0 after the drain: {seen}")
                    continue
                proven, seen = replay_evidence(points, drained)
                if not proven:
                    if now >= drained + MARKER_AFTER:
                        seen = f"{seen}; {_commit_marker(clients, lag, drained, step)}"
                    waiting.append(
                        f"{lag.describe()} not yet proven to hold every write of the drain: {seen}"
                    )
            if not waiting:
                for lag in lags:
                    if lag.settle:
                        remove_table_markers(clients, lag, drained)
                return None
            note = "; ".join(waiting)
            if source_dark is not None and source_dark():
                raise _SourceDark(note)
        if not _wait(params):
            return note
        if looked >= attempts:
            break
        clients.clock.sleep(float(config["Delay"]))
    raise StepFailed(step, f"gave up waiting for zero lag: {note}", retryable=True, code="LagTimeout")
