"""The local drill's region-B canary: the real ``lambdas.health_check.handler.handler`` on its schedule.

The dr stack deploys the canary (``components/orchestrator.py``) as a function invoked by an
EventBridge rule, ``rate(1 minute)``; the drill reads that schedule from the synthesized rule and
runs the canary once per virtual period for the whole drill, during the runbooks and between them,
as AWS would. Each run is the real handler with the environment the stack declares (``TARGETS``,
``APP``, ``SWITCH_*``, ``LATCH_PARAMETER``, ``RUNBOOK_FUNCTION``), Lambda's reserved variables and
``AWS_ENDPOINT_URL`` (the SDKs' documented endpoint override,
https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). ``TARGETS`` names region
A's load balancer and API health URLs, which AWS assigns at deploy; the drill's region A has one
health endpoint (the API's own health code, :func:`automation.drill_world.health_answer`), so both
targets probe it.

**Time.** The canary stamps its datapoints with the function's clock (``datetime.now``); in the drill
that clock is the emulator's virtual one, given to the canary module for the length of an invocation,
as :func:`automation.emulator.clock.waiter_clock` gives it to botocore's waiters.

**The runbook Lambda.** When region A answers under an active latch, or the run journal says its
fence is pending, the canary invokes the runbook function (``RUNBOOK_FUNCTION``) with
``InvocationType=Event``. The drill deploys that function in region B and the emulator queues each
Event invocation (Lambda answers 202 and starts it shortly after:
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html); it then runs as the runbook
handler runs one event, ``lambdas.failover.handler.dispatch`` with ``wait`` off, on clients of its
own that read the virtual clock (the lock's leases are virtual instants, like the runs'). The
runbook's one-step run completes a fence a failover left pending (``fence_primary`` with
``onlyIfPending``), and for Aurora keeps the ``rds:unplanned-global-failover-*`` snapshot as a
manual copy (``lambdas/failover/fencing.py``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from automation import synth
from automation.drill_function import _INVOKE, _RESERVED_PREFIXES

if TYPE_CHECKING:
    import boto3

    from automation.drill_world import Deployment, Synthesized

CANARY_HANDLER = "lambdas.health_check.handler.handler"
"""The handler the dr stack configures for the canary (components/orchestrator.py)."""
RUNBOOK_HANDLER = "lambdas.failover.handler.handler"
"""The handler of the runbook function the canary invokes."""

ASYNC_START = 2.0
"""Virtual seconds between an Event invocation and its start: an assumption (Lambda queues the event
and starts it "shortly"; https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html), the one
the safety model makes (tests/safety/model.py)."""

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def schedule_seconds(expression: str) -> float:
    """The period of an EventBridge ``rate(...)`` schedule expression, in seconds.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html#eb-rate-expressions
    """
    found = _RATE.match(expression.strip())
    if found is None:
        raise ValueError(f"not an EventBridge rate expression the drill runs: {expression!r}")
    return float(int(found.group(1)) * _UNIT[found.group(2)])


def _canary_resource(names: Synthesized) -> synth.Resource:
    functions = [f for f in names.dr.by_type("aws:lambda/function:Function") if f.inputs.get("handler") == CANARY_HANDLER]  # fmt: skip
    if len(functions) != 1:
        raise ValueError(f"dr stack: {len(functions)} functions with handler {CANARY_HANDLER}")
    return functions[0]


def canary_schedule(names: Synthesized) -> str:
    """The schedule expression of the EventBridge rule whose target is the canary, as the dr stack declares it."""
    canary = _canary_resource(names)
    function_name = str(canary.inputs.get("name") or canary.name)
    targets = [t for t in names.dr.by_type("aws:cloudwatch/eventTarget:EventTarget") if str(t.inputs.get("arn", "")).endswith(f":function:{function_name}")]  # fmt: skip
    rules = names.dr.by_type("aws:cloudwatch/eventRule:EventRule")
    for target in targets:
        rule_ref = str(target.inputs.get("rule", ""))
        for rule in rules:
            if rule_ref.startswith(f"{synth.COMPUTED}{rule.name}.") and rule.inputs.get("scheduleExpression"):
                return str(rule.inputs["scheduleExpression"])
    raise ValueError(f"dr stack: no EventBridge schedule targets the canary {canary.name}")


def canary_environment(names: Synthesized, dep: Deployment) -> dict[str, str]:
    """The canary's environment as the dr stack declares it, with what AWS assigns at deploy from the world."""
    variables = (_canary_resource(names).inputs.get("environment") or {}).get("variables") or {}
    out: dict[str, str] = {}
    for name, raw in variables.items():
        value = str(raw)
        if name == "TARGETS":
            # Each target keeps its name (the Target dimension); its URL is region A's health endpoint,
            # reached by that URL's own host (the emulated world has no load balancer to connect to).
            targets = json.loads(value)
            value = json.dumps(
                [
                    {**{k: v for k, v in t.items() if k != "address"}, "url": dep.context["primaryHealthUrl"]}
                    for t in targets
                ]
            )
        elif synth.COMPUTED in value:
            raise ValueError(f"{name}: computed value {synth.show(value)} has no emulated counterpart")
        out[str(name)] = value
    return out


