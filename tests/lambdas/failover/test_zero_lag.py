"""Nothing acknowledged is lost on a planned change: what proves zero lag after the drain.

``steps.zero_lag_evidence`` decides, from one-minute datapoints of a series that reads 0 once caught up
(the receipts' S3 ``OperationsPendingReplication``), whether a store holds every write the drain let
through. A negative value (RDS's ``ReplicaLag`` -1: replication not active), a missing minute, or a single
zero that may have been sampled before the last write is never proof. ``steps.replay_evidence`` is RDS for
PostgreSQL's proof; RDS for MySQL and MariaDB have none (``lossless.database_lag`` refuses them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from lambdas.failover import regressions
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.lossless import SETTLE_FACTOR, SETTLE_FLOOR, database_lag, settled_evidence
from lambdas.failover.regressions import Regression
from lambdas.failover.steps import replay_evidence, zero_lag_evidence

DRAINED = datetime(2026, 11, 30, 12, 4, 50, tzinfo=UTC)
"""The drain ended 10 s before 12:05: the first minute wholly after it begins at 12:05."""


def _at(hh_mm: str) -> datetime:
    h, m = map(int, hh_mm.split(":"))
    return DRAINED.replace(hour=h, minute=m, second=0)


@pytest.mark.parametrize(
    ("points", "why"),
    [
        ([], "no datapoint"),
        ([("12:04", 0.0)], "the minute the drain ended in is not after it"),
        ([("12:05", 0.0)], "a single zero may predate a write late in the drain"),
        ([("12:05", -1.0), ("12:06", -1.0)], "-1: replication not active"),
        ([("12:05", 0.0), ("12:06", -1.0)], "the latest minute says replication stopped"),
        ([("12:05", 0.0), ("12:06", -0.5)], "a negative lag is not zero"),
        ([("12:05", 0.0), ("12:07", 0.0)], "a missing minute between the zeros"),
        ([("12:05", 0.0), ("12:06", 0.0), ("12:07", 2.0)], "the latest minute is behind"),
        ([("12:05", 3.0), ("12:06", 0.0)], "the minute before the latest zero was behind"),
    ],
)
def test_zero_lag_is_not_proven_by(points: list[tuple[str, float]], why: str) -> None:
    proven, seen = zero_lag_evidence([(_at(t), v) for t, v in points], DRAINED)
    assert not proven, f"{why}: {points} read as zero lag after the drain ({seen})"


def test_two_consecutive_zero_minutes_after_the_drain_prove_zero_lag() -> None:
    points = [(_at("12:04"), 5.0), (_at("12:05"), 0.0), (_at("12:06"), 0.0)]
    proven, seen = zero_lag_evidence(list(reversed(points)), DRAINED)
    assert proven, seen


@pytest.mark.parametrize(
    ("regression", "points"),
    [
        (Regression.LAG_NOT_ACTIVE_IS_CAUGHT_UP, [("12:05", -1.0), ("12:06", -1.0)]),
        (Regression.ONE_ZERO_PROVES_ZERO_LAG, [("12:05", 0.0)]),
    ],
)
def test_the_regression_flags_bring_the_old_reading_back(regression: Regression, points: list) -> None:
    """The test-only flags the safety checker uses (tests/safety) do change the reading."""
    regressions.ACTIVE.add(regression.value)
    try:
        proven, _ = zero_lag_evidence([(_at(t), v) for t, v in points], DRAINED)
    finally:
        regressions.ACTIVE.discard(regression.value)
    assert proven


def test_the_minute_that_begins_as_the_drain_ends_is_not_yet_after_it() -> None:
    drained = DRAINED.replace(minute=5, second=0)
    points = [(drained + timedelta(minutes=1), 0.0), (drained + timedelta(minutes=2), 0.0)]
    assert zero_lag_evidence(points, drained)[0]
    assert not zero_lag_evidence([(drained, 0.0), (drained + timedelta(minutes=1), 0.0)], drained)[0]


class _FakeClients:
    """Just what ``_loss_estimate`` reads: the clock and region B's CloudWatch."""

    def __init__(self, value: float, at: datetime) -> None:
        self.value, self.at = value, at
        self.clock = self

    def now(self) -> datetime:
        return self.at + timedelta(seconds=90)

    def cloudwatch(self, side: str) -> _FakeClients:
        return self

    def get_metric_data(self, **_: object) -> dict[str, object]:
        return {"MetricDataResults": [{"Values": [self.value], "Timestamps": [self.at]}]}


def test_an_unplanned_promotion_never_reports_minus_one_as_a_bound() -> None:
    """The loss estimate of an unplanned promotion: -1 is not "up to 89 s" but an unknown span."""
    from lambdas.failover.promotion import _loss_estimate

    note = _loss_estimate(_FakeClients(-1.0, DRAINED), "ReplicaLag", {"DBInstanceIdentifier": "db"}, 1.0)  # type: ignore[arg-type]
    assert "unknown span" in note and "not active" in note, note
    note = _loss_estimate(_FakeClients(4.0, DRAINED), "ReplicaLag", {"DBInstanceIdentifier": "db"}, 1.0)  # type: ignore[arg-type]
    assert "up to 94 s" in note, note


