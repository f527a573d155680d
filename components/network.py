"""The regional network: VPC, three subnet tiers, NAT per stack strategy, endpoints, flow logs, NACLs.

Public subnets hold load balancers and NAT gateways; private (app) subnets hold the web instances;
isolated (data) subnets hold databases and have no route out of the VPC. The functions and the
runbook run outside the VPC, except the payments function when it reaches its database with a
driver (``components/ledger_access.py``): it then runs in the private subnets. The standby region runs without NAT gateways by default: gateway
endpoints (S3, DynamoDB, free) and the interface endpoints Session Manager needs to reach the
instances (:data:`ENDPOINT_CONSUMERS`) keep it working privately, and it pays nothing for NAT while
the light is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cidr import TIERS, plan_subnets
from components.iam import assume_role_policy
from components.ledger_access import FUNCTION_ENDPOINTS

# Interface endpoints by who calls the service from inside the VPC. Only the web instances live in
# it (the functions run outside any VPC and reach AWS through Lambda's own network), and what they
# call is Session Manager, which needs ssm, ssmmessages and ec2messages to reach an instance without
# a NAT gateway (https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html).
# An endpoint with no caller costs an hourly fee per AZ for nothing.
ENDPOINT_CONSUMERS: dict[str, tuple[str, ...]] = {
    "web instances: Session Manager (AmazonSSMManagedInstanceCore)": ("ssm", "ssmmessages", "ec2messages"),
}
INTERFACE_ENDPOINTS = tuple(dict.fromkeys(s for services in ENDPOINT_CONSUMERS.values() for s in services))
GATEWAY_ENDPOINTS = ("s3", "dynamodb")
EPHEMERAL_PORTS = (1024, 65535)


@dataclass
class NetworkArgs:
    """Inputs of :class:`Network`.

    Attributes:
        region: the region of the provider this component is given (used for endpoint service names).
        cidr: the VPC CIDR (validated by the config: /16../24, private, no overlap with the peer).
        az_count: availability zones used, 2 or 3 (the region's first ones, looked up).
        nat_strategy: ``per-az`` (a NAT gateway per AZ: no cross-AZ dependency), ``single``, or
            ``none`` (no internet egress from private subnets).
        interface_endpoints: create interface VPC endpoints; default when ``nat_strategy`` is none.
        flow_log_retention_days: CloudWatch Logs retention of the VPC flow logs.
        iam_path: the IAM path of the roles created (components.iam.iam_path).
        function_endpoints: the payments function runs in the private subnets (the ledger's driver
            path): interface endpoints also get what it calls (:data:`FUNCTION_ENDPOINTS`).
    """

    region: str
    cidr: str
    az_count: int = 2
    nat_strategy: str = "per-az"
    interface_endpoints: bool | None = None
    flow_log_retention_days: int = 30
    iam_path: str = "/"
    function_endpoints: bool = False


class Network(pulumi.ComponentResource):
    """A VPC with public, private and isolated subnets across the region's first AZs."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    isolated_subnet_ids: list[pulumi.Output[str]]
    endpoint_security_group_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Availability Zones only: "When Local Zones are enabled in a region, by default the API and this
        # data source include both Local Zones and Availability Zones" (pulumi-aws getAvailabilityZones,
        # https://www.pulumi.com/registry/packages/aws/api-docs/getavailabilityzones/), and the provider sorts
        # by name, so `us-west-2-lax-1a` would come before `us-west-2a`. A Local or Wavelength Zone offers a
        # subset of services (no Aurora, NAT gateway or SSM endpoints in every one). DescribeAvailabilityZones'
        # `zone-type` filter takes availability-zone | local-zone | wavelength-zone
        # (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeAvailabilityZones.html). For an
        # account without Local Zones the answer, hence every subnet, is unchanged.
        azs = aws.get_availability_zones(
            state="available",
            filters=[{"name": "zone-type", "values": ["availability-zone"]}],
            opts=pulumi.InvokeOptions(parent=self),
        ).names
        if len(azs) < args.az_count:
            raise ValueError(
                f"region {args.region} has {len(azs)} available AZs; azCount asks for {args.az_count}"
            )
        azs = azs[: args.az_count]

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child)

        subnets: dict[str, list[aws.ec2.Subnet]] = {tier: [] for tier in TIERS}
        for plan in plan_subnets(args.cidr, args.az_count):
            subnets[plan.tier].append(
                aws.ec2.Subnet(
                    f"{name}-{plan.tier}-{plan.az_index}",
                    vpc_id=vpc.id,
                    cidr_block=plan.cidr,
                    availability_zone=azs[plan.az_index],
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-{plan.tier}-{azs[plan.az_index]}", "Tier": plan.tier},
                    opts=child,
                )
            )

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{name}-public"},
            opts=child,
        )
        for i, subnet in enumerate(subnets["public"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{i}", subnet_id=subnet.id, route_table_id=public_rt.id, opts=child
            )

        nat_ids: list[pulumi.Output[str]] = []
        if args.nat_strategy != "none":
            count = args.az_count if args.nat_strategy == "per-az" else 1
            for i in range(count):
                eip = aws.ec2.Eip(
                    f"{name}-nat-eip-{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, opts=child
                )
                nat = aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=subnets["public"][i].id,
                    tags={"Name": f"{name}-nat-{i}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
                nat_ids.append(nat.id)

        # Private subnets: one route table per AZ so each AZ leaves through its own NAT gateway.
        private_rts: list[aws.ec2.RouteTable] = []
        for i, subnet in enumerate(subnets["private"]):
            routes = (
                [
                    aws.ec2.RouteTableRouteArgs(
                        cidr_block="0.0.0.0/0", nat_gateway_id=nat_ids[i % len(nat_ids)]
                    )
                ]
                if nat_ids
                else []
            )
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}",
                vpc_id=vpc.id,
                routes=routes,
                tags={"Name": f"{name}-private-{i}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{i}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
            private_rts.append(rt)

        isolated_rt = aws.ec2.RouteTable(
            f"{name}-isolated-rt", vpc_id=vpc.id, tags={"Name": f"{name}-isolated"}, opts=child
        )
        for i, subnet in enumerate(subnets["isolated"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-isolated-rta-{i}", subnet_id=subnet.id, route_table_id=isolated_rt.id, opts=child
            )

        # Gateway endpoints cost nothing and keep S3/DynamoDB traffic off the NAT gateways.
        route_table_ids = [rt.id for rt in private_rts] + [isolated_rt.id]
        for service in GATEWAY_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=route_table_ids,
                tags={"Name": f"{name}-{service}"},
                opts=child,
            )

        self.endpoint_security_group_id = None
        want_interface = (
            args.nat_strategy == "none" if args.interface_endpoints is None else args.interface_endpoints
        )
        if want_interface:
            sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints-sg",
                vpc_id=vpc.id,
                description="HTTPS from the VPC to interface endpoints",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp", from_port=443, to_port=443, cidr_blocks=[args.cidr], description="VPC"
                    )
                ],
                egress=[],
                tags={"Name": f"{name}-endpoints"},
                opts=child,
            )
            self.endpoint_security_group_id = sg.id
            services = INTERFACE_ENDPOINTS + (FUNCTION_ENDPOINTS if args.function_endpoints else ())
            for service in dict.fromkeys(services):
                aws.ec2.VpcEndpoint(
                    f"{name}-{service}-endpoint",
                    vpc_id=vpc.id,
                    service_name=f"com.amazonaws.{args.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in subnets["private"]],
                    security_group_ids=[sg.id],
                    tags={"Name": f"{name}-{service}"},
                    opts=child,
                )

        self._flow_logs(name, vpc, args, child)
        self._nacls(name, vpc, subnets, args, child)

        self.vpc_id = vpc.id
        self.public_subnet_ids = [s.id for s in subnets["public"]]
        self.private_subnet_ids = [s.id for s in subnets["private"]]
        self.isolated_subnet_ids = [s.id for s in subnets["isolated"]]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "isolated_subnet_ids": self.isolated_subnet_ids,
            }
        )

    def _flow_logs(
        self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs, child: pulumi.ResourceOptions
    ) -> None:
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", retention_in_days=args.flow_log_retention_days, opts=child
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"),
            path=args.iam_path,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            opts=child,
        )

    def _nacls(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        subnets: dict[str, list[aws.ec2.Subnet]],
        args: NetworkArgs,
        child: pulumi.ResourceOptions,
    ) -> None:
        """Baseline NACLs (seed 001): stateless guard rails under the security groups."""
        lo, hi = EPHEMERAL_PORTS
        anywhere = "0.0.0.0/0"

        def rule(no: int, cidr: str, port_from: int = 0, port_to: int = 0, proto: str = "-1"):
            return aws.ec2.NetworkAclIngressArgs(
                rule_no=no,
                action="allow",
                protocol=proto,
                cidr_block=cidr,
                from_port=port_from,
                to_port=port_to,
            )

        def egress(no: int, cidr: str):
            return aws.ec2.NetworkAclEgressArgs(
                rule_no=no, action="allow", protocol="-1", cidr_block=cidr, from_port=0, to_port=0
            )

        acls = {
            # Internet-facing: web ports and return traffic in; anything out.
            "public": (
                [rule(100, anywhere, 443, 443, "tcp"), rule(110, anywhere, 80, 80, "tcp"),
                 rule(120, args.cidr), rule(130, anywhere, lo, hi, "tcp")],
                [egress(100, anywhere)],
            ),
            # App tier: anything from inside the VPC, return traffic from the internet via NAT.
            "private": (
                [rule(100, args.cidr), rule(110, anywhere, lo, hi, "tcp"), rule(120, anywhere, lo, hi, "udp")],
                [egress(100, anywhere)],
            ),
            # Data tier: the VPC only, both ways.
            "isolated": ([rule(100, args.cidr)], [egress(100, args.cidr)]),
        }  # fmt: skip
        for tier, (ingress, egress_rules) in acls.items():
            aws.ec2.NetworkAcl(
                f"{name}-{tier}-nacl",
                vpc_id=vpc.id,
                subnet_ids=[s.id for s in subnets[tier]],
                ingress=ingress,
                egress=egress_rules,
                tags={"Name": f"{name}-{tier}"},
                opts=child,
            )
