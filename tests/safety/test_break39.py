"""break39: the promotion's late look now also GETs region A's health endpoint (5bb3a5b, break38 B38-1 fix:
``darkness.source_dark_window(..., whole_region=True)`` counts region A answering while ``primaryHealthUrl``
answers 200, ``darkness._web_tier_serves``) attacked in the safety model. Each finding is a strict xfail naming
the invariant of docs/safety.md it breaks, with the observed output in its reason.

What ``primaryHealthUrl`` is in the program: ``components/pilot_light_region.py`` sets it to region A's
``apiHealthUrl`` (``components/primary_region.py``: ``self.api.health_url``), the API Gateway route ``GET
/health`` served by region A's API function (``lambdas/api/handler.py`` ``get_health`` ->
``lambdas/api/health.py`` ``evaluate_health``): 200 unless a check FAILED; the checks are DynamoDB
``DescribeTable`` and, for the database, RDS ``DescribeDBInstances`` (rds-replica: ``writer`` is "no
``ReadReplicaSourceDBInstanceIdentifier``", the ``DBInstanceStatus`` is reported, never judged) or
``DescribeGlobalClusters``, plus the latch (region A answers from memory, or assumes itself active). So the
endpoint answers 503 whenever region A's RDS *control plane* fails for the function, and 200 over a database
RDS describes as ``failed``. The model's endpoint (``tests/safety/model.py`` ``Deployment._endpoint``) answers
200 whenever region A is reachable and its Auto Scaling group serves: it calls neither API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from botocore.config import Config
from moto.rds.models import rds_backends

from automation.emulator.aws import ACCOUNT
from lambdas.api.config import HealthSettings
from lambdas.api.health import evaluate_health
from lambdas.api.ledger import DatabaseUnreachable
from lambdas.failover import promotion
from lambdas.failover.traffic import _switch_pending
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment
from tests.safety.scenarios import journal
from tests.safety.test_break36 import _forced_failover_region_a_back, _promotion_events, _settle_and_judge
from tests.safety.test_break38 import _blackout_faults, _mismatch_monitor

Deploy = Callable[..., Deployment]

ONE_TRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)


def _program_health_endpoint(
    d: Deployment, monkeypatch: pytest.MonkeyPatch, faults: tuple[Fault, ...]
) -> list[Any]:
    """Region A's ``/primary`` answered as the program answers it: the model's gate first (dark: no answer; no
    web tier: 503), then ``lambdas.api.health.evaluate_health`` itself, with region A's API function's clients
    meeting ``faults`` (a regional control-plane outage fails in-region callers too). Returns the answers seen."""
    session = new_session()
    d.emulator.attach(session)
    for f in faults:
        f.install(session)
    env = {
        "AWS_REGION": REGION_A,
        "STACK_ROLE": "primary",
        "LATCH_PARAMETER": d.ctx.latch_parameter_name,
        "LATCH_REGION": REGION_B,
        "DB_MODE": "rds-replica",
        "DB_INSTANCE_ID": d.ctx.primary_db_instance_id or "",
    }
    settings = HealthSettings.from_env(env)
    clients = {
        "dynamodb": session.client("dynamodb", region_name=REGION_A, config=ONE_TRY),
        "rds": session.client("rds", region_name=REGION_A, config=ONE_TRY),
        "ssm": session.client("ssm", region_name=REGION_B, config=ONE_TRY),
    }
    seen: list[Any] = []
    real = d._endpoint

    def database(sql: str, params: Any) -> list[list[Any]]:
        # Region A's database answering the function's SQL, as the emulator's data plane holds it (the
        # faults above are botocore's, AWS's APIs: a SQL session to the instance is not one of them).
        emu = d.emulator
        app = emu.apps.get(REGION_A)
        key = app.database() if app else None
        if key is None or not emu.reachable(REGION_A) or not emu.database_answers(key):
            raise DatabaseUnreachable("region A's database did not answer")
        return [["writer" if emu.database_writable(REGION_A) is not None else "read-only"]]

    def endpoint(path: str) -> tuple[int, dict[str, Any]] | None:
        got = real(path)
        if not path.startswith("/primary") or got is None or got[0] != 200:
            return got
        report = evaluate_health(
            settings, clients["dynamodb"], clients["rds"], clients["ssm"], execute=database
        )
        answer = (200 if report.healthy else 503), report.body()
        seen.append((f"{d.emulator.clock.now():%H:%M:%S}", answer[0], report.checks.get("database")))
        return answer

    monkeypatch.setattr(d, "_endpoint", endpoint)
    return seen


B39_1 = (
    "traffic_follows_writer (docs/safety.md; break38 B38-1 comes back). 5bb3a5b reads region A 'answering' while "
    "primaryHealthUrl answers 200, but that URL is region A's API /health (components/pilot_light_region.py "
    "primaryHealthUrl = apiHealthUrl), whose evaluate_health FAILS its database check, hence 503, whenever region "
    "A's RDS API fails for the function (lambdas/api/health.py rds_writer -> DescribeDBInstances; _attempt: "
    "BotoCoreError -> FAILED; handler.get_health: 503). B38-1's adversary, region A's RDS/Auto Scaling/Lambda "
    "APIs failing to connect (a regional control-plane incident, B37-2's case, not only the runbook's path) while "
    "its web tier serves its writer, makes that endpoint answer 503 during every blackout: the web look adds "
    "nothing and the looks between late-fence misses are dark again. Schedule: B38-1's (test_break38 "
    "_misses_spaced_by_dark_looks, cli, canary off), region A's /primary answered by the program's own "
    "evaluate_health with its clients meeting the same blackout faults. Observed: fences at 12:09:03, 12:11:04, "
    "12:13:04 (two minutes apart, as before the fix); of 36 health answers those inside the blackouts were 503 "
    "with database {'status': 'failed', 'error': 'EndpointConnectionError'} (first at 12:09:18); run stopped "
    "RegionAFlapping, lateFenceMisses {'fencePending': '2026-11-30T12:07:22+00:00', 'misses': 3}; "
    "'traffic_follows_writer at 12:12:00: Route 53 answers us-west-2 while us-east-1 serves the writer ex1-db "
    "(since 12:09:00)', longest mismatch 340 s (12:09:00 to 12:14:40) > TRAFFIC_GRACE 180 s: the numbers B38-1 "
    "reported before the fix. The "
    "model's endpoint (model.py _endpoint: reachable and ASG serving -> 200, no AWS call) is kinder than the "
    "program's, which is why test_break38 passes. Fix direction: bound the time region A has answered with "
    "its fence pending (B38-1's first fix direction), or look at a health signal that does not depend on "
    "region A's control planes (the ALB's webHealthUrl, or an endpoint that answers from the data plane only)."
    " Fixed (2026-12-03): the health endpoint asks region A's database itself (lambdas/api/health.py "
    "WRITER_PROBE_SQL) and RDS's API not answering only degrades the check (lambdas/api/health_rules.py "
    "judge_database), so the endpoint answers 200 over the serving writer and Route 53's endpoint check agrees."
)


def test_b39_1_b38_1_schedule_with_the_programs_own_health_endpoint(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding ``B39_1`` (above). Fixed: lambdas/api/health.py asks region A's database itself
    (``WRITER_PROBE_SQL``) and RDS's API not answering only degrades the check (``judge_database``); this
    test was a strict xfail and fails with ``execute=None`` (the health check as it was)."""
    d = deploy("rds-replica")
    faults = _blackout_faults()
    health_seen = _program_health_endpoint(d, monkeypatch, faults)
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    fences: list[datetime] = []
    real = promotion.fence_primary

    def lift() -> None:
        for f in faults:
            f.times = 0

    def fence(ctx, clients, params):  # type: ignore[no-untyped-def]
        fences.append(clients.clock.now())
        for f in faults:
            f.times = None
        d.emulator.clock.after(115.0, lift)
        return real(ctx, clients, params)

    monkeypatch.setattr(promotion, "fence_primary", fence)
    seen = _mismatch_monitor(d, monkeypatch)

    def back_after_the_switch(d: Deployment) -> None:
        seen["switch_pending"] = _switch_pending(d.ctx, d.runbook_clients())
        d.emulator.clock.after(seen["switch_pending"] + 20.0, d.op_recover)

    run = _forced_failover_region_a_back(
        d, monkeypatch, back_after_the_switch, faults=faults, executor_name="cli"
    )
    seen["misses"] = journal(d).get(promotion.LATE_FENCE_MISSES_MARK)
    monkeypatch.setattr(promotion, "fence_primary", real)
    lift()
    _settle_and_judge(d)
    evidence = [
        run.outcome,
        run.detail[:200],
        [f"{f:%H:%M:%S}" for f in fences],
        seen,
        [h for h in health_seen if h[1] != 200][:3],
        len(health_seen),
        *_promotion_events(d),
        *map(str, d.violations),
    ]
    print("B39-1 evidence:", evidence)
    assert not d.violations, evidence
    assert seen["longest"] < TRAFFIC_GRACE, evidence


