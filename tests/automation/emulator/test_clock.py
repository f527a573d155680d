"""The virtual clock: AWS's minutes pass in order, at once, and botocore's waits run on them.

What the clock must give the emulated world: timers fire in due order at their own instants, periodic
work (CloudWatch's one-minute metrics) lands on period boundaries, and every wait the runbook makes
through botocore (a waiter's ``Delay`` between polls, the retry back-off after a throttling error)
passes virtual time instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import NormalizedOperationMethod, Waiter, WaiterModel

from automation.emulator.clock import EPOCH, VirtualClock, retry_clock, waiter_clock
from automation.emulator.exceptions import TimeWentBackwards


def test_timers_fire_in_due_order_each_at_its_own_instant() -> None:
    """A sleep of 60 s lets every timer due meanwhile fire, in due order, seeing its own instant."""
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []
    clock.after(30, lambda: seen.append(("b", clock.monotonic())))
    clock.after(10, lambda: seen.append(("a", clock.monotonic())))
    clock.after(90, lambda: seen.append(("late", clock.monotonic())))
    clock.sleep(60)
    assert seen == [("a", 10.0), ("b", 30.0)]
    assert clock.monotonic() == 60.0
    assert clock.pending == 1, "the timer due after the sleep has not fired"


def test_a_timer_scheduled_by_a_timer_fires_within_the_same_advance() -> None:
    """What a promotion's completion schedules (a follow-up due 5 s later) happens in the same wait."""
    clock = VirtualClock()
    seen: list[float] = []
    clock.after(10, lambda: clock.after(5, lambda: seen.append(clock.monotonic())))
    clock.advance(20)
    assert seen == [15.0]


def test_a_timer_in_the_past_fires_on_the_next_advance_not_back_in_time() -> None:
    clock = VirtualClock()
    clock.advance(100)
    seen: list[datetime] = []
    clock.at(EPOCH, lambda: seen.append(clock.now()))
    clock.advance(0)
    assert seen == [EPOCH + timedelta(seconds=100)]


def test_periodic_work_lands_on_period_boundaries() -> None:
    """CloudWatch's one-minute datapoints: aligned to whole minutes, whenever the work was set up."""
    clock = VirtualClock()
    clock.advance(25)
    stamps: list[datetime] = []
    clock.every(60, lambda: stamps.append(clock.now()))
    clock.advance(200)
    assert stamps == [EPOCH + timedelta(minutes=m) for m in (1, 2, 3)]


@pytest.mark.parametrize("bad", [-1.0, -0.001])
def test_time_never_goes_backwards(bad: float) -> None:
    clock = VirtualClock()
    with pytest.raises(TimeWentBackwards):
        clock.advance(bad)
    with pytest.raises(ValueError):  # still a ValueError for callers that catch the base class
        clock.sleep(bad)


def test_the_clock_runs_in_utc() -> None:
    """AWS timestamps are UTC: a naive start is refused rather than guessed."""
    with pytest.raises(ValueError):
        VirtualClock(datetime(2026, 1, 1))
    assert VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)).now().utcoffset() == timedelta(0)


def test_a_sleep_in_one_thread_advances_the_world_for_all() -> None:
    """The in-process executor's parallel steps share one clock: waits are counted one after another."""
    clock = VirtualClock()
    threads = [threading.Thread(target=clock.sleep, args=(30,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.monotonic() == 90.0


# -- botocore's waits run on the clock -----------------------------------------------------------------

_WAITERS = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "ThingReady": {
                "operation": "DescribeThing",
                "delay": 30,
                "maxAttempts": 10,
                "acceptors": [
                    {"matcher": "path", "argument": "Status", "expected": "ready", "state": "success"},
                    {"matcher": "path", "argument": "Status", "expected": "failed", "state": "failure"},
                ],
            }
        },
    }
)


class _Thing:
    """A client whose one resource becomes ready at a virtual instant (as an RDS promotion does)."""

    def __init__(self, clock: VirtualClock, ready_after: float) -> None:
        self.clock = clock
        self.ready_after = ready_after
        self.polls: list[float] = []

    def describe_thing(self, **_: Any) -> dict[str, str]:
        self.polls.append(self.clock.monotonic())
        return {"Status": "ready" if self.clock.monotonic() >= self.ready_after else "pending"}


def thing_waiter(thing: _Thing) -> Waiter:
    """botocore's own ``Waiter`` (what a boto3 client's ``get_waiter`` builds) around ``thing``."""
    return Waiter(
        "ThingReady", _WAITERS.get_waiter("ThingReady"), NormalizedOperationMethod(thing.describe_thing)
    )


