"""The failover module, tested directly: capacity maths, standby, the latch, failback phases."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.config import FAILBACK_PHASES, DrFlags
from components.failover import (
    NOT_READ,
    STANDBY_CAPACITY,
    Capacity,
    FailoverRefused,
    Latch,
    PhaseRecord,
    decide,
    dr_capacity,
    dr_database_replicates,
    failback_lag_watched,
    failback_replica_released,
    promotes_on_failover,
    refuse_program_promotion,
)

capacities = st.builds(
    lambda a, b, c: Capacity(*sorted((a, b, c))),
    st.integers(1, 100),
    st.integers(1, 100),
    st.integers(1, 100),
)
modes = st.sampled_from(["aurora-global", "rds-replica"])
ACTIVE_LATCH = Latch("active", "2026-11-22T03:00:00Z", "failover")
STANDBY = Latch("standby", None, None)
PRIMARY = Capacity(2, 2, 6)


def procedure_latch(flags: DrFlags) -> Latch:
    """The latch the documented procedure leaves for ``flags`` (README "Failing back"; automation/synth.py
    ``procedure_latch``): activated before ``dr:active true``, released before ``route-back``."""
    if flags.active and flags.failback not in ("route-back", "complete"):
        return ACTIVE_LATCH
    return Latch()


@given(primary=capacities, percent=st.integers(1, 200))
def test_capacity_never_exceeds_the_scaled_maximum_and_is_never_zero_when_active(
    primary: Capacity, percent: int
) -> None:
    cap = dr_capacity(primary, percent)
    assert 1 <= cap.min <= cap.desired <= cap.max
    assert cap.max <= max(1, -(-primary.max * percent // 100))


@given(primary=capacities, percent=st.integers(1, 200), mode=modes, warm=st.integers(0, 5))
def test_standby_always_means_zero_instances_and_dormant_functions(
    primary: Capacity, percent: int, mode: str, warm: int
) -> None:
    tier = decide(DrFlags(False, percent), primary, database_mode=mode, latch=Latch(), warm_pool=warm)
    assert tier.capacity == STANDBY_CAPACITY
    assert tier.reserved_concurrency == 0 and not tier.event_sources_enabled and not tier.functions_enabled
    assert tier.traffic == "primary" and not tier.promote_database and tier.warm_pool == warm


@given(
    primary=capacities,
    percent=st.integers(1, 200),
    mode=modes,
    phase=st.sampled_from([None, *FAILBACK_PHASES[:-1]]),
)
def test_a_latched_failover_is_never_undone_without_failback(
    primary: Capacity, percent: int, mode: str, phase: str | None
) -> None:
    with pytest.raises(FailoverRefused) as err:
        decide(DrFlags(False, percent, failback=phase), primary, database_mode=mode, latch=ACTIVE_LATCH)
    assert "dr:failback" in str(err.value) and "dr:active false is refused" in str(err.value)


def test_active_lights_everything_and_routes_to_b() -> None:
    tier = decide(DrFlags(True, 50), Capacity(2, 4, 10), database_mode="rds-replica", latch=ACTIVE_LATCH)
    assert tier.capacity == Capacity(2, 2, 5)
    assert tier.promote_database and tier.promotion == "iac"
    assert tier.reserved_concurrency is None and tier.event_sources_enabled and tier.traffic == "dr"


def test_aurora_promotion_is_handed_to_the_runbook() -> None:
    tier = decide(DrFlags(True), Capacity(2, 2, 6), database_mode="aurora-global", latch=ACTIVE_LATCH)
    assert tier.promotion == "runbook"


@pytest.mark.parametrize(
    ("active", "phase", "capacity", "traffic", "functions", "released"),
    [
        (True, "replicate", Capacity(2, 2, 6), "dr", True, False),
        (True, "drain", STANDBY_CAPACITY, "dr", False, False),
        (True, "switch-writer", STANDBY_CAPACITY, "dr", False, False),
        (True, "route-back", STANDBY_CAPACITY, "primary", False, True),
        (False, "complete", STANDBY_CAPACITY, "primary", False, True),
    ],
)
def test_failback_phases_step_back_to_standby(
    active: bool, phase: str, capacity: Capacity, traffic: str, functions: bool, released: bool
) -> None:
    # route-back and complete run once the latch is released (python -m automation latch release).
    latch = Latch("standby", "2026-11-22T05:00:00Z", "latch release") if released else ACTIVE_LATCH
    tier = decide(
        DrFlags(active, failback=phase), Capacity(2, 2, 6), database_mode="rds-replica", latch=latch
    )
    assert (tier.capacity, tier.traffic, tier.functions_enabled) == (capacity, traffic, functions)
    assert tier.failback_replica  # the replica in region A exists from the first phase on
    if released:
        # pulumi up never writes the latch: under an active latch these phases are refused, naming the command.
        with pytest.raises(FailoverRefused, match="python -m automation latch release"):
            decide(
                DrFlags(active, failback=phase),
                Capacity(2, 2, 6),
                database_mode="rds-replica",
                latch=ACTIVE_LATCH,
            )
    # Region A's replica is promoted only in a later update than the one that stopped B's writes.
    assert tier.failback_replica_promoted == (phase in ("switch-writer", "route-back", "complete"))


@pytest.mark.parametrize(
    ("raw", "active"),
    [
        (None, False),
        ("", False),
        ('{"state": "standby"}', False),
        ('{"state": "active"}', True),
        ("garbage", True),
    ],
)
def test_latch_parsing_fails_safe(raw: str | None, active: bool) -> None:
    assert Latch.parse(raw).active is active


@pytest.mark.parametrize("percent", [0, 201])
def test_capacity_percent_out_of_range_is_refused(percent: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.200"):
        dr_capacity(Capacity(1, 1, 1), percent)


@pytest.mark.parametrize("mode", ["aurora-global", "rds-replica"])
def test_only_the_rds_failback_instance_at_complete_is_released(mode: str) -> None:
    primary = Capacity(2, 2, 6)
    released = {
        phase: failback_replica_released(
            decide(
                DrFlags(active=phase != "complete", failback=phase),
                primary,
                database_mode=mode,
                latch=procedure_latch(DrFlags(active=phase != "complete", failback=phase)),
            )
        )
        for phase in FAILBACK_PHASES
    }
    assert released == {p: mode == "rds-replica" and p == "complete" for p in FAILBACK_PHASES}


@pytest.mark.parametrize(
    ("mode", "replicates"),
    [
        # standby, active, replicate, drain, switch-writer, route-back, complete
        ("rds-replica", [True, False, False, False, False, False, False]),
        ("aurora-global", [True, False, False, False, True, True, True]),
    ],
)
def test_the_dr_lag_alarm_expects_datapoints_only_while_region_b_replicates(
    mode: str, replicates: list[bool]
) -> None:
    primary = Capacity(2, 2, 6)
    flags = [DrFlags(), DrFlags(active=True)] + [
        DrFlags(active=p != "complete", failback=p) for p in FAILBACK_PHASES
    ]
    # The latch the documented procedure leaves: activated before dr:active true, released before route-back.
    tiers = [decide(f, primary, database_mode=mode, latch=procedure_latch(f)) for f in flags]
    assert [dr_database_replicates(t, mode) for t in tiers] == replicates
    assert [failback_lag_watched(t) for t in tiers] == [False, False, True, True, False, False, False]


# --- breaklife22 BL22-3: an abandoned rds-replica failback must not drop region A's protected instance

OTHER_FAILOVER = "2026-11-01T00:00:00Z"  # a record under another latch: refuse_step_back lets it pass


@pytest.mark.parametrize("recorded", [*FAILBACK_PHASES, None])
@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_dr_active_without_a_phase_is_refused_while_the_dr_stack_holds_region_a_s_failback_instance(
    mode: str, recorded: str | None
) -> None:
    """rds-replica: from ``replicate`` to ``route-back`` the dr stack holds region A's failback
    instance, protected (``complete`` lifts it); ``dr:active true`` without ``dr:failback`` would drop
    it, which Pulumi refuses only after the rest of the update ran. Refused before any resource, with
    the key, its allowed values and the remedy. Aurora has no failback instance: nothing to drop."""
    from components.failover import PhaseRecord

    def run() -> object:
        return decide(
            DrFlags(True),
            Capacity(2, 2, 6),
            database_mode=mode,
            latch=ACTIVE_LATCH,
            previous=PhaseRecord(recorded, OTHER_FAILOVER),
        )

    if mode == "rds-replica" and recorded in FAILBACK_PHASES[:-1]:
        with pytest.raises(FailoverRefused) as err:
            run()
        text = str(err.value)
        assert text.startswith("dr:failback is required"), text
        assert ", ".join(FAILBACK_PHASES) in text and "dr-data-db-failback" in text, text
        remedy = (
            "finish the failback" if recorded in ("switch-writer", "route-back") else "dr:failback replicate"
        )
        assert remedy in text, text
        assert "\n" not in text and "Traceback" not in text
    else:
        run()


@pytest.mark.parametrize("phase", ["replicate", "drain", "switch-writer"])
def test_a_failback_phase_declares_the_failback_instance_and_is_not_refused(phase: str) -> None:
    """The refusal is only for dropping the instance: a phase declares it, so none is refused."""
    from components.failover import PhaseRecord

    tier = decide(
        DrFlags(True, failback=phase),
        Capacity(2, 2, 6),
        database_mode="rds-replica",
        latch=ACTIVE_LATCH,
        previous=PhaseRecord("drain", ACTIVE_LATCH.since),
    )
    assert tier.failback_replica


# break23 BR23-4: failback phases run one at a time; a jump forward past a phase not applied under this
# failover is refused (refuse_phase_skip), the record binding as refuse_step_back's does.
_SINCE = "2026-03-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("recorded", "since", "phase", "refused"),
    [
        (None, None, "replicate", False),
        (None, None, "drain", True),
        (None, None, "switch-writer", True),
        ("replicate", _SINCE, "drain", False),
        ("replicate", _SINCE, "switch-writer", True),
        ("drain", _SINCE, "switch-writer", False),
        ("drain", _SINCE, "drain", False),
        ("switch-writer", _SINCE, "switch-writer", False),
        # a record of another failover (another since) does not count: this one starts again
        ("drain", "2026-01-01T00:00:00+00:00", "switch-writer", True),
        ("drain", "2026-01-01T00:00:00+00:00", "replicate", False),
    ],
)
def test_failback_phases_run_one_at_a_time(
    recorded: str | None, since: str | None, phase: str, refused: bool
) -> None:
    from components.failover import refuse_phase_skip

    previous = None if recorded is None else PhaseRecord(recorded, since)
    tier = decide_tier_for_phase(phase)
    latch = Latch("active", _SINCE, "failover")
    if refused:
        with pytest.raises(
            FailoverRefused, match=rf"dr:failback {phase} is refused: failback phases run one at a time"
        ):
            refuse_phase_skip(previous, tier, latch)
    else:
        refuse_phase_skip(previous, tier, latch)


def test_the_skip_check_binds_an_unreadable_record_and_any_record_under_a_released_latch() -> None:
    """An unreadable record reads as switch-writer (``PhaseRecord.parse``), whatever the latch's since;
    under a released latch (``latch release`` writes standby) the record binds whatever since it has."""
    from components.failover import refuse_phase_skip

    unreadable = PhaseRecord("switch-writer", None, unreadable=True)
    refuse_phase_skip(unreadable, decide_tier_for_phase("route-back"), Latch("active", _SINCE, "failover"))
    earlier = PhaseRecord("switch-writer", "2020-01-01T00:00:00+00:00")
    refuse_phase_skip(earlier, decide_tier_for_phase("route-back"), Latch("standby", _SINCE, "release"))


@pytest.mark.parametrize(
    "record",
    [None, PhaseRecord(None, None), PhaseRecord("switch-writer", _SINCE)],
    ids=["none", "routine", "sw"],
)
def test_complete_under_a_released_latch_needs_the_dr_stacks_route_back(record: PhaseRecord | None) -> None:
    """``complete`` promotes region B's database and declares region A's failback instance promoted: it
    follows route-back (the record) even under a released latch. Without it (no failover behind it, a
    runbook failback, which records no phase, a routine update after the last cycle) it is refused and says
    what to run instead (issue 13: ``test_lifecycle``'s
    ``test_complete_without_the_dr_stacks_route_back_is_refused_and_the_system_ends_protected``)."""
    from components.failover import refuse_phase_skip

    with pytest.raises(FailoverRefused, match=r"dr:failback complete is refused: .*route-back") as refused:
        refuse_phase_skip(record, decide_tier_for_phase("complete"), Latch("standby", _SINCE, "failback"))
    assert "pulumi config rm dr:failback -s dr" in str(refused.value)
    # route-back (or complete, re-run) under this released latch: a standby latch is never rewritten.
    for phase in ("route-back", "complete"):
        refuse_phase_skip(
            PhaseRecord(phase, _SINCE), decide_tier_for_phase("complete"), Latch("standby", _SINCE)
        )
        # An earlier cycle's record (`cloud failback complete` runs no dr update after it) does not bind
        # (break26 B26-4).
        with pytest.raises(FailoverRefused, match="dr:failback complete is refused"):
            refuse_phase_skip(
                PhaseRecord(phase, "2020-01-01T00:00:00+00:00"),
                decide_tier_for_phase("complete"),
                Latch("standby", _SINCE),
            )
    with pytest.raises(FailoverRefused, match="would skip replicate, drain, switch-writer, route-back"):
        refuse_phase_skip(None, decide_tier_for_phase("complete"), Latch("active", _SINCE, "failover"))


def decide_tier_for_phase(phase: str) -> Any:
    import dataclasses

    from components.failover import DesiredTier

    fields = {f.name for f in dataclasses.fields(DesiredTier)}
    assert "failback_phase" in fields
    base = decide(
        DrFlags(True), Capacity(2, 2, 6), database_mode="rds-replica", latch=Latch("active", _SINCE, "f")
    )
    return dataclasses.replace(base, failback_phase=phase)


# break23 BR23-5: aurora `dr:failback switch-writer` is recorded only once something moved the writer.
@pytest.mark.parametrize(
    ("mode", "journal", "recorded", "latch_state", "refused"),
    [
        ("aurora-global", {}, None, "active", True),
        ("aurora-global", None, None, "active", True),
        ("aurora-global", {"writerMoveRequestedAt": _SINCE}, None, "active", False),
        (
            "aurora-global",
            {},
            ("switch-writer", _SINCE),
            "active",
            False,
        ),  # re-applied after the mark's release
        (
            "aurora-global",
            {},
            ("switch-writer", "2020-01-01T00:00:00+00:00"),
            "active",
            True,
        ),  # another failover's
        ("aurora-global", {}, ("drain", _SINCE), "active", True),
        # break24 BR24-10: an unreadable record (read as switch-writer) is no proof that the writer moved;
        # the mark still is.
        ("aurora-global", {}, ("switch-writer", None, True), "active", True),
        ("aurora-global", {"writerMoveRequestedAt": _SINCE}, ("switch-writer", None, True), "active", False),
        ("rds-replica", {}, None, "active", False),  # the program promotes region A's replica itself
        ("aurora-global", {}, None, "standby", False),
    ],
)
def test_aurora_switch_writer_needs_the_writer_moved(
    mode: str, journal: Any, recorded: Any, latch_state: str, refused: bool
) -> None:
    from components.failover import refuse_unmoved_aurora_writer

    previous = None if recorded is None else PhaseRecord(*recorded)
    tier = decide_tier_for_phase("switch-writer")
    latch = Latch(latch_state, _SINCE, "failover")
    if refused:
        with pytest.raises(FailoverRefused, match="latch switch-writer"):
            refuse_unmoved_aurora_writer(previous, tier, latch, journal, mode)
    else:
        refuse_unmoved_aurora_writer(previous, tier, latch, journal, mode)


def test_an_unreadable_record_is_no_writer_move_even_under_a_latch_without_since() -> None:
    """break24 BR24-10: an unreadable record carries no ``since`` (``PhaseRecord.parse``); under an active
    latch that has none either, the same-since rule alone would take it for this failover's switch-writer."""
    from components.failover import refuse_unmoved_aurora_writer

    latch = Latch("active", None, "failover")
    tier = decide_tier_for_phase("switch-writer")
    unreadable = PhaseRecord.parse("switch-writer?")
    assert unreadable is not None and unreadable.unreadable and unreadable.latch_since is None
    with pytest.raises(FailoverRefused, match="cannot be read"):
        refuse_unmoved_aurora_writer(unreadable, tier, latch, {}, "aurora-global")
    refuse_unmoved_aurora_writer(PhaseRecord("switch-writer", None), tier, latch, {}, "aurora-global")


