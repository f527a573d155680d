"""Region B's data tier: the standby database (:class:`DrDatabase`) and :class:`DrDataTier`.

Built from the shared blocks of :mod:`components.data`. rds-replica: region B's read replica of
the generation AWS has now, promoted in place by ``dr:active`` and re-seeded after a failback; the
IaC failback's replica in region A. aurora-global: the global database's secondary cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import storage
from components.config import DatabaseConfig, StackConfig
from components.data import (
    BACKUP_WINDOW,
    DB_PORTS,
    MAINTENANCE_WINDOW,
    MEMBER_IGNORE_CHANGES,
    DatabaseNetwork,
    cluster_instances,
    data_api,
    database_environment,
    database_identifier,
    database_network,
    failback_instance_args,
    final_snapshot,
    kms_key,
    ledger_environment,
    live_replica,
    live_writer_lineage,
    performance_insights,
    region_a_database,
)
from components.failover import DesiredTier, failback_lag_watched, failback_replica_released
from components.iam import iam_path
from components.ledger_access import LedgerPath, ledger_path
from components.naming import generation_identifier, generation_of, limit_of, physical_name
from components.wiring import PrimaryOutputs
from lambdas.failover.names import (
    failback_generation_id,
    failover_token,
    is_failover_instance,
    legacy_failover_instance_id,
)

# --------------------------------------------------------------------------------------------------
# live reads: region B's generations, region A's writer


@dataclass(frozen=True)
class LiveGeneration:
    """Region B's rds-replica database as AWS has it: its newest generation, and whether it replicates."""

    generation: int
    identifier: str
    replicating: bool


def live_generation(
    base: str, parent: pulumi.Resource | None, provider: pulumi.ProviderResource | None = None
) -> LiveGeneration | None:
    """The newest generation of region B's instance that exists in AWS (a live read, in region B).

    ``aws.rds.get_instances`` lists the region's instances
    (https://www.pulumi.com/registry/packages/aws/api-docs/rds/getinstances/: ``instanceIdentifiers``);
    the program's generations are the names :func:`components.naming.generation_identifier` gives
    ``base``, so the newest is the one the stack manages: the older ones were released, and deleting
    them by hand changes nothing. None when none exists yet (the first deploy). Its replication source
    comes from :func:`live_replica`. Region B is the dr stack's own region: this never needs region A.
    """
    found = aws.rds.get_instances(opts=pulumi.InvokeOptions(parent=parent, provider=provider))
    generations = [g for i in found.instance_identifiers if (g := generation_of(base, i)) is not None]
    if not generations:
        return None
    newest = max(generations)
    identifier = generation_identifier(base, newest)
    return LiveGeneration(newest, identifier, live_replica(identifier, parent, provider))


