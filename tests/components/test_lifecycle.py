"""The program across the whole lifecycle (issue 13): every ``pulumi up`` from deploy through failover,
failback and the next failover, planned against the state the previous one left (automation/lifecycle.py).

At every step: no stateful resource is replaced or deleted, nothing the provider or AWS refuses is
planned, every input on a stateful type is classified, traffic/latch/capacity agree and point at a
region with capacity and the writer, and the replica-lag alarm means something. Each finding of the
review is its own test below; those not fixed yet are strict xfails naming the finding.
"""

from __future__ import annotations

import functools

import pytest

from automation.lifecycle import Action, Lifecycle, Runbook, StepResult, Up, final_violations
from automation.lifecycle_scenarios import (
    PRIMARY_FOLLOWS_WRITER,
    declared_failover,
    deploy,
    runbook_failover,
    steps_for,
)
from automation.lifecycle_tables import REPLACEMENT
from lambdas.failover import names

AURORA, RDS = "aurora-global", "rds-replica"
PLAN = {
    "no-stateful-replace",
    "no-stateful-delete",
    "no-stateful-rename",
    "classified-inputs",
    "provider-accepts",
}
TRAFFIC = {"traffic-has-capacity", "traffic-follows-writer", "latch-holds-traffic"}
LAG = {"lag-alarm-meaningful"}

# The findings, as xfail reasons. F* come from the review; E* were found by the harness.
F1_LATCH = (
    "F1 latch through pulumi up: the latch is created standby with ignore_changes=[value]; the runbook writes "
    "active out of band; at complete the program sends standby again, the state still holds standby, so there is "
    "no diff, the latch stays active, the canary keeps the switch thrown and region B is scaled to zero under the "
    "traffic (owner: the runbook's latch format)"
)
F2_RDS_COMPLETE = (
    "F2 rds-replica after complete: removing dr:failback re-adds replicate_source_db on the promoted instance "
    "(refused) and deletes region A's new writer"
)
F3_ENGINE = "F3 Aurora engine version pinned on the global cluster, both clusters and every instance without ignore_changes"
F3_FAILOVER_INSTANCE = "F3 the runbook's <cluster>-failover-<token> instance never enters Pulumi state"
F4_LAG = (
    "F4 the replica-lag alarm (treat_missing_data=breaching) sits in ALARM once the DR database is promoted"
)
F5_SWITCH_WRITER = (
    "F5 the Aurora switch-writer failback phase does nothing to the database (owner: the runbook)"
)
E1_RDS_REPROMOTE = (
    "E1 rds-replica IaC failback after a runbook failover: the state still says replica, so the first update removes "
    "replicate_source_db and the provider calls PromoteReadReplica on an instance the runbook already promoted "
    "(InvalidDBInstanceState); needs pulumi up --refresh or a live read of the instance"
)
E2_RUNBOOK_FAILBACK = (
    "E2 runbook failback after a declared failover: the runbook releases the switch metric, but dr:active true keeps "
    "the switch alarm in ALARM (threshold 0, missing data breaching): traffic stays in region B, scaled to zero, until "
    "the next pulumi up with dr:active false"
)
E3_AURORA_DECLARED = "E3 Aurora dr:active true does not promote: until the runbook's promote step region B takes traffic without a writer"
E4_RESEED = (
    "E4 rds-replica after a failback: unless the dr update re-seeds it, region B's promoted instance stays "
    "standalone, so the system is not protected again, the next failover promotes a stale copy, and the next failback's "
    "replica identifier is taken by region A's released writer"
)


@functools.cache
def run(scenario: str, mode: str) -> Lifecycle:
    lc = Lifecycle()
    lc.run(steps_for(scenario, mode))
    return lc


def step(lc: Lifecycle, label: str) -> StepResult:
    matches = [r for r in lc.results if r.label.startswith(label)]
    assert matches, f"no step {label!r} in {[r.label for r in lc.results]}"
    return matches[0]


def violations(lc: Lifecycle, kinds: set[str], *, until: str | None = None) -> list[str]:
    out = []
    for r in lc.results:
        if until is not None and r.label.startswith(until):
            break
        out += [f"step {r.index} ({r.label}): {v}" for v in r.violations if v.invariant in kinds]
    return out


