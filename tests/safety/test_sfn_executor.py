"""The checker's Step Functions executor (``tests/safety/sfn_executor.py``): the generated state
machine, run by moto's interpreter with the real handler behind its Lambda tasks, on the emulator's
virtual clock.

Region A is dark in every scenario, so the failover is the unplanned one: promote region B's
replica (the emulator takes ``Timings.promote_seconds`` for it) while the state machine polls.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import pytest

from automation.emulator.aws import Emulator
from automation.emulator.clock import VirtualClock
from lambdas.failover import darkness, executor
from lambdas.failover.clients import Clients
from tests.lambdas.failover.faults import Fault, throttling_code
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Crash, Deployment, _database_keys
from tests.safety.sfn_executor import (
    CRASH_ERROR,
    Outcome,
    _Lambda,
    _Turns,
    _verdict,
    last_execution,
    run_state_machine,
)

Deploy = Callable[..., Deployment]
PARAMS = {"reason": "checker"}

_apps = itertools.count(1)


def region_a_dark(d: Deployment) -> None:
    """Clients have written for a while; then region A stops answering."""
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)


def dr_database(d: Deployment) -> str:
    return _database_keys(d.world)[1]


@contextmanager
def own_emulator(mode: str = "rds-replica") -> Iterator[Deployment]:
    """A deployment alone in an emulator of its own (``Emulator.apps`` holds one app per region)."""
    with Emulator().installed() as emulator:
        d = Deployment.build(mode, app=f"sfn{next(_apps)}", emulator=emulator)
        try:
            yield d
        finally:
            d.close()


def aws_state(d: Deployment) -> dict[str, Any]:
    """What the runbook changed, judged from AWS and the emulator, with the app's name taken out."""
    world, emu = d.world, d.emulator
    snap = world.snapshot()
    latch = snap.pop("latch")
    switch = snap.pop("switch")
    state = {
        **snap,
        "latch": {k: latch.get(k) for k in ("state", "runbook")},
        "switch": switch[-1] if switch else None,
        "writer": "B" if d.writer() == dr_database(d) else "A",
        "serving": {r: emu.serving(r) for r in (REGION_A, REGION_B)},
        "dbWritable": {r: emu.database_writable(r) is not None for r in (REGION_A, REGION_B)},
    }
    return _anonymous(state, world.app)


def _anonymous(value: Any, app: str) -> Any:
    if isinstance(value, str):
        return value.replace(app, "<app>")
    if isinstance(value, dict):
        return {_anonymous(k, app): _anonymous(v, app) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_anonymous(v, app) for v in value]
    return value


# ------------------------------------------------------------------------------ pure: turns and verdicts


def test_turns_go_to_the_line_due_first_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    turns = _Turns(clock)
    woke: list[tuple[str, float]] = []
    stopped = threading.Event()

    def line(name: str, naps: list[float], alive: Callable[[], bool] = lambda: True) -> Callable[[], None]:
        fiber = turns.spawn()  # by the holder, as moto's Parallel state starts its branches

        def run() -> None:
            turns.enter(fiber)
            for nap in naps:
                turns.sleep(nap, alive)
                woke.append((name, clock.monotonic()))
            turns.leave(fiber)

        return run

    def execution() -> None:
        turns.enter(root)
        for run in (line("a", [30, 30]), line("b", [45]), line("gone", [600], lambda: not stopped.is_set())):
            threading.Thread(target=run, daemon=True).start()
        turns.sleep(100, lambda: True)
        woke.append(("execution", clock.monotonic()))
        stopped.set()  # the branch still asleep is stopped: its turn comes at once, taking no time
        turns.sleep(1, lambda: True)
        woke.append(("execution", clock.monotonic()))
        turns.leave(root)

    root = turns.root = turns.spawn()
    threading.Thread(target=execution, daemon=True).start()
    turns.start()

    assert turns.finished.wait(10), "the turns never finished"
    assert turns.error is None
    assert woke == [("a", 30), ("b", 45), ("a", 60), ("execution", 100), ("gone", 100), ("execution", 101)]


RESULT = {"executionArn": "arn:aws:states:us-west-2:123456789012:execution:m:x"}


def failed(step: str, error: str, cause: str) -> dict[str, Any]:
    record = {"step": step, "error": error, "cause": cause}
    return {**RESULT, "status": "FAILED", "error": f"{step}: {error}", "cause": json.dumps(record)}


def lambda_error(error_type: str, message: str) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []})


