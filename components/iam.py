"""IAM building blocks shared by the components."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.naming import limit_of, physical_name

LOG_RETENTION_DAYS = 30
"""CloudWatch Logs retention of every function's log group (a log group Lambda creates never expires)."""

XRAY_STATEMENT: dict[str, Any] = {
    # What AWSXRayDaemonWriteAccess grants a traced function, minus the sampling reads the Lambda
    # runtime does not make. X-Ray defines no resource types for these actions: Resource must be "*"
    # (Service Authorization Reference, AWS X-Ray:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html). Lambda
    # refuses to create or update a function with Active tracing whose role lacks them
    # (https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html, "Execution role permissions").
    "Sid": "XRayTraces",
    "Effect": "Allow",
    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    "Resource": "*",
}


def iam_path(prefix: str) -> str:
    """The IAM path of every role, instance profile and managed policy of one deployment: ``/<app>-<env>/``.

    IAM is account-wide, and auto-named roles are ``<logical>-<suffix>``, the same in every
    environment: without a path, a deploy policy cannot name one environment's identities, so a
    staging deployer could rewrite production's roles (PutRolePolicy, UpdateAssumeRolePolicy,
    PassRole: privilege escalation). A path is part of the ARN (``role/<path><name>``) and can be
    named in a policy's Resource; it is 1 to 512 characters and begins and ends with ``/``
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-friendly-names,
    CreateRole ``Path``: https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
    The slashes make environments disjoint even when one prefix starts another (``a-b`` and ``a-b-c``).
    """
    return f"/{prefix}/"


def boundary_policy_name(prefix: str) -> str:
    """The name of the deployment's permissions boundary: ``<app>-<env>-boundary``.

    "IAM user, group, role, and policy names must be unique within the account" (CreatePolicy,
    ``PolicyName``: https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html), the
    path aside, so the name carries the deployment too, not only the path.
    """
    return f"{prefix}-boundary"


def permissions_boundary_arn(account: str, prefix: str) -> str:
    """The ARN of the deployment's permissions boundary, ``policy/<app>-<env>/<app>-<env>-boundary``.

    An administrator creates it once per environment from ``python -m automation iam --for boundary``;
    the program never creates or changes it. A boundary the deployer could write would fence nothing:
    the deployer would write ``"*"`` into it (AWS's delegation example denies the delegated
    administrator every change to the boundary policy,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html#access_policies_boundaries-delegate).
    """
    return f"arn:aws:iam::{account}:policy{iam_path(prefix)}{boundary_policy_name(prefix)}"


def operator_policy_name(prefix: str) -> str:
    """The name of the managed policy the deployment's operators hold: ``<app>-<env>-operator``.

    Like the boundary, an administrator creates it (``python -m automation iam --for operator``) and the
    program never creates or changes it (review breakiam21, BI21-1): people hold it, and no boundary
    caps a person. A deployer allowed ``iam:CreatePolicyVersion`` on it, as the provider needs to update
    a managed policy it owns, could write ``{"Action": "*", "Resource": "*"}`` into it and, with
    ``SetAsDefault``, make every operator an administrator at once; IAM has no condition on a policy
    document's content (CreatePolicyVersion:
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicyVersion.html).
    """
    return physical_name(prefix, "operator", limit=limit_of("aws:iam/policy:Policy", "name"))


def operator_policy_arn(account: str, prefix: str) -> str:
    """The ARN of :func:`operator_policy_name`, at the deployment's path (``policy/<app>-<env>/...``)."""
    return f"arn:aws:iam::{account}:policy{iam_path(prefix)}{operator_policy_name(prefix)}"


def legacy_operator_policy_arn(account: str, prefix: str) -> str:
    """The operator policy earlier versions of the dr stack created themselves
    (``<app>-<env>-failover-operator``): it leaves the dr stack's state by ``pulumi state delete``
    (README), and the deploy policy may not touch it."""
    name = physical_name(prefix, "failover-operator", limit=limit_of("aws:iam/policy:Policy", "name"))
    return f"arn:aws:iam::{account}:policy{iam_path(prefix)}{name}"


ROLE_TYPE = "aws:iam/role:Role"


def with_permissions_boundary(boundary_arn: pulumi.Input[str]) -> pulumi.ResourceTransformation:
    """A transformation that sets ``permissions_boundary`` on every IAM role it sees.

    Given to the stack's top-level components (``components/program.py``), it runs for each of
    their descendants (a parent's ``transformations`` apply to its children: pulumi ``Resource``), so
    no role of the program, present or future, is created without the boundary, which the deploy
    policy requires (``iam:PermissionsBoundary`` on CreateRole, PutRolePolicy, AttachRolePolicy...,
    automation/iam.py). A role's effective permissions are what both its policies and its boundary
    allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html):
    whatever a deployer writes into a role's policies, the role can do no more than the boundary.
    pulumi-aws ``aws.iam.Role`` argument ``permissions_boundary``: "ARN of the policy that is used to
    set the permissions boundary for the role".
    """

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != ROLE_TYPE:
            return None
        return pulumi.ResourceTransformationResult(
            props={**args.props, "permissions_boundary": boundary_arn}, opts=args.opts
        )

    return transform


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service (``lambda.amazonaws.com``...) assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def log_statement(log_group_arn: str) -> dict[str, Any]:
    """Write to one log group's streams (instead of AWSLambdaBasicExecutionRole's ``logs:*`` on ``*``)."""
    return {
        "Sid": "OwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        # CreateLogStream is authorized on the group, PutLogEvents on its streams.
        "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
    }


@dataclass(frozen=True)
class FunctionIdentity:
    """A function's log group, execution role and role policy: what the function must wait for."""

    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    def depends(self) -> list[pulumi.Resource]:
        """``depends_on`` for the function: its log group exists and its role may already act.

        Without the policy in ``depends_on`` the function can be created before its permissions
        (Lambda checks the X-Ray permission of a traced function at creation), and Lambda would
        create its log group itself, with no retention.
        """
        return [self.log_group, self.policy]


def function_identity(
    name: str,
    function_name: str,
    statements: pulumi.Input[list[dict[str, Any]]],
    opts: pulumi.ResourceOptions,
    *,
    path: str,
    tracing: bool = False,
    retention_days: int = LOG_RETENTION_DAYS,
) -> FunctionIdentity:
    """The log group ``/aws/lambda/<function_name>`` with a retention, and an execution role that may
    write to it and do exactly ``statements`` (plus X-Ray writes when the function is traced)."""
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs", name=f"/aws/lambda/{function_name}", retention_in_days=retention_days, opts=opts
    )
    role = aws.iam.Role(
        f"{name}-role", assume_role_policy=assume_role_policy("lambda.amazonaws.com"), path=path, opts=opts
    )
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.all(log_group.arn, pulumi.Output.from_input(statements)).apply(
            lambda v: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [log_statement(v[0]), *v[1], *([XRAY_STATEMENT] if tracing else [])],
                }
            )
        ),
        opts=opts,
    )
    return FunctionIdentity(log_group, role, policy)