# --- break24 BR24-7: the phases that undo a failover need the failover's latch behind them


@pytest.mark.parametrize("phase", ["replicate", "drain", "switch-writer"])
@pytest.mark.parametrize(
    "latch",
    [
        Latch(),  # right after deploy: the latch the dr stack creates (pilot_light_region.py)
        Latch.parse(None),  # absent
        Latch("standby", "2026-11-22T05:00:00Z", "failback"),  # after `latch release` or a runbook failback
        Latch("paused", _SINCE, "hand edit"),  # a state the runbook never writes: not active
        Latch.parse('{"state": "act'),  # unreadable: read as active, but says nothing about a failover
    ],
    ids=["deploy", "absent", "released", "unknown-state", "unreadable"],
)
@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_a_latch_held_phase_without_a_failover_behind_it_is_refused(
    phase: str, latch: Latch, mode: str
) -> None:
    """One writer: ``dr:active true`` with ``replicate``/``drain``/``switch-writer`` under a latch that does
    not say a failover holds region B would promote region B's replica beside region A's writer; refused
    by ``decide`` (before any resource), naming ``dr:failback`` and the way forward, whatever the record."""
    for previous in (NOT_READ, None, PhaseRecord("drain", latch.since)):
        with pytest.raises(
            FailoverRefused, match=f"dr:failback {phase} is refused: the failover latch"
        ) as err:
            decide(
                DrFlags(active=True, failback=phase),
                PRIMARY,
                database_mode=mode,
                latch=latch,
                previous=previous,
            )
        assert ("cannot be read" in str(err.value)) == latch.unreadable, err.value
        assert "pulumi config rm dr:failback" in str(err.value) or latch.unreadable, err.value


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_the_documented_failback_sequence_still_runs(mode: str) -> None:
    """The control for BR24-7: replicate..switch-writer under the failover's active latch, route-back and
    complete under the released one with the record of the phase before, are all accepted."""
    released = Latch("standby", "2026-11-22T05:00:00Z", "failback")
    previous: PhaseRecord | None = None
    for phase in FAILBACK_PHASES:
        flags = DrFlags(active=phase != "complete", failback=phase)
        latch = ACTIVE_LATCH if phase not in ("route-back", "complete") else released
        tier = decide(flags, PRIMARY, database_mode=mode, latch=latch, previous=previous)
        assert tier.failback_phase == phase
        previous = PhaseRecord(phase, tier.latch_since)


