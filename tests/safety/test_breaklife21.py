"""breaklife21: adversarial findings against dr21's lifecycle refusals (issue 13).

The program refuses ``pulumi up -s primary`` and ``pulumi up -s dr`` while the runbook's failback is
in progress (``components.failover.failback_in_progress``: latch active and the run journal's
``failback`` entry, or ``drStoppedAt`` later than the latch's ``since``). These tests drive the
runbook in the emulator and then ask the program (under Pulumi's mocks, ``automation.synth``) what it
would do with the latch and journal the runbook left.

AWS behaviour relied on:

* RDS PromoteReadReplica can be refused (an IAM AccessDenied is an ordinary API error:
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html); the failback's
  rollback ``restore_dr`` then gives region B back its capacity while it still holds the writer
  (tests/safety/test_failback_ends.py relies on the same fault).
* SSM GetParametersByPath returns the latch and its journal
  (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from automation import synth
from components.failover import FailbackInProgress, Latch, failback_in_progress
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment
from tests.safety.scenarios import failed_over as _failed_over
from tests.safety.scenarios import journal as _journal

Deploy = Callable[..., Deployment]


def _latch_value(d: Deployment) -> str:
    ssm = d.world.client("ssm", REGION_B)
    return ssm.get_parameter(Name=d.ctx.latch_parameter_name)["Parameter"]["Value"]


def test_bl21_1_a_failback_that_stopped_and_gave_region_b_back_does_not_refuse_the_dr_stack(
    deploy: Deploy,
) -> None:
    """BL21-1 (converges / the operator is not stranded).

    An rds-replica runbook failback renames region A's old primary and creates the failback replica
    (the journal's ``failback`` entry), drains region B, and its promotion is refused (a missing
    permission: the runbook role lives in the dr stack). The run stops; ``restore_dr`` gives region B
    back its capacity: region B holds the writer and serves it, nothing is moving, ``drStoppedAt`` is
    cleared. But the ``failback`` entry stays in the journal until ``clear_latch``, and
    ``failback_in_progress`` reads it, under the failover's active latch, as a failback "replacing
    region A's primary": ``pulumi up -s dr`` (and ``-s primary``) are refused indefinitely. The
    refusal's reason (region B drained mid-move) is false here, and its remedy (resume the failback)
    cannot succeed while the permission is missing, whose fix is ``pulumi up -s dr``: only a hand
    edit of the SSM journal gets out."""
    d = deploy("rds-replica")
    d.add_fault(Fault(service="rds", operation="PromoteReadReplica", region=REGION_A))
    _failed_over(d)
    run = d.op_run("failback", params={"waiterMaxAttempts": 240})
    assert run.outcome == "stopped" and "switch_writer" in run.detail, run
    assert d.writer() == d.keys()[1], "the writer never left region B"
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.emulator.serving(REGION_B) and d.where() == REGION_B, "region B serves the writer again"
    journal = _journal(d)
    assert not journal.get("drStoppedAt"), journal
    assert not journal.get("writerMoveRequestedAt"), journal
    latch = _latch_value(d)
    assert Latch.parse(latch).active
    # What `pulumi up -s dr` (a routine update, dr:active true, e.g. to fix the runbook role) does now.
    doing = failback_in_progress(Latch.parse(latch), journal)
    try:
        synth.synthesize("dr", {"dr:active": True}, latch=latch, journal=json.dumps(journal))
    except FailbackInProgress as refused:
        pytest.fail(
            f"the dr stack is refused although the failback stopped and region B serves its writer "
            f"(journal {sorted(k for k, v in journal.items() if v)}): {doing}; {refused}"
        )


def test_bl21_2_the_adopted_runbook_writer_declares_the_backup_window_the_runbook_gave_it(
    deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BL21-2 (an import the harness accepts that the real engine would refuse).

    After an rds-replica runbook failback the primary stack adopts ``<primary>`` with the ``import``
    option, declared by ``runbook_replica_args``; the import fails on any declared input that differs
    from the live instance (https://www.pulumi.com/docs/iac/concepts/options/import/, the harness's
    own ``import-mismatch`` rule). ``runbook_replica_args`` drops what AWS chose (backup retention,
    tag copying, Performance Insights key) but keeps ``backup_window`` = BACKUP_WINDOW. The runbook's
    PromoteReadReplica names no ``PreferredBackupWindow``, and AWS documents the default as "A
    30-minute window selected at random from an 8-hour block of time per AWS Region"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html), and
    CreateDBInstanceReadReplica has no backup-window parameter at all. The lifecycle harness models
    the replica inheriting region B's declared window (``_runbook_failback_replica`` copies the
    source's inputs) and so accepts an adoption that would fail on AWS whenever the random window is
    not 03:00-04:00. Either the runbook sets the window it promotes with, or the adoption must not
    declare it."""
    from botocore.client import BaseClient

    from components.config import DatabaseConfig
    from components.data import BACKUP_WINDOW
    from components.primary_data import runbook_replica_args

    promoted: list[dict[str, object]] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, object]) -> object:
        if operation == "PromoteReadReplica" and self.meta.region_name == REGION_A:
            promoted.append(dict(params))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    d = deploy("rds-replica")
    _failed_over(d)
    assert d.op_run("failback", params={"waiterMaxAttempts": 240}).outcome == "done"
    assert promoted, "the failback promoted region A's replica"
    declared = runbook_replica_args(
        DatabaseConfig(mode="rds-replica", engine="postgres"),
        stamp="202601010000",
        identifier="x",
        engine="postgres",
        port=5432,
        kms_key_arn="k",
        subnet_group_name="s",
        parameter_group_name="p",
        security_group_id="g",
        protect=True,
    )
    if "backup_window" in declared:
        assert declared["backup_window"] == BACKUP_WINDOW
        assert all(p.get("PreferredBackupWindow") == BACKUP_WINDOW for p in promoted), (
            f"the adoption declares backup_window {BACKUP_WINDOW!r}, but the runbook promoted with "
            f"{promoted} (AWS picks a random window): the import of the runbook's writer fails on AWS"
        )
