"""The rds-replica switch-writer update reads region B's web tier live and refuses the promotion while it
serves (components/region_b_serving.py, components/program.py ``read_region_b_web_tier``; break27 B27-2).

Invariant (docs/safety.md): one writer, nothing acknowledged is lost. The zero-lag proof says region B was
drained when it was measured; the update plans against unrefreshed state
(https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), so region B scaled up after the proof outside
the runbook is seen only by a live read. The moto-world evidence is tests/automation/test_break27.py
``test_the_switch_writer_update_is_refused_while_region_b_serves_in_aws``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from automation.lifecycle import Lifecycle, Runbook, Up, asg_capacity
from automation.lifecycle_scenarios import declared_failover, deploy
from components.config import DrFlags
from components.failover import (
    NOT_READ,
    Capacity,
    DesiredTier,
    FailoverRefused,
    Latch,
    decide,
    promotes_failback_instance,
)
from components.program import SERVED_SINCE_READ
from components.region_b_serving import (
    GROUP_TAGS,
    FunctionSeen,
    GroupSeen,
    group_filters,
    refuse_promotion_after_region_b_served,
    refuse_promotion_while_region_b_serves,
)
from lambdas.failover import region_b_quiet
from lambdas.failover.context import Capacity as GroupCapacity
from lambdas.failover.context import function_serving
from lambdas.failover.journal import DRAIN_PROOF_MARK
from lambdas.failover.region_b_quiet import Served

RDS = "rds-replica"
SINCE = "2026-12-01T10:00:00+00:00"
ACTIVE = Latch("active", SINCE)
DRAINED = GroupSeen("pl-dr-web-asg-1a2b3c", 0, 0, 0)
THROTTLED = FunctionSeen("pl-prod-payments", 0)


def _tier(phase: str | None, mode: str = RDS) -> DesiredTier:
    return decide(
        DrFlags(active=True, failback=phase),
        Capacity(2, 2, 4),
        database_mode=mode,
        latch=ACTIVE,
        previous=NOT_READ,
    )


def _refusal(
    groups: list[GroupSeen],
    functions: list[FunctionSeen] | None = None,
    tier: DesiredTier | None = None,
    latch: Latch = ACTIVE,
    mode: str = RDS,
) -> str | None:
    try:
        refuse_promotion_while_region_b_serves(
            tier or _tier("switch-writer", mode),
            latch,
            mode,
            groups,
            [THROTTLED] if functions is None else functions,
        )
    except FailoverRefused as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    ("sizes", "label"),
    [
        ((0, 2, 4), "0/2/4"),  # running instances
        ((0, 0, 4), "0/0/4"),  # none yet, but target tracking may launch up to max
        ((1, 1, 1), "1/1/1"),
    ],
)
def test_a_serving_web_tier_refuses_the_promotion_in_one_line_naming_it_and_the_remedy(
    sizes: tuple[int, int, int], label: str
) -> None:
    serving = GroupSeen("pl-dr-web-asg-9f8e7d", *sizes)
    said = _refusal([DRAINED, serving])
    assert said is not None, f"switch-writer promotes region A's replica while {serving} serves in region B"
    assert "\n" not in said, said
    assert f"web tier pl-dr-web-asg-9f8e7d at {label}" in said and DRAINED.name not in said, said
    for remedy in ("pulumi up --refresh -s dr", "dr:failback drain", "latch switch-writer"):
        assert remedy in said, (remedy, said)


@pytest.mark.parametrize("reserved", [None, -1, 5])
def test_a_function_that_can_run_refuses_the_promotion_naming_it(reserved: int | None) -> None:
    running = FunctionSeen("pl-prod-payments", reserved)
    said = _refusal([DRAINED], [running])
    assert said is not None, f"switch-writer promotes region A's replica while {running} can run in region B"
    assert "\n" not in said and f"function pl-prod-payments at reserved concurrency {reserved}" in said, said
    assert DRAINED.name not in said and "pulumi up --refresh -s dr" in said, said


def test_everything_serving_is_named_in_one_line_that_says_why_and_what_to_do() -> None:
    said = _refusal([GroupSeen("g1", 0, 1, 2), DRAINED], [FunctionSeen("f1", -1)])
    assert said == (
        "dr:failback switch-writer is refused: region B serves in AWS (web tier g1 at 0/1/2 (min/desired/max); "
        "function f1 at reserved concurrency -1 (drained: 0)) although the stack's state and the zero-lag proof "
        "say it is drained, so promoting region A's failback replica now would leave two writers and lose what "
        "region B acknowledged since the proof. Drain it again with `pulumi up --refresh -s dr` and dr:failback "
        "drain, then run `python -m automation latch switch-writer --outputs runbook.json`, then this update."
    )


def test_a_drained_region_b_lets_the_promotion_go() -> None:
    assert _refusal([DRAINED]) is None
    assert _refusal([DRAINED], [FunctionSeen("f1", 0)]) is None


def test_no_group_found_refuses_the_promotion_naming_the_tags() -> None:
    """break30 B30-2: the dr stack declares its web tier group in every tier, so a read that finds none
    missed it (its tags changed by hand); it cannot say region B is drained."""
    said = _refusal([], [])
    assert said is not None and "no Auto Scaling group" in said
    assert all(tag in said for tag in ("Application", "Environment", "StackRole")), said


@pytest.mark.parametrize(
    ("tier_phase", "latch", "mode"),
    [
        ("drain", ACTIVE, RDS),  # promotes nothing
        ("replicate", ACTIVE, RDS),
        ("switch-writer", ACTIVE, "aurora-global"),  # the runbook's switchover moves that writer
        ("switch-writer", Latch(), RDS),  # no failover to fail back from
    ],
)
def test_an_update_that_promotes_nothing_is_never_refused_by_it(
    tier_phase: str, latch: Latch, mode: str
) -> None:
    tier = _tier(tier_phase, mode)
    assert not promotes_failback_instance(tier, latch, mode)
    serving = ([GroupSeen("pl-dr-web-asg-9f8e7d", 2, 2, 4)], [FunctionSeen("pl-prod-payments", -1)])
    assert _refusal(*serving, tier=tier, latch=latch, mode=mode) is None


def test_the_promoting_update_is_exactly_rds_replica_switch_writer_under_an_active_latch() -> None:
    assert promotes_failback_instance(_tier("switch-writer"), ACTIVE, RDS)


@pytest.mark.parametrize(
    ("sizes", "serving"), [((0, 0, 0), False), ((0, 0, 1), True), ((0, 1, 1), True), ((1, 1, 2), True)]
)
def test_serving_is_the_zero_lag_proof_s_notion_of_not_drained(
    sizes: tuple[int, int, int], serving: bool
) -> None:
    # lambdas/failover/drain_proof.py _serving refuses the proof on the same predicate.
    assert GroupCapacity(*sizes).serving is serving
    assert GroupSeen("g", *sizes).serving is serving


@pytest.mark.parametrize(("reserved", "serving"), [(0, False), (None, True), (-1, True), (1, True)])
def test_a_function_serves_unless_its_reserved_concurrency_is_zero(
    reserved: int | None, serving: bool
) -> None:
    # lambdas/failover/drain_proof.py _serving refuses the proof on the same predicate.
    assert function_serving(reserved) is serving
    assert FunctionSeen("f", reserved).serving is serving


def test_the_filters_name_the_application_its_environment_and_the_stack_role() -> None:
    tags = {"Application": "shop", "Environment": "prod", "StackRole": "dr", "CostCenter": "x"}
    assert group_filters(tags) == {
        "tag:Application": "shop",
        "tag:Environment": "prod",
        "tag:StackRole": "dr",
    }
    assert set(GROUP_TAGS) <= set(tags)


def _to_the_proof() -> Lifecycle:
    """Deploy, a declared failover, ``replicate`` and ``drain``, then the zero-lag proof: the state from
    which the README's next step is the switch-writer update."""
    lc = Lifecycle()
    lc.run(
        [
            *deploy(RDS),
            *declared_failover(RDS),
            *[
                Up("dr", f"IaC failback phase {p}", {"dr:active": True, "dr:failback": p})
                for p in ("replicate", "drain")
            ],
            Runbook("switch-writer", "the zero-lag proof: python -m automation latch switch-writer"),
        ]
    )
    assert [r.label for r in lc.results if r.refused or r.errors] == []
    return lc


