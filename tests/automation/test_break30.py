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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from automation.iam import INVOKE_ACTIONS
from automation.lifecycle import Lifecycle, asg_capacity
from lambdas.failover import drain_proof
from lambdas.failover.context import RunbookContext
from tests.automation.test_break24 import _iac_drain
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


@pytest.mark.xfail(
    strict=True,
    reason=(
        "B30-1 open: the switch-writer update judges region B only as it is at the read (components/"
        "region_b_serving.py); region B given its web tier and function back by hand after the proof, taking "
        "writes, then drained again by hand before the update, passes: the proof measured zero lag before "
        "those writes and nothing measured it after them, yet the update promotes region A's replica"
    ),
)
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
