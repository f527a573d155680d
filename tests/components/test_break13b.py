"""break13b: what the IaC lifecycle (issue 13) still gets wrong on branch ``integ``, with evidence.

Each test was a strict xfail whose reason names the defect (B13b-n); branch fix13 fixed them and removed the
markers, with controls beside them. B13b-2 was decided the other way: since fix12 B12-5 ``database.engineVersion``
is the version an rds-replica instance is created with (README "Engine versions"), and its test now holds that
invariant. The docstring of each cites the provider or AWS document it relies on.
"""

from __future__ import annotations

import functools
import json

import pytest

from automation.lifecycle import Lifecycle, Up
from automation.lifecycle_scenarios import declared_failover, deploy, iac_failback, steps_for
from automation.lifecycle_tables import Change, rejected
from components.config import ConfigError, parse

AURORA, RDS = "aurora-global", "rds-replica"
INSTANCE = "aws:rds/instance:Instance"
DEPLOYED = "16.4"  # components/config.py DatabaseConfig.engine_version
MINOR = "16.6"


def _db(mode: str, **extra: object) -> dict[str, object]:
    return {"pilotlight:database": {"mode": mode, **extra}}


@functools.cache
def _upgrade_after_deploy() -> Lifecycle:
    lc = Lifecycle()
    lc.run([*deploy(RDS), Up("primary", f"minor upgrade {MINOR}", _db(RDS, engineVersion=MINOR))])
    return lc


@functools.cache
def _upgrade_after_iac_failback() -> Lifecycle:
    lc = Lifecycle()
    lc.run(
        [
            *deploy(RDS),
            *declared_failover(RDS),
            *iac_failback(RDS),
            Up("primary", f"minor upgrade {MINOR}", _db(RDS, engineVersion=MINOR)),
        ]
    )
    return lc


# --------------------------------------------------------------------------------------------------
# B13b-1: rds-replica minor upgrade goes source-first


def test_b13b_1_an_rds_source_is_never_minor_upgraded_before_its_read_replica() -> None:
    """Invariant: *provider-accepts* through an engine upgrade (issue 13, "Engine upgrades follow AWS's
    order (a table of what AWS refuses, cited)").

    AWS, "Upgrades of the RDS for PostgreSQL DB engine", Minor version upgrades: "If your database has
    read replicas, you must first upgrade all of the read replicas before you upgrade the source instance
    or cluster" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.PostgreSQL.html).
    The program raises ``engine_version`` on region A's instance from the primary stack while region B's
    cross-region replica (components/dr_data.py ``_replica_instance``: no ``engine_version``, so it keeps
    the version CreateDBInstanceReadReplica gave it) is still on 16.4. The step must be refused by the
    program before any resource, or reported by the harness as refused (``provider-accepts``)."""
    lc = _upgrade_after_deploy()
    res = lc.results[-1]
    upgraded = [p.name for p in res.plans if p.type == INSTANCE and "engineVersion" in p.changed]
    replica = lc.live("dr", INSTANCE, "dr-data-db-instance") or {}
    flagged = res.refused is not None or any(v.invariant == "provider-accepts" for v in res.violations)
    assert not (upgraded and replica.get("engineVersion", DEPLOYED) != MINOR and not flagged), (
        f"{upgraded} upgraded to {MINOR} while region B's replica is on "
        f"{replica.get('engineVersion', DEPLOYED)}, and nothing refused it"
    )


@pytest.mark.parametrize(
    ("new", "replicas", "refused"),
    [
        pytest.param(MINOR, [DEPLOYED], True, id="source-before-its-replica"),
        pytest.param(MINOR, [MINOR], False, id="replica-upgraded-first"),
        pytest.param(MINOR, [], False, id="no-replica"),
    ],
)
def test_b13b_1_the_harness_rejects_a_source_upgraded_before_its_replicas(
    new: str, replicas: list[str], refused: bool
) -> None:
    """Invariant: *provider-accepts* knows AWS's order (replicas before the source); the controls stay
    accepted."""
    change = Change(
        INSTANCE, "engineVersion", DEPLOYED, new, {"is_replica": False, "replica_versions": replicas}
    )
    assert {r.id for r in rejected(change)} == ({"rds-source-upgraded-before-replicas"} if refused else set())


