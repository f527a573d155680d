"""The web tier: ALB, target group, launch template and Auto Scaling group, in either region.

Who owns ``desired_capacity``: the program sets ``min_size`` and ``max_size`` only, and target
tracking moves the desired capacity between them, so ``pulumi up`` and the scaling policy never
fight. The primary group gets its initial desired capacity at creation (then ignored); the DR group
never has it written: raising ``min_size`` from 0 at failover makes Auto Scaling launch at once,
and lowering ``max_size`` to 0 at standby drains it.
"""

from __future__ import annotations

import base64
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.failover import Capacity
from components.iam import assume_role_policy

AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
HEALTH_PATH = "/health"


# An instance type is <family>.<size>, the family <series letters><generation digits><options>, where the
# option letter `g` marks AWS Graviton (Amazon EC2 instance type naming conventions,
# https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html; the Graviton families as
# AWS lists them: "C6g[d], M6g[d], R6g[d], T4g, X2gd, C6gn, I4g, Im4gn, Is4gen, G5g, C7g[d][n], M7g[d],
# R7g[d], R8g", https://github.com/aws/aws-graviton-getting-started). So a `g` among the options is
# Graviton, while a series `g` (g4dn, g5, g6e: GPU instances on x86) is not. A1 predates the option letter: "A1 instances are the first EC2 instances powered
# by AWS Graviton Processors" (https://aws.amazon.com/ec2/instance-types/a1/).
_FAMILY = re.compile(r"^(?P<series>[a-z]+?)(?P<generation>[0-9]+)(?P<options>[a-z-]*)$")
_GRAVITON_WITHOUT_OPTION = frozenset({"a1"})


def architecture(instance_type: str) -> str:
    """``arm64`` for Graviton families (``a1``, ``t4g``, ``m7g``, ``c6gn``, ``is4gen``...), else ``x86_64``."""
    family = instance_type.split(".", 1)[0]
    if family in _GRAVITON_WITHOUT_OPTION:
        return "arm64"
    match = _FAMILY.match(family)
    return "arm64" if match and "g" in match["options"] else "x86_64"


def user_data(region: str, role: str, app_name: str) -> str:
    """Boot script: a tiny HTTP server answering ``/health`` with this instance's region and role."""
    script = textwrap.dedent(
        f"""\
        #!/bin/bash
        set -euo pipefail
        mkdir -p /srv/www
        cat > /srv/www/health <<'JSON'
        {{"status": "ok", "region": "{region}", "role": "{role}", "app": "{app_name}"}}
        JSON
        cp /srv/www/health /srv/www/index.html
        cat > /etc/systemd/system/pilotlight-web.service <<'UNIT'
        [Unit]
        Description=pilotlight web health page
        After=network-online.target
        [Service]
        ExecStart=/usr/bin/python3 -m http.server 80 --directory /srv/www
        Restart=always
        [Install]
        WantedBy=multi-user.target
        UNIT
        systemctl daemon-reload
        systemctl enable --now pilotlight-web
        """
    )
    return base64.b64encode(script.encode()).decode()


@dataclass
class WebTierArgs:
    """Inputs of :class:`WebTier`.

    Attributes:
        region: the region of the provider this component gets.
        role: ``primary`` or ``dr`` (reported by the health page, used in names).
        app_name: shown on the health page.
        vpc_id, public_subnet_ids, private_subnet_ids: from the region's Network.
        capacity: min/desired/max; the DR group's comes from the failover module (0/0/0 in standby).
        instance_type: EC2 instance type.
        ami_id: the image; None looks up the region's Amazon Linux 2023 public SSM parameter.
        warm_pool: stopped, pre-initialised instances kept in the pool (DR only; 0 = none).
        certificate_arn: an ACM certificate in this region: HTTPS listener (HTTP redirects); else HTTP.
        extra_security_group_ids: attached to instances (e.g. the app tier's group the database admits).
        ebs_kms_key_arn: the region's key for the instances' volumes (None: the account's EBS default key).
        manage_desired: write ``desired_capacity`` at creation (primary) instead of never (DR).
        keep_fence: region A is fenced by a failover (MinSize and DesiredCapacity 0, set out of band):
            ``min_size`` is ignored too, so the state's value is kept and nothing un-fences the group
            ("ignoreChanges ... the value from the state is used":
            https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/; a new MinSize above the
            group's size raises its DesiredCapacity:
            https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html).
        tags: the stack's tags. The provider's default tags reach the group and the launch template
            but not what Auto Scaling launches: instances get them only from tags the group
            propagates at launch, and volumes only from the launch template's tag specifications
            (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-tagging.html).
        iam_path: the IAM path of the roles and instance profiles created (components.iam.iam_path).
    """

    region: str
    role: str
    app_name: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    capacity: Capacity
    instance_type: str = "t3.small"
    ami_id: pulumi.Input[str] | None = None
    warm_pool: int = 0
    certificate_arn: str | None = None
    extra_security_group_ids: Sequence[pulumi.Input[str]] = field(default_factory=list)
    ebs_kms_key_arn: pulumi.Input[str] | None = None
    volume_size: int = 8
    manage_desired: bool = True
    keep_fence: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    iam_path: str = "/"


