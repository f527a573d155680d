"""What ``make soak`` does to go faster must change no schedule (issue 9: 1,000 schedules in 45 min).

* ``driver.warm_up`` runs throwaway schedules in the parent before the pool forks: the schedules a
  worker runs after it are named, and replay, as in a fresh process.
* ``Deployment._settle_seconds``: the end of a schedule waits out a dead run's lock lease only when a
  lease is there to wait out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from lambdas.failover import lock as runbook_lock
from lambdas.failover.budget import LOCK_TTL_SECONDS
from tests.safety import driver
from tests.safety.model import SETTLE_SECONDS, Deployment, actor_clients

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
