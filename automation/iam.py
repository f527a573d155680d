"""``python -m automation iam --for deploy|break-glass``: the IAM a human needs, least privilege.

``deploy``: what ``pulumi up`` of both stacks needs, as configured and in every later update the README
documents (the failover, each failback phase, ``dr:autoFailover``: automation/iam_updates.py). The
stacks are synthesized offline; every
resource type they register maps to the API actions the provider calls to create, read, update,
tag and delete it (:data:`DEPLOY_ACTIONS`), and every look-up they make to its action
(:data:`INVOKE_ACTIONS`). Each action gets the resource types the Service Authorization Reference
defines for it, in the stacks' regions and account; IAM, account-wide and the way to escalate
privileges, is narrowed to the roles, policies and instance profiles the program names (``iam:PassRole``
each role only to the services its trust policy names), and S3 to the program's buckets. A dependent
action of the Service Authorization Reference is added when it reads, and when it writes only for the
request parameter that needs it (:data:`FEATURE_DEPENDENTS`). Actions AWS authorizes only on ``"*"`` get
``"*"`` limited to the stacks' regions. ``--state-backend`` adds the S3 state backend's objects, and
leaves S3's use of the state bucket's KMS key for them out of the tag Deny (:func:`state_key_denied`).

``break-glass``: what ``python -m automation failover|failback`` needs, from the dr stack's
``runbook`` output (``--outputs``, the same file the runbook reads) or, without it, from the offline
synthesis: the same statements as the deployed runbook role (``components/runbook_iam.py``), split
into managed-policy-sized documents like the deploy policy.

No ``service:*`` in an Allow. IAM is per account, not per deployment: where an ARN carries the
deployment's name the Allow names it; where it cannot (random ids: KMS keys, API Gateway, EC2), a Deny
on resources tagged with *another* deployment's ``Application`` or ``Environment`` keeps one
environment's deployer from another's resources (:func:`other_deployments_denied`). What neither can
fence in one account is :data:`UNFENCEABLE_IN_ONE_ACCOUNT`, told on stderr (one account per
environment is the fence for it). Documents are split to stay under IAM's 6,144-character limit for a
managed policy (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from automation import synth

SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference"
SAR_PAGES: dict[str, str] = {
    "apigateway": f"{SAR}/list_amazonapigatewaymanagement.html",
    "autoscaling": f"{SAR}/list_amazonec2autoscaling.html",
    "backup": f"{SAR}/list_awsbackup.html",
    "backup-storage": f"{SAR}/list_awsbackupstorage.html",
    "cloudwatch": f"{SAR}/list_amazoncloudwatch.html",
    "dynamodb": f"{SAR}/list_amazondynamodb.html",
    "ec2": f"{SAR}/list_amazonec2.html",
    "ecs": f"{SAR}/list_amazonelasticcontainerservice.html",  # dependent actions of ec2:CreateFlowLogs
    "elasticloadbalancing": f"{SAR}/list_awselasticloadbalancingv2.html",
    "events": f"{SAR}/list_amazoneventbridge.html",
    "iam": f"{SAR}/list_awsidentityandaccessmanagementiam.html",
    "kms": f"{SAR}/list_awskeymanagementservice.html",
    "lambda": f"{SAR}/list_awslambda.html",
    "logs": f"{SAR}/list_amazoncloudwatchlogs.html",
    "rds": f"{SAR}/list_amazonrds.html",
    "route53": f"{SAR}/list_amazonroute53.html",
    "s3": f"{SAR}/list_amazons3.html",
    "secretsmanager": f"{SAR}/list_awssecretsmanager.html",
    "sns": f"{SAR}/list_amazonsns.html",
    "sqs": f"{SAR}/list_amazonsqs.html",
    "ssm": f"{SAR}/list_awssystemsmanager.html",
    "states": f"{SAR}/list_awsstepfunctions.html",
}
"""Where each service's actions and resource types are defined (the tests check every action there)."""

_EC2_TAGS = ("ec2:CreateTags", "ec2:DeleteTags")
_RDS_TAGS = ("rds:AddTagsToResource", "rds:RemoveTagsFromResource", "rds:ListTagsForResource")
_APIGW = ("apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE")
# A store encrypted with a customer-managed key is created by a caller who may use the key through
# the service (grants, data keys): RDS, DynamoDB, Secrets Manager, Backup, S3, SNS.
_USE_KEY = ("kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt")

