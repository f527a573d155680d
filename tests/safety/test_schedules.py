"""Random schedules over the safety model: the CI seed set (``make soak`` runs 1,000).

The schedules are drawn by ``tests.safety.generator`` from the seed alone, so a failing seed names a
schedule anyone can replay (``python -m tests.safety.driver --first-seed N --schedules 1``).

The CI seed set is chosen by the seed finder (``python -m tests.safety.driver --find-seeds all``):
seeds that break no invariant with today's runbook and that, between them, report every fixed
example of ``tests/safety/test_examples.py`` when that example's test-only regressions are turned
back on, each example on its own (issue 9's Done-when; review finding 9B-1). When the generator or
the runbook changes, run the finder again and copy the ``CI_SEEDS`` and ``PROOF_SEEDS`` it prints.
"""

from __future__ import annotations

import re

import pytest

from tests.safety.driver import ScheduleResult, SeedVerdict, cover, run_schedule
from tests.safety.regressions import regressed
from tests.safety.test_examples import EXAMPLES, FIXED

CI_SEEDS = [10, 20, 34, 39, 43, 57, 88, 97]
LENGTH = 20

PROOF_SEEDS: dict[str, int] = {
    "aurora_unplanned_snapshot": 34,
    "crash_between_switch_and_latch": 10,
    "deleted_latch_after_failover": 20,
    "encrypted_break_glass_failback": 97,
    "failback_lag_never_zero": 97,
    "failover_rerun_after_autoscaling": 39,
    "failover_rerun_after_autoscaling_sfn": 39,
    "fence_denied_while_alive": 43,
    "second_failover_after_rds_failback": 57,
    "two_failovers_at_once": 88,
}
"""Fixed example -> the CI seed that reports its invariant with its regressions back: the finder's
cheapest cover of seeds 0-99 (``--find-seeds all --first-seed 0 --schedules 100``), each proof on a
seed where the example's own part matters (seed 39 reports ``crash_between_switch_and_latch``'s
invariant with the canary's regression alone). ``crash_between_switch_and_latch`` was proven by seed
43 until the promotion mark (``steps.PROMOTION_MARK``, a journal write before PromoteReadReplica)
moved its failover's ``crash_after=2`` from after PromoteReadReplica to before it; of the other CI
seeds none reports it with its own part, so seed 10 (clean, and reporting it only with the old graph
too: ``judge_seeds``, seeds 0-12 and 50-63 searched) was added rather than the whole set re-chosen.
``deleted_latch_after_failover`` was proven by seed 39 until the switch's journal record
(``traffic.SWITCH_THROWN_MARK``, a journal write before the throw's PutMetricData, break32 B32-4) moved
its first failover's ``crash_after=9`` from after PromoteReadReplica to before it; no other CI seed
reports it, so seed 53 (clean, its own part; the cheapest of 16, 20, 22, 48, 53, 84, 91, 96, 98 in a
``judge_seeds`` search of seeds 0-99) was added the same way. Seed 53 stopped reporting it when the
fence's confirmation of a dark region A (``darkness.FENCE_DARK_MARK``, journal writes while the fence looks
again, break33 B33-3) moved its failover's ``crash_after=11``; seed 20 (clean, its own part; the cheapest of
16, 20, 22, 48, 84, 91, 96, 98 in a ``judge_seeds`` run of them) replaced it."""

DEFECT_SEEDS: dict[int, tuple[str, str]] = {}
"""Seeds 0-99 that break an invariant with today's runbook (17 of 100: the seed finder's run of this
change), one per defect (the cheapest): kept out of ``CI_SEEDS``, each a strict expected failure
naming the defect, for issue 10. Fixed since, and kept as passing regression tests in
``FIXED_DEFECT_SEEDS``: seeds 2, 6, 20, 22, 26 and 48 (none left today)."""