def test_b13b_3_controls_an_allowed_major_upgrade_and_a_minor_upgrade_are_accepted() -> None:
    """Control for B13b-3: the rules refuse only what RDS refuses."""
    assert rejected(Change(INSTANCE, "engineVersion", "16.4", "16.6", {"is_replica": False})) == []
    # a prefix of the live version is no change to the provider, not a downgrade
    assert rejected(Change(INSTANCE, "engineVersion", "16.6", "16", {"is_replica": False})) == []
    allowed = {"is_replica": False, "allow_major_version_upgrade": True}
    assert rejected(Change(INSTANCE, "engineVersion", "16.4", "17.2", allowed)) == []
    glob = "aws:rds/globalCluster:GlobalCluster"
    assert rejected(Change(glob, "engineVersion", "16.4", "16.6", {"headless_members": []})) == []


# --------------------------------------------------------------------------------------------------
# B13b-2: after an rds-replica failback, database.engineVersion no longer reaches region A's writer


def test_b13b_2_engine_version_is_the_creation_version_and_no_update_sends_it_to_an_existing_instance() -> (
    None
):
    """Decided (B13b-2): for rds-replica ``database.engineVersion`` is the version the program creates an
    instance with, in every phase (README "Engine versions"; the primary stack's ``databaseEngineVersion``
    output is that configured version, which the dr stack creates its replica and parameter group with).
    RDS moves the minor itself (``autoMinorVersionUpgrade``), and a version sent to an existing instance
    that RDS has already upgraded past is a downgrade it refuses ("you can't revert to a previous version":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Upgrading.html), so
    region A's writer ignores it after creation (fix12 B12-5), the adopted failback instance
    (:func:`components.data.failback_instance_args`) and the runbook's replica declare none, and an
    upgrade of a deployed instance is RDS's, replicas first (documented). The invariant this protects:
    after an IaC failback, raising ``database.engineVersion`` on the primary stack plans no engine change
    on any RDS instance (no ModifyDBInstance ``EngineVersion`` that could be a refused downgrade or a
    source-before-replica upgrade), nothing stateful is replaced, and the update applies.

    ``engine_version`` left out of an ``aws.rds.Instance`` is "Computed" from what AWS has
    (https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/, engineVersion: "The engine
    version to use ... The actual engine version used is returned in the attribute engineVersionActual")."""
    lc = _upgrade_after_iac_failback()
    res = lc.results[-1]
    assert res.applied, f"the upgrade update did not apply: {res.refused or res.errors}"
    writers = [r for r in lc.state["primary"].values() if r.type == INSTANCE and r.protect]
    assert [r.name for r in writers] == ["primary-data-db-instance-w1"], [r.name for r in writers]
    engine_changes = [
        f"{p.stack} {p.name}: {p.changed['engineVersion']}"
        for p in res.plans
        if p.type == INSTANCE and "engineVersion" in p.changed
    ]
    assert engine_changes == [], engine_changes
    stateful = [f"{p.stack} {p.name} {p.action}" for p in res.plans if p.type == INSTANCE and p.force_new]
    assert stateful == [], stateful
    assert not res.violations, [str(v) for v in res.violations]
    assert lc.outputs.get("primary", {}).get("databaseEngineVersion") == MINOR, (
        "the configured creation version"
    )


