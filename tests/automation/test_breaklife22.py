"""breaklife22: sequences the lifecycle scenarios skip, played through the state-carrying harness.

Each test is a finding against int22 (issue 13's lifecycle work): it fails on int22 and names the
behaviour it protects. The harness (automation/lifecycle.py) runs the program for each ``pulumi up``
against the state the previous steps left, and models the runbook's live changes.
"""

from __future__ import annotations

import pytest

from automation.lifecycle import Lifecycle, RegionA, Runbook, Up
from automation.lifecycle_scenarios import deploy, iac_failback, runbook_failover


def test_bl22_1_rds_replica_iac_switch_writer_is_refused_while_the_runbooks_failback_moves_the_writer() -> (
    None
):
    """BL22-1 (high, rds-replica; a regression of int22 965f71e): ``refuse_dr_update`` now returns
    early for any update that keeps region B drained (``not tier.region_b_serves``), before it asks
    whether the runbook's failback is under way. In rds-replica mode ``dr:failback switch-writer``
    keeps region B drained *and* moves the writer: it removes ``replicate_source_db`` from region A's
    ``<primary>-failback`` replica, which the provider does by promoting it ("Removing the
    replicate_source_db attribute from an existing RDS Replicate database managed by Terraform will
    promote the database to a fully standalone database":
    https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/, ``replicateSourceDb``).
    Sequence: a runbook failover; the IaC phases ``replicate`` and ``drain``; then the runbook's
    failback is started (it renames the old primary and creates its own replica of region B under
    ``<primary>``, README "The runbook's rds-replica failback renames to replace"); then
    ``dr:failback switch-writer``. The update is planned and applied (on ``main`` it was refused: any
    dr update while ``failback_draining``): ``<primary>-failback`` is promoted while the runbook
    goes on to promote ``<primary>`` (PromoteReadReplica), two standalone writers in region A, each a
    copy of region B; the harness then reports region A serving with its application writing to a
    database that is not the writer. README, "Failing back": "`pulumi up -s dr` is refused while
    region B is drained or the writer is moving back and the update would give region B its capacity
    back mid-move" states the refusal only for capacity; an update that itself moves the writer
    mid-move is the case it forgot."""
    mode = "rds-replica"
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy(mode),
            *runbook_failover(),
            Up("dr", "IaC failback phase replicate", {"dr:active": True, "dr:failback": "replicate"}),
            Up("dr", "IaC failback phase drain", {"dr:active": True, "dr:failback": "drain"}),
            Runbook("failback-started", "the runbook's failback is under way (replica under <primary>)"),
            Up("dr", "IaC failback phase switch-writer", {"dr:active": True, "dr:failback": "switch-writer"}),
        ]
    )
    started, last = results[-2], results[-1]
    assert started.observation.latch == "active", started.observation.line()
    # Since break23 BR23-6 the two procedures cannot overlap from this side either: the runbook's
    # failback refuses to start while the dr stack's failback is under way (nothing changed), so the
    # IaC switch-writer that follows moves the writer alone, with no violation.
    assert started.refused is not None and "under way" in started.refused, started.refused
    assert last.refused is not None or not last.violations, (
        "pulumi up -s dr with dr:failback switch-writer promoted region A's failback instance while the "
        f"runbook's failback moves the writer to <primary>: {last.observation.line()}; {[str(v) for v in last.violations]}"
    )


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_bl22_2_a_fenced_runbook_failover_then_the_iac_failback_gives_region_a_back(mode: str) -> None:
    """BL22-2 (medium: the harness, the issue's "Done when" check, contradicts the product): int22
    34a9055 made ``latch release`` run the runbook's ``unfence_primary`` and ``verify_primary``
    before it releases (automation/latch_cli.py ``release``), because after a runbook failover that
    fenced region A "the primary stack's state holds the pre-fence values, so the IaC failback's
    updates never sent them" (ignore_changes / no diff against state: "the value from the state is
    used", https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/). The harness's
    ``Runbook("release")`` (automation/lifecycle.py ``Lifecycle._release``) still only clears the
    marks, releases the switch and writes standby: it neither gives region A its capacity back nor
    refuses while region A does not serve. And no scenario plays a runbook failover that fenced region
    A (``runbook_failover`` takes region A down first, so the fence is only pending and the harness
    gives region A its capacity back when it "recovers"). Played here, the README's IaC failback
    after a failover that fenced region A ends with region A at 0 instances: from route-back on,
    Route 53 (switch OK, region A unhealthy) sends every request to region B, drained: the harness
    reports ``traffic-has-capacity`` at every later step, so ``plan --lifecycle`` cannot show the
    latch_cli fix and would not catch its regression."""
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy(mode),
            Runbook("failover", "forced failover while region A answers (fenced)"),
            *iac_failback(mode),
        ]
    )
    fenced = results[2].observation
    assert fenced.capacity["A"] == 0, fenced.line()
    broken = [(r.index, r.step.label, [str(v) for v in r.violations]) for r in results if r.violations]
    assert not broken, broken
    assert results[-1].observation.capacity["A"] > 0, results[-1].observation.line()