FIXED_DEFECT_SEEDS: dict[int, tuple[str, str]] = {
    20: (
        "one_writer",
        "rds-replica: a failover completed while region A was dark, the latch was then set to standby "
        "and region A came back with its old writer: the canary released the switch and region A served "
        "its stale writer beside region B's (then traffic_follows_writer, no_loss). Also seeds 53, 91. "
        "Fixed: the canary reads the run journal; a standby latch releases nothing while it says a "
        "failover holds region A, and a pending fence is asked for whatever the latch says "
        "(tests/safety/test_latch_after_failover.py)",
    ),
    48: (
        "no_loss",
        "aurora-global: an unplanned failover completed while region A was dark, the latch was then set "
        "to standby; region A came back and was rebuilt, and nothing copied the "
        "rds:unplanned-global-failover-* snapshot holding the 2 discarded writes (the pending fence "
        "makes the copy, and the canary asked for it under an active or unreadable latch only). Fixed "
        "as seed 20",
    ),
    6: (
        "no_loss",
        "rds-replica: a forced failover during an outage died right after PromoteReadReplica, before "
        "throw_switch; region A came back and Route 53 answered it (the switch was never thrown) before "
        "the canary's pending fence reached it: its old writer acknowledged writes the new writer never "
        "got. Fixed: the switch leads the writer move, and an unplanned promotion waits for the thrown "
        "switch to take effect (tests/safety/test_crash_points.py)",
    ),
    22: (
        "converges",
        "rds-replica: a failback run when no failover happened stopped with 'fail over first' and never "
        "ended. Fixed: a failback whose end state already holds ends done, changing nothing "
        "(tests/safety/test_failback_ends.py). Also seeds 46, 70",
    ),
    2: (
        "traffic_follows_writer",
        "rds-replica: a failback ended done leaving region B standalone; region A then went dark and "
        "the next failover refused, so no region served a writer. Judged since as protected_again (the "
        "refusal with its reason) until the operator's pulumi up re-seeds region B (op_reseed). Also "
        "seeds 49, 74",
    ),
    26: (
        "traffic_follows_writer",
        "rds-replica: a forced failover dies after the fence's first call (today region A keeps "
        "serving its writer and Route 53 answers it: the fence stops functions before the web tier), "
        "leaving the fence's journal stamp (primaryStoppedAt) behind; the latch is deleted, and the "
        "failback resumed at the end takes the stamp for a failover that moved the writer, restores "
        "the latch to active and the canary throws the switch: Route 53 answers region B while region "
        "A serves the writer. Seeds 36, 96, 98 (aurora-global): a failback that dies right after its "
        "writer move or its switch release leaves Route 53 on region B while region A serves the "
        "writer (seeds 5 and 77, failovers that died before the writer moved, pass). Fixed by the fence's order (functions before the web tier), the failover's rollback and the "
        "failback that finds nothing to move back (tests/safety/test_crash_points.py, "
        "test_failback_ends.py)",
    ),
}
"""Seeds that broke an invariant before a fix of issue 10: each must hold its invariant from now on."""


SOAK_LENGTH = 30
"""The soak's schedule length (``make soak``): the seeds below broke an invariant in the soak of main
835af03 (135 of 1,000 schedules) and are replayed at that length."""

SOAK_FIXED_SEEDS: dict[int, tuple[str, str]] = {
    2: (
        "traffic_follows_writer",
        "rds-replica: a failback released the switch in a minute that also held the canary's 1, then region "
        "A went dark; the canary published nothing while it was dark, the switch alarm went "
        "INSUFFICIENT_DATA and Route 53's LastKnownStatus kept the switch thrown: region A came back with "
        "the writer and Route 53 kept answering drained region B. Fixed: under standby with a clear journal "
        "the canary keeps the switch released while region A answers nothing",
    ),
    39: (
        "traffic_follows_writer",
        "rds-replica: as seed 2, the latch deleted right after the failback instead of an outage. Fixed: "
        "under a deleted or garbled latch the canary releases on the journal's and region A's word",
    ),
    10: (
        "converges",
        "rds-replica: a forced failover over a region A dark since an earlier fence (primaryStoppedAt from "
        "the canary's fence, fencePending from its own) waited for zero lag from a dark source until it "
        "gave up, and never promoted during the outage. Fixed: the later of the two marks decides",
    ),
    9: (
        "traffic_follows_writer",
        "aurora-global, a checker false positive: a failback with nothing to do completed at the instant "
        "region A went dark, and the after-run judgment blamed it for the outage. Fixed in the model",
    ),
    98: (
        "traffic_follows_writer",
        "aurora-global: a CLI failback died after switch_writer moved the writer back, before clear_latch; "
        "the canary republished the active latch's 1 and Route 53 answered drained region B. Fixed: the "
        "failback writes writerMoveRequestedAt before the move, and under an active latch with that mark "
        "the canary follows region A's writer (also seeds 112, 150, 448, 615, 734)",
    ),
    215: (
        "converges",
        "rds-replica, a checker false positive: a failover died before the writer moved and left region A "
        "fenced with the writer (its own fence, or the canary completing its pending fence); region A "
        "then refused the runbook (AccessDenied on Auto Scaling, Lambda, RDS) and the next failover "
        "stopped at fence_primary, unable to promote without the fence or to give region A back, and "
        "the after-run judgment blamed it for the outage it found. Fixed in the model: judged at its "
        "resume with the refusal lifted (tests/safety/test_found_outage.py; also seeds 153, 204, 386, "
        "408, 432, 496, 618, 622, 640, 689)",
    ),
}
"""Soak seeds whose defect class is fixed (stops 20, 21): each must hold its invariant at the soak's length."""


