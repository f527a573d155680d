"""break33: this session's fixes at a0e14bc (B32-1/B32-7 ``region_a_answering``, B32-6 ``web_tier_cannot_stop``)
attacked in the safety model.

Each finding is a strict xfail naming the invariant of docs/safety.md it protects: it fails for the reason its
``reason`` states until the product is fixed. Controls (no xfail) show the schedule is otherwise sound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.rds.models import rds_backends

from automation.emulator.aws import ACCOUNT
from automation.emulator.data import Store
from tests.lambdas.failover.faults import _SCOPE, Fault, _header
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment, actor_clients

Deploy = Callable[..., Deployment]

RETURN_SECONDS = 480
"""How long region A is back before the verdict (tests/safety/test_latch_after_failover.py): the fence's
grace (150 s) and Route 53's (180 s) after the canary's first minute, with a margin."""


def _journal(d: Deployment) -> dict[str, Any]:
    name = f"{d.ctx.latch_parameter_name}-journal"
    return json.loads(d.world.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"])


def _everywhere(d: Deployment, fault: Fault) -> None:
    """``fault`` on every caller of AWS in the deployment (the operator's runs and the runbook Lambda the
    canary invokes), as tests/safety/test_break32.py does."""
    d.add_fault(fault)
    session = new_session()
    d.emulator.attach(session)
    fault.install(session)
    d._async_clients = actor_clients(d, session)


def _protect_region_a_instances(d: Deployment) -> list[str]:
    """Region A's web tier instances protected from scale in (the application's own choice, as AWS documents
    for instances doing work that must not be cut: "Instance scale-in protection gives you control over which
    instances Amazon EC2 Auto Scaling can terminate",
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html)."""
    asg = d.world.client("autoscaling", REGION_A)
    group = str(d.ctx.primary_asg_name)
    described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    ids = [str(i["InstanceId"]) for i in described.get("Instances", [])]
    assert ids, f"moto launched no instance in {group}"
    asg.set_instance_protection(AutoScalingGroupName=group, InstanceIds=ids, ProtectedFromScaleIn=True)
    return ids


def _failover_over_dark_region_a_then_return(d: Deployment) -> Any:
    """Region A dark; a failover completes (its fence pending, region B promoted unplanned); region A returns
    and the canary ticks for ``RETURN_SECONDS``."""
    d.op_advance(60)
    d.op_outage()
    d.op_advance(120)
    run = d.op_run("failover")
    assert run.outcome == "done", run
    assert _journal(d).get("fencePending"), "region A was dark: its fence is pending"
    d.op_recover()
    d.op_advance(RETURN_SECONDS)
    d.judge()
    return run


def test_the_canary_s_pending_fence_of_a_web_tier_it_cannot_stop_still_fences_region_a_s_functions(
    deploy: Deploy,
) -> None:
    """rds-replica. Region A's web tier instances are protected from scale in. Region A goes dark; a failover
    completes with its fence pending (unplanned promotion: region A's old primary is a standalone writer once it
    answers again). Region A returns; the canary asks the runbook Lambda to complete the pending fence
    (docs/safety.md one_writer: "A region that was unreachable when a failover should have fenced it is fenced
    when it answers again"). ``fence_region_a`` calls ``_require_web_tier_can_stop`` first and raises
    ``WebTierCannotStop`` (retryable=False) before its Lambda calls: reserved concurrency and event source
    mappings are left as they were, every minute, for as long as the protection stands. Its remedy ("then run
    the failover again") is a pre-promotion remedy. Before B32-6 (c46a4b2) the same pending fence throttled
    the functions and disabled their mappings (the protected instances stayed in service either way: scale in
    cannot stop them). Refusing before any change is right before promotion (nothing has moved yet); after it,
    withholding the part of the fence that works only adds a second writer's function path.

    The emulator does not honour scale-in protection (its web tier follows the desired capacity), so the
    assertion is on the functions, the part of region A the refusal withholds."""
    d = deploy("rds-replica")
    _protect_region_a_instances(d)
    _failover_over_dark_region_a_then_return(d)

    concurrency = d.world.concurrency(REGION_A)
    state = (
        f"journal fencePending={_journal(d).get('fencePending')!r}; region A concurrency {concurrency}, "
        f"mappings {d.world.mappings(REGION_A)}; violations {[str(v) for v in d.violations]}"
    )
    assert not d.emulator.functions_serving(REGION_A), state


def test_control_the_canary_s_pending_fence_fences_region_a_without_protected_instances(
    deploy: Deploy,
) -> None:
    """The same schedule without the protection: the canary's fence completes and region A takes nothing."""
    d = deploy("rds-replica")
    _failover_over_dark_region_a_then_return(d)
    assert not d.emulator.functions_serving(REGION_A), d.world.concurrency(REGION_A)
    assert not _journal(d).get("fencePending")
    assert not [v for v in d.violations if v.invariant == "one_writer"], [str(v) for v in d.violations]


def _rds_outage_in_region_a(d: Deployment, *, database_dead: bool) -> None:
    """Region A's RDS API stops answering (connection errors, for every caller). With ``database_dead`` its
    database is down too (an RDS service event in region A: the instance takes no write, replication out of it
    stops); region A's Auto Scaling and Lambda APIs answer throughout (AWS isolates services from each other:
    https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/aws-infrastructure.html)."""
    _everywhere(d, Fault(service="rds", region=REGION_A, unreachable=True))
    if database_dead:
        ident = str(d.ctx.primary_db_instance_id)
        rds_backends[ACCOUNT][REGION_A].databases[ident].status = "failed"
        d.emulator.partition(REGION_A, REGION_B, Store.DATABASE)


def test_a_forced_failover_over_an_rds_outage_in_region_a_whose_other_apis_answer(deploy: Deploy) -> None:
    """rds-replica. Writes replicated, then region A's RDS is out: its API refuses connections and its database
    is down (status failed, replication out of it stopped); its Auto Scaling and Lambda APIs answer. The
    operator forces a failover (the disaster the pilot light is for). ``fence_primary`` reaches region A (its
    Auto Scaling and Lambda calls succeed) and stamps its writes stopped, so ``_promote_database`` takes the
    lossless path; the replica's ``ReplicaLag`` (PostgreSQL: seconds since the last replay) only grows, and the
    wait's ``source_dark`` (``_region_a_dark_long_enough`` -> ``region_a_answering``) answers "autoscaling"
    every poll. At c46a4b2 the RDS endpoint's connection errors for ``DARK_CONFIRM_SECONDS`` made the run
    promote unplanned (docs/safety.md converges, B10-4; this test passes there); at a0e14bc it waits out its
    budget (``LagTimeout``, the marker "not committed": no writable database) and stops, and its
    ``roll_back_fence`` relaunches region A's web tier over the dead database and fails ``VerifyTimeout``
    (region A never serves as the writer): region B still a replica, no region serves a writer while region A's
    database is out, and no run of the runbook can change that (``allowDataLoss`` is not reachable from the
    CLI). Fixed: the wait's ``source_dark`` asks about the source database (``darkness.source_database_dark``:
    its RDS API refusing for ``DARK_CONFIRM_SECONDS`` and the marker function finding it unreachable)."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(50)
    d.op_advance(120)
    _rds_outage_in_region_a(d, database_dead=True)
    d.op_advance(60)
    run = d.op_run("failover", params={"force": True})
    state = (
        f"run {run.outcome}: {getattr(run, 'detail', '')!s:.300}; B writable "
        f"{d.emulator.database_writable(REGION_B)}"
    )
    assert run.outcome == "done", state
    assert d.emulator.database_writable(REGION_B), state


class _BlipFromTheFence(Fault):
    """Every region-A endpoint fails to connect for ``times`` requests from the fence's first call on (a
    blip on the runbook's side of the network: its own DNS or NAT, a laptop's Wi-Fi, cuts every region-A
    endpoint at once for a few seconds). Requests before that call pass."""

    started: bool = False

    def __call__(self, request: Any, event_name: str, **kw: Any) -> Any:
        if not self.started:
            _, service, operation = event_name.split(".", 2)
            if (service, operation) != ("auto-scaling", "DescribeAutoScalingGroups"):
                return None
            match = _SCOPE.search(_header(request, "Authorization"))
            if not match or match.group(1) != REGION_A:
                return None
            self.started = True
        return super().__call__(request, event_name, **kw)


def test_a_blip_on_every_region_a_endpoint_at_the_fence_makes_a_forced_failover_promote_unplanned(
    deploy: Deploy,
) -> None:
    """tests/safety/test_break32.py's B32-1 blip schedule (its control: the same test with ``blip=False``), the
    blip widened from DescribeAutoScalingGroups to every region-A endpoint: 8 requests fail to connect from
    the fence's first call on (the fence's DescribeAutoScalingGroups, 2 attempts, then ``region_a_answering``'s
    three looks, 2 attempts each: PRIMARY_SETTINGS ``max_attempts=2``), a few virtual seconds; region A
    answers before and after. ``fence_primary`` marks the fence pending, ``_promote_database`` takes the
    change for unplanned and promotes once the switch took effect, with the burst's tail unapplied. The
    lossless wait confirms darkness for ``DARK_CONFIRM_SECONDS`` (B21b-1); the fence's decision does not.
    At a0e14bc: promoted at 12:03:10, 8673 acknowledged writes missing from the new writer (no_loss).
    At c46a4b2 the same holds with the blip on the fence's call alone (B32-1): B32-1 narrowed it, did not close it.
    Fixed: the fence's "region A unreachable" is confirmed for ``DARK_CONFIRM_SECONDS`` (``darkness.look``,
    journal ``FENCE_DARK_MARK``); the fence looks again after the blip, reaches region A and the change stays
    lossless."""
    d = deploy("rds-replica")
    d.op_advance(120)
    blip = _BlipFromTheFence(region=REGION_A, unreachable=True, times=8)
    d.add_fault(blip)
    d.op_write(10_000)  # ~500 s of replica apply (Timings.rds_apply 0.05 s a write), past the 300 s drain
    run = d.op_run("failover", params={"force": True})
    assert blip.injected == 8, blip.seen[-12:]
    assert d.emulator.reachable(REGION_A), "region A never went dark"
    d.op_advance(181)
    d.judge()
    assert not d.violations, [f"run {run.outcome}: {run.detail:.200}", *map(str, d.violations)]