def _virtual_datetime(clock: Any) -> type[datetime]:
    class VirtualDatetime(datetime):
        """``datetime`` whose ``now`` reads the emulator's virtual clock."""

        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            now = clock.now()
            return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)

    return VirtualDatetime


@dataclass(frozen=True)
class CanaryRun:
    """One scheduled run of the canary: when, and what its handler returned (or raised)."""

    at: datetime
    result: dict[str, Any] | None
    error: str | None = None

    @property
    def switch(self) -> int | None:
        return None if self.result is None else self.result.get("switch")

    @property
    def healthy(self) -> bool:
        return bool(self.result and self.result.get("healthy"))


@dataclass(frozen=True)
class RunbookInvocation:
    """One Event invocation of the runbook function (the canary's pending fence), as it ran."""

    at: datetime
    step: str
    status: str
    detail: str


@dataclass
class Canary:
    """Region B's canary function (one warm execution environment) and the runbook function it invokes."""

    dep: Deployment
    name: str
    environment: dict[str, str]
    period: float
    schedule: str
    runbook_session: boto3.Session
    runs: list[CanaryRun] = field(default_factory=list)
    invocations: list[RunbookInvocation] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    """The canary's log lines (what CloudWatch Logs would hold for the function)."""
    _module_state: tuple[Any, Any] = (None, None)

    @contextmanager
    def _environment(self) -> Iterator[None]:
        from lambdas.health_check import handler as module
        from lambdas.health_check import probe

        saved_env = dict(os.environ)
        saved_state = (module._CLIENTS, module._SESSION)
        saved_datetime, saved_propagate = probe.datetime, probe.LOGGER.propagate
        captured = _ListHandler(self.logs)
        os.environ.clear()
        os.environ.update({k: v for k, v in saved_env.items() if not k.startswith(_RESERVED_PREFIXES)})
        os.environ.update(self.environment)
        module._CLIENTS, module._SESSION = self._module_state[0] or {}, self._module_state[1]
        probe.datetime = _virtual_datetime(self.dep.emulator.clock)  # type: ignore[misc]
        probe.LOGGER.addHandler(captured)
        probe.LOGGER.propagate = False
        try:
            yield
        finally:
            probe.LOGGER.removeHandler(captured)
            probe.LOGGER.propagate = saved_propagate
            probe.datetime = saved_datetime  # type: ignore[misc]
            self._module_state = (module._CLIENTS, module._SESSION)
            module._CLIENTS, module._SESSION = saved_state
            os.environ.clear()
            os.environ.update(saved_env)

    def tick(self) -> None:
        """One scheduled run: the real handler on EventBridge's scheduled event; then Lambda starts
        the Event invocations it queued."""
        from lambdas.health_check.handler import handler

        region = self.dep.region_b
        now = self.dep.emulator.clock.now()
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "region": region,
            "time": f"{now:%Y-%m-%dT%H:%M:%SZ}",
            "detail": {},
        }
        context = SimpleNamespace(
            aws_request_id=str(uuid.uuid4()),
            function_name=self.name,
            get_remaining_time_in_millis=lambda: 29_000,
        )
        try:
            with _INVOKE, self._environment():
                result = handler(event, context)
            self.runs.append(CanaryRun(now, result))
        except Exception as exc:  # a failed run shows in the function's Errors metric; the world goes on
            self.runs.append(CanaryRun(now, getattr(exc, "result", None), f"{type(exc).__name__}: {exc}"))
        self.dep.emulator.start_queued_invocations(ASYNC_START)

    def run_event(self, event: dict[str, Any]) -> None:
        """The runbook function running one Event invocation: the handler's parse and dispatch."""
        from botocore.exceptions import BotoCoreError, ClientError

        from lambdas.failover.clients import Clients
        from lambdas.failover.context import RunbookContext
        from lambdas.failover.exceptions import EventError, StepFailed
        from lambdas.failover.handler import dispatch, parse_event

        dep = self.dep
        now = dep.emulator.clock.now()
        try:
            runbook, step, params = parse_event(event)
        except EventError as exc:
            self.invocations.append(RunbookInvocation(now, "?", "error", str(exc)))
            return
        ctx = RunbookContext.from_dict(dep.context)
        clients = Clients.for_context(ctx, self.runbook_session, endpoint_url=dep.endpoint, clock=dep.emulator.clock)  # fmt: skip
        request_id = uuid.uuid4().hex[:12]
        try:
            result = dispatch(step, ctx, clients, {**params, "runbook": runbook, "wait": False}, request_id)
            self.invocations.append(RunbookInvocation(now, step, result.status, result.detail))
        except (StepFailed, ClientError, BotoCoreError) as exc:
            # Lambda retries a failed Event invocation twice; the canary asks again next minute.
            self.invocations.append(RunbookInvocation(now, step, "failed", str(exc)))


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        with suppress(Exception):
            self.lines.append(record.getMessage())


