"""The offline synthesis gives resources ARNs in the formats AWS gives them.

Policy documents are built from these ARNs, and the IAM tests check each statement's Resource
against the Service Authorization Reference (through parliament's copy of it): an ARN the mocks
invented in a format AWS never uses would make those checks pass or fail for the wrong reason.
"""

from __future__ import annotations

import parliament
import pytest

from automation import synth
from tests.components.conftest import synthesize

SERVICE = {
    "cloudwatch/logGroup": "logs",
    "cloudwatch/eventRule": "events",
    "sfn": "states",
    "lb": "elasticloadbalancing",
    "ec2": "ec2",
}


def _service_prefix(typ: str) -> str:
    module = typ.split(":")[1]
    for key, prefix in SERVICE.items():
        if module.startswith(key):
            return prefix
    return module.split("/")[0]


@pytest.mark.parametrize("typ", sorted(synth.ARN_FORMATS))
def test_each_arn_format_is_a_resource_type_of_its_service(typ: str) -> None:
    name = {"aws:ssm/parameter:Parameter": "/app/env/latch", "aws:kms/alias:Alias": "alias/app/data"}
    arn = synth.arn_for(typ, "logical", {"name": name.get(typ, "physical")}, "eu-west-1")
    assert arn is not None
    matches = {
        (m["service"]["prefix"], m["resource"]["resource"])
        for m in parliament.get_resource_type_matches_from_arn(arn)
    }
    assert any(prefix == _service_prefix(typ) for prefix, _ in matches), (
        f"{typ}: {arn} matches no resource type of {_service_prefix(typ)} in the Service Authorization "
        f"Reference; matched {sorted(matches)}"
    )


def test_synthesized_resources_carry_their_physical_name_in_their_arn() -> None:
    dr = synthesize("dr")
    latch = dr.named("dr-failover-latch")
    assert (
        latch.outputs["arn"]
        == "arn:aws:ssm:us-west-2:123456789012:parameter/pilotlight/production/failover-state"
    )
    for fn in dr.by_type("aws:lambda/function:Function"):
        assert (
            fn.outputs["arn"] == f"arn:aws:lambda:us-west-2:{synth.ACCOUNT_ID}:function:{fn.inputs['name']}"
        )
    role = dr.by_type("aws:iam/role:Role")[0]
    assert (
        role.outputs["arn"]
        == f"arn:aws:iam::{synth.ACCOUNT_ID}:role/pilotlight-production/{synth.COMPUTED}{role.name}"
    )
