"""The Step Functions executor for the safety checker: the generated state machine, run by moto's
interpreter, with the real failover handler behind its Lambda tasks and the emulator's clock.

``run_state_machine(deployment, runbook, params)`` does what the deployed orchestrator does
(``components/orchestrator.py``): the state machine ``build_definition(<runbook>, <function>)`` in
region B, started with ``{"params": {...}}``, whose Lambda tasks invoke
``lambdas.failover.handler.handler``. One machine per runbook serves every deployment of the
process (``FUNCTION_NAME``: the definitions are then identical); it is registered in moto on first
use, and moto's parse of it is kept. What is emulated, and where:

* **The Lambda.** moto calls ``lambda_eval_utils._invoke_lambda_function`` for a
  ``lambda:invoke`` task; here it calls the unmodified ``handler.handler`` with the event Step
  Functions built. The handler's one environment seam, ``_context_and_clients`` (the
  ``RUNBOOK_CONTEXT`` parse and ``Clients.for_context``), answers the deployment's context and
  clients on the deployment's session and virtual clock, so its fault hooks, dark regions and
  mutating-call count apply. What the handler raises becomes what the Lambda Python runtime
  returns (``FunctionError`` with ``errorType`` the exception's class name), which is the error
  name the state machine's Retry and Catch match: ``StepFailed``, ``StepRetryable``.
* **Time.** The interpreter's Wait states and Retry back-off take virtual time: they wait on the
  emulator's clock, so promotions finish, the world's timers (client writes, the canary, metric
  publication) fire in order, and no real second passes. Full jitter draws from a generator seeded
  by the execution, so a schedule replays.
* **Threads.** moto runs an execution, each Parallel branch and each task in threads of its own.
  They take turns (``_Turns``): one branch acts at a time, from the moment it is granted its turn
  until it waits (a Wait state, a Retry back-off, its own branches) or ends; the next turn goes to
  the branch due first on the virtual clock, ties in the order they became due. Parallel branches
  therefore interleave as AWS may run them, deterministically, and never act on the emulator at
  the same instant.
* **A crash** (``Deployment.crash_after``'s ``Crash`` from a botocore hook, or ``crash``) kills the
  *Lambda invocation* that is running: after the AWS call it interrupted was applied, before the
  step saw its answer. That is what a process death, an out-of-memory kill or a function time-out
  is in AWS; the runbook's orchestrator, Step Functions, lives on. A synchronous invocation is not
  retried by Lambda; Step Functions reports it as ``Lambda.Unknown`` (see
  https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html), which the
  generated Retry matches (``INVOCATION_LOST_ERRORS``, twice): the same execution invokes the step
  again and the run goes on. Only a step that dies on every attempt stops the run at that step
  (``Catch``; a best-effort step records a warning), with the outcome ``crashed``: resuming is then
  a new execution.

The execution must end within ``REAL_TIME_LIMIT`` real seconds; a longer one is a harness fault
(``TimeoutError``), never a verdict.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import itertools
import json
import logging
import random
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from unittest import mock

import jsonpath_ng
import jsonpath_ng.ext
from moto.core.config import default_user_config
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker, branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.parser.utils import TMP_THREADS

from automation.emulator.aws import ACCOUNT
from automation.emulator.clock import VirtualClock
from lambdas.failover import handler
from lambdas.failover.clients import Clients
from lambdas.failover.graph import RUNBOOKS
from lambdas.failover.state_machine import build_definition, to_json
from tests.lambdas.failover.harness import new_session
from tests.safety.model import Crash
from tests.sfn_history import execution_history

if TYPE_CHECKING:
    from tests.safety.model import ActorClients, Deployment

REAL_TIME_LIMIT = 300.0
"""Real seconds an execution may take before the harness gives up on it: a guard against a hang.
A failover takes 2-5 s on a loaded 2-core machine, a failback polling a new replica 40 times 10 s;
the longest possible run (every long-running step polled ``max_polls`` times) is a few times that."""

CRASH_ERROR = "Lambda.Unknown"
"""The error Step Functions reports for an invocation whose function died (time-out, OOM, exit)."""

FUNCTION_NAME = "pilotlight-runbook"
"""The failover Lambda the generated definitions name. One name for every deployment makes their
definitions identical, so one state machine per runbook serves them all: a machine holds no state,
and the Lambda behind it acts for the deployment whose run is under way."""

_EXTRAS_KEY = "sfn_executor"
"""Where a deployment keeps its runs (``World.extras`` is room for the harness)."""


class Outcome(StrEnum):
    """How a run ended, as the safety model records it (``RunState.outcome``)."""

    DONE = "done"
    """The execution succeeded: every step finished (done, already done, skipped or warned)."""
    STOPPED = "stopped"
    """The execution failed, timed out or was aborted on its own: a step refused or kept failing."""
    CRASHED = "crashed"
    """A Lambda invocation died mid-step and the execution failed because of it."""


@dataclass
class _Runs:
    """A deployment's side of Step Functions: its client, execution names, its last execution."""

    client: Any
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    last_execution: str | None = None


