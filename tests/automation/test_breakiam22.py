"""breakiam22: adversarial review of issue 12's IAM work on branch iam22 (BI21-1, BI21-2).

Each test here is a finding and FAILS on iam22 (bc0a11f): it states what AWS documents and what the
code does instead. None is a stub: each runs the code under test (``boundary_gaps``, ``--check-live``
against moto's IAM, ``boundary_policy`` from the offline synthesis) and the repository's IAM
evaluation harness (tests/automation/test_review_iam.py ``allows``).

BI22-1..4: ``iam --for boundary --check-live`` (iam_boundary.boundary_gaps) says "ok" for live
boundaries under which IAM implicitly or explicitly denies what the roles need, because it reads only
``Action``/``Resource`` of Deny statements without a ``Condition`` and tests a Deny's resource for
containing the needed pattern, not for overlapping it.

BI22-5: ``--check-live`` says "ok" on the boundary an earlier version made, which README says the
administrator must update (it lets any role write any CloudWatch namespace, production's failover
switch included). Found independently and fixed on iam22 by 0a73e69 (``_unfenced``): the test fails on
bc0a11f and passes on 0a73e69, a regression test now.

BI22-6: the boundary's ``<app>-<env>-*`` widening reaches another application whose name starts with
``<app>-<env>``; S3 objects and DynamoDB backups have no ``aws:ResourceTag``, so the tag Deny does not
fence them.

BI22-7: false gaps: a live Allow written with ``NotAction`` and a Deny split over two statements.

BI22-8: the Aurora writer the failover runbook adds in region B carries no deployment tag, so the tag
Deny (the only fence between environments for ``rds:DeleteDBInstance`` on ``db:*``) does not see it.

BI22-9: the deploy policy cannot read the boundary, so README's ``--check-live`` "before an upgrade"
fails for the deployer.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from automation import iam, synth
from automation.iam_boundary import boundary_gaps, boundary_policy, deployment_syntheses
from tests.automation.test_boundary_live import REGIONS, REQUIRED
from tests.automation.test_review_iam import ACCOUNT, _conditions_hold, allows


def _matches(patterns: Any, value: str, *, case: bool) -> bool:
    values = [patterns] if isinstance(patterns, str) else list(patterns)
    if case:
        return any(fnmatch.fnmatchcase(value, p) for p in values)
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in values)


def evaluates_allowed(document: dict[str, Any], action: str, arn: str, **context: str) -> bool:
    """IAM's evaluation of one policy for one request, with the elements the harness ``allows`` does not
    read: ``NotAction`` ("explicitly matches everything except the specified list of actions",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html) and
    ``NotResource`` ("matches every resource except those specified",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html); an
    explicit Deny wins, else an Allow is needed
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)."""
    request = {k.replace("_", ":", 1): v for k, v in context.items()}
    request.setdefault("aws:RequestedRegion", arn.split(":")[3] if arn.count(":") >= 4 else "us-east-1")
    statements = document["Statement"]
    statements = [statements] if isinstance(statements, dict) else statements

    def applies(s: dict[str, Any]) -> bool:
        acts = (
            _matches(s["Action"], action, case=False)
            if "Action" in s
            else not _matches(s["NotAction"], action, case=False)
        )
        res = (
            _matches(s["Resource"], arn, case=True)
            if "Resource" in s
            else not _matches(s["NotResource"], arn, case=True)
        )
        return acts and res and _conditions_hold(s.get("Condition", {}), request)

    if any(s["Effect"] == "Deny" and applies(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and applies(s) for s in statements)


# --------------------------------------------------------------------------------------------------
# BI22-1..4: boundary_gaps calls a live boundary covered that IAM evaluates as denying a needed request

RUNBOOK_IN_B = "arn:aws:lambda:us-west-2:111122223333:function:a-b-runbook"
"""A concrete request the small REQUIRED document (tests/automation/test_boundary_live.py) exists for:
invoking the deployment's runbook function in region B."""


def _with(*statements: dict[str, Any]) -> dict[str, Any]:
    live = copy.deepcopy(REQUIRED)
    live["Statement"].extend(copy.deepcopy(list(statements)))
    return live


