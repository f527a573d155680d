"""The runbook's clock: every wait, poll, latch timestamp and metric timestamp reads it.

In AWS this is the system clock. The local emulator (``automation.emulator.clock``) installs a
virtual clock instead, so a test can let ten minutes of RDS promotion or ALB draining pass in
milliseconds and still see the runbook wait, poll and time out exactly as it would in AWS.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the runbook needs of time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations)."""
        ...


class SystemClock:
    """Wall-clock time: what runs in AWS and from an operator's laptop."""

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(max(0.0, seconds))

    def monotonic(self) -> float:
        """``time.monotonic``."""
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
