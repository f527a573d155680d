"""Review of issue 13 (break13): the program and the lifecycle harness across sequences the scenarios skip.

Each test is a strict xfail whose reason names the defect; it passes once the defect is fixed. The
scenario runs reuse ``tests/components/test_lifecycle.py``'s cache (``run``) and copy the result
before adding steps, so they add few syntheses to ``make test``.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from automation.lifecycle import (
    Action,
    Db,
    Lifecycle,
    RegionA,
    Runbook,
    StepResult,
    Stored,
    Up,
    apply_to_world,
    final_violations,
    invariants,
    plan_removal,
    plan_resource,
)
from automation.lifecycle_scenarios import declared_failover, deploy, iac_failback, runbook_failover
from automation.lifecycle_tables import REPLACEMENT
from lambdas.failover import observe
from lambdas.failover.names import current_failback_id
from tests.components.test_lifecycle import run

RDS = "rds-replica"
P = "pilotlight-production-us-east-1-db"  # region A's instance (primary stack)
B = "pilotlight-production-us-west-2-db"  # region B's instance, generation 0

B13_1_APP_ENDPOINT = (
    "B13-1 rds-replica IaC failback: region A's writer becomes <primary>-failback, but region A's application "
    "(primary stack, DB_HOST/DB_INSTANCE_ID) still uses <primary>, the stale standalone old writer; region B is "
    "re-seeded from <primary>-failback, so every write region A acknowledges after the failback lands in a database "
    "nothing replicates and the next failover loses it. The harness judges traffic-follows-writer by region only "
    "(automation/lifecycle.py observe/invariants), so declared-iac/runbook-iac/twice report 0 inconsistent states"
)
B13_2_OBSERVE_GEN0 = (
    "B13-2 lambdas/failover/observe.py knows only the generation-0 failback name (<primary>-failback): in the second "
    "cycle that released instance is a standalone non-writer in region A, _rds_writer ranks it first and answers "
    "'primary' while region B's promoted <dr>-g1 holds the writer, so `latch release` (automation/latch_cli.py:104) "
    "is not refused and sends traffic to a region without the writer"
)
B13_3_ABANDONED_IAC = (
    "B13-3 an IaC failback abandoned for the runbook's (README: 'fail back with the runbook'): the standby update "
    "drops the protected dr-data-db-failback from the program (failback_replica only at complete, "
    "components/failover.py:193) so the engine refuses the update and region B is never re-seeded; unprotected, the "
    "re-seed picks <primary>-failback (a replica of region B's old instance) as 'region A's writer' "
    "(components/data.py _region_a_writer_arn)"
)
B13_4_REDEPLOY = (
    "B13-4 pulumi destroy -s dr keeps every region-B instance (retain_on_delete=True always, components/data.py:975); "
    "the next fresh `pulumi up -s dr` finds that generation live (aws.rds.getInstances) and declares a *create* "
    "under its identifier: DBInstanceAlreadyExists, the dr stack cannot be deployed again without hand work"
)
B13_5_IDENTIFIER = (
    "B13-5 lifecycle_tables.py classifies aws:rds/instance:Instance identifier as force-new; the provider "
    "(terraform-provider-aws v5+, bridged by pulumi-aws 7) renames in place (ModifyDBInstance "
    "NewDBInstanceIdentifier), as the README itself says for the primary stack after a runbook failback"
)
B13_6_STAMP = (
    "B13-6 harness: the modelled runbook failback stamps every retained old primary with one fixed time "
    "(automation/lifecycle.py:259, :783), so a second runbook failback overwrites the first <primary>-pre-failback-* "
    "database in the live world: the instance holding the first failover's unreplicated tail vanishes from the model"
)
B13_7_CYCLE_BEFORE_RELEASE = (
    "B13-7 the next failover comes before the update that releases the previous cycle's failback instance "
    "(dr:failback complete still set): the next IaC failback's replicate re-declares the same logical "
    "dr-data-db-failback with the next generation's identifier and a source, i.e. renames region A's previous writer "
    "(identifier is updated in place) and re-points it at region B (refused: 'cannot elect new source database'); "
    "protected, the engine refuses the replacement too: the failback cannot start while region B serves"
)


# --------------------------------------------------------------------------------------------------
# B13-1: region A's application after an rds-replica IaC failback


def test_after_an_rds_iac_failback_region_a_application_uses_the_writer() -> None:
    lc = run("declared-iac", RDS)
    assert lc.stopped == 0 and lc.world.writer == f"{P}-failback"
    primary = [s for s in lc.syntheses if s.stack == "primary"][-1]  # "routine update of the primary stack"
    env = primary.named("primary-api-payments").inputs["environment"]["variables"]
    assert env["DB_INSTANCE_ID"] == lc.world.writer, (
        f"aws:lambda/function:Function primary-api-payments writes to {env['DB_INSTANCE_ID']} "
        f"(DB_HOST {env['DB_HOST']}) but the writer, which region B replicates, is {lc.world.writer}"
    )


# --------------------------------------------------------------------------------------------------
# B13-2: the runbook's observation in the second cycle


class _Rds:
    def __init__(self, dbs: dict[str, str | None]) -> None:
        self.dbs = dbs  # identifier -> source (None: standalone)

    def describe_db_instances(self, DBInstanceIdentifier: str) -> dict[str, Any]:
        if DBInstanceIdentifier not in self.dbs:
            raise ClientError(
                {"Error": {"Code": "DBInstanceNotFound", "Message": DBInstanceIdentifier}},
                "DescribeDBInstances",
            )
        inst: dict[str, Any] = {"DBInstanceIdentifier": DBInstanceIdentifier, "DBInstanceStatus": "available"}
        if self.dbs[DBInstanceIdentifier]:
            inst["ReadReplicaSourceDBInstanceIdentifier"] = self.dbs[DBInstanceIdentifier]
        return {"DBInstances": [inst]}


class _Clients:
    def __init__(self, primary: dict[str, str | None], dr: dict[str, str | None]) -> None:
        self._rds = {"primary": _Rds(primary), "dr": _Rds(dr)}

    def region(self, side: str) -> str:
        return {"primary": "us-east-1", "dr": "us-west-2"}[side]

    def rds(self, side: str) -> _Rds:
        return self._rds[side]


def test_the_runbook_sees_region_b_holds_the_writer_during_the_second_failover() -> None:
    # AWS after deploy -> declared failover -> IaC failback (cycle 1: region A's writer is <P>-failback,
    # region B re-seeded as <B>-g1) -> declared failover again (<B>-g1 promoted). These are the names the
    # `twice` scenario reaches (tests/components/test_lifecycle.py, test_e4_twice_...). Region A's two
    # old writers are standalone: a promotion leaves its source a standalone instance.
    clients = _Clients(primary={P: None, f"{P}-failback": None}, dr={f"{B}-g1": None})
    ctx = SimpleNamespace(primary_db_instance_id=P, dr_db_instance_id=f"{B}-g1")
    members = observe._rds_members(ctx, clients, observe._Reader(clients))  # type: ignore[arg-type]
    assert observe._rds_writer(members) == "dr", [(m.side, m.identifier, m.role) for m in members]


@pytest.mark.parametrize(
    ("primary_id", "primary", "dr", "writer"),
    [
        # standby after the first IaC failback: region B's g1 replicates from region A's writer
        (f"{P}-failback", {P: None, f"{P}-failback": None}, {f"{B}-g1": f"arn:{P}-failback"}, "primary"),
        # second failback in progress: region A's g1 failback instance still replicates from <B>-g1
        (P, {P: None, f"{P}-failback": None, f"{P}-failback-g1": f"arn:{B}-g1"}, {f"{B}-g1": None}, "dr"),
        # second failback, switch-writer done: the current generation's failback instance was promoted
        (P, {P: None, f"{P}-failback": None, f"{P}-failback-g1": None}, {f"{B}-g1": None}, "primary"),
        # the same with region A's writer adopted by the primary stack (primaryDbInstanceId follows it)
        (
            f"{P}-failback",
            {P: None, f"{P}-failback": None, f"{P}-failback-g1": None},
            {f"{B}-g1": None},
            "primary",
        ),
        (f"{P}-failback", {P: None, f"{P}-failback": None}, {f"{B}-g1": None}, "dr"),
        # generation 0, as before: the first failback's switch-writer
        (P, {P: None, f"{P}-failback": None}, {B: None}, "primary"),
        (P, {P: None}, {B: None}, "dr"),
    ],
)
def test_the_runbook_decides_the_writer_from_replication_in_every_generation(
    primary_id: str, primary: dict[str, str | None], dr: dict[str, str | None], writer: str
) -> None:
    """B13-2's class: `latch release` and the dry run ask observe which region holds the writer. Only the
    failback instance of region B's *current* generation can be a promoted replica of it; every other
    standalone instance of region A is an ex-writer."""
    clients = _Clients(primary=primary, dr=dr)
    ctx = SimpleNamespace(primary_db_instance_id=primary_id, dr_db_instance_id=next(iter(dr)))
    members = observe._rds_members(ctx, clients, observe._Reader(clients))  # type: ignore[arg-type]
    assert observe._rds_writer(members) == writer, [(m.side, m.identifier, m.role) for m in members]


def test_the_current_failback_instance_is_named_from_the_context() -> None:
    assert current_failback_id(P, B) == f"{P}-failback"
    assert current_failback_id(P, f"{B}-g2") == f"{P}-failback-g2"
    assert current_failback_id(f"{P}-failback", f"{B}-g2") == f"{P}-failback-g2"
    assert current_failback_id(f"{P}-failback-g1", f"{B}-g2") == f"{P}-failback-g2"


# --------------------------------------------------------------------------------------------------
# B13-3: an IaC failback abandoned for the runbook's


def test_an_iac_failback_finished_by_the_runbook_ends_protected() -> None:
    """B13-3, as break23 BR23-6 changed it: the runbook's failback no longer takes over an IaC failback
    under way (its own replica under ``<primary>`` left the IaC one in region A's writer lineage, a copy
    the primary stack would follow once it is standalone). It refuses and changes nothing; the IaC
    failback, resumed from ``replicate``, ends protected."""
    lc = Lifecycle()
    lc.run(
        [
            *deploy(RDS),
            *declared_failover(RDS),
            Up("dr", "IaC failback phase replicate", {"dr:active": True, "dr:failback": "replicate"}),
        ]
    )
    held = lc.results[-1].observation.line()
    refused = lc.step(Runbook("failback", "runbook failback instead: refused while the IaC one is under way"))
    assert refused.refused is not None and "dr:failback replicate" in refused.refused, refused.refused
    assert refused.observation.line() == held
    lc.run(iac_failback(RDS))
    last = lc.results[-1]
    assert last.errors == [], last.errors
    assert [str(v) for v in final_violations(lc)] == []


# --------------------------------------------------------------------------------------------------
# B13-4: destroy the dr stack after a re-seed, deploy it again


def test_the_dr_stack_deploys_again_after_a_destroy() -> None:
    lc = copy.deepcopy(run("runbook-runbook", RDS))  # region B re-seeded: <B>-g1 replicates from <P>
    writer = lc.world.writer
    # `pulumi destroy -s dr`: every resource of the dr stack's state leaves (retainOnDelete: kept in AWS).
    for old in list(lc.state["dr"].values()):
        apply_to_world(lc.world, plan_removal(old), old, None)
    lc.state["dr"] = {}
    lc.outputs.pop("dr", None)
    assert writer in lc.world.dbs, "the destroy of the dr stack must never delete region A's writer"
    redeploy = lc.step(Up("dr", "fresh pulumi up -s dr", {"pilotlight:database": {"mode": RDS}}))
    assert redeploy.errors == [], redeploy.errors


# --------------------------------------------------------------------------------------------------
# B13-5: the force-new table against the provider schema


def test_rds_instance_identifier_is_renamed_in_place() -> None:
    # hashicorp/terraform-provider-aws internal/service/rds/instance.go (v5+): "identifier" has no ForceNew
    # ("user-defined identifier ... can be updated"), resourceInstanceUpdate: d.HasChange("identifier") ->
    # ModifyDBInstanceInput.NewDBInstanceIdentifier.
    assert REPLACEMENT["aws:rds/instance:Instance"].classify("identifier") == "in-place"


def test_a_planned_rename_of_a_stateful_instance_is_a_violation() -> None:
    """Invariant no-stateful-rename: an update that changes a live RDS instance's identifier renames it in
    place (its endpoint moves; without a refresh the rename goes to whatever instance has the state's
    name now). Every lifecycle scenario checks it (tests/components/test_lifecycle.py PLAN)."""
    old = Stored("urn:db", "aws:rds/instance:Instance", "primary-data-db-instance", "primary", "us-east-1",
                 {"identifier": P, "engine": "postgres"}, {"arn": "arn:db"}, protect=True)  # fmt: skip
    new = copy.deepcopy(old)
    new.inputs["identifier"] = f"{P}-failback"
    plan, _ = plan_resource(old, new)
    assert plan.action is Action.UPDATE and plan.errors == []
    lc = Lifecycle()
    result = StepResult(1, Up("primary", "routine update"), [plan], [], None, True, lc.observe(), [], None)
    assert [v.invariant for v in invariants(result, lc)] == ["no-stateful-rename"]
    world = lc.world
    world.dbs[P] = Db(P, "us-east-1", "instance", None, "primary:urn:db")
    world.writer = P
    apply_to_world(world, plan, old, new)
    assert set(world.dbs) == {f"{P}-failback"} and world.writer == f"{P}-failback"


# --------------------------------------------------------------------------------------------------
# B13-6: two runbook failbacks in the harness


def test_a_second_runbook_failback_keeps_the_first_retained_primary() -> None:
    lc = copy.deepcopy(run("runbook-runbook", RDS))
    first = {d for d in lc.world.dbs if "pre-failback" in d}
    assert len(first) == 1, first
    # The second cycle: runbook steps only (no pulumi up), as test_lifecycle's scenarios model them.
    for s in (
        RegionA(False, "region A fails again"),
        Runbook("failover", "second automated failover"),
        RegionA(True, "region A recovers"),
        Runbook("failback", "second runbook failback"),
    ):
        lc.step(s)
    retained = {d for d in lc.world.dbs if "pre-failback" in d}
    assert len(retained) == 2, f"retained old primaries after two runbook failbacks: {sorted(retained)}"


# --------------------------------------------------------------------------------------------------
# B13-7: the next incident before the routine update that releases the previous failback instance


def test_the_next_iac_failback_starts_before_the_previous_failback_instance_is_released() -> None:
    lc = Lifecycle()
    until_complete = iac_failback(RDS)[
        :-2
    ]  # ... complete; not yet "dr:failback removed" nor the primary update
    lc.run([*deploy(RDS), *declared_failover(RDS), *until_complete, *runbook_failover()])
    assert lc.stopped == 0 and lc.world.writer == f"{B}-g1", lc.results[-1].observation.line()
    replicate = lc.step(
        Up(
            "dr",
            "IaC failback phase replicate (second cycle)",
            {"dr:active": True, "dr:failback": "replicate"},
        )
    )
    touched = {p.name: (p.action, sorted(p.changed)) for p in replicate.plans if p.stateful and p.changed}
    assert replicate.errors == [], (touched, replicate.errors)


# --------------------------------------------------------------------------------------------------
# B13-8: region A's writer back under the primary stack


@pytest.mark.parametrize(
    "scenario",
    [
        "declared-iac",
        "runbook-runbook",  # the runbook's rename to replace: adopted from the replica's failback-stamp tag
    ],
)
def test_after_a_failback_region_a_writer_is_in_the_primary_stack_state(scenario: str) -> None:
    lc = copy.deepcopy(run(scenario, RDS))
    if not isinstance(lc.results[-1].step, Up) or lc.results[-1].step.stack != "primary":
        lc.step(Up("primary", "routine update of the primary stack"))
    last = lc.results[-1]
    assert last.errors == [] and last.observation.writer_region == "A", last.observation.line()
    writer = lc.world.writer
    assert f"instance {writer}" not in last.observation.unmanaged_dbs, (
        f"region A's writer {writer} is in no stack's state; unmanaged: {last.observation.unmanaged_dbs}"
    )


def test_after_a_runbook_failback_the_primary_stack_adopts_the_new_primary_and_keeps_the_old_unprotected() -> (
    None
):
    """B13-8, how: the replica the runbook made under <P> carries its failback stamp (FAILBACK_STAMP_TAG);
    the primary stack adopts it with the `import` option under a name derived from the stamp, protected,
    and keeps the renamed old primary declared under its retained name, unprotected, retainOnDelete, with
    its identifier ignored (no ModifyDBInstance: the rename already happened), and lists it as released.
    A second runbook failover and failback chains the same way: nothing stateful is replaced or deleted."""
    lc = copy.deepcopy(run("runbook-runbook", RDS))
    stamp = "203001010000"  # the harness's first runbook failback (automation/lifecycle.py)
    retained = f"{P}-pre-failback-{stamp}"
    primary = lc.syntheses[-1]
    old, new = primary.named("primary-data-db-instance"), primary.named(f"primary-data-db-instance-rb{stamp}")
    assert (old.inputs["identifier"], old.protect, old.retain_on_delete, old.ignore_changes) == (
        retained,
        False,
        True,
        ["identifier", "engineVersion"],  # engineVersion: RDS owns the minor (B12-5)
    )
    assert (new.inputs["identifier"], new.import_id, new.protect, new.retain_on_delete) == (P, P, True, True)
    assert primary.outputs["retainedDbInstanceIds"] == [retained]
    adopt = lc.results[-1]
    actions = {
        p.name: (p.action, sorted(p.changed)) for p in adopt.plans if p.stateful and p.region == "us-east-1"
    }
    assert actions["primary-data-db-instance"] == (Action.SAME, []), actions
    assert actions[f"primary-data-db-instance-rb{stamp}"] == (Action.IMPORT, []), actions

    lc.run(
        [
            *runbook_failover(),
            Runbook("failback", "second runbook failback"),
            Up("dr", "routine update: dr:active false", {"dr:active": False}),
            Up("primary", "routine update of the primary stack"),
            Up("primary", "another routine update of the primary stack"),
        ]
    )
    assert [r.errors for r in lc.results if r.errors] == []
    assert [str(v) for r in lc.results for v in r.violations] == []
    assert [str(v) for v in final_violations(lc)] == []
    second = "203001010100"
    again = lc.syntheses[-1]
    first = again.named(f"primary-data-db-instance-rb{stamp}")
    assert (first.inputs["identifier"], first.protect, first.ignore_changes) == (
        f"{P}-pre-failback-{second}",
        False,
        ["identifier"],
    )
    assert again.named(f"primary-data-db-instance-rb{second}").inputs["identifier"] == P
    assert again.outputs["retainedDbInstanceIds"] == [retained, f"{P}-pre-failback-{second}"]
    assert [p.name for p in lc.results[-1].plans if p.action is not Action.SAME] == []
