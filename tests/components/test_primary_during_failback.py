"""The primary stack during the runbook's failback: refused, at its entry, before any resource.

Mid-failback region A's database is not what a primary update declares (components/primary_data.py reads
region A's instances live): the old primary renamed, a replica being created under ``<primary>``, a
writer about to be promoted. The run journal beside the latch (lambdas/failover/journal.py) says so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from automation import synth
from components.failover import (
    FailbackInProgress,
    Latch,
    failback_in_progress,
    refuse_dr_update,
    refuse_primary_update,
)

SINCE = "2026-03-01T10:00:00+00:00"
ACTIVE = Latch("active", SINCE, "failover")
RDS_RECORD = {"retained": "app-prod-us-east-1-db-pre-failback-202603011100", "created": True}


@pytest.mark.parametrize(
    ("latch", "journal", "under_way"),
    [
        # The failover holds region B, no failback started: the IaC failback's primary update runs here.
        (ACTIVE, {}, False),
        # rds-replica: from the rename until clear_latch.
        (ACTIVE, {"failback": RDS_RECORD}, True),
        (ACTIVE, {"failback": {"retained": "x"}}, True),
        # Region B's writes stopped since this failover: the writer is about to move.
        (ACTIVE, {"drStoppedAt": "2026-03-01T11:30:00+00:00"}, True),
        # ... an earlier, finished failback's stamp (the runbook leaves it) is not this one.
        (ACTIVE, {"drStoppedAt": "2026-02-01T11:30:00+00:00"}, False),
        (ACTIVE, {"drStoppedAt": "garbled"}, True),
        (Latch.parse("not json"), {"drStoppedAt": "2026-02-01T11:30:00+00:00"}, True),
        # clear_latch ran: the writer is back in region A (only the journal's clean-up remains).
        (Latch("standby", SINCE, "failback"), {"failback": RDS_RECORD, "drStoppedAt": SINCE}, False),
    ],
    ids=[
        "failover-only",
        "rds-replica-created",
        "rds-renamed",
        "drained",
        "stale-drain",
        "garbled-stamp",
        "unreadable-latch",
        "latch-cleared",
    ],
)
def test_a_failback_is_under_way_while_the_latch_is_active_and_the_journal_marks_it(
    latch: Latch, journal: dict[str, Any], under_way: bool
) -> None:
    assert (failback_in_progress(latch, journal) is not None) == under_way
    if under_way:
        with pytest.raises(FailbackInProgress):
            refuse_primary_update(latch, journal)
    else:
        refuse_primary_update(latch, journal)


def test_the_refusal_names_what_is_in_progress_and_what_to_do() -> None:
    with pytest.raises(FailbackInProgress) as refused:
        refuse_primary_update(ACTIVE, {"failback": RDS_RECORD})
    text = str(refused.value)
    assert "pulumi up -s primary is refused" in text and RDS_RECORD["retained"] in text
    assert "Wait for the failback to finish" in text
    assert "python -m automation failback --stack dr" in text and "--run-id" in text


def _registered_types(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The type of every resource the synthesis registers from now on (Pulumi's mocks), in order."""
    registered: list[str] = []
    original = synth._Mocks.new_resource

    def record(self: synth._Mocks, args: Any) -> Any:
        registered.append(args.typ)
        return original(self, args)

    monkeypatch.setattr(synth._Mocks, "new_resource", record)
    return registered


def test_the_primary_stack_refuses_before_registering_any_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under Pulumi's mocks: the latch and the journal are what SSM answers in region B.
    registered = _registered_types(monkeypatch)
    with pytest.raises(FailbackInProgress, match="pulumi up -s primary is refused"):
        synth.synthesize(
            "primary",
            latch=ACTIVE.to_json(),
            journal=json.dumps({"drStoppedAt": "2026-03-01T11:30:00+00:00"}),
        )
    assert [t for t in registered if not t.startswith("pulumi:")] == [], registered


def test_the_primary_stack_updates_when_no_failback_is_under_way() -> None:
    s = synth.synthesize("primary", latch=ACTIVE.to_json(), journal=json.dumps({"retainedPrimaries": []}))
    assert s.by_type("aws:rds/instance:Instance") or s.by_type("aws:rds/cluster:Cluster")
    assert ("aws:ssm/getParametersByPath:getParametersByPath", "us-west-2") in {
        (token, region) for token, _, region in s.invokes
    }, "the primary stack reads the latch and the journal in region B"


@pytest.mark.parametrize("dr_active", [True, False])
def test_the_dr_stack_refuses_an_update_mid_failback_before_registering_any_resource(
    monkeypatch: pytest.MonkeyPatch, dr_active: bool
) -> None:
    """converges / no_loss through ``pulumi up -s dr``: mid-failback region B is drained while the writer
    moves to region A, and the latch keeps the DR tier active in the program, so an update would
    scale region B back up (whatever dr:active says): writes it took would never reach region A.
    Refused at the stack's entry, with what is under way and what to do, before any resource."""
    registered = _registered_types(monkeypatch)
    with pytest.raises(FailbackInProgress) as refused:
        synth.synthesize(
            "dr",
            {"dr:active": dr_active},
            latch=ACTIVE.to_json(),
            journal=json.dumps({"drStoppedAt": "2026-03-01T11:30:00+00:00"}),
        )
    text = str(refused.value)
    assert "pulumi up -s dr is refused" in text and "2026-03-01T11:30:00+00:00" in text
    assert "python -m automation failback --stack dr" in text and "dr:active false" in text
    # (The primary synthesis the dr stack is synthesized against registers region A's resources.)
    dr_stack = {"pilotlight:index:PilotLightRegion", "pilotlight:index:GlobalFailover"}
    assert not dr_stack & set(registered), registered


