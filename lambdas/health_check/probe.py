"""The region-B canary's logic: probe region A's health endpoints, publish the results, keep the switch alive.

Runs every minute in region B (an EventBridge schedule), so it sees region A from outside: a region
whose own monitoring went down with it cannot report itself unhealthy.

One run:

1. probes every target in parallel (``GET`` with a timeout; one retry on a connection error, a
   timeout or a 5xx). A target is healthy when it answers 200 and, if the body is a JSON object with
   a ``"status"`` key, that status is ``"ok"``; a ``"region"`` key in the body is recorded;
2. reads the failover latch (SSM, this region) and, when the latch is not ``active`` and region A
   answers, the run journal beside it (``<latch>-journal``, written by the runbook): whether a
   failover took region A out (fenced it, or left its fence pending) and no failback gave it back;
3. publishes, in one ``put_metric_data`` call (two when the switch metric has its own namespace):
   ``PrimaryEndpointHealthy`` / ``PrimaryEndpointLatency`` per target (``App``, ``Target``), the
   aggregate ``PrimaryHealthy`` (``App``; 1 only if every target is healthy; the automated-failover
   alarm watches it) and the switch metric (1 when the latch is ``active``, else 0).

Configuration comes from environment variables and is parsed by ``Settings.from_env`` before any
probe or AWS call; see ``Settings`` for the variables and their defaults.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import math
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger("pilotlight.health_check")

# Adaptive mode backs off and rate-limits itself on throttling. The short socket timeouts keep a
# run inside its one-minute schedule when CloudWatch or SSM is slow to answer.
CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "adaptive", "max_attempts": 5})

DEFAULT_METRIC_NAMESPACE = "Pilotlight/Health"
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_ATTEMPTS = 2
MAX_TIMEOUT_SECONDS = 30.0
MAX_ATTEMPTS = 5
# Targets are probed in parallel, so a run takes about ATTEMPTS x TIMEOUT_SECONDS at worst; it must
# end well before the next scheduled run starts.
MAX_PROBE_SECONDS = 45.0

ENDPOINT_HEALTHY = "PrimaryEndpointHealthy"
ENDPOINT_LATENCY = "PrimaryEndpointLatency"
PRIMARY_HEALTHY = "PrimaryHealthy"

LATCH_ACTIVE = "active"
LATCH_STANDBY = "standby"
LATCH_TAMPERED = ("LatchMissing", "MalformedLatch")
"""Latch errors that say the parameter was deleted or overwritten with something that is not a latch
(SSM answered: the journal beside it can still be read), as opposed to a latch that could not be read
(AccessDenied, throttling: then the journal would not be read either)."""

JOURNAL_SUFFIX = "-journal"
"""The run journal is the SSM parameter ``<latch parameter>-journal`` in region B
(``lambdas/failover/journal.py``, ``_journal_name``)."""
FAILOVER_MARKS = ("fencePending", "primaryStoppedAt", "failoverDeclaredAt")
"""Journal keys a failover sets when it takes region A out and only a failback clears
(``confirm_primary_healthy``, ``unfence_primary``), or ``python -m automation latch release`` once
AWS shows region A holds the writer: ``fencePending`` (region A did not answer its fence),
``primaryStoppedAt`` (region A was fenced), ``failoverDeclaredAt`` (a declared failover,
``python -m automation latch activate``, left region A unfenced). The runbook's failback reads the same marks to restore a
latch lost or set to standby by hand (``lambdas/failover/journal.py``, ``FAILOVER_MARKS``)."""

WRITER_MOVE_MARK = "writerMoveRequestedAt"
"""Journal key a failback writes before it asks AWS to move the writer back to region A, once region B
is drained at zero lag (``lambdas/failover/journal.py``, ``WRITER_MOVE_MARK``); cleared when the latch
goes back to standby, when a stopped failback leaves the writer in region B, and when a new failover
starts. While it is set, region A answering healthy that its database is the writer is the failback's
writer, not an old primary left standalone by a promotion."""

_REGRESSIONS: set[str] = set()
"""Test-only: old behaviours ``tests/safety`` turns back on to show the checker sees them (always
empty in the deployed canary). ``canary-releases-on-doubt``: an absent latch reads as standby and
anything but ``active`` releases the switch. ``canary-trusts-standby``: the run journal is not read,
so a standby latch releases the switch whenever region A says it holds the writer (a stale one after
a failover included), and a pending fence is asked for only under an active or unreadable latch.
``canary-ignores-writer-move``: an active latch keeps the switch thrown even when the journal says a
failback moved the writer back to region A and region A answers as the writer."""

# Enough for any health document; a bigger body is read no further (and is not JSON to us).
MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "pilotlight-health-check/1"


class ConfigurationError(ValueError):
    """An environment variable is missing or holds a value the canary cannot use; the message names it."""


class PublishError(RuntimeError):
    """CloudWatch refused the metrics. ``result`` is the run's result, with the error in ``errors``."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def log_event(level: int, message: str, **fields: Any) -> None:
    """Log one JSON line: ``{"level", "message", ...context}``."""
    if LOGGER.isEnabledFor(level):
        record = {"level": logging.getLevelName(level).lower(), "message": message, **fields}
        LOGGER.log(level, json.dumps(record, default=str))


