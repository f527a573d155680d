"""Health of this region's API, for Route 53 health checks and the failover runbook's verify step.

The answer says whether this region is the active one and whether its relational database is the
writer, and lists each dependency check. Any failed check makes the answer 503, so Route 53 sees the
region unhealthy; the body still carries everything that could be learnt.

``active`` follows the failover latch (an SSM parameter in the DR region, ``{"state": ...}``):

- the DR region is active when its database is the writer or the latch says ``active``;
- the primary region is active unless the latch says ``active`` (the DR region took over). The
  latch lives in the DR region, so when the primary cannot read it (the DR region is down, or
  unreachable) the primary assumes it is still active and says so: a DR-region outage must not take
  the primary out of service.

**Region A does not wait for region B.** Its latch read is one attempt with quarter-second
timeouts (``clients.REMOTE_LATCH_CONFIG``), and it is made at most once per :data:`LATCH_TTL_SECONDS`
after a success, or per :data:`LATCH_RETRY_SECONDS` after a failure, per container: in between, the
last value read (:class:`LatchMemo`) answers. Why a remembered value is safe there: in region A the
latch only decides what ``active`` says; Route 53 routing follows region A's endpoint and the failover
switch alarm in region B, not this answer, and the latch changes only at a failover or failback,
after which the runbook's own checks read it directly. Why not wait: a Route 53 checker gives the
answer 2 seconds, so a slow region B would fail region A's health check and move traffic *into*
the impaired region. Region B's function reads its own region's latch, uncached (it decides whether
region B answers as active).

**The database is judged from its data plane too.** RDS's ``DescribeDBInstances`` and
``DescribeGlobalClusters`` are control-plane calls; AWS's guidance is to rely on data-plane operations
for recovery and to expect control planes to be less available than data planes
(https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/aws-infrastructure.html;
https://docs.aws.amazon.com/r53recovery/latest/dg/data-and-control-planes.html: "use data plane functions for your
mechanisms whenever you can ... a data plane ... can maintain availability ... when a control plane might
become unavailable").
When the function has the database's credentials (``HealthSettings.ledger``, as the payment routes
use them), each answer also runs :data:`WRITER_PROBE_SQL` on this region's database, and
:func:`judge_database` combines the two: the data plane's answer carries the check when RDS's API
does not answer (a regional control-plane incident leaves region A serving its writer, and its
health must say so: break39 B39-1, where a 503 here made Route 53 and the failover's late look
take a serving region A for dark); a problem RDS *states* (no such instance, ``failed``, not a
member) still fails it; a writer that refuses the function's sessions by rule (a fence) fails it;
and a database the probe missed (saturated, slow, rebooting, its secret unread) keeps RDS's answer,
degraded, so a blip on the function's own path never moves clients off the writer (break40).
The checks run side by side under :data:`HEALTH_DEADLINE_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.api.config import AuroraGlobalTarget, DatabaseTarget, HealthSettings, RdsReplicaTarget
from lambdas.api.health_rules import (
    BUSY,
    DEGRADED,
    FAILED,
    OK,
    REFUSED,
    SKIPPED,
    CheckError,
    control_plane_answered,
    error_code,
    judge_database,
)
from lambdas.api.ledger import DatabaseBusy, Execute, LedgerUnavailable, NotWriter, SessionRefused
from lambdas.api.payments import payment_key
from lambdas.api.responses import aws_error_code, is_throttling, log_json
from lambdas.db_status import UNAVAILABLE_INSTANCE_STATUSES

LATCH_ACTIVE = "active"
# UPDATING: a global-table replica being added or a capacity change; reads and writes still work.
USABLE_TABLE_STATUSES = ("ACTIVE", "UPDATING")

T = TypeVar("T")

WRITER_PROBE_SQL = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' "
    "WHEN current_setting('transaction_read_only') = 'on' THEN 'read-only' ELSE 'writer' END"
)
"""What this region's database is, asked of the database itself: ``replica`` (a standby: an RDS read
replica), ``read-only`` (sessions start read-only: a fenced writer,
``automation/postgres/fence.py``'s ``default_transaction_read_only``) or ``writer``. One statement,
no table, so it works before the ledger exists and on a standby."""
TABLE_PROBE_ID = "pilotlight-health-probe"
"""The payment id whose key the table's data-plane read asks for. Only whether the read is served
counts; what it finds (a client may have used the id) is not looked at."""
HEALTH_DEADLINE_SECONDS = 1.5
"""How long the health route waits for its table, RDS and database checks, run side by side: a Route 53
checker counts the endpoint unhealthy unless it answers "within two seconds after connecting"
(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html);
the rest of the 2 s is the latch (region A: a quarter-second read at most, usually from memory) and the answer."""
PROBE_TIMEOUT_SECONDS = 1.0
"""The driver's socket timeout for the probe (each read; the deadline above bounds the whole probe)."""
DATA_PLANE_ANSWERS = ("writer", "replica", "read-only", "not-writer")
"""What the probe may find; ``not-writer``: the database refused it as a non-writer (an Aurora
secondary through the Data API, which takes no query until promoted)."""
LATCH_TTL_SECONDS = 60.0
"""How long region A trusts the last latch value it read before reading region B again."""
LATCH_RETRY_SECONDS = 30.0
"""After a failed read, how long region A answers from memory before it tries region B again."""


@dataclass
class LatchMemo:
    """Region A's last read of the latch in region B, kept for the life of the container.

    Attributes:
        value: the last state read successfully (None: never read).
        read_at: when (``clock`` seconds) that read succeeded.
        failed_at, error: when the last read failed, and its error code.
        clock: a monotonic clock (tests pass their own).
    """

    value: str | None = None
    read_at: float | None = None
    failed_at: float | None = None
    error: str | None = None
    clock: Callable[[], float] = time.monotonic

    def read(self, read: Callable[[], str], context: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """The latch state and the check's outcome, reading region B only when the memory is stale."""
        now = self.clock()
        if self.read_at is not None and now - self.read_at < LATCH_TTL_SECONDS:
            return self.value, {"status": OK, "cached_seconds": round(now - self.read_at, 1)}
        if self.failed_at is not None and now - self.failed_at < LATCH_RETRY_SECONDS:
            return self.value, self._failed()
        state, outcome = _attempt("latch", read, context)
        if state is not None:
            self.value, self.read_at, self.failed_at, self.error = state, now, None, None
            return state, outcome
        self.failed_at, self.error = now, outcome.get("error")
        return self.value, self._failed()

    def _failed(self) -> dict[str, Any]:
        outcome: dict[str, Any] = {"status": FAILED, "error": self.error}
        if self.value is not None and self.read_at is not None:
            outcome["last_known_seconds"] = round(self.clock() - self.read_at, 1)
        return outcome


@dataclass(frozen=True)
class HealthReport:
    """The health answer: ``checks`` maps a check name to its outcome (``status`` is ok/failed/...)."""

    region: str
    role: str
    active: bool
    writer: bool | None
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """False when any check failed."""
        return all(check["status"] != FAILED for check in self.checks.values())

    @property
    def throttled(self) -> bool:
        """Whether a failed check failed because AWS throttled it (a retry soon may pass)."""
        return any(
            check["status"] == FAILED and is_throttling(str(check.get("error", "")))
            for check in self.checks.values()
        )

    def body(self) -> dict[str, Any]:
        """The JSON body of ``GET /health``."""
        return {
            "region": self.region,
            "role": self.role,
            "active": self.active,
            "writer": self.writer,
            "checks": self.checks,
        }


def decide_active(role: str, writer: bool | None, latch_state: str | None) -> bool:
    """Whether this region is the active one. ``latch_state`` None means the latch could not be read."""
    if role == "dr":
        return writer is True or latch_state == LATCH_ACTIVE
    return latch_state != LATCH_ACTIVE


def check_table(dynamodb: BaseClient, table_name: str) -> dict[str, Any]:
    """The table exists in this region and can serve reads and writes."""
    status = str(dynamodb.describe_table(TableName=table_name)["Table"]["TableStatus"])
    if status not in USABLE_TABLE_STATUSES:
        raise CheckError("TableNotUsable", f"table {table_name} is {status}")
    return {"table": table_name, "table_status": status}


def read_table(dynamodb: BaseClient, table_name: str) -> None:
    """One read of the table (``GetItem``, a data-plane call) for a key no payment has."""
    dynamodb.get_item(TableName=table_name, Key=payment_key(TABLE_PROBE_ID), ProjectionExpression="pk")


def table_check(dynamodb: BaseClient, table_name: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """``DescribeTable`` (control plane) judges the table; when it gives no answer
    (:func:`control_plane_answered`), a read the table serves (data plane) degrades the check
    instead of failing it, as for the database (:func:`judge_database`)."""
    try:
        return {"status": OK, **check_table(dynamodb, table_name)}
    except (ClientError, BotoCoreError, CheckError) as exc:
        failure = exc
    code = error_code(failure)
    log_json(
        logging.WARNING, "health check failed", check="table", error_code=code, detail=str(failure), **context
    )
    if control_plane_answered(failure):
        return {"status": FAILED, "error": code}
    _, read = _attempt("table data plane", lambda: read_table(dynamodb, table_name), context)
    if read["status"] != OK:
        return {"status": FAILED, "error": code, "data_plane": read}
    return {"status": DEGRADED, "control_plane_error": code, "data_plane": {"answer": "read"}}


def rds_writer(rds: BaseClient, target: RdsReplicaTarget) -> dict[str, Any]:
    """Whether the RDS instance is the writer: a promoted replica, or a source, has no replication source."""
    instances = rds.describe_db_instances(DBInstanceIdentifier=target.db_instance_id)["DBInstances"]
    if not instances:
        raise CheckError("DBInstanceNotFound", f"no DB instance {target.db_instance_id}")
    instance = instances[0]
    status = instance.get("DBInstanceStatus")
    if status in UNAVAILABLE_INSTANCE_STATUSES:
        # An instance RDS describes as taking no write (failed, stopped, its key out of reach, ...) serves
        # nothing: this region is not healthy, whatever its replication source says (break39 B39-2: a
        # failed writer answered 200 and held a failover's late look on "region A answers").
        raise CheckError("DatabaseUnavailable", f"DB instance {target.db_instance_id} is {status}")
    return {
        "mode": "rds-replica",
        "instance": target.db_instance_id,
        "instance_status": instance.get("DBInstanceStatus"),
        "writer": not instance.get("ReadReplicaSourceDBInstanceIdentifier"),
    }


def aurora_writer(rds: BaseClient, target: AuroraGlobalTarget) -> dict[str, Any]:
    """Whether this region's cluster is the writer member of the Aurora global database."""
    response = rds.describe_global_clusters(GlobalClusterIdentifier=target.global_cluster_id)
    # Matched by identifier rather than taking the first entry: the filter is the API's promise, and
    # a wrong global cluster's members would give a wrong answer rather than an error.
    clusters = [
        c for c in response["GlobalClusters"] if c.get("GlobalClusterIdentifier") == target.global_cluster_id
    ]
    if not clusters:
        raise CheckError("GlobalClusterNotFoundFault", f"no global cluster {target.global_cluster_id}")
    for member in clusters[0].get("GlobalClusterMembers", []):
        if member.get("DBClusterArn") == target.db_cluster_arn:
            return {
                "mode": "aurora-global",
                "global_cluster": target.global_cluster_id,
                "cluster_arn": target.db_cluster_arn,
                "writer": bool(member.get("IsWriter")),
            }
    # A cluster detached from the global database is not reported as a writer here: the runbook
    # fails over with the global database's own failover, which keeps the membership.
    raise CheckError(
        "NotAGlobalClusterMember",
        f"{target.db_cluster_arn} is not a member of global cluster {target.global_cluster_id}",
    )


def check_database(rds: BaseClient, target: DatabaseTarget) -> dict[str, Any]:
    """The writer check for whichever database mode the stack uses."""
    if isinstance(target, RdsReplicaTarget):
        return rds_writer(rds, target)
    return aurora_writer(rds, target)


def probe_database(execute: Execute) -> str:
    """One of :data:`DATA_PLANE_ANSWERS`, from :data:`WRITER_PROBE_SQL` run on this region's database.

    Raises :class:`~lambdas.api.ledger.LedgerUnavailable` when the database takes no statement from
    this function (unreachable, refusing the session, the outcome lost), and CheckError when it
    answers something else."""
    try:
        rows = execute(WRITER_PROBE_SQL, {})
    except NotWriter:
        return "not-writer"
    answer = str(rows[0][0]) if rows and rows[0] else ""
    if answer not in DATA_PLANE_ANSWERS:
        raise CheckError("UnexpectedProbeAnswer", f"the writer probe answered {answer!r}")
    return answer


def _probe(execute: Execute, context: Mapping[str, Any]) -> dict[str, Any]:
    """The data plane's outcome: ``{"answer": ...}`` or ``{"error": code}`` (logged). Never raises: the
    driver may raise its own errors for what it does not map (``ledger.driver_executor``)."""
    try:
        return {"answer": probe_database(execute)}
    except DatabaseBusy:
        # Up and full: it answered, only not with its role (too many connections, the Data API throttling).
        return {"answer": BUSY}
    except SessionRefused as exc:
        # The database itself turned this function's session away (a fence's pg_hba rule): its say.
        code, detail = REFUSED, f"{exc.message}: {exc.detail}"
    except LedgerUnavailable as exc:
        code, detail = exc.reason, f"{exc.message}: {exc.detail}"
    except CheckError as exc:
        code, detail = exc.code, str(exc)
    except ClientError as exc:
        code, detail = aws_error_code(exc), str(exc)
    except Exception as exc:  # any other failure is "no answer", never a traceback
        code, detail = type(exc).__name__, str(exc)
    log_json(
        logging.WARNING,
        "health check failed",
        check="database data plane",
        error_code=code,
        detail=detail,
        **context,
    )
    return {"error": code}


def read_latch(ssm: BaseClient, parameter: str) -> str:
    """The latch state from its SSM parameter; raises CheckError when the value is not ``{"state": str}``."""
    value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    try:
        state = json.loads(value).get("state")
    except (ValueError, AttributeError) as exc:
        raise CheckError("MalformedLatch", f"latch {parameter} is not a JSON object") from exc
    if not isinstance(state, str):
        raise CheckError("MalformedLatch", f"latch {parameter} has no string 'state'")
    return state


def _attempt(
    name: str, check: Callable[[], T], context: Mapping[str, Any]
) -> tuple[T | None, dict[str, Any]]:
    """Run one check. A failure is logged with its context and returned as the check's outcome."""
    try:
        return check(), {"status": OK}
    except ClientError as exc:
        code, detail = aws_error_code(exc), str(exc.response.get("Error", {}).get("Message", ""))
    except BotoCoreError as exc:
        code, detail = type(exc).__name__, str(exc)
    except CheckError as exc:
        code, detail = exc.code, str(exc)
    log_json(logging.WARNING, "health check failed", check=name, error_code=code, detail=detail, **context)
    # The code is enough for an operator reading the answer; the message stays in the log.
    return None, {"status": FAILED, "error": code}


class NoAnswerInTime(Exception):
    """A check that had not answered by :data:`HEALTH_DEADLINE_SECONDS`: no answer, not a statement."""


def side_by_side(jobs: Mapping[str, Callable[[], T]], deadline: float) -> dict[str, T]:
    """Run each job in a thread of its own; the results of those that finished within ``deadline``
    seconds. A job still running is left to end on its own clients' timeouts (they are short:
    ``clients.HEALTH_CONFIG``, :data:`PROBE_TIMEOUT_SECONDS`); its result is dropped."""
    results: dict[str, T] = {}
    lock = threading.Lock()

    def run(name: str, job: Callable[[], T]) -> None:
        result = job()
        with lock:
            results[name] = result

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in jobs.items()]
    for thread in threads:
        thread.start()
    end = time.monotonic() + deadline
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    with lock:
        return dict(results)


def _control_plane(
    rds: BaseClient, target: DatabaseTarget, context: Mapping[str, Any]
) -> dict[str, Any] | BaseException:
    """RDS's answer about the database, or what its call raised (logged)."""
    try:
        return check_database(rds, target)
    except (ClientError, BotoCoreError, CheckError) as exc:
        log_json(
            logging.WARNING,
            "health check failed",
            check="database",
            error_code=error_code(exc),
            detail=str(exc),
            **context,
        )
        return exc


def evaluate_health(
    settings: HealthSettings,
    dynamodb: BaseClient,
    rds: BaseClient | None,
    latch_ssm: BaseClient,
    context: Mapping[str, Any] | None = None,
    latch_memo: LatchMemo | None = None,
    execute: Execute | None = None,
) -> HealthReport:
    """Run the checks and decide ``active`` and ``writer``.

    ``dynamodb`` and ``rds`` must be clients in ``settings.region``, ``latch_ssm`` in
    ``settings.latch_region``; ``rds`` may be None when the stack has no relational database.
    ``latch_memo``: region A's memory of the latch (see the module docstring); unused in region B.
    ``execute``: this region's database's data plane (:func:`judge_database`); None: RDS's API alone.
    """
    ctx = {"region": settings.region, "role": settings.role, **(context or {})}
    checks: dict[str, dict[str, Any]] = {}

    # The table's check, RDS's answer and the database's own run side by side under one deadline:
    # a Route 53 checker waits 2 s for the answer, and a control plane that hangs must not make a
    # serving region A look dark (break40 B40-3, B40-4). What has not answered in time is "no answer".
    jobs: dict[str, Callable[[], Any]] = {}
    table_name = settings.table_name
    if table_name is not None:
        jobs["table"] = lambda: table_check(dynamodb, table_name, ctx)
    target = settings.database
    if target is not None:
        if rds is None:
            raise ValueError("evaluate_health needs an RDS client when the stack has a database")
        jobs["control"] = lambda: _control_plane(rds, target, ctx)
        if execute is not None:
            jobs["data"] = lambda: _probe(execute, ctx)
    done = side_by_side(jobs, HEALTH_DEADLINE_SECONDS)
    late = NoAnswerInTime(f"no answer within {HEALTH_DEADLINE_SECONDS} s")

    if table_name is None:
        checks["table"] = {"status": SKIPPED, "reason": "no table (TABLE_NAME unset)"}
    else:
        checks["table"] = done.get("table") or {"status": FAILED, "error": error_code(late)}

    writer: bool | None = None
    if target is None:
        checks["database"] = {"status": SKIPPED, "reason": "no relational database (DB_MODE unset)"}
    else:
        data = (done.get("data") or {"error": error_code(late)}) if execute is not None else None
        writer, checks["database"] = judge_database(done.get("control", late), data)

    def read() -> str:
        return read_latch(latch_ssm, settings.latch_parameter)

    if settings.role == "primary" and latch_memo is not None:
        latch_state, latch = latch_memo.read(read, ctx)
    else:
        latch_state, latch = _attempt("latch", read, ctx)
    latch.update({"parameter": settings.latch_parameter, "region": settings.latch_region})
    if latch_state is not None:
        latch["state"] = latch_state
        if latch["status"] == FAILED:  # region A, answering from its last read
            latch["status"] = DEGRADED
    elif settings.role == "primary":
        latch.update({"status": DEGRADED, "assumed": "primary active: the latch could not be read"})
    elif writer is True:
        latch.update({"status": DEGRADED, "assumed": "active: this region's database is the writer"})
    checks["latch"] = latch

    return HealthReport(
        region=settings.region,
        role=settings.role,
        active=decide_active(settings.role, writer, latch_state),
        writer=writer,
        checks=checks,
    )
