"""What the provider does with a changed input, per stateful resource type: the lifecycle harness's tables.

Pure data, no Pulumi. :mod:`automation.lifecycle` classifies every planned update with them:

- :data:`REPLACEMENT` — per stateful type, the inputs whose change forces a new resource (the
  provider schema's ``ForceNew``) and the inputs the provider updates in place. Every input the
  program sets on a stateful type must be in one of the two sets: an input in neither is reported
  as *unclassified* and fails the tests, so the table cannot be incomplete by omission.
- :data:`REJECTED` — argument changes the provider or AWS refuses at apply time although the plan
  shows an in-place update (e.g. re-pointing a promoted RDS instance at a source).

Every entry cites where the behaviour is documented. pulumi-aws 7 bridges
``hashicorp/terraform-provider-aws`` v6: the bridged schema (``ForceNew``) is the one Pulumi diffs
with, and the Pulumi registry pages state the same arguments in camelCase.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

TF = "hashicorp/terraform-provider-aws"
REGISTRY = "https://www.pulumi.com/registry/packages/aws/api-docs"


@dataclass(frozen=True)
class TypeRules:
    """How the provider treats a change to each input of one resource type."""

    force_new: frozenset[str]
    in_place: frozenset[str]
    source: str
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = self.force_new & self.in_place
        if both:
            raise ValueError(f"inputs classified both ways: {sorted(both)}")

    def classify(self, key: str) -> str | None:
        """``"force-new"``, ``"in-place"`` or None (not in the table)."""
        if key in self.force_new:
            return "force-new"
        if key in self.in_place:
            return "in-place"
        return None


def _rules(source: str, force_new: str, in_place: str, **notes: str) -> TypeRules:
    return TypeRules(frozenset(force_new.split()), frozenset(in_place.split()), source, notes)


# The stateful types: what holds data, or what data depends on (a key, a secret, the latch).
REPLACEMENT: dict[str, TypeRules] = {
    "aws:rds/instance:Instance": _rules(
        f"{TF} internal/service/rds/instance.go, resourceInstance() schema (ForceNew on engine, "
        "kms_key_id, storage_encrypted, username, db_name); identifier is updatable since v5.0.0 "
        f"({TF}#31232: the id is the DBI resource ID, resourceInstanceUpdate sends a changed identifier as "
        "ModifyDBInstance NewDBInstanceIdentifier: a rename in place, "
        "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html); "
        "replicate_source_db is updatable: "
        "website/docs/r/db_instance.html.markdown ('Removing the replicate_source_db attribute ... will "
        f"promote the database to a fully standalone database'); {REGISTRY}/rds/instance/",
        "engine kmsKeyId storageEncrypted username dbName",
        "identifier allocatedStorage applyImmediately autoMinorVersionUpgrade backupRetentionPeriod backupWindow "
        "copyTagsToSnapshot dbSubnetGroupName deleteAutomatedBackups deletionProtection engineVersion "
        "finalSnapshotIdentifier iamDatabaseAuthenticationEnabled instanceClass maintenanceWindow "
        "maxAllocatedStorage multiAz parameterGroupName passwordWo passwordWoVersion "
        "performanceInsightsEnabled performanceInsightsKmsKeyId performanceInsightsRetentionPeriod port "
        "publiclyAccessible replicateSourceDb skipFinalSnapshot storageType vpcSecurityGroupIds",
        replicateSourceDb="removing it calls PromoteReadReplica; setting it on an existing instance is "
        "refused (see REJECTED)",
        identifier="a rename in place (ModifyDBInstance NewDBInstanceIdentifier): the endpoint changes with "
        "the name, so every client of the instance loses it; never planned on a live instance (RENAMES)",
    ),
    "aws:rds/cluster:Cluster": _rules(
        f"{TF} internal/service/rds/cluster.go, resourceCluster() schema (ForceNew on cluster_identifier, "
        "database_name, db_subnet_group_name, engine, kms_key_id, master_username, storage_encrypted); "
        f"{REGISTRY}/rds/cluster/",
        "clusterIdentifier databaseName dbSubnetGroupName engine kmsKeyId masterUsername storageEncrypted",
        "backupRetentionPeriod copyTagsToSnapshot dbClusterParameterGroupName deleteAutomatedBackups "
        "deletionProtection enableHttpEndpoint engineVersion finalSnapshotIdentifier globalClusterIdentifier "
        "iamDatabaseAuthenticationEnabled masterPasswordWo masterPasswordWoVersion port "
        "preferredBackupWindow preferredMaintenanceWindow replicationSourceIdentifier skipFinalSnapshot "
        "vpcSecurityGroupIds",
        enableHttpEndpoint="the Data API switch: updatable (not ForceNew); for provisioned clusters the "
        "provider calls EnableHttpEndpoint/DisableHttpEndpoint "
        "(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_EnableHttpEndpoint.html)",
    ),
    "aws:rds/globalCluster:GlobalCluster": _rules(
        f"{TF} internal/service/rds/global_cluster.go, ResourceGlobalCluster() schema (ForceNew on "
        "global_cluster_identifier, engine, storage_encrypted, database_name; engine_version upgrades the "
        f"members: globalClusterUpgradeEngineVersion); {REGISTRY}/rds/globalcluster/",
        "globalClusterIdentifier engine storageEncrypted databaseName",
        "deletionProtection engineVersion",
    ),
    "aws:rds/clusterInstance:ClusterInstance": _rules(
        f"{TF} internal/service/rds/cluster_instance.go, ResourceClusterInstance() schema (ForceNew on "
        "identifier, cluster_identifier, engine, db_subnet_group_name); engine_version: 'to upgrade the "
        "engine_version of the instance, it must be done on the aws_rds_cluster engine_version' "
        f"(website/docs/r/rds_cluster_instance.html.markdown); {REGISTRY}/rds/clusterinstance/",
        "identifier clusterIdentifier engine dbSubnetGroupName",
        "autoMinorVersionUpgrade copyTagsToSnapshot engineVersion instanceClass performanceInsightsEnabled "
        "performanceInsightsKmsKeyId performanceInsightsRetentionPeriod promotionTier publiclyAccessible",
        engineVersion="never applied by the instance resource (the cluster owns the version)",
    ),
    "aws:s3/bucket:Bucket": _rules(
        f"{TF} internal/service/s3/bucket.go (ForceNew on bucket, bucket_prefix); {REGISTRY}/s3/bucket/",
        "bucket bucketPrefix",
        "forceDestroy",
    ),
    "aws:s3/bucketVersioning:BucketVersioning": _rules(
        f"{TF} internal/service/s3/bucket_versioning.go (ForceNew on bucket, expected_bucket_owner); "
        f"{REGISTRY}/s3/bucketversioning/",
        "bucket expectedBucketOwner",
        "versioningConfiguration",
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _rules(
        f"{TF} internal/service/s3/bucket_server_side_encryption_configuration.go (ForceNew on bucket, "
        f"expected_bucket_owner); {REGISTRY}/s3/bucketserversideencryptionconfiguration/",
        "bucket expectedBucketOwner",
        "rules",
    ),
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": _rules(
        f"{TF} internal/service/s3/bucket_replication_configuration.go (ForceNew on bucket); "
        f"{REGISTRY}/s3/bucketreplicationconfig/",
        "bucket",
        "role rules",
    ),
    "aws:dynamodb/table:Table": _rules(
        f"{TF} internal/service/dynamodb/table.go, resourceTable() schema (ForceNew on name, hash_key, "
        f"range_key); {REGISTRY}/dynamodb/table/",
        "name hashKey rangeKey",
        "attributes billingMode deletionProtectionEnabled pointInTimeRecovery replicas serverSideEncryption "
        "streamEnabled streamViewType",
    ),
    "aws:kms/key:Key": _rules(
        f"{TF} internal/service/kms/key.go, resourceKey() schema (ForceNew on key_usage, "
        "customer_master_key_spec, multi_region, custom_key_store_id, xks_key_id; description, "
        f"enable_key_rotation, deletion_window_in_days, policy updatable: policy through PutKeyPolicy); "
        f"{REGISTRY}/kms/key/",
        "keyUsage customerMasterKeySpec multiRegion customKeyStoreId xksKeyId",
        "deletionWindowInDays description enableKeyRotation policy",
    ),
    "aws:secretsmanager/secret:Secret": _rules(
        f"{TF} internal/service/secretsmanager/secret.go (ForceNew on name, name_prefix; kms_key_id, "
        f"replica, recovery_window_in_days updatable); {REGISTRY}/secretsmanager/secret/",
        "name namePrefix",
        "description kmsKeyId recoveryWindowInDays replicas",
    ),
    "aws:backup/vault:Vault": _rules(
        f"{TF} internal/service/backup/vault.go (ForceNew on name, kms_key_arn); {REGISTRY}/backup/vault/",
        "name kmsKeyArn",
        "forceDestroy",
    ),
    "aws:ssm/parameter:Parameter": _rules(
        f"{TF} internal/service/ssm/parameter.go, resourceParameter() schema (ForceNew on name, data_type; "
        f"value, type, description updatable through PutParameter Overwrite); {REGISTRY}/ssm/parameter/",
        "name dataType",
        "description type value",
    ),
    "aws:route53/zone:Zone": _rules(
        f"{TF} internal/service/route53/zone.go (ForceNew on name, delegation_set_id); "
        f"{REGISTRY}/route53/zone/",
        "name delegationSetId",
        "comment forceDestroy",
    ),
}

STATEFUL_TYPES = frozenset(REPLACEMENT)

# Inputs that name a stateful resource and that the provider changes *in place*, i.e. a rename of the
# live resource. An RDS instance's endpoint contains its identifier
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html: "When you rename a
# DB instance, the endpoint for the DB instance changes"), and, without a refresh, the provider sends
# the rename to the instance that has the *state's* identifier now, which after the runbook's
# rename-to-replace is a different instance. The harness reports every such planned change
# (invariant ``no-stateful-rename``): a routine update never renames a stateful resource.
RENAMES: dict[str, str] = {"aws:rds/instance:Instance": "identifier"}

# Stateful types whose deletion loses data, protection or the failover state: never acceptable.
# Aurora cluster instances are absent on purpose: the cluster volume holds the data, and
# `database.drInstances` adds and removes instances by design (a *replacement* is still flagged).
NO_DELETE_TYPES = STATEFUL_TYPES - {"aws:rds/clusterInstance:ClusterInstance"}


# --------------------------------------------------------------------------------------------------
# changes the provider or AWS refuses


@dataclass(frozen=True)
class Change:
    """One planned in-place update of one input, with what the live world says about the resource."""

    type: str
    key: str
    old: Any
    new: Any
    live: Mapping[str, Any]  # the resource's live facts (see automation.lifecycle.LiveWorld.facts)


@dataclass(frozen=True)
class RejectedChange:
    """An update the plan shows but the provider or AWS refuses when it is applied."""

    id: str
    type: str
    key: str
    applies: Callable[[Change], bool]
    error: str
    source: str


def _absent(v: Any) -> bool:
    return v in (None, "")


def _version(v: Any) -> tuple[int, ...] | None:
    """A numeric engine version ("16.4" -> (16, 4)); None when not one (absent, or a prefix of words)."""
    try:
        return tuple(int(p) for p in str(v).split("."))
    except ValueError:
        return None


def _downgrade(c: Change) -> bool:
    """A lower version, not a prefix of the old one: the provider takes a configured prefix ("16") of the
    actual version ("16.6") as no change (pulumi-aws rds.Instance engineVersion: "you can provide a prefix of
    the version"; terraform-provider-aws internal/service/rds compareActualEngineVersion)."""
    old, new = _version(c.old), _version(c.new)
    return old is not None and new is not None and new < old and old[: len(new)] != new


def _major_change(c: Change) -> bool:
    old, new = _version(c.old), _version(c.new)
    return old is not None and new is not None and old[0] != new[0]


def _ahead_of_replicas(c: Change) -> bool:
    new = _version(c.new)
    replicas = [_version(v) for v in c.live.get("replica_versions", ())]
    return new is not None and any(r is not None and r < new for r in replicas)


_NO_DOWNGRADE = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Upgrading.html (an "
    "upgraded instance cannot be reverted to a previous version: restore the pre-upgrade snapshot); "
    "ModifyDBInstance EngineVersion is 'The version number of the database engine to upgrade to' "
    "(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html)"
)

REJECTED: tuple[RejectedChange, ...] = (
    RejectedChange(
        id="rds-instance-new-source",
        type="aws:rds/instance:Instance",
        key="replicateSourceDb",
        applies=lambda c: _absent(c.old) and not _absent(c.new),
        error="cannot elect new source database for replication: an existing instance is never re-pointed "
        "at a source (a promoted replica stays standalone; a new replica must be created)",
        source=f"{TF} internal/service/rds/instance.go, resourceInstanceUpdate: d.HasChange"
        '("replicate_source_db") with a non-empty value returns "cannot elect new source database for '
        'replication" (also hashicorp/terraform-provider-aws#16054)',
    ),
    RejectedChange(
        id="rds-promote-standalone",
        type="aws:rds/instance:Instance",
        key="replicateSourceDb",
        applies=lambda c: not _absent(c.old) and _absent(c.new) and not c.live.get("is_replica", True),
        error="PromoteReadReplica on an instance that is no longer a read replica (promoted out of band): "
        "RDS answers InvalidDBInstanceState; the state still says 'replica' because nothing refreshed it",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html "
        "(DBInstanceIdentifier: 'Must match the identifier of an existing read replica DB instance'; "
        f"errors: InvalidDBInstanceState); {TF} instance.go calls PromoteReadReplica when "
        "replicate_source_db is removed",
    ),
    RejectedChange(
        id="global-upgrade-headless-member",
        type="aws:rds/globalCluster:GlobalCluster",
        key="engineVersion",
        applies=lambda c: c.old != c.new and bool(c.live.get("headless_members")),
        error="a minor upgrade of the global database modifies every member cluster, and a member with no "
        "instance cannot be modified: 'Cannot modify engine version without a primary instance in DB "
        "cluster' (a headless secondary cannot be minor-upgraded)",
        source=f"{TF} internal/service/rds/global_cluster.go, globalClusterUpgradeMinorEngineVersion "
        "(InvalidDBClusterStateFault 'Cannot modify engine version without a primary instance in DB "
        "cluster' is not retried); https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/"
        "aurora-global-database-upgrade.html (minor upgrades: secondary clusters need at least one DB "
        "instance)",
    ),
    RejectedChange(
        id="rds-instance-engine-downgrade",
        type="aws:rds/instance:Instance",
        key="engineVersion",
        applies=_downgrade,
        error="engine_version lowered on an RDS instance: RDS has no in-place downgrade (e.g. a pinned minor "
        "after RDS's auto minor upgrade moved past it); the ModifyDBInstance fails",
        source=_NO_DOWNGRADE,
    ),
    RejectedChange(
        id="rds-instance-major-without-allow",
        type="aws:rds/instance:Instance",
        key="engineVersion",
        applies=lambda c: _major_change(c) and not c.live.get("allow_major_version_upgrade"),
        error="engine_version changed to another major version without allowMajorVersionUpgrade: RDS "
        "refuses the ModifyDBInstance",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html "
        "(AllowMajorVersionUpgrade: 'This parameter must be set to true when specifying a value for the "
        "EngineVersion parameter that is a different major version than the DB instance's current version')",
    ),
    RejectedChange(
        id="rds-source-upgraded-before-replicas",
        type="aws:rds/instance:Instance",
        key="engineVersion",
        applies=_ahead_of_replicas,
        error="engine_version raised on a source instance whose read replicas are on an older version: AWS "
        "requires every read replica to be upgraded before the source",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.PostgreSQL.html "
        "(minor version upgrades: 'If your database has read replicas, you must first upgrade all of the "
        "read replicas before you upgrade the source instance or cluster')",
    ),
    RejectedChange(
        id="global-cluster-engine-downgrade",
        type="aws:rds/globalCluster:GlobalCluster",
        key="engineVersion",
        applies=_downgrade,
        error="engine_version lowered on the global database: Aurora has no in-place downgrade (restore a "
        "snapshot instead)",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_UpgradeDBInstance.Upgrading.html; "
        "ModifyDBCluster EngineVersion names 'The version number of the database engine to which you want "
        "to upgrade' (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html)",
    ),
    RejectedChange(
        id="member-cluster-engine-version",
        type="aws:rds/cluster:Cluster",
        key="engineVersion",
        applies=lambda c: c.old != c.new and bool(c.live.get("global_member")),
        error="engine_version changed on a member cluster of a global database: AWS upgrades secondaries "
        "before the primary ('upgrade global replicas first'), the global cluster resource already upgrades "
        "every member, and the provider documents ignore_changes on the member clusters' engine_version",
        source=f"{REGISTRY}/rds/globalcluster/ (engineVersion: 'By upgrading the engine version, the "
        "provider will upgrade cluster members. NOTE: To avoid an inconsistent final plan error while "
        "upgrading, use the lifecycle ignoreChanges for engineVersion meta argument on the associated "
        "aws.rds.Cluster resource'); https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/"
        "AuroraMySQL.Updates.Patching.ModifyEngineVersion.html ('upgrade all of the secondary clusters "
        "before you upgrade the primary cluster')",
    ),
)

# A create whose physical name already exists (made out of band by the runbook) is refused.
EXISTS_ERRORS: dict[str, tuple[str, str]] = {
    "aws:rds/instance:Instance": (
        "identifier",
        "DBInstanceAlreadyExists: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/"
        "API_CreateDBInstanceReadReplica.html (errors)",
    ),
    "aws:rds/clusterInstance:ClusterInstance": (
        "identifier",
        "DBInstanceAlreadyExists: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/"
        "API_CreateDBInstance.html (errors)",
    ),
}

# --------------------------------------------------------------------------------------------------
# the `import` resource option: what is compared with the live resource


# Arguments the provider never reads back from AWS, so an import cannot compare them: they live
# only in the program and the state (the provider's acceptance tests leave exactly these out of
# their import checks: hashicorp/terraform-provider-aws internal/service/rds/instance_test.go and
# cluster_test.go, ImportStateVerifyIgnore: apply_immediately, delete_automated_backups,
# final_snapshot_identifier, password, skip_final_snapshot) and write-only arguments are never
# returned: https://www.pulumi.com/docs/iac/concepts/secrets/write-only-fields ("never returned by the
# cloud provider's API ... On subsequent Read operations, the value will be set to null").
IMPORT_UNREAD: dict[str, frozenset[str]] = {
    "aws:rds/instance:Instance": frozenset(
        {
            "applyImmediately",
            "deleteAutomatedBackups",
            "finalSnapshotIdentifier",
            "skipFinalSnapshot",
            "passwordWo",
            "passwordWoVersion",
        }
    ),
    "aws:rds/clusterInstance:ClusterInstance": frozenset({"applyImmediately"}),
    "aws:rds/cluster:Cluster": frozenset(
        {
            "applyImmediately",
            "deleteAutomatedBackups",
            "finalSnapshotIdentifier",
            "skipFinalSnapshot",
            "masterPasswordWo",
            "masterPasswordWoVersion",
        }
    ),
}

# Optional arguments the provider does not compute: left out of the program while AWS has a value,
# they differ from the live resource (the update would remove them). Removing ``replicate_source_db``
# promotes the replica (website/docs/r/db_instance.html.markdown), so adopting a replica without it
# does not match; ``tags`` left out removes the resource's tags (``tags_all`` is the computed one:
# https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/ "tags ... tagsAll: A map of tags
# assigned to the resource, including those inherited from the provider defaultTags").
IMPORT_ABSENT_DIFFERS: dict[str, frozenset[str]] = {
    "aws:rds/instance:Instance": frozenset({"replicateSourceDb", "tags"}),
    # ``promotionTier`` left out is the provider's schema default, "Default 0"
    # (https://www.pulumi.com/registry/packages/aws/api-docs/rds/clusterinstance/), not what AWS gives
    # an instance created without one, "Default: 1"
    # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html, BL21-5).
    "aws:rds/clusterInstance:ClusterInstance": frozenset({"promotionTier"}),
}

# What the engine refuses on its own, before any provider call.
ENGINE_RULES = {
    "protect-delete": "a protected resource cannot be deleted: the engine stops the update ('unable to "
    "delete resource ... as it is currently marked for protection'); "
    "https://www.pulumi.com/docs/iac/concepts/options/protect/",
    "protect-replace": "a protected resource cannot be replaced; "
    "https://www.pulumi.com/docs/iac/concepts/options/protect/",
    "retain-on-delete": "retainOnDelete: the resource leaves the stack's state and stays in AWS; "
    "https://www.pulumi.com/docs/iac/concepts/options/retainondelete/",
    "import-mismatch": "inputs to import do not match the existing resource: the engine diffs the program's "
    "inputs against the resource the provider reads and fails the import on any difference "
    "(https://www.pulumi.com/docs/iac/concepts/options/import/: 'If the resource's arguments differ from "
    "the imported state, the import will fail ... error: inputs to import do not match the existing "
    "resource'; pulumi/pulumi#2893, step.go: 'If there are any differences, fail the import'). Engines "
    "after pulumi/pulumi#19339 import and then update the resource to the program's inputs instead "
    "(the page since pulumi/docs#16580): the adoption changes the live database either way",
    "ignore-changes": "ignoreChanges: the engine uses the old input value from state for the listed "
    "properties on update (never on create); https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/",
}


def _replicas_lost(old: Any, new: Any) -> list[str]:
    """Region replicas of a DynamoDB table that an in-place update of ``replicas`` deletes or recreates."""

    def by_region(v: Any) -> dict[str, Mapping[str, Any]]:
        return {str(r.get("regionName")): r for r in (v or []) if isinstance(r, Mapping)}

    o, n = by_region(old), by_region(new)
    out = [f"region {r}'s replica is removed (deleted)" for r in sorted(set(o) - set(n))]
    out += [
        f"region {r}'s replica is recreated (kmsKeyArn {o[r].get('kmsKeyArn')} -> {n[r].get('kmsKeyArn')})"
        for r in sorted(set(o) & set(n))
        if o[r].get("kmsKeyArn") != n[r].get("kmsKeyArn")
    ]
    return out


# In-place updates of a stateful resource that delete or recreate a part of it holding data: type -> (input,
# what it loses, source). The harness stops the step and reports ``no-stateful-delete`` (the provider
# accepts it: the plan shows a plain update). A table's replica in region B is the copy the failover serves.
SUBRESOURCE_LOSSES: dict[str, tuple[str, Callable[[Any, Any], list[str]], str]] = {
    "aws:dynamodb/table:Table": (
        "replicas",
        _replicas_lost,
        f"{REGISTRY}/dynamodb/table/ (replicas[].kmsKeyArn: 'Changing this value will recreate the replica'; "
        f"{TF} website/docs/r/dynamodb_table.html.markdown); a replica left out is deleted with UpdateTable "
        "ReplicaUpdates Delete (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/"
        "API_ReplicationGroupUpdate.html)",
    ),
}


# Updates the provider sends as one whole write: type -> (inputs whose change alone is a separate call,
# inputs written from the planned state on any other change). The SSM parameter's update is one
# PutParameter with Overwrite carrying Name, Type and Value (terraform-provider-aws
# internal/service/ssm/parameter.go resourceParameterUpdate: on d.HasChangesExcept("overwrite", tags,
# tags_all) it sends PutParameterInput{AllowedPattern, Name, Overwrite, Tier, Type, Value: d.Get("value")}); PutParameter has no partial update
# ("Value ... Required: Yes": https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html),
# and under ignoreChanges "the engine uses the old input value from state for the listed properties"
# (https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/): a description, type, tier or
# allowed-pattern change of the latch writes the state's (deploy-time) value over the runbook's.
WHOLE_WRITE_UPDATES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "aws:ssm/parameter:Parameter": (frozenset({"overwrite", "tags", "tagsAll"}), ("value",)),
}
WHOLE_WRITE_SOURCE = {
    "aws:ssm/parameter:Parameter": "the provider's update is one PutParameter(Overwrite) carrying the state's "
    "value (terraform-provider-aws internal/service/ssm/parameter.go resourceParameterUpdate; "
    "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html)",
}

# Deletions AWS refuses, by what the live world says (automation.lifecycle.Lifecycle._up checks them).
REJECTED_DELETES = {
    # The last DB instance of an Aurora global database's writer (primary) cluster.
    "writer-cluster-last-instance": "AWS refuses deleting the last instance of an Aurora global database's "
    "writer cluster: InvalidDBClusterStateFault 'Cannot delete the last instance of the master cluster. Delete "
    "the replica cluster before deleting the last master cluster instance' (hashicorp/terraform-provider-aws"
    "#26234; rebuy-de/aws-nuke#570); a cluster without an instance takes no reads or writes ('the cluster "
    "volume ... is accessible through the DB instances': "
    "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.html)",
}


def rejected(change: Change) -> list[RejectedChange]:
    """The rules that refuse ``change``."""
    return [r for r in REJECTED if r.type == change.type and r.key == change.key and r.applies(change)]
