"""break30: the switch-writer update's live read of region B (break27 B27-2, fixb272) and break29's fixes,
attacked.

Invariants (docs/safety.md): *one writer*, and *nothing acknowledged is lost*: on a planned change the
writer moves only at zero lag measured after writes stopped. The rds-replica ``dr:failback switch-writer``
update promotes region A's failback replica, which keeps only what had replicated when it is promoted ("A
promoted read replica ... can't be made a read replica again":
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). The moto world and
helpers of tests/automation/test_break27.py (the runbook's failover, ``replicate`` and ``drain`` as the dr
stack applies them, the zero-lag proof, and the program's refusals in components/program.py's order, with
region B's web tier and functions read from AWS); the lifecycle harness of
tests/components/test_region_b_serving.py for the program's own live read (autoscaling.getAmiIds by tag
filters, then getGroup).

Each finding is a strict xfail: it fails for the reason its ``reason`` states until the product is fixed.
B30-1 is fixed (components/region_b_serving.py ``refuse_promotion_after_region_b_served``, from AWS's
records since the proof's drain: lambdas/failover/region_b_quiet.py), with its controls below it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from automation import iam, iam_updates
from automation.iam import INVOKE_ACTIONS
from automation.lifecycle import Lifecycle, asg_capacity
from components.program import SERVED_SINCE_READ
from lambdas.failover import drain_proof
from lambdas.failover.context import RunbookContext
from lambdas.failover.journal import DRAIN_PROOF_MARK
from tests.automation.test_break24 import _iac_drain, _journal
from tests.automation.test_break27 import _promotion_refusal, _serve_region_b
from tests.automation.test_drain_proof import PARAMS, _drained, _lag
from tests.components.test_region_b_serving import SWITCH, _to_the_proof
from tests.lambdas.failover import conftest as _fixtures
from tests.lambdas.failover.harness import ShiftedClock, clients_for
from tests.lambdas.failover.world import REGION_B, World

aws = _fixtures.aws
fast_backoff = _fixtures.fast_backoff
health = _fixtures.health
make_world = _fixtures.make_world


def test_region_b_served_after_the_proof_then_drained_by_hand_still_refuses_the_promotion(
    make_world: Callable[..., World],
) -> None:
    """Nothing acknowledged is lost. The proof (drain_proof.py) is zero lag measured *after* region B
    stopped taking writes; the fixb272 live read sees region B serving only while it serves. Region B
    scaled up by hand after the proof (the B27-2 threat: "scaled or unthrottled by hand after the proof,
    which nothing withdraws", README "Failing back") takes writes; scaled down by hand again, it reads
    drained, the journal keeps the old proof for the same drain, and the promotion goes. What region B
    acknowledged while it served is in region A's replica only if replication caught up, which nothing
    measured: the cross-region replica's lag is asynchronous and has no bound
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Monitoring.html), and the
    promotion keeps only what had replicated. Web tier instances scaled in still finish their requests for
    the target group's deregistration delay (300 s here) before they terminate
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-attributes.html#deregistration-delay),
    which the proof waits out (lossless.DRAIN_SECONDS) and the live read does not."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    clients = clients_for(world, clock=ShiftedClock())
    drain_proof.prove_drain(RunbookContext.from_dict(world.context), clients, PARAMS)
    assert _promotion_refusal(world) is None, "proven: the promotion may go"

    _serve_region_b(world)  # by hand, after the proof: region B takes writes
    assert _promotion_refusal(world) is not None, "while it serves, the live read refuses (fixb272)"
    _iac_drain(world)  # by hand again, minutes later: 0/0/0, reserved concurrency 0, mappings off

    assert world.asg(REGION_B) == (0, 0, 0)
    refused = _promotion_refusal(world)
    assert refused is not None, (
        f"dr:failback switch-writer promotes {replica} on a proof measured before region B's last writes"
    )
    assert "\n" not in refused and "Launching a new EC2 instance" in refused, refused
    assert "latch switch-writer" in refused, refused


def _invoked(world: World, function: str, minutes_from_now: int, count: float = 3.0) -> None:
    """``Invocations`` of region B's ``function`` as Lambda publishes it when it runs (Sum per minute, only
    when not zero: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html)."""
    at = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=minutes_from_now)
    world.client("cloudwatch", REGION_B).put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "FunctionName", "Value": function}],
                "Value": count,
                "Timestamp": at,
            }
        ],
    )


def test_region_b_s_function_invoked_after_the_proof_then_throttled_again_by_hand_refuses_the_promotion(
    make_world: Callable[..., World],
) -> None:
    """Nothing acknowledged is lost (B30-1, the function's side). Region B's payments function unthrottled
    by hand after the proof runs (its invocations are recorded in ``AWS/Lambda`` ``Invocations``), then is
    throttled again: it reads drained, and its web tier launched nothing, yet it acknowledged writes the
    proof never measured."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    drain_proof.prove_drain(
        RunbookContext.from_dict(world.context), clients_for(world, clock=ShiftedClock()), PARAMS
    )
    [function, *_] = world.context["drFunctionNames"]
    lam = world.client("lambda", REGION_B)
    lam.delete_function_concurrency(FunctionName=function)  # by hand, after the proof
    # The next minute's datapoint: the world runs in compressed time, and an invocation in the proof's own
    # minute precedes its lag measurement (region_b_quiet.invocations_since).
    _invoked(world, function, minutes_from_now=1)
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)  # by hand again

    refused = _promotion_refusal(world)

    assert refused is not None, f"dr:failback switch-writer promotes {replica} after {function} took writes"
    assert f"function {function}: 3 invocation(s)" in refused and "\n" not in refused, refused


def test_the_normal_proven_path_still_promotes_invocations_before_the_drain_included(
    make_world: Callable[..., World],
) -> None:
    """Control: the proof's own path. Region B served before the drain (its failover launched its web tier,
    its function ran up to the minute before the drain); the proof is measured after the drain and nothing
    of region B launched or ran since: the promotion goes, and the proof records when it saw the drain."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 60)])
    for function in world.context["drFunctionNames"]:
        _invoked(world, function, minutes_from_now=-1)  # before the drain
    assert world.client("autoscaling", REGION_B).describe_scaling_activities(
        AutoScalingGroupName=world.context["drAsgName"]
    )["Activities"], "the failover launched region B's web tier: AWS records it"

    drain_proof.prove_drain(
        RunbookContext.from_dict(world.context), clients_for(world, clock=ShiftedClock()), PARAMS
    )

    assert _journal(world)[DRAIN_PROOF_MARK].get("drainedAt"), _journal(world)[DRAIN_PROOF_MARK]
    assert _promotion_refusal(world) is None, f"the proven drain of region B does not promote {replica}"


