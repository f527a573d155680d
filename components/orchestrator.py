"""The failover orchestrator in region B: runbook Lambda, state machines, triggers, the canary.

- One Lambda (``lambdas.failover.handler``) runs any step of either runbook; its configuration is
  the ``runbook`` context the dr stack exports, so the deployed runbook and the break-glass CLI act
  on the same identifiers.
- Two Step Functions state machines (failover, failback), generated from ``lambdas.failover.graph``
  and validated offline before they are registered.
- Automatic trigger: an EventBridge rule on the "primary unhealthy" alarm (region B, fed by the
  canary) starts the failover, only when ``dr:autoFailover`` is true. The alarm's evaluation window
  is the confirmation window: a short blip does not fail over.
- Manual trigger: IAM only. An operator policy allows ``states:StartExecution`` on the two state
  machines and nothing else; there is no open endpoint.
- The canary (``lambdas.health_check``) runs every minute in region B, probing region A's health
  endpoints and keeping the failover switch metric in step with the latch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import assume_role_policy, function_identity, iam_path, operator_policy_arn
from components.naming import limit_of, physical_name
from components.runbook_iam import RunbookTargets, account_of, parameter_arn, runbook_statements
from components.serverless import lambda_code
from lambdas.failover.budget import LAMBDA_TIMEOUT_SECONDS
from lambdas.failover.graph import FAILBACK, FAILOVER, Runbook
from lambdas.failover.names import health_namespace
from lambdas.failover.state_machine import build_definition, validate_definition
from lambdas.health_check.probe import JOURNAL_SUFFIX

_FUNCTION = "aws:lambda/function:Function"


def definition_json(runbook: Runbook, function_arn: str) -> str:
    """The state machine definition, validated before it is registered (raises on a broken graph)."""
    definition = build_definition(runbook, function_arn)
    validate_definition(definition)
    return json.dumps(definition)


@dataclass
class OrchestratorArgs:
    """Inputs of :class:`Orchestrator`.

    Attributes:
        prefix: ``<app>-<env>``.
        primary_region, dr_region: the two regions (the runbook fences region A when reachable).
        runbook_context: the ``runbook`` output (see ``lambdas/failover/context.py``).
        auto_failover: ``dr:autoFailover``: the alarm starts the failover state machine.
        primary_unhealthy_alarm_arn: the canary alarm that triggers it.
        canary_targets: region A's health endpoints, probed every minute from region B.
        switch_metric: the failover switch's metric (namespace, name, dimensions).
        latch_parameter_name: the SSM latch in region B.
    """

    prefix: str
    primary_region: str
    dr_region: str
    runbook_context: dict[str, Any]
    auto_failover: bool
    primary_unhealthy_alarm_arn: pulumi.Input[str] | None
    canary_targets: list[dict[str, pulumi.Input[str]]]
    switch_metric: dict[str, Any]
    latch_parameter_name: pulumi.Input[str]


class Orchestrator(pulumi.ComponentResource):
    """Step Functions runbooks, their Lambda, the triggers and the canary, in region B."""

    failover_state_machine_arn: pulumi.Output[str]
    failback_state_machine_arn: pulumi.Output[str]
    operator_policy_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]

    def __init__(self, name: str, args: OrchestratorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:Orchestrator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = pulumi.Output.from_input(args.runbook_context["notifyTopicArn"]).apply(account_of)

        # --- the runbook Lambda: what the steps may touch, in both regions ---
        runbook_name = physical_name(args.prefix, "runbook", limit=limit_of(_FUNCTION, "name"))
        # What the steps may touch, in both regions, resource by resource (components/runbook_iam.py).
        statements = pulumi.Output.from_input(args.runbook_context).apply(
            lambda context: runbook_statements(RunbookTargets.from_context(context))
        )
        runbook = function_identity(
            f"{name}-runbook", runbook_name, statements, child, path=iam_path(args.prefix)
        )
        function = aws.lambda_.Function(
            f"{name}-runbook",
            name=runbook_name,
            runtime="python3.12",
            handler="lambdas.failover.handler.handler",
            code=lambda_code(),
            role=runbook.role.arn,
            # Covers one invocation's worst case in its clients (lambdas/failover/budget.py derives it
            # from the botocore settings); an invocation that still runs out is retried by the state
            # machine (States.Timeout / Lambda.Unknown).
            timeout=LAMBDA_TIMEOUT_SECONDS,
            memory_size=256,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={"RUNBOOK_CONTEXT": pulumi.Output.json_dumps(args.runbook_context)}
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=runbook.depends()),
        )

        # --- state machines ---
        sfn_role = aws.iam.Role(
            f"{name}-sfn-role",
            assume_role_policy=assume_role_policy("states.amazonaws.com"),
            path=iam_path(args.prefix),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-sfn-policy",
            role=sfn_role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function.arn}
                    ],
                }
            ),
            opts=child,
        )
        machines = {}
        for runbook in (FAILOVER, FAILBACK):
            machines[runbook.name] = aws.sfn.StateMachine(
                f"{name}-{runbook.name}",
                name=physical_name(
                    args.prefix, runbook.name, limit=limit_of("aws:sfn/stateMachine:StateMachine", "name")
                ),
                role_arn=sfn_role.arn,
                definition=function.arn.apply(lambda arn, rb=runbook: definition_json(rb, arn)),
                opts=child,
            )

        # --- triggers ---
        if args.auto_failover and args.primary_unhealthy_alarm_arn is not None:
            events_role = aws.iam.Role(
                f"{name}-events-role",
                assume_role_policy=assume_role_policy("events.amazonaws.com"),
                path=iam_path(args.prefix),
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-events-policy",
                role=events_role.id,
                policy=pulumi.Output.json_dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "states:StartExecution",
                                "Resource": machines["failover"].arn,
                            }
                        ],
                    }
                ),
                opts=child,
            )
            rule = aws.cloudwatch.EventRule(
                f"{name}-auto-failover",
                description="Start the failover runbook when region A stays unhealthy (dr:autoFailover)",
                event_pattern=pulumi.Output.json_dumps(
                    {
                        "source": ["aws.cloudwatch"],
                        "detail-type": ["CloudWatch Alarm State Change"],
                        "resources": [args.primary_unhealthy_alarm_arn],
                        "detail": {"state": {"value": ["ALARM"]}},
                    }
                ),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-auto-failover-target",
                rule=rule.name,
                arn=machines["failover"].arn,
                role_arn=events_role.arn,
                input=json.dumps(
                    {"params": {"force": False, "reason": "automated: region A unhealthy alarm"}}
                ),
                opts=child,
            )

        # The policy operators hold to start the runbooks is the administrator's, not the program's
        # (components.iam.operator_policy_name, review breakiam21 BI21-1): its ARN, for the README.

        # --- the canary ---
        canary_name = physical_name(args.prefix, "canary", limit=limit_of(_FUNCTION, "name"))
        canary_identity = function_identity(
            f"{name}-canary",
            canary_name,
            [
                {
                    # PutMetricData has no resource type (STAR_ONLY_ACTIONS): narrowed to the canary's
                    # two namespaces in region B, both this deployment's own (lambdas/failover/names.py:
                    # cloudwatch:namespace is the only condition key, none on dimensions).
                    "Sid": "PublishHealthAndSwitch",
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "aws:RequestedRegion": args.dr_region,
                            "cloudwatch:namespace": [
                                health_namespace(args.prefix),
                                args.switch_metric["namespace"],
                            ],
                        }
                    },
                },
                {
                    # The latch, and the run journal beside it: whether a failover holds region A
                    # whatever the latch says (lambdas/health_check/probe.py, read_journal).
                    "Sid": "ReadLatch",
                    "Effect": "Allow",
                    "Action": "ssm:GetParameter",
                    "Resource": pulumi.Output.all(account, args.latch_parameter_name).apply(
                        lambda v: [
                            parameter_arn(args.dr_region, v[0], v[1]),
                            parameter_arn(args.dr_region, v[0], f"{v[1]}{JOURNAL_SUFFIX}"),
                        ]
                    ),
                },
                {
                    # Region A answering again under an active latch, or while the journal says its
                    # fence is pending: ask the runbook to finish the fence
                    # (lambdas/health_check/probe.py, complete_pending_fence).
                    "Sid": "CompletePendingFence",
                    "Effect": "Allow",
                    "Action": "lambda:InvokeFunction",
                    "Resource": function.arn,
                },
            ],
            child,
            path=iam_path(args.prefix),
        )
        canary = aws.lambda_.Function(
            f"{name}-canary",
            name=canary_name,
            runtime="python3.12",
            handler="lambdas.health_check.handler.handler",
            code=lambda_code(),
            role=canary_identity.role.arn,
            timeout=30,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "TARGETS": pulumi.Output.json_dumps(args.canary_targets),
                    "APP": args.prefix,
                    "METRIC_NAMESPACE": health_namespace(args.prefix),
                    "SWITCH_NAMESPACE": args.switch_metric["namespace"],
                    "SWITCH_METRIC": args.switch_metric["name"],
                    "SWITCH_DIMENSIONS": json.dumps(args.switch_metric["dimensions"]),
                    "LATCH_PARAMETER": args.latch_parameter_name,
                    "RUNBOOK_FUNCTION": function.name,
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=canary_identity.depends()),
        )
        schedule = aws.cloudwatch.EventRule(
            f"{name}-canary-schedule", schedule_expression="rate(1 minute)", opts=child
        )
        aws.cloudwatch.EventTarget(f"{name}-canary-target", rule=schedule.name, arn=canary.arn, opts=child)
        aws.lambda_.Permission(
            f"{name}-canary-invoke",
            action="lambda:InvokeFunction",
            function=canary.name,
            principal="events.amazonaws.com",
            source_arn=schedule.arn,
            opts=child,
        )

        self.failover_state_machine_arn = machines["failover"].arn
        self.failback_state_machine_arn = machines["failback"].arn
        self.operator_policy_arn = account.apply(lambda a: operator_policy_arn(a, args.prefix))
        self.function_name = function.name
        self.register_outputs(
            {
                "failover_state_machine_arn": self.failover_state_machine_arn,
                "failback_state_machine_arn": self.failback_state_machine_arn,
            }
        )