# --------------------------------------------------------------------------------------------------
# B13b-3: the harness's table of refused changes has no engine-version rule for RDS instances


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("16.6", "16.4", id="downgrade-after-auto-minor-upgrade"),
        pytest.param("16.4", "17.2", id="major-without-allow-major-version-upgrade"),
        pytest.param("16.4", "8.0.40", id="the-rds-upgrade-scenario-postgres-16-to-8"),
    ],
)
def test_b13b_3_rds_instance_engine_version_changes_rds_refuses_are_rejected(old: str, new: str) -> None:
    """Invariant: *provider-accepts* covers the engine version (issue 13: "no step plans an argument change
    the provider rejects (e.g. ... engine_version downgrade after an auto minor upgrade)").

    ModifyDBInstance ``AllowMajorVersionUpgrade``: "This parameter must be set to true when specifying a
    value for the EngineVersion parameter that is a different major version than the DB instance's current
    version" (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html); the
    program never sets ``allowMajorVersionUpgrade``. RDS has no engine downgrade: "you can't revert to a
    previous version" once upgraded; restore the pre-upgrade snapshot instead
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Upgrading.html)."""
    change = Change(INSTANCE, "engineVersion", old, new, {"is_replica": False})
    assert rejected(change), f"engineVersion {old} -> {new} on an RDS instance is planned as accepted"


def test_b13b_3b_a_global_cluster_engine_downgrade_is_rejected() -> None:
    """Invariant: *provider-accepts* for the global database's version. Aurora: "you can't downgrade" an
    engine version in place; restore a snapshot instead (https://docs.aws.amazon.com/AmazonRDS/latest/
    AuroraUserGuide/USER_UpgradeDBInstance.Upgrading.html, "Upgrading a DB cluster engine version";
    ModifyDBCluster EngineVersion names the version "to upgrade the DB cluster to":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html)."""
    change = Change(
        "aws:rds/globalCluster:GlobalCluster", "engineVersion", "16.6", "16.4", {"headless_members": []}
    )
    assert rejected(change), "engineVersion 16.6 -> 16.4 on the global cluster is planned as accepted"


# --------------------------------------------------------------------------------------------------
# B13b-4: the rds-replica "minor upgrade" scenario moves PostgreSQL 16.4 to MySQL's 8.0.40, and config takes it


def test_b13b_4_the_rds_replica_upgrade_scenario_is_a_postgresql_minor_upgrade() -> None:
    """Invariant: the lifecycle scenario named "engine minor-version upgrade" upgrades within the deployed
    major version (automation/lifecycle_scenarios.py ``upgrade``; PostgreSQL minor versions share the first
    number since 10: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.PostgreSQL.html)."""
    versions = {
        json.loads(json.dumps(s.set.get("pilotlight:database", {}))).get("engineVersion")
        for s in steps_for("upgrade", RDS)
        if isinstance(s, Up)
    } - {None}
    assert versions and all(v.split(".")[0] == DEPLOYED.split(".")[0] for v in versions), versions


@pytest.mark.parametrize("role", ["primary", "dr"])
def test_b13b_4b_config_refuses_an_engine_version_of_another_engine(role: str) -> None:
    """Invariant: config refuses what AWS would refuse, naming the key, before anything is registered.
    RDS for PostgreSQL versions: https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/
    postgresql-versions.html (no 8.x; the DB parameter group family is ``postgres<major>``,
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html)."""
    base = {
        "pilotlight:role": role,
        "pilotlight:appName": "shop",
        "pilotlight:environment": "production",
        "pilotlight:primaryRegion": "us-east-1",
        "pilotlight:drRegion": "us-west-2",
        "pilotlight:primaryCidr": "10.0.0.0/16",
        "pilotlight:drCidr": "10.1.0.0/16",
        **({"pilotlight:primaryStack": "org/pilotlight/primary"} if role == "dr" else {}),
        "pilotlight:database": json.dumps({"mode": RDS, "engine": "postgres", "engineVersion": "8.0.40"}),
    }
    with pytest.raises(ConfigError, match="engineVersion"):
        parse(base, stack=role)


# --------------------------------------------------------------------------------------------------
# B13b-5: a full minor version pinned beside auto minor upgrades: the refresh plans a downgrade


