"""breakiam26: adversarial review of fixiam25's deploy-policy changes (issue 12) as they stand on int26.

Each test is one finding, marked ``xfail(strict=True)`` until it was fixed: it states what AWS (or the
provider) documents and what the printed policy does instead, and fails for that reason. Each runs the
code under test (``automation/iam.py``) and the project's IAM evaluation (``automation/iam_eval.py``).

BI26-1 (low): ``--state-backend s3://<bucket>/<prefix>`` accepts ``*`` in the prefix (the prefix pattern
``[\\w!\\-.*'()/]*`` follows S3's safe key characters, where ``*`` is a literal) and writes it into the
``Resource`` ARN unchanged, where IAM reads it as a wildcard ("IAM JSON policy elements: Resource", "Using
wildcards in resource ARNs": https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
``s3://state-bucket-b/*`` (a prefix literally named ``*``) grants read, write and delete of every other
team's ``<any prefix>/.pulumi/`` state in the bucket. IAM's literal for ``*`` in a Resource is the policy
variable ``${*}`` ("Special characters": https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-specialchars);
or the prefix is refused.

BI26-2 (medium): the deploy policy allows no tagging of the Aurora global database. pulumi-aws v7
``aws.rds.GlobalCluster`` is a tagged resource (``tags``/``tags_all``: "Map of tags assigned to the
resource, including those inherited from the provider ``default_tags`` configuration block", the installed
SDK's docstring); the provider sends the default tags in ``CreateGlobalCluster`` (``Tags: getTagsIn(ctx)``)
and updates them through the transparent tagging of ``@Tags(identifierAttribute="arn")``, i.e.
``AddTagsToResource`` / ``RemoveTagsFromResource`` with ``ResourceName`` = the global cluster's ARN
(hashicorp/terraform-provider-aws internal/service/rds/global_cluster.go; ``aws rds create-global-cluster
--tags``: https://docs.aws.amazon.com/cli/latest/reference/rds/create-global-cluster.html). The program's
providers carry default tags (components/providers.py) that include the user's ``pilotlight:tags``;
``DEPLOY_ACTIONS["aws:rds/globalCluster:GlobalCluster"]`` has no tagging action and the rds tagging
statements name clusters, instances, groups and snapshots, not ``global-cluster:``. A change of
``pilotlight:tags`` stops ``pulumi up -s primary`` at the global database, implicitly denied; whether
RDS also checks ``rds:AddTagsToResource`` for the create's ``Tags`` the Service Authorization Reference
does not say (it lists no tagging condition key or dependent action for ``CreateGlobalCluster``).

BI26-3 (low): with ``routing.alertEmail`` set (a documented key, README's configuration table) the deploy
policy allows ``sns:Unsubscribe`` and ``sns:SetSubscriptionAttributes`` on ``"*"`` (merged into the
``OnStar`` statement, limited only to the stacks' regions): the Service Authorization Reference defines no
resource type for them (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html),
so ``"*"`` is what AWS requires, but README's list of the deploy policy's writes left on ``"*"`` ("plus
``kms:CreateKey``, ``route53:CreateHealthCheck``/``CreateHostedZone``, ...") names neither, and the stderr
note of writes no statement can fence between deployments (``UNFENCEABLE_IN_ONE_ACCOUNT``) does not name
them: a subscription carries no tags, so the tag Deny's ``Null`` guard leaves it to the Allow, and a
staging deployer may unsubscribe production's alarm e-mail in the same regions (its alarms then notify no
one) without the printed policy or README saying so. Issue 12: "The closing note lists every IAM statement
left on ``*`` and why AWS requires it."

BI26-4 (medium): README: an S3 state backend "encrypted with a customer-managed KMS key needs that key's use
too, which the bucket's administrator grants". S3 asks the caller's ``kms:GenerateDataKey`` for a PutObject
and ``kms:Decrypt`` for a GetObject of an SSE-KMS object ("Using server-side encryption with AWS KMS keys",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html), authorized on the key with
its tags as ``aws:ResourceTag/...`` (https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html).
The printed documents' ``DenyOtherApplication`` / ``DenyOtherEnvironment`` (``kms:*`` on ``"*"``) deny every
key tagged with another ``Application`` or ``Environment``, and a state key is typically shared and tagged
so (``Environment=shared``): an explicit Deny in the deployer's own policy wins over any key-policy grant
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), so the
administrator cannot grant it, ``--state-backend`` has no way to name the key, and ``pulumi up`` cannot read
or write its checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from automation import iam, iam_eval, synth
from automation.iam_eval import Decision
from tests.components.conftest import synthesize

ACCOUNT = "111122223333"
README = Path(__file__).resolve().parents[2] / "README.md"


def _pair(overrides: dict[str, Any] | None = None) -> list[synth.Synthesis]:
    primary = synthesize("primary", overrides or {})
    return [primary, synthesize("dr", {**(overrides or {}), "dr:autoFailover": True})]


# --------------------------------------------------------------------------------------------------
# BI26-1


def test_bi26_1_a_state_backend_prefix_grants_only_its_own_state() -> None:
    """The prefix names one place in the bucket; the statements grant it and no other team's state."""
    backend = "s3://state-bucket-b/*"
    try:
        statements = iam.state_backend_statements(backend)
    except iam.IamInputError:
        return  # refusing a prefix IAM cannot write literally is a fix too
    # Its own checkpoint stays allowed, whatever the rendering of the literal '*'.
    objects = next(st for st in statements if "s3:GetObject" in st["Action"])
    resource = str(objects["Resource"])
    # IAM's wildcards are '*' and '?' outside the policy variables ${*} / ${?}, and the trailing '/*'
    # (every object under .pulumi/) is the only one the statement means.
    body = re.sub(r"\$\{[*?$]\}", "", resource.removesuffix("/*"))
    other_team = "arn:aws:s3:::state-bucket-b/team-c/.pulumi/stacks/payments/production.json"
    context = {"aws:RequestedRegion": "us-west-2"}
    decision = iam_eval.decide(statements, "s3:DeleteObject", other_team, context)
    assert "*" not in body and "?" not in body, (
        f"{backend}: Resource {resource} lets s3:DeleteObject reach {other_team} ({decision.name})"
    )


