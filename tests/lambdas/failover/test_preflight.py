"""A stale or mistyped outputs file changes nothing in either region: tested for every key.

Each world below is a deployment in moto with the outputs the program would export for it (every
key, KMS keys included, stamped with their generation, and that generation deployed in region B).
For each key of those outputs, the break-glass CLI (``python -m automation failover``, in process)
is given a file where that key is misspelt, holds a value of the wrong type, names a resource that
does not exist (resource keys), or comes from an older deployment (stale). Every such run must exit
2 naming the key, make no mutating AWS call in either region, and leave both regions as they were.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from automation import runbook_cli
from lambdas.failover import preflight
from lambdas.failover.context import GENERATION_KEY, RunbookContext
from tests.lambdas.failover.faults import Fault, deny, unreachable
from tests.lambdas.failover.harness import ApiCall, clients_for, new_session, recorded_calls
from tests.lambdas.failover.world import REGION_A, REGION_B, World, build_world, stamp

MODES = ("rds-replica", "aurora-global")
_apps = itertools.count(1)
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def worlds(aws: None) -> dict[str, World]:
    """One world per database mode, shared: every test here must leave it as it found it."""
    session = new_session()
    return {
        mode: build_world(
            mode,
            app=f"pf{next(_apps)}",
            encrypted=True,
            primary_health_url="http://127.0.0.1:9/primary",
            session=session,
            global_table=True,
        )
        for mode in MODES
    }


_MODE_KEYS = {
    "rds-replica": [
        "appName", "environment", "primaryRegion", "drRegion", "databaseMode", "primaryAsgName",
        "primaryCapacity", "drAsgName", "drCapacity", "primaryFunctionNames", "drFunctionNames",
        "primaryEventSourceMappingIds", "drEventSourceMappingIds", "switchMetric", "latchParameterName",
        "lockTableName", "notifyTopicArn", "primaryHealthUrl", "maxReplicationLagSeconds", "primaryKmsKeyArn",
        "drKmsKeyArn", "primaryDbInstanceId", "drDbInstanceId", "primaryDbSubnetGroupName",
        "primaryDbParameterGroupName", "notifyKeyArn", "dataKeyArns", "lockTableKeyArn", "drHealthUrl", GENERATION_KEY, "primaryBucketName", "drBucketName", "globalTableName",
    ],
    "aurora-global": [
        "appName", "environment", "primaryRegion", "drRegion", "databaseMode", "primaryAsgName",
        "primaryCapacity", "drAsgName", "drCapacity", "primaryFunctionNames", "drFunctionNames",
        "primaryEventSourceMappingIds", "drEventSourceMappingIds", "switchMetric", "latchParameterName",
        "lockTableName", "notifyTopicArn", "primaryHealthUrl", "maxReplicationLagSeconds", "primaryKmsKeyArn",
        "drKmsKeyArn", "globalClusterId", "primaryClusterId", "drClusterId", "drClusterArn",
        "drInstanceClass", "notifyKeyArn", "dataKeyArns", "lockTableKeyArn", "drHealthUrl", GENERATION_KEY, "primaryBucketName", "drBucketName", "globalTableName",
    ],
}  # fmt: skip

RESOURCE_KEYS = {
    "primaryAsgName", "drAsgName", "primaryFunctionNames", "drFunctionNames",
    "primaryEventSourceMappingIds", "drEventSourceMappingIds", "latchParameterName", "lockTableName",
    "notifyTopicArn",
    "primaryKmsKeyArn", "drKmsKeyArn", "notifyKeyArn", "dataKeyArns", "lockTableKeyArn", "primaryDbInstanceId",
    "drDbInstanceId", "globalClusterId", "primaryClusterId", "drClusterId", "drClusterArn",
    "primaryBucketName", "drBucketName", "globalTableName", "primaryDbSubnetGroupName",
    "primaryDbParameterGroupName",
}  # fmt: skip
"""Keys naming an AWS resource: preflight describes each, in the region the outputs say."""


def test_the_worlds_carry_every_key_of_the_program() -> None:
    from lambdas.failover.context import KEYS, Requirement

    for mode in MODES:
        other = Requirement("aurora-global" if mode == "rds-replica" else "rds-replica")
        assert set(_MODE_KEYS[mode]) == {k for k, spec in KEYS.items() if spec.required != other}
    assert set(KEYS) >= RESOURCE_KEYS


def _typo(key: str) -> str:
    """``key`` with its middle letter dropped: always another name, and close to ``key``."""
    typo = key[: len(key) // 2] + key[len(key) // 2 + 1 :]
    assert typo != key
    return typo


def _wrong_type(value: Any) -> Any:
    if isinstance(value, str | None):
        return 42
    if isinstance(value, list):
        return "a-string"
    if isinstance(value, dict):
        return ["a", "list"]
    return "60"


def _missing(key: str, value: Any) -> Any:
    """A value of the right type naming no resource (in the right region)."""
    if key.endswith("MappingIds"):
        return [ZERO_UUID]
    if key == "dataKeyArns":
        return [value[0].rsplit("/", 1)[0] + "/" + ZERO_UUID, *value[1:]]
    if key.endswith("KeyArn"):
        return value.rsplit("/", 1)[0] + "/" + ZERO_UUID
    if isinstance(value, list):
        return [f"{value[0]}-gone", *value[1:]]
    return f"{value}-gone"


def _older(key: str, value: Any) -> Any:
    """Another valid value: what an export from an older deployment may have held."""
    if key == GENERATION_KEY:
        return "g1-" + "0" * 20
    if key in RESOURCE_KEYS:
        return _missing(key, value)
    if key.endswith("Capacity"):
        return {"min": 0, "desired": 0, "max": value["max"] + 1}
    if key == "switchMetric":
        return {**value, "name": value["name"] + "Old"}
    if key == "maxReplicationLagSeconds":
        return value + 1
    if key.endswith("HealthUrl"):
        return "https://old.example.com/health"
    if key == "databaseMode":
        return "aurora-global" if value == "rds-replica" else "rds-replica"
    if key == "primaryRegion":
        return "eu-west-1"
    if key == "drRegion":
        return "eu-west-2"
    return f"{value}-old"


def _cases() -> Iterator[Any]:
    for mode in MODES:
        for key in _MODE_KEYS[mode]:
            for variant in ("misspelt", "wrong-type", "stale"):
                yield pytest.param(mode, key, variant, id=f"{mode}-{key}-{variant}")
            if key in RESOURCE_KEYS:
                yield pytest.param(mode, key, "no-such-resource", id=f"{mode}-{key}-no-such-resource")


@pytest.fixture
def run_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, list[ApiCall]]]:
    def run(context: dict[str, Any], *args: str) -> tuple[int, str, list[ApiCall]]:
        path = tmp_path / "runbook.json"
        path.write_text(json.dumps(context))
        with recorded_calls() as calls:
            code = runbook_cli.main(["failover", "--outputs", str(path), *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err, calls

    return run


@pytest.mark.parametrize(("mode", "key", "variant"), list(_cases()))
def test_a_mistyped_or_stale_outputs_file_changes_nothing_in_either_region(
    worlds: dict[str, World],
    run_cli: Callable[..., tuple[int, str, list[ApiCall]]],
    mode: str,
    key: str,
    variant: str,
) -> None:
    world = worlds[mode]
    good = dict(world.context)
    assert key in good
    before = world.snapshot()
    context = dict(good)
    live_changed = False
    if variant == "misspelt":
        context[_typo(key)] = context.pop(key)
    elif variant == "wrong-type":
        context[key] = _wrong_type(good[key])
    elif variant == "no-such-resource":
        # As if the program had exported it: stamped, and that stamp deployed. Only the describe
        # of the resource can tell.
        context[key] = _missing(key, good[key])
        stamp(world, context)
        live_changed = True
    else:
        # An older export: consistently stamped, but not the generation deployed now.
        context[key] = _older(key, good[key])
        if key != GENERATION_KEY:
            stamp(world, context, live=False)

    try:
        code, output, calls = run_cli(context, "--yes", "--force", "--drain-seconds", "0")
    finally:
        if live_changed:
            stamp(world, good)
    assert code == 2, output
    assert "nothing was done" in output and "Traceback" not in output
    named = _typo(key) if variant == "misspelt" else key
    if variant == "stale":
        assert f"'{named}'" in output or "'generation': the outputs are stale" in output, output
    else:
        assert f"'{named}'" in output, output
    if variant in ("misspelt", "wrong-type"):
        assert calls == [], "a file that does not parse must not reach AWS at all"
    assert [c for c in calls if c.mutating] == []
    assert world.snapshot() == before


@pytest.mark.parametrize("mode", MODES)
def test_current_outputs_pass_with_one_read_only_call_per_named_resource(
    worlds: dict[str, World], mode: str
) -> None:
    world = worlds[mode]
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world)
    with recorded_calls() as calls:
        report = preflight.check(ctx, clients)
    assert report.ok and report.warnings == [], report.format()
    assert report.live_generation == world.context[GENERATION_KEY]
    assert calls and [c for c in calls if c.mutating] == []
    assert {c.region for c in calls} == {REGION_A, REGION_B}
    named = (
        len(ctx.primary_function_names + ctx.dr_function_names)
        + len(ctx.primary_event_source_mapping_ids + ctx.dr_event_source_mapping_ids)
        + len({ctx.notify_key_arn, ctx.primary_kms_key_arn, ctx.dr_kms_key_arn, *ctx.data_key_arns})
        + 2  # web tiers
        + 4  # latch, generation, lock table, topic
        + (2 if mode == "rds-replica" else 3)  # databases
        + (2 if mode == "rds-replica" else 0)  # ledger marker functions (PostgreSQL), DryRun invokes
        + 2  # receipts buckets' replication rules
        + 2  # the global table's replica in each region
        # (the failback replica's subnet and parameter groups: read from region A's instance, no call)
    )
    assert len(calls) == named


def test_region_a_dark_is_a_warning_not_a_stop(worlds: dict[str, World]) -> None:
    world = worlds["rds-replica"]
    report = preflight.check(
        RunbookContext.from_dict(world.context), clients_for(world, unreachable(REGION_A))
    )
    assert report.ok, report.format()
    assert len(report.warnings) == 1 and "does not answer" in report.warnings[0]


def test_region_a_answering_access_denied_is_a_problem(worlds: dict[str, World]) -> None:
    world = worlds["rds-replica"]
    fault = deny("auto-scaling", "DescribeAutoScalingGroups", REGION_A)
    report = preflight.check(RunbookContext.from_dict(world.context), clients_for(world, fault))
    assert not report.ok
    (problem,) = report.problems
    assert problem.startswith("'primaryAsgName'") and "AccessDenied" in problem


def test_a_region_b_that_does_not_answer_stops_the_run(worlds: dict[str, World]) -> None:
    world = worlds["aurora-global"]
    report = preflight.check(
        RunbookContext.from_dict(world.context), clients_for(world, unreachable(REGION_B))
    )
    assert not report.ok and "region B" in report.problems[0]


def test_every_problem_is_listed_in_one_error(
    worlds: dict[str, World], run_cli: Callable[..., tuple[int, str, list[ApiCall]]]
) -> None:
    world = worlds["aurora-global"]
    good = dict(world.context)
    context = {**good, "drAsgName": "gone", "primaryFunctionNames": ["gone"], "drClusterId": "gone"}
    stamp(world, context)
    try:
        code, output, calls = run_cli(context, "--yes", "--force")
    finally:
        stamp(world, good)
    assert code == 2
    assert "preflight found 3 problems" in output
    for key in ("'drAsgName'", "'primaryFunctionNames'", "'drClusterId'"):
        assert key in output
    assert [c for c in calls if c.mutating] == []


def _marker_calls(calls: list[ApiCall]) -> list[tuple[str, bool]]:
    return [(c.region, c.dry_run) for c in calls if c.operation == "Invoke"]


@pytest.mark.parametrize(
    ("runbook", "source"), [("failover", REGION_A), ("failback", REGION_B), (None, None)]
)
def test_the_source_s_ledger_marker_is_checked_invokable_for_a_postgres_planned_change(
    worlds: dict[str, World], runbook: str | None, source: str | None
) -> None:
    """Nothing acknowledged is lost on a planned change, and the change converges: the RDS for
    PostgreSQL zero-lag proof invokes the source's ``<app>-<env>-ledger-marker`` after the drain
    (region A's at a failover, region B's at a failback). A marker the runbook cannot invoke
    (missing, or not allowed) is found before the first change, by a DryRun invoke that runs
    nothing, not after the source is drained. Without a runbook, both are checked."""
    world = worlds["rds-replica"]
    ctx = RunbookContext.from_dict(world.context)
    with recorded_calls() as calls:
        assert preflight.check(ctx, clients_for(world), runbook).ok
    wanted = [(REGION_B, True), (REGION_A, True)] if source is None else [(source, True)]
    assert _marker_calls(calls) == wanted, "one DryRun invoke of the source's marker, nothing run"
    marker = f"{world.context['appName']}-{world.context['environment']}-ledger-marker"
    for region in [REGION_A, REGION_B] if source is None else [source]:
        for fault, code in (
            (Fault("lambda", "Invoke", region, code="ResourceNotFoundException", status=404), "no "),
            (deny("lambda", "Invoke", region), "AccessDenied"),
        ):
            report = preflight.check(ctx, clients_for(world, fault), runbook)
            assert not report.ok, f"{runbook}: a marker in {region} the runbook cannot invoke went unseen"
            (problem,) = report.problems
            assert problem.startswith("'appName/environment'") and marker in problem and code in problem
            assert region in problem, problem


def test_no_marker_is_checked_where_no_proof_needs_it(worlds: dict[str, World]) -> None:
    """Aurora's switchover waits for the secondary itself: no marker function is invoked or
    required (nor for RDS for MySQL or MariaDB, which have no proof: confirm_primary_down and
    confirm_primary_healthy refuse their planned changes)."""
    world = worlds["aurora-global"]
    with recorded_calls() as calls:
        assert preflight.check(RunbookContext.from_dict(world.context), clients_for(world)).ok
    assert _marker_calls(calls) == []


def test_a_failover_whose_region_a_marker_cannot_be_invoked_changes_nothing(
    worlds: dict[str, World],
    run_cli: Callable[..., tuple[int, str, list[ApiCall]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI refuses (exit 2, nothing done) before a planned PostgreSQL failover whose drain
    marker in region A the runbook role may not invoke."""
    world = worlds["rds-replica"]
    fault = deny("lambda", "Invoke", REGION_A)
    original = preflight.check

    def with_fault(
        ctx: RunbookContext, clients: Any, runbook: str | None = None
    ) -> preflight.PreflightReport:
        fault.install(clients.session)
        return original(ctx, clients, runbook)

    monkeypatch.setattr(preflight, "check", with_fault)
    before = world.snapshot()
    code, output, calls = run_cli(world.context, "--yes", "--force", "--planned")
    assert code == 2 and "ledger-marker" in output and "AccessDenied" in output, output
    assert [c for c in calls if c.mutating] == []
    assert world.snapshot() == before