def test_b13b_5_an_auto_upgraded_instance_declares_only_its_major_version() -> None:
    """Invariant: an update after AWS's own minor upgrade never plans a downgrade.

    The provider's ``engine_version``: "If ``autoMinorVersionUpgrade`` is enabled, you can provide a prefix
    of the version such as ``8.0`` (for ``8.0.36``). The actual engine version used is returned in the
    attribute ``engineVersionActual``" (https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/);
    with a full version the refresh keeps the new live one (terraform-provider-aws internal/service/rds
    ``compareActualEngineVersion``: the state takes the live version unless the configured one is its
    prefix), so the diff is 16.6 -> 16.4. AWS applies minor upgrades itself when auto minor version upgrade
    is on (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Maintenance.html#USER_UpgradeDBInstance.Upgrading.AutoMinorVersionUpgrades)."""
    lc = _upgrade_after_deploy()
    pinned = [
        (r.name, r.inputs.get("engineVersion"))
        for s in lc.syntheses
        for r in s.aws_resources()
        if r.type == INSTANCE
        and r.inputs.get("autoMinorVersionUpgrade")
        and str(r.inputs.get("engineVersion") or "").count(".") >= 1
        # ignored (integ2, fix12 B12-5): the update keeps the state's version, so no refresh makes a
        # downgrade of it ("the engine uses the old input value from state for the listed properties":
        # https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/)
        and "engineVersion" not in r.ignore_changes
    ]
    region_a = [r for s in lc.syntheses for r in s.aws_resources() if r.name == "primary-data-db-instance"]
    assert region_a and all("engineVersion" in r.ignore_changes for r in region_a)
    assert pinned == [], f"full minor versions pinned beside autoMinorVersionUpgrade: {sorted(set(pinned))}"


# --------------------------------------------------------------------------------------------------
# B13b-6: the failback instance is made with the dr stack's database settings, adopted with the primary's


# The dr stack's own database settings differ from the primary's in every key the failback instance takes.
PILOT_LIGHTS = {
    "smaller-class": (("instanceClass", "db.t4g.medium"),),
    "single-az-short-backups-small-disk": (
        ("multiAz", False),
        ("backupRetentionDays", 1),
        ("allocatedStorage", 20),
        ("performanceInsights", False),
    ),
}


@functools.cache
def _iac_failback_with_a_smaller_pilot_light(dr: tuple[tuple[str, object], ...]) -> Lifecycle:
    lc = Lifecycle()
    lc.run(
        [
            Up("primary", "deploy: pulumi up -s primary", _db(RDS, instanceClass="db.r6g.large")),
            Up("dr", "deploy: pulumi up -s dr (a smaller pilot light)", _db(RDS, **dict(dr))),
            *declared_failover(RDS),
            *iac_failback(RDS),
        ]
    )
    return lc


@pytest.mark.parametrize("dr", list(PILOT_LIGHTS.values()), ids=list(PILOT_LIGHTS))
def test_b13b_6_a_pilot_light_smaller_than_the_primary_fails_back_and_is_adopted(
    dr: tuple[tuple[str, object], ...],
) -> None:
    """Invariant: *import-matches* and *provider-accepts* through the rds-replica IaC failback, for every
    configuration the config accepts (README, "Configuration reference": ``instanceClass``, ``multiAz``,
    ``backupRetentionDays`` are per stack). Fixed by construction: the primary stack exports
    ``databaseFailbackInstance`` and the dr stack creates the failback instance with it.

    The `import` option: "If the resource's arguments differ from the imported state, the import will fail"
    (https://www.pulumi.com/docs/iac/concepts/options/import/). Either the dr stack refuses (before any
    resource) a database configuration that differs from the primary's where the failback instance takes
    it, or the adoption declares what the dr stack created."""
    lc = _iac_failback_with_a_smaller_pilot_light(dr)
    assert lc.results[1].refused is None, lc.results[1].refused
    broken = [
        f"step {r.index} ({r.label}): {v}"
        for r in lc.results
        for v in r.violations
        if v.invariant in {"import-matches", "provider-accepts"}
    ]
    assert broken == [], broken
    assert all(r.applied for r in lc.results), [(r.label, r.refused) for r in lc.results if not r.applied]


