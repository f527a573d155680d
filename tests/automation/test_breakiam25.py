"""breakiam25: adversarial review of the IAM policy builder (``iam --for deploy|break-glass``, issue 12) as it
stands on int25.

Each test is one finding, marked ``xfail(strict=True)`` until it is fixed: it states what AWS (or the
provider) documents and what the printed policy does instead, and fails for that reason. Each runs the
code under test: ``python -m automation iam`` exactly as README writes it (``automation.iam.main``), the
offline synthesis, and the project's IAM evaluation (``automation/iam_eval.py``) over the printed
documents.

BI25-1 (high): the deploy policy does not allow ``rds:EnableHttpEndpoint`` / ``rds:DisableHttpEndpoint``.
The Aurora clusters' ``enableHttpEndpoint`` follows the ledger path (components/ledger_access.py), which
follows ``database.engineVersion`` (and the instance class); the documented engine upgrade (README,
"Engine upgrades") from a version below the Data API's minimum to one above it turns it on, and for a
provisioned cluster the provider then calls ``EnableHttpEndpoint`` (terraform-provider-aws
``resourceClusterUpdate``, ``enableHTTPEndpointProvisioned``; the project's own lifecycle table says so).
The update stops at the cluster, implicitly denied.

BI25-2 (medium): README says the state backend may be "an S3 backend whose bucket lives in region B
(``pulumi login s3://<bucket-in-region-B>``)" and that the deploy policy covers "``pulumi up`` of both
stacks" ("attach them to the deploying role"); the CLI reads and writes the backend with the same AWS
credentials, and the dr stack's StackReference reads the primary stack's checkpoint there. The printed
policy allows no object in any bucket but the program's, and README says nothing about the backend's
permissions: a deployer holding exactly what README prints cannot run ``pulumi up`` on that backend.

BI25-3 (low): ``iam:PassRole`` on the deployment's roles carries no ``iam:PassedToService``: the deployer
may pass any of them (the runbook role included) to any service, e.g. to EC2 through an instance profile
it may create and fill (``iam:AddRoleToInstanceProfile``) and ``ec2:RunInstances``, where the program
passes each role to the one service its trust policy names.

BI25-4 (low): the Service Authorization Reference's dependent actions are added transitively, including
writes for features the program never uses: ``rds:CreateTenantDatabase`` / ``rds:DeleteTenantDatabase``
(RDS for Oracle multi-tenant) on every ``db:*`` of both regions, and ``secretsmanager:RotateSecret`` (an
RDS-managed master password, ``ManageMasterUserPassword``; the program sets ``masterPasswordWo``).

BI25-5 (high): the deploy policy does not allow ``elasticloadbalancing:DescribeTargetHealth``. After it
creates an Auto Scaling group (and on an update that changes its capacity, e.g. ``dr:active true``) the
provider waits for capacity (``wait_for_capacity_timeout``, default 10m, which the program leaves), and
that wait reads the health of every target group the group names (terraform-provider-aws
``statusGroupCapacity`` -> ``findELBV2InstanceStates`` -> ``DescribeTargetHealth``). The first
``pulumi up -s primary`` stops at region A's web tier, and the declared failover at region B's.

BI25-6 (high): the deploy policy allows ``rds:DescribeGlobalClusters`` only on the deployment's global
cluster by name, but the provider reads every Aurora cluster's global membership with a filtered
``DescribeGlobalClusters`` that names no global cluster (terraform-provider-aws
``findGlobalClusterByDBClusterARN``, called by ``resourceClusterRead`` after every create and update),
which RDS authorizes on ``global-cluster:*``. In aurora-global mode (the shipped configuration) the
first ``pulumi up -s primary`` stops reading back the cluster it just created.

BI25-7 (high): the deploy policy does not allow ``states:ValidateStateMachineDefinition``, which the
provider calls in the state machine's diff (``CustomizeDiff: stateMachineDefinitionValidate``) whenever
its definition is new or changed: the first ``pulumi up -s dr`` stops at the failover runbook's state
machine, and so does every later update that changes a runbook's definition.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
from pathlib import Path
from typing import Any

from automation import iam_eval
from automation.iam_eval import Decision

ACCOUNT_ID = "111122223333"
REPO = Path(__file__).resolve().parents[2]


@functools.cache
def _printed_deploy() -> tuple[dict[str, Any], ...]:
    """README's command, exactly: ``python -m automation iam --for deploy --account <id>`` (stdout's
    documents; stderr's notes aside)."""
    from automation.iam import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--for", "deploy", "--account", ACCOUNT_ID]) == 0
    return tuple(p["document"] for p in json.loads(out.getvalue())["policies"])


