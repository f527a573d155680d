"""breaklife21: the lifecycle harness's own invariants over a sequence the scenarios do not play.

Issue 13's finding: "The replica-lag alarm (treat_missing_data=breaching) sits in ALARM forever once
the DR database is promoted". CloudWatch: with ``TreatMissingData`` ``breaching`` missing data points
are "treated as breaching the threshold"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data),
and a promoted RDS instance reports no ``ReplicaLag``.
"""

from __future__ import annotations

import pytest

from automation.lifecycle import Lifecycle, Runbook, Up
from automation.lifecycle_scenarios import declared_failover, deploy, runbook_failover


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_bl21_6_after_a_runbook_failover_the_replica_lag_alarm_is_meaningful_before_any_dr_update(
    mode: str,
) -> None:
    """BL21-6 (medium): the harness judges the lag alarms only after a ``pulumi up`` step ("a runbook
    run or an outage leaves them as the last update set them"), and every scenario runs
    ``pulumi up -s dr`` right after the runbook's failover, so the fix of the issue's alarm finding is
    only shown for an operator who updates the dr stack first. After an automated (runbook) failover
    nobody has to: a routine ``pulumi up -s primary`` (no config change) is the first update, and the
    harness then reports region B's replica-lag alarm in ALARM forever on the promoted writer. The
    runbook's failover itself leaves it so until someone runs ``pulumi up -s dr``."""
    lc = Lifecycle()
    results = lc.run(
        [*deploy(mode), *runbook_failover(), Up("primary", "routine update of the primary stack")]
    )
    last = results[-1]
    assert last.applied and last.refused is None, last
    assert not last.violations, [str(v) for v in last.violations]


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_bl21_7_a_primary_update_during_a_failover_does_not_unfence_region_a(mode: str) -> None:
    """BL21-7 (medium): a runbook failover while region A answers fences it (web tier 0/0/0,
    functions at zero concurrency, event sources off: lambdas/failover/fencing.py ``fence_primary``) and
    keeps region A's old writer out of service. The program refuses ``pulumi up -s primary`` only
    while a *failback* is under way (``failback_in_progress``); during the failover itself a routine
    primary update that touches the web tier's size (here ``compute.minSize`` 2 -> 3) is applied:
    the Auto Scaling group's ``MinSize`` is sent (UpdateAutoScalingGroup, "If you specify a new value
    for MinSize without specifying a value for DesiredCapacity, and the new MinSize is larger than
    the current size of the group, this sets the group's DesiredCapacity to the new MinSize value":
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html), and
    region A's web tier launches against region A's database while region B holds the writer. The
    harness plans it (capacity A 3, writer B, latch active) and reports no violation: no invariant
    says a region without the writer stays fenced."""
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy(mode),
            Runbook("failover", "forced failover while region A answers (fenced)"),
            Up(
                "primary",
                "primary update: web tier min 3",
                {"pilotlight:compute": {"minSize": 3, "desiredCapacity": 3}},
            ),
        ]
    )
    fenced, last = results[-2].observation, results[-1]
    assert fenced.capacity["A"] == 0 and fenced.writer_region == "B", fenced.line()
    assert last.refused is not None or last.observation.capacity["A"] == 0, (
        f"region A un-fenced by pulumi up -s primary during the failover: {last.observation.line()}"
    )


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_bl21_8_a_failback_phase_after_switch_writer_cannot_go_back_to_one_that_undrains_region_b(
    mode: str,
) -> None:
    """BL21-8 (high for rds-replica): after ``dr:failback switch-writer`` region A holds the writer and
    region B is drained, under the still-active latch (traffic B until ``latch release``). Setting an
    earlier phase again (``dr:failback replicate``: a typo, a re-run of a script, a revert of the
    config commit) is not refused by ``failover.decide``, which has no memory of the phase before:
    the plan gives region B its web tier, unthrottles its functions and enables its event source
    while region A's failback instance is the writer. In rds-replica mode region B's database is
    then a standalone writer too: writes acknowledged there never reach region A.

    The harness marks the step "not applied" because the provider refuses one of its resources
    (``replicateSourceDb`` put back on the promoted failback instance), but the engine does not apply
    an update all-or-nothing: the Auto Scaling group, the function and the event source mapping do
    not depend on that instance, so they are scheduled beside it, and when one operation fails the
    engine lets "already in-flight operations complete, but not starting any new operations"
    (Pulumi, "Continue on Error in the Pulumi CLI", https://pulumi.com/blog/author/thomas-gummerer/;
    https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/). In aurora-global mode nothing fails and
    the step applies whole. The program must refuse the
    step back before any resource, as it refuses the other phase errors."""
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy(mode),
            *declared_failover(mode),
            Up("dr", "failback: replicate", {"dr:failback": "replicate"}),
            Up("dr", "failback: drain", {"dr:failback": "drain"}),
            Runbook("switch-writer", "latch switch-writer"),
            Up("dr", "failback: switch-writer", {"dr:failback": "switch-writer"}),
            Up("dr", "back a phase: replicate", {"dr:failback": "replicate"}),
        ]
    )
    moved, back = results[-2], results[-1]
    assert moved.observation.writer_region == "A" and moved.observation.capacity["B"] == 0, (
        moved.observation.line()
    )
    undrains = [
        f"{p.type} {p.name} {p.changed}"
        for p in back.plans
        if p.type in ("aws:autoscaling/group:Group", "aws:lambda/eventSourceMapping:EventSourceMapping")
        and p.changed
    ]
    assert back.refused is not None or not undrains, (
        f"going back to replicate after switch-writer is not refused and undrains region B while region A "
        f"holds the writer: {undrains}"
    )


def test_bl21_2_the_runbook_writer_s_adoption_matches_the_backup_window_aws_picked() -> None:
    """BL21-2: the runbook's PromoteReadReplica names no ``PreferredBackupWindow``, so AWS picks one at
    random within the region's 8-hour block
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html); the
    primary stack's adoption of that writer must not declare the program's own window, or the import
    fails (https://www.pulumi.com/docs/iac/concepts/options/import/)."""
    from automation.lifecycle import RANDOM_BACKUP_WINDOW
    from automation.lifecycle_scenarios import runbook_failback

    lc = Lifecycle()
    results = lc.run([*deploy("rds-replica"), *runbook_failover(), *runbook_failback()])
    assert len(results) == len(deploy("rds-replica")) + len(runbook_failover()) + len(runbook_failback()), (
        f"the procedure stopped: {results[-1].errors}"
    )
    imports = [
        p for r in results for p in r.plans if p.action == "import" and p.type == "aws:rds/instance:Instance"
    ]
    assert imports, "the primary stack adopts the runbook's writer"
    assert RANDOM_BACKUP_WINDOW in {str(a.get("backupWindow")) for a in lc.world.rds_attrs.values()}
    bad = [
        str(v) for r in results for v in r.violations if v.invariant in ("import-matches", "provider-accepts")
    ]
    assert not bad, bad
