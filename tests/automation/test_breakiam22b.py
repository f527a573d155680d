"""breakiam22b: second adversarial review of issue 12's IAM work, on branch iam22 (dbe41b0).

Each test is a finding and FAILS on iam22: it states what AWS documents and what the code does
instead. Each runs the code under test (``iam_eval.decide``/``condition_holds``, ``boundary_gaps``, the
runbook role's statements from the offline synthesis); none is a stub.

BI22b-1 (high): a live Deny whose Resource overlaps a needed pattern without being an instance of it
(``function:*-runbook`` against ``function:a-b-*``) is not sampled: ``--check-live`` says ok while IAM
denies the runbook function.
BI22b-2 (high): keys IAM always puts in the request context (``aws:PrincipalArn``...) are treated as
absent: a live Deny conditioned on them is skipped.
BI22b-3 (medium): the keys the runbook's own tagging requests carry (``aws:TagKeys``) are treated as
absent: an org-standard "nobody changes the Environment tag" Deny is reported covered, yet it stops
the runbook tagging the database it creates.
BI22b-4 (medium): ``ForAnyValue:`` with a negated operator on an absent key is taken as true; IAM
documents false. A live Allow so conditioned is reported as covering what IAM implicitly denies.
BI22b-5 (low): a JSON boolean or number condition value (IAM's grammar lets them go unquoted) makes the
check crash with a TypeError instead of reporting.
BI22b-6 (medium): the runbook role may tag its new Aurora writer and the failback replica with any
*value* of the program's tag keys (only ``aws:TagKeys`` is fenced, no ``aws:RequestTag/...``): it may
write another deployment's Environment on its own instance and so hand it to that deployment's
deployer (and out of its own deployer's reach). The boundary does not fence it either: it allows
rds:AddTagsToResource on ``"*"`` (RolesOnStar) and its tag Deny reads only existing resource tags.
BI22b-7 (low): TagKeptSnapshots lets staging's runbook role tag production's kept Aurora snapshot
copies (``unplanned-global-failover-*``, any key, any value); only the boundary's tag Deny stops it.
BI22b-8 (medium): a live Deny whose Resource carries a policy variable (``${aws:RequestedRegion}``) is
matched as literal text: never applies, ``--check-live`` says ok.
BI22b-9 (high): staging's deployer may create an instance under production's failover writer name
(``<dr cluster>-failover-1``, fixed and so predictable); production's failover then cannot give region
B's cluster a writer.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from automation import iam_eval
from automation.iam_boundary import boundary_gaps
from automation.iam_eval import Decision, condition_holds, decide
from components.runbook_iam import RunbookTargets, account_of, runbook_statements
from lambdas.failover.names import REQUIRED_TAG_KEYS
from tests.automation.test_boundary_live import REGIONS, REQUIRED
from tests.automation.test_breakiam22 import aurora_world  # noqa: F401  (the fixture BI22b-9 runs in)

RUNBOOK_IN_B = "arn:aws:lambda:us-west-2:111122223333:function:a-b-runbook"
"""The deployment's runbook function in region B: inside REQUIRED's ``function:a-b-*``."""


def _with(*statements: dict[str, Any], base: dict[str, Any] = REQUIRED) -> dict[str, Any]:
    live = copy.deepcopy(base)
    live["Statement"].extend(copy.deepcopy(list(statements)))
    return live


def test_bi22b_1_a_live_deny_overlapping_a_needed_pattern_is_a_gap() -> None:
    """BI22b-1 (high). A Resource ``*`` matches any characters of its segment
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html, "Using
    wildcards in resource ARNs"), so ``function:*-runbook`` denies ``function:a-b-runbook`` and an
    explicit Deny wins (reference_policies_evaluation-logic.html). ``_requests`` only samples a live
    Deny's resource when the needed pattern matches the Deny's *instance* (``pilotlight-check-runbook``
    is not ``a-b-*``), so the overlap is never asked and boundary_gaps reports nothing."""
    deny = {
        "Effect": "Deny",
        "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:*:*:function:*-runbook",
    }
    live = _with(deny)
    # IAM's answer for the runbook function (iam_eval agrees once the request is asked):
    assert decide(iam_eval.statements_of(live), "lambda:InvokeFunction", RUNBOOK_IN_B, {}) is Decision.DENY
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


@pytest.mark.parametrize(
    "condition",
    [
        {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}},
        {"StringEquals": {"aws:PrincipalType": "AssumedRole"}},
        {"Null": {"aws:PrincipalAccount": "false"}},
    ],
    ids=["PrincipalArn", "PrincipalType", "PrincipalAccount"],
)
def test_bi22b_2_a_live_deny_on_keys_every_request_carries_is_a_gap(condition: dict[str, Any]) -> None:
    """BI22b-2 (high). aws:PrincipalArn, aws:PrincipalAccount and aws:PrincipalType are, per their
    Availability, "always included in the request context for all signed requests"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html); the
    roles' requests are signed by an assumed role. So this Deny applies to every request the roles make
    and IAM denies the failover. The check builds request contexts with only aws:RequestedRegion and the
    resource tags, so a key it never supplies is absent, the positive operator fails, the Deny is
    skipped and boundary_gaps says ok. (A key the check cannot know should make the decision UNKNOWN,
    as iam_eval's docstring promises for what it cannot evaluate.)"""
    live = _with({"Effect": "Deny", "Action": "lambda:*", "Resource": "*", "Condition": condition})
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


def test_bi22b_3_a_live_deny_of_changing_the_environment_tag_is_a_gap() -> None:
    """BI22b-3 (medium). aws:TagKeys is in the context of a tagging request ("the tag keys that are
    passed in the request", reference_policies_condition-keys.html#condition-keys-tagkeys); the runbook
    tags the database it creates with REQUIRED_TAG_KEYS (Environment among them;
    lambdas/failover/promotion.py _inherited_tags; rds:AddTagsToResource is in the boundary, Sid
    RolesOnStar). A common guard "no one changes Environment" (ForAnyValue:StringEquals aws:TagKeys
    Environment) therefore denies the runbook's tagging step, and the check, which never puts
    aws:TagKeys in a request, reports nothing."""
    required = _with({"Sid": "Tag", "Effect": "Allow", "Action": "rds:AddTagsToResource", "Resource": "*"})
    guard = {
        "Effect": "Deny",
        "Action": "rds:AddTagsToResource",
        "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["Environment"]}},
    }
    assert "Environment" in REQUIRED_TAG_KEYS
    # IAM's answer for the request the runbook makes (one of its tag keys is Environment):
    assert condition_holds(guard["Condition"], {"aws:TagKeys": "Environment"}) is True
    assert boundary_gaps(required, _with(guard, base=required), REGIONS) != []


def test_bi22b_4_for_any_value_with_a_negated_operator_on_an_absent_key_is_false() -> None:
    """BI22b-4 (medium). ForAnyValue: "For no matching context key or a null dataset, the condition
    returns false" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html);
    the qualifier decides before the operator's negation does. condition_holds returns True because
    ``negated`` short-circuits an absent key (``if_exists or negated or ...``). Consequence: a live
    Allow of lambda:InvokeFunction under ``ForAnyValue:StringNotEquals aws:TagKeys`` (an invoke carries
    no tag keys) allows nothing in IAM, and boundary_gaps calls it covered."""
    condition = {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["x"]}}
    assert condition_holds(condition, {}) is False
    live = copy.deepcopy(REQUIRED)
    for st in live["Statement"]:
        if st.get("Sid") == "RolesOnTheirResources":
            st["Condition"] = condition
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