def _statements() -> list[dict[str, Any]]:
    return [st for d in _printed_deploy() for st in d["Statement"]]


# --------------------------------------------------------------------------------------------------
# BI25-1


def test_bi25_1_the_deploy_policy_lets_the_provider_switch_the_data_api() -> None:
    """BI25-1 (high). README, "Engine upgrades (aurora-global)": raising ``database.engineVersion`` on the
    primary stack is a documented update. The clusters' ``enableHttpEndpoint`` is ``data_api(...)``
    (components/data.py): True exactly on the Data API path, which starts at a minor version per major
    (components/ledger_access.py DATA_API_MINIMUM_VERSIONS, 16.1 for 16). So 16.0 -> 16.4 turns it on.

    For a provisioned cluster (the program sets no ``engineMode``; the provider's default is
    ``provisioned``) terraform-provider-aws ``resourceClusterUpdate`` calls ``EnableHttpEndpoint`` (or
    ``DisableHttpEndpoint``) when ``enable_http_endpoint`` changes (``enableHTTPEndpointProvisioned``);
    AWS: "This operation applies only to Aurora Serverless v2 and provisioned DB clusters"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_EnableHttpEndpoint.html). The Service
    Authorization Reference authorizes ``rds:EnableHttpEndpoint`` on the ``cluster`` resource type
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html), and it is
    no dependent action of CreateDBCluster or ModifyDBCluster there, so ``with_dependent_actions`` never
    adds it. automation/lifecycle_tables.py already records that the provider makes this call."""
    from automation import synth

    clusters: dict[str, Any] = {}
    for version in ("16.0", "16.4"):
        database = {"mode": "aurora-global", "drInstances": 0, "engineVersion": version}
        primary = synth.synthesize("primary", {"pilotlight:database": database})
        (cluster,) = primary.by_type("aws:rds/cluster:Cluster")
        clusters[version] = cluster
    # The documented upgrade changes the switch: the provider's update path runs.
    assert not clusters["16.0"].inputs.get("enableHttpEndpoint"), clusters["16.0"].inputs
    assert clusters["16.4"].inputs.get("enableHttpEndpoint") is True, clusters["16.4"].inputs
    cluster = clusters["16.4"]
    arn = synth.arn_for(cluster.type, cluster.name, cluster.inputs, cluster.region or "")
    assert arn is not None
    arn = arn.replace(synth.ACCOUNT_ID, ACCOUNT_ID)

    statements = _statements()
    decisions = {
        action: iam_eval.decide(statements, action, arn, {"aws:RequestedRegion": cluster.region or ""})
        for action in ("rds:EnableHttpEndpoint", "rds:DisableHttpEndpoint")
    }
    assert all(d is Decision.ALLOW for d in decisions.values()), (
        f"the printed deploy policy on {cluster.type} {cluster.name} ({arn}), upgrading "
        f"database.engineVersion 16.0 -> 16.4: { {a: d.value for a, d in decisions.items()} }"
    )


# --------------------------------------------------------------------------------------------------
# BI25-2

STATE_BUCKET = "pilotlight-production-state-us-west-2"
"""Any bucket README's ``pulumi login s3://<bucket-in-region-B>`` may name."""

PROJECT = "pilotlight"