# -- RDS for PostgreSQL: a replayed commit after the drain -----------------------------------------


@pytest.mark.parametrize(
    ("points", "why"),
    [
        ([], "no datapoint"),
        ([("12:05", 6.0)], "a commit of 12:04:54: within the 5 s margin for clock skew after the drain"),
        (
            [("12:05", 5.0), ("12:06", 65.0), ("12:07", 125.0)],
            "growing a minute a minute: idle since 12:04:55",
        ),
        ([("12:06", 65.0)], "a commit of 12:04:55: exactly the margin, not after it"),
        ([("12:06", -1.0)], "-1 is not documented for PostgreSQL and proves nothing"),
    ],
)
def test_a_replayed_commit_after_the_drain_is_not_proven_by(
    points: list[tuple[str, float]], why: str
) -> None:
    """PostgreSQL's ``ReplicaLag`` is ``now() - pg_last_xact_replay_timestamp()``: after a drain it never
    reads 0, and only a replayed commit made after the drain ended proves the replica holds every
    write the drain let through."""
    proven, seen = replay_evidence([(_at(t), v) for t, v in points], DRAINED)
    assert not proven, f"{why}: {points} read as replayed after the drain ({seen})"


def test_a_replayed_commit_after_the_drain_proves_every_write_of_the_drain_is_on_the_replica() -> None:
    """The marker committed at 12:05:05 (15 s after the drain), replayed by the 12:06 sample: 12:06 - 55 s
    = 12:05:05 > 12:04:50 + 5 s. One such datapoint suffices, even followed by a growing lag."""
    points = [(_at("12:05"), 15.0), (_at("12:06"), 55.0), (_at("12:07"), 115.0)]
    proven, seen = replay_evidence(list(reversed(points)), DRAINED)
    assert proven, seen


def test_the_old_zero_proof_never_holds_on_a_drained_postgres_source() -> None:
    """Control for ``Regression.PG_ZERO_LAG_DATAPOINTS``: the series a caught-up replica of a drained
    source publishes never satisfies the zero proof, however long it is waited for."""
    points = [(_at("12:05") + timedelta(minutes=k), 10.0 + 60 * k) for k in range(60)]
    assert not zero_lag_evidence(points, DRAINED)[0]


@pytest.mark.parametrize("engine", ["mysql", "mariadb"])
def test_rds_for_mysql_and_mariadb_have_no_zero_lag_proof(engine: str) -> None:
    """Nothing acknowledged is lost (break32 B32-3): a planned writer move over RDS for MySQL or MariaDB never
    waits on ``ReplicaLag`` (Seconds_Behind_Source reads 0 over a slow link while the I/O thread is behind,
    https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html). Reached only when region A, dark at
    ``confirm_primary_down``, answers at the fence: the step stops, not retryable, the engine named."""
    ctx = SimpleNamespace(primary_region="us-east-1", dr_region="us-west-2", app_name="shop", environment="p")
    with pytest.raises(StepFailed) as refused:
        database_lag(
            ctx, "dr", "ReplicaLag", {"DBInstanceIdentifier": "shop-db"}, engine, step="promote_database"
        )  # type: ignore[arg-type]
    err = refused.value
    assert (err.step, err.code, err.retryable) == ("promote_database", "UnprovableEngine", False), err
    assert f"shop-db in us-west-2 is RDS for {engine}" in err.reason, err.reason
    lag = database_lag(ctx, "dr", "ReplicaLag", {"DBInstanceIdentifier": "shop-db"}, "postgres")  # type: ignore[arg-type]
    assert lag.marker is not None, "RDS for PostgreSQL: the replayed-commit proof, with the marker"


# -- the DynamoDB global table: AWS's documented wait of ten times the recent maximum latency ---------


def _ms(points: list[tuple[str, float]]) -> list[tuple[datetime, float]]:
    return [(_at(t), seconds * 1000.0) for t, seconds in points]


def test_the_global_table_waits_ten_times_its_recent_maximum_latency_after_the_drain() -> None:
    """no_loss (multi-writer stores): version 2019.11.21 publishes no pending count, so the proof is AWS's
    evacuation procedure: writes paused, wait ten times the recent maximum ``ReplicationLatency``
    (https://docs.aws.amazon.com/prescriptive-guidance/latest/dynamodb-global-tables/evacuation-processes.html).
    The maximum counts, not the latest, and a second before the end is not yet the end."""
    points = _ms([("11:30", 1.0), ("11:50", 90.0), ("12:00", 2.0)])
    until = DRAINED + timedelta(seconds=SETTLE_FACTOR * 90.0)
    assert SETTLE_FACTOR == 10.0
    assert settled_evidence(points, DRAINED, until - timedelta(seconds=1), 1.0)[0] is False
    proven, seen = settled_evidence(points, DRAINED, until, 1.0)
    assert proven, seen
    assert "90 s" in seen


