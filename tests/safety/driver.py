"""Seeded random schedules over the safety model: the CI seed set and ``make soak`` both use it.

``run_schedule(seed)`` builds a fresh deployment in the emulator, applies ``length`` random
operations, settles (region A back, the last run resumed until it ends) and returns every
violation with the schedule that produced it. ``python -m tests.safety.driver --schedules N``
is the soak: it prints how often each invariant was violated, each operation and crash point
exercised, and the slowest schedule.
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
from collections import Counter
from dataclasses import dataclass, field

from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from automation.emulator.aws import Emulator
from tests.lambdas.failover.faults import moto_respects_faults
from tests.safety.model import INVARIANTS, Deployment, Violation, random_operation

_apps = itertools.count(1)


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


def run_schedule(seed: int, *, mode: str | None = None, length: int = 30) -> ScheduleResult:
    """One random schedule (moto must be active: call inside ``mock_aws``).

    The schedule starts from a CloudWatch with no datapoints. Every schedule's virtual clock
    starts at the same instant, so the datapoints earlier schedules of the process left behind
    fall in its query windows: no query of its own would find them (every metric it reads is named
    by its own resources' dimensions), but every GetMetricData scans them, and a soak slowed down
    with every schedule run before.
    """
    cloudwatch_backends.reset()
    rng = random.Random(seed)
    mode = mode or rng.choice(["rds-replica", "aurora-global"])
    result = ScheduleResult(seed, mode)
    started = time.monotonic()
    with Emulator().installed() as emulator:
        deployment = Deployment.build(mode, app=f"s{seed}x{next(_apps)}", emulator=emulator)
        try:
            for _ in range(length):
                result.operations.append(random_operation(deployment, rng))
                deployment.judge()
            deployment.settle()
        finally:
            deployment.close()
    result.violations = list(deployment.violations)
    result.exercised.update(deployment.exercised)
    result.seconds = time.monotonic() - started
    return result


def run_many(seeds: list[int], length: int = 30) -> list[ScheduleResult]:
    """Run ``seeds`` in one moto session."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    undo = moto_respects_faults()
    try:
        with mock_aws():
            return [run_schedule(s, length=length) for s in seeds]
    finally:
        undo()


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
    args = parser.parse_args(argv)
    if args.schedules < 1 or args.length < 1 or args.jobs < 1:
        parser.error("--schedules, --length and --jobs must be at least 1")
    logging.disable(logging.CRITICAL)  # the runbook's and canary's JSON lines would drown the figures
    seeds = list(range(args.first_seed, args.first_seed + args.schedules))
    started = time.monotonic()
    chunks = [seeds[i :: args.jobs] for i in range(args.jobs) if seeds[i :: args.jobs]]
    with multiprocessing.get_context("fork").Pool(len(chunks)) as pool:
        parts = pool.starmap(run_many, [(chunk, args.length) for chunk in chunks])
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
    print(report(exercised, broken))
    shown = [r for r in results if r.violations][: args.show]
    for r in shown:
        print("\n" + r.describe())
    total = sum(broken.values())
    print(f"\n{sum(1 for r in results if r.violations)} of {len(results)} schedules violate an invariant")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