def case(scenario: str, mode: str, *reasons: str) -> object:
    marks = [pytest.mark.xfail(strict=True, reason="; ".join(reasons))] if reasons else []
    return pytest.param(scenario, mode, id=f"{scenario}-{mode}", marks=marks)


# --------------------------------------------------------------------------------------------------
# every step of every scenario


PLAN_CASES = [
    case("declared-iac", RDS),
    case("declared-iac", AURORA),
    case("runbook-iac", RDS),
    case("runbook-iac", AURORA),
    case("declared-runbook", RDS),
    case("declared-runbook", AURORA),
    case("runbook-runbook", RDS),
    case("runbook-runbook", AURORA),
    case("twice", RDS),
    case("twice", AURORA),
    case("upgrade", AURORA),
]


@pytest.mark.parametrize(("scenario", "mode"), PLAN_CASES)
def test_no_stateful_replacement_or_deletion_and_nothing_the_provider_refuses(
    scenario: str, mode: str
) -> None:
    assert violations(run(scenario, mode), PLAN) == []


TRAFFIC_CASES = [
    case("declared-iac", RDS),
    case("declared-iac", AURORA),
    # E1 refuses every IaC failback update, so region B simply stays failed over: consistent, not failed back.
    case("runbook-iac", RDS),
    case("runbook-iac", AURORA),
    case("declared-runbook", RDS),
    case("declared-runbook", AURORA),
    case("runbook-runbook", RDS),
    case("runbook-runbook", AURORA),
    case("twice", RDS),
    case("twice", AURORA),
    case("upgrade", AURORA),
]


@pytest.mark.parametrize(("scenario", "mode"), TRAFFIC_CASES)
def test_traffic_latch_and_capacity_agree_on_a_region_with_capacity_and_the_writer(
    scenario: str, mode: str
) -> None:
    assert violations(run(scenario, mode), TRAFFIC) == []


LAG_CASES = [
    case("declared-iac", RDS),
    case("declared-iac", AURORA),
    case("runbook-iac", RDS),
    case("runbook-iac", AURORA),
    case("declared-runbook", RDS),
    case("declared-runbook", AURORA),
    case("runbook-runbook", RDS),
    case("runbook-runbook", AURORA),
    case("twice", RDS),
    case("upgrade", AURORA),
]


@pytest.mark.parametrize(("scenario", "mode"), LAG_CASES)
def test_the_replica_lag_alarm_means_something_after_every_update(scenario: str, mode: str) -> None:
    assert violations(run(scenario, mode), LAG) == []


END_CASES = [
    case("declared-iac", RDS),
    case("declared-iac", AURORA),
    case("runbook-iac", RDS),
    case("runbook-iac", AURORA),
    case("declared-runbook", RDS),
    case("declared-runbook", AURORA),
    case("runbook-runbook", RDS),
    case("runbook-runbook", AURORA),
    case("twice", RDS),
    case("upgrade", AURORA),
]


@pytest.mark.parametrize(("scenario", "mode"), END_CASES)
def test_the_system_ends_protected_again(scenario: str, mode: str) -> None:
    assert [str(v) for v in final_violations(run(scenario, mode))] == []


# Where each scenario adopts a live resource with the `import` option, per mode: (resource, step).
ADOPTIONS = {
    ("runbook-runbook", RDS): ("primary-data-db-instance-rb", "routine update of the primary stack"),
    ("declared-runbook", RDS): ("primary-data-db-instance-rb", "routine update of the primary stack"),
    ("declared-iac", RDS): ("primary-data-db-instance-w1", PRIMARY_FOLLOWS_WRITER),
    ("runbook-iac", RDS): ("primary-data-db-instance-w1", PRIMARY_FOLLOWS_WRITER),
    ("runbook-iac", AURORA): ("dr-data-db-failover-instance", "IaC failback phase replicate"),
    ("runbook-runbook", AURORA): ("dr-data-db-failover-instance", "routine update: dr:active false"),
}


