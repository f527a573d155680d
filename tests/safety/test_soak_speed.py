"""What ``make soak`` does to go faster must change no schedule (issue 9: 1,000 schedules in 45 min).

* ``driver.warm_up`` runs throwaway schedules in the parent before the pool forks: the schedules a
  worker runs after it are named, and replay, as in a fresh process.
* ``Deployment._settle_seconds``: the end of a schedule waits out a dead run's lock lease only when a
  lease is there to wait out.
* ``sfn_executor.run_state_machine``: the runbook function keeps its clients from one execution to the
  next, as a warm Lambda does; each call is still its execution's own, and a fault added since reaches
  the next execution.
* ``DataPlane.last_replayed_at`` keeps the latest commit a link applied instead of scanning them all,
  and ``speed._known_account`` looks a backend up among moto's listed ones by id.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.core.base_backend import BackendDict

from automation.emulator.data import DataPlane, Store
from lambdas.failover import lock as runbook_lock
from lambdas.failover.budget import LOCK_TTL_SECONDS
from tests.lambdas.failover.faults import Fault, throttling_code
from tests.lambdas.failover.world import REGION_B
from tests.safety import driver, model
from tests.safety.model import SETTLE_SECONDS, ActorClients, Deployment, actor_clients
from tests.safety.sfn_executor import last_execution, run_state_machine

LENGTH = 8


@pytest.fixture
def built_apps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The application name of every deployment built while the test runs, in order."""
    names: list[str] = []
    build = Deployment.build.__func__  # type: ignore[attr-defined]

    def keep(cls: type[Deployment], mode: str, app: str, *args: object, **kwargs: object) -> Deployment:
        names.append(app)
        return build(cls, mode, app, *args, **kwargs)

    monkeypatch.setattr(Deployment, "build", classmethod(keep))
    yield names


def _replay(seed: int) -> tuple[list[str], list[str], dict[str, int]]:
    with driver.moto_session():
        r = driver.run_schedule(seed, length=LENGTH, soak=True)
    return r.operations, [str(v) for v in r.violations], dict(r.exercised)


