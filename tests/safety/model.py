"""The model-based safety checker: one emulated deployment, the operations a schedule is made of,
and the invariants of docs/safety.md judged from emulated AWS state and the write log only.

A ``Deployment`` is a pilot light in the emulator (moto + ``automation.emulator``): the database
pair, web tiers, functions, latch, switch and topic of ``tests.lambdas.failover.world``, with the
emulator's virtual clock, data plane and Route 53 model. While time passes, the world acts on its
own as AWS and the workload do: clients write every ``WRITE_EVERY`` seconds through whichever
region Route 53 answers (and, for a TTL after an answer changes, through the region cached
resolvers still hold); the canary Lambda runs every minute (its EventBridge schedule).

Operations (``Deployment.op_*``) are what a schedule does: writes, in-flight writes, time passing,
region A going dark and coming back, a runbook run by an executor (optionally crashing after its
k-th mutating AWS call, never seeing that call's answer), resuming, canary ticks, throttling storms,
permission faults on region A, latch tampering, autoscaling raising capacity. None has a
precondition beyond physical possibility.

``judge()`` reads the emulator, never the latch or the runbook's report, and returns the
violations: see ``INVARIANTS``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from automation.emulator.alarms import AlarmSpec, ComparisonOperator, Statistic, TreatMissingData
from automation.emulator.aws import ACCOUNT, AppTier, Emulator
from automation.emulator.data import Store
from automation.emulator.health import FailoverRecord, FailoverRole, HealthCheckSpec, HealthCheckType
from automation.emulator.health import InsufficientDataHealthStatus as Insufficient
from automation.emulator.stores import store_key
from automation.emulator.traffic import Routing
from lambdas.failover import executor
from lambdas.failover import lock as runbook_lock
from lambdas.failover.budget import LOCK_TTL_SECONDS
from lambdas.failover.clients import Clients, Side
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.handler import dispatch, parse_event
from lambdas.failover.names import (
    health_namespace,
    kept_snapshot_id,
    ledger_marker_function_name,
    switch_namespace,
)
from lambdas.health_check import probe
from tests.lambdas.failover.faults import Fault, access_denied_code, throttling_code
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B, SWITCH_NAME, World, build_world

WRITE_EVERY = 20.0
"""Seconds between client resolutions: each asks Route 53, writes through its answer, and is judged."""
STREAM_EVERY = 2.0
"""Seconds between client writes in between resolutions, through the region last answered (clients
hold an answer for the TTL). As dense as RDS's assumed replication delay (``Timings.rds_delay``),
so an RDS replica almost always has an unapplied tail while clients write, and an Aurora secondary
(0.8 s) often does: a promotion at non-zero lag loses writes the checker sees."""
STORES = (Store.DATABASE, Store.TABLE, Store.RECEIPTS)
"""What one client request writes, in order, as the sample workload does: the ledger (relational
database), the payment (DynamoDB global table) and its receipt (S3), lambdas/api/payments.py. A
request stops at the first store that refuses it."""
DNS_TTL = 60
"""The failover records' TTL (components/config.py default): resolvers keep an answer this long."""
WEB = "web.shop.example"
EXECUTORS = ("cli", "sfn")
"""The runbook's two executors: the break-glass CLI's in-process one, and Step Functions."""
TRAFFIC_GRACE = 180.0
"""Seconds Route 53 is given to follow a change: the switch alarm's period plus the checks'."""

SETTLE_SECONDS = 600.0
"""Seconds the end of a schedule lets the world run (faults gone, region A back) before the last run
is resumed: ten canary minutes, past ``FENCE_GRACE`` and ``TRAFFIC_GRACE``; longer while a dead
run's lock lease is unexpired (``Deployment._settle_seconds``)."""

FENCE_GRACE = 150.0
"""Seconds a region that comes back from an outage may still serve its old writer before it is
fenced: up to one canary period (60 s, its EventBridge schedule) before the canary sees it, the
probe's timeout, the Event invocation's start and the fence's calls. The bound docs/safety.md states
for a failover that could not reach region A."""

INVARIANTS = {
    "one_writer": "at no observable point do two regions take writes (answer, serve, and hold a writable database)",
    "no_loss": "no acknowledged write is missing from the writer, except the unapplied tail of an unplanned "
    "promotion; on a planned writer move, the new region holds every table item and receipt acknowledged in the old",
    "traffic_follows_writer": "after a run ends, Route 53 answers with a region that serves and holds the writer",
    "converges": "a run stopped at any step and resumed ends done, or rolled back to a safe serving state",
    "protected_again": "after a failback, region B's database replicates from the writer, or the next failover refuses",
    "single_flight": "two runs never act at once; a re-run never lowers a capacity autoscaling raised",
}


ASYNC_START = 2.0
"""Seconds between an Event invocation and its start (an assumption: Lambda queues it and starts it
"shortly"; https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html)."""


class _RunbookLambda:
    """The runbook function as the canary's Lambda client sees it: ``invoke`` with ``Event`` queues the
    real step on the virtual clock and answers 202."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        assert InvocationType == "Event", InvocationType
        event = json.loads(Payload)
        self.deployment.emulator.clock.after(ASYNC_START, lambda: self.deployment._async_step(event))
        return {"StatusCode": 202}


class ActorClients(Clients):
    """A run's clients, each of whose AWS calls the emulator attributes to the run using them.

    AWS records who made each call (CloudTrail's identity and session); here the identity is the
    run (an in-process run's id, a Step Functions execution's name, one Lambda invocation), set in
    ``actor`` for as long as the run is alive. ``Deployment._acted`` judges single flight from these
    records, never from a run's report.
    """

    actor: str | None = None
    deployment: Deployment | None = None

    def client(self, service: str, side: Side) -> Any:
        key = (service, side)
        fresh = key not in self._cache
        made = super().client(service, side)
        if fresh:
            # First, before the session's hooks (whose Crash would end the call unattributed).
            made.meta.events.register_first("after-call", self._after_call)
        return made

    def _after_call(self, model: Any = None, **_: Any) -> None:
        if self.deployment is not None and self.actor is not None and model is not None:
            self.deployment._acted(self.actor, model)


def actor_clients(deployment: Deployment, session: Any) -> ActorClients:
    """``Clients.for_context`` on ``session`` and the deployment's clock, attributing each call."""
    made = ActorClients(
        session,
        deployment.ctx.primary_region,
        deployment.ctx.dr_region,
        clock=deployment.emulator.clock,
    )
    made.deployment = deployment
    return made


class Crash(BaseException):  # a process death, not an error: nothing may catch it
    """The runbook's process dies here (after AWS applied the call, before the runbook saw it)."""


@dataclass
class Violation:
    """One invariant broken, with what shows it."""

    invariant: str
    at: datetime
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant} at {self.at:%H:%M:%S}: {self.detail}"


