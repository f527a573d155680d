"""The breaker's findings on 626c7ae (soak speed), kept as tests of the fix: ``Deployment._settle_seconds``
read the dead run's lease expiry. F1: a CLI run's lease is refreshed by a real-time heartbeat thread
(``executor.Heartbeat``, woken every ``poll_seconds`` of *real* time, refreshing once
``HEARTBEAT_SECONDS`` of *virtual* time have passed), so how long settle waited, and with it when the
last run was resumed, depended on the machine's load, not on the seed alone. F2: a pending fence that
joins the dead run's lock during settle extends the lease read at its start. Settle now waits the
longest lease whenever the lock item is there (the old fixed 1440 s), ``SETTLE_SECONDS`` otherwise."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from automation.emulator.aws import Emulator
from lambdas.failover import executor
from lambdas.failover import lock as runbook_lock
from tests.safety.model import Deployment

_apps = itertools.count(1)


def _dead_planned_failover(poll: float, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A planned CLI failover (region A up: drain and zero-lag waits, several virtual minutes) that dies
    right after its notification (its last call): the lock stays with the dead run. Heartbeat thread
    woken every ``poll`` real seconds."""
    monkeypatch.setattr(executor.Heartbeat.__init__, "__defaults__", (poll,))
    emulator = Emulator()
    with emulator.installed():
        d = Deployment.build("rds-replica", app=f"brk{next(_apps)}", emulator=emulator)
        try:
            d.op_advance(120)
            run = d.op_run(
                "failover",
                params={"force": True, "planned": True},
                crash_on=frozenset({"Publish"}),
                executor_name="cli",
            )
            item = d.world.client("dynamodb", "us-west-2").get_item(
                TableName=d.ctx.lock_table_name,
                Key={runbook_lock.KEY_ATTRIBUTE: {"S": runbook_lock.LOCK_KEY}},
                ConsistentRead=True,
            )["Item"]
            lease = runbook_lock.Lease.from_item(item)
            return {
                "outcome": run.outcome,
                "run_seconds": (d.emulator.clock.now() - lease.acquired_at).total_seconds(),
                "refreshed_after": (lease.refreshed_at - lease.acquired_at).total_seconds(),
                "settle_seconds": d._settle_seconds(),
            }
        finally:
            d.close()


def test_settle_length_does_not_depend_on_the_heartbeat_threads_real_time_wakes(
    moto_world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same schedule must settle for the same virtual time whatever the machine's load. Here the
    only difference between the two runs is how often (real time) the heartbeat thread wakes: never
    (the refreshes at step starts alone) or at once when due (an idle machine)."""
    lazy = _dead_planned_failover(1e6, monkeypatch)
    eager = _dead_planned_failover(1e-4, monkeypatch)
    print("lazy", lazy, "\neager", eager)
    assert lazy["outcome"] == eager["outcome"] == "crashed"
    assert lazy["settle_seconds"] == eager["settle_seconds"], (lazy, eager)


def _dead_failover_then_refused_sfn_then_settle(
    old_settle: bool, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Region A dark; a forced CLI failover dies right after its writer move (the fence of dark region A
    left pending, the lock with the dead run); an SFN failover is refused at the lock (the last run:
    its resume is a new execution, another run id). Then settle: region A comes back, the canary's
    pending fence joins the dead failover's lock (``lock.join_fence`` extends a lease that would end
    inside its window), and the last run is resumed."""
    if old_settle:
        monkeypatch.setattr(Deployment, "_settle_seconds", lambda self: 1440.0)
    emulator = Emulator()
    with emulator.installed():
        d = Deployment.build("rds-replica", app=f"brk{next(_apps)}", emulator=emulator)
        try:
            d.op_advance(120)
            d.op_outage()
            d.op_advance(120)
            first = d.op_run(
                "failover",
                params={"force": True},
                crash_on=frozenset({"PromoteReadReplica"}),
                executor_name="cli",
            )
            second = d.op_run("failover", params={"force": True}, executor_name="sfn")
            d.op_advance(600)
            leases = []
            real = runbook_lock.join_fence

            def join(*a: Any, **k: Any) -> Any:
                got = real(*a, **k)
                leases.append(("joined", got.expires_at.isoformat(), d.emulator.clock.now().isoformat()))
                return got

            monkeypatch.setattr(runbook_lock, "join_fence", join)
            settle_from = d.emulator.clock.now()
            planned = d._settle_seconds()
            d.settle()
            return {
                "first": (first.outcome, first.detail[:80]),
                "second": (second.outcome, second.detail[:120]),
                "settle_from": settle_from.isoformat(),
                "planned_settle": planned,
                "joins": leases,
                "resumes": d.exercised.get("resume", 0),
                "violations": [str(v) for v in d.violations],
            }
        finally:
            d.close()


def test_a_fence_that_joins_the_dead_run_s_lock_during_settle_costs_no_resume(
    moto_world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F2: settle's wait, computed from the lease at its start (600 s), ended before the lease the
    joined fence extended: the first two resumes met ``LockHeld`` and only the third ran (the old
    1440-s settle: one resume). Converges allows three: a run that needed one genuine retry would have
    been reported. Waiting the longest lease while the item is there gives one resume again."""
    got = _dead_failover_then_refused_sfn_then_settle(False, monkeypatch)
    print(got)
    assert got["resumes"] == 1 and not got["violations"], got


def _old_dr_desired(d: Deployment) -> int:
    try:
        return int(d.world.asg("us-west-2")[1])
    except Exception:
        return 0


def test_dr_desired_reads_as_describe_auto_scaling_groups_did(deploy: Any) -> None:
    from moto.autoscaling.models import autoscaling_backends

    d = deploy("rds-replica")
    seen = [(d._dr_desired(), _old_dr_desired(d))]
    d.op_outage()
    seen.append((d._dr_desired(), _old_dr_desired(d)))  # region A dark
    d.op_run("failover", params={"force": True})
    seen.append((d._dr_desired(), _old_dr_desired(d)))
    d.op_autoscale()
    seen.append((d._dr_desired(), _old_dr_desired(d)))
    group = autoscaling_backends["123456789012"]["us-west-2"].autoscaling_groups[d.ctx.dr_asg_name]
    group.desired_capacity = None
    seen.append((d._dr_desired(), _old_dr_desired(d)))
    del autoscaling_backends["123456789012"]["us-west-2"].autoscaling_groups[d.ctx.dr_asg_name]
    seen.append((d._dr_desired(), _old_dr_desired(d)))
    print("dr_desired new/old", seen)
    assert all(a == b for a, b in seen), seen