def test_warm_up_changes_neither_the_names_nor_the_replay_of_the_schedules_after_it(
    built_apps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker forked after ``warm_up`` starts where a fresh process does: its first schedule is named
    ``s<seed>x1`` and does, step for step, what it does without the warm-up."""
    monkeypatch.setattr(driver, "_apps", itertools.count(1))
    fresh = _replay(3)
    monkeypatch.setattr(driver, "_apps", itertools.count(1))
    driver.warm_up(length=4, soak=True)
    assert built_apps[1:3] == [f"s{driver.WARM_UP_SEED}x1", f"s{driver.WARM_UP_SEED}x2"]  # it ran both worlds
    warmed = _replay(3)
    assert built_apps[0] == built_apps[3] == "s3x1"
    assert warmed == fresh


def test_settle_waits_out_the_longest_lease_while_the_lock_item_is_there(
    deploy: Callable[..., Deployment],
) -> None:
    """The lock of a run that died holding it expires ``LOCK_TTL_SECONDS`` after its last refresh;
    while the item is there, settle waits that long and a minute before the resume under a new run id
    (which would otherwise meet ``LockHeld``), however recently it was refreshed: the expiry of an
    in-process run's lease depends on real-time heartbeat wakes, and a pending fence may extend it
    during the wait. A free lock is no reason to wait beyond ``SETTLE_SECONDS``."""
    d = deploy("rds-replica")
    assert d._settle_seconds() == SETTLE_SECONDS
    clients = actor_clients(d, d.session)
    runbook_lock.acquire(clients, d.ctx, run_id="died", owner="test", runbook="failover")
    assert d._settle_seconds() == LOCK_TTL_SECONDS + 60
    d.emulator.advance(1000)
    assert d._settle_seconds() == LOCK_TTL_SECONDS + 60
    assert runbook_lock.release(clients, d.ctx, run_id="died")
    assert d._settle_seconds() == SETTLE_SECONDS


def test_step_functions_executions_keep_the_functions_clients_and_their_calls_stay_their_own(
    deploy: Callable[..., Deployment], monkeypatch: pytest.MonkeyPatch
) -> None:
    """single_flight is judged from who made each call (``Deployment._acted``): with the runbook
    function's clients kept from one execution to the next, every call of an execution is still
    attributed to that execution's id, and none to a finished one. A client copies its session's
    hooks when it is built, so a fault added after an execution must reach the next one: the kept
    clients are dropped and built again."""
    d = deploy("rds-replica")
    built: list[ActorClients] = []

    def counted(deployment: Deployment, session: boto3.Session) -> ActorClients:
        built.append(actor_clients(deployment, session))
        return built[-1]

    monkeypatch.setattr(model, "actor_clients", counted)
    acted: list[str] = []
    judge_act = d._acted
    monkeypatch.setattr(d, "_acted", lambda actor, op: (acted.append(actor), judge_act(actor, op))[1])
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)

    arns = []
    for _ in range(2):  # a failover, then its re-run
        del acted[:]
        outcome, detail = run_state_machine(d, "failover", {"reason": "checker"})
        assert outcome == "done", detail
        arns.append(last_execution(d)[0]["executionArn"])
        assert acted and set(acted) == {arns[-1]}, sorted(set(acted))
    assert len(built) == 1, "the second execution built its clients again"
    assert built[0].actor is None, "an ended execution still holds the function's clients"
    # The operator's CLI is another process: its runs never take the function's clients (nor drain their
    # retry quota, which botocore keeps per client; the breaker's brk9 a5066a8), nor the reverse.
    cli = d._clients_for("local-run")
    assert cli is not built[0] and len(built) == 2
    cli.actor = None
    assert d._clients_for("sfn-next", function=True) is built[0]
    built[0].actor = None
    del built[1:]

    fault = Fault(service="auto-scaling", region=REGION_B, code=throttling_code("auto-scaling"), times=1)
    d.add_fault(fault)
    outcome, detail = run_state_machine(d, "failover", {"reason": "checker"})
    assert outcome == "done", detail
    assert len(built) == 2 and built[1] is not cli, "clients built before the fault were used after it"
    assert fault.injected == 1, "the fault added after the first executions never reached the third"


def test_last_replayed_at_is_the_latest_commit_the_link_applied() -> None:
    """``pg_last_xact_replay_timestamp()`` as the emulator answers it (kept as writes arrive, was a
    scan of every arrival): None before anything arrived, then the latest commit instant applied,
    which does not move while the link is down and catches up when it is up again."""
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    up = {"a": True, "b": True}
    data = DataPlane(lambda: now[0], lambda region: up[region])
    data.copy("a:db", Store.DATABASE, "a")
    data.copy("b:db", Store.DATABASE, "b")
    data.link("a:db", "b:db", delay=5.0, apply_seconds=0.5)
    assert data.last_replayed_at("b:db") is None
    commits = []
    for step in range(6):
        commits.append(now[0])
        data.write("a:db")
        now[0] += timedelta(seconds=2)
        if step == 4:  # writes 0 and 1 (due 5 s after their commits) have arrived by the last sync
            up["b"] = False
    held = data.last_replayed_at("b:db")
    assert held == commits[1], (held, commits)
    now[0] += timedelta(seconds=60)
    assert data.last_replayed_at("b:db") == held, "a down link applied writes"
    up["b"] = True
    data.sync()
    now[0] += timedelta(seconds=60)
    assert data.last_replayed_at("b:db") == commits[-1]
    link = data.link_into("b:db")
    assert link is not None
    assert data.last_replayed_at("b:db") == max(data.writes[w].at for _, w in link.arrived)


def test_a_reset_still_empties_every_backend_with_the_lookup_by_id(moto_world: None) -> None:
    """moto's reset empties the backends it lists; a backend found again after a reset is listed again
    (``speed._known_account``), so the next reset empties it too: nothing one schedule made is seen
    by the next (``driver.run_schedule`` starts from a reset)."""
    ssm = boto3.client("ssm", region_name="us-east-1")
    for value in ("one", "two", "three"):
        ssm.put_parameter(Name="/soak/speed", Value=value, Type="String")
        listed = BackendDict._instances  # type: ignore[misc]
        assert any(b.service_name == "ssm" for b in listed)
        BackendDict.reset()
        assert ssm.describe_parameters()["Parameters"] == [], f"{value!r} survived a reset"
