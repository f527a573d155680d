"""The state-carrying plan harness on hand-made state: ignore_changes, protect, release, the tables.

No synthesis here: these pin the engine semantics the lifecycle scenarios rely on, each against the
documented behaviour cited in automation/lifecycle_tables.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from automation import lifecycle, lifecycle_tables, plan
from automation.lifecycle import Action, Db, LiveWorld, Stored, plan_removal, plan_resource
from automation.lifecycle_tables import REJECTED, REPLACEMENT, Change

INSTANCE = "aws:rds/instance:Instance"
GLOBAL = "aws:rds/globalCluster:GlobalCluster"
CLUSTER = "aws:rds/cluster:Cluster"


def stored(type_: str = INSTANCE, name: str = "db", **kw: Any) -> Stored:
    inputs = kw.pop("inputs", {})
    return Stored(
        urn=f"urn:{type_}::{name}",
        type=type_,
        name=name,
        stack="dr",
        region="us-west-2",
        inputs=inputs,
        outputs={},
        **kw,
    )


# --------------------------------------------------------------------------------------------------
# ignore_changes, against the previous state


def test_ignore_changes_takes_the_previous_states_value_not_the_new_input() -> None:
    old = stored(inputs={"value": "active", "description": "d"})
    new = stored(inputs={"value": "standby", "description": "d"}, ignore_changes=["value"])
    result, state = plan_resource(old, new)
    assert result.action is Action.SAME and result.changed == {}
    assert state.inputs["value"] == "active"  # what the engine keeps: the old input


def test_lifting_ignore_changes_diffs_against_the_state_not_the_live_value() -> None:
    # The runbook wrote "active" out of band; the state still holds "standby": sending "standby" again
    # is no change at all, so nothing is written (the latch finding).
    old = stored(inputs={"value": "standby"})
    new = stored(inputs={"value": "standby"})
    result, _ = plan_resource(old, new)
    assert result.action is Action.SAME


def test_an_ignored_property_absent_from_state_stays_absent() -> None:
    old = stored(inputs={"identifier": "x"})
    new = stored(
        inputs={"identifier": "x", "replicateSourceDb": "arn:a"}, ignore_changes=["replicateSourceDb"]
    )
    result, state = plan_resource(old, new)
    assert result.action is Action.SAME and "replicateSourceDb" not in state.inputs


def test_ignore_changes_does_not_apply_on_create() -> None:
    new = stored(inputs={"replicateSourceDb": "arn:a"}, ignore_changes=["replicateSourceDb"])
    result, state = plan_resource(None, new)
    assert result.action is Action.CREATE and state.inputs["replicateSourceDb"] == "arn:a"


# --------------------------------------------------------------------------------------------------
# classification and protect


def test_a_force_new_input_replaces_and_protect_stops_the_update() -> None:
    # kmsKeyId is ForceNew on aws_db_instance (identifier is not since provider v5: break13, B13-5).
    old = stored(inputs={"kmsKeyId": "a"}, protect=True)
    new = stored(inputs={"kmsKeyId": "b"}, protect=True)
    result, _ = plan_resource(old, new)
    assert result.action is Action.REPLACE and result.force_new == ["kmsKeyId"]
    assert any("protected" in e for e in result.errors)


def test_an_in_place_input_updates_without_error() -> None:
    result, _ = plan_resource(stored(inputs={"instanceClass": "a"}), stored(inputs={"instanceClass": "b"}))
    assert result.action is Action.UPDATE and not result.errors and not result.unclassified


def test_an_input_missing_from_the_table_is_reported_unclassified() -> None:
    result, _ = plan_resource(stored(inputs={"brandNew": 1}), stored(inputs={"brandNew": 2}))
    assert result.unclassified == ["brandNew"]


def test_removal_deletes_unless_retained_and_protect_refuses_either() -> None:
    assert plan_removal(stored()).action is Action.DELETE
    released = plan_removal(stored(retain_on_delete=True))
    assert released.action is Action.RELEASE and not released.errors
    assert plan_removal(stored(retain_on_delete=True, protect=True)).errors


# --------------------------------------------------------------------------------------------------
# rejected changes


@pytest.mark.parametrize(
    ("old", "new", "live", "rule"),
    [
        (None, "arn:source", {"is_replica": False}, "rds-instance-new-source"),
        ("arn:source", None, {"is_replica": False}, "rds-promote-standalone"),
    ],
    ids=["re-point-a-promoted-instance", "promote-an-already-promoted-instance"],
)
def test_replicate_source_db_changes_the_provider_refuses(
    old: Any, new: Any, live: dict[str, Any], rule: str
) -> None:
    assert [
        r.id for r in lifecycle_tables.rejected(Change(INSTANCE, "replicateSourceDb", old, new, live))
    ] == [rule]


def test_promoting_a_replica_is_accepted() -> None:
    assert (
        lifecycle_tables.rejected(Change(INSTANCE, "replicateSourceDb", "arn:s", None, {"is_replica": True}))
        == []
    )


def test_a_global_upgrade_with_a_headless_member_is_refused() -> None:
    headless = Change(GLOBAL, "engineVersion", "16.4", "16.6", {"headless_members": ["b"]})
    assert [r.id for r in lifecycle_tables.rejected(headless)] == ["global-upgrade-headless-member"]
    assert (
        lifecycle_tables.rejected(Change(GLOBAL, "engineVersion", "16.4", "16.6", {"headless_members": []}))
        == []
    )


def test_a_member_clusters_engine_version_change_is_refused() -> None:
    member = Change(CLUSTER, "engineVersion", "16.4", "16.6", {"global_member": True})
    assert [r.id for r in lifecycle_tables.rejected(member)] == ["member-cluster-engine-version"]


def test_creating_an_identifier_that_exists_out_of_band_fails() -> None:
    result, _ = plan_resource(
        None, stored(inputs={"identifier": "x-failback"}), {"existing_identifiers": {"x-failback"}}
    )
    assert result.errors and "already exists" in result.errors[0]


# --------------------------------------------------------------------------------------------------
# the live world


def test_promotion_makes_the_writer_only_a_replica_of_the_writer() -> None:
    w = LiveWorld(writer="a")
    w.dbs = {
        "a": Db("a", "A", "instance", None, "s"),
        "b": Db("b", "B", "instance", "a", "s"),
        "stale": Db("stale", "B", "instance", None, "s"),
        "c": Db("c", "A", "instance", "stale", "s"),
    }
    w.promote("c")
    assert w.writer == "a"  # a replica of a stale copy holds none of the writer's data
    w.promote("b")
    assert w.writer == "b" and w.dbs["b"].source is None


def test_global_failover_turns_the_other_members_into_secondaries() -> None:
    w = LiveWorld(writer="a")
    w.dbs = {
        "a": Db("a", "A", "cluster", None, "s", global_id="g"),
        "b": Db("b", "B", "cluster", "a", "s", global_id="g"),
    }
    w.global_failover("b")
    assert (w.writer, w.dbs["a"].source, w.dbs["b"].source) == ("b", "b", None)


@pytest.mark.parametrize(
    ("live", "capacity"),
    [
        ({"minSize": 0, "maxSize": 0, "desiredCapacity": 2}, 0),
        ({"minSize": 2, "maxSize": 6}, 2),
        ({"minSize": 0, "maxSize": 6, "desiredCapacity": 3}, 3),
    ],
)
def test_asg_capacity_clamps_desired_to_min_and_max(live: dict[str, Any], capacity: int) -> None:
    assert lifecycle.asg_capacity(live) == capacity


# --------------------------------------------------------------------------------------------------
# the tables cite their sources


def test_every_table_entry_cites_its_source() -> None:
    for type_, rules in REPLACEMENT.items():
        assert "terraform-provider-aws" in rules.source and "pulumi.com/registry" in rules.source, type_
        assert rules.force_new and rules.in_place, type_
    for rule in REJECTED:
        assert rule.source.startswith(("http", "hashicorp/")) or "https://" in rule.source, rule.id
    for type_, (_attr, source) in lifecycle_tables.EXISTS_ERRORS.items():
        assert "docs.aws.amazon.com" in source, type_


# --------------------------------------------------------------------------------------------------
# CLI


def test_plan_lifecycle_refuses_an_unknown_scenario_with_the_allowed_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert plan.main(["--lifecycle", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "declared-iac" in err and "runbook-iac" in err and "upgrade" in err


def test_plan_lifecycle_prints_each_steps_plan_and_a_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Shares its syntheses with the "upgrade" scenario tests (automation.lifecycle caches them).
    assert plan.main(["--lifecycle", "upgrade-headless", "--set", "database.mode=aurora-global"]) == 0
    out = capsys.readouterr().out
    assert "lifecycle upgrade-headless (aurora-global)" in out
    # The program refuses the upgrade before any resource (a headless secondary): nothing planned.
    assert out.count("summary step ") == 4 and "stateful replacements 0" in out
    assert "REFUSED by the program: pilotlight:database.engineVersion: 16.4 -> 16.6" in out
    assert "~  update  rds.GlobalCluster" not in out and "ERROR (update stops" not in out


# --------------------------------------------------------------------------------------------------
# the `import` option: the program's inputs against the live resource


def _import(inputs: dict[str, Any], **kw: Any) -> Stored:
    return stored(inputs=inputs, import_id="db-a", **kw)


@pytest.mark.parametrize(
    ("inputs", "live", "ignore", "mismatched"),
    [
        ({"instanceClass": "db.r6g.large"}, {"instanceClass": "db.r6g.large"}, [], []),
        ({"instanceClass": "db.r6g.large"}, {"instanceClass": "db.t4g.micro"}, [], ["instanceClass"]),
        # Declared but left to AWS by whoever made it: AWS's value is not the program's.
        ({"backupRetentionPeriod": 7}, {}, [], ["backupRetentionPeriod"]),
        # ignoreChanges is honoured on import; provider-only arguments are never read back.
        ({"backupRetentionPeriod": 7}, {"backupRetentionPeriod": 1}, ["backupRetentionPeriod"], []),
        ({"skipFinalSnapshot": True, "applyImmediately": True}, {}, [], []),
        # Left out of the program: the provider computes most; not a source or the tags.
        ({}, {"backupRetentionPeriod": 1}, [], []),
        ({}, {"replicateSourceDb": "arn:src"}, [], ["replicateSourceDb"]),
        ({}, {"tags": {"stamp": "1"}}, [], ["tags"]),
        # A reference compares by what it names.
        ({"replicateSourceDb": "arn:src"}, {"replicateSourceDb": "src"}, [], []),
    ],
    ids=[
        "match",
        "differs",
        "aws-chose",
        "ignored",
        "unread",
        "computed-absent",
        "source-absent",
        "tags-absent",
        "reference",
    ],
)
def test_an_import_is_compared_with_the_live_resource(
    inputs: dict[str, Any], live: dict[str, Any], ignore: list[str], mismatched: list[str]
) -> None:
    refs = {"arn:src": "src"}
    facts = {"existing_identifiers": {"db-a"}, "import_live": live, "resolve": lambda v: refs.get(v, v)}
    result, _ = plan_resource(None, _import(inputs, ignore_changes=ignore), facts)
    assert result.action is Action.IMPORT
    assert [k for k, _, _ in result.import_mismatches] == mismatched
    # The engine stops the update on a mismatch ("inputs to import do not match the existing resource").
    assert bool(result.errors) == bool(mismatched)
    assert all("do not match" in e for e in result.errors)


def test_the_runbooks_failback_replica_is_modelled_on_the_old_primary_and_inherits_from_its_source() -> None:
    old = {
        "instanceClass": "db.r6g.large",
        "multiAz": True,
        "dbSubnetGroupName": "a-subnets",
        "vpcSecurityGroupIds": ["sg-a"],
        "iamDatabaseAuthenticationEnabled": True,
        "parameterGroupName": "a-pg",
    }
    source = {
        "identifier": "b-db",
        "engine": "postgres",
        "engineVersion": "16.4",
        "port": 5432,
        "storageEncrypted": True,
        "backupRetentionPeriod": 7,
        "copyTagsToSnapshot": True,
        "maintenanceWindow": "sun:04:30-sun:05:30",
        "parameterGroupName": "b-pg",
        "kmsKeyId": "b-key",
    }
    attrs = lifecycle._runbook_failback_replica(
        "a-db", old, source, {"primaryKmsKeyArn": "a-key"}, {"t": "1"}
    )
    assert attrs["replicateSourceDb"] == "b-db" and attrs["instanceClass"] == "db.r6g.large"
    assert (attrs["backupRetentionPeriod"], attrs["copyTagsToSnapshot"]) == (0, False)  # backups disabled
    assert attrs["kmsKeyId"] == "a-key" and attrs["maintenanceWindow"] == "sun:04:30-sun:05:30"
    assert "parameterGroupName" not in attrs  # postgres: the default group of the region
    assert attrs["tags"] == {"t": "1"} and "deletionProtection" not in attrs
