"""break35: the declared-failover promotion fix (break34 B34-5, branch f5 at d69b512) attacked in the safety
model. Each finding is a strict xfail naming the invariant of docs/safety.md it protects; controls (no xfail)
beside them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from automation import latch_cli
from lambdas.failover.budget import LOCK_TTL_SECONDS
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.stepkit import STEPS
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment, actor_clients
from tests.safety.scenarios import dark_with_a_tail
from tests.safety.test_break34 import _declared_failover, _dr_update_active, as_operator

Deploy = Callable[..., Deployment]


def _release(d: Deployment) -> tuple[bool, list[str]]:
    return as_operator(
        d,
        "latch-release",
        lambda clients: latch_cli.release(d.ctx, clients, reason="operator: region A looks fine"),
    )


class Crash(BaseException):
    """The operator's host dies (not an Exception: no roll-back runs)."""


class _DyingRds:
    def __init__(self, real: object) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def promote_read_replica(self, **kw: object) -> object:
        self._real.promote_read_replica(**kw)  # type: ignore[attr-defined]
        raise Crash("latch activate's host died after PromoteReadReplica was asked")


def _crash_after_promote_asked(d: Deployment) -> None:
    """``latch activate`` (planned: the drain, zero lag after it) dies right after its promote_database asked
    PromoteReadReplica, before the promotion ended (RDS: ``modifying``, still naming its source)."""
    # A promotion that outlasts the crashed run's lock (RDS takes a backup when promoting; minutes to an
    # hour for a large instance), so the next command meets it still modifying once the lock expired.
    d.emulator.timings = dataclasses.replace(d.emulator.timings, promote_seconds=3600.0)
    session = new_session()
    d.emulator.attach(session)
    operator = actor_clients(d, session)
    operator.actor = "latch-activate"
    real_rds = operator.rds
    operator.rds = lambda side: _DyingRds(real_rds(side)) if side == "dr" else real_rds(side)  # type: ignore[method-assign]
    d._begin_actor("latch-activate")
    try:
        with pytest.raises(Crash):
            latch_cli.activate(d.ctx, operator, reason="declared failover", planned=True)
    finally:
        d._end_actor("latch-activate")
        operator.actor = None
    (inst,) = d.world.client("rds", REGION_B).describe_db_instances(
        DBInstanceIdentifier=str(d.ctx.dr_db_instance_id)
    )["DBInstances"]
    assert inst["DBInstanceStatus"] == "modifying" and inst.get("ReadReplicaSourceDBInstanceIdentifier"), inst
    # The dead run's lease runs out LOCK_TTL_SECONDS after its last refresh, which its heartbeat made at a
    # real-time-dependent point of the run (a daemon thread waking every real second beside the virtual
    # clock): up to HEARTBEAT_SECONDS before the crash, or just before it. Waiting a whole TTL past the
    # crash makes it expired whatever that point was (1300 s did only when the refresh was 80 s or more
    # before the crash: the flake of test_break35). The promotion (3600 s) is still modifying.
    d.op_advance(LOCK_TTL_SECONDS + 60)


def test_b35_control_activate_again_while_the_promotion_is_modifying(deploy: Deploy) -> None:
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(10)
    _crash_after_promote_asked(d)
    refused = _dr_update_active(d)
    assert refused is not None and "latch activate" in refused, refused
    try:
        lines = _declared_failover(d)
    except StepFailed as exc:  # the promotion outlasts the step's waiter: retryable, run it again
        assert exc.code == "WaiterTimeout" and exc.retryable, exc
        lines = _declared_failover(d)
    assert _dr_update_active(d) is None, lines
    d.op_advance(600)
    d.judge()
    assert not d.violations, [*lines, *map(str, d.violations)]
    assert d.emulator.database_writable(REGION_B) and not d.emulator.serving(REGION_A), lines