def test_b13b_6_the_dr_stack_refuses_a_failback_without_the_primarys_writer_settings() -> None:
    """Invariant: the dr stack never creates region A's failback instance with settings the primary stack
    did not declare: a failback update without a usable ``databaseFailbackInstance`` output (a primary
    stack deployed by an older version) stops before any resource, naming the output; any other dr
    update (a failover while region A is down) is not refused for it."""
    from automation import synth
    from components.wiring import PrimaryOutputs, StackWiringError, require_failback_settings

    outputs = dict(synth.synthesize("primary", _db(RDS)).outputs)
    region = outputs["primaryRegion"]
    ok = PrimaryOutputs.validate("o/p/primary", outputs, region, expected_database_mode=RDS)
    require_failback_settings(ok, RDS, creates_failback=True)
    bad = {**outputs["databaseFailbackInstance"], "multiAz": "yes"}
    for malformed in ({"instanceClass": "db.r6g.large"}, bad):
        with pytest.raises(StackWiringError, match="databaseFailbackInstance"):
            PrimaryOutputs.validate(
                "o/p/primary",
                {**outputs, "databaseFailbackInstance": malformed},
                region,
                expected_database_mode=RDS,
            )
    older = {k: v for k, v in outputs.items() if k != "databaseFailbackInstance"}
    old = PrimaryOutputs.validate("o/p/primary", older, region, expected_database_mode=RDS)
    require_failback_settings(old, RDS, creates_failback=False)
    with pytest.raises(StackWiringError, match=r"databaseFailbackInstance.*pulumi up -s primary"):
        require_failback_settings(old, RDS, creates_failback=True)


# --------------------------------------------------------------------------------------------------
# B13b-7: the dr stack's region-A provider cannot authenticate with an instance role


def test_b13b_7_the_dr_stacks_region_a_provider_can_use_the_runners_instance_role() -> None:
    """Invariant: both providers of a stack, and the program's boto3 read, use the same credential chain
    (components/program.py ``read_region_b_served_since``: "The credentials are the ones the providers use").

    Pulumi AWS provider configuration, ``skipMetadataApiCheck``: "Setting to true prevents Pulumi from
    authenticating via the Metadata API. You may need to use other authentication methods like static
    credentials, configuration variables, or environment variables"
    (https://www.pulumi.com/registry/packages/aws/installation-configuration/; pulumi/pulumi-aws#3960 turned
    the default off so the provider "can authenticate against IMDS(v2) endpoints"). The metadata service
    is the runner's own (169.254.169.254), not region A's: region A being down does not make it slow.
    tests/components/test_stacks.py ``test_region_a_provider_of_the_dr_stack_tolerates_an_outage`` pins the
    flag, and would change with the fix."""
    from automation import synth

    dr = synth.synthesize("dr", {})
    a = dr.config["pilotlight:primaryRegion"]
    (prov,) = [r for r in dr.resources if r.is_provider and r.region == a]
    assert prov.inputs.get("skipMetadataApiCheck") not in (True, "true")


# --------------------------------------------------------------------------------------------------
# B13b-8: drInstances 1 -> 0 while region B holds the writer deletes the writer cluster's only instance


@functools.cache
def _headless_while_failed_over() -> Lifecycle:
    from automation.lifecycle_scenarios import runbook_failover

    lc = Lifecycle()
    lc.run(
        [
            Up("primary", "deploy: pulumi up -s primary", _db(AURORA, drInstances=1)),
            Up("dr", "deploy: pulumi up -s dr with an instance in region B", _db(AURORA, drInstances=1)),
            *runbook_failover(),
            Up("dr", "dr:active true", {"dr:active": True}),
            Up(
                "dr",
                "drInstances back to 0 while failed over",
                {"dr:active": True, **_db(AURORA, drInstances=0)},
            ),
        ]
    )
    return lc


