"""Every run converges (docs/safety.md), over a slow cross-region link: a planned change's zero-lag wait
has its whole budget for the proof, after the drain.

Soak seeds 1 (a failback) and 372 (a forced failover over an answering region A), rds-replica on RDS for
PostgreSQL, the database's and the receipts' replication slowed to 900 s a write (``op_slow_link``). The
proof is a commit made after the drain (the runbook's marker, ``lossless.MARKER_AFTER`` after it) that the
replica has replayed: it reaches the replica 900 s after it is made, and a ``ReplicaLag`` datapoint shows it
within the next minute. The in-process executor's wait (``waiterMaxAttempts`` 80 x ``waiterDelay`` 15 s, the
defaults) counted the 300-s drain, during which nothing can prove anything, against that budget: it gave up
885 s after the drain, before the marker could arrive, and undid the drain (region B, or region A, serves
again). A resumed run drains again and meets the same deficit, so no number of resumes ended it. The Step
Functions executor's poll budget (60 polls 30 s apart) already covered it.
"""

from __future__ import annotations

from collections.abc import Callable

from automation.emulator.data import Store
from tests.safety.model import Deployment

Deploy = Callable[..., Deployment]

LINK_SECONDS = 900.0
"""The soak's slower link (``generator.SLOW_LINK_SECONDS``)."""


def _slow_link(d: Deployment) -> None:
    for store in (Store.DATABASE, Store.RECEIPTS):
        d.emulator.slow_replication(store, LINK_SECONDS)


def _judged(d: Deployment) -> list[str]:
    d.op_advance(300)
    d.judge()
    return [str(v) for v in d.violations]


def test_converges_a_forced_failover_over_a_slow_postgres_link_with_the_default_budget(
    deploy: Deploy,
) -> None:
    """Seed 372's shape: a forced failover while region A answers is a planned change; by the CLI with the
    default budget it proves zero lag over the 900-s link and moves the writer, losing nothing."""
    d = deploy("rds-replica", engine="postgres")
    d.op_advance(120)
    _slow_link(d)
    d.op_write(3)
    d.op_advance(60)
    run = d.op_run("failover", params={"force": True})
    assert run.outcome == "done", f"failover {run.outcome}: {run.detail}"
    assert d.writer() == d.keys()[1], "region B's replica is the writer"
    assert not _judged(d), d.violations


def test_converges_a_failback_over_a_slow_postgres_link_with_the_default_budget(deploy: Deploy) -> None:
    """Seed 1's shape: a failback whose replica in region A exists (a first run made it, then died before
    the drain) is resumed by the CLI with the default budget after the link slowed and region B's clients
    wrote: it proves zero lag B -> A over the 900-s link and moves the writer back, losing nothing region B
    acknowledged."""
    d = deploy("rds-replica", engine="postgres")
    d.op_advance(120)
    d.op_outage()
    d.op_advance(120)
    assert d.op_run("failover").outcome == "done"
    d.op_recover()
    d.op_advance(600)
    # The replica in region A takes 20 minutes to create (the default budget's whole length): a first run
    # with a longer one makes it and dies at warm_primary's first call, before region B is drained.
    died = d.op_run(
        "failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"UpdateAutoScalingGroup"})
    )
    assert died.outcome == "crashed", f"failback {died.outcome}: {died.detail}"
    _slow_link(d)
    d.op_write(3)
    d.op_advance(60)
    run = d.op_run("failback", run_id=died.run_id)
    assert run.outcome == "done", f"failback {run.outcome}: {run.detail}"
    assert d.writer() == d.keys()[0], "region A's instance is the writer again"
    assert not _judged(d), d.violations