def test_after_region_b_served_by_hand_latch_switch_writer_measures_anew_and_then_the_promotion_goes(
    make_world: Callable[..., World],
) -> None:
    """The refusal's remedy works: ``latch switch-writer`` run again does not answer "already proven" for a
    drain region B served after; it measures zero lag after region B is drained again, and the update then
    promotes."""
    world, _since, replica = _drained(make_world)
    _lag(world, replica, [(m, 0.0) for m in range(0, 90)])
    ctx = RunbookContext.from_dict(world.context)
    clients = clients_for(world, clock=ShiftedClock())
    drain_proof.prove_drain(ctx, clients, PARAMS)
    first = dict(_journal(world)[DRAIN_PROOF_MARK])
    _serve_region_b(world)
    _iac_drain(world)
    assert _promotion_refusal(world) is not None

    said = drain_proof.prove_drain(ctx, clients, PARAMS)

    again = _journal(world)[DRAIN_PROOF_MARK]
    assert "already proven" not in said and "measured after the drain" in said, said
    assert again["drainedAt"] > first["drainedAt"], (first, again)
    assert _promotion_refusal(world) is None, _promotion_refusal(world)


def _retag(group: dict[str, Any], key: str, value: str) -> None:
    """Change one tag of a live Auto Scaling group (CreateOrUpdateTags by hand, or a tag-compliance tool:
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateOrUpdateTags.html)."""
    group["tags"] = [dict(t, value=value) if t.get("key") == key else t for t in group.get("tags") or []]


def test_a_serving_web_tier_the_tag_filter_misses_still_refuses_the_promotion() -> None:
    """One writer. The live read's filters are ``tag:Application``, ``tag:Environment`` and
    ``tag:StackRole`` with the stack's values, ANDed
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Filter.html); a group whose
    ``StackRole`` tag was rewritten (here to ``DR``: tag values are case-sensitive) is not returned, and the
    program then judges no group at all, where the stack's state holds exactly one web tier group in
    region B. Scaled up by hand after the proof (the B27-2 threat), it serves and takes writes while the
    update promotes region A's replica."""
    lc: Lifecycle = _to_the_proof()
    dr_asg = lc.live("dr", "aws:autoscaling/group:Group", "dr-web-asg")
    assert dr_asg is not None and asg_capacity(dr_asg) == 0
    _retag(dr_asg, "StackRole", "DR")
    dr_asg.update(minSize=1, maxSize=4, desiredCapacity=2)  # a console scale-up after the proof
    standalone = sorted(d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None)

    [switch] = lc.run([SWITCH])[-1:]

    after = sorted(d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None)
    assert switch.refused is not None and after == standalone, (
        f"a writer was promoted while region B's web tier serves at 1/2/4: {standalone} -> {after}"
    )


def test_the_deploy_role_may_make_every_call_of_the_live_function_read() -> None:
    """The switch-writer update must be able to make its live read of region B's payments function with the
    deploy role (automation/iam.py). The provider's data source, without ``qualifier``, resolves the latest
    published version (ListVersionsByFunction) and passes it as GetFunction's Qualifier; GetFunction answers
    no ``Concurrency`` for a qualified function, so the data source then calls GetFunctionConcurrency
    (hashicorp/terraform-provider-aws#43711, fixed by #43753; before it, the data source answered -1 for
    such a function, which the program reads as "can run": a drained function refused for ever). The
    program does not publish versions, but one published by hand or by another tool (CodeDeploy, a
    console "Publish new version") is enough. GetFunctionConcurrency is authorized on the function
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html)."""
    assert "lambda:GetFunctionConcurrency" in INVOKE_ACTIONS["aws:lambda/getFunction:getFunction"]


def test_the_deploy_role_may_read_what_region_b_did_since_the_proof() -> None:
    """IAM stays true: the rds-replica switch-writer update reads region B's scaling activities and its
    function's invocations (components/program.py ``read_region_b_served_since``), so ``iam --for deploy``
    (made from the documented updates: automation/iam_updates.py) grants both, and an update that promotes
    nothing (aurora-global) makes no such read."""
    rds = iam_updates.deploy_syntheses({"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}})
    reads = [
        (s.config.get("dr:failback"), region)
        for s in rds
        for t, _a, region in s.invokes
        if t == SERVED_SINCE_READ
    ]
    assert reads and all(phase == "switch-writer" for phase, _ in reads), reads
    actions = {
        a
        for d in iam.deploy_policies(rds, "210987654321")
        for st in d["Statement"]
        for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    }
    assert {"autoscaling:DescribeScalingActivities", "cloudwatch:GetMetricData"} <= actions