# --------------------------------------------------------------------------------------------------
# BI26-2


def test_bi26_2_the_deploy_policy_lets_the_provider_tag_the_global_database() -> None:
    import pulumi_aws

    # The premise: default tags reach the global cluster (a tagged resource of pulumi-aws v7).
    assert hasattr(pulumi_aws.rds.GlobalCluster, "tags_all")
    syntheses = _pair()
    (glob,) = syntheses[0].by_type("aws:rds/globalCluster:GlobalCluster")
    arn = f"arn:aws:rds::{ACCOUNT}:global-cluster:{glob.inputs['globalClusterIdentifier']}"
    statements = [st for d in iam.deploy_policies(syntheses, ACCOUNT) for st in d["Statement"]]
    # RDS is regional; the global cluster's requests go to region A's endpoint (the primary stack's
    # provider), so the request region is region A's.
    context = {"aws:RequestedRegion": glob.region or "us-east-1"}
    assert iam_eval.decide(statements, "rds:CreateGlobalCluster", arn, context) is Decision.ALLOW
    refused = {
        action: iam_eval.decide(statements, action, arn, context).name
        for action in ("rds:AddTagsToResource", "rds:RemoveTagsFromResource")
        if iam_eval.decide(statements, action, arn, context) is not Decision.ALLOW
    }
    assert refused == {}, f"on {arn}: {refused}"


_GLOBAL_TAGGING = ("rds:AddTagsToResource", "rds:RemoveTagsFromResource")