def test_bi22_1_a_conditional_region_deny_in_the_live_boundary_is_a_gap() -> None:
    """BI22-1 (high): a Deny with a Condition is skipped (``_grants``: ``not s.get("Condition")``).

    AWS's own example "Denies access to AWS based on the requested Region"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_deny-requested-region.html)
    is a Deny with ``StringNotEquals aws:RequestedRegion``; an administrator who adds it to the boundary
    with region A only denies every region B call of the roles (an explicit deny in a boundary wins:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html). The
    failover runs in region B: ``--check-live`` must not say "ok"."""
    region_a_only = {
        "Sid": "DenyAllOutsideRequestedRegions",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}},
    }
    live = _with(region_a_only)
    # the repository's evaluator agrees the request is denied under the live boundary
    assert not allows((live,), "lambda:InvokeFunction", RUNBOOK_IN_B)
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


def test_bi22_2_a_not_action_live_deny_is_a_gap() -> None:
    """BI22-2 (high): a Deny written with ``NotAction`` is never read (``_grants`` reads ``Action``).

    "such unlisted actions or services are denied if you use the Deny effect"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html).
    This live Deny takes back every Lambda and Step Functions action the roles need."""
    live = _with({"Effect": "Deny", "NotAction": ["xray:*", "cloudwatch:*"], "Resource": "*"})
    assert evaluates_allowed(REQUIRED, "lambda:InvokeFunction", RUNBOOK_IN_B)
    assert not evaluates_allowed(live, "lambda:InvokeFunction", RUNBOOK_IN_B)
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


def test_bi22_3_a_not_resource_live_deny_is_a_gap() -> None:
    """BI22-3 (high): a Deny written with ``NotResource`` is never read (``_grants`` reads ``Resource``).

    A Deny with ``NotResource`` denies the action on every resource not listed
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html);
    this one keeps Lambda to region A, so region B's runbook function cannot be invoked."""
    live = _with(
        {
            "Effect": "Deny",
            "Action": "lambda:*",
            "NotResource": "arn:aws:lambda:us-east-1:111122223333:function:*",
        }
    )
    assert not evaluates_allowed(live, "lambda:InvokeFunction", RUNBOOK_IN_B)
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


def test_bi22_4_a_live_deny_of_one_needed_resource_is_a_gap() -> None:
    """BI22-4 (high): a Deny is matched by whether its Resource *contains* the needed pattern as text,
    not whether it overlaps it. The roles need ``lambda:InvokeFunction`` on every ``a-b-*`` function;
    an unconditional Deny of that action on the runbook function in region B (one ARN inside the
    pattern) denies the failover's one function (explicit deny wins: policy evaluation logic,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), and
    boundary_gaps reports nothing."""
    live = _with({"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": RUNBOOK_IN_B})
    assert not allows((live,), "lambda:InvokeFunction", RUNBOOK_IN_B)
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


# --------------------------------------------------------------------------------------------------
# BI22-1 and BI22-5 end to end: ``iam --for boundary --check-live`` against an account (moto's IAM)

MOTO_ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def required() -> dict[str, Any]:
    (document,) = iam.policies("boundary", account=MOTO_ACCOUNT, overrides=[], outputs=None)
    return document


def _check_live(capsys: pytest.CaptureFixture[str], live: dict[str, Any]) -> tuple[int, str]:
    from automation.__main__ import main as automation_main

    boto3.client("iam", region_name="us-east-1").create_policy(
        PolicyName="pilotlight-production-boundary",
        Path="/pilotlight-production/",
        PolicyDocument=json.dumps(live),
    )
    code = automation_main(["iam", "--for", "boundary", "--check-live"])
    return code, capsys.readouterr().out


