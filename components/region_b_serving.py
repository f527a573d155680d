"""Region B's web tier and function as AWS has them, when the dr update would promote region A's failback
instance.

rds-replica ``dr:failback switch-writer`` promotes region A's failback replica on the zero-lag proof that
``python -m automation latch switch-writer`` wrote (components/failover.py
``refuse_unproven_failback_promotion``). The proof says region B was drained *when it was measured*; the
update plans against the stack's state, which says region B is drained and is not refreshed ("pulumi up"
diffs against the last recorded state unless ``--refresh``:
https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/). Region B's web tier given capacity after the
proof by anything that is not the runbook (the runbook's ``scale_web_tier`` withdraws the proof) is in
neither: the promotion would then leave two writers, and what region B acknowledged since the proof would
be lost (break27 B27-2). So the program reads region B's web tier and function live before any
resource (components/program.py ``read_region_b_serving``) and :func:`refuse_promotion_while_region_b_serves`
judges them, with the proof's own notion of drained (lambdas/failover/context.py ``Capacity.serving``,
``function_serving``).

Region B that served after the proof and was drained again by hand reads drained now: so the program also
reads what AWS recorded since the proof's drain (``drainedAt``), the web tier's scaling activities and the
function's ``Invocations`` (lambdas/failover/region_b_quiet.py, components/program.py
``read_region_b_served_since``), and :func:`refuse_promotion_after_region_b_served` refuses when region B
could take writes since (break30 B30-1).

What it does not close: the read is made when the program runs, before the update's resources; region B
scaled up after the read and before PromoteReadReplica completes is not seen; nor are invocations in the
minutes before the read that CloudWatch has not published yet (region_b_quiet.py). That window is the
update's plan-to-promotion time (seconds to minutes), not the hours between the proof and the update.
Region B's web tier and its payments function (the one the proof checks: the runbook's
``drFunctionNames``) are read; its event source mapping is not (the provider has no invoke for a
mapping's state), so a mapping enabled by hand after the proof is still judged only by the proof.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.failover import (
    JOURNAL_DRAIN_PROVEN,
    DesiredTier,
    FailoverRefused,
    Latch,
    promotes_failback_instance,
)
from lambdas.failover.context import Capacity as GroupCapacity
from lambdas.failover.context import function_serving
from lambdas.failover.region_b_quiet import Served, proof_drained_at

GROUP_TAGS = ("Application", "Environment", "StackRole")
"""The tags that find the dr stack's web tier among region B's Auto Scaling groups. The group is
auto-named, so its name is not known before the update; the program tags it with the stack's tag map
(components/compute.py: Auto Scaling groups take ``tags`` blocks, not the provider's default tags), and
these three name the application, its environment and the stack's role."""


@dataclass(frozen=True)
class GroupSeen:
    """One Auto Scaling group as ``DescribeAutoScalingGroups`` has it: its name and sizes."""

    name: str
    min: int
    desired: int
    max: int

    @property
    def serving(self) -> bool:
        """Whether it can take requests: the zero-lag proof's notion (``Capacity.serving``)."""
        return GroupCapacity(self.min, self.desired, self.max).serving

    def describe(self) -> str:
        return f"web tier {self.name} at {self.min}/{self.desired}/{self.max} (min/desired/max)"


@dataclass(frozen=True)
class FunctionSeen:
    """One of region B's functions as ``GetFunction`` has it: its reserved concurrency (-1: unreserved)."""

    name: str
    reserved_concurrency: int | None

    @property
    def serving(self) -> bool:
        """Whether it can run: the zero-lag proof's notion (``function_serving``)."""
        return function_serving(self.reserved_concurrency)

    def describe(self) -> str:
        return f"function {self.name} at reserved concurrency {self.reserved_concurrency} (drained: 0)"


def group_filters(tags: dict[str, str]) -> dict[str, str]:
    """The ``DescribeAutoScalingGroups`` filters that find the dr stack's web tier, filter name to value:
    ``tag:<key>`` filters, joined with AND (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Filter.html)."""
    return {f"tag:{key}": tags[key] for key in GROUP_TAGS}


def refuse_promotion_while_region_b_serves(
    tier: DesiredTier,
    latch: Latch,
    database_mode: str,
    groups: Sequence[GroupSeen],
    functions: Sequence[FunctionSeen] = (),
) -> None:
    """Raise :class:`FailoverRefused` (one line) when this update promotes region A's failback instance
    (:func:`components.failover.promotes_failback_instance`) while one of region B's web tier groups
    ``groups`` or its functions ``functions``, read live, can serve. docs/safety.md: one writer; nothing
    acknowledged is lost."""
    if not promotes_failback_instance(tier, latch, database_mode):
        return
    if not groups:
        # The dr stack declares its web tier group in every tier, so none found means the read missed it
        # (its tags changed by hand), not that region B is drained (break30 B30-2).
        raise FailoverRefused(
            "dr:failback switch-writer is refused: no Auto Scaling group in region B carries the dr stack's "
            f"web tier tags ({', '.join(GROUP_TAGS)}), so whether region B serves cannot be told, and promoting "
            "region A's failback replica while it does would leave two writers. Put the tags back on the group "
            "(`pulumi up --refresh -s dr` with dr:failback drain restores them), run `python -m automation latch "
            "switch-writer --outputs runbook.json`, then this update."
        )
    serving: list[GroupSeen | FunctionSeen] = [*(g for g in groups if g.serving)]
    serving += [f for f in functions if f.serving]
    if not serving:
        return
    raise FailoverRefused(
        f"dr:failback switch-writer is refused: region B serves in AWS ({'; '.join(g.describe() for g in serving)}) "
        "although the stack's state and the zero-lag proof say it is drained, so promoting region A's failback "
        "replica now would leave two writers and lose what region B acknowledged since the proof. Drain it "
        "again with `pulumi up --refresh -s dr` and dr:failback drain, then run `python -m automation latch "
        "switch-writer --outputs runbook.json`, then this update."
    )


def refuse_promotion_after_region_b_served(
    tier: DesiredTier,
    latch: Latch,
    database_mode: str,
    proof: Mapping[str, Any] | None,
    served: Sequence[Served],
) -> None:
    """Raise :class:`FailoverRefused` (one line) when this update promotes region A's failback instance
    while AWS's records say region B could take writes after the proof's drain (``served``: its web tier's
    launches and its function's invocations since then, lambdas/failover/region_b_quiet.py), or the proof
    names no readable drain time. docs/safety.md: nothing acknowledged is lost; the proof measured zero lag
    for what region B acknowledged before its drain, and nothing measured what it acknowledged after it
    (break30 B30-1: served by hand after the proof, then drained again by hand, it reads drained now)."""
    if not promotes_failback_instance(tier, latch, database_mode):
        return
    moment = None if proof is None else proof_drained_at(proof)
    if proof is not None and moment is not None and not served:
        return
    if moment is None:
        seen = f"the zero-lag proof ({JOURNAL_DRAIN_PROVEN}) names no readable drain time"
    else:
        shown = "; ".join(s.describe() for s in served[:3])
        more = f"; and {len(served) - 3} more" if len(served) > 3 else ""
        seen = (
            f"region B could take writes after the zero-lag proof's drain at {moment:%Y-%m-%d %H:%M:%S} UTC "
            f"({shown}{more})"
        )
    raise FailoverRefused(
        f"dr:failback switch-writer is refused: {seen}, although it reads drained now; the proof measured "
        "zero lag before those writes, so promoting region A's failback replica now could lose what region B "
        "acknowledged since. Keep region B drained and run `python -m automation latch switch-writer "
        "--outputs runbook.json` again (it measures zero lag anew after this drain), then this update."
    )
