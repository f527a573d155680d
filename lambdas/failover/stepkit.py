"""What every runbook step shares: its result, its failures, its registration, and small AWS helpers.

The bottom of the step modules (``lambdas/failover/steps.py`` lists them): it imports none of them.

* ``StepResult`` and the ``done`` / ``already_done`` / ``in_progress`` answers; ``POLL_KEY``.
* ``_step``: registers a handler in ``STEPS`` under its name and turns AWS errors escaping it into
  ``StepFailed`` (by AWS error code; ``RETRYABLE_CODES`` and ``CONNECTION_ERRORS`` are retryable).
* ``log_event``: one JSON log line with its context.
* Helpers over explicitly-regioned clients: Auto Scaling groups, reserved concurrency, event source
  mappings, RDS instances, clusters and global clusters, boto3 waiters built from botocore waiter
  definitions, CloudWatch metric queries, health URL probes, the waiter budget read from params.
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

from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import Capacity, RunbookContext
from lambdas.failover.exceptions import StepFailed

StepStatus = Literal["done", "already_done", "in_progress", "warning", "skipped"]


STEP_STATUSES: tuple[StepStatus, ...] = ("done", "already_done", "in_progress", "warning", "skipped")


LOGGER = logging.getLogger("pilotlight.failover")


POLL_KEY = "polling"
"""Set in an ``in_progress`` result's data; echoed back in params by the caller that polls."""


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


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _set_mappings(clients: Clients, ids: tuple[str, ...], enabled: bool, side: Side = "dr") -> list[str]:
    changed: list[str] = []
    wanted = ("Enabled", "Enabling") if enabled else ("Disabled", "Disabling")
    for uuid in ids:
        state = clients.lambda_(side).get_event_source_mapping(UUID=uuid).get("State")
        if state not in wanted:
            clients.lambda_(side).update_event_source_mapping(UUID=uuid, Enabled=enabled)
            changed.append(f"mapping {uuid} {state} -> {'Enabled' if enabled else 'Disabled'}")
    return changed


def region_a_answering(ctx: RunbookContext, clients: Clients) -> str | None:
    """The first of region A's endpoints the runbook acts through that answers, or None when none does.

    Region A is dark only when none answers: its RDS API (the database the run would promote away from),
    its Auto Scaling API (the web tier the fence scales in) and its Lambda API (the functions the fence
    throttles). Any answer, an AWS error included, is an answer. One endpoint failing to connect while
    another answers is an impaired region A, not a dark one: its web tier may still serve its writer, so
    a fence it did not reach is not best effort and a replication tail it still holds is not lost
    (break32 B32-1, B32-7: a control-plane incident of one service, e.g. "Control planes ... are more
    complex ... and are therefore statistically more likely to fail than data planes",
    https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/control-planes-and-data-planes.html).
    Each look is one call with region A's fail-fast settings (``clients.PRIMARY_SETTINGS``)."""
    looks: list[tuple[str, Callable[[], object]]] = []
    if ctx.database_mode == "rds-replica" and ctx.primary_db_instance_id:
        ident = ctx.primary_db_instance_id
        looks.append(
            ("rds", lambda: clients.rds("primary").describe_db_instances(DBInstanceIdentifier=ident))
        )
    elif ctx.primary_cluster_id:
        cluster = ctx.primary_cluster_id
        looks.append(
            ("rds", lambda: clients.rds("primary").describe_db_clusters(DBClusterIdentifier=cluster))
        )
    if ctx.primary_asg_name:
        group = ctx.primary_asg_name
        looks.append(
            (
                "autoscaling",
                lambda: clients.autoscaling("primary").describe_auto_scaling_groups(
                    AutoScalingGroupNames=[group]
                ),
            )
        )
    if ctx.primary_function_names:
        function = ctx.primary_function_names[0]
        looks.append(
            ("lambda", lambda: clients.lambda_("primary").get_function_concurrency(FunctionName=function))
        )
    for endpoint, look in looks:
        try:
            look()
        except CONNECTION_ERRORS:
            continue
        except (ClientError, BotoCoreError):
            return endpoint
        return endpoint
    return None