@mock_aws
def test_bi22_1_check_live_fails_on_aws_s_region_deny_example(
    capsys: pytest.CaptureFixture[str], required: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """BI22-1 through the command README gives: the printed boundary plus AWS's example statement
    (reference_policies_examples_aws_deny-requested-region.html, verbatim shape: Deny, NotAction of
    the global services, StringNotEquals aws:RequestedRegion) naming region A only. Every action of the
    dr stack's roles in region B (us-west-2: the runbook, the canary, the state machines) is denied,
    and ``--check-live`` prints "ok" and exits 0."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    live = copy.deepcopy(required)
    live["Statement"].append(
        {
            "Sid": "DenyAllOutsideRequestedRegions",
            "Effect": "Deny",
            "NotAction": ["cloudfront:*", "iam:*", "organizations:*", "route53:*", "support:*"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}},
        }
    )
    machine = f"arn:aws:states:us-west-2:{MOTO_ACCOUNT}:stateMachine:pilotlight-production-failover"
    assert evaluates_allowed(required, "states:StartExecution", machine, **_production())
    assert not evaluates_allowed(live, "states:StartExecution", machine, **_production())
    code, out = _check_live(capsys, live)
    assert code == 1, out


def _production() -> dict[str, str]:
    return {"aws_ResourceTag/Application": "pilotlight", "aws_ResourceTag/Environment": "production"}


def _earlier_version(required: dict[str, Any]) -> dict[str, Any]:
    """The boundary main made before f0c76f5 ("PutMetricData only into the deployment's own
    namespaces"): PutMetricData in ``RolesOnStar``, no ``RolesOwnMetrics`` statement."""
    older = copy.deepcopy(required)
    older["Statement"] = [s for s in older["Statement"] if s.get("Sid") != "RolesOwnMetrics"]
    on_star = next(s for s in older["Statement"] if s.get("Sid") == "RolesOnStar")
    on_star["Action"] = sorted([*on_star["Action"], "cloudwatch:PutMetricData"])
    return older


@mock_aws
def test_bi22_5_check_live_flags_the_earlier_boundary_readme_says_to_update(
    capsys: pytest.CaptureFixture[str], required: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """BI22-5 (medium): README: "A boundary created by an earlier version still allows PutMetricData
    into any namespace: until the administrator updates it (iam --for boundary), only the roles' own
    policies fence it", and says to run ``--check-live`` "before an upgrade". On that boundary the
    check prints "ok": boundary_gaps compares only what the live one allows *less* of, so the one fence
    the boundary writes as an Allow condition (``cloudwatch:namespace``, the failover switch's namespace:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html)
    is never checked. Under it one environment's roles may write another's switch namespace."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    older = _earlier_version(required)
    # production's boundary (moto's account, the default configuration) against staging's switch
    staging_switch = {"cloudwatch_namespace": "Pilotlight/Failover/pilotlight-staging"}
    assert allows((older,), "cloudwatch:PutMetricData", "*", **staging_switch)
    assert not allows((required,), "cloudwatch:PutMetricData", "*", **staging_switch)
    code, out = _check_live(capsys, older)
    assert code == 1, out


# --------------------------------------------------------------------------------------------------
# BI22-6: <app>-<env>-* reaches an application named <app>-<env>-...


@functools.cache
def _primary(app: str, environment: str) -> synth.Synthesis:
    return synth.synthesize("primary", {"pilotlight:appName": app, "pilotlight:environment": environment})


@functools.cache
def _boundary_of(app: str, environment: str) -> dict[str, Any]:
    overrides = {"pilotlight:appName": app, "pilotlight:environment": environment}
    return boundary_policy(deployment_syntheses(overrides), ACCOUNT)


def test_bi22_6_a_boundary_reaches_no_bucket_or_table_backup_of_another_application() -> None:
    """BI22-6 (medium): components/config.py accepts app names with hyphens (``pay-eu``) and refuses
    them only in environments, and iam_boundary._deployment_wide assumes "<app>-<env>- starts no other
    environment's names". App ``pay`` environment ``eu`` gets ``<...>:::pay-eu-*`` and
    ``table/pay-eu-*`` in its boundary, which are app ``pay-eu``'s names in every environment.

    The tag Deny cannot fence these: S3 objects and DynamoDB backups define no ``aws:ResourceTag``
    (Service Authorization Reference, Amazon S3 "object", DynamoDB "backup":
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html;
    ON_THE_PROGRAMS_TABLES says the same). So a role of pay/eu (and its deployer, who writes the role's
    inline policy and runs code as it) may overwrite pay-eu/production's receipts and delete its table
    backups."""
    boundary = _boundary_of("pay", "eu")
    other = _primary("pay-eu", "production")
    buckets = [
        r.inputs.get("bucket") or f"{r.inputs['bucketPrefix']}20261201x"
        for r in other.by_type("aws:s3/bucket:Bucket")
    ]
    tables = [str(r.inputs["name"]) for r in other.by_type("aws:dynamodb/table:Table")]
    tags = {"aws_ResourceTag/Application": "pay-eu", "aws_ResourceTag/Environment": "production"}
    reachable = []
    for bucket in buckets:
        arn = f"arn:aws:s3:::{bucket}/receipts/1.json"
        if allows((boundary,), "s3:PutObject", arn, **tags):
            reachable.append(f"s3:PutObject on {arn}")
    for table in tables:
        arn = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table}/backup/01733011200000-abcdef12"
        if allows((boundary,), "dynamodb:DeleteBackup", arn, **tags):
            reachable.append(f"dynamodb:DeleteBackup on {arn}")
    assert tables and buckets, "the probe sees pay-eu's table and bucket"
    assert reachable == []


# --------------------------------------------------------------------------------------------------
# BI22-7: false gaps (the check exits 1 on a live boundary that allows and denies what is needed)


def test_bi22_7_a_not_action_allow_that_covers_the_need_is_no_gap() -> None:
    """BI22-7 (low): ``{"Effect": "Allow", "NotAction": ["iam:*", "sts:*"], "Resource": "*"}`` allows
    every action the roles need (NotAction with Allow: "all of the applicable actions or services that
    are not listed are allowed",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html), and
    this live boundary keeps REQUIRED's metrics Allow and its Deny; boundary_gaps reports every Allow as
    missing."""
    live = {
        "Statement": [
            {"Effect": "Allow", "NotAction": ["iam:*", "sts:*"], "Resource": "*"},
            REQUIRED["Statement"][1],
            REQUIRED["Statement"][3],
        ]
    }
    assert evaluates_allowed(live, "lambda:InvokeFunction", RUNBOOK_IN_B)
    # What it does not keep is the namespace fence: the NotAction Allow lets a role write any
    # namespace, which is the one line the check reports (the fence README says the boundary carries).
    assert boundary_gaps(REQUIRED, live, REGIONS) == [
        'allowed without its condition: cloudwatch:PutMetricData on * (needs {"StringEquals": '
        '{"cloudwatch:namespace": ["Pilotlight/Failover/a-b"]}}) in us-east-1, us-west-2'
    ]


def test_bi22_7_a_deny_split_over_two_statements_is_no_gap() -> None:
    """BI22-7 (low): IAM denies a request if any Deny statement matches it
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html); a live
    boundary denying ``iam:*`` and ``sts:*`` in two statements denies what NoIamNoSts denies, and
    boundary_gaps reports "missing Deny NoIamNoSts"."""
    live = copy.deepcopy(REQUIRED)
    live["Statement"][3]["Action"] = ["iam:*"]
    live["Statement"].append({"Effect": "Deny", "Action": "sts:*", "Resource": "*"})
    assert boundary_gaps(REQUIRED, live, REGIONS) == []


# --------------------------------------------------------------------------------------------------
# BI22-8: the writer instance the failover creates carries no deployment tag: the tag Deny does not see it


@pytest.fixture
def aurora_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The runbook tests' world (tests/lambdas/failover/conftest.py ``make_world``) in aurora-global mode,
    under a moto of this test's own (the runbook tests' moto is module-scoped)."""
    from botocore.retries.bucket import TokenBucket
    from botocore.retries.standard import ExponentialBackoff

    from automation.emulator import patch_moto
    from tests.lambdas.failover.faults import moto_respects_faults
    from tests.lambdas.failover.harness import HealthServer, new_session
    from tests.lambdas.failover.world import build_world

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(TokenBucket, "acquire", lambda self, amount=1, block=True: True)
    undo_gaps, undo_faults = patch_moto(), moto_respects_faults()
    health = HealthServer()
    health.set("/primary", 503, {"region": "us-east-1", "error": "no healthy targets"})
    try:
        with mock_aws():
            world = build_world(
                "aurora-global",
                app="bi22shop",
                primary_health_url=health.url("/primary"),
                dr_health_url=health.url("/dr"),
                lag_metrics=True,
                encrypted=False,
                session=new_session(),
                clients_cache={},
            )
            health.routes["/dr"] = world.dr_health
            health.routes["/primary"] = world.primary_health
            yield world
    finally:
        health.close()
        undo_faults()
        undo_gaps()


def test_bi22_8_the_failover_s_new_writer_is_not_a_staging_deployer_s_to_delete(aurora_world: Any) -> None:
    """BI22-8 (high): aurora-global's headless secondary gets its writer from the failover runbook
    (steps.promote_database: ``rds.create_db_instance(DBInstanceIdentifier=<cluster>-failover-1, ...)``
    with no ``Tags``). RDS puts on a new instance the tags of its request (CreateDBInstance ``Tags``:
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html; tags are per
    resource: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_Tagging.html), so
    production's writer in region B carries no ``Environment`` tag until a later ``pulumi up -s dr``
    adopts it (never, after an automated, manual or break-glass failover that is not followed by one).

    The deploy policy allows ``rds:DeleteDBInstance`` on ``db:*`` in both regions, fenced between
    environments only by the tag Deny, whose ``Null`` guard leaves an untagged resource to the Allow
    (automation/iam.py ``other_deployments_denied``); and aws:ResourceTag is what IAM reads for a DB
    instance (Service Authorization Reference, Amazon RDS, "db"). So staging's deployer may delete
    production's only writer in the middle of a disaster; staging's roles, through the boundary's
    ``rds:ModifyDBInstance`` on ``"*"``, may modify it."""
    from tests.automation.test_review_iam_escalation import _staging
    from tests.lambdas.failover.harness import run_book
    from tests.lambdas.failover.world import REGION_B

    assert run_book(aurora_world, "failover").outcome == "done"
    rds = aurora_world.client("rds", REGION_B)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=aurora_world.context["drClusterId"])["DBClusters"][
        0
    ]
    (writer,) = [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]]
    instance = rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]
    tags = {
        t["Key"]: t["Value"]
        for t in rds.list_tags_for_resource(ResourceName=instance["DBInstanceArn"])["TagList"]
    }
    context = {f"aws_ResourceTag/{k}": v for k, v in tags.items() if k in iam.DEPLOYMENT_TAGS}
    # what a production-tagged instance gets from staging's deploy policy: refused
    refused = {"aws_ResourceTag/Application": "pilotlight", "aws_ResourceTag/Environment": "production"}
    assert not allows(_staging(), "rds:DeleteDBInstance", instance["DBInstanceArn"], **refused)
    assert allows(_staging(), "rds:DeleteDBInstance", instance["DBInstanceArn"], **context) is False, (
        f"{writer} (production's writer after the failover) carries {tags or 'no tags'}: staging's "
        "deployer may delete it"
    )


# --------------------------------------------------------------------------------------------------
# BI22-9: README's ``--check-live`` "before an upgrade" is refused to the person who upgrades


@pytest.mark.parametrize("action", ["iam:GetPolicy", "iam:GetPolicyVersion"])
def test_bi22_9_the_deployer_may_read_the_boundary_check_live_reads(action: str) -> None:
    """BI22-9 (low): README: "``iam --for boundary --check-live`` (AWS credentials, reads IAM only) ...
    run it before an upgrade or a change of ``database.mode``", which is the deployer's work. The check
    calls GetPolicy and GetPolicyVersion on the boundary (automation/iam.py ``live_policy_document``;
    both are authorized on the policy:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
    The deploy policy (``iam --for deploy``) allows neither on it (only on the legacy operator policy),
    so for the deployer the command exits 2 with AccessDenied instead of listing the gaps."""
    from tests.automation.test_review_iam_escalation import BOUNDARY, STAGING_TAGS, _staging

    assert allows(_staging(), action, BOUNDARY, **STAGING_TAGS)