DIED = "promote_database: invocation sfn-3 died (crashed after PromoteReadReplica)"
VERDICTS = {
    "succeeded": ({**RESULT, "status": "SUCCEEDED"}, [], (Outcome.DONE, "")),
    "step failed": (
        failed("verify", "StepFailed", lambda_error("StepFailed", "verify: region B not serving")),
        [],
        (Outcome.STOPPED, "verify: region B not serving"),
    ),
    "polls ran out": (
        failed("verify", "StepTimedOut", "timed out waiting for verify after 60 polls 30 s apart"),
        [],
        (Outcome.STOPPED, "verify: StepTimedOut: timed out waiting for verify after 60 polls 30 s apart"),
    ),
    "invocation died": (
        failed("promote_database", CRASH_ERROR, lambda_error(CRASH_ERROR, "Runtime exited")),
        [DIED],
        (Outcome.CRASHED, f"{DIED}; the execution failed with promote_database: {CRASH_ERROR}"),
    ),
    "died in a best-effort step": (
        {**RESULT, "status": "SUCCEEDED"},
        [DIED],
        (Outcome.DONE, f"{DIED} (best effort: the run went on)"),
    ),
    "died, then another step failed": (
        failed("verify", "StepFailed", lambda_error("StepFailed", "verify: region B not serving")),
        [DIED],
        (Outcome.STOPPED, "verify: region B not serving"),
    ),
    "aborted": (
        {**RESULT, "status": "ABORTED", "error": "Operator", "cause": "stopped by hand"},
        [],
        (Outcome.STOPPED, "ABORTED: Operator: stopped by hand"),
    ),
    "timed out": ({**RESULT, "status": "TIMED_OUT"}, [], (Outcome.STOPPED, "TIMED_OUT: None")),
}


@pytest.mark.parametrize("case", VERDICTS, ids=VERDICTS.keys())
def test_an_execution_end_maps_to_the_model_outcome(case: str) -> None:
    described, crashes, expected = VERDICTS[case]
    assert _verdict(described, crashes) == expected


def die() -> None:
    raise Crash("crashed after PromoteReadReplica")


def bug() -> None:
    raise KeyError("DBInstances")


INVOCATIONS = {
    "the process dies": (die, {"runbook": "failover", "step": "promote_database"}, CRASH_ERROR),
    "the code raises": (bug, {"runbook": "failover", "step": "verify"}, "KeyError"),
    "a malformed event": (None, {"runbook": "failover", "step": "nope"}, None),
}


@pytest.mark.parametrize("case", INVOCATIONS, ids=INVOCATIONS.keys())
def test_the_lambda_answers_as_the_python_runtime_does(case: str) -> None:
    crash, event, error_type = INVOCATIONS[case]
    turns = _Turns(VirtualClock())
    lam = _Lambda(cast(Any, SimpleNamespace()), cast(Any, None), crash, turns)

    answer = lam({"FunctionName": "fn", "Payload": json.dumps(event).encode()}, REGION_B, None)

    assert answer["StatusCode"] == 200
    if error_type is None:  # the handler's own refusal, before any AWS call: a normal answer
        assert "FunctionError" not in answer and answer["Payload"]["statusCode"] == 400
        return
    assert answer["FunctionError"] == "Unhandled"
    assert answer["Payload"]["errorType"] == error_type  # the error name Retry and Catch match
    assert lam.crashes == (
        ["promote_database: invocation sfn-1 died (crashed after PromoteReadReplica)"] if crash is die else []
    )


# ------------------------------------------------------------------------------ executed by moto


def test_failover_runs_to_done_through_the_state_machine_on_virtual_time(deploy: Deploy) -> None:
    d = deploy()
    region_a_dark(d)
    # Region B's Auto Scaling throttles long enough to exhaust one invocation's botocore retries:
    # scale_web_tier answers StepRetryable once and the state machine's Retry calls it again.
    d.add_fault(
        Fault(service="auto-scaling", region=REGION_B, code=throttling_code("auto-scaling"), times=10)
    )
    key = dr_database(d)
    assert not d.emulator.accepts_writes(key), f"{key} takes writes before any failover"
    virtual_start, wall_start = d.emulator.clock.now(), time.monotonic()

    outcome, detail = run_state_machine(d, "failover", PARAMS)

    wall = time.monotonic() - wall_start
    virtual = (d.emulator.clock.now() - virtual_start).total_seconds()
    assert (outcome, detail) == (Outcome.DONE, ""), detail
    assert d.emulator.accepts_writes(key), (
        f"region B's database {key} does not take writes after the failover"
    )
    assert d.writer() == key, f"AWS last made {d.writer()} the writer, not region B's {key}"
    assert virtual >= d.emulator.timings.promote_seconds, f"only {virtual:.0f} virtual seconds passed"
    assert wall < 20, f"the execution took {wall:.1f} s of real time"
    described, events = last_execution(d)
    assert described["status"] == "SUCCEEDED"
    polls = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "WaitStateEntered"]
    assert polls and set(polls) <= {"fence_primary: wait", "promote_database: wait", "verify: wait"}, polls
    # Region A dark: the fence confirms it for DARK_CONFIRM_SECONDS of polls before it is left pending (B33-3).
    fence_polls = polls.count("fence_primary: wait")
    assert fence_polls * 30 >= darkness.DARK_CONFIRM_SECONDS, f"the fence was polled {fence_polls} times"
    assert len(polls) * 30 <= virtual, "each Wait state let its 30 s pass on the virtual clock"
    failed = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failed == ["StepRetryable"], failed
    assert json.loads(described["output"])["results"]["scale_web_tier"]["status"] == "done"
    # The Parallel branches take turns in a fixed order (fence_primary's branch first); while the fence
    # confirms region A dark (it answers in_progress and is polled), the other branches go on. The latch
    # follows the fence's last poll; the switch and then the promotion wait for every branch (the switch
    # leads the writer move).
    tasks = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "TaskStateEntered"]
    first = {t: tasks.index(t) for t in tasks}
    last = {t: len(tasks) - 1 - tasks[::-1].index(t) for t in tasks}
    assert tasks[:3] == ["Take lock", "confirm_primary_down", "fence_primary"], tasks
    assert last["fence_primary"] < first["write_latch"] < first["throw_switch"], tasks
    assert max(last["scale_web_tier"], last["enable_functions"]) < first["throw_switch"], tasks
    assert [t for i, t in enumerate(tasks) if i > last["throw_switch"] and tasks[i - 1] != t] == [
        "promote_database",
        "verify",
        "notify",
        "Release lock",
    ], tasks
    assert not d.judge(after_run=True), [str(v) for v in d.violations]


