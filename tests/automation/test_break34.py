"""break34: break30 B30-1's fix on ``integ`` at 67180c7 (lambdas/failover/region_b_quiet.py,
components/region_b_serving.py ``refuse_promotion_after_region_b_served``) attacked in the unit world of
tests/automation/test_break30.py.

Invariant (docs/safety.md): *nothing acknowledged is lost*: the rds-replica ``dr:failback switch-writer``
update promotes region A's failback replica only on a zero-lag proof measured after region B's last writes.
Each finding is a strict xfail: it fails for the reason its ``reason`` states until the product is fixed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from moto.autoscaling.models import autoscaling_backends

from automation.emulator.aws import ACCOUNT
from automation.emulator.gaps import _ACTIVITIES
from lambdas.failover import drain_proof
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import StepFailed
from lambdas.failover.lossless import DRAIN_SECONDS, Lag, wait_lossless
from tests.automation.test_break27 import _promotion_refusal
from tests.automation.test_drain_proof import PARAMS, _drained, _lag
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.harness import ShiftedClock, clients_for
from tests.lambdas.failover.world import REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def _record_activity(world: World, description: str) -> None:
    """The scaling activity AWS records for a change made by hand: DescribeScalingActivities "Describes the
    scaling activities in the account and Region" for every change to the group's instances
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html); moto
    records none, and the emulator's patch (automation/emulator/gaps.py) records launches only, so the one
    AWS writes for an attach is added here as AWS words it ("Attaching an existing EC2 instance: i-...")."""
    group = autoscaling_backends[ACCOUNT][REGION_B].autoscaling_groups[world.context["drAsgName"]]
    log = getattr(group, _ACTIVITIES, None) or []
    setattr(group, _ACTIVITIES, log)
    now = datetime.now(UTC)
    log.append(
        {
            "ActivityId": str(uuid.uuid4()),
            "AutoScalingGroupName": group.name,
            "Description": description,
            "Cause": f"At {now:%Y-%m-%dT%H:%M:%SZ} an instance was added in response to a user request.",
            "StartTime": now,
            "EndTime": now,
            "StatusCode": "Successful",
            "Progress": 100,
        }
    )


def test_b34_3_an_instance_attached_to_region_b_by_hand_after_the_proof_is_not_seen(
    make_world: Callable[..., World],
) -> None:
    """The B30-1 threat (region B served by hand after the proof, then drained again by hand) by the other way
    AWS gives an instance to a group: AttachInstances ("Amazon EC2 Auto Scaling increases the desired capacity
    of the group by the number of instances being attached ... If there are target groups attached to your
    Auto Scaling group, the instances are also registered with the target groups":
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_AttachInstances.html), then DetachInstances
    with the desired capacity decremented. AWS's user guide recommends the same round trip by standby
    (ExitStandby), which launches nothing either
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-detach-attach-instances.html:
    "Instead of detaching and re-attaching an instance to the same group, we recommend using the standby
    procedure"). The attached instance serves behind region B's target group and takes writes the proof never
    measured; AWS records the attach as a scaling activity, which ``launches_since`` reads and drops: only
    descriptions starting "Launching a new EC2 instance" count (its docstring: "an unknown wording counts as a
    launch (the safe side)" holds only inside that prefix)."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    drain_proof.prove_drain(
        RunbookContext.from_dict(world.context), clients_for(world, clock=ShiftedClock()), PARAMS
    )
    assert _promotion_refusal(world) is None, "proven: the promotion may go"

    group = world.context["drAsgName"]
    asg = world.client("autoscaling", REGION_B)
    ec2 = world.client("ec2", REGION_B)
    described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    zone = described["AvailabilityZones"][0]
    image = "ami-12c6146b"  # the web tier's launch template's (tests/lambdas/failover/world.py)
    [instance] = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": zone}
    )["Instances"]
    # By hand, after the proof: room for one, the instance attached (desired 0 -> 1), serving.
    asg.update_auto_scaling_group(AutoScalingGroupName=group, MaxSize=1)
    asg.attach_instances(AutoScalingGroupName=group, InstanceIds=[instance["InstanceId"]])
    _record_activity(world, f"Attaching an existing EC2 instance: {instance['InstanceId']}")
    assert _promotion_refusal(world) is not None, "while it serves, the live read refuses (fixb272)"
    # By hand again: detached with the desired capacity decremented, the group back to 0/0/0.
    asg.detach_instances(
        AutoScalingGroupName=group, InstanceIds=[instance["InstanceId"]], ShouldDecrementDesiredCapacity=True
    )
    asg.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, MaxSize=0, DesiredCapacity=0)
    assert world.asg(REGION_B) == (0, 0, 0)
    recorded = asg.describe_scaling_activities(AutoScalingGroupName=group)["Activities"]
    assert recorded[0]["Description"].startswith("Attaching an existing EC2 instance"), recorded[0]

    refused = _promotion_refusal(world)
    assert refused is not None, (
        f"dr:failback switch-writer promotes {replica} although region B's web tier served an attached "
        "instance after the proof (AWS recorded the attach)"
    )


class _Clock:
    """A virtual clock: ``sleep`` advances it."""

    def __init__(self, now: datetime) -> None:
        self.at, self.slept = now, 0.0

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.slept += seconds


class _NoDatapoints:
    """CloudWatch answering no datapoint: nothing is ever proven."""

    def get_metric_data(self, **_: object) -> dict[str, object]:
        return {"MetricDataResults": [{"Timestamps": [], "Values": []}]}


