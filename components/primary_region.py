"""PrimaryRegion: everything region A runs, the full application stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.compute import WebTier, WebTierArgs
from components.config import StackConfig
from components.failover import Capacity
from components.iam import iam_path
from components.naming import regional_api_name
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.primary_data import PrimaryDataTier, PrimaryDataTierArgs
from components.serverless import ApiTier, ApiTierArgs


@dataclass
class PrimaryRegionArgs:
    """Inputs of :class:`PrimaryRegion`.

    Attributes:
        config: the parsed stack configuration (role primary).
        dr_provider: region B's provider, for the few region-A-owned resources that reach B
            (the DynamoDB replica, the secret replica, backup copies).
        keep_fence: a failover fenced region A (the run journal, :func:`components.failover.region_a_fenced`):
            the properties the fence set out of band keep their live values (``ignore_changes``).
    """

    config: StackConfig
    dr_provider: pulumi.ProviderResource
    keep_fence: bool = False


class PrimaryRegion(pulumi.ComponentResource):
    """Region A: network, data tier, web and API tiers, monitoring. Exports what the dr stack needs."""

    network: Network
    web: WebTier
    api: ApiTier
    observability: Observability
    app_security_group: aws.ec2.SecurityGroup
    data: PrimaryDataTier
    # TABLE_NAME, RECEIPTS_BUCKET, RECEIPTS_KMS_KEY_ID, DB_MODE, DB_INSTANCE_ID or
    # GLOBAL_CLUSTER_ID + DB_CLUSTER_ARN: the data tier's part of the api function's environment.
    api_data_environment: dict[str, pulumi.Input[str]]

    def __init__(
        self, name: str, args: PrimaryRegionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pilotlight:index:PrimaryRegion", name, None, opts)
        cfg = args.config
        self.network = Network(
            f"{name}-net",
            NetworkArgs(
                region=cfg.primary_region,
                cidr=cfg.primary_cidr,
                az_count=cfg.az_count,
                nat_strategy=cfg.nat_strategy,
                iam_path=iam_path(cfg.prefix),
            ),
            pulumi.ResourceOptions(parent=self),
        )
        # --- data tier (components/primary_data.py, components/storage.py) ---
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
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.data = PrimaryDataTier(
            f"{name}-data",
            PrimaryDataTierArgs(
                config=cfg,
                vpc_id=self.network.vpc_id,
                isolated_subnet_ids=self.network.isolated_subnet_ids,
                app_security_group_id=self.app_security_group.id,
                dr_provider=args.dr_provider,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.api_data_environment = self.data.api_environment
        # --- end data tier ---
        # --- app tier ---
        capacity = Capacity(cfg.compute.min_size, cfg.compute.desired_capacity, cfg.compute.max_size)
        self.web = WebTier(
            f"{name}-web",
            WebTierArgs(
                region=cfg.primary_region,
                role="primary",
                app_name=cfg.app_name,
                vpc_id=self.network.vpc_id,
                public_subnet_ids=self.network.public_subnet_ids,
                private_subnet_ids=self.network.private_subnet_ids,
                capacity=capacity,
                instance_type=cfg.compute.instance_type,
                ami_id=cfg.compute.ami_id,
                certificate_arn=cfg.routing.certificate_arn,
                volume_size=cfg.compute.volume_size,
                manage_desired=True,
                keep_fence=args.keep_fence,
                extra_security_group_ids=[self.app_security_group.id],
                tags=cfg.tag_map(),
                iam_path=iam_path(cfg.prefix),
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.api = ApiTier(
            f"{name}-api",
            ApiTierArgs(
                prefix=cfg.prefix,
                region=cfg.primary_region,
                role="primary",
                enabled=True,
                domain_name=f"api.{cfg.routing.domain}",
                regional_domain_name=regional_api_name(cfg.primary_region, cfg.routing.domain),
                certificate_arn=cfg.routing.certificate_arn,
                reserved_concurrency=None,
                keep_fence=args.keep_fence,
                table_name=self.data.table_name,
                table_arn=self.data.table_arn,
                bucket_name=self.data.bucket_name,
                bucket_arn=self.data.bucket.bucket_arn,
                kms_key_arn=self.data.bucket_kms_key_arn,
                table_kms_key_arn=self.data.kms_key_arn,  # the table's key in region A
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
            pulumi.ResourceOptions(parent=self),
        )
        self.observability = Observability(
            f"{name}-obs",
            ObservabilityArgs(
                prefix=cfg.prefix,
                region=cfg.primary_region,
                alb_arn_suffix=self.web.alb_arn_suffix,
                target_group_arn_suffix=self.web.target_group_arn_suffix,
                function_name=self.api.function_name,
                api_name=self.api.api_name,
                api_stage=self.api.stage_name,
                alert_email=cfg.routing.alert_email,
                protect=cfg.protect,
            ),
            pulumi.ResourceOptions(parent=self),
        )

        self._exports: dict[str, Any] = {
            "primaryRegion": cfg.primary_region,
            "drRegion": cfg.dr_region,
            "vpcId": self.network.vpc_id,
            "vpcCidr": cfg.primary_cidr,
            "webCapacity": {
                "min": cfg.compute.min_size,
                "desired": cfg.compute.desired_capacity,
                "max": cfg.compute.max_size,
            },
            "webAlbDns": self.web.alb_dns_name,
            "webAlbArnSuffix": self.web.alb_arn_suffix,
            "apiName": self.api.api_name,
            "apiDomainTarget": self.api.domain_target,
            "webHealthUrl": self.web.health_url,
            "asgName": self.web.asg_name,
            "apiHost": self.api.api_host,
            "apiStage": self.api.stage_name,
            "apiInvokeUrl": self.api.invoke_url,
            "apiHealthUrl": self.api.health_url,
            "apiHealthHost": self.api.health_host,
            "apiHealthPath": self.api.health_path,
            "functionNames": [self.api.function_name],
            # The runbook's fence disables them; its role names them (components/runbook_iam.py).
            "eventSourceMappingIds": [self.api.event_source_mapping_id],
            "alertTopicArn": self.observability.topic_arn,
        }
        if self.api.regional_domain is not None:
            name, target, zone = self.api.regional_domain
            self._exports.update(
                {"apiRegionalDomainName": name, "apiRegionalDomainTarget": target, "apiRegionalZoneId": zone}
            )
        # data tier
        self._exports.update({**self.data.exports(), "appSecurityGroupId": self.app_security_group.id})
        self.register_outputs(self._exports)

    def exports(self) -> dict[str, Any]:
        """Stack outputs: everything the dr stack and the runbook read."""
        return dict(self._exports)