@pytest.fixture(scope="module")
def plain_runs(one_moto: None) -> dict[int, ScheduleResult]:
    """Each CI seed's schedule run once with today's runbook (no regression on)."""
    return {seed: run_schedule(seed, length=LENGTH) for seed in CI_SEEDS}


def test_a_seed_replays_the_same_schedule_and_verdict(plain_runs: dict[int, ScheduleResult]) -> None:
    """Determinism: the virtual clock and seeded choices make a schedule and its verdict repeatable
    (the cheapest CI seed run again, compared with its CI run)."""
    seed = min(plain_runs, key=lambda s: plain_runs[s].seconds)
    first, second = plain_runs[seed], run_schedule(seed, length=LENGTH)
    assert first.operations == second.operations, f"seed {seed} drew two schedules"

    def verdict(r: ScheduleResult) -> list[tuple[str, str]]:
        # The two runs share one moto, so their names differ by a counter: compare without them.
        return [(v.invariant, re.sub(rf"s{seed}x\d+", "<app>", v.detail)) for v in r.violations]

    assert verdict(first) == verdict(second), f"seed {seed}: two verdicts"
    assert sum(first.exercised.values()) > LENGTH, "the schedule did things (operations and world ticks)"
    assert any(k.startswith("run:") for k in first.exercised), "the schedule ran the runbook"


def test_ci_seeds_break_no_invariant(plain_runs: dict[int, ScheduleResult]) -> None:
    """Every invariant holds over the CI seed set. (It was a strict expected failure; on m3 the seeds
    break nothing, so it passed strictly and failed the build: review finding 9B-5.)"""
    broken = [r.describe() for r in plain_runs.values() if r.violations]
    assert not broken, "\n\n".join(broken)


@pytest.mark.parametrize(
    "seed",
    [
        pytest.param(seed, marks=pytest.mark.xfail(strict=True, reason=f"seed {seed}: {defect}"))
        for seed, (_, defect) in DEFECT_SEEDS.items()
    ],
)
def test_seeds_left_out_of_ci_break_no_invariant(one_moto: None, seed: int) -> None:
    """The invariant this seed breaks today holds (each a defect of today's runbook or checker the
    new schedule shapes found: issue 10). Stops at the first violation of that invariant."""
    invariant, _ = DEFECT_SEEDS[seed]
    result = run_schedule(seed, length=LENGTH, stop_on=invariant)
    assert invariant not in {v.invariant for v in result.violations}, result.describe()


@pytest.mark.parametrize("seed", sorted(FIXED_DEFECT_SEEDS))
def test_seeds_whose_defect_is_fixed_break_no_invariant(one_moto: None, seed: int) -> None:
    """The invariant this seed broke before its defect class was fixed holds (it was a strict expected
    failure of ``test_seeds_left_out_of_ci_break_no_invariant``). Stops at its first violation."""
    invariant, _ = FIXED_DEFECT_SEEDS[seed]
    result = run_schedule(seed, length=LENGTH, stop_on=invariant)
    assert invariant not in {v.invariant for v in result.violations}, result.describe()


