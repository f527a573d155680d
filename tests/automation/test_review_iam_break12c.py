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


def test_what_a_staging_deployer_may_do_to_production_s_health_checks_is_exactly_the_unfenceable() -> None:
    """Production's failover records follow the CALCULATED gate over its endpoint check and its switch
    check (components/global_failover.py). ``UpdateHealthCheck`` is authorized on
    ``healthcheck/${Id}`` with no condition keys (Service Authorization Reference,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonroute53.html); with
    ``Inverted`` "Route 53 considers the health check to be unhealthy when the status is healthy"
    (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-invert.html), so one call
    moves production's traffic to region B. IAM cannot fence that within one account (12C-3): the
    writes a staging deployer may make on production's health check are exactly the healthcheck
    entries of UNFENCEABLE_IN_ONE_ACCOUNT, which ``iam --for deploy`` names on stderr with the one
    fence, an account per environment (tests/automation/test_iam_cli.py). A new write on health
    checks, or an entry the policy no longer allows, fails here."""
    _, staging = _stacks(*STAGING)
    privileges, _ = iam._sar()
    check = "arn:aws:route53:::healthcheck/0f1e2d3c-aaaa-bbbb-cccc-123456789012"
    writes = sorted(
        a
        for a, p in privileges.items()
        if a.startswith("route53:")
        and p["access_level"] not in ("List", "Read")
        and any(t["resource_type"].rstrip("*") == "healthcheck" for t in p["resource_types"])
    )
    canonical = {a.lower(): a for st in (s for d in staging for s in d["Statement"]) for a in st["Action"]}
    reachable = sorted(
        canonical[a]
        for a in writes
        if a in canonical and allows(staging, canonical[a], check, **_production_tags())
    )
    unfenceable = sorted(a for a, kind in iam.UNFENCEABLE_IN_ONE_ACCOUNT if kind == "healthcheck")
    assert "route53:UpdateHealthCheck" in reachable  # the probe sees the write it exists for
    assert reachable == unfenceable


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


# Writes on a type the Deny cannot see that still cannot reach production, and why: (action, the
# Service Authorization Reference's resource type).
HELD: dict[tuple[str, str], str] = {
    ("kms:CreateAlias", "alias"): "also authorized on the target key: staging's own; an existing alias name is refused",
    ("kms:DeleteAlias", "alias"): "also authorized on the alias' key, which is production's and fenced",
    ("kms:UpdateAlias", "alias"): "also authorized on the alias' current key, production's and fenced",
    ("route53:ChangeResourceRecordSets", "hostedzone"): "fenced by record name (test_the_record_fence_holds_when_the_zone_is_the_user_s)",
    ("route53:DeleteHostedZone", "hostedzone"): "a zone holding records cannot be deleted, and the records are fenced",
    ("apigateway:PUT", "Tags"): "the deployment tags cannot be set (KeepDeploymentTagsOnApiGateway, aws:TagKeys); other tags decide no authorization",
    ("apigateway:DELETE", "Tags"): "the deployment tags cannot be removed (KeepDeploymentTagsOnApiGateway, aws:TagKeys)",
}  # fmt: skip