@pytest.mark.parametrize(("scenario", "mode"), sorted(ADOPTIONS))
def test_every_adoption_matches_the_live_resource(scenario: str, mode: str) -> None:
    # The `import` option fails unless the program's inputs match the live resource (Pulumi docs,
    # "import" resource option; automation/lifecycle_tables.py ENGINE_RULES["import-mismatch"]): the
    # program must declare what the runbook, or the stack that made it, left in AWS.
    lc = run(scenario, mode)
    name, at = ADOPTIONS[(scenario, mode)]
    adopted = [(p.name, p.action) for p in step(lc, at).plans if p.name.startswith(name)]
    assert [a for _, a in adopted] == [Action.IMPORT], f"{name} at {at!r}: {adopted}"
    assert violations(lc, {"import-matches"}) == []


@pytest.mark.parametrize(("scenario", "mode"), PLAN_CASES)
def test_no_import_mismatch_in_any_scenario(scenario: str, mode: str) -> None:
    assert violations(run(scenario, mode), {"import-matches"}) == []


def test_every_input_the_program_sets_on_a_stateful_type_is_classified() -> None:
    unclassified = set()
    for scenario, mode in [("declared-iac", RDS), ("declared-iac", AURORA), ("upgrade", AURORA)]:
        for s in run(scenario, mode).syntheses:
            for r in s.aws_resources():
                rules = REPLACEMENT.get(r.type)
                if rules is None:
                    continue
                unclassified |= {(r.type, r.name, k) for k in r.inputs if rules.classify(k) is None}
    assert sorted(unclassified) == [], "inputs on stateful types missing from automation/lifecycle_tables.py"


# --------------------------------------------------------------------------------------------------
# the review's findings, one test each


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(AURORA),
        pytest.param(RDS),
    ],
)
def test_f1_iac_failback_after_a_runbook_failover_routes_back(mode: str) -> None:
    lc = run("runbook-iac", mode)
    done = step(lc, "IaC failback phase complete")
    o = done.observation
    assert o.latch == "standby", (
        f"aws:ssm/parameter:Parameter dr-failover-latch still says {o.latch} after failback complete"
    )
    assert o.traffic == "A" and o.capacity["A"] > 0, f"after complete: {o.line()}"


def test_f1_pulumi_up_never_writes_the_latch_and_hands_traffic_back_only_once_it_is_released() -> None:
    # F1: a latch value the program wrote would be diffed against a state that never saw the runbook's write.
    # The documented IaC failback without the release: route-back and complete are refused.
    lc = Lifecycle()
    lc.run(
        [
            s
            for s in steps_for("runbook-iac", AURORA)
            if not (isinstance(s, Runbook) and s.action == "release")
        ]
    )
    for s in lc.syntheses:
        latch = s.named("dr-failover-latch") if s.stack == "dr" else None
        assert latch is None or latch.ignore_changes == ["value"], (
            f"aws:ssm/parameter:Parameter dr-failover-latch: ignore_changes {latch.ignore_changes}: {F1_LATCH}"
        )
    for phase in ("route-back", "complete"):
        r = step(lc, f"IaC failback phase {phase}")
        assert r.refused and "python -m automation latch release" in r.refused, (
            f"dr:failback {phase} under an active latch must be refused naming the release command: {r.refused}"
        )


def test_f2_rds_routine_update_after_complete_keeps_b_standalone_and_releases_a_writer() -> None:
    lc = run("declared-iac", RDS)
    routine = step(lc, "routine update: dr:failback removed")
    by_name = {p.name: p for p in routine.plans}
    assert routine.errors == [], f"{F2_RDS_COMPLETE}: {routine.errors}"
    assert "replicateSourceDb" not in by_name["dr-data-db-instance"].changed, (
        f"{F2_RDS_COMPLETE}: aws:rds/instance:Instance dr-data-db-instance is re-pointed at a source"
    )
    assert by_name["dr-data-db-failback"].action is Action.RELEASE, (
        f"{F2_RDS_COMPLETE}: aws:rds/instance:Instance dr-data-db-failback (region A's writer) must be released"
    )
    o = routine.observation
    assert o.writer == "pilotlight-production-us-east-1-db-failback" and o.traffic == "A", o.line()
    # complete lifts protect (so the engine lets it go), keeps retain_on_delete, and lists it.
    (complete,) = [s for s in lc.syntheses if "releasedOnNextUpdate" in s.outputs]
    failback = complete.named("dr-data-db-failback")
    assert (failback.protect, failback.retain_on_delete) == (False, True), (
        "aws:rds/instance:Instance dr-data-db-failback"
    )
    # ... with region B's promoted instance, which the new replica replaces (E4).
    assert complete.outputs["releasedOnNextUpdate"] == [
        {"type": "aws:rds/instance:Instance", "id": failback.inputs["identifier"]},
        {
            "type": "aws:rds/instance:Instance",
            "id": complete.named("dr-data-db-instance").inputs["identifier"],
        },
    ]
    replicate = step(lc, "IaC failback phase replicate")
    assert [p.name for p in replicate.plans if p.action is Action.CREATE and p.stateful] == [
        "dr-data-db-failback"
    ]


