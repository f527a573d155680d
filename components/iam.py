"""IAM building blocks shared by the components."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service (``lambda.amazonaws.com``...) assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def lambda_role(name: str, statements: list[dict[str, Any]], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """An execution role for a function: its own logs, plus exactly ``statements``."""
    role = aws.iam.Role(
        f"{name}-role", assume_role_policy=assume_role_policy("lambda.amazonaws.com"), opts=opts
    )
    aws.iam.RolePolicyAttachment(f"{name}-logs", role=role.name, policy_arn=BASIC_EXECUTION, opts=opts)
    aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
        opts=opts,
    )
    return role