DEPLOY_ACTIONS: dict[str, tuple[str, ...]] = {
    # API Gateway's control plane is REST verbs on its resource paths.
    **{
        t: _APIGW
        for t in (
            "aws:apigateway/restApi:RestApi", "aws:apigateway/resource:Resource", "aws:apigateway/method:Method",
            "aws:apigateway/integration:Integration", "aws:apigateway/deployment:Deployment",
            "aws:apigateway/stage:Stage", "aws:apigateway/methodSettings:MethodSettings",
            "aws:apigateway/domainName:DomainName", "aws:apigateway/basePathMapping:BasePathMapping",
        )
    },
    "aws:autoscaling/group:Group": (
        "autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:DeleteAutoScalingGroup", "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeScalingActivities", "autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags",
        "autoscaling:PutWarmPool", "autoscaling:DescribeWarmPool", "autoscaling:DeleteWarmPool",
        "autoscaling:AttachLoadBalancerTargetGroups", "autoscaling:DetachLoadBalancerTargetGroups",
        "autoscaling:DescribeLoadBalancerTargetGroups",
        # The capacity wait after a create, and after an update that changes min or desired capacity
        # (``wait_for_capacity_timeout``, default 10m, which the program leaves), reads the group
        # (DescribeAutoScalingGroups), its scaling activities (DescribeScalingActivities) and the health
        # of every target in its target groups: terraform-provider-aws internal/service/autoscaling/
        # group.go ``statusGroupCapacity`` -> ``findELBV2InstanceStates`` -> ``DescribeTargetHealth``
        # (review breakiam25 BI25-5). Its ``findELBInstanceStates`` calls the classic ELB's
        # DescribeInstanceHealth only for ``load_balancers``, which the program does not set.
        "elasticloadbalancing:DescribeTargetHealth",
        # A group launching from a template is authorized as its creator running those instances,
        # with the template's instance profile (iam:PassRole, IAM statement).
        "ec2:RunInstances", "ec2:DescribeLaunchTemplateVersions",
    ),
    "aws:autoscaling/policy:Policy": (
        "autoscaling:PutScalingPolicy", "autoscaling:DescribePolicies", "autoscaling:DeletePolicy",
    ),
    "aws:backup/vault:Vault": (
        "backup:CreateBackupVault", "backup:DescribeBackupVault", "backup:DeleteBackupVault",
        "backup:TagResource", "backup:UntagResource", "backup:ListTags", "backup-storage:MountCapsule",
        # "Backup vault creation and deletion", required permissions
        # (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-a-vault.html).
        *_USE_KEY, "kms:RetireGrant",
    ),
    "aws:backup/plan:Plan": (
        "backup:CreateBackupPlan", "backup:GetBackupPlan", "backup:UpdateBackupPlan", "backup:DeleteBackupPlan",
        "backup:TagResource", "backup:ListTags",
    ),
    "aws:backup/selection:Selection": (
        "backup:CreateBackupSelection", "backup:GetBackupSelection", "backup:DeleteBackupSelection",
    ),
    "aws:cloudwatch/dashboard:Dashboard": (
        "cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards",
    ),
    "aws:cloudwatch/eventRule:EventRule": (
        "events:PutRule", "events:DescribeRule", "events:DeleteRule", "events:ListTagsForResource",
        "events:TagResource", "events:UntagResource",
    ),
    "aws:cloudwatch/eventTarget:EventTarget": ("events:PutTargets", "events:ListTargetsByRule", "events:RemoveTargets"),
    "aws:cloudwatch/logGroup:LogGroup": (
        "logs:CreateLogGroup", "logs:DescribeLogGroups", "logs:DeleteLogGroup", "logs:PutRetentionPolicy",
        "logs:DeleteRetentionPolicy", "logs:ListTagsForResource", "logs:TagResource", "logs:UntagResource",
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        "cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms",
        "cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:UntagResource",
    ),
    "aws:dynamodb/table:Table": (
        "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTable", "dynamodb:DeleteTable",
        "dynamodb:DescribeContinuousBackups", "dynamodb:UpdateContinuousBackups", "dynamodb:DescribeTimeToLive",
        "dynamodb:ListTagsOfResource", "dynamodb:TagResource", "dynamodb:UntagResource",
        "dynamodb:CreateTableReplica", "dynamodb:DeleteTableReplica", "dynamodb:Scan", "dynamodb:Query",
        "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem", "iam:CreateServiceLinkedRole", *_USE_KEY,
    ),
    "aws:ec2/amiCopy:AmiCopy": ("ec2:CopyImage", "ec2:DescribeImages", "ec2:DeregisterImage", "ec2:DeleteSnapshot", *_EC2_TAGS),
    "aws:ec2/eip:Eip": ("ec2:AllocateAddress", "ec2:ReleaseAddress", "ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute", *_EC2_TAGS),
    "aws:ec2/flowLog:FlowLog": ("ec2:CreateFlowLogs", "ec2:DeleteFlowLogs", "ec2:DescribeFlowLogs", *_EC2_TAGS),
    "aws:ec2/internetGateway:InternetGateway": (
        "ec2:CreateInternetGateway", "ec2:AttachInternetGateway", "ec2:DetachInternetGateway",
        "ec2:DeleteInternetGateway", "ec2:DescribeInternetGateways", *_EC2_TAGS,
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        "ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate",
        "ec2:DeleteLaunchTemplate", "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions", *_EC2_TAGS,
    ),
    "aws:ec2/natGateway:NatGateway": ("ec2:CreateNatGateway", "ec2:DeleteNatGateway", "ec2:DescribeNatGateways", *_EC2_TAGS),
    "aws:ec2/networkAcl:NetworkAcl": (
        "ec2:CreateNetworkAcl", "ec2:DeleteNetworkAcl", "ec2:DescribeNetworkAcls", "ec2:CreateNetworkAclEntry",
        "ec2:DeleteNetworkAclEntry", "ec2:ReplaceNetworkAclEntry", "ec2:ReplaceNetworkAclAssociation", *_EC2_TAGS,
    ),
    "aws:ec2/routeTable:RouteTable": (
        "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:DescribeRouteTables", "ec2:CreateRoute",
        "ec2:DeleteRoute", "ec2:ReplaceRoute", *_EC2_TAGS,
    ),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (
        "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable", "ec2:DescribeRouteTables",
    ),
    "aws:ec2/securityGroup:SecurityGroup": (
        "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:DescribeSecurityGroups",
        "ec2:DescribeSecurityGroupRules", "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", *_EC2_TAGS,
        # Deleting one first clears lingering ENIs (terraform-provider-aws resourceSecurityGroupDelete):
        # Lambda's, once released, are detached and deleted (vpc_network_interface.go,
        # deleteLingeringLambdaENI), so a VPC function's group can be deleted or replaced.
        "ec2:DescribeNetworkInterfaces", "ec2:DetachNetworkInterface", "ec2:DeleteNetworkInterface",
    ),
    "aws:ec2/subnet:Subnet": (
        "ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:DescribeSubnets", "ec2:ModifySubnetAttribute", *_EC2_TAGS,
        # lingering ENIs again, before the delete
        "ec2:DescribeNetworkInterfaces", "ec2:DetachNetworkInterface", "ec2:DeleteNetworkInterface",
    ),
    "aws:ec2/vpc:Vpc": (
        "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:DescribeVpcs", "ec2:ModifyVpcAttribute", "ec2:DescribeVpcAttribute",
        *_EC2_TAGS,
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (
        "ec2:CreateVpcEndpoint", "ec2:DeleteVpcEndpoints", "ec2:DescribeVpcEndpoints", "ec2:ModifyVpcEndpoint",
        "ec2:DescribePrefixLists", *_EC2_TAGS,
    ),
    "aws:iam/instanceProfile:InstanceProfile": (
        "iam:CreateInstanceProfile", "iam:GetInstanceProfile", "iam:DeleteInstanceProfile",
        "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:TagInstanceProfile",
    ),
    "aws:iam/policy:Policy": (
        "iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
        "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:DeletePolicy", "iam:TagPolicy",
    ),
    "aws:iam/role:Role": (
        "iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
        "iam:TagRole", "iam:UntagRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole", "iam:PassRole",
        # A role created before the boundary gets it in place (terraform-provider-aws resourceRoleUpdate:
        # a changed permissions_boundary is PutRolePermissionsBoundary).
        "iam:PutRolePermissionsBoundary",
    ),
    "aws:iam/rolePolicy:RolePolicy": ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (
        "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies",
    ),
    "aws:kms/alias:Alias": ("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:ListAliases"),
    "aws:kms/key:Key": (
        "kms:CreateKey", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
        "kms:EnableKeyRotation", "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion", "kms:ListResourceTags",
        "kms:TagResource", "kms:UntagResource",
    ),
    "aws:lambda/eventSourceMapping:EventSourceMapping": (
        "lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping",
        "lambda:DeleteEventSourceMapping",
    ),
    "aws:lambda/function:Function": (
        "lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunction",
        "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:ListVersionsByFunction",
        "lambda:GetFunctionCodeSigningConfig", "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags",
    ),
    "aws:lambda/permission:Permission": ("lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"),
    "aws:lb/listener:Listener": (
        "elasticloadbalancing:CreateListener", "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:ModifyListener", "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:AddTags", "elasticloadbalancing:DescribeTags",
        # Read after create and on every refresh (terraform-provider-aws elbv2/listener.go,
        # findListenerAttributesByARN).
        "elasticloadbalancing:DescribeListenerAttributes",
    ),
    "aws:lb/loadBalancer:LoadBalancer": (
        "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeLoadBalancerAttributes", "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
        "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:AddTags",
        "elasticloadbalancing:RemoveTags", "elasticloadbalancing:DescribeTags",
        # The create and update wait (``waitLoadBalancerActive``) is DescribeLoadBalancers; the delete's
        # wait for its interfaces, ec2:DescribeNetworkInterfaces (security group entry). The read's
        # DescribeCapacityReservation is optional: an AccessDenied there leaves
        # ``minimum_load_balancer_capacity`` unset, which the program leaves unset (terraform-provider-aws
        # internal/service/elbv2/load_balancer.go ``resourceLoadBalancerRead``, review breakiam25 BI25-5).
    ),
    "aws:lb/targetGroup:TargetGroup": (
        "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:AddTags", "elasticloadbalancing:DescribeTags",
    ),
    "aws:rds/cluster:Cluster": (
        "rds:CreateDBCluster", "rds:DescribeDBClusters", "rds:ModifyDBCluster", "rds:DeleteDBCluster",
        "iam:CreateServiceLinkedRole", *_RDS_TAGS, *_USE_KEY,
        # ``enable_http_endpoint`` follows the ledger path (components/ledger_access.py), so a documented
        # engine upgrade may turn the Data API on or off; for a provisioned cluster the provider then calls
        # EnableHttpEndpoint / DisableHttpEndpoint (terraform-provider-aws internal/service/rds/cluster.go
        # ``resourceClusterUpdate``; https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_EnableHttpEndpoint.html),
        # which are no dependent action of ModifyDBCluster (review breakiam25 BI25-1).
        "rds:EnableHttpEndpoint", "rds:DisableHttpEndpoint",
        # Every read of a provisioned cluster (after create and update too) asks which global cluster it
        # belongs to: ``findGlobalClusterByDBClusterARN``, a DescribeGlobalClusters filtered by
        # db-cluster-id that names no global cluster (:data:`UNNAMED_READS`; review breakiam25 BI25-6).
        "rds:DescribeGlobalClusters",
    ),
    "aws:rds/clusterInstance:ClusterInstance": (
        "rds:CreateDBInstance", "rds:DescribeDBInstances", "rds:ModifyDBInstance", "rds:DeleteDBInstance", *_RDS_TAGS,
    ),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": (
        "rds:CreateDBClusterParameterGroup", "rds:DescribeDBClusterParameterGroups",
        "rds:DescribeDBClusterParameters", "rds:ModifyDBClusterParameterGroup", "rds:DeleteDBClusterParameterGroup",
        *_RDS_TAGS,
    ),
    "aws:rds/globalCluster:GlobalCluster": (
        "rds:CreateGlobalCluster", "rds:DescribeGlobalClusters", "rds:ModifyGlobalCluster",
        "rds:DeleteGlobalCluster", "rds:RemoveFromGlobalCluster",
    ),
    "aws:rds/instance:Instance": (
        "rds:CreateDBInstance", "rds:CreateDBInstanceReadReplica", "rds:PromoteReadReplica",
        "rds:DescribeDBInstances", "rds:ModifyDBInstance", "rds:DeleteDBInstance", "iam:CreateServiceLinkedRole",
        *_RDS_TAGS, *_USE_KEY,
    ),
    "aws:rds/parameterGroup:ParameterGroup": (
        "rds:CreateDBParameterGroup", "rds:DescribeDBParameterGroups", "rds:DescribeDBParameters",
        "rds:ModifyDBParameterGroup", "rds:DeleteDBParameterGroup", *_RDS_TAGS,
    ),
    "aws:rds/subnetGroup:SubnetGroup": (
        "rds:CreateDBSubnetGroup", "rds:DescribeDBSubnetGroups", "rds:ModifyDBSubnetGroup",
        "rds:DeleteDBSubnetGroup", *_RDS_TAGS,
    ),
    "aws:route53/healthCheck:HealthCheck": (
        "route53:CreateHealthCheck", "route53:GetHealthCheck", "route53:UpdateHealthCheck",
        "route53:DeleteHealthCheck", "route53:ChangeTagsForResource", "route53:ListTagsForResource",
        "cloudwatch:DescribeAlarms",  # a CLOUDWATCH_METRIC check reads its alarm
    ),
    "aws:route53/record:Record": ("route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:GetChange"),
    "aws:route53/zone:Zone": (
        "route53:CreateHostedZone", "route53:GetHostedZone", "route53:DeleteHostedZone",
        "route53:ListResourceRecordSets", "route53:ChangeTagsForResource", "route53:ListTagsForResource",
        "route53:GetChange",
    ),
    "aws:s3/bucket:Bucket": (
        "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketTagging",
        "s3:PutBucketTagging", "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketWebsite", "s3:GetBucketLogging",
        "s3:GetBucketRequestPayment", "s3:GetAccelerateConfiguration", "s3:GetBucketObjectLockConfiguration",
        "s3:GetReplicationConfiguration", "s3:GetLifecycleConfiguration", "s3:GetEncryptionConfiguration",
        "s3:GetBucketVersioning", "s3:GetBucketPolicy",
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration",
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock",
    ),
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": (
        "s3:PutReplicationConfiguration", "s3:GetReplicationConfiguration",
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration", *_USE_KEY,
    ),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3:PutBucketVersioning", "s3:GetBucketVersioning"),
    "aws:secretsmanager/secret:Secret": (
        "secretsmanager:CreateSecret", "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy",
        "secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret", "secretsmanager:ReplicateSecretToRegions",
        "secretsmanager:RemoveRegionsFromReplication", "secretsmanager:TagResource", "secretsmanager:UntagResource",
        *_USE_KEY,
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": (
        "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds",
        "secretsmanager:DescribeSecret",
    ),
    "aws:sfn/stateMachine:StateMachine": (
        "states:CreateStateMachine", "states:DescribeStateMachine", "states:UpdateStateMachine",
        "states:DeleteStateMachine", "states:ListStateMachineVersions", "states:TagResource",
        "states:UntagResource", "states:ListTagsForResource",
        # The diff of a new or changed definition validates it (terraform-provider-aws internal/service/sfn/
        # state_machine.go, ``CustomizeDiff: stateMachineDefinitionValidate``). The Service Authorization
        # Reference defines no resource type for it (the request carries a definition, not a machine:
        # https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html),
        # so AWS authorizes it only on "*", limited here to the stacks' regions (review breakiam25 BI25-7).
        "states:ValidateStateMachineDefinition",
    ),
    "aws:sns/topic:Topic": (
        "sns:CreateTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:DeleteTopic",
        "sns:TagResource", "sns:UntagResource", "sns:ListTagsForResource", *_USE_KEY,
    ),
    "aws:sns/topicSubscription:TopicSubscription": (
        "sns:Subscribe", "sns:Unsubscribe", "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes",
    ),
    "aws:sqs/queue:Queue": (
        "sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes", "sqs:DeleteQueue",
        "sqs:GetQueueUrl", "sqs:ListQueueTags", "sqs:TagQueue", "sqs:UntagQueue",
    ),
    "aws:ssm/parameter:Parameter": (
        "ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DescribeParameters",
        "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource",
    ),
}  # fmt: skip
"""The API actions the provider calls to manage each resource type (create, read, update, tag, delete)."""

INVOKE_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": ("ec2:DescribeAvailabilityZones",),
    "aws:ssm/getParameter:getParameter": ("ssm:GetParameter",),  # the public Amazon Linux image id
    "aws:ssm/getParametersByPath:getParametersByPath": ("ssm:GetParametersByPath",),  # the latch
    # rds-replica: whether region B's instance is still a replica, live (components/dr_data.py).
    "aws:rds/getInstance:getInstance": ("rds:DescribeDBInstances",),
    # rds-replica re-protection: region B's instances, to find the current generation (components/dr_data.py).
    "aws:rds/getInstances:getInstances": ("rds:DescribeDBInstances",),
    # aurora-global: the instance the runbook added to a headless secondary, adopted (components/dr_data.py).
    "aws:rds/getCluster:getCluster": ("rds:DescribeDBClusters",),
    # aurora-global, the primary stack: whether region B's secondary exists before its engine version and
    # instances are read (components/program.py read_secondary_cluster: no minor upgrade when headless).
    "aws:rds/getClusters:getClusters": ("rds:DescribeDBClusters",),
    # rds-replica switch-writer: region B's web tier, live, before the promotion (components/program.py
    # read_region_b_web_tier: found by its tags, then its sizes).
    "aws:autoscaling/getAmiIds:getAmiIds": ("autoscaling:DescribeAutoScalingGroups",),
    "aws:autoscaling/getGroup:getGroup": ("autoscaling:DescribeAutoScalingGroups",),
    # ... and its payments function's reserved concurrency: the provider's aws_lambda_function data source
    # finds the latest published version (ListVersionsByFunction), reads the function (GetFunction), its
    # reserved concurrency (GetFunctionConcurrency: GetFunction of a qualified version answers none, so
    # the data source asks for it since terraform-provider-aws #43753, issue #43711; break30 B30-3) and
    # its code signing config (internal/service/lambda/function_data_source.go dataSourceFunctionRead).
    "aws:lambda/getFunction:getFunction": (
        "lambda:ListVersionsByFunction",
        "lambda:GetFunction",
        "lambda:GetFunctionConcurrency",
        "lambda:GetFunctionCodeSigningConfig",
    ),
    # ... and what region B did since the zero-lag proof's drain (components/program.py
    # read_region_b_served_since, with boto3: no data source reads these): its web tier's scaling activities
    # and its payments function's Invocations (break30 B30-1). Both authorize on "*" only
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html,
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
    "pilotlight:program/readRegionBServedSince": (
        "autoscaling:DescribeScalingActivities",
        "cloudwatch:GetMetricData",
    ),
    "aws:secretsmanager/getRandomPassword:getRandomPassword": ("secretsmanager:GetRandomPassword",),
    # sts:GetCallerIdentity needs no permission (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    "aws:index/getCallerIdentity:getCallerIdentity": (),
    "aws:iam/getPolicyDocument:getPolicyDocument": (),  # computed by the provider, no API call
    "aws:index/getPartition:getPartition": (),
    "aws:index/getRegion:getRegion": (),
}
"""The actions behind each look-up the program makes while it deploys."""

