"""The deploy policy's rules behind review breakiam25's fixes (BI25-2, -3, -4, -6), each over its class:

- ``--state-backend``: README's S3 state backend, its objects and nothing else, and a clear error for a bad
  backend (BI25-2);
- ``iam:PassRole``: every role of the stacks to the services its trust policy names, to no other (BI25-3);
- dependent actions: a dependent write of the Service Authorization Reference only when a registered
  resource sets the request parameter that needs it, and none unclassified (BI25-4);
- reads whose provider request names no resource stay on the type's ``*`` (BI25-6), the rest by name.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from typing import Any

import pytest

from automation import iam, iam_eval, synth
from automation.iam_eval import Decision
from tests.components.conftest import synthesize

ACCOUNT = "111122223333"


def _pair(overrides: dict[str, Any] | None = None) -> list[synth.Synthesis]:
    primary = synthesize("primary", overrides or {})
    return [primary, synthesize("dr", {**(overrides or {}), "dr:autoFailover": True})]


def _statements(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [st for d in documents for st in d["Statement"]]


# --------------------------------------------------------------------------------------------------
# BI25-2: the S3 state backend


def test_the_state_backend_statements_allow_pulumi_s_objects_and_nothing_else() -> None:
    """Pulumi's DIY backend keeps the stacks' checkpoints, history, backups and locks under
    ``<bucket>[/<prefix>]/.pulumi/`` ("Using a DIY Backend",
    https://www.pulumi.com/docs/iac/guides/basics/using-a-diy-backend/) and lists them (ListObjectsV2 is
    ``s3:ListBucket`` on the bucket). The login URL's query (``?region=``) is no part of the bucket."""
    statements = iam.state_backend_statements("s3://state-bucket-b/team-a?region=us-west-2")
    context = {"aws:RequestedRegion": "us-west-2"}
    checkpoint = "arn:aws:s3:::state-bucket-b/team-a/.pulumi/stacks/pilotlight/dr.json"
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert iam_eval.decide(statements, action, checkpoint, context) is Decision.ALLOW, action
    assert (
        iam_eval.decide(statements, "s3:ListBucket", "arn:aws:s3:::state-bucket-b", context) is Decision.ALLOW
    )
    refused = [
        ("s3:GetObject", "arn:aws:s3:::state-bucket-b/team-a/other/secrets.json"),  # outside .pulumi/
        ("s3:GetObject", "arn:aws:s3:::state-bucket-b/.pulumi/stacks/pilotlight/dr.json"),  # another prefix
        ("s3:GetObject", "arn:aws:s3:::state-bucket-c/team-a/.pulumi/stacks/pilotlight/dr.json"),
        ("s3:DeleteBucket", "arn:aws:s3:::state-bucket-b"),
        ("s3:PutBucketPolicy", "arn:aws:s3:::state-bucket-b"),
    ]
    allowed = [r for r in refused if iam_eval.decide(statements, *r, context) is Decision.ALLOW]
    assert allowed == []
    assert iam.state_backend_statements("state-bucket-b") == iam.state_backend_statements(
        "s3://state-bucket-b"
    )


@pytest.mark.parametrize(
    "backend",
    [
        "gs://state-bucket-b",  # another cloud's backend
        "s3://State-Bucket",  # upper case
        "s3://ab",  # too short
        "s3://" + "a" * 64,  # too long
        "s3://state..bucket",  # adjacent dots
        "s3://192.168.5.4",  # an IP address
        "s3://xn--state-bucket",  # a reserved prefix
        "s3://state-bucket-s3alias",  # a reserved suffix
        "s3://-state-bucket",  # not starting with a letter or digit
        "s3://state-bucket/team a",  # a space in the prefix
    ],
)
def test_a_bad_state_backend_is_one_line_before_any_synthesis(backend: str) -> None:
    """S3's bucket naming rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
    the CLI refuses any other name with one line and exit status 2, before a minute of syntheses."""
    from automation.iam import main

    with pytest.raises(iam.IamInputError, match="--state-backend"):
        iam.state_backend_statements(backend)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["--for", "deploy", "--account", ACCOUNT, "--state-backend", backend]) == 2
    assert err.getvalue().startswith("error: --state-backend") and err.getvalue().count("\n") == 1


def test_the_state_backend_is_for_the_deploy_policy_only() -> None:
    from automation.iam import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["--for", "operator", "--state-backend", "state-bucket-b"]) == 2
    assert "--state-backend is for --for deploy" in err.getvalue()