def test_bl22_3_removing_dr_failback_before_switch_writer_is_a_plan_the_engine_refuses() -> None:
    """BL22-3 (medium, rds-replica): ``dr:failback`` removed mid-way, before ``switch-writer`` (the
    operator abandons the failback: region B still holds the writer, so ``dr:active true`` without a
    phase is the natural setting, and ``refuse_step_back`` allows it). The program then drops region
    A's ``dr-data-db-failback`` replica, still protected, from the dr stack: the engine refuses to
    delete a protected resource ("unable to delete resource ... as it is currently marked for
    protection", https://www.pulumi.com/docs/iac/concepts/options/protect/; pulumi/pulumi#7055). The
    refusal is a DeleteStep error, and deletes run after the update's creates and updates: the
    Automation API that ``python -m automation cloud failback`` drives runs ``pulumi up --yes
    --skip-preview`` (pulumi/automation/_stack.py ``up``), so region B's web tier, functions and
    event source are given back and the failback record rewritten before the update fails; the
    harness says "nothing applied". Either way every later update without ``dr:failback`` fails the
    same way, and README "Failing back" says nothing of how to abandon a failback. The program
    should refuse before any resource (naming the remedy) or release the replica."""
    mode = "rds-replica"
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy(mode),
            RegionA(False, "region A fails"),
            Runbook("failover", "automated failover"),
            RegionA(True, "region A recovers"),
            Up("dr", "IaC failback phase replicate", {"dr:active": True, "dr:failback": "replicate"}),
            Up("dr", "IaC failback phase drain", {"dr:active": True, "dr:failback": "drain"}),
            Up("dr", "failback abandoned: dr:failback removed", rm=("dr:failback",)),
        ]
    )
    last = results[-1]
    assert last.refused is not None or not last.errors, last.errors


def test_bl22_3_an_abandoned_rds_replica_failback_is_refused_before_any_resource_and_the_remedy_runs() -> (
    None
):
    """BL22-3's remedy, played through: ``dr:failback`` removed after ``drain`` is refused by the
    program (nothing planned, nothing applied) with one error naming the key, its allowed values and
    how to abandon the failback; ``dr:failback replicate`` (the README's way to hold a failback) then
    gives region B its capacity back with region A's replica kept, protected; the runbook's failback
    refuses while it is under way (break23 BR23-6: its own replica would leave the IaC one in region A's
    writer lineage), and the IaC failback resumed from there runs to the end and releases the replica
    (retained, never deleted)."""
    from components.config import FAILBACK_PHASES

    lc = Lifecycle()
    results = lc.run(
        [
            *deploy("rds-replica"),
            *runbook_failover(),
            Up("dr", "IaC failback phase replicate", {"dr:active": True, "dr:failback": "replicate"}),
            Up("dr", "IaC failback phase drain", {"dr:active": True, "dr:failback": "drain"}),
            Up("dr", "failback abandoned: dr:failback removed", rm=("dr:failback",)),
        ]
    )
    refused = results[-1]
    assert refused.refused is not None and not refused.plans and not refused.errors, refused.refused
    for word in (
        "dr:failback",
        "dr-data-db-failback",
        "protected",
        *FAILBACK_PHASES,
        "dr:failback replicate",
    ):
        assert word in refused.refused, (word, refused.refused)

    held = lc.step(
        Up("dr", "failback held: dr:failback replicate", {"dr:active": True, "dr:failback": "replicate"})
    )
    assert held.refused is None and not held.errors and not held.violations, (held.refused, held.errors)
    assert held.observation.capacity["B"] > 0, held.observation.line()
    replica = lc.find("dr", "aws:rds/instance:Instance", "dr-data-db-failback")
    assert replica is not None and replica.protect, (
        "region A's failback replica left the dr stack or lost protect"
    )

    before = held.observation.line()
    runbook = lc.step(Runbook("failback", "the runbook's failback, while the IaC one is held"))
    assert runbook.refused is not None and "under way" in runbook.refused, runbook.refused
    assert runbook.observation.line() == before, (before, runbook.observation.line())

    steps = iac_failback("rds-replica")
    finished = lc.run(steps)[-len(steps) :]
    broken = [
        (r.index, r.step.label, r.refused, r.errors, [str(v) for v in r.violations])
        for r in finished
        if r.refused or r.errors or r.violations
    ]
    assert not broken, broken
    deleted = [
        p for r in finished for p in r.plans if p.name == "dr-data-db-failback" and p.action.value == "delete"
    ]
    assert not deleted, deleted
    assert lc.find("dr", "aws:rds/instance:Instance", "dr-data-db-failback") is None
