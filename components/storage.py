"""Storage blocks of the data tier: encrypted buckets, S3 replication, the DynamoDB global table, backups.

Every store is encrypted with a customer-managed KMS key of its own region, and every cross-region copy
(bucket replica, table replica, backup copy) with the destination region's key. The policy documents
are built by plain functions (no Pulumi) so they are tested directly.

RPO each store gives (AWS figures; see the module functions for where each is configured):

- S3 cross-region replication: asynchronous; with Replication Time Control, 99.99 % of objects within
  15 minutes (an SLA), most within seconds; without it, no time guarantee.
- DynamoDB global table: asynchronous, multi-active; AWS publishes no bound, only the
  ``ReplicationLatency`` metric (typically around a second).
- AWS Backup: the last copy in region B, i.e. up to the schedule interval (one day by default).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import assume_role_policy
from lambdas.failover.names import REPLICATION_RULE_ID, fit

# S3 bucket_prefix may be at most 37 characters: the provider appends a 26-character unique suffix.
BUCKET_PREFIX_MAX = 37
# Objects move to Intelligent-Tiering after this many days (S3 charges no retrieval fee there, so a
# failover reading old objects in region B costs nothing extra). Archive tiers stay off: archived
# objects must be restored before they can be read, which would lengthen recovery.
INTELLIGENT_TIERING_AFTER_DAYS = 30
ABORT_MULTIPART_AFTER_DAYS = 7
REPLICATION_TIME_MINUTES = 15  # the only value S3 Replication Time Control accepts
BACKUP_SCHEDULE = "cron(0 5 ? * * *)"  # daily, 05:00 UTC, after the RDS backup window
BACKUP_RETENTION_DAYS = 35
BACKUP_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)


# --------------------------------------------------------------------------------------------------
# pure helpers


def bucket_prefix(prefix: str, region: str) -> str:
    """A bucket-name prefix ``<app>-<env>-<region>-`` that fits S3's 37-character prefix limit.

    The ``<app>-<env>`` part is shortened first so the region, which keeps both stacks' buckets apart,
    always survives; shortened, it ends in a hash of all of it (``fit``, as every other physical name).
    A bucket's name is the only fence between two environments of one account in the deploy policy
    (``arn:aws:s3:::<prefix>*``, automation/iam.py ``bucket_resources``; an IAM ``*`` matches any
    characters, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html),
    so a plain cut would give ``staging`` and ``stage`` of one long app name the same prefix. A prefix
    that fits is unchanged (no existing bucket is renamed by this); one that had to be shortened gets the
    hash, and its existing bucket keeps its name (``DataBucket``: ``bucketPrefix`` ignored after create).
    """
    tail = f"-{region}-"
    head = fit(prefix, BUCKET_PREFIX_MAX - len(tail))
    return f"{head}{tail}"


def legacy_bucket_prefix(prefix: str, region: str) -> str:
    """The prefix of releases before B12-2: ``<app>-<env>`` cut without a hash (``storage.legacyBucketPrefix``).

    Equal to :func:`bucket_prefix` whenever the prefix fits; kept only for a deployment whose bucket it
    named, so that deployment's policies name its bucket (README, "Bucket names").
    """
    tail = f"-{region}-"
    head = prefix[: BUCKET_PREFIX_MAX - len(tail)].rstrip("-")
    return f"{head}{tail}"


def stack_bucket_prefix(prefix: str, region: str, *, legacy: bool) -> str:
    """The bucket prefix a stack uses: :func:`legacy_bucket_prefix` when configured, else :func:`bucket_prefix`."""
    return legacy_bucket_prefix(prefix, region) if legacy else bucket_prefix(prefix, region)


def tls_only_policy(bucket_arn: str) -> dict[str, Any]:
    """Bucket policy: deny every request not made over TLS 1.2 or later."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
        ],
    }


