"""breakiam24: adversarial review of "deployable for real" (issue 12) as it stands on main (57eb1f9).

Each test is one finding, marked ``xfail(strict=True)`` until it is fixed: it states what AWS (or the
provider) documents and what the code does instead, and fails for that reason. None is a stub: each runs
the code under test (the runbook's and the CLIs' own functions against moto, with every call authorized
by the policy the program prints through the project's IAM evaluation, ``automation/iam_eval.py``; the
offline synthesis; ``python -m automation iam``).

BI24-1 (high): under the break-glass policy (``iam --for break-glass``, exactly the runbook role's
statements), ``observe`` cannot describe region A's IaC failback instance (``<primary>-failback``), so
in rds-replica mode, after ``dr:failback switch-writer`` promoted it, ``latch release`` says the writer
is region B and refuses: the documented IaC failback stops before ``route-back``. ``status`` and
``--dry-run`` misreport the writer the same way.

BI24-2 (high): the deploy policy README prints (``iam --for deploy --account <id>``) is made from the
dr stack as configured today: it does not allow the first failback phase (``dr:failback replicate``:
region A's lag alarm) nor turning ``dr:autoFailover`` on (the EventBridge role).

BI24-3 (medium): the break-glass policy for the shipped configuration (aurora-global) is one document
of 6,360 characters (7,039 for the longest accepted names), over IAM's 6,144 for a managed policy
(and a user's or group's inline policies): a person cannot be given it as README says.

BI24-4 (high): aurora-global, the shipped headless secondary: the failover creates a writer instance in
region B's cluster, which is encrypted with region B's customer managed key; AWS requires the creator
of an Aurora resource under a customer managed key to be allowed ``kms:CreateGrant`` on it (through
RDS), and the runbook role allows it only through RDS in region A (``KeepEncryptedSnapshots``). The
runbook permission test's Aurora world is not encrypted, so the dependent call is never recorded.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from automation import iam_eval
from automation.iam import break_glass_policy
from automation.iam_eval import Decision

AUTHORIZATION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"


class AuthorizedBy:
    """A ``before-parameter-build`` hook that answers AccessDenied, as IAM does, to every call the
    statements do not allow on its target in its region.

    IAM authorizes a request before the service looks at it: an identity-based policy that allows
    nothing for the request is an implicit deny (AUTHORIZATION, "The request context" and "Determining
    whether a request is allowed or denied within an account"), whatever the target's state (an
    instance that does not exist is AccessDenied, not DBInstanceNotFound, for a caller not allowed to
    describe it). Targets are built by the runbook permission test's own rules
    (tests/lambdas/failover/test_permissions.py ``TARGETS``: the Service Authorization Reference's
    resource types); a call without a rule there is let through (this hook judges only what that test
    models)."""

    def __init__(self, statements: list[dict[str, Any]]) -> None:
        self.statements = statements
        self.denied: list[str] = []

    def __call__(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        from tests.lambdas.failover.test_permissions import IAM_ACTION, IAM_PREFIX, TARGETS

        service_id = model.service_model.service_id
        action = f"{IAM_PREFIX.get(service_id, service_id.lower())}:{model.name}"
        action = IAM_ACTION.get(action, action)
        region = context["client_config"].region_name
        rule = TARGETS.get(action)
        for target in rule(params, region) if rule else ():
            request = {"aws:RequestedRegion": region}
            if action == "cloudwatch:PutMetricData":
                request["cloudwatch:namespace"] = str(params.get("Namespace"))
            if iam_eval.decide(self.statements, action, target, request) is not Decision.ALLOW:
                self.denied.append(f"{action} on {target}")
                raise ClientError(
                    {
                        "Error": {
                            "Code": "AccessDenied",
                            "Message": f"not authorized to perform: {action} on resource: {target}",
                        }
                    },
                    model.name,
                )

    def install(self, session: Any) -> None:
        session.events.register("before-parameter-build", self)


@pytest.fixture(scope="module", autouse=True)
def _each_synthesis_once() -> Iterator[None]:
    """Each distinct offline synthesis runs once in this module; every caller gets its own copy.

    ``iam --for deploy`` synthesizes the stacks under every documented update (iam_updates.py
    ``deploy_syntheses``), and BI24-2's tests synthesize the same stacks again to compute what each update
    needs: identical inputs, seconds each. A synthesis is a function of its arguments: two runs give the same
    resources, inputs, outputs and invokes, apart from the order Pulumi registers resources and their
    dependencies in and the identity of each function's code ``AssetArchive`` object, none of which is read
    here. So the first result is kept and a deep copy handed to every caller, as if computed again."""
    from automation import synth

    real = synth.synthesize
    done: dict[str, synth.Synthesis] = {}

    def once(stack: str, overrides: Any = None, **kwargs: Any) -> synth.Synthesis:
        key = json.dumps([stack, overrides, kwargs], sort_keys=True, default=repr)
        if key not in done:
            done[key] = real(stack, overrides, **kwargs)
        return copy.deepcopy(done[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(synth, "synthesize", once)
        yield


@pytest.fixture
def replica_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The runbook tests' world (tests/lambdas/failover/world.py ``build_world``) in rds-replica mode,
    encrypted as the program deploys it, under a moto of this test's own."""
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
                "rds-replica",
                app="bi24shop",
                primary_health_url=health.url("/primary"),
                dr_health_url=health.url("/dr"),
                lag_metrics=True,
                encrypted=True,
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


