"""Whatever the latch says after a failover, region A's return is fenced and traffic stays on the writer.

The defect class of seeds 20 and 48 (``test_schedules.DEFECT_SEEDS``, also seeds 53 and 91): a
failover completes while region A is dark, so its fence is left pending in the run journal; the latch
is then set to standby by hand (or deleted, or garbled) and region A comes back. The latch alone
decided what the canary did: under standby it released the switch as soon as region A said its
database was the writer (an rds-replica region A's old primary is a standalone writer too, beside
region B's promoted one) and never asked for the pending fence, so nothing fenced region A and
nothing kept the writes an unplanned Aurora failover discarded (the copy of the
``rds:unplanned-global-failover-*`` snapshot is made by the pending fence). The canary now reads the
run journal, which only the runbook writes: a pending fence is asked for whatever the latch says, and
a standby latch releases the switch only when the journal records no failover holding region A.

One schedule per latch value and database mode (the failover by the CLI; for standby by Step
Functions too: the canary's fence does not depend on the executor that left it pending), judged after region A has been back for 8 minutes
(the canary ticks every minute): one writer, traffic follows the writer, nothing acknowledged lost.
With the canary's old behaviour back (``canary-trusts-standby``) the standby schedules are reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment
from tests.safety.regressions import CANARY_TRUSTS_STANDBY, regressed

Deploy = Callable[..., Deployment]

MODES = ("rds-replica", "aurora-global")
LATCH_VALUES = ("standby", "delete", "garble")
WATCHED = ("one_writer", "traffic_follows_writer", "no_loss")
"""What a region A returning unfenced beside region B's writer breaks: two regions take writes,
Route 53 answers the stale one, its writes are missing from the writer (rds-replica), or the
writes Aurora's failover discarded are kept nowhere (aurora-global)."""


RETURN_SECONDS = 480
"""How long region A is back before the verdict: the fence's grace (``FENCE_GRACE``, 150 s) and Route
53's (``TRAFFIC_GRACE``, 180 s) after the canary's first minute, with a margin."""


def journal(d: Deployment) -> dict[str, Any]:
    """The run journal (SSM, region B), as the runbook wrote it."""
    name = f"{d.ctx.latch_parameter_name}-journal"
    return json.loads(d.world.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"])


def latch_tampered_after_a_failover(deploy: Deploy, mode: str, how: str, executor: str = "cli") -> Deployment:
    """Region A dark, a failover completes (its fence pending), the latch is tampered with, region A
    returns and the canary ticks (``RETURN_SECONDS``)."""
    d = deploy(mode)
    d.op_advance(60)
    d.op_outage()
    d.op_advance(120)
    run = d.op_run("failover", executor_name=executor)
    assert run.outcome == "done", run
    assert journal(d).get("fencePending"), "region A was dark: its fence is pending"
    d.op_tamper_latch(how)
    d.op_recover()
    d.op_advance(RETURN_SECONDS)
    d.judge()
    return d


@pytest.mark.parametrize(("how", "executor"), [*((how, "cli") for how in LATCH_VALUES), ("standby", "sfn")])
@pytest.mark.parametrize("mode", MODES)
def test_region_a_returning_after_a_failover_is_fenced_whatever_the_latch_says(
    deploy: Deploy, mode: str, how: str, executor: str
) -> None:
    """One writer, traffic follows the writer, nothing acknowledged is lost: the pending fence is in
    the run journal, not the latch, so a latch set to standby, deleted or garbled after the failover
    neither keeps region A from being fenced (and Aurora's unplanned-failover snapshot from being
    kept) nor sends traffic to it."""
    d = latch_tampered_after_a_failover(deploy, mode, how, executor)

    broken = [str(v) for v in d.violations if v.invariant in WATCHED]
    assert not broken, f"{mode}, latch {how} after the failover: {broken}"
    assert not journal(d).get("fencePending"), "the canary's fence completed"
    assert d.where() != REGION_A, "Route 53 answers region B, which holds the writer"
    assert d.world.asg(REGION_A)[1] == 0, f"region A's web tier {d.ctx.primary_asg_name} is fenced"


@pytest.mark.parametrize(("mode", "invariant"), [("rds-replica", "one_writer"), ("aurora-global", "no_loss")])
def test_checker_sees_a_standby_latch_trusted_after_a_failover(
    deploy: Deploy, mode: str, invariant: str
) -> None:
    """The checker's teeth: with the canary's old behaviour back (the journal not read), the standby
    schedule is reported: rds-replica, region A's stale writer serves beside region B's (one_writer,
    and Route 53 answers it); aurora-global, nothing copies the snapshot holding the writes the
    unplanned failover discarded (no_loss)."""
    with regressed(CANARY_TRUSTS_STANDBY):
        d = latch_tampered_after_a_failover(deploy, mode, "standby")

    assert invariant in {v.invariant for v in d.violations}, [str(v) for v in d.violations]