def kms_key_region(key_arn: str) -> str:
    """The region of a KMS key ARN (``arn:aws:kms:<region>:<account>:key/<id>``)."""
    parts = key_arn.split(":")
    if len(parts) < 6 or parts[2] != "kms" or not parts[3]:
        raise ValueError(f"not a regional KMS key ARN: {key_arn!r}")
    return parts[3]


def replication_role_policy(
    source_bucket_arn: str, source_kms_key_arn: str, dest_bucket_arn: str, dest_kms_key_arn: str
) -> dict[str, Any]:
    """The replication role's permissions: read the source, write the destination, nothing else.

    The KMS statements are limited to S3 in each key's region and to the bucket's encryption
    context: with S3 Bucket Keys on, the context is the bucket ARN; without, the object ARN.
    """

    def via_s3(key_arn: str, bucket_arn: str) -> dict[str, Any]:
        return {
            "StringEquals": {"kms:ViaService": f"s3.{kms_key_region(key_arn)}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]},
        }

    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadReplicationConfiguration",
                "Effect": "Allow",
                "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                "Resource": source_bucket_arn,
            },
            {
                "Sid": "ReadSourceVersions",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                ],
                "Resource": f"{source_bucket_arn}/*",
            },
            {
                "Sid": "WriteReplicas",
                "Effect": "Allow",
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                "Resource": f"{dest_bucket_arn}/*",
            },
            {
                "Sid": "DecryptSource",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": source_kms_key_arn,
                "Condition": via_s3(source_kms_key_arn, source_bucket_arn),
            },
            {
                "Sid": "EncryptReplicasWithDestinationKey",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": dest_kms_key_arn,
                "Condition": via_s3(dest_kms_key_arn, dest_bucket_arn),
            },
        ],
    }


# --------------------------------------------------------------------------------------------------
# buckets


@dataclass
class DataBucketArgs:
    """Inputs of :class:`DataBucket`.

    Attributes:
        bucket_prefix: the name prefix (see :func:`bucket_prefix`); S3 appends a unique suffix.
        kms_key_arn: the customer-managed key of the bucket's own region (SSE-KMS, Bucket Keys on).
        noncurrent_version_days: noncurrent versions expire after this many days.
        protect: protect the bucket (production).
    """

    bucket_prefix: str
    kms_key_arn: pulumi.Input[str]
    noncurrent_version_days: int = 30
    protect: bool = False


class DataBucket(pulumi.ComponentResource):
    """A private, versioned, SSE-KMS bucket that only accepts TLS, with lifecycle rules.

    ``bucket_arn`` resolves only once versioning is on, so a replication rule built from it never
    reaches S3 before the bucket can take part in replication.
    """

    bucket_id: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Input[str]

    def __init__(self, name: str, args: DataBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:DataBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # bucketPrefix is force-new (a new bucket, the old one deleted): ignored once the bucket exists, so
        # a change of the prefix rule (B12-2: shortened prefixes now end in a hash) never replaces a
        # bucket on a routine `pulumi up`; the bucket keeps the name S3 gave it (README, "Bucket names").
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=args.bucket_prefix,
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, ignore_changes=["bucketPrefix"]),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="noncurrent-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=ABORT_MULTIPART_AFTER_DAYS
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expired-delete-markers",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        expired_object_delete_marker=True
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="intelligent-tiering",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            storage_class="INTELLIGENT_TIERING", days=INTELLIGENT_TIERING_AFTER_DAYS
                        )
                    ],
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )

        self.bucket_id = bucket.id
        self.bucket_name = bucket.bucket
        self.bucket_arn = pulumi.Output.all(bucket.arn, versioning.id).apply(lambda v: str(v[0]))
        self.kms_key_arn = args.kms_key_arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})


