"""breaklife22: the failback record's tie to one failover, against the runbook's own latch writes.

(Here rather than tests/automation: it needs this directory's ``make_world`` fixture, the emulated
AWS the runbook's steps run against.)
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.config import DrFlags
from components.failover import Capacity, FailoverRefused, Latch, PhaseRecord, decide
from lambdas.failover import steps
from lambdas.failover.context import RunbookContext
from tests.lambdas.failover.faults import FaultSwitch
from tests.lambdas.failover.harness import (
    FORCED,
    ShiftedClock,
    assert_failed_over,
    clients_for,
    run_book,
    shifted_runs,
)
from tests.lambdas.failover.world import REGION_B, World


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


MODES = ["rds-replica", "aurora-global"]


@pytest.mark.parametrize("mode", MODES)
def test_bl22_4_a_failover_run_again_after_its_promotion_keeps_its_latch_since(
    make_world: Callable[..., World], mode: str
) -> None:
    """The other side of BL22-4: a failover resumed or run again once region B holds the writer is
    the same failover, so ``write_latch`` keeps the latch as it is (``since`` and the operators'
    notification mark included): a failback record made under that ``since`` keeps binding (this
    failover's failback is the one it records), and nobody is paged twice. A fix that minted a new
    ``since`` on every call would fail here."""
    world = make_world(mode)
    clock = shifted_runs(world)
    assert run_book(world, "failover").outcome == "done"
    first = world.latch()
    assert first["state"] == "active" and first.get("notifiedAt"), first

    clock.sleep(3600)
    again = run_book(world, "failover")

    assert again.outcome == "done", again.format_table()
    assert again.record("write_latch").status == "already_done", again.format_table()
    assert world.latch() == first, (
        f"a second run of the same failover (region B holds the writer) rewrote the latch: {first} -> "
        f"{world.latch()}"
    )
    record = PhaseRecord("switch-writer", first["since"])
    with pytest.raises(FailoverRefused):
        decide(
            DrFlags(True),
            Capacity(2, 2, 6),
            database_mode=mode,
            latch=Latch.parse(json.dumps(first)),
            previous=record,
        )
    assert_failed_over(world)


@pytest.mark.parametrize("mode", MODES)
def test_bl22_4_a_failover_stopped_between_its_latch_and_its_promotion_resumes_to_the_end(
    make_world: Callable[..., World], mode: str
) -> None:
    """Crash point: the failover's ``write_latch`` put the latch (since S1) and the process died
    before ``promote_database`` (region A still holds the writer). The resume (the same steps,
    idempotent) re-latches with a new ``since``, as a run stopped there does after
    ``roll_back_fence`` set the latch back to standby, and completes the failover. What read S1
    meanwhile is not broken: the dr stack's ``dr:active true`` update records no ``since`` (only a
    failback phase does), so no record is tied to S1; the resumed latch lights region B as S1 did."""
    world = make_world(mode)
    clock = shifted_runs(world)
    _switch, clients = world.extras["runbook"]
    ctx = RunbookContext.from_dict(world.context)
    assert steps.fence_primary(ctx, clients, FORCED).status == "done"
    assert steps.write_latch(ctx, clients, FORCED).status == "done"
    s1 = Latch.parse(json.dumps(world.latch()))
    assert s1.active and not world.dr_is_writer()
    # What the dr stack's update under S1 would record: nothing tied to the latch.
    assert decide(DrFlags(True), Capacity(2, 2, 6), database_mode=mode, latch=s1).latch_since is None

    clock.sleep(60)
    resumed = run_book(world, "failover")

    assert resumed.outcome == "done", resumed.format_table()
    s2 = Latch.parse(json.dumps(world.latch()))
    assert s2.active and s2.since is not None and s1.since is not None and s2.since > s1.since, (s1, s2)
    assert decide(DrFlags(True), Capacity(2, 2, 6), database_mode=mode, latch=s2).region_b_serves
    assert_failed_over(world)
    # Resumed once more, now that region B holds the writer: the latch is the failover's and stays.
    assert run_book(world, "failover").record("write_latch").status == "already_done"
    assert Latch.parse(json.dumps(world.latch())).since == s2.since
