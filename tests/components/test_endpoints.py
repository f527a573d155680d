"""Region B's private network has exactly the interface endpoints its callers need.

With no NAT gateway (the dr default), an instance reaches AWS only through endpoints: Session
Manager needs ssm, ssmmessages and ec2messages
(https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html). An endpoint
nothing in the VPC calls is an hourly charge per AZ for nothing.
"""

from __future__ import annotations

from tests.components.conftest import synthesize

SESSION_MANAGER = {"ssm", "ssmmessages", "ec2messages"}


def test_session_manager_reaches_dr_instances_and_no_endpoint_lacks_a_caller() -> None:
    dr = synthesize("dr")
    interface = {
        r.inputs["serviceName"].rsplit(".", 1)[-1]
        for r in dr.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if r.inputs["vpcEndpointType"] == "Interface"
    }
    # Who calls AWS from inside the VPC: instances whose role is Session Manager's, and functions
    # attached to the VPC (none: every function runs outside it).
    ssm_instances = [
        a for a in dr.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["policyArn"].endswith("/AmazonSSMManagedInstanceCore")
    ]  # fmt: skip
    in_vpc_functions = [
        f.name for f in dr.by_type("aws:lambda/function:Function") if f.inputs.get("vpcConfig")
    ]
    assert ssm_instances and in_vpc_functions == []
    needed = SESSION_MANAGER if ssm_instances else set()
    assert interface == needed, f"missing {needed - interface}, without a caller {interface - needed}"