@dataclass
class _Shared:
    """What every deployment in this process shares: the machines in moto, their parsed programs."""

    arns: dict[tuple[str, str], str] = field(default_factory=dict)
    """(region, definition) -> state machine ARN (checked before use: moto may have been reset). By
    definition, not by runbook: a test-only regression that restores an old graph
    (``tests.safety.regressions``) must reach this executor too, as a machine of its own."""
    programs: dict[str, Any] = field(default_factory=dict)
    """Definition -> moto's parsed program. moto parses on every start (~1 s); the tree is stateless."""
    validated: set[str] = field(default_factory=set)
    """Definitions moto's ``create_state_machine`` has parsed and accepted in this process: registered
    again (a new world's moto), they are not parsed again (~1 s each, a soak schedule's biggest
    single cost)."""


_SHARED = _Shared()


def prepare(region: str) -> None:
    """Parse each runbook's machine (for ``region``) now, as its first registration and start in this
    process would: ``make soak`` calls it before forking its workers, so none of them parses it again."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    for graph in RUNBOOKS.values():
        definition = to_json(build_definition(graph, _function_arn(region)))
        if definition not in _SHARED.validated:
            StepFunctionsParserBackend._validate_definition(definition)
            _SHARED.validated.add(definition)
        if definition not in _SHARED.programs:
            _SHARED.programs[definition] = AmazonStateLanguageParser.parse(definition)[0]


def run_state_machine(
    deployment: Deployment,
    runbook: str,
    params: dict[str, Any],
    crash: Callable[[], None] | None = None,
    *,
    real_time_limit: float = REAL_TIME_LIMIT,
) -> tuple[str, str]:
    """Run ``runbook`` as the deployed state machine would, to its end; returns (outcome, detail).

    Args:
        deployment: the checker's deployment (its emulator must be installed, moto active).
        runbook: ``failover`` or ``failback``.
        params: the execution's ``params`` (as an operator or the alarm's rule passes them).
        crash: called at the start of every Lambda invocation; a ``Crash`` it raises kills that
            invocation before its first AWS call. ``deployment.crash_after`` kills one after the
            AWS call it counts, as with the in-process executor.
        real_time_limit: real seconds before the run is abandoned (``TimeoutError``).

    Returns:
        ``(outcome, detail)``: ``done`` with ``""``; ``stopped`` with ``"<step>: <why>"``;
        ``crashed`` with the step whose invocation died and what it was doing.
    """
    if runbook not in RUNBOOKS:
        raise ValueError(f"runbook must be one of {sorted(RUNBOOKS)}; got {runbook!r}")
    clock = deployment.emulator.clock
    # The runbook function's clients: kept from one execution to the next, as a warm Lambda keeps the
    # clients it made at module level (a pool of its own: ``_clients_for``, never the CLI runs'; a new
    # fault drops them, since a client copies its session's hooks when it is built). Building ~16
    # clients per execution was a twentieth of the soak's time (issue 9). Claimed before the first
    # invocation, attributed to the execution once it has its id, released when it ends.
    clients = deployment._clients_for("sfn-starting", function=True)
    turns = _Turns(clock)
    lam = _Lambda(deployment, clients, crash, turns)
    with _executing_state_machines(), _interpreter_quiet(), _released(clients):
        runs = _runs(deployment)
        arn = _state_machine(runs.client, deployment.ctx.dr_region, runbook)
        name = f"{deployment.ctx.app_name}-{runbook}-{next(runs.numbers)}"
        jitter = random.Random(name)
        with _interpreter_patched(turns, lam, jitter, _SHARED.programs):
            root = turns.spawn()
            turns.root = root
            started = runs.client.start_execution(
                stateMachineArn=arn,
                name=name,
                input=json.dumps({"params": params}),
            )
            runs.last_execution = started["executionArn"]
            # The execution is alive until it ends: its invocations' calls are its own (single flight
            # is judged from them, Deployment._acted).
            actor = started["executionArn"]  # the run id its lock is held under ($$.Execution.Id)
            clients.actor = actor
            deployment._begin_actor(actor)
            try:
                turns.start()
                finished = turns.finished.wait(real_time_limit)
            finally:
                deployment._end_actor(actor)
                clients.actor = None
            if not finished:
                turns.abandon()
                with contextlib.suppress(Exception):
                    runs.client.stop_execution(executionArn=started["executionArn"], error="Harness")
                raise TimeoutError(f"{runbook} execution {name} still running after {real_time_limit:.0f} s")
            if turns.error is not None:
                raise RuntimeError(f"{runbook} execution {name}: the emulated world failed") from turns.error
            described = runs.client.describe_execution(executionArn=started["executionArn"])
    return _verdict(described, lam.crashes)


@contextlib.contextmanager
def _released(clients: ActorClients) -> Iterator[None]:
    """Give ``clients`` back to the deployment's pool (no actor) however the block ends."""
    try:
        yield
    finally:
        clients.actor = None


