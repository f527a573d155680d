"""The runbooks' state machines, generated and then executed by moto's Step Functions interpreter.

moto runs the definition for real when ``execute_state_machine`` is on, but its ``lambda:invoke``
integration would need Docker. The ``sfn`` fixture patches, for the test only, the one function
moto's interpreter calls to invoke a Lambda
(``moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils.
_invoke_lambda_function``) with ``FakeFailoverLambda``, which answers per step from a script:
a status, a ``StepFailed``/``StepRetryable`` error (as Lambda reports an unhandled exception), or a
Lambda service error (``ClientError``). Retry back-off sleeps are recorded instead of slept.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

from lambdas.failover.graph import FAILBACK, FAILOVER, Runbook, Step
from lambdas.failover.state_machine import (
    INVOCATION_LOST_ERRORS,
    LAMBDA_INVOKE,
    LAMBDA_RETRY,
    STEP_RETRY,
    TRANSIENT_LAMBDA_ERRORS,
    DefinitionError,
    build_definition,
    definition_problems,
    plan,
    to_json,
    validate_definition,
)
from tests.sfn_history import execution_history

REGION = "us-east-1"
LOCK_STEPS = ("take_lock", "release_lock")
LOCK_TASKS = {"Take lock", "Release lock", "Release lock (failed)"}
ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pilotlight-failover"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/pilotlight-failover-sfn"

# Nested parallelism: b's branch forks again into d and e; c runs beside it; f joins everything.
NESTED = Runbook(
    name="nested",
    steps=(
        Step("a", description="first"),
        Step("b", needs=("a",)),
        Step("c", needs=("a",), long_running=True),
        Step("d", needs=("b",)),
        Step("e", needs=("b",), best_effort=True),
        Step("f", needs=("c", "d", "e")),
    ),
)
# Not series-parallel ("N" shape): needs a barrier after the first layer.
N_SHAPE = Runbook(
    name="n_shape",
    steps=(Step("a"), Step("b"), Step("c", needs=("a",)), Step("d", needs=("a", "b"))),
)
RUNBOOKS = {rb.name: rb for rb in (FAILOVER, FAILBACK, NESTED, N_SHAPE)}


# ------------------------------------------------------------------------------ the fake Lambda


@dataclass(frozen=True)
class Raise:
    """The handler raises an exception of this name (Lambda reports it as FunctionError)."""

    error: str
    message: str = "the step cannot go on"


@dataclass(frozen=True)
class ServiceError:
    """The Lambda service itself fails the Invoke call (Step Functions names it ``Lambda.<code>``)."""

    code: str


Outcome = str | Raise | ServiceError


class FakeFailoverLambda:
    """Stands in for ``lambdas.failover.handler.handler`` behind moto's ``lambda:invoke``.

    ``script(step, *outcomes)`` gives a step's answers in order; the last one repeats. A step
    without a script answers ``done``. Thread-safe: Parallel branches run in threads.
    """

    def __init__(self) -> None:
        self._scripts: dict[str, list[Outcome]] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.function_names: set[str] = set()

    def script(self, step: str, *outcomes: Outcome) -> None:
        self._scripts[step] = list(outcomes)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.events.clear()
            self.function_names.clear()

    @property
    def invoked(self) -> list[str]:
        """The runbook's steps invoked, in order (the lock's own invocations: ``lock_calls``)."""
        with self._lock:
            return [e["step"] for e in self.events if e["step"] not in LOCK_STEPS]

    @property
    def lock_calls(self) -> list[str]:
        with self._lock:
            return [e["step"] for e in self.events if e["step"] in LOCK_STEPS]

    def count(self, step: str) -> int:
        return self.invoked.count(step)

    def __call__(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        event = json.loads(parameters["Payload"])
        with self._lock:
            self.events.append(event)
            self.function_names.add(parameters["FunctionName"])
            script = self._scripts.get(event["step"], [])
            outcome: Outcome = (script.pop(0) if len(script) > 1 else script[0]) if script else "done"
        if isinstance(outcome, ServiceError):
            raise ClientError(
                {
                    "Error": {"Code": outcome.code, "Message": "injected by the test"},
                    "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "test"},
                },
                "Invoke",
            )
        if isinstance(outcome, Raise):
            payload: dict[str, Any] = {
                "errorType": outcome.error,
                "errorMessage": f"{event['step']}: {outcome.message}",
                "stackTrace": [],
            }
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload}
        payload = {"status": outcome, "detail": f"{event['step']} {outcome}", "data": {"step": event["step"]}}
        return {"StatusCode": 200, "Payload": payload}


# ------------------------------------------------------------------------------ harness


@dataclass
class Run:
    """A finished execution."""

    status: str
    output: dict[str, Any]
    error: str | None
    cause: str | None
    events: list[dict[str, Any]] = field(repr=False)

    def entered(self, event_type: str) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.events if e["type"] == event_type]

    @property
    def failure(self) -> dict[str, Any]:
        assert self.cause is not None
        return json.loads(self.cause)


class Harness:
    """Create state machines from runbooks and run them to the end in moto.

    moto parses a definition (ANTLR, in Python) on create and again on each execution; machines
    are created once per runbook and options and reused, which keeps the module fast.
    """

    def __init__(self, client: Any, fake: FakeFailoverLambda) -> None:
        self.client = client
        self.fake = fake
        self.sleeps: list[float] = []
        self._machines: dict[tuple[str, tuple[tuple[str, int], ...]], str] = {}
        self._created = 0

    def reset(self) -> None:
        self.fake.reset()
        self.sleeps.clear()

    def create(self, runbook: Runbook, **options: int) -> str:
        definition = to_json(build_definition(runbook, FUNCTION_ARN, **options))
        self._created += 1
        name = f"{runbook.name}-{self._created}"
        return self.client.create_state_machine(name=name, definition=definition, roleArn=ROLE_ARN)[
            "stateMachineArn"
        ]

    def _history(self, arn: str, deadline: float) -> list[dict[str, Any]]:
        """The execution's history once its terminal event is written: moto's interpreter thread
        sets the execution's status before it has appended the last events, so read again until
        the history ends with the execution's own end."""
        while True:
            events = execution_history(self.client, arn)
            if (
                events
                and events[-1]["type"].startswith("Execution")
                and events[-1]["type"] != "ExecutionStarted"
            ):
                return events
            assert time.monotonic() < deadline, f"execution history incomplete after 60 s: {events[-1:]}"
            time.sleep(0.02)

    def run(self, runbook: Runbook, execution_input: Any = None, **options: int) -> Run:
        key = (runbook.name, tuple(sorted(options.items())))
        if key not in self._machines:
            self._machines[key] = self.create(runbook, **options)
        arn = self._machines[key]
        if execution_input is None:
            execution_input = {"params": {"force": False, "reason": "test"}}
        self._created += 1
        execution = self.client.start_execution(
            stateMachineArn=arn, name=f"run-{self._created}", input=json.dumps(execution_input)
        )
        # Generous real-time bounds: a run takes well under a second idle; CI's machine may be loaded.
        deadline = time.monotonic() + 120
        while True:
            described = self.client.describe_execution(executionArn=execution["executionArn"])
            if described["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, "execution still running after 120 s"
            time.sleep(0.02)
        # The history's own bound: the execution may have used most of the first under load.
        events = self._history(execution["executionArn"], time.monotonic() + 60)
        return Run(
            status=described["status"],
            output=json.loads(described.get("output") or "{}"),
            error=described.get("error"),
            cause=described.get("cause"),
            events=events,
        )


@pytest.fixture(scope="module")
def _moto_sfn() -> Iterator[Harness]:
    """moto executing state machines, its Lambda integration answered by the fake (module-wide)."""
    fake = FakeFailoverLambda()
    with (
        pytest.MonkeyPatch.context() as patch,
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
    ):
        harness = Harness(boto3.client("stepfunctions", region_name=REGION), fake)
        patch.setattr(lambda_eval_utils, "_invoke_lambda_function", fake)
        # Retry back-off: record the interval moto would sleep (after jitter) instead of sleeping.
        patch.setattr(retrier_decl, "time", SimpleNamespace(sleep=harness.sleeps.append))
        yield harness


@pytest.fixture
def sfn(_moto_sfn: Harness) -> Harness:
    _moto_sfn.reset()
    return _moto_sfn


# ------------------------------------------------------------------------------ helpers


def walk(scope: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, in the top level and in every Parallel branch."""
    for name, state in scope["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from walk(branch)


def descendants(runbook: Runbook, name: str) -> set[str]:
    out: set[str] = set()
    grew = True
    while grew:
        grew = False
        for s in runbook.steps:
            if s.name not in out and ({name} | out) & set(s.needs):
                out.add(s.name)
                grew = True
    return out


def assert_needs_respected(runbook: Runbook, invoked: list[str]) -> None:
    for s in runbook.steps:
        first = invoked.index(s.name)
        for need in s.needs:
            last = len(invoked) - 1 - invoked[::-1].index(need)
            assert last < first, f"{s.name} started before {need} finished: {invoked}"


def guaranteed_before(nodes: list[Any], before: frozenset[str] = frozenset()) -> dict[str, frozenset[str]]:
    """For a plan: which steps have finished whenever each step starts."""
    out: dict[str, frozenset[str]] = {}
    done = before
    for node in nodes:
        if isinstance(node, Step):
            out[node.name] = done
            done = done | {node.name}
        else:
            finished = done
            for branch in node.branches:
                inner = guaranteed_before(list(branch), done)
                out.update(inner)
                finished = finished | set(inner)
            done = finished
    return out


# ------------------------------------------------------------------------------ pure: the definition


@pytest.mark.parametrize("runbook", RUNBOOKS.values(), ids=RUNBOOKS.keys())
def test_generated_definition_is_valid_json_and_validates(runbook: Runbook) -> None:
    defn = build_definition(runbook, FUNCTION_ARN)
    assert json.loads(to_json(defn)) == defn
    validate_definition(defn)
    assert definition_problems(defn) == []


@pytest.mark.parametrize("runbook", RUNBOOKS.values(), ids=RUNBOOKS.keys())
def test_every_step_is_one_lambda_task_with_retry_and_catch(runbook: Runbook) -> None:
    defn = build_definition(runbook, FUNCTION_ARN)
    tasks = {name: state for name, state in walk(defn) if state["Type"] == "Task"}
    on_stop = [runbook.on_stop.name] if runbook.on_stop else []
    assert sorted(set(tasks) - LOCK_TASKS) == sorted([*runbook.names(), *on_stop])
    for name in on_stop:
        # The undo on the failure path: its own failure is caught and the run fails as it would have.
        assert tasks[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.onStopError", "Next": "Release lock (failed)"}
        ]
    for name, task in tasks.items():
        if name in LOCK_TASKS or name in on_stop:
            continue
        step = runbook.step(name)
        assert task["Resource"] == LAMBDA_INVOKE
        assert task["Comment"] == (step.description or name)
        assert task["Parameters"] == {
            "FunctionName": FUNCTION_ARN,
            "Payload": {
                "runbook": runbook.name,
                "step": name,
                "params.$": "$.params",
                "lockRunId.$": "$$.Execution.Id",
            },
        }
        assert set(task["ResultSelector"].values()) == {
            "$.Payload.status",
            "$.Payload.detail",
            "$.Payload.data",
        }
        assert task["ResultPath"] == f"$.results.{name}"
        retried = {e for r in task["Retry"] if r.get("MaxAttempts", 3) > 0 for e in r["ErrorEquals"]}
        assert retried == {*TRANSIENT_LAMBDA_ERRORS, *INVOCATION_LOST_ERRORS, "StepRetryable"}
        assert all(r["JitterStrategy"] == "FULL" and r["BackoffRate"] == 2 for r in task["Retry"][1:])
        assert [c["ErrorEquals"] for c in task["Catch"]] == [["States.ALL"]]
        if step is on_stop:  # the rollback's own failure still ends the run, lock given back
            assert task["Catch"][0]["Next"] == task["Next"] == "Release lock (failed)"
            continue
        assert task["Catch"][0]["Next"] == f"{name}: {'warning' if step.best_effort else 'failed'}"


def test_steps_of_one_layer_are_branches_of_one_parallel_state() -> None:
    defn = build_definition(FAILOVER, FUNCTION_ARN)
    parallels = [state for _, state in walk(defn) if state["Type"] == "Parallel"]
    assert len(parallels) == 1
    branch_tasks = [
        [name for name, state in walk(branch) if state["Type"] == "Task"]
        for branch in parallels[0]["Branches"]
    ]
    # write_latch needs only fence_primary: it follows it in the same branch, not the layer; the
    # switch (and the promotion after it) wait for every branch.
    assert branch_tasks == [
        ["fence_primary", "write_latch"],
        ["scale_web_tier"],
        ["enable_functions"],
    ]
    for layer in FAILOVER.layers():
        if len(layer) > 1:
            owners = [i for s in layer for i, tasks in enumerate(branch_tasks) if s.name in tasks]
            assert len(set(owners)) == len(layer), "independent steps share a branch"
    # The failback runbook is a chain: nothing to run in parallel.
    assert not [s for _, s in walk(build_definition(FAILBACK, FUNCTION_ARN)) if s["Type"] == "Parallel"]


def test_long_running_step_loops_through_a_bounded_wait() -> None:
    defn = build_definition(FAILOVER, FUNCTION_ARN, poll_seconds=7, max_polls=9)
    states = dict(walk(defn))
    check = states["promote_database: in progress?"]
    assert states["promote_database"]["Next"] == "promote_database: in progress?"
    timeout_rule, poll_rule = check["Choices"]
    assert timeout_rule["And"][1] == {
        "Variable": "$.polls.promote_database.count",
        "NumericGreaterThanEquals": 9,
    }
    assert timeout_rule["Next"] == "promote_database: timed out"
    assert poll_rule["Next"] == "promote_database: wait"
    assert states["promote_database: wait"]["Seconds"] == 7
    assert "States.MathAdd" in states["promote_database: count poll"]["Parameters"]["count.$"]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"poll_seconds": 0}, "poll_seconds"), ({"max_polls": 0}, "max_polls")],
)
def test_build_definition_refuses_bad_options(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_definition(FAILOVER, FUNCTION_ARN, **options)


def test_build_definition_refuses_a_step_name_unfit_for_jsonpath() -> None:
    with pytest.raises(ValueError, match="JSONPath"):
        build_definition(Runbook("odd", (Step("has space"),)), FUNCTION_ARN)


@st.composite
def runbooks(draw: st.DrawFn) -> Runbook:
    n = draw(st.integers(min_value=1, max_value=8))
    steps = []
    for i in range(n):
        needs = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3)) if i else set()
        steps.append(
            Step(
                f"s{i}",
                needs=tuple(f"s{j}" for j in sorted(needs)),
                long_running=draw(st.booleans()),
                best_effort=draw(st.booleans()),
            )
        )
    return Runbook("random", tuple(steps))


@settings(max_examples=150, deadline=None)
@given(runbooks())
def test_any_graph_gives_a_valid_definition_that_respects_needs(runbook: Runbook) -> None:
    before = guaranteed_before(plan(runbook))
    assert sorted(before) == sorted(runbook.names())  # every step exactly once (dict + count below)
    tasks = [name for name, state in walk(build_definition(runbook, FUNCTION_ARN)) if state["Type"] == "Task"]
    assert sorted(set(tasks) - LOCK_TASKS) == sorted(runbook.names())
    for s in runbook.steps:
        assert set(s.needs) <= before[s.name], f"{s.name} may start before {s.needs}"
    validate_definition(build_definition(runbook, FUNCTION_ARN))


# ------------------------------------------------------------------------------ pure: validation


def _states(defn: dict[str, Any]) -> dict[str, Any]:
    return dict(walk(defn))


BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "dangling Next": (
        lambda d: d["States"]["throw_switch"].update(Next="nowhere"),
        "goes to 'nowhere'",
    ),
    "dangling Catch": (
        lambda d: d["States"]["notify"]["Catch"][0].update(Next="Gone"),
        "goes to 'Gone'",
    ),
    "branch jumps to the top level": (
        lambda d: _states(d)["scale_web_tier"].update(Next="throw_switch"),
        "not a state of the top level > Parallel",
    ),
    "Task without Retry": (lambda d: d["States"]["notify"].pop("Retry"), "'notify': Task without Retry"),
    "Task without Catch": (lambda d: d["States"]["notify"].pop("Catch"), "'notify': Task without Catch"),
    "StepFailed retried": (
        lambda d: d["States"]["notify"].update(Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}]),
        "would retry StepFailed",
    ),
    "States.ALL not last": (
        lambda d: d["States"]["notify"]["Catch"].append({"ErrorEquals": ["StepFailed"], "Next": "Failed"}),
        "States.ALL must be alone and last",
    ),
    "both Next and End": (lambda d: d["States"]["notify"].update(End=True), "exactly one of Next and End"),
    "neither Next nor End": (lambda d: d["States"]["notify"].pop("Next"), "exactly one of Next and End"),
    "unreachable state": (
        lambda d: d["States"].update(Orphan={"Type": "Pass", "Next": "Succeeded"}),
        "unreachable states ['Orphan']",
    ),
    "second way to succeed": (
        lambda d: (
            d["States"]["notify"].update(Next="Also done")
            or d["States"].update({"Also done": {"Type": "Succeed"}})
        ),
        "exactly one way to succeed",
    ),
    "busy loop": (
        lambda d: d["States"]["verify: in progress?"]["Choices"][1].update(Next="verify"),
        "loop without a Wait state",
    ),
    "no way out": (
        lambda d: d["States"]["verify: count poll"].update(Next="verify: wait"),
        "can never reach an end",
    ),
    "missing StartAt": (lambda d: d.update(StartAt="Nope"), "StartAt 'Nope' is not a state"),
    "duplicate name in a branch": (
        lambda d: d["States"]["Parallel: fence_primary, scale_web_tier, enable_functions"]["Branches"][1][
            "States"
        ].update(notify={"Type": "Pass", "End": True}),
        "'notify': name already used",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=BREAKAGES.keys())
def test_validate_definition_catches_a_broken_definition(breakage: str) -> None:
    defn = copy.deepcopy(build_definition(FAILOVER, FUNCTION_ARN))
    validate_definition(defn)
    mutate, expected = BREAKAGES[breakage]
    mutate(defn)
    with pytest.raises(DefinitionError) as caught:
        validate_definition(defn)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


# ------------------------------------------------------------------------------ executed by moto


@pytest.mark.parametrize("runbook", RUNBOOKS.values(), ids=RUNBOOKS.keys())
def test_definition_survives_create_state_machine(sfn: Harness, runbook: Runbook) -> None:
    arn = sfn.create(runbook)
    described = sfn.client.describe_state_machine(stateMachineArn=arn)
    assert json.loads(described["definition"]) == build_definition(runbook, FUNCTION_ARN)


@pytest.mark.parametrize("runbook", RUNBOOKS.values(), ids=RUNBOOKS.keys())
def test_runbook_succeeds_when_every_step_succeeds(sfn: Harness, runbook: Runbook) -> None:
    run = sfn.run(runbook, {"params": {"force": True, "reason": "drill"}})

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output["params"] == {"force": True, "reason": "drill"}
    assert set(run.output["results"]) == set(runbook.names())
    for name, result in run.output["results"].items():
        assert result == {"status": "done", "detail": f"{name} done", "data": {"step": name}}
    assert sorted(sfn.fake.invoked) == sorted(runbook.names())  # each step exactly once
    assert sfn.fake.lock_calls == ["take_lock", "release_lock"]
    assert_needs_respected(runbook, sfn.fake.invoked)
    assert {e["runbook"] for e in sfn.fake.events} == {runbook.name}
    assert all(e["params"] == {"force": True, "reason": "drill"} for e in sfn.fake.events)
    assert sfn.fake.function_names == {FUNCTION_ARN}
    assert run.entered("SucceedStateEntered")[-1] == "Succeeded"


def test_failover_runs_independent_steps_in_a_parallel_state(sfn: Harness) -> None:
    run = sfn.run(FAILOVER)

    assert run.status == "SUCCEEDED"
    types = [e["type"] for e in run.events]
    start, end = types.index("ParallelStateEntered"), types.index("ParallelStateExited")
    assert run.events[start]["stateEnteredEventDetails"]["name"] == (
        "Parallel: fence_primary, scale_web_tier, enable_functions"
    )
    inside = {
        e["stateEnteredEventDetails"]["name"]
        for e in run.events[start:end]
        if e["type"] == "TaskStateEntered"
    }
    assert inside == {
        "fence_primary",
        "scale_web_tier",
        "enable_functions",
        "write_latch",
    }
    outside = set(run.entered("TaskStateEntered")) - inside
    assert outside == {
        "Take lock",
        "confirm_primary_down",
        "throw_switch",
        "promote_database",
        "verify",
        "notify",
        "Release lock",
    }


def test_nested_parallel_states_run(sfn: Harness) -> None:
    run = sfn.run(NESTED)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert len(run.entered("ParallelStateEntered")) == 2
    assert set(run.output["results"]) == set(NESTED.names())


def test_missing_params_default_to_empty(sfn: Harness) -> None:
    run = sfn.run(FAILBACK, {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change"})

    assert run.status == "SUCCEEDED"
    assert run.output["params"] == {}
    assert all(e["params"] == {} for e in sfn.fake.events)


@pytest.mark.parametrize("status", ["already_done", "skipped", "warning"])
def test_other_success_statuses_go_on(sfn: Harness, status: str) -> None:
    sfn.fake.script("throw_switch", status)
    run = sfn.run(FAILOVER)

    assert run.status == "SUCCEEDED"
    assert run.output["results"]["throw_switch"]["status"] == status
    assert "notify" in sfn.fake.invoked


@pytest.mark.parametrize(
    ("step", "outcome"),
    [
        *[("throw_switch", ServiceError(e.removeprefix("Lambda."))) for e in TRANSIENT_LAMBDA_ERRORS],
        ("throw_switch", Raise("StepRetryable")),
        ("scale_web_tier", ServiceError("TooManyRequestsException")),  # inside a Parallel branch
        ("promote_database", Raise("StepRetryable")),  # long-running, inside a branch
    ],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "code", getattr(v, "error", "")),
)
def test_transient_error_is_retried_and_the_run_succeeds(sfn: Harness, step: str, outcome: Outcome) -> None:
    sfn.fake.script(step, outcome, "done")
    run = sfn.run(FAILOVER)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert sfn.fake.count(step) == 2
    assert run.output["results"][step]["status"] == "done"
    policy = STEP_RETRY if isinstance(outcome, Raise) else LAMBDA_RETRY
    assert len(sfn.sleeps) == 1
    assert 0 <= sfn.sleeps[0] <= policy.interval_seconds  # full jitter: anywhere up to the interval


def test_transient_errors_exhaust_their_retries_with_backoff(sfn: Harness) -> None:
    sfn.fake.script("throw_switch", ServiceError("TooManyRequestsException"))
    run = sfn.run(FAILOVER)

    assert run.status == "FAILED"
    assert run.error == "throw_switch: Lambda.TooManyRequestsException"
    assert sfn.fake.count("throw_switch") == 1 + LAMBDA_RETRY.max_attempts
    assert len(sfn.sleeps) == LAMBDA_RETRY.max_attempts
    for attempt, slept in enumerate(sfn.sleeps):
        ceiling = min(LAMBDA_RETRY.interval_seconds * 2**attempt, LAMBDA_RETRY.max_delay_seconds)
        assert 0 <= slept <= ceiling
    assert "verify" not in sfn.fake.invoked


FAILING_STEPS = [
    (FAILOVER, "confirm_primary_down"),
    (FAILOVER, "scale_web_tier"),  # in a Parallel branch
    (FAILOVER, "enable_functions"),  # in a Parallel branch
    (FAILOVER, "promote_database"),  # long-running, second in its branch
    (FAILOVER, "throw_switch"),
    (FAILOVER, "verify"),  # long-running, top level
    (FAILOVER, "notify"),
    (FAILBACK, "confirm_primary_healthy"),
    (FAILBACK, "switch_writer"),
    (FAILBACK, "clear_latch"),
    (NESTED, "d"),  # in a Parallel nested in a Parallel
]


@pytest.mark.parametrize(("runbook", "step"), FAILING_STEPS, ids=[f"{r.name}-{s}" for r, s in FAILING_STEPS])
def test_step_failed_stops_the_run_naming_the_step(sfn: Harness, runbook: Runbook, step: str) -> None:
    sfn.fake.script(step, Raise("StepFailed", "replica not found"))
    run = sfn.run(runbook)

    assert run.status == "FAILED"
    assert run.error == f"{step}: StepFailed"
    assert run.failure["step"] == step
    assert run.failure["error"] == "StepFailed"
    assert f"{step}: replica not found" in run.failure["cause"]
    assert sfn.fake.count(step) == 1  # never retried
    assert sfn.sleeps == []
    never = descendants(runbook, step) & set(sfn.fake.invoked)
    assert not never, f"steps after {step} ran: {never}"
    assert run.entered("FailStateEntered")[-1] == "Failed"


def test_fencing_is_a_precondition_of_promotion(sfn: Harness) -> None:
    """fence_primary is not best effort: its failure stops the run before promote_database."""
    sfn.fake.script("fence_primary", Raise("StepFailed", "region A answers but could not be fenced"))
    run = sfn.run(FAILOVER)

    assert run.status == "FAILED"
    assert run.failure["step"] == "fence_primary"
    assert "could not be fenced" in run.failure["cause"]
    assert "promote_database" not in sfn.fake.invoked
    assert "throw_switch" not in sfn.fake.invoked


def test_best_effort_step_in_a_nested_branch_failing_is_a_warning(sfn: Harness) -> None:
    sfn.fake.script("e", ServiceError("ServiceException"))
    run = sfn.run(NESTED)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output["results"]["e"]["status"] == "warning"
    assert run.output["results"]["e"]["data"]["error"] == "Lambda.ServiceException"
    assert sfn.fake.count("e") == 1 + LAMBDA_RETRY.max_attempts
    assert "f" in sfn.fake.invoked


@pytest.mark.parametrize("step", ["promote_database", "verify"])  # inside a branch / top level
def test_long_running_step_is_polled_until_done(sfn: Harness, step: str) -> None:
    sfn.fake.script(step, "in_progress", "in_progress", "done")
    run = sfn.run(FAILOVER, poll_seconds=1, max_polls=5)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert sfn.fake.count(step) == 3
    assert run.output["results"][step]["status"] == "done"
    assert run.entered("WaitStateEntered") == [f"{step}: wait"] * 2
    assert set(sfn.fake.invoked) == set(FAILOVER.names())


@pytest.mark.parametrize("step", ["promote_database", "verify"])
def test_long_running_step_in_progress_forever_times_out(sfn: Harness, step: str) -> None:
    sfn.fake.script(step, "in_progress")
    run = sfn.run(FAILOVER, poll_seconds=1, max_polls=2)

    assert run.status == "FAILED"
    assert run.error == f"{step}: StepTimedOut"
    assert run.failure["step"] == step
    assert run.failure["cause"].startswith(f"timed out waiting for {step} after 2 polls 1 s apart")
    assert f"{step} in_progress" in run.failure["cause"]  # the handler's last detail
    assert sfn.fake.count(step) == 3  # the first call, then max_polls polls
    assert not descendants(FAILOVER, step) & set(sfn.fake.invoked)


def test_every_stop_of_the_failback_passes_through_its_rollback() -> None:
    """converges: every path of the failback's state machine that stops the run at a step (a step
    failed, a Parallel branch failed, a poll budget ran out) goes to ``restore_dr`` (which gives
    region B back its capacity while it still holds the writer) before the lock is given back (the
    failover's own on_stop is ``roll_back_fence``, never ``restore_dr``)."""
    states = build_definition(FAILBACK, FUNCTION_ARN)["States"]
    assert FAILBACK.on_stop is not None and FAILOVER.on_stop is not None
    rollback = FAILBACK.on_stop.name
    into_release = sorted(
        n for n, s in states.items() if "Release lock (failed)" in (s.get("Next"), s.get("Default"))
    )
    assert into_release == [f"{rollback}: in progress?"], into_release
    assert states[rollback]["Catch"][0]["Next"] == "Release lock (failed)"
    stops = sorted(
        n
        for n, s in states.items()
        if rollback in (s.get("Next"), s.get("Default")) and not n.startswith(f"{rollback}:")
    )
    expected = sorted(
        [f"{s.name}: failed" for s in FAILBACK.steps if not s.best_effort]
        + [f"{s.name}: timed out" for s in FAILBACK.steps if s.long_running and not s.best_effort]
    )
    assert stops == expected
    assert rollback not in build_definition(FAILOVER, FUNCTION_ARN)["States"]


@pytest.mark.parametrize("how", ["failed", "timed out"])
def test_a_failback_that_stops_runs_its_rollback_and_still_fails_naming_the_step(
    sfn: Harness, how: str
) -> None:
    """converges: the failback stopped at switch_writer (a StepFailed, or its polls ran out) invokes
    ``restore_dr`` after it, and the execution still fails naming switch_writer (the rollback keeps
    ``$.failure``)."""
    if how == "failed":
        sfn.fake.script("switch_writer", Raise("StepFailed", "switchover cancelled"))
    else:
        sfn.fake.script("switch_writer", "in_progress")
    run = sfn.run(FAILBACK, poll_seconds=1, max_polls=2)

    assert run.status == "FAILED"
    assert run.failure["step"] == "switch_writer", run.failure
    invoked = sfn.fake.invoked
    assert invoked[-1] == "restore_dr" and invoked.count("restore_dr") == 1, invoked
    assert not descendants(FAILBACK, "switch_writer") & set(invoked)
    assert sfn.fake.lock_calls[-1] == "release_lock"


def test_best_effort_long_running_step_timing_out_is_a_warning(sfn: Harness) -> None:
    runbook = Runbook(
        "probe",
        (Step("probe", long_running=True, best_effort=True), Step("after", needs=("probe",))),
    )
    sfn.fake.script("probe", "in_progress")
    run = sfn.run(runbook, poll_seconds=1, max_polls=1)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output["results"]["probe"]["status"] == "warning"
    assert "timed out waiting for probe" in run.output["results"]["probe"]["detail"]
    assert sfn.fake.invoked == ["probe", "probe", "after"]


# ------------------------------------------------------------------------------ single flight


@pytest.mark.parametrize("runbook", RUNBOOKS.values(), ids=RUNBOOKS.keys())
def test_the_lock_is_taken_first_and_released_on_every_end(runbook: Runbook) -> None:
    """single_flight: the first Task takes the lock under the execution id; a lock held goes to
    Failed without releasing (it is not this run's); every other way to Succeeded or Failed passes
    through a release."""
    defn = build_definition(runbook, FUNCTION_ARN)
    states = defn["States"]
    assert states["Init"]["Next"] == "Take lock"
    take = states["Take lock"]
    assert take["Parameters"]["Payload"]["step"] == "take_lock"
    assert take["Parameters"]["Payload"]["lockRunId.$"] == "$$.Execution.Id"
    assert take["Catch"][0]["Next"] == "take_lock: failed"
    assert states["take_lock: failed"]["Next"] == "Failed"
    into = {
        target: [n for n, s in states.items() if target in (s.get("Next"), s.get("Default"))]
        for target in ("Succeeded", "Failed")
    }
    assert into["Succeeded"] == ["Release lock"]
    assert sorted(into["Failed"]) == ["Release lock (failed)", "take_lock: failed"]
    for name in ("Release lock", "Release lock (failed)"):
        release = states[name]
        assert release["Parameters"]["Payload"]["step"] == "release_lock"
        assert release["ResultPath"] == "$.lock" and release["Catch"][0]["ResultPath"] == "$.lockError"
        assert release["Catch"][0]["Next"] == release["Next"], "a failed release must not change the outcome"


def test_a_timed_out_or_dead_invocation_is_retried_as_aws_recommends() -> None:
    """converges: a Lambda timeout (Lambda.Unknown, States.Timeout) is retried, and the Lambda
    service's errors get the retry of https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html."""
    defn = build_definition(FAILOVER, FUNCTION_ARN)
    for name, task in walk(defn):
        if task["Type"] != "Task":
            continue
        retried = {e for r in task["Retry"] if r.get("MaxAttempts", 3) > 0 for e in r["ErrorEquals"]}
        recommended = {
            "Lambda.ClientExecutionTimeoutException",
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        }
        assert recommended | {"States.Timeout", "Lambda.Unknown"} <= retried, name
        assert task["TimeoutSeconds"] >= 900, name