def test_f3_aurora_minor_upgrade_goes_through_the_global_cluster_only() -> None:
    lc = run("upgrade", AURORA)
    upgrade = step(lc, "minor upgrade")
    changed = {(p.type, p.name): p.changed for p in upgrade.plans if p.action is not Action.SAME}
    assert upgrade.errors == [], upgrade.errors
    assert ("aws:rds/globalCluster:GlobalCluster", "primary-data-db-global") in changed
    members = [
        f"{t} {n}"
        for (t, n), c in changed.items()
        if "engineVersion" in c and t != "aws:rds/globalCluster:GlobalCluster"
    ]
    assert members == [], (
        f"{F3_ENGINE}: engineVersion changed on {members} (the global cluster upgrades them)"
    )
    after = step(lc, "routine update of the dr stack after the upgrade")
    assert after.errors == [] and not [p for p in after.plans if "engineVersion" in p.changed]


def test_f3_a_headless_secondary_cannot_be_minor_upgraded_and_the_program_refuses_before_any_resource() -> (
    None
):
    """AWS refuses a minor upgrade of a secondary without an instance (aurora-global-database-upgrade.html),
    part-way through the update; the program refuses it first (components/engine_upgrade.py), from
    region B's cluster read live, naming the key and what to do (scenario "upgrade" does it)."""
    upgrade = step(run("upgrade-headless", AURORA), "minor upgrade")
    assert upgrade.errors == [] and upgrade.plans == [], "the engine reached AWS's refusal: " + str(
        upgrade.errors
    )
    assert upgrade.refused is not None, (
        "a minor upgrade with a headless secondary was not refused by the program"
    )
    for word in ("pilotlight:database.engineVersion", "16.4 -> 16.6", "drInstances", "no DB instance"):
        assert word in upgrade.refused, (word, upgrade.refused)


def test_f3_every_database_instance_is_in_a_stacks_state_after_a_runbook_failover() -> None:
    lc = run("runbook-iac", AURORA)
    assert lc.results[-1].observation.unmanaged_dbs == [], F3_FAILOVER_INSTANCE
    # Adopted by the first update after the failover (the `import` option), never created again.
    first = step(lc, "IaC failback phase replicate")
    adopted = [(p.name, p.action) for p in first.plans if p.name.startswith("dr-data-db-failover-instance")]
    assert [a for _, a in adopted] == [Action.IMPORT], (
        f"aws:rds/clusterInstance:ClusterInstance dr-data-db-failover-instance-*: {adopted}"
    )


@pytest.mark.parametrize("mode", [RDS, AURORA])
def test_f4_replica_lag_alarm_meaningful_in_every_phase(mode: str) -> None:
    lc = run("declared-iac", mode)
    # Aurora: up to switch-writer, which does not move the writer (F5, its own test).
    until = "IaC failback phase switch-writer" if mode == AURORA else None
    assert violations(lc, LAG, until=until) == [], F4_LAG
    replicate = step(lc, "IaC failback phase replicate")
    watched = [a for a in replicate.observation.lag_alarms if a.region == "us-east-1" and a.state == "OK"]
    assert watched, (
        "no replica-lag alarm watches region A's replica during failback (it decides switch-writer)"
    )


def test_f5_aurora_switch_writer_moves_the_writer_to_region_a() -> None:
    o = step(run("declared-iac", AURORA), "IaC failback phase switch-writer").observation
    assert o.writer_region == "A", (
        f"{F5_SWITCH_WRITER}: after switch-writer the writer is {o.writer} in region {o.writer_region}"
    )


