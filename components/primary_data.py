"""Region A's data tier: the writer database (:class:`PrimaryDatabase`) and :class:`PrimaryDataTier`.

Built from the shared blocks of :mod:`components.data`. In rds-replica mode the writer follows the
failbacks: region A's database is read live on every update (the IaC failback's writer lineage, the
runbook's rename-to-replace instances) and adopted with the ``import`` option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import storage
from components.config import DatabaseConfig, StackConfig
from components.data import (
    BACKUP_WINDOW,
    CREDENTIALS_VERSION,
    DB_PORTS,
    MAINTENANCE_WINDOW,
    MEMBER_IGNORE_CHANGES,
    DatabaseNetwork,
    MasterCredentials,
    cluster_instances,
    data_api,
    database_environment,
    database_identifier,
    database_network,
    failback_instance_args,
    failback_instance_settings,
    final_snapshot,
    kms_key,
    ledger_environment,
    live_writer_lineage,
    master_credentials,
    performance_insights,
)
from components.iam import iam_path
from components.ledger_access import LedgerPath, ledger_path
from components.naming import limit_of, physical_name
from lambdas.failover.names import (
    FAILBACK_STAMP_TAG,
    MAX_GENERATION,
    RETAINED_MARKER,
    cut_head,
    retained_stamp,
    writer_lineage_id,
    writer_lineage_index,
)

_VAULT_TYPE = "aws:backup/vault:Vault"


# --------------------------------------------------------------------------------------------------
# live reads: the runbook's failbacks in region A


@dataclass(frozen=True)
class RunbookFailbacks:
    """What the runbook's rds-replica failbacks (rename to replace) left in region A, read live.

    Each failback renamed the instance that was ``<primary>`` to ``<primary>-pre-failback-<stamp>`` and
    created its replacement under ``<primary>``, tagged :data:`FAILBACK_STAMP_TAG` = ``<stamp>``
    (lambdas/failover/failback.py). Tags follow an instance through renames, so each instance says which
    failback made it (none: the stack's own instance).
    """

    base: str  # region A's primary identifier, the name region A's application writes to
    original: str | None  # the stack's own instance's name now; None once it was deleted by hand
    replacements: tuple[tuple[str, str], ...]  # (stamp, name now) per instance a failback made, oldest first

    @property
    def writer_stamp(self) -> str | None:
        """The stamp of the replacement that is ``<primary>`` now (region A's writer), if one is."""
        return next((stamp for stamp, ident in self.replacements if ident == self.base), None)


def _failback_stamp(
    identifier: str, parent: pulumi.Resource, provider: pulumi.ProviderResource | None
) -> str | None:
    """The :data:`FAILBACK_STAMP_TAG` of region A's instance ``identifier`` (``aws.rds.getInstance``
    ``tags``: https://www.pulumi.com/registry/packages/aws/api-docs/rds/getinstance/), None if untagged."""
    live = aws.rds.get_instance(
        db_instance_identifier=identifier, opts=pulumi.InvokeOptions(parent=parent, provider=provider)
    )
    return (live.tags or {}).get(FAILBACK_STAMP_TAG) or None


def _retained_lineage_index(primary_base: str, identifier: str) -> int | None:
    """The writer-lineage index whose member ``identifier`` is a retained name of
    (:func:`lambdas.failover.names.retained_instance_id`), None if it is no retained name of the lineage.

    The runbook's failback renames whatever instance its context names as region A's primary, and after
    an IaC failback that is a lineage member (``<primary>-failback[-g<n>]``, break24 BR24-8), whose
    retained name is cut with a hash when the member is long (:func:`retained_head`): a head that fits
    is read back, one cut is recomputed for every lineage index a reader looks for.
    """
    match = re.fullmatch(rf"(.+)-{RETAINED_MARKER}-\d{{12}}", identifier)
    if match is None:
        return None
    head = match.group(1)
    index = writer_lineage_index(primary_base, head)
    if index is not None and retained_stamp(writer_lineage_id(primary_base, index), identifier):
        return index
    if cut_head(head) is None:
        return None
    return next(
        (
            k
            for k in range(MAX_GENERATION + 2)
            if retained_stamp(writer_lineage_id(primary_base, k), identifier) is not None
        ),
        None,
    )


def _live_runbook_failbacks(
    base: str, parent: pulumi.Resource, provider: pulumi.ProviderResource | None = None
) -> dict[int, RunbookFailbacks]:
    """Region A's rename-to-replace chains, one per writer-lineage member, read live on every update (B13-8).

    The provider's id of an RDS instance is its resource id, which survives a rename: after a runbook
    failback the stack's state follows the renamed old primary, and the new one is in no state. The
    tag on each instance tells the program which is which, with no hand edit of state. The runbook
    renames and replaces the instance its context names as region A's primary, which is ``base`` or,
    after an IaC failback, a member of the writer lineage (:func:`writer_lineage_id`: break24 BR24-8),
    so each member that exists, or that left a retained name, has its chain (keyed by lineage index).
    """
    found = aws.rds.get_instances(opts=pulumi.InvokeOptions(parent=parent, provider=provider))
    identifiers = list(found.instance_identifiers)
    indices = {i for ident in identifiers if (i := writer_lineage_index(base, ident)) is not None}
    indices |= {i for ident in identifiers if (i := _retained_lineage_index(base, ident)) is not None}
    chains: dict[int, RunbookFailbacks] = {}
    for index in sorted(indices | {0}):
        member = writer_lineage_id(base, index)
        names = [i for i in identifiers if i == member or retained_stamp(member, i) is not None]
        original: str | None = None
        made: list[tuple[str, str]] = []
        for ident in sorted(
            names, key=lambda i, m=member: retained_stamp(m, i) or "~"
        ):  # retained oldest first, then the member's own name
            stamp = _failback_stamp(ident, parent, provider)
            if stamp is None:
                original = original or ident
            else:
                made.append((stamp, ident))
        if index == 0 and base not in names:
            original = original or base  # a first deploy: the stack creates it
        chains[index] = RunbookFailbacks(member, original, tuple(sorted(made)))
    return chains


# --------------------------------------------------------------------------------------------------
# the database, region A


@dataclass
class PrimaryDatabaseArgs:
    """Inputs of :class:`PrimaryDatabase`.

    Attributes:
        database: ``pilotlight:database``.
        prefix: ``<app>-<env>``, the start of every physical name.
        secret_name: name of the credentials secret (same name in both regions).
        region: region A (this component's provider).
        replica_region: region B, where the secret is replicated.
        vpc_id, isolated_subnet_ids: region A's network.
        app_security_group_id: the only security group the database admits.
        kms_key_arn: region A's key (storage, Performance Insights, secret).
        replica_kms_key_arn: a key in region B, for the secret's replica.
        protect: protect stateful resources and turn on deletion protection (production).
    """

    database: DatabaseConfig
    prefix: str
    secret_name: str
    region: str
    replica_region: str
    vpc_id: pulumi.Input[str]
    isolated_subnet_ids: list[pulumi.Output[str]]
    app_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Output[str]
    replica_kms_key_arn: pulumi.Output[str]
    protect: bool = False


class PrimaryDatabase(pulumi.ComponentResource):
    """The writer database in region A: an Aurora global database's primary cluster, or RDS Multi-AZ."""

    mode: str
    engine: str
    engine_version: str
    port: int
    network: DatabaseNetwork
    credentials: MasterCredentials
    resource_arn: pulumi.Output[str]  # what AWS Backup protects: the instance or the cluster
    # rds-replica
    instance_arn: pulumi.Output[str] | None = None
    instance_id: pulumi.Output[str] | None = None
    endpoint: pulumi.Output[str] | None = None
    retained_instance_ids: list[str] | None = None  # region A's earlier writers, unprotected
    # aurora-global
    global_cluster_id: pulumi.Output[str] | None = None
    global_cluster_arn: pulumi.Output[str] | None = None
    cluster_id: pulumi.Output[str] | None = None
    cluster_arn: pulumi.Output[str] | None = None
    reader_endpoint: pulumi.Output[str] | None = None

    def __init__(
        self, name: str, args: PrimaryDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:PrimaryDatabase", name, None, opts)
        db = args.database
        self.mode, self.engine, self.engine_version = db.mode, db.engine, db.engine_version
        self.port = DB_PORTS[db.engine]
        aurora = db.mode == "aurora-global"
        physical = database_identifier(args.prefix, args.region, aurora)
        self.network = database_network(
            name,
            physical=physical,
            prefix=args.prefix,
            region=args.region,
            engine=db.engine,
            engine_version=db.engine_version,
            vpc_id=args.vpc_id,
            subnet_ids=args.isolated_subnet_ids,
            app_security_group_id=args.app_security_group_id,
            parent=self,
        )
        self.credentials = master_credentials(
            name,
            secret_name=args.secret_name,
            username=db.username,
            engine=db.engine,
            db_name=db.db_name,
            region=args.region,
            kms_key_arn=args.kms_key_arn,
            replica_region=args.replica_region,
            replica_kms_key_arn=args.replica_kms_key_arn,
            protect=args.protect,
            parent=self,
        )
        pi = performance_insights(db, args.kms_key_arn)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        if aurora:
            global_cluster = aws.rds.GlobalCluster(
                f"{name}-global",
                global_cluster_identifier=physical_name(
                    args.prefix,
                    "global",
                    limit=limit_of("aws:rds/globalCluster:GlobalCluster", "globalClusterIdentifier"),
                ),
                engine=db.engine,
                engine_version=db.engine_version,
                storage_encrypted=True,
                deletion_protection=args.protect,
                opts=stateful,
            )
            cluster = aws.rds.Cluster(
                f"{name}-cluster",
                cluster_identifier=physical,
                engine=db.engine,
                engine_version=db.engine_version,
                global_cluster_identifier=global_cluster.global_cluster_identifier,
                # The payments function's ledger path (components/ledger_access.py).
                enable_http_endpoint=data_api(
                    db.mode,
                    db.engine,
                    db.engine_version,
                    db.instance_class,
                    (args.region, args.replica_region),
                ),
                database_name=db.db_name,
                master_username=db.username,
                master_password_wo=self.credentials.password,
                master_password_wo_version=CREDENTIALS_VERSION,
                port=self.port,
                db_subnet_group_name=self.network.subnet_group_name,
                db_cluster_parameter_group_name=self.network.parameter_group_name,
                vpc_security_group_ids=[self.network.security_group_id],
                storage_encrypted=True,
                kms_key_id=args.kms_key_arn,
                iam_database_authentication_enabled=True,
                backup_retention_period=db.backup_retention_days,
                preferred_backup_window=BACKUP_WINDOW,
                preferred_maintenance_window=MAINTENANCE_WINDOW,
                copy_tags_to_snapshot=True,
                delete_automated_backups=False,
                deletion_protection=args.protect,
                skip_final_snapshot=False,
                final_snapshot_identifier=final_snapshot(physical, "aws:rds/cluster:Cluster"),
                # After a global switchover or failover this cluster is a secondary replicating from
                # region B; that is the runbook's doing, and a later `pulumi up` must not undo it.
                # The engine version is the global cluster's: upgrading it upgrades every member,
                # secondaries first, and the provider documents ignore_changes on the members'
                # engineVersion (pulumi-aws rds.GlobalCluster, engineVersion).
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=args.protect,
                    ignore_changes=["replicationSourceIdentifier", *MEMBER_IGNORE_CHANGES],
                ),
            )
            cluster_instances(
                self,
                name,
                physical,
                cluster,
                db.primary_instances,
                db.instance_class,
                db.engine_version,
                self.network,
                pi,
            )
            self.global_cluster_id = global_cluster.global_cluster_identifier
            self.global_cluster_arn = global_cluster.arn
            self.cluster_id = cluster.cluster_identifier
            self.cluster_arn = cluster.arn
            self.endpoint = cluster.endpoint
            self.reader_endpoint = cluster.reader_endpoint
            self.resource_arn = cluster.arn
        else:
            lineage = live_writer_lineage(physical, self)
            chains = _live_runbook_failbacks(physical, self)
            # Region A's writer is the newest lineage member that is not a read replica, or a newer one
            # the runbook's failback is replacing (its replacement, tagged, holds the member's name): the
            # runbook fails back onto the member its context names as region A's primary (BR24-8).
            writer_index = max(
                [lineage.writer, *(k for k, chain in chains.items() if chain.writer_stamp is not None)]
            )
            runbook = chains[0]
            # Region A writes to the stack's own instance unless a failback made a newer writer: the
            # dr stack's (IaC lineage, below) or the runbook's (rename to replace, tagged with its stamp).
            own_writes = writer_index == 0 and runbook.writer_stamp is None
            writer: aws.rds.Instance | None = None
            original = runbook.original or physical
            renamed = original != physical
            if runbook.original is not None:
                instance = aws.rds.Instance(
                    f"{name}-instance",
                    identifier=original,
                    engine=db.engine,
                    engine_version=db.engine_version,
                    instance_class=db.instance_class,
                    allocated_storage=db.allocated_storage,
                    max_allocated_storage=db.allocated_storage * 4,
                    storage_type="gp3",
                    storage_encrypted=True,
                    kms_key_id=args.kms_key_arn,
                    db_name=db.db_name,
                    username=db.username,
                    password_wo=self.credentials.password,
                    password_wo_version=CREDENTIALS_VERSION,
                    port=self.port,
                    multi_az=db.multi_az,
                    db_subnet_group_name=self.network.subnet_group_name,
                    parameter_group_name=self.network.parameter_group_name,
                    vpc_security_group_ids=[self.network.security_group_id],
                    publicly_accessible=False,
                    iam_database_authentication_enabled=True,
                    backup_retention_period=db.backup_retention_days,
                    backup_window=BACKUP_WINDOW,
                    maintenance_window=MAINTENANCE_WINDOW,
                    copy_tags_to_snapshot=True,
                    delete_automated_backups=False,
                    deletion_protection=args.protect,
                    skip_final_snapshot=False,
                    final_snapshot_identifier=final_snapshot(physical, "aws:rds/instance:Instance"),
                    auto_minor_version_upgrade=True,
                    **pi,
                    # Protected while it is region A's writer; once a failback made a newer writer
                    # (below), it stays declared unprotected until it is deleted by hand, then leaves
                    # the program with nothing sent to AWS (retainOnDelete). Renamed by the runbook's
                    # failback (<primary>-pre-failback-<stamp>), it is declared under that name with the
                    # identifier ignored: the state keeps the name it had, and no update renames anything.
                    # engineVersion ignored: the instance has autoMinorVersionUpgrade, RDS upgrades its
                    # minor in the maintenance window (and a deprecated minor whatever the setting,
                    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Maintenance.html),
                    # and the provider does not suppress engine_version against engine_version_actual:
                    # a configured minor RDS moved past becomes a ModifyDBInstance downgrade RDS refuses
                    # (hashicorp/terraform-provider-aws#39579, #49496), failing every later update of
                    # region A. So database.engineVersion is the version an instance is created with;
                    # an existing instance keeps the version RDS gave it (README, "Engine versions").
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        protect=args.protect and own_writes,
                        retain_on_delete=not own_writes,
                        ignore_changes=[*(["identifier"] if renamed else []), "engineVersion"],
                    ),
                )
                if own_writes:
                    writer = instance
            replacements = [(k, c.base, s, i) for k, c in sorted(chains.items()) for s, i in c.replacements]
            for index, member, stamp, current in replacements:
                # An instance the runbook's failback created under <primary> or, after an IaC failback,
                # under the lineage member it replaced (tagged with its stamp): region A's writer while
                # it holds that name, else an earlier writer a later failback renamed and kept. Adopted
                # with the `import` option (https://www.pulumi.com/docs/iac/concepts/options/import/)
                # under a name derived from the stamp, declared as the runbook made it (runbook_replica_args: the import fails on
                # any input that differs from the live instance), never protected once it is not the
                # writer, never deleted (retainOnDelete).
                is_writer = current == member and writer_index == index
                adopted = aws.rds.Instance(
                    f"{name}-instance-rb{stamp}",
                    **runbook_replica_args(
                        db,
                        stamp=stamp,
                        identifier=current,
                        engine=db.engine,
                        port=self.port,
                        kms_key_arn=args.kms_key_arn,
                        subnet_group_name=self.network.subnet_group_name,
                        parameter_group_name=self.network.parameter_group_name,
                        security_group_id=self.network.security_group_id,
                        protect=args.protect,
                    ),
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        import_=current,
                        protect=args.protect and is_writer,
                        retain_on_delete=True,
                        ignore_changes=None if current == member else ["identifier"],
                    ),
                )
                if is_writer:
                    writer = adopted
            for index, chain in sorted(chains.items()):
                if index == 0 or chain.original is None:
                    continue
                # A failback instance the dr stack made and released: region A's writer if it is the
                # newest standalone one, else an earlier writer kept until deleted by hand. Adopted
                # with the `import` option (https://www.pulumi.com/docs/iac/concepts/options/import/),
                # declared with the arguments the dr stack created it with, so nothing changes. Renamed
                # by a later runbook failback (<member>-pre-failback-<stamp>, BR24-8), it is declared
                # under that name with the identifier ignored, as the stack's own instance is above.
                member_writes = writer_index == index and chain.writer_stamp is None
                adopted = aws.rds.Instance(
                    f"{name}-instance-w{index}",
                    **failback_instance_args(
                        db,
                        identifier=chain.original,
                        engine=db.engine,
                        port=self.port,
                        kms_key_arn=args.kms_key_arn,
                        subnet_group_name=self.network.subnet_group_name,
                        parameter_group_name=self.network.parameter_group_name,
                        security_group_id=self.network.security_group_id,
                        protect=args.protect,
                    ),
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        import_=chain.original,
                        protect=args.protect and member_writes,
                        retain_on_delete=True,
                        # Its source is the dr stack's business: the writer was promoted by the dr
                        # stack, and a failback instance abandoned for the runbook's still replicates
                        # from region B's old instance. Declared without it, the import would not
                        # match that replica, and once adopted the update would promote it.
                        ignore_changes=[
                            "replicateSourceDb",
                            *(["identifier"] if chain.original != chain.base else []),
                        ],
                    ),
                )
                if member_writes:
                    writer = adopted
            # Region A's earlier writers: they hold nothing the writer lacks once region B was re-seeded
            # from it, but only an operator decides that. Released: delete by hand after verification.
            self.retained_instance_ids = [
                *([original] if runbook.original is not None and not own_writes else []),
                *[
                    c.original
                    for k, c in sorted(chains.items())
                    if k != 0
                    and c.original is not None
                    and not (k == writer_index and c.writer_stamp is None)
                ],
                *[
                    current
                    for k, member, _, current in replacements
                    if not (current == member and k == writer_index)
                ],
            ]
            assert writer is not None, "region A's writer: the stack's own, an IaC or a runbook failback's"
            self.instance_arn = writer.arn
            self.instance_id = writer.identifier
            self.endpoint = writer.address
            self.resource_arn = writer.arn
        self.register_outputs({"resource_arn": self.resource_arn, "secret_arn": self.credentials.secret_arn})


