"""``Emulator.write_burst`` (the model's ``op_write``) is ``count`` rounds of ``Deployment.client_write``.

The model's burst of client writes reads once what the per-request path reads every time (where
Route 53 answers, which copy takes writes, what replication delivered): nothing of that changes while
the virtual clock stands still. These tests hold the burst to the per-request path, so the invariants
judged over a burst (the write log) are those the per-request path would give.
"""

from __future__ import annotations

from collections.abc import Callable

from moto.rds.models import rds_backends

from automation.emulator.aws import ACCOUNT
from tests.lambdas.failover.world import REGION_A
from tests.safety.model import STORES, Deployment


def _log(d: Deployment, after: int) -> list[tuple[str, str, str, bool]]:
    """The write log past id ``after``, in id order, without the ids and times."""
    writes = d.emulator.data.writes
    return [(w.store.value, w.region, w.copy, w.client) for i, w in sorted(writes.items()) if i > after]


def _last(d: Deployment) -> int:
    return max(d.emulator.data.writes, default=0)


def test_a_burst_writes_what_as_many_single_requests_write(deploy: Callable[..., Deployment]) -> None:
    d = deploy("rds-replica")
    region = d.where()
    assert region == REGION_A
    start = _last(d)
    for _ in range(3):
        assert d.client_write(region)
    singles = _log(d, start)
    assert len(singles) == 3 * len(STORES)  # every store acknowledged every request

    middle = _last(d)
    assert d.emulator.write_burst(region, STORES, 3) == 3
    assert _log(d, middle) == singles


def test_a_burst_stops_each_request_at_the_first_store_that_refuses(
    deploy: Callable[..., Deployment],
) -> None:
    """RDS documents ``modifying`` for a customer's modification
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html); the
    emulator's writer takes no writes then, and a request stops at the database, its first store."""
    d = deploy("rds-replica")
    region = d.where()
    assert region == REGION_A
    rds_backends[ACCOUNT][REGION_A].databases[str(d.ctx.primary_db_instance_id)].status = "modifying"
    start = _last(d)
    assert not d.client_write(region)
    assert _log(d, start) == []
    assert d.emulator.write_burst(region, STORES, 5) == 0
    assert _log(d, start) == []