SWITCH = Up("dr", "IaC failback phase switch-writer", {"dr:active": True, "dr:failback": "switch-writer"})


def test_lifecycle_region_b_scaled_by_hand_after_the_proof_refuses_the_switch_writer_update() -> None:
    # The program's live read (autoscaling.getAmiIds with its tag filters, then getGroup) is answered from
    # the harness's world, where the group carries the tags the program declared: the filter finds the
    # program's own group in region B, and the refusal comes before any resource.
    lc = _to_the_proof()
    dr_asg = lc.live("dr", "aws:autoscaling/group:Group", "dr-web-asg")
    assert dr_asg is not None and asg_capacity(dr_asg) == 0
    dr_asg.update(minSize=1, maxSize=4, desiredCapacity=2)  # a console scale-up: neither runbook nor program
    standalone = sorted(d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None)

    [switch] = lc.run([SWITCH])[-1:]

    assert switch.refused is not None and "region B serves in AWS" in switch.refused, switch.refused
    assert "dr-web-asg at 1/2/4" in switch.refused, switch.refused
    assert not switch.applied and not switch.plans
    after = sorted(d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None)
    assert after == standalone, f"a writer was promoted while region B serves: {standalone} -> {after}"


def test_lifecycle_region_b_s_function_unthrottled_by_hand_after_the_proof_refuses_the_switch_writer_update() -> (
    None
):
    # The function's name is fixed (components/serverless.py payments_function_name): read by name.
    lc = _to_the_proof()
    [fn] = [
        lc.world.attrs[r.urn]
        for r in lc.state["dr"].values()
        if r.type == "aws:lambda/function:Function" and "payments" in str(r.inputs.get("name"))
    ]
    assert fn["reservedConcurrentExecutions"] == 0, fn["reservedConcurrentExecutions"]
    fn["reservedConcurrentExecutions"] = -1  # DeleteFunctionConcurrency by hand

    [switch] = lc.run([SWITCH])[-1:]

    assert (
        switch.refused is not None and f"function {fn['name']} at reserved concurrency -1" in switch.refused
    ), switch.refused
    assert not switch.applied