def test_e1_rds_iac_failback_after_a_runbook_failover_is_accepted() -> None:
    replicate = step(run("runbook-iac", RDS), "IaC failback phase replicate")
    assert replicate.errors == [], f"{E1_RDS_REPROMOTE}: {replicate.errors}"
    # The live read keeps the state's source (ignored): the engine sends nothing for it.
    (instance,) = [p for p in replicate.plans if p.name == "dr-data-db-instance"]
    assert "replicateSourceDb" not in instance.changed, (
        f"aws:rds/instance:Instance dr-data-db-instance: {instance.changed.get('replicateSourceDb')}"
    )


@pytest.mark.parametrize("mode", [RDS, AURORA])
def test_e2_runbook_failback_after_a_declared_failover_routes_back(mode: str) -> None:
    o = step(run("declared-runbook", mode), "runbook failback").observation
    assert o.traffic == "A", f"{E2_RUNBOOK_FAILBACK}: after the runbook failback: {o.line()}"


def test_e3_aurora_declared_failover_gives_region_b_a_writer() -> None:
    o = step(run("declared-iac", AURORA), "declared failover").observation
    assert o.writer_region == "B", f"{E3_AURORA_DECLARED}: after dr:active true: {o.line()}"


def test_e4_rds_failback_protects_region_b_again() -> None:
    o = run("declared-iac", RDS).results[-1].observation
    assert o.protected, f"{E4_RESEED}: after the failback: {o.line()}"


def _dr_instances(lc: Lifecycle) -> dict[str, str]:
    """Region B's RDS instances in the dr stack's state: logical name -> identifier."""
    return {
        r.name: r.inputs["identifier"]
        for r in lc.state["dr"].values()
        if r.type == "aws:rds/instance:Instance" and r.region == "us-west-2"
    }


@pytest.mark.parametrize(
    ("scenario", "reseed_step", "writer"),
    [
        # IaC failback: `complete` re-seeds from the failback instance the same update declares.
        ("declared-iac", "IaC failback phase complete", "pilotlight-production-us-east-1-db-failback"),
        ("runbook-iac", "IaC failback phase complete", "pilotlight-production-us-east-1-db-failback"),
        # Runbook failback (rename to replace): the first standby update re-seeds from <primary>.
        ("declared-runbook", "routine update: dr:active false", "pilotlight-production-us-east-1-db"),
        ("runbook-runbook", "routine update: dr:active false", "pilotlight-production-us-east-1-db"),
    ],
)
def test_e4_the_update_after_a_failback_gives_region_b_a_new_replica_of_region_a_writer(
    scenario: str, reseed_step: str, writer: str
) -> None:
    # E4: a promoted instance cannot replicate again; the update after the failback creates the next
    # generation as a cross-region replica of region A's writer and releases (never deletes) the old one.
    lc = run(scenario, RDS)
    r = step(lc, reseed_step)
    old, new = "pilotlight-production-us-west-2-db", "pilotlight-production-us-west-2-db-g1"
    created = [
        (p.name, p.action)
        for p in r.plans
        if p.type == "aws:rds/instance:Instance" and p.action is not Action.SAME
    ]
    assert created == [("dr-data-db-instance-g1", Action.CREATE)], (
        f"{E4_RESEED}: stateful changes at {reseed_step!r}: {created}"
    )
    live = lc.world.dbs[new]
    assert (live.source, live.region, lc.world.writer) == (writer, "us-west-2", writer), (
        f"aws:rds/instance:Instance dr-data-db-instance-g1 ({new}) must replicate from the writer {writer}: {live}"
    )
    # Encrypted with region B's key; the cross-region source is given as an ARN.
    s = next(s for s in lc.syntheses if "dr-data-db-instance-g1" in {x.name for x in s.resources})
    seeded = s.named("dr-data-db-instance-g1")
    assert seeded.inputs["replicateSourceDb"] == f"arn:aws:rds:us-east-1:123456789012:db:{writer}", (
        seeded.inputs
    )
    assert ":us-west-2:" in seeded.inputs["kmsKeyId"], seeded.inputs["kmsKeyId"]
    # The old generation is released: unprotected this update, retained, listed, never deleted.
    gone = s.named("dr-data-db-instance")
    assert (gone.protect, gone.retain_on_delete) == (False, True), (
        "aws:rds/instance:Instance dr-data-db-instance"
    )
    assert {"type": "aws:rds/instance:Instance", "id": old} in s.outputs["releasedOnNextUpdate"]
    assert lc.world.dbs[old].source is None, f"{old} is kept in AWS as it was"
    assert not [p for res in lc.results for p in res.plans if p.stateful and p.action is Action.DELETE]
    # Everything that names region B's database follows the new replica in the same update.
    ctx = s.outputs["runbook"]
    assert (ctx["drDbInstanceId"], s.outputs["drDbInstanceId"]) == (new, new), "runbook context / outputs"
    (alarm,) = [a for a in r.observation.lag_alarms if a.name == "dr-obs-replica-lag"]
    assert (alarm.watches, alarm.state) == (new, "OK"), f"aws:cloudwatch/metricAlarm:MetricAlarm {alarm}"
    env = s.named("dr-api-payments").inputs["environment"]["variables"]
    assert env["DB_INSTANCE_ID"] == new, "aws:lambda/function:Function dr-api-payments DB_INSTANCE_ID"