def _break_glass_clients(world: Any) -> tuple[Any, AuthorizedBy]:
    """Clients of a laptop holding only the break-glass policy printed for the world's outputs."""
    from lambdas.failover.clients import Clients
    from lambdas.failover.context import RunbookContext
    from tests.lambdas.failover.harness import new_session
    from tests.lambdas.failover.test_permissions import world_policy
    from tests.lambdas.failover.world import ACCOUNT

    # `iam --for break-glass --outputs runbook.json` is break_glass_policy(runbook): the same statements
    # as world_policy (the runbook role's, for the world's resources).
    # world_policy's placeholder keys for an unencrypted world; an encrypted world's own keys win.
    placeholders = {
        "notifyKeyArn": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/notify",
        "dataKeyArns": [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/data"],
    }
    assert break_glass_policy({**placeholders, **world.context})["Statement"] == world_policy(world)
    hook = AuthorizedBy(world_policy(world))
    session = new_session()
    hook.install(session)
    clients = Clients.for_context(RunbookContext.from_dict(world.context), session, endpoint_url=None)
    return clients, hook


def test_bi24_1_latch_release_after_the_iac_switch_writer_under_the_break_glass_policy(
    replica_world: Any,
) -> None:
    """BI24-1 (high). README, failback table, rds-replica: ``switch-writer`` promotes region A's replica
    ``<primary>-failback`` (the dr stack's ``dr:failback replicate`` made it), then
    ``python -m automation latch release --outputs runbook.json`` is "refused unless region A holds the
    writer"; README says the break-glass policy is what ``latch`` needs from a laptop ("print it again
    after the upgrade, or `latch activate` from a laptop is denied").

    ``latch release`` decides from ``observe``, which describes region A's failback instance of region
    B's current generation (``names.current_failback_id``: ``<primary>-failback``) to tell a promoted
    failback (region A holds the writer) from a standalone region B alone. The policy's
    ``DescribeDatabases`` names only ``db:<primary>``, ``db:<dr>`` and the retained
    ``<primary>-pre-failback-*``; ``rds:DescribeDBInstances`` is authorized on the instance (``db*``:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html), so IAM
    answers AccessDenied (AUTHORIZATION), the failback reads as unknown, region B's standalone instance
    reads as the writer, and the release refuses while region A does hold the writer. The runbook
    permission test never runs ``observe`` (it runs the two runbooks and the preflight only), so the
    call is not recorded."""
    from automation.latch_cli import release
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.names import current_failback_id
    from lambdas.failover.observe import observe
    from tests.lambdas.failover.harness import clients_for, run_book
    from tests.lambdas.failover.world import REGION_A, REGION_B

    world = replica_world
    assert run_book(world, "failover").outcome == "done"
    ctx = RunbookContext.from_dict(world.context)
    assert ctx.primary_db_instance_id and ctx.dr_db_instance_id
    # dr:failback replicate, then switch-writer (components/dr_data.py): region A's replica of region
    # B's writer, under the name the dr stack gives it, promoted.
    failback = current_failback_id(ctx.primary_db_instance_id, ctx.dr_db_instance_id)
    dr_arn = world.db(REGION_B, ctx.dr_db_instance_id)["DBInstanceArn"]
    rds_a = world.client("rds", REGION_A)
    rds_a.create_db_instance_read_replica(
        DBInstanceIdentifier=failback,
        SourceDBInstanceIdentifier=dr_arn,
        DBInstanceClass="db.t3.micro",
        KmsKeyId=world.context["primaryKmsKeyArn"],
        SourceRegion=REGION_B,
    )
    rds_a.promote_read_replica(DBInstanceIdentifier=failback)
    assert not world.db(REGION_A, failback).get("ReadReplicaSourceDBInstanceIdentifier")

    # With every read allowed, observe names region A (the promoted failback instance is the writer).
    assert observe(ctx, clients_for(world)).writer_side == "primary"

    clients, hook = _break_glass_clients(world)
    seen = observe(ctx, clients)
    _done, lines = release(ctx, clients, reason="IaC failback: before route-back")
    assert seen.writer_side == "primary", (
        f"under the break-glass policy observe names {seen.writer_side!r} as the writer's region; "
        f"denied: {sorted(set(hook.denied))}; latch release: {lines[0]}"
    )
    assert not lines[0].startswith("refused: the writer is"), lines[0]


# --------------------------------------------------------------------------------------------------
# BI24-2: the deploy policy README prints is made from the stacks as configured today, not from the
# dr stack under the switches and failback phases the operator turns later


ACCOUNT_ID = "111122223333"


def _deploy_statements(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """README's command, exactly: ``python -m automation iam --for deploy --account <id>``."""
    from automation.iam import main

    assert main(["--for", "deploy", "--account", ACCOUNT_ID]) == 0
    printed = json.loads(capsys.readouterr().out)
    return [st for p in printed["policies"] for st in p["document"]["Statement"]]


def _later(switches: dict[str, Any]) -> tuple[Any, Any]:
    """(the dr stack as configured, the dr stack once the operator turned ``switches``, with the latch
    the documented procedure leaves before it), over one primary synthesis."""
    from automation import synth

    primary = synth.synthesize("primary", {})
    now = synth.synthesize("dr", {}, primary_outputs=primary.outputs)
    later = synth.synthesize_as_procedure("dr", switches, primary_outputs=primary.outputs)
    return now, later


def _arn(resource: Any) -> str:
    """The resource's ARN in ACCOUNT_ID; an auto-named one as Pulumi names it (``<logical>-<7 hex>``)."""
    from automation import synth

    arn = synth.arn_for(resource.type, resource.name, resource.inputs, resource.region or "")
    assert arn is not None, resource.type
    return arn.replace(f"{synth.COMPUTED}{resource.name}", f"{resource.name}-0a1b2c3").replace(
        synth.ACCOUNT_ID, ACCOUNT_ID
    )


@pytest.mark.parametrize(
    ("switches", "typ", "actions"),
    [
        (
            {"dr:active": True, "dr:failback": "replicate"},
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:TagResource"),
        ),
        (
            {"dr:autoFailover": True},
            "aws:iam/role:Role",
            ("iam:GetRole", "iam:PassRole", "iam:TagRole", "iam:ListRolePolicies"),
        ),
    ],
    ids=["failback-replicate", "auto-failover"],
)
def test_bi24_2_the_deploy_policy_allows_the_dr_stack_s_later_updates(
    capsys: pytest.CaptureFixture[str], switches: dict[str, Any], typ: str, actions: tuple[str, ...]
) -> None:
    """BI24-2 (high). README, "Deploy for real": ``iam --for deploy --account <id>`` prints the policy
    for "pulumi up of both stacks", to attach to the deploying role. The same deployer later runs the
    failback phases (README: ``pulumi config set dr:failback replicate -s dr && pulumi up -s dr``) and may
    turn ``dr:autoFailover`` on (a switch the boundary is already made for: iam_boundary.SWITCHED_LATER,
    "turning one needs no new boundary").

    ``deploy_policies`` names alarms and roles by the names of the resources in the stacks it
    synthesizes, and it synthesizes the dr stack only as configured now (``policies``: the overrides
    given, no ``dr:`` switch turned). ``dr:failback replicate`` adds region A's lag alarm
    ``<app>-<env>-<region A>-failback-lag``; ``dr:autoFailover`` adds the EventBridge rule's role. Both
    are authorized on their ARN (``alarm``: list_amazoncloudwatch.html; ``role``:
    list_awsidentityandaccessmanagementiam.html, Service Authorization Reference), and the policy names
    neither: IAM answers AccessDenied (implicit deny,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), and the
    first failback phase stops at its first resource, the automated failover's switch cannot be turned
    on. README does not say to print the policy again for either."""
    statements = _deploy_statements(capsys)
    now, later = _later(switches)
    known = {r.name for r in now.by_type(typ)}
    added = [r for r in later.by_type(typ) if r.name not in known]
    assert added, f"{switches} adds no {typ}"
    denied = [
        f"{action} on {_arn(r)}"
        for r in added
        for action in actions
        for context in _contexts(action, r)
        if iam_eval.decide(statements, action, _arn(r), context) is not Decision.ALLOW
    ]
    assert denied == [], f"the deployer cannot apply {switches}: {denied}"


def _contexts(action: str, resource: Any) -> list[dict[str, str]]:
    """The request context of ``action`` on ``resource``: ``iam:PassRole`` always names the service the
    role is passed to (``iam:PassedToService``: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html),
    the program's the one the role's trust policy names (review breakiam25 BI25-3)."""
    from automation.iam import trusted_services

    region = {"aws:RequestedRegion": resource.region or "us-east-1"}
    if action != "iam:PassRole":
        return [region]
    return [{**region, "iam:PassedToService": service} for service in trusted_services(resource)] or [region]


DOCUMENTED_SWITCHES: dict[str, list[dict[str, Any]]] = {
    # Each dr: key of the schema (README, "Configuration"), at the values the README documents turning it
    # to, with the dr:active each goes with (README, "Failing over", the failback table).
    "dr:active": [{"dr:active": True}],
    "dr:autoFailover": [{"dr:autoFailover": True}, {"dr:active": True, "dr:autoFailover": True}],
    "dr:capacityPercent": [{"dr:active": True, "dr:capacityPercent": 200}],
    "dr:failback": [
        {"dr:active": phase != "complete", "dr:failback": phase}
        for phase in ("replicate", "drain", "switch-writer", "route-back", "complete")
    ],
}
PROCEDURES = {"rds-replica": "declared-iac", "aurora-global": "upgrade"}
"""The lifecycle harness' documented procedures (automation/lifecycle_scenarios.py) for what one
switch alone does not reach: rds-replica's re-seed at ``complete`` and region A's application
following the writer (the primary stack adopting the failback instance); aurora-global's engine
upgrade (``database.drInstances: 1`` first)."""


def _grants(documents: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource pattern, condition) of every Allow of ``documents``."""
    return {
        (action, resource, json.dumps(st.get("Condition") or {}, sort_keys=True))
        for d in documents
        for st in d["Statement"]
        if st["Effect"] == "Allow"
        for action in iam_eval.as_list(st["Action"])
        for resource in iam_eval.as_list(st["Resource"])
    }


def _instance(pattern: str) -> str:
    """A name a pattern stands for (``*`` itself stays: what AWS authorizes only on ``"*"``)."""
    return pattern if pattern == "*" else pattern.replace("*", "x0").replace("?", "x")


def _requests(resource: str, condition: dict[str, Any], regions: list[str]) -> list[dict[str, str]]:
    """The request contexts a grant stands for: each region its ARN (or, for ``"*"``, the stacks) may
    be requested in, each value of each key its condition names; the deployment's own tags."""
    parts = resource.split(":")
    where = [parts[3]] if len(parts) > 3 and parts[3] not in ("", "*") else regions
    contexts = [
        {
            "aws:RequestedRegion": region,
            "aws:ResourceTag/Application": "pilotlight",
            "aws:ResourceTag/Environment": "production",
        }
        for region in where
    ]
    for operator, keys in condition.items():
        assert "Not" not in operator and operator != "Null", f"an Allow conditioned by {operator}"
        for key, values in keys.items():
            contexts = [{**c, key: _instance(v)} for c in contexts for v in iam_eval.as_list(values)]
    return contexts


@pytest.mark.parametrize("mode", ["aurora-global", "rds-replica"])
def test_bi24_2_the_deploy_policy_allows_every_documented_update(mode: str) -> None:
    """BI24-2, the class. What ``iam --for deploy`` prints must allow every update the README documents
    after the first deploy, not only the stacks as configured that day: each ``dr:`` key of the schema
    at the values the README documents (DOCUMENTED_SWITCHES: the failover, each failback phase,
    ``dr:autoFailover``, ``dr:capacityPercent``) and the documented procedures one switch does not reach
    (PROCEDURES: the re-seed, the primary stack following the writer, the Aurora engine upgrade), run
    through the lifecycle harness with its live world.

    The oracle is the deploy policy made for the stacks under that update (``deploy_policies``, the
    same rules): every grant it has that the policy for today's stacks has not (the update's own: a new
    alarm's name, a new role, a service that now uses a key) must be allowed by the printed policy, by
    IAM's evaluation (automation/iam_eval.py,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), in
    every region and under every value of its condition. A switch added to the schema fails the test
    until it is listed here."""
    from automation import synth
    from automation.iam import deploy_policies, policies
    from automation.lifecycle import Lifecycle
    from automation.lifecycle_scenarios import steps_for
    from components.config import FAILBACK_PHASES, SCHEMA

    assert set(DOCUMENTED_SWITCHES) == {k for k in SCHEMA if k.startswith("dr:")}, "a dr: switch not listed"
    assert [u["dr:failback"] for u in DOCUMENTED_SWITCHES["dr:failback"]] == list(FAILBACK_PHASES)

    database = {"pilotlight:database": {"mode": mode}}
    printed = [
        st
        for d in policies("deploy", account=ACCOUNT_ID, overrides=[f"database.mode={mode}"], outputs=None)
        for st in d["Statement"]
    ]
    primary = synth.synthesize("primary", database)
    now = synth.synthesize("dr", database, primary_outputs=primary.outputs)
    regions = sorted({r.region for r in now.aws_resources() if r.region})
    today = _grants(deploy_policies([primary, now], ACCOUNT_ID))

    updates: list[tuple[str, list[Any]]] = []
    for switches in (u for values in DOCUMENTED_SWITCHES.values() for u in values):
        values = {**database, **switches}
        later = synth.synthesize_as_procedure("dr", values, primary_outputs=primary.outputs)
        updates.append((str(switches), [primary, later]))
    lifecycle = Lifecycle()
    lifecycle.run(steps_for(PROCEDURES[mode], mode))
    assert lifecycle.stopped == 0 and not any(r.errors or r.refused for r in lifecycle.results), PROCEDURES[
        mode
    ]
    updates.append((f"lifecycle {PROCEDURES[mode]}", lifecycle.syntheses))

    missing: dict[str, list[str]] = {}
    for label, syntheses in updates:
        for action, resource, condition in sorted(_grants(deploy_policies(syntheses, ACCOUNT_ID)) - today):
            for request in _requests(resource, json.loads(condition), regions):
                decision = iam_eval.decide(printed, action, _instance(resource), request)
                if decision is not Decision.ALLOW:
                    missing.setdefault(label, []).append(
                        f"{decision.value}: {action} on {resource} {request}"
                    )
    assert missing == {}, f"the printed deploy policy does not allow these documented updates: {missing}"


@pytest.mark.parametrize("mode", ["aurora-global", "rds-replica"])
def test_bi24_2_the_printed_deploy_policy_fits_one_role_for_the_longest_names(mode: str) -> None:
    """The union of the documented updates costs characters: for the longest accepted names
    (tests/components/test_naming.longest), ``iam --for deploy`` still prints at most ten documents (IAM's
    default quota of managed policies per role), each within 6,144 characters
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)."""
    from automation.iam import MANAGED_POLICY_MAX, _size, policies
    from tests.components.test_naming import ENVS, longest

    docs = policies("deploy", account=ACCOUNT_ID, overrides=_set_pairs(longest(ENVS[0], mode)), outputs=None)
    sizes = [_size(d) for d in docs]
    assert len(docs) <= MANAGED_POLICIES_PER_IDENTITY and max(sizes) <= MANAGED_POLICY_MAX, sizes


# --------------------------------------------------------------------------------------------------
# BI24-3: the break-glass policy is one document, over IAM's managed-policy size


def test_bi24_3_the_break_glass_policy_fits_iam_s_managed_policy_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """BI24-3 (medium). README, "The IAM a person needs": ``iam --for break-glass`` prints the policy a
    person holds to run the break-glass runbook (and ``latch``, ``status``) from a laptop. IAM quotas
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html, "IAM and AWS STS
    character limits"): a managed policy "cannot exceed 6,144 characters" (whitespace not counted); a
    user's inline policies 2,048 in all, a group's 5,120. ``iam --for deploy`` splits its statements to
    stay under that limit (``split_documents``, MANAGED_POLICY_MAX); ``--for break-glass`` prints
    ``break_glass_policy``, one document, whatever its size: 6,360 characters for the shipped
    Pulumi.dr.yaml (aurora-global), 7,039 for the longest accepted names. ``aws iam create-policy`` refuses
    it (LimitExceeded, "Cannot exceed quota for PolicySize: 6144"), and so does ``put-user-policy`` or
    ``put-group-policy``: only a role's inline policy (10,240) holds it."""
    from automation.iam import MANAGED_POLICY_MAX, _size, main

    assert main(["--for", "break-glass", "--account", ACCOUNT_ID]) == 0
    printed = json.loads(capsys.readouterr().out)["policies"]
    sizes = {p["name"]: _size(p["document"]) for p in printed}
    assert all(size <= MANAGED_POLICY_MAX for size in sizes.values()), (
        f"break-glass documents over IAM's {MANAGED_POLICY_MAX}-character managed policy limit: {sizes}"
    )


MANAGED_POLICIES_PER_IDENTITY = 10
"""IAM's default quota of managed policies attached to one user or role (reference_iam-quotas.html)."""


def _set_pairs(overrides: dict[str, Any]) -> list[str]:
    """Parsed overrides as ``--set`` arguments (nested keys as ``section.key``)."""
    return [
        pair
        for key, value in overrides.items()
        for pair in (
            [f"{key}.{k}={json.dumps(v)}" for k, v in value.items()]
            if isinstance(value, dict)
            else [f"{key}={json.dumps(value)}"]
        )
    ]


@pytest.mark.parametrize("mode", ["aurora-global", "rds-replica"])
def test_bi24_3_every_break_glass_document_fits_for_the_longest_accepted_names(mode: str) -> None:
    """BI24-3, the class: for the longest accepted names (tests/components/test_naming.longest: the
    longest application, environment, regions and domain, three availability zones, the most database
    instances) in each database mode, with the dr stack as configured and with every switch turned,
    ``iam --for break-glass`` (offline: ``policies``) prints documents each within IAM's 6,144
    characters for a managed policy, and few enough for one user's default quota of managed policies."""
    from automation.iam import MANAGED_POLICY_MAX, _size, policies
    from tests.components.test_naming import DR_FLAGS, ENVS, longest

    for flags in ({}, DR_FLAGS):
        overrides = _set_pairs({**longest(ENVS[0], mode), **flags})
        docs = policies("break-glass", account=ACCOUNT_ID, overrides=overrides, outputs=None)
        sizes = [_size(d) for d in docs]
        assert all(size <= MANAGED_POLICY_MAX for size in sizes), (
            f"{mode} {flags}: break-glass documents over {MANAGED_POLICY_MAX} characters: {sizes}"
        )
        assert len(docs) <= MANAGED_POLICIES_PER_IDENTITY, f"{mode} {flags}: {len(docs)} documents"


# --------------------------------------------------------------------------------------------------
# BI24-4: the headless failover's new writer, in region B's encrypted cluster, needs a grant on its key


def test_bi24_4_the_runbook_may_use_region_b_s_key_to_add_the_headless_writer() -> None:
    """BI24-4 (high). Amazon Aurora User Guide, "AWS KMS key management", "Authorizing use of a customer
    managed key" (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html):
    "When Aurora uses a customer managed key in cryptographic operations, it acts on behalf of the user
    who is creating or changing the Aurora resource. To create an Aurora resource using a customer managed
    key, a user must have permissions to call the following operations on the customer managed key:
    kms:CreateGrant, kms:DescribeKey", best narrowed by ``kms:ViaService``. The Service Authorization
    Reference lists both as dependent actions of ``rds:CreateDBInstance``
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html).

    The shipped configuration (Pulumi.dr.yaml: aurora-global, ``drInstances: 0``) keeps region B's
    cluster headless, encrypted with region B's key (``dr-data-key``); the failover's
    ``promote_database`` creates the writer in it (``rds.create_db_instance``, AddWriterToHeadlessSecondary).
    The runbook role allows ``kms:CreateGrant`` on the data keys only with ``kms:ViaService``
    ``rds.<region A>.amazonaws.com`` (KeepEncryptedSnapshots, for copying region A's snapshots), so the
    grant RDS creates in region B for the new instance is implicitly denied and the failover stops at its
    writer. (The rds-replica failback's FailbackReplicaEncryption names both regions' RDS; the permission
    test's Aurora world creates no key, so nothing records the dependent call.)"""
    from automation import synth
    from automation.iam import _sar
    from components.runbook_iam import RunbookTargets, runbook_statements

    privileges, _ = _sar()
    dependent = {
        a for t in privileges["rds:createdbinstance"]["resource_types"] for a in t["dependent_actions"]
    }
    assert {"kms:CreateGrant", "kms:DescribeKey"} <= dependent

    primary = synth.synthesize("primary", {})
    dr = synth.synthesize("dr", {}, primary_outputs=primary.outputs)
    cluster = dr.named("dr-data-db-cluster")
    assert cluster.inputs["storageEncrypted"] is True
    assert not dr.by_type("aws:rds/clusterInstance:ClusterInstance"), "headless: the failover adds the writer"
    key = cluster.inputs["kmsKeyId"]
    runbook = dr.outputs["runbook"]
    region = runbook["drRegion"]
    statements = runbook_statements(RunbookTargets.from_context(runbook))
    # The grant RDS creates for the instance carries kms:GrantIsForAWSResource true
    # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource).
    via_rds = {"aws:RequestedRegion": region, "kms:ViaService": f"rds.{region}.amazonaws.com"}
    requests = {
        "kms:CreateGrant": {**via_rds, "kms:GrantIsForAWSResource": "true"},
        "kms:DescribeKey": via_rds,
    }
    # The break-glass policy is the runbook role's statements (iam --for break-glass): it must allow the
    # same, whichever of its documents holds the statement.
    from automation.iam import policies

    break_glass = [
        st
        for d in policies("break-glass", account=synth.ACCOUNT_ID, overrides=[], outputs=None)
        for st in d["Statement"]
    ]
    offline_key = re.sub(rf"{synth.COMPUTED}[^:/\"]*", "0a1b2c3d", key)
    for name, policy, target in (
        ("runbook role", statements, key),
        ("break-glass", break_glass, offline_key),
    ):
        decisions = {a: iam_eval.decide(policy, a, target, r) for a, r in requests.items()}
        assert all(d is Decision.ALLOW for d in decisions.values()), (
            f"the {name} policy, creating the writer in {cluster.inputs['clusterIdentifier']} (key {key}): "
            f"{decisions}"
        )
    # Exactly that: not directly (no service in between), not through RDS in region A, not a grant for
    # anything but an AWS resource.
    for request in (
        {"aws:RequestedRegion": region},
        {**via_rds, "kms:ViaService": f"rds.{runbook['primaryRegion']}.amazonaws.com"},
        {**via_rds, "kms:GrantIsForAWSResource": "false"},
    ):
        assert iam_eval.decide(statements, "kms:CreateGrant", key, request) is not Decision.ALLOW, request