def _region_a_writer_arn(
    base: str,
    primary_arn: pulumi.Input[str],
    primary_provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """Region A's writer after a failback that left the dr program (a live read, in region A).

    Asked only when region B must be re-seeded outside the ``complete`` phase, i.e. after a failback
    (region A answers: its writer just came back). The writer is decided from AWS state, as the
    primary stack decides it (:func:`live_writer_lineage`): the newest of region A's lineage that is
    not a read replica. An IaC failback instance abandoned for the runbook's failback is still a
    replica of region B's old instance and is skipped (break13, B13-3); the runbook's failback
    (rename to replace) leaves the writer under ``<primary>``'s name. The primary stack's exported
    ARN answers only when nothing of the lineage is found.
    """
    lineage = live_writer_lineage(base, parent, primary_provider)
    return pulumi.Output.from_input(lineage.writer_arn or primary_arn)


def _live_failback(
    identifier: str, primary_provider: pulumi.ProviderResource, parent: pulumi.Resource
) -> bool:
    """Whether the IaC failback instance ``identifier`` exists in region A (a live read, in region A).

    Asked only by the update that re-seeds region B outside the failback phases (region A serves
    again then). ``db-instance-id`` filter of DescribeDBInstances
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html).
    """
    found = aws.rds.get_instances(
        filters=[{"name": "db-instance-id", "values": [identifier]}],
        opts=pulumi.InvokeOptions(parent=parent, provider=primary_provider),
    )
    return identifier in found.instance_identifiers


def _failback_identifier(args: DrDatabaseArgs, generation: int) -> str:
    """The IaC failback instance in region A for region B's generation ``generation``.

    Generation 0 keeps the runbook's historical ``<primary>-failback`` (lambdas/failover/names.py);
    later generations append ``-g<n>``, so a second failback never collides with the first one's
    instance, which stays region A's writer after it is released.
    """
    base = database_identifier(args.prefix, args.primary_region, aurora=False)
    return failback_generation_id(base, generation)


# --------------------------------------------------------------------------------------------------
# the database, region B


RUNBOOK_INSTANCE_PROMOTION_TIER = 1
"""What AWS gives the runbook's writer instance (CreateDBInstance ``PromotionTier``, "Default: 1")."""


def failover_instance_logical_name(name: str, cluster_id: str, identifier: str) -> str:
    """The logical name the dr stack adopts the runbook's writer ``identifier`` under.

    One per instance, derived from its name alone, so an adopted instance keeps its logical name
    whatever else the cluster holds: ``<name>-failover-instance`` for the ``<cluster>-failover-1`` of
    earlier runbooks (the logical name deployed stacks already hold it under), and
    ``<name>-failover-instance-<token>`` for a ``<cluster>-failover-<token>``."""
    if identifier == legacy_failover_instance_id(cluster_id):
        return f"{name}-failover-instance"
    token = failover_token(cluster_id, identifier)
    if token is None:
        raise ValueError(f"{identifier!r} is not a writer the runbook adds to {cluster_id!r}")
    return f"{name}-failover-instance-{token}"


def _adopt_failover_instance(
    parent: pulumi.Resource, name: str, physical: str, cluster: aws.rds.Cluster, instance_class: str
) -> None:
    """Adopt the writer instance the runbook added to a headless secondary (``<cluster>-failover-<token>``,
    or an earlier runbook's ``<cluster>-failover-1``).

    A headless secondary cannot become the writer, so the runbook's promote step creates one
    instance (lambdas/failover/promotion.py ``_promote_aurora``: identifier, cluster, class, engine) under a
    name with a random token (lambdas/failover/names.py ``failover_instance_id``: a fixed name could
    be taken first, breakiam22b BI22b-9). Out of band it would be in no stack's state: the program
    reads the cluster's members live (``aws.rds.getCluster`` ``clusterMembers``,
    https://www.pulumi.com/registry/packages/aws/api-docs/rds/getcluster/; DescribeDBClusters
    ``DBClusterMembers``, "the list of DB instances that make up the DB cluster":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html) and declares each
    member whose name is a runbook's writer with the ``import`` option, so the next update adopts it
    into the dr stack's state instead of creating it (https://www.pulumi.com/docs/iac/concepts/options/import/:
    the declared inputs must match the resource's, hence only the arguments the runbook set, and
    ``ignoreChanges`` on the version, which the global cluster owns). Only members count: an instance
    outside the cluster under such a name is not the runbook's. Adopted, it stays the secondary's
    instance after a failback (a faster next failover); ``database.drInstances`` sizes the program's
    own instances.
    """
    live = aws.rds.get_cluster(cluster_identifier=physical, opts=pulumi.InvokeOptions(parent=parent))
    for ident in sorted(m for m in live.cluster_members or [] if is_failover_instance(physical, m)):
        aws.rds.ClusterInstance(
            failover_instance_logical_name(name, physical, ident),
            identifier=ident,
            cluster_identifier=cluster.id,
            engine=aws.rds.EngineType.AURORA_POSTGRESQL,
            instance_class=instance_class,
            # The runbook names no PromotionTier, so AWS gives it "Default: 1"
            # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html); left
            # out here the provider would fill its own "Default 0"
            # (https://www.pulumi.com/registry/packages/aws/api-docs/rds/clusterinstance/) and the import
            # would not match (BL21-5).
            promotion_tier=RUNBOOK_INSTANCE_PROMOTION_TIER,
            opts=pulumi.ResourceOptions(
                parent=parent, import_=ident, ignore_changes=list(MEMBER_IGNORE_CHANGES)
            ),
        )


@dataclass
class DrDatabaseArgs:
    """Inputs of :class:`DrDatabase`. Everything about region A comes from the primary stack's outputs.

    Attributes:
        database: ``pilotlight:database`` (its mode matches the primary's: checked by the wiring).
        primary: region A's outputs (StackReference).
        tier: the desired DR tier; only ``promote_database`` and the failback fields are read.
        prefix, region, primary_region: physical names and regions.
        vpc_id, isolated_subnet_ids, app_security_group_id: region B's network.
        kms_key_arn: region B's key, created by the dr stack.
        primary_provider: region A's provider, for the rds-replica failback replica only.
        protect: protect stateful resources (production).
    """

    database: DatabaseConfig
    primary: PrimaryOutputs
    tier: DesiredTier
    prefix: str
    region: str
    primary_region: str
    vpc_id: pulumi.Input[str]
    isolated_subnet_ids: list[pulumi.Output[str]]
    app_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Output[str]
    primary_provider: pulumi.ProviderResource
    protect: bool = False
    writer_move_after: pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]]] = field(default_factory=list)


