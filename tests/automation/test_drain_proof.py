"""The rds-replica IaC failback's zero-lag proof (``python -m automation latch switch-writer``,
lambdas/failover/drain_proof.py) and the program's refusal without it (components/failover.py
``refuse_unproven_failback_promotion``): break26 B26-2 and B26-3.

Invariants (docs/safety.md): *nothing acknowledged is lost* (the writer moves only at zero lag measured
after writes stopped) and *one writer* (region A's replica is never promoted while region B takes writes).
The moto world of the runbook tests (``tests/lambdas/failover``), on a clock that every wait moves forward
(``ShiftedClock``), with the ``ReplicaLag`` datapoints RDS would publish for region A's failback instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from automation import cloud, latch_cli
from components.failover import FailoverRefused, Latch, PhaseRecord, refuse_unproven_failback_promotion
from lambdas.failover import drain_proof, lock
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.journal import DRAIN_PROOF_MARK
from lambdas.failover.names import REPLICATION_RULE_ID, phase_record_name
from tests.automation.test_break24 import _iac_drain, _iac_replica, _journal, _tier
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.faults import unreachable
from tests.lambdas.failover.harness import FAST, ShiftedClock, clients_for, run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world

PARAMS = {"waiterDelay": 15, "waiterMaxAttempts": 60}
"""The proof's own wait (the CLI's defaults: 15 s x 80); 20 minutes on the shifted clock: the 300 s drain
(lossless.DRAIN_SECONDS, not overridden), then 60 looks at the lag datapoints 15 s apart (the budget counts
from the drain's end: lossless.wait_lossless)."""

BEHIND = 3600.0
"""A PostgreSQL ``ReplicaLag`` an hour behind: the last replayed commit is older than the drain."""


def _record(world: World, phase: str, since: str, drains: int) -> None:
    """The dr stack's failback record as ``dr:failback <phase>`` writes it (PhaseRecord.to_json)."""
    world.client("ssm", REGION_B).put_parameter(
        Name=phase_record_name(world.context["latchParameterName"]),
        Value=PhaseRecord(phase, since, drains=drains).to_json(),
        Type="String",
        Overwrite=True,
    )


def _lag(world: World, instance: str, minutes: Iterable[tuple[int, float]]) -> None:
    """``ReplicaLag`` of ``instance`` (region A) for minute offsets from now, as RDS publishes it once a
    minute (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html); the receipts'
    replication into region A pending nothing over the same minutes
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    points = list(minutes)
    cw = world.client("cloudwatch", REGION_A)
    for i in range(0, len(points), 20):
        cw.put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[
                {
                    "MetricName": "ReplicaLag",
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
                    "Value": value,
                    "Timestamp": start + timedelta(minutes=m),
                }
                for m, value in points[i : i + 20]
            ],
        )
    dims = {
        "SourceBucket": world.context["drBucketName"],
        "DestinationBucket": world.context["primaryBucketName"],
        "RuleId": REPLICATION_RULE_ID,
    }
    for i in range(0, len(points), 20):
        cw.put_metric_data(
            Namespace="AWS/S3",
            MetricData=[
                {
                    "MetricName": "OperationsPendingReplication",
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    "Value": 0.0,
                    "Timestamp": start + timedelta(minutes=m),
                }
                for m, _ in points[i : i + 20]
            ],
        )


def _drained(make_world: Callable[..., World]) -> tuple[World, str, str]:
    """rds-replica, failed over by the runbook, then ``dr:failback replicate`` and ``drain`` applied."""
    world = make_world("rds-replica")
    assert run_book(world, "failover").outcome == "done"
    since = world.latch()["since"]
    replica = _iac_replica(world)
    _record(world, "replicate", since, 0)
    _iac_drain(world)
    _record(world, "drain", since, 1)
    return world, since, replica


def _promotion_refused(world: World, since: str, drains: int = 1) -> str | None:
    """Why ``dr:failback switch-writer`` is refused before any resource (components/program.py), or None."""
    latch = Latch.parse(json.dumps(world.latch()))
    previous = PhaseRecord("drain", since, drains=drains)
    tier = _tier(world, latch, "switch-writer", previous)
    try:
        refuse_unproven_failback_promotion(previous, tier, latch, _journal(world), world.mode)
    except FailoverRefused as exc:
        return str(exc)
    return None


def test_the_proof_waits_for_zero_lag_measured_after_the_drain(make_world: Callable[..., World]) -> None:
    """Nothing acknowledged is lost. Region A's failback instance an hour behind: the proof waits the drain
    and its budget, refuses (retryable) and writes nothing, and the promotion stays refused. Once the
    datapoints after a drain say it replayed everything, the proof is written for this latch and this drain,
    and the promotion is allowed."""
    world, since, replica = _drained(make_world)
    _lag(world, replica, [(m, BEHIND if m <= 30 else 0.0) for m in range(0, 60)])
    clients = clients_for(world, clock=ShiftedClock())
    ctx = RunbookContext.from_dict(world.context)
    assert _promotion_refused(world, since) is not None

    with pytest.raises(StepFailed) as behind:
        drain_proof.prove_drain(ctx, clients, PARAMS)

    assert behind.value.retryable and "gave up waiting for zero lag" in behind.value.reason, behind.value
    assert DRAIN_PROOF_MARK not in _journal(world)
    assert "zero-lag proof" in str(_promotion_refused(world, since))
    assert world.asg(REGION_B)[1] == 0, "region B stays drained: nothing moved"

    said = drain_proof.prove_drain(ctx, clients, PARAMS)

    proof = _journal(world)[DRAIN_PROOF_MARK]
    assert (proof["latchSince"], proof["drains"], proof["instance"]) == (since, 1, replica), proof
    assert "measured after the drain" in said, said
    assert _promotion_refused(world, since) is None
    assert "drain 1 and the failback record says drain 2" in str(
        _promotion_refused(world, since, drains=2)
    ), "a proof names its drain: region B served and was drained again since"


def test_a_failover_after_the_drain_withdraws_the_proof_and_the_next_one_sees_region_b_serving(
    make_world: Callable[..., World],
) -> None:
    """One writer (break26 B26-3). The proof is written; region A fails again and the runbook's failover gives
    region B its web tier back out of band (the dr stack's state still says drained). The failover withdraws
    the proof (capacity.scale_web_tier), so the switch-writer update is refused, and the next proof reads
    region B serving in AWS and refuses: region A's replica is never promoted beside region B's writer."""
    world, since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 30)])
    clients = clients_for(world, clock=ShiftedClock())
    ctx = RunbookContext.from_dict(world.context)
    drain_proof.prove_drain(ctx, clients, PARAMS)
    assert _promotion_refused(world, since) is None

    again = run_book(world, "failover", unreachable(REGION_A), params=FAST)

    assert world.asg(REGION_B)[1] > 0, f"the failover served region B: {again.format_table()}"
    assert DRAIN_PROOF_MARK not in _journal(world), _journal(world)
    assert "zero-lag proof" in str(_promotion_refused(world, since))
    with pytest.raises(StepFailed) as serving:
        drain_proof.prove_drain(ctx, clients, PARAMS)
    assert "region B is not drained" in serving.value.reason and "--refresh" in serving.value.reason
    assert DRAIN_PROOF_MARK not in _journal(world)


def test_the_proof_refuses_before_the_drain_and_under_another_run_s_lock(
    make_world: Callable[..., World],
) -> None:
    """Single flight and nothing lost. Under ``dr:failback replicate`` (region B still takes writes) the proof
    refuses at once; with another run holding the runbook lock (a failover that may give region B its writes
    back) it writes nothing."""
    world, since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 30)])
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world, clock=ShiftedClock())
    _record(world, "replicate", since, 0)
    with pytest.raises(StepFailed) as early:
        drain_proof.prove_drain(ctx, clients, PARAMS)
    assert "dr:failback drain first" in early.value.reason, early.value
    _record(world, "drain", since, 1)
    lock.acquire(clients, ctx, run_id="another-run", owner="ops", runbook="failover", ttl_seconds=3600)

    with pytest.raises(StepFailed) as held:
        drain_proof.prove_drain(ctx, clients, PARAMS)

    assert held.value.code == "LockHeld", held.value
    assert DRAIN_PROOF_MARK not in _journal(world)


def test_latch_switch_writer_refuses_in_one_line_and_cloud_failback_stops(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A refusal names its reason (README: exit 1, one line, no traceback), and ``python -m automation cloud
    failback`` does not go on to the switch-writer update after a refused proof (cloud.write_latch)."""
    world, _since, _replica = _drained(make_world)
    world.client("autoscaling", REGION_B).update_auto_scaling_group(
        AutoScalingGroupName=world.context["drAsgName"], MinSize=1, MaxSize=2, DesiredCapacity=1
    )
    ctx = RunbookContext.from_dict(world.context)
    monkeypatch.setattr(latch_cli, "connect", lambda args: (ctx, clients_for(world)))

    status = latch_cli.main(["switch-writer", "--outputs", "runbook.json"])

    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert status == 1 and len(lines) == 1 and "region B is not drained" in lines[0], (status, lines)
    assert "Traceback" not in out.err
    with pytest.raises(cloud.CloudError, match="region B is not drained"):
        cloud.write_latch(world.context, "switch-writer")


def test_the_proof_refuses_rds_for_mysql_before_waiting(make_world: Callable[..., World]) -> None:
    """Nothing acknowledged is lost (break32 B32-3): region A's failback instance is RDS for MySQL (a database
    made outside the program, which refuses ``engine: mysql``), whose ``ReplicaLag`` (Seconds_Behind_Source)
    reads 0 over a slow link while writes are still on the wire, even datapoints of zero after the drain prove
    nothing. The proof is refused at once, the engine named, not retryable; no proof is written, region B stays
    drained and the promotion stays refused."""
    from moto.rds.models import rds_backends

    from tests.lambdas.failover.world import ACCOUNT

    world, since, replica = _drained(make_world)
    rds_backends[ACCOUNT][REGION_A].databases[replica].engine = "mysql"
    _lag(world, replica, [(m, 0.0) for m in range(0, 45)])
    clients = clients_for(world, clock=ShiftedClock())
    ctx = RunbookContext.from_dict(world.context)

    with pytest.raises(StepFailed) as refused:
        drain_proof.prove_drain(ctx, clients, PARAMS)

    assert refused.value.code == "UnprovableEngine" and not refused.value.retryable, refused.value
    assert "RDS for mysql" in refused.value.reason and "region B stays drained" in refused.value.reason
    assert DRAIN_PROOF_MARK not in _journal(world)
    assert world.asg(REGION_B)[1] == 0, "region B stays drained: nothing moved"
    assert _promotion_refused(world, since) is not None