def test_both_executors_leave_the_same_aws_state(moto_world: None) -> None:
    states: dict[str, dict[str, Any]] = {}
    with own_emulator() as d:
        region_a_dark(d)
        clients = Clients.for_context(d.ctx, d.session, clock=d.emulator.clock)
        report = executor.run("failover", d.ctx, clients, params=PARAMS, max_workers=1)
        assert report.outcome == "done", report.reason
        states["in-process"] = aws_state(d)
    with own_emulator() as d:
        region_a_dark(d)
        outcome, detail = run_state_machine(d, "failover", PARAMS)
        assert outcome == Outcome.DONE, detail
        states["step functions"] = aws_state(d)

    assert states["step functions"] == states["in-process"]
    assert states["in-process"]["writer"] == "B"
    assert states["in-process"]["latch"] == {"state": "active", "runbook": "failover"}


def test_a_lambda_that_dies_mid_step_is_retried_and_the_run_converges(deploy: Deploy) -> None:
    """converges: an invocation that dies (a Lambda timeout, an OOM kill: ``Lambda.Unknown``) is
    invoked again by the same execution (issue 10: "a Lambda timeout is retried"); the step is
    idempotent, so the run finishes, and gives its lock back."""
    d = deploy()
    region_a_dark(d)
    key = dr_database(d)
    # Region A is dark: fence_primary gets no answer and journals the pending fence, write_latch
    # writes the latch (the latch leads), the switch is thrown, and the promotion's call dies.
    d.crash_on = frozenset({"PromoteReadReplica"})

    outcome, detail = run_state_machine(d, "failover", PARAMS)

    assert d.crash_on is None, "the crash point was never reached"
    assert outcome == Outcome.DONE, detail
    assert detail.startswith("promote_database: invocation"), detail
    described, events = last_execution(d)
    assert described["status"] == "SUCCEEDED"
    failed = [e for e in events if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == [CRASH_ERROR]
    assert d.writer() == key and d.emulator.accepts_writes(key), "the run did not make region B the writer"
    assert d.emulator.serving(REGION_B), "region B does not serve after the run"
    table = d.ctx.lock_table_name
    item = d.world.client("dynamodb", REGION_B).get_item(TableName=table, Key={"pk": {"S": "runbook"}})
    assert "Item" not in item, "the execution did not give the runbook lock back"
    assert not d.judge(after_run=True), [str(v) for v in d.violations]


def test_a_regression_that_reshapes_the_graph_reaches_the_state_machine(moto_world: None) -> None:
    """The Step Functions executor runs the runbook's graph as it is now: with
    ``Regression.SWITCH_BEFORE_LATCH`` on (the old failover graph, ``tests.safety.regressions``) the
    machine it starts has the old graph's definition, even after the fixed graph's machine was
    registered in the same moto (the seed finder and the CI proofs run both in one process). A
    machine cached by runbook name alone kept the fixed graph: the regression never reached it."""
    from automation.emulator.aws import ACCOUNT
    from lambdas.failover import graph
    from lambdas.failover.regressions import Regression
    from lambdas.failover.state_machine import build_definition, to_json
    from tests.lambdas.failover.harness import new_session
    from tests.safety.regressions import regressed
    from tests.safety.sfn_executor import FUNCTION_NAME, _state_machine

    client = new_session().client("stepfunctions", region_name=REGION_B)
    function_arn = f"arn:aws:lambda:{REGION_B}:{ACCOUNT}:function:{FUNCTION_NAME}"

    def definition(arn: str) -> Any:
        return json.loads(client.describe_state_machine(stateMachineArn=arn)["definition"])

    fixed = _state_machine(client, REGION_B, "failover")
    assert definition(fixed) == json.loads(to_json(build_definition(graph.FAILOVER, function_arn)))
    with regressed(Regression.SWITCH_BEFORE_LATCH):
        old = _state_machine(client, REGION_B, "failover")
        expected = json.loads(to_json(build_definition(graph.RUNBOOKS["failover"], function_arn)))
    assert expected != definition(fixed), "the regression does not change the graph (nothing to test)"
    assert definition(old) == expected, "the state machine started under the regression runs the fixed graph"
