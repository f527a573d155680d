"""``python -m automation latch switch-writer`` when AWS refuses the switchover (break24 BR24-2).

The runbook's ``switch_writer`` step writes the run journal's writer-move mark ahead of
SwitchoverGlobalCluster; the dr stack takes that mark for proof that the Aurora writer moved
(components/failover.py ``refuse_unmoved_aurora_writer``). So when AWS refuses the switchover
("All of the secondary clusters and the primary cluster must be in the available state",
``InvalidGlobalClusterStateFault``: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverGlobalCluster.html)
and region B's cluster is still the global writer with nothing under way, the command withdraws the
mark (as the failback's ``restore_dr`` does) and exits 1 with one line; a throttled call, which may
still be applied, keeps it. Runs the moto world of the runbook tests (``tests/lambdas/failover``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from automation import latch_cli
from components.failover import (
    JOURNAL_WRITER_MOVE,
    FailoverRefused,
    Latch,
    PhaseRecord,
    refuse_unmoved_aurora_writer,
)
from lambdas.failover.context import RunbookContext
from tests.automation.test_break24 import _iac_drain, _journal, _record, _tier
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.harness import clients_for, run_book
from tests.lambdas.failover.world import REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def _drained_after_failover(make_world: Callable[..., World]) -> tuple[World, str]:
    """aurora-global, failed over by the runbook, then ``dr:failback replicate`` and ``drain`` applied."""
    world = make_world("aurora-global")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    _record(world, "replicate", since)
    _iac_drain(world)
    _record(world, "drain", since)
    return world, since


def _cli(world: World, monkeypatch: pytest.MonkeyPatch, *faults: Fault) -> int:
    """``python -m automation latch switch-writer --outputs runbook.json`` against ``world``."""
    ctx = RunbookContext.from_dict(world.context)
    monkeypatch.setattr(latch_cli, "connect", lambda args: (ctx, clients_for(world, *faults)))
    return latch_cli.main(["switch-writer", "--outputs", "runbook.json"])


def _switch_writer_refused(world: World, since: str) -> str | None:
    latch = Latch.parse(json.dumps(world.latch()))
    previous = PhaseRecord("drain", since)
    tier = _tier(world, latch, "switch-writer", previous)
    try:
        refuse_unmoved_aurora_writer(previous, tier, latch, _journal(world), world.mode)
    except FailoverRefused as exc:
        return str(exc)
    return None


def test_a_switchover_aws_refused_withdraws_the_mark_and_exits_refused(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """One writer; a refusal names its reason (docs/safety.md). AWS refuses the switchover: region B's
    cluster stays the writer, the mark is withdrawn, ``dr:failback switch-writer`` stays refused, and the
    command prints one line and exits 1 (README: 1 refused), no traceback."""
    world, since = _drained_after_failover(make_world)
    refused = Fault("rds", "SwitchoverGlobalCluster", REGION_B, code="InvalidGlobalClusterStateFault")

    status = _cli(world, monkeypatch, refused)

    out = capsys.readouterr().out.strip()
    assert refused.injected == 1, out
    assert status == latch_cli.EXIT_STOPPED, out
    assert len(out.splitlines()) == 1 and out.startswith("refused: "), out
    assert "InvalidGlobalClusterStateFault" in out and "withdrawn" in out, out
    assert world.dr_is_writer(), "AWS refused the switchover: region B's cluster is still the writer"
    assert not _journal(world).get(JOURNAL_WRITER_MOVE), _journal(world)
    assert _switch_writer_refused(world, since) is not None


def test_a_throttled_switchover_keeps_the_mark(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A throttled call may still be applied ("under way" cannot be ruled out from it: the failback's
    ``restore_dr`` keeps the mark the same way), so the mark stays and the line says to re-run."""
    world, _ = _drained_after_failover(make_world)
    throttled = Fault("rds", "SwitchoverGlobalCluster", REGION_B, code="Throttling")

    status = _cli(world, monkeypatch, throttled)

    out = capsys.readouterr().out.strip()
    assert throttled.injected >= 1, out
    assert status == latch_cli.EXIT_STOPPED, out
    assert len(out.splitlines()) == 1 and "may be under way" in out, out
    assert _journal(world).get(JOURNAL_WRITER_MOVE), _journal(world)


def test_control_a_switchover_aws_performs_leaves_the_mark_and_switch_writer_accepted(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Control: with no fault the switchover moves the writer to region A, the mark stays, and
    ``dr:failback switch-writer`` is accepted (README "Failing back")."""
    world, since = _drained_after_failover(make_world)

    status = _cli(world, monkeypatch)

    out = capsys.readouterr().out.strip()
    assert status == latch_cli.EXIT_DONE, out
    assert not world.dr_is_writer(), out
    assert _journal(world).get(JOURNAL_WRITER_MOVE), _journal(world)
    assert _switch_writer_refused(world, since) is None


def test_a_switchover_whose_wait_gave_up_with_region_b_the_writer_withdraws_the_mark(
    make_world: Callable[..., World],
) -> None:
    """A switchover AWS cancelled ("cancelling ... returning to their previous states":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html) ends the step's writer
    wait without the move (``WaiterTimeout``, retryable). AWS state then says whether anything is under
    way: region B's cluster the global writer and no ``FailoverState`` withdraws the mark like a refusal
    does. (The moto world completes a switchover at once, so the stopped step is given here as it ends.)"""
    from lambdas.failover.exceptions import StepFailed
    from lambdas.failover.journal import _writer_move_requested

    world, since = _drained_after_failover(make_world)
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world)
    _writer_move_requested(clients, ctx)  # written ahead of the switchover, as switch_writer does
    gave_up = StepFailed(
        "switch_writer",
        "Waiter GlobalClusterWriter failed: Max attempts exceeded",
        retryable=True,
        code="WaiterTimeout",
    )

    line = latch_cli._switch_writer_refused(ctx, clients, gave_up)  # pyright: ignore[reportPrivateUsage]

    assert world.dr_is_writer()
    assert "withdrawn" in line, line
    assert not _journal(world).get(JOURNAL_WRITER_MOVE), _journal(world)
    assert _switch_writer_refused(world, since) is not None
