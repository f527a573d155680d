"""break23 (lifecycle harness): config sequences around the rds-replica IaC failback that int23's
BL22-3 guard (components/failover.py ``refuse_failback_instance_drop``) and ``refuse_step_back`` leave open.

Each test is the failing evidence of one finding, marked xfail(strict=True) until it is fixed.
"""

from __future__ import annotations

import pytest

from automation.lifecycle import Lifecycle, Up
from automation.lifecycle_scenarios import deploy, runbook_failover


@pytest.mark.xfail(
    strict=True,
    reason="BR23-4 open: dr:failback switch-writer without replicate creates region A's failback instance as an empty standalone database, and pulumi up -s primary adopts it as region A's writer",
)
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
            Up("dr", "IaC failback, phases skipped: switch-writer", {"dr:active": True, "dr:failback": "switch-writer"}),
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