def test_b13b_8_the_writer_clusters_last_instance_is_never_deleted_by_a_dr_update() -> None:
    """Invariant: no update removes the instance that serves the writer (issue 13: "traffic, latch and switch
    agree and point at a region that has capacity and the writer"; docs/safety.md, one writer that serves).

    DeleteDBInstance on the last instance of a global database's primary cluster: "InvalidDBClusterStateFault:
    Cannot delete the last instance of the master cluster. Delete the replica cluster before deleting the last
    master cluster instance" (hashicorp/terraform-provider-aws#26234; rebuy-de/aws-nuke#570 on an Aurora global
    database). An Aurora cluster without an instance takes no reads or writes: "the cluster volume ... is
    accessible through the DB instances" (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/
    Aurora.Overview.html). The update must be refused before any resource (as the headless upgrade is,
    components/engine_upgrade.py) or the harness must report it."""
    lc = _headless_while_failed_over()
    res = lc.results[-1]
    deleted = [
        p.name
        for p in res.plans
        if p.type == "aws:rds/clusterInstance:ClusterInstance" and p.action.value == "delete"
    ]
    assert lc.results[-2].observation.writer_region == "B"
    assert res.refused is not None or not deleted or res.violations, (
        f"region B holds the writer and the update deletes {deleted}, its only instance, unflagged"
    )
    # The program refuses it before any resource, naming the key.
    assert res.refused is not None and "drInstances" in res.refused, res.refused


def test_b13b_8_the_harness_rejects_deleting_the_writer_clusters_last_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Invariant: *provider-accepts* sees AWS's refusal to delete the last instance of a global database's
    writer cluster (lifecycle_tables.REJECTED_DELETES), whatever the program does: with the program's own
    refusal switched off, the step is reported as rejected, not applied."""
    from automation import lifecycle
    from components import engine_upgrade

    monkeypatch.setattr(engine_upgrade, "refuse_headless_writer", lambda *a, **k: None)
    lifecycle._synth.cache_clear()
    try:
        _headless_while_failed_over.cache_clear()
        lc = _headless_while_failed_over()
    finally:
        lifecycle._synth.cache_clear()
        _headless_while_failed_over.cache_clear()
    res = lc.results[-1]
    assert res.refused is None and not res.applied
    assert [v.invariant for v in res.violations] == ["provider-accepts"], res.violations
    assert "last instance" in res.violations[0].text


@pytest.mark.parametrize(
    ("dr_instances", "members", "failed_over", "refused"),
    [
        pytest.param(0, ("c-0",), True, True, id="last-instance-failed-over"),
        pytest.param(1, ("c-0", "c-1"), True, False, id="one-kept"),
        pytest.param(0, ("c-0", "c-failover-1"), True, False, id="runbook-writer-kept"),
        pytest.param(0, ("c-0",), False, False, id="standby"),
        pytest.param(0, (), True, False, id="already-headless"),
    ],
)
def test_b13b_8_refuse_headless_writer(
    dr_instances: int, members: tuple[str, ...], failed_over: bool, refused: bool
) -> None:
    """Invariant: failed over, a dr update never leaves region B's cluster without an instance."""
    from components.engine_upgrade import HeadlessWriterRefused, SecondaryCluster, refuse_headless_writer

    secondary = SecondaryCluster("c", "us-west-2", "16.4", members)
    kept = tuple(f"c-{i}" for i in range(dr_instances))
    if refused:
        with pytest.raises(HeadlessWriterRefused, match="drInstances"):
            refuse_headless_writer(dr_instances, kept, secondary, failed_over=failed_over)
    else:
        refuse_headless_writer(dr_instances, kept, secondary, failed_over=failed_over)


# --------------------------------------------------------------------------------------------------
# B13b-9: the replacement table calls every change of a DynamoDB table's replicas in place


