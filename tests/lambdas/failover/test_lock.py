"""Single flight (docs/safety.md, ``single_flight``: two runs never act at once), in process.

Every run takes the runbook lock (a DynamoDB item in region B, ``lambdas/failover/lock.py``) before
its first change. These tests run the in-process executor against moto and judge from the calls
each run made (a botocore after-call hook per run's session) and from the lock item.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from lambdas.failover import executor
from lambdas.failover.budget import LOCK_TTL_SECONDS
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from tests.lambdas.failover.harness import FORCED, new_session
from tests.lambdas.failover.world import REGION_B, World

READS = ("Describe", "Get", "List")


class ShiftedClock:
    """The system clock moved ``shift`` ahead (time passing without waiting for it)."""

    def __init__(self) -> None:
        self.shift = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift

    def sleep(self, seconds: float) -> None:
        self.shift += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return self.shift.total_seconds()


class Acts:
    """Counts one run's calls that change the deployment (the lock table's own calls excluded)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.hooks: list[Callable[[str], None]] = []

    def __call__(self, model: Any = None, **_: Any) -> None:
        if model is None or model.name.startswith(READS) or model.service_model.service_name == "dynamodb":
            return
        self.calls.append(model.name)
        for hook in list(self.hooks):
            hook(model.name)


def run_clients(world: World, clock: Any = None) -> tuple[Clients, Acts]:
    """A run's own clients (its own session, as a separate process would have) and its act counter."""
    session: boto3.Session = new_session()
    acts = Acts()
    session.events.register("after-call", acts)
    ctx = RunbookContext.from_dict(world.context)
    kwargs = {"clock": clock} if clock is not None else {}
    return Clients.for_context(ctx, session, endpoint_url=world.endpoint_url, **kwargs), acts


def lock_item(world: World) -> dict[str, Any] | None:
    got = world.client("dynamodb", REGION_B).get_item(
        TableName=world.context["lockTableName"], Key={"pk": {"S": "runbook"}}, ConsistentRead=True
    )
    return got.get("Item")


def put_lock(world: World, run_id: str, expires: datetime, owner: str = "alice@laptop") -> None:
    world.client("dynamodb", REGION_B).put_item(
        TableName=world.context["lockTableName"],
        Item={
            "pk": {"S": "runbook"},
            "runId": {"S": run_id},
            "owner": {"S": owner},
            "runbook": {"S": "failover"},
            "acquiredAt": {"N": str(int(expires.timestamp()) - 600)},
            "refreshedAt": {"N": str(int(expires.timestamp()) - 600)},
            "expiresAt": {"N": str(int(expires.timestamp()))},
        },
    )


class Died(BaseException):
    """The run's process dies (a kill): nothing in the runbook may catch it."""


def test_two_runs_started_together_only_one_acts(world: World) -> None:
    """single_flight: two failovers started at the same instant (two operators, or an operator and
    the alarm's execution): one acts, the other stops before any mutating call, naming the holder."""
    ctx = RunbookContext.from_dict(world.context)
    runs = [run_clients(world) for _ in range(2)]
    finished = [threading.Event(), threading.Event()]
    reports: dict[int, executor.RunReport] = {}

    # A run about to make its first change waits (up to 10 s) for the other run to end: without a
    # lock both would then be acting at once; with it, the other has stopped at the lock by then.
    def holder(i: int) -> Callable[[str], None]:
        def hold(_: str) -> None:
            finished[1 - i].wait(timeout=10)

        return hold

    for i, (_, acts) in enumerate(runs):
        acts.hooks.append(holder(i))

    def go(i: int) -> None:
        try:
            reports[i] = executor.run("failover", ctx, runs[i][0], params=FORCED, max_workers=1)
        finally:
            finished[i].set()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    acted = [i for i, (_, acts) in enumerate(runs) if acts.calls]
    assert len(acted) == 1, f"runs that changed the deployment: {acted} ({[a.calls[:3] for _, a in runs]})"
    loser = 1 - acted[0]
    assert reports[acted[0]].outcome == "done"
    stopped = reports[loser]
    assert (stopped.outcome, stopped.stopped_at) == ("stopped", "take_lock")
    assert reports[acted[0]].run_id in (stopped.reason or ""), stopped.reason
    assert "failover" in (stopped.reason or "") and "expires" in (stopped.reason or "")
    assert lock_item(world) is None, "the run that finished did not give the lock back"


def test_a_live_lock_stops_the_run_before_any_change_and_force_does_not_break_it(world: World) -> None:
    """single_flight: another live run's lock stops this run before its first change; --force (skip
    the health probe) is not --break-lock."""
    put_lock(
        world, "states:other-execution", datetime.now(UTC) + timedelta(minutes=10), owner="step-functions"
    )
    clients, acts = run_clients(world)
    report = executor.run("failover", RunbookContext.from_dict(world.context), clients, params=FORCED)
    assert (report.outcome, report.stopped_at) == ("stopped", "take_lock")
    assert acts.calls == []
    assert "states:other-execution" in (report.reason or "") and "step-functions" in (report.reason or "")
    assert "NOT STARTED" in report.format_table()
    assert all(r.status == "not_run" for r in report.timeline)
    assert lock_item(world)["runId"]["S"] == "states:other-execution"  # type: ignore[index]


def test_break_lock_takes_a_live_lock_and_says_so(world: World) -> None:
    """single_flight: only the operator's explicit --break-lock takes a live lock, and the run says so."""
    put_lock(world, "local-dead", datetime.now(UTC) + timedelta(minutes=10))
    clients, _ = run_clients(world)
    report = executor.run(
        "failover", RunbookContext.from_dict(world.context), clients, params=FORCED, break_lock=True
    )
    assert report.outcome == "done", report.reason
    assert any("BROKEN" in n and "local-dead" in n for n in report.lock_notes), report.lock_notes