def test_e4_twice_the_second_failover_promotes_the_new_replica_and_no_identifier_collides() -> None:
    lc = run("twice", RDS)
    second = [r for r in lc.results if r.label.startswith("declared failover")][1]
    assert second.observation.writer == "pilotlight-production-us-west-2-db-g1", (
        f"{E4_RESEED}: the second failover must promote the replica of the current writer: "
        f"{second.observation.line()}"
    )
    failbacks = [
        p
        for r in lc.results
        for p in r.plans
        if p.type == "aws:rds/instance:Instance"
        and p.name.startswith("dr-data-db-failback")
        and p.action is Action.CREATE
    ]
    # One logical resource per generation (break13, B13-7): the second cycle's is a new resource.
    assert [p.name for p in failbacks] == [
        "dr-data-db-failback",
        "dr-data-db-failback-g1",
    ] and lc.stopped == 0
    assert lc.world.writer == "pilotlight-production-us-east-1-db-failback-g1"
    assert _dr_instances(lc) == {"dr-data-db-instance-g2": "pilotlight-production-us-west-2-db-g2"}
    assert lc.results[-1].observation.protected
    stateful = [
        (r.index, p.label, p.action)
        for r in lc.results
        for p in r.plans
        if p.stateful and p.action in (Action.REPLACE, Action.DELETE)
    ]
    assert stateful == [], f"stateful replacements or deletes across the cycle: {stateful}"
    released = [x for x in lc.world.released if "aws:rds/instance:Instance" in x]
    assert len(released) == 4, f"two failback writers and two old region-B instances released: {released}"


def test_declared_failover_changes_nothing_stateful_in_place_of_region_a() -> None:
    # The declared failover's update touches region B only and never a stateful resource's force-new input.
    for mode in (RDS, AURORA):
        failover = step(run("declared-iac", mode), "declared failover")
        assert isinstance(failover.step, Up) and failover.errors == []
        touched = [p for p in failover.plans if p.action is not Action.SAME]
        assert touched and all(p.region == "us-west-2" for p in touched), [
            (p.name, p.region) for p in touched
        ]


def test_e4_after_a_runbook_failback_the_next_update_releases_region_b_promoted_instance() -> None:
    # The re-seeding update keeps the promoted instance once more, unprotected; the next one releases
    # it (retain_on_delete: forgotten by the stack, kept in AWS), never deletes it, and stays protected.
    lc = Lifecycle()
    lc.run([*steps_for("runbook-runbook", RDS), Up("dr", "next routine update of the dr stack")])
    last = lc.results[-1]
    actions = {p.name: p.action for p in last.plans if p.type == "aws:rds/instance:Instance"}
    assert actions == {"dr-data-db-instance": Action.RELEASE, "dr-data-db-instance-g1": Action.SAME}, actions
    assert last.errors == [] and last.observation.protected, last.observation.line()
    assert "pilotlight-production-us-west-2-db" in lc.world.dbs, "the released instance is kept in AWS"