def aws_error_code(exc: ClientError | BotoCoreError) -> str:
    """The AWS error code of a ClientError, or the class name of a botocore (connection) error."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "Unknown")
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One health endpoint of region A. ``name`` is the ``Target`` dimension (``web``, ``api``).

    ``address``: where to connect instead of the URL's host, which still names the server for TLS (SNI,
    certificate and host name verification) and the ``Host`` header. Region A's web tier over HTTPS is
    probed so: the URL names ``web.<domain>``, the name its certificate covers, and ``address`` is region
    A's load balancer, whatever the failover record ``web.<domain>`` answers.
    """

    name: str
    url: str
    address: str | None = None


@dataclass(frozen=True)
class SwitchMetric:
    """The CloudWatch metric behind the Route 53 failover switch (1 = traffic to region B)."""

    namespace: str
    name: str
    dimensions: Mapping[str, str]


@dataclass(frozen=True)
class Settings:
    """The canary's configuration.

    Attributes:
        region: this function's region (``AWS_REGION``, region B); metrics and latch live here.
        targets: region A's health endpoints (``TARGETS``: a JSON list of ``{"name", "url"}``
            objects, unique names, http(s) URLs, each with an optional ``"address"`` to connect to
            instead of the URL's host: see ``Target``).
        app: the ``App`` dimension value (``APP``).
        switch: the failover switch metric (``SWITCH_NAMESPACE``, ``SWITCH_METRIC``,
            ``SWITCH_DIMENSIONS``: a JSON object of string to string).
        latch_parameter: the SSM parameter holding the failover latch (``LATCH_PARAMETER``).
        timeout_seconds: per-attempt HTTP timeout (``TIMEOUT_SECONDS``, default 5, at most 30).
        attempts: tries per target (``ATTEMPTS``, default 2, 1 to 5); only a connection error, a
            timeout or a 5xx is retried.
        metric_namespace: namespace of the health metrics (``METRIC_NAMESPACE``, required: the
            deployment's own, ``Pilotlight/Health/<app>-<env>``, which the canary's role may write and
            another environment's may not; IAM fences PutMetricData by namespace only, and
            ``PrimaryHealthy`` starts the automated failover). The field's default serves direct
            construction in tests; a deployed canary always names its namespace.
        log_level: level of this function's log lines (``LOG_LEVEL``, default INFO).
        runbook_function: the runbook Lambda (``RUNBOOK_FUNCTION``, optional). When region A
            answers again, the canary asks it (asynchronously) to complete a fence of region A that
            a failover left pending (``fence_primary`` with ``onlyIfPending``): region A is fenced
            within a minute of answering again. It asks whenever region A gives any HTTP answer
            under an active or unreadable latch, or under any other latch (standby included) when
            the run journal says a fence is pending or cannot be read: the pending fence is
            recorded in the journal, not the latch.
    """

    region: str
    targets: tuple[Target, ...]
    app: str
    switch: SwitchMetric
    latch_parameter: str
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    attempts: int = DEFAULT_ATTEMPTS
    metric_namespace: str = DEFAULT_METRIC_NAMESPACE
    log_level: str = "INFO"
    runbook_function: str | None = None

    @property
    def journal_parameter(self) -> str:
        """The run journal's SSM parameter, beside the latch (region B)."""
        return f"{self.latch_parameter}{JOURNAL_SUFFIX}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the environment; ConfigurationError names the first bad variable and what it expects."""
        timeout = _number(env, "TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)
        attempts = _integer(env, "ATTEMPTS", DEFAULT_ATTEMPTS, 1, MAX_ATTEMPTS)
        if attempts * timeout > MAX_PROBE_SECONDS:
            raise ConfigurationError(
                f"ATTEMPTS x TIMEOUT_SECONDS must be at most {MAX_PROBE_SECONDS:g} s so a run ends before "
                f"the next one starts; got {attempts} x {timeout:g} s"
            )
        log_level = _optional(env, "LOG_LEVEL") or "INFO"
        if logging.getLevelName(log_level.upper()) not in (10, 20, 30, 40, 50):
            raise ConfigurationError(
                f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got {log_level!r}"
            )
        return cls(
            region=_required(env, "AWS_REGION", "the function's AWS region"),
            targets=_targets(env),
            app=_required(env, "APP", "the App dimension value"),
            switch=SwitchMetric(
                namespace=_namespace(env, "SWITCH_NAMESPACE", None),
                name=_required(env, "SWITCH_METRIC", "the failover switch metric name"),
                dimensions=_dimensions(env, "SWITCH_DIMENSIONS"),
            ),
            latch_parameter=_required(env, "LATCH_PARAMETER", "the SSM parameter name of the failover latch"),
            timeout_seconds=timeout,
            attempts=attempts,
            metric_namespace=_namespace(env, "METRIC_NAMESPACE", None),
            log_level=log_level.upper(),
            runbook_function=_optional(env, "RUNBOOK_FUNCTION"),
        )


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = _optional(env, name)
    if value is None:
        raise ConfigurationError(f"{name} must be set: {what}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, maximum: float) -> float:
    raw = _optional(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value <= maximum):  # also rejects nan and inf
        raise ConfigurationError(
            f"{name} must be a number of seconds above 0 and at most {maximum:g}; got {raw!r}"
        )
    return value


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = _optional(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a whole number from {minimum} to {maximum}; got {raw!r}"
        ) from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be a whole number from {minimum} to {maximum}; got {raw!r}")
    return value


def _namespace(env: Mapping[str, str], name: str, default: str | None) -> str:
    value = _optional(env, name) or default
    if value is None:
        raise ConfigurationError(
            f"{name} must be set: the deployment's own CloudWatch namespace "
            "('Pilotlight/Health/<app>-<env>', 'Pilotlight/Failover/<app>-<env>')"
        )
    if value.startswith("AWS/"):
        raise ConfigurationError(
            f"{name} must be a custom CloudWatch namespace (not 'AWS/...'); got {value!r}"
        )
    return value


def _json(env: Mapping[str, str], name: str, expected: str) -> Any:
    raw = _optional(env, name)
    if raw is None:
        raise ConfigurationError(f"{name} must be set: {expected}")
    try:
        return json.loads(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be JSON: {expected}; got {raw[:200]!r}") from None


def _targets(env: Mapping[str, str]) -> tuple[Target, ...]:
    expected = 'a non-empty JSON list of {"name": ..., "url": "https://.../health"} objects with unique names'
    data = _json(env, "TARGETS", expected)
    # An empty list would make "all targets healthy" vacuously true: PrimaryHealthy 1 forever.
    if not isinstance(data, list) or not data:
        raise ConfigurationError(f"TARGETS must be {expected}; got {data!r}")
    targets: list[Target] = []
    for i, item in enumerate(data):
        name = item.get("name") if isinstance(item, dict) else None
        url = item.get("url") if isinstance(item, dict) else None
        address = item.get("address") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip() or not isinstance(url, str):
            raise ConfigurationError(
                f"TARGETS[{i}] must be an object with string 'name' and 'url'; got {item!r}"
            )
        if address is not None and (not isinstance(address, str) or not address.strip() or "/" in address):
            raise ConfigurationError(f"TARGETS[{i}].address must be a host name or address; got {address!r}")
        parts = urlsplit(url)
        # urllib would also open file:// and ftp:// URLs; a health endpoint is HTTP.
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"TARGETS[{i}].url must be an http(s) URL with a host; got {url!r}")
        if any(t.name == name for t in targets):
            raise ConfigurationError(
                f"TARGETS names must be unique (they are the Target dimension); {name!r} repeats"
            )
        targets.append(Target(name=name, url=url, address=address))
    return tuple(targets)


def _dimensions(env: Mapping[str, str], name: str) -> dict[str, str]:
    expected = 'a JSON object of dimension name to value, e.g. {"App": "shop"}'
    data = _json(env, name, expected)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in data.items()
    ):
        raise ConfigurationError(f"{name} must be {expected} (non-empty strings); got {data!r}")
    return {str(k): str(v) for k, v in data.items()}


# ---------------------------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of probing one target (its last attempt).

    ``status`` is the HTTP status, None when no answer came; ``latency_ms`` is the last attempt's
    time to answer (or to fail); ``region`` is the ``"region"`` of a JSON body, when present.
    """

    target: Target
    healthy: bool
    status: int | None
    latency_ms: float
    error: str | None = None
    region: str | None = None
    attempts: int = 1
    writer: bool | None = None
    """The ``"writer"`` of a JSON body (lambdas/api/health.py: whether its database is the writer)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.target.name,
            "url": self.target.url,
            "healthy": self.healthy,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "region": self.region,
            "writer": self.writer,
        }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Make a 3xx an answer rather than a hop: a health check redirected to a login page is not healthy."""

    def redirect_request(self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: Any) -> None:
        return None


def _check_body(body: bytes) -> tuple[str | None, str | None, bool | None]:
    """(error, region, writer) from a 200's body; a body that is not a JSON object is not judged."""
    try:
        document = json.loads(body)
    except ValueError:
        return None, None, None
    if not isinstance(document, dict):
        return None, None, None
    region = document.get("region")
    region = str(region) if region is not None else None
    writer = document.get("writer")
    writer = writer if isinstance(writer, bool) else None
    if "status" in document and str(document["status"]).lower() != "ok":
        return f"body status is {document['status']!r}, expected 'ok'", region, writer
    return None, region, writer


