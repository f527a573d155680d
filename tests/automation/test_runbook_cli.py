"""``python -m automation failover|failback|status`` end to end against a moto server started here."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from automation import __main__ as main_module
from automation import runbook_cli
from automation.emulator import patch_moto
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.graph import FAILOVER, RUNBOOKS
from tests.lambdas.failover.faults import unreachable
from tests.lambdas.failover.harness import (
    HealthServer,
    assert_failed_over,
    declare_without_promotion,
    new_session,
    recorded_calls,
)
from tests.lambdas.failover.world import REGION_A, REGION_B, World, build_world

REPO = Path(__file__).resolve().parents[2]
_apps = itertools.count(1)
_setup_session = new_session()
_setup_clients: dict[tuple[str, str, str | None], Any] = {}


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """A moto server on a free local port (same process: the moto gap patches apply to it)."""
    undo = patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        undo()


@pytest.fixture
def health() -> Iterator[HealthServer]:
    server = HealthServer()
    server.set("/primary", 503, {"error": "region A is down"})
    yield server
    server.close()


@pytest.fixture
def world(emulator: str, health: HealthServer) -> World:
    w = build_world(
        app=f"cli{next(_apps)}",
        endpoint_url=emulator,
        primary_health_url=health.url("/primary"),
        dr_health_url=health.url("/dr"),
        session=_setup_session,
        clients_cache=_setup_clients,
    )
    health.routes["/dr"] = w.dr_health
    health.routes["/primary"] = w.primary_health  # down until a failover latched; then from its state
    return w


@pytest.fixture
def outputs(world: World, tmp_path: Path) -> Path:
    """The DR stack's outputs as `pulumi stack output --json` prints them."""
    path = tmp_path / "dr-outputs.json"
    path.write_text(json.dumps({"runbook": world.context}))
    return path


def cli(*args: str, stdin: io.StringIO | None = None) -> int:
    return runbook_cli.main(list(args), stdin=stdin or io.StringIO(""))