@pytest.mark.parametrize("mode", [RDS, AURORA])
def test_the_primary_stack_refuses_an_update_while_the_runbooks_failback_moves_the_writer(mode: str) -> None:
    # The run journal says a failback is under way (rds-replica: the old primary renamed, a replica
    # under <primary>; both modes: region B's writes stopped, the writer about to move): a primary update
    # would declare region A's database from a half-done failback. Refused with nothing planned; once
    # the failback is resumed to its end, the documented updates run and the system ends protected.
    lc = Lifecycle()
    lc.run(
        [
            *deploy(mode),
            *declared_failover(mode),
            Runbook("failback-started", "runbook failback under way (stopped after scale_down_dr)"),
            Up("primary", "primary update during the failback"),
            Runbook("failback", "the failback resumed to its end"),
            Up("dr", "routine update: dr:active false", {"dr:active": False}),
            Up("primary", "routine update of the primary stack"),
        ]
    )
    during = step(lc, "primary update during the failback")
    assert during.refused is not None and "pulumi up -s primary is refused" in during.refused, during.refused
    assert "failback" in during.refused and during.plans == [], during.refused
    assert not during.applied
    after = lc.results[-1]
    assert after.errors == [] and after.refused is None, (after.errors, after.refused)
    assert violations(lc, PLAN | TRAFFIC | {"import-matches"}) == []
    assert [str(v) for v in final_violations(lc)] == []


@pytest.mark.parametrize("mode", [RDS, AURORA])
@pytest.mark.parametrize("after", ["no failover", "the runbook's failback"])
def test_complete_without_the_dr_stacks_route_back_is_refused_and_the_system_ends_protected(
    mode: str, after: str
) -> None:
    # traffic-follows-writer and ends-protected. `dr:failback complete` promotes region B's database and
    # (rds-replica) declares region A's failback instance promoted. With no failover behind it, it promoted
    # region B's healthy replica beside region A's writer (the scenario ended NOT protected); after the
    # runbook's failback (no phase recorded, no failback instance) it created <primary>-failback from region
    # B's frozen copy and the primary stack adopted that as region A's writer, while the application's
    # writes since the failback stayed in <primary>. complete now needs the dr stack's route-back
    # (its failback record); the documented update after a runbook failback (dr:active false, no
    # dr:failback) then re-seeds region B.
    lc = Lifecycle()
    before = [*runbook_failover(), Runbook("failback", "runbook failback")] if after != "no failover" else []
    lc.run(
        [
            *deploy(mode),
            *before,
            Up("dr", "dr:failback complete", {"dr:active": False, "dr:failback": "complete"}),
            Up("dr", "routine update: dr:failback removed", rm=("dr:failback",)),
            Up("primary", "routine update of the primary stack"),
        ]
    )
    stray = step(lc, "dr:failback complete")
    assert stray.refused is not None and "dr:failback complete is refused" in stray.refused, stray.refused
    assert "route-back" in stray.refused and "pulumi config rm dr:failback -s dr" in stray.refused
    assert stray.plans == [] and not stray.applied
    assert violations(lc, PLAN | TRAFFIC | {"import-matches"}) == []
    assert [str(v) for v in final_violations(lc)] == []


def test_a_runbook_failover_after_the_iac_switch_writer_is_refused_and_the_failback_finishes() -> None:
    # one writer / nothing lost (docs/safety.md "Protected again, or refuse"): after dr:failback
    # switch-writer region A's failback instance is the writer and region B's instance a copy frozen at
    # that promotion. The runbook's failover (fencing.py _refuse_unprotected) refuses before any change
    # (the harness modelled only the runbook's failback refusal before, and "promoted" the frozen copy);
    # the failback then finishes and the system ends protected.
    lc = Lifecycle()
    phases = [
        Up("dr", f"IaC failback phase {p}", {"dr:active": True, "dr:failback": p})
        for p in ("replicate", "drain", "switch-writer")
    ]
    phases.insert(2, Runbook("switch-writer", "the zero-lag proof: latch switch-writer"))
    lc.run(
        [
            *deploy(RDS),
            *declared_failover(RDS),
            *phases,
            Up("primary", PRIMARY_FOLLOWS_WRITER),
            Runbook("failover", "the runbook's failover after switch-writer"),
            Runbook("release", "latch release"),
            Up("dr", "IaC failback phase route-back", {"dr:active": True, "dr:failback": "route-back"}),
            Up("dr", "IaC failback phase complete", {"dr:active": False, "dr:failback": "complete"}),
            Up("dr", "routine update: dr:failback removed", rm=("dr:failback",)),
            Up("primary", "routine update of the primary stack"),
        ]
    )
    refused = step(lc, "the runbook's failover after switch-writer")
    assert refused.refused is not None and "region A holds the writer" in refused.refused, refused.refused
    assert not refused.applied
    assert all(r.refused is None and r.errors == [] for r in lc.results if r is not refused), [
        (r.label, r.refused, r.errors) for r in lc.results if r.refused or r.errors
    ]
    assert violations(lc, PLAN | TRAFFIC) == []
    assert [str(v) for v in final_violations(lc)] == []


