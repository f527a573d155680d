"""A virtual clock for the emulator: AWS's minutes pass in microseconds, in order, deterministically.

Everything time-dependent in the emulated world reads this clock: the runbook (through
``Clients.clock``), botocore's waiters (``install_waiter_clock``), replication, promotions and
Aurora failovers that finish at a later instant, ALB draining, CloudWatch datapoints and alarm
evaluation. ``sleep`` is how time passes: a caller that sleeps 15 s lets every timer due in those
15 s fire, in due order, before it returns. Nothing sleeps for real.

Threads: the clock is shared and guarded by one re-entrant lock; a sleep from one thread advances
the world for all. The in-process executor runs a layer's steps in parallel threads, so parallel
waits are counted one after the other: durations measured under the virtual clock are an upper
bound, never an under-estimate (the safe side for an RTO).
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from automation.emulator.exceptions import TimeWentBackwards

EPOCH = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
"""Where virtual time starts unless told otherwise (fixed, so schedules replay exactly)."""


class VirtualClock:
    """Virtual time with timers. Implements the runbook's ``Clock`` protocol."""

    def __init__(self, start: datetime = EPOCH) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock start must be timezone-aware (UTC)")
        self._now = start.astimezone(UTC)
        self._start = self._now
        self._timers: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._firing = False

    # -- the Clock protocol ---------------------------------------------------------------------

    def now(self) -> datetime:
        """Current virtual time (UTC)."""
        return self._now

    def monotonic(self) -> float:
        """Seconds since the clock started."""
        return (self._now - self._start).total_seconds()

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (timers due meanwhile fire first)."""
        self.advance(seconds)

    # -- driving time ---------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in order at their own instants."""
        if seconds < 0:
            raise TimeWentBackwards(f"time cannot go backwards ({seconds} s)")
        with self._lock:
            self.run_until(self._now + timedelta(seconds=seconds))

    def run_until(self, target: datetime) -> None:
        """Fire every timer due up to ``target``, then stand at ``target``."""
        with self._lock:
            while self._timers and self._timers[0][0] <= target:
                due, _, fn = heapq.heappop(self._timers)
                self._now = max(self._now, due)
                fn()
            self._now = max(self._now, target)

    def at(self, when: datetime, fn: Callable[[], None]) -> None:
        """Call ``fn`` when virtual time reaches ``when`` (at once, on the next advance, if past)."""
        with self._lock:
            heapq.heappush(self._timers, (max(when, self._now), next(self._seq), fn))

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` ``seconds`` from now."""
        self.at(self._now + timedelta(seconds=seconds), fn)

    def every(self, seconds: float, fn: Callable[[], None], *, align: bool = True) -> None:
        """Call ``fn`` every ``seconds`` (aligned to multiples of ``seconds`` since the epoch)."""
        if seconds <= 0:
            raise ValueError("period must be positive")
        period = timedelta(seconds=seconds)

        def first() -> datetime:
            if not align:
                return self._now + period
            offset = (self._now - EPOCH) % period
            return self._now + (period - offset)

        def tick() -> None:
            fn()
            self.at(self._now + period, tick)

        self.at(first(), tick)

    @property
    def pending(self) -> int:
        """Timers not yet fired."""
        return len(self._timers)


class _WaiterTime:
    """Stands in for the ``time`` module inside ``botocore.waiter`` while a virtual clock rules."""

    def __init__(self, clock: VirtualClock, real: Any) -> None:
        self._clock = clock
        self._real = real

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def waiter_clock(clock: VirtualClock) -> Iterator[None]:
    """Make botocore's waiters sleep on ``clock`` (the runbook's waiters are real boto3 waiters).

    botocore's ``Waiter.wait`` polls, then calls ``time.sleep(Delay)`` from the ``botocore.waiter``
    module; swapping that module's ``time`` is the only change, and it is undone on exit.
    """
    import botocore.waiter as waiter_module

    real = waiter_module.time
    waiter_module.time = _WaiterTime(clock, real)  # type: ignore[assignment]
    try:
        yield
    finally:
        waiter_module.time = real


JITTER_SEED = 0
"""Seed of the retry back-off's jitter while a virtual clock rules (see ``retry_clock``)."""


@contextmanager
def retry_clock(clock: VirtualClock, *, jitter_seed: int = JITTER_SEED) -> Iterator[None]:
    """Make botocore's retry back-off sleep on ``clock``; its adaptive rate limiter never blocks.

    botocore sleeps between attempts with ``time.sleep`` in ``botocore.endpoint``; that module's
    ``time`` is swapped like the waiters'. The adaptive mode's client-side token bucket waits on a
    real condition variable: the emulator does not model client-side rate limiting (it lets a
    throttled client send again after its virtual back-off), so ``acquire`` answers at once.

    The back-off is "truncated binary exponential backoff with jitter", ``rand(0, 1) * min(base *
    2 ** i, MAX_BACKOFF)`` (botocore's ``ExponentialBackoff``; the legacy mode's ``base='rand'``
    likewise; https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). Its
    ``rand`` is the process's unseeded ``random``: on a virtual clock the sleep *is* virtual time, so
    every retried call (a dark region's refused connection, a throttle) moved time by a different
    amount in each process, and a seed's verdict changed from one process to the next (9B-10). The
    jitter keeps its distribution, drawn from a generator seeded with ``jitter_seed``.
    """
    import botocore.endpoint as endpoint_module
    import botocore.retryhandler as legacy_module
    from botocore.retries.bucket import TokenBucket
    from botocore.retries.standard import ExponentialBackoff

    rng = random.Random(jitter_seed)
    real = endpoint_module.time
    acquire = TokenBucket.acquire
    backoff_init = ExponentialBackoff.__init__
    legacy_random = legacy_module.random

    def seeded_init(self: ExponentialBackoff, *args: Any, **kwargs: Any) -> None:
        backoff_init(self, *args, **kwargs)
        self._random = rng.random  # the jitter's source, set by __init__

    endpoint_module.time = _WaiterTime(clock, real)  # type: ignore[assignment]
    TokenBucket.acquire = lambda self, amount=1, block=True: True  # type: ignore[method-assign]
    ExponentialBackoff.__init__ = seeded_init  # type: ignore[method-assign]
    legacy_module.random = rng  # type: ignore[assignment]  # the module calls random.random()
    try:
        yield
    finally:
        endpoint_module.time = real
        TokenBucket.acquire = acquire  # type: ignore[method-assign]
        ExponentialBackoff.__init__ = backoff_init  # type: ignore[method-assign]
        legacy_module.random = legacy_random