def test_bi25_2_the_deploy_policy_or_readme_covers_the_documented_s3_backend() -> None:
    """BI25-2 (medium). README, "The state backend must survive region A": "Use Pulumi Cloud, or an S3
    backend whose bucket lives in region B (``pulumi login s3://<bucket-in-region-B>``)". Pulumi, "Using a
    DIY Backend" (https://www.pulumi.com/docs/iac/operations/stack-management/using-a-diy-backend/): the
    CLI stores the state in the bucket with the AWS credentials it runs with (state-and-backends: "Credentials
    are kept local to your client"), each stack under ``.pulumi/stacks/<project>/<stack>.json``, with its
    history, backups and lock files under ``.pulumi/``. ``pulumi up -s dr`` also reads the primary stack's
    checkpoint for its StackReference.

    README says ``iam --for deploy`` covers "``pulumi up`` of both stacks" and to "attach them to the
    deploying role". Either the printed policy allows the backend's objects (it would need the bucket:
    an option, or the login URL), or README tells the administrator to grant them separately; today
    neither holds."""
    statements = _statements()
    region = "us-west-2"
    requests = [
        ("s3:ListBucket", f"arn:aws:s3:::{STATE_BUCKET}"),
        ("s3:GetObject", f"arn:aws:s3:::{STATE_BUCKET}/.pulumi/stacks/{PROJECT}/primary.json"),
        ("s3:GetObject", f"arn:aws:s3:::{STATE_BUCKET}/.pulumi/stacks/{PROJECT}/dr.json"),
        ("s3:PutObject", f"arn:aws:s3:::{STATE_BUCKET}/.pulumi/stacks/{PROJECT}/dr.json"),
    ]
    denied = [
        f"{action} on {resource}"
        for action, resource in requests
        if iam_eval.decide(statements, action, resource, {"aws:RequestedRegion": region})
        is not Decision.ALLOW
    ]
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**The IAM a person needs.**") : readme.index("## Failing over")]
    told = re.search(r"(state|backend)[^.]*\b(s3:GetObject|s3:PutObject|permission|grant)", section, re.I)
    assert not denied or told, (
        "the deploy policy README prints denies the documented S3 backend's state "
        f"(s3://{STATE_BUCKET}), and README's IAM section says nothing of granting it: {denied}"
    )


# --------------------------------------------------------------------------------------------------
# BI25-3


def test_bi25_3_pass_role_only_to_the_service_each_role_trusts() -> None:
    """BI25-3 (low). IAM User Guide, "Grant a user permissions to pass a role to an AWS service"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html): "You can use the
    iam:PassedToService condition key to specify the service principal of the service to which a role
    can be passed"; the key is defined for ``iam:PassRole`` (Service Authorization Reference, IAM).

    The program passes each role to the one service its trust policy names (Lambda, Step Functions,
    EventBridge, EC2, Backup, S3, VPC flow logs). The printed policy allows ``iam:PassRole`` on every
    role under ``/<app>-<env>/`` with no condition, so the deployer may pass the runbook's Lambda role to
    EC2: ``iam:CreateInstanceProfile`` and ``iam:AddRoleToInstanceProfile`` on its path and
    ``ec2:RunInstances`` are in the same policy (an instance profile holds one role, and
    ``iam:RemoveRoleFromInstanceProfile`` is allowed too). The request below is that pass."""
    statements = _statements()
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/pilotlight-production/dr-orchestrator-runbook-role-0a1b2c3"
    context = {"aws:RequestedRegion": "us-west-2", "iam:PassedToService": "ec2.amazonaws.com"}
    decision = iam_eval.decide(statements, "iam:PassRole", role, context)
    unconditioned = [
        st.get("Sid")
        for st in statements
        if st["Effect"] == "Allow"
        and "iam:PassRole" in iam_eval.as_list(st["Action"])
        and "iam:PassedToService" not in json.dumps(st.get("Condition", {}))
    ]
    assert decision is not Decision.ALLOW and not unconditioned, (
        f"iam:PassRole of {role} to ec2.amazonaws.com is {decision.value}; statements allowing "
        f"PassRole without iam:PassedToService: {unconditioned}"
    )


# --------------------------------------------------------------------------------------------------
# BI25-4

UNUSED_WRITES = {
    # Dependent actions the Service Authorization Reference lists for features the program never uses
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html):
    "rds:CreateTenantDatabase": "RDS for Oracle multi-tenant (CreateDBInstance/ModifyDBInstance dependents)",
    "rds:DeleteTenantDatabase": "RDS for Oracle multi-tenant (DeleteDBInstance dependent)",
    "secretsmanager:RotateSecret": "an RDS-managed master password (ModifyDBCluster/ModifyDBInstance "
    "dependent with ManageMasterUserPassword; the program sets masterPasswordWo)",
}