class WebTier(pulumi.ComponentResource):
    """An internet-facing ALB in front of an Auto Scaling group of web instances."""

    alb_dns_name: pulumi.Output[str]
    alb_zone_id: pulumi.Output[str]
    alb_arn_suffix: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    asg_name: pulumi.Output[str]
    instance_security_group_id: pulumi.Output[str]
    health_url: pulumi.Output[str]

    def __init__(self, name: str, args: WebTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:WebTier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        https = args.certificate_arn is not None

        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=args.vpc_id,
            description="Web traffic to the load balancer",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=p, to_port=p, cidr_blocks=["0.0.0.0/0"]
                )
                for p in ((80, 443) if https else (80,))
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            opts=child,
        )
        instance_sg = aws.ec2.SecurityGroup(
            f"{name}-instance-sg",
            vpc_id=args.vpc_id,
            description="Web instances: HTTP from the load balancer only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=80, to_port=80, security_groups=[alb_sg.id]
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            opts=child,
        )

        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[alb_sg.id],
            drop_invalid_header_fields=True,
            idle_timeout=60,
            opts=child,
        )
        # Fast target health: 2 x 10 s to come in service, which bounds the web tier's share of the RTO.
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=80,
            protocol="HTTP",
            target_type="instance",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=HEALTH_PATH,
                interval=10,
                healthy_threshold=2,
                unhealthy_threshold=3,
                timeout=5,
                matcher="200",
            ),
            opts=child,
        )
        forward = [aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)]
        if https:
            aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                certificate_arn=args.certificate_arn,
                default_actions=forward,
                opts=child,
            )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        port="443", protocol="HTTPS", status_code="HTTP_301"
                    ),
                )
            ]
            if https
            else forward,
            opts=child,
        )

        role = aws.iam.Role(
            f"{name}-instance-role",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            path=args.iam_path,
            opts=child,
        )
        # Session Manager instead of SSH: no inbound port, no key pair to lose in a disaster.
        aws.iam.RolePolicyAttachment(
            f"{name}-instance-ssm",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
            opts=child,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-instance-profile", role=role.name, path=args.iam_path, opts=child
        )

        launched_tags = {**args.tags, "Name": f"{name}-web"}
        image_id: pulumi.Input[str]
        if args.ami_id is not None:
            image_id = args.ami_id
        else:
            image_id = aws.ssm.get_parameter(
                name=AL2023_PARAMETER.format(arch=architecture(args.instance_type)),
                opts=pulumi.InvokeOptions(parent=self),
            ).value

        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            image_id=image_id,
            instance_type=args.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            vpc_security_group_ids=[instance_sg.id, *args.extra_security_group_ids],
            user_data=user_data(args.region, args.role, args.app_name),
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.volume_size,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=args.ebs_kms_key_arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=launched_tags)
                for kind in ("instance", "volume")
            ],
            update_default_version=True,
            opts=child,
        )

        warm_pool = (
            aws.autoscaling.GroupWarmPoolArgs(
                pool_state="Stopped",
                min_size=args.warm_pool,
                instance_reuse_policy=aws.autoscaling.GroupWarmPoolInstanceReusePolicyArgs(
                    reuse_on_scale_in=True
                ),
            )
            if args.warm_pool > 0
            else None
        )
        group = aws.autoscaling.Group(
            f"{name}-asg",
            min_size=args.capacity.min,
            max_size=args.capacity.max,
            desired_capacity=args.capacity.desired if args.manage_desired else None,
            vpc_zone_identifiers=args.private_subnet_ids,
            target_group_arns=[target_group.arn],
            health_check_type="ELB",
            health_check_grace_period=60,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version="$Latest"),
            warm_pool=warm_pool,
            default_instance_warmup=60,
            tags=[
                aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                for key, value in sorted(launched_tags.items())
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=(["desiredCapacity"] if args.manage_desired else [])
                + (["minSize"] if args.keep_fence else [])
                or None,
            ),
        )
        aws.autoscaling.Policy(
            f"{name}-cpu-target",
            autoscaling_group_name=group.name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ASGAverageCPUUtilization"
                ),
                target_value=50,
            ),
            opts=child,
        )

        self.alb_dns_name = alb.dns_name
        self.alb_zone_id = alb.zone_id
        self.alb_arn_suffix = alb.arn_suffix
        self.target_group_arn_suffix = target_group.arn_suffix
        self.asg_name = group.name
        self.instance_security_group_id = instance_sg.id
        self.health_url = pulumi.Output.concat("https://" if https else "http://", alb.dns_name, HEALTH_PATH)
        self.register_outputs(
            {"alb_dns_name": self.alb_dns_name, "asg_name": self.asg_name, "health_url": self.health_url}
        )