class _AddressedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``address`` (TCP), verified for ``host``, the URL's host name (TLS: SNI, certificate chain and
    host name, with the context's ``check_hostname``; HTTP: the ``Host`` header urllib sets from the URL).

    ``http.client.HTTPSConnection.connect`` wraps the socket with ``server_hostname=self.host``
    (https://docs.python.org/3/library/http.client.html#http.client.HTTPSConnection); only where the TCP
    connection goes differs, verification is never turned off.
    """

    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _AddressedHTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler, connecting to one address (see :class:`_AddressedHTTPSConnection`)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self._address = address

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(  # type: ignore[return-value]
            functools.partial(_AddressedHTTPSConnection, address=self._address),  # type: ignore[arg-type]
            req,
            context=self._context,  # type: ignore[attr-defined]
        )


def probe_once(target: Target, timeout: float) -> tuple[ProbeResult, bool]:
    """One GET of ``target``: (result, whether a retry could help: no answer, a timeout or a 5xx)."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if target.address is not None and urlsplit(target.url).scheme == "https":
        handlers.append(_AddressedHTTPSHandler(target.address))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(
        target.url, headers={"User-Agent": USER_AGENT, "Cache-Control": "no-cache"}, method="GET"
    )
    started = time.monotonic()

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    try:
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
            body = response.read(MAX_BODY_BYTES)
        latency = elapsed()
    except urllib.error.HTTPError as exc:  # 3xx (not followed), 4xx, 5xx
        latency = elapsed()
        exc.close()
        return ProbeResult(
            target, False, exc.code, latency, f"HTTP {exc.code}, expected 200"
        ), exc.code >= 500
    except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
        latency = elapsed()
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            error = f"timed out after {timeout:g} s"
        else:
            error = f"connection failed: {type(reason).__name__}: {reason}"
        return ProbeResult(target, False, None, latency, error), True
    if status != 200:
        return ProbeResult(target, False, status, latency, f"HTTP {status}, expected 200"), False
    error, region, writer = _check_body(body)
    return ProbeResult(target, error is None, status, latency, error, region, writer=writer), False


def probe_target(target: Target, timeout: float, attempts: int) -> ProbeResult:
    """Probe ``target`` up to ``attempts`` times; the result of the last attempt is kept."""
    result, retryable = probe_once(target, timeout)
    attempt = 1
    while retryable and attempt < attempts:
        log_event(
            logging.INFO,
            "probe failed, retrying",
            target=target.name,
            url=target.url,
            attempt=attempt,
            status=result.status,
            error=result.error,
        )
        attempt += 1
        result, retryable = probe_once(target, timeout)
    return replace(result, attempts=attempt)


def probe_all(targets: Sequence[Target], timeout: float, attempts: int) -> list[ProbeResult]:
    """Probe every target in parallel, so one dead endpoint does not hold up the others' results."""
    with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="probe") as pool:
        return list(pool.map(lambda t: probe_target(t, timeout, attempts), targets))


