"""The canary's switch decision (``probe.switch_position``), one row per rule of its docstring.

Invariant: *traffic follows the writer* (docs/safety.md). The switch only ever moves towards the region
the evidence says holds the writer, and otherwise stays where it is (None: nothing is published, and the
switch alarm's ``LastKnownStatus`` keeps Route 53's answer). test_probe.py checks the same decisions end
to end (the canary's reads and puts against moto); this table pins each branch so that a changed
comparison or a dropped condition fails a named row.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lambdas.health_check import probe
from lambdas.health_check.probe import ProbeResult, Target, switch_position

WEB = Target("web", "http://a.example/health")
API = Target("api", "http://a.example/api/health")


def answer(
    target: Target, *, healthy: bool = True, status: int | None = 200, writer: bool | None = True
) -> ProbeResult:
    return ProbeResult(target, healthy, status, 12.0, writer=writer)


WRITES = (answer(WEB), answer(API))
"""Every region-A target answers healthy that its database is the writer."""
ONE_DOWN = (answer(WEB), answer(API, healthy=False, status=503, writer=None))
NOT_WRITER = (answer(WEB, writer=False), answer(API, writer=False))
UNKNOWN = (answer(WEB, writer=None), answer(API))
DARK = (
    answer(WEB, healthy=False, status=None, writer=None),
    answer(API, healthy=False, status=None, writer=None),
)
HALF_DARK = (
    answer(WEB, healthy=False, status=None, writer=None),
    answer(API, healthy=False, status=503, writer=None),
)


@pytest.fixture(autouse=True)
def no_regressions() -> Iterator[None]:
    """The deployed canary: no test-only old behaviour switched on."""
    saved = set(probe._REGRESSIONS)
    probe._REGRESSIONS.clear()
    yield
    probe._REGRESSIONS.clear()
    probe._REGRESSIONS.update(saved)


@pytest.mark.parametrize(
    ("latch", "results", "held", "moving_back", "expected"),
    [
        # Active: the failover's, completed here (1), whatever region A says...
        ("active", WRITES, False, False, 1),
        ("active", WRITES, True, False, 1),
        ("active", DARK, True, False, 1),
        ("active", (), True, False, 1),
        # ...unless a failback's writer move is journaled and region A answers as the writer (seeds 98, 615).
        ("active", WRITES, True, True, 0),
        ("active", WRITES, False, True, 0),
        # The mark with less than that: the switch stays (seed 2036: released ahead of region A's launch).
        ("active", ONE_DOWN, True, True, None),
        ("active", NOT_WRITER, True, True, None),
        ("active", UNKNOWN, True, True, None),
        ("active", DARK, True, True, None),
        ("active", (), True, True, None),
        # Standby, nothing held: region A's writer gets traffic; a dark region A releases too (seed 2).
        ("standby", WRITES, False, False, 0),
        ("standby", DARK, False, False, 0),
        ("standby", HALF_DARK, False, False, None),
        ("standby", ONE_DOWN, False, False, None),
        ("standby", NOT_WRITER, False, False, None),
        ("standby", UNKNOWN, False, False, None),
        ("standby", (), False, False, None),
        # Standby while a failover holds region A (hand-set latch, B20-1): nothing moves...
        ("standby", WRITES, True, False, None),
        ("standby", DARK, True, False, None),
        # ...unless the failback's mark says region A's writer is the one it moved back (or never left).
        ("standby", WRITES, True, True, 0),
        ("standby", DARK, True, True, 0),
        ("standby", ONE_DOWN, True, True, None),
        # Deleted or garbled latch: as standby when region A writes and nothing holds it, never on a dark A.
        (None, WRITES, False, False, 0),
        (None, WRITES, True, False, None),
        (None, WRITES, True, True, 0),
        (None, DARK, False, False, None),
        (None, NOT_WRITER, False, False, None),
        # Any other state: leave it.
        ("failing-back", WRITES, False, False, None),
        ("failing-back", DARK, False, False, None),
    ],
)
def test_traffic_follows_the_writer_switch_position(
    latch: str | None,
    results: tuple[ProbeResult, ...],
    held: bool,
    moving_back: bool,
    expected: int | None,
) -> None:
    assert switch_position(latch, results, held=held, writer_moving_back=moving_back) == expected


@pytest.mark.parametrize(
    ("regression", "latch", "results", "held", "moving_back", "expected"),
    [
        # The old canaries the safety checker turns back on (tests/safety/regressions.py) differ here.
        ("canary-ignores-writer-move", "active", WRITES, True, True, 1),
        ("canary-releases-on-doubt", None, DARK, True, False, 0),
        ("canary-releases-on-doubt", "failing-back", NOT_WRITER, False, False, 0),
        ("canary-trusts-standby", "standby", WRITES, True, False, 0),
    ],
)
def test_each_test_only_regression_changes_its_decision(
    regression: str,
    latch: str | None,
    results: tuple[ProbeResult, ...],
    held: bool,
    moving_back: bool,
    expected: int | None,
) -> None:
    """The checker's regressions must really be the old behaviour, else it proves nothing with them."""
    assert switch_position(latch, results, held=held, writer_moving_back=moving_back) != expected
    probe._REGRESSIONS.add(regression)
    assert switch_position(latch, results, held=held, writer_moving_back=moving_back) == expected


def test_by_default_nothing_holds_region_a_and_no_writer_moves_back() -> None:
    """The keyword defaults are the journal that records nothing: standby releases to region A's writer,
    active throws."""
    assert switch_position("standby", WRITES) == 0
    assert switch_position("active", WRITES) == 1