class _Health:
    """Region A's and B's health endpoints on 127.0.0.1, answering from emulated state."""

    def __init__(self, answer: Callable[[str], tuple[int, dict[str, Any]] | None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                got = answer(self.path)
                if got is None:  # the region is dark: the connection drops without an answer
                    self.close_connection = True
                    return
                status, body = got
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        # One thread serves every request in turn: probes are sequential, and a thread per request
        # would cost more than the answer.
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        # ``close`` waits for the serving loop to notice the shutdown: poll for it often, or every
        # schedule would wait half a second (``serve_forever``'s default) for nothing.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def routing_for(prefix: str, a_target: str, b_target: str) -> Routing:
    """Route 53 as components/global_failover.py deploys it (standby settings, default routing)."""
    switch = AlarmSpec(
        name=f"{prefix}-failover-switch",
        region=REGION_B,
        namespace=switch_namespace(prefix),
        metric_name=SWITCH_NAME,
        dimensions={"App": prefix},
        statistic=Statistic.MAXIMUM,
        period=60,
        evaluation_periods=1,
        comparison_operator=ComparisonOperator.GREATER_OR_EQUAL,
        threshold=1,
        treat_missing_data=TreatMissingData.MISSING,
    )
    checks = [
        HealthCheckSpec(
            id="switch",
            type=HealthCheckType.CLOUDWATCH_METRIC,
            alarm_name=switch.name,
            alarm_region=REGION_B,
            insufficient_data_health_status=Insufficient.LAST_KNOWN_STATUS,
        ),
        HealthCheckSpec(id="web-a", type=HealthCheckType.HTTP, request_interval=10, failure_threshold=3),
        HealthCheckSpec(
            id="gate",
            type=HealthCheckType.CALCULATED,
            child_ids=("web-a", "switch"),
            child_health_threshold=2,
        ),
    ]
    records = [
        FailoverRecord("shop.example", WEB, FailoverRole.PRIMARY, a_target, "gate", DNS_TTL),
        FailoverRecord("shop.example", WEB, FailoverRole.SECONDARY, b_target, None, DNS_TTL),
    ]
    return Routing.from_specs(
        alarms=[switch],
        health_checks=checks,
        records=records,
        region_of_target={a_target: REGION_A, b_target: REGION_B},
    )


@dataclass
class RunState:
    """What the schedule knows of the last runbook run (to resume it)."""

    runbook: str
    params: dict[str, Any]
    outcome: str  # done / stopped / crashed
    detail: str = ""
    executor_name: str = "cli"
    mutated: bool = False
    """Whether the run made any mutating AWS call (judged from the calls, not from its report)."""
    run_id: str = ""
    """The in-process run's id in the runbook lock: resuming it re-enters a lock it died holding."""
    ended: datetime | None = None
    """When the run ended (virtual time)."""
    resumes_a_crash: bool = False
    """The run resumed a run that died after changing AWS (B21-3): the state it found is that run's,
    so it is judged as having acted even when it makes no mutating call itself."""
    found_region_a_out: bool = False
    """A failover that found the writer in region A with region A's web tier and functions fenced (an
    outage a failover that died before the writer moved left behind: its own fence, or the canary's
    completing its pending fence), and stopped with region A refusing the runbook's changes (a
    standing AccessDenied on its Auto Scaling or Lambda) or not answering, the writer still there and
    region A still fenced: the run could neither fence-and-promote (docs/safety.md: a fence region A
    refuses stops the run before promotion) nor give region A back (its roll-back needs those same
    calls). Judged from AWS state at the run's start and its end (``Deployment._region_a_out``)."""


def _answered_since(emu: Emulator, region: str, event: Any) -> timedelta:
    """How long ``region`` has answered since ``event`` (one of ``emu.events``), from the emulator's
    outage and recovery events of that region after it, in their order."""
    mine = [e for e in emu.events if e.kind in ("outage", "recovery") and e.detail.startswith(f"{region} ")]
    at = emu.events.index(event)
    before = [e for e in mine if emu.events.index(e) < at]
    after = [e for e in mine if emu.events.index(e) > at]
    total, start = timedelta(0), event.at if not before or before[-1].kind == "recovery" else None
    for e in after:
        if e.kind == "outage" and start is not None:
            total, start = total + (e.at - start), None
        elif e.kind == "recovery" and start is None:
            start = e.at
    if start is not None:
        total += emu.clock.now() - start
    return total


@dataclass
class Deployment:
    """One emulated deployment under one schedule."""

    mode: str
    emulator: Emulator
    world: World
    ctx: RunbookContext
    health: _Health
    routing: Routing
    session: boto3.Session
    canary_session: boto3.Session
    violations: list[Violation] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    last_run: RunState | None = None
    answers: list[tuple[datetime, str | None]] = field(default_factory=list)
    exercised: dict[str, int] = field(default_factory=dict)
    mismatch_since: datetime | None = None
    """When Route 53 first answered a region other than the serving writer (None: it agrees)."""
    mutating_calls: int = 0
    crash_after: int | None = None
    crash_on: frozenset[str] | None = None
    """AWS operations the running run dies right after the first call of (``op_run``'s ``crash_on``)."""
    running: int = 0
    _clients: Clients | None = None
    _canary_clients: dict[str, Any] = field(default_factory=dict)
    _scanned: int = 0
    _switch_points: list[tuple[datetime, float]] = field(default_factory=list)
    _keys: tuple[str, str] | None = None
    _due_run: RunState | None = None
    _async_clients: ActorClients | None = None
    _async_requests: int = 0
    _run_clients: list[ActorClients] = field(default_factory=list)
    _function_clients: list[ActorClients] = field(default_factory=list)
    """The runbook function's (Step Functions executions'): a pool of its own, never the operator's
    CLI's, whose clients' retry quotas a real Lambda does not share."""
    _actors_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _owned: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False)
    on_actor: Callable[[str, str], None] | None = None
    """Called with (event, actor) on ``begin``, ``acted`` (its first mutating call), ``call:<operation>``
    (every mutating call, after AWS applied it) and ``end``: lets a test hold one run right after a
    call until another run has acted or ended (tests/safety/test_review_findings.py)."""
    _live: dict[str, str | None] = field(default_factory=dict)
    """Runs alive now (an in-process run, an execution, an invocation) -> the first mutating call
    each made (None: none yet). Two live runs that both acted: single flight is broken."""
    traffic_due: datetime | None = None
    """When the after-run traffic judgment falls due (Route 53 given the time AWS gives it)."""

    # -- building ----------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        mode: str,
        app: str,
        emulator: Emulator,
        *,
        encrypted: bool = True,
        engine: str = "postgres",
        global_table: bool = True,
    ) -> Deployment:
        """Set the deployment up in ``emulator`` (which must be installed); encrypted as the program
        does. ``engine``: the rds-replica engine: ``postgres``, the only one the program allows, or ``mysql``
        (a database made outside the program: the runbook's refusal of its planned changes, break32 B32-3).
        ``global_table`` False: the runbook's outputs do not name the global table (outputs exported
        before ``globalTableName``), so a planned change waits for the database and the receipts only:
        a test of the database's proof alone, which the table's 6-minute wait would otherwise cover."""
        emulator.provisioning = True
        session, cache = _plain_clients()
        world = build_world(
            mode,
            app=app,
            lag_metrics=False,
            session=session,
            clients_cache=cache,
            encrypted=encrypted,
            engine=engine,
        )
        db_a, db_b = _database_keys(world)
        holder: dict[str, Deployment] = {}
        emulator.register_app(
            AppTier(
                REGION_A,
                world.context["primaryAsgName"],
                tuple(world.context["primaryFunctionNames"]),
                lambda: db_a,
            )
        )
        emulator.register_app(
            AppTier(
                REGION_B,
                world.context["drAsgName"],
                tuple(world.context["drFunctionNames"]),
                # Region B's application follows the instance the outputs name (a re-seed moves it).
                lambda: holder["d"].keys()[1] if "d" in holder else db_b,
            )
        )
        for region in (REGION_A, REGION_B):
            emulator.register_marker_function(
                region,
                ledger_marker_function_name(f"{world.context['appName']}-{world.context['environment']}"),
            )
        _provision_stores(world, emulator, app, global_table=global_table)
        health = _Health(lambda path: holder["d"]._endpoint(path))
        world.context |= {"primaryHealthUrl": health.url("/primary"), "drHealthUrl": health.url("/dr")}
        ctx = RunbookContext.from_dict(world.context)
        session, canary = new_session(), new_session()
        deployment = cls(
            mode=mode,
            emulator=emulator,
            world=world,
            ctx=ctx,
            health=health,
            routing=routing_for(app, f"{app}-a.elb", f"{app}-b.elb"),
            session=session,
            canary_session=canary,
        )
        holder["d"] = deployment
        emulator.attach(session)
        emulator.attach(canary)
        session.events.register("after-call", deployment._after_call)
        emulator.provisioning = False
        clock = emulator.clock
        clock.every(WRITE_EVERY, deployment._client_tick)
        clock.every(STREAM_EVERY, deployment._stream_tick)
        clock.every(60.0, deployment._canary_tick)
        deployment.answers.append((clock.now(), deployment.where()))
        return deployment

    def close(self) -> None:
        self.health.close()

    # -- the world acting on its own ---------------------------------------------------------------

    def where(self) -> str | None:
        """The region Route 53 answers for the web name now."""
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[ACCOUNT][REGION_B]
        # moto's datapoints are an append-only list shared by every deployment of the process:
        # index this deployment's switch datapoints once, as they arrive, instead of rescanning.
        for d in backend.metric_data[self._scanned :]:
            mine = {x.name: x.value for x in d.dimensions} == {"App": self.ctx.app_name}
            if d.namespace == self.ctx.switch_metric.namespace and d.name == SWITCH_NAME and mine:
                ts = d.timestamp if d.timestamp.tzinfo else d.timestamp.replace(tzinfo=UTC)
                self._switch_points.append((ts.astimezone(UTC), float(d.value)))
        self._scanned = len(backend.metric_data)

        def datapoints(alarm: AlarmSpec, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
            return [(t, v) for t, v in self._switch_points if start <= t < end]

        def endpoint_up(check: HealthCheckSpec) -> bool:
            return self._primary_healthy()

        return self.routing.where(
            WEB, self.emulator.clock.now(), datapoints=datapoints, endpoint_up=endpoint_up
        )

    def _primary_healthy(self) -> bool:
        # Route 53 checks region A's load balancer: functions running do not make it answer.
        return self.emulator.reachable(REGION_A) and self.emulator.web_serving(REGION_A)

    def _endpoint(self, path: str) -> tuple[int, dict[str, Any]] | None:
        region = REGION_A if path.startswith("/primary") else REGION_B
        emu = self.emulator
        if not emu.reachable(region):
            return None
        if not emu.web_serving(region):  # an ALB with no healthy target answers 503
            return 503, {"region": region, "error": "no healthy targets"}
        app = emu.apps.get(region)
        key = app.database() if app else None
        if key is not None and not emu.database_answers(key):
            # The program's health check refuses a database RDS describes as serving nothing
            # (lambdas/api/health.py rds_writer: DatabaseUnavailable; break39 B39-2).
            return 503, {"region": region, "error": "database unavailable"}
        return 200, {"region": region, "writer": emu.database_writable(region) is not None}

    def _client_tick(self) -> None:
        now = self.emulator.clock.now()
        region = self.where()
        if not self.answers or self.answers[-1][1] != region:
            self.answers.append((now, region))
        self.client_write(region)
        cached = self._cached_answer(now)
        if cached and cached != region:
            self.client_write(cached)  # a resolver still holding the previous answer
        self._judge_now()

    def _stream_tick(self) -> None:
        """A client write between resolutions, through the answer clients hold."""
        if self.answers:
            self.client_write(self.answers[-1][1])

    def client_write(self, region: str | None) -> bool:
        """One client request through ``region``: every store of ``STORES`` in turn; True if all acknowledged."""
        if not region:
            return False
        return all(self.emulator.write(region, store) is not None for store in STORES)

    def _cached_answer(self, now: datetime) -> str | None:
        previous = [r for t, r in self.answers if t > now - timedelta(seconds=DNS_TTL)]
        older = [r for t, r in self.answers if t <= now - timedelta(seconds=DNS_TTL)]
        if len(self.answers) >= 2 and previous and older:
            return older[-1]
        return None

    def _canary_tick(self) -> None:
        settings = probe.Settings(
            region=REGION_B,
            targets=(probe.Target("web", self.ctx.primary_health_url or ""),),
            app=self.ctx.app_name,
            switch=probe.SwitchMetric(
                self.ctx.switch_metric.namespace, SWITCH_NAME, {"App": self.ctx.app_name}
            ),
            metric_namespace=health_namespace(self.ctx.app_name),
            latch_parameter=self.ctx.latch_parameter_name,
            timeout_seconds=1.0,
            attempts=1,
        )
        settings = replace(settings, runbook_function=f"{self.ctx.app_name}-runbook")
        # One set of clients for the canary's life (a warm Lambda keeps its clients), built on its
        # first tick: creating a client costs more than the tick.
        clients = self._canary_clients
        if not clients:
            clients["cloudwatch"] = self.canary_session.client("cloudwatch", region_name=REGION_B)
            clients["ssm"] = self.canary_session.client("ssm", region_name=REGION_B)
        cw, ssm = clients["cloudwatch"], clients["ssm"]
        # A canary run that fails shows in its Errors metric; the world goes on.
        with contextlib.suppress(probe.PublishError, ClientError, BotoCoreError):
            probe.run(
                settings,
                cloudwatch=cw,
                ssm=ssm,
                now=self.emulator.clock.now(),
                lambda_client=_RunbookLambda(self),
            )
        self._count("canary_tick")

    def _async_step(self, event: dict[str, Any]) -> None:
        """The runbook Lambda running an Event invocation (the canary's): the real step, in region B.

        Its own clients (a separate session, attached to the emulator): a crash point belongs to the
        operator's run, not to this invocation. A failed invocation is dropped after Lambda's retries;
        the canary asks again a minute later.
        """
        if self._async_clients is None:
            session = new_session()
            self.emulator.attach(session)
            self._async_clients = actor_clients(self, session)
        runbook, step, params = parse_event(event)
        self._count(f"async {step}")
        self._async_requests += 1
        request_id = f"async-{self._async_requests}"
        actor = f"invoke-{request_id}"  # the run id the handler gives a one-step run
        self._begin_actor(actor)
        self._async_clients.actor = actor
        try:
            with contextlib.suppress(StepFailed, ClientError, BotoCoreError):
                # The handler's dispatch: a step invoked on its own is a run of one step under the lock.
                result = dispatch(
                    step,
                    self.ctx,
                    self._async_clients,
                    {**params, "runbook": runbook, "wait": False},
                    request_id,
                )
                if result.data.get("deferred"):
                    self._count("async fence deferred (lock held)")
        finally:
            self._async_clients.actor = None
            self._end_actor(actor)

    # -- faults and crashes -------------------------------------------------------------------------

    def _after_call(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if model is None or model.name.startswith(("Describe", "Get", "List")):
            return
        if model.service_model.service_name == "dynamodb":
            # The runbook lock's calls (the runbook's only DynamoDB use) change nothing it acts on: not
            # counted as acting, not crash points (tests/lambdas/failover/test_lock.py kills runs
            # holding the lock).
            return
        self.mutating_calls += 1
        if (self.crash_after is not None and self.mutating_calls >= self.crash_after) or (
            self.crash_on is not None and model.name in self.crash_on
        ):
            self.crash_after, self.crash_on = None, None
            self._count(f"crash after {model.name}")
            raise Crash(f"crashed after {model.name}")

    # -- single flight: who acted, judged from the calls AWS received --------------------------------

    def _begin_actor(self, actor: str) -> None:
        with self._actors_lock:
            self._live[actor] = None
        if self.on_actor is not None:
            self.on_actor("begin", actor)

    def _end_actor(self, actor: str) -> None:
        with self._actors_lock:
            self._live.pop(actor, None)
        if self.on_actor is not None:
            self.on_actor("end", actor)

    def _acted(self, actor: str, model: Any) -> None:
        """A mutating call by ``actor``: single flight is broken if another live run acted too."""
        if (
            model.name.startswith(("Describe", "Get", "List"))
            or model.service_model.service_name == "dynamodb"
        ):
            return  # reads, and the runbook lock's own calls (DynamoDB is the runbook's lock only)
        # A pending fence that joined a failover run acts inside that run: the lock item (AWS state)
        # names the run it joined (lambdas/failover/lock.py, join_fence).
        joined = self._joined_run(actor) if actor.startswith("invoke-") else None
        with self._actors_lock:
            if actor not in self._live:
                return
            # A command's lock run id is its actor's name and a suffix (``latch-activate-<hex>``:
            # automation/latch_cli.py LatchLock), a run's is its actor's name.
            who = next(
                (a for a in self._live if joined is not None and (joined == a or joined.startswith(f"{a}-"))),
                actor,
            )
            if who != actor:
                self._count("single_flight: a pending fence acted inside the failover run it joined")
            others = {a: first for a, first in self._live.items() if a not in (actor, who)}
            first_call = self._live[who] is None
            if first_call:
                self._live[who] = model.name
        if others:
            self._count("judged single_flight (a mutating call while another run is alive)")
        for other, first in others.items():
            if first is not None:
                self._violate(
                    "single_flight",
                    f"two runs acted at once: {who} called {model.name} while {other}, alive, had "
                    f"already acted (first {first})",
                )
        if self.on_actor is not None:
            if first_call:
                self.on_actor("acted", actor)
            self.on_actor(f"call:{model.name}", actor)

    def _joined_run(self, fencer: str) -> str | None:
        """The run a pending fence joined, as the lock item in region B says (None: not joined)."""
        item = (
            self.world.client("dynamodb", REGION_B)
            .get_item(TableName=self.ctx.lock_table_name, Key={"pk": {"S": "runbook"}}, ConsistentRead=True)
            .get("Item")
        )
        found = runbook_lock.fencer_of(item) if item else None
        return found[1] if found and found[0] == fencer else None

    def add_fault(self, fault: Fault) -> None:
        fault.install(self.session)
        self.faults.append(fault)
        # A botocore client copies its session's event hooks when it is built: clients kept from an
        # earlier run would never see this fault. The next run builds its clients afresh.
        with self._actors_lock:
            self._run_clients = [c for c in self._run_clients if c.actor is not None]
            self._function_clients = [c for c in self._function_clients if c.actor is not None]
        self._clients = None

    def clear_faults(self) -> None:
        for f in self.faults:
            f.times = 0
        self.faults.clear()

    # -- operations -----------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.exercised[name] = self.exercised.get(name, 0) + 1

    def op_advance(self, seconds: float) -> None:
        self._count("advance")
        self.emulator.advance(seconds)

    def op_write(self, n: int = 1) -> None:
        """``n`` client requests at this instant: where Route 53 answers and what each store takes do
        not change while the clock stands still (``Emulator.write_burst``)."""
        self._count("write")
        region = self.where()
        if region:
            self.emulator.write_burst(region, STORES, n)

    def op_slow_link(self, delay: float) -> None:
        """Replication of the database and the receipts slows: each write now reaches the other region
        ``delay`` seconds after it was committed (a congested cross-region link; S3 without Replication
        Time Control promises no time at all). Replication outlasts the drain, so a planned change that
        moved the writer without its zero-lag proof loses the tail (break32 B32-5b). The DynamoDB global
        table slows to a tenth of it (40 or 90 s an item: "ReplicationLatency can increase if an AWS Region
        becomes degraded", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_monitoring.html):
        its wait, ten times its recent maximum latency (lossless.settled_evidence), then outlasts the
        6-minute floor and stays within the default budget, and a planned change that moved the writer
        before it loses the table's tail (B32-2). Slowed as much as the database, the wait outlasts any
        budget (tests/safety/test_break32.py)."""
        self._count("slow_link")
        for store in (Store.DATABASE, Store.RECEIPTS):
            self.emulator.slow_replication(store, delay)
        self.emulator.slow_replication(Store.TABLE, delay / 10.0)

    def op_inflight_write(self, seconds: float) -> None:
        """A slow request admitted now that commits ``seconds`` later if its database still takes it."""
        self._count("inflight_write")
        region = self.where()
        if not region or not self.emulator.serving(region):
            return
        admitted = self.emulator.database_writable(region)
        if admitted is None:
            return
        emu = self.emulator

        def commit() -> None:
            if emu.accepts_writes(admitted) and emu.reachable(region):
                emu.data.write(admitted)

        emu.clock.after(seconds, commit)

    def op_outage(self) -> None:
        self._count("outage")
        self.emulator.go_dark(REGION_A)

    def op_recover(self) -> None:
        self._count("recover")
        self.emulator.come_back(REGION_A)

    def op_canary(self) -> None:
        self._canary_tick()

    def op_throttle(self, region: str, times: int) -> None:
        self._count("throttle")
        for service in ("auto-scaling", "lambda", "rds", "ssm", "cloudwatch"):
            self.add_fault(Fault(service=service, region=region, code=throttling_code(service), times=times))

    def op_deny_fence(self) -> None:
        """Region A answers, but refuses the runbook's changes there (a missing permission, an SCP)."""
        self._count("deny_fence")
        for service in ("auto-scaling", "lambda", "rds"):
            self.add_fault(
                Fault(service=service, region=REGION_A, code=access_denied_code(service), times=None)
            )

    def op_clear_faults(self) -> None:
        self._count("clear_faults")
        self.clear_faults()

    def op_tamper_latch(self, how: str) -> None:
        self._count(f"tamper_latch:{how}")
        ssm = self.world.client("ssm", REGION_B)
        name = self.ctx.latch_parameter_name
        if how == "delete":
            with contextlib.suppress(ClientError):
                ssm.delete_parameter(Name=name)
        elif how == "garble":
            ssm.put_parameter(Name=name, Value="{not json", Type="String", Overwrite=True)
        else:
            ssm.put_parameter(
                Name=name, Value=json.dumps({"state": "standby"}), Type="String", Overwrite=True
            )

    def op_autoscale(self) -> None:
        """Target tracking raises region B's desired capacity (only when it is already serving)."""
        self._count("autoscale")
        asg = self.world.client("autoscaling", REGION_B)
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.ctx.dr_asg_name])[
            "AutoScalingGroups"
        ][0]
        if group["DesiredCapacity"] > 0 and group["DesiredCapacity"] < group["MaxSize"]:
            asg.set_desired_capacity(
                AutoScalingGroupName=self.ctx.dr_asg_name, DesiredCapacity=group["DesiredCapacity"] + 1
            )
            self.emulator.record_asg(REGION_B, self.ctx.dr_asg_name)

    def op_reseed(self) -> None:
        """The operator's ``pulumi up -s dr`` after an rds-replica failback, doing what the program does
        (``components/dr_data.py``, ``DrDatabase._rds_replica``; issue 13): when region B's instance is
        standalone and the tier is back to standby (the latch says standby), the update creates the
        next generation, ``<dr db>-g<n+1>`` (``components.naming.generation_identifier``), a
        cross-region read replica of region A's writer (the primary stack's instance, under which the
        runbook's rename-to-replace leaves the writer), encrypted with region B's key, and waits for it
        (the provider waits until it is available). Everything that names region B's database follows
        it in the same update: the runbook outputs (restamped with their generation) and region B's
        application. The released instance stays in AWS. Nothing happens otherwise (aurora-global,
        a replica still replicating, a failover latched, region A dark: its writer's ARN is read there)."""
        from automation.reseed import reseed

        self._count("reseed")
        if self.mode != "rds-replica" or not self.emulator.reachable(REGION_A):
            return
        base = str(self.world.extras.setdefault("drDbInstanceBase", str(self.ctx.dr_db_instance_id)))
        done = reseed(
            self.world.context,
            rds_a=self.world.client("rds", REGION_A),
            rds_b=self.world.client("rds", REGION_B),
            ssm_b=self.world.client("ssm", REGION_B),
            base=base,
            sleep=self.emulator.advance,
        )
        if not done.done or done.context is None or done.instance_arn is None:
            return
        self._count("reseed: region B re-seeded")
        self.world.context = done.context
        self.ctx = RunbookContext.from_dict(done.context)
        self._keys = (self.keys()[0], done.instance_arn)

    def op_run(
        self,
        runbook: str,
        *,
        params: dict[str, Any] | None = None,
        crash_after: int | None = None,
        crash_on: frozenset[str] | None = None,
        executor_name: str = "cli",
        run_id: str | None = None,
        resuming: bool = False,
    ) -> RunState:
        """Run a runbook by an executor: ``cli`` (the in-process executor of the break-glass CLI) or
        ``sfn`` (the generated state machine in moto's interpreter, the real handler behind it).

        The run dies (``Crash``) right after its ``crash_after``-th mutating AWS call, or right after
        its first call of an operation in ``crash_on``, whichever comes first (never, if it makes no
        such call)."""
        if executor_name not in EXECUTORS:
            raise ValueError(f"executor_name must be one of {EXECUTORS}; got {executor_name!r}")
        self._count(f"run:{runbook}:{executor_name}")
        # The previous run's after-run judgment ("after a run that completed, some region serves the
        # writer") is of the state that run left: judged now if it fell due, else held while this run
        # acts and superseded if it changed something (its own end is judged instead). Judged during
        # this run, it would blame the previous run for this run's steps (a failback draining region
        # B before it moves the writer back, seeds 506-508).
        self._judge_after_run()
        died = self.last_run
        # A resume (the CLI's --run-id, or op_resume's new execution) of a run that died after
        # changing AWS inherits the state that run left (B21-3).
        resumes_a_crash = (
            died is not None
            and died.outcome == "crashed"
            and died.mutated
            and died.runbook == runbook
            and (resuming or (run_id is not None and run_id == died.run_id))
        )
        pending = (self.traffic_due, self._due_run)
        self.traffic_due, self._due_run = None, None
        found_out = runbook == "failover" and self._region_a_out()
        merged = {"reason": "checker", **(params or {})}
        before_b = self._dr_desired()
        unprotected = runbook == "failover" and self._b_unprotected()
        self.crash_after = None if crash_after is None else self.mutating_calls + crash_after
        self.crash_on = crash_on
        calls_before = self.mutating_calls
        rid = run_id or executor.new_run_id()
        self.running += 1
        clients: ActorClients | None = None
        try:
            if executor_name == "sfn":
                from tests.safety.sfn_executor import run_state_machine

                outcome, detail = run_state_machine(self, runbook, merged)
                state = RunState(runbook, merged, outcome, detail, executor_name, run_id=rid)
            else:
                clients = self._clients_for(rid)
                self._begin_actor(rid)
                report = executor.run(runbook, self.ctx, clients, params=merged, max_workers=1, run_id=rid)
                state = RunState(
                    runbook, merged, report.outcome, report.reason or "", executor_name, run_id=rid
                )
        except Crash as exc:
            self._count("crash")
            state = RunState(runbook, merged, "crashed", str(exc), executor_name, run_id=rid)
        finally:
            self.running -= 1
            self.crash_after, self.crash_on = None, None
            if clients is not None:
                self._end_actor(rid)  # the process ended (or died): it acts no more
                clients.actor = None
        state.mutated = self.mutating_calls > calls_before
        state.resumes_a_crash = resumes_a_crash
        state.ended = self.emulator.clock.now()
        state.found_region_a_out = (
            found_out
            and state.outcome == "stopped"
            and self._region_a_out()
            and (not self.emulator.reachable(REGION_A) or self._region_a_refuses())
        )
        self.last_run = state
        after_b = self._dr_desired()
        if runbook == "failover":
            self._count("checked single_flight")
        if runbook == "failover" and before_b > self.ctx.dr_capacity.desired:
            self._count("judged single_flight (re-run over raised capacity)")
        if runbook == "failover" and before_b > self.ctx.dr_capacity.desired and after_b < before_b:
            self._violate(
                "single_flight", f"a failover re-run lowered region B's desired {before_b} -> {after_b}"
            )
        if unprotected:
            # Protected again, or refuse: a failover over a region-B database that does not
            # replicate from the writer must change nothing in region B (judged from its capacity).
            self._count("checked protected_again")
            self._count("judged protected_again (a failover over an unprotected region B)")
            if after_b > before_b:
                self._violate(
                    "protected_again",
                    f"a failover started region B ({before_b} -> {after_b}) although its database does not "
                    "replicate from the writer",
                )
        self.judge(after_run=True)
        if not state.mutated and not state.resumes_a_crash and pending[0] is not None:
            # A run that changed nothing left the previous run's state: that run's judgment stands.
            self.traffic_due, self._due_run = pending
        return state

    def _region_a_out(self) -> bool:
        """The writer is region A's database and region A's web tier and functions are fenced (AWS
        state, whether region A answers or not): no region serves the writer."""
        emu = self.emulator
        return (
            self.writer().split(":")[3] == REGION_A
            and not emu.web_serving(REGION_A)
            and not emu.functions_serving(REGION_A)
        )

    def _region_a_refuses(self) -> bool:
        """Region A answers but refuses the calls that fence or un-fence it: a standing AccessDenied
        (a missing permission, an SCP: ``op_deny_fence``) on its Auto Scaling or Lambda. An explicit
        deny overrides any allow and stays until the policy changes
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html):
        retrying does not fence region A, nor give it back. Or throttles them, with refusals still to
        come when the run stopped: a storm that outlasted the run's retries (the client's attempts and
        the executor's) refuses the roll-back as the fence, and the run's reason says to run it again;
        it is judged at the resume with the storm over, as a standing AccessDenied is (break32 B32-9:
        soak seed 21030 at length 120 was blamed only when a journal write made the run "mutated")."""
        return any(
            (f.times is None or f.injected < f.times)
            and not f.unreachable
            and f.region in (REGION_A, None)
            and f.service in ("auto-scaling", "lambda", None)
            and (
                (f.times is None and f.code.startswith("AccessDenied"))
                or f.code in (throttling_code("auto-scaling"), throttling_code("lambda"))
            )
            for f in self.faults
        )

    def _b_unprotected(self) -> bool:
        """Region B's database is neither the writer nor replicating from it (AWS state)."""
        b_key, writer = self.keys()[1], self.writer()
        if writer == b_key:
            return False
        source = self.emulator.data.source_of(b_key)
        return source is None or source.key != writer

    def runbook_clients(self) -> Clients:
        """The runbook's clients (one set per deployment, as one CLI process or warm Lambda keeps)."""
        if self._clients is None:
            self._clients = Clients.for_context(self.ctx, self.session, clock=self.emulator.clock)
        return self._clients

    def _clients_for(self, actor: str, *, function: bool = False) -> ActorClients:
        """Clients for one in-process run, or (``function``) one execution of the runbook function: kept
        for the next of the same (a client costs more than a call), as one process or one warm Lambda
        keeps its own; the two never share a client (nor its retry quota)."""
        with self._actors_lock:
            pool = self._function_clients if function else self._run_clients
            free = [c for c in pool if c.actor is None]
            made = free[0] if free else actor_clients(self, self.session)
            if not free:
                pool.append(made)
            made.actor = actor
        return made

    def op_overlap(
        self,
        first: tuple[str, dict[str, Any], str],
        second: tuple[str, dict[str, Any], str],
        at: frozenset[str],
    ) -> None:
        """Two runs at once: ``second`` is started right after ``first`` made its first call of an
        operation in ``at`` (two operators, or the alarm's rule and an operator); each is (runbook,
        params, executor). The first is held there until the second has made a mutating call or
        ended, whatever the threads' real-time order, so the overlap is certain, not a race (as
        ``test_review_findings._two_runs_at_once``). A first run that never makes such a call is
        followed by the second. Not both by Step Functions: two interpreters at once in one moto is
        beyond the harness (``tests/safety/sfn_executor.py`` takes turns within one execution)."""
        if first[2] == "sfn" and second[2] == "sfn":
            raise ValueError("op_overlap: at most one of the two runs by the sfn executor")
        self._count("overlap")
        outer = self.on_actor
        state: dict[str, Any] = {"first": None, "second": None, "error": None}
        released = threading.Event()
        threads: list[threading.Thread] = []

        def start_second() -> None:
            runbook, params, by = second
            try:
                self.op_run(runbook, params=params, executor_name=by)
            except Exception as exc:  # re-raised by the first run's thread: never skipped silently
                state["error"] = exc
                released.set()

        def on_actor(event: str, actor: str) -> None:
            if outer is not None:
                outer(event, actor)
            if actor.startswith("invoke-"):
                return  # the canary's one-step runs are neither
            if event == "begin" and state["first"] is None:
                state["first"] = actor
            elif event == "begin" and actor != state["first"] and state["second"] is None:
                state["second"] = actor
            elif actor == state["second"] and event in ("acted", "end"):
                released.set()
            elif actor == state["first"] and event.removeprefix("call:") in at and not threads:
                t = threading.Thread(target=start_second, daemon=True)
                threads.append(t)
                t.start()
                if not released.wait(120):
                    raise RuntimeError("op_overlap: the second run neither acted nor ended (harness)")

        self.on_actor = on_actor
        try:
            runbook, params, by = first
            self.op_run(runbook, params=params, executor_name=by)
        finally:
            self.on_actor = outer
        for t in threads:
            t.join(timeout=300)
            if t.is_alive():
                raise RuntimeError("op_overlap: the second run did not end (harness)")
        if state["error"] is not None:
            # A harness error in the second run's thread (soak: a dict changed size during iteration)
            # used to end only that thread: the schedule went on with one run unjudged.
            raise RuntimeError(f"op_overlap: the second run raised (harness): {state['error']!r}") from state[
                "error"
            ]
        if not threads:
            start_second()

    def op_resume(self) -> None:
        """The last run again, whatever it ended with (9B-4: no precondition beyond a run to resume).

        An operator may re-run any run under its id, one that completed too (the CLI's ``--run-id``
        accepts any id a run printed); an in-process run resumed under its id re-enters the lock it
        may have died holding. A state machine run is started again as a new execution with the same
        input (a redrive only continues a failed, aborted or timed-out one; a new execution covers
        both). What it must do when the run had completed: change nothing it need not (never lower a
        capacity autoscaling raised, judged in ``op_run``) and end done.
        """
        self._count("resume")
        last = self.last_run
        if last is None:
            return  # no run has been started: there is no run id to resume
        if last.outcome == "done":
            self._count(f"resume of a completed {last.runbook}")
        same = last.run_id if last.executor_name == "cli" else None
        self.op_run(
            last.runbook, params=last.params, executor_name=last.executor_name, run_id=same, resuming=True
        )

    def _dr_desired(self) -> int:
        """Region B's web tier desired capacity now, as DescribeAutoScalingGroups would say (0: no
        such group). Read from moto's Auto Scaling model in process: the judge asks it around every
        run, and the API's answer (every instance of the group, serialized) cost ~14 ms a time."""
        from moto.autoscaling.models import autoscaling_backends

        group = autoscaling_backends[ACCOUNT][REGION_B].autoscaling_groups.get(
            self.world.context["drAsgName"]
        )
        return int(group.desired_capacity or 0) if group is not None else 0

    # -- judging ---------------------------------------------------------------------------------------

    def _violate(self, invariant: str, detail: str) -> None:
        if any(v.invariant == invariant and v.detail == detail for v in self.violations):
            return
        self.violations.append(Violation(invariant, self.emulator.clock.now(), detail))

    def _judge_now(self) -> None:
        """Invariants that hold at every instant (checked on every client tick too)."""
        emu = self.emulator
        self._judge_after_run()
        taking = [r for r in (REGION_A, REGION_B) if emu.serving(r) and emu.database_writable(r)]
        self._count("checked one_writer")
        self._count("checked traffic_follows_writer")
        if emu.reachable(REGION_A) and len(emu.writers()) > 1:
            self._count("judged one_writer (two writable databases)")
        if len(taking) > 1 and self._just_answered_again(REGION_A):
            # A region that was unreachable when it should have been fenced is fenced once it
            # answers: the canary's next minute plus the runbook's fence (docs/safety.md).
            self._count("one_writer: region A fenced on its return (within FENCE_GRACE)")
        elif len(taking) > 1:
            self._violate(
                "one_writer", f"both regions serve and hold a writable database ({', '.join(taking)})"
            )
        writer = self.writer()
        writer_region = writer.split(":")[3]
        taking = [writer_region] if emu.serving(writer_region) and emu.accepts_writes(writer) else []
        # Traffic follows the writer, whatever step a run stopped at: once Route 53 has had the
        # time AWS gives it (the switch alarm's period, the checks' failure thresholds: 3 minutes),
        # it answers with the region that serves the writer, when one does.
        now = emu.clock.now()
        answer = self.where()
        if len(taking) == 1 and answer != taking[0]:
            self.mismatch_since = self.mismatch_since or now
            if now - self.mismatch_since >= timedelta(seconds=TRAFFIC_GRACE):
                self._violate(
                    "traffic_follows_writer",
                    f"Route 53 answers {answer} while {taking[0]} serves the writer {writer.split(':')[-1]} "
                    f"(since {self.mismatch_since:%H:%M:%S})",
                )
        else:
            self.mismatch_since = None

    def _just_answered_again(self, region: str) -> bool:
        """Whether ``region`` came back from an outage less than ``FENCE_GRACE`` seconds ago."""
        back = [e.at for e in self.emulator.events if e.kind == "recovery" and e.detail.startswith(region)]
        return bool(back) and self.emulator.clock.now() - back[-1] < timedelta(seconds=FENCE_GRACE)

    def owns(self, key: str) -> bool:
        """Whether database copy ``key`` is one of this deployment's (its names start with the app's)."""
        # Asked of every acknowledged write at every judgment: remembered per (app, key).
        known = (self.ctx.app_name, key)
        owned = self._owned.get(known)
        if owned is None:
            owned = self._owned[known] = key.split(":")[-1].startswith(f"{self.ctx.app_name}-")
        return owned

    def writer(self) -> str:
        """The database copy AWS last made the writer (region A's until a promotion)."""
        return self.emulator.authority(self.owns, self.keys()[0])

    def judge(self, *, after_run: bool = False) -> list[Violation]:
        """Check every invariant that can be judged now; returns all violations so far."""
        emu = self.emulator
        self._judge_now()
        # no_loss: every acknowledged database write is held by the writer AWS last made, except
        # the tail an unplanned promotion cut off (the source's region was dark).
        key = self.writer()
        self._count("checked no_loss")
        forgiven = {w for ws in emu.lost_at_promotion.values() for w in ws}
        forgiven |= {
            w
            for e in emu.events
            if e.kind == "rebuild" and e.data.get("unplanned")
            for w in e.data["discarded"]
        }
        mine = [w for w in emu.data.acknowledged(Store.DATABASE) if self.owns(w.copy)]
        missing = [w for w in emu.data.missing(key, mine) if w.id not in forgiven]
        if key != self.keys()[0]:
            self._count("judged no_loss (after a writer change)")
        if missing:
            first = missing[0]
            self._violate(
                "no_loss",
                f"{len(missing)} acknowledged write(s) missing from the writer {key.split(':')[-1]} "
                f"(first: #{first.id} taken in {first.region} by {first.copy.split(':')[-1]} at {first.at:%H:%M:%S})",
            )
        self._judge_multi_writer_stores()
        self._judge_discarded()
        if after_run:
            self._judge_traffic()
        return self.violations

    def _judge_multi_writer_stores(self) -> None:
        """no_loss for the DynamoDB table and the S3 receipts: when the writer moved on a planned
        change (its source's region answered), the target region's copy of each store held every
        write acknowledged in the source region's copy. Both replicate both ways and keep taking
        writes, so what was late is not gone: it is what the target region's application could not
        see when it became the writer (a retried payment written twice, a receipt missing), which
        is why a planned change waits for their replication to drain too (issue 10, item 2)."""
        emu = self.emulator
        for move in emu.writer_moves:
            if not move.source_answered:
                continue  # unplanned: the source's region was dark, its unreplicated tail the price
            for store in (Store.TABLE, Store.RECEIPTS):
                source, target = store_key(store, move.source_region), store_key(store, move.target_region)
                link = emu.data.link_into(target)
                if link is None or link.source.key != source:
                    continue
                self._count(f"checked no_loss ({store.value} at a planned writer move)")
                arrived = {wid: at for at, wid in link.arrived}
                late = [
                    w
                    for w in emu.data.acknowledged(store)
                    if w.copy == source
                    and w.at < move.at
                    and (w.id not in arrived or arrived[w.id] > move.at)
                ]
                if late:
                    self._violate(
                        "no_loss",
                        f"{len(late)} acknowledged {store.value} write(s) taken in {move.source_region} were not "
                        f"in {move.target_region}'s copy when the writer moved there at {move.at:%H:%M:%S} "
                        f"(first: #{late[0].id} at {late[0].at:%H:%M:%S})",
                    )

    def _judge_discarded(self) -> None:
        """Writes an unplanned Aurora failover discarded must survive beyond the automated snapshot.

        Aurora only *attempts* the ``rds:unplanned-global-failover-*`` snapshot, and an automated
        snapshot expires with the backup retention: the writes it holds are kept only by a manual
        snapshot that holds them, judged from its content (what the emulator says each cluster
        snapshot holds: its cluster's content when taken, a copy its source's), never from its name
        (9B-7: a snapshot taken after the rebuild bears any name and holds none of them).
        """
        emu = self.emulator
        for event in emu.events:
            if event.kind != "rebuild" or not event.data.get("discarded"):
                continue
            if not self.owns(event.detail.split(" ")[0]):
                continue  # another deployment's failover (deployments may share an emulator)
            region = event.detail.split(":")[3] if event.detail.count(":") >= 3 else REGION_A
            if _answered_since(emu, region, event) < timedelta(seconds=FENCE_GRACE):
                # The copy is made in region A (CopyDBClusterSnapshot), by the canary's pending fence or
                # a run, once region A answers: judged when region A has answered for the canary's
                # minute and the fence's calls since the rebuild, not on time alone (soak seed 1146:
                # region A back and dark again at the same instant, then judged 3 minutes later).
                continue
            source = str(event.data["snapshot"])
            try:
                manual = self.world.client("rds", region).describe_db_cluster_snapshots(
                    SnapshotType="manual"
                )["DBClusterSnapshots"]
            except (ClientError, BotoCoreError):
                continue
            discarded = set(event.data["discarded"])
            self._count("judged no_loss (writes an unplanned failover discarded)")
            # This deployment's snapshots only (deployments may share an emulator and its write ids).
            manual = [s for s in manual if self.owns(str(s.get("DBClusterIdentifier", "")))]
            if not any(
                discarded
                <= (emu.snapshot_holds(region, str(s["DBClusterSnapshotIdentifier"])) or frozenset())
                for s in manual
            ):
                named = [str(s["DBClusterSnapshotIdentifier"]) for s in manual]
                self._violate(
                    "no_loss",
                    f"{len(discarded)} write(s) discarded by an unplanned failover survive only in the automated "
                    f"snapshot {source}, which expires with the backup retention: no manual snapshot holds them "
                    f"(manual: {', '.join(named) or 'none'}; the runbook's copy would be {kept_snapshot_id(source)})",
                )

    def _judge_traffic(self) -> None:
        """Schedule the after-run judgments for when Route 53 has had the time AWS gives it.

        Judging never moves time (that would be a hidden precondition on what may follow a run):
        the judgment falls due ``TRAFFIC_GRACE`` later and is made by the next judge at or after it.
        """
        run = self.last_run
        if run is None or run.outcome == "crashed":
            return
        self.traffic_due = self.emulator.clock.now() + timedelta(seconds=TRAFFIC_GRACE)
        self._due_run = run

    def _judge_after_run(self) -> None:
        emu = self.emulator
        run = self._due_run
        if self.traffic_due is None or run is None or emu.clock.now() < self.traffic_due:
            return
        if self.running > 0:
            # A run is still alive (two at once, ``op_overlap``: the second, refused at the lock,
            # ended while the first acts). The state now is the live run's, mid-way; its own end is
            # judged when it ends and supersedes this judgment (seeds 410, 629, 802, 914: a failback
            # refused at the lock was blamed for the outage of the failover running beside it).
            return
        if self.writer() in emu.promoting:
            # AWS is still making the writer it last chose (a promotion under way, which a run or the dr
            # stack's dr:active update asked for: RDS shows it `modifying` and it takes no writes until it
            # ends, https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html): no
            # region can serve it yet, and the region A that could serve is fenced so that it does not
            # (break34 B34-1: the declared failover fences it). Judged once the promotion has ended.
            self.traffic_due = emu.clock.now() + timedelta(seconds=30)
            return
        self.traffic_due, self._due_run = None, None
        if run.outcome != "done" and not run.mutated and not run.resumes_a_crash:
            # A run whose process ended without changing anything (a refusal, a lock held by
            # another run) left the state it found: it is not blamed for an outage it found. Whether
            # it changed anything is judged from the calls AWS received, not from its report. A
            # resume of a run that died after changing AWS found that run's state: it is judged
            # (B21-3: a crashed failback resumed into a stop that made no call was never judged).
            return
        # Judged from AWS state whatever the run's report says (9B-3): a run that ended after
        # changing AWS, ``done`` or ``stopped``, must leave a safe serving state once Route 53 has
        # had its time: some region serves the writer and Route 53 answers it. A stopped run
        # resumed before this falls due is judged by the resumed run's end instead (``op_run``
        # supersedes the pending judgment with the next run that acts; ``settle`` resumes it).
        serving_writers = [r for r in (REGION_A, REGION_B) if emu.serving(r) and emu.database_writable(r)]
        answer = self.where()
        said = "completed" if run.outcome == "done" else "stopped"
        writer_region = self.writer().split(":")[3]
        self._count(f"judged traffic_follows_writer (after a {said} run)")
        if run.outcome != "done":
            self._count("checked converges")
        if serving_writers and answer not in serving_writers:
            self._violate(
                "traffic_follows_writer",
                f"after a {said} {run.runbook} run, Route 53 answers {answer} but {serving_writers[0]} "
                "serves the writer",
            )
        if serving_writers:
            return
        if emu.reachable(writer_region) and run.found_region_a_out:
            # A failover that found this outage (region A fenced, holding the writer: a failover that
            # died before the writer moved left it) and stopped on region A's refusal, or over a dark
            # region A, changed nothing that decides it: promoting without the fence region A refuses
            # is what docs/safety.md forbids, and the roll-back to region A serving needs the calls
            # region A refuses. Its convergence is judged when it is resumed with region A answering
            # and the refusal lifted (``settle``; soak seeds 153, 204, 215, 386, 408, 432, 496, 618,
            # 622, 640, 689).
            self._count("judged converges (an outage found, region A refusing or dark: judged at the resume)")
            return
        if emu.reachable(writer_region):
            # The writer AWS last made is in a region that answers, and nothing serves it: what
            # keeps it from serving is the runbook's (a fence, a drain), not an outage. The same
            # state gets the same verdict; its name says which promise: a completed run's (traffic
            # follows the writer) or a stopped one's (a stopped run leaves a safe serving state).
            invariant = "traffic_follows_writer" if run.outcome == "done" else "converges"
            self._violate(
                invariant,
                f"after a {said} {run.runbook} run, no region serves a writer although the writer's region "
                f"{writer_region} answers: {run.detail[:160]}",
            )
        elif run.outcome == "done" and self._dark_since(writer_region, run):
            # The writer's region went dark after the run completed: the outage, not the run, keeps
            # the writer from serving until a failover moves it (soak seed 9: a failback with
            # nothing to do completed at the instant region A went dark). Before region B is
            # re-seeded (an rds-replica failback leaves region B's instance standalone until the
            # operator's ``pulumi up``, op_reseed) no region can serve a writer, and a failover must
            # refuse rather than promote the frozen copy (protected again, or refuse: judged in
            # op_run when one is started).
            if self._b_unprotected():
                self._count(
                    "judged protected_again (region A dark after a completed run, before the re-seed)"
                )
            else:
                self._count("judged traffic_follows_writer (region A dark after a completed run)")
        elif run.outcome == "done" and emu.reachable(REGION_B):
            # The writer is in a dark region. A stopped run may have found that outage and been
            # unable to end it on its own decision (a planned failover refuses a switchover while
            # region A is dark: seed 11): it is resumed or another run is started. A run that says it
            # completed promises more: some region serves the writer (docs/safety.md).
            self._violate(
                "traffic_follows_writer",
                f"after a completed {run.runbook} run, no region serves a writer (the writer's region "
                f"{writer_region} is dark)",
            )
        # Protected again, or refuse: after a failback region B's database may be left standalone
        # (re-seeding it is the IaC lifecycle's); what must not happen is a failover over it, which
        # op_run judges when one is started.

    def _dark_since(self, region: str, run: RunState) -> bool:
        """Whether ``region`` stopped answering after ``run`` ended and has not answered since."""
        if run.ended is None or self.emulator.reachable(region):
            return False
        went = [e.at for e in self.emulator.events if e.kind == "outage" and e.detail.startswith(region)]
        return bool(went) and went[-1] >= run.ended

    def keys(self) -> tuple[str, str]:
        """Region A's and region B's database copies as deployed (looked up once)."""
        if self._keys is None:
            self._keys = _database_keys(self.world)
        return self._keys

    def _refused_over_a_served_writer(self) -> bool:
        """The last run, a failover, stopped on its own decision without a mutating call, and the
        region that holds the writer serves it with Route 53 answering it (judged from AWS state).

        Failovers only: a failover moves traffic off a region that does not serve, so over a served
        writer its refusal is its correct end. A failback is asked to bring the writer back and must
        end done (a failback that can never proceed, as without region A's key, does not converge).
        """
        run = self.last_run
        if run is None or run.runbook != "failover" or run.outcome != "stopped" or run.mutated:
            return False
        writer = self.writer()
        region = writer.split(":")[3]
        emu = self.emulator
        return emu.serving(region) and emu.accepts_writes(writer) and self.where() == region

    def _settle_seconds(self) -> float:
        """How long settle lets the world run before resuming: ``LOCK_TTL_SECONDS`` and a minute while
        the runbook lock's item is there (a run that died holding it, or a fence that joined one:
        a resume under another run id waits for its lease, which a joined fence may extend during
        the wait, ``lock.join_fence``), else ``SETTLE_SECONDS``.

        Only the item's presence decides, not its expiry: an in-process run's lease is refreshed by a
        heartbeat thread that wakes on real seconds, so its expiry depends on the machine's load and
        a wait computed from it would not replay (break speed F1); and a lease read once at the start
        can be extended by a pending fence joining it (F2). The item is read as the runbook reads it
        (``lock.read``), on the harness's own clients."""
        item = self.world.client("dynamodb", REGION_B).get_item(
            TableName=self.ctx.lock_table_name,
            Key={runbook_lock.KEY_ATTRIBUTE: {"S": runbook_lock.LOCK_KEY}},
            ConsistentRead=True,
        )
        return max(SETTLE_SECONDS, LOCK_TTL_SECONDS + 60.0) if "Item" in item else SETTLE_SECONDS

    def settle(self) -> None:
        """End of schedule: region A back, faults gone, the last run resumed until it ends."""
        self._count("settle")
        self.clear_faults()
        if not self.emulator.reachable(REGION_A):
            self.emulator.come_back(REGION_A)
        due, last = self._due_run, self.last_run
        unfinished = due is not None and last is not None and "done" not in (due.outcome, last.outcome)
        if unfinished and due is not None and last is not None and due.runbook == last.runbook:
            # The schedule ends with the operator resuming the unfinished runbook (the stopped run
            # itself, or a later run of it that changed nothing, seed 37): its state is judged by
            # the resumed run's end below (converges), not while settle waits out dead leases.
            self.traffic_due, self._due_run = None, None
        self.emulator.advance(self._settle_seconds())
        if self.last_run is not None and self.last_run.outcome != "done":
            self._count("judged converges (a run left unfinished)")
        for _ in range(3):
            if self.last_run is None or self.last_run.outcome == "done":
                break
            self.op_resume()
            self.emulator.advance(300)
        self._count("checked converges")
        if self._refused_over_a_served_writer():
            # The run's own decision, changing nothing, over a safe serving state (a failover without
            # --force while region A answers healthy): the refusal is the correct end (seed 500).
            self._count("judged converges (a refusal over a served writer)")
        elif self.last_run is not None and self.last_run.outcome != "done":
            self._violate(
                "converges",
                f"{self.last_run.runbook} did not end after 3 resumes: {self.last_run.detail[:200]}",
            )
        self.judge(after_run=True)
        self.emulator.advance(TRAFFIC_GRACE)  # the end of the schedule: let the last judgment fall due
        self.judge()