def test_an_expired_lock_is_taken_over_and_the_run_says_so(world: World) -> None:
    """single_flight: a lock past its expiry (its run died) is taken over, and the report says so."""
    put_lock(world, "local-dead", datetime.now(UTC) - timedelta(seconds=5))
    clients, acts = run_clients(world)
    report = executor.run("failover", RunbookContext.from_dict(world.context), clients, params=FORCED)
    assert report.outcome == "done", report.reason
    assert acts.calls
    assert any("taken over" in n and "local-dead" in n for n in report.lock_notes), report.lock_notes
    assert "taken over" in report.format_table()
    assert lock_item(world) is None


def test_a_dead_run_keeps_the_lock_its_resume_re_enters_and_another_waits_for_expiry(world: World) -> None:
    """single_flight and converges: a run that dies after its first change leaves the lock; a run
    with another id stops (nothing changed) until the lock expires; the same run id re-enters."""
    ctx = RunbookContext.from_dict(world.context)
    clock = ShiftedClock()
    clients, acts = run_clients(world, clock)

    def die(_: str) -> None:
        raise Died

    acts.hooks.append(die)
    with pytest.raises(Died):
        executor.run("failover", ctx, clients, params=FORCED, run_id="local-first", max_workers=1)
    held = lock_item(world)
    assert held is not None and held["runId"]["S"] == "local-first", "a dead run must keep its lock"

    other_clients, other_acts = run_clients(world, clock)
    blocked = executor.run("failover", ctx, other_clients, params=FORCED, run_id="local-second")
    assert (blocked.outcome, blocked.stopped_at) == ("stopped", "take_lock")
    assert other_acts.calls == []

    resumed_clients, _ = run_clients(world, clock)
    resumed = executor.run("failover", ctx, resumed_clients, params=FORCED, run_id="local-first")
    assert resumed.outcome == "done", resumed.reason
    assert any("re-entered" in n for n in resumed.lock_notes), resumed.lock_notes
    assert lock_item(world) is None


def test_another_run_takes_a_dead_runs_lock_once_it_expires(world: World) -> None:
    """single_flight: the lock a dead run left blocks other runs only until its expiry."""
    ctx = RunbookContext.from_dict(world.context)
    clock = ShiftedClock()
    clients, acts = run_clients(world, clock)

    def die(_: str) -> None:
        raise Died

    acts.hooks.append(die)
    with pytest.raises(Died):
        executor.run("failover", ctx, clients, params=FORCED, run_id="local-first", max_workers=1)
    clock.shift += timedelta(seconds=LOCK_TTL_SECONDS + 1)
    later, _ = run_clients(world, clock)
    report = executor.run("failover", ctx, later, params=FORCED, run_id="local-second")
    # (23 minutes on, the world's lag datapoints are stale: the run may stop later, not at the lock.)
    assert report.stopped_at != "take_lock", report.reason
    assert any("taken over" in n and "local-first" in n for n in report.lock_notes), report.lock_notes


def test_the_lock_is_released_when_a_run_stops(world: World) -> None:
    """single_flight: a run that stops on its own (here: no --force and no health URL to probe) gives
    the lock back, so the next run is not held up."""
    ctx = RunbookContext.from_dict({**world.context, "primaryHealthUrl": None})
    clients, _ = run_clients(world)
    report = executor.run("failover", ctx, clients, params={k: v for k, v in FORCED.items() if k != "force"})
    assert report.outcome == "stopped" and report.stopped_at == "confirm_primary_down", report.reason
    assert "lock released" in report.lock_notes
    assert lock_item(world) is None


def test_a_long_run_refreshes_its_lock_and_stops_when_it_lost_it(world: World) -> None:
    """single_flight: a live run keeps its lock by refreshing it; a run whose lock was taken (it
    expired while the run was stuck) stops before its next layer instead of acting beside the new
    holder."""
    ctx = RunbookContext.from_dict(world.context)
    clock = ShiftedClock()
    clients, acts = run_clients(world, clock)
    seen: list[int] = []

    def steal(name: str) -> None:
        if name == "UpdateAutoScalingGroup" and not seen:  # the fence: the run's first layer acting
            item = lock_item(world)
            assert item is not None
            seen.append(int(item["expiresAt"]["N"]))
            clock.shift += timedelta(seconds=LOCK_TTL_SECONDS + 1)
            put_lock(world, "local-thief", clock.now() + timedelta(minutes=20))

    acts.hooks.append(steal)
    report = executor.run("failover", ctx, clients, params=FORCED, run_id="local-slow", max_workers=1)
    assert report.outcome == "stopped", report.format_table()
    assert "lock lost" in (report.reason or ""), report.reason
    assert "local-thief" in (report.reason or "")
    statuses = report.statuses
    assert statuses["promote_database"] == "not_run" and statuses["write_latch"] == "not_run"
    assert lock_item(world)["runId"]["S"] == "local-thief"  # type: ignore[index]


def test_the_heartbeat_extends_the_lease(world: World) -> None:
    """single_flight: a refresh moves the expiry to a full lease after now (a long live run keeps it)."""
    from lambdas.failover import lock

    ctx = RunbookContext.from_dict(world.context)
    clock = ShiftedClock()
    clients, _ = run_clients(world, clock)
    first = lock.acquire(clients, ctx, run_id="r1", owner="me", runbook="failover").lease
    clock.shift += timedelta(seconds=1000)
    again = lock.refresh(clients, ctx, run_id="r1")
    assert again.expires_at - first.expires_at >= timedelta(seconds=999)
    assert lock.release(clients, ctx, run_id="someone-else") is False
    assert lock.release(clients, ctx, run_id="r1") is True