def test_bi26_2_b_the_global_database_s_tagging_names_the_program_s_own_only() -> None:
    """The global cluster's resource type defines no condition key (Service Authorization Reference,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html, "Resource
    types": ``global-cluster`` has none), so the tag Deny cannot see whose one is: only its name in the
    ARN fences it. The tagging the fix grants names ``<app>-<env>-global``: another deployment's global
    database stays untaggable, and a configuration without one (rds-replica) tags no global cluster."""
    other = f"arn:aws:rds::{ACCOUNT}:global-cluster:payments-staging-global"
    context = {"aws:RequestedRegion": "us-east-1"}
    statements = [st for d in iam.deploy_policies(_pair(), ACCOUNT) for st in d["Statement"]]
    reached = [a for a in _GLOBAL_TAGGING if iam_eval.decide(statements, a, other, context) is Decision.ALLOW]
    assert reached == [], f"another deployment's global database {other}: {reached} allowed"
    replica = _pair({"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}})
    assert replica[0].by_type("aws:rds/globalCluster:GlobalCluster") == []  # the premise
    statements = [st for d in iam.deploy_policies(replica, ACCOUNT) for st in d["Statement"]]
    own_name = f"arn:aws:rds::{ACCOUNT}:global-cluster:pilotlight-production-global"
    reached = [
        a for a in _GLOBAL_TAGGING if iam_eval.decide(statements, a, own_name, context) is Decision.ALLOW
    ]
    assert reached == [], f"rds-replica creates no global database, yet {reached} on {own_name}"


# --------------------------------------------------------------------------------------------------
# BI26-3


def _readme_star_list() -> str:
    """README's sentence listing the deploy policy's statements left on ``"*"``."""
    text = " ".join(README.read_text().split())
    start = text.index("the deploy policy's (mostly")
    return text[start : text.index("are limited to the stacks' regions", start)]


def test_bi26_3_every_write_left_on_star_is_the_documented_one() -> None:
    documents = iam.policies(
        "deploy", account=ACCOUNT, overrides=['pilotlight:routing.alertEmail="ops@example.com"'], outputs=None
    )
    privileges, _ = iam._sar()
    on_star = {
        action
        for d in documents
        for st in d["Statement"]
        if st["Effect"] == "Allow" and st["Resource"] == "*"
        for action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
        if privileges[action.lower()]["access_level"] not in iam.READ_ACCESS_LEVELS
    }
    assert {"kms:CreateKey", "route53:CreateHealthCheck"} <= on_star  # README's own entries are seen
    listed = _readme_star_list()
    undocumented = sorted(
        a
        for a in on_star
        if not re.search(rf"`(?:{re.escape(a.split(':')[0])}:)?{re.escape(a.split(':')[1])}`", listed)
    )
    # The ones that act on another deployment's existing resource are also named on stderr.
    note = iam.unfenceable_note(documents)
    unwarned = [
        a for a in ("sns:Unsubscribe", "sns:SetSubscriptionAttributes") if a in on_star and a not in note
    ]
    assert (undocumented, unwarned) == ([], []), (
        f"writes on '*' README does not list: {undocumented}; not in the unfenceable note: {unwarned}"
    )


# --------------------------------------------------------------------------------------------------
# BI26-4


def test_bi26_4_the_state_backend_s_kms_key_is_not_denied_by_the_deploy_documents() -> None:
    statements = [
        st for d in iam.deploy_policies(_pair(), ACCOUNT, "s3://state-bucket-b") for st in d["Statement"]
    ]
    key = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"  # region B's
    # S3 calls KMS for the caller with the object's ARN as the encryption context, or the bucket's with
    # an S3 Bucket Key ("Encryption context":
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context;
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html), which KMS puts in the request
    # context as kms:EncryptionContext:aws:s3:arn
    # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context).
    via_s3 = {
        "aws:RequestedRegion": "us-west-2",
        "kms:ViaService": "s3.us-west-2.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::state-bucket-b/.pulumi/stacks/pilotlight/dr.json",
    }
    # An untagged key is used through S3 (the premise: nothing else in the documents stands in the way).
    assert iam_eval.decide(statements, "kms:Decrypt", key, via_s3) is Decision.ALLOW
    shared = {**via_s3, "aws:ResourceTag/Environment": "shared"}
    denied = [
        action
        for action in ("kms:Decrypt", "kms:GenerateDataKey")
        if iam_eval.decide(statements, action, key, shared) is Decision.DENY
    ]
    assert denied == [], (
        f"the state bucket's key tagged Environment=shared, used through S3: {denied} explicitly denied"
    )
    bucket_key = {**shared, "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::state-bucket-b"}
    denied = [
        action
        for action in ("kms:Decrypt", "kms:GenerateDataKey")
        if iam_eval.decide(statements, action, key, bucket_key) is Decision.DENY
    ]
    assert denied == [], f"the same key through S3 with an S3 Bucket Key (the bucket's ARN): {denied}"


def test_bi26_4_b_another_environment_s_key_stays_denied_outside_the_state_bucket() -> None:
    """The exception is for the state backend's objects through S3 only: another environment's key used
    directly (no ``kms:ViaService``, which only an AWS service acting for the caller sets), through
    another service, or through S3 for another bucket, another prefix's objects or with no S3 encryption
    context stays explicitly denied; and without ``--state-backend`` no exception is printed at all."""
    key = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    tagged = {"aws:RequestedRegion": "us-west-2", "aws:ResourceTag/Environment": "staging"}
    s3 = "s3.us-west-2.amazonaws.com"
    state_object = "arn:aws:s3:::state-bucket-b/.pulumi/stacks/pilotlight/dr.json"
    requests: dict[str, tuple[str, dict[str, str]]] = {
        "direct": ("kms:Decrypt", tagged),
        "direct, a forged S3 context": (
            "kms:GenerateDataKey",
            {**tagged, "kms:EncryptionContext:aws:s3:arn": state_object},
        ),
        "through RDS": ("kms:Decrypt", {**tagged, "kms:ViaService": "rds.us-west-2.amazonaws.com"}),
        "through S3, another bucket": (
            "kms:Decrypt",
            {**tagged, "kms:ViaService": s3, "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::payroll/x"},
        ),
        "through S3, a bucket named like it": (
            "kms:Decrypt",
            {
                **tagged,
                "kms:ViaService": s3,
                "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::state-bucket-b-other/.pulumi/x",
            },
        ),
        "through S3, another team's prefix in the bucket": (
            "kms:Decrypt",
            {
                **tagged,
                "kms:ViaService": s3,
                "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::state-bucket-b/team-c/.pulumi/x",
            },
        ),
        "through S3, no context": ("kms:GenerateDataKey", {**tagged, "kms:ViaService": s3}),
        # Only the use S3 makes of the key is excepted, never its management.
        "managed, as if through S3 for the state": (
            "kms:ScheduleKeyDeletion",
            {**tagged, "kms:ViaService": s3, "kms:EncryptionContext:aws:s3:arn": state_object},
        ),
        "re-encrypted, as if through S3 for the state": (
            "kms:ReEncryptFrom",
            {**tagged, "kms:ViaService": s3, "kms:EncryptionContext:aws:s3:arn": state_object},
        ),
    }
    statements = [
        st for d in iam.deploy_policies(_pair(), ACCOUNT, "s3://state-bucket-b") for st in d["Statement"]
    ]
    without = [st for d in iam.deploy_policies(_pair(), ACCOUNT) for st in d["Statement"]]
    state_use = {**tagged, "kms:ViaService": s3, "kms:EncryptionContext:aws:s3:arn": state_object}
    open_ = {
        name: iam_eval.decide(statements, action, key, context).name
        for name, (action, context) in requests.items()
        if iam_eval.decide(statements, action, key, context) is not Decision.DENY
    }
    assert open_ == {}, f"another environment's key {key} with --state-backend: {open_}"
    assert iam_eval.decide(without, "kms:Decrypt", key, state_use) is Decision.DENY, (
        "without --state-backend the state bucket is no exception"
    )
    # The other services' resources of another environment stay denied as before.
    cluster = f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster:payments-staging-dr"
    assert iam_eval.decide(statements, "rds:DeleteDBCluster", cluster, tagged) is Decision.DENY


def test_bi26_4_c_the_state_backend_s_documents_pass_parliament_and_fit_iam_limits() -> None:
    """The exception's statements name, each, only actions their condition keys are defined for (the
    Service Authorization Reference: ``kms:ViaService`` and ``kms:EncryptionContext:`` are KMS keys, the
    latter of the cryptographic actions only), so parliament has nothing to say; and the documents stay
    within IAM's managed-policy size."""
    from components import iam_audit

    docs = iam.deploy_policies(_pair(), ACCOUNT, "s3://state-bucket-b/team-a")
    findings = [f for d in docs for f in iam_audit.findings(d, iam_audit.PolicyKind.IDENTITY)]
    assert findings == []
    assert all(iam._size(d) <= iam.MANAGED_POLICY_MAX for d in docs) and len(docs) <= 10
