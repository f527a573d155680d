"""When the thrown switch takes effect (``steps.switch_takes_effect_at``, ``steps.switch_effect_due``): an
unplanned promotion waits for it, so a region A that answers again is not answered by Route 53 once the
writer has moved (docs/safety.md, "Nothing acknowledged is lost"; seed 6), counting the runbook's own
throw whether or not GetMetricData returns its datapoint yet (break32 B32-4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest

from lambdas.failover import steps
from lambdas.failover.clients import Clients
from lambdas.failover.clock import Clock
from lambdas.failover.context import RunbookContext
from lambdas.failover.stepkit import _metric_query
from lambdas.failover.steps import SWITCH_EVALUATION_SECONDS, switch_effect_due, switch_takes_effect_at
from lambdas.failover.traffic import _own_throw_unseen, _recorded_throw
from tests.lambdas.failover.faults import FaultSwitch, unreachable
from tests.lambdas.failover.harness import FORCED, ShiftedClock, new_session
from tests.lambdas.failover.world import REGION_A, REGION_B, World

T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVAL = timedelta(seconds=SWITCH_EVALUATION_SECONDS)


def test_a_switch_thrown_this_minute_takes_effect_when_the_alarm_has_evaluated_the_minute() -> None:
    assert switch_takes_effect_at([(T, 1.0)]) == T + MINUTE + EVAL


def test_the_thrown_stretch_counts_from_its_first_minute_after_the_last_release() -> None:
    points = [(T, 0.0), (T + MINUTE, 1.0), (T + 2 * MINUTE, 1.0), (T + 3 * MINUTE, 1.0)]
    assert switch_takes_effect_at(points) == T + 2 * MINUTE + EVAL
    # Order does not matter; a gap (no datapoint: the alarm keeps its state) does not restart it.
    gap = [(T + 4 * MINUTE, 1.0), (T + MINUTE, 1.0)]
    assert switch_takes_effect_at(gap) == T + 2 * MINUTE + EVAL


def test_a_released_or_never_thrown_switch_has_nothing_to_wait_for() -> None:
    assert switch_takes_effect_at([]) is None
    assert switch_takes_effect_at([(T, 1.0), (T + MINUTE, 0.0)]) is None


# ``switch_effect_due``: the wait of an unplanned promotion counts the runbook's own recorded throw,
# whether or not GetMetricData returns its datapoint yet (break32 B32-4).


def test_a_recorded_throw_not_returned_yet_is_waited_for_until_its_minute_has_been_evaluated() -> None:
    # GetMetricData returns only the canary's 0s; the runbook put its 1 at 12:04:35.
    canary = [(T + k * MINUTE, 0.0) for k in range(4)]
    thrown = T + 4 * MINUTE + timedelta(seconds=35)
    assert switch_effect_due(canary, thrown, now=thrown) == T + 5 * MINUTE + EVAL
    assert switch_effect_due([], thrown, now=thrown + timedelta(seconds=5)) == T + 5 * MINUTE + EVAL


def test_the_later_of_the_visible_stretch_and_the_recorded_throw_is_waited_for() -> None:
    now = T + 10 * MINUTE
    # The switch shows thrown since 12:00, the runbook's 1 went in at 12:04: its minute bounds the wait.
    earlier = [(T + k * MINUTE, 1.0) for k in range(4)]
    assert switch_effect_due(earlier, T + 4 * MINUTE, now) == T + 5 * MINUTE + EVAL
    # Released and thrown again (12:07) after the recorded throw (12:02): the new stretch bounds it.
    again = [(T + 2 * MINUTE, 1.0), (T + 6 * MINUTE, 0.0), (T + 7 * MINUTE, 1.0)]
    assert switch_effect_due(again, T + 2 * MINUTE, now) == T + 8 * MINUTE + EVAL


def test_without_a_recorded_throw_the_visible_switch_decides() -> None:
    assert switch_effect_due([(T, 1.0)], None, T) == T + MINUTE + EVAL
    assert switch_effect_due([(T, 0.0)], None, T) is None
    assert switch_effect_due([], None, T) is None


def test_a_recorded_throw_stamped_ahead_of_the_runbook_clock_counts_as_thrown_now() -> None:
    now = T + timedelta(seconds=20)
    assert switch_effect_due([], T + timedelta(days=365), now) == T + MINUTE + EVAL


def test_the_thrown_minute_is_the_utc_minute_of_the_recorded_instant() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    thrown = (T + timedelta(seconds=59, microseconds=999_999)).astimezone(ist)
    assert switch_effect_due([], thrown, now=T + MINUTE) == T + MINUTE + EVAL


def _complete_minutes_only(session: boto3.Session, clock: Clock) -> None:
    """GetMetricData returns a datapoint only once its minute has ended (CloudWatch documents no bound
    on when a datapoint just put is returned; moto returns it at once)."""

    def hide(parsed: dict[str, Any] | None = None, **_: Any) -> None:
        for result in (parsed or {}).get("MetricDataResults", []):
            kept = [
                (t, v)
                for t, v in zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                if t + MINUTE <= clock.now()
            ]
            result["Timestamps"] = [t for t, _ in kept]
            result["Values"] = [v for _, v in kept]

    session.events.register("after-call.cloudwatch.GetMetricData", hide)


def _thrown_over_dark_region_a(world: World) -> tuple[RunbookContext, Clients, ShiftedClock, FaultSwitch]:
    """A forced failover up to its throw: region A does not answer (fence pending), latch, switch."""
    clock = ShiftedClock()
    session = new_session()
    faults = FaultSwitch()
    faults.install(session)
    _complete_minutes_only(session, clock)
    ctx = RunbookContext.from_dict(world.context)
    clients = Clients.for_context(ctx, session, endpoint_url=world.endpoint_url, clock=clock)
    faults.active = [unreachable(REGION_A)]
    assert steps.fence_primary(ctx, clients, FORCED).status == "warning"
    steps.write_latch(ctx, clients, FORCED)
    assert steps.throw_switch(ctx, clients, FORCED).status == "done"
    return ctx, clients, clock, faults


@pytest.mark.parametrize("wait", [False, True], ids=["sfn", "cli"])
def test_an_unplanned_promotion_waits_for_its_own_throw_that_get_metric_data_does_not_return_yet(
    make_world: Callable[..., World], wait: bool
) -> None:
    """docs/safety.md, a failover's order (2): an unplanned writer move waits until the switch it threw
    has taken effect, read from the run journal's record of the throw, not from GetMetricData alone.
    Step Functions (no ``wait``) is answered in_progress; the CLI waits on the runbook's clock."""
    world = make_world("rds-replica")
    ctx, clients, clock, _ = _thrown_over_dark_region_a(world)
    thrown = datetime.fromisoformat(steps.read_journal(clients, ctx)[steps.SWITCH_THROWN_MARK])
    due = thrown.replace(second=0, microsecond=0) + MINUTE + EVAL
    result = steps.promote_database(ctx, clients, {**FORCED, "wait": wait})
    replica = world.db(REGION_B, ctx.dr_db_instance_id or "") or {}
    if not wait:
        assert result.status == "in_progress", result
        assert "for the switch to take effect" in result.detail, result
        assert replica.get("ReadReplicaSourceDBInstanceIdentifier"), "promoted before the switch took effect"
        return
    assert clock.now() >= due, f"promoted at {clock.now()}, before the switch took effect at {due}"
    assert not replica.get("ReadReplicaSourceDBInstanceIdentifier"), result