def test_b35_1_latch_release_while_the_activate_s_promotion_is_modifying(deploy: Deploy) -> None:
    """one_writer/no_loss (docs/safety.md) + traffic follows the writer. ``latch activate`` died after
    PromoteReadReplica was asked; the operator, seeing region B dark and region B's instance still naming
    region A as its source, runs ``latch release``. A promotion passes through ``modifying`` and the
    replica names its source until it ends
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html;
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html). Before the fix
    ``observe()`` read it as a replica and region A as the writer: the release gave region A its capacity and
    traffic back, then the promotion ended and region B was a second writer missing region A's acknowledged
    writes. Now the release refuses, as the runbook's failback does (break29 B29-1), and ``latch activate``
    run again finishes the move."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(10)
    _crash_after_promote_asked(d)
    done, lines = _release(d)
    assert not done and lines[0].startswith("refused:") and "being promoted" in lines[0], lines
    assert "latch activate" in lines[0], lines
    d.op_advance(600)
    d.op_write(5)
    d.op_advance(300)
    d.judge()
    assert not d.violations, [f"release done={done}", *lines, *map(str, d.violations)]


def test_b35_control_region_a_back_during_an_unplanned_activate(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """no_loss (docs/safety.md: the unplanned exception is a promotion while the old writer's region does not
    answer). Region A dark at ``latch activate --unplanned`` (its fence left pending), the link to region B
    900 s behind; region A answers again after the switch, 30 s before the promotion. Before the fix
    ``promotion._promote_database`` decided "unplanned" from the journal alone and promoted at once, losing
    what region A had acknowledged and not shipped. Now it looks at region A's database once more, completes
    the pending fence (stamping when region A's writes stopped) and takes the lossless wait."""
    from lambdas.failover import steps

    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(10)
    d.op_outage()
    d.op_advance(180)
    real = steps.promote_database

    def back_then_promote(ctx, clients, params):  # type: ignore[no-untyped-def]
        d.op_recover()
        d.op_advance(30)
        return real(ctx, clients, params)

    monkeypatch.setattr(steps, "promote_database", back_then_promote)
    try:
        lines = _declared_failover(d, planned=False)
    except StepFailed as exc:
        lines = [f"stopped: {exc.code}: {exc.reason}"]
    monkeypatch.setattr(steps, "promote_database", real)
    d.op_advance(600)
    d.op_write(5)
    d.op_advance(300)
    d.judge()
    # single_flight included: the canary's fence joins the activate's lock (run id latch-activate-<hex>),
    # which the checker maps to the command's actor (tests/safety/model.py).
    assert not d.violations, [*lines, *map(str, d.violations)]


def test_b35_2_region_a_back_before_an_unplanned_activate_s_promotion(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """no_loss (docs/safety.md: the unplanned exception is a promotion while the old writer's region does not
    answer). Region A dark at ``latch activate --unplanned`` (its fence left pending), the link to region B
    900 s behind; region A answers again after the switch, 30 s before the promotion. Before the fix
    ``promotion._promote_database`` decided "unplanned" from the journal alone and promoted at once, losing
    what region A had acknowledged and not shipped (53 writes). Now it looks at region A's database once
    more, completes the pending fence (stamping when region A's writes stopped) and takes the lossless wait
    (``promotion._late_fence_due``)."""
    from lambdas.failover import steps

    d = deploy("rds-replica")
    dark_with_a_tail(d)
    real = steps.promote_database

    def back_then_promote(ctx, clients, params):  # type: ignore[no-untyped-def]
        d.op_recover()
        d.op_advance(30)
        return real(ctx, clients, params)

    monkeypatch.setattr(steps, "promote_database", back_then_promote)
    try:
        lines = _declared_failover(d, planned=False)
    except StepFailed as exc:
        lines = [f"stopped: {exc.code}: {exc.reason}"]
    monkeypatch.setattr(steps, "promote_database", real)
    d.op_advance(600)
    d.op_write(5)
    d.op_advance(300)
    d.judge()
    assert not d.violations, [*lines, *map(str, d.violations)]


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_b35_2_a_forced_runbook_failover_whose_region_a_answers_again_before_the_promotion_loses_nothing(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """no_loss, the same class as B35-2 by the runbook's own forced failover (in-process executor): region A
    dark at ``fence_primary`` (its fence left pending after the darkness was confirmed), its database link
    900 s behind, and back 30 s before ``promote_database``. The writer moves only once region A is fenced
    and the lossless wait has seen zero lag after that fence; the Aurora run switches over instead of a
    managed failover with ``AllowDataLoss``. Judged from emulated AWS state and the write log only."""
    d = deploy(mode)
    dark_with_a_tail(d)
    real = STEPS["promote_database"]
    came_back: list[bool] = []

    def back_then_promote(ctx, clients, params):  # type: ignore[no-untyped-def]
        if not came_back:
            came_back.append(True)
            d.op_recover()
            d.op_advance(30)
        return real(ctx, clients, params)

    monkeypatch.setitem(STEPS, "promote_database", back_then_promote)
    run = d.op_run("failover")
    monkeypatch.setitem(STEPS, "promote_database", real)
    assert came_back, "the run never reached promote_database"
    d.op_advance(600)
    d.op_write(5)
    d.op_advance(300)
    d.judge()
    assert not d.violations, [run.outcome, run.detail, *map(str, d.violations)]
    # Region A fenced at the promotion, then the lossless wait: the writer moved at zero lag, or (the
    # global table's ten-times rule past the wait's budget) the failover rolled back, region A the writer
    # and serving again. Never an unplanned promotion of a region B missing region A's tail.
    assert "unplanned" not in run.detail, run.detail
    if run.outcome == "done":
        assert d.emulator.database_writable(REGION_B) and not d.emulator.serving(REGION_A), run.detail
    else:
        assert run.outcome == "stopped" and "rolled back" in run.detail, run.detail
        assert d.emulator.database_writable(REGION_A) and d.emulator.serving(REGION_A), run.detail
