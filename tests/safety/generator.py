"""The random schedule generator: seeded operations for ``tests.safety.driver`` (CI seeds and soak).

A schedule is a sequence of the model's operations (``OPERATIONS``, each a ``Deployment.op_*``),
drawn from a seed alone: what a seed draws never depends on what the runbook did, so a seed names
one sequence of operations whatever the code under test does with it (a regression turned back on
changes the verdict, not the schedule).

Drawn one by one and uniformly, the operations almost never line up into the shapes that break an
invariant: a failover must meet a region A that refuses its fence while it answers, a run must die
right after it moved the writer and region A come back under the canary, a failback must be
followed by the next failover, a failover re-run must come after autoscaling raised region B. So
operations are drawn in *episodes*, the stories operators and AWS tell, each a short sequence of
ordinary operations with random parameters:

``incident``
    something goes wrong in region A (it goes dark, it answers but refuses the runbook's calls, it
    throttles, or nothing visible), time passes, a failover is run (any variant, either executor,
    any crash point), time passes; an outage may end within the incident (a ``return``);
``return``
    region A comes back (the latch perhaps tampered with first) and the canary ticks;
``failback``
    the failback is run and, if it stopped, resumed;
``rerun``
    autoscaling raises region B (or not) and the operator runs a failover again or resumes;
``tamper``
    the latch is deleted, garbled or set to standby, and the canary ticks;
``overlap``
    region A perhaps dark, two runs at once: a second run (a second operator, the alarm's rule)
    started right after the first made its first call of some kind (``Deployment.op_overlap``);
``single``
    any one operation, drawn uniformly from ``OPERATIONS`` (so every operation can happen anywhere).

No episode has a precondition: each is drawn whatever the state (a "return" while region A is up,
a failback before any failover), as physically possible as its operations. ``LENGTH`` counts
operations, not episodes: a schedule of 20 operations is five or six episodes.

A run's crash point (``CrashPoint``) is drawn over both the count of its mutating AWS calls (1 to
20: a failback makes up to 20) and the kind of call it dies right after, weighted towards the
calls that split what must go together: the writer move (``PromoteReadReplica``,
``FailoverGlobalCluster``, ``SwitchoverGlobalCluster``) and the switch (``PutMetricData``). A crash
by count alone almost never falls right after the writer move (its position differs with the mode,
the variant and whether region A answers).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import EXECUTORS, Deployment

OPERATIONS = (
    "advance",
    "write",
    "inflight_write",
    "outage",
    "recover",
    "failover",
    "failover_forced",
    "failover_planned",
    "failback",
    "resume",
    "canary",
    "throttle",
    "deny_fence",
    "clear_faults",
    "tamper_latch",
    "autoscale",
    "overlap",
)
"""Every operation a schedule is made of (``Deployment.op_*``)."""

CRASH_CALLS: dict[str, frozenset[str]] = {
    "writer-move": frozenset({"PromoteReadReplica", "FailoverGlobalCluster", "SwitchoverGlobalCluster"}),
    "switch": frozenset({"PutMetricData"}),
    "capacity": frozenset({"UpdateAutoScalingGroup"}),
    "functions": frozenset(
        {"PutFunctionConcurrency", "DeleteFunctionConcurrency", "UpdateEventSourceMapping"}
    ),
    "replication": frozenset(
        {"CreateDBInstanceReadReplica", "ModifyDBInstance", "CreateDBInstance", "CopyDBClusterSnapshot"}
    ),
    "notify": frozenset({"Publish"}),
}
"""The runbook's mutating AWS calls by what they do (the journal and latch ``PutParameter`` is its
first call, reached by a crash after call 1). A run crashing "after <kind>" dies right after its
first call of that kind, whichever it is."""

CRASH_KIND_WEIGHTS = {
    "writer-move": 5,
    "switch": 2,
    "capacity": 1,
    "functions": 1,
    "replication": 1,
    "notify": 1,
}
MAX_CRASH_COUNT = 20
"""A run makes up to 20 mutating calls (an rds-replica failback): crashes by count reach them all."""


@dataclass(frozen=True)
class CrashPoint:
    """Where a run dies: right after its ``after_calls``-th mutating call, or right after its first
    call of kind ``after_kind`` (``CRASH_CALLS``); never, if the run makes fewer or no such call."""

    after_calls: int | None = None
    after_kind: str | None = None

    def __str__(self) -> str:
        return str(self.after_calls) if self.after_calls is not None else str(self.after_kind)

    @property
    def operations(self) -> frozenset[str] | None:
        """The AWS operations whose first call kills the run (None: crash by count)."""
        return None if self.after_kind is None else CRASH_CALLS[self.after_kind]


def draw_crash(rng: random.Random) -> CrashPoint | None:
    """None (the run is not killed) 35 %; by count of mutating calls 30 %; by kind of call 35 %."""
    u = rng.random()
    if u < 0.35:
        return None
    if u < 0.7:
        return CrashPoint(after_calls=rng.randint(1, MAX_CRASH_COUNT))
    kinds = list(CRASH_KIND_WEIGHTS)
    return CrashPoint(after_kind=rng.choices(kinds, weights=[CRASH_KIND_WEIGHTS[k] for k in kinds])[0])


@dataclass(frozen=True)
class Operation:
    """One operation of a schedule: its kind (``OPERATIONS``) and its drawn parameters."""

    kind: str
    arg: int | str | None = None
    """Seconds (advance, inflight_write), a count (write), a region (throttle: ``region:times``), a
    tampering (tamper_latch)."""
    executor: str | None = None
    crash: CrashPoint | None = None
    runs: tuple[Operation, Operation] | None = None
    """overlap: the first run and the second, started right after the first's first call of kind
    ``arg`` (``CRASH_CALLS``); neither crashes."""

    def __str__(self) -> str:
        if self.runs is not None:
            a, b = self.runs
            return f"overlap {a.kind} by {a.executor}, {b.kind} by {b.executor} after {self.arg}"
        if self.executor is not None:
            return f"{self.kind} by {self.executor} crash_after={self.crash}"
        if self.kind == "throttle":
            return f"throttle {str(self.arg).split(':')[0]}"
        if self.kind == "write" or self.arg is None:
            return self.kind
        return f"{self.kind} {self.arg}"

    def apply(self, d: Deployment) -> None:
        """Do it to ``d``."""
        crash_after = self.crash.after_calls if self.crash else None
        crash_on = self.crash.operations if self.crash else None
        kind, arg = self.kind, self.arg
        if self.runs is not None:
            first, second = (r._run() for r in self.runs)
            d.op_overlap(first, second, at=CRASH_CALLS[str(arg)])
        elif kind.startswith("failover"):
            runbook, params, executor_name = self._run()
            d.op_run(
                runbook,
                params=params,
                crash_after=crash_after,
                crash_on=crash_on,
                executor_name=executor_name,
            )
        elif kind == "failback":
            assert self.executor is not None
            d.op_run("failback", crash_after=crash_after, crash_on=crash_on, executor_name=self.executor)
        elif kind == "throttle":
            region, times = str(arg).split(":")
            d.op_throttle(region, int(times))
        else:
            _SIMPLE[kind](d, arg)

    def _run(self) -> tuple[str, dict[str, Any], str]:
        """A run operation as (runbook, params, executor)."""
        assert self.executor is not None, self
        if self.kind == "failback":
            return "failback", {}, self.executor
        params: dict[str, Any] = {}
        if self.kind == "failover_forced":
            params["force"] = True
        if self.kind == "failover_planned":
            params |= {"force": True, "planned": True}
        return "failover", params, self.executor


_SIMPLE: dict[str, Callable[[Deployment, int | str | None], None]] = {
    "advance": lambda d, s: d.op_advance(float(s or 0)),
    "write": lambda d, n: d.op_write(int(n or 1)),
    "inflight_write": lambda d, s: d.op_inflight_write(float(s or 0)),
    "outage": lambda d, _: d.op_outage(),
    "recover": lambda d, _: d.op_recover(),
    "resume": lambda d, _: d.op_resume(),
    "canary": lambda d, _: d.op_canary(),
    "deny_fence": lambda d, _: d.op_deny_fence(),
    "clear_faults": lambda d, _: d.op_clear_faults(),
    "tamper_latch": lambda d, how: d.op_tamper_latch(str(how)),
    "autoscale": lambda d, _: d.op_autoscale(),
    "slow_link": lambda d, s: d.op_slow_link(float(s or 0)),
}


def draw_operation(rng: random.Random, kind: str | None = None) -> Operation:
    """One operation of ``kind`` (uniform over ``OPERATIONS`` if None), its parameters drawn."""
    kind = kind or rng.choice(OPERATIONS)
    if kind == "overlap":
        runs = ["failover", "failover_forced", "failover_planned", "failback"]
        a, b = rng.choices(runs, weights=[3, 3, 1, 2], k=2)
        by_a, by_b = rng.choice([("cli", "cli"), ("cli", "sfn"), ("sfn", "cli")])
        at = rng.choices(list(CRASH_KIND_WEIGHTS), weights=list(CRASH_KIND_WEIGHTS.values()))[0]
        return Operation(kind, at, runs=(Operation(a, executor=by_a), Operation(b, executor=by_b)))
    if kind.startswith("failover") or kind == "failback":
        return Operation(kind, executor=rng.choice(EXECUTORS), crash=draw_crash(rng))
    if kind == "advance":
        return Operation(kind, rng.choice([10, 60, 300, 900]))
    if kind == "write":
        return Operation(kind, rng.randint(1, 5))
    if kind == "inflight_write":
        return Operation(kind, rng.choice([5, 30, 120, 280]))
    if kind == "throttle":
        return Operation(kind, f"{rng.choice([REGION_A, REGION_B])}:{rng.choice([1, 3, 20])}")
    if kind == "tamper_latch":
        return Operation(kind, rng.choice(["delete", "garble", "standby"]))
    return Operation(kind)


def _maybe(rng: random.Random, p: float, kind: str) -> list[Operation]:
    return [draw_operation(rng, kind)] if rng.random() < p else []


def _ticks(rng: random.Random, choices: tuple[int, ...] = (60, 300, 900)) -> Operation:
    """Time passing (the canary ticks every minute, clients write, Route 53 follows)."""
    return Operation("advance", rng.choice(choices))


def _incident(rng: random.Random) -> list[Operation]:
    trigger = rng.choices(["outage", "deny_fence", "throttle", "none"], weights=[5, 3, 1, 2])[0]
    ops = [] if trigger == "none" else [draw_operation(rng, trigger)]
    ops.append(_ticks(rng, (60, 120, 300)))
    variants = ["failover", "failover_forced", "failover_planned"]
    # An operator forces a failover of a region that answers; one that is dark needs no force.
    weights = [6, 2, 2] if trigger == "outage" else [2, 5, 3]
    ops.append(draw_operation(rng, rng.choices(variants, weights=weights)[0]))
    ops.append(_ticks(rng))
    if trigger == "outage" and rng.random() < 0.5:
        ops += _return(rng)  # the outage ends within the incident
    return ops


def _return(rng: random.Random) -> list[Operation]:
    return [*_maybe(rng, 0.3, "tamper_latch"), Operation("recover"), _ticks(rng, (300, 900))]


def _failback(rng: random.Random) -> list[Operation]:
    return [
        *_maybe(rng, 0.3, "clear_faults"),
        draw_operation(rng, "failback"),
        _ticks(rng),
        Operation("resume"),
    ]


def _rerun(rng: random.Random) -> list[Operation]:
    again = rng.choices(["failover", "failover_forced", "failover_planned", "resume"], weights=[3, 3, 1, 2])[
        0
    ]
    return [*_maybe(rng, 0.7, "autoscale"), draw_operation(rng, again)]


def _tamper(rng: random.Random) -> list[Operation]:
    return [draw_operation(rng, "tamper_latch"), _ticks(rng, (300, 900))]


def _overlap(rng: random.Random) -> list[Operation]:
    return [*_maybe(rng, 0.5, "outage"), _ticks(rng, (60, 120)), draw_operation(rng, "overlap"), _ticks(rng)]


def _single(rng: random.Random) -> list[Operation]:
    return [draw_operation(rng)]


EPISODES: dict[str, tuple[float, Callable[[random.Random], list[Operation]]]] = {
    "incident": (3.5, _incident),
    "return": (2, _return),
    "failback": (2, _failback),
    "rerun": (1.5, _rerun),
    "tamper": (1, _tamper),
    "overlap": (1, _overlap),
    "single": (2, _single),
}
"""Each episode's weight and how it is drawn (see the module docstring)."""