def last_execution(deployment: Deployment) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The deployment's last execution as Step Functions describes it, and its event history."""
    runs = deployment.world.extras.get(_EXTRAS_KEY)
    if not isinstance(runs, _Runs) or runs.last_execution is None:
        raise LookupError(f"no state machine execution for {deployment.ctx.app_name}")
    with _executing_state_machines():
        arn = runs.last_execution
        described = runs.client.describe_execution(executionArn=arn)
        return described, execution_history(runs.client, arn)


def _verdict(described: dict[str, Any], crashes: list[str]) -> tuple[str, str]:
    """Map the execution's end to the model's outcome (``RunState``) and a line for people."""
    status = described["status"]
    died = "; ".join(crashes)
    if status == "SUCCEEDED":
        # A best-effort step whose invocation died is a warning: the run went on and finished.
        return Outcome.DONE.value, f"{died} (best effort: the run went on)" if crashes else ""
    if status == "RUNNING":
        raise RuntimeError(f"execution {described['executionArn']} ended its thread but is still RUNNING")
    error, cause = described.get("error"), described.get("cause")
    failure = _failure_record(cause)
    if failure is None:  # not a step's failure: a States.Runtime error, a time-out, an abort
        return Outcome.STOPPED.value, f"{status}: {error}: {cause}" if cause else f"{status}: {error}"
    if crashes and failure.get("error") == CRASH_ERROR:
        return Outcome.CRASHED.value, f"{died}; the execution failed with {error}"
    step, why = str(failure.get("step")), str(failure.get("cause"))
    # A Lambda error: the cause is the function's error payload, its message "<step>: <reason>".
    with contextlib.suppress(ValueError, KeyError, TypeError):
        why = str(json.loads(why)["errorMessage"])
    if not why.startswith(f"{step}: "):
        why = f"{step}: {failure.get('error')}: {why}"
    return Outcome.STOPPED.value, why


def _failure_record(cause: str | None) -> dict[str, Any] | None:
    """The generated Failed state's Cause: ``{"step", "error", "cause"}`` (None if it is not one)."""
    try:
        record = json.loads(cause or "")
    except ValueError:
        return None
    return record if isinstance(record, dict) and "step" in record and "error" in record else None


# ------------------------------------------------------------------------------ moto's side


@contextlib.contextmanager
def _executing_state_machines() -> Iterator[None]:
    """moto's Step Functions with its interpreter on (a separate backend), for this call only."""
    with mock.patch.dict(default_user_config, {"stepfunctions": {"execute_state_machine": True}}):
        yield