def runbook_replica_args(db: DatabaseConfig, *, stamp: str, **kwargs: Any) -> dict[str, Any]:
    """The arguments of the instance the runbook's failback created under ``<primary>``, as AWS has it.

    The primary stack adopts it with the `import` option, which fails unless the declared inputs
    match the live instance (https://www.pulumi.com/docs/iac/concepts/options/import/). The runbook
    creates it with CreateDBInstanceReadReplica modelled on the old primary
    (lambdas/failover/failback.py ``_failback_replica_request``), and AWS fills in the rest: "All read
    replica DB instances are created with backups disabled. All other DB instance attributes ... are
    inherited from the source DB instance, except as specified"; tags are not copied to snapshots by
    default; a cross-Region replica gets the engine's default parameter group unless one is named
    (MySQL only, as the runbook does), and its Performance Insights use the region's default key
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html);
    the runbook's PromoteReadReplica leaves one day of backups ("Default: 1":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html). So these
    are the failback instance's arguments (:func:`failback_instance_args`: same place, size and
    security) without those AWS chose (the provider computes them: no difference), plus the
    failback-stamp tag the runbook put on it (left out, the update would remove the tag the
    program identifies the instance by). Settings the runbook does not make (backup retention,
    tag copying, the backup window) stay as AWS has them. The backup window: CreateDBInstanceReadReplica
    takes none, and the runbook's PromoteReadReplica names no ``PreferredBackupWindow``, whose default
    is "A 30-minute window selected at random from an 8-hour block of time per AWS Region"
    (API_PromoteReadReplica.html above): declared, the import would fail whenever AWS's pick is not
    ``BACKUP_WINDOW`` (BL21-2); left out, the provider reads AWS's window (computed) and keeps it.
    """
    args = failback_instance_args(db, **kwargs)
    for key in (
        "backup_retention_period",
        "backup_window",
        "copy_tags_to_snapshot",
        "performance_insights_kms_key_id",
    ):
        args.pop(key, None)
    if not str(kwargs["engine"]).startswith("mysql"):
        args.pop("parameter_group_name")
    args["tags"] = {FAILBACK_STAMP_TAG: stamp}
    return args


