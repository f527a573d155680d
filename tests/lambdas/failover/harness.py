"""Shared helpers for the runbook tests and the benchmark: health server, fast params, runs."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.client import BaseClient

from lambdas.failover import executor
from lambdas.failover.clients import Clients
from lambdas.failover.clock import SYSTEM_CLOCK, Clock
from lambdas.failover.context import RunbookContext
from lambdas.failover.executor import RunReport
from tests.lambdas.failover.faults import Fault, FaultSwitch
from tests.lambdas.failover.world import REGION_A, REGION_B, World

FAST: dict[str, Any] = {
    "waiterDelay": 0,
    "waiterMaxAttempts": 5,
    "probeTries": 2,
    "probeInterval": 0,
    "drainSeconds": 0,  # the tests' tiers hold no requests in flight
    # The tests' region A answers, or is dark, for a whole run: no blip for the fence to look through
    # (tests/safety/test_darkness.py covers the confirmation, lambdas/failover/darkness.py).
    "fenceDarkSeconds": 0,
}
"""Waiter and probe settings that make in-process runs fast (moto answers at once)."""

FORCED: dict[str, Any] = {**FAST, "force": True, "reason": "test drill"}


_LOADER = botocore.loaders.create_loader()


def new_session() -> boto3.Session:
    """A fresh boto3 session (own event hooks, own clients) sharing one service-model loader.

    Each new session otherwise re-reads and re-parses every service's JSON model, which costs
    ~50 ms per client and would dominate these tests; sharing the loader changes nothing else.
    """
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core)


class HealthServer:
    """A tiny HTTP server on 127.0.0.1 whose answers the test controls, path by path."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path)
                status, body = route() if route else (404, {"error": "no such route"})
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """Full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def set(self, path: str, status: int, body: Mapping[str, Any] | None = None) -> None:
        """Answer ``status`` with ``body`` on ``path``."""
        self.routes[path] = lambda: (status, dict(body or {}))

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class ShiftedClock:
    """Wall-clock time moved forward by every sleep, at once: a run whose only waits are its own
    (the switch's evaluation before an unplanned promotion: 70 s) takes no real time for them. Its
    datapoints and journal stamps carry the shifted time, which is what the run reads back. Not for
    worlds whose AWS side changes with real time while the run waits."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._offset += max(0.0, seconds)

    def monotonic(self) -> float:
        return time.monotonic() + self._offset


def clients_for(world: World, *faults: Fault | FaultSwitch, clock: Clock = SYSTEM_CLOCK) -> Clients:
    """Fresh clients on a fresh session with ``faults`` installed before any client exists."""
    session = new_session()
    for fault in faults:
        fault.install(session)
    return Clients.for_context(
        RunbookContext.from_dict(world.context), session, endpoint_url=world.endpoint_url, clock=clock
    )


def shifted_runs(world: World) -> ShiftedClock:
    """Make the world's runs (``run_book``) wait on a :class:`ShiftedClock`; returns it."""
    clock = ShiftedClock()
    switch = FaultSwitch()
    world.extras["runbook"] = (switch, clients_for(world, switch, clock=clock))
    return clock


def run_book(
    world: World, runbook: str, *faults: Fault, params: Mapping[str, Any] | None = None
) -> RunReport:
    """Run ``runbook`` in process against ``world`` with ``faults`` active for this run only.

    The runs of one world share their clients (a ``FaultSwitch`` swaps the faults), as the runs
    of one CLI invocation would; the context is parsed again each time, so a test may edit it.
    """
    if "runbook" not in world.extras:
        switch = FaultSwitch()
        world.extras["runbook"] = (switch, clients_for(world, switch))
    switch, clients = world.extras["runbook"]
    ctx = RunbookContext.from_dict(world.context)
    switch.active = list(faults)
    try:
        return executor.run(runbook, ctx, clients, params=FORCED if params is None else params)
    finally:
        switch.active = []


def assert_failed_over(world: World) -> None:
    """Region B serves and region A is fenced."""
    assert world.dr_is_writer()
    assert world.asg(REGION_B) == (1, 2, 4)
    assert all(v is None for v in world.concurrency(REGION_B).values())
    assert world.mappings() == ["Enabled"]
    assert world.switch_values()[-1] == 1.0
    assert world.latch()["state"] == "active"
    assert world.asg(REGION_A)[:2] == (0, 0)
    assert set(world.concurrency(REGION_A).values()) == {0}


READ_ONLY_PREFIXES = ("Describe", "Get", "List")
"""Operations that change nothing (as ``tests/safety/model.py`` counts mutating calls)."""


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call as a client made it: service, operation, region."""

    service: str
    operation: str
    region: str
    dry_run: bool = False
    """An ``Invoke`` with ``InvocationType=DryRun``: Lambda checks the parameters and the caller's
    permission and runs nothing (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html)."""

    @property
    def mutating(self) -> bool:
        return not self.dry_run and not self.operation.startswith(READ_ONLY_PREFIXES)


@contextlib.contextmanager
def recorded_calls() -> Iterator[list[ApiCall]]:
    """Record every AWS call any client makes (any session, in-process or against a moto server)."""
    calls: list[ApiCall] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: Any) -> Any:
        dry_run = operation_name == "Invoke" and api_params.get("InvocationType") == "DryRun"
        calls.append(
            ApiCall(self.meta.service_model.service_name, operation_name, self.meta.region_name, dry_run)
        )
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def declare_without_promotion(
    ctx: RunbookContext, clients: Clients, reason: str = "declared failover"
) -> None:
    """A declared failover stopped before its writer move: what ``python -m automation latch activate`` does
    up to ``promote_database`` (the failover's hold, the fence, the latch, the switch), in its order. The
    state a crash of the command leaves there, and the one an older pilotlight's ``latch activate`` left
    in rds-replica (it did not promote; the dr stack's update did, with no zero-lag proof: break34 B34-5)."""
    from lambdas.failover import steps

    params = {"reason": reason, "wait": True}
    steps.declare_failover_hold(clients, ctx)
    for step in (steps.fence_primary, steps.write_latch, steps.throw_switch):
        step(ctx, clients, params)


@contextlib.contextmanager
def cli_on_shifted_clock() -> Iterator[ShiftedClock]:
    """``python -m automation latch ...`` (``automation.latch_cli.connect``) on a :class:`ShiftedClock`: its
    waits (the 300 s drain, the zero-lag polls) pass at once against a moto server whose datapoints do not
    change with time."""
    from automation import latch_cli

    clock = ShiftedClock()
    real = latch_cli.connect

    def connect(args: Any) -> tuple[RunbookContext, Clients]:
        ctx, clients = real(args)
        clients.clock = clock
        return ctx, clients

    latch_cli.connect = connect  # type: ignore[assignment]
    try:
        yield clock
    finally:
        latch_cli.connect = real  # type: ignore[assignment]