@contextlib.contextmanager
def _interpreter_quiet() -> Iterator[None]:
    """moto logs every failed state at ERROR; the run's outcome and history already say it."""
    logger = logging.getLogger("moto.stepfunctions.parser")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _runs(deployment: Deployment) -> _Runs:
    found = deployment.world.extras.get(_EXTRAS_KEY)
    if isinstance(found, _Runs):
        return found
    # A session of its own: Step Functions calls are the orchestrator's, not the runbook's
    # (the deployment's session counts mutating calls and may crash on one).
    runs = _Runs(new_session().client("stepfunctions", region_name=deployment.ctx.dr_region))
    deployment.world.extras[_EXTRAS_KEY] = runs
    return runs


def _function_arn(region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{FUNCTION_NAME}"


def _state_machine(client: Any, region: str, runbook: str) -> str:
    """The runbook's machine as its graph is now (``graph.RUNBOOKS``), registered as the orchestrator
    does (default polling) if moto lacks it."""
    definition = to_json(build_definition(RUNBOOKS[runbook], _function_arn(region)))
    arn = _SHARED.arns.get((region, definition))
    if arn is not None:
        try:
            client.describe_state_machine(stateMachineArn=arn)
            return arn
        except client.exceptions.StateMachineDoesNotExist:
            pass  # moto was reset since (a new mock session): register it again
    digest = hashlib.sha256(definition.encode()).hexdigest()[:8]
    validate = StepFunctionsParserBackend._validate_definition
    with mock.patch.object(
        StepFunctionsParserBackend,
        "_validate_definition",
        staticmethod(lambda definition: None if definition in _SHARED.validated else validate(definition)),
    ):
        arn = client.create_state_machine(
            name=f"pilotlight-{runbook}-{digest}",
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/pilotlight-sfn-role",
        )["stateMachineArn"]
    _SHARED.validated.add(definition)
    _SHARED.arns[region, definition] = arn
    return arn


class _Lambda:
    """The failover Lambda behind moto's ``lambda:invoke``: the real handler, the Python runtime's
    error contract, and a process that may die mid-step."""

    def __init__(
        self, deployment: Deployment, clients: Clients, crash: Callable[[], None] | None, turns: _Turns
    ) -> None:
        self.deployment = deployment
        self.clients = clients
        self.crash = crash
        self.turns = turns
        self.crashes: list[str] = []
        self._requests = itertools.count(1)

    def context(self) -> tuple[Any, Clients]:
        """Stands in for ``handler._context_and_clients``: the deployment's, not the environment's."""
        return self.deployment.ctx, self.clients

    def __call__(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        request_id = f"sfn-{next(self._requests)}"
        event = json.loads(parameters["Payload"])
        step = event.get("step") if isinstance(event, dict) else None
        if not self.turns.open:  # the run was abandoned: nothing acts on the world any more
            return _function_error(CRASH_ERROR, f"RequestId: {request_id} Error: the execution has ended")
        context = SimpleNamespace(aws_request_id=request_id, function_name=parameters.get("FunctionName"))
        try:
            if self.crash is not None:
                self.crash()
            answer = handler.handler(event, context)
        except Crash as exc:
            self.crashes.append(f"{step}: invocation {request_id} died ({exc})")
            message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed ({exc})"
            return _function_error(CRASH_ERROR, message)
        except Exception as exc:
            # The Lambda Python runtime's answer to an unhandled exception: its class name is the
            # errorType, which Step Functions uses as the error name (StepFailed, StepRetryable).
            return _function_error(type(exc).__name__, str(exc), traceback.format_tb(exc.__traceback__))
        try:  # Lambda returns the answer as JSON; Step Functions parses it back
            payload = json.loads(json.dumps(answer))
        except (TypeError, ValueError) as exc:
            return _function_error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
        return {"StatusCode": 200, "Payload": payload, "ExecutedVersion": "$LATEST"}


def _function_error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    payload = {"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}
    return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload, "ExecutedVersion": "$LATEST"}


# ------------------------------------------------------------------------------ turns on the virtual clock


class _Fiber:
    """One line of control of the execution: the execution itself, or one Parallel branch.

    moto runs a line in nested threads (program, state, task) of which one runs at a time; the
    line, not the thread, takes turns.
    """

    __slots__ = ()


@dataclass(order=True)
class _Turn:
    due: datetime
    seq: int
    fiber: _Fiber = field(compare=False)
    alive: Callable[[], bool] = field(compare=False)


def _always() -> bool:
    return True


class _Turns:
    """Cooperative turns for moto's execution threads, ordered on the virtual clock.

    The line holding the turn runs; every other one waits for it: a new branch (due now), a Wait
    state or Retry back-off (due ``seconds`` later), a Parallel state's line (due when its
    branches end). When the holder waits or ends, the turn goes to the line due first (ties in the
    order they became due) once the clock has been advanced to it; a line whose execution or
    branch was stopped goes first and takes no time (AWS ends it at once).
    """

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.root: _Fiber | None = None
        self.holder: _Fiber | None = None
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._queue: list[_Turn] = []
        self._seq = itertools.count()
        self._draining = False
        self._open = True
        self._retrier_env = threading.local()

    @property
    def open(self) -> bool:
        """Whether lines still take turns (False once the run finished or was abandoned)."""
        return self._open

    # -- lines becoming due ----------------------------------------------------------------------

    def spawn(self) -> _Fiber:
        """A new line, due now (called by the holder as it starts a branch, or before the run)."""
        fiber = _Fiber()
        self.wake(fiber)
        return fiber

    def wake(self, fiber: _Fiber) -> None:
        """``fiber`` is due now."""
        with self._cond:
            heapq.heappush(self._queue, _Turn(self.clock.now(), next(self._seq), fiber, _always))

    # -- the holder's side -----------------------------------------------------------------------

    def start(self) -> None:
        """Hand out the first turn (the execution's)."""
        with self._cond:
            if self.holder is None:
                self._dispatch()

    def enter(self, fiber: _Fiber) -> None:
        """Block the calling thread until ``fiber`` holds the turn."""
        with self._cond:
            self._cond.wait_for(lambda: not self._open or self.holder is fiber)

    def sleep(self, seconds: float, alive: Callable[[], bool]) -> None:
        """The holder waits ``seconds`` of virtual time (``alive``: its line still runs)."""
        with self._cond:
            fiber = self.holder
            if not self._open or fiber is None:
                return
            due = self.clock.now() + timedelta(seconds=max(0.0, seconds))
            heapq.heappush(self._queue, _Turn(due, next(self._seq), fiber, alive))
            self.holder = None
            self._dispatch()
            self._cond.wait_for(lambda: not self._open or self.holder is fiber)

    def block(self) -> _Fiber | None:
        """The holder waits for something other lines do (its branches); returns its line."""
        with self._cond:
            fiber = self.holder
            self.holder = None
            self._dispatch()
            return fiber

    def leave(self, fiber: _Fiber) -> None:
        """``fiber`` ended. The execution's end drains what is left, then the run is finished."""
        with self._cond:
            if self.holder is fiber:
                self.holder = None
            if fiber is self.root:
                self._draining = True
            self._dispatch()

    def abandon(self) -> None:
        """Give up (the real-time bound): every line runs free and acts on nothing any more."""
        with self._cond:
            self._close()

    # -- the retrier's line -------------------------------------------------------------------------

    @property
    def retrier_alive(self) -> Callable[[], bool]:
        env = getattr(self._retrier_env, "env", None)
        return env.is_running if env is not None else _always

    @contextlib.contextmanager
    def retrying(self, env: Any) -> Iterator[None]:
        self._retrier_env.env = env
        try:
            yield
        finally:
            self._retrier_env.env = None

    # -- handing the turn on -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Give the turn to the next line (the condition is held and nobody holds the turn)."""
        if not self._open:
            return
        if not self._queue:
            if not self._draining:
                self.error = RuntimeError("no line of the execution can go on (harness bug)")
            self._close()
            return
        stopped = [t for t in self._queue if not t.alive()]
        if stopped or self._draining:
            turn = min(stopped) if stopped else self._queue[0]
            self._queue.remove(turn)
            heapq.heapify(self._queue)
        else:
            turn = heapq.heappop(self._queue)
            try:
                self.clock.run_until(turn.due)
            except BaseException as exc:  # a world timer failed: end the run, report it
                self.error = exc
                self._close()
                return
        self.holder = turn.fiber
        self._cond.notify_all()

    def _close(self) -> None:
        self._open = False
        self.holder = None
        self._cond.notify_all()
        self.finished.set()


@contextlib.contextmanager
def _interpreter_patched(
    turns: _Turns, lam: _Lambda, jitter: random.Random, programs: dict[str, Any]
) -> Iterator[None]:
    """moto's interpreter on the turns and the virtual clock, its Lambda the handler (this call only)."""
    run_logic = ExecutionWorker._execution_logic
    parse = ExecutionWorker._get_evaluation_entrypoint
    start_branch = branch_worker.BranchWorker.start
    branch_routine = branch_worker.BranchWorker._thread_routine
    pool_wait = branches_decl.BranchWorkerPool.wait
    pool_terminated = branches_decl.BranchWorkerPool.on_terminated
    retrier_body = retrier_decl.RetrierDecl._eval_body

    def entrypoint(self: ExecutionWorker) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        if definition not in programs:
            programs[definition] = parse(self)
        return programs[definition]

    def execution_logic(self: ExecutionWorker) -> None:
        root = turns.root
        assert root is not None
        turns.enter(root)
        try:
            run_logic(self)
        finally:
            turns.leave(root)

    def branch_start(self: branch_worker.BranchWorker) -> None:
        self._pilot_fiber = turns.spawn()  # type: ignore[attr-defined]  # due now, in branch order
        start_branch(self)

    def branch_thread(self: branch_worker.BranchWorker) -> None:
        fiber: _Fiber = self._pilot_fiber  # type: ignore[attr-defined]
        turns.enter(fiber)
        try:
            branch_routine(self)
        finally:
            turns.leave(fiber)

    def wait_for_branches(self: branches_decl.BranchWorkerPool) -> None:
        self._pilot_parent = turns.holder  # type: ignore[attr-defined]  # before a branch can end
        parent = turns.block()
        pool_wait(self)
        if parent is not None:
            turns.enter(parent)

    def branch_terminated(self: branches_decl.BranchWorkerPool, env: Any) -> None:
        pool_terminated(self, env)
        parent: _Fiber | None = getattr(self, "_pilot_parent", None)
        if (
            self._termination_event.is_set()
            and parent is not None
            and not getattr(self, "_pilot_woken", False)
        ):
            self._pilot_woken = True  # type: ignore[attr-defined]
            turns.wake(parent)

    def retrier(self: retrier_decl.RetrierDecl, env: Any) -> None:
        with turns.retrying(env):
            retrier_body(self, env)

    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        turns.sleep(float(wait_seconds), env.is_running)

    with contextlib.ExitStack() as stack:
        patch = stack.enter_context
        patch(mock.patch.object(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint))
        patch(mock.patch.object(ExecutionWorker, "_execution_logic", execution_logic))
        patch(mock.patch.object(branch_worker.BranchWorker, "start", branch_start))
        patch(mock.patch.object(branch_worker.BranchWorker, "_thread_routine", branch_thread))
        patch(mock.patch.object(branches_decl.BranchWorkerPool, "wait", wait_for_branches))
        patch(mock.patch.object(branches_decl.BranchWorkerPool, "on_terminated", branch_terminated))
        patch(mock.patch.object(retrier_decl.RetrierDecl, "_eval_body", retrier))
        patch(
            mock.patch.object(
                retrier_decl, "time", SimpleNamespace(sleep=lambda s: turns.sleep(s, turns.retrier_alive))
            )
        )
        patch(mock.patch.object(jitter_strategy_decl, "random", jitter))
        patch(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
        patch(mock.patch.object(lambda_eval_utils, "_invoke_lambda_function", lam))
        patch(mock.patch.object(handler, "_context_and_clients", lam.context))
        patch(mock.patch.object(json_path, "parse", _parse_json_path_ext))
        patch(mock.patch.object(result_path, "parse", _parse_json_path))
        stack.callback(_forget_finished_threads)
        yield


_parse_json_path = functools.lru_cache(maxsize=None)(jsonpath_ng.parse)
_parse_json_path_ext = functools.lru_cache(maxsize=None)(jsonpath_ng.ext.parse)
"""moto parses a state's JSONPath (InputPath, ResultPath, ``.$`` parameters) on every use, building a
new LALR parser each time; the parsed expression is a pure function of the path (``find`` and
``update_or_create`` change the data, never the expression), so each path is parsed once."""


def _forget_finished_threads() -> None:
    """moto keeps every thread it starts in a list it never empties: a soak would hoard them."""
    TMP_THREADS[:] = [t for t in TMP_THREADS if t.is_alive()]
