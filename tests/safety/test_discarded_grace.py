"""The checker's judgment of writes an unplanned Aurora failover discarded (tests/safety/model.py
``_judge_discarded``): the runbook keeps them by copying Aurora's ``rds:unplanned-global-failover-*``
snapshot in region A (CopyDBClusterSnapshot, https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-copy-snapshot.html),
which the canary's pending fence or a run does once region A answers. So the judgment falls due once
region A has answered for ``FENCE_GRACE`` since the rebuild, counted over the time it answered, not
over the time that passed: soak seed 1146 (aurora-global) brought region A back and took it dark again
at the same instant, and was judged three minutes later for a copy nothing could have made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from automation.emulator.aws import Event
from tests.safety.model import FENCE_GRACE, _answered_since

T0 = datetime(2026, 11, 30, 12, 36, 10, tzinfo=UTC)
A = "us-east-1"


@dataclass
class _Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class _Emu:
    events: list[Event] = field(default_factory=list)
    clock: _Clock = field(default_factory=lambda: _Clock(T0))


def _world(*later: tuple[int, str], now: int) -> tuple[_Emu, Event]:
    """Region A back at T0 and the rebuild at the same instant, then ``later`` (seconds, kind)."""
    rebuild = Event(T0, "rebuild", f"arn:aws:rds:{A}:1:cluster:a rebuilt", {"discarded": [1]})
    events = [
        Event(T0, "outage", f"{A} stops answering"),
        Event(T0, "recovery", f"{A} answers again"),
        rebuild,
    ]
    events += [
        Event(
            T0 + timedelta(seconds=s),
            kind,
            f"{A} {'answers again' if kind == 'recovery' else 'stops answering'}",
        )
        for s, kind in later
    ]
    return _Emu(events, _Clock(T0 + timedelta(seconds=now))), rebuild


def test_region_a_dark_again_at_the_rebuild_has_answered_for_no_time() -> None:
    emu, rebuild = _world((0, "outage"), now=180)
    assert _answered_since(emu, A, rebuild) == timedelta(0)  # not due: nothing could copy the snapshot


def test_the_time_region_a_answered_is_summed_over_its_outages() -> None:
    emu, rebuild = _world((60, "outage"), (120, "recovery"), now=240)
    assert _answered_since(emu, A, rebuild) == timedelta(seconds=180)  # 0-60 and 120-240
    assert _answered_since(emu, A, rebuild) >= timedelta(seconds=FENCE_GRACE)  # due


def test_region_a_answering_since_the_rebuild_counts_from_it() -> None:
    emu, rebuild = _world(now=100)
    assert _answered_since(emu, A, rebuild) == timedelta(seconds=100)
    other = Event(T0 + timedelta(seconds=10), "outage", "us-west-2 stops answering")
    emu.events.append(other)  # region B's outage does not stop region A's clock
    assert _answered_since(emu, A, rebuild) == timedelta(seconds=100)