def test_b34_4_a_drain_stamp_ahead_of_the_waiting_host_s_clock_is_waited_out_beyond_the_budget() -> None:
    """docs/safety.md converges: "The zero-lag wait's budget (``waiterMaxAttempts`` looks ``waiterDelay`` apart
    ...) counts from the drain's end, not its start"; "A link slower than the budget still stops the run on its
    own decision". The drain's end is the journal's ``primaryStoppedAt`` plus 300 s, and the stamp is written by
    whichever host ran the fence (``stepkit._now``: the runbook Lambda of a Step Functions execution, or an
    operator's laptop), while the wait reads the clock of the host that resumes it. Before 3e0e30d every poll,
    the drain's included, counted against the budget; now a stamp three hours ahead of the waiting host's clock
    (an unsynchronised laptop or VM: EC2 hosts keep time with the Amazon Time Sync Service,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/set-time.html, an operator's host need not) makes the
    CLI poll "draining until ..." for three hours with 4 looks of budget: the failover's region A stays fenced
    and region B is not the writer for all of it. The Step Functions executor is bounded (its ``max_polls``
    counts every poll)."""
    clock = _Clock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    clients = SimpleNamespace(clock=clock, cloudwatch=lambda side: _NoDatapoints())
    lag = Lag("dr", "AWS/S3", "OperationsPendingReplication", {"SourceBucket": "a", "DestinationBucket": "b"})
    params = {"wait": True, "waiterMaxAttempts": 4, "waiterDelay": 15}
    budget = DRAIN_SECONDS + 4 * 15

    with pytest.raises(StepFailed) as gave_up:
        wait_lossless(
            clients,  # type: ignore[arg-type]
            params,
            stopped_at=clock.now() + timedelta(hours=3),
            lags=[lag],
            step="promote_database",
        )

    assert gave_up.value.code == "LagTimeout", gave_up.value
    assert clock.slept <= budget, f"waited {clock.slept:.0f} s on a budget of {budget:.0f} s"


def test_b34_5_latch_activate_promotes_region_b_s_replica_only_after_the_drain(
    make_world: Callable[..., World],
) -> None:
    """no_loss (docs/safety.md: "On a planned change (failback, `--planned`, a forced failover while the source
    database answers) the writer moves only at zero lag measured after writes stopped"). rds-replica, region
    A healthy and serving its writer: the operator declares a failover as the README's table says, `latch
    activate`, then `pulumi up -s dr` with ``dr:active true``.

    Before the fix `latch activate` did not touch the database and the update promoted the replica by
    removing ``replicate_source_db`` ("A promoted read replica ... can't be made a read replica again", and
    it keeps only what it had replayed: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html)
    with no drain and no zero-lag proof. Now `latch activate` runs the runbook's ``promote_database`` after
    the fence, the latch and the switch; it asks RDS for the promotion (``promotionRequested``) no sooner
    than the drain after the fence's stop (``primaryStoppedAt``). What the data plane loses or keeps is the
    safety model's (tests/safety/test_break34.py)."""
    from automation import latch_cli
    from lambdas.failover.stepkit import _parse_time
    from tests.automation.test_break24 import _journal

    world = make_world("rds-replica")
    ctx = RunbookContext.from_dict(world.context)
    lines = latch_cli.activate(ctx, clients_for(world, clock=ShiftedClock()), reason="declared failover")

    order = [line.split(":", 1)[0] for line in lines]
    assert order[:4] == ["fence_primary", "write_latch", "throw_switch", "promote_database"], lines
    (dr,) = world.client("rds", REGION_B).describe_db_instances(
        DBInstanceIdentifier=world.context["drDbInstanceId"]
    )["DBInstances"]
    assert not dr.get("ReadReplicaSourceDBInstanceIdentifier"), "latch activate promoted region B's replica"
    journal = _journal(world)
    stopped, asked = (
        _parse_time(journal["primaryStoppedAt"]),
        _parse_time(journal["promotionRequested"]["at"]),
    )
    assert stopped is not None and asked is not None, journal
    assert (asked - stopped).total_seconds() >= DRAIN_SECONDS, journal


def _dr_instance(stack_outputs: dict[str, object]) -> str:
    runbook = stack_outputs["runbook"]
    assert isinstance(runbook, dict)
    return str(runbook["drDbInstanceId"])


@pytest.mark.parametrize("replicating", [True, False], ids=["still-a-replica", "promoted"])
def test_b34_5_the_dr_update_never_promotes_region_b_s_replica_on_a_failover(replicating: bool) -> None:
    """The program half: `pulumi up -s dr` with ``dr:active true`` under an active latch, region B's instance
    read live. Still a replica (the declared failover's `latch activate` stopped before its promotion, or an
    older pilotlight's, or the runbook's promotion not ended): refused before any resource, naming `latch
    activate`, since removing ``replicate_source_db`` would promote it with whatever it has replayed.
    Promoted already: the update goes on, keeping the source in its state (no second PromoteReadReplica)."""
    from automation import synth
    from components.failover import FailoverRefused

    rds = {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}}
    standby = synth.synthesize("dr", rds, primary_overrides=rds)
    ident = _dr_instance(standby.outputs)
    region = standby.outputs["runbook"]["drRegion"]  # type: ignore[index]
    latch = json.dumps({"state": "active", "since": "2026-12-02T12:00:00+00:00", "runbook": "failover"})
    live = {
        "rdsInstances": {region: [ident]},
        "rdsSources": {ident: "arn:aws:rds:us-east-1:123456789012:db:primary" if replicating else ""},
    }
    overrides = {**rds, "dr:active": True}
    if replicating:
        with pytest.raises(FailoverRefused, match="latch activate"):
            synth.synthesize("dr", overrides, primary_overrides=rds, latch=latch, live=live)
    else:
        active = synth.synthesize("dr", overrides, primary_overrides=rds, latch=latch, live=live)
        assert _dr_instance(active.outputs) == ident