# ---------------------------------------------------------------------------------------------
# Latch and metrics
# ---------------------------------------------------------------------------------------------


class LatchError(Exception):
    """The latch could not be read or understood; ``code`` is the AWS error code or a reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_latch_state(ssm: BaseClient, parameter: str) -> str:
    """The latch's ``state``. Raises LatchError when it cannot be read, is absent or is garbled."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as exc:
        code = aws_error_code(exc)
        if code == "ParameterNotFound":
            if "canary-releases-on-doubt" in _REGRESSIONS:
                return LATCH_STANDBY
            # The program creates the latch (standby) with the stack: an absent latch was deleted,
            # and a deleted latch says nothing about where the writer is. Fail safe: keep the switch.
            raise LatchError("LatchMissing", f"latch {parameter} does not exist") from exc
        raise LatchError(code, str(exc)) from exc
    except BotoCoreError as exc:
        raise LatchError(aws_error_code(exc), str(exc)) from exc
    try:
        state = json.loads(value).get("state")
    except (ValueError, AttributeError):
        state = None
    if not isinstance(state, str):
        raise LatchError("MalformedLatch", f"latch {parameter} is not a JSON object with a string 'state'")
    return state


class JournalError(Exception):
    """The run journal could not be read or is not a JSON object; ``code`` is the AWS error code or a reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_journal(ssm: BaseClient, parameter: str) -> dict[str, Any]:
    """The run journal; empty when absent (no runbook run ever wrote it). Raises JournalError when
    it cannot be read or is not a JSON object: the canary then cannot tell that no failover holds
    region A, and fails safe."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as exc:
        if aws_error_code(exc) == "ParameterNotFound":
            return {}
        raise JournalError(aws_error_code(exc), str(exc)) from exc
    except BotoCoreError as exc:
        raise JournalError(aws_error_code(exc), str(exc)) from exc
    try:
        journal = json.loads(value)
    except ValueError:
        journal = None
    if not isinstance(journal, dict):
        raise JournalError("MalformedJournal", f"run journal {parameter} is not a JSON object")
    return journal


