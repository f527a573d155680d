"""break26: findings against int26 in the lifecycle harness (automation/lifecycle.py), the model the
lifecycle tests judge the program by. Each test is the failing evidence of one finding, marked
xfail(strict=True) until it is fixed; the runbook's real behaviour in the same state is pinned by
tests/automation/test_break26.py (moto world, the product's unmodified runbook and CLI)."""

from __future__ import annotations

from automation.lifecycle import Action, Lifecycle, Runbook, final_violations
from automation.lifecycle_scenarios import deploy, runbook_failover

RDS = "rds-replica"


def test_b26_1_the_harness_refuses_latch_activate_and_the_failover_after_a_runbook_failback_as_the_runbook_does() -> (
    None
):
    # one writer / nothing lost (docs/safety.md "Protected again, or refuse"). After the runbook's failback,
    # region A's <primary> is the promoted replica of region B's instance (rename to replace, tagged with the
    # failback stamp; tags survive the promotion: "A promoted read replica ... can't be made a read replica
    # again", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html), and region
    # B's instance is a standalone copy frozen at that promotion until `pulumi up -s dr` re-seeds it. The
    # product refuses both a declared failover (automation/latch_cli.py activate: region_a_took_the_writer_back)
    # and the runbook's failover (fencing._refuse_unprotected: the stamp on a standalone <primary> no earlier
    # than region B's instance) before anything changes. The harness must model the same refusals, or the
    # lifecycle scenarios judge a system that serves stale data as fine.
    lc = Lifecycle()
    lc.run(
        [
            *deploy(RDS),
            *runbook_failover(),
            Runbook("failback", "runbook failback (completed; region B not re-seeded yet)"),
            Runbook("activate", "latch activate before the re-seed"),
            Runbook("failover", "the runbook's failover after latch activate"),
        ]
    )
    activate = next(r for r in lc.results if r.label.startswith("latch activate before the re-seed"))
    failover = next(
        r for r in lc.results if r.label.startswith("the runbook's failover after latch activate")
    )
    served = [f"step {r.index} ({r.label}): {v}" for r in lc.results for v in r.violations]
    assert (activate.refused is not None and not activate.applied) and (
        failover.refused is not None and not failover.applied
    ), (
        f"the harness's latch activate refused={activate.refused!r} (latch now {lc.latch_value()!r}) and its "
        f"failover refused={failover.refused!r}; the product refuses both. Invariant violations the harness "
        f"reported meanwhile: {served}"
    )


def test_b26_3_switch_writer_after_a_failover_that_undid_the_drain_does_not_leave_two_writers() -> None:
    # one writer / nothing lost (docs/safety.md). The rds-replica `dr:failback switch-writer` update promotes
    # region A's failback instance (removing replicate_source_db: the provider's aws_db_instance docs) and
    # relies on region B being drained since the `drain` update (its record). `pulumi up` without
    # --refresh diffs against the state, not AWS ("pulumi up ... --refresh: refresh the state of the stack's
    # resources before this update": https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), so capacity
    # the runbook's failover gave region B out of band (scale_web_tier, enable_functions) is not in the plan,
    # and the promotion waits only for the record (written ahead: PilotLightRegion._failback_record).
    from automation.lifecycle import RegionA, Up, asg_capacity
    from automation.lifecycle_scenarios import declared_failover

    lc = Lifecycle()
    phases = [
        Up("dr", f"IaC failback phase {p}", {"dr:active": True, "dr:failback": p})
        for p in ("replicate", "drain")
    ]
    lc.run(
        [
            *deploy(RDS),
            *declared_failover(RDS),
            *phases,
            RegionA(False, "region A fails again mid-failback"),
            Runbook("failover", "the runbook's failover after the IaC drain"),
            RegionA(True, "region A recovers"),
            Runbook("switch-writer", "the zero-lag proof: python -m automation latch switch-writer"),
            Up("dr", "IaC failback phase switch-writer", {"dr:active": True, "dr:failback": "switch-writer"}),
        ]
    )
    failover = next(r for r in lc.results if r.label.startswith("the runbook's failover after the IaC drain"))
    proof = next(r for r in lc.results if r.label.startswith("the zero-lag proof"))
    switch = next(r for r in lc.results if r.label.startswith("IaC failback phase switch-writer"))
    # The proof sees region B serving in AWS (the stack's state still says drained) and refuses; without
    # it the update refuses the promotion (components/failover.py refuse_unproven_failback_promotion).
    assert proof.refused is not None and "region B is not drained" in proof.refused, proof.refused
    assert switch.refused is not None and "zero-lag proof" in switch.refused, switch.refused
    dr_asg = lc.live("dr", "aws:autoscaling/group:Group", "dr-web-asg") or {}
    writers = sorted(d.ident for d in lc.world.dbs.values() if d.kind == "instance" and d.source is None)
    served = [f"step {r.index} ({r.label}): {v}" for r in lc.results for v in r.violations]
    assert switch.refused is not None or asg_capacity(dr_asg) == 0, (
        f"the failover after the drain: refused={failover.refused!r}; switch-writer applied={switch.applied} "
        f"refused={switch.refused!r}; region B's web tier after it {asg_capacity(dr_asg)}; standalone "
        f"instances {writers}; violations {served}"
    )