def replication_rule(
    name: str,
    *,
    source_bucket_id: pulumi.Input[str],
    source_bucket_arn: pulumi.Input[str],
    source_kms_key_arn: pulumi.Input[str],
    dest_bucket_arn: pulumi.Input[str],
    dest_kms_key_arn: pulumi.Input[str],
    rtc: bool,
    iam_path: str,
    parent: pulumi.Resource,
    source_provider: pulumi.ProviderResource | None = None,
    role_provider: pulumi.ProviderResource | None = None,
) -> aws.s3.BucketReplicationConfig:
    """Replicate every object of a bucket to a bucket in another region, encrypted with that region's key.

    Creates a least-privilege IAM role for S3 (through ``role_provider``: IAM is global, so a stack
    that must deploy while region A is down creates it through region B's provider) and the
    replication configuration on the source bucket (through ``source_provider``, the source's region).
    Delete markers replicate, so a delete in the source is a delete in the replica; old versions stay
    in both buckets until the lifecycle expires them. Replication metrics are always on (the RPO
    monitor reads them); ``rtc`` adds S3 Replication Time Control (15-minute SLA, extra cost).
    A ``None`` provider inherits the parent's.
    """
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=assume_role_policy("s3.amazonaws.com"),
        description="S3 cross-region replication (pilotlight)",
        path=iam_path,
        opts=pulumi.ResourceOptions(parent=parent, provider=role_provider),
    )
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.all(
            source_bucket_arn, source_kms_key_arn, dest_bucket_arn, dest_kms_key_arn
        ).apply(lambda v: json.dumps(replication_role_policy(str(v[0]), str(v[1]), str(v[2]), str(v[3])))),
        opts=pulumi.ResourceOptions(parent=parent, provider=role_provider),
    )
    time_control = (
        aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
            status="Enabled",
            time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(
                minutes=REPLICATION_TIME_MINUTES
            ),
        )
        if rtc
        else None
    )
    return aws.s3.BucketReplicationConfig(
        name,
        bucket=source_bucket_id,
        role=role.arn,
        rules=[
            aws.s3.BucketReplicationConfigRuleArgs(
                id=REPLICATION_RULE_ID,
                status="Enabled",
                priority=1,
                filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                    status="Enabled"
                ),
                source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                        status="Enabled"
                    ),
                ),
                destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=dest_bucket_arn,
                    encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=dest_kms_key_arn
                    ),
                    metrics=aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(
                        status="Enabled",
                        event_threshold=aws.s3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                            minutes=REPLICATION_TIME_MINUTES
                        ),
                    ),
                    replication_time=time_control,
                ),
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent, provider=source_provider, depends_on=[policy]),
    )


# --------------------------------------------------------------------------------------------------
# DynamoDB


