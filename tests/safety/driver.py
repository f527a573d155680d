"""Seeded random schedules over the safety model: the CI seed set and ``make soak`` both use it.

``run_schedule(seed)`` builds a fresh deployment in the emulator, applies ``length`` random
operations (``tests.safety.generator``: drawn from the seed alone), settles (region A back, the last
run resumed until it ends) and returns every violation with the schedule that produced it.
``python -m tests.safety.driver --schedules N`` is the soak: it prints how often each invariant was
violated, each operation and crash point exercised, and the slowest schedule.

The seed finder chooses the CI seed set (``tests/safety/test_schedules.py``)::

    python -m tests.safety.driver --find-seeds all --first-seed 0 --schedules 40 --length 20

runs each seed plain, then once with each fixed example's test-only regressions back
(``tests/safety/test_examples.py`` ``FIXED``; name examples instead of ``all`` to look for fewer),
stopping at the first violation of the example's invariant. A set of regressions the plain run
never asked about (``regressions.on``, the canary's ``_REGRESSIONS``) cannot change the schedule, so
it is not run. It prints which seeds report which example, how often each is reported, every
violation a seed shows plain (a defect of today's runbook: such a seed stays out of CI), and a
small set of clean seeds that covers every example: the ``CI_SEEDS`` and ``PROOF_SEEDS`` to copy
into ``test_schedules.py``. Re-run it whenever the generator, the model or the runbook changes the
schedules (``--length`` must be ``test_schedules.LENGTH``).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from automation.emulator.aws import Emulator
from tests.lambdas.failover.faults import moto_respects_faults
from tests.safety.generator import operations
from tests.safety.model import INVARIANTS, Deployment, Violation

_apps = itertools.count(1)

HARNESS = "harness"
"""What a schedule reports when the checker itself raised (a thread error, a harness timeout): not
an invariant of the runbook, but the schedule was not judged to its end, so it counts as broken."""

PER_PROCESS = 10
"""Schedules a soak process runs before a fresh process takes over (``main``): few, so the pool's last
chunks end close together (a fork of the warmed parent costs little: ``warm_up``)."""

WARM_UP_SEED = 1
"""The schedule ``warm_up`` runs (in each world); its verdict is not looked at."""


@dataclass
class ScheduleResult:
    """What one schedule did and broke."""

    seed: int
    mode: str
    operations: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    exercised: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [f"seed {self.seed} ({self.mode}): {len(self.violations)} violation(s)"]
        lines += [f"  ! {v}" for v in self.violations]
        lines += [f"  {i:>2}. {op}" for i, op in enumerate(self.operations, 1)]
        return "\n".join(lines)


def run_schedule(
    seed: int, *, mode: str | None = None, length: int = 30, stop_on: str | None = None, soak: bool = False
) -> ScheduleResult:
    """One random schedule (moto must be active: call inside ``mock_aws``).

    ``stop_on``: an invariant; the schedule ends at the first operation after which it is violated
    (the rest, settle included, could only add violations: a proof that the seed reports it needs
    no more).

    The schedule starts from an empty moto: ``cloudwatch_backends.reset()`` is ``BackendDict.reset``, a
    classmethod that empties every service's backends, not only CloudWatch's (break31 B31-2), so
    nothing a caller set up in moto before this call survives it. Every schedule's virtual clock
    starts at the same instant, so the datapoints earlier schedules of the process left behind
    fall in its query windows: no query of its own would find them (every metric it reads is named
    by its own resources' dimensions), but every GetMetricData scans them, and a soak slowed down
    with every schedule run before.
    """
    cloudwatch_backends.reset()
    rng = random.Random(seed)
    mode = mode or rng.choice(["rds-replica", "aurora-global"])
    # rds-replica is RDS for PostgreSQL in both worlds: the soak's drew RDS for MySQL beside it from a
    # generator of its own (break32 B32-5a) until MySQL became absent (B32-3: no sound zero-lag proof).
    result = ScheduleResult(seed, mode)
    started = time.monotonic()
    with Emulator().installed() as emulator:
        deployment = Deployment.build(mode, app=f"s{seed}x{next(_apps)}", emulator=emulator)
        harness: list[Violation] = []
        try:
            for op in itertools.islice(operations(rng, soak=soak), length):
                op.apply(deployment)
                result.operations.append(str(op))
                deployment.judge()
                if stop_on is not None and any(v.invariant == stop_on for v in deployment.violations):
                    break
            else:
                deployment.settle()
        except Exception as exc:  # the checker's own error: this schedule fails, the soak goes on
            where = "".join(traceback.format_exception(exc, limit=-6)).rstrip()
            harness.append(Violation(HARNESS, emulator.clock.now(), f"{exc!r}\n{where}"))
        finally:
            deployment.close()
    result.violations = list(deployment.violations) + harness
    result.exercised.update(deployment.exercised)
    result.seconds = time.monotonic() - started
    return result


@contextmanager
def moto_session() -> Iterator[None]:
    """One moto session honouring the checker's faults, for as long as the block runs."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # as tests/conftest.py: no AMI is read
    undo = moto_respects_faults()
    try:
        with mock_aws():
            yield
    finally:
        undo()


def run_many(
    seeds: list[int], length: int = 30, stop_on: str | None = None, soak: bool = False
) -> list[ScheduleResult]:
    """Run ``seeds`` in one moto session (``stop_on``, ``soak``: see ``run_schedule``)."""
    with moto_session():
        return [run_schedule(s, length=length, stop_on=stop_on, soak=soak) for s in seeds]


def warm_up(length: int = 30, soak: bool = False) -> None:
    """Do in this process, once, the work every fresh process repeats on its first schedules: import
    moto's and botocore's service modules, load and build their models and endpoint rule sets, parse
    the runbooks' state machines (``sfn_executor.prepare``). ``main`` calls it before the pool
    forks, so every worker starts with them (a worker runs ``PER_PROCESS`` schedules and ends).

    It runs one throwaway schedule in each world and then forgets them: moto is reset, and the
    application numbers start from 1 again, so a worker's schedules are named, and replay,
    exactly as without it (``test_soak_speed``). Each cache it fills only saves work (``speed.py``)."""
    global _apps
    from tests.safety.model import REGION_B
    from tests.safety.sfn_executor import prepare

    prepare(REGION_B)
    with moto_session():
        for mode in ("rds-replica", "aurora-global"):
            run_schedule(WARM_UP_SEED, mode=mode, length=length, soak=soak)
    cloudwatch_backends.reset()
    _apps = itertools.count(1)


# -- the seed finder ---------------------------------------------------------------------------------


def fixed_examples() -> dict[str, tuple[tuple[str, ...], str]]:
    """Each fixed example of ``tests/safety/test_examples.py``: the test-only regressions that bring
    it back, and the invariant it breaks then."""
    from tests.safety.test_examples import EXAMPLES, FIXED

    return {name: (tuple(flags), EXAMPLES[name][1]) for name, flags in FIXED.items()}


@dataclass
class SeedVerdict:
    """One seed, judged plain and with each fixed example's regressions back."""

    seed: int
    mode: str
    plain: list[str]
    """The violations with no regression on (a CI seed must have none)."""
    reports: dict[str, bool]
    """Fixed example -> whether the seed reports its invariant with its regressions on."""
    seconds: dict[str, float]
    """``plain`` and each example -> the real seconds its run took (a flagged run stops at the
    violation it looks for; 0: not run, the plain run never asked about its regressions)."""
    own: dict[str, bool]
    """Fixed example -> reported, and not with only some of its regressions: an example whose
    regressions include another example's (``crash_between_switch_and_latch`` brings back the
    canary's ``canary-releases-on-doubt`` too) is proven only by a seed where its own part
    matters."""


class _Watched(set[str]):
    """The canary's regression set, recording each name it is asked about."""

    def __init__(self, asked: set[str]) -> None:
        super().__init__()
        self.asked = asked

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return super().__contains__(name)


@contextmanager
def _consulted() -> Iterator[set[str]]:
    """The names of the regressions the code asked about while the block ran (``regressions.on``,
    the canary's ``_REGRESSIONS``). A regression never asked about in a schedule cannot change it:
    the old and the new behaviour part only where the code asks."""
    from lambdas.failover import regressions
    from lambdas.health_check import probe

    asked: set[str] = set()
    real_on, real_set = regressions.on, probe._REGRESSIONS

    def on(regression: regressions.Regression) -> bool:
        asked.add(regression.value)
        return real_on(regression)

    regressions.on = on
    probe._REGRESSIONS = _Watched(asked)
    try:
        yield asked
    finally:
        regressions.on, probe._REGRESSIONS = real_on, real_set


def judge_seeds(seeds: list[int], names: list[str], length: int) -> list[SeedVerdict]:
    """Run each seed plain, then once per distinct set of regressions of the examples ``names``
    (and of any fixed example whose regressions are a strict subset of one of theirs, with the same
    invariant: see ``SeedVerdict.own``) that the plain run asked about. A set it never asked about
    reports what the plain run did (``_consulted``; the old failover graph,
    ``switch-before-latch``, counts as asked about by any failover run)."""
    from lambdas.failover.regressions import Regression
    from tests.safety.regressions import regressed

    examples = fixed_examples()
    wanted = {examples[n] for n in names}
    subsets = {(g, i) for g, i in examples.values() for f, j in wanted if i == j and set(g) < set(f)}
    verdicts = []
    with moto_session():
        for seed in seeds:
            with _consulted() as asked:
                plain = run_schedule(seed, length=length)
            if any(k.startswith("run:failover:") for k in plain.exercised):
                asked.add(Regression.SWITCH_BEFORE_LATCH.value)
            verdict = SeedVerdict(
                seed, plain.mode, [str(v) for v in plain.violations], {}, {"plain": plain.seconds}, {}
            )
            reported: dict[tuple[tuple[str, ...], str], bool] = {}
            for flags, invariant in sorted(wanted | subsets):
                if asked.isdisjoint(flags):
                    hit, seconds = any(v.invariant == invariant for v in plain.violations), 0.0
                else:
                    with regressed(*flags):
                        r = run_schedule(seed, length=length, stop_on=invariant)
                    hit, seconds = any(v.invariant == invariant for v in r.violations), r.seconds
                reported[flags, invariant] = hit
                for name in names:
                    if examples[name] == (flags, invariant):
                        verdict.reports[name] = hit
                        verdict.seconds[name] = seconds
            for name in names:
                flags, invariant = examples[name]
                verdict.own[name] = verdict.reports[name] and not any(
                    reported[g, i] for g, i in subsets if i == invariant and set(g) < set(flags)
                )
            verdicts.append(verdict)
    return verdicts


def cover(verdicts: list[SeedVerdict], names: list[str]) -> tuple[list[int], dict[str, int]]:
    """The cheapest set of seeds that break nothing plain and, between them, report every example of
    ``names`` (``SeedVerdict.own``), with the seed that proves each: the cost is what CI spends, each
    chosen seed's plain run and each proof's run (examples with the same regressions on the same
    seed share one run). Exhaustive over the seeds that report the example with the fewest, so
    exact. Examples no clean seed reports are left out."""
    clean = [v for v in verdicts if not v.plain]
    known = fixed_examples()
    flags = {n: known[n][0] if n in known else (n,) for n in names}
    coverable = [n for n in names if any(v.own.get(n) for v in clean)]

    def cost(chosen: list[SeedVerdict]) -> tuple[float, dict[str, int]]:
        proof: dict[str, int] = {}
        runs: dict[tuple[int, tuple[str, ...]], float] = {}
        for n in coverable:
            best = min((v for v in chosen if v.own.get(n)), key=lambda v: v.seconds[n])
            proof[n] = best.seed
            runs[best.seed, flags[n]] = best.seconds[n]
        return sum(v.seconds["plain"] for v in chosen) + sum(runs.values()), proof

    found: list[tuple[float, list[SeedVerdict], dict[str, int]]] = []

    def search(left: set[str], chosen: list[SeedVerdict]) -> None:
        plain = sum(v.seconds["plain"] for v in chosen)
        if found and plain >= found[0][0]:
            return  # already dearer than the best cover found
        if not left:
            total, proof = cost(chosen)
            if not found or total < found[0][0]:
                found[:] = [(total, list(chosen), proof)]
            return
        rarest = min(left, key=lambda n: sum(1 for v in clean if v.own.get(n)))
        for v in sorted((v for v in clean if v.own.get(rarest)), key=lambda v: v.seconds["plain"]):
            search({n for n in left if not v.own.get(n)}, [*chosen, v])

    search(set(coverable), [])
    if not found:
        return [], {}
    _, chosen, proof = found[0]
    return sorted(v.seed for v in chosen), proof


def find_seeds(names: list[str], seeds: list[int], length: int, jobs: int) -> int:
    """The seed finder's report (``--find-seeds``); exit status 1 if some example is not covered."""
    known = fixed_examples()
    if names == ["all"]:
        names = sorted(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        print(f"unknown fixed example(s) {unknown}; known: all, {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    started = time.monotonic()
    warm_up(length)
    chunks = [seeds[i::jobs] for i in range(jobs) if seeds[i::jobs]]
    with multiprocessing.get_context("fork").Pool(len(chunks)) as pool:
        parts = pool.starmap(judge_seeds, [(chunk, names, length) for chunk in chunks])
    verdicts = sorted((v for part in parts for v in part), key=lambda v: v.seed)
    print(
        f"{len(verdicts)} seeds x {length} operations, plain and with each example's regressions, "
        f"in {time.monotonic() - started:.0f} s\n"
    )
    width = max(len(n) for n in names)
    print(
        f"{'seed':>6} {'mode':<14}{'plain':>7}  reports (seconds; * also with only some of its regressions)"
    )
    for v in verdicts:
        hits = ", ".join(f"{n}{'' if v.own[n] else '*'} ({v.seconds[n]:.0f})" for n in names if v.reports[n])
        plain = f"{len(v.plain)} !" if v.plain else "clean"
        print(f"{v.seed:>6} {v.mode:<14}{plain:>7}  {v.seconds['plain']:>4.0f} s  {hits or '-'}")
    print(f"\n{'example':<{width}}  seeds reporting it (of {len(verdicts)}; clean ones; its own part)")
    for n in names:
        hit = [v for v in verdicts if v.reports[n]]
        clean = [v for v in hit if not v.plain]
        print(f"{n:<{width}}  {len(hit):>3}  {len(clean):>3}  {sum(1 for v in clean if v.own[n]):>3}")
    for v in verdicts:
        for line in v.plain:
            print(f"seed {v.seed} breaks, plain: {line}")
    chosen, proof = cover(verdicts, names)
    print(f"\nCI_SEEDS = {chosen}\nPROOF_SEEDS = {dict(sorted(proof.items()))}")
    missing = sorted(set(names) - set(proof))
    if missing:
        print(f"no clean seed reports {missing}: try more seeds (--first-seed, --schedules)")
    return 1 if missing else 0


def report(exercised: Counter[str], broken: Counter[str]) -> str:
    """The soak's tables: each invariant, each crash point, each operation and world tick.

    Per invariant: how often it was checked, how often the situation it guards arose when it was
    (``judged <invariant> (<situation>)``: two writable databases, a writer change, a completed
    run...), and how many schedules violate it. Per crash point: how often a run died just after
    that AWS call.
    """
    lines = [f"\n{'invariant':<26}{'checked':>12}{'exercised':>11}{'schedules violating':>21}"]
    for name in INVARIANTS:
        situations = sum(n for k, n in exercised.items() if k.startswith(f"judged {name} "))
        lines.append(f"  {name:<24}{exercised[f'checked {name}']:>12}{situations:>11}{broken[name]:>21}")
    lines.append(f"  {'(checker errors)':<24}{'':>12}{'':>11}{broken[HARNESS]:>21}")
    lines.append("\nsituations the invariants were judged in               times")
    lines += [f"  {k:<52}{n:>7}" for k, n in sorted(exercised.items()) if k.startswith("judged ")]
    crashes = {k: n for k, n in exercised.items() if k.startswith("crash after ")}
    lines.append(
        f"\ncrash point (a run died just after this AWS call)     times   ({exercised['crash']} crashes)"
    )
    lines += [f"  {k.removeprefix('crash after '):<52}{n:>7}" for k, n in sorted(crashes.items())]
    lines.append("\noperation or world tick                              times")
    lines += [
        f"  {k:<52}{n:>7}"
        for k, n in sorted(exercised.items())
        if not k.startswith(("checked ", "judged ", "crash after ")) and k != "crash"
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.safety.driver", description=__doc__)
    parser.add_argument("--schedules", type=int, default=1000, help="how many schedules (default 1000)")
    parser.add_argument("--length", type=int, default=30, help="operations per schedule (default 30)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=3, help="print this many violating schedules")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: one per core)"
    )
    parser.add_argument(
        "--world",
        choices=["soak", "ci"],
        default="soak",
        help="soak (default): the CI world plus client bursts replication needs minutes to apply; ci: the CI "
        "seeds' world (tests/safety/test_schedules.py)",
    )
    parser.add_argument(
        "--find-seeds",
        nargs="+",
        metavar="EXAMPLE",
        help="instead of the soak: judge seeds --first-seed.. (--schedules of them) plain and with each "
        "named fixed example's regressions back (or 'all'), and print a CI seed set that covers them",
    )
    args = parser.parse_args(argv)
    if args.schedules < 1 or args.length < 1 or args.jobs < 1:
        parser.error("--schedules, --length and --jobs must be at least 1")
    logging.disable(logging.CRITICAL)  # the runbook's and canary's JSON lines would drown the figures
    seeds = list(range(args.first_seed, args.first_seed + args.schedules))
    if args.find_seeds:
        return find_seeds(args.find_seeds, seeds, args.length, args.jobs)
    started = time.monotonic()
    warm_up(args.length, args.world == "soak")
    # Each process runs PER_PROCESS schedules, then a fresh one takes the next chunk: one moto session
    # keeps every schedule's resources, so a process that ran 500 schedules held 7 GB and grew.
    chunks = [seeds[i : i + PER_PROCESS] for i in range(0, len(seeds), PER_PROCESS)]
    with multiprocessing.get_context("fork").Pool(min(args.jobs, len(chunks)), maxtasksperchild=1) as pool:
        parts = pool.starmap(
            run_many, [(chunk, args.length, None, args.world == "soak") for chunk in chunks], chunksize=1
        )
    results = sorted((r for part in parts for r in part), key=lambda r: r.seed)
    elapsed = time.monotonic() - started
    broken: Counter[str] = Counter()
    exercised: Counter[str] = Counter()
    for r in results:
        broken.update({v.invariant for v in r.violations})
        exercised.update(r.exercised)
    print(
        f"{len(results)} schedules x {args.length} operations in {elapsed:.0f} s "
        f"({elapsed / max(1, len(results)):.2f} s each, slowest {max(r.seconds for r in results):.1f} s)"
    )
    worlds = Counter(r.mode for r in results)
    print(f"world {args.world}: " + ", ".join(f"{m} {n}" for m, n in sorted(worlds.items())))
    print(report(exercised, broken))
    shown = [r for r in results if r.violations][: args.show]
    for r in shown:
        print("\n" + r.describe())
    total = sum(broken.values())
    print(f"\n{sum(1 for r in results if r.violations)} of {len(results)} schedules violate an invariant")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
