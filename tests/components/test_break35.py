"""break35: the lifecycle harness's model of ``latch activate`` (branch f5, break34 B34-5)."""

from __future__ import annotations

import pytest

from automation.lifecycle import Lifecycle, RegionA, Runbook
from automation.lifecycle_scenarios import deploy

RDS = "rds-replica"


def _activate_over_dark_region_a(mode: str) -> Lifecycle:
    lc = Lifecycle()
    lc.run(
        [
            *deploy(mode),
            RegionA(False, "region A fails"),
            Runbook("activate", "latch activate: python -m automation latch activate (no --unplanned)"),
        ]
    )
    return lc


@pytest.mark.parametrize("mode", [RDS, "aurora-global"])
def test_b35_3_lifecycle_activate_over_a_dark_region_a_is_refused_without_unplanned(mode: str) -> None:
    """The harness refuses what the real command refuses (no_loss: a scenario built on a path no operator can
    take proves nothing): `latch activate` without --unplanned over a dark region A raises PlannedNeedsRegionA
    before any change (automation/latch_cli.py, tests/safety/test_break34.py
    test_b34_5_a_declared_failover_over_a_dark_region_a_needs_unplanned); with it, the writer moves."""
    lc = _activate_over_dark_region_a(mode)
    result = lc.results[-1]
    assert result.refused and "--unplanned" in result.refused, (
        result.refused,
        result.applied,
        lc.world.writer,
        lc.world.journal,
    )


@pytest.mark.parametrize("mode", [RDS, "aurora-global"])
def test_b35_3_lifecycle_activate_unplanned_over_a_dark_region_a_moves_the_writer(mode: str) -> None:
    lc = Lifecycle()
    lc.run(
        [
            *deploy(mode),
            RegionA(False, "region A fails"),
            Runbook("activate", "latch activate --unplanned", planned=False),
        ]
    )
    result = lc.results[-1]
    assert result.refused is None and result.applied, result.refused
    assert lc.world.journal.get("fencePending"), lc.world.journal