@pytest.mark.parametrize(
    "condition",
    [
        {"Null": {"aws:ResourceTag/Environment": True}},
        {"StringEquals": {"aws:ResourceTag/Generation": 2}},
    ],
    ids=["boolean", "number"],
)
def test_bi22b_5_an_unquoted_boolean_or_number_condition_value_does_not_crash(
    condition: dict[str, Any],
) -> None:
    """BI22b-5 (low). IAM's policy grammar: "Values are enclosed in quotation marks. Quotation marks are
    optional for numeric and Boolean values" and basic JSON types are RFC 7159's
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html); IAM returns the
    document as written (GetPolicyVersion). iam_eval.as_list iterates a non-string scalar
    (``[str(v) for v in value]``): TypeError, so ``--check-live`` dies with a traceback on such a live
    boundary instead of reporting."""
    live = _with(
        {"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": "*", "Condition": condition}
    )
    context = {"aws:RequestedRegion": "us-west-2", "aws:ResourceTag/Generation": "2"}
    decide(iam_eval.statements_of(live), "lambda:InvokeFunction", RUNBOOK_IN_B, context)
    boundary_gaps(REQUIRED, live, REGIONS)


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_bi22b_6_the_runbook_may_not_tag_its_database_with_another_deployments_environment(mode: str) -> None:
    """BI22b-6 (medium). The deploy policy and the boundary tell deployments apart by the value of
    aws:ResourceTag/Environment (DenyOtherEnvironment: StringNotEquals the own value). The runbook's
    tagging statements (TagWriterOfHeadlessSecondary, TagFailbackReplica) fence only the keys
    (``ForAllValues:StringEquals aws:TagKeys``), so IAM allows the request with
    aws:RequestTag/Environment set to another deployment's value ("aws:RequestTag/tag-key ... compare the
    tag key-value pair that was passed in the request", reference_policies_condition-keys.html): the
    role can move its own new database into production's fence (production's deployer may then delete
    or modify it; staging's no longer can). Fencing the values needs
    ``StringEquals aws:RequestTag/<key>: <own value>`` for each required key."""
    from automation.synth import synthesize

    overrides = {
        "pilotlight:database": {"mode": mode, **({"engine": "postgres"} if mode == "rds-replica" else {})}
    }
    dr = synthesize("dr", overrides, primary_overrides=overrides)
    runbook = dr.outputs["runbook"]
    statements = runbook_statements(RunbookTargets.from_context(runbook))
    sid = {"aurora-global": "TagWriterOfHeadlessSecondary", "rds-replica": "TagFailbackReplica"}[mode]
    tagging = [s for s in statements if s.get("Sid") == sid]
    assert tagging, f"{sid}: the runbook's statement that tags the database it creates"
    for statement in tagging:
        for resource in iam_eval.as_list(statement["Resource"]):
            arn = resource.replace("*", "x")
            request = {
                "aws:RequestedRegion": arn.split(":")[3] or "us-west-2",
                "aws:TagKeys": "Environment",
                "aws:RequestTag/Environment": "someone-elses-environment",
            }
            assert decide(statements, "rds:AddTagsToResource", arn, request) is not Decision.ALLOW, statement[
                "Sid"
            ]


