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


@pytest.mark.xfail(
    strict=True,
    reason="the harness accepts what the real command refuses: `latch activate` without --unplanned over a dark "
    "region A raises PlannedNeedsRegionA before any change (automation/latch_cli.py _activate, "
    "_refuse_planned_without_region_a, tests/safety/test_break34.py test_b34_5_a_declared_failover_over_a_dark_"
    "region_a_needs_unplanned); automation/lifecycle.py's activate has no planned/unplanned and promotes "
    "(fencePending, _promote_dr), so a scenario built on it proves a path no operator can take (no_loss)",
)
@pytest.mark.parametrize("mode", [RDS, "aurora-global"])
def test_b35_3_lifecycle_activate_over_a_dark_region_a_is_refused_without_unplanned(mode: str) -> None:
    lc = _activate_over_dark_region_a(mode)
    result = lc.results[-1]
    assert result.refused and "--unplanned" in result.refused, (
        result.refused, result.applied, lc.world.writer, lc.world.journal
    )