def _dead_database_unreachable_apis(d: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """B39-2's world: the canary's fence left out, clients' writes acknowledged, then the runbook's path to region
    A's RDS, Auto Scaling and Lambda APIs failing to connect for good, and region A's instance ``failed``."""
    monkeypatch.setattr(d, "_async_step", lambda event: None)
    d.op_advance(120)
    d.op_write(10)
    for service in ("rds", "auto-scaling", "lambda"):
        d.add_fault(Fault(service=service, region=REGION_A, unreachable=True, times=None))
    rds_backends[ACCOUNT][REGION_A].databases[d.ctx.primary_db_instance_id].status = "failed"


B39_2 = (
    "converges (docs/safety.md: a failover over a lost region A ends with a writer; break33 B33-2 'a dead "
    "database behind an Auto Scaling API that answers is lost: the forced failover promotes unplanned instead "
    "of stopping with no writer anywhere'). The web look takes any 200 from region A's health endpoint for "
    "'region A serves its writer', but the program's endpoint answers 200 over an instance RDS describes as "
    "failed (lambdas/api/health.py rds_writer reads only ReadReplicaSourceDBInstanceIdentifier; "
    "DBInstanceStatus is reported, not judged), and the model's answers 200 whenever the ASG serves. "
    "Schedule: region A's database instance 'failed' (status RDS documents as 'can't recover'), the runbook's "
    "path (the canary's fence left out, as test_break38 canary=False) to region A's RDS, Auto Scaling and Lambda APIs failing to connect for good, region "
    "A's web tier up; operator runs a forced failover (force: the health endpoint answers 200). Before 5bb3a5b "
    "every late look is dark (RDS dark, data plane agreeing, no endpoint answering) and the promotion goes "
    "unplanned after DARK_CONFIRM_SECONDS. Observed: region A's /primary (200, {'region': 'us-east-1', 'writer': False}); run 'stopped': "
    "\"promote_database: region A's database answered a look but its fence then could not reach region A (3 "
    'time(s)): ... gave up: region A answers some looks and not others. Nothing was promoted"; '
    "lateFenceMisses 3; no promotion; database_writable(us-west-2) None: no region serves a writer, and the "
    "checker reports no violation (its after-run judgment does not catch it). Control (same schedule, "
    "_web_tier_serves -> None, test_b39_2_control_...): 'done', 'promotion-started: ex1-db-replica stops "
    "replicating; 0 write(s) not applied'. (Not run: a re-run meets the same looks while the path fault lasts.) Fix direction: a 200 whose body says writer false "
    "(or a database status that serves nothing) is not 'serving its writer'; the health endpoint should "
    "judge DBInstanceStatus (DOWN statuses -> 503), or the web look should read the body's writer/active."
)


def test_b39_2_dead_database_behind_a_shallow_health_endpoint_blocks_the_failover(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding ``B39_2`` (above). Fixed: lambdas/api/health.py rds_writer answers DatabaseUnavailable (503) for an instance RDS describes as serving nothing, and the model's endpoint does the same; this test failed before the fix (it was a strict xfail)."""
    d = deploy("rds-replica")
    _dead_database_unreachable_apis(d, monkeypatch)
    d.op_advance(60)
    health = d._endpoint("/primary")
    run = d.op_run("failover", params={"force": True, "reason": "region A database dead"})
    evidence = [
        health,
        run.outcome,
        run.detail[:240],
        journal(d).get(promotion.LATE_FENCE_MISSES_MARK),
        *_promotion_events(d),
        d.emulator.database_writable(REGION_B),
        *map(str, d.violations),
    ]
    print("B39-2 evidence:", evidence)
    assert run.outcome == "done", evidence
    assert d.emulator.database_writable(REGION_B) is not None, evidence


def test_b39_2_control_without_the_web_look_the_same_schedule_promotes(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for B39-2: the same schedule with ``darkness._web_tier_serves`` answering None (the late look as it
    was before 5bb3a5b) promotes region B unplanned and ends done: the web look alone turns it into a stop."""
    from lambdas.failover import darkness

    monkeypatch.setattr(darkness, "_web_tier_serves", lambda ctx, step: None)
    d = deploy("rds-replica")
    _dead_database_unreachable_apis(d, monkeypatch)
    d.op_advance(60)
    run = d.op_run("failover", params={"force": True, "reason": "region A database dead"})
    evidence = [run.outcome, run.detail[:240], *_promotion_events(d), *map(str, d.violations)]
    print("B39-2 control:", evidence)
    assert run.outcome == "done", evidence
    assert d.emulator.database_writable(REGION_B) is not None, evidence