def failover_holds_region_a(journal: Mapping[str, Any] | None) -> bool:
    """Whether the run journal says a failover took region A out and no failback gave it back
    (``FAILOVER_MARKS``); an unreadable journal (None) is taken to say so."""
    return journal is None or any(journal.get(mark) for mark in FAILOVER_MARKS)


def failback_moves_writer(journal: Mapping[str, Any] | None) -> bool:
    """Whether the run journal says a failback asked AWS to move the writer back to region A, after
    region B was drained at zero lag (``WRITER_MOVE_MARK``); an unreadable journal (None) says not."""
    return journal is not None and bool(journal.get(WRITER_MOVE_MARK))


def health_metric_data(app: str, results: Sequence[ProbeResult], timestamp: datetime) -> list[dict[str, Any]]:
    """The per-target and aggregate health datapoints.

    Latency is only published for targets that answered: the time it took a connection to be
    refused would read as a fast endpoint.
    """
    data: list[dict[str, Any]] = []
    for r in results:
        dims = [{"Name": "App", "Value": app}, {"Name": "Target", "Value": r.target.name}]
        data.append(
            {
                "MetricName": ENDPOINT_HEALTHY,
                "Dimensions": dims,
                "Timestamp": timestamp,
                "Value": 1.0 if r.healthy else 0.0,
                "Unit": "None",
            }
        )
        if r.status is not None:
            data.append(
                {
                    "MetricName": ENDPOINT_LATENCY,
                    "Dimensions": dims,
                    "Timestamp": timestamp,
                    "Value": r.latency_ms,
                    "Unit": "Milliseconds",
                }
            )
    data.append(
        {
            "MetricName": PRIMARY_HEALTHY,
            "Dimensions": [{"Name": "App", "Value": app}],
            "Timestamp": timestamp,
            "Value": 1.0 if results and all(r.healthy for r in results) else 0.0,
            "Unit": "None",
        }
    )
    return data


