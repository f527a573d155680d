"""When the thrown switch takes effect (``steps.switch_takes_effect_at``): an unplanned promotion waits
for it, so a region A that answers again is not answered by Route 53 once the writer has moved
(docs/safety.md, "Nothing acknowledged is lost"; seed 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdas.failover.steps import SWITCH_EVALUATION_SECONDS, switch_takes_effect_at

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
