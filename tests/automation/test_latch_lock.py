"""Single flight for ``python -m automation latch activate|switch-writer|release`` (break32 B32-8).

docs/safety.md, single flight: "two runs never act at once ... kept by the runbook lock"; issue 10 item 6: "a
lock with owner and expiry in region B; automated runs take it too". The latch commands run the runbook's own
steps (unfence_primary, end_failover_hold, release_switch, clear_latch, write_latch, throw_switch,
switch_writer, the zero-lag proof), so they take the lock as the runbook's runs do (automation/latch_cli.py
``LatchLock``): refused with nothing changed while another run holds it, naming the holder; taken and given
back when it is free, after an error too. The moto world of the runbook tests (``tests/lambdas/failover``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from automation import latch_cli
from lambdas.failover import lock
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import LockHeld, StepFailed
from lambdas.failover.journal import DRAIN_PROOF_MARK
from tests.automation.test_break24 import _iac_switch_writer, _journal, _record
from tests.automation.test_drain_proof import PARAMS, _drained, _lag
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import deny
from tests.lambdas.failover.harness import ShiftedClock, clients_for, run_book
from tests.lambdas.failover.world import REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world

HOLDER = "local-0123456789ab"
"""A runbook CLI failover holding the lock (the id the runbook CLI prints)."""


def _released_world(make_world: Callable[..., World]) -> World:
    """rds-replica after a runbook failover and the IaC failback's ``switch-writer`` (region A holds the
    writer again, runbook.json from before the primary update): where ``latch release`` releases."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    primary = world.context["primaryDbInstanceId"]
    _iac_switch_writer(world)
    world.context["primaryDbInstanceId"] = primary
    _record(world, "switch-writer", since)
    return world


def _state(world: World) -> dict[str, Any]:
    """Everything a latch command may change: the runbook's snapshot and the run journal."""
    return {**world.snapshot(), "journal": _journal(world)}


def _hold(world: World, runbook: str = "failover") -> lock.Lease:
    ctx = RunbookContext.from_dict(world.context)
    return lock.acquire(
        clients_for(world), ctx, run_id=HOLDER, owner="alice@laptop", runbook=runbook, ttl_seconds=3600
    ).lease


def _lock_item(world: World) -> lock.Lease | None:
    return lock.read(clients_for(world), RunbookContext.from_dict(world.context))


def _names_the_holder(line: str, lease: lock.Lease) -> None:
    assert line.startswith("refused: another run holds the runbook lock"), line
    for part in (
        lease.run_id,
        lease.owner,
        lease.runbook,
        lease.expires_at.isoformat(),
        "nothing was changed",
    ):
        assert part in line, (part, line)


def _run(world: World, action: str) -> tuple[bool, list[str]]:
    """The command as ``cloud.write_latch`` and ``main`` call it; (done, lines)."""
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world, clock=ShiftedClock())
    if action == "activate":
        try:
            return True, latch_cli.activate(ctx, clients, reason="declared")
        except StepFailed as exc:
            return False, [f"refused: {exc.reason}"]
    if action == "switch-writer":
        return latch_cli.switch_writer(ctx, clients, reason="IaC failback")
    return latch_cli.release(ctx, clients, reason="before route-back")


def _world_for(make_world: Callable[..., World], action: str) -> World:
    if action == "activate":
        return make_world("rds-replica")
    if action == "switch-writer":
        world, _since, replica = _drained(make_world)
        _lag(world, replica, [(m, 0.0) for m in range(0, 30)])
        return world
    return _released_world(make_world)


ACTIONS = ("activate", "switch-writer", "release")


@pytest.mark.parametrize("action", ACTIONS)
def test_a_latch_command_refuses_while_another_run_holds_the_lock_and_changes_nothing(
    make_world: Callable[..., World], action: str
) -> None:
    """Single flight. A failover holds the runbook lock; the latch command refuses in one line naming the
    holder (run id, owner, runbook, expiry) and the remedy, and AWS is as it was: latch, switch, capacities,
    databases, the run journal, and the lock still the holder's."""
    world = _world_for(make_world, action)
    lease = _hold(world)
    before = _state(world)

    done, lines = _run(world, action)

    assert not done and len(lines) == 1, lines
    _names_the_holder(lines[0], lease)
    assert _state(world) == before
    assert _lock_item(world) == lease


@pytest.mark.parametrize("action", ACTIONS)
def test_a_latch_command_takes_the_free_lock_and_gives_it_back(
    make_world: Callable[..., World], action: str
) -> None:
    """Control: with the lock free each command does its work (the latch active; the zero-lag proof written;
    the latch standby) and leaves the lock free."""
    world = _world_for(make_world, action)

    done, lines = _run(world, action)

    assert done, lines
    expected = {"activate": "active", "switch-writer": "active", "release": "standby"}[action]
    assert world.latch()["state"] == expected, lines
    if action == "switch-writer":
        assert DRAIN_PROOF_MARK in _journal(world), lines
    assert _lock_item(world) is None