def test_the_deploy_documents_carry_the_state_backend_and_still_fit() -> None:
    syntheses = _pair()
    without = iam.deploy_policies(syntheses, ACCOUNT)
    documents = iam.deploy_policies(syntheses, ACCOUNT, "s3://state-bucket-b")
    checkpoint = "arn:aws:s3:::state-bucket-b/.pulumi/stacks/pilotlight/primary.json"
    context = {"aws:RequestedRegion": "us-west-2"}
    assert iam_eval.decide(_statements(without), "s3:GetObject", checkpoint, context) is not Decision.ALLOW
    assert iam_eval.decide(_statements(documents), "s3:GetObject", checkpoint, context) is Decision.ALLOW
    assert all(iam._size(d) <= iam.MANAGED_POLICY_MAX for d in documents)


# --------------------------------------------------------------------------------------------------
# BI25-3: PassRole to each role's own service


def test_every_role_is_passed_to_the_services_it_trusts_and_to_no_other() -> None:
    """IAM User Guide, id_roles_use_passrole.html: ``iam:PassedToService`` is the service principal the
    role is passed to. Each of the stacks' roles (under every configuration the deploy policy is made
    for) may be passed to the services of its trust policy, and to none of the others the program
    uses: the runbook's Lambda role not to EC2, the instance role not to Lambda."""
    syntheses = _pair({"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}})
    statements = _statements(iam.deploy_policies(syntheses, ACCOUNT))
    roles = [r for s in syntheses for r in s.by_type("aws:iam/role:Role")]
    services = {svc for r in roles for svc in iam.trusted_services(r)}
    assert {"lambda.amazonaws.com", "ec2.amazonaws.com", "states.amazonaws.com"} <= services
    wrong: list[str] = []
    for role in roles:
        arn = f"arn:aws:iam::{ACCOUNT}:role{role.inputs['path']}{role.inputs.get('name') or role.name + '-0a1b2c3'}"
        trusted = set(iam.trusted_services(role))
        for service in sorted(services):
            context = {"aws:RequestedRegion": "us-east-1", "iam:PassedToService": service}
            allowed = iam_eval.decide(statements, "iam:PassRole", arn, context) is Decision.ALLOW
            if allowed != (service in trusted):
                wrong.append(f"{role.name} to {service}: {'allowed' if allowed else 'denied'}")
    assert wrong == []


def test_a_role_whose_trust_policy_is_unknown_offline_is_refused() -> None:
    (role, *_) = _pair()[0].by_type("aws:iam/role:Role")
    with pytest.raises(KeyError, match="no trust policy"):
        iam.trusted_services(replace(role, inputs={**role.inputs, "assumeRolePolicy": None}))


# --------------------------------------------------------------------------------------------------
# BI25-4: dependent writes only for the request parameters that need them


def _base(syntheses: list[synth.Synthesis]) -> set[str]:
    return {a for s in syntheses for r in s.aws_resources() for a in iam.DEPLOY_ACTIONS[r.type]}


@pytest.mark.parametrize(
    ("overrides", "added", "absent"),
    [
        # Aurora: the clusters take a final snapshot on delete; no RDS instance of their own.
        ({}, {"rds:CreateDBClusterSnapshot"}, {"rds:CreateDBSnapshot"}),
        # rds-replica: region A's instance takes a final snapshot (FinalDBSnapshotIdentifier).
        (
            {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}},
            {"rds:CreateDBSnapshot"},
            {"rds:CreateDBClusterSnapshot"},
        ),
    ],
    ids=["aurora-global", "rds-replica"],
)
def test_a_dependent_write_follows_the_parameter_that_needs_it(
    overrides: dict[str, Any], added: set[str], absent: set[str]
) -> None:
    syntheses = _pair(overrides)
    actions = iam.with_dependent_actions(_base(syntheses), syntheses)
    never = {"rds:CreateTenantDatabase", "rds:DeleteTenantDatabase", "secretsmanager:RotateSecret"}
    never.add("states:PublishStateMachineVersion")  # the runbooks' machines publish no versions
    assert added <= actions and not (absent | never) & actions, sorted(actions - _base(syntheses))
    # Reads stay (private DNS of the interface endpoints associates their zones: a write, needed).
    assert "route53:AssociateVPCWithHostedZone" in actions


def test_a_resource_that_sets_the_parameter_gets_its_dependent_write() -> None:
    """The rule reads the registered inputs: an RDS-managed master password (ManageMasterUserPassword)
    would need secretsmanager:RotateSecret, and a state machine that publishes versions
    states:PublishStateMachineVersion."""
    primary, dr = _pair()
    (cluster, *_) = primary.by_type("aws:rds/cluster:Cluster")
    (machine, *_) = dr.by_type("aws:sfn/stateMachine:StateMachine")
    managed = replace(cluster, inputs={**cluster.inputs, "manageMasterUserPassword": True})
    published = replace(machine, inputs={**machine.inputs, "publish": True})
    changed = [
        replace(primary, resources=[managed if r is cluster else r for r in primary.resources]),
        replace(dr, resources=[published if r is machine else r for r in dr.resources]),
    ]
    actions = iam.with_dependent_actions(_base(changed), changed)
    assert {"secretsmanager:RotateSecret", "states:PublishStateMachineVersion"} <= actions
    unchanged = [primary, dr]
    assert not {"secretsmanager:RotateSecret", "states:PublishStateMachineVersion"} & (
        iam.with_dependent_actions(_base(unchanged), unchanged)
    )


def test_an_unclassified_dependent_write_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    syntheses = _pair()
    table = {k: v for k, v in iam.FEATURE_DEPENDENTS.items() if k != "rds:CreateDBClusterSnapshot"}
    monkeypatch.setattr(iam, "FEATURE_DEPENDENTS", table)
    with pytest.raises(KeyError, match="rds:CreateDBClusterSnapshot"):
        iam.with_dependent_actions(_base(syntheses), syntheses)


# --------------------------------------------------------------------------------------------------
# BI25-6: un-narrowed reads


def test_only_the_unnamed_reads_leave_the_named_resources_and_only_as_reads() -> None:
    """``rds:DescribeGlobalClusters`` is on ``global-cluster:*`` (the provider's filtered read names none);
    every write on a global cluster stays on the deployment's own by name."""
    privileges, _ = iam._sar()
    assert all(privileges[a.lower()]["access_level"] in iam.READ_ACCESS_LEVELS for a in iam.UNNAMED_READS)
    statements = _statements(iam.deploy_policies(_pair(), ACCOUNT))
    other = f"arn:aws:rds::{ACCOUNT}:global-cluster:payments-production-global"
    context = {"aws:RequestedRegion": "us-east-1"}
    assert iam_eval.decide(statements, "rds:DescribeGlobalClusters", other, context) is Decision.ALLOW
    for write in ("rds:ModifyGlobalCluster", "rds:DeleteGlobalCluster", "rds:RemoveFromGlobalCluster"):
        assert iam_eval.decide(statements, write, other, context) is not Decision.ALLOW, write
    own = f"arn:aws:rds::{ACCOUNT}:global-cluster:pilotlight-production-global"
    assert iam_eval.decide(statements, "rds:DeleteGlobalCluster", own, context) is Decision.ALLOW
    assert json.dumps(statements).count("global-cluster:*") == 1


# --------------------------------------------------------------------------------------------------
# size: the largest combination


@pytest.mark.parametrize("mode", ["aurora-global", "rds-replica"])
def test_the_longest_names_with_the_user_s_hosted_zone_fit_one_role(mode: str) -> None:
    """The largest deploy policy: the longest accepted names (tests/components/test_naming.longest) with
    the user's hosted zone (``routing.hostedZoneId``: each record name is listed in the Route 53 condition,
    automation/iam.py ``_records_in_own_zones``). At most ten documents (IAM's default quota of managed
    policies per role), each within 6,144 characters
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)."""
    from tests.automation.test_breakiam24 import _set_pairs
    from tests.components.test_naming import ENVS, longest

    overrides = longest(ENVS[0], mode)
    overrides["pilotlight:routing"] = {
        **overrides["pilotlight:routing"],
        "hostedZoneId": "Z0123456789ABCDEFGHIJ",
    }
    documents = iam.policies("deploy", account=ACCOUNT, overrides=_set_pairs(overrides), outputs=None)
    sizes = [iam._size(d) for d in documents]
    assert len(documents) <= 10 and max(sizes) <= iam.MANAGED_POLICY_MAX, sizes
    statements = _statements(documents)
    assert any("hostedzone/Z0123456789ABCDEFGHIJ" in json.dumps(st["Resource"]) for st in statements) or any(
        iam.RECORD_NAMES_KEY in json.dumps(st.get("Condition", {})) for st in statements
    ), "the user's zone is the one the policy is made for"