def test_bi22b_7_staging_s_runbook_role_may_not_tag_production_s_kept_snapshots() -> None:
    """BI22b-7 (low). TagKeptSnapshots allows rds:AddTagsToResource, with no Condition, on
    ``cluster-snapshot:unplanned-global-failover-*`` in region A: every deployment's kept copy in the
    account and region (the copy is ``kept_snapshot_id`` of Aurora's
    ``rds:unplanned-global-failover-<cluster>-...``, lambdas/failover/names.py), any tag key, any value.
    The copy's identifier starts with the deployment's cluster identifier, so the statement can name
    ``unplanned-global-failover-<primaryClusterId>*`` (the identifier cut by ``fit`` keeps its head).
    Today only the boundary's tag Deny keeps staging's runbook from re-tagging production's copy (and
    an untagged copy, e.g. of a cluster made without CopyTagsToSnapshot, not even that). A resource ARN
    with ``*`` matches any characters of its segment
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html)."""
    from automation.synth import synthesize
    from lambdas.failover.names import kept_snapshot_id

    def runbook(environment: str) -> dict[str, Any]:
        overrides = {"pilotlight:environment": environment, "pilotlight:database": {"mode": "aurora-global"}}
        return synthesize("dr", overrides, primary_overrides=overrides).outputs["runbook"]

    staging, production = runbook("staging"), runbook("production")
    statements = runbook_statements(RunbookTargets.from_context(staging))
    source = f"rds:unplanned-global-failover-{production['primaryClusterId']}-2026-12-01-16-20"
    region = staging["primaryRegion"]
    account = account_of(staging["notifyTopicArn"])
    arn = f"arn:aws:rds:{region}:{account}:cluster-snapshot:{kept_snapshot_id(source)}"
    assert production["primaryClusterId"] != staging["primaryClusterId"]
    request = {
        "aws:RequestedRegion": region,
        "aws:TagKeys": "Environment",
        "aws:RequestTag/Environment": "staging",
    }
    assert decide(statements, "rds:AddTagsToResource", arn, request) is not Decision.ALLOW


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:lambda:${aws:RequestedRegion}:*:function:*",
        "arn:aws:lambda:*:${aws:PrincipalAccount}:function:*",
    ],
    ids=["RequestedRegion", "PrincipalAccount"],
)
def test_bi22b_8_a_live_deny_naming_its_resource_with_a_policy_variable_is_a_gap(resource: str) -> None:
    """BI22b-8 (medium). In policy evaluation a policy variable is replaced by the request's value of
    its context key, and identity-based policies used as permissions boundaries support them
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html, "Using variables
    in policies"); any single-valued context key may be one
    (reference_policies_condition-single-vs-multi-valued-context-keys.html, "Key points").
    ``function:*`` in the requested region (or the caller's account) is every function the roles
    invoke, so IAM denies the failover. iam_eval matches ``${...}`` as literal text (``re.escape``), the
    Deny never matches, and boundary_gaps says ok; a variable the check cannot substitute should make
    the decision UNKNOWN."""
    live = _with({"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": resource})
    assert boundary_gaps(REQUIRED, live, REGIONS) != []