def _trusts_the_latch() -> bool:
    """Test-only: an old canary that never read the run journal (``_REGRESSIONS``; the canary that
    released on doubt predates the journal's reading too)."""
    return "canary-trusts-standby" in _REGRESSIONS or "canary-releases-on-doubt" in _REGRESSIONS


def switch_position(
    latch_state: str | None,
    results: Sequence[ProbeResult],
    *,
    held: bool = False,
    writer_moving_back: bool = False,
) -> int | None:
    """Where the switch must stand: 1 (traffic to region B), 0 (to region A), None (leave it).

    Traffic follows the writer whatever step a run stopped at, so the canary only ever moves the
    switch towards the region the evidence says holds the writer:

    * latch ``active``: 1. The failover writes the latch once region A is fenced (or unreachable),
      before it moves the writer and throws the switch, so a run stopped anywhere after that point
      is completed here, never undone towards a region whose writes were stopped. One exception:
    * latch ``active``, the run journal saying a failback asked AWS to move the writer back to region
      A (``writer_moving_back``: written after region B was drained at zero lag, only then), and every
      region-A target answering healthy that its database is the writer: 0. The move happened, and
      region B is drained: a failback that died between its writer move and ``clear_latch`` (a CLI
      process killed) otherwise left Route 53 answering drained region B until it was resumed (soak
      seeds 98, 615). The journal's mark is what makes region A's word enough here: without it an old
      RDS primary back from an outage also says it is a writer. Until region A answers so, the mark
      leaves the switch where it is (None), not thrown: region B is drained (or its database never
      became the writer: a failback over a writer that never left region A releases the switch before
      it gives region A its web tier back, soak seed 2036), so throwing it would send traffic to a
      region that cannot take writes, and would take traffic away from region A while region A comes
      up serving its writer behind it.
    * latch ``standby``, every region-A target answers healthy saying its database is the writer,
      *and* the run journal records no failover holding region A (``held`` False: a completed
      failback, or no failover ever): 0. Region A's word alone is not enough: after an unplanned
      promotion its old RDS primary, back from the outage, is a standalone writer too and says so;
      a latch set to standby by hand would hand it traffic beside region B's writer (what
      ``python -m automation latch release`` refuses from AWS state, the canary refuses from the
      journal, which only a failback or that release clears).
    * latch deleted or garbled (``latch_state`` None, ``LATCH_TAMPERED``), the journal readable and
      holding no failover (or saying a failback moves the writer back, as above), and every region-A target answering healthy that its database is the
      writer: 0, as under standby. The latch's absence says nothing about the writer; the journal
      (only a failback or ``latch release`` clears its marks) and region A's answer do. A failback
      that released the switch and set the latch to standby within the minute the canary had put 1,
      its latch then deleted, otherwise left the switch thrown for good (soak seed 39).
    * latch ``standby``, the journal holding no failover, and no region-A target answers at all
      (region A dark): 0. Only a completed failback (or no failover ever) leaves that latch and
      journal, and both leave the writer in region A; Route 53's endpoint checks already send
      traffic away from a dark region A, so the released switch changes no answer now, and keeps a
      failback's release when region A went dark before the switch alarm saw it (seed 2: the
      alarm, then Route 53's ``LastKnownStatus``, kept the thrown switch, and a region A back with
      the writer was never answered).
    * anything else (another state, region A answering unhealthy or not the writer, the journal
      holding region A or unreadable): None. The switch keeps its last position: Route 53's check keeps the alarm's
      last state (``LastKnownStatus``).
    """
    region_a_writes = bool(results) and all(r.healthy and r.writer is True for r in results)
    moved_back = writer_moving_back and "canary-ignores-writer-move" not in _REGRESSIONS
    if latch_state == LATCH_ACTIVE:
        if moved_back:
            return 0 if region_a_writes else None
        return 1
    if "canary-releases-on-doubt" in _REGRESSIONS:
        return 0
    if held and not moved_back and not _trusts_the_latch():
        return None
    if latch_state in (LATCH_STANDBY, None) and region_a_writes:
        return 0
    if latch_state == LATCH_STANDBY and results and all(r.status is None for r in results):
        return 0
    return None


