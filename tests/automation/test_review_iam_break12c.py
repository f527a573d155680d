"""Adversarial review of issue 12 after the tag Deny and the Route 53 record fence (branch break12c).

Probes ``python -m automation iam --for deploy`` (branch iam13) for what a staging deployer can still do
to production, and the test harness (tests/automation/test_review_iam.py ``allows``) for where it is
kinder than IAM. Each probe passes once its finding is fixed; a finding still open is a strict
expected failure naming it.
"""

from __future__ import annotations

import fnmatch
import functools
from typing import Any

import pytest

from automation import iam, synth
from tests.automation.test_review_iam import ACCOUNT, allows

STAGING = ("pilotlight:environment=staging", "pilotlight:routing.domain=staging.example.com")
RECORD_NAMES = "route53_ChangeResourceRecordSetsNormalizedRecordNames"


@functools.cache
def _stacks(*overrides: str) -> tuple[tuple[synth.Synthesis, ...], tuple[dict[str, Any], ...]]:
    parsed = synth.parse_overrides(list(overrides))
    primary = synth.synthesize("primary", {k: v for k, v in parsed.items() if not k.startswith("dr:")})
    dr = synth.synthesize("dr", parsed, primary_outputs=primary.outputs)
    return (primary, dr), tuple(iam.deploy_policies([primary, dr], ACCOUNT))


def _production_tags() -> dict[str, str]:
    """What production's resources carry (the provider's default tags), as request context."""
    syntheses, _ = _stacks()
    return {f"aws_ResourceTag/{k}": v for k, v in iam.deployment_tags(syntheses).items()}


def test_the_record_fence_holds_when_the_zone_is_the_user_s() -> None:
    """``routing.hostedZoneId`` is the configuration a real deployment uses when its domain's zone
    already exists (components/config.py; components/global_failover.py creates a zone only without
    it). The fence of commit 1168145 is derived from the Zone resources the program registers, so
    with an existing zone the staging deployer may repoint production's ``web.app.example.com``
    (the condition key, its value format: Route 53 developer guide, "Using IAM policy conditions for
    fine-grained access control", https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-conditions-route53.html).
    The routing domain (``routing.domain``), not the Zone resources, says which names are this
    deployment's; the zone's own id could narrow the Resource too."""
    (_, prod_dr), _ = _stacks("pilotlight:routing.hostedZoneId=Z0PRODUCTION00")
    _, staging = _stacks(*STAGING, "pilotlight:routing.hostedZoneId=Z0STAGING0000")
    prod_record = next(str(r.inputs["name"]) for r in prod_dr.by_type("aws:route53/record:Record"))
    assert prod_record.endswith("app.example.com"), prod_record
    zone = "arn:aws:route53:::hostedzone/Z0PRODUCTION00"
    assert not allows(staging, "route53:ChangeResourceRecordSets", zone, **{RECORD_NAMES: prod_record})


def test_a_staging_deployer_cannot_modify_production_s_global_database() -> None:
    """The Service Authorization Reference defines ``global-cluster`` as
    ``arn:${Partition}:rds::${Account}:global-cluster:${GlobalCluster}`` with no condition keys
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html, "Resource
    types"): a Deny on ``aws:ResourceTag`` cannot match it. ``ModifyGlobalCluster`` is authorized on
    that resource alone and renames it (``NewGlobalClusterIdentifier``: the runbook's failover names
    it, Pulumi's state loses it), lifts deletion protection, or upgrades its engine (``EngineVersion``
    with ``AllowMajorVersionUpgrade``: "Changing this parameter results in an outage";
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyGlobalCluster.html). The
    program names it ``<app>-<env>-global`` (components/data.py), so NAMED_RESOURCES could narrow it."""
    (primary, _), _ = _stacks()
    (gc,) = primary.by_type("aws:rds/globalCluster:GlobalCluster")
    arn = f"arn:aws:rds::{ACCOUNT}:global-cluster:{gc.inputs['globalClusterIdentifier']}"
    _, staging = _stacks(*STAGING)
    reachable = [
        a
        for a in ("rds:ModifyGlobalCluster", "rds:DeleteGlobalCluster")
        # No aws:ResourceTag in the context: the resource type defines none. With production's tags
        # in it (what the break12b probes give every request) the Deny would match and hide this.
        if allows(staging, a, arn, aws_RequestedRegion="us-east-1")
    ]
    assert all(allows(staging, a, arn, **_production_tags()) is False for a in reachable)  # the mask
    assert reachable == [], f"a staging deployer may {reachable} production's {arn}"


@pytest.mark.xfail(
    strict=True,
    reason="12C-3: route53:UpdateHealthCheck/DeleteHealthCheck on healthcheck/*: a staging deployer "
    "can invert or disable production's failover health checks (Route 53 has no tag or name "
    "condition for them, and is outside TAG_FENCED_SERVICES)",
)
def test_a_staging_deployer_cannot_flip_production_s_failover() -> None:
    """Production's failover records follow the CALCULATED gate over its endpoint check and its switch
    check (components/global_failover.py). ``UpdateHealthCheck`` is authorized on
    ``healthcheck/${Id}`` with no condition keys (Service Authorization Reference,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonroute53.html); with
    ``Inverted`` "Route 53 considers the health check to be unhealthy when the status is healthy"
    (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-invert.html), so one call
    moves production's traffic to region B. The module docstring and the break12b class test
    (SHARED_BY_NATURE: "the hosted zone may be the user's") exempt all of Route 53, but health checks
    are each deployment's own. If IAM cannot fence them, the closing note must say a separate
    account is the only fence."""
    _, staging = _stacks(*STAGING)
    check = "arn:aws:route53:::healthcheck/0f1e2d3c-aaaa-bbbb-cccc-123456789012"
    reachable = [
        a
        for a in ("route53:UpdateHealthCheck", "route53:DeleteHealthCheck")
        if allows(staging, a, check, aws_RequestedRegion="us-east-1")
    ]
    assert reachable == []


