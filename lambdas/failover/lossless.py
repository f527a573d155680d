"""Planned changes are lossless: wait for the drain, then for proof that the target holds every write.

After writes stopped (the journal's stamp), ``wait_lossless`` waits ``DRAIN_SECONDS`` and then for
every replication series (``Lag``: the database's ``ReplicaLag``, the receipts' S3
``OperationsPendingReplication``) to prove zero by datapoints taken after the drain: two
consecutive zero minutes (:func:`zero_lag_evidence`: the receipts' pending replications), or, for
RDS for PostgreSQL, a replayed commit made after the drain (:func:`replay_evidence`, with the runbook's
marker commit). RDS for MySQL and MariaDB have no sound proof (:data:`UNPROVABLE_ENGINES`): refused.
Used by the failover's promotion and the failback's ``wait_replication_lag``.
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


@dataclass(frozen=True)
class Lag:
    """One replication series whose value, after the drain, proves a store holds every write.

    ``marker``: for RDS for PostgreSQL, the source's side and its ledger marker function: the proof
    is a replayed commit after the drain (:func:`replay_evidence`), which the marker provides; else
    None and the proof is zero (:func:`zero_lag_evidence`)."""

    side: Side
    namespace: str
    metric: str
    dims: Mapping[str, str]
    marker: tuple[Side, str] | None = None

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


def receipts_lag(ctx: RunbookContext, source: Side, target: Side) -> list[Lag]:
    """The receipts' replication from ``source``'s bucket into ``target``'s, if the outputs name them.

    S3 Replication metrics (on for every rule the program makes, components/storage.py) are
    "published in the Region of the destination bucket", minute by minute, ``OperationsPendingReplication``
    being "the number of operations pending replication for a given replication configuration rule"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html). The DynamoDB global
    table is not waited for here: version 2019.11.21 publishes only ``ReplicationLatency``, per
    replicated item, and no count of what is still pending (see the report of this change).
    """
    names = {"primary": ctx.primary_bucket_name, "dr": ctx.dr_bucket_name}
    src, dst = names[source], names[target]
    if not src or not dst or regressions.on(Regression.SKIP_STORE_DRAIN):
        return []
    dims = {"SourceBucket": src, "DestinationBucket": dst, "RuleId": REPLICATION_RULE_ID}
    return [Lag(target, "AWS/S3", "OperationsPendingReplication", dims)]


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
    draining). Raises StepFailed (retryable) when the wait budget runs out; raises ``_SourceDark``
    when ``source_dark`` (a forced failover's, never a ``--planned`` one's) says region A stopped
    answering while zero was not yet proven: what it had not replicated then waits for region A.
    """
    drained = stopped_at + timedelta(seconds=_drain_seconds(params))
    config = _waiter_config(params)
    attempts = max(1, int(config["MaxAttempts"]))
    note = "not checked"
    for attempt in range(attempts):
        now = clients.clock.now()
        if now < drained:
            note = f"draining until {drained:%H:%M:%S} (writes stopped at {stopped_at:%H:%M:%S})"
        else:
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
                query["StartTime"] = (drained + LAG_PERIOD).replace(second=0, microsecond=0)
                results = clients.cloudwatch(lag.side).get_metric_data(**query)["MetricDataResults"]
                points = (
                    list(zip(results[0].get("Timestamps", []), results[0].get("Values", []), strict=False))
                    if results
                    else []
                )
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
                return None
            note = "; ".join(waiting)
            if source_dark is not None and source_dark():
                raise _SourceDark(note)
        if not _wait(params):
            return note
        if attempt + 1 < attempts:
            clients.clock.sleep(float(config["Delay"]))
    raise StepFailed(step, f"gave up waiting for zero lag: {note}", retryable=True, code="LagTimeout")
