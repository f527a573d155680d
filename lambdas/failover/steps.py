"""The runbook's step handlers: one function per step name in the FAILOVER and FAILBACK graphs.

Every handler has the same shape, ``handler(ctx, clients, params) -> StepResult``, and is called
by both executors: the Step Functions state machine (through ``lambdas.failover.handler``, with
``params["wait"] = False``) and the in-process executor of the break-glass CLI and the local drill
(``lambdas.failover.executor``, with ``params["wait"] = True`` for long-running steps).

Rules every handler keeps:

* **Idempotent.** It reads the current state first; when the target state is already there it
  changes nothing and answers ``already_done`` saying what it found. A run that stopped half-way is
  resumed by running it again.
* **Errors by AWS error code.** A ``ClientError`` is turned into ``StepFailed`` whose reason
  carries the code. Throttling and transient failures are retried by botocore (adaptive mode,
  configured in ``clients.py``); when botocore gives up they surface as ``StepFailed`` with
  ``retryable=True`` so Step Functions can retry the whole step later. Nothing is swallowed: each
  failure is logged as one JSON line with its context.
* **Long-running work** (RDS promotion, Aurora failover, replication catch-up) either blocks on a
  boto3 waiter (``wait=True``) or starts the operation and answers ``in_progress``
  (``wait=False``); the state machine then waits and calls the step again, which finds the
  operation under way or finished. An ``in_progress`` result's ``data`` holds ``{"polling": true}``;
  passing it back in ``params`` lets the finishing call answer ``done`` rather than
  ``already_done``.

Parameters read from ``params`` (all optional): ``wait``, ``force``, ``reason``, ``planned``
(switch over instead of failing over: region A is healthy), ``runbook``, ``summary`` (for notify),
``failbackKmsKeyId`` (default: the outputs' ``primaryKmsKeyArn``),
``waiterDelay`` / ``waiterMaxAttempts`` (boto3 ``WaiterConfig``), ``probeTries`` /
``probeInterval`` / ``probeTimeout`` (health URL probes), ``drainSeconds`` (how long a fenced tier
may still commit writes; default 300, the ALB deregistration delay), ``allowDataLoss`` (promote a
replica whose source answers without waiting for zero lag: the operator's explicit choice).

Safety rules (docs/safety.md):

* **Fencing is a precondition.** ``fence_primary`` must succeed when region A answers; only
  connection errors (region A unreachable) make it a warning.
* **Planned changes are lossless.** When region A was fenced (its stop is stamped in the run
  journal, an SSM parameter next to the latch), the promotion waits for the drain and then for a
  zero-lag datapoint taken after it; Aurora switches over. The failback does the same after
  ``scale_down_dr``, and undoes its drain when zero lag does not come in time.
* **The latch leads, the switch follows, the writer moves last.** The failover fences region A
  (functions and event sources, then the web tier), writes the latch, throws the switch, and only
  then moves the writer (an unplanned move waits for the switch to take effect); the canary never
  releases the switch on doubt. A run stopped on a failed step before the writer moved rolls back
  (``roll_back_fence``, the failover's ``on_stop``).
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    WaiterError,
)
from botocore.waiter import WaiterModel, create_waiter_with_client

from lambdas.failover import regressions
from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import Capacity, RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.names import (
    FAILBACK_STAMP_TAG,
    REPLICATION_RULE_ID,
    REQUIRED_TAG_KEYS,
    UNPLANNED_SNAPSHOT_PREFIX,
    failover_instance_id,
    kept_snapshot_id,
    ledger_marker_function_name,
    retained_instance_id,
    retained_stamp,
)
from lambdas.failover.regressions import Regression

StepStatus = Literal["done", "already_done", "in_progress", "warning", "skipped"]
STEP_STATUSES: tuple[StepStatus, ...] = ("done", "already_done", "in_progress", "warning", "skipped")

LOGGER = logging.getLogger("pilotlight.failover")

POLL_KEY = "polling"
"""Set in an ``in_progress`` result's data; echoed back in params by the caller that polls."""

AURORA_ENGINE = "aurora-postgresql"

# Error codes botocore itself treats as throttling or transient. Once its retries are exhausted
# the step is still worth retrying later (Step Functions Retry on StepRetryable).
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceException",
        "ResourceInUseException",
        "ResourceConflictException",
    }
)
CONNECTION_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


def log_event(level: int, message: str, **fields: Any) -> None:
    """Log one JSON line: ``{"level", "message", ...context}``."""
    if LOGGER.isEnabledFor(level):
        record = {"level": logging.getLevelName(level).lower(), "message": message, **fields}
        LOGGER.log(level, json.dumps(record, default=str, sort_keys=False))


