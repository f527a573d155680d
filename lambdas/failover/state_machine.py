"""The Step Functions state machine of a runbook, generated from its graph (pure: no AWS).

``build_definition`` turns a ``Runbook`` into an Amazon States Language document; the DR stack
deploys it in region B next to the failover Lambda (``lambdas.failover.handler.handler``), and
``validate_definition`` checks its structure offline before anything is deployed.

Shape of a generated definition::

    Start (Choice: $.params given?) -> [No params given] -> Init     state = {"params", "results": {}}
    Take lock                     Task: the runbook lock for this execution ($$.Execution.Id), or stop
    step                          Task lambda:invoke {"runbook", "step", "params.$": "$.params"}
                                  -> $.results.<step> = {"status", "detail", "data"}
    Parallel: a, b, c             independent steps (a branch may be a chain: a -> d)
      -> Parallel: ...: merge     results of every branch merged back into $.results
    ...
    Release lock -> Succeeded     output {"params", "results", "lock", ["polls"]}

    <on_stop> -> Release lock (failed) -> Failed (Fail)   Error "<step>: <error>", Cause JSON {"step", "error", "cause"}

A runbook's ``on_stop`` step (the failover's ``roll_back_fence``) is a Task on the failure path, before
the release: it runs inside the lock whenever a step stops the run (never when the lock was not
taken); its own failure is caught (``$.onStopError``) and the run fails as it would have.

Single flight (``lambdas.failover.lock``): the first state after ``Init`` takes the runbook lock under
the execution's id (an EventBridge target cannot name an execution, so the lock is the guarantee);
a lock held by another live run goes to ``take_lock: failed`` and straight to ``Failed`` before any
step, its Cause naming the holder. Every step invocation refreshes the lock first (the Payload
carries ``lockRunId``), so a long run keeps it; one that lost it stops. Both ends of a run that took
the lock, success and every Catch path, pass through a release state (conditional on the run id;
its own failure is caught: the lock then expires).

Per step:

* every Task retries the Lambda service's transient errors (the recommended retry of "Handle Lambda
  service exceptions", https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html),
  an invocation that timed out or died (``States.Timeout``, ``Lambda.Unknown``: "function timeouts"
  and out-of-memory errors, same page; the steps are idempotent, so running one again is safe) and
  ``StepRetryable`` with exponential backoff and full jitter, never ``StepFailed``; after the retries, ``Catch`` (``States.ALL``)
  records ``$.error`` and goes to ``<step>: failed``, which sets ``$.failure`` (the step, the
  error, the cause) and goes to the scope's Fail state;
* a best-effort step's ``Catch`` goes to ``<step>: warning`` instead, which records a result with
  status ``warning`` and continues: it never fails the run;
* a long-running step loops ``<step>`` -> ``<step>: in progress?`` (Choice on its status)
  -> ``<step>: wait`` (``poll_seconds``) -> ``<step>: count poll`` (``States.MathAdd`` on
  ``$.polls.<step>.count``) -> ``<step>`` at most ``max_polls`` times, then ``<step>: timed out``
  fails the run (error ``StepTimedOut``) or, for a best-effort step, records a warning.

Independent steps run in a ``Parallel`` state. The plan is a series-parallel reading of the graph,
finer than ``Runbook.layers()``: in the failover runbook ``promote_database`` follows
``fence_primary`` in its own branch instead of waiting for the whole layer. Each branch is a small
state machine with the same per-step pattern; it ends in ``Branch done: <first step>`` (its
results) or ``Branch failed: <first step>``, whose Cause (JSON) the Parallel's ``Catch`` parses
back into ``$.failure``, so the top-level error still names the step that stopped the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.failover.exceptions import DefinitionError
from lambdas.failover.graph import Runbook, Step

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

# Errors the Lambda service raises for an invocation that may succeed if tried again.
# https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
TRANSIENT_LAMBDA_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
# An invocation that ran out of time (the Task's TimeoutSeconds, or the function's own timeout,
# which Step Functions reports as Lambda.Unknown with out-of-memory kills and crashes).
INVOCATION_LOST_ERRORS = ("States.Timeout", "Lambda.Unknown")
STEP_FAILED = "StepFailed"
STEP_RETRYABLE = "StepRetryable"
STEP_TIMED_OUT = "StepTimedOut"

SUCCEEDED = "Succeeded"
FAILED = "Failed"
TAKE_LOCK = "take_lock"
RELEASE_LOCK = "release_lock"
"""The lock's two invocations of the runbook Lambda (``lambdas.failover.handler``), not graph steps."""
RELEASE = "Release lock"
RELEASE_FAILED = "Release lock (failed)"

