"""break21b: adversarial findings against b104's second round of runbook fixes (issue 10).

Each test is named after its finding (B21b-n) and the invariant of docs/safety.md it holds the
runbook to. They fail on branch b104 (the finding) and are meant to pass once it is fixed.

AWS behaviour relied on:

* botocore/boto3 retries: connection errors and socket timeouts are *transient* errors, retried by
  the client ("Transient errors (HTTP status codes 400, 408, 500, 502, 503, and 504) ... Socket
  timeouts", https://docs.aws.amazon.com/boto3/latest/guide/retries.html); one that outlasts the
  client's attempts (2 for the runbook's region-A clients, ``lambdas/failover/clients.py``) is raised
  to the caller. It says the request did not get an answer, not that the region is down.
* RDS read replicas: "Before you promote a read replica, stop any transactions from being written to
  the source DB instance, and wait for all updates to be made to the read replica"; promotion stops
  replication (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html):
  what the replica has not applied when it is promoted is not on the new writer.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.world import REGION_A
from tests.safety.model import TRAFFIC_GRACE, Deployment

Deploy = Callable[..., Deployment]


@pytest.mark.parametrize("blip", [True, False], ids=["blip", "control-no-blip"])
def test_b21b_1_no_loss_a_transient_connection_error_makes_a_forced_failover_promote_unplanned(
    deploy: Deploy, blip: bool
) -> None:
    """B21b-1 (no_loss; docs/safety.md: "On a planned change (failback, ``--planned``, a forced
    failover while the source database answers) the writer moves only at zero lag").

    rds-replica. A burst of client writes leaves region B's replica minutes behind (ReplicaLag).
    A forced failover fences region A, which answers, and takes the lossless path: drain, then zero
    lag proven after it. While it waits, one DescribeDBInstances of region A's database fails with a
    connection error on both of the region-A client's attempts (a network blip; region A answers
    before and after, it never goes dark). ``_region_a_dark`` takes that single connection error for
    "region A went dark" (B10-4), the wait raises ``_SourceDark``, and the run promotes region B's
    replica *unplanned* while region A answers and its replica is still applying the burst: the
    writes region A acknowledged before its fence and had not yet replicated are not on the new
    writer. The emulator excuses a promotion's lost tail only when the source's region is dark at the
    request; here it is not (and was not). Control (no blip): the same burst and failover wait for
    zero lag and lose nothing."""
    d = deploy("rds-replica")
    d.op_advance(120)
    fault = Fault(service="rds", operation="DescribeDBInstances", region=REGION_A, unreachable=True, times=0)
    d.add_fault(fault)
    outer = d.on_actor

    def blip_at_the_marker(event: str, actor: str) -> None:
        # The lossless wait invokes region A's ledger marker (MARKER_AFTER past the drain), then asks
        # whether region A is dark: one network blip there, both attempts.
        if outer is not None:
            outer(event, actor)
        if event == "call:Invoke" and fault.times == 0 and blip:
            fault.times = 2

    # The burst: 0.05 s of replica apply per write (automation/emulator Timings.rds_apply), so 10,000
    # writes leave the replica ~500 s behind, past the 300 s drain.
    d.op_write(10_000)
    d.on_actor = blip_at_the_marker
    try:
        run = d.op_run("failover", params={"force": True})
    finally:
        d.on_actor = outer
        d.clear_faults()
    assert fault.injected == (2 if blip else 0), ("the blip was not reached", fault.seen[-5:], run)
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    d.op_advance(TRAFFIC_GRACE + 1)
    violations = [str(v) for v in d.judge()]
    assert not any(v.startswith("no_loss") for v in violations), (run.detail, violations)
    assert run.outcome == "done", run
