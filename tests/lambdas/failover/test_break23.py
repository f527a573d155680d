"""break23: findings against what int23 built (BL22-4, BL22-3, the failover writer, write_burst).

Each test is the failing evidence of one finding, marked xfail(strict=True) until it is fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.config import DrFlags
from components.failover import Capacity, FailoverRefused, Latch, PhaseRecord, decide
from lambdas.failover import steps
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.names import phase_record_name
from tests.lambdas.failover.faults import Fault, FaultSwitch, throttling_code
from tests.lambdas.failover.harness import FORCED, ShiftedClock, clients_for, run_book, shifted_runs
from tests.lambdas.failover.world import REGION_A, REGION_B, World


def test_br23_1_rds_replica_second_failover_after_iac_switch_writer_refuses_region_b_s_frozen_copy(
    make_world: Callable[..., World],
) -> None:
    """BL22-4 in rds-replica mode. The IaC failback's ``switch-writer`` promotes region A's replica
    of region B (README "Failing back": "A's replica is promoted"); region B's instance, promoted by
    the failover, stays a standalone instance (PromoteReadReplica makes a replica standalone for good:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Region A then
    holds the writer and the latch is still active until ``latch release``. A second failover in that
    window is a new failover, as in Aurora mode (docs/safety.md "every run converges"), but
    ``_writer_moving`` reads region B's instance as "not a replica, so the writer" and ``write_latch``
    keeps the first failover's ``since``: the failback record ``switch-writer`` made under it binds
    the new failover and ``pulumi up -s dr`` with ``dr:active true`` is refused."""
    world = make_world("rds-replica")
    clock = shifted_runs(world)
    assert run_book(world, "failover").outcome == "done"
    first = Latch.parse(json.dumps(world.latch()))
    assert first.active and first.since
    record = PhaseRecord("switch-writer", first.since)

    # The IaC failback: `replicate` (a replica of B's instance in A), then `switch-writer` (promoted).
    rds_a = world.client("rds", REGION_A)
    primary = world.context["primaryDbInstanceId"]
    dr_instance = world.db(REGION_B, world.context["drDbInstanceId"])
    assert dr_instance and not dr_instance.get("ReadReplicaSourceDBInstanceIdentifier"), dr_instance
    rds_a.create_db_instance_read_replica(
        DBInstanceIdentifier=f"{primary}-failback",
        SourceDBInstanceIdentifier=dr_instance["DBInstanceArn"],
        DBInstanceClass="db.t3.micro",
    )
    rds_a.promote_read_replica(DBInstanceIdentifier=f"{primary}-failback")
    # `pulumi up -s primary` after switch-writer points the runbook at the promoted instance.
    world.context["primaryDbInstanceId"] = f"{primary}-failback"
    assert not world.db(REGION_A, f"{primary}-failback").get("ReadReplicaSourceDBInstanceIdentifier")

    # The dr stack's switch-writer update recorded the phase under the latch (components/failover.py
    # phase_record_parameter_name), as it does on AWS.
    world.client("ssm", REGION_B).put_parameter(
        Name=phase_record_name(world.context["latchParameterName"]),
        Value=record.to_json(),
        Type="String",
        Overwrite=True,
    )

    # Region A fails before `latch release`: a second failover, an hour later. Region B's instance is
    # a standalone copy frozen at the switch: the failover refuses it before anything changes (a new
    # `since` would light it; fencing.py _refuse_after_iac_writer_move).
    clock.sleep(3600)
    report = run_book(world, "failover")
    assert report.stopped_at == "confirm_primary_down", report.format_table()
    assert report.record("confirm_primary_down").code == "NotReplicating"
    assert Latch.parse(json.dumps(world.latch())) == first


def test_br23_3_a_throttled_describe_at_write_latch_binds_the_new_failover_to_the_last_failback(
    make_world: Callable[..., World],
) -> None:
    """BL22-4's fix keys on ``_writer_moving``, which answers True ("cannot be told") when its describe
    fails. Under a still-active latch that means "keep ``since``". It is never asked again: the same run
    goes on to ``promote_database`` (write_latch runs before it), and from then on region B does hold
    the writer, so every later ``write_latch`` keeps the old ``since`` too. One throttled
    DescribeGlobalClusters (a retryable error that outlasted the client's retries: RDS throttles by
    account and region, https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html,
    ThrottlingException) during a second failover after Aurora's ``switch-writer`` leaves exactly the
    BL22-4 state: the last failback's record binds the new failover and ``dr:active true`` is refused
    for the rest of it (docs/safety.md: every run converges)."""
    world = make_world("aurora-global")
    clock = ShiftedClock()
    switch = FaultSwitch()
    clients = clients_for(world, switch, clock=clock)
    ctx = RunbookContext.from_dict(world.context)

    # The first failover's latch (S1); its failback moved the writer back and recorded switch-writer.
    steps.write_latch(ctx, clients, FORCED)
    first = Latch.parse(json.dumps(world.latch()))
    record = PhaseRecord("switch-writer", first.since)
    assert not world.dr_is_writer()

    # Region A fails again an hour later; the describe behind _writer_moving is throttled throughout.
    clock.sleep(3600)
    switch.active = [Fault("rds", "DescribeGlobalClusters", None, code=throttling_code("rds"))]
    with pytest.raises(StepFailed) as throttled:
        steps.write_latch(ctx, clients, FORCED)
    assert throttled.value.retryable, throttled.value  # the executor tries the step again
    assert Latch.parse(json.dumps(world.latch())) == first  # nothing written on a guess
    switch.active = []
    latched = steps.write_latch(ctx, clients, FORCED)  # the retry: region A the writer, a new since
    # The run goes on: the promotion (region B the writer), then a resume of write_latch.
    for _ in range(50):
        if steps.promote_database(ctx, clients, FORCED).status in ("done", "already_done"):
            break
        clock.sleep(30)
    assert world.dr_is_writer()
    again = steps.write_latch(ctx, clients, FORCED)
    second = Latch.parse(json.dumps(world.latch()))

    try:
        decide(DrFlags(True), Capacity(2, 2, 6), database_mode="aurora-global", latch=second, previous=record)
    except FailoverRefused as exc:
        raise AssertionError(
            f"write_latch {latched.status} under the throttle, then {again.status}: the new failover keeps "
            f"since {second.since} and the first failback's record binds it: {str(exc)[:160]}"
        ) from exc
