"""The random schedule generator (``tests.safety.generator``): the shapes that expose each class of
defect are likely within a CI schedule, and no operation needs a state to be drawn.

These count shapes in the operations drawn, without running them (no AWS, milliseconds): whether a
shape then breaks an invariant with an old behaviour back is for the CI seeds to show
(``test_schedules``).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

from tests.safety.generator import OPERATIONS, Operation, operations
from tests.safety.test_schedules import LENGTH

FAILOVERS = {"failover", "failover_forced", "failover_planned"}
SAMPLE = 400
"""Schedules sampled per shape (seeds 0..399)."""


def _fence_refused_then_failover(ops: list[Operation]) -> bool:
    """Region A answers but refuses the runbook's calls, and a failover is run (one_writer)."""
    dark, denied = False, False
    for op in ops:
        dark = {"outage": True, "recover": False}.get(op.kind, dark)
        denied = {"deny_fence": True, "clear_faults": False}.get(op.kind, denied)
        if op.kind in FAILOVERS and denied and not dark:
            return True
    return False


def _crash_after_writer_move_then_return(ops: list[Operation]) -> bool:
    """A failover dies right after moving the writer while region A is dark; region A comes back
    and the canary ticks for at least 5 minutes (traffic_follows_writer)."""
    dark, crashed, back = False, False, False
    for op in ops:
        if op.kind in FAILOVERS and dark and op.crash and op.crash.after_kind == "writer-move":
            crashed = True
        if op.kind == "recover" and crashed and dark:
            back = True
        dark = {"outage": True, "recover": False}.get(op.kind, dark)
        if back and op.kind == "advance" and int(op.arg or 0) >= 300:
            return True
    return False


def _failover_then_latch_tampered_under_the_canary(ops: list[Operation]) -> bool:
    """After a failover, the latch is deleted, garbled or set to standby, then the canary ticks for
    at least 5 minutes (traffic_follows_writer)."""
    failed_over, tampered = False, False
    for op in ops:
        failed_over = failed_over or op.kind in FAILOVERS
        tampered = tampered or (failed_over and op.kind == "tamper_latch")
        if tampered and op.kind == "advance" and int(op.arg or 0) >= 300:
            return True
    return False


def _failover_failback_failover(ops: list[Operation]) -> bool:
    """A failover, a failback, then the next failover (protected_again)."""
    kinds = [("failover" if op.kind in FAILOVERS else op.kind) for op in ops]
    seen = 0
    for k in kinds:
        if k == ["failover", "failback", "failover"][seen]:
            seen += 1
            if seen == 3:
                return True
    return False


def _rerun_after_autoscaling(ops: list[Operation]) -> bool:
    """A failover, autoscaling raises region B, a failover again (single_flight)."""
    seen = 0
    for op in ops:
        if (op.kind in FAILOVERS) if seen != 1 else op.kind == "autoscale":
            seen += 1
            if seen == 3:
                return True
    return False


def _two_runs_at_once(ops: list[Operation]) -> bool:
    """A second run started while the first is between its steps (single_flight)."""
    return any(op.kind == "overlap" for op in ops)


SHAPES: dict[str, tuple[Callable[[list[Operation]], bool], float]] = {
    "fence refused, then a failover": (_fence_refused_then_failover, 0.3),
    "crash after the writer move, region A back": (_crash_after_writer_move_then_return, 0.06),
    "latch tampered after a failover, canary ticks": (_failover_then_latch_tampered_under_the_canary, 0.4),
    "failover, failback, failover": (_failover_failback_failover, 0.25),
    "failover re-run after autoscaling": (_rerun_after_autoscaling, 0.25),
    "two runs at once": (_two_runs_at_once, 0.25),
}
"""Shape -> the least share of schedules of ``LENGTH`` operations that must draw it."""


def _schedule(seed: int) -> list[Operation]:
    rng = random.Random(seed)
    rng.choice(["rds-replica", "aurora-global"])  # as the driver draws the mode first
    return list(itertools.islice(operations(rng), LENGTH))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_class_of_defect_has_its_shape_drawn_often(shape: str) -> None:
    """Each shape that exposes a class of defect (issue 9's six examples and their kin) is drawn in
    at least the share ``SHAPES`` names of the schedules of ``LENGTH`` operations."""
    found, least = SHAPES[shape]
    share = sum(found(_schedule(seed)) for seed in range(SAMPLE)) / SAMPLE
    assert share >= least, (
        f"{shape}: drawn in {share:.0%} of {SAMPLE} schedules of {LENGTH} (want {least:.0%})"
    )


def test_every_operation_and_crash_point_is_drawn() -> None:
    """No operation and no crash point depends on a state: every one is drawn, anywhere."""
    ops = [op for seed in range(SAMPLE) for op in _schedule(seed)]
    assert {op.kind for op in ops} == set(OPERATIONS)
    counts = {op.crash.after_calls for op in ops if op.crash and op.crash.after_calls}
    kinds = {op.crash.after_kind for op in ops if op.crash and op.crash.after_kind}
    assert counts == set(range(1, 21)), sorted(counts)
    from tests.safety.generator import CRASH_CALLS

    assert kinds == set(CRASH_CALLS), sorted(kinds)
    assert any(op.kind in FAILOVERS and op.crash is None for op in ops), "runs that do not crash"