def switch_metric_datum(switch: SwitchMetric, value: int, timestamp: datetime) -> dict[str, Any]:
    """The failover switch datapoint."""
    return {
        "MetricName": switch.name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in switch.dimensions.items()],
        "Timestamp": timestamp,
        "Value": float(value),
        "Unit": "None",
    }


FENCE_EVENT = {
    "runbook": "failover",
    "step": "fence_primary",
    "params": {"onlyIfPending": True, "reason": "canary: region A answers again; its fence may be pending"},
}
"""What the canary asks the runbook Lambda to do when region A answers under an active or unreadable
latch, or under any latch while the run journal says its fence is pending (or cannot be read)."""


def complete_pending_fence(settings: Settings, lambda_client: BaseClient) -> dict[str, Any] | None:
    """Ask the runbook Lambda, asynchronously, to finish a pending fence of region A.

    An ``Event`` invocation returns once Lambda has queued it (202) and Lambda retries a failed one
    twice (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html). Returns an error
    entry when Lambda refused the request, else None.
    """
    try:
        lambda_client.invoke(
            FunctionName=settings.runbook_function,
            InvocationType="Event",
            Payload=json.dumps(FENCE_EVENT).encode(),
        )
    except (ClientError, BotoCoreError) as exc:
        code = aws_error_code(exc)
        log_event(
            logging.ERROR, "could not ask the runbook to fence region A", error_code=code, detail=str(exc)
        )
        return {"stage": "fence", "code": code, "message": str(exc)}
    log_event(logging.WARNING, "region A answers: asked the runbook to complete a pending fence of it")
    return None


def _read_failure(
    errors: list[dict[str, Any]],
    stage: str,
    parameter: str,
    region: str,
    exc: LatchError | JournalError,
    message: str,
) -> None:
    """Record (``errors``) and log a latch or journal read that failed."""
    errors.append({"stage": stage, "code": exc.code, "message": str(exc)})
    log_event(
        logging.ERROR, message, parameter=parameter, region=region, error_code=exc.code, detail=str(exc)
    )