def test_a_waiter_polls_on_virtual_time_and_does_not_sleep() -> None:
    """botocore's ``Waiter.wait`` sleeps ``Delay`` seconds between polls: virtual seconds here.

    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html: the runbook
    waits for minutes of promotion with boto3 waiters; ten of them must not take ten minutes.
    """
    clock = VirtualClock()
    thing = _Thing(clock, ready_after=100)
    waiter = thing_waiter(thing)
    wall = time.monotonic()
    with waiter_clock(clock):
        waiter.wait()
    assert time.monotonic() - wall < 2.0
    assert thing.polls == [0.0, 30.0, 60.0, 90.0, 120.0]
    assert clock.monotonic() == 120.0


def test_a_waiter_that_gives_up_has_spent_its_attempts_in_virtual_time() -> None:
    clock = VirtualClock()
    waiter = thing_waiter(_Thing(clock, ready_after=10_000))
    with waiter_clock(clock), pytest.raises(WaiterError):
        waiter.wait(WaiterConfig={"Delay": 15, "MaxAttempts": 4})
    assert clock.monotonic() == 45.0  # three delays between four polls


def test_the_waiter_clock_is_undone_on_exit() -> None:
    import botocore.waiter

    real = botocore.waiter.time
    with waiter_clock(VirtualClock()):
        assert botocore.waiter.time is not real
    assert botocore.waiter.time is real


_THROTTLED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>r</RequestId></ErrorResponse>"
)
_ANSWER = (
    b"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/t</Arn>"
    b"<UserId>t</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"
)


class _Raw:
    """The raw body botocore reads from an ``AWSResponse``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def throttled_sts(clock: VirtualClock, *, throttled: int, max_attempts: int) -> tuple[Any, list[float]]:
    """An STS client whose first ``throttled`` attempts are throttled, each asking to retry after 5 s.

    ``x-amz-retry-after`` makes botocore's standard back-off deterministic: each delay is raised to
    5 s (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). The answers
    come from a ``before-send`` hook: nothing leaves the process.
    """
    sent: list[float] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(clock.monotonic())
        if len(sent) <= throttled:
            return AWSResponse(request.url, 400, {"x-amz-retry-after": "5000"}, _Raw(_THROTTLED))
        return AWSResponse(request.url, 200, {}, _Raw(_ANSWER))

    client = botocore.session.get_session().create_client(
        "sts",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )
    client.meta.events.register_first("before-send", answer)
    return client, sent


def test_retry_back_off_after_throttling_passes_virtual_time() -> None:
    """botocore sleeps between attempts (``botocore.endpoint``): on the clock, 5 s each time."""
    clock = VirtualClock()
    client, sent = throttled_sts(clock, throttled=3, max_attempts=5)
    wall = time.monotonic()
    with retry_clock(clock):
        assert client.get_caller_identity()["Account"] == "123456789012"
    assert time.monotonic() - wall < 5.0, "15 s of back-off must not be slept for real"
    assert sent == [0.0, 5.0, 10.0, 15.0]


def test_retries_exhausted_surface_the_throttling_error_after_virtual_back_off() -> None:
    clock = VirtualClock()
    client, sent = throttled_sts(clock, throttled=10, max_attempts=3)
    with retry_clock(clock), pytest.raises(ClientError) as raised:
        client.get_caller_identity()
    assert raised.value.response["Error"]["Code"] == "Throttling"
    assert sent == [0.0, 5.0, 10.0]


def test_the_retry_clock_is_undone_on_exit() -> None:
    import botocore.endpoint

    real = botocore.endpoint.time
    with retry_clock(VirtualClock()):
        assert botocore.endpoint.time is not real
    assert botocore.endpoint.time is real


@pytest.mark.parametrize("mode", ["standard", "legacy"])
def test_the_retry_back_off_jitter_replays_whatever_the_process_random_state(mode: str) -> None:
    """9B-10: on the virtual clock the back-off sleep is virtual time, so its jitter must not come
    from the process's unseeded ``random`` (the same schedule moved time differently in each process):
    the delays botocore computes under ``retry_clock`` are the same whatever ``random`` was seeded with,
    and still jittered (not all equal)."""
    import random

    from botocore.retries.standard import ExponentialBackoff, RetryContext
    from botocore.retryhandler import delay_exponential

    runs = []
    for process_seed in (1, 2):
        random.seed(process_seed)
        with retry_clock(VirtualClock()):
            if mode == "standard":
                backoff = ExponentialBackoff()
                runs.append([backoff.delay_amount(RetryContext(attempt_number=i)) for i in range(1, 6)])
            else:
                runs.append([delay_exponential("rand", 2, i) for i in range(1, 6)])
    assert runs[0] == runs[1], runs
    assert len(set(runs[0])) > 1, f"no jitter: {runs[0]}"