def blind_writes(docs: tuple[dict[str, Any], ...]) -> set[tuple[str, str]]:
    """(action, resource type) for each write ``docs`` allow on a resource type with no
    ``aws:ResourceTag`` key, on a pattern that another deployment's resource of that type matches
    (its name made up): there the tag Deny is blind and only names fence."""
    privileges, formats = iam._sar()
    keys = _resource_condition_keys()
    blind: set[tuple[str, str]] = set()
    for statement in (s for d in docs for s in d["Statement"]):
        if statement["Effect"] != "Allow" or statement["Resource"] == "*":
            continue
        resources = (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
        for action in statement["Action"]:
            privilege = privileges[action.lower()]
            if privilege["access_level"] in ("List", "Read"):
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
    return blind


@pytest.mark.parametrize(
    "config",
    [
        (),
        ("pilotlight:routing.hostedZoneId=Z0STAGING0000",),
        ("database.mode=rds-replica", "database.engine=postgres"),
    ],
    ids=["default", "user-zone", "rds-replica"],
)
def test_the_writes_the_tag_deny_cannot_see_are_exactly_the_held_and_the_unfenceable(
    config: tuple[str, ...],
) -> None:
    """The break12b class test (``test_no_allowed_action_of_a_staging_deployer_reaches_a_production_resource``)
    passed production's tags in the request context of every action on every resource type (12C-5).
    IAM puts ``aws:ResourceTag`` in the context only for resource types whose entry lists it (Service
    Authorization Reference, resource types table, "Condition keys"; the IAM user guide,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag),
    and the harness now does the same (``allows``, tests/automation/test_review_iam.py). This probe
    lists, for each write the staging policy allows, the resource types it is authorized on that have
    no ``aws:ResourceTag`` key and that the Allow leaves on a wildcard name. Each is either held by
    something else (HELD, each with its own test) or one IAM cannot fence in one account
    (``UNFENCEABLE_IN_ONE_ACCOUNT``, named on stderr by ``iam --for deploy``): exactly, so a new blind
    write, or a stale entry, fails here."""
    _, staging = _stacks(*STAGING, *config)
    blind = blind_writes(staging)
    if not config:  # with the user's zone the program deletes none
        assert sorted(blind & HELD.keys()) == sorted(HELD), (
            f"HELD entries the policy no longer allows: {sorted(HELD.keys() - blind)}"
        )
    assert sorted(blind - HELD.keys()) == sorted(iam.UNFENCEABLE_IN_ONE_ACCOUNT), (
        "writes the tag Deny cannot see, on any name, against UNFENCEABLE_IN_ONE_ACCOUNT: new "
        f"{sorted(blind - HELD.keys() - iam.UNFENCEABLE_IN_ONE_ACCOUNT.keys())}, stale "
        f"{sorted(iam.UNFENCEABLE_IN_ONE_ACCOUNT.keys() - blind)}"
    )


def test_a_staging_deployer_cannot_strip_or_rewrite_production_s_api_gateway_deployment_tags() -> None:
    """API Gateway's ``Tags`` type defines no ``aws:ResourceTag`` (Service Authorization Reference,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonapigatewaymanagement.html):
    ``DELETE /tags/<production's REST API>`` removing ``Environment`` would turn the tag Deny off for
    that API (its Null guard), ``PUT`` with ``Environment=staging`` would hand it to staging. The
    ``PUT``/``DELETE`` actions carry ``aws:TagKeys`` (the keys set or removed), which the deploy
    policy denies for the deployment tags; other keys stay allowed (the provider updates tags by the
    keys that changed), and the REST API itself, which does define ``aws:ResourceTag``, stays fenced."""
    _, staging = _stacks(*STAGING)
    _, production = _stacks()
    api = "arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5"
    tags = "arn:aws:apigateway:us-east-1::/tags/" + api.replace(":", "%3A").replace("/", "%2F")
    for verb in ("apigateway:DELETE", "apigateway:PUT"):
        for key in iam.DEPLOYMENT_TAGS:
            assert not allows(staging, verb, tags, aws_TagKeys=key), f"staging may {verb} {key} on {tags}"
            assert not allows(production, verb, tags, aws_TagKeys=key), "no deployer changes its own"
        assert allows(production, verb, tags, aws_TagKeys="CostCenter")  # the provider's tag updates
        assert not allows(staging, verb, api, **_production_tags())  # the API itself: the tag Deny


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


@pytest.mark.parametrize("action", ["lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping"])
def test_a_staging_deployer_cannot_repoint_its_own_mapping_at_production_s_function(action: str) -> None:
    """Review brk12, F2: ``UpdateEventSourceMapping`` takes a new ``FunctionName`` and, like Delete, is
    authorized on the mapping (staging's own, tagged staging) with ``lambda:FunctionArn`` in the context
    (Service Authorization Reference, list_awslambda.html; "You can also use the lambda:FunctionArn
    condition to restrict actions by associated function",
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html). Fencing Create alone
    let staging point its own queue's mapping at production's payments function. Staging's own
    function stays reachable: its updates and deletes of its own mappings are allowed."""
    (primary, _), _ = _stacks()
    (staging_primary, _), staging = _stacks(*STAGING)

    def payments(stack: synth.Synthesis) -> str:
        (fn,) = [
            f for f in stack.by_type("aws:lambda/function:Function") if f.inputs["name"].endswith("-payments")
        ]
        return f"arn:aws:lambda:{fn.region}:{ACCOUNT}:function:{fn.inputs['name']}"

    production_fn, staging_fn = payments(primary), payments(staging_primary)
    region = production_fn.split(":")[3]
    own = f"arn:aws:lambda:{region}:{ACCOUNT}:event-source-mapping:11111111-2222-3333-4444-555555555555"
    tags = {"aws_ResourceTag/Environment": "staging", "aws_ResourceTag/Application": "pilotlight"}
    assert allows(staging, action, own, lambda_FunctionArn=staging_fn, **tags), (
        "its own mapping, its own function"
    )
    assert not allows(staging, action, own, lambda_FunctionArn=production_fn, **tags)


def test_a_staging_deployer_cannot_map_a_queue_onto_production_s_function() -> None:
    """``lambda:CreateEventSourceMapping`` has no resource type (Service Authorization Reference,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html), so it is
    granted on ``"*"``, where neither the probes above (they skip ``"*"``) nor the tag Deny see it: a
    staging deployer could feed a queue of its own into production's payments function. Lambda offers
    ``lambda:FunctionArn`` for it ("restrict actions by associated function",
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html)."""
    (primary, _), production = _stacks()
    _, staging = _stacks(*STAGING)
    (mapping, *_) = primary.by_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    (payments,) = [
        f for f in primary.by_type("aws:lambda/function:Function") if f.inputs["name"].endswith("-payments")
    ]
    assert mapping.inputs.get("functionName")  # the program maps a queue onto a function of its own
    target = f"arn:aws:lambda:{payments.region}:{ACCOUNT}:function:{payments.inputs['name']}"
    assert allows(production, "lambda:CreateEventSourceMapping", "*", lambda_FunctionArn=target)
    assert not allows(staging, "lambda:CreateEventSourceMapping", "*", lambda_FunctionArn=target)