def test_a_staging_deployer_cannot_replace_production_s_dashboard() -> None:
    """The cross-region dashboard is what the operator reads while region A is down
    (components/global_failover.py). ``dashboard`` is ``arn:${Partition}:cloudwatch::${Account}:dashboard/${DashboardName}``
    with no condition keys (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html);
    the program names it ``<app>-<env>-dr``."""
    (_, dr), _ = _stacks()
    (board,) = dr.by_type("aws:cloudwatch/dashboard:Dashboard")
    arn = f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{board.inputs['dashboardName']}"
    _, staging = _stacks(*STAGING)
    assert not allows(staging, "cloudwatch:DeleteDashboards", arn)  # no tags: a dashboard has none


# Actions on a type the Deny cannot see that still cannot reach production, and why.
HELD: dict[str, str] = {
    "kms:CreateAlias": "also authorized on the target key: staging's own; an existing alias name is refused",
    "kms:DeleteAlias": "also authorized on the alias' key, which is production's and fenced",
    "kms:UpdateAlias": "also authorized on the alias' current key, production's and fenced",
    "route53:ChangeResourceRecordSets": "fenced by record name (12C-1 when the zone is the user's)",
    "route53:DeleteHostedZone": "a zone holding records cannot be deleted, and the records are fenced",
}


@pytest.mark.xfail(
    strict=True,
    reason="12C-5: the harness gives every resource production's tags (aws:ResourceTag) even where the "
    "Service Authorization Reference defines no such key for the resource type; without that, "
    "staging reaches production's global cluster, dashboard, health checks and API Gateway tags",
)
def test_no_write_reaches_production_through_a_type_the_tag_deny_cannot_see() -> None:
    """The break12b class test (``test_no_allowed_action_of_a_staging_deployer_reaches_a_production_resource``)
    passes production's tags in the request context of every action on every resource type. IAM puts
    ``aws:ResourceTag`` in the context only for resource types whose entry lists it (Service
    Authorization Reference, resource types table, "Condition keys"; the IAM user guide,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag:
    "Use this key to compare the tag key-value pair that you specify in the policy with the key-value
    pair attached to the resource", for resources that support it). This probe lists, for each write
    the staging policy allows, the resource types it must be authorized on that have no
    ``aws:ResourceTag`` key and that the Allow leaves on a wildcard name: there the Deny is blind and
    only names fence. API Gateway's ``Tags`` type (``PUT``/``DELETE /tags/<arn>``) is one: removing
    production's ``Environment`` tag first turns the Deny off for its REST API (its Null guard)."""
    privileges, formats = iam._sar()
    keys = _resource_condition_keys()
    _, staging = _stacks(*STAGING)
    blind: set[tuple[str, str]] = set()
    for statement in (s for d in staging for s in d["Statement"]):
        if statement["Effect"] != "Allow" or statement["Resource"] == "*":
            continue
        resources = (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
        for action in statement["Action"]:
            privilege = privileges[action.lower()]
            if privilege["access_level"] in ("List", "Read") or action in HELD:
                continue
            for entry in privilege["resource_types"]:
                kind = entry["resource_type"].rstrip("*")
                if not kind or "aws:ResourceTag/${TagKey}" in keys[(privilege["prefix"], kind)]:
                    continue
                # Some other deployment's resource of this type, its name made up.
                example = iam._fill(formats[privilege["prefix"]][kind], "us-east-1", ACCOUNT)
                example = example.replace("*", "other-deployment-x")
                if any(fnmatch.fnmatchcase(example, r.replace("us-west-2", "us-east-1")) for r in resources):
                    blind.add((action, kind))
    assert sorted(blind) == [], "writes the tag Deny cannot see, on any name: " + "; ".join(
        f"{a} on {k}" for a, k in sorted(blind)
    )


@functools.cache
def _resource_condition_keys() -> dict[tuple[str, str], list[str]]:
    import parliament

    return {
        (service["prefix"], r["resource"]): list(r.get("condition_keys") or [])
        for service in parliament.iam_definition
        for r in service["resources"]
    }


def test_lingering_lambda_enis_can_be_deleted() -> None:
    """On the driver ledger path (rds-replica, or any non-Data-API database: components/ledger_access.py)
    the payments function runs in the VPC (components/serverless.py, ``vpc_config``). The provider's
    security group and subnet deletes call ``deleteLingeringENIs``, which for an ENI described
    ``AWS Lambda VPC ENI*`` waits until Lambda releases it, then detaches (when still attached) and
    deletes it (hashicorp/terraform-provider-aws, internal/service/ec2/vpc_network_interface.go,
    ``deleteLingeringLambdaENI``: ``detachNetworkInterface`` then ``deleteNetworkInterface``). The
    break12 probe ``test_security_groups_and_subnets_can_be_deleted`` checked only the Describe call.
    Lambda's ENIs carry no tags, so the tag Deny does not stand in the way."""
    (primary, _), docs = _stacks("database.mode=rds-replica", "database.engine=postgres")  # driver path
    assert any(r.inputs.get("vpcConfig") for r in primary.by_type("aws:lambda/function:Function"))
    eni = f"arn:aws:ec2:us-east-1:{ACCOUNT}:network-interface/eni-0123456789abcdef0"
    missing = [
        a for a in ("ec2:DeleteNetworkInterface", "ec2:DetachNetworkInterface") if not allows(docs, a, eni)
    ]
    assert missing == []
