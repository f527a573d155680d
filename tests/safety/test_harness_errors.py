"""The checker never skips a judgment silently: an error of its own fails the schedule, loudly.

A soak (seeds 3000-3799) saw op_overlap's second run die in its thread of a harness error
(``dictionary changed size during iteration``): only that thread ended, the schedule went on with the
second run unjudged, and the soak reported 0 violations for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.safety import driver
from tests.safety.model import Deployment


class _TwoRuns:
    """Just enough of a Deployment for ``op_overlap``: the first run's call starts the second."""

    def __init__(self, second_fails: bool) -> None:
        self.on_actor: Any = None
        self.second_fails = second_fails
        self.counted: list[str] = []

    def _count(self, what: str) -> None:
        self.counted.append(what)

    def op_run(self, runbook: str, *, params: dict[str, Any], executor_name: str) -> None:
        if runbook == "failover":  # the first run: begins, then makes the call the overlap waits for
            self.on_actor("begin", "run-1")
            self.on_actor("call:PromoteReadReplica", "run-1")
            self.on_actor("end", "run-1")
            return
        self.on_actor("begin", "run-2")
        if self.second_fails:
            raise RuntimeError("dictionary changed size during iteration")
        self.on_actor("acted", "run-2")


def _overlap(world: _TwoRuns) -> None:
    Deployment.op_overlap(
        world,  # type: ignore[arg-type]
        ("failover", {}, "cli"),
        ("failback", {}, "cli"),
        frozenset({"PromoteReadReplica"}),
    )


def test_an_error_in_the_second_runs_thread_fails_the_operation() -> None:
    """single_flight and the rest are judged on both runs, or the schedule fails: never neither."""
    with pytest.raises(RuntimeError, match=r"second run raised.*dictionary changed size"):
        _overlap(_TwoRuns(second_fails=True))


def test_two_runs_that_end_normally_raise_nothing() -> None:
    world = _TwoRuns(second_fails=False)
    _overlap(world)
    assert world.counted == ["overlap"]


class _Broken:
    def apply(self, deployment: Deployment) -> None:
        raise RuntimeError("the checker's own bug")

    def __str__(self) -> str:
        return "broken"


def test_a_schedule_whose_checker_raises_reports_a_harness_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The soak goes on past the schedule, counts it as broken and exits non-zero."""

    def ops(rng: Any, *, soak: bool = False) -> Iterator[_Broken]:
        while True:
            yield _Broken()

    monkeypatch.setattr(driver, "operations", ops)
    with driver.moto_session():
        result = driver.run_schedule(7, mode="rds-replica", length=3)
    assert [v.invariant for v in result.violations] == [driver.HARNESS]
    assert "the checker's own bug" in result.violations[0].detail
    assert "(checker errors)" in driver.report(result.exercised, Counter([driver.HARNESS]))