MAX_STATE_NAME = 80  # Step Functions' limit on a state name.
_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # used inside JSONPath and intrinsic strings
_TERMINAL_TYPES = frozenset({"Succeed", "Fail"})
_KNOWN_TYPES = frozenset({"Task", "Pass", "Choice", "Wait", "Parallel", "Map", "Succeed", "Fail"})


@dataclass(frozen=True)
class RetryPolicy:
    """How a Task retries one class of errors (Step Functions ``Retry`` entry)."""

    interval_seconds: int
    max_attempts: int
    backoff_rate: float = 2.0
    max_delay_seconds: int = 60

    def delays(self) -> list[float]:
        """The waits before each retry, without jitter (the upper bound of each full-jitter wait):
        ``interval * rate**n`` capped at ``max_delay_seconds``; ``max_attempts`` retries."""
        return [
            min(self.interval_seconds * self.backoff_rate**n, float(self.max_delay_seconds))
            for n in range(self.max_attempts)
        ]

    def retrier(self, errors: Sequence[str]) -> dict[str, Any]:
        """The ``Retry`` entry for ``errors``, with full jitter."""
        return {
            "ErrorEquals": list(errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": "FULL",
        }


# Throttling and service errors clear in seconds; a step's own retryable error (an API call that
# kept failing after the client's retries) is given longer.
LAMBDA_RETRY = RetryPolicy(interval_seconds=2, max_attempts=6)
STEP_RETRY = RetryPolicy(interval_seconds=5, max_attempts=3)
# An invocation that died is tried again, a few times: a crash loop (out of memory) is not healed by
# more, and a step that outlasts the function's timeout every time must stop the run, named.
LOST_RETRY = RetryPolicy(interval_seconds=5, max_attempts=2)

TASK_TIMEOUT_SECONDS = 960
"""A Task's TimeoutSeconds: the runbook Lambda's timeout (``budget.LAMBDA_TIMEOUT_SECONDS``, 900 s)
and a minute for the invocation itself. Step Functions' default is none (99999999 s)."""


def _retry() -> list[dict[str, Any]]:
    return [
        # Explicit, and first: a permanent failure is never retried, whatever follows.
        {"ErrorEquals": [STEP_FAILED], "MaxAttempts": 0},
        LAMBDA_RETRY.retrier(TRANSIENT_LAMBDA_ERRORS),
        LOST_RETRY.retrier(INVOCATION_LOST_ERRORS),
        STEP_RETRY.retrier([STEP_RETRYABLE]),
    ]


def _payload(runbook: str, step: str) -> dict[str, Any]:
    """What a Task sends the runbook Lambda: the step, the params, and the run id the lock is held by."""
    return {"runbook": runbook, "step": step, "params.$": "$.params", "lockRunId.$": "$$.Execution.Id"}


@dataclass(frozen=True)
class _Parallel:
    """Independent chains of steps; each branch is itself a sequence of nodes."""

    branches: tuple[tuple[_Node, ...], ...]


_Node = Step | _Parallel


def plan(runbook: Runbook) -> list[_Node]:
    """The runbook as a series-parallel sequence: steps, and Parallel nodes of independent chains.

    Every step runs after all the steps it needs. Independent parts of the graph become branches
    of a Parallel node; a step every other step either precedes or follows cuts the sequence in
    two; what remains is split at its first layer (a barrier that is correct, if not the finest).
    """
    return _plan(runbook, [s.name for s in runbook.steps])


def _plan(runbook: Runbook, names: Sequence[str]) -> list[_Node]:
    inside = set(names)
    steps = [s for s in runbook.steps if s.name in inside]  # definition order
    if len(steps) <= 1:
        return list(steps)
    needs = {s.name: set(s.needs) & inside for s in steps}

    components = _components(steps, needs)
    if len(components) > 1:
        return [_Parallel(tuple(tuple(_plan(runbook, c)) for c in components))]

    before = {s.name: _closure(s.name, needs) for s in steps}
    needed_by: dict[str, set[str]] = {s.name: set() for s in steps}
    for name, ancestors in before.items():
        for a in ancestors:
            needed_by[a].add(name)
    for s in steps:
        if len(before[s.name]) + len(needed_by[s.name]) + 1 == len(steps):
            head = [n for n in names if n in before[s.name]]
            tail = [n for n in names if n in needed_by[s.name]]
            return [*_plan(runbook, head), s, *_plan(runbook, tail)]

    first = [s.name for s in steps if not needs[s.name]]
    rest = [s.name for s in steps if needs[s.name]]
    return [*_plan(runbook, first), *_plan(runbook, rest)]


def _closure(name: str, needs: Mapping[str, set[str]]) -> set[str]:
    out: set[str] = set()
    todo = list(needs[name])
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(needs[n])
    return out


def _components(steps: Sequence[Step], needs: Mapping[str, set[str]]) -> list[list[str]]:
    """Weakly connected components, each in definition order, ordered by their first step."""
    neighbours: dict[str, set[str]] = {s.name: set(needs[s.name]) for s in steps}
    for s in steps:
        for n in needs[s.name]:
            neighbours[n].add(s.name)
    seen: set[str] = set()
    out: list[list[str]] = []
    for s in steps:
        if s.name in seen:
            continue
        group: set[str] = set()
        todo = [s.name]
        while todo:
            n = todo.pop()
            if n not in group:
                group.add(n)
                todo.extend(neighbours[n])
        seen |= group
        out.append([t.name for t in steps if t.name in group])
    return out


def _first_step(nodes: Sequence[_Node]) -> str:
    node = nodes[0]
    return node.name if isinstance(node, Step) else _first_step(node.branches[0])


def _format(prefix: str, path: str) -> str:
    """``States.Format`` of ``prefix`` followed by the value at ``path``.

    ``prefix`` is escaped for an intrinsic function's quoted string (backslash, quote, braces).
    """
    literal = re.sub(r"([\\'{}])", r"\\\1", prefix)
    return f"States.Format('{literal}{{}}', {path})"


class _Builder:
    """Emits the states of one runbook; state names are unique across the whole machine."""

    def __init__(self, runbook: Runbook, function_arn: str, poll_seconds: int, max_polls: int) -> None:
        self.runbook = runbook
        self.function_arn = function_arn
        self.poll_seconds = poll_seconds
        self.max_polls = max_polls
        self.used: set[str] = set()

    def claim(self, name: str) -> str:
        if name in self.used:
            raise ValueError(f"runbook {self.runbook.name!r}: state name {name!r} is used twice")
        self.used.add(name)
        return name

    def fresh(self, base: str) -> str:
        name, n = base, 2
        while name in self.used:
            name, n = f"{base} ({n})", n + 1
        self.used.add(name)
        return name

    def sequence(self, nodes: Sequence[_Node], next_after: str, fail: str) -> tuple[str, dict[str, Any]]:
        """States of ``nodes`` run in order, then ``next_after``; failures go to ``fail``."""
        parts: list[dict[str, Any]] = []
        entry = next_after
        for node in reversed(nodes):
            if isinstance(node, Step):
                entry, states = self.step(node, entry, fail)
            else:
                entry, states = self.parallel(node, entry, fail)
            parts.append(states)
        merged: dict[str, Any] = {}
        for states in reversed(parts):  # definition order, for people reading the JSON
            merged.update(states)
        return entry, merged

    def task(self, step: Step, next_state: str) -> dict[str, Any]:
        if step.best_effort:
            catch = {"ErrorEquals": ["States.ALL"], "ResultPath": f"$.results.{step.name}"}
            catch["Next"] = f"{step.name}: warning"
        else:
            catch = {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{step.name}: failed"}
        return {
            "Type": "Task",
            "Comment": step.description or step.name,
            "Resource": LAMBDA_INVOKE,
            "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
            "Parameters": {
                "FunctionName": self.function_arn,
                "Payload": _payload(self.runbook.name, step.name),
            },
            "ResultSelector": {
                "status.$": "$.Payload.status",
                "detail.$": "$.Payload.detail",
                "data.$": "$.Payload.data",
            },
            "ResultPath": f"$.results.{step.name}",
            "Retry": _retry(),
            "Catch": [catch],
            "Next": next_state,
        }

    def step(self, step: Step, next_after: str, fail: str) -> tuple[str, dict[str, Any]]:
        s = step.name
        result = f"$.results.{s}"
        states: dict[str, Any] = {}
        entry = s
        if step.long_running:
            entry = self.claim(f"{s}: init polls")
            states[entry] = {
                "Type": "Pass",
                "Comment": f"Start counting the polls of {s} (at most {self.max_polls})",
                "Result": {"count": 0},
                "ResultPath": f"$.polls.{s}",
                "Next": s,
            }
        check = f"{s}: in progress?"
        states[self.claim(s)] = self.task(step, check if step.long_running else next_after)
        if step.long_running:
            polls = f"$.polls.{s}.count"
            waited = f"after {self.max_polls} polls {self.poll_seconds} s apart"
            states[self.claim(check)] = {
                "Type": "Choice",
                "Comment": f"Poll {s} every {self.poll_seconds} s while it answers in_progress",
                "Choices": [
                    {
                        "And": [
                            {"Variable": f"{result}.status", "StringEquals": "in_progress"},
                            {"Variable": polls, "NumericGreaterThanEquals": self.max_polls},
                        ],
                        "Next": f"{s}: timed out",
                    },
                    {"Variable": f"{result}.status", "StringEquals": "in_progress", "Next": f"{s}: wait"},
                ],
                "Default": next_after,
            }
            states[self.claim(f"{s}: wait")] = {
                "Type": "Wait",
                "Seconds": self.poll_seconds,
                "Next": f"{s}: count poll",
            }
            states[self.claim(f"{s}: count poll")] = {
                "Type": "Pass",
                "Parameters": {"count.$": f"States.MathAdd({polls}, 1)"},
                "ResultPath": f"$.polls.{s}",
                "Next": s,
            }
            if step.best_effort:
                detail = f"timed out waiting for {s} {waited}; skipped (best effort). Last detail: "
                states[self.claim(f"{s}: timed out")] = {
                    "Type": "Pass",
                    "Comment": f"{s} is best effort: a time-out is a warning",
                    "Parameters": {
                        "status": "warning",
                        "detail.$": _format(detail, f"{result}.detail"),
                        "data.$": f"{result}.data",
                    },
                    "ResultPath": result,
                    "Next": next_after,
                }
            else:
                cause = f"timed out waiting for {s} {waited}. Last detail: "
                states[self.claim(f"{s}: timed out")] = {
                    "Type": "Pass",
                    "Parameters": {
                        "step": s,
                        "error": STEP_TIMED_OUT,
                        "cause.$": _format(cause, f"{result}.detail"),
                    },
                    "ResultPath": "$.failure",
                    "Next": fail,
                }
        if step.best_effort:
            detail = f"{s} failed and was skipped (best effort): "
            states[self.claim(f"{s}: warning")] = {
                "Type": "Pass",
                "Comment": f"{s} is best effort: its failure is a warning and the run goes on",
                "Parameters": {
                    "status": "warning",
                    "detail.$": _format(detail, f"{result}.Error"),
                    "data": {"error.$": f"{result}.Error", "cause.$": f"{result}.Cause"},
                },
                "ResultPath": result,
                "Next": next_after,
            }
        else:
            states[self.claim(f"{s}: failed")] = {
                "Type": "Pass",
                "Comment": f"Record that the run stopped at {s}",
                "Parameters": {"step": s, "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
                "ResultPath": "$.failure",
                "Next": fail,
            }
        return entry, states

    def parallel(self, node: _Parallel, next_after: str, fail: str) -> tuple[str, dict[str, Any]]:
        labels = [_first_step(b) for b in node.branches]
        base = "Parallel: " + ", ".join(labels)
        if len(base) > MAX_STATE_NAME - len(": merge"):
            base = f"Parallel: {labels[0]} and {len(labels) - 1} more"
        name = self.fresh(base)
        merge, failed = self.claim(f"{name}: merge"), self.claim(f"{name}: failed")
        merged = "$.branches[0]"
        for i in range(1, len(node.branches)):
            merged = f"States.JsonMerge({merged}, $.branches[{i}], false)"
        states: dict[str, Any] = {
            name: {
                "Type": "Parallel",
                "Comment": "Independent steps, run at the same time: " + ", ".join(labels),
                "Branches": [self.branch(b) for b in node.branches],
                "ResultPath": "$.branches",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": failed}],
                "Next": merge,
            },
            merge: {
                "Type": "Pass",
                "Comment": "Each branch returns every result so far: merge them back into $.results",
                "Parameters": {"params.$": "$.params", "results.$": merged},
                "ResultPath": "$",
                "Next": next_after,
            },
            failed: {
                "Type": "Pass",
                "Comment": "A branch failed: its Cause is the failure record (which step, what error)",
                "Parameters": {
                    "params.$": "$.params",
                    "results.$": "$.results",
                    "error.$": "$.error",
                    "failure.$": "States.StringToJson($.error.Cause)",
                },
                "ResultPath": "$",
                "Next": fail,
            },
        }
        return name, states

    def branch(self, nodes: Sequence[_Node]) -> dict[str, Any]:
        label = _first_step(nodes)
        done, fail = self.fresh(f"Branch done: {label}"), self.fresh(f"Branch failed: {label}")
        entry, states = self.sequence(nodes, done, fail)
        states[done] = {"Type": "Succeed", "OutputPath": "$.results"}
        if _goes_to(states, fail):  # not when every step of the branch is best effort
            states[fail] = _fail_state("The branch stopped; its Cause carries the failure to the Parallel")
        return {"Comment": f"Branch starting with {label}", "StartAt": entry, "States": states}


def _goes_to(states: Mapping[str, Any], target: str) -> bool:
    return any(target in _targets(state) for state in states.values())


def _fail_state(comment: str) -> dict[str, Any]:
    return {
        "Type": "Fail",
        "Comment": comment,
        "ErrorPath": "States.Format('{}: {}', $.failure.step, $.failure.error)",
        "CausePath": "States.JsonToString($.failure)",
    }


def _on_stop_states(
    runbook: Runbook, function_arn: str, poll_seconds: int, max_polls: int, builder: _Builder
) -> dict[str, Any]:
    """The failure path's undo: ``<on_stop>`` (polled while it answers in_progress, at most
    ``max_polls`` times), then ``Release lock (failed)``. Its own failure or time-out is caught and the
    run fails as it would have: ``$.failure`` still names the step that stopped it."""
    assert runbook.on_stop is not None
    s = runbook.on_stop.name
    check, wait, count = f"{s}: in progress?", f"{s}: wait", f"{s}: count poll"
    for name in (s, check, wait, count):
        builder.claim(name)
    polls = f"$.onStopPolls.{s}.count"
    return {
        s: {
            "Type": "Task",
            "Comment": runbook.on_stop.description or s,
            "Resource": LAMBDA_INVOKE,
            "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
            "Parameters": {"FunctionName": function_arn, "Payload": _payload(runbook.name, s)},
            "ResultSelector": {
                "status.$": "$.Payload.status",
                "detail.$": "$.Payload.detail",
                "data.$": "$.Payload.data",
            },
            "ResultPath": f"$.results.{s}",
            "Retry": _retry(),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.onStopError", "Next": RELEASE_FAILED}],
            "Next": check,
        },
        check: {
            "Type": "Choice",
            "Comment": f"Poll {s} every {poll_seconds} s while it answers in_progress (at most {max_polls})",
            "Choices": [
                {
                    "And": [
                        {"Variable": f"$.results.{s}.status", "StringEquals": "in_progress"},
                        {"Not": {"Variable": polls, "IsPresent": True}},
                    ],
                    "Next": wait,
                },
                {
                    "And": [
                        {"Variable": f"$.results.{s}.status", "StringEquals": "in_progress"},
                        {"Variable": polls, "NumericLessThan": max_polls},
                    ],
                    "Next": wait,
                },
            ],
            "Default": RELEASE_FAILED,
        },
        wait: {"Type": "Wait", "Seconds": poll_seconds, "Next": count},
        count: {
            "Type": "Choice",
            "Comment": "Count the poll (the counter starts at 1 on the first)",
            "Choices": [{"Variable": polls, "IsPresent": True, "Next": f"{count}: add"}],
            "Default": f"{count}: first",
        },
        builder.claim(f"{count}: first"): {
            "Type": "Pass",
            "Result": {"count": 1},
            "ResultPath": f"$.onStopPolls.{s}",
            "Next": s,
        },
        builder.claim(f"{count}: add"): {
            "Type": "Pass",
            "Parameters": {"count.$": f"States.MathAdd({polls}, 1)"},
            "ResultPath": f"$.onStopPolls.{s}",
            "Next": s,
        },
    }


def build_definition(
    runbook: Runbook, function_arn: str, *, poll_seconds: int = 30, max_polls: int = 60
) -> dict[str, Any]:
    """The Amazon States Language definition that runs ``runbook`` through ``function_arn``.

    Args:
        runbook: the graph of steps (``lambdas.failover.graph``).
        function_arn: the failover Lambda, invoked with ``{"runbook", "step", "params"}``.
        poll_seconds: wait between two polls of a long-running step (Wait state; at least 1).
        max_polls: polls of a long-running step before the run stops as timed out (at least 1).

    The execution input is ``{"params": {...}}`` (``params`` defaults to ``{}``); the output is
    ``{"params", "results": {<step>: {"status", "detail", "data"}}}`` plus ``polls``, the poll
    counters of long-running steps outside Parallel branches. See the module docstring.
    """
    if poll_seconds < 1:
        raise ValueError(f"poll_seconds must be at least 1 (a Wait state's minimum), got {poll_seconds}")
    if max_polls < 1:
        raise ValueError(f"max_polls must be at least 1, got {max_polls}")
    if not function_arn:
        raise ValueError("function_arn must name the failover Lambda")
    for name in [*runbook.names(), *([runbook.on_stop.name] if runbook.on_stop else [])]:
        if not _STEP_NAME.match(name):
            raise ValueError(
                f"runbook {runbook.name!r}: step name {name!r} must match {_STEP_NAME.pattern}: "
                "it is used in JSONPath expressions"
            )

    builder = _Builder(runbook, function_arn, poll_seconds, max_polls)
    for name in ("Start", "No params given", "Init", "Take lock", f"{TAKE_LOCK}: failed"):
        builder.claim(name)
    for name in (RELEASE, RELEASE_FAILED, SUCCEEDED, FAILED):
        builder.claim(name)
    stopped = RELEASE_FAILED
    if runbook.on_stop is not None:
        stopped = runbook.on_stop.name
    entry, states = builder.sequence(plan(runbook), RELEASE, stopped)
    if runbook.on_stop is not None and _goes_to(states, stopped):
        states.update(_on_stop_states(runbook, function_arn, poll_seconds, max_polls, builder))

    def lock_task(step: str, comment: str, next_state: str, catch: dict[str, Any]) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Comment": comment,
            "Resource": LAMBDA_INVOKE,
            "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
            "Parameters": {"FunctionName": function_arn, "Payload": _payload(runbook.name, step)},
            "ResultSelector": {
                "status.$": "$.Payload.status",
                "detail.$": "$.Payload.detail",
                "data.$": "$.Payload.data",
            },
            "ResultPath": "$.lock",
            "Retry": _retry(),
            "Catch": [{"ErrorEquals": ["States.ALL"], **catch}],
            "Next": next_state,
        }

    def release(next_state: str) -> dict[str, Any]:
        # A release that fails is caught and the run ends as it would have: the lock then expires.
        comment = "Give the runbook lock back (only if this execution still holds it)"
        return lock_task(RELEASE_LOCK, comment, next_state, {"ResultPath": "$.lockError", "Next": next_state})

    return {
        "Comment": (
            f"pilotlight {runbook.name} runbook, steps: " + ", ".join(runbook.names()) + ". Generated by "
            "lambdas.failover.state_machine from lambdas.failover.graph; do not edit by hand."
        ),
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Choice",
                "Comment": "An execution started by an alarm's event has no params: use none",
                "Choices": [{"Variable": "$.params", "IsPresent": True, "Next": "Init"}],
                "Default": "No params given",
            },
            "No params given": {"Type": "Pass", "Result": {}, "ResultPath": "$.params", "Next": "Init"},
            "Init": {
                "Type": "Pass",
                "Comment": "The run's state: its params, and each step's result as it finishes",
                "Parameters": {"params.$": "$.params", "results": {}},
                "ResultPath": "$",
                "Next": "Take lock",
            },
            "Take lock": lock_task(
                TAKE_LOCK,
                "Single flight: take the runbook lock for this execution, or stop before any change",
                entry,
                {"ResultPath": "$.error", "Next": f"{TAKE_LOCK}: failed"},
            ),
            f"{TAKE_LOCK}: failed": {
                "Type": "Pass",
                "Comment": "Another run holds the lock (or it could not be taken): nothing was changed",
                "Parameters": {"step": TAKE_LOCK, "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
                "ResultPath": "$.failure",
                "Next": FAILED,
            },
            **states,
            RELEASE: release(SUCCEEDED),
            # Not when every step is best effort: Step Functions refuses unreachable states.
            **({RELEASE_FAILED: release(FAILED)} if _goes_to(states, RELEASE_FAILED) else {}),
            SUCCEEDED: {"Type": "Succeed", "Comment": f"The {runbook.name} runbook finished"},
            FAILED: _fail_state("The run stopped: Error '<step>: <error>', Cause the failure record (JSON)"),
        },
    }


def to_json(definition: Mapping[str, Any]) -> str:
    """The definition as the JSON string Step Functions takes (stable key order)."""
    return json.dumps(definition, indent=2)


# --------------------------------------------------------------------------- offline validation


def validate_definition(defn: Mapping[str, Any]) -> None:
    """Check ``defn`` offline; raise ``DefinitionError`` naming every problem found.

    Checks, in the top level and in every Parallel branch: ``StartAt`` and every ``Next``,
    ``Default`` and ``Catch`` target exist in that scope; every state but Choice, Succeed and Fail
    has exactly one of ``Next`` and ``End``; every state is reachable and can reach an end; each
    scope has exactly one way to finish successfully (one Succeed state or ``End``); every loop
    goes through a Wait state; every Task has a ``Retry`` that never retries ``StepFailed`` and a
    ``Catch`` on ``States.ALL``; state names are unique in the whole machine and at most 80
    characters; the document is JSON.
    """
    problems = definition_problems(defn)
    if problems:
        raise DefinitionError(problems)


def definition_problems(defn: Mapping[str, Any]) -> list[str]:
    """Every structural problem of ``defn`` (empty when it is sound). See ``validate_definition``."""
    problems: list[str] = []
    try:
        json.dumps(defn)
    except (TypeError, ValueError) as exc:
        problems.append(f"not JSON-serialisable: {exc}")
    _check_scope(defn, "top level", {}, problems)
    return problems


def _targets(state: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if isinstance(state.get("Next"), str):
        out.append(state["Next"])
    if isinstance(state.get("Default"), str):
        out.append(state["Default"])
    for rule in state.get("Choices") or []:
        if isinstance(rule, Mapping) and isinstance(rule.get("Next"), str):
            out.append(rule["Next"])
    for catcher in state.get("Catch") or []:
        if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
            out.append(catcher["Next"])
    return out


def _reach(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(edges.get(n, ()))
    return seen


def _check_scope(scope: Mapping[str, Any], where: str, seen: dict[str, str], problems: list[str]) -> None:
    states = scope.get("States")
    if not isinstance(states, Mapping) or not states:
        problems.append(f"{where}: no States")
        return
    start = scope.get("StartAt")
    if start not in states:
        problems.append(f"{where}: StartAt {start!r} is not a state")

    edges: dict[str, list[str]] = {}
    ends: set[str] = set()
    success_exits: list[str] = []
    for name, state in states.items():
        here = f"{where}: state {name!r}"
        if name in seen:
            problems.append(f"{here}: name already used in {seen[name]}")
        seen[name] = where
        if len(name) > MAX_STATE_NAME:
            problems.append(f"{here}: name longer than {MAX_STATE_NAME} characters")
        if not isinstance(state, Mapping):
            problems.append(f"{here}: not an object")
            continue
        typ = state.get("Type")
        if typ not in _KNOWN_TYPES:
            problems.append(f"{here}: unknown Type {typ!r}")
            continue
        edges[name] = _targets(state)
        for target in edges[name]:
            if target not in states:
                problems.append(f"{here}: goes to {target!r}, which is not a state of the {where}")

        has_next, has_end = "Next" in state, state.get("End") is True
        if typ in _TERMINAL_TYPES:
            if has_next or "End" in state:
                problems.append(f"{here}: a {typ} state takes neither Next nor End")
            ends.add(name)
            if typ == "Succeed":
                success_exits.append(name)
        elif typ == "Choice":
            if has_next or "End" in state:
                problems.append(f"{here}: a Choice state takes neither Next nor End")
            rules = state.get("Choices")
            if not isinstance(rules, list) or not rules:
                problems.append(f"{here}: Choice without Choices")
            else:
                for i, rule in enumerate(rules):
                    if not isinstance(rule, Mapping) or not isinstance(rule.get("Next"), str):
                        problems.append(f"{here}: Choices[{i}] has no Next")
        elif has_next == has_end:
            problems.append(f"{here}: needs exactly one of Next and End")
        elif has_end:
            ends.add(name)
            success_exits.append(name)

        if typ == "Task":
            _check_task(here, state, problems)
        elif typ == "Wait":
            given = [k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in state]
            if len(given) != 1:
                problems.append(f"{here}: a Wait state needs exactly one of Seconds/Timestamp(Path)")
        elif typ == "Parallel":
            branches = state.get("Branches")
            if not isinstance(branches, list) or not branches:
                problems.append(f"{here}: Parallel without Branches")
            else:
                for i, branch in enumerate(branches):
                    if isinstance(branch, Mapping):
                        _check_scope(branch, f"{where} > {name} branch {i}", seen, problems)
                    else:
                        problems.append(f"{here}: branch {i} is not an object")
        if "Catch" in state:
            _check_error_list(here, "Catch", state["Catch"], problems)

    if isinstance(start, str) and start in states:
        unreachable = [n for n in states if n not in _reach([start], edges)]
        if unreachable:
            problems.append(f"{where}: unreachable states {unreachable}")
    reverse: dict[str, list[str]] = {n: [] for n in states}
    for n, targets in edges.items():
        for t in targets:
            if t in reverse:
                reverse[t].append(n)
    stuck = [n for n in states if n not in _reach(ends, reverse)]
    if stuck:
        problems.append(f"{where}: states that can never reach an end {stuck}")
    if len(success_exits) != 1:
        problems.append(f"{where}: needs exactly one way to succeed (Succeed or End), found {success_exits}")
    cycle = _cycle_without_wait(states, edges)
    if cycle:
        problems.append(f"{where}: loop without a Wait state: {' -> '.join(cycle)}")


def _check_task(here: str, state: Mapping[str, Any], problems: list[str]) -> None:
    retry = state.get("Retry")
    if not isinstance(retry, list) or not retry:
        problems.append(f"{here}: Task without Retry")
    else:
        _check_error_list(here, "Retry", retry, problems)
        for retrier in retry:
            errors = retrier.get("ErrorEquals", []) if isinstance(retrier, Mapping) else []
            if {STEP_FAILED, "States.ALL", "States.TaskFailed"} & set(errors):
                if retrier.get("MaxAttempts", 3) != 0:
                    problems.append(f"{here}: Retry would retry {STEP_FAILED} (via {errors})")
                break
    catch = state.get("Catch")
    if not isinstance(catch, list) or not catch:
        problems.append(f"{here}: Task without Catch")
    elif not any(isinstance(c, Mapping) and "States.ALL" in c.get("ErrorEquals", []) for c in catch):
        problems.append(f"{here}: Catch does not end with States.ALL: a failure would escape the runbook")


def _check_error_list(here: str, field: str, entries: Any, problems: list[str]) -> None:
    if not isinstance(entries, list):
        problems.append(f"{here}: {field} is not a list")
        return
    for i, entry in enumerate(entries):
        errors = entry.get("ErrorEquals") if isinstance(entry, Mapping) else None
        if not isinstance(errors, list) or not errors:
            problems.append(f"{here}: {field}[{i}] has no ErrorEquals")
        elif "States.ALL" in errors and (len(errors) != 1 or i != len(entries) - 1):
            problems.append(f"{here}: {field}[{i}]: States.ALL must be alone and last")


def _cycle_without_wait(states: Mapping[str, Any], edges: Mapping[str, list[str]]) -> list[str]:
    """A cycle that passes through no Wait state (a busy loop), or [] when there is none."""

    def is_wait(n: str) -> bool:
        state = states.get(n)
        return isinstance(state, Mapping) and state.get("Type") == "Wait"

    colour: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(n: str) -> list[str]:
        colour[n] = 1
        path.append(n)
        for t in edges.get(n, []):
            if t not in states or is_wait(t):
                continue
            if colour.get(t) == 1:
                return [*path[path.index(t) :], t]
            if t not in colour:
                found = visit(t)
                if found:
                    return found
        path.pop()
        colour[n] = 2
        return []

    for n in states:
        if n not in colour and not is_wait(n):
            found = visit(n)
            if found:
                return found
    return []
