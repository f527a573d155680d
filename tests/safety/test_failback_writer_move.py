"""A failback that ends after it asked AWS to move the writer back to region A (issue 10): the move is
rolled forward, never back, and traffic follows the writer it moved.

``switch_writer`` writes ``WRITER_MOVE_MARK`` in the run journal before its promotion or switchover
(region B is drained and its lag was zero after the drain). From then on:

* a failback that stops (``restore_dr``, run by both executors on every stop) leaves region B drained
  and lets the move finish. Undoing the drain while RDS promotes region A's replica gave region B writes
  that never reached region A and a second writer (B10-1/B10-2);
* a failback that dies before ``clear_latch`` (a CLI process killed) leaves the latch active; the
  region-B canary puts the switch to region A once region A answers as the writer. It republished the
  active latch's 1 and Route 53 answered drained region B until someone resumed the run (soak seeds
  98 aurora-global, 615 rds-replica).

Each test names the invariant of docs/safety.md it holds the runbook to, and fails with the old
behaviour turned back on (``tests.safety.regressions``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdas.failover import steps
from lambdas.failover.regressions import Regression
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment
from tests.safety.regressions import CANARY_IGNORES_WRITER_MOVE, regressed
from tests.safety.scenarios import failed_over as _failed_over
from tests.safety.scenarios import journal as _journal

Deploy = Callable[..., Deployment]

MOVE_CALL = {"rds-replica": "PromoteReadReplica", "aurora-global": "SwitchoverGlobalCluster"}
"""The AWS call that moves the writer back to region A, per database mode."""


@pytest.mark.parametrize(
    ("mode", "old"),
    [("rds-replica", False), ("aurora-global", False), ("rds-replica", True), ("aurora-global", True)],
    ids=["rds-replica", "aurora-global", "rds-replica-regression", "aurora-global-regression"],
)
def test_no_loss_one_writer_a_failback_stopped_while_aws_moves_the_writer_rolls_forward(
    deploy: Deploy, mode: str, old: bool
) -> None:
    """no_loss, one_writer, converges (B10-1/B10-2): the failback dies right after it asked AWS to
    move the writer (its promotion or switchover call), and a resumed run stops, so its rollback
    ``restore_dr`` runs while AWS is still moving the writer: region B's database still looks like
    the writer (an RDS promotion keeps the replica's source until it completes; a switchover keeps
    the old primary the writer until it completes). Giving region B its writes back then loses what
    it takes (the promotion has cut region A off it) and leaves two writers. With the journal's
    write-ahead mark, ``restore_dr`` finishes the move and keeps region B drained; the canary then
    sends traffic to region A, which holds the writer, and nothing is lost.

    ``old``: with ``FAILBACK_UNDOES_MOVE`` on, the checker must report what the old rollback broke
    (the control): rds-replica, the writes region B took after the promotion cut region A off, or
    two writers; aurora-global (the switchover waits for region B's writes), traffic on region B
    while region A holds the writer."""
    with regressed(*([Regression.FAILBACK_UNDOES_MOVE.value] if old else [])):
        d = deploy(mode)
        _failed_over(d)
        died = d.op_run("failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({MOVE_CALL[mode]}))
        assert died.outcome == "crashed", died
        assert _journal(d).get(steps.WRITER_MOVE_MARK), "the move was not written ahead"
        # A resumed run that stops runs the rollback; called here while AWS moves the writer.
        # As both executors call it: waiting (a switchover AWS has yet to start or cancel is waited out).
        result = steps.restore_dr(d.ctx, d.runbook_clients(), {"wait": True, "waiterDelay": 5})
        d.op_advance(60)
        for _ in range(6):  # clients keep writing through Route 53's answer meanwhile
            d.op_write()
            d.op_advance(20)
        d.op_advance(TRAFFIC_GRACE + 600)
        violations = {v.invariant for v in d.judge()}
    if old:
        broken = {"no_loss", "one_writer"} if mode == "rds-replica" else {"traffic_follows_writer"}
        assert violations & broken, (result, [str(v) for v in d.violations])
        return
    assert result.status == "done" and "stays drained" in result.detail, result
    assert d.writer() == d.keys()[0], "the writer moved back to region A"
    assert not d.emulator.serving(REGION_B), "region B stayed drained"
    assert d.where() == REGION_A, "Route 53 answers region A, which holds the writer"
    assert not violations, [str(v) for v in d.violations]


@pytest.mark.parametrize(
    ("mode", "died_at", "old"),
    [
        ("rds-replica", "DeleteFunctionConcurrency", False),
        ("aurora-global", "DeleteFunctionConcurrency", False),
        ("aurora-global", "PutMetricData", False),
        ("rds-replica", "PutMetricData", True),
    ],
    ids=[
        "rds-replica-after-the-move",
        "aurora-global-after-the-move",
        "aurora-global-after-release",
        "regression",
    ],
)
def test_traffic_follows_writer_a_failback_that_died_after_the_move_leaves_traffic_on_region_a(
    deploy: Deploy, mode: str, died_at: str, old: bool
) -> None:
    """traffic_follows_writer (soak seeds 98, 615): a CLI failback dies after ``switch_writer`` moved
    the writer back (its first call of ``unfence_primary``, DeleteFunctionConcurrency; or right after
    ``release_switch``'s PutMetricData), before ``clear_latch``. Nobody resumes it. The latch stays
    active and region B is drained. The canary, reading the failback's mark and region A's answer
    (healthy, the writer), puts the switch to region A: Route 53 answers region A within the grace.

    ``old``: with the canary's old rule (an active latch is always 1) the checker must report it."""
    with regressed(*([CANARY_IGNORES_WRITER_MOVE] if old else [])):
        d = deploy(mode)
        _failed_over(d)
        died = d.op_run("failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({died_at}))
        assert died.outcome == "crashed", died
        assert d.writer() == d.keys()[0], "the dead failback had moved the writer back"
        d.op_advance(2 * TRAFFIC_GRACE)
        violations = {v.invariant for v in d.judge()}
    if old:
        assert "traffic_follows_writer" in violations, [str(v) for v in d.violations]
        return
    assert d.where() == REGION_A and d.emulator.serving(REGION_A)
    assert not violations, [str(v) for v in d.violations]
    # Resumed, the failback completes and clears the mark with the latch.
    d.op_resume()
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    assert steps.WRITER_MOVE_MARK not in _journal(d)
    d.op_advance(TRAFFIC_GRACE + 1)
    assert not d.judge(), [str(v) for v in d.violations]