def test_lifecycle_a_drained_region_b_lets_the_switch_writer_update_promote() -> None:
    lc = _to_the_proof()
    standalone = {d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None}

    [switch] = lc.run([SWITCH])[-1:]

    assert switch.refused is None and switch.applied, switch.refused or switch.errors
    after = {d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None}
    assert after - standalone, "switch-writer promoted no failback instance in region A"
    reads = {(t, region) for t, _a, region in lc.syntheses[-1].invokes if t.startswith("aws:autoscaling/")}
    _primary, dr_region = lc.regions()
    assert reads == {
        ("aws:autoscaling/getAmiIds:getAmiIds", dr_region),
        ("aws:autoscaling/getGroup:getGroup", dr_region),
    }, "region B's web tier is read live, in region B, before the promotion"
    functions = {
        (t, region) for t, _a, region in lc.syntheses[-1].invokes if t == "aws:lambda/getFunction:getFunction"
    }
    assert functions == {("aws:lambda/getFunction:getFunction", dr_region)}, functions


def test_lifecycle_an_update_that_promotes_nothing_makes_no_live_read_of_region_b() -> None:
    lc = _to_the_proof()
    for s in lc.syntheses:
        reads = [
            t
            for t, _a, _r in s.invokes
            if t.startswith(("aws:autoscaling/", "aws:lambda/getFunction")) or t == SERVED_SINCE_READ
        ]
        assert not reads, (s.stack, s.config.get("dr:failback"), reads)