@pytest.mark.parametrize("seed", sorted(SOAK_FIXED_SEEDS))
def test_soak_seeds_whose_defect_is_fixed_break_no_invariant(one_moto: None, seed: int) -> None:
    """The invariant this soak seed broke before its defect class was fixed holds at the soak's length
    (``SOAK_FIXED_SEEDS``). Stops at its first violation."""
    invariant, _ = SOAK_FIXED_SEEDS[seed]
    result = run_schedule(seed, length=SOAK_LENGTH, stop_on=invariant)
    assert invariant not in {v.invariant for v in result.violations}, result.describe()


def test_every_fixed_example_has_a_proof_seed_in_the_ci_seed_set() -> None:
    """9B-1's bookkeeping: each fixed example is proven by a seed that ``test_ci_seeds_break_no_invariant``
    runs (a proof seed outside the CI set would prove nothing about it)."""
    assert set(PROOF_SEEDS) == set(FIXED), (
        f"fixed examples without a proof seed: {sorted(set(FIXED) - set(PROOF_SEEDS))}; proof seeds "
        f"for examples not fixed: {sorted(set(PROOF_SEEDS) - set(FIXED))} (re-run the seed finder)"
    )
    outside = {n: s for n, s in PROOF_SEEDS.items() if s not in CI_SEEDS}
    assert not outside, f"proof seeds not in CI_SEEDS {CI_SEEDS}: {outside}"


_PROVEN: dict[tuple[int, tuple[str, ...], str], ScheduleResult] = {}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_ci_seeds_report_each_fixed_example_with_its_regression_back(one_moto: None, name: str) -> None:
    """Issue 9's Done-when (review finding 9B-1): with the example's old behaviour turned back on (its
    test-only regressions, and only them), a CI seed reports the invariant the example breaks. The
    schedule stops at the first violation of that invariant (what follows could only add more).
    Examples sharing regressions share the run."""
    flags, invariant = tuple(FIXED[name]), EXAMPLES[name][1]
    seed = PROOF_SEEDS.get(name)
    assert seed in CI_SEEDS, f"{name}: no proof seed in CI_SEEDS {CI_SEEDS} (PROOF_SEEDS: {PROOF_SEEDS})"
    key = (seed, flags, invariant)
    if key not in _PROVEN:
        with regressed(*flags):
            _PROVEN[key] = run_schedule(seed, length=LENGTH, stop_on=invariant)
    result = _PROVEN[key]
    assert invariant in {v.invariant for v in result.violations}, (
        f"{name}: CI seed {seed} with {list(flags)} on reports no {invariant} violation:\n{result.describe()}"
    )


def test_the_seed_finder_covers_each_example_with_clean_seeds_where_its_own_part_reports_it() -> None:
    """The finder's choice (``driver.cover``): only seeds that break nothing plain; an example counts
    as covered by a seed only where its own part reports it (``SeedVerdict.own``), not where only a
    subset of its regressions does; the cover CI runs fastest (plain runs and proofs)."""

    def verdict(seed: int, plain: list[str], reports: set[str], own: set[str], seconds: float) -> SeedVerdict:
        return SeedVerdict(
            seed,
            "rds-replica",
            plain,
            {n: n in reports for n in "ab"},
            {"plain": seconds, "a": 1.0, "b": 1.0},
            {n: n in own for n in "ab"},
        )

    verdicts = [
        verdict(1, ["one_writer at 12:00:00: ..."], {"a", "b"}, {"a", "b"}, 1.0),  # breaks plain
        verdict(2, [], {"a", "b"}, {"b"}, 3.0),  # reports a only with a subset of its regressions
        verdict(3, [], {"a"}, {"a"}, 5.0),
        verdict(4, [], {"b"}, {"b"}, 9.0),
    ]
    assert cover(verdicts, ["a", "b"]) == ([2, 3], {"a": 3, "b": 2})
    # Two fast seeds cost CI less than one slow seed that reports both.
    verdicts.append(verdict(5, [], {"a", "b"}, {"a", "b"}, 9.5))
    assert cover(verdicts, ["a", "b"]) == ([2, 3], {"a": 3, "b": 2})
    verdicts.append(verdict(6, [], {"a", "b"}, {"a", "b"}, 7.0))
    assert cover(verdicts, ["a", "b"]) == ([6], {"a": 6, "b": 6})
