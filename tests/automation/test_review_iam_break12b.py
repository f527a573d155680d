"""Adversarial review of issue 12 after the per-environment deploy policy (branch break12b).

Probes ``python -m automation iam --for deploy`` against the requests a real ``pulumi up`` makes, and
against what it lets one environment's deployer do to another's. Each probe passes once its finding
is fixed; a finding still open is a strict expected failure naming it.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from automation import iam, synth
from tests.automation.test_review_iam import ACCOUNT, allows, resource_types_of

# Which input of each RDS resource names which other RDS resource the create request involves,
# and that resource's ARN (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Tagging.ARN.html).
_RDS_REFERENCES: dict[str, dict[str, str]] = {
    "aws:rds/instance:Instance": {
        "dbSubnetGroupName": "arn:aws:rds:{region}:{account}:subgrp:{name}",
        "parameterGroupName": "arn:aws:rds:{region}:{account}:pg:{name}",
    },
    "aws:rds/clusterInstance:ClusterInstance": {
        "dbSubnetGroupName": "arn:aws:rds:{region}:{account}:subgrp:{name}",
        "dbParameterGroupName": "arn:aws:rds:{region}:{account}:pg:{name}",
        "clusterIdentifier": "arn:aws:rds:{region}:{account}:cluster:{name}",
    },
    "aws:rds/cluster:Cluster": {
        "dbSubnetGroupName": "arn:aws:rds:{region}:{account}:subgrp:{name}",
        "dbClusterParameterGroupName": "arn:aws:rds:{region}:{account}:cluster-pg:{name}",
        "globalClusterIdentifier": "arn:aws:rds::{account}:global-cluster:{name}",
    },
}
_CREATE = {
    "aws:rds/instance:Instance": "rds:CreateDBInstance",
    "aws:rds/clusterInstance:ClusterInstance": "rds:CreateDBInstance",
    "aws:rds/cluster:Cluster": "rds:CreateDBCluster",
}


@functools.cache
def _stacks(*overrides: str) -> tuple[list[synth.Synthesis], tuple[dict[str, Any], ...]]:
    parsed = synth.parse_overrides(list(overrides))
    primary = synth.synthesize("primary", {k: v for k, v in parsed.items() if not k.startswith("dr:")})
    dr = synth.synthesize("dr", parsed, primary_outputs=primary.outputs)
    return [primary, dr], tuple(iam.deploy_policies([primary, dr], ACCOUNT))


def _concrete(value: Any) -> str:
    """A synthesized name, with what only a deployment knows replaced by a plausible value."""
    return str(value).replace(synth.COMPUTED, "x").replace(".", "-")


@pytest.mark.parametrize("overrides", [(), ("database.mode=rds-replica", "database.engine=postgres")])
def test_rds_creates_are_allowed_on_every_resource_they_involve(overrides: tuple[str, ...]) -> None:
    """RDS authorizes CreateDBInstance on the new instance *and* on the option group, parameter group,
    subnet group (and cluster) it uses; AWS's own example policy lists og/pg/subgrp beside db
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-create-and-modify-examples.html, "Allow a user to
    create DB instances in an AWS account"). The Service Authorization Reference lists them as the
    action's further resource types (cluster, og, pg, secgrp, subgrp), and global-cluster for
    CreateDBCluster: a secondary cluster joining a global database is authorized on it. The deploy
    policy added those further types for EC2 only (PROGRAM_RESOURCE_TYPES), so the first cluster
    instance (aurora-global) or instance (rds-replica) of ``pulumi up -s primary`` was denied."""
    syntheses, docs = _stacks(*overrides)
    checked: list[tuple[str, str, str]] = []
    for s in syntheses:
        for typ, references in _RDS_REFERENCES.items():
            for r in s.by_type(typ):
                for key, template in references.items():
                    if not r.inputs.get(key):
                        continue
                    arn = template.format(region=r.region, account=ACCOUNT, name=_concrete(r.inputs[key]))
                    checked.append((_CREATE[typ], arn, str(r.region)))
    assert len(checked) >= 4, checked  # the probe saw the requests it exists for
    denied = [(a, arn) for a, arn, region in checked if not allows(docs, a, arn, aws_RequestedRegion=region)]
    assert denied == []


def _production_arns() -> dict[str, str]:
    """A destructive action per resource type -> one of production's resources of that type, its ARN
    as AWS builds it from the name the program gives it (random parts made up)."""
    (primary, _), _ = _stacks()  # the default environment is production
    assert primary.outputs and "production" in str(primary.by_type("aws:rds/cluster:Cluster")[0].inputs)
    (cluster,) = primary.by_type("aws:rds/cluster:Cluster")
    (function,) = primary.by_type("aws:lambda/function:Function")
    region = cluster.region
    return {
        "rds:DeleteDBCluster": f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{cluster.inputs['clusterIdentifier']}",
        "logs:DeleteLogGroup": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/lambda/{function.inputs['name']}",
        "kms:ScheduleKeyDeletion": f"arn:aws:kms:{region}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kms:PutKeyPolicy": f"arn:aws:kms:{region}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        # Auto-named from the logical name alone (components/serverless.py): no app or environment in it.
        "sqs:DeleteQueue": f"arn:aws:sqs:{region}:{ACCOUNT}:primary-api-inbox-a1b2c3d",
        "autoscaling:DeleteAutoScalingGroup": f"arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:"
        "0f1e2d3c-aaaa-bbbb-cccc-123456789012:autoScalingGroupName/primary-web-asg-a1b2c3d",
        "elasticloadbalancing:DeleteLoadBalancer": f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:"
        "loadbalancer/app/primary-web-alb-a1b2c3d/50dc6c495c0c9188",
    }


def test_a_staging_deployer_cannot_destroy_production() -> None:
    """The deploy policy's own claim (automation/iam.py, NAMED_RESOURCES): "IAM is per account, not per
    deployment: without names, one environment's deployer could read another's secrets or delete its
    tables". The same holds for every other type it leaves on ``<type>/*``: the RDS cluster is named
    ``<app>-<env>-…`` (ARN placeholder ``${DbClusterInstanceName}``, Service Authorization Reference,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html), the log
    groups ``/aws/lambda/<app>-<env>-…``; queues, groups and load balancers are auto-named from logical
    names that carry no environment; KMS key ARNs carry a random id, and ``kms:ScheduleKeyDeletion``
    or ``kms:PutKeyPolicy`` on ``key/*`` reaches production's keys (which guard its database, secret
    and backups: deleting one destroys the data it encrypts)."""
    _, staging = _stacks("pilotlight:environment=staging")
    tags = _tag_context(_stacks()[0])
    reachable = sorted(a for a, arn in _production_arns().items() if allows(staging, a, arn, **tags))
    assert reachable == [], f"a staging deployer may do these to production: {reachable}"
    # ... while production's own deployer may (the Deny is not a Deny of everything).
    (_, production) = _stacks()
    assert all(allows(production, a, arn, **tags) for a, arn in _production_arns().items())


def _tag_context(syntheses: list[synth.Synthesis]) -> dict[str, str]:
    """The request context of a call on one of these stacks' resources: the tags the provider puts on
    it (``aws:ResourceTag/<key>``, the default tags of components/providers.py)."""
    return {f"aws_ResourceTag/{k}": v for k, v in iam.deployment_tags(syntheses).items()}


def test_no_allowed_action_of_a_staging_deployer_reaches_a_production_resource() -> None:
    """The class of the finding above: every action above the List access level that the staging
    deploy policy allows, on every resource the production deploy policy allows it on (a concrete
    ARN: wildcards filled), with the tags production's resources carry, is denied, except where the
    write is one the tag Deny cannot see and either something else holds (``HELD``) or IAM cannot
    fence in one account (``UNFENCEABLE_IN_ONE_ACCOUNT``), each (action, resource type) with its
    reason. The tags are in the request context only where the resource type defines
    ``aws:ResourceTag`` (the harness, ``allows``). Statements on ``"*"`` name no resource (actions AWS
    authorizes only on ``"*"``: the closing note of issue 12 lists them)."""
    from tests.automation.test_review_iam_break12c import HELD

    prod_syntheses, production = _stacks()
    _, staging = _stacks("pilotlight:environment=staging")
    tags = _tag_context(prod_syntheses)
    privileges, _ = iam._sar()
    reachable: set[tuple[str, str, str]] = set()
    for statement in (
        s for d in production for s in d["Statement"] if s["Effect"] == "Allow" and s["Resource"] != "*"
    ):
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
        context = {
            k.replace(":", "_", 1): (v[0] if isinstance(v, list) else v)
            for k, v in statement.get("Condition", {}).get("StringEquals", {}).items()
        }
        for action in actions:
            if privileges[action.lower()]["access_level"] == "List":
                continue
            for resource in resources:
                arn = resource.replace("*", "x").replace("?", "x")
                if allows(staging, action, arn, **context, **tags):
                    service = action.split(":")[0]
                    for kind, tagged in resource_types_of(arn, service) or [("?", False)]:
                        if privileges[action.lower()]["access_level"] == "Read" and not tagged:
                            # Reading a type with no tag key (a health check's settings, a zone's or
                            # an API's tags) discloses, changes nothing: the report of issue 12 lists it.
                            continue
                        reachable.add((action, kind.removeprefix(f"{service}:"), arn))
    exempt = HELD.keys() | iam.UNFENCEABLE_IN_ONE_ACCOUNT.keys()
    found = sorted(f"{a} on {arn}" for a, kind, arn in reachable if (a, kind) not in exempt)
    assert found == [], f"a staging deployer reaches production: {found[:20]}"
    assert any((a, k) in iam.UNFENCEABLE_IN_ONE_ACCOUNT for a, k, _ in reachable)  # the probe sees them


def test_the_runbook_may_tag_the_snapshot_copy_it_makes_with_copy_tags() -> None:
    """``keep_unplanned_snapshots`` copies Aurora's unplanned-failover snapshot with ``CopyTags=True``
    (lambdas/failover/fencing.py), and the program's clusters copy their tags (provider default tags) to
    their snapshots (``copy_tags_to_snapshot``, components/data.py). The Service Authorization Reference
    lists ``rds:AddTagsToResource`` as the dependent action of ``rds:CopyDBClusterSnapshot``
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html, "Dependent
    actions": permissions the caller must also have): the runbook role granted the copy but not the
    tagging of the copy, so the failover's step would be denied after the failover itself."""
    from lambdas.failover.names import kept_snapshot_id

    (primary, dr), _ = _stacks()
    # What `python -m automation iam --for break-glass` prints offline (automation/iam.py, policies).
    doc = iam.break_glass_policy(iam._offline(dr.outputs["runbook"]))
    (cluster,) = primary.by_type("aws:rds/cluster:Cluster")
    assert cluster.inputs.get("copyTagsToSnapshot") is True  # the snapshots carry the cluster's tags
    region, ident = cluster.region, cluster.inputs["clusterIdentifier"]
    source = f"rds:unplanned-global-failover-{ident}-2026-11-30-18-00"
    copy = f"arn:aws:rds:{region}:{ACCOUNT}:cluster-snapshot:{kept_snapshot_id(source)}"
    assert allows((doc,), "rds:CopyDBClusterSnapshot", copy)  # the probe names the copy as the role does
    assert allows((doc,), "rds:AddTagsToResource", copy)
    # ... and only the copy: not the cluster, nor Aurora's own snapshot.
    assert not allows((doc,), "rds:AddTagsToResource", f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{ident}")
    assert not allows(
        (doc,), "rds:AddTagsToResource", f"arn:aws:rds:{region}:{ACCOUNT}:cluster-snapshot:{source}"
    )


MANAGED_POLICIES_PER_ROLE = 10
"""IAM's default quota of managed policies attached to one role or user (adjustable, to 20 at most):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html ("Managed policies attached
to an IAM role"), and AWS's knowledge-center article on it
(https://repost.aws/knowledge-center/iam-increase-policy-size: "The default limit for managed
policies is 10")."""


@pytest.mark.parametrize("mode", [None, "aurora-global", "rds-replica"])
def test_the_deploy_policies_fit_one_role_s_default_quota(mode: str | None) -> None:
    """Each document fits IAM's 6,144 characters (tested elsewhere), and they are few enough to attach
    to one role: the default configuration, and the longest accepted one in each database mode (most
    regions' worth of names: tests/components/test_naming.longest). It was 12 (13 for the longest)
    while the API Gateway statements listed every REST path type of the Service Authorization
    Reference in both regions."""
    from tests.components.test_naming import DR_FLAGS, ENVS, longest

    if mode is None:
        _, docs = _stacks()
    else:
        shared = longest(ENVS[0], mode)
        primary = synth.synthesize("primary", shared)
        # A failback phase runs under the failover latch the documented procedure leaves.
        values = {**shared, **DR_FLAGS}
        dr = synth.synthesize_as_procedure("dr", values, primary_outputs=primary.outputs)
        docs = tuple(iam.deploy_policies([primary, dr], ACCOUNT))
    assert len(docs) <= MANAGED_POLICIES_PER_ROLE, f"{len(docs)} managed policies"


def test_the_tag_deny_spares_untagged_and_own_resources_and_catches_another_application() -> None:
    """The Deny reads ``aws:ResourceTag``: a resource of this deployment whose tags have not reached
    authorization yet (KMS: up to five minutes after creation) carries none and must stay the
    deployer's; production's own tags pass; another application's production (same environment
    name) is denied like another environment."""
    _, production = _stacks()
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert allows(production, "kms:EnableKeyRotation", key)  # a new key, no tag in the context yet
    own = {"aws_ResourceTag/Application": "pilotlight", "aws_ResourceTag/Environment": "production"}
    assert allows(production, "kms:ScheduleKeyDeletion", key, **own)
    other_app = {**own, "aws_ResourceTag/Application": "payments"}
    assert not allows(production, "kms:ScheduleKeyDeletion", key, **other_app)
    assert not allows(production, "kms:UntagResource", key, **other_app)


def test_a_staging_deployer_cannot_change_production_s_dns_records() -> None:
    """Route 53 names no zone in an ARN and reads no tags: ``ChangeResourceRecordSets`` is allowed
    only on record names inside the zones the program creates (each environment has its own
    domain). A staging deployer cannot repoint production's name, nor empty production's zone (the
    only way to delete it); its own records stay allowed."""
    (_, prod_dr), _ = _stacks()
    (_, staging_dr), staging = _stacks(
        "pilotlight:environment=staging", "pilotlight:routing.domain=staging.example.com"
    )
    zone = "arn:aws:route53:::hostedzone/Z0123456789ABCDEF"
    (prod_record, *_) = prod_dr.by_type("aws:route53/record:Record")
    (own_record, *_) = staging_dr.by_type("aws:route53/record:Record")
    key = "route53_ChangeResourceRecordSetsNormalizedRecordNames"
    assert not allows(staging, "route53:ChangeResourceRecordSets", zone, **{key: prod_record.inputs["name"]})
    assert allows(staging, "route53:ChangeResourceRecordSets", zone, **{key: own_record.inputs["name"]})