# ---- break30 B30-1: region B served after the proof's drain, drained again by hand since

PROOF = {
    "latchSince": SINCE,
    "drains": 1,
    "at": "2026-12-01T11:20:00+00:00",
    "drainedAt": "2026-12-01T11:05:00+00:00",
}
LAUNCHED = Served(
    "web tier pl-dr-web-asg-9f8e7d: Launching a new EC2 instance: i-0abc",
    datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
)
INVOKED = Served(
    "function pl-prod-payments: 3 invocation(s) in the 60 s", datetime(2026, 12, 1, 12, 3, tzinfo=UTC)
)


def _served_refusal(
    served: list[Served],
    proof: dict[str, Any] | None = None,
    tier: DesiredTier | None = None,
    mode: str = RDS,
) -> str | None:
    try:
        refuse_promotion_after_region_b_served(
            tier or _tier("switch-writer", mode), ACTIVE, mode, PROOF if proof is None else proof, served
        )
    except FailoverRefused as exc:
        return str(exc)
    return None


def test_region_b_served_since_the_proof_s_drain_refuses_in_one_line_naming_what_and_the_remedy() -> None:
    said = _served_refusal([LAUNCHED, INVOKED])
    assert said is not None, (
        "switch-writer promotes although region B launched and ran after the proof's drain"
    )
    assert "\n" not in said, said
    assert "after the zero-lag proof's drain at 2026-12-01 11:05:00 UTC" in said, said
    assert LAUNCHED.describe() in said and INVOKED.describe() in said, said
    assert "python -m automation latch switch-writer --outputs runbook.json" in said, said


def test_nothing_recorded_since_the_proof_s_drain_lets_the_promotion_go() -> None:
    assert _served_refusal([]) is None


@pytest.mark.parametrize(
    "proof",
    [{"latchSince": SINCE, "drains": 1}, {"latchSince": SINCE, "drains": 1, "drainedAt": "yesterday"}],
    ids=["no-time", "unreadable-time"],
)
def test_a_proof_without_a_readable_drain_time_refuses(proof: dict[str, Any]) -> None:
    said = _served_refusal([], proof)
    assert said is not None and "names no readable drain time" in said, said


def test_a_proof_written_before_drained_at_was_recorded_counts_from_its_own_time() -> None:
    # An older program's proof has only "at" (later than its drain: the narrower window, still read).
    assert region_b_quiet.proof_drained_at({"at": PROOF["at"]}) == datetime(2026, 12, 1, 11, 20, tzinfo=UTC)
    assert _served_refusal([LAUNCHED], {"latchSince": SINCE, "drains": 1, "at": PROOF["at"]}) is not None


def test_an_update_that_promotes_nothing_is_never_refused_by_what_region_b_did() -> None:
    for tier, mode in ((_tier("drain"), RDS), (_tier("switch-writer", "aurora-global"), "aurora-global")):
        assert _served_refusal([LAUNCHED], tier=tier, mode=mode) is None


def test_lifecycle_region_b_served_after_the_proof_and_drained_again_refuses_the_switch_writer_update() -> (
    None
):
    # What AWS recorded (a launch in region B's web tier after the proof's drain) is answered from the
    # harness's world; region B reads drained (0/0/0, reserved concurrency 0) when the update runs.
    lc = _to_the_proof()
    drained_at = region_b_quiet.proof_drained_at(lc.world.journal[DRAIN_PROOF_MARK])
    assert drained_at is not None
    lc.region_b_served.append(
        {
            "what": "web tier dr-web-asg: Launching a new EC2 instance: i-0abc",
            "at": (drained_at + timedelta(minutes=7)).isoformat(),
        }
    )
    standalone = sorted(d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None)

    [switch] = lc.run([SWITCH])[-1:]

    assert switch.refused is not None and "Launching a new EC2 instance: i-0abc" in switch.refused, (
        switch.refused
    )
    assert not switch.applied and not switch.plans
    after = sorted(d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None)
    assert after == standalone, f"promoted after region B served since the proof: {standalone} -> {after}"