def test_a_runbook_failover_before_the_dr_update_re_seeds_region_b_is_refused() -> None:
    # "Protected again, or refuse": after the runbook's failback region B's instance is a standalone copy
    # frozen at the failback until `pulumi up -s dr` (dr:active false) re-seeds it. A failover in between
    # refuses (not replicating from the writer); after the re-seed it promotes the new replica.
    lc = Lifecycle()
    lc.run(
        [
            *steps_for("runbook-runbook", RDS)[:-2],
            Runbook("failover", "a failover before the re-seed"),
            *steps_for("runbook-runbook", RDS)[-2:],
            *runbook_failover(),
        ]
    )
    early = step(lc, "a failover before the re-seed")
    assert early.refused is not None and "not replicating from the writer" in early.refused, early.refused
    later = lc.results[-2]
    assert later.step == Runbook("failover", later.step.label) and later.refused is None, later.refused
    assert lc.world.dbs[lc.outputs["dr"]["runbook"]["drDbInstanceId"]].source is None, (
        "the re-seeded replica promoted"
    )


# The longest names the config accepts (tests/components/test_naming.py): region A's identifier
# leaves no room for "-failback-g<n>", and region B's Aurora cluster none for "-failover-<token>", so the
# names the program and the runbook derive from them are cut with a hash (the runbook's writer: the
# cluster's part, never the token).
LONG = {"pilotlight:appName": "abcdefghijklmnopqrstuvwx", "pilotlight:environment": "stagingeuwest001"}


@pytest.mark.parametrize(("scenario", "mode"), [("twice", RDS), ("runbook-iac", AURORA)])
def test_names_cut_with_a_hash_are_found_by_every_reader(scenario: str, mode: str) -> None:
    # Every reader that finds a derived resource by name (the primary stack's live read of region A's
    # writer, the dr stack's adoption of the runbook's Aurora instance, the harness's runbook) computes
    # the same cut name as its writer: the second failback's writer is adopted, nothing is left
    # unmanaged, and the system ends protected.
    lc = Lifecycle({"primary": LONG, "dr": LONG})
    lc.run(steps_for(scenario, mode))
    assert lc.stopped == 0 and violations(lc, PLAN | TRAFFIC | {"import-matches"}) == []
    assert [str(v) for v in final_violations(lc)] == []
    runbook = lc.outputs["dr"]["runbook"]
    if mode == RDS:
        cut = names.failback_generation_id(runbook_base(lc), 1)
        assert len(f"{runbook_base(lc)}-failback-g1") > names.RDS_IDENTIFIER_MAX, "the name is cut"
        assert lc.world.writer == cut and lc.world.dbs[cut].managed_by is not None, (lc.world.writer, cut)
        assert lc.outputs["primary"]["dbInstanceId"] == cut, "region A's application follows the writer"
    else:
        cluster = runbook["drClusterId"]
        prefix = names.failover_instance_prefix(cluster)
        assert not prefix.startswith(cluster), "the cluster's part of the name is cut"
        (cut,) = [i for i, c in lc.world.cluster_instances.items() if c == cluster and i.startswith(prefix)]
        assert names.failover_token(cluster, cut) is not None, cut
        adopted = [r.inputs["identifier"] for r in lc.state["dr"].values() if r.import_id is not None]
        assert adopted == [cut], adopted


def runbook_base(lc: Lifecycle) -> str:
    """Region A's primary identifier (lineage index 0), as the primary stack first declared it."""
    return next(
        r.inputs["identifier"] for r in lc.state["primary"].values() if r.name == "primary-data-db-instance"
    )