# ---------------------------------------------------------------------------------------------
# Results and failures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """What a step did.

    Attributes:
        status: ``done`` (changed something and the target state holds), ``already_done`` (the
            target state was already there: nothing changed), ``in_progress`` (an operation is
            under way: call again later), ``warning`` (a best-effort step could not do its work;
            the run goes on), ``skipped`` (not needed, e.g. forced by the operator).
        detail: one line for people.
        data: JSON-serialisable facts for machines (identifiers, before/after values).
    """

    status: StepStatus
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The handler's response shape."""
        return {"status": self.status, "detail": self.detail, "data": self.data}


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` (``"Unknown"`` if the response had none)."""
    return str(exc.response.get("Error", {}).get("Code") or "Unknown")


def _from_client_error(step: str, exc: ClientError) -> StepFailed:
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
    retryable = code in RETRYABLE_CODES or int(status) >= 500
    return StepFailed(step, f"{exc.operation_name} failed: {code}: {message}", retryable=retryable, code=code)


def _describe_failure(step: str, exc: Exception) -> str:
    """One line for any failure a step may meet: its reason, with the AWS code when there is one."""
    if isinstance(exc, StepFailed):
        return exc.reason
    if isinstance(exc, ClientError):
        return _from_client_error(step, exc).reason
    return f"{type(exc).__name__}: {exc}"


def _from_waiter_error(step: str, exc: WaiterError) -> StepFailed:
    # "Max attempts exceeded" means the operation is still running: the step can be re-run and
    # will find it further along. Any other waiter error reached a failure state.
    timed_out = "Max attempts exceeded" in str(exc.kwargs.get("reason", ""))
    last = exc.last_response or {}
    code = str(last.get("Error", {}).get("Code") or ("WaiterTimeout" if timed_out else "WaiterFailure"))
    return StepFailed(step, f"{exc}; code {code}", retryable=timed_out, code=code)


StepFn = Callable[[RunbookContext, Clients, Mapping[str, Any]], StepResult]

STEPS: dict[str, StepFn] = {}
"""Every step handler by step name (both runbooks; ``notify`` serves both)."""


def _step(fn: StepFn) -> StepFn:
    """Register ``fn`` under its name and translate AWS errors escaping it into ``StepFailed``."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
        try:
            return fn(ctx, clients, params)
        except StepFailed as exc:
            failure = exc
        except ClientError as exc:
            failure = _from_client_error(name, exc)
            failure.__cause__ = exc
        except WaiterError as exc:
            failure = _from_waiter_error(name, exc)
            failure.__cause__ = exc
        except CONNECTION_ERRORS as exc:
            failure = StepFailed(
                name, f"{type(exc).__name__}: {exc}", retryable=True, code=type(exc).__name__
            )
            failure.__cause__ = exc
        except BotoCoreError as exc:
            # Parameter validation, missing credentials, ...: not going to get better by retrying.
            failure = StepFailed(name, f"{type(exc).__name__}: {exc}", code=type(exc).__name__)
            failure.__cause__ = exc
        log_event(
            logging.ERROR,
            "step failed",
            step=name,
            runbook=params.get("runbook"),
            code=failure.code,
            retryable=failure.retryable,
            reason=failure.reason,
        )
        raise failure

    STEPS[name] = wrapper
    return wrapper


def step_handler(name: str) -> StepFn:
    """The handler for step ``name``; KeyError lists the known steps."""
    try:
        return STEPS[name]
    except KeyError:
        raise KeyError(f"no step handler {name!r}; known: {sorted(STEPS)}") from None


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _done(detail: str, **data: Any) -> StepResult:
    return StepResult("done", detail, data)


def _already(detail: str, **data: Any) -> StepResult:
    return StepResult("already_done", detail, data)


def _in_progress(detail: str, **data: Any) -> StepResult:
    return StepResult("in_progress", detail, {POLL_KEY: True, **data})


def _finished(params: Mapping[str, Any], changed: bool, detail: str, **data: Any) -> StepResult:
    """``done`` if this call (or the call that started the polled operation) changed anything."""
    if changed or params.get(POLL_KEY):
        return _done(detail, **data)
    return _already(detail, **data)


def _wait(params: Mapping[str, Any]) -> bool:
    return bool(params.get("wait", False))


def _waiter_config(params: Mapping[str, Any]) -> dict[str, Any]:
    # Defaults give 20 minutes: RDS promotion and Aurora global failover usually take 1-5 minutes.
    return {"Delay": params.get("waiterDelay", 15), "MaxAttempts": int(params.get("waiterMaxAttempts", 80))}


def _now(clients: Clients) -> str:
    return clients.clock.now().astimezone(UTC).isoformat(timespec="seconds")


def _cap(c: Capacity) -> dict[str, int]:
    return {"min": c.min, "desired": c.desired, "max": c.max}


@dataclass(frozen=True)
class _Http:
    status: int | None
    body: bytes
    error: str | None

    def describe(self) -> str:
        return f"answered HTTP {self.status}" if self.status is not None else f"unreachable ({self.error})"


def _http_get(step: str, url: str, timeout: float) -> _Http:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise StepFailed(step, f"health URL {url!r} must be http(s)")
    request = urllib.request.Request(url, headers={"User-Agent": "pilotlight-runbook"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _Http(int(response.status), response.read(65536), None)
    except urllib.error.HTTPError as exc:
        return _Http(int(exc.code), exc.read(65536) if exc.fp else b"", None)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return _Http(None, b"", f"{type(exc).__name__}: {reason}")


def _probe(step: str, url: str, params: Mapping[str, Any], clients: Clients) -> _Http:
    """GET ``url`` up to ``probeTries`` times; the first 200 wins (one blip is not an outage)."""
    tries = max(1, int(params.get("probeTries", 3)))
    interval = float(params.get("probeInterval", 1.0))
    timeout = float(params.get("probeTimeout", 3.0))
    last = _Http(None, b"", "not probed")
    for attempt in range(tries):
        last = _http_get(step, url, timeout)
        if last.status == 200:
            return last
        if attempt + 1 < tries:
            clients.clock.sleep(interval)
    return last


def _asg(clients: Clients, side: Side, name: str, step: str) -> dict[str, Any]:
    groups = clients.autoscaling(side).describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    if not groups:
        raise StepFailed(
            step, f"Auto Scaling group {name!r} not found in {clients.region(side)}", code="NotFound"
        )
    return groups[0]


def _asg_capacity(group: Mapping[str, Any]) -> Capacity:
    return Capacity(int(group["MinSize"]), int(group["DesiredCapacity"]), int(group["MaxSize"]))


def _set_asg(clients: Clients, side: Side, name: str, target: Capacity, step: str) -> tuple[bool, Capacity]:
    """Size the group to ``target``; returns (changed, capacity before)."""
    before = _asg_capacity(_asg(clients, side, name, step))
    if before == target:
        return False, before
    clients.autoscaling(side).update_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=target.min, MaxSize=target.max, DesiredCapacity=target.desired
    )
    log_event(
        logging.INFO,
        "asg resized",
        step=step,
        asg=name,
        region=clients.region(side),
        before=before,
        after=target,
    )
    return True, before


def _reserved_concurrency(clients: Clients, side: Side, function_name: str) -> int | None:
    value = (
        clients.lambda_(side)
        .get_function_concurrency(FunctionName=function_name)
        .get("ReservedConcurrentExecutions")
    )
    return None if value is None else int(value)


def _db_instance(clients: Clients, side: Side, identifier: str) -> dict[str, Any] | None:
    try:
        return clients.rds(side).describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except ClientError as exc:
        if error_code(exc) == "DBInstanceNotFound":
            return None
        raise


def _require_db_instance(clients: Clients, side: Side, identifier: str, step: str) -> dict[str, Any]:
    instance = _db_instance(clients, side, identifier)
    if instance is None:
        raise StepFailed(
            step, f"DB instance {identifier!r} not found in {clients.region(side)}", code="DBInstanceNotFound"
        )
    return instance


def _db_cluster(clients: Clients, side: Side, identifier: str, step: str) -> dict[str, Any]:
    clusters = clients.rds(side).describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    if not clusters:
        raise StepFailed(
            step, f"DB cluster {identifier!r} not found in {clients.region(side)}", code="NotFound"
        )
    return clusters[0]


def _global_members(ctx: RunbookContext, clients: Clients, step: str) -> tuple[dict[str, Any], list[dict]]:
    gid = _need(ctx.global_cluster_id, "globalClusterId", step)
    found = clients.rds("dr").describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"]
    if not found:
        raise StepFailed(step, f"global cluster {gid!r} not found", code="GlobalClusterNotFoundFault")
    return found[0], list(found[0].get("GlobalClusterMembers", []))


def _member(members: list[dict], arn: str) -> dict[str, Any] | None:
    return next((m for m in members if m.get("DBClusterArn") == arn), None)


def _primary_cluster_arn(ctx: RunbookContext, step: str) -> str:
    # The context carries the DR cluster's ARN only; region A's differs in region and identifier.
    arn = _need(ctx.dr_cluster_arn, "drClusterArn", step)
    parts = arn.split(":")
    if len(parts) < 7:
        raise StepFailed(step, f"'drClusterArn' {arn!r} is not a cluster ARN")
    parts[3] = ctx.primary_region
    parts[6] = _need(ctx.primary_cluster_id, "primaryClusterId", step)
    return ":".join(parts[:7])


def _need(value: str | None, key: str, step: str) -> str:
    if not value:
        raise StepFailed(
            step, f"the runbook context has no {key!r}, which this step needs", code="ContextError"
        )
    return value


def _waiter(client: Any, name: str, spec: dict[str, Any]) -> Any:
    """A boto3 waiter built from a botocore waiter definition (same machinery as the built-ins)."""
    return create_waiter_with_client(name, WaiterModel({"version": 2, "waiters": {name: spec}}), client)


def _promoted_waiter(client: Any) -> Any:
    # The built-in db_instance_available waiter can pass before a promotion has even started (the
    # replica is "available" until RDS picks the request up), so success also requires the
    # replication source to be gone.
    failure = [
        {
            "matcher": "pathAny",
            "argument": "DBInstances[].DBInstanceStatus",
            "expected": s,
            "state": "failure",
        }
        for s in ("deleted", "deleting", "failed", "incompatible-restore", "incompatible-parameters")
    ]
    return _waiter(
        client,
        "DBInstancePromoted",
        {
            "operation": "DescribeDBInstances",
            "delay": 15,
            "maxAttempts": 80,
            "acceptors": [
                {
                    "matcher": "path",
                    "argument": "DBInstances[0].DBInstanceStatus == 'available' && "
                    "!(DBInstances[0].ReadReplicaSourceDBInstanceIdentifier)",
                    "expected": True,
                    "state": "success",
                },
                *failure,
                {"matcher": "error", "expected": "DBInstanceNotFound", "state": "failure"},
            ],
        },
    )


def _writer_waiter(client: Any, arn: str) -> Any:
    if "'" in arn:
        raise ValueError(f"cluster ARN {arn!r} cannot contain a quote")
    return _waiter(
        client,
        "GlobalClusterWriter",
        {
            "operation": "DescribeGlobalClusters",
            "delay": 15,
            "maxAttempts": 80,
            "acceptors": [
                {
                    "matcher": "path",
                    "argument": f"GlobalClusters[0].GlobalClusterMembers[?DBClusterArn=='{arn}'] | [0].IsWriter",
                    "expected": True,
                    "state": "success",
                },
                {"matcher": "error", "expected": "GlobalClusterNotFoundFault", "state": "failure"},
            ],
        },
    )


def _metric_below_waiter(client: Any, bound: float) -> Any:
    return _waiter(
        client,
        "MetricBelow",
        {
            "operation": "GetMetricData",
            "delay": 30,
            "maxAttempts": 60,
            "acceptors": [
                {
                    "matcher": "path",
                    "argument": f"MetricDataResults[0].Values[0] <= `{float(bound)}`",
                    "expected": True,
                    "state": "success",
                }
            ],
        },
    )


def _metric_query(
    now: datetime,
    namespace: str,
    name: str,
    dimensions: Mapping[str, str],
    stat: str,
    window: timedelta,
    ahead: timedelta,
) -> dict[str, Any]:
    return {
        "MetricDataQueries": [
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    },
                    "Period": 60,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
        ],
        "StartTime": now - window,
        "EndTime": now + ahead,
        "ScanBy": "TimestampDescending",
    }


def _latest(clients: Clients, side: Side, query: dict[str, Any]) -> tuple[float, datetime] | None:
    results = clients.cloudwatch(side).get_metric_data(**query)["MetricDataResults"]
    if not results or not results[0].get("Values"):
        return None
    return float(results[0]["Values"][0]), results[0]["Timestamps"][0]


def _read_latch(clients: Clients, ctx: RunbookContext) -> dict[str, Any] | None:
    try:
        value = clients.ssm("dr").get_parameter(Name=ctx.latch_parameter_name)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        # A hand-edited latch is treated as "not in the target state": the step rewrites it.
        log_event(logging.WARNING, "latch is not JSON", parameter=ctx.latch_parameter_name, value=value)
        return {"state": value}
    return parsed if isinstance(parsed, dict) else {"state": str(parsed)}


def _write_latch(clients: Clients, ctx: RunbookContext, value: Mapping[str, Any]) -> None:
    clients.ssm("dr").put_parameter(
        Name=ctx.latch_parameter_name, Value=json.dumps(value), Type="String", Overwrite=True
    )


def _journal_name(ctx: RunbookContext) -> str:
    return f"{ctx.latch_parameter_name}-journal"


def _parse_journal(value: str) -> dict[str, Any] | None:
    """The journal's JSON object; None when the value is not one (garbled by hand, or tampered with)."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


JOURNAL_HISTORY = 20
"""How many earlier versions a run reads back to find the journal before it was garbled."""


def _read_journal_version(
    clients: Clients, ctx: RunbookContext, version: int | None = None
) -> tuple[dict[str, Any], int]:
    """The journal and its SSM version (``({}, 0)`` before the first write); ``version``: that one.

    A version is read as ``name:version`` ("To query by parameter version, use "Name": "name:version"":
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html)."""
    name = _journal_name(ctx) if version is None else f"{_journal_name(ctx)}:{version}"
    try:
        parameter = clients.ssm("dr").get_parameter(Name=name)["Parameter"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return {}, 0
        raise
    current = int(parameter.get("Version") or 0)
    journal = _parse_journal(str(parameter["Value"]))
    if journal is not None or version is not None:  # an earlier version (a concurrent write's repair)
        return journal or {}, current
    # Not a JSON object (written by hand, or tampered with). Read as empty it would fail open: a
    # failover's fence marks gone, a failback's writer move forgotten (breaklife21 BL21-4, the
    # runbook's side). SSM keeps a parameter's earlier versions (GetParameter "name:version", above):
    # the run goes on from the last readable one, and its next write puts it back on top.
    for earlier in range(current - 1, max(0, current - 1 - JOURNAL_HISTORY), -1):
        try:
            value = clients.ssm("dr").get_parameter(Name=f"{_journal_name(ctx)}:{earlier}")["Parameter"][
                "Value"
            ]
        except ClientError as exc:
            if error_code(exc) in ("ParameterNotFound", "ParameterVersionNotFound"):
                break
            raise
        journal = _parse_journal(str(value))
        if journal is not None:
            log_event(
                logging.WARNING, "run journal unreadable: read its last readable version",
                parameter=_journal_name(ctx), version=current, readable=earlier,
            )  # fmt: skip
            return journal, current
    raise StepFailed(
        "read_journal",
        f"the run journal {_journal_name(ctx)} (version {current}) is not a JSON object, nor are its "
        f"{JOURNAL_HISTORY} earlier versions: restore it (aws ssm get-parameter-history, then put-parameter "
        "--overwrite with the last JSON object) and run again; nothing was changed by this read",
        code="MalformedJournal",
    )


def read_journal(clients: Clients, ctx: RunbookContext) -> dict[str, Any]:
    """The run journal (SSM, region B, next to the latch): when writes were last stopped, per region."""
    return _read_journal_version(clients, ctx)[0]


def _merge(journal: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**journal, **changes}.items() if v is not None}


JOURNAL_REPAIRS = 5
"""How many times a journal write puts back what a concurrent writer's put lost (two writers: one)."""


def _journal(clients: Clients, ctx: RunbookContext, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into the journal (a None value removes the key); returns the new journal.

    Two runs may write the journal at once: a failover and the canary's fence that joined it
    (``lock.join_fence``). SSM's PutParameter has no condition, but it answers the version it wrote
    ("Version: The new version number of a parameter",
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html), one more
    than the version before it. A put that lands on the version this write read lost nothing. One
    that lands later overwrote the versions in between, each another writer's read-modify-write:
    what each of them changed (its version against the one before) is put back on top of the
    journal as it is now, unless this write changed the same key (it came later) or the key changed
    again since (a later write), and checked the same way. Residue: a writer that dies between such
    a put and its repair leaves the other writer's change lost.
    """
    ssm = clients.ssm("dr")
    base, read = _read_journal_version(clients, ctx)
    value = _merge(base, changes)
    for _ in range(JOURNAL_REPAIRS):
        answer = ssm.put_parameter(
            Name=_journal_name(ctx), Value=json.dumps(value, default=str), Type="String", Overwrite=True
        )
        written = int(answer.get("Version") or 0)
        if written <= read + 1 or regressions.on(Regression.JOURNAL_LAST_WRITER_WINS):
            return value
        latest, latest_version = _read_journal_version(clients, ctx)
        repaired = dict(latest)
        before = base
        for version in range(read + 1, written):
            theirs, _ = _read_journal_version(clients, ctx, version)
            for key in (set(before) | set(theirs)) - set(changes):
                if before.get(key) != theirs.get(key) and latest.get(key) == value.get(key):
                    if key in theirs:
                        repaired[key] = theirs[key]
                    else:
                        repaired.pop(key, None)
            before = theirs
        log_event(logging.WARNING, "journal written concurrently", versions=f"{read + 1}..{written - 1}")
        if repaired == latest:
            return latest
        base, read, value = latest, latest_version, repaired
    return value


FAILOVER_MARKS = ("fencePending", "primaryStoppedAt", "failoverDeclaredAt")
"""Journal keys a failover sets when it takes region A out and a failback clears when it gives region
A back (``confirm_primary_healthy``, ``unfence_primary``). ``failoverDeclaredAt``: a declared failover
(``python -m automation latch activate``, then ``pulumi up`` with ``dr:active true``) does not fence
region A, whose old RDS primary stays a standalone writer after the promotion; the mark is what keeps
the canary from releasing the switch to it under a deleted, garbled or hand-set latch (B20-1, B20-2). Whatever the latch says, while one is set
a failover holds region A: the failback restores the latch from them, and the region-B canary never
releases the switch to region A (``lambdas/health_check/probe.py`` reads the same keys)."""


def declare_failover_hold(clients: Clients, ctx: RunbookContext) -> bool:
    """Set ``failoverDeclaredAt`` (a declared failover, ``python -m automation latch activate``, holds
    region A without fencing it) unless it is set; returns whether it was set now."""
    # A new failover: no earlier failback's writer move speaks for region A any more.
    _forget_writer_move(clients, ctx)
    if read_journal(clients, ctx).get("failoverDeclaredAt"):
        return False
    _journal(clients, ctx, failoverDeclaredAt=_now(clients))
    return True


def end_failover_hold(clients: Clients, ctx: RunbookContext) -> list[str]:
    """Clear ``FAILOVER_MARKS`` once region A is known to hold the writer (``python -m automation latch
    release`` checks it from AWS state first: the IaC failback gives region A back by its updates,
    not by ``unfence_primary``); returns the marks cleared."""
    marks = [m for m in (*FAILOVER_MARKS, WRITER_MOVE_MARK) if read_journal(clients, ctx).get(m)]
    if marks:
        _journal(clients, ctx, **dict.fromkeys(marks))
    return marks


WRITER_MOVE_MARK = "writerMoveRequestedAt"
"""Journal key a failback writes *before* it asks AWS to move the writer back to region A (write-ahead,
``switch_writer``), once region B is drained and its lag measured at zero after the drain: from then on
the failback's decision is to move the writer, and every way the run ends rolls it forward, never back.

* ``restore_dr`` (a failback that stopped) finishes the move instead of giving region B its writes
  back: a promotion or switchover AWS may already be running would otherwise cut off the writes region
  B took meanwhile (lost), and leave two writers (B10-1/B10-2). Only when AWS refuses the move and
  region B still holds the writer with nothing under way is region B undrained (and the mark dropped).
* The region-B canary, under an active latch, puts the switch to region A when the mark is set and
  every region-A target answers healthy that its database is the writer: a failback that died after
  the writer moved (a CLI process killed before ``clear_latch``) otherwise left Route 53 answering
  drained region B until someone resumed it (soak seeds 98, 112, 150, 448, 615, 734). Without the mark
  region A's word is not enough (an old RDS primary back from an outage is a standalone writer too).

Cleared when the latch goes back to standby (``clear_latch``, ``latch release``), when ``restore_dr``
leaves the writer in region B, and when a new failover starts (``fence_primary``, ``latch activate``).
``lambdas/health_check/probe.py`` reads the same key."""


def _writer_move_requested(clients: Clients, ctx: RunbookContext) -> None:
    """Write ahead of a move of the writer to region A (``WRITER_MOVE_MARK``), unless written."""
    if not read_journal(clients, ctx).get(WRITER_MOVE_MARK):
        _journal(clients, ctx, **{WRITER_MOVE_MARK: _now(clients)})


def _forget_writer_move(clients: Clients, ctx: RunbookContext) -> bool:
    """Drop ``WRITER_MOVE_MARK``; returns whether it was set."""
    if not read_journal(clients, ctx).get(WRITER_MOVE_MARK):
        return False
    _journal(clients, ctx, **{WRITER_MOVE_MARK: None})
    return True


DRAIN_SECONDS = 300.0
"""How long a fenced tier may still commit writes: the ALB target group's deregistration delay
(300 s by default: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#deregistration-delay),
which also covers an API function's in-flight invocations (reserved concurrency 0 stops new ones;
running ones end within their timeout). ``drainSeconds`` in params overrides it."""


def _drain_seconds(params: Mapping[str, Any]) -> float:
    return float(params.get("drainSeconds", DRAIN_SECONDS))


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


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
    0 and the MySQL proof (:func:`zero_lag_evidence`) never ends. What it does say: a datapoint of
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


def database_lag(
    ctx: RunbookContext, side: Side, metric: str, dims: Mapping[str, str], engine: str | None = None
) -> Lag:
    """The relational database's lag (``ReplicaLag``), read in the replica's region (``side``).

    ``engine`` (the replica's ``Engine``, DescribeDBInstances) chooses the proof: PostgreSQL's
    ``ReplicaLag`` needs a commit after the drain on the source (:func:`replay_evidence`), MySQL's
    and MariaDB's read 0 once caught up (:func:`zero_lag_evidence`)."""
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


class _SourceDark(Exception):
    """Region A stopped answering while a forced failover waited for zero lag from it (B10-4)."""


def _wait_lossless(
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


# ---------------------------------------------------------------------------------------------
# Failover
# ---------------------------------------------------------------------------------------------


@_step
def confirm_primary_down(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Refuse to fail over while region A's health endpoint answers 200, unless forced; and, forced or
    not, refuse before anything changes when region B's database is not replicating (the steps after
    this one start region B's tiers in parallel with the fence)."""
    _refuse_unprotected(ctx, clients, "confirm_primary_down")
    _refuse_planned_without_region_a(ctx, clients, params, "confirm_primary_down")
    if params.get("force"):
        return StepResult("skipped", f"forced by operator: {params.get('reason') or 'no reason given'}")
    if not ctx.primary_health_url:
        raise StepFailed(
            "confirm_primary_down",
            "the runbook context has no primaryHealthUrl to probe; re-run with --force to fail over anyway",
        )
    probe = _probe("confirm_primary_down", ctx.primary_health_url, params, clients)
    if probe.status == 200:
        raise StepFailed(
            "confirm_primary_down",
            f"primary answers healthy ({ctx.primary_health_url} returned 200); "
            "re-run with --force to fail over anyway",
        )
    return _done(
        f"region A health endpoint {probe.describe()}", url=ctx.primary_health_url, status=probe.status
    )


def _primary_mappings(clients: Clients, function_names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(UUID, state) of every event source mapping of region A's functions."""
    found: list[tuple[str, str]] = []
    lam = clients.lambda_("primary")
    for name in function_names:
        for page in lam.get_paginator("list_event_source_mappings").paginate(FunctionName=name):
            found += [(str(m["UUID"]), str(m.get("State", ""))) for m in page.get("EventSourceMappings", [])]
    return found


def _refuse_unprotected(ctx: RunbookContext, clients: Clients, step: str) -> None:
    """Refuse, before anything changes, to fail over to a database that is not replicating.

    With the latch in standby region A is meant to be the writer, so region B's RDS instance must
    be its replica. A standalone instance there (left by a failback that did not re-create the
    replica) holds a frozen copy: "promoting" it would serve stale data and lose every write since.
    """
    if ctx.database_mode != "rds-replica" or regressions.on(Regression.PROMOTE_UNPROTECTED):
        return
    if (_read_latch(clients, ctx) or {}).get("state") == "active":
        return  # a failover already latched: region B is (becoming) the writer, resume it
    if read_journal(clients, ctx).get("primaryStoppedAt"):
        # Region A was fenced by a failover and never unfenced by a failback: region B's standalone
        # instance is the writer (the latch was lost or tampered with), not a frozen copy.
        return
    ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
    instance = _require_db_instance(clients, "dr", ident, step)
    if not instance.get("ReadReplicaSourceDBInstanceIdentifier"):
        raise StepFailed(
            step,
            f"{ident} in {ctx.dr_region} is not replicating from the writer (it is a standalone instance "
            "while the latch says standby): promoting it would serve a frozen copy. Re-seed it, then fail "
            "over: `pulumi up -s dr` with dr:active false creates a new read replica of region A's writer "
            '(README, "Protected again"). Nothing was changed',
            code="NotReplicating",
        )


PLANNED_NEEDS_REGION_A = (
    "--planned (planned: true) asks for a lossless writer move, which needs region A: {how}. Nothing "
    "was changed. To fail over now, accepting the loss of what region A had not replicated (the run "
    "reports an upper estimate), run the failover again without --planned (add --force if region A's "
    "health endpoint answers); or wait until region A answers and run --planned again"
)
"""The refusal of a planned change region A cannot take part in ({how}: why this database needs it)."""


def _planned_how(ctx: RunbookContext) -> str:
    if ctx.database_mode == "aurora-global":
        # "Switchover ... All of the secondary clusters and the primary cluster must be in the
        # available state": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html
        return "an Aurora switchover needs every member of the global database available"
    return "the promotion waits for region A's writers to be fenced and for zero lag after their drain"


def _refuse_planned_without_region_a(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str
) -> None:
    """Refuse ``planned``, before anything changes, when region A's database does not answer.

    One read-only describe of region A's database (its cluster, or its instance). Without this the
    run would scale region B, write the latch and try the fence before failing at the switchover
    (Aurora), or promote unplanned, losing the unreplicated tail the operator asked not to lose (RDS).
    """
    if not params.get("planned"):
        return
    rds = clients.rds("primary")
    try:
        if ctx.database_mode == "aurora-global":
            ident = _need(ctx.primary_cluster_id, "primaryClusterId", step)
            rds.describe_db_clusters(DBClusterIdentifier=ident)
        else:
            rds.describe_db_instances(
                DBInstanceIdentifier=_need(ctx.primary_db_instance_id, "primaryDbInstanceId", step)
            )
    except CONNECTION_ERRORS as exc:
        raise StepFailed(
            step,
            f"region A ({ctx.primary_region}) does not answer ({type(exc).__name__}): "
            + PLANNED_NEEDS_REGION_A.format(how=_planned_how(ctx)),
            code="PlannedNeedsRegionA",
        ) from exc


def fence_region_a(ctx: RunbookContext, clients: Clients, step: str) -> list[str]:
    """Stop region A's writers: functions at 0, their event sources off, then web tier to min/desired 0.

    Returns what changed (empty: region A was already fenced). AWS errors propagate: the caller
    decides what an unreachable region A means (see ``fence_primary``).
    """
    actions: list[str] = []
    group = _asg(clients, "primary", ctx.primary_asg_name, step)
    before = _asg_capacity(group)
    concurrency = {
        name: _reserved_concurrency(clients, "primary", name) for name in ctx.primary_function_names
    }
    mappings = _primary_mappings(clients, ctx.primary_function_names)
    journal = read_journal(clients, ctx)
    needed = (
        before.min != 0
        or before.desired != 0
        or any(c != 0 for c in concurrency.values())
        or any(state not in ("Disabled", "Disabling") for _, state in mappings)
    )
    if needed or not journal.get("primaryStoppedAt"):
        # Stamped before the change (a crash after it must not leave an older stamp): a planned
        # promotion waits for the drain and the lag measured after this instant.
        _journal(clients, ctx, primaryStoppedAt=_now(clients))
    web_first = regressions.on(Regression.FENCE_WEB_TIER_FIRST)
    if web_first:
        _fence_web_tier(ctx, clients, before, actions)
    for name in ctx.primary_function_names:
        if concurrency[name] != 0:
            # Reserved concurrency 0 throttles every new invocation, synchronous or from an event
            # source: https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
            clients.lambda_("primary").put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=0
            )
            actions.append(f"function {name} -> reserved concurrency 0")
    enabled = [uuid for uuid, state in mappings if state not in ("Disabled", "Disabling")]
    if enabled:
        # Journalled before the change, so the failback turns back on exactly what the fence
        # turned off (a mapping the operator had disabled stays disabled).
        fenced = sorted({*journal.get("primaryFencedMappings", []), *enabled})
        _journal(clients, ctx, primaryFencedMappings=fenced)
    for uuid in enabled:
        # Disabled, the mapping stops polling its source: queued messages stay for region B.
        clients.lambda_("primary").update_event_source_mapping(UUID=uuid, Enabled=False)
        actions.append(f"mapping {uuid} -> Disabled")
    if not web_first:
        # The web tier last: Route 53 follows region A's load balancer, so while the web tier
        # serves, traffic still goes to region A. A fence that stops half-way (a process death, a
        # refusal) leaves region A serving its writer with Route 53 answering it, or serving
        # nothing; never functions serving the writer behind a Route 53 that answers region B.
        _fence_web_tier(ctx, clients, before, actions)
    return actions


def _fence_web_tier(ctx: RunbookContext, clients: Clients, before: Capacity, actions: list[str]) -> None:
    if before.min != 0 or before.desired != 0:
        # MaxSize stays: unfence_primary restores the full capacity from the context anyway. The
        # load balancer drains the instances for its deregistration delay; writes they have in
        # flight still commit, which is why promotion waits for the lag measured afterwards.
        clients.autoscaling("primary").update_auto_scaling_group(
            AutoScalingGroupName=ctx.primary_asg_name, MinSize=0, DesiredCapacity=0
        )
        actions.append(
            f"ASG {ctx.primary_asg_name} {before.min}/{before.desired}/{before.max} -> 0/0/{before.max}"
        )


def keep_unplanned_snapshots(ctx: RunbookContext, clients: Clients) -> list[str]:
    """Copy Aurora's ``rds:unplanned-global-failover-*`` snapshots of region A's old primary to manual
    snapshots; returns the kept copies' identifiers (already kept ones included).

    After a managed failover with data loss Aurora *attempts* that snapshot before rebuilding the old
    primary; it holds the writes the failover discarded, and as an automated snapshot it expires with
    the backup retention. A manual copy stays until someone deletes it
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html,
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-copy-snapshot.html).
    """
    if ctx.database_mode != "aurora-global" or not ctx.primary_cluster_id:
        return []
    if regressions.on(Regression.UNPLANNED_SNAPSHOT_NOT_KEPT):
        return []
    rds = clients.rds("primary")

    def snapshots(kind: str) -> list[dict[str, Any]]:
        return list(
            rds.describe_db_cluster_snapshots(DBClusterIdentifier=ctx.primary_cluster_id, SnapshotType=kind)[
                "DBClusterSnapshots"
            ]
        )

    sources = [
        str(s["DBClusterSnapshotIdentifier"])
        for s in snapshots("automated")
        if str(s["DBClusterSnapshotIdentifier"]).startswith(UNPLANNED_SNAPSHOT_PREFIX)
    ]
    if not sources:
        return []
    kept = {str(s["DBClusterSnapshotIdentifier"]) for s in snapshots("manual")}
    out: list[str] = []
    for source in sources:
        target = kept_snapshot_id(source)
        if target not in kept:
            # Same region, same key: the copy stays encrypted under the source's key.
            rds.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=source,
                TargetDBClusterSnapshotIdentifier=target,
                CopyTags=True,
            )
            log_event(logging.WARNING, "kept the unplanned-failover snapshot", source=source, copy=target)
        out.append(target)
    return out


@_step
def fence_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Stop region A's writers before region B's database is promoted: a precondition, not a wish.

    * Region A answers: the fence must succeed. Any refusal (AccessDenied, an SCP, throttling that
      outlasts botocore's retries) stops the run here, before promotion, with the reason: a region
      A that still serves would be a second writer.
    * Region A does not answer (connection errors): the failover goes on with a warning, since a
      region that cannot be reached takes no requests either. The warning's data says
      ``fencePending``, and so does the run journal: the region-B canary, which probes region A
      every minute, calls this step again with ``onlyIfPending`` as soon as region A answers
      healthy while the latch is active, and the fence completes then (as it does when the
      failover is run again).
    * ``onlyIfPending`` (the canary's call): fence only if the journal says a fence is pending;
      otherwise change nothing. A failback clears the pending mark first (``confirm_primary_healthy``),
      so the canary never fences a region A a failback is giving writes back to.
    """
    step = "fence_primary"
    if params.get("onlyIfPending"):
        pending = read_journal(clients, ctx).get("fencePending")
        if not pending:
            return _already("no fence of region A pending")
    else:
        _refuse_unprotected(ctx, clients, step)
        # A new failover: no earlier failback's writer move speaks for region A any more (the
        # canary would otherwise put traffic back on region A while this run fences it), and no
        # earlier run's look at a dark region A counts towards this one's (DARK_MARK).
        _forget_writer_move(clients, ctx)
        if read_journal(clients, ctx).get(DARK_MARK):
            _journal(clients, ctx, **{DARK_MARK: None})
    actions: list[str] = []
    try:
        actions = fence_region_a(ctx, clients, step)
    except CONNECTION_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log_event(
            logging.WARNING,
            "region A unreachable: fence pending until it answers",
            step=step,
            region=ctx.primary_region,
            reason=reason,
        )
        if not read_journal(clients, ctx).get("fencePending"):
            _journal(clients, ctx, fencePending=_now(clients))
        return StepResult(
            "warning",
            f"region A could not be fenced: unreachable ({reason}); it is fenced when it answers again",
            {"region": ctx.primary_region, "reason": reason, "fencePending": True},
        )
    except (StepFailed, ClientError, BotoCoreError) as exc:
        reason = _describe_failure(step, exc)
        if regressions.on(Regression.FENCE_BEST_EFFORT):
            return StepResult("warning", f"region A could not be fenced: {reason}", {"reason": reason})
        retryable, code = False, type(exc).__name__
        if isinstance(exc, StepFailed):
            retryable, code = exc.retryable, exc.code or code
        elif isinstance(exc, ClientError):
            retryable, code = _from_client_error(step, exc).retryable, error_code(exc)
        raise StepFailed(
            step,
            f"region A answers but could not be fenced: {reason}. Nothing was promoted: a region A that "
            "still serves would be a second writer. Fix region A's permissions (or fence it by hand) "
            "and run the failover again",
            retryable=retryable,
            code=code,
        ) from exc
    if read_journal(clients, ctx).get("fencePending"):
        # Region A answers again after a failover that could not reach it: Aurora has started its
        # rebuild and the snapshot of what the failover discarded exists now; keep it.
        actions += [f"kept snapshot {k}" for k in keep_unplanned_snapshots(ctx, clients)]
        _journal(clients, ctx, fencePending=None)
    if not actions:
        return _already(
            f"region A already fenced: {ctx.primary_asg_name} at 0, "
            f"{len(ctx.primary_function_names)} function(s) at reserved concurrency 0",
            region=ctx.primary_region,
        )
    return _done("fenced region A: " + "; ".join(actions), region=ctx.primary_region, actions=actions)


@_step
def scale_web_tier(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Size the DR web tier's Auto Scaling group to its active capacity, never below what it has.

    Min and max are the context's; desired is the larger of the current desired and the context's
    (capped by max). A re-run after target tracking raised the group (the DR region serving real
    load) must not take instances away: Auto Scaling keeps desired within [min, max] and honours an
    explicit ``DesiredCapacity``, so the step passes the higher one
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-capacity-limits.html).
    """
    step = "scale_web_tier"
    if read_journal(clients, ctx).get("drStoppedAt"):
        _journal(clients, ctx, drStoppedAt=None)  # region B takes writes again
    wanted = ctx.dr_capacity
    current = _asg_capacity(_asg(clients, "dr", ctx.dr_asg_name, step))
    desired = wanted.desired
    if not regressions.on(Regression.SCALE_TO_CONTEXT):
        desired = min(max(current.desired, wanted.desired), wanted.max)
    target = Capacity(wanted.min, desired, wanted.max)
    changed, before = _set_asg(clients, "dr", ctx.dr_asg_name, target, step)
    label = f"{target.min}/{target.desired}/{target.max}"
    if not changed:
        return _already(f"{ctx.dr_asg_name} already at {label}", asg=ctx.dr_asg_name, capacity=_cap(target))
    return _done(
        f"{ctx.dr_asg_name} {before.min}/{before.desired}/{before.max} -> {label}",
        asg=ctx.dr_asg_name,
        before=_cap(before),
        capacity=_cap(target),
    )


def _set_mappings(clients: Clients, ids: tuple[str, ...], enabled: bool, side: Side = "dr") -> list[str]:
    changed: list[str] = []
    wanted = ("Enabled", "Enabling") if enabled else ("Disabled", "Disabling")
    for uuid in ids:
        state = clients.lambda_(side).get_event_source_mapping(UUID=uuid).get("State")
        if state not in wanted:
            clients.lambda_(side).update_event_source_mapping(UUID=uuid, Enabled=enabled)
            changed.append(f"mapping {uuid} {state} -> {'Enabled' if enabled else 'Disabled'}")
    return changed


@_step
def enable_functions(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Lift the DR functions' reserved concurrency 0 and enable their event source mappings."""
    changed: list[str] = []
    for name in ctx.dr_function_names:
        if _reserved_concurrency(clients, "dr", name) == 0:
            # Deleting the setting (rather than picking a number) returns the function to the
            # account's unreserved pool, as in region A.
            clients.lambda_("dr").delete_function_concurrency(FunctionName=name)
            changed.append(f"function {name} unthrottled")
    changed += _set_mappings(clients, ctx.dr_event_source_mapping_ids, enabled=True)
    if not changed:
        return _already(
            f"{len(ctx.dr_function_names)} DR function(s) already unthrottled, "
            f"{len(ctx.dr_event_source_mapping_ids)} mapping(s) already enabled"
        )
    return _done("; ".join(changed), changes=changed)


PROMOTING_STATUSES = ("modifying", "rebooting")
"""The statuses of a read replica whose promotion is under way: PromoteReadReplica modifies it, and "RDS
reboots the DB instance before making it available"
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Its
``ReadReplicaSourceDBInstanceIdentifier`` stays until the promotion completes, so in these statuses
the source is no proof that the replica still follows it. Nor are they proof of a promotion: RDS
documents both for other causes, ``modifying`` "because of a customer request to modify the DB
instance", ``rebooting`` "because of a customer request or an Amazon RDS process that requires the
rebooting of the DB instance" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html).
Only ``PROMOTION_MARK`` tells them apart (:func:`_promotion_under_way`)."""

PROMOTION_MARK = "promotionRequested"
"""Journal entry the runbook writes *before* it asks RDS to promote a read replica (PromoteReadReplica,
write-ahead, in both runbooks): ``{"instance", "region", "at"}``. A replica ``modifying`` or
``rebooting`` is promoting only after the runbook's own request (B21b-2, B21b-6): otherwise it is
being modified or rebooted at a customer's request or for maintenance, and a promotion is asked for
once it is ``available`` again. The absence of the mark is also what a stopped failback trusts when
region A does not answer (B21b-9): no promotion of region A's replica was ever requested, so region B
still holds the only writer. A run that dies between the mark and the call leaves a mark with no
request behind it: read as "a promotion may be under way", the safe side (region B stays drained),
and the next run that finds the replica ``available`` asks again. RDS records the promotion as events
too (DescribeEvents), which the emulator does not model; the journal is the runbook's own record."""


def _promotion_requested(clients: Clients, ctx: RunbookContext, side: Side, ident: str) -> bool | None:
    """Whether ``PROMOTION_MARK`` names ``ident`` in ``side``'s region; None when the journal cannot say
    (empty: every run writes its marks before any promotion; a garbled one is read as its last readable
    version, ``_read_journal_version``)."""
    journal = read_journal(clients, ctx)
    if not journal:
        return None
    mark = journal.get(PROMOTION_MARK)
    return (
        isinstance(mark, dict)
        and mark.get("instance") == ident
        and mark.get("region") == clients.region(side)
    )


def _promotion_under_way(
    clients: Clients, ctx: RunbookContext, side: Side, instance: Mapping[str, Any]
) -> bool:
    """Whether read replica ``instance`` is being promoted: in one of ``PROMOTING_STATUSES`` after the
    runbook asked for it (a journal that cannot say leaves the status its word: the safe reading)."""
    if instance.get("DBInstanceStatus") not in PROMOTING_STATUSES:
        return False
    ident = str(instance.get("DBInstanceIdentifier") or "")
    return _promotion_requested(clients, ctx, side, ident) is not False


def _request_promotion(clients: Clients, ctx: RunbookContext, side: Side, ident: str) -> None:
    """Write ``PROMOTION_MARK`` ahead of PromoteReadReplica of ``ident`` (kept when it names it already)."""
    if not _promotion_requested(clients, ctx, side, ident):
        mark = {"instance": ident, "region": clients.region(side), "at": _now(clients)}
        _journal(clients, ctx, **{PROMOTION_MARK: mark})


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
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], *, planned: bool
) -> StepResult:
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
        instance_id = failover_instance_id(cluster_id)
        try:
            tags = _inherited_tags(cluster)
            rds.create_db_instance(
                DBInstanceIdentifier=instance_id,
                DBClusterIdentifier=cluster_id,
                DBInstanceClass=_need(ctx.dr_instance_class, "drInstanceClass", step),
                Engine=AURORA_ENGINE,
                **({"Tags": tags} if tags else {}),
            )
            changes.append(f"created instance {instance_id}")
            log_event(
                logging.INFO, "aurora instance created", step=step, instance=instance_id, cluster=cluster_id
            )
        except ClientError as exc:
            if error_code(exc) != "DBInstanceAlreadyExists":
                raise
            # Ours from an earlier attempt, or someone else's under our name (breakiam22b BI22b-9: a
            # deployer of another environment may create it first): only a member of this cluster is
            # the writer to wait for.
            existing = _db_instance(clients, "dr", instance_id) or {}
            if existing.get("DBClusterIdentifier") != cluster_id:
                raise StepFailed(
                    step,
                    f"cannot add the writer {instance_id} to {cluster_id}: an instance of that name already "
                    f"exists outside the cluster (in {existing.get('DBClusterIdentifier') or 'no cluster'}); "
                    "delete or rename it, then resume the failover",
                    code="DBInstanceAlreadyExists",
                ) from exc
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
            pending = _request_switchover(ctx, clients, params, cluster_id, arn, gid, changes)
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
) -> str | None:
    """Region A answered its fence: the receipts' drain, then a switchover to ``arn``; or, for a forced
    failover whose region A went dark since, the managed failover (B10-4). Appends what it asked for
    to ``changes``; returns what is still awaited when the step may not wait (None: asked)."""
    step = "promote_database"
    rds = clients.rds("dr")
    # Region A answers: a switchover waits for the database to catch up, losing nothing
    # (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html);
    # the receipts are not the database's to wait for: their drain is waited for first.
    stamp = _parse_time(read_journal(clients, ctx).get("primaryStoppedAt"))
    lags = receipts_lag(ctx, "primary", "dr")
    dark = _forced_source_dark(ctx, clients, params)
    try:
        if stamp is not None and lags:
            pending = _wait_lossless(
                clients, params, stopped_at=stamp, lags=lags, step=step, source_dark=dark
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


def _region_a_dark(ctx: RunbookContext, clients: Clients) -> bool:
    """Whether region A's RDS endpoint does not answer: a connection error describing its database
    (the primary cluster, or instance). Any answer, an error included, says it answers."""
    rds = clients.rds("primary")
    try:
        if ctx.database_mode == "rds-replica":
            rds.describe_db_instances(
                DBInstanceIdentifier=_need(
                    ctx.primary_db_instance_id, "primaryDbInstanceId", "promote_database"
                )
            )
        else:
            rds.describe_db_clusters(
                DBClusterIdentifier=_need(ctx.primary_cluster_id, "primaryClusterId", "promote_database")
            )
    except CONNECTION_ERRORS:
        return True
    except (ClientError, BotoCoreError):
        return False
    return False


DARK_CONFIRM_SECONDS = 120.0
"""How long region A's RDS endpoint must keep failing to answer before a forced failover that fenced it
takes it for dark and promotes unplanned. Assumed (two canary periods): a connection error or two is
not an outage (botocore retries connection errors as transient,
https://docs.aws.amazon.com/boto3/latest/guide/retries.html), and taking a blip for darkness would
promote with a replication tail region A still holds (B21b-1)."""

DARK_MARK = "primaryDarkSince"
"""Journal key: when a forced failover's wait first found region A's endpoint not answering (cleared
when it answers), so the confirmation spans polls of either executor."""


def _region_a_dark_long_enough(ctx: RunbookContext, clients: Clients) -> bool:
    """Whether region A has not answered for ``DARK_CONFIRM_SECONDS`` (journal ``DARK_MARK``)."""
    since = _parse_time(read_journal(clients, ctx).get(DARK_MARK))
    if not _region_a_dark(ctx, clients):
        if since is not None:
            _journal(clients, ctx, **{DARK_MARK: None})
        return False
    now = clients.clock.now()
    if since is None:
        _journal(clients, ctx, **{DARK_MARK: _now(clients)})
        return False
    return (now - since).total_seconds() >= DARK_CONFIRM_SECONDS


def _stays_dark(dark: Callable[[], bool], clients: Clients, params: Mapping[str, Any]) -> bool:
    """Whether ``dark`` confirms region A dark, polling for ``DARK_CONFIRM_SECONDS`` when the step
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
    """For a forced failover, how its lossless wait tells that region A went dark and stayed dark
    (B10-4, B21b-1); None for ``--planned``, which asked for no loss and stops instead."""
    if params.get("planned"):
        return None
    return lambda: _region_a_dark_long_enough(ctx, clients)


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


def _writer_moving(ctx: RunbookContext, clients: Clients, *, retry_throttled: bool = False) -> bool:
    """Whether region B's database is the writer or becoming it (True when that cannot be told).
    ``retry_throttled``: a retryable AWS error (throttling that outlasted the client's retries) is
    raised instead, for the caller's executor to try again later (``roll_back_fence``: "cannot be
    told" there means nothing is rolled back, and a stop then leaves nothing serving)."""
    try:
        if ctx.database_mode == "rds-replica":
            ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", "promote_database")
            instance = _db_instance(clients, "dr", ident) or {}
            # Promoting only in a promotion's statuses, after the runbook asked for it: a replica
            # backing up is not (B21b-5), nor one rebooted for maintenance (B21b-6).
            return not instance.get("ReadReplicaSourceDBInstanceIdentifier") or _promotion_under_way(
                clients, ctx, "dr", instance
            )
        group, members = _global_members(ctx, clients, "promote_database")
        me = _member(members, _need(ctx.dr_cluster_arn, "drClusterArn", "promote_database")) or {}
        return bool(me.get("IsWriter") or group.get("FailoverState") or group.get("Status") != "available")
    except ClientError as exc:
        if retry_throttled and _from_client_error("", exc).retryable:
            raise
        return True
    except (StepFailed, BotoCoreError):
        return True


SWITCH_EVALUATION_SECONDS = 10.0
"""Seconds allowed, after the switch alarm's one-minute period ends, for CloudWatch to evaluate it and
Route 53's CloudWatch-metric health check to read the new state. An assumption: CloudWatch evaluates
a period once it is complete (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html)
and documents no bound on the delay."""


def switch_takes_effect_at(points: list[tuple[datetime, float]]) -> datetime | None:
    """When the switch alarm (1-minute period, 1 of 1, Maximum >= 1: components/global_failover.py) has
    seen the current thrown stretch: the end of the first thrown minute after the last released one,
    plus ``SWITCH_EVALUATION_SECONDS``. ``points``: (minute start, Maximum) per minute, any order.
    None when the latest minute is not thrown (the switch is not thrown)."""
    ordered = sorted(points)
    if not ordered or ordered[-1][1] < 1:
        return None
    first = ordered[-1][0]
    for at, value in reversed(ordered):
        if value < 1:
            break
        first = at
    return first + timedelta(seconds=60 + SWITCH_EVALUATION_SECONDS)


def _switch_pending(ctx: RunbookContext, clients: Clients) -> float:
    """Seconds until Route 53 has taken the thrown switch into account (0: it has, or it is not thrown)."""
    m = ctx.switch_metric
    now = clients.clock.now()
    query = _metric_query(
        now, m.namespace, m.name, m.dimensions, "Maximum", timedelta(minutes=15), timedelta(minutes=1)
    )
    results = clients.cloudwatch("dr").get_metric_data(**query)["MetricDataResults"]
    points = (
        list(zip(results[0].get("Timestamps", []), results[0].get("Values", []), strict=False))
        if results
        else []
    )
    effect = switch_takes_effect_at([(t, float(v)) for t, v in points])
    return 0.0 if effect is None else max(0.0, (effect - now).total_seconds())


def _promote_database(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    step = "promote_database"
    # Planned (lossless) when fence_primary reached region A and stamped when its writes stopped;
    # unplanned when it found region A unreachable. The failover path never reads region A itself.
    # A stamp left by an earlier fence does not make a region A that the latest fence could not
    # reach a healthy source (``fencePending``): zero lag can no longer be measured from it, and a
    # forced failover over a dark region A would wait for it until it gave up (soak seed 10).
    # The later of the two marks says how the latest fence went: a fence that reached region A after
    # one that could not (the canary's, joining this run: B20-3) makes the change planned again.
    journal = read_journal(clients, ctx)
    stamp, pending = _parse_time(journal.get("primaryStoppedAt")), _parse_time(journal.get("fencePending"))
    source_answers = stamp is not None and (pending is None or stamp >= pending)
    if not source_answers and not _writer_moving(ctx, clients):
        # Unplanned: region A was not fenced (it did not answer). Should it answer again, its old
        # writer takes whatever Route 53 sends it until the canary has fenced it, and after the
        # writer moves those writes are lost. So the writer moves only once the switch thrown just
        # before has taken effect: Route 53 then answers region B whatever region A's health (seed 6,
        # and the crash point right after the writer move over a region A that comes back at once).
        pending = _switch_pending(ctx, clients)
        if pending > 0 and not _wait(params):
            return _in_progress(
                f"waiting {pending:.0f} s for the switch to take effect before the writer moves"
            )
        if pending > 0:
            clients.clock.sleep(pending)
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
    return _promote_aurora(ctx, clients, params, planned=source_answers)


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
    lags = [database_lag(ctx, "dr", metric, dims, engine), *receipts_lag(ctx, "primary", "dr")]
    return _wait_lossless(clients, params, stopped_at=stamp, lags=lags, step=step, source_dark=source_dark)


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


def _put_switch(ctx: RunbookContext, clients: Clients, value: float) -> None:
    m = ctx.switch_metric
    clients.cloudwatch("dr").put_metric_data(
        Namespace=m.namespace,
        MetricData=[
            {
                "MetricName": m.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions.items()],
                "Value": value,
                # Stamped by the runbook's clock: the switch alarm evaluates datapoints by time.
                "Timestamp": clients.clock.now(),
            }
        ],
    )


def _switch(ctx: RunbookContext, clients: Clients, value: float, step: str) -> StepResult:
    m = ctx.switch_metric
    # Average, not Maximum: a minute holding both a 1 and a 0 is neither state, so the step puts
    # its value again rather than trusting a mixed period.
    latest = _latest_switch(ctx, clients, "Average")
    word = "thrown" if value == 1 else "released"
    where = f"{m.namespace}/{m.name} in {ctx.dr_region}"
    if latest is not None and latest[0] == value:
        return _already(
            f"switch already {word}: latest {where} datapoint is {value:g} at {latest[1]}", value=value
        )
    _put_switch(ctx, clients, value)
    log_event(logging.INFO, f"switch {word}", step=step, metric=where, previous=latest[0] if latest else None)
    return _done(f"switch {word}: put {value:g} on {where}", value=value)


def _latest_switch(ctx: RunbookContext, clients: Clients, stat: str) -> tuple[float, datetime] | None:
    """The switch metric's latest one-minute ``stat`` datapoint of the last day (region B), if any."""
    m = ctx.switch_metric
    query = _metric_query(
        clients.clock.now(), m.namespace, m.name, m.dimensions, stat, timedelta(days=1), timedelta(minutes=5)
    )
    return _latest(clients, "dr", query)


def _switch_thrown(ctx: RunbookContext, clients: Clients) -> bool:
    """Whether the switch metric's latest datapoint (one day back) says thrown (any 1 in its minute)."""
    latest = _latest_switch(ctx, clients, "Maximum")
    return latest is not None and latest[0] >= 1


@_step
def throw_switch(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Put 1 on the switch metric: its alarm fails the Route 53 health check of region A's records."""
    return _switch(ctx, clients, 1, "throw_switch")


def _db_writer_in_dr(ctx: RunbookContext, clients: Clients, step: str) -> tuple[bool, str]:
    if ctx.database_mode == "rds-replica":
        ident = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
        inst = _require_db_instance(clients, "dr", ident, step)
        ok = (
            not inst.get("ReadReplicaSourceDBInstanceIdentifier")
            and inst.get("DBInstanceStatus") == "available"
        )
        return ok, f"{ident} {'is' if ok else 'is not yet'} a standalone writer"
    _, members = _global_members(ctx, clients, step)
    me = _member(members, _need(ctx.dr_cluster_arn, "drClusterArn", step))
    ok = bool(me and me.get("IsWriter"))
    return ok, f"{ctx.dr_cluster_id} {'is' if ok else 'is not yet'} the global writer"


def _verify_once(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], side: Side = "dr"
) -> tuple[bool, list[str]]:
    """One check that ``side`` serves as the writer: web tier at capacity, health URL 200 with
    ``{"region": <its region>, "writer": true}`` (or, without a URL, its database the writer)."""
    step = "verify" if side == "dr" else "verify_primary"
    notes: list[str] = []
    asg_name, capacity = (
        (ctx.dr_asg_name, ctx.dr_capacity) if side == "dr" else (ctx.primary_asg_name, ctx.primary_capacity)
    )
    region = clients.region(side)
    url = ctx.dr_health_url if side == "dr" else ctx.primary_health_url
    group = _asg(clients, side, asg_name, step)
    desired = int(group["DesiredCapacity"])
    asg_ok = desired >= capacity.desired  # autoscaling may have raised it
    notes.append(f"{asg_name} desired {desired}/{capacity.desired}")
    if side == "primary":
        if not url:
            notes.append("HTTP check skipped: no primaryHealthUrl in the runbook context")
            return asg_ok, notes
        http = _http_get(step, url, float(params.get("probeTimeout", 3.0)))
        body_a: Any = None
        if http.status == 200:
            try:
                body_a = json.loads(http.body or b"null")
            except json.JSONDecodeError:
                body_a = None
        ok = isinstance(body_a, dict) and body_a.get("region") == region and body_a.get("writer") is True
        notes.append(
            f"{url} answers 200 from {region} as writer" if ok else f"{url} {http.describe()}: {body_a!r}"
        )
        return asg_ok and ok, notes
    if ctx.dr_health_url:
        http = _http_get(step, ctx.dr_health_url, float(params.get("probeTimeout", 3.0)))
        body: Any = None
        if http.status == 200:
            try:
                body = json.loads(http.body or b"null")
            except json.JSONDecodeError:
                body = None
        http_ok = (
            isinstance(body, dict) and body.get("region") == ctx.dr_region and body.get("writer") is True
        )
        if http_ok:
            notes.append(f"{ctx.dr_health_url} answers 200 from {ctx.dr_region} as writer")
        elif http.status == 200:
            notes.append(
                f"{ctx.dr_health_url} answers 200 but not region={ctx.dr_region} writer=true: {body!r}"
            )
        else:
            notes.append(f"{ctx.dr_health_url} {http.describe()}")
        return asg_ok and http_ok, notes
    db_ok, db_note = _db_writer_in_dr(ctx, clients, step)
    notes.append(db_note)
    notes.append("HTTP check skipped: no drHealthUrl in the runbook context")
    return asg_ok and db_ok, notes


def _poll_serving(
    ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], side: Side
) -> tuple[bool, list[str]]:
    """``_verify_once`` for ``side``; with ``wait``, polled until it holds or the budget ends.

    The condition spans HTTP and several APIs, which no boto3 waiter covers: it is polled with the
    same Delay/MaxAttempts budget the waiters get, and running out raises a retryable StepFailed.
    """
    ok, notes = _verify_once(ctx, clients, params, side)
    if ok or not _wait(params):
        return ok, notes
    config = _waiter_config(params)
    for _ in range(max(0, int(config["MaxAttempts"]) - 1)):
        clients.clock.sleep(float(config["Delay"]))
        ok, notes = _verify_once(ctx, clients, params, side)
        if ok:
            return ok, notes
    step, what = (
        ("verify", "region B not serving")
        if side == "dr"
        else (
            "verify_primary",
            "region A not serving as the writer",
        )
    )
    raise StepFailed(
        step,
        f"{what} after {config['MaxAttempts']} checks: {'; '.join(notes)}",
        retryable=True,
        code="VerifyTimeout",
    )


@_step
def verify(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Check region B serves: health endpoint 200 with region B as writer, web tier at capacity."""
    ok, notes = _poll_serving(ctx, clients, params, "dr")
    if not ok:
        return _in_progress("; ".join(notes))
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "active" and latch.get("notifiedAt"):
        # Verification is read-only: what makes a re-run "already done" is that an earlier run
        # got past it and told the operators (the latch is written before the switch now).
        return _already(
            "still serving (latched active since " + str(latch.get("since")) + "): " + "; ".join(notes)
        )
    return _done("; ".join(notes))


@_step
def write_latch(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Record in SSM (region B) that region B is active, so a routine ``pulumi up`` cannot revert it.

    The latch's ``since`` names one failover: the dr stack's failback record is tied to it
    (components/failover.py ``PhaseRecord``, ``refuse_step_back``) and a failback's drain is dated
    against it (``failback_in_progress``). Under a latch that already says active:

    * region B holds the writer or is taking it (``_writer_moving``: the promotion done, or under way
      after the runbook's write-ahead ``PROMOTION_MARK``, or an Aurora global failover in progress;
      also when that cannot be told): this failover's own latch, resumed or run again. Kept as it
      is, ``since`` included, so nothing that read it changes its mind.
    * region A holds the writer: no failover is in effect under that latch. Either a failback moved
      the writer back before ``latch release`` (Aurora: ``latch switch-writer`` or the runbook's
      ``switch_writer``; a switchover leaves region B's cluster a secondary that replicates again:
      https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html)
      and this is a new failover (breaklife22 BL22-4), or this failover's own run stopped between
      this step and its promotion (this step runs after ``fence_primary``, before
      ``promote_database``). Both get a new ``since``: the last failback's record does not bind the
      new failover, and the resumed run ends where a stopped run's resume does anyway
      (``roll_back_fence`` puts such a latch back to standby, and the resume latches again). Nothing
      bound to the old ``since`` is lost: a failback record binds only once region A holds the
      writer, which is what this failover is taking from it.
    """
    latch = _read_latch(clients, ctx) or {}
    previous = latch.get("since")
    if latch.get("state") == "active" and _writer_moving(ctx, clients):
        return _already(f"latch {ctx.latch_parameter_name} already active since {previous}", latch=latch)
    value = {
        "state": "active",
        "since": _now(clients),
        "runbook": "failover",
        "reason": params.get("reason") or "not given",
    }
    _write_latch(clients, ctx, value)
    if latch.get("state") == "active":
        return _done(
            f"latch {ctx.latch_parameter_name} active since {value['since']}: a new failover (it said active "
            f"since {previous}, but region A holds the writer)",
            latch=value,
            previousSince=previous,
        )
    return _done(f"latch {ctx.latch_parameter_name} set to active", latch=value)


@_step
def roll_back_fence(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """The failover's ``on_stop``: a run that stopped on a failed step before the writer moved gives
    region A its writes back, so it leaves a safe serving state (docs/safety.md, "Every run converges").

    * The writer moved or is moving (region B's database is, or is becoming, the writer, or that
      cannot be told): nothing is undone. The latch says active, the canary keeps the switch
      thrown, traffic follows the writer, and resuming the run completes it.
    * Otherwise region A still holds the writer. In this order, so a run that dies half-way leaves
      what a stopped failover leaves (resuming completes it): the pending fence is withdrawn (a
      canary that sees region A answer must not fence it), the latch goes back to standby (the
      canary stops throwing the switch) and the switch is released. Where the fence reached region
      A (its journal stamp says so), region A's web tier is given back its capacity and, once it is
      in service, its functions and event sources (as ``unfence_primary`` does): Route 53 follows the
      load balancer, so functions serving the writer before the web tier does would be a region
      serving the writer that Route 53 cannot answer. A region A the fence never reached (it was
      unreachable: the fence was only pending) is not called at all.
    """
    step = "roll_back_fence"
    if regressions.on(Regression.STOP_KEEPS_FENCE):
        return StepResult("skipped", "stopped run left as it stopped (regression)")
    if _writer_moving(ctx, clients, retry_throttled=True):
        return StepResult(
            "skipped",
            "the writer moved or is moving to region B: nothing rolled back; the latch keeps traffic on "
            "region B and resuming the failover completes it",
        )
    journal = read_journal(clients, ctx)
    changes: list[str] = []
    if journal.get("fencePending"):
        _journal(clients, ctx, fencePending=None)
        changes.append("pending fence of region A withdrawn")
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "active":
        _write_latch(
            clients,
            ctx,
            {
                "state": "standby",
                "since": _now(clients),
                "runbook": "failover",
                "reason": "failover stopped before the writer moved: rolled back",
            },
        )
        changes.append(f"latch {ctx.latch_parameter_name} set back to standby")
    if _switch_thrown(ctx, clients):
        # Only a switch this failover (or the canary, from its latch) threw: a run that changed
        # nothing, such as a refusal at confirm_primary_down, puts nothing.
        changes.append(_switch(ctx, clients, 0, step).detail)
    if journal.get("primaryStoppedAt") or journal.get("primaryFencedMappings"):
        warmed = warm_primary(ctx, clients, params)
        if warmed.status == "done":
            changes.append(warmed.detail)
        ok, notes = _poll_serving(ctx, clients, params, "primary")
        if not ok:
            return _in_progress("region A's web tier launching: " + "; ".join(notes), changes=changes)
        undone = unfence_primary(ctx, clients, params)
        changes.append(f"region A un-fenced: {undone.detail}")
    if not changes:
        return _already("nothing to roll back: region A was not fenced and the latch says standby")
    log_event(logging.WARNING, "failover rolled back", step=step, region=ctx.primary_region, changes=changes)
    return _finished(
        params, True, "rolled back (region A holds the writer): " + "; ".join(changes), changes=changes
    )


@_step
def notify(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Tell the operators (SNS in region B) what the runbook did, once per completed run."""
    runbook = str(params.get("runbook") or "failover")
    target_state = "active" if runbook == "failover" else "standby"
    latch = _read_latch(clients, ctx) or {}
    if runbook == "failback" and latch.get("state") == "standby" and latch.get("runbook") != "failback":
        # No failback set this latch to standby (clear_latch names itself): no failover was latched
        # and this run found its end state in place. Nothing happened to page anyone about.
        return _already("no failover was latched: nothing failed back, nothing to notify")
    if latch.get("state") == target_state and latch.get("runbook") == runbook and latch.get("notifiedAt"):
        return _already(f"operators already notified at {latch['notifiedAt']}")
    where = ctx.dr_region if runbook == "failover" else ctx.primary_region
    subject = f"[{ctx.app_name}/{ctx.environment}] {runbook} to {where} completed"[:100]
    lines = [
        f"{runbook} of {ctx.app_name} ({ctx.environment}) completed: {where} now serves.",
        f"Regions: A={ctx.primary_region}, B={ctx.dr_region}. Database mode: {ctx.database_mode}.",
        f"Reason: {params.get('reason') or 'not given'}",
    ]
    if params.get("summary"):
        lines += ["", str(params["summary"])]
    response = clients.sns("dr").publish(
        TopicArn=ctx.notify_topic_arn, Subject=subject, Message="\n".join(lines)
    )
    if latch.get("state") == target_state:
        # Remembering the notification in the latch is what keeps a re-run from paging twice.
        _write_latch(clients, ctx, {**latch, "runbook": runbook, "notifiedAt": _now(clients)})
    return _done(f"published to {ctx.notify_topic_arn}", messageId=response.get("MessageId"))


# ---------------------------------------------------------------------------------------------
# Failback
# ---------------------------------------------------------------------------------------------


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
    re-seeded after a failback): a failback has no database to move back."""
    if ctx.database_mode == "rds-replica":
        dr_id = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
        dr = _db_instance(clients, "dr", dr_id) or {}
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
        # The first call of the failback, before anything changes: say so, and what to do.
        raise StepFailed(
            step,
            f"region A ({ctx.primary_region}) does not answer ({type(exc).__name__}): a failback needs "
            "region A (it re-creates replication there and moves the writer back). Nothing was changed; "
            "region B keeps serving. Run the failback again once region A answers",
            retryable=True,
            code=type(exc).__name__,
        ) from exc
    notes = [f"region A API answers ({ctx.primary_asg_name} desired {group['DesiredCapacity']})"]
    journal = read_journal(clients, ctx)
    latch = _read_latch(clients, ctx) or {}
    stopped = (
        journal.get("primaryStoppedAt") or journal.get("fencePending") or journal.get("failoverDeclaredAt")
    )
    # A failover that stopped region A before it moved the writer (it died, or was refused) leaves
    # the same journal marks as one that moved it: AWS state says which.
    in_a = _writer_never_left_a(ctx, clients, step)
    if in_a:
        notes.append(in_a)
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
        # by it. The receipts are not the database's: their drain is waited for here.
        what, lags = "the receipts' replication", receipts_lag(ctx, "dr", "primary")
        if not lags:
            return _done("Aurora switchover waits for zero lag itself (switch_writer)")
    else:
        what = fb_id = _failback_writer_id(ctx, step)
        instance = _require_db_instance(clients, "primary", fb_id, step)
        if not instance.get("ReadReplicaSourceDBInstanceIdentifier"):
            return _already(f"{fb_id} is already promoted: no lag to wait for")
        lags = [
            database_lag(
                ctx, "primary", "ReplicaLag", {"DBInstanceIdentifier": fb_id}, instance.get("Engine")
            ),
            *receipts_lag(ctx, "dr", "primary"),
        ]
    stamp = _parse_time(read_journal(clients, ctx).get("drStoppedAt"))
    if stamp is None:
        raise StepFailed(
            step,
            "the journal has no record of region B's writes stopping: run scale_down_dr",
            code="NotDrained",
        )
    try:
        pending = _wait_lossless(clients, params, stopped_at=stamp, lags=lags, step=step)
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


def _writer_still_in_b(ctx: RunbookContext, clients: Clients, step: str) -> str | None:
    """What shows, from AWS state, that region B's database is the writer and region A's is not
    becoming it (None: it is not, or that cannot be shown). rds-replica: region B's instance is
    standalone and ``<primary>`` still replicates from it (or does not exist yet): a promotion of
    ``<primary>`` under way has already cut it off, and then region B must stay drained (a write it
    took would never reach region A). aurora-global: region B's cluster is the global writer; a
    switchover still pending or under way waits for the secondary itself, so no write region B
    takes meanwhile is lost.

    rds-replica with region A not answering: the run journal shows it instead, or nothing does.
    ``<primary>`` is the replica this failback created of region B's instance (``FAILBACK_JOURNAL_KEY``)
    and no run asked RDS to promote it (``PROMOTION_MARK``, written ahead of every request): then
    nothing is moving the writer to region A (B21b-9)."""
    if ctx.database_mode == "rds-replica":
        dr_id = _need(ctx.dr_db_instance_id, "drDbInstanceId", step)
        dr = _db_instance(clients, "dr", dr_id)
        if dr is None or dr.get("ReadReplicaSourceDBInstanceIdentifier"):
            return None
        primary_id = _failback_writer_id(ctx, step)
        try:
            primary = _db_instance(clients, "primary", primary_id)
        except CONNECTION_ERRORS as exc:
            record = read_journal(clients, ctx).get(FAILBACK_JOURNAL_KEY) or {}
            if (
                not isinstance(record, dict)
                or not record.get("created")
                or not _same_instance(record.get("replicaOf") or "", dr_id)
                or _promotion_requested(clients, ctx, "primary", primary_id) is not False
            ):
                return None
            return (
                f"{dr_id} in {ctx.dr_region} is the writer (region A does not answer, "
                f"{type(exc).__name__}; the run journal shows {primary_id} a replica of it that no run "
                "asked RDS to promote)"
            )
        if primary is not None and not _same_instance(
            primary.get("ReadReplicaSourceDBInstanceIdentifier") or "", dr_id
        ):
            return None
        if (
            primary is not None
            and _promotion_under_way(clients, ctx, "primary", primary)
            and not regressions.on(Regression.FAILBACK_UNDOES_MOVE)
        ):
            # Its source stays set until a promotion completes (B21-1): it is promoting. Modifying or
            # rebooting with no promotion requested, it is not (B21b-2).
            return None
        return f"{dr_id} in {ctx.dr_region} is the writer ({primary_id} in {ctx.primary_region} is not)"
    group, members = _global_members(ctx, clients, step)
    me = _member(members, _need(ctx.dr_cluster_arn, "drClusterArn", step)) or {}
    if not me.get("IsWriter"):
        return None
    state = str((group.get("FailoverState") or {}).get("Status") or "")
    if state in ("pending", "switching-over", "failing-over") and not regressions.on(
        Regression.FAILBACK_UNDOES_MOVE
    ):
        # Region B stays the writer until the switchover completes (B21b-8): it may be moving.
        return None
    return f"{ctx.dr_cluster_id} in {ctx.dr_region} is the writer of {ctx.global_cluster_id}"


def _switchover_pending(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any], step: str) -> bool:
    """Whether the global cluster's ``FailoverState`` is still ``pending`` ("the ... clusters are being
    verified before the operation starts", API_FailoverState), after waiting it out when ``params``
    say wait (polling every waiter delay, within the waiter's attempts)."""
    config = _waiter_config(params)
    attempts = int(config["MaxAttempts"]) if _wait(params) else 1
    for attempt in range(attempts):
        group, _ = _global_members(ctx, clients, step)
        if str((group.get("FailoverState") or {}).get("Status") or "") != "pending":
            return False
        if attempt + 1 < attempts:
            clients.clock.sleep(float(config["Delay"]) or 5.0)
    return True


@_step
def restore_dr(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """A failback that stopped (any step failed, timed out, or a crashed run resumed and stopped).

    * Before ``switch_writer`` asked for the move (no ``WRITER_MOVE_MARK``): region B gets its serving
      capacity back while it still holds the writer. It drained region B (``scale_down_dr``) to move
      the writer, and the writer did not move.
    * After (the mark is set): the move is rolled forward, never back. Region B's lag was zero after
      its drain, so finishing the promotion or switchover loses nothing, whereas region B taking
      writes again while AWS may be moving the writer would lose them and leave two writers. Region B
      stays drained; the region-B canary moves traffic to region A once it answers as the writer, and
      resuming the failback completes it. Only when AWS refuses the move and region B still holds
      the writer with nothing under way does region B serve again. "Under way" is the runbook's
      record (``PROMOTION_MARK``), not a replica's status alone: a replica modified or rebooted for
      maintenance is not being promoted (B21b-2), and a region A that does not answer leaves region B
      serving when no promotion was requested (B21b-9), drained when one was.

    Run by both executors whenever a failback stops (``graph.FAILBACK.on_stop``); changes nothing when
    region B is not drained or no longer holds the writer."""
    step = "restore_dr"
    if regressions.on(Regression.FAILBACK_STAYS_DRAINED):
        return _already("the failback's drain is left as it is (regression)")
    refused = ""
    if read_journal(clients, ctx).get(WRITER_MOVE_MARK) and not regressions.on(
        Regression.FAILBACK_UNDOES_MOVE
    ):
        if ctx.database_mode != "rds-replica" and _switchover_pending(ctx, clients, params, step):
            # AWS verifies the clusters before it starts or cancels the switchover: which it does
            # decides between waiting for the move and giving region B back (B21b-10).
            return _in_progress(
                f"switchover of {ctx.global_cluster_id} pending: waiting for AWS to start or cancel it"
            )
        try:
            moving = _move_writer_to_a(ctx, clients, {}, step)
        except CONNECTION_ERRORS as exc:
            # Region A does not answer (rds-replica: the move promotes its replica). Whether a
            # promotion was requested is the journal's to say (``PROMOTION_MARK``, written ahead):
            # with none, region B keeps the writer and serves it (B21b-9); with one, or no way to
            # tell, region B stays drained (a write it took may never reach region A), and the canary
            # or a resumed failback finishes the move once region A answers.
            if ctx.database_mode != "rds-replica":
                raise
            writer_id = _failback_writer_id(ctx, step)
            if _promotion_requested(clients, ctx, "primary", writer_id) is not False:
                # (Retryable: a retry once region A answers finishes the move.)
                raise StepFailed(
                    step,
                    f"region A does not answer ({type(exc).__name__}) and a promotion of {writer_id} was "
                    "requested (or the run journal cannot say): region B stays drained, as a write it took "
                    "might never reach region A; resume the failback once region A answers",
                    retryable=True,
                    code=type(exc).__name__,
                ) from exc
            refused = f"; region A does not answer ({type(exc).__name__}) and no promotion of {writer_id} was requested"
        except StepFailed as exc:
            if exc.retryable:
                raise
            refused = f"; AWS refused to move the writer to region A ({exc.reason})"
        except ClientError as exc:
            failure = _from_client_error(step, exc)
            if failure.retryable:
                # Throttling is no refusal: nothing showed that no move is under way (B21b-8).
                raise failure from exc
            refused = f"; AWS refused to move the writer to region A ({failure.reason})"
        else:
            if moving.status != "in_progress" or moving.data.get("underWay"):
                # (Never in_progress: nothing polls a rollback; resuming the failback waits for it.)
                return StepResult(
                    "already_done" if moving.status == "already_done" else "done",
                    f"the writer moves to region A, requested after region B's lag was zero "
                    f"({moving.detail}); region B stays drained: resume the failback to finish it",
                    moving.data,
                )
            # Nothing moves the writer and nothing can now (region A's replica busy, AWS cancelling
            # the switchover): region B keeps it, and must serve it (B21-2, B21-4).
            refused = f"; the writer cannot move now ({moving.detail})"
    writer = _writer_still_in_b(ctx, clients, step)
    if writer is None:
        return _already(
            f"region B does not hold the writer (or region A is becoming it): its drain stays{refused}"
        )
    _forget_writer_move(clients, ctx)
    undone = _undo_drain(ctx, clients, step)
    if not undone:
        return _already(f"{writer}; region B already serves{refused}")
    return _done(f"{writer}; region B serves again: {'; '.join(undone)}{refused}", changes=undone)


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
def unfence_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Give region A back its web tier capacity, unthrottle its functions and turn its event sources
    back on (the program's, and any other the fence turned off)."""
    step = "unfence_primary"
    journal = read_journal(clients, ctx)
    fenced = tuple(str(u) for u in journal.get("primaryFencedMappings", []))
    changes: list[str] = _set_mappings(
        clients,
        tuple(dict.fromkeys(ctx.primary_event_source_mapping_ids + fenced)),
        enabled=True,
        side="primary",
    )
    if journal.get("primaryStoppedAt") or fenced or journal.get("failoverDeclaredAt"):
        # region A takes writes again
        _journal(clients, ctx, primaryStoppedAt=None, primaryFencedMappings=None, failoverDeclaredAt=None)
    changed_asg, before = _set_asg(clients, "primary", ctx.primary_asg_name, ctx.primary_capacity, step)
    if changed_asg:
        c = ctx.primary_capacity
        changes.append(
            f"{ctx.primary_asg_name} {before.min}/{before.desired}/{before.max} -> {c.min}/{c.desired}/{c.max}"
        )
    for name in ctx.primary_function_names:
        if _reserved_concurrency(clients, "primary", name) == 0:
            clients.lambda_("primary").delete_function_concurrency(FunctionName=name)
            changes.append(f"function {name} unthrottled")
    if not changes:
        return _already(f"region A already at capacity with {len(ctx.primary_function_names)} function(s) on")
    return _done("; ".join(changes), changes=changes)


@_step
def warm_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Launch region A's web tier while region B still serves, so it is in service when the writer
    moves back: the failback's write outage is then the drain, the lag wait and the switch of the
    writer, not also an instance launch and its health checks.

    Safe before the writer moves: region A's application reaches only a database that is a replica
    (rds-replica) or a global secondary (aurora-global) until ``switch_writer``, and those refuse
    writes; its functions and event sources stay fenced until ``unfence_primary``. Desired capacity
    is never lowered (autoscaling may have raised it).
    """
    step = "warm_primary"
    wanted = ctx.primary_capacity
    current = _asg_capacity(_asg(clients, "primary", ctx.primary_asg_name, step))
    target = Capacity(wanted.min, min(max(current.desired, wanted.desired), wanted.max), wanted.max)
    changed, before = _set_asg(clients, "primary", ctx.primary_asg_name, target, step)
    label = f"{target.min}/{target.desired}/{target.max}"
    detail = (
        f"{ctx.primary_asg_name} {before.min}/{before.desired}/{before.max} -> {label}"
        if changed
        else f"{ctx.primary_asg_name} already at {label}"
    )
    if ctx.primary_health_url:
        # In service before the drain: the steps after this one may give region A the writer and
        # its functions within seconds (a failback with no lag to wait for), and Route 53 can answer
        # region A only once its load balancer has healthy targets. Any HTTP 200 will do: region A's
        # database is not the writer yet.
        http = _probe(step, ctx.primary_health_url, params, clients)
        config = _waiter_config(params)
        attempts = int(config["MaxAttempts"]) if _wait(params) else 1
        for _ in range(attempts - 1):
            if http.status == 200:
                break
            clients.clock.sleep(float(config["Delay"]))
            http = _probe(step, ctx.primary_health_url, params, clients)
        if http.status != 200:
            what = f"{detail}; waiting for its web tier to be in service ({ctx.primary_health_url} {http.describe()})"
            if not _wait(params):
                return _in_progress(what)
            raise StepFailed(
                step, f"{what}: gave up after {attempts} checks", retryable=True, code="NotInService"
            )
        detail += f"; {ctx.primary_health_url} answers 200"
    return _finished(params, changed, detail)


@_step
def verify_primary(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Region A serves as the writer (health URL 200 from region A with ``writer: true``, web tier at
    capacity) before the switch is released: traffic never moves to a region still launching."""
    ok, notes = _poll_serving(ctx, clients, params, "primary")
    if not ok:
        return _in_progress("; ".join(notes))
    latch = _read_latch(clients, ctx) or {}
    if latch.get("state") == "standby" and (latch.get("runbook") != "failback" or latch.get("notifiedAt")):
        # Read-only, like verify: a re-run after a completed failback finds it already done, and so
        # does a failback when no failover was latched (no failback set the latch to standby).
        return _already("still serving: " + "; ".join(notes))
    return _done("; ".join(notes))


@_step
def release_switch(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Put 0 on the switch metric: Route 53 prefers region A again."""
    return _switch(ctx, clients, 0, "release_switch")


@_step
def scale_down_dr(ctx: RunbookContext, clients: Clients, params: Mapping[str, Any]) -> StepResult:
    """Return region B to its pilot light: web tier 0/0/0, functions at 0, event sources disabled."""
    step = "scale_down_dr"
    group = _asg_capacity(_asg(clients, "dr", ctx.dr_asg_name, step))
    on = [n for n in ctx.dr_function_names if _reserved_concurrency(clients, "dr", n) != 0]
    serving = group != Capacity(0, 0, 0) or bool(on)
    if serving or (
        not read_journal(clients, ctx).get("drStoppedAt") and not _writer_never_left_a(ctx, clients, step)
    ):
        # (Region B already in standby with the writer in region A: no lag will be waited for, and
        # a failback with nothing to do changes nothing.)
        # Stamped before the change: the writer moves only at zero lag measured after the drain.
        _journal(clients, ctx, drStoppedAt=_now(clients))
    changed_asg, before = _set_asg(clients, "dr", ctx.dr_asg_name, Capacity(0, 0, 0), step)
    changes: list[str] = []
    if changed_asg:
        changes.append(f"{ctx.dr_asg_name} {before.min}/{before.desired}/{before.max} -> 0/0/0")
    for name in ctx.dr_function_names:
        if _reserved_concurrency(clients, "dr", name) != 0:
            clients.lambda_("dr").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
            changes.append(f"function {name} -> reserved concurrency 0")
    changes += _set_mappings(clients, ctx.dr_event_source_mapping_ids, enabled=False)
    if not changes:
        return _already("region B already in standby")
    return _done("; ".join(changes), changes=changes)


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