SLOW_LINK_SECONDS = (400, 900)
"""The soak's slow replication (``Deployment.op_slow_link``): each write reaches the other region this
long after its commit, past the 300-s drain, so a planned change that moved the writer on the drain
alone, or on a zero lag sampled too early, loses writes the checker sees (break32 B32-5b: in the CI
world replication always caught up within the drain)."""


def _slow_link(rng: random.Random) -> list[Operation]:
    """Replication slows, clients write, then a planned or forced failover (region A answers: the writer
    may move only at zero lag) or a failback."""
    run = rng.choices(["failover_planned", "failover_forced", "failback"], weights=[3, 3, 2])[0]
    return [
        Operation("slow_link", rng.choice(SLOW_LINK_SECONDS)),
        draw_operation(rng, "write"),
        _ticks(rng, (10, 60)),
        draw_operation(rng, run),
        _ticks(rng),
    ]


SOAK_EPISODES: dict[str, tuple[float, Callable[[random.Random], list[Operation]]]] = {
    **EPISODES,
    "slow_link": (1, _slow_link),
}
"""The soak's world (``operations(rng, soak=True)``): the CI world's episodes and a slow link. The CI
seeds keep ``EPISODES``, so their schedules (and the seed finder's choice) do not change."""


def operations(rng: random.Random, *, soak: bool = False) -> Iterator[Operation]:
    """An endless schedule: episode after episode, each drawn from ``rng`` alone (``soak``: from
    ``SOAK_EPISODES``)."""
    episodes = SOAK_EPISODES if soak else EPISODES
    names = list(episodes)
    weights = [episodes[n][0] for n in names]
    while True:
        name = rng.choices(names, weights=weights)[0]
        yield from episodes[name][1](rng)
