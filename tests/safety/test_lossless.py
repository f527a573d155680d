"""Nothing acknowledged is lost on a planned change (docs/safety.md), judged by the checker.

A planned failover moves the writer only at zero lag proven by datapoints taken after its drain: the
receipts' pending replications at two zero minutes, RDS for PostgreSQL's ``ReplicaLag`` by a replayed commit
after the drain. The schedules that gave the database lag readings that are not proof (``ReplicaLag`` -1,
and a single zero sampled before a late write) were RDS for MySQL's, which has no sound proof and is now
refused before any change (tests/safety/test_break32.py, B32-3); those readings' rules stay unit-tested for
the zero proof (tests/lambdas/failover/test_zero_lag.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise

import pytest

from automation.emulator.data import Store
from lambdas.failover.regressions import Regression
from lambdas.failover.steps import DRAIN_SECONDS
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment
from tests.safety.regressions import regressed

Deploy = Callable[..., Deployment]

PLANNED = {"force": True, "planned": True, "waiterMaxAttempts": 40}
"""A planned failover with a 10-minute budget (40 polls of 15 s): its 5-minute drain, then the lag."""


def _no_loss(d: Deployment) -> list[str]:
    return [str(v) for v in d.judge() if v.invariant == "no_loss"]


def planned_failover_while_receipts_replicate_slowly(deploy: Deploy, mode: str = "rds-replica") -> Deployment:
    """S3 takes 15 minutes per receipt (no RTC, no promised time): a planned failover after steady
    client traffic. The database is at zero lag (or switched over) minutes before the receipts
    have replicated."""
    d = deploy(mode)
    d.emulator.slow_replication(Store.RECEIPTS, 900.0)
    d.op_advance(300)
    d.op_run("failover", params=PLANNED | {"waiterMaxAttempts": 120})
    d.op_advance(300)
    return d


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_no_loss_a_planned_failover_waits_for_the_receipts_to_replicate(deploy: Deploy, mode: str) -> None:
    d = planned_failover_while_receipts_replicate_slowly(deploy, mode)
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    assert not _no_loss(d), _no_loss(d)


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_checker_sees_a_planned_failover_that_does_not_wait_for_the_receipts(
    deploy: Deploy, mode: str
) -> None:
    with regressed(Regression.SKIP_STORE_DRAIN):
        d = planned_failover_while_receipts_replicate_slowly(deploy, mode)
    assert any("receipts" in v for v in _no_loss(d)), _no_loss(d)


def failback_over_an_idle_postgres_source(deploy: Deploy) -> Deployment:
    """rds-replica, RDS for PostgreSQL: region A goes dark, the failover promotes region B, region A
    answers again, clients write through region B for ten minutes, then the failback drains region B.
    From the drain on no client write reaches region B's database (the source): the failback replica
    in region A is caught up, and its ``ReplicaLag`` (``now() - pg_last_xact_replay_timestamp()``)
    grows a minute a minute."""
    d = deploy("rds-replica", engine="postgres")
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    d.op_run("failover")
    d.op_recover()
    d.op_advance(600)
    d.op_run(
        "failback", params={"waiterMaxAttempts": 120, "failbackKmsKeyId": d.world.context["primaryKmsKeyArn"]}
    )
    d.op_advance(300)
    return d


def _lag_while_drained(d: Deployment) -> list[float]:
    """``ReplicaLag`` datapoints region A's replica published in the drain before the runbook's first
    marker commit (oldest first): the source commits nothing then."""
    markers = [e.at for e in d.emulator.events if e.kind == "marker"]
    assert markers, "the runbook caused no marker commit on the source"
    points = d.world.client("cloudwatch", REGION_A).get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": d.ctx.primary_db_instance_id}],
        StartTime=markers[0] - timedelta(seconds=DRAIN_SECONDS - 60),
        EndTime=markers[0],
        Period=60,
        Statistics=["Minimum"],
    )["Datapoints"]
    return [p["Minimum"] for p in sorted(points, key=lambda p: p["Timestamp"])]


def test_no_loss_an_rds_postgres_failback_over_an_idle_source_completes(deploy: Deploy) -> None:
    """Nothing acknowledged is lost on a planned change, and the failback converges, on AWS's
    documented PostgreSQL metric: the zero-lag wait proves the replica replayed a commit made after
    the drain (its marker), instead of waiting for a 0 that a drained source never gives."""
    d = failback_over_an_idle_postgres_source(deploy)
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    d.judge()
    assert not [str(v) for v in d.violations], [str(v) for v in d.violations]
    emu = d.emulator
    writer = d.writer()
    assert writer == d.keys()[0], "region A's instance is the writer again"
    taken_in_b = [w for w in emu.data.acknowledged(Store.DATABASE) if w.region == REGION_B]
    assert taken_in_b, "region B acknowledged no write while it was the writer (nothing to lose)"
    lost = emu.data.missing(writer, taken_in_b)
    assert lost == [], f"{len(lost)} write(s) acknowledged in region B are missing from the writer"
    lag = _lag_while_drained(d)
    assert len(lag) >= 3 and all(b - a == 60 for a, b in pairwise(lag)), (
        f"the caught-up replica of the drained source: ReplicaLag must grow a minute a minute, read {lag}"
    )


def test_the_zero_lag_datapoint_proof_never_completes_an_rds_postgres_failback(deploy: Deploy) -> None:
    """Converges (the old proof back behind ``Regression.PG_ZERO_LAG_DATAPOINTS``): two zero minutes
    after the drain never come from a drained PostgreSQL source; the failback waits out its budget,
    gives up and undoes its drain (region B serves the writer again)."""
    with regressed(Regression.PG_ZERO_LAG_DATAPOINTS):
        d = failback_over_an_idle_postgres_source(deploy)
    run = d.last_run
    assert run is not None and run.outcome == "stopped" and "gave up waiting for zero lag" in run.detail, run
    assert not [e for e in d.emulator.events if e.kind == "marker"], "the old proof commits no marker"
    assert d.emulator.serving(REGION_B) and d.emulator.database_writable(REGION_B), "region B left drained"