@pytest.mark.parametrize(
    "new_replicas",
    [
        pytest.param(
            [{"regionName": "us-west-2", "kmsKeyArn": "arn:aws:kms:us-west-2:1:key/new"}], id="new-key"
        ),
        pytest.param([], id="replica-removed"),
    ],
)
def test_b13b_9_a_change_that_recreates_or_removes_region_bs_table_replica_is_flagged(
    new_replicas: list[dict[str, str]],
) -> None:
    """Invariant: *no-stateful-replace* / *no-stateful-delete* see region B's replica of the global table
    (issue 13: "check the replacement table's entries against pulumi-aws v7 docs").

    pulumi-aws ``aws.dynamodb.Table`` ``replicas[].kmsKeyArn``: "Note: Changing this value will recreate the
    replica" (https://www.pulumi.com/registry/packages/aws/api-docs/dynamodb/table/, TableReplica; the same
    in terraform-provider-aws website/docs/r/dynamodb_table.html.markdown; hashicorp/terraform-provider-aws#29102:
    "Terraform keeps planning to delete/recreate my replica"). A replica removed from ``replicas`` is deleted
    with UpdateTable ``ReplicaUpdates`` Delete (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/
    API_ReplicationGroupUpdate.html): region B's copy, the one the failover serves from, is gone."""
    from automation.lifecycle import Action, Stored, plan_resource

    table = "aws:dynamodb/table:Table"
    old_replicas = [{"regionName": "us-west-2", "kmsKeyArn": "arn:aws:kms:us-west-2:1:key/old"}]
    base = {"name": "t", "hashKey": "pk", "billingMode": "PAY_PER_REQUEST"}
    old = Stored(
        "urn:t", table, "primary-table", "primary", "us-east-1", {**base, "replicas": old_replicas}, {}
    )
    new = Stored(
        "urn:t", table, "primary-table", "primary", "us-east-1", {**base, "replicas": new_replicas}, {}
    )
    plan, _ = plan_resource(old, new)
    assert plan.losses, plan
    assert plan.action is Action.REPLACE or plan.errors, (
        f"replicas {old_replicas} -> {new_replicas}: planned as {plan.action.value}, "
        f"force-new {plan.force_new}, errors {plan.errors}"
    )


# --------------------------------------------------------------------------------------------------
# B13b-10: an in-place update of the latch parameter writes the state's value over the runbook's


def test_b13b_10_an_update_of_the_latch_never_silently_reverts_the_runbooks_value() -> None:
    """Invariant: *latch-holds-traffic* survives every update of the latch parameter, or the update is flagged.

    terraform-provider-aws internal/service/ssm/parameter.go ``resourceParameterUpdate``: on any change but
    tags it sends ``PutParameterInput{Name, Type, Value: d.Get("value"), Overwrite: ...}`` — the value from the
    planned state, which ``ignoreChanges`` takes from the old state ("the engine uses the old input value
    from state for the listed properties": https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/).
    PutParameter has no partial update: "Value ... Required: Yes"
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html)."""
    from automation.lifecycle import LiveWorld, Stored, apply_to_world, plan_resource

    param = "aws:ssm/parameter:Parameter"
    standby = json.dumps({"state": "standby"})
    active = json.dumps({"state": "active", "since": "2030-01-01T00:00:00+00:00", "runbook": "failover"})
    base = {"name": "/pilotlight/production/failover-state", "type": "String", "value": standby}
    old = Stored(
        "urn:latch", param, "dr-failover-latch", "dr", "us-west-2", {**base, "description": "v1"}, {}
    )
    new = Stored(
        "urn:latch",
        param,
        "dr-failover-latch",
        "dr",
        "us-west-2",
        {**base, "description": "v2"},
        {},
        ignore_changes=["value"],
    )
    world = LiveWorld()
    world.attrs["urn:latch"] = {**base, "description": "v1", "value": active}
    plan, stored = plan_resource(old, new)
    apply_to_world(world, plan, old, stored)
    reverted = world.attrs["urn:latch"]["value"] == standby
    assert plan.errors or reverted, (
        f"planned {plan.action.value} {sorted(plan.changed)}; the harness leaves the live latch "
        f"{world.attrs['urn:latch']['value']!r} where AWS would hold {standby!r}"
    )
    # and it is reported (invariants: no-out-of-band-overwrite), not silent
    assert plan.overwrites == [("value", active, standby)], plan.overwrites


