"""Protected again, or refuse (docs/safety.md): a failover under a latch whose IaC failback already moved the
writer back to region A (rds-replica) refuses to "promote" region B's frozen standalone copy.

The dr stack's ``dr:failback switch-writer`` update promotes region A's replica and the latch stays active
until ``latch release`` (README "Failing back"). Region B's instance, the writer before, is then a standalone
copy that never replicates again ("A promoted read replica ... can't be made a read replica again":
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). A failover in that window
(region A fails before ``latch release``) found the active latch and took region B's instance for the writer:
it lit region B on data frozen at the switch, losing every write region A took since (life23's finding). The
dr stack's phase record (SSM ``<latch>-failback-phase``, bound to the latch's ``since``) says where the writer is.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.failover.names import phase_record_name
from tests.lambdas.failover.harness import run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World


def _record(world: World, value: str) -> None:
    world.client("ssm", REGION_B).put_parameter(
        Name=phase_record_name(world.context["latchParameterName"]),
        Value=value,
        Type="String",
        Overwrite=True,
    )


def _state(world: World) -> tuple[Any, ...]:
    return (
        world.asg(REGION_A),
        world.concurrency(REGION_A),
        world.asg(REGION_B),
        world.concurrency(REGION_B),
        world.latch(),
    )


def _failed_over(world: World) -> dict[str, Any]:
    first = run_book(world, "failover")
    assert first.outcome == "done", first.format_table()
    latch = world.latch()
    assert latch["state"] == "active" and latch.get("since"), latch
    return latch


@pytest.mark.parametrize("phase", ["switch-writer", "route-back", "complete"])
def test_protected_again_a_failover_after_the_iac_switch_writer_refuses_region_b_s_frozen_copy(
    world: World, phase: str
) -> None:
    latch = _failed_over(world)
    _record(world, json.dumps({"phase": phase, "latchSince": latch["since"]}))
    before = _state(world)

    report = run_book(world, "failover")

    assert report.stopped_at == "confirm_primary_down", report.format_table()
    record = report.record("confirm_primary_down")
    assert record.code == "NotReplicating", record.detail
    assert "region A holds the writer" in record.detail and "Nothing was changed" in record.detail
    assert "latch release" in record.detail, record.detail  # names the way out
    assert _state(world) == before


def test_a_garbled_phase_record_under_an_active_latch_fails_safe(world: World) -> None:
    """A record that is not the program's JSON is read as the program reads it: the writer moved."""
    _failed_over(world)
    _record(world, "switch-writer, I think")
    before = _state(world)

    report = run_book(world, "failover")

    assert report.stopped_at == "confirm_primary_down", report.format_table()
    assert report.record("confirm_primary_down").code == "NotReplicating"
    assert _state(world) == before


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(lambda since: {"phase": "drain", "latchSince": since}, id="writer-still-in-b"),
        pytest.param(
            lambda since: {"phase": "switch-writer", "latchSince": "2020-01-01T00:00:00+00:00"},
            id="another-failover",
        ),
    ],
)
def test_a_failover_resumed_while_region_b_holds_the_writer_is_not_refused(world: World, record: Any) -> None:
    """Control: before ``switch-writer`` (region B still the writer), or a record of another failover's
    latch, the failover under the active latch goes on as before."""
    latch = _failed_over(world)
    _record(world, json.dumps(record(latch["since"])))

    report = run_book(world, "failover")

    assert report.outcome == "done", report.format_table()


def test_the_runbook_s_writer_back_phases_are_the_program_s() -> None:
    """The runbook (no ``components`` in its archive) keeps its own copy of the phases from which the
    program says region A holds the writer; the two must not drift."""
    from components.failover import PHASE_RECORD_SUFFIX, WRITER_MOVED_PHASES
    from lambdas.failover.names import PHASE_RECORD_SUFFIX as RUNBOOK_SUFFIX
    from lambdas.failover.names import WRITER_BACK_PHASES

    assert WRITER_BACK_PHASES == WRITER_MOVED_PHASES
    assert RUNBOOK_SUFFIX == PHASE_RECORD_SUFFIX


@pytest.mark.parametrize("phase", ["replicate", "drain", "switch-writer"])
def test_the_runbook_s_failback_refuses_while_the_dr_stack_s_failback_is_under_way(
    world: World, phase: str
) -> None:
    """rds-replica (break23 BR23-6): two failback procedures at once leave the IaC failback's replica in
    region A's writer lineage beside the runbook's own; the runbook's failback refuses first, changing nothing."""
    from tests.lambdas.failover.harness import FAST

    latch = _failed_over(world)
    _record(world, json.dumps({"phase": phase, "latchSince": latch["since"]}))
    before = _state(world)

    report = run_book(world, "failback", params=FAST)

    assert report.stopped_at == "confirm_primary_healthy", report.format_table()
    record = report.record("confirm_primary_healthy")
    assert record.code == "IacFailbackUnderWay", record.detail
    assert f"dr:failback {phase}" in record.detail and "Nothing was changed" in record.detail
    assert _state(world) == before


def test_the_runbook_s_failback_is_not_bound_by_another_failover_s_record(world: World) -> None:
    """Control: a record of another failover's latch (another since) does not stop this failback."""
    from tests.lambdas.failover.harness import FAST

    _failed_over(world)
    _record(world, json.dumps({"phase": "drain", "latchSince": "2020-01-01T00:00:00+00:00"}))

    report = run_book(world, "failback", params=FAST)

    assert report.stopped_at != "confirm_primary_healthy", report.format_table()
