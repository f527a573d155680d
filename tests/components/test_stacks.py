"""Both stacks synthesize offline; every resource lands in the region it belongs to, tagged."""

from __future__ import annotations

import ipaddress
import json

import pytest

from automation import synth
from components.wiring import REQUIRED_PRIMARY_OUTPUTS, PrimaryOutputs, StackWiringError
from tests.components.conftest import synthesize

REQUIRED_TAGS = ("Environment", "CostCenter", "Criticality")

# Resources the dr stack deliberately owns in region A (it must stay deployable while A is down, so
# these are few and change only at failback). Keyed by type token.
DR_STACK_REGION_A_TYPES = {
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
    "aws:rds/instance:Instance",  # the failback replica, only during an rds-replica failback
}


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_no_resource_uses_the_default_provider(stack: str) -> None:
    s = synthesize(stack)
    on_default = [r.name for r in s.aws_resources() if r.provider is None or r.region is None]
    assert on_default == []


def test_primary_resources_are_in_region_a(primary: synth.Synthesis) -> None:
    a = primary.config["pilotlight:primaryRegion"]
    # The primary stack reaches region B only through resources that are replicas by nature. It owns,
    # in B, the key that encrypts its copies there (the DynamoDB replica, the secret replica, backup
    # copies: a copy is encrypted with its destination region's key), that key's alias, and the backup
    # vault its plan copies into (the plan names it; the dr stack depends on the primary, not the reverse).
    allowed_in_b: set[str] = {"aws:kms/key:Key", "aws:kms/alias:Alias", "aws:backup/vault:Vault"}
    elsewhere = [
        (r.type, r.name, r.region)
        for r in primary.aws_resources()
        if r.region != a and r.type not in allowed_in_b
    ]
    assert elsewhere == []


def test_dr_resources_are_in_region_b_except_the_few_owned_in_a(dr: synth.Synthesis) -> None:
    b = dr.config["pilotlight:drRegion"]
    elsewhere = [(r.type, r.name) for r in dr.aws_resources() if r.region != b]
    assert all(t in DR_STACK_REGION_A_TYPES for t, _ in elsewhere), elsewhere


def test_dr_invokes_never_read_region_a(dr: synth.Synthesis) -> None:
    """The failover path never reads from region A: every look-up the dr stack makes goes to B."""
    a = dr.config["pilotlight:primaryRegion"]
    assert [(tok, region) for tok, _args, region in dr.invokes if region == a] == []


def test_region_a_provider_of_the_dr_stack_tolerates_an_outage(dr: synth.Synthesis) -> None:
    a = dr.config["pilotlight:primaryRegion"]
    (prov,) = [r for r in dr.resources if r.is_provider and r.region == a]
    for flag in ("skipCredentialsValidation", "skipRequestingAccountId"):
        assert prov.inputs.get(flag) in (True, "true"), flag
    # The metadata API is the runner's, not region A's: skipping it would only lose instance-role
    # credentials (break13b B13b-7).
    assert prov.inputs.get("skipMetadataApiCheck") not in (True, "true")


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_every_resource_carries_the_required_tags(stack: str) -> None:
    s = synthesize(stack)
    providers = {r.urn: r for r in s.resources if r.is_provider}
    for prov in providers.values():
        raw = prov.inputs["defaultTags"]
        tags = (json.loads(raw) if isinstance(raw, str) else raw)["tags"]
        for tag in REQUIRED_TAGS:
            assert tags.get(tag), (prov.name, tag)
    # Default tags reach a resource only through its provider: every AWS resource has one.
    assert all(r.provider in providers for r in s.aws_resources())


def test_vpc_cidrs_do_not_overlap_and_subnets_are_inside(
    primary: synth.Synthesis, dr: synth.Synthesis
) -> None:
    vpcs = {}
    for s in (primary, dr):
        (vpc,) = s.by_type("aws:ec2/vpc:Vpc")
        vpcs[s.stack] = ipaddress.IPv4Network(vpc.inputs["cidrBlock"])
        subnets = s.by_type("aws:ec2/subnet:Subnet")
        assert len(subnets) == 3 * int(s.config.get("pilotlight:azCount", 2))
        for subnet in subnets:
            assert ipaddress.IPv4Network(subnet.inputs["cidrBlock"]).subnet_of(vpcs[s.stack]), subnet.name
            assert subnet.inputs["availabilityZone"].startswith(subnet.region)
    assert not vpcs["primary"].overlaps(vpcs["dr"])


def test_nat_strategy_primary_per_az_dr_none_with_endpoints(
    primary: synth.Synthesis, dr: synth.Synthesis
) -> None:
    assert len(primary.by_type("aws:ec2/natGateway:NatGateway")) == 2
    assert dr.by_type("aws:ec2/natGateway:NatGateway") == []
    services = {
        r.inputs["serviceName"].rsplit(".", 1)[-1] for r in dr.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert {"s3", "dynamodb", "ssm", "ssmmessages", "ec2messages"} <= services


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_flow_logs_and_nacls_exist(stack: str) -> None:
    s = synthesize(stack)
    (flow,) = s.by_type("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL"
    isolated = [r for r in s.by_type("aws:ec2/networkAcl:NetworkAcl") if "isolated" in r.name]
    assert isolated and all(e["cidrBlock"] == s.by_type("aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"]
                            for e in isolated[0].inputs["egress"])  # fmt: skip


def test_components_have_the_pilotlight_type_tokens(primary: synth.Synthesis, dr: synth.Synthesis) -> None:
    assert {r.type for r in primary.resources} >= {
        "pilotlight:index:PrimaryRegion",
        "pilotlight:index:Network",
    }
    assert {r.type for r in dr.resources} >= {
        "pilotlight:index:PilotLightRegion",
        "pilotlight:index:GlobalFailover",
    }


def test_missing_primary_output_names_the_output_and_the_stack() -> None:
    with pytest.raises(StackWiringError) as err:
        synth.synthesize("dr", primary_outputs={"primaryRegion": "us-east-1"})
    assert "vpcId" in str(err.value) and "organization/pilotlight/primary" in str(err.value)


def test_primary_outputs_from_another_region_are_refused() -> None:
    with pytest.raises(StackWiringError, match="runs in 'eu-west-1'"):
        PrimaryOutputs.validate(
            "o/p/primary",
            {k: "x" for k in REQUIRED_PRIMARY_OUTPUTS}
            | {"primaryRegion": "eu-west-1", "webCapacity": {"min": 1, "desired": 1, "max": 1}},
            "us-east-1",
        )