def deploy(dep: Deployment, names: Synthesized) -> Canary:
    """Deploy the canary and the runbook function it invokes in region B; start the canary's schedule."""
    import boto3

    from automation.drill_world import _zip

    env = canary_environment(names, dep)
    region = dep.region_b
    canary = _canary_resource(names)
    name = str(canary.inputs.get("name") or canary.name)
    runbook_name = env["RUNBOOK_FUNCTION"]
    role = dep.client("iam", dep.region_a).get_role(RoleName=f"{dep.context['appName']}-drill-fn")["Role"][
        "Arn"
    ]
    for fn_name, handler in ((name, CANARY_HANDLER), (runbook_name, RUNBOOK_HANDLER)):
        dep.client("lambda", region).create_function(
            FunctionName=fn_name, Runtime="python3.12", Role=role, Handler=handler, Code={"ZipFile": _zip()}
        )  # fmt: skip
    expression = canary_schedule(names)
    session = boto3.Session(aws_access_key_id="drill-runbook", aws_secret_access_key="drill")
    dep.emulator.attach(session)  # the runbook's calls to a dark region fail to connect
    result = Canary(
        dep,
        name,
        {
            **env,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_ACCESS_KEY_ID": "drill-canary",
            "AWS_SECRET_ACCESS_KEY": "drill",
            "AWS_SESSION_TOKEN": "drill",
            "AWS_ENDPOINT_URL": dep.endpoint,
        },
        schedule_seconds(expression),
        expression,
        session,
    )
    dep.emulator.register_event_function(region, runbook_name, result.run_event)
    dep.emulator.clock.every(result.period, result.tick)
    return result