def _journal_or_none(
    settings: Settings, ssm: BaseClient, errors: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The run journal, or None (recorded in ``errors`` and logged) when it cannot be read."""
    try:
        return read_journal(ssm, settings.journal_parameter)
    except JournalError as exc:
        _read_failure(
            errors,
            "journal",
            settings.journal_parameter,
            settings.region,
            exc,
            "run journal unreadable; a standby latch does not release the switch",
        )
        return None


def run(
    settings: Settings,
    cloudwatch: BaseClient,
    ssm: BaseClient,
    now: datetime | None = None,
    lambda_client: BaseClient | None = None,
) -> dict[str, Any]:
    """Probe, read the latch, publish; return the run's result.

    ``cloudwatch`` and ``ssm`` must be clients in ``settings.region``. Returns
    ``{"healthy", "targets": [...], "switch": 0 | 1 | None, "errors": [...]}``; ``switch`` is None
    when the latch could not be read, or does not allow moving the switch (``switch_position``):
    then no switch datapoint is published and the switch keeps its position. Raises
    PublishError, after logging, when CloudWatch refuses the metrics: a canary that cannot report
    must show up in the function's Errors metric.
    """
    timestamp = now or datetime.now(UTC)
    results = probe_all(settings.targets, settings.timeout_seconds, settings.attempts)
    healthy = all(r.healthy for r in results)
    errors: list[dict[str, Any]] = []
    for r in results:
        if not r.healthy:
            log_event(
                logging.WARNING,
                "primary endpoint unhealthy",
                app=settings.app,
                target=r.target.name,
                url=r.target.url,
                status=r.status,
                error=r.error,
                attempts=r.attempts,
                latency_ms=r.latency_ms,
            )

    # The Route 53 failover switch is a CloudWatch-alarm health check on the switch metric.
    # Republishing the latch's position every minute means the switch always follows the latch,
    # even after the alarm's last datapoint has aged out (an alarm with no data would otherwise
    # fall back to its missing-data treatment, or INSUFFICIENT_DATA, and Route 53 to its default).
    # When the latch cannot be read, nothing is published: the switch keeps its position rather than
    # being flipped by a read error (AccessDenied, throttling after botocore's retries).
    switch: int | None
    answered = any(r.status is not None for r in results)
    try:
        state: str | None
        try:
            state = read_latch_state(ssm, settings.latch_parameter)
        except LatchError as exc:
            if exc.code not in LATCH_TAMPERED or _trusts_the_latch():
                raise
            # Deleted or garbled: the journal and region A's answer still say where the writer is.
            state = None
            _read_failure(
                errors,
                "latch",
                settings.latch_parameter,
                settings.region,
                exc,
                "latch deleted or garbled; the switch follows the run journal and region A's answer",
            )
        journal: dict[str, Any] | None = {}
        if (answered or state == LATCH_STANDBY) and not _trusts_the_latch():
            # Whatever the latch says, the run journal says whether a failover took region A out
            # and no failback gave it back: the latch can be set to standby by hand, the journal
            # only by the runbook. Under an active latch it says whether a failback moved the
            # writer back. Read only when it decides something (a release, a fence).
            journal = _journal_or_none(settings, ssm, errors)
        switch = switch_position(
            state,
            results,
            held=failover_holds_region_a(journal),
            writer_moving_back=failback_moves_writer(journal),
        )
        pending = journal is None or bool(journal.get("fencePending"))
        if (
            (state == LATCH_ACTIVE or pending)
            and answered
            and settings.runbook_function
            and lambda_client is not None
        ):
            # Region A answers again (any HTTP answer: a half-fenced region A whose web tier is at
            # zero answers 503 while its functions still write) under an active latch, or under
            # any latch while the journal says its fence is pending: a fence the failover could not
            # finish is completed now. The runbook acts only when its journal says a fence is
            # pending, so asking every minute costs one SSM read.
            refused = complete_pending_fence(settings, lambda_client)
            if refused:
                errors.append(refused)
    except LatchError as exc:
        switch = None
        _read_failure(
            errors,
            "latch",
            settings.latch_parameter,
            settings.region,
            exc,
            "latch unreadable; switch metric not published",
        )
        if answered and settings.runbook_function and lambda_client:
            # The pending fence is recorded in the run journal, not the latch: an absent, garbled or
            # unreadable latch says nothing about it. Region A answering is fenced if a failover left
            # its fence pending (the runbook acts only then), or it would serve its writer while the
            # switch, kept where the failover put it, sends traffic to region B (seed 504).
            refused = complete_pending_fence(settings, lambda_client)
            if refused:
                errors.append(refused)

    batches: dict[str, list[dict[str, Any]]] = {
        settings.metric_namespace: health_metric_data(settings.app, results, timestamp)
    }
    if switch is not None:
        batches.setdefault(settings.switch.namespace, []).append(
            switch_metric_datum(settings.switch, switch, timestamp)
        )
    for namespace, data in batches.items():
        try:
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
        except (ClientError, BotoCoreError) as exc:
            code = aws_error_code(exc)
            errors.append({"stage": "publish", "namespace": namespace, "code": code, "message": str(exc)})
            log_event(
                logging.ERROR,
                "put_metric_data failed",
                namespace=namespace,
                metrics=sorted({d["MetricName"] for d in data}),
                region=settings.region,
                error_code=code,
                detail=str(exc),
            )

    result = {
        "healthy": healthy,
        "targets": [r.to_dict() for r in results],
        "switch": switch,
        "errors": errors,
    }
    log_event(
        logging.INFO if healthy and not errors else logging.WARNING,
        "health probe finished",
        app=settings.app,
        healthy=healthy,
        switch=switch,
        targets={r.target.name: r.healthy for r in results},
        errors=[e["code"] for e in errors],
    )
    publish_errors = [e for e in errors if e["stage"] == "publish"]
    if publish_errors:
        raise PublishError(
            "; ".join(f"put_metric_data to {e['namespace']} failed: {e['code']}" for e in publish_errors),
            result,
        )
    return result