def application_table(
    name: str,
    *,
    table_name: str,
    kms_key_arn: pulumi.Input[str],
    replica_region: str,
    replica_kms_key_arn: pulumi.Input[str],
    protect: bool,
    parent: pulumi.Resource,
) -> aws.dynamodb.Table:
    """The application table as a global table (version 2019.11.21) with its replica in region B.

    One stack (the primary) owns every replica: a replica declared by two stacks would be deleted by
    whichever of them is updated without it. On-demand, point-in-time recovery in both regions,
    streams (global tables replicate through them), SSE with each region's customer-managed key.
    Keys match the ``api`` Lambda: ``pk`` and ``sk``, both strings.
    """
    return aws.dynamodb.Table(
        name,
        name=table_name,
        billing_mode="PAY_PER_REQUEST",
        hash_key="pk",
        range_key="sk",
        attributes=[
            aws.dynamodb.TableAttributeArgs(name="pk", type="S"),
            aws.dynamodb.TableAttributeArgs(name="sk", type="S"),
        ],
        stream_enabled=True,
        stream_view_type="NEW_AND_OLD_IMAGES",
        point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
        server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
            enabled=True, kms_key_arn=kms_key_arn
        ),
        deletion_protection_enabled=protect,
        replicas=[
            aws.dynamodb.TableReplicaArgs(
                region_name=replica_region,
                kms_key_arn=replica_kms_key_arn,
                point_in_time_recovery=True,
                propagate_tags=True,
                deletion_protection_enabled=protect,
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )


# --------------------------------------------------------------------------------------------------
# AWS Backup


@dataclass
class BackupPlanArgs:
    """Inputs of :class:`BackupPlan`.

    Attributes:
        vault_name: the vault in region A (this component's provider).
        kms_key_arn: region A's key, for the vault in A.
        copy_vault_name: the vault in region B that receives a copy of every recovery point.
        copy_kms_key_arn: a key in region B, for the copy vault.
        copy_provider: region B's provider.
        resources: ARNs of the resources backed up.
        schedule: when the plan runs (cron, UTC); default daily.
        retention_days: how long recovery points are kept, in both regions.
        protect: protect the vaults (production).
        iam_path: the IAM path of the role created (components.iam.iam_path).
    """

    vault_name: str
    kms_key_arn: pulumi.Input[str]
    copy_vault_name: str
    copy_kms_key_arn: pulumi.Input[str]
    copy_provider: pulumi.ProviderResource
    resources: Sequence[pulumi.Input[str]] = field(default_factory=list)
    schedule: str = BACKUP_SCHEDULE
    retention_days: int = BACKUP_RETENTION_DAYS
    protect: bool = False
    iam_path: str = "/"


class BackupPlan(pulumi.ComponentResource):
    """Backup vaults in both regions and a plan whose every recovery point is copied to region B.

    The primary stack owns the vault in B: the plan's copy action names it, and the dr stack depends
    on the primary, never the reverse.
    """

    vault_arn: pulumi.Output[str]
    copy_vault_arn: pulumi.Output[str]
    plan_id: pulumi.Output[str]

    def __init__(self, name: str, args: BackupPlanArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:BackupPlan", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vault = aws.backup.Vault(
            f"{name}-vault",
            name=args.vault_name,
            kms_key_arn=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        copy_vault = aws.backup.Vault(
            f"{name}-copy-vault",
            name=args.copy_vault_name,
            kms_key_arn=args.copy_kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self, provider=args.copy_provider, protect=args.protect),
        )
        lifecycle = aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days)
        plan = aws.backup.Plan(
            f"{name}-plan",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="daily-with-copy-to-dr",
                    target_vault_name=vault.name,
                    schedule=args.schedule,
                    start_window=60,
                    completion_window=360,
                    lifecycle=lifecycle,
                    copy_actions=[
                        aws.backup.PlanRuleCopyActionArgs(
                            destination_vault_arn=copy_vault.arn,
                            lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(
                                delete_after=args.retention_days
                            ),
                        )
                    ],
                )
            ],
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("backup.amazonaws.com"),
            description="AWS Backup: back up the data tier and copy recovery points to the DR region",
            path=args.iam_path,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-role-{i}", role=role.name, policy_arn=arn, opts=child)
            for i, arn in enumerate(BACKUP_POLICIES)
        ]
        # Recovery points of stores under customer-managed keys need those keys, in both regions.
        kms_access = aws.iam.RolePolicy(
            f"{name}-kms",
            role=role.id,
            policy=pulumi.Output.all(args.kms_key_arn, args.copy_kms_key_arn).apply(
                lambda keys: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "kms:Decrypt",
                                    "kms:Encrypt",
                                    "kms:ReEncrypt*",
                                    "kms:GenerateDataKey*",
                                    "kms:DescribeKey",
                                    "kms:CreateGrant",
                                ],
                                "Resource": [str(k) for k in keys],
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        aws.backup.Selection(
            f"{name}-selection",
            name="data-tier",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=list(args.resources),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, kms_access]),
        )
        self.vault_arn = vault.arn
        self.copy_vault_arn = copy_vault.arn
        self.plan_id = plan.id
        self.register_outputs(
            {"vault_arn": self.vault_arn, "copy_vault_arn": self.copy_vault_arn, "plan_id": self.plan_id}
        )