def test_bi25_4_no_write_for_a_feature_the_program_does_not_use() -> None:
    """BI25-4 (low). ``with_dependent_actions`` adds every dependent action the Service Authorization
    Reference lists, transitively; for RDS those include actions "required" only when the request uses a
    feature: tenant databases (``MultiTenant`` on RDS for Oracle) and RDS-managed master passwords
    (``ManageMasterUserPassword``: RDS then creates and rotates the secret). The program's engines are
    Aurora PostgreSQL and RDS for PostgreSQL, and it sets ``masterPasswordWo``; no request it makes needs
    them. ``rds:DeleteTenantDatabase`` on ``db:*`` lets a deployer delete a tenant database of any
    untagged Oracle CDB in the stacks' regions (the tag Deny fences tagged resources only)."""
    from automation import synth

    statements = _statements()
    db = f"arn:aws:rds:us-east-1:{ACCOUNT_ID}:db:other-team-oracle-cdb"
    resources = {
        "rds:CreateTenantDatabase": db,
        "rds:DeleteTenantDatabase": db,
        "secretsmanager:RotateSecret": (
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:pilotlight/production/database/master-AbCdEf"
        ),
    }
    primary = synth.synthesize("primary", {})
    assert all(
        not r.inputs.get("manageMasterUserPassword")
        for t in ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance")
        for r in primary.by_type(t)
    )
    allowed = {
        action: why
        for action, why in UNUSED_WRITES.items()
        if iam_eval.decide(statements, action, resources[action], {"aws:RequestedRegion": "us-east-1"})
        is Decision.ALLOW
    }
    assert allowed == {}, f"the printed deploy policy allows writes the program never makes: {allowed}"


# --------------------------------------------------------------------------------------------------
# BI25-5


def test_bi25_5_the_deploy_policy_lets_the_provider_wait_for_the_web_tier() -> None:
    """BI25-5 (high). terraform-provider-aws, internal/service/autoscaling/group.go: ``resourceGroupCreate``
    waits when ``wait_for_capacity_timeout`` parses to more than zero (default "10m"; the program sets
    none), through ``waitGroupCapacitySatisfied`` -> ``statusGroupCapacity``, which calls
    ``findELBV2InstanceStates``: ``DescribeTargetHealth`` for each of the group's ``TargetGroupARNs``;
    ``resourceGroupUpdate`` waits the same way when min or desired capacity changes. The Service
    Authorization Reference defines no resource type for ``elasticloadbalancing:DescribeTargetHealth``
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html),
    so it belongs with the other ELB Describe* actions on ``"*"`` limited to the stacks' regions; the
    ``aws:autoscaling/group:Group`` entry of DEPLOY_ACTIONS lists DescribeLoadBalancerTargetGroups but not
    it, nor does any other type."""
    from automation import synth

    primary = synth.synthesize("primary", {})
    groups = [r for r in primary.by_type("aws:autoscaling/group:Group") if r.inputs.get("targetGroupArns")]
    assert groups, "region A's web tier registers with its target group"
    assert all(not r.inputs.get("waitForCapacityTimeout") for r in groups), "the provider's 10m default"
    statements = _statements()
    tg = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT_ID}:targetgroup/primary-web-tg-0a1b2c3/0123456789abcdef"
    decisions = {
        resource: iam_eval.decide(
            statements,
            "elasticloadbalancing:DescribeTargetHealth",
            resource,
            {"aws:RequestedRegion": "us-east-1"},
        )
        for resource in (tg, "*")
    }
    assert all(d is Decision.ALLOW for d in decisions.values()), (
        f"elasticloadbalancing:DescribeTargetHealth while creating {groups[0].type} {groups[0].name} "
        f"(target groups {groups[0].inputs['targetGroupArns']}): { {r: d.value for r, d in decisions.items()} }"
    )


# --------------------------------------------------------------------------------------------------
# BI25-6