def test_the_dr_stack_updates_under_a_failover_latch_with_no_failback_under_way() -> None:
    """Control: the failover's own latch (no failback started, or a finished failback's old stamp)
    does not refuse the dr stack: its routine update keeps the DR tier active."""
    s = synth.synthesize(
        "dr",
        {"dr:active": True},
        latch=ACTIVE.to_json(),
        journal=json.dumps({"drStoppedAt": "2026-02-01T11:30:00+00:00"}),
    )
    assert s.by_type("aws:autoscaling/group:Group")


@pytest.mark.parametrize(
    ("journal", "refused"),
    [
        ({"drStoppedAt": "2026-03-01T11:30:00+00:00"}, True),  # region B drained since the failover
        ({"writerMoveRequestedAt": "2026-03-01T11:40:00+00:00"}, True),  # the writer moving back
        # A failback that stopped and gave region B back keeps its rds entry (for its resume): the dr
        # stack, where the runbook's role is fixed, updates (BL21-1); the primary stack stays refused.
        ({"failback": RDS_RECORD}, False),
        ({}, False),
    ],
    ids=["drained", "writer-moving", "stopped-and-rolled-back", "failover-only"],
)
def test_the_dr_stack_is_refused_only_while_region_b_is_drained_or_the_writer_moves(
    journal: dict[str, Any], refused: bool
) -> None:
    if refused:
        with pytest.raises(FailbackInProgress, match="pulumi up -s dr is refused"):
            refuse_dr_update(ACTIVE, journal)
    else:
        refuse_dr_update(ACTIVE, journal)


def test_the_stacks_read_the_runbook_s_journal_keys() -> None:
    """The program names the runbook's journal keys itself (it does not import the runbook)."""
    from components import failover
    from lambdas.failover import steps

    assert failover.JOURNAL_FAILBACK == steps.FAILBACK_JOURNAL_KEY
    assert failover.JOURNAL_WRITER_MOVE == steps.WRITER_MOVE_MARK


def test_the_fence_marks_are_the_runbook_s_fencing_marks() -> None:
    """BL21-7: the primary stack keeps region A's fence while the runbook's marks of it are set, and
    only those: ``failoverDeclaredAt`` holds region A without fencing it (nothing to keep)."""
    from components import failover
    from lambdas.failover import steps

    assert set(failover.FENCE_MARKS) <= set(steps.FAILOVER_MARKS)
    assert "failoverDeclaredAt" not in failover.FENCE_MARKS


@pytest.mark.parametrize(
    ("journal", "kept"),
    [
        ({}, False),
        ({"failoverDeclaredAt": SINCE}, False),  # a declared failover does not fence region A
        ({"primaryStoppedAt": SINCE}, True),
        ({"fencePending": SINCE}, True),
    ],
    ids=["no-failover", "declared", "fenced", "fence-pending"],
)
def test_a_primary_update_keeps_the_fence_the_runbook_set(journal: dict[str, Any], kept: bool) -> None:
    """BL21-7: while the journal says a failover fenced region A, the properties the fence set out of
    band (the web tier's floor, the payments function's reserved concurrency, its event source) are
    ignored by ``pulumi up -s primary``: the state's pre-fence values are kept, nothing is sent."""
    s = synth.synthesize(
        "primary", {"pilotlight:compute": {"minSize": 3, "desiredCapacity": 3}}, journal=json.dumps(journal)
    )
    expect = {
        "aws:autoscaling/group:Group": "minSize",
        "aws:lambda/function:Function": "reservedConcurrentExecutions",
        "aws:lambda/eventSourceMapping:EventSourceMapping": "enabled",
    }
    for type_, prop in expect.items():
        resources = [
            r for r in s.by_type(type_) if type_ != "aws:lambda/function:Function" or "payments" in r.name
        ]
        assert resources, type_
        for r in resources:
            assert (prop in (r.ignore_changes or [])) == kept, (
                f"{type_} {r.name}: {prop} {'not ' if kept else ''}ignored with journal {journal}"
            )


@pytest.mark.parametrize(
    ("phase", "refused"), [("replicate", True), (None, True), ("drain", False), ("switch-writer", False)]
)
def test_the_dr_stack_under_a_writer_move_is_refused_only_when_the_update_would_undrain_region_b(
    phase: str | None, refused: bool
) -> None:
    """Aurora's IaC failback runs ``latch switch-writer`` (the runbook's ``switch_writer``, which writes
    the writer-move mark first) and then ``dr:failback switch-writer``: that update keeps region B
    drained and must run; one that gives region B its capacity back stays refused."""
    journal = json.dumps({"writerMoveRequestedAt": "2026-03-01T11:40:00+00:00"})
    overrides = {"pilotlight:database": {"mode": "aurora-global"}, "dr:active": True}
    if phase is not None:
        overrides["dr:failback"] = phase
    run = lambda: synth.synthesize("dr", overrides, latch=ACTIVE.to_json(), journal=journal)  # noqa: E731
    if refused:
        with pytest.raises(FailbackInProgress, match="pulumi up -s dr is refused"):
            run()
    else:
        run()
