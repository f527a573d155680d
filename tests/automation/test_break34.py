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


@pytest.mark.xfail(
    strict=True,
    reason=(
        "B34-5: no_loss: the declared rds-replica failover (`latch activate`, then `dr:active true`: "
        "`python -m automation cloud failover` runs both at once) promotes region B's replica with no drain and "
        "no zero-lag proof while region A answers (fenced since the B34-1 fix, its writes just stopped): "
        "components/program.py refuses an unproven promotion only in the failback direction "
        "(refuse_unproven_failback_promotion)"
    ),
)
def test_b34_5_the_declared_rds_replica_failover_promotes_with_no_zero_lag_proof(
    make_world: Callable[..., World],
) -> None:
    """rds-replica, region A healthy and serving its writer, its replica in region B behind (the ``ReplicaLag``
    datapoints say 40 s). The operator declares a failover as the README's table says: `latch activate`
    (writes the latch, throws the switch; region A is not fenced: ``failoverDeclaredAt``), then `pulumi up -s
    dr` with ``dr:active true``, whose update removes ``replicate_source_db`` and so promotes the replica
    ("A promoted read replica ... can't be made a read replica again", and it keeps only what it had replayed:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). `cloud failover`
    runs the update right after the latch command, within the switch alarm's first period: Route 53 still
    answers region A, which takes and acknowledges writes the promoted copy will never hold. docs/safety.md
    no_loss: "On a planned change (failback, `--planned`, a forced failover while the source database answers)
    the writer moves only at zero lag measured after writes stopped"; the README: "in rds-replica mode, the
    replica is promoted with nothing in flight from region A". The program's refusals before any resource
    (``decide``, ``refuse_dr_update``, ``refuse_unmoved_aurora_writer``, ``refuse_unproven_failback_promotion``)
    say nothing of region A in this direction: the update promotes."""
    from automation import latch_cli
    from components.config import DrFlags
    from components.failover import (
        FailbackInProgress,
        FailoverRefused,
        Latch,
        decide,
        refuse_dr_update,
        refuse_unmoved_aurora_writer,
        refuse_unproven_failback_promotion,
    )
    from tests.automation.test_break24 import PRIMARY, _journal

    world = make_world("rds-replica")
    # Region B's replica behind, as RDS publishes it in the replica's region once a minute
    # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html).
    world.client("cloudwatch", REGION_B).put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": world.context["drDbInstanceId"]}],
                "Value": 40.0,
                "Timestamp": datetime.now(UTC),
            }
        ],
    )
    ctx = RunbookContext.from_dict(world.context)
    lines = latch_cli.activate(ctx, clients_for(world), reason="declared failover")
    latch = Latch.parse(json.dumps(world.latch()))
    assert latch.active, lines
    # Since the B34-1 fix the declared failover fences region A (its writes stopped now), but nothing waits
    # for the drain or proves zero lag after it before the update promotes.
    assert _journal(world).get("primaryStoppedAt"), lines

    refused = None
    try:
        tier = decide(DrFlags(active=True), PRIMARY, database_mode="rds-replica", latch=latch, previous=None)
        journal = _journal(world)
        refuse_dr_update(latch, journal, tier=tier)
        refuse_unmoved_aurora_writer(None, tier, latch, journal, "rds-replica")
        refuse_unproven_failback_promotion(None, tier, latch, journal, "rds-replica")
    except (FailoverRefused, FailbackInProgress) as exc:
        refused = str(exc)
    assert tier.promote_database, "dr:active true promotes region B's replica in this update"
    assert refused is not None, (
        "pulumi up -s dr (dr:active true) promotes region B's replica 40 s behind, region A's writes stopped "
        f"only now, with no zero-lag proof after the drain: {lines}"
    )