def test_bi25_6_the_deploy_policy_lets_the_provider_read_a_cluster_s_global_membership() -> None:
    """BI25-6 (high). terraform-provider-aws, internal/service/rds: ``resourceClusterRead`` (run at the end
    of ``resourceClusterCreate`` and of every update) calls ``findGlobalClusterByDBClusterARN`` for a
    ``provisioned`` cluster (the provider's default engine mode; the program sets none), which sends
    ``DescribeGlobalClusters`` with only ``Filters: db-cluster-id=<cluster ARN>`` and returns any error but
    not-found ("reading RDS Global Cluster for RDS Cluster"); the provider's changelog when it added the
    call: "the resource now requires the DescribeGlobalClusters API call. Restrictive IAM permissions may
    require updates" (hashicorp/terraform-provider-aws#12867).

    RDS authorizes a Describe that names no identifier on every resource of the type, ``<type>:*``: AWS's
    own denial reads "not authorized to perform: rds:DescribeDBClusters on resource:
    arn:aws:rds:us-east-1:<account>:cluster:*" (aws/neptune-export#120), and for instances "...db:*"
    (awslabs/pireporter#8); the Service Authorization Reference makes ``global-cluster`` the required
    resource type of ``rds:DescribeGlobalClusters``
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html). The printed
    policy narrows it to ``global-cluster:<app>-<env>-global`` (NAMED_RESOURCES ``${GlobalCluster}``), which
    does not match ``global-cluster:*``."""
    from automation import synth

    primary = synth.synthesize("primary", {})
    clusters = [
        r for r in primary.by_type("aws:rds/cluster:Cluster") if r.inputs.get("globalClusterIdentifier")
    ]
    assert clusters and all(not r.inputs.get("engineMode") for r in clusters), (
        "provisioned, in a global cluster"
    )
    statements = _statements()
    every_global_cluster = f"arn:aws:rds::{ACCOUNT_ID}:global-cluster:*"
    decision = iam_eval.decide(
        statements, "rds:DescribeGlobalClusters", every_global_cluster, {"aws:RequestedRegion": "us-east-1"}
    )
    assert decision is Decision.ALLOW, (
        f"reading {clusters[0].type} {clusters[0].name} back after its create, DescribeGlobalClusters "
        f"(filter db-cluster-id) on {every_global_cluster}: {decision.value}"
    )


# --------------------------------------------------------------------------------------------------
# BI25-7


def test_bi25_7_the_deploy_policy_lets_the_provider_validate_the_runbooks_definitions() -> None:
    """BI25-7 (high). terraform-provider-aws, internal/service/sfn/state_machine.go (pulumi-aws 7 bridges
    provider v6): ``resourceStateMachine`` has ``CustomizeDiff: customdiff.Sequence(
    stateMachineDefinitionValidate, ...)``, and ``stateMachineDefinitionValidate`` calls
    ``ValidateStateMachineDefinition`` whenever ``definition`` changes (a create included) and is known,
    returning "validating Step Functions State Machine definition: <error>" on any error. The Service
    Authorization Reference defines ``states:ValidateStateMachineDefinition`` with no resource type
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html), so it
    belongs on ``"*"`` limited to the stacks' regions; ``DEPLOY_ACTIONS["aws:sfn/stateMachine:StateMachine"]``
    does not list it. The dr stack registers the failover and failback runbooks' state machines."""
    from automation import synth

    primary = synth.synthesize("primary", {})
    dr = synth.synthesize("dr", {}, primary_outputs=primary.outputs)
    machines = dr.by_type("aws:sfn/stateMachine:StateMachine")
    assert machines and all(r.inputs.get("definition") for r in machines), "the runbooks' state machines"
    region = machines[0].region or "us-west-2"
    decision = iam_eval.decide(
        _statements(), "states:ValidateStateMachineDefinition", "*", {"aws:RequestedRegion": region}
    )
    assert decision is Decision.ALLOW, (
        f"diffing {machines[0].type} {machines[0].name} (and {len(machines) - 1} more) in {region}: "
        f"states:ValidateStateMachineDefinition on * is {decision.value}"
    )