# For actions whose resource types are all optional (tagging, mostly), the types the program has:
# what ec2:CreateTags may tag is what the stacks create, not the 80-odd EC2 resource types.
PROGRAM_RESOURCE_TYPES: dict[str, frozenset[str]] = {
    "ec2": frozenset({
        "vpc", "subnet", "internet-gateway", "natgateway", "elastic-ip", "route-table", "security-group",
        "security-group-rule", "network-acl", "vpc-endpoint", "vpc-flow-log", "launch-template", "image",
        "snapshot", "instance", "volume", "network-interface",
    }),
    # RDS authorizes a create or modify on every resource the request names besides the new one: the
    # subnet, parameter and option groups, the cluster an instance joins, the global cluster a
    # secondary cluster joins (AWS's example policy lists og, pg and subgrp beside db:
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-create-and-modify-examples.html).
    "rds": frozenset({
        "db", "cluster", "global-cluster", "subgrp", "pg", "cluster-pg", "og", "snapshot", "cluster-snapshot",
    }),
    # The provider tags the vaults and plans it creates; backup:TagResource's other optional type,
    # recoveryPoint (``arn:${Partition}:${Vendor}:${Region}:*:${ResourceType}:${RecoveryPointId}``),
    # would otherwise put any ARN of the region in the statement.
    "backup": frozenset({"backupVault", "backupPlan"}),
    # The tagging actions' other optional types are resources the program never creates (review
    # breakiam25: narrowing them to what it tags also lets their statements merge with the others on the
    # same resources, the ten managed policies' headroom): alarms (a dashboard has no tags), parameters
    # (not instances, documents, tasks...), log groups, functions and their event source mappings, state
    # machines, the application load balancers with their listeners and target groups, and rules on the
    # default event bus (the program's rules name no other bus).
    "cloudwatch": frozenset({"alarm"}),
    "ssm": frozenset({"parameter"}),
    "logs": frozenset({"log-group"}),
    "lambda": frozenset({"function", "eventSourceMapping"}),
    "states": frozenset({"statemachine"}),
    "elasticloadbalancing": frozenset({"loadbalancer/app/", "listener/app", "targetgroup"}),
    "events": frozenset({"rule-on-default-event-bus"}),
}  # fmt: skip

MANAGED_POLICY_MAX = 6144
"""Characters (without whitespace) of one managed policy (IAM quotas page, see the module docstring)."""


class IamInputError(ValueError):
    """Bad input to ``python -m automation iam``: reported as one line, exit status 2."""


# --------------------------------------------------------------------------------------------------
# deploy


@functools.cache
def _sar() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    import parliament  # a dev dependency, like the offline synthesis' engine

    privileges: dict[str, dict[str, Any]] = {}
    formats: dict[str, dict[str, str]] = {}
    for service in parliament.iam_definition:
        prefix = service["prefix"]
        formats.setdefault(prefix, {}).update({r["resource"]: r["arn"] for r in service["resources"]})
        for p in service["privileges"]:
            privileges[f"{prefix}:{p['privilege']}".lower()] = {**p, "prefix": prefix}
    return privileges, formats


def _fill(template: str, region: str, account: str) -> str:
    arn = template.replace("${Partition}", "aws").replace("${Region}", region).replace("${Account}", account)
    return re.sub(r"\$\{[^}]+\}", "*", arn)


KMS_VIA_ACTIONS = frozenset(
    {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:RetireGrant"}
)
"""What the deployer does with a key only through a service that encrypts for it (RDS, Secrets Manager,
DynamoDB, AWS Backup, S3, SNS, on its behalf): allowed only with ``kms:ViaService`` naming those
services in the stacks' regions, so the deploy policy decrypts nothing directly, and no other team's
key, although a key's ARN (a random id) cannot be narrowed by name
(https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
Tags cannot narrow it instead: a tag takes up to five minutes to affect a key's authorization
(https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html), and the provider uses a
key seconds after creating it. ``kms:DescribeKey`` (read-only) and the key's own management calls,
which the provider makes directly, stay on the stacks' ``key/*``."""

KMS_VIA_SERVICES: dict[str, str] = {
    # The resource types whose creation makes a service use a key for the caller: their endpoint prefix.
    "aws:backup/vault:Vault": "backup",
    "aws:dynamodb/table:Table": "dynamodb",
    "aws:rds/cluster:Cluster": "rds",
    "aws:rds/instance:Instance": "rds",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "s3",
    "aws:secretsmanager/secret:Secret": "secretsmanager",
    "aws:sns/topic:Topic": "sns",
}

NAMED_RESOURCES: dict[str, tuple[str, str]] = {
    # ARN placeholder of the Service Authorization Reference: (the Pulumi type whose names fill it,
    # the suffix AWS appends to the name in the ARN). A placeholder is filled wherever it appears,
    # so a table's name also narrows its streams and indexes, a function's its versions and aliases.
    "${FunctionName}": ("aws:lambda/function:Function", ""),
    "${TableName}": ("aws:dynamodb/table:Table", ""),
    "${GlobalTableName}": ("aws:dynamodb/table:Table", ""),
    # Secrets Manager appends a hyphen and six random characters to a secret's name in its ARN
    # (https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_iam-policies.html#auth-and-access_examples_wildcard).
    "${SecretId}": ("aws:secretsmanager/secret:Secret", "-??????"),
    "${ParameterNameWithoutLeadingSlash}": ("aws:ssm/parameter:Parameter", ""),
    "${TopicName}": ("aws:sns/topic:Topic", ""),
    "${QueueName}": ("aws:sqs/queue:Queue", ""),
    "${StateMachineName}": ("aws:sfn/stateMachine:StateMachine", ""),
    "${AlarmName}": ("aws:cloudwatch/metricAlarm:MetricAlarm", ""),
    "${BackupVaultName}": ("aws:backup/vault:Vault", ""),
    # Types whose ARNs carry the name but no tag condition key (the tag Deny cannot see them): the
    # global database (``<app>-<env>-global``) and the DR dashboard (``<app>-<env>-dr``).
    "${GlobalCluster}": ("aws:rds/globalCluster:GlobalCluster", ""),
    "${DashboardName}": ("aws:cloudwatch/dashboard:Dashboard", ""),
}
"""Resources narrowed to the names the program gives them (IAM is per account, not per deployment:
without names, one environment's deployer could read another's secrets or delete its tables)."""

UNNAMED_READS: dict[str, str] = {
    # action: why the provider's request names no resource of the type, so AWS authorizes it on every
    # resource of the type (``<type>:*``), whatever the names of the program's own.
    "rds:DescribeGlobalClusters": (
        "terraform-provider-aws internal/service/rds ``findGlobalClusterByDBClusterARN`` (every read of a "
        "provisioned cluster) sends only ``Filters: db-cluster-id=<cluster ARN>``; RDS authorizes a Describe "
        "without an identifier on ``global-cluster:*`` (review breakiam25 BI25-6)"
    ),
}
"""Reads left un-narrowed by :data:`NAMED_RESOURCES` (read-only: they change nothing of another deployment's)."""

NAME_INVOKES: dict[str, tuple[str, str]] = {
    # Invokes whose argument names a resource the deployer reads: (placeholder, argument).
    "aws:ssm/getParameter:getParameter": ("${ParameterNameWithoutLeadingSlash}", "name"),
    "aws:ssm/getParametersByPath:getParametersByPath": ("${ParameterNameWithoutLeadingSlash}", "path"),
}


def resource_names(syntheses: Iterable[synth.Synthesis]) -> dict[str, list[str]]:
    """For each placeholder of :data:`NAMED_RESOURCES`, the names (or ``<logical>-*`` for an
    auto-named resource) of the program's resources that fill it, as they appear in ARNs."""
    syntheses = list(syntheses)
    out: dict[str, set[str]] = {}
    for s in syntheses:
        for placeholder, (typ, suffix) in NAMED_RESOURCES.items():
            for r in s.by_type(typ):
                name = r.inputs.get(synth.NAME_INPUTS.get(typ, "name"))
                value = f"{name}{suffix}" if isinstance(name, str) and name else f"{r.name}-*"
                out.setdefault(placeholder, set()).add(value.lstrip("/"))
        for token, args, _region in s.invokes:
            if token in NAME_INVOKES and isinstance(args.get(NAME_INVOKES[token][1]), str):
                out.setdefault(NAME_INVOKES[token][0], set()).add(args[NAME_INVOKES[token][1]].lstrip("/"))
    parameters = out.get(PARAMETER_NAMES)
    if parameters:
        # The deployment's parameters all live under /<app>/<env>/ (an application name has no "/":
        # components/config.py), which names no other deployment's: one pattern for them keeps the
        # deploy policy within its ten managed policies as the program adds parameters.
        tags = deployment_tags(syntheses)
        path = f"{tags['Application']}/{tags['Environment']}/"
        out[PARAMETER_NAMES] = {f"{path}*" if p.startswith(path) else p for p in parameters}
    return {k: sorted(v) for k, v in out.items()}


PARAMETER_NAMES = "${ParameterNameWithoutLeadingSlash}"

UNLISTED_RESOURCE_TYPES: dict[str, tuple[str, ...]] = {
    # The provider tags the global database with the default tags: pulumi-aws v7 ``rds.GlobalCluster`` has
    # ``tags``/``tags_all``; terraform-provider-aws internal/service/rds/global_cluster.go is
    # ``@Tags(identifierAttribute="arn")``, sends ``Tags: getTagsIn(ctx)`` in CreateGlobalCluster, reads
    # them back from DescribeGlobalClusters' ``TagList`` (``setTagsOut``, no ListTagsForResource) and
    # updates them with AddTagsToResource / RemoveTagsFromResource on the global cluster's ARN. RDS
    # documents Aurora global clusters as taggable, "add, remove, or modify tags for an existing global
    # cluster" with the RDS API (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Tagging.html;
    # https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-tagging.html),
    # the request names it by its ARN (``ResourceName``:
    # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_AddTagsToResource.html), and "If tags
    # are specified in the create action, RDS performs additional authorization on the
    # rds:AddTagsToResource action" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-grant-permissions-tags-on-create.html).
    # The Service Authorization Reference's entries for the two actions (parliament's copy) list some
    # twenty RDS resource types, all optional, but not ``global-cluster``
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html); the
    # actions are not "*"-only, and IAM matches a statement's Resource against the resource the request
    # names, so the grant is the program's global cluster by name (breakiam26 BI26-2). Its type has no
    # tag condition key: ``"*"`` would let any deployer of the account retag every global database.
    "rds:AddTagsToResource": ("global-cluster",),
    "rds:RemoveTagsFromResource": ("global-cluster",),
}
"""Resource types an action acts on that AWS documents but the Service Authorization Reference does not
list for it: granted only where the program has one, by the name :func:`resource_names` gives it."""