def test_lifecycle_what_region_b_did_before_the_proof_s_drain_does_not_refuse() -> None:
    lc = _to_the_proof()
    drained_at = region_b_quiet.proof_drained_at(lc.world.journal[DRAIN_PROOF_MARK])
    assert drained_at is not None
    lc.region_b_served.append(
        {
            "what": "function pl-prod-payments: 9 invocation(s) in the 60 s",
            "at": (drained_at - timedelta(minutes=1)).isoformat(),
        }
    )

    [switch] = lc.run([SWITCH])[-1:]

    assert switch.refused is None and switch.applied, switch.refused or switch.errors
    _primary, dr_region = lc.regions()
    reads = [(a, region) for t, a, region in lc.syntheses[-1].invokes if t == SERVED_SINCE_READ]
    assert len(reads) == 1 and reads[0][1] == dr_region, reads
    assert reads[0][0]["functions"] and reads[0][0]["groups"], "the web tier and the function are both read"


def test_the_program_reads_region_b_s_launches_and_invocations_since_the_drain_in_region_b(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """components/program.py ``read_region_b_served_since`` against moto (its scaling activities as the
    emulator records them: automation/emulator/gaps.py), in region B: a launch and a non-zero minute
    after the moment are found, a minute before it is not."""
    from types import SimpleNamespace

    import boto3
    from moto import mock_aws

    from automation.emulator import patch_moto
    from components import program

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    region = "us-west-2"
    undo = patch_moto()
    try:
        with mock_aws():
            asg = boto3.client("autoscaling", region_name=region)
            asg.create_launch_configuration(
                LaunchConfigurationName="lc", ImageId="ami-12c6146b", InstanceType="t3.micro"
            )
            asg.create_auto_scaling_group(
                AutoScalingGroupName="web",
                LaunchConfigurationName="lc",
                MinSize=0,
                MaxSize=2,
                DesiredCapacity=0,
                AvailabilityZones=[f"{region}a"],
            )
            since = datetime.now(UTC) - timedelta(minutes=10)
            asg.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=1, DesiredCapacity=1)
            minute = since.replace(second=0, microsecond=0)
            boto3.client("cloudwatch", region_name=region).put_metric_data(
                Namespace="AWS/Lambda",
                MetricData=[
                    {
                        "MetricName": "Invocations",
                        "Dimensions": [{"Name": "FunctionName", "Value": "pay"}],
                        "Value": v,
                        "Timestamp": t,
                    }
                    for t, v in ((minute - timedelta(minutes=1), 5.0), (minute + timedelta(minutes=3), 2.0))
                ],
            )
            served = program.read_region_b_served_since(
                SimpleNamespace(dr_region=region),  # type: ignore[arg-type]
                ["web"],
                ["pay"],
                since,
            )
    finally:
        undo()
    said = [s.what for s in served]
    assert len(said) == 2 and said[0].startswith("web tier web: Launching a new EC2 instance: i-"), said
    assert said[1] == "function pay: 2 invocation(s) in the 60 s", said


def test_a_read_aws_refuses_refuses_the_promotion_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from botocore.exceptions import ClientError

    from components import program

    def denied(*_args: object) -> list[Served]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeScalingActivities")

    monkeypatch.setattr(program.region_b_quiet, "served_since", denied)
    with pytest.raises(FailoverRefused) as refused:
        program.read_region_b_served_since(
            SimpleNamespace(dr_region="us-west-2"),  # type: ignore[arg-type]
            ["web"],
            ["pay"],
            datetime.now(UTC),
        )
    said = str(refused.value)
    assert "\n" not in said and "AccessDenied" in said and "autoscaling:DescribeScalingActivities" in said, (
        said
    )