PREDICTABLE_SUFFIXES = (
    "failover",
    "failover-0",
    "failover-1",
    "failover-2",
    "failover-3",
    "writer",
    "writer-1",
)
"""Names a deployer of another environment could create ahead of time under production's region-B cluster:
the fixed name earlier runbooks used (``<cluster>-failover-1``) and its obvious neighbours."""


def test_bi22b_9_a_staging_deployer_cannot_take_production_s_failover_writer_name(aurora_world: Any) -> None:  # noqa: F811
    """BI22b-9 (high). The failover gave a headless Aurora secondary its writer under a fixed name,
    ``<dr cluster>-failover-1``. DB instance identifiers are unique per account and region
    (CreateDBInstance answers ``DBInstanceAlreadyExists``, "The user already has a DB instance with the
    given identifier": https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html),
    and staging's deploy policy allows ``rds:CreateDBInstance`` on ``db:*`` in both regions with
    nothing fencing a new, untagged name (the tag Deny reads aws:ResourceTag, absent on a create). So
    staging's deployer can create a standalone instance under production's failover name ahead of
    time, and production's failover then stops at promotion (or, before that refusal, failed the
    global database over to a cluster with no instance): a DR product that a squatted name keeps
    from failing over. Whatever names staging can predict are taken, the failover must end with
    region B's cluster holding a writer of its own (DBClusterMembers, "The list of DB instances that
    make up the DB cluster": https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html)
    and the global writer in region B, and leave staging's instances alone."""
    from tests.automation.test_review_iam import allows
    from tests.automation.test_review_iam_escalation import _staging
    from tests.lambdas.failover.harness import run_book
    from tests.lambdas.failover.world import REGION_B

    world = aurora_world
    cluster_id = world.context["drClusterId"]
    rds = world.client("rds", REGION_B)
    account = world.context["drClusterArn"].split(":")[4]
    staging_tags = {"aws_RequestTag/Environment": "staging", "aws_RequestTag/Application": "pilotlight"}
    squatted = [f"{cluster_id}-{suffix}" for suffix in PREDICTABLE_SUFFIXES]
    for name in squatted:
        assert allows(
            _staging(), "rds:CreateDBInstance", f"arn:aws:rds:{REGION_B}:{account}:db:{name}", **staging_tags
        )
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="squatter",
            MasterUserPassword="squatter-password-1",
            Tags=[{"Key": "Environment", "Value": "staging"}, {"Key": "Application", "Value": "pilotlight"}],
        )

    result = run_book(world, "failover")

    members = world.cluster_members(REGION_B, cluster_id)
    assert result.outcome == "done" and len(members) == 1, (
        f"failover {result.outcome} ({result.reason}): region B's cluster {cluster_id} holds {members or 'no instance'} "
        f"with {', '.join(squatted)} taken by staging"
    )
    (writer,) = members
    assert writer not in squatted and world.db(REGION_B, writer)["DBClusterIdentifier"] == cluster_id, writer
    assert world.global_writer() == world.context["drClusterArn"], "the global writer is region B's cluster"
    for name in squatted:  # staging's instances are not the runbook's to touch
        left = world.db(REGION_B, name)
        assert left is not None and not left.get("DBClusterIdentifier"), (name, left)
