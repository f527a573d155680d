"""breaklife22: the failback record's tie to one failover, against the runbook's own latch writes.

(Here rather than tests/automation: it needs this directory's ``make_world`` fixture, the emulated
AWS the runbook's steps run against.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.config import DrFlags
from components.failover import Capacity, FailoverRefused, Latch, PhaseRecord, decide
from lambdas.failover import steps
from lambdas.failover.context import RunbookContext
from tests.lambdas.failover.faults import FaultSwitch
from tests.lambdas.failover.harness import FORCED, ShiftedClock, clients_for
from tests.lambdas.failover.world import REGION_B, World


@pytest.mark.xfail(
    strict=True,
    reason="BL22-4 open: a second failover under a still-active latch keeps its since, so the last failback phase record binds it",
)
def test_bl22_4_a_second_failover_under_the_still_active_latch_is_not_bound_by_the_last_failbacks_record(
    make_world: Callable[..., World],
) -> None:
    """BL22-4 (medium, aurora-global): the dr stack's failback record (BL21-8, SSM
    ``<latch>-failback-phase``) is tied to one failover by the latch's ``since``: "A new failover
    writes a new latch ``since``: the last cycle's failback record does not stop it"
    (tests/components/test_review_breaklife21.py; ``refuse_step_back``: "A record made under another
    failover's latch (a new ``since``) does not bind this one"). The runbook does not write one when
    the latch is still active: ``steps.write_latch`` answers ``already_done`` and keeps the old
    ``since``. That is exactly the second failover the runbook supports during an IaC failback
    (``fence_primary``: "A new failover: no earlier failback's writer move speaks for region A any
    more"): Aurora, ``latch switch-writer`` and ``dr:failback switch-writer`` applied (record
    ``switch-writer`` under ``since`` S1, latch still active until ``latch release``), then region A
    fails and the runbook fails over again (the global failover to region B: its secondary
    replicates again after the switchover,
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html).
    The latch still says S1, so ``pulumi up -s dr`` with ``dr:active true`` (the config that matches
    the failover, region B the writer) is refused with "region A holds the writer", which is false,
    and every setting that lights region B stays refused for the rest of this failover."""
    world = make_world("aurora-global")
    clock = ShiftedClock()
    clients = clients_for(world, FaultSwitch(), clock=clock)
    ctx = RunbookContext.from_dict(world.context)
    ssm = world.client("ssm", REGION_B)

    # The first failover writes the latch (since S1); the IaC failback then records switch-writer under it.
    steps.write_latch(ctx, clients, FORCED)
    first = Latch.parse(ssm.get_parameter(Name=ctx.latch_parameter_name)["Parameter"]["Value"])
    assert first.active and first.since
    record = PhaseRecord("switch-writer", first.since)

    # Region A fails after the writer moved back but before `latch release`: a second failover.
    clock.sleep(3600)  # an hour later, on the runbook's clock
    steps.write_latch(ctx, clients, FORCED)
    second = Latch.parse(ssm.get_parameter(Name=ctx.latch_parameter_name)["Parameter"]["Value"])
    assert second.active

    try:
        tier = decide(
            DrFlags(True),
            Capacity(2, 2, 6),
            database_mode="aurora-global",
            latch=second,
            previous=record,
        )
    except FailoverRefused as exc:
        raise AssertionError(
            f"the second failover (latch since {second.since}) is bound by the first failback's record "
            f"(since {record.latch_since}): {str(exc)[:160]}"
        ) from exc
    assert tier.region_b_serves