def test_b26_4_complete_after_a_second_cycle_s_runbook_failback_is_refused_as_in_the_first() -> None:
    # one writer / ends protected (docs/safety.md). `dr:failback complete` declares region A's failback
    # instance of region B's current generation promoted and re-seeds region B from it; after the runbook's
    # failback (no phase recorded, no failback instance made) that instance is not region A's writer
    # (test_lifecycle.py test_complete_without_the_dr_stacks_route_back_is_refused_and_the_system_ends_protected).
    # automation/cloud.py _failback_phase: complete = set dr:failback complete and dr:active false, up dr,
    # remove dr:failback, up primary; the routine dr update that would rewrite the record comes later, if ever.
    from automation.lifecycle import Up
    from automation.lifecycle_scenarios import PRIMARY_FOLLOWS_WRITER, declared_failover

    cycle_1 = []
    for p in ("replicate", "drain", "switch-writer", "route-back"):
        if p == "switch-writer":
            cycle_1.append(Runbook("switch-writer", "the zero-lag proof: latch switch-writer"))
        if p == "route-back":
            cycle_1.append(Runbook("release", "latch release"))
        cycle_1.append(Up("dr", f"IaC failback phase {p}", {"dr:active": True, "dr:failback": p}))
        if p == "switch-writer":
            cycle_1.append(Up("primary", PRIMARY_FOLLOWS_WRITER))
    lc = Lifecycle()
    lc.run(
        [
            *deploy(RDS),
            *declared_failover(RDS),
            *cycle_1,
            Up("dr", "cloud failback complete: up dr", {"dr:active": False, "dr:failback": "complete"}),
            Up("primary", "cloud failback complete: up primary"),
            *runbook_failover(),
            Runbook("failback", "the second cycle's runbook failback"),
            Up("dr", "dr:failback complete again", {"dr:active": False, "dr:failback": "complete"}),
            Up("primary", "routine update of the primary stack"),
        ]
    )
    earlier = [(r.label, r.refused, r.errors) for r in lc.results[:-2] if r.refused or r.errors]
    assert earlier == [], earlier  # the documented procedure, every step accepted
    stray = lc.results[-2]
    writer = (lc.outputs.get("primary") or {}).get("dbInstanceId")
    served = [f"step {r.index} ({r.label}): {v}" for r in lc.results for v in r.violations]
    creates = [(p.type, p.name) for p in stray.plans if p.stateful and p.action is Action.CREATE]
    assert stray.refused is not None and not stray.applied, (
        f"`dr:failback complete` after the second cycle's runbook failback applied={stray.applied}; "
        f"stateful creates {creates}; then the primary stack's writer is {writer!r}; violations {served}; "
        f"at the end {[str(v) for v in final_violations(lc)]}"
    )


def test_b26_5_the_writer_move_waits_for_region_b_s_drain_in_the_same_update() -> None:
    # nothing acknowledged is lost (docs/safety.md): "Writes stop in B one phase before A's replica is
    # promoted" (components/failover.py _decide). The engine orders operations only along dependencies
    # (https://www.pulumi.com/docs/iac/concepts/resources/options/dependson/) and otherwise runs them in
    # parallel (pulumi up --parallel, default unbounded: https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/).
    from tests.components.test_failback_record import ASG, FUNCTION, INSTANCE, MAPPING, _dr

    s = _dr(RDS, "switch-writer")
    (failback,) = [r for r in s.resources if r.type == INSTANCE and r.name.startswith("dr-data-db-failback")]
    drain = [
        r
        for r in s.resources
        if r.stack == "dr"
        and (r.type in (ASG, MAPPING) or (r.type == FUNCTION and r.name.startswith("dr-api-")))
        and r.name.startswith("dr-")
    ]
    assert {r.type for r in drain} >= {ASG, MAPPING, FUNCTION}, sorted({r.type for r in drain})
    missing = [r.name for r in drain if r.urn not in failback.depends_on]
    assert missing == [], f"region A's promotion does not wait for region B's drain of {missing}"
    # No cycle: nothing the promotion waits for may itself wait, however indirectly, for the promotion
    # (the engine refuses a cyclic graph; the Python SDK would wait forever on it).
    by_urn = {r.urn: r for r in s.resources}

    def reaches_promotion(urn: str) -> bool:
        seen, todo = set[str](), [urn]
        while todo:
            current = todo.pop()
            if current == failback.urn:
                return True
            if current not in seen and current in by_urn:
                seen.add(current)
                todo.extend(by_urn[current].depends_on)
        return False

    cyclic = [by_urn[u].name for u in failback.depends_on if u in by_urn and reaches_promotion(u)]
    assert cyclic == [], f"{cyclic} wait for region A's promotion, which waits for them (a cycle)"