def test_a_stopped_failover_releases_the_switch_it_threw_before_get_metric_data_returns_it(
    make_world: Callable[..., World],
) -> None:
    """docs/safety.md, who rolls back: a failover stopped before its writer move releases the switch it
    threw (``roll_back_fence``), its 1 not returned yet; the release clears the record of the throw."""
    world = make_world("rds-replica")
    ctx, clients, _, _ = _thrown_over_dark_region_a(world)
    result = steps.roll_back_fence(ctx, clients, FORCED)
    assert "switch released" in result.detail, result
    assert steps.SWITCH_THROWN_MARK not in steps.read_journal(clients, ctx)
    m = ctx.switch_metric
    seen = world.client("cloudwatch", REGION_B).get_metric_data(
        **_metric_query(clients.clock.now(), m.namespace, m.name, m.dimensions, "Minimum", MINUTE, MINUTE)
    )["MetricDataResults"][0]["Values"]
    assert seen and seen[0] == 0, f"switch not released: {seen}"


def test_a_recorded_throw_counts_until_a_period_that_began_after_it_is_returned() -> None:
    """``_own_throw_unseen``: a release is never taken for done, nor a switch for released, while the
    runbook's recorded 1 may be newer than every datapoint returned; a returned period that began
    after it holds only later datapoints, which decide (a refusal after a failover the canary released
    since puts nothing: CI seed 39)."""
    assert not _own_throw_unseen(None, (0.0, T))
    assert _own_throw_unseen(T, None)
    assert _own_throw_unseen(T + timedelta(seconds=30), (0.0, T))
    assert _own_throw_unseen(T, (0.0, T))
    assert not _own_throw_unseen(T, (0.0, T + timedelta(seconds=1)))


def test_a_recorded_throw_that_cannot_be_read_counts_as_thrown_now() -> None:
    """``_recorded_throw``: a hand-edited or garbled record fails closed (a throw now), never open."""
    now = T + timedelta(seconds=7)
    mark = steps.SWITCH_THROWN_MARK
    assert _recorded_throw({}, now) is None
    assert _recorded_throw({mark: (T - MINUTE).isoformat()}, now) == T - MINUTE
    assert _recorded_throw({mark: "garbled"}, now) == now
    assert _recorded_throw({mark: "2026-11-30T11:59:00"}, now) == now  # no offset: whose clock?
