"""Alarm notifications reach their topic: each region's topic has a key CloudWatch may use.

CloudWatch publishes alarm notifications as ``cloudwatch.amazonaws.com``; to an encrypted topic that
takes ``kms:Decrypt`` and ``kms:GenerateDataKey*`` on the topic's key, which only a customer-managed
key's policy can grant (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from automation import synth
from tests.components.conftest import synthesize

CLOUDWATCH_NEEDS = ("kms:Decrypt", "kms:GenerateDataKey")


def _allows(statement: dict[str, Any], principal: str, action: str) -> bool:
    services = statement.get("Principal", {}).get("Service", [])
    services = [services] if isinstance(services, str) else services
    actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
    return (
        statement["Effect"] == "Allow"
        and principal in services
        and any(fnmatch.fnmatchcase(action, a) for a in actions)
        and statement.get("Resource") == "*"
        and not statement.get("Condition")
    )


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_every_alert_topic_has_a_key_of_its_region_that_cloudwatch_may_use(stack: str) -> None:
    s = synthesize(stack)
    keys = {k.name: k for k in s.by_type("aws:kms/key:Key")}
    topics = s.by_type("aws:sns/topic:Topic")
    assert topics
    for topic in topics:
        ref = topic.inputs.get("kmsMasterKeyId", "")
        assert synth.COMPUTED in ref, (
            f"topic {topic.name} is encrypted with {ref!r}, which CloudWatch cannot use"
        )
        key = keys[ref.split(synth.COMPUTED)[1]]
        assert key.region == topic.region, f"topic {topic.name} in {topic.region} uses a key in {key.region}"
        statements = json.loads(key.inputs["policy"])["Statement"]
        for action in CLOUDWATCH_NEEDS:
            assert any(_allows(st, "cloudwatch.amazonaws.com", action) for st in statements), (
                f"key {key.name} of topic {topic.name}: cloudwatch.amazonaws.com may not {action}"
            )
        # The account keeps administering its key (a key policy that forgets it locks the key).
        assert any(st.get("Principal", {}).get("AWS", "").endswith(":root") for st in statements)


def test_the_runbook_may_publish_to_the_encrypted_topic() -> None:
    dr = synthesize("dr")
    (topic,) = dr.by_type("aws:sns/topic:Topic")
    key_arn = next(
        k.outputs["arn"]
        for k in dr.by_type("aws:kms/key:Key")
        if k.urn and k.name in topic.inputs["kmsMasterKeyId"]
    )
    (policy,) = [
        p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "dr-orchestrator-runbook-policy"
    ]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    granted = {
        a
        for st in statements
        if st["Effect"] == "Allow"
        and key_arn in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
        for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    }
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= granted
