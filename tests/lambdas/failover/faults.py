"""Fault injection through botocore's event system (tests only).

A ``Fault`` is a ``before-send`` handler: botocore emits ``before-send.<service>.<Operation>``
once per HTTP attempt, after signing and inside its retry loop, so

* an error *response* returned from the hook goes through botocore's retry machinery exactly as
  one from AWS would (a throttling answer is retried with adaptive back-off; AccessDenied is not);
* an exception raised from it (``EndpointConnectionError``) is a connection failure, also retried
  and then raised.

Registered with ``register_first`` on a ``boto3.Session``'s events, it runs before moto's own
``before-send`` stub and reaches every client built from that session afterwards (clients copy the
session's emitter when they are created). botocore calls *every* ``before-send`` handler and uses
the first response, so in-process moto would still apply a request the fault answered: the fault
marks such requests with ``FAULT_HEADER`` and ``moto_respects_faults()`` makes moto's stub skip
them. (Against a moto server the stub is idle and the marked request is never sent.) The region of a request is read from its SigV4
credential scope, so it works both in-process (``mock_aws``) and against a moto server.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from moto.core.botocore_stubber import BotocoreStubber

# The wire protocol of each service the runbook uses, keyed by botocore's hyphenated service id.
# CloudWatch speaks several (smithy-rpc-v2-cbor, json, query); the request says which one is used.
PROTOCOLS = {
    "rds": "query",
    "auto-scaling": "query",
    "sns": "query",
    "lambda": "rest-json",
    "ssm": "json",
    "cloudwatch": "json",
}
FAULT_HEADER = "x-pilotlight-fault-injected"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


class _Raw:
    """The minimal raw-body object ``AWSResponse`` reads from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._body


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    if len(data) < 24:
        return bytes([0x60 + len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    raise ValueError("text too long for this tiny CBOR encoder")


def _cbor_map(items: dict[str, str]) -> bytes:
    if len(items) >= 24:
        raise ValueError("map too large for this tiny CBOR encoder")
    out = bytes([0xA0 + len(items)])
    for key, value in items.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name) or ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _protocol(service: str, request: Any) -> str:
    if _header(request, "smithy-protocol"):
        return "cbor"
    if "x-www-form-urlencoded" in _header(request, "Content-Type"):
        return "query"
    if _header(request, "X-Amz-Target"):
        return "json"
    return PROTOCOLS[service]


def error_response(service: str, request: Any, code: str, message: str, status: int = 400) -> AWSResponse:
    """An HTTP error response to ``request``, in its protocol, carrying AWS error ``code``."""
    protocol = _protocol(service, request)
    url = request.url
    headers: dict[str, str] = {"x-amzn-RequestId": "fault-injected"}
    if protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault-injected</RequestId></ErrorResponse>"
        ).encode()
        headers["Content-Type"] = "text/xml"
    elif protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.1"
    elif protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        headers["x-amzn-ErrorType"] = code
        headers["Content-Type"] = "application/json"
    else:  # smithy-rpc-v2-cbor
        body = _cbor_map({"__type": code, "message": message})
        headers["smithy-protocol"] = "rpc-v2-cbor"
        headers["Content-Type"] = "application/cbor"
    return AWSResponse(url, status, headers, _Raw(body))


def throttling_code(service: str) -> str:
    """The code a throttled call of ``service`` answers with."""
    return {"lambda": "TooManyRequestsException", "ssm": "ThrottlingException"}.get(service, "Throttling")


def access_denied_code(service: str) -> str:
    """The code a denied call of ``service`` answers with."""
    return "AccessDenied" if PROTOCOLS[service] == "query" else "AccessDeniedException"