def action_resources(
    action: str, regions: Sequence[str], account: str, names: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """Resource patterns for ``action``: its required resource types in ``regions`` and ``account``,
    narrowed to ``names`` (placeholder -> values, :func:`resource_names`) where a type's ARN has one.

    ``["*"]`` when the Service Authorization Reference defines no resource type for it.
    """
    privileges, formats = _sar()
    privilege = privileges.get(action.lower())
    if privilege is None:
        raise KeyError(f"{action} is not in the Service Authorization Reference")
    types = [r["resource_type"] for r in privilege["resource_types"] if r["resource_type"]]
    required = [t.rstrip("*") for t in types if t.endswith("*")]
    optional = [t for t in types if not t.endswith("*")]
    relevant = PROGRAM_RESOURCE_TYPES.get(privilege["prefix"])
    if not required:
        required = [t for t in optional if relevant is None or t in relevant] or optional
    elif relevant is not None:
        # An optional type is authorized too when the request involves one: ec2:RunInstances from a
        # launch template is authorized on the template and the volumes it creates.
        required += [t for t in optional if t in relevant]
    for resource_type in UNLISTED_RESOURCE_TYPES.get(action, ()):
        placeholders = [p for p in NAMED_RESOURCES if p in formats[privilege["prefix"]][resource_type]]
        if placeholders and all(p in (names or {}) for p in placeholders) and resource_type not in required:
            required.append(resource_type)
    if not required:
        return ["*"]
    out: list[str] = []
    for resource_type in required:
        template = formats[privilege["prefix"]][resource_type]
        named = [p for p in (names or {}) if p in template]
        filled = [template]
        for placeholder in named:
            filled = [t.replace(placeholder, value) for t in filled for value in (names or {})[placeholder]]
        for t in filled:
            for region in regions if "${Region}" in t else [""]:
                arn = _fill(t, region, account)
                # AWS's public parameters (the Amazon Linux image id) are owned by no account: their
                # ARNs have an empty account field (arn:aws:ssm:<region>::parameter/aws/service/...).
                public = arn.replace(f":{account}:parameter/aws/service/", "::parameter/aws/service/")
                for a in (arn, public):
                    if a not in out:
                        out.append(a)
    return out


SERVICE_LINKED_ROLES = "arn:aws:iam::{account}:role/aws-service-role/*"
"""Where services create their service-linked roles (RDS, DynamoDB global tables, Auto Scaling...);
the deployer only asks for them to be created (``iam:CreateServiceLinkedRole``), which IAM authorizes on
the role the service will own."""


def iam_resources(syntheses: Iterable[synth.Synthesis], account: str) -> list[str]:
    """The roles, policies and instance profiles the stacks create, under their path (``/<app>-<env>/``,
    components.iam.iam_path; auto-names as ``<logical>-*``)."""
    out: set[str] = set()
    for s in syntheses:
        for r in s.aws_resources():
            template = synth.ARN_FORMATS.get(r.type, "")
            if not template.startswith("arn:aws:iam::"):
                continue
            name = r.inputs.get("name") or f"{r.name}-*"
            path = str(r.inputs.get("path") or "/").lstrip("/")
            out.add(template.format(account=account, name=f"{path}{name}", region="", id="*"))
    return sorted(out)


def bucket_resources(syntheses: Iterable[synth.Synthesis]) -> list[str]:
    """The buckets the stacks create, by their name prefix (S3 appends the rest)."""
    out: set[str] = set()
    for s in syntheses:
        for r in s.by_type("aws:s3/bucket:Bucket"):
            name = r.inputs.get("bucket") or r.inputs.get("bucketPrefix")
            out.add(f"arn:aws:s3:::{name}*" if name else "arn:aws:s3:::*")
    return sorted(out)


GLOBAL_SERVICES = frozenset({"route53"})
"""Services whose requests are made to us-east-1 whatever the stacks' regions: ``aws:RequestedRegion``
is us-east-1 for them
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_deny-requested-region.html)."""
GLOBAL_REQUEST_REGION = "us-east-1"


def _final_snapshot(inputs: Mapping[str, Any]) -> bool:
    return bool(inputs.get("finalSnapshotIdentifier")) and not inputs.get("skipFinalSnapshot")


FEATURE_DEPENDENTS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], bool], str]] = {
    # dependent write: (the resource types whose request may need it, whether a resource's inputs ask
    # for it, the request parameter that does). The Service Authorization Reference lists a dependent
    # action as one that "might be required" for the request: for these, only with the parameter
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
    "route53:AssociateVPCWithHostedZone": (
        ("aws:ec2/vpcEndpoint:VpcEndpoint",), lambda i: bool(i.get("privateDnsEnabled")), "PrivateDnsEnabled",
    ),
    "rds:CreateDBClusterSnapshot": (("aws:rds/cluster:Cluster",), _final_snapshot, "FinalDBSnapshotIdentifier"),
    "rds:CreateDBSnapshot": (("aws:rds/instance:Instance",), _final_snapshot, "FinalDBSnapshotIdentifier"),
    "states:PublishStateMachineVersion": (
        ("aws:sfn/stateMachine:StateMachine",), lambda i: bool(i.get("publish")), "publish",
    ),
    # An RDS-managed master password: RDS creates and rotates its secret (ManageMasterUserPassword);
    # the program sets masterPasswordWo (review breakiam25 BI25-4).
    "secretsmanager:RotateSecret": (
        ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance"),
        lambda i: bool(i.get("manageMasterUserPassword")), "ManageMasterUserPassword",
    ),
    # Tenant databases of an RDS for Oracle multi-tenant container database (MultiTenant); the program's
    # engines are Aurora PostgreSQL and PostgreSQL.
    "rds:CreateTenantDatabase": (("aws:rds/instance:Instance",), lambda i: bool(i.get("multiTenant")), "MultiTenant"),
    "rds:DeleteTenantDatabase": (("aws:rds/instance:Instance",), lambda i: bool(i.get("multiTenant")), "MultiTenant"),
}  # fmt: skip
"""The dependent writes the Service Authorization Reference lists for the program's actions, each with the
request parameter that needs it (review breakiam25 BI25-4: the expansion granted every one, so
``rds:DeleteTenantDatabase`` on every ``db:*`` of both regions and ``secretsmanager:RotateSecret``)."""

READ_ACCESS_LEVELS = frozenset({"List", "Read"})


def with_dependent_actions(
    actions: Iterable[str], syntheses: Iterable[synth.Synthesis] | None = None
) -> set[str]:
    """``actions`` and, transitively, the dependent actions the Service Authorization Reference lists
    for them (e.g. ``route53:AssociateVPCWithHostedZone`` for ``ec2:CreateVpcEndpoint``, whose private
    DNS associates a hosted zone with the VPC). A dependent action that reads is added; one that writes
    only when a resource of ``syntheses`` sets the request parameter that needs it
    (:data:`FEATURE_DEPENDENTS`; without ``syntheses``, every one). Raises KeyError for a dependent write
    :data:`FEATURE_DEPENDENTS` does not classify: a new one is granted only once someone says when."""
    privileges, _ = _sar()
    resources = None if syntheses is None else [r for s in syntheses for r in s.aws_resources()]
    out: set[str] = set()
    actions = list(actions)
    asked = {a.lower() for a in actions}
    todo = [(action, True) for action in actions]
    unknown: set[str] = set()
    while todo:
        action, requested = todo.pop()
        requested = requested or action.lower() in asked
        if action.lower() in {a.lower() for a in out}:
            continue
        privilege = privileges.get(action.lower())
        writes = privilege is not None and privilege["access_level"] not in READ_ACCESS_LEVELS
        if not requested and resources is not None and writes:
            if action not in FEATURE_DEPENDENTS:
                unknown.add(action)
                continue
            types, asks, _parameter = FEATURE_DEPENDENTS[action]
            if not any(r.type in types and asks(r.inputs) for r in resources):
                continue
        out.add(action)
        for resource_type in privilege["resource_types"] if privilege else ():
            todo.extend((a, False) for a in resource_type.get("dependent_actions") or ())
    if unknown:
        raise KeyError(f"dependent writes with no FEATURE_DEPENDENTS entry: {sorted(unknown)}")
    return out


APIGATEWAY_PATHS = ("/restapis", "/restapis/*", "/domainnames", "/domainnames/*", "/tags/*")
"""The API Gateway control-plane paths of what the program creates: a REST API with its resources,
methods, integrations, deployments and stages (all under ``/restapis/<id>``), a custom domain with its
base path mappings (under ``/domainnames/<name>``), and tags (``PUT /tags/<arn>``)
(https://docs.aws.amazon.com/apigateway/latest/developerguide/arn-format-reference.html). The
Service Authorization Reference lists some fifty path types for the five verbs; the program touches
these. The ids are random, so paths cannot name one deployment: the tag Deny does that."""


APIGATEWAY_TAG_VERBS = frozenset({"apigateway:GET", "apigateway:PUT", "apigateway:DELETE"})
"""The verbs of the tag paths: ``GET /tags/<arn>`` (GetTags), ``PUT`` (TagResource), ``DELETE``
(UntagResource) (https://docs.aws.amazon.com/apigateway/latest/api/API_TagResource.html,
API_UntagResource.html, API_GetTags.html); no ``POST`` or ``PATCH`` operation exists there."""


def apigateway_resources(regions: Sequence[str], action: str | None = None) -> list[str]:
    """The API Gateway paths of :data:`APIGATEWAY_PATHS` in ``regions`` (for ``action``: the tag paths
    only for the verbs it has)."""
    paths = [
        p for p in APIGATEWAY_PATHS if p != "/tags/*" or action is None or action in APIGATEWAY_TAG_VERBS
    ]
    return [f"arn:aws:apigateway:{region}::{path}" for region in regions for path in paths]


DEPLOYMENT_TAGS = ("Application", "Environment")
"""The default tags (components.config, ``TagConfig.as_dict``) that say which deployment a resource
belongs to; the provider puts them on every taggable resource it creates."""

TAG_FENCED_SERVICES = (
    "apigateway", "autoscaling", "backup", "cloudwatch", "dynamodb", "ec2", "elasticloadbalancing",
    "events", "iam", "kms", "lambda", "logs", "rds", "secretsmanager", "sns", "sqs", "ssm", "states",
)  # fmt: skip
"""Services whose resources the program creates and tags itself, and whose authorization reads
``aws:ResourceTag`` (ABAC: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-services-that-work-with-iam.html,
column "ABAC"; for KMS keys https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html).
Route 53 is not here: the hosted zone may be the user's, tagged by other tooling."""


def deployment_tags(syntheses: Iterable[synth.Synthesis]) -> dict[str, str]:
    """``Application`` and ``Environment`` from the stacks' provider default tags (one value each)."""
    seen: dict[str, set[str]] = {}
    for s in syntheses:
        for r in s.resources:
            if not r.type.startswith("pulumi:providers:aws"):
                continue
            raw = r.inputs.get("defaultTags") or {}
            tags = (json.loads(raw) if isinstance(raw, str) else raw).get("tags") or {}
            for key in DEPLOYMENT_TAGS:
                if key in tags:
                    seen.setdefault(key, set()).add(str(tags[key]))
    wrong = {k: sorted(v) for k, v in seen.items() if len(v) != 1}
    if wrong or set(seen) != set(DEPLOYMENT_TAGS):
        raise KeyError(
            f"the stacks' default tags must give one value for each of {DEPLOYMENT_TAGS}: {wrong or seen}"
        )
    return {k: next(iter(v)) for k, v in seen.items()}


def other_deployments_denied(
    tags: Mapping[str, str], state_backend: str | None = None
) -> list[dict[str, Any]]:
    """Deny every action of :data:`TAG_FENCED_SERVICES` on a resource tagged as another deployment's.

    One statement per tag (conditions inside one statement are ANDed; a resource of another
    application *or* another environment is denied). A negated operator holds when the key is absent
    (and so does ``...IfExists``: reference_policies_elements_condition_operators.html), which in a
    Deny would deny every untagged resource, a new one included; so the statement also requires the
    tag to exist (``Null: false``). A resource without the tag is left to the Allow statements: a key
    whose tags have not yet reached KMS authorization (up to five minutes after creation,
    tag-authorization.html), a service that puts no ``aws:ResourceTag`` in its request context, an
    AWS-owned image. The tagging actions are denied too, so another deployment's tags cannot be
    rewritten first.

    With ``state_backend`` (``--state-backend``), S3's use of the state bucket's key for the stacks'
    checkpoints is the one exception: KMS gets statements of its own (:func:`state_key_denied`).
    """
    services = [s for s in TAG_FENCED_SERVICES if state_backend is None or s != "kms"]
    out: list[dict[str, Any]] = []
    for key, value in sorted(tags.items()):
        tagged = {
            "StringNotEquals": {f"aws:ResourceTag/{key}": value},
            "Null": {f"aws:ResourceTag/{key}": "false"},
        }
        out.append(
            {
                "Sid": f"DenyOther{key}",
                "Effect": "Deny",
                "Action": [f"{service}:*" for service in services],
                "Resource": "*",
                "Condition": tagged,
            }
        )
        if state_backend is not None:
            out.extend(state_key_denied(f"DenyOther{key}", tagged, state_backend))
    return out