class DrDatabase(pulumi.ComponentResource):
    """The standby database in region B: the global database's secondary cluster, or the read replica.

    rds-replica: between standby and active only ``replicate_source_db`` changes. Removing it promotes
    the replica in place ("Removing the ``replicate_source_db`` attribute from an existing RDS
    Replicate database managed by Terraform will promote the database to a fully standalone
    database": the ``aws_db_instance`` documentation of the provider pulumi-aws bridges,
    pulumi/terraform-provider-aws, website/docs/r/db_instance.html.markdown). Name, identifier, key,
    subnet group, sizes and every other argument are the same in both states, so promotion is an
    in-place update, never a replacement. ``skip_final_snapshot`` is on in both states because RDS
    refuses a final snapshot when deleting a replica; deletion protection, ``protect`` and retained
    automated backups guard the promoted instance instead.

    rds-replica after a failback: the promoted instance is never re-pointed; the first standby update
    gives region B a new replica of the next generation and releases the promoted one
    (:meth:`_rds_replica`).

    aurora-global: the IaC never promotes; the runbook fails the global database over, and the
    secondary cluster ignores ``global_cluster_identifier`` and ``replication_source_identifier``.
    """

    mode: str
    network: DatabaseNetwork
    # rds-replica
    instance_arn: pulumi.Output[str] | None = None
    instance_id: pulumi.Output[str] | None = None
    endpoint: pulumi.Output[str] | None = None
    failback_instance_id: pulumi.Output[str] | None = None
    # rds-replica re-seeding: the generation this update leaves the program at the next update
    released_instance_id: pulumi.Output[str] | None = None
    reseeded: bool = False  # this update gives region B a new replica (its lag reports from now on)
    # aurora-global
    cluster_id: pulumi.Output[str] | None = None
    cluster_arn: pulumi.Output[str] | None = None
    reader_endpoint: pulumi.Output[str] | None = None

    def __init__(self, name: str, args: DrDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:DrDatabase", name, None, opts)
        db, primary = args.database, args.primary
        self.mode = db.mode
        aurora = db.mode == "aurora-global"
        # The engine is the primary's: a replica or secondary cannot differ from its source.
        engine = str(primary.get("databaseEngine") or db.engine)
        engine_version = str(primary.get("databaseEngineVersion") or db.engine_version)
        port = DB_PORTS[engine]
        physical = database_identifier(args.prefix, args.region, aurora)
        self.network = database_network(
            name,
            physical=physical,
            prefix=args.prefix,
            region=args.region,
            engine=engine,
            engine_version=engine_version,
            vpc_id=args.vpc_id,
            subnet_ids=args.isolated_subnet_ids,
            app_security_group_id=args.app_security_group_id,
            parent=self,
        )
        pi = performance_insights(db, args.kms_key_arn)
        if aurora:
            cluster = aws.rds.Cluster(
                f"{name}-cluster",
                cluster_identifier=physical,
                engine=engine,
                engine_version=engine_version,
                global_cluster_identifier=primary["globalClusterId"],
                # On the secondary too: it serves the Data API once promoted (data-api.limitations.html).
                enable_http_endpoint=data_api(
                    db.mode, engine, engine_version, db.instance_class, (args.primary_region, args.region)
                ),
                port=port,
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
                # A global failover (or switchover) makes this cluster the primary and the old one a
                # secondary: these attributes then differ from the program's, and must stay as AWS
                # has them.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=args.protect,
                    ignore_changes=[
                        "globalClusterIdentifier",
                        "replicationSourceIdentifier",
                        *MEMBER_IGNORE_CHANGES,
                    ],
                ),
            )
            cluster_instances(
                self,
                name,
                physical,
                cluster,
                db.dr_instances,
                db.instance_class,
                engine_version,
                self.network,
                pi,
            )
            if args.tier.after_failover:
                _adopt_failover_instance(self, name, physical, cluster, db.instance_class)
            self.cluster_id = cluster.cluster_identifier
            self.cluster_arn = cluster.arn
            self.endpoint = cluster.endpoint
            self.reader_endpoint = cluster.reader_endpoint
        else:
            self._rds_replica(name, args, physical, engine, port, pi)
        if aurora and failback_lag_watched(args.tier):
            # Region A's cluster is the secondary once the writer is in B: its lag decides switch-writer.
            self._failback_lag_alarm(
                name,
                args,
                "AuroraGlobalDBReplicationLag",
                "DBClusterIdentifier",
                primary["primaryClusterId"],
                1000.0,
            )
        self.register_outputs({"mode": self.mode})

    def _rds_replica(
        self, name: str, args: DrDatabaseArgs, base: str, engine: str, port: int, pi: dict[str, Any]
    ) -> None:
        """rds-replica: region B's read replica, of the generation AWS has now; re-seeded after a failback.

        A promoted instance can never replicate again, so after a failback (region B's instance is
        standalone while the tier is back to standby: ``complete``, or the first standby update after
        the runbook's failback) this update *re-seeds*: it creates generation ``n + 1``
        (:func:`components.naming.generation_identifier`), a new cross-region read replica of region
        A's current writer, and keeps generation ``n`` in the program one last time, unprotected, so
        that the next update releases it (``retain_on_delete``: forgotten by the stack, kept in AWS).
        Everything that names region B's database (outputs, runbook context, alarms, the api's
        environment) follows :attr:`instance_id`, the new replica, in the same update.
        """
        primary = args.primary
        live = live_generation(base, self)
        generation = 0 if live is None else live.generation
        replicating = True if live is None else live.replicating  # nothing live yet: as declared
        reseed = live is not None and not live.replicating and not args.tier.active
        current = self._rds_instance(
            name,
            args,
            generation_identifier(base, generation),
            generation,
            engine,
            port,
            pi,
            # Cross-region source: the primary's ARN (from the StackReference). Dropping it promotes
            # this replica in place (see the class docstring).
            source=None if args.tier.promote_database else primary["dbInstanceArn"],
            # Once promoted, an instance is never re-pointed at a source (the provider refuses:
            # "cannot elect new source database for replication"). While the program wants a
            # replica, the source in state wins: a replica keeps its source. When the program wants
            # it promoted and the live read says the runbook already promoted it, the source in
            # state wins too: removing it would call PromoteReadReplica on an instance that is no
            # longer a replica (InvalidDBInstanceState; issue 13, E1).
            source_from_state=not (args.tier.promote_database and replicating),
            released=reseed,
            # The generation AWS has: adopted when the stack's state lacks it (a fresh `pulumi up -s dr`
            # after `pulumi destroy -s dr`, which retains every instance: break13, B13-4); once in
            # state the engine ignores the option.
            adopt=live is not None,
        )
        failback: aws.rds.Instance | None = None
        # Asked only by the re-seeding update (standby after a failback: region A answers).
        leftover = (
            reseed
            and not args.tier.failback_replica
            and _live_failback(_failback_identifier(args, generation), args.primary_provider, self)
        )
        if args.tier.failback_replica or leftover:
            # Leftover: an IaC failback of this generation was abandoned (the runbook failed back
            # instead, README): its instance stays declared once more, unprotected and as its state
            # has it, so that this update does not drop a protected resource (the engine refuses)
            # and the next one, a generation later, releases it (break13, B13-3).
            failback = self._failback_replica(
                name, args, current, engine, port, generation, leftover=bool(leftover)
            )
            self.failback_instance_id = failback.identifier
            if failback_lag_watched(args.tier):
                self._failback_lag_alarm(
                    name, args, "ReplicaLag", "DBInstanceIdentifier", failback.identifier, 1.0
                )
        replica = current
        if reseed:
            # Region A's writer: the IaC failback instance of this generation (declared by this
            # update at `complete`), else region A's writer read live (_region_a_writer_arn).
            writer_arn: pulumi.Input[str] = (
                failback.arn
                if failback is not None and not leftover
                else _region_a_writer_arn(
                    database_identifier(args.prefix, args.primary_region, aurora=False),
                    primary["dbInstanceArn"],
                    args.primary_provider,
                    self,
                )
            )
            replica = self._rds_instance(
                name,
                args,
                generation_identifier(base, generation + 1),
                generation + 1,
                engine,
                port,
                pi,
                source=writer_arn,
                source_from_state=True,
                released=False,
            )
            self.released_instance_id = current.identifier
        self.reseeded = reseed
        self.instance_arn = replica.arn
        self.instance_id = replica.identifier
        self.endpoint = replica.address

    def _rds_instance(
        self,
        name: str,
        args: DrDatabaseArgs,
        identifier: str,
        generation: int,
        engine: str,
        port: int,
        pi: dict[str, Any],
        *,
        source: pulumi.Input[str] | None,
        source_from_state: bool,
        released: bool,
        adopt: bool = False,
    ) -> aws.rds.Instance:
        """Region B's instance of one generation (logical name ``<name>-instance[-g<n>]``).

        A cross-region read replica (CreateDBInstanceReadReplica: the source "must be the ARN" when
        it is in another Region, and an encrypted replica in another Region needs a KMS key of its
        own Region: ``kms_key_id`` is region B's key;
        https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html,
        https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html).
        ``retain_on_delete`` always: an instance that leaves the program is released, never
        deleted; ``released`` lifts ``protect`` for the update before it leaves (the engine refuses
        to drop a protected resource). ``adopt``: the instance exists in AWS (read live), so it is
        declared with the ``import`` option (https://www.pulumi.com/docs/iac/concepts/options/import/):
        a stack whose state lacks it (deployed again after ``pulumi destroy -s dr``, which retained
        it) adopts the live replica, with its replication intact, instead of a create that RDS
        refuses (DBInstanceAlreadyExists); a stack that holds it ignores the option.
        """
        db = args.database
        logical = f"{name}-instance" if generation == 0 else f"{name}-instance-g{generation}"
        return aws.rds.Instance(
            logical,
            identifier=identifier,
            replicate_source_db=source,
            engine=engine,
            instance_class=db.instance_class,
            max_allocated_storage=db.allocated_storage * 4,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            port=port,
            # The pilot light runs single-AZ; after promotion the runbook may convert it.
            multi_az=False,
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
            skip_final_snapshot=True,
            auto_minor_version_upgrade=True,
            apply_immediately=True,
            **pi,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect and not released,
                retain_on_delete=True,
                ignore_changes=["replicateSourceDb"] if source_from_state else [],
                import_=identifier if adopt else None,
            ),
        )

    def _failback_lag_alarm(
        self,
        name: str,
        args: DrDatabaseArgs,
        metric: str,
        dimension: str,
        value: pulumi.Input[str],
        unit_per_second: float,
    ) -> aws.cloudwatch.MetricAlarm:
        """The replica lag B -> A during failback, alarmed where the metric is: in region A.

        RDS publishes ``ReplicaLag`` (seconds) for the replica instance and Aurora publishes
        ``AuroraGlobalDBReplicationLag`` (milliseconds) for the secondary cluster, each in the replica's
        region; an alarm only sees metrics of its own region, and its actions must be in that region
        too, so this one has none: the dashboard and the runbook's wait step read it.
        """
        bound = args.database.max_replication_lag_seconds
        return aws.cloudwatch.MetricAlarm(
            f"{name}-failback-lag",
            name=physical_name(
                args.prefix,
                args.primary_region,
                "failback-lag",
                limit=limit_of("aws:cloudwatch/metricAlarm:MetricAlarm", "name"),
            ),
            alarm_description=f"Failback: {metric} of region A's replica of region B above the bound ({bound} s)",
            namespace="AWS/RDS",
            metric_name=metric,
            dimensions={dimension: value},
            statistic="Maximum",
            period=60,
            evaluation_periods=5,
            threshold=bound * unit_per_second,
            comparison_operator="GreaterThanThreshold",
            # The replica exists from `replicate` on: no datapoints means replication is not reporting.
            treat_missing_data="breaching",
            opts=pulumi.ResourceOptions(parent=self, provider=args.primary_provider),
        )

    def _failback_replica(
        self,
        name: str,
        args: DrDatabaseArgs,
        source: aws.rds.Instance,
        engine: str,
        port: int,
        generation: int,
        *,
        leftover: bool = False,
    ) -> aws.rds.Instance:
        """rds-replica failback: a replica of region B's (promoted) database, back in region A.

        It uses the primary stack's key, subnet group, parameter group and security group in region A
        (from its outputs), and is promoted in place at the ``switch-writer`` phase, like the DR replica.
        """
        primary = args.primary
        # Region A's writer settings are the primary stack's, not this stack's pilot light's: the primary
        # stack adopts this instance declaring its own (the `import` option fails on any difference,
        # https://www.pulumi.com/docs/iac/concepts/options/import/; break13b B13b-6). The program refuses a
        # failback update without them (wiring.require_failback_settings); a leftover alone, declared as its
        # state has it, keeps this stack's when a primary stack of an older version exported none.
        settings = primary.get("databaseFailbackInstance")
        db = args.database if settings is None and leftover else region_a_database(args.database, settings)
        physical = _failback_identifier(args, generation)
        # After `complete` this instance is region A's writer and leaves the dr program at the next
        # update: it is released (forgotten by the stack, kept in AWS with deletion protection),
        # never deleted. `complete` lifts `protect` so that the engine lets it go; the next update of
        # the primary stack adopts it (`import`, :func:`live_writer_lineage`) with these arguments.
        # One logical name per generation: the next cycle's failback instance is a new resource,
        # never a rename of this one (break13, B13-7).
        return aws.rds.Instance(
            f"{name}-failback" if generation == 0 else f"{name}-failback-g{generation}",
            replicate_source_db=None if args.tier.failback_replica_promoted else source.arn,
            **failback_instance_args(
                db,
                identifier=physical,
                engine=engine,
                port=port,
                kms_key_arn=primary["kmsKeyArn"],
                subnet_group_name=primary["dbSubnetGroupName"],
                parameter_group_name=primary["dbParameterGroupName"],
                security_group_id=primary["dbSecurityGroupId"],
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.primary_provider,
                protect=args.protect and not failback_replica_released(args.tier) and not leftover,
                retain_on_delete=True,
                # A leftover keeps its source as the state has it: never re-pointed, never promoted.
                ignore_changes=["replicateSourceDb"] if leftover else None,
                depends_on=[] if leftover else args.writer_move_after,
            ),
        )


