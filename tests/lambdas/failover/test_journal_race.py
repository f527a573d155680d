"""Single flight, the run journal: a fence that joined a failover and the failover both write it.

The joined fence (the canary's ``fence_primary`` with ``onlyIfPending``, ``lock.join_fence``) runs
while the failover holding the lock goes on. Both read-modify-write the journal, one SSM parameter in
region B, and SSM's PutParameter has no condition (docs/safety.md, "Known residue" under Single
flight). Here the failover's one journal write after its own fence (``scale_web_tier`` clearing
``drStoppedAt``) reads the journal, the fence then runs to its end, and the failover's put lands
last: the fence's record (which mappings it disabled, when region A's writes stopped, that no fence
is pending any more) must survive. A lost ``primaryFencedMappings`` means the failback never turns
region A's event sources back on; a resurrected ``fencePending`` fences region A again. Seen lost
before ``journal._journal`` repaired a put that landed past the version it read (and with
``Regression.JOURNAL_LAST_WRITER_WINS``, below).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.failover import journal, steps
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.regressions import Regression
from tests.lambdas.failover.harness import FAST, clients_for
from tests.lambdas.failover.world import REGION_A, REGION_B, World
from tests.safety.regressions import regressed


def _interleave(world: World) -> dict[str, Any]:
    """The failover's scale_web_tier reads the journal; the fence runs; the failover puts. Returns
    the journal after both."""
    ctx = RunbookContext.from_dict(world.context)
    journal = f"{ctx.latch_parameter_name}-journal"
    ssm = world.client("ssm", REGION_B)
    # A failover found region A dark (fence pending) after a failback's drain of region B.
    ssm.put_parameter(
        Name=journal,
        Value=json.dumps(
            {"fencePending": "2026-12-01T00:00:00+00:00", "drStoppedAt": "2026-12-01T00:00:00+00:00"}
        ),
        Type="String",
        Overwrite=True,
    )
    assert "Enabled" in world.mappings(REGION_A)
    fence_clients = clients_for(world)
    failover_clients = clients_for(world)
    fenced: list[Any] = []

    def fence_between_read_and_put(params: dict[str, Any], **_: Any) -> None:
        # Region A answers again; the canary's fence joins the failover and runs to its end while the
        # failover's scale_web_tier holds the journal it read.
        if params.get("Name") == journal and not fenced:
            fenced.append(
                steps.step_handler("fence_primary")(ctx, fence_clients, {**FAST, "onlyIfPending": True})
            )

    failover_clients.ssm("dr").meta.events.register(
        "before-parameter-build.ssm.PutParameter", fence_between_read_and_put
    )
    steps.step_handler("scale_web_tier")(ctx, failover_clients, FAST)

    assert fenced and fenced[0].status == "done", fenced
    assert world.mappings(REGION_A) == ["Disabled"] * len(world.context["primaryEventSourceMappingIds"])
    return steps.read_journal(fence_clients, ctx)


def test_a_joined_fence_s_journal_record_survives_the_failover_s_concurrent_write(world: World) -> None:
    after = _interleave(world)
    assert "drStoppedAt" not in after, after
    assert "fencePending" not in after, f"the fence's clearing of fencePending was overwritten: {after}"
    assert sorted(after.get("primaryFencedMappings", [])) == sorted(
        world.context["primaryEventSourceMappingIds"]
    ), f"the fence's record of the mappings it disabled was lost: {after}"
    assert after.get("primaryStoppedAt"), after


def test_the_lost_journal_update_is_seen_with_last_writer_wins_back(world: World) -> None:
    """The same interleaving with ``Regression.JOURNAL_LAST_WRITER_WINS`` (no repair after a put that
    landed past the version it read): the fence's record is lost, as it was before the repair."""
    with regressed(Regression.JOURNAL_LAST_WRITER_WINS):
        after = _interleave(world)
    assert "primaryFencedMappings" not in after and after.get("fencePending"), after


# --------------------------------------------------------------------------------------------------
# A garbled journal (breaklife21 BL21-4, the runbook's side): read as empty it failed open, a
# failover's fence marks and a failback's writer move forgotten. SSM keeps a parameter's earlier
# versions (GetParameter "name:version"): the run goes on from the last readable one.


def _put(world: World, value: str) -> None:
    ctx = RunbookContext.from_dict(world.context)
    world.client("ssm", REGION_B).put_parameter(
        Name=f"{ctx.latch_parameter_name}-journal", Value=value, Type="String", Overwrite=True
    )


def test_a_garbled_journal_is_read_as_its_last_readable_version_and_the_next_write_restores_it(
    world: World,
) -> None:
    ctx = RunbookContext.from_dict(world.context)
    marks = {
        "primaryStoppedAt": "2026-12-01T00:00:00+00:00",
        "writerMoveRequestedAt": "2026-12-01T01:00:00+00:00",
    }
    _put(world, json.dumps(marks))
    _put(world, '{"primaryStoppedAt": ')  # cut short
    _put(world, '["not", "an", "object"]')
    clients = clients_for(world)
    assert steps.read_journal(clients, ctx) == marks
    after = journal._journal(clients, ctx, drStoppedAt="2026-12-01T02:00:00+00:00")
    assert after == {**marks, "drStoppedAt": "2026-12-01T02:00:00+00:00"}
    assert steps.read_journal(clients, ctx) == after


def test_a_journal_with_no_readable_version_stops_the_run_with_what_to_do(world: World) -> None:
    ctx = RunbookContext.from_dict(world.context)
    _put(world, "garbled")
    with pytest.raises(StepFailed) as failed:
        steps.read_journal(clients_for(world), ctx)
    assert failed.value.code == "MalformedJournal" and not failed.value.retryable
    assert f"{ctx.latch_parameter_name}-journal" in str(failed.value)
    assert "get-parameter-history" in str(failed.value)