def test_a_latency_that_grows_while_the_runbook_waits_makes_it_wait_longer() -> None:
    """Read again at every poll: a datapoint of the minutes after the drain raises the bar."""
    now = DRAINED + timedelta(seconds=SETTLE_FACTOR * 60.0)
    assert settled_evidence(_ms([("12:00", 60.0)]), DRAINED, now, 1.0)[0] is True
    assert settled_evidence(_ms([("12:00", 60.0), ("12:10", 61.0)]), DRAINED, now, 1.0)[0] is False


@pytest.mark.parametrize("points", [[], [("12:00", 0.5)], [("12:00", -1.0)]])
def test_the_global_table_never_settles_before_the_drain_s_period_is_published(points: list) -> None:
    """DynamoDB aggregates ``ReplicationLatency`` over five minutes: the latency of the items the drain let
    through is published only after the period the drain ended in; so whatever the reading (none, tiny,
    an undocumented negative), the wait lasts ``SETTLE_FLOOR`` (6 minutes) after the drain."""
    assert timedelta(seconds=360) == SETTLE_FLOOR
    before = DRAINED + SETTLE_FLOOR - timedelta(seconds=1)
    assert settled_evidence(_ms(points), DRAINED, before, 0.5)[0] is False
    assert settled_evidence(_ms(points), DRAINED, DRAINED + SETTLE_FLOOR, 0.5)[0] is True


def test_the_global_table_s_wait_says_what_it_read() -> None:
    """What the operator reads while it waits: the datapoints counted and the drain marker's latency apart."""
    _, seen = settled_evidence([], DRAINED, DRAINED, 0.5)
    assert seen.startswith("recent maximum 0.5 s (0 datapoints, the drain marker's 0.5 s)"), seen
    _, seen = settled_evidence(_ms([("12:00", 0.0)]), DRAINED, DRAINED, 2.0)
    assert seen.startswith("recent maximum 2 s (1 datapoints, the drain marker's 2 s)"), seen


# -- the drain marker: the latency of the link after the drain, which the metric does not publish -------


@pytest.mark.parametrize("points", [[], [("12:00", 1.0)], [("11:30", 90.0)]])
def test_the_global_table_never_settles_before_its_drain_marker_is_readable_in_the_target(
    points: list,
) -> None:
    """no_loss (break34 B34-2): ``ReplicationLatency`` is published per item that arrived, so a link that
    stalled (or slowed just before the stop) publishes nothing of its last items; without the drain marker
    readable in the receiving replica nothing is settled, however long after the drain and whatever the
    metric read."""
    proven, seen = settled_evidence(_ms(points), DRAINED, DRAINED + timedelta(days=1), None)
    assert proven is False
    assert seen == "the drain marker is not yet readable in the receiving replica", seen


def test_a_drain_marker_that_took_long_makes_the_wait_ten_times_as_long() -> None:
    """no_loss (break34 B34-2): the table slowed to 15 minutes just before the stop publishes about a second;
    the drain marker, written after the drain, took 900 s: its latency is in the maximum, so the wait is
    ten times it (past any wait budget), not the 6-minute floor the published second gives."""
    points = _ms([("11:50", 1.0), ("12:00", 1.2)])
    assert settled_evidence(points, DRAINED, DRAINED + SETTLE_FLOOR, 1.0)[0] is True, "the link at its pace"
    until = DRAINED + timedelta(seconds=SETTLE_FACTOR * 900.0)
    assert settled_evidence(points, DRAINED, until - timedelta(seconds=1), 900.0)[0] is False
    proven, seen = settled_evidence(points, DRAINED, until, 900.0)
    assert proven, seen
    assert "the drain marker's 900 s" in seen, seen


def test_the_drain_marker_cannot_collide_with_a_payment() -> None:
    """The marker shares the payments table: its key is outside the payments function's key scheme
    (``PAYMENT#<id>`` / ``PAYMENT``), which reads by key only, so a marker is never served as a payment."""
    from lambdas.api.payments import payment_key
    from lambdas.failover.lossless import DRAIN_MARKER_PK, drain_marker_key

    marker = drain_marker_key(DRAINED, "us-east-1")
    assert marker["pk"]["S"] == DRAIN_MARKER_PK and not DRAIN_MARKER_PK.startswith("PAYMENT#")
    assert marker != payment_key("pilotlight#drain")
    assert marker["sk"]["S"] == "20261130T120450Z#us-east-1"
    assert drain_marker_key(DRAINED, "us-east-1", seen=True)["sk"]["S"] == "20261130T120450Z#us-east-1#seen"