# --------------------------------------------------------------------------------------------------
# the data tier, region B


@dataclass
class DrDataTierArgs:
    """Inputs of :class:`DrDataTier`.

    Attributes:
        config: the parsed stack configuration (role dr).
        primary: region A's outputs (StackReference); their database mode matches (wiring check).
        tier: the desired DR tier (promotion and failback of the rds-replica database).
        vpc_id, isolated_subnet_ids: region B's network.
        app_security_group_id: region B's app tier security group.
        primary_provider: region A's provider (outage-tolerant), for the failback replica only.
    """

    config: StackConfig
    primary: PrimaryOutputs
    tier: DesiredTier
    vpc_id: pulumi.Input[str]
    isolated_subnet_ids: list[pulumi.Output[str]]
    app_security_group_id: pulumi.Input[str]
    primary_provider: pulumi.ProviderResource
    writer_move_after: pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]]] = field(default_factory=list)
    """What region A's failback instance waits for when this update promotes it: the failback record,
    written ahead of the writer move (:meth:`PilotLightRegion._failback_record`), and region B's web and
    api tiers, drained by the same update and declared after this tier (an output resolved once they
    are: ``components/pilot_light_region.py`` ``_LateDependencies``)."""


class DrDataTier(pulumi.ComponentResource):
    """Region B's data tier: its own key, the standby database, the replica bucket.

    The table replica, the secret replica and the backup copy vault in region B belong to the
    primary stack (see :class:`PrimaryDataTier`). The replica bucket also replicates back to region
    A, so objects written here during a failover reach A again (S3 never re-replicates replicas, so
    the two rules do not loop).
    """

    kms_key_arn: pulumi.Output[str]
    database: DrDatabase
    bucket: storage.DataBucket
    replica_bucket_arn: pulumi.Output[str]
    replica_kms_key_arn: pulumi.Output[str]
    runbook_data: dict[str, pulumi.Input[Any]]
    api_environment: dict[str, pulumi.Input[str]]
    ledger_path: LedgerPath
    ledger_secret_key_arn: pulumi.Input[str]

    def __init__(self, name: str, args: DrDataTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:DrDataTier", name, None, opts)
        cfg, primary = args.config, args.primary
        b = cfg.dr_region
        key = kms_key(
            f"{name}-key",
            description=f"{cfg.prefix}: data stores of the dr stack in {b}",
            alias=f"alias/{cfg.prefix}/data",
            protect=cfg.protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.kms_key_arn = key.arn
        self.database = DrDatabase(
            f"{name}-db",
            DrDatabaseArgs(
                database=cfg.database,
                primary=primary,
                tier=args.tier,
                prefix=cfg.prefix,
                region=b,
                primary_region=cfg.primary_region,
                vpc_id=args.vpc_id,
                isolated_subnet_ids=args.isolated_subnet_ids,
                app_security_group_id=args.app_security_group_id,
                kms_key_arn=key.arn,
                primary_provider=args.primary_provider,
                protect=cfg.protect,
                writer_move_after=args.writer_move_after,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.bucket = storage.DataBucket(
            f"{name}-s3",
            storage.DataBucketArgs(
                bucket_prefix=storage.stack_bucket_prefix(
                    cfg.prefix, b, legacy=cfg.storage.legacy_bucket_prefix
                ),
                kms_key_arn=key.arn,
                noncurrent_version_days=cfg.storage.noncurrent_version_days,
                protect=cfg.protect,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        storage.replication_rule(
            f"{name}-s3-to-primary",
            source_bucket_id=self.bucket.bucket_id,
            source_bucket_arn=self.bucket.bucket_arn,
            source_kms_key_arn=key.arn,
            dest_bucket_arn=primary["appBucketArn"],
            dest_kms_key_arn=primary["kmsKeyArn"],
            rtc=cfg.storage.replication_time_control,
            iam_path=iam_path(cfg.prefix),
            parent=self,
        )
        self.replica_bucket_arn, self.replica_kms_key_arn = self.bucket.bucket_arn, key.arn

        db = self.database
        aurora = db.mode == "aurora-global"
        self.runbook_data = {
            "databaseMode": db.mode,
            "maxReplicationLagSeconds": cfg.database.max_replication_lag_seconds,
            # Each region's key: an encrypted cross-region replica needs a key in its own region,
            # so the break-glass failback (a replica in region A) works from the outputs alone.
            "primaryKmsKeyArn": primary["kmsKeyArn"],
            "drKmsKeyArn": key.arn,
            **(
                {
                    "globalClusterId": primary["globalClusterId"],
                    "primaryClusterId": primary["primaryClusterId"],
                    "drClusterId": db.cluster_id,
                    "drClusterArn": db.cluster_arn,
                    "drInstanceClass": cfg.database.instance_class,
                }
                if aurora
                else {
                    "primaryDbInstanceId": primary["dbInstanceId"],
                    "drDbInstanceId": db.instance_id,
                    # Where the failback replica runs (region A's VPC): its role names them.
                    "primaryDbSubnetGroupName": primary["dbSubnetGroupName"],
                    "primaryDbParameterGroupName": primary["dbParameterGroupName"],
                }
            ),
        }
        d = cfg.database
        engine = str(primary.get("databaseEngine") or d.engine)
        engine_version = str(primary.get("databaseEngineVersion") or d.engine_version)
        self.ledger_path, _ = ledger_path(
            d.mode, engine, engine_version, d.instance_class, (cfg.primary_region, cfg.dr_region)
        )
        # Region B's copy of the secret, under the key the primary stack made for it in B.
        self.ledger_secret_key_arn = primary["replicaKmsKeyArn"]
        self.api_environment = {
            "TABLE_NAME": primary["tableName"],  # the global table's replica in B has the same name
            "RECEIPTS_BUCKET": self.bucket.bucket_name,
            "RECEIPTS_KMS_KEY_ID": key.arn,
            "DB_MODE": db.mode,
            **database_environment(
                db.mode,
                db.instance_id,
                global_cluster_id=primary.get("globalClusterId"),
                cluster_arn=db.cluster_arn,
            ),
            **ledger_environment(
                self.ledger_path,
                secret_arn=primary["dbSecretReplicaArn"],
                db_name=d.db_name,
                endpoint=db.endpoint,
                port=DB_PORTS[engine],
                ca_bundle=d.ca_bundle is not None,
            ),
        }
        self._exports: dict[str, Any] = {
            "databaseMode": db.mode,
            "drKmsKeyArn": key.arn,
            "drDatabaseEndpoint": db.endpoint,
            "drDbSecretArn": primary["dbSecretReplicaArn"],
            "drTableName": primary["tableName"],
            "replicaBucketName": self.bucket.bucket_name,
            "replicaBucketArn": self.bucket.bucket_arn,
        }
        if aurora:
            self._exports.update(
                {
                    "globalClusterId": primary["globalClusterId"],
                    "drClusterId": db.cluster_id,
                    "drClusterArn": db.cluster_arn,
                    "drClusterReaderEndpoint": db.reader_endpoint,
                }
            )
        else:
            self._exports.update({"drDbInstanceId": db.instance_id, "drDbInstanceArn": db.instance_arn})
            released: list[dict[str, Any]] = []
            if db.failback_instance_id is not None:
                self._exports["failbackDbInstanceId"] = db.failback_instance_id
                if failback_replica_released(args.tier):
                    # What the next update releases: import it into the primary stack.
                    released.append({"type": "aws:rds/instance:Instance", "id": db.failback_instance_id})
            if db.released_instance_id is not None:
                # Region B's promoted instance of the last cycle, replaced by a new replica: it holds
                # what region B took while it was the writer. Delete it by hand after verification.
                released.append({"type": "aws:rds/instance:Instance", "id": db.released_instance_id})
            if released:
                self._exports["releasedOnNextUpdate"] = released
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs of region B's data tier."""
        return dict(self._exports)