# --------------------------------------------------------------------------------------------------
# the data tier, region A


@dataclass
class PrimaryDataTierArgs:
    """Inputs of :class:`PrimaryDataTier`.

    Attributes:
        config: the parsed stack configuration (role primary).
        vpc_id, isolated_subnet_ids: region A's network.
        app_security_group_id: the app tier's security group (the only one the database admits).
        dr_provider: region B's provider, for what the primary stack owns in B: a key for the
            table replica, the secret replica and the backup copy vault, and that vault.
    """

    config: StackConfig
    vpc_id: pulumi.Input[str]
    isolated_subnet_ids: list[pulumi.Output[str]]
    app_security_group_id: pulumi.Input[str]
    dr_provider: pulumi.ProviderResource


class PrimaryDataTier(pulumi.ComponentResource):
    """Region A's data tier: keys, writer database, credentials, bucket, global table, backups.

    Attributes for the app tier (environment of the ``api`` function): ``table_name``,
    ``bucket_name``, ``bucket_kms_key_arn``, ``api_environment``.
    """

    kms_key_arn: pulumi.Output[str]
    replica_kms_key_arn: pulumi.Output[str]
    database: PrimaryDatabase
    bucket: storage.DataBucket
    table_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    bucket_kms_key_arn: pulumi.Output[str]
    backup: storage.BackupPlan
    api_environment: dict[str, pulumi.Input[str]]
    ledger_path: LedgerPath
    ledger_secret_key_arn: pulumi.Input[str]

    def __init__(
        self, name: str, args: PrimaryDataTierArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:PrimaryDataTier", name, None, opts)
        cfg = args.config
        a, b = cfg.primary_region, cfg.dr_region
        key = kms_key(
            f"{name}-key",
            description=f"{cfg.prefix}: data stores in {a}",
            alias=f"alias/{cfg.prefix}/data",
            protect=cfg.protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Copies the primary stack makes into region B are encrypted with a key of region B.
        replica_key = kms_key(
            f"{name}-replica-key",
            description=f"{cfg.prefix}: copies of {a}'s data kept in {b} (table replica, secret, backups)",
            alias=f"alias/{cfg.prefix}/data-copies",
            protect=cfg.protect,
            opts=pulumi.ResourceOptions(parent=self, provider=args.dr_provider),
        )
        self.kms_key_arn, self.replica_kms_key_arn = key.arn, replica_key.arn

        self.database = PrimaryDatabase(
            f"{name}-db",
            PrimaryDatabaseArgs(
                database=cfg.database,
                prefix=cfg.prefix,
                secret_name=f"{cfg.app_name}/{cfg.environment}/database/master",
                region=a,
                replica_region=b,
                vpc_id=args.vpc_id,
                isolated_subnet_ids=args.isolated_subnet_ids,
                app_security_group_id=args.app_security_group_id,
                kms_key_arn=key.arn,
                replica_kms_key_arn=replica_key.arn,
                protect=cfg.protect,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.bucket = storage.DataBucket(
            f"{name}-s3",
            storage.DataBucketArgs(
                bucket_prefix=storage.stack_bucket_prefix(
                    cfg.prefix, a, legacy=cfg.storage.legacy_bucket_prefix
                ),
                kms_key_arn=key.arn,
                noncurrent_version_days=cfg.storage.noncurrent_version_days,
                protect=cfg.protect,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        table = storage.application_table(
            f"{name}-table",
            table_name=physical_name(cfg.prefix, "app", limit=limit_of("aws:dynamodb/table:Table", "name")),
            kms_key_arn=key.arn,
            replica_region=b,
            replica_kms_key_arn=replica_key.arn,
            protect=cfg.protect,
            parent=self,
        )
        self.backup = storage.BackupPlan(
            f"{name}-backup",
            storage.BackupPlanArgs(
                vault_name=physical_name(cfg.prefix, a, "backups", limit=limit_of(_VAULT_TYPE, "name")),
                kms_key_arn=key.arn,
                copy_vault_name=physical_name(
                    cfg.prefix, b, "backup-copies", limit=limit_of(_VAULT_TYPE, "name")
                ),
                copy_kms_key_arn=replica_key.arn,
                copy_provider=args.dr_provider,
                # S3 is protected by versioning and replication rather than AWS Backup.
                resources=[self.database.resource_arn, table.arn],
                protect=cfg.protect,
                iam_path=iam_path(cfg.prefix),
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.table_name, self.table_arn = table.name, table.arn
        self.bucket_name, self.bucket_kms_key_arn = self.bucket.bucket_name, key.arn
        db = self.database
        d = cfg.database
        self.ledger_path, _ = ledger_path(d.mode, d.engine, d.engine_version, d.instance_class, (a, b))
        # The secret is encrypted with this region's key (master_credentials).
        self.ledger_secret_key_arn = key.arn
        self.api_environment = {
            "TABLE_NAME": table.name,
            "RECEIPTS_BUCKET": self.bucket.bucket_name,
            "RECEIPTS_KMS_KEY_ID": key.arn,
            "DB_MODE": db.mode,
            **database_environment(
                db.mode, db.instance_id, global_cluster_id=db.global_cluster_id, cluster_arn=db.cluster_arn
            ),
            **ledger_environment(
                self.ledger_path,
                secret_arn=db.credentials.secret_arn,
                db_name=d.db_name,
                endpoint=db.endpoint,
                port=db.port,
                ca_bundle=d.ca_bundle is not None,
            ),
        }
        self._exports: dict[str, Any] = {
            "databaseMode": db.mode,
            "databaseEngine": db.engine,
            "databaseEngineVersion": db.engine_version,
            "databasePort": db.port,
            "databaseEndpoint": db.endpoint,
            "dbSecretArn": db.credentials.secret_arn,
            "dbSecretReplicaArn": db.credentials.replica_secret_arn,
            "dbSubnetGroupName": db.network.subnet_group_name,
            "dbParameterGroupName": db.network.parameter_group_name,
            "dbSecurityGroupId": db.network.security_group_id,
            "kmsKeyArn": key.arn,
            "replicaKmsKeyArn": replica_key.arn,
            "appBucketName": self.bucket.bucket_name,
            "appBucketArn": self.bucket.bucket_arn,
            "tableName": table.name,
            "tableArn": table.arn,
            "tableStreamArn": table.stream_arn,
            "backupVaultArn": self.backup.vault_arn,
            "backupCopyVaultArn": self.backup.copy_vault_arn,
            "backupPlanId": self.backup.plan_id,
        }
        if db.mode == "aurora-global":
            self._exports.update(
                {
                    "globalClusterId": db.global_cluster_id,
                    "globalClusterArn": db.global_cluster_arn,
                    "primaryClusterId": db.cluster_id,
                    "primaryClusterArn": db.cluster_arn,
                    "primaryClusterReaderEndpoint": db.reader_endpoint,
                }
            )
        else:
            # Region A's writer (after an IaC failback, the adopted failback instance).
            self._exports.update({"dbInstanceArn": db.instance_arn, "dbInstanceId": db.instance_id})
            # What region A's writer is declared with: the dr stack creates the IaC failback instance
            # with these, so that this stack's adoption (`import`) matches it (B13b-6).
            self._exports["databaseFailbackInstance"] = failback_instance_settings(d)
            if db.retained_instance_ids:
                # Released: delete by hand after verification (deletion protection on); the update
                # after the deletion forgets it, sending nothing to AWS.
                self._exports["retainedDbInstanceIds"] = db.retained_instance_ids
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs of the data tier: what the dr stack and the runbook read."""
        return dict(self._exports)