@pytest.mark.parametrize(
    ("mode", "flags", "latch", "replicating", "refused"),
    [
        ("rds-replica", DrFlags(active=True), ACTIVE_LATCH, True, True),
        ("rds-replica", DrFlags(active=True), ACTIVE_LATCH, False, False),  # latch activate promoted it
        ("rds-replica", DrFlags(active=True), ACTIVE_LATCH, None, False),  # no instance in region B yet
        (
            "aurora-global",
            DrFlags(active=True),
            ACTIVE_LATCH,
            True,
            False,
        ),  # the program never promotes Aurora
        (
            "rds-replica",
            DrFlags(active=True, failback="replicate"),
            ACTIVE_LATCH,
            True,
            False,
        ),  # a failback phase
        ("rds-replica", DrFlags(active=False), STANDBY, True, False),  # standby: nothing to promote
    ],
    ids=["replica", "promoted", "none", "aurora", "failback-phase", "standby"],
)
def test_the_program_never_promotes_region_b_on_a_failover(
    mode: str, flags: DrFlags, latch: Latch, replicating: bool | None, refused: bool
) -> None:
    """no_loss (break34 B34-5): a failover's rds-replica `dr:active true` update would promote region B's
    replica by removing replicate_source_db, with whatever it has replayed; the program refuses it while the
    instance (read live) still replicates, and only then: `latch activate` promotes at zero lag."""
    tier = decide(flags, PRIMARY, database_mode=mode, latch=latch)
    assert promotes_on_failover(tier, latch, mode) == (
        mode == "rds-replica" and latch.active and not flags.failback
    )
    if refused:
        with pytest.raises(FailoverRefused, match=r"latch activate --outputs runbook\.json"):
            refuse_program_promotion(tier, latch, mode, replicating)
    else:
        refuse_program_promotion(tier, latch, mode, replicating)
