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
from tests.automation.test_review_iam import ACCOUNT, allows

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


@pytest.mark.xfail(
    strict=True,
    reason="finding (break12b): the per-environment deploy policy names functions, tables, secrets, "
    "parameters, topics and vaults, but a staging deployer may still delete production's database "
    "cluster, log groups, queues, Auto Scaling groups and load balancers, and schedule the deletion of "
    "(or rewrite the policy of) every KMS key in the account",
)
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
    reachable = sorted(a for a, arn in _production_arns().items() if allows(staging, a, arn))
    assert reachable == [], f"a staging deployer may do these to production: {reachable}"


def test_the_runbook_may_tag_the_snapshot_copy_it_makes_with_copy_tags() -> None:
    """``keep_unplanned_snapshots`` copies Aurora's unplanned-failover snapshot with ``CopyTags=True``
    (lambdas/failover/steps.py), and the program's clusters copy their tags (provider default tags) to
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


@pytest.mark.xfail(
    strict=True,
    reason="finding (break12b): `iam --for deploy` prints 12 managed policies for the default "
    "configuration (13 for the longest); IAM attaches at most 10 to a role or user by default, so "
    "attaching them to the deploying role as the README says fails at the 11th (LimitExceeded) "
    "unless the account's quota is raised",
)
def test_the_deploy_policies_fit_one_role_s_default_quota() -> None:
    """Each document fits IAM's 6,144 characters (tested elsewhere), but they are many: the API Gateway
    statements alone list every REST path type of the Service Authorization Reference in both regions."""
    _, docs = _stacks()
    assert len(docs) <= MANAGED_POLICIES_PER_ROLE, f"{len(docs)} managed policies"
