"""The stack's tags reach what Auto Scaling launches: instances and their volumes.

Provider default tags apply to resources the provider creates; an Auto Scaling group's instances are
created by Auto Scaling, which tags them only with the group's tags marked ``PropagateAtLaunch``, and
their volumes only from the launch template's tag specifications
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-tagging.html).
"""

from __future__ import annotations

import json

import pytest

from tests.components.conftest import synthesize


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_default_tags_reach_auto_scaling_instances_and_volumes(stack: str) -> None:
    s = synthesize(stack, {"pilotlight:tags": {"Team": "payments"}})
    (provider,) = [
        p
        for p in s.resources
        if p.is_provider and p.region == s.by_type("aws:autoscaling/group:Group")[0].region
    ]
    raw = provider.inputs["defaultTags"]  # provider inputs reach the engine as JSON text
    default_tags = (json.loads(raw) if isinstance(raw, str) else raw)["tags"]
    assert default_tags["Team"] == "payments" and "Environment" in default_tags
    for group in s.by_type("aws:autoscaling/group:Group"):
        propagated = {t["key"]: t["value"] for t in group.inputs["tags"] if t["propagateAtLaunch"]}
        missing = {k: v for k, v in default_tags.items() if propagated.get(k) != v}
        assert missing == {}, f"group {group.name}: instances would miss the tags {missing}"
    for template in s.by_type("aws:ec2/launchTemplate:LaunchTemplate"):
        specs = {spec["resourceType"]: spec["tags"] for spec in template.inputs.get("tagSpecifications", [])}
        for kind in ("instance", "volume"):
            missing = {k: v for k, v in default_tags.items() if specs.get(kind, {}).get(k) != v}
            assert missing == {}, f"launch template {template.name}: {kind}s would miss the tags {missing}"