@dataclass
class Fault:
    """Fail matching requests.

    Attributes:
        service: hyphenated service id (``rds``, ``auto-scaling``, ``lambda``, ...); None = any.
        operation: API operation name (``PromoteReadReplica``); None = any.
        region: only requests signed for this region; None = any.
        code: AWS error code to answer with; ignored when ``unreachable``.
        times: how many matching requests to fail (None = all).
        skip: let this many matching requests through first (to reach a later step's call).
        unreachable: raise ``EndpointConnectionError`` instead of answering.
        status: HTTP status of the error answer.
        body_excludes: requests whose body holds this text do not match (the run journal's
            PutParameter next to the latch's).
    """

    service: str | None = None
    operation: str | None = None
    region: str | None = None
    code: str = "AccessDenied"
    times: int | None = None
    skip: int = 0
    unreachable: bool = False
    status: int = 400
    body_excludes: str | None = None
    seen: list[str] = field(default_factory=list)
    injected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        if self.service and service != self.service:
            return None
        if self.operation and operation != self.operation:
            return None
        if self.body_excludes:
            body = request.body if isinstance(request.body, bytes | str) else b""
            text = body.decode(errors="replace") if isinstance(body, bytes) else body
            if self.body_excludes in text:
                return None
        match = _SCOPE.search(_header(request, "Authorization"))
        region = match.group(1) if match else None
        if self.region and region != self.region:
            return None
        with self._lock:
            self.seen.append(f"{region}:{service}.{operation}")
            if len(self.seen) <= self.skip:
                return None
            if self.times is not None and self.injected >= self.times:
                return None
            self.injected += 1
        if self.unreachable:
            raise EndpointConnectionError(endpoint_url=request.url)
        request.headers[FAULT_HEADER] = "1"
        return error_response(service, request, self.code, f"injected {self.code}", self.status)

    def install(self, session: boto3.Session) -> Fault:
        """Register on ``session`` ahead of moto's stub; returns self."""
        session.events.register_first("before-send", self)
        return self

    def darkens(self, region: str) -> bool:
        """Whether this fault makes all of ``region`` unreachable (every service, every call, from now on)."""
        return (
            self.unreachable
            and self.region == region
            and self.service is None
            and self.operation is None
            and len(self.seen) >= self.skip  # the calls it lets through first are spent
            and (self.times is None or self.injected < self.times)
        )


class FaultSwitch:
    """One ``before-send`` hook whose active faults a test swaps between runs.

    Lets several runs in a test share one set of clients (building clients is the slowest part
    of these tests) while each run gets its own faults, or none.
    """

    def __init__(self) -> None:
        self.active: list[Fault] = []
        _SWITCHES.append(self)

    def __call__(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        for fault in list(self.active):
            response = fault(request, event_name=event_name, **kwargs)
            if response is not None:
                return response
        return None

    def install(self, session: boto3.Session) -> FaultSwitch:
        """Register on ``session`` ahead of moto's stub; returns self."""
        session.events.register_first("before-send", self)
        return self


_SWITCHES: list[FaultSwitch] = []
"""Fault switches made in this test (``forget_switches`` empties it between tests)."""


def region_dark(region: str) -> bool:
    """Whether a fault active in a ``FaultSwitch`` makes all of ``region`` unreachable: what a world's web tier
    answers then (nothing: a dark region's health endpoint does not answer 200 either). Only a switch's
    active faults count: they are in force for one run (``run_book``) or until a test swaps them, while a
    fault installed for good on a session (``Fault.install``) outlives the run it was made for."""
    return any(f.darkens(region) for switch in _SWITCHES for f in switch.active)


def forget_switches() -> None:
    """Forget the fault switches of the test that ended."""
    _SWITCHES.clear()


def moto_respects_faults() -> Callable[[], None]:
    """Make in-process moto ignore requests a fault answered; returns the undo function."""
    original = BotocoreStubber.__call__

    def call(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> AWSResponse | None:
        if request.headers.get(FAULT_HEADER):
            return None
        return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = call  # type: ignore[method-assign]

    def undo() -> None:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]

    return undo


def throttle_once(service: str, operation: str, region: str, skip: int = 0) -> Fault:
    """One throttling answer to the first matching call (after ``skip``)."""
    return Fault(service, operation, region, code=throttling_code(service), times=1, skip=skip)


def deny(service: str, operation: str, region: str, skip: int = 0) -> Fault:
    """AccessDenied to every matching call (after ``skip``)."""
    return Fault(service, operation, region, code=access_denied_code(service), skip=skip)


def unreachable(region: str) -> Fault:
    """Every call to ``region`` fails to connect."""
    return Fault(region=region, unreachable=True)