def test_failover_end_to_end(
    world: World, outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli(
        "failover",
        "--stack",
        "dr",
        "--outputs",
        str(outputs),
        "--yes",
        "--force",
        "--endpoint-url",
        emulator,
        "--drain-seconds",
        "0",
    )

    out = capsys.readouterr().out
    assert code == 0, out
    # the header says what will happen, where
    assert "pilotlight FAILOVER" in out and f"from {REGION_A} to {REGION_B}" in out
    assert "[skipped: --force]" in out and emulator in out
    # live progress: a start and an end line per step
    for name in FAILOVER.names():
        assert f"start   {name}" in out
    assert "done         promote_database" in out
    # then the timeline table and the outcome
    table = out[out.index("step  ") :]
    for name in FAILOVER.names():
        assert name in table
    assert "failover: done in" in out
    assert_failed_over(world)
    assert world.latch()["reason"] == "break-glass failover from the runbook CLI"


def test_failover_then_failback_as_subprocesses(world: World, outputs: Path, emulator: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = ["--outputs", str(outputs), "--yes", "--endpoint-url", emulator, "--json", "--drain-seconds", "0"]
    over = subprocess.run(
        [sys.executable, "-m", "automation.runbook_cli", "failover", "--force", "--reason", "drill", *base],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert over.returncode == 0, over.stderr
    report = json.loads(over.stdout)
    assert report["outcome"] == "done"
    assert [r["step"] for r in report["timeline"]] == FAILOVER.names()
    assert "start   verify" in over.stderr  # progress goes to stderr when stdout carries JSON
    assert_failed_over(world)
    world.age_metrics(minutes=5)

    back = subprocess.run(
        [sys.executable, "-m", "automation.runbook_cli", "failback", *base],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["outcome"] == "done"
    assert world.asg(REGION_B) == (0, 0, 0) and world.asg(REGION_A) == (1, 2, 4)
    assert world.latch()["state"] == "standby"


def test_stopped_run_exits_1_naming_the_step(
    world: World, outputs: Path, emulator: str, health: HealthServer, capsys: pytest.CaptureFixture[str]
) -> None:
    health.set("/primary", 200, {"region": REGION_A})
    before = world.snapshot()

    code = cli("failover", "--outputs", str(outputs), "--yes", "--endpoint-url", emulator)

    out = capsys.readouterr().out
    assert code == 1
    assert "STOPPED at confirm_primary_down" in out and "--force" in out
    assert world.snapshot() == before


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (lambda tmp, ctx: tmp / "missing.json", "cannot read --outputs"),
        (lambda tmp, ctx: _write(tmp / "bad.json", "{not json"), "not valid JSON"),
        (
            lambda tmp, ctx: _write(
                tmp / "partial.json", json.dumps({k: v for k, v in ctx.items() if k != "drAsgName"})
            ),
            "missing key 'drAsgName'",
        ),
        (lambda tmp, ctx: _write(tmp / "list.json", "[1, 2]"), "must be a JSON object"),
    ],
)
def test_bad_outputs_file_exits_2_and_changes_nothing(
    world: World,
    emulator: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_file: Callable[[Path, dict[str, object]], Path],
    message: str,
) -> None:
    before = world.snapshot()
    path = make_file(tmp_path, world.context)

    code = cli("failover", "--outputs", str(path), "--yes", "--force", "--endpoint-url", emulator)

    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "nothing was done" in err
    assert world.snapshot() == before


class _Terminal(io.StringIO):
    """Stands in for an interactive terminal holding what the operator types."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stdin", "said"),
    [
        (io.StringIO(""), "not a terminal"),
        (_Terminal(""), "Type the DR region name to confirm"),
        (_Terminal("us-east-1\n"), "'us-east-1' is not 'us-west-2'"),
    ],
    ids=["no-tty", "eof", "wrong-region"],
)
def test_without_yes_nothing_happens_unless_confirmed(
    world: World,
    outputs: Path,
    emulator: str,
    capsys: pytest.CaptureFixture[str],
    stdin: io.StringIO,
    said: str,
) -> None:
    before = world.snapshot()

    code = cli("failover", "--outputs", str(outputs), "--force", "--endpoint-url", emulator, stdin=stdin)

    out = capsys.readouterr().out
    assert code == 2
    assert said in out and "aborted: nothing was done." in out
    assert world.snapshot() == before


def test_typing_the_dr_region_confirms(world: World, outputs: Path, emulator: str) -> None:
    code = cli(
        "failover",
        "--outputs",
        str(outputs),
        "--force",
        "--endpoint-url",
        emulator,
        "--drain-seconds",
        "0",
        stdin=_Terminal("us-west-2\n"),
    )
    assert code == 0
    assert_failed_over(world)


def test_without_outputs_and_without_pulumi_cli_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` executable anywhere
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / ".pulumi"))

    code = cli("failover", "--stack", "dr", "--yes")

    err = capsys.readouterr().err
    assert code == 2
    assert "--outputs" in err and "nothing was done" in err


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--run-id", ""], "--run-id"),
        (["--run-id", "has space"], "--run-id"),
        (["--run-id", "-x" * 200], "--run-id"),
        (["--break-lock", "--dry-run"], "--break-lock"),
        (["--break-lock=yes"], "--break-lock"),
    ],
)
def test_bad_lock_flags_exit_2_naming_the_flag(
    world: World, outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str], args: list[str], flag: str
) -> None:
    """Bad input: a --run-id the lock cannot hold, or --break-lock where there is no lock to break, is
    one error naming the flag, exit 2, before any AWS call."""
    with recorded_calls() as calls:
        code = cli(
            "failover", "--outputs", str(outputs), "--yes", "--force", "--endpoint-url", emulator, *args
        )
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    assert flag in captured.err and "Traceback" not in captured.out + captured.err
    assert calls == []


def test_a_run_while_another_holds_the_lock_changes_nothing_and_names_the_holder(
    world: World, outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """single_flight: a CLI run started while another live run holds the runbook lock stops before its
    first change (exit 1), naming the holder; status reads the holder as lambdas/failover/lock.py wrote it."""
    from lambdas.failover import lock
    from lambdas.failover.clients import Clients
    from lambdas.failover.context import RunbookContext

    ctx = RunbookContext.from_dict(world.context)
    clients = Clients.for_context(ctx, new_session(), endpoint_url=emulator)
    lock.acquire(clients, ctx, run_id="local-0123456789ab", owner="alice@laptop", runbook="failback")
    before = world.snapshot()
    out, _ = _status(outputs, emulator, capsys)
    assert f"lock {ctx.lock_table_name}: held: failback run local-0123456789ab by alice@laptop" in out, out

    code = cli("failover", "--outputs", str(outputs), "--yes", "--force", "--endpoint-url", emulator)

    out = capsys.readouterr().out
    assert code == 1, out
    assert "failover: NOT STARTED: another run holds the runbook lock" in out, out
    assert "local-0123456789ab by alice@laptop" in out and "--break-lock" in out
    assert world.snapshot() == before


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("failsideways") == 2
    assert "invalid choice" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# --dry-run and status: read-only


@pytest.mark.parametrize("runbook", ["failover", "failback"])
def test_dry_run_prints_each_step_and_changes_nothing(
    world: World, outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str], runbook: str
) -> None:
    before = world.snapshot()
    with recorded_calls() as calls:
        code = cli(runbook, "--outputs", str(outputs), "--dry-run", "--force", "--endpoint-url", emulator)
    out = capsys.readouterr().out
    assert code == 0, out
    assert [c for c in calls if c.mutating] == []
    assert world.snapshot() == before
    assert f"DRY RUN of {runbook}: nothing was changed" in out and "preflight:" in out
    plan = out[out.index("DRY RUN") :]
    for name in RUNBOOKS[runbook].names():
        assert f"  {name} " in plan
    marker = f"{world.context['appName']}-{world.context['environment']}-ledger-marker"
    if runbook == "failover":
        assert f"would set {world.context['drAsgName']} 0/0/0 -> 1/2/4" in plan
        assert "promote read replica" in plan and "would set the latch standby -> active" in plan
        # Region A answers: a planned RDS for PostgreSQL promotion, whose zero-lag proof invokes
        # region A's drain marker: the plan says so on the step that will do it.
        (promote,) = [line for line in plan.splitlines() if line.startswith("  promote_database ")]
        assert "drain" in promote and f"region A's ledger marker function {marker} in {REGION_A}" in promote
    else:
        (wait,) = [line for line in plan.splitlines() if line.startswith("  wait_replication_lag ")]
        assert f"region B's ledger marker function {marker} in {REGION_B}" in wait, wait


def test_dry_run_after_a_failover_says_what_is_already_done(
    world: World, outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("failover", "--outputs", str(outputs), "--yes", "--force", "--endpoint-url", emulator,
               "--drain-seconds", "0") == 0  # fmt: skip
    capsys.readouterr()
    assert cli("failover", "--outputs", str(outputs), "--dry-run", "--force", "--endpoint-url", emulator) == 0
    plan = capsys.readouterr().out
    assert "already_done: the writer is in region B" in plan and "already_done: latch active" in plan


def _status(outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, list[Any]]:
    with recorded_calls() as calls:
        code = main_module.main(["status", "--outputs", str(outputs), "--endpoint-url", emulator])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [c for c in calls if c.mutating] == []
    return captured.out, calls


def test_status_in_standby_and_after_a_failover(
    world: World, outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = world.context
    out, _ = _status(outputs, emulator, capsys)
    assert f"writer in {REGION_A}" in out
    assert f"{ctx['drDbInstanceId']}" in out and "replica of" in out
    assert "replica lag:" in out
    assert "state=standby" in out and "no datapoint in the last day (released)" in out
    assert f"{ctx['drAsgName']} 0/0/0" in out and f"{ctx['primaryAsgName']} 1/2/4" in out
    assert f"{ctx['drFunctionNames'][0]}=0" in out
    assert f"lock {ctx['lockTableName']}: free" in out and "journal: empty" in out
    assert f"{ctx['generation']} (current)" in out

    assert cli("failover", "--outputs", str(outputs), "--yes", "--force", "--endpoint-url", emulator,
               "--drain-seconds", "0") == 0  # fmt: skip
    capsys.readouterr()
    out, _ = _status(outputs, emulator, capsys)
    assert f"writer in {REGION_B}" in out
    assert "state=active" in out and "1 (thrown: traffic to region B)" in out
    assert f"{ctx['drAsgName']} 1/2/4" in out and f"{ctx['primaryAsgName']} 0/0/4" in out
    assert f"{ctx['drFunctionNames'][0]}=unreserved" in out and f"{ctx['primaryFunctionNames'][0]}=0" in out
    assert '"primaryStoppedAt"' in out  # the last run's journal


def test_status_prints_a_region_that_does_not_answer(
    world: World,
    outputs: Path,
    emulator: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = runbook_cli._session

    def session(endpoint_url: str | None) -> Any:
        s = original(endpoint_url)
        unreachable(REGION_A).install(s)  # every call to region A fails to connect
        return s

    monkeypatch.setattr(runbook_cli, "_session", session)  # status connects through runbook_cli.connect
    code = main_module.main(["status", "--outputs", str(outputs), "--endpoint-url", emulator])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.out + captured.err
    assert f"region A {REGION_A} does not answer (EndpointConnectionError)" in captured.out
    assert f"{world.context['drAsgName']} 0/0/0" in captured.out


@pytest.mark.parametrize("command", ["status", "failover", "failback"])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read --outputs"),
        ("{not json", "not valid JSON"),
        ('{"appName": "x", "drAsgNam": "y"}', "unknown key 'drAsgNam' (did you mean 'drAsgName'?)"),
    ],
    ids=["missing-file", "not-json", "mistyped"],
)
def test_bad_outputs_are_one_clear_error_exit_2_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: str | None, message: str
) -> None:
    path = tmp_path / "runbook.json"
    if content is not None:
        path.write_text(content)
    code = main_module.main([command, "--outputs", str(path), "--yes"] if command != "status"
                            else [command, "--outputs", str(path)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0] and lines[-1] == "nothing was done."
    assert "Traceback" not in captured.err + captured.out


def test_status_as_a_subprocess_needs_only_the_outputs_file(
    world: World, outputs: Path, emulator: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "automation", "status", "--outputs", str(outputs), "--endpoint-url", emulator],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"pilotlight status: {world.context['appName']}" in done.stdout


def _latch_cli(*args: str) -> int:
    return main_module.main(["latch", *args])


def test_latch_release_refuses_without_region_a_writer_then_releases_over_it(
    world: World, outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """pulumi up never writes the latch (issue 13, F1): `latch release` does, only over a writer in region A.
    Traffic follows the writer: it also ends a failover's hold on region A in the run journal (the
    marks under which the canary never releases the switch, whatever the latch says), only then."""
    ctx = world.context
    base = ("--outputs", str(outputs), "--endpoint-url", emulator)
    # After a failover the writer is in region B: releasing would send traffic to a region without it.
    assert cli("failover", "--outputs", str(outputs), "--yes", "--force", "--endpoint-url", emulator,
               "--drain-seconds", "0") == 0  # fmt: skip
    capsys.readouterr()
    assert _latch_cli("release", *base) == 1
    out = capsys.readouterr().out
    assert f"the writer is region B ({REGION_B})" in out and "Traceback" not in out
    assert world.latch()["state"] == "active"
    ssm = _setup_session.client("ssm", region_name=REGION_B, endpoint_url=emulator)

    def journal(latch: str) -> dict[str, str]:
        return json.loads(ssm.get_parameter(Name=f"{latch}-journal")["Parameter"]["Value"])

    assert journal(ctx["latchParameterName"]).get("primaryStoppedAt"), "the refused release kept the hold"

    # A declared failover stopped before its writer move (E2; break34 B34-5: `latch activate` stopped after
    # the switch, before its promotion): the latch says active and the switch is thrown.
    fresh = build_world(app=f"cli{next(_apps)}", endpoint_url=emulator, session=_setup_session,
                        clients_cache=_setup_clients)  # fmt: skip
    latch_name = fresh.context["latchParameterName"]
    path = outputs.parent / "fresh.json"
    path.write_text(json.dumps({"runbook": fresh.context}))
    fresh_ctx = RunbookContext.from_dict(fresh.context)
    declare_without_promotion(fresh_ctx, Clients.for_context(fresh_ctx, new_session(), endpoint_url=emulator))
    assert json.loads(ssm.get_parameter(Name=latch_name)["Parameter"]["Value"])["state"] == "active"
    assert _latch_cli("show", "--outputs", str(path), "--endpoint-url", emulator) == 0
    assert "failover switch: 1" in capsys.readouterr().out

    # rds-replica: switch-writer is the zero-lag proof the dr:failback switch-writer update needs; with no
    # drain recorded under this failover it refuses in one line, changing nothing (drain_proof.py).
    assert _latch_cli("switch-writer", "--outputs", str(path), "--endpoint-url", emulator) == 1
    out = capsys.readouterr().out
    assert out.startswith("refused: the failback record says no update recorded a failback phase"), out
    assert "dr:failback drain first" in out and len(out.strip().splitlines()) == 1, out

    # Over a writer in region A (region B was never promoted), release lets the switch and the latch go,
    # and ends what the journal says of a failover holding region A (a runbook failover given back by
    # the IaC failback's updates, not by the runbook's failback).
    marks = {"fencePending": "2026-11-30T12:00:00+00:00", "primaryStoppedAt": "2026-11-30T12:00:00+00:00"}
    ssm.put_parameter(Name=f"{latch_name}-journal", Value=json.dumps(marks), Type="String", Overwrite=True)
    assert _latch_cli("release", "--outputs", str(path), "--endpoint-url", emulator) == 0
    out = capsys.readouterr().out
    assert "release_switch: done" in out and "clear_latch: done" in out
    # (unfence_primary ends primaryStoppedAt itself: region A takes writes again; it gives region A back
    # what the declared failover's fence took: break34 B34-1)
    assert "unfence_primary: done" in out and "run journal: cleared fencePending" in out
    assert journal(latch_name) == {}
    assert json.loads(ssm.get_parameter(Name=latch_name)["Parameter"]["Value"])["state"] == "standby"
    assert _latch_cli("show", "--outputs", str(path), "--endpoint-url", emulator) == 0
    shown = capsys.readouterr().out
    assert "standby" in shown and "failover switch: 0" in shown and f"writer: {REGION_A}" in shown
    assert ctx["latchParameterName"] != latch_name


def test_latch_release_gives_region_a_back_what_a_runbook_failover_fenced_before_traffic_moves(
    outputs: Path, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Traffic follows the writer, to a region with capacity (life22): a runbook failover fenced an
    answering region A out of band (web tier 0/0/0, functions at zero concurrency); the primary
    stack's state still holds the values from before the fence, so the IaC failback's
    `pulumi up -s primary` sends nothing, and route-back sent every request to a region with no
    capacity. `latch release` gives region A back what the fence took, from the outputs' capacity,
    and waits until it serves as the writer, before the switch moves."""
    fresh = build_world(app=f"cli{next(_apps)}", endpoint_url=emulator, session=_setup_session,
                        clients_cache=_setup_clients)  # fmt: skip
    ctx = fresh.context
    path = outputs.parent / "fenced.json"
    path.write_text(json.dumps({"runbook": ctx}))
    base = ("--outputs", str(path), "--endpoint-url", emulator)
    fenced = RunbookContext.from_dict(ctx)
    declare_without_promotion(fenced, Clients.for_context(fenced, new_session(), endpoint_url=emulator))
    # What the runbook's fence_primary leaves in region A (its database still the writer: the declared
    # failover stopped before its promotion).
    asg = _setup_session.client("autoscaling", region_name=REGION_A, endpoint_url=emulator)
    asg.update_auto_scaling_group(
        AutoScalingGroupName=ctx["primaryAsgName"], MinSize=0, DesiredCapacity=0, MaxSize=0
    )
    fn = _setup_session.client("lambda", region_name=REGION_A, endpoint_url=emulator)
    for name in ctx["primaryFunctionNames"]:
        fn.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    ssm = _setup_session.client("ssm", region_name=REGION_B, endpoint_url=emulator)
    ssm.put_parameter(
        Name=f"{ctx['latchParameterName']}-journal",
        Value=json.dumps({"primaryStoppedAt": "2026-11-30T12:00:00+00:00"}),
        Type="String",
        Overwrite=True,
    )
    capsys.readouterr()

    assert _latch_cli("release", *base) == 0
    out = capsys.readouterr().out
    order = [line.split(":", 1)[0] for line in out.splitlines()]
    assert order.index("unfence_primary") < order.index("verify_primary") < order.index("release_switch")
    assert "unfence_primary: done" in out
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ctx["primaryAsgName"]])[
        "AutoScalingGroups"
    ]
    capacity = ctx["primaryCapacity"]
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (
        capacity["min"],
        capacity["desired"],
        capacity["max"],
    )
    for name in ctx["primaryFunctionNames"]:
        assert "ReservedConcurrentExecutions" not in fn.get_function_concurrency(FunctionName=name)
    assert fresh.latch()["state"] == "standby"
