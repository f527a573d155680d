"""break23 (lifecycle harness): config sequences around the rds-replica IaC failback that int23's
BL22-3 guard (components/failover.py ``refuse_failback_instance_drop``) and ``refuse_step_back`` leave open.

Each test is the failing evidence of one finding, marked xfail(strict=True) until it is fixed.
"""

from __future__ import annotations

from automation.lifecycle import Lifecycle, Runbook, Up
from automation.lifecycle_scenarios import deploy, runbook_failover


def test_br23_4_a_failback_that_skips_to_switch_writer_is_refused_before_any_resource() -> None:
    """``dr:failback`` phases run "one phase at a time" (README "Failing back"); only stepping *back*
    past ``switch-writer`` is refused (``refuse_step_back``). Jumping forward is not: after a runbook
    failover (region B the writer), ``dr:active true`` + ``dr:failback switch-writer`` with no
    ``replicate`` before it declares ``dr-data-db-failback`` already promoted (``replicate_source_db``
    None: ``failback_replica_promoted``), so Pulumi *creates* it as a new, empty DB instance in region A
    (CreateDBInstance without a source creates a new database:
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html; a replica is
    only made by CreateDBInstanceReadReplica / ``replicateSourceDb``,
    https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/). Nothing gates it on the lag
    (the failback lag alarm has no action). The next ``pulumi up -s primary`` reads region A live, takes
    the newest lineage member that is not a replica as the writer, imports it and points the
    application at it: region A's application on an empty database, the next ``latch release`` away from
    serving it (docs/safety.md: no loss on planned changes; one writer). On AWS the create may instead
    fail (the program declares no ``allocatedStorage`` or master user, which a new RDS for PostgreSQL
    instance needs, CreateDBInstance "AllocatedStorage", "MasterUsername"), after the phase record (a
    sibling with no dependency on the instance) says ``switch-writer``: then ``refuse_step_back``
    refuses ``replicate`` and ``dr:active true`` as if region A held the writer, and the failback can
    neither go on nor back (every run converges). Either way the jump must be refused first."""
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy("rds-replica"),
            *runbook_failover(),
            Up(
                "dr",
                "IaC failback, phases skipped: switch-writer",
                {"dr:active": True, "dr:failback": "switch-writer"},
            ),
        ]
    )
    jump = results[-1]
    created = [p.name for p in jump.plans if p.action.value == "create"]
    failback = lc.find("dr", "aws:rds/instance:Instance", "dr-data-db-failback")
    source = None if failback is None else failback.inputs.get("replicateSourceDb")
    primary = lc.step(Up("primary", "pulumi up -s primary after switch-writer"))
    adopted = [(p.name, p.action.value) for p in primary.plans if p.action.value == "import"]
    assert jump.refused is not None, (
        f"dr:failback switch-writer with no replicate before it was applied: created {created}, "
        f"dr-data-db-failback replicateSourceDb={source!r} (a new empty database); then pulumi up -s primary "
        f"planned {adopted} (region A's writer is now that instance)"
    )


def test_br23_5_aurora_switch_writer_is_not_recorded_while_region_b_holds_the_writer() -> None:
    """README "Failing back", aurora-global ``switch-writer``: "the program cannot move an Aurora writer:
    first ``python -m automation latch switch-writer`` ...; the update then records it". Nothing checks
    that it ran: straight after a runbook failover (region B the writer of the global cluster),
    ``dr:failback switch-writer`` is applied and recorded. The record (``refuse_step_back``) then says
    "region A holds the writer", which is false (the global cluster's writer is region B's cluster:
    DescribeGlobalClusters ``GlobalClusterMembers[].IsWriter``,
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_GlobalClusterMember.html), and refuses
    ``dr:active true`` and ``replicate``: only forward (``latch switch-writer``) or standby remain. The
    config slip
    should be refused before any resource, as the rds-replica jump should (BR23-4)."""
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy("aurora-global"),
            *runbook_failover(),
            # replicate and drain applied in order (a jump is refused: BR23-4), then latch switch-writer skipped.
            Up("dr", "IaC failback phase replicate", {"dr:active": True, "dr:failback": "replicate"}),
            Up("dr", "IaC failback phase drain", {"dr:active": True, "dr:failback": "drain"}),
            Up(
                "dr",
                "IaC failback, latch switch-writer skipped",
                {"dr:active": True, "dr:failback": "switch-writer"},
            ),
            Up("dr", "back to the failover: dr:active true", {"dr:active": True}, rm=("dr:failback",)),
        ]
    )
    jump, back = results[-2], results[-1]
    assert jump.refused is not None or back.refused is None, (
        f"switch-writer recorded with {jump.observation.line()}; then dr:active true refused: {back.refused}"
    )


def test_br23_6_the_abandoned_failback_replica_never_becomes_region_a_s_writer() -> None:
    """README "Abandoning a failback", played on past int23's test (which stops at the dr stack): the
    runbook finishes a failback the IaC began (``replicate``, ``drain``); the standby update and the one
    after it release ``dr-data-db-failback`` (a replica, in region A, of region B's promoted instance,
    itself released). The next ``pulumi up -s primary`` imports that replica into the primary stack as
    an earlier writer of region A's lineage (``<primary>-failback``, index 1, newer than the runbook's
    ``<primary>``, index 0). ``live_writer_lineage`` takes the newest lineage member that is not a
    replica as the writer, so once that replica is standalone the application follows it. It becomes
    standalone without anyone touching the program: region B's released instance is deleted by hand, as
    the README tells the operator to do after verification, and RDS promotes the read replicas of a
    deleted source (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_DeleteInstance.html,
    "Considerations when deleting a DB instance": read replicas of the deleted instance are promoted;
    the cross-Region case per USER_ReadRepl.XRgn.html), or it is promoted by hand to delete it. Modelled
    here by the harness's world: the source gone, the replica standalone. The routine primary update
    then points region A's application at a copy of what region B held at the failback, without
    everything written since (the harness's own invariant: traffic-follows-writer)."""
    lc = Lifecycle()
    results = lc.run(
        [
            *deploy("rds-replica"),
            *runbook_failover(),
            Up("dr", "IaC failback phase replicate", {"dr:active": True, "dr:failback": "replicate"}),
            Up("dr", "IaC failback phase drain", {"dr:active": True, "dr:failback": "drain"}),
            Runbook("failback", "the runbook's failback finishes it instead"),
        ]
    )
    # Fixed by refusing the runbook's failback while the IaC one is under way (lambdas/failover/failback.py
    # _refuse_during_iac_failback): no second replica, so none is left in region A's lineage.
    drained, runbook = results[-2], results[-1]
    assert runbook.refused is not None and "dr:failback drain" in runbook.refused, runbook.refused
    assert runbook.observation.line() == drained.observation.line()
    world = lc.world
    lineage = sorted(d.ident for d in world.dbs.values() if d.region == "us-east-1")
    assert "pilotlight-production-us-east-1-db-failback" in lineage, (
        lineage
    )  # the IaC replica, still the dr stack's
    assert lc.find("dr", "aws:rds/instance:Instance", "dr-data-db-failback") is not None
