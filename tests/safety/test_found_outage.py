"""converges, judged against what a stopped failover found (soak seeds 153, 204, 215, 386, 408, 432,
496, 618, 622, 640, 689).

A failover that dies after fencing region A and before the writer moves leaves an outage behind:
region A fenced, holding the writer; region B serving a database that refuses writes. docs/safety.md
says resuming it ends done. When the next failover meets region A refusing the runbook (a missing
permission, an SCP) it must stop before promotion ("when region A answers, fencing it must succeed
before promotion"), and its roll-back to region A serving needs the same calls region A refuses:
no run can end that outage until the refusal is lifted. The checker judges such a run when it is
resumed with the refusal gone (``settle``), not by the after-run judgment of a state it found and
changed nothing of. A run that *could* have given region A back (region A accepting its calls) is
still judged when it stops and leaves the outage.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdas.failover.regressions import Regression
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment
from tests.safety.regressions import regressed

Deploy = Callable[..., Deployment]

FOUND = "judged converges (an outage found, region A refusing or dark: judged at the resume)"


def _failover_died_after_fencing_region_a(d: Deployment) -> None:
    """A forced failover dies right after it throws the switch: region A fenced, region B scaled out,
    the latch active, the writer not moved (seeds 432, 640); its lock then expires (the next run is
    another run)."""
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_on=frozenset({"PutMetricData"}))
    assert died.outcome == "crashed", died
    assert d.writer() == d.keys()[0], "the writer never left region A"
    d.op_advance(1500)
    assert not d.emulator.serving(REGION_A), "the dead failover fenced region A"
    assert not d.emulator.database_writable(REGION_B), "region B serves a database that refuses writes"


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_converges_a_failover_refused_by_region_a_over_an_outage_it_found_is_judged_at_its_resume(
    deploy: Deploy, mode: str
) -> None:
    """converges: the failover after the dead one meets region A refusing its Auto Scaling, Lambda and
    RDS calls; it stops at ``fence_primary`` (no promotion without the fence) and cannot roll back
    (un-fencing region A is refused too). The after-run judgment does not blame it for the outage it
    found (before: "after a stopped failover run, no region serves a writer although the writer's
    region answers"); resumed at the schedule's end, with the refusal lifted, it ends done."""
    d = deploy(mode)
    _failover_died_after_fencing_region_a(d)
    d.op_deny_fence()
    run = d.op_run("failover", params={"force": True})
    assert run.outcome == "stopped" and "fence_primary" in run.detail and "AccessDenied" in run.detail, run
    # Its roll-back set the latch back to standby and released the switch (region B): the after-run
    # judgment falls due.
    assert run.mutated, "the stopped run changed nothing in region B"
    assert d.writer() == d.keys()[0], "nothing was promoted"
    d.op_advance(TRAFFIC_GRACE + 1)
    assert not d.judge(), [str(v) for v in d.violations]
    assert d.exercised.get(FOUND) == 1, d.exercised
    d.settle()  # region A's refusal lifted, the stopped failover resumed: it must end done
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    assert d.writer() == d.keys()[1]
    assert not d.violations, [str(v) for v in d.violations]


def test_converges_a_failover_that_could_give_region_a_back_and_did_not_is_still_judged(
    deploy: Deploy,
) -> None:
    """converges, the judgment's other side: the same outage found, but region A accepts the runbook's
    calls and region B refuses the promotion. The stopped run's roll-back gives region A back its web
    tier and functions (a safe serving state); with the old stop that kept the fence
    (``Regression.STOP_KEEPS_FENCE``) the outage stays and the run is blamed although it found it."""
    d = deploy("rds-replica")
    d.add_fault(Fault(service="rds", operation="PromoteReadReplica", region=REGION_B))
    _failover_died_after_fencing_region_a(d)
    with regressed(Regression.STOP_KEEPS_FENCE):
        run = d.op_run("failover", params={"force": True})
    assert run.outcome == "stopped" and "promote_database" in run.detail, run
    d.op_advance(TRAFFIC_GRACE + 1)
    d.judge()
    assert "converges" in {v.invariant for v in d.violations}, [str(v) for v in d.violations]
    assert FOUND not in d.exercised


def test_converges_a_failover_that_gives_region_a_back_leaves_it_serving(deploy: Deploy) -> None:
    """converges: as above without the regression: the roll-back un-fences region A, which serves its
    writer with Route 53 answering it."""
    d = deploy("rds-replica")
    d.add_fault(Fault(service="rds", operation="PromoteReadReplica", region=REGION_B))
    _failover_died_after_fencing_region_a(d)
    run = d.op_run("failover", params={"force": True})
    assert run.outcome == "stopped" and "promote_database" in run.detail, run
    d.op_advance(TRAFFIC_GRACE + 1)
    assert not d.judge(), [str(v) for v in d.violations]
    assert d.emulator.serving(REGION_A) and d.where() == REGION_A