_PLAIN: tuple[boto3.Session, dict[tuple[str, str, str | None], Any]] | None = None


def _plain_clients() -> tuple[boto3.Session, dict[tuple[str, str, str | None], Any]]:
    """The session and plain clients every deployment of the process sets up and inspects with.

    Plain clients carry no hook (no fault, no dark region, no crash: those are on each
    deployment's own sessions), and talk to the one moto of the process whichever deployment uses
    them, so one set serves them all (a set per deployment cost most of a second a schedule).
    """
    global _PLAIN
    if _PLAIN is None:
        _PLAIN = (new_session(), {})
    return _PLAIN


def _provision_stores(world: World, emulator: Emulator, app: str, *, global_table: bool = True) -> None:
    """The multi-writer stores as the program deploys them (components/storage.py), in moto and in
    the emulator's data plane: the payments global table with a replica in each region, and the
    receipts buckets ``build_world`` made (each replicating into the other, S3 Replication metrics
    on, as the program deploys them)."""
    table = f"{app}-payments"
    for region in (REGION_A, REGION_B):
        world.client("dynamodb", region).create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    emulator.register_global_table(table, (REGION_A, REGION_B))
    ctx = world.context
    if global_table:  # the dr stack's runbook output names it (components/pilot_light_region.py)
        ctx["globalTableName"] = table
    emulator.register_bucket_replication(ctx["primaryBucketName"], ctx["drBucketName"])


def _database_keys(world: World) -> tuple[str, str]:
    ctx = world.context
    if world.mode == "rds-replica":
        a = world.client("rds", REGION_A).describe_db_instances(
            DBInstanceIdentifier=ctx["primaryDbInstanceId"]
        )
        b = world.client("rds", REGION_B).describe_db_instances(DBInstanceIdentifier=ctx["drDbInstanceId"])
        return a["DBInstances"][0]["DBInstanceArn"], b["DBInstances"][0]["DBInstanceArn"]
    a_arn = (
        ctx["drClusterArn"].replace(REGION_B, REGION_A).replace(ctx["drClusterId"], ctx["primaryClusterId"])
    )
    return a_arn, ctx["drClusterArn"]