STATE_KEY_USE = ("kms:Decrypt", "kms:GenerateDataKey")
"""What S3 asks of the caller on the bucket's key for an SSE-KMS object: ``kms:GenerateDataKey`` to write
it, ``kms:Decrypt`` to read it ("Using server-side encryption with AWS KMS keys (SSE-KMS)", Permissions:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html)."""

STATE_KEY_CONTEXT = "kms:EncryptionContext:aws:s3:arn"
"""The encryption context S3 sends with each KMS request it makes for an SSE-KMS object: the object's ARN,
or the bucket's when the bucket uses an S3 Bucket Key ("Encryption context",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context;
https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html), which KMS authorizes as this
condition key (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context)."""

S3_VIA_SERVICE = "s3.*.amazonaws.com"
"""``kms:ViaService`` of a KMS request S3 makes for the caller (``s3.<region>.amazonaws.com``:
https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service);
AWS sets the key, a caller cannot. Any region: the URL need not say the bucket's, and the bucket's name,
unique across AWS, is what the encryption context pins."""


def state_key_denied(sid: str, tagged: Mapping[str, Any], state_backend: str) -> list[dict[str, Any]]:
    """The tag Deny for KMS (``tagged``: its tag condition) without one request: the state bucket's key
    used by S3 for the state backend's objects (breakiam26 BI26-4). The CLI reads and writes its
    checkpoints with its own credentials, S3 asks them for :data:`STATE_KEY_USE` on the bucket's key, the
    key is often shared and tagged so (``Environment=shared``), and an explicit Deny in the caller's own
    policy wins over any key-policy grant (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

    Three Denies: every other KMS action on a key (``NotAction`` the two, ``Resource`` a KMS key, so it
    reaches no other service); the two used other than through S3 (``kms:ViaService``); the two with an S3
    encryption context other than the state bucket's or its objects under the backend's ``.pulumi/``
    (:data:`STATE_KEY_CONTEXT`). Conditions in one statement are ANDed, so the exception (through S3 *and*
    for the state objects) takes the last two, each holding where one half fails, and a negated operator
    holds on an absent key: a direct call, whatever context it forges, is denied by the second; through S3
    for any other bucket or prefix, or through any other service, by the third. Each statement names only
    actions its condition keys are defined for (Service Authorization Reference, list_awskeymanagementservice.html)."""
    bucket, root = state_backend_location(state_backend)
    use = list(STATE_KEY_USE)
    return [
        {
            "Sid": f"{sid}Keys",
            "Effect": "Deny",
            "NotAction": use,
            "Resource": "arn:aws:kms:*:*:key/*",
            "Condition": dict(tagged),
        },
        {
            "Sid": f"{sid}KeyUse",
            "Effect": "Deny",
            "Action": use,
            "Resource": "*",
            "Condition": {**tagged, "StringNotLike": {"kms:ViaService": S3_VIA_SERVICE}},
        },
        {
            "Sid": f"{sid}KeyUseOutsideState",
            "Effect": "Deny",
            "Action": use,
            "Resource": "*",
            "Condition": {
                **tagged,
                "StringNotLike": {
                    STATE_KEY_CONTEXT: [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{root}/*"]
                },
            },
        },
    ]


APIGATEWAY_TAGS = "arn:aws:apigateway:*::/tags/*"
"""API Gateway's tag paths (``PUT``/``DELETE /tags/<url-encoded ARN>``). Their resource type, ``Tags``,
defines no ``aws:ResourceTag`` (Service Authorization Reference,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonapigatewaymanagement.html,
"Resource types"), so the tag Deny does not see whose resource a tag request touches, and the ids in
the tagged ARNs are random. What the ``PUT`` and ``DELETE`` actions do offer is ``aws:TagKeys``, the
keys the request sets or removes (same page, "Actions"; "Whether specific tag keys can be used in a
request": https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-tagging-iam-policy.html)."""


def deployment_tags_kept(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """Deny setting or removing a deployment tag through API Gateway's tag paths.

    Removing production's ``Environment`` tag from its REST API would turn the tag Deny off for it
    (its ``Null`` guard leaves untagged resources to the Allow statements), and rewriting it to
    ``staging`` would make it staging's. The provider sends the default tags in the create request
    (``POST /restapis``, ``/domainnames``, ``.../stages``) and, on an update, only the keys that changed
    (terraform-provider-aws ``updateTags``); a deployment's ``Application`` and ``Environment`` never
    change, so its own deployer never needs this. Other tag keys decide no authorization here.
    """
    return [
        {
            "Sid": "KeepDeploymentTagsOnApiGateway",
            "Effect": "Deny",
            "Action": ["apigateway:DELETE", "apigateway:PUT"],
            "Resource": APIGATEWAY_TAGS,
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": sorted(tags)}},
        }
    ]


UNFENCEABLE_IN_ONE_ACCOUNT: dict[tuple[str, str], str] = {
    # (action, resource type of the Service Authorization Reference): why no statement of one
    # account's policies can keep one deployment's deployer off another deployment's resource.
    # Route 53 page: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonroute53.html
    # ("Resource types": healthcheck is arn:${Partition}:route53:::healthcheck/${Id}, hostedzone is
    # arn:${Partition}:route53:::hostedzone/${Id}, both with no condition keys; the ids are assigned by
    # Route 53 at creation, and a Route 53 ARN has no account field).
    ("route53:UpdateHealthCheck", "healthcheck"): (
        "a health check's id is random and the type has no condition key: any deployer of the account "
        "may update any check (Inverted moves another environment's traffic to its other region)"
    ),
    ("route53:DeleteHealthCheck", "healthcheck"): (
        "a health check's id is random and the type has no condition key: any deployer of the account "
        "may delete another environment's failover health checks"
    ),
    ("route53:ChangeTagsForResource", "healthcheck"): (
        "a health check's id is random, the type has no condition key and the action no aws:TagKeys: "
        "any deployer may retag another environment's checks (Route 53 tags decide no authorization)"
    ),
    ("route53:ChangeTagsForResource", "hostedzone"): (
        "a hosted zone's id is random, the type has no condition key and the action no aws:TagKeys: "
        "any deployer may retag another environment's zone (Route 53 tags decide no authorization)"
    ),
    ("route53:AssociateVPCWithHostedZone", "hostedzone"): (
        "a dependent action of ec2:CreateVpcEndpoint (private DNS); a zone's id is random, the type has "
        "no condition key and route53:VPCs names only the VPC (a random id too): a deployer may "
        "associate its VPC with another environment's private zone and resolve its records"
    ),
}
"""Writes the deploy policy allows on a resource type that neither a name in its ARN nor a tag
condition can fence between deployments of one AWS account. The only fence for these is one AWS
account per environment: AWS Well-Architected, Security pillar, SEC01-BP01 "Separate workloads using
accounts" ("Account-level separation is strongly recommended for isolating production environments
from development and test environments":
https://docs.aws.amazon.com/wellarchitected/2022-03-31/framework/sec_securely_operate_multi_accounts.html).
tests/automation/test_review_iam_break12c.py checks that this is exactly the set of such writes."""


UNFENCEABLE_ON_STAR: dict[str, str] = {
    # SNS page: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html
    # (Unsubscribe and SetSubscriptionAttributes have no resource type: `*` only; a subscription has no
    # tags). With routing.alertEmail the provider manages the e-mail subscription (breakiam26 BI26-3).
    "sns:Unsubscribe": (
        "no resource type (a subscription is named by its ARN, authorized on '*') and no tags: any deployer "
        "may unsubscribe another environment's alarm e-mail"
    ),
    "sns:SetSubscriptionAttributes": (
        "no resource type and no tags: any deployer may change another environment's alarm subscription "
        "(its filter policy or redrive)"
    ),
}
"""Writes AWS authorizes only on ``"*"`` that reach another deployment's existing resource: told on
stderr with :data:`UNFENCEABLE_IN_ONE_ACCOUNT`."""


def unfenceable_note(documents: Iterable[Mapping[str, Any]]) -> str:
    """For people, on stderr: the writes of :data:`UNFENCEABLE_IN_ONE_ACCOUNT` these documents allow,
    and the one fence for them."""
    allowed = {
        a
        for d in documents
        for st in d["Statement"]
        if st["Effect"] == "Allow"
        for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    }
    entries = [(a, t, why) for (a, t), why in sorted(UNFENCEABLE_IN_ONE_ACCOUNT.items()) if a in allowed]
    entries += [(a, '"*"', why) for a, why in sorted(UNFENCEABLE_ON_STAR.items()) if a in allowed]
    if not entries:
        return ""
    lines = [
        "note: IAM cannot keep one environment's deployer off another's resources of one AWS account for:",
        *(f"  {action} on {kind}: {why}" for action, kind, why in entries),
        "The only fence for these is one AWS account per environment (AWS Well-Architected, Security "
        'pillar, SEC01-BP01 "Separate workloads using accounts": '
        "https://docs.aws.amazon.com/wellarchitected/2022-03-31/framework/sec_securely_operate_multi_accounts.html).",
    ]
    return "\n".join(lines)


def deploy_policies(
    syntheses: Sequence[synth.Synthesis], account: str, state_backend: str | None = None
) -> list[dict[str, Any]]:
    """Policy documents allowing ``pulumi up`` (and destroy) of the synthesized stacks, and with
    ``state_backend`` (``pulumi login``'s ``s3://`` URL, or the bucket's name) reading and writing their
    state there (:func:`state_backend_statements`)."""
    regions = sorted({r.region for s in syntheses for r in s.aws_resources() if r.region})
    actions: set[str] = set()
    missing: list[str] = []
    for s in syntheses:
        for r in s.aws_resources():
            if r.type not in DEPLOY_ACTIONS:
                missing.append(r.type)
            actions.update(DEPLOY_ACTIONS.get(r.type, ()))
        for token, _args, _region in s.invokes:
            if token not in INVOKE_ACTIONS:
                missing.append(token)
            actions.update(INVOKE_ACTIONS.get(token, ()))
    if missing:
        raise KeyError(f"no IAM actions recorded for {sorted(set(missing))}: add them to DEPLOY_ACTIONS")
    actions = with_dependent_actions(actions, syntheses)
    narrowed = {
        "iam": iam_resources(syntheses, account),
        "s3": bucket_resources(syntheses),
    }
    names = resource_names(syntheses)
    services = {
        KMS_VIA_SERVICES[r.type] for s in syntheses for r in s.aws_resources() if r.type in KMS_VIA_SERVICES
    }
    via = sorted(f"{service}.{region}.amazonaws.com" for service in services for region in regions)
    # Key: (service, or "*" for the actions AWS authorizes only on "*"; whether the "*" statement takes
    # the global services' request region; resources; kms:ViaService). Actions on "*" share one
    # statement per request-region condition whatever their service: merged by resource, never widened,
    # which keeps the policy within its ten managed documents for the longest names.
    grouped: dict[tuple[str, bool, tuple[str, ...], bool], list[str]] = {}
    for action in sorted(actions):
        service = action.split(":", 1)[0]
        resources = (
            apigateway_resources(regions, action)
            if service == "apigateway"
            else narrowed.get(service)
            or action_resources(action, regions, account, None if action in UNNAMED_READS else names)
        )
        on_star = resources == ["*"]
        key = ("*" if on_star else service, on_star and service in GLOBAL_SERVICES, tuple(resources))
        grouped.setdefault((*key, action in KMS_VIA_ACTIONS), []).append(action)
    statements: list[dict[str, Any]] = []
    for (scope, global_service, resource_key, via_service), group in sorted(grouped.items()):
        resources = list(resource_key)
        label = ("GlobalOnStar" if global_service else "OnStar") if scope == "*" else scope.title()
        for chunk in _chunks(group, resources):
            statement: dict[str, Any] = {
                "Sid": re.sub(r"[^A-Za-z0-9]", "", label) + str(len(statements)),
                "Effect": "Allow",
                "Action": chunk,
                "Resource": resources if len(resources) > 1 else resources[0],
            }
            if resources == ["*"]:
                requested = sorted({*regions, GLOBAL_REQUEST_REGION}) if global_service else regions
                statement["Condition"] = {"StringEquals": {"aws:RequestedRegion": requested}}
            if via_service:
                statement["Condition"] = {"StringEquals": {"kms:ViaService": via}}
            statements.append(statement)
    statements = _records_in_own_zones(statements, syntheses)
    statements = _mappings_to_own_functions(statements, names.get("${FunctionName}", []), regions, account)
    statements = _roles_within_the_boundary(statements, syntheses, account)
    tags = deployment_tags(syntheses)
    return split_documents(
        other_deployments_denied(tags, state_backend)
        + deployment_tags_kept(tags)
        + boundary_kept(syntheses, account)
        + statements
        + (state_backend_statements(state_backend) if state_backend is not None else [])
    )


BUCKET_NAME = re.compile(r"(?!xn--|sthree-|amzn-s3-demo-)[a-z0-9](?:[a-z0-9.-]{1,61})[a-z0-9]")
"""S3's general purpose bucket naming rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
3 to 63 lower-case letters, digits, dots and hyphens, beginning and ending with a letter or digit, no
reserved prefix; the reserved suffixes, adjacent dots and IP-address form are checked in
:func:`state_backend_location`."""


def state_backend_location(backend: str) -> tuple[str, str]:
    """(bucket, the ``.pulumi`` root under its prefix) of ``pulumi login``'s URL
    (``s3://<bucket>[/<prefix>][?region=...]``) or a bucket's name. Raises IamInputError for anything
    else."""
    from urllib.parse import urlsplit

    parsed = urlsplit(backend if "://" in backend else f"s3://{backend}")
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    bad = (
        parsed.scheme != "s3"
        or not BUCKET_NAME.fullmatch(bucket)
        or ".." in bucket
        or re.fullmatch(r"[0-9.]+", bucket) is not None
        or bucket.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
        or re.fullmatch(r"[\w!\-.*'()/]*", prefix) is None
    )
    if bad:
        raise IamInputError(
            f"--state-backend {backend!r}: expected pulumi login's s3://<bucket>[/<prefix>] or an S3 bucket "
            "name (3-63 lower-case letters, digits, dots and hyphens)"
        )
    if "*" in prefix:
        # In a Resource ARN `*` is IAM's wildcard (https://docs.aws.amazon.com/IAM/latest/UserGuide/
        # reference_policies_elements_resource.html): the grant would reach every other prefix's state
        # (breakiam26 BI26-1).
        raise IamInputError(
            f"--state-backend {backend!r}: the prefix {prefix!r} has '*', which IAM reads as a wildcard in a "
            "resource ARN; use a prefix of letters, digits and !-_.'()/"
        )
    return bucket, f"{prefix}/.pulumi" if prefix else ".pulumi"


def state_backend_statements(backend: str) -> list[dict[str, Any]]:
    """What ``pulumi up`` needs of README's S3 state backend (review breakiam25 BI25-2): Pulumi's DIY
    backend keeps each stack's checkpoint, history, backups and lock files as objects under
    ``<bucket>[/<prefix>]/.pulumi/``, read and written with the CLI's own AWS credentials ("Using a DIY
    Backend": https://www.pulumi.com/docs/iac/guides/basics/using-a-diy-backend/), and lists them
    (ListObjectsV2 is authorized as ``s3:ListBucket`` on the bucket:
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html). ``backend`` is
    ``pulumi login``'s URL (``s3://<bucket>[/<prefix>][?region=...]``) or the bucket's name. Raises
    IamInputError for anything else."""
    bucket, root = state_backend_location(backend)
    return [
        {
            "Sid": "StateBackendList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": f"arn:aws:s3:::{bucket}",
        },
        {
            "Sid": "StateBackendObjects",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:aws:s3:::{bucket}/{root}/*",
        },
    ]


RECORD_NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
"""Route 53 has no resource names in a hosted zone's ARN (a random id) and no tag conditions; what it
offers is the names of the records a change touches, lower case without the trailing dot
(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html)."""


def _records_in_own_zones(
    statements: list[dict[str, Any]], syntheses: Iterable[synth.Synthesis]
) -> list[dict[str, Any]]:
    """``route53:ChangeResourceRecordSets`` only on names inside the hosted zones the program creates
    (each environment has its own domain), and on the names of the records it registers when the zone
    is the user's (``routing.hostedZoneId``: the program creates none): a staging deployer cannot
    change production's records, nor empty its zone to delete it (Route 53 refuses to delete a zone
    that holds records)."""
    syntheses = list(syntheses)
    zones = sorted(
        {
            str(r.inputs["name"]).lower().rstrip(".")
            for s in syntheses
            for r in s.by_type("aws:route53/zone:Zone")
        }
    )
    records = sorted(
        {
            str(r.inputs["name"]).lower().rstrip(".")
            for s in syntheses
            for r in s.by_type("aws:route53/record:Record")
            if isinstance(r.inputs.get("name"), str) and synth.COMPUTED not in r.inputs["name"]
        }
    )
    names = [p for z in zones for p in (z, f"*.{z}")]
    names += [r for r in records if not any(r == z or r.endswith(f".{z}") for z in zones)]
    if not names:
        return statements
    out: list[dict[str, Any]] = []
    for statement in statements:
        actions = statement["Action"]
        if "route53:ChangeResourceRecordSets" not in actions:
            out.append(statement)
            continue
        rest = [a for a in actions if a != "route53:ChangeResourceRecordSets"]
        if rest:
            out.append({**statement, "Action": rest})
        out.append(
            {
                "Sid": "Route53OwnRecords",
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets"],
                "Resource": statement["Resource"],
                "Condition": {"ForAllValues:StringLike": {RECORD_NAMES_KEY: names}},
            }
        )
    return out


FUNCTION_ARN_KEY = "lambda:FunctionArn"
"""``lambda:CreateEventSourceMapping`` has no resource type (Service Authorization Reference,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html): it stays on
``"*"``, but "Event source mappings are always associated with a function. You can also use the
``lambda:FunctionArn`` condition to restrict actions by associated function"
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html)."""


MAPPING_WRITES = (
    "lambda:CreateEventSourceMapping",
    "lambda:DeleteEventSourceMapping",
    "lambda:UpdateEventSourceMapping",
)
"""The event source mapping writes that take ``lambda:FunctionArn`` (Service Authorization Reference,
list_awslambda.html: Create on no resource type, Update and Delete on ``eventSourceMapping``, all three
with the key): ``UpdateEventSourceMapping`` takes a new ``FunctionName``, so fencing Create alone let a
staging deployer point its own mapping at production's function (review brk12, F2)."""


def _mappings_to_own_functions(
    statements: list[dict[str, Any]], functions: Sequence[str], regions: Sequence[str], account: str
) -> list[dict[str, Any]]:
    """The event source mapping writes (:data:`MAPPING_WRITES`) only onto the functions the program
    names (and their versions and aliases): a staging deployer cannot point a queue of its own at
    production's function, by creating a mapping or by updating one."""
    if not functions:
        return statements
    arns = [
        f"arn:aws:lambda:{region}:{account}:function:{name}{qualifier}"
        for region in regions
        for name in functions
        for qualifier in ("", ":*")
    ]
    out: list[dict[str, Any]] = []
    fenced = 0
    for statement in statements:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        writes = [a for a in actions if a in MAPPING_WRITES]
        if not writes or statement["Effect"] != "Allow":
            out.append(statement)
            continue
        rest = [a for a in actions if a not in MAPPING_WRITES]
        if rest:
            out.append({**statement, "Action": rest})
        fenced += 1
        out.append(
            {
                "Sid": "LambdaMappingsToOwnFunctions" + ("" if fenced == 1 else str(fenced)),
                "Effect": "Allow",
                "Action": writes,
                "Resource": statement["Resource"],
                "Condition": {
                    **statement.get("Condition", {}),
                    "ArnLike": {FUNCTION_ARN_KEY: arns},  # the key's type is ARN
                },
            }
        )
    return out


BOUNDARY_KEY = "iam:PermissionsBoundary"
"""The permissions boundary in a CreateRole or PutRolePermissionsBoundary request, and the boundary the
role already has for PutRolePolicy, DeleteRolePolicy, AttachRolePolicy and DetachRolePolicy (Service
Authorization Reference, list_awsidentityandaccessmanagementiam.html: the key is listed for exactly
these, plus DeleteRolePermissionsBoundary; UpdateAssumeRolePolicy has no condition key). AWS's pattern
for letting someone create roles without letting them escalate is this condition: "require that any
new role ... has a permissions boundary" and forbid removing or changing it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html, "Delegating
responsibility to others using permissions boundaries")."""

WITH_THE_BOUNDARY = (
    "iam:CreateRole",
    "iam:DeleteRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
)
"""Role writes allowed only when the role carries (or the request sets) the deployment's boundary."""

POLICY_ARN_KEY = "iam:PolicyARN"
"""The managed policy an AttachRolePolicy or DetachRolePolicy request names (same page; type ARN)."""

ATTACHMENTS = ("iam:AttachRolePolicy", "iam:DetachRolePolicy")
"""Allowed only for the policies the program attaches, and only on roles carrying the boundary."""


def boundary_arn(syntheses: Iterable[synth.Synthesis], account: str) -> str | None:
    """The permissions boundary every role of the stacks carries (components.iam.permissions_boundary_arn),
    in ``account``; None when the stacks create no role. Raises KeyError when a role has none or
    they differ: the deploy policy would refuse to create it."""
    found = {
        str(r.inputs.get("permissionsBoundary") or "")
        for s in syntheses
        for r in s.by_type("aws:iam/role:Role")
    }
    if not found:
        return None
    if len(found) != 1 or "" in found:
        raise KeyError(
            f"every role needs the one deployment boundary (permissions_boundary): {sorted(found)}"
        )
    return next(iter(found)).replace(f":{synth.ACCOUNT_ID}:", f":{account}:")


def attached_policy_arns(syntheses: Iterable[synth.Synthesis], account: str) -> list[str]:
    """The managed policies the stacks attach to their roles (``aws.iam.RolePolicyAttachment``): the AWS
    managed ones by ARN, a policy of the program's own (an ARN known only once created) as the
    deployment's policy path."""
    syntheses = list(syntheses)
    out: set[str] = set()
    for s in syntheses:
        for r in s.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
            arn = str(r.inputs.get("policyArn") or "")
            if arn.startswith("arn:aws:iam::aws:policy/"):
                out.add(arn)
            else:
                out.update(p for p in iam_resources(syntheses, account) if ":policy/" in p)
    return sorted(out)


def _roles_within_the_boundary(
    statements: list[dict[str, Any]], syntheses: Iterable[synth.Synthesis], account: str
) -> list[dict[str, Any]]:
    """The IAM writes that could give a role more than the program gives it (review brk12, F1), each
    only with the deployment's permissions boundary on the role (:data:`BOUNDARY_KEY`): creating a
    role, writing or deleting its inline policy, setting its boundary; attaching and detaching only
    the managed policies the program attaches (:data:`POLICY_ARN_KEY`), not AdministratorAccess.
    ``iam:CreateServiceLinkedRole`` only where services keep their service-linked roles, which no
    other IAM write reaches.

    What remains is ``iam:UpdateAssumeRolePolicy`` on the deployment's own roles: the provider calls
    it whenever ``assume_role_policy`` changes (terraform-provider-aws ``resourceRoleUpdate``), and IAM
    offers no condition on a trust policy's content or on the role's boundary for it (Service
    Authorization Reference, IAM actions). A deployer may make one of its roles trust itself; the
    role can then do what the boundary allows, which is what the environment's own roles need and
    nothing of another environment's (automation/iam_boundary.py). Replacing one of its functions'
    code reaches the same, so the boundary, not this action, is the fence."""
    syntheses = list(syntheses)
    boundary = boundary_arn(syntheses, account)
    if boundary is None:
        return statements
    attached = attached_policy_arns(syntheses, account)
    fenced = {*WITH_THE_BOUNDARY, *ATTACHMENTS, "iam:CreateServiceLinkedRole", "iam:PassRole"}
    out: list[dict[str, Any]] = []
    for statement in statements:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        if statement["Effect"] != "Allow" or not any(a in fenced for a in actions):
            out.append(statement)
            continue
        rest = [a for a in actions if a not in fenced]
        if rest:
            out.append({**statement, "Action": rest})
    # Every role under the deployment's path is the deployment's (components.iam.iam_path), and every
    # one carries the boundary: the path, not each role's name, keeps these statements short.
    paths = {str(r.inputs.get("path") or "/") for s in syntheses for r in s.by_type("aws:iam/role:Role")}
    roles = sorted(f"arn:aws:iam::{account}:role{path}*" for path in paths)
    if "/" in paths:
        raise KeyError("a role outside the deployment's IAM path (components.iam.iam_path)")
    condition = {"ArnEquals": {BOUNDARY_KEY: boundary}}  # the key's type is ARN
    out += [
        {
            "Sid": "IamRolesOnlyWithTheBoundary",
            "Effect": "Allow",
            "Action": list(WITH_THE_BOUNDARY),
            "Resource": roles,
            "Condition": condition,
        },
        {
            "Sid": "IamAttachOnlyTheProgramsPolicies",
            "Effect": "Allow",
            "Action": list(ATTACHMENTS),
            "Resource": roles,
            "Condition": {"ArnEquals": {BOUNDARY_KEY: boundary, POLICY_ARN_KEY: attached}},
        },
        {
            "Sid": "IamServiceLinkedRoles",
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": SERVICE_LINKED_ROLES.format(account=account),
        },
        *roles_passed_to_their_services(syntheses, account),
    ]
    return out


PASSED_TO_SERVICE_KEY = "iam:PassedToService"
"""The service principal a role is passed to (IAM User Guide, "Grant a user permissions to pass a role to an
AWS service": https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html; the key is defined
for ``iam:PassRole`` only, Service Authorization Reference, IAM)."""


def trusted_services(role: synth.Resource) -> list[str]:
    """The service principals a role's trust policy (``assumeRolePolicy``) lets assume it. Raises
    KeyError when the synthesis does not know it (the deploy policy could not say whom to pass it to)."""
    raw = role.inputs.get("assumeRolePolicy")
    try:
        document = json.loads(raw) if isinstance(raw, str) else raw
        statements = document.get("Statement") if isinstance(document, dict) else None
    except json.JSONDecodeError as exc:
        raise KeyError(f"{role.type} {role.name}: no trust policy known offline ({raw!r})") from exc
    if not isinstance(statements, (dict, list)):
        raise KeyError(f"{role.type} {role.name}: no trust policy known offline ({raw!r})")
    out: set[str] = set()
    for statement in [statements] if isinstance(statements, dict) else statements:
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        if statement.get("Effect") == "Allow":
            out.update([services] if isinstance(services, str) else services)
    return sorted(out)


def roles_passed_to_their_services(
    syntheses: Iterable[synth.Synthesis], account: str
) -> list[dict[str, Any]]:
    """``iam:PassRole`` on each of the deployment's roles only to the services its trust policy names
    (:data:`PASSED_TO_SERVICE_KEY`): the program passes each role to the service that assumes it (a
    function's to Lambda, the runbook machine's to Step Functions, an instance profile's to EC2...), and
    the deployer may pass none elsewhere, e.g. the runbook's Lambda role to EC2 through an instance
    profile of its own (review breakiam25 BI25-3). One statement per service, its roles by name."""
    by_service: dict[str, set[str]] = {}
    for s in syntheses:
        for role in s.by_type("aws:iam/role:Role"):
            name = role.inputs.get("name") or f"{role.name}-*"
            path = str(role.inputs.get("path") or "/")
            for service in trusted_services(role):
                by_service.setdefault(service, set()).add(f"arn:aws:iam::{account}:role{path}{name}")
    return [
        {
            "Sid": "IamPassRoleTo" + re.sub(r"[^A-Za-z0-9]", "", service.split(".", 1)[0].title()),
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": sorted(roles) if len(roles) > 1 else next(iter(roles)),
            "Condition": {"StringEquals": {PASSED_TO_SERVICE_KEY: service}},
        }
        for service, roles in sorted(by_service.items())
    ]


BOUNDARY_WRITES = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)
"""The writes that would create an administrator's policy (the boundary, the operator policy) before the
administrator does, change what it allows, or remove it. CreatePolicy is authorized on the new policy's
ARN (``policy/<path><name>``: Service Authorization Reference, IAM), so denying it there keeps a deployer
from creating either first with ``"*"`` in it."""


def _operator_policy_arn(account: str, prefix: str) -> str:
    from components.iam import operator_policy_arn

    return operator_policy_arn(account, prefix)


def _prefix_of(syntheses: Iterable[synth.Synthesis]) -> str:
    tags = deployment_tags(syntheses)
    return f"{tags['Application']}-{tags['Environment']}"


def boundary_kept(syntheses: Iterable[synth.Synthesis], account: str) -> list[dict[str, Any]]:
    """Deny what would undo the boundary, whatever else the deployer is given: removing a role's
    boundary, setting another one (or none) on a new role or an existing one, and creating, changing or
    deleting the boundary policy itself; allow reading it (``--check-live``) (AWS's delegation example denies the same:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html). A Deny whose
    ``ArnNotEquals`` key is absent holds (reference_policies_elements_condition_operators.html),
    so a CreateRole without a boundary is refused too."""
    boundary = boundary_arn(syntheses, account)
    if boundary is None:
        return []
    return [
        {
            "Sid": "KeepTheBoundaryOnRoles",
            "Effect": "Deny",
            "Action": ["iam:DeleteRolePermissionsBoundary"],
            "Resource": "*",
        },
        {
            "Sid": "NoRoleWithoutTheBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": "*",
            "Condition": {"ArnNotEquals": {BOUNDARY_KEY: boundary}},
        },
        {
            # The boundary, and the policy operators hold (components.iam.operator_policy_name, review
            # breakiam21 BI21-1): both the administrator's, neither the deployer's to create or write.
            "Sid": "KeepTheBoundaryPolicy",
            "Effect": "Deny",
            "Action": list(BOUNDARY_WRITES),
            "Resource": [boundary, _operator_policy_arn(account, _prefix_of(syntheses))],
        },
        {
            # `iam --for boundary --check-live` reads it before an upgrade (review breakiam22 BI22-9).
            "Sid": "ReadTheBoundaryPolicy",
            "Effect": "Allow",
            "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
            "Resource": boundary,
        },
    ]


def _chunks(actions: list[str], resources: list[str]) -> list[list[str]]:
    """``actions`` in groups small enough that one statement fits one document."""
    statement = {"Sid": "X" * 20, "Effect": "Allow", "Action": actions, "Resource": resources}
    if len(actions) == 1 or _size({"Version": "2012-10-17", "Statement": [statement]}) <= MANAGED_POLICY_MAX:
        return [actions]
    half = len(actions) // 2
    return _chunks(actions[:half], resources) + _chunks(actions[half:], resources)


def split_documents(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements packed into as few documents under :data:`MANAGED_POLICY_MAX` characters as
    first-fit decreasing finds (IAM attaches 10 managed policies to a role by default,
    reference_iam-quotas.html). Order within a policy has no meaning to IAM; each document keeps the
    statements' original order."""
    order = {id(st): i for i, st in enumerate(statements)}
    documents: list[list[dict[str, Any]]] = []
    for statement in sorted(statements, key=lambda st: -_size({"Statement": [st]})):
        for document in documents:
            if _size({"Version": "2012-10-17", "Statement": [*document, statement]}) <= MANAGED_POLICY_MAX:
                document.append(statement)
                break
        else:
            documents.append([statement])
    documents.sort(key=lambda d: min(order[id(st)] for st in d))
    return [
        {"Version": "2012-10-17", "Statement": sorted(d, key=lambda st: order[id(st)])} for d in documents
    ]


def _size(document: Mapping[str, Any]) -> int:
    return len(re.sub(r"\s", "", json.dumps(document)))


# --------------------------------------------------------------------------------------------------
# break-glass


def break_glass_policy(runbook: Mapping[str, Any]) -> dict[str, Any]:
    """What the break-glass runbook calls, on what it acts: the runbook role's statements."""
    from components.runbook_iam import RunbookTargets, runbook_statements

    try:
        targets = RunbookTargets.from_context(runbook)
    except KeyError as exc:
        raise IamInputError(f"the runbook outputs have no {exc.args[0]!r}; redeploy the dr stack") from exc
    except ValueError as exc:
        raise IamInputError(f"the runbook outputs are not usable: {exc}") from exc
    return {"Version": "2012-10-17", "Statement": runbook_statements(targets)}


def break_glass_documents(runbook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """:func:`break_glass_policy` split as the deploy policy is (:func:`split_documents`), each document
    within IAM's 6,144 characters for a managed policy, which the runbook role's statements exceed in one
    document (review breakiam24, BI24-3: 6,360 characters for the shipped configuration, 7,039 for the
    longest accepted names; a role's inline policy holds 10,240). A person holds all of them; IAM evaluates
    the union of the policies attached to an identity
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)."""
    return split_documents(break_glass_policy(runbook)["Statement"])


OPERATOR_OUTPUTS = ("failoverStateMachineArn", "failbackStateMachineArn")
"""The dr stack outputs the operator policy names (components/pilot_light_region.py)."""


def operator_policy(failover_machine: str, failback_machine: str) -> dict[str, Any]:
    """What an operator needs to start and watch the two runbooks (README, "manual in AWS"), nothing else.

    An administrator creates it as ``components.iam.operator_policy_name`` (review breakiam21, BI21-1:
    a policy people hold is never the deployer's to write). Executions are named
    ``execution:<machine name>:<execution>``, and ListExecutions is authorized on the machine
    (Service Authorization Reference, AWS Step Functions:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html).
    """
    machines = [failover_machine, failback_machine]
    for arn in machines:
        if not re.fullmatch(r"arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[\w-]+", arn):
            raise IamInputError(f"{arn!r} is not a Step Functions state machine ARN")
    executions = [arn.replace(":stateMachine:", ":execution:") + ":*" for arn in machines]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StartTheRunbooks",
                "Effect": "Allow",
                "Action": "states:StartExecution",
                "Resource": machines,
            },
            {
                "Sid": "ListTheirRuns",
                "Effect": "Allow",
                "Action": "states:ListExecutions",
                "Resource": machines,
            },
            {
                "Sid": "WatchTheirRuns",
                "Effect": "Allow",
                "Action": ["states:DescribeExecution", "states:GetExecutionHistory"],
                "Resource": executions,
            },
        ],
    }


def _check_account(account: str) -> None:
    if not re.fullmatch(r"\d{12}", account):
        raise IamInputError(f"--account {account!r}: an AWS account id is 12 digits")


def operator_entry(*, account: str, overrides: Sequence[str], outputs: str | None) -> dict[str, Any]:
    """``{"name", "path", "document"}`` of the operator policy: from the dr stack's outputs (the
    deployed machines and ``operatorPolicyArn``) or, without them, from the offline synthesis."""
    from components.iam import iam_path, operator_policy_name

    _check_account(account)
    if outputs is not None:
        data = _read_json_object(Path(outputs))
        missing = [k for k in (*OPERATOR_OUTPUTS, "operatorPolicyArn") if not isinstance(data.get(k), str)]
        if missing:
            raise IamInputError(
                f"--outputs {outputs}: no {', '.join(missing)}; expected the dr stack's outputs "
                "(pulumi stack output --json -s dr)"
            )
        match = re.fullmatch(
            r"arn:aws[\w-]*:iam::\d{12}:policy(/(?:[^/]+/)*)([^/]+)", data["operatorPolicyArn"]
        )
        if match is None:
            raise IamInputError(f"--outputs {outputs}: operatorPolicyArn is not an IAM policy ARN")
        path, name = match.groups()
        machines = [data[k] for k in OPERATOR_OUTPUTS]
    else:
        parsed = synth.parse_overrides(list(overrides))
        primary = synth.synthesize("primary", {k: v for k, v in parsed.items() if not k.startswith("dr:")})
        dr = synth.synthesize_as_procedure("dr", parsed, primary_outputs=primary.outputs)
        tags = deployment_tags([primary, dr])
        prefix = f"{tags['Application']}-{tags['Environment']}"
        path, name = iam_path(prefix), operator_policy_name(prefix)
        machines = [re.sub(r":\d{12}:", f":{account}:", str(dr.outputs[k])) for k in OPERATOR_OUTPUTS]
    return {"name": name, "path": path, "document": operator_policy(*machines)}


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``--outputs``; one clear error otherwise."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise IamInputError(f"--outputs {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise IamInputError(f"--outputs {path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise IamInputError(f"--outputs {path}: expected the dr stack's outputs, a JSON object")
    return data


def read_runbook(path: Path) -> dict[str, Any]:
    """The ``runbook`` output from a file (``pulumi stack output runbook --json``, or the whole outputs)."""
    data = _read_json_object(path)
    return data["runbook"] if isinstance(data.get("runbook"), dict) else data


def _offline(value: Any) -> Any:
    """Synthesized values with what only a deployment knows (ids, auto-names) as ``*``."""
    if isinstance(value, str):
        auto_named = re.sub(rf"{synth.COMPUTED}([^:/\"]+)\.name", r"\1-*", value)
        return re.sub(rf"{synth.COMPUTED}[^:/\"]*", "*", auto_named)
    if isinstance(value, list):
        return [_offline(v) for v in value]
    if isinstance(value, dict):
        return {k: _offline(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------------
# command line

AUDIENCES = ("deploy", "break-glass", "boundary", "operator")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m automation iam",
        description="Print least-privilege IAM policy documents for deploying the stacks or running the "
        "break-glass runbook, or the two policies an administrator creates once per environment before "
        "the first deploy: the permissions boundary of the deployment's roles and the operator policy "
        "(start and watch the failover and failback runbooks).",
    )
    parser.add_argument(
        "--for", dest="audience", required=True, choices=AUDIENCES, help="who the policy is for"
    )
    parser.add_argument(
        "--account",
        help="AWS account id in the ARNs (12 digits; default: a placeholder, or with --check-live the "
        "credentials' account)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="config override for the offline synthesis (as in `plan`), e.g. database.mode=rds-replica",
    )  # fmt: skip
    parser.add_argument(
        "--outputs",
        metavar="FILE",
        help="break-glass: the dr stack's runbook output; operator: the dr stack's outputs "
        "(pulumi stack output --json -s dr); else the offline synthesis",
    )
    parser.add_argument(
        "--state-backend",
        metavar="URL",
        help="deploy: the S3 state backend, as given to pulumi login (s3://<bucket>[/<prefix>]) or the "
        "bucket's name; adds reading and writing the stacks' state there (default: none, e.g. Pulumi Cloud)",
    )
    parser.add_argument(
        "--check-live",
        action="store_true",
        help="boundary: compare the boundary this version and configuration need with the one in the "
        "account (AWS credentials; reads IAM only) and list what the live one lacks: exit 1 if anything",
    )
    return parser


def live_policy_document(arn: str, client: Any) -> dict[str, Any]:
    """The default version's document of the managed policy ``arn`` (GetPolicy, GetPolicyVersion:
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetPolicyVersion.html; the document comes
    URL-encoded, which botocore decodes for IAM responses, and is decoded here if it was not)."""
    from urllib.parse import unquote

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        version = client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = client.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            raise IamInputError(
                f"{arn} does not exist: an administrator creates it from `python -m automation iam --for boundary`"
            ) from exc
        raise IamInputError(f"reading {arn}: {exc}") from exc
    except BotoCoreError as exc:
        raise IamInputError(f"reading {arn}: {exc}") from exc
    return json.loads(unquote(document)) if isinstance(document, str) else dict(document)


def check_live_boundary(account: str, overrides: Sequence[str], client: Any) -> tuple[str, list[str]]:
    """(the boundary's ARN, what the live boundary lacks of the one this version and ``overrides``
    need: iam_boundary.boundary_gaps)."""
    from automation.iam_boundary import boundary_gaps, boundary_policy, deployment_syntheses

    _check_account(account)
    syntheses = deployment_syntheses(synth.parse_overrides(list(overrides)))
    required = boundary_policy(syntheses, account)
    regions = sorted({r.region for s in syntheses for r in s.aws_resources() if r.region})
    path, name = _boundary_name(required)
    arn = f"arn:aws:iam::{account}:policy{path}{name}"
    return arn, boundary_gaps(required, live_policy_document(arn, client), regions)


def _iam_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("iam", config=Config(retries={"mode": "standard"}))


def _caller_account() -> str:
    """The account of the credentials (STS GetCallerIdentity, which needs no permission:
    https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(boto3.client("sts").get_caller_identity()["Account"])
    except (BotoCoreError, ClientError) as exc:
        raise IamInputError(f"--check-live: no usable AWS credentials ({exc}); or pass --account") from exc


def _check_live(args: argparse.Namespace) -> int:
    if args.audience != "boundary":
        raise IamInputError(f"--check-live is for --for boundary, not --for {args.audience}")
    account = args.account or _caller_account()
    arn, gaps = check_live_boundary(account, args.overrides, _iam_client())
    if not gaps:
        print(f"ok: {arn} covers what the roles need under every dr: switch")
        return 0
    print(f"{arn} lacks {len(gaps)} of what the roles need; an administrator updates it (a new default "
          "version) from `python -m automation iam --for boundary`:")  # fmt: skip
    for gap in gaps:
        print(f"  {gap}")
    return 1


def policies(
    audience: str,
    *,
    account: str,
    overrides: Sequence[str],
    outputs: str | None,
    state_backend: str | None = None,
) -> list[dict[str, Any]]:
    """The policy documents for ``audience``. Raises IamInputError (and config errors) on bad input."""
    _check_account(account)
    if state_backend is not None and audience != "deploy":
        raise IamInputError(f"--state-backend is for --for deploy, not --for {audience}")
    if state_backend is not None:
        state_backend_statements(state_backend)  # a bad name is refused before a minute of syntheses
    parsed = synth.parse_overrides(list(overrides))
    shared = {k: v for k, v in parsed.items() if not k.startswith("dr:")}
    if audience == "break-glass" and outputs is not None:
        return break_glass_documents(read_runbook(Path(outputs)))
    if audience == "operator":
        return [operator_entry(account=account, overrides=overrides, outputs=outputs)["document"]]
    if audience == "boundary":
        from automation.iam_boundary import boundary_policy, deployment_syntheses

        return [boundary_policy(deployment_syntheses(parsed), account)]
    if audience == "deploy":
        from automation.iam_updates import deploy_syntheses

        # The first deploy and every later update the README documents (review breakiam24, BI24-2).
        return deploy_policies(deploy_syntheses(parsed), account, state_backend)
    primary = synth.synthesize("primary", shared)
    # The latch the documented procedure leaves for these dr: values (a failback phase runs under it).
    dr = synth.synthesize_as_procedure("dr", parsed, primary_outputs=primary.outputs)
    runbook = _offline(dr.outputs["runbook"])
    runbook["notifyTopicArn"] = re.sub(r":\d{12}:", f":{account}:", runbook["notifyTopicArn"])
    return [
        json.loads(json.dumps(document).replace(synth.ACCOUNT_ID, account))
        for document in break_glass_documents(runbook)
    ]


def _boundary_name(document: Mapping[str, Any]) -> tuple[str, str]:
    """(path, name) of the boundary, from the Deny of other deployments it carries: ``/<app>-<env>/``
    and ``<app>-<env>-boundary`` (components.iam.permissions_boundary_arn)."""
    from components.iam import boundary_policy_name, iam_path

    tags = {
        key.split("/", 1)[1]: value
        for st in document["Statement"]
        if st["Effect"] == "Deny"
        for key, value in st.get("Condition", {}).get("StringNotEquals", {}).items()
        if key.startswith("aws:ResourceTag/")
    }
    prefix = f"{tags['Application']}-{tags['Environment']}"
    return iam_path(prefix), boundary_policy_name(prefix)


def main(argv: list[str] | None = None) -> int:
    """Print ``{"policies": [{"name", "document"}...]}``; exit 2 with one line on bad input."""
    args = build_parser().parse_args(argv)
    from components.config import ConfigError

    operator: dict[str, Any] = {}
    try:
        if args.state_backend is not None and args.audience != "deploy":
            raise IamInputError(f"--state-backend is for --for deploy, not --for {args.audience}")
        if args.check_live:
            return _check_live(args)
        args.account = args.account or synth.ACCOUNT_ID
        if args.audience == "operator":
            # The name and path of the dr stack's operatorPolicyArn, for the administrator (BI21-1).
            operator = operator_entry(account=args.account, overrides=args.overrides, outputs=args.outputs)
            docs = [operator["document"]]
        else:
            docs = policies(
                args.audience,
                account=args.account,
                overrides=args.overrides,
                outputs=args.outputs,
                state_backend=args.state_backend,
            )
    except (IamInputError, synth.SynthError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    named: list[dict[str, Any]] = [
        {"name": f"pilotlight-{args.audience}-{i + 1}", "document": d} for i, d in enumerate(docs)
    ]
    if args.audience == "boundary":
        # The name and path the roles' permissions_boundary names: an administrator creates it with
        # them (aws iam create-policy --path <path> --policy-name <name>), the deployer cannot.
        path, name = _boundary_name(docs[0])
        named = [{"name": name, "path": path, "document": docs[0]}]
    if args.audience == "operator":
        named = [operator]
    note = unfenceable_note(docs) if args.audience == "deploy" else ""
    if note:
        print(note, file=sys.stderr)
    boundaries = sorted(
        {
            resource
            for d in docs
            for st in d["Statement"]
            if args.audience == "deploy" and st.get("Sid") == "KeepTheBoundaryPolicy"
            for resource in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
            if resource.endswith("-boundary")
        }
    )
    for boundary in boundaries:
        print(
            f"note: every role the stacks create carries the permissions boundary {boundary}; an "
            "administrator creates it from `python -m automation iam --for boundary` before the first "
            "pulumi up (the deploy policy cannot create or change it)",
            file=sys.stderr,
        )
    try:
        print(json.dumps({"policies": named}, indent=2))
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit-time flush quiet
    return 0
