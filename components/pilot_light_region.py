"""PilotLightRegion: region B, holding only what keeps data and what is slow to create."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.compute import HEALTH_PATH, WebTier, WebTierArgs
from components.config import StackConfig
from components.dr_data import DrDataTier, DrDataTierArgs
from components.failover import (
    DesiredTier,
    Latch,
    PhaseRecord,
    dr_capacity,
    dr_database_replicates,
    phase_record_parameter_name,
)
from components.global_failover import switch_metric as switch_metric_of
from components.iam import iam_path
from components.ledger_access import LedgerPath, ledger_path
from components.naming import limit_of, physical_name, regional_api_name
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.orchestrator import Orchestrator, OrchestratorArgs
from components.serverless import ApiTier, ApiTierArgs
from components.wiring import PrimaryOutputs
from lambdas.failover import lock
from lambdas.failover.context import GENERATION_KEY, generation_of
from lambdas.failover.names import generation_parameter_name


@dataclass
class PilotLightRegionArgs:
    """Inputs of :class:`PilotLightRegion`.

    Attributes:
        config: the parsed stack configuration (role dr).
        primary: region A's outputs, read through the StackReference.
        tier: the desired DR tier from :func:`components.failover.decide`; this component only applies it.
        primary_provider: region A's provider (outage-tolerant), for the failback replica only.
    """

    config: StackConfig
    primary: PrimaryOutputs
    tier: DesiredTier
    primary_provider: pulumi.ProviderResource


def replica_lag_alarm(cfg: StackConfig, data: DrDataTier) -> tuple[str, str, pulumi.Input[str], float]:
    """The replica-lag alarm for the mode: RDS reports seconds per instance, Aurora ms per cluster."""
    bound = cfg.database.max_replication_lag_seconds
    if cfg.database.mode == "rds-replica":
        assert data.database.instance_id is not None
        return ("ReplicaLag", "DBInstanceIdentifier", data.database.instance_id, float(bound))
    assert data.database.cluster_id is not None
    return ("AuroraGlobalDBReplicationLag", "DBClusterIdentifier", data.database.cluster_id, bound * 1000.0)


class _LateDependencies:
    """A ``depends_on`` that names resources declared later in the program than its resource.

    Region A's failback instance is declared with the data tier, before the web and api tiers, yet the
    update that promotes it (rds-replica ``switch-writer``) must drain region B first: when the state
    was refreshed after an out-of-band undrain (``pulumi up --refresh``), the same update drains region B
    again, and the engine runs operations in parallel unless a dependency orders them
    (https://www.pulumi.com/docs/iac/concepts/resources/options/dependson/,
    https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/ ``--parallel``). ``depends_on`` takes an
    ``Input[Sequence[Input[Resource]]]`` (pulumi/pulumi#991; Python SDK ``ResourceOptions.depends_on``),
    awaited before the resource is registered, so an output resolved later carries components declared
    after it: ``pulumi.deferred_output`` (Python SDK 3.272, pulumi/output.py: "Creates an Output[T] whose
    value can be later resolved from another Output[T] instance"; the same function in Node.js:
    https://www.pulumi.com/docs/reference/pkg/nodejs/pulumi/pulumi/functions/deferredOutput.html).
    Depending on a component depends on its children as they are when the dependency is resolved
    (https://github.com/pulumi/pulumi/pull/7732: "The exact set of children depends on exactly when
    the component resource is observed"): it is resolved once the components are fully constructed.

    What the order does not give (break28 B28-3): the engine starts the promotion when the drain's API calls
    return, not when region B has stopped committing writes (the ALB's 300 s deregistration delay, running
    invocations: ``lambdas/failover/lossless.py`` DRAIN_SECONDS), and no lag is measured after such a
    re-drain. The promotion's safety is the zero-lag proof of this drain
    (components/failover.py ``refuse_unproven_failback_promotion``); this order only keeps the promotion
    from running before region B's drain was even asked for.
    """

    def __init__(self, first: list[pulumi.Resource]) -> None:
        later: pulumi.Output[list[pulumi.Resource]]
        later, self._resolve = pulumi.deferred_output()
        self.depends_on: pulumi.Output[list[pulumi.Resource]] = later.apply(
            lambda resources: [*first, *resources]
        )

    def declared(self, resources: list[pulumi.Resource]) -> None:
        """The later resources are constructed: the dependent resource may register."""
        self._resolve(pulumi.Output.from_input(resources))

    def fail(self, error: BaseException) -> None:
        """The program stopped before declaring them: the dependent resource is never registered (its
        registration fails with the program's own error, the one the runtime then reports) rather than
        registered without them, and the runtime, which waits for every registration before it reports
        the program's error (pulumi/runtime/stack.py ``run_pulumi_func``), does not wait forever."""

        def stop(_: object) -> list[pulumi.Resource]:
            if isinstance(error, Exception):
                raise error
            raise RuntimeError(f"the program stopped before region B's drain was declared: {error!r}")

        self._resolve(pulumi.Output.from_input(None).apply(stop))


class PilotLightRegion(pulumi.ComponentResource):
    """Region B: network, replica data tier, dormant web and API tiers, the failover orchestrator."""

    network: Network
    latch_parameter_name: pulumi.Output[str]
    lock_table_name: pulumi.Output[str]
    web: WebTier
    api: ApiTier
    observability: Observability
    orchestrator: Orchestrator
    runbook: dict[str, Any]
    app_security_group: aws.ec2.SecurityGroup
    data: DrDataTier
    runbook_data: dict[str, pulumi.Input[Any]]
    replica_bucket_arn: pulumi.Output[str]
    replica_kms_key_arn: pulumi.Output[str]
    # TABLE_NAME, RECEIPTS_BUCKET, RECEIPTS_KMS_KEY_ID, DB_MODE, DB_INSTANCE_ID or
    # GLOBAL_CLUSTER_ID + DB_CLUSTER_ARN: the data tier's part of the api function's environment.
    api_data_environment: dict[str, pulumi.Input[str]]

    def __init__(
        self, name: str, args: PilotLightRegionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:PilotLightRegion", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        # The ledger's path is known from the configuration; the network must serve it.
        ledger_driver = (
            ledger_path(
                cfg.database.mode,
                str(args.primary.get("databaseEngine") or cfg.database.engine),
                str(args.primary.get("databaseEngineVersion") or cfg.database.engine_version),
                cfg.database.instance_class,
                (cfg.primary_region, cfg.dr_region),
            )[0]
            is LedgerPath.DRIVER
        )
        self.network = Network(
            f"{name}-net",
            NetworkArgs(
                region=cfg.dr_region,
                cidr=cfg.dr_cidr,
                az_count=cfg.az_count,
                nat_strategy=cfg.nat_strategy,
                iam_path=iam_path(cfg.prefix),
                function_endpoints=ledger_driver,
            ),
            child,
        )

        # The latch says whether region B is the active site; Route 53 follows it (the canary holds
        # the failover switch while it says active). The program creates it (standby) and never
        # writes its value again: the runbook and `python -m automation latch` write it out of band,
        # so a value written here would be diffed against a state that no longer describes it (no
        # diff, no write). The program reads it live (an invoke) instead: see components/program.py.
        latch = aws.ssm.Parameter(
            f"{name}-failover-latch",
            name=cfg.latch_parameter_name,
            type="String",
            value=Latch().to_json(),
            description="pilotlight failover latch: written by the failover runbook, read by pulumi up",
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
        )
        self.latch_parameter_name = latch.name
        # The failback record (what this update applies of a failback, for the next update and the
        # runbook to read: :meth:`_failback_record`). The phase that moves the writer writes it first.
        writes_ahead = args.tier.failback_phase == "switch-writer" and args.tier.failback_replica
        record = self._failback_record(name, cfg, args.tier, after=[]) if writes_ahead else None
        # What region A's promotion waits for in that update: the record, and region B's drain (the web
        # tier, the functions and their event sources), declared below, after the data tier (break26,
        # B26-5): see :class:`_LateDependencies`.
        writer_move = _LateDependencies([record]) if record is not None else None

        # --- data tier (components/dr_data.py, components/storage.py) ---
        # The app tier's instances and functions join this group; the database admits only it.
        self.app_security_group = aws.ec2.SecurityGroup(
            f"{name}-app-sg",
            vpc_id=self.network.vpc_id,
            description="app tier: web instances and functions (the only clients of the database)",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            tags={"Name": f"{cfg.prefix}-app"},
            opts=child,
        )
        try:
            self.data = DrDataTier(
                f"{name}-data",
                DrDataTierArgs(
                    config=cfg,
                    primary=args.primary,
                    tier=args.tier,
                    vpc_id=self.network.vpc_id,
                    isolated_subnet_ids=self.network.isolated_subnet_ids,
                    app_security_group_id=self.app_security_group.id,
                    primary_provider=args.primary_provider,
                    writer_move_after=writer_move.depends_on if writer_move is not None else [],
                ),
                child,
            )
            self.runbook_data = self.data.runbook_data
            self.replica_bucket_arn = self.data.replica_bucket_arn
            self.replica_kms_key_arn = self.data.replica_kms_key_arn
            self.api_data_environment = self.data.api_environment
            # --- end data tier ---

            # --- app tier: deployed, dormant until the failover module says otherwise ---
            tier = args.tier
            self.web = WebTier(
                f"{name}-web",
                WebTierArgs(
                    region=cfg.dr_region,
                    role="dr",
                    app_name=cfg.app_name,
                    vpc_id=self.network.vpc_id,
                    public_subnet_ids=self.network.public_subnet_ids,
                    private_subnet_ids=self.network.private_subnet_ids,
                    capacity=tier.capacity,
                    instance_type=cfg.compute.instance_type,
                    ami_id=self.web_image_id(name, cfg),
                    warm_pool=tier.warm_pool,
                    certificate_arn=cfg.routing.dr_certificate_arn,
                    volume_size=cfg.compute.volume_size,
                    manage_desired=False,
                    extra_security_group_ids=[self.app_security_group.id],
                    tags=cfg.tag_map(),
                    iam_path=iam_path(cfg.prefix),
                ),
                child,
            )
            self.api = ApiTier(
                f"{name}-api",
                ApiTierArgs(
                    prefix=cfg.prefix,
                    region=cfg.dr_region,
                    role="dr",
                    enabled=tier.event_sources_enabled,
                    domain_name=f"api.{cfg.routing.domain}",
                    regional_domain_name=regional_api_name(cfg.dr_region, cfg.routing.domain),
                    certificate_arn=cfg.routing.dr_certificate_arn,
                    reserved_concurrency=tier.reserved_concurrency,
                    # The global table's replica in region B: same name, this region's ARN.
                    table_name=args.primary["tableName"],
                    table_arn=str(args.primary["tableArn"]).replace(
                        f":{cfg.primary_region}:", f":{cfg.dr_region}:"
                    ),
                    bucket_name=self.data.bucket.bucket_name,
                    bucket_arn=self.data.replica_bucket_arn,
                    kms_key_arn=self.data.kms_key_arn,
                    table_kms_key_arn=args.primary["replicaKmsKeyArn"],  # the table's key in region B
                    environment={
                        "LATCH_PARAMETER": cfg.latch_parameter_name,
                        "LATCH_REGION": cfg.dr_region,
                        **self.api_data_environment,
                    },
                    ledger_path=self.data.ledger_path,
                    ledger_secret_key_arn=self.data.ledger_secret_key_arn,
                    vpc_subnet_ids=self.network.private_subnet_ids,
                    vpc_security_group_ids=[self.app_security_group.id],
                    ca_bundle=cfg.database.ca_bundle,
                ),
                child,
            )
        except BaseException as error:
            # A program that stops here must not leave the promotion registered without its drain, nor
            # waiting forever on a dependency that is never declared (the runtime waits for every
            # registration before it reports the error).
            if writer_move is not None:
                writer_move.fail(error)
            raise
        if writer_move is not None:
            writer_move.declared([self.web, self.api])
        # The runbook lock (lambdas/failover/lock.py): one item, taken by every run before its first
        # change, so two runs never act at once. On demand (a few writes per run); encrypted with region
        # B's data key like every table of the program (the app table's replica here uses it too). No
        # point-in-time recovery: a lost lock item is a free lock, never lost data.
        lock_table = aws.dynamodb.Table(
            f"{name}-runbook-lock",
            name=physical_name(
                cfg.prefix, "runbook-lock", limit=limit_of("aws:dynamodb/table:Table", "name")
            ),
            billing_mode="PAY_PER_REQUEST",
            hash_key=lock.KEY_ATTRIBUTE,
            attributes=[aws.dynamodb.TableAttributeArgs(name=lock.KEY_ATTRIBUTE, type="S")],
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=self.data.kms_key_arn
            ),
            deletion_protection_enabled=cfg.protect,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect),
        )
        self.lock_table_name = lock_table.name

        lag = replica_lag_alarm(cfg, self.data)
        self.dashboard_dimensions: dict[str, Any] = {
            "alb": self.web.alb_arn_suffix,
            "function": self.api.function_name,
            "api": self.api.api_name,
            "stage": self.api.stage_name,
            "db_metric": lag[0],
            "db_dim": lag[1],
            "db_value": lag[2],
        }
        self.observability = Observability(
            f"{name}-obs",
            ObservabilityArgs(
                prefix=cfg.prefix,
                region=cfg.dr_region,
                alb_arn_suffix=self.web.alb_arn_suffix,
                target_group_arn_suffix=self.web.target_group_arn_suffix,
                function_name=self.api.function_name,
                api_name=self.api.api_name,
                api_stage=self.api.stage_name,
                alert_email=cfg.routing.alert_email,
                protect=cfg.protect,
                watch_primary=True,
                replica_lag=lag,
                # Meaningful in every phase: a promoted database reports no lag, so silence is not an alarm;
                # while it replicates, silence is INSUFFICIENT_DATA (notified), never ALARM: the runbook
                # promotes it out of band, before any update could change this (BL21-6).
                replica_lag_missing_data=(
                    "missing"
                    if dr_database_replicates(tier, cfg.database.mode) or self.data.database.reseeded
                    else "notBreaching"
                ),
                confirmation_minutes=cfg.routing.confirmation_minutes,
            ),
            child,
        )

        # --- the runbook's view of the deployment (lambdas/failover/context.py) ---
        switch_metric = switch_metric_of(cfg.prefix)
        active = dr_capacity(args.primary.web_capacity, cfg.dr.capacity_percent)
        self.runbook = {
            "appName": cfg.app_name,
            "environment": cfg.environment,
            "primaryRegion": cfg.primary_region,
            "drRegion": cfg.dr_region,
            "databaseMode": cfg.database.mode,
            "maxReplicationLagSeconds": cfg.database.max_replication_lag_seconds,
            "primaryAsgName": args.primary["asgName"],
            "primaryCapacity": args.primary["webCapacity"],
            "drAsgName": self.web.asg_name,
            "drCapacity": {"min": active.min, "desired": active.desired, "max": active.max},
            "primaryFunctionNames": list(args.primary["functionNames"]),
            "drFunctionNames": [self.api.function_name],
            "primaryEventSourceMappingIds": list(args.primary["eventSourceMappingIds"]),
            "drEventSourceMappingIds": [self.api.event_source_mapping_id],
            "switchMetric": switch_metric,
            "latchParameterName": latch.name,
            "lockTableName": lock_table.name,
            "notifyTopicArn": self.observability.topic_arn,
            # What the runbook's permissions name besides the above (components/runbook_iam.py).
            "notifyKeyArn": self.observability.topic_key_arn,
            "dataKeyArns": [args.primary["kmsKeyArn"], self.data.kms_key_arn],
            "lockTableKeyArn": self.data.kms_key_arn,  # the lock table's server-side encryption above
            "primaryBucketName": args.primary["appBucketName"],
            "drBucketName": self.data.bucket.bucket_name,
            "globalTableName": args.primary["tableName"],
            "primaryHealthUrl": args.primary["apiHealthUrl"],
            "drHealthUrl": self.api.health_url,
            **self.runbook_data,
        }
        # The generation stamp: a hash of the context, on the output and, live, in region B. The
        # break-glass runbook refuses an outputs file whose stamp is not the live one (stale) before
        # it changes anything. Only the program writes this parameter (no ignore_changes: unlike
        # the latch, the runbook never writes it), and a content hash changes only when the
        # context does, so a routine `pulumi up` neither fights the runbook nor stales a file.
        generation = pulumi.Output.from_input(dict(self.runbook)).apply(generation_of)
        self.runbook[GENERATION_KEY] = generation
        aws.ssm.Parameter(
            f"{name}-runbook-generation",
            name=generation_parameter_name(cfg.latch_parameter_name),
            type="String",
            value=generation,
            description="pilotlight runbook generation: the stamp of the current `runbook` output "
            "(written by pulumi up, read by the runbook's preflight)",
            opts=child,
        )
        self.orchestrator = Orchestrator(
            f"{name}-orchestrator",
            OrchestratorArgs(
                prefix=cfg.prefix,
                primary_region=cfg.primary_region,
                dr_region=cfg.dr_region,
                runbook_context=self.runbook,
                auto_failover=cfg.dr.auto_failover,
                primary_unhealthy_alarm_arn=self.observability.primary_unhealthy_alarm_arn,
                canary_targets=[
                    web_canary_target(cfg, args.primary),
                    {"name": "api", "url": args.primary["apiHealthUrl"]},
                ],
                switch_metric=switch_metric,
                latch_parameter_name=latch.name,
            ),
            child,
        )

        self._exports: dict[str, Any] = {
            "drRegion": cfg.dr_region,
            "primaryRegion": cfg.primary_region,
            "drVpcId": self.network.vpc_id,
            "drVpcCidr": cfg.dr_cidr,
            "latchParameterName": latch.name,
            "drActive": args.tier.active,
            "traffic": args.tier.traffic,
            "drWebAlbDns": self.web.alb_dns_name,
            "drWebHealthUrl": self.web.health_url,
            "drApiHealthUrl": self.api.health_url,
            "drAsgName": self.web.asg_name,
            "failoverStateMachineArn": self.orchestrator.failover_state_machine_arn,
            "failbackStateMachineArn": self.orchestrator.failback_state_machine_arn,
            "operatorPolicyArn": self.orchestrator.operator_policy_arn,
            "runbook": self.runbook,
        }
        # data tier
        self._exports.update({**self.data.exports(), "drAppSecurityGroupId": self.app_security_group.id})

        if not writes_ahead:
            self._failback_record(name, cfg, args.tier, after=[self.data, self.web, self.api])
        self.register_outputs(self._exports)

    def _failback_record(
        self, name: str, cfg: StackConfig, tier: DesiredTier, *, after: list[pulumi.Resource]
    ) -> aws.ssm.Parameter:
        """The failback record: the ``dr:failback`` phase this update applies, for the next update
        (components/failover.py ``refuse_step_back``, ``refuse_phase_skip``) and the runbook's refusals
        (lambdas/failover/fencing.py) to read live. Only the program writes it.

        The engine does not apply an update all-or-nothing (a failed resource stops new operations, not
        those under way: https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), so where the record is
        written in the update decides what it can claim (issue 13; written beside the phase's changes, it
        could be ahead or behind them):

        * ``after`` the phase's changes (``replicate``, ``drain``, ``route-back``, ``complete``, Aurora's
          ``switch-writer``): it depends on the data tier, the web tier and the functions and their event
          sources. Depending on a component depends on every resource under it (Python SDK 3.10.1,
          https://github.com/pulumi/pulumi/pull/7732), and the engine runs an operation only after its
          dependencies' succeeded (https://www.pulumi.com/docs/iac/concepts/resources/options/dependson/):
          when one fails the record keeps the phase before, so it never says ``drain`` while region B still
          takes writes, and ``switch-writer`` is not allowed before a drain that happened.
        * ahead of the writer move (rds-replica ``switch-writer``, ``after`` empty): region A's failback
          instance depends on the record (``DrDataTierArgs.writer_move_after``), as the runbook writes its
          writer-move mark before it promotes. A record behind a promotion that happened would let the
          next update step back and give region B its web tier back beside region A's new writer (two
          writers); ahead of a promotion that failed, it only holds region B drained until switch-writer
          runs again.
        """
        return aws.ssm.Parameter(
            f"{name}-failback-phase",
            name=phase_record_parameter_name(cfg.latch_parameter_name),
            type="String",
            value=PhaseRecord(tier.failback_phase, tier.latch_since, drains=tier.drains).to_json(),
            description="pilotlight failback record: the dr:failback phase the last pulumi up -s dr applied",
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def web_image_id(self, name: str, cfg: StackConfig) -> pulumi.Input[str] | None:
        """The web tier's image in region B: a configured AMI (region A's) is copied here.

        AMI ids are regional. The copy is made at deployment, while region A answers, and never
        changes at failover, so lighting the pilot light needs nothing from region A. It is
        encrypted with the region's default EBS key, which Auto Scaling may use without a grant.
        None: the region's public Amazon Linux 2023 parameter (compute.py).
        """
        if cfg.compute.ami_id is None:
            return None
        copy = aws.ec2.AmiCopy(
            f"{name}-web-ami",
            name=physical_name(
                cfg.prefix, "web", cfg.dr_region, limit=limit_of("aws:ec2/amiCopy:AmiCopy", "name")
            ),
            description=f"pilotlight web image copied from {cfg.primary_region}",
            source_ami_id=cfg.compute.ami_id,
            source_ami_region=cfg.primary_region,
            encrypted=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return copy.id

    def exports(self) -> dict[str, Any]:
        """Stack outputs of region B."""
        return dict(self._exports)


def web_canary_target(cfg: StackConfig, primary: PrimaryOutputs) -> dict[str, pulumi.Input[str]]:
    """The canary's probe of region A's web tier.

    Over HTTP, the ALB's own DNS name. Over HTTPS, the listener presents the ACM certificate for the
    user's names (``web.<domain>`` among them, README), which never covers ``*.elb.amazonaws.com``:
    ACM validates "each domain name that you specify" for ownership
    (https://docs.aws.amazon.com/acm/latest/APIReference/API_RequestCertificate.html), and the canary
    verifies the certificate and the host name (``ssl.create_default_context``: ``check_hostname``,
    https://docs.python.org/3/library/ssl.html#ssl.create_default_context). So the URL names
    ``web.<domain>`` (SNI, certificate check and Host header) and ``address`` is region A's ALB, where the
    probe connects: ``web.<domain>`` itself is a failover record that may point at region B, and the
    canary must see region A whatever Route 53 answers (lambdas/health_check/probe.py).
    """
    if cfg.routing.certificate_arn is None:
        return {"name": "web", "url": primary["webHealthUrl"]}
    return {
        "name": "web",
        "url": f"https://web.{cfg.routing.domain}{HEALTH_PATH}",
        "address": primary["webAlbDns"],
    }