def test_a_latch_command_under_its_lock_is_seen_by_a_runbook_run(make_world: Callable[..., World]) -> None:
    """The lock item names the command while it acts: a runbook failover started then stops at take_lock."""
    world = _released_world(make_world)
    ctx = RunbookContext.from_dict(world.context)
    seen: list[str] = []

    class _FailoverDuringRelease:
        """At the release's PutMetricData (release_switch), a runbook failover is started."""

        def install(self, session: Any) -> None:
            session.events.register("before-parameter-build.cloudwatch.PutMetricData", self)

        def __call__(self, **_: Any) -> None:
            if not seen:
                held = _lock_item(world)
                seen.append(f"{held.runbook} {held.owner} {held.run_id}" if held else "free")
                seen.append(str(run_book(world, "failover").stopped_at))

    done, lines = latch_cli.release(ctx, clients_for(world, _FailoverDuringRelease()), reason="route-back")  # type: ignore[arg-type]

    assert done, lines
    assert seen[0].startswith("failback python -m automation latch release latch-release-"), seen
    assert seen[1] == lock.TAKE, seen
    assert _lock_item(world) is None


def test_the_lock_is_given_back_after_a_step_fails(make_world: Callable[..., World]) -> None:
    """A step that fails under the lock (AccessDenied on the switch's PutMetricData: ``throw_switch`` for
    ``activate``, ``release_switch`` for ``release``) ends the command with its error, and the lock is free for
    the next run (not held for its 23-minute lease)."""
    world = make_world("rds-replica")
    ctx = RunbookContext.from_dict(world.context)
    with pytest.raises(StepFailed) as failed:
        latch_cli.activate(ctx, clients_for(world, deny("cloudwatch", "PutMetricData", REGION_B)), reason="x")
    assert failed.value.step == "throw_switch" and not isinstance(failed.value, LockHeld), failed.value
    assert _lock_item(world) is None

    world = _released_world(make_world)
    ctx = RunbookContext.from_dict(world.context)
    with pytest.raises(StepFailed) as failed:
        latch_cli.release(ctx, clients_for(world, deny("cloudwatch", "PutMetricData", REGION_B)), reason="x")
    assert failed.value.step == "release_switch", failed.value
    assert _lock_item(world) is None


def test_main_refuses_in_one_line_with_exit_status_1(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """README: a refusal is one line, exit status 1, no traceback (``activate`` raises it as a step refusal)."""
    world = make_world("rds-replica")
    lease = _hold(world, runbook="failback")
    ctx = RunbookContext.from_dict(world.context)
    monkeypatch.setattr(latch_cli, "connect", lambda args: (ctx, clients_for(world)))
    before = _state(world)

    status = latch_cli.main(["activate", "--outputs", "runbook.json"])

    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert status == latch_cli.EXIT_STOPPED and len(lines) == 1, (status, lines)
    assert lines[0].startswith(f"refused: {lock.TAKE}: another run holds the runbook lock"), lines
    assert lease.run_id in lines[0] and f"python -m automation failback --run-id {HOLDER}" in lines[0]
    assert _state(world) == before


def test_every_call_of_a_locked_latch_command_is_allowed_by_the_break_glass_policy(
    make_world: Callable[..., World],
) -> None:
    """``latch`` runs under the break-glass policy (automation/iam.py ``break_glass_policy``, the runbook
    role's statements): the lock's PutItem, UpdateItem and DeleteItem on the lock table are allowed, with
    every other call of ``activate`` and ``release`` (tests/lambdas/failover/test_permissions.py)."""
    from tests.lambdas.failover.test_permissions import (
        CallRecorder,
        allowing,
        cluster_keys,
        table_keys,
        topic_keys,
        world_policy,
    )

    calls = set()
    for action in ("release", "activate"):
        world = _world_for(make_world, action)
        recorder = CallRecorder({**topic_keys(world), **table_keys(world), **cluster_keys(world)})
        clients = clients_for(world, recorder, clock=ShiftedClock())  # type: ignore[arg-type]
        ctx = RunbookContext.from_dict(world.context)
        if action == "release":
            assert latch_cli.release(ctx, clients, reason="x")[0]
        else:
            latch_cli.activate(ctx, clients, reason="x")
        assert recorder.unknown == set()
        statements = world_policy(world)
        denied = sorted(
            f"{c.action} on {c.target} in {c.region}" for c in recorder.calls if not allowing(statements, c)
        )
        assert denied == [], (action, denied)
        calls |= {c.action for c in recorder.calls}
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= calls, calls


def test_the_zero_lag_proof_under_the_command_s_lock_takes_no_second_lock(
    make_world: Callable[..., World],
) -> None:
    """``latch switch-writer`` (rds-replica) holds the lock across the proof's wait; the proof refreshes that
    lock before its write instead of taking its own (which the command's would refuse), and writes."""
    world = _world_for(make_world, "switch-writer")
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world, clock=ShiftedClock())
    refreshed: list[str] = []

    with latch_cli.LatchLock(ctx, clients, "switch-writer") as held:
        from lambdas.failover import drain_proof

        def refresh() -> None:
            refreshed.append(held.run_id)
            held.check()

        drain_proof.prove_drain(ctx, clients, PARAMS, refresh_lock=refresh)
        item = _lock_item(world)
        assert item is not None and item.run_id == held.run_id

    assert refreshed == [held.run_id] and DRAIN_PROOF_MARK in _journal(world)
    assert _lock_item(world) is None