LATCH = "aws:ssm/parameter:Parameter"
# The latch's inputs other than its value, as every release since the latch exists declared them. Any change
# of one of them (a description, type, tier, allowedPattern or dataType) is an update the provider sends as
# PutParameter(Overwrite) with the state's deploy-time value: it would write "standby" over the runbook's
# "active" mid-failover (B13b-10). Change them only with a migration that writes the live value back.
LATCH_INPUTS = {
    "name": "/pilotlight/production/failover-state",
    "type": "String",
    "description": "pilotlight failover latch: written by the failover runbook, read by pulumi up",
}


@functools.cache
def _through_failover_and_failback() -> Lifecycle:
    lc = Lifecycle()
    lc.run([*deploy(RDS), *declared_failover(RDS), *iac_failback(RDS)])
    return lc


def test_b13b_10_the_latch_declares_the_same_inputs_but_its_value_in_every_phase() -> None:
    """Invariant: no update of the dr stack ever rewrites the latch (B13b-10): its inputs other than
    ``value`` (ignored) are the same in every phase of a failover and failback, and the same as the
    released program's (``LATCH_INPUTS``), so the provider never sends the PutParameter that would
    overwrite the runbook's value with the state's; and the harness saw no such overwrite."""
    lc = _through_failover_and_failback()
    seen = [
        {k: v for k, v in r.inputs.items() if k != "value"}
        for s in lc.syntheses
        for r in s.aws_resources()
        if r.type == LATCH and r.name == "dr-failover-latch"
    ]
    assert len(seen) >= 5, len(seen)
    assert all(x == LATCH_INPUTS for x in seen), [x for x in seen if x != LATCH_INPUTS][:1]
    latch = lc.find("dr", LATCH, "dr-failover-latch")
    assert latch is not None and latch.ignore_changes == ["value"]
    overwrites = [v for r in lc.results for v in r.violations if v.invariant == "no-out-of-band-overwrite"]
    assert overwrites == [], overwrites


def test_b13b_9_control_an_in_place_replica_setting_loses_nothing() -> None:
    """Control for B13b-9: a replica setting the provider updates in place (pointInTimeRecovery) is a plain
    update with no loss; adding a replica neither."""
    from automation.lifecycle_tables import SUBRESOURCE_LOSSES

    _, lost, _ = SUBRESOURCE_LOSSES["aws:dynamodb/table:Table"]
    old = [{"regionName": "us-west-2", "kmsKeyArn": "k"}]
    assert lost(old, [{"regionName": "us-west-2", "kmsKeyArn": "k", "pointInTimeRecovery": True}]) == []
    assert lost(old, [*old, {"regionName": "eu-west-1", "kmsKeyArn": "k2"}]) == []


@pytest.mark.parametrize("mode", [AURORA, RDS])
def test_b13b_8_the_shrink_failed_over_scenario_catches_it(mode: str) -> None:
    """Invariant: the named scenario (``plan --lifecycle shrink-failed-over``) shows the refusal in
    aurora-global, and changes nothing in rds-replica (no Aurora instances), with no invariant broken."""
    lc = Lifecycle()
    lc.run(steps_for("shrink-failed-over", mode))
    last = lc.results[-1]
    assert last.label.startswith("drInstances back to 0 while failed over")
    if mode == AURORA:
        assert last.refused is not None and "drInstances" in last.refused, last.refused
    else:
        assert last.refused is None and last.applied, (last.refused, last.errors)
    assert [v for r in lc.results for v in r.violations] == []
