"""The Pulumi program as a function: config in, stack outputs out.

``__main__.py`` calls :func:`run` and exports the result; the offline plan calls the same function
under Pulumi's mocks, so what the plan shows is what ``pulumi up`` would register.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pulumi
import pulumi_aws as aws

from components import engine_upgrade, failover, providers, region_b_serving, serverless
from components.config import StackConfig
from components.data import database_identifier
from components.dr_data import live_generation
from components.global_failover import GlobalFailover, GlobalFailoverArgs
from components.iam import permissions_boundary_arn, with_permissions_boundary
from components.naming import physical_name
from components.pilot_light_region import PilotLightRegion, PilotLightRegionArgs
from components.primary_region import PrimaryRegion, PrimaryRegionArgs
from components.wiring import read_primary_outputs, require_failback_settings
from lambdas.failover import region_b_quiet
from lambdas.failover.names import RDS_IDENTIFIER_MAX

SERVED_SINCE_READ = "pilotlight:program/readRegionBServedSince"
"""The name the offline synthesis records :func:`read_region_b_served_since` under, beside the provider's
invokes, so that the deploy policy (automation/iam.py ``INVOKE_ACTIONS``) grants its calls."""


def read_failover_state(
    cfg: StackConfig, dr_provider: aws.Provider
) -> tuple[failover.Latch, dict[str, Any] | None]:
    """The failover latch and the run journal beside it, from SSM in region B.

    One path query answers both (the journal is ``<latch>-journal``, lambdas/failover/journal.py) and
    returns nothing rather than failing when they do not exist yet (the first deployment: standby,
    an empty journal). A journal that is there but is not a JSON object reads as None: it fails
    safe, as an unreadable latch does (:func:`failover.refuse_dr_update`, BL21-4), and as the canary
    reads it (lambdas/health_check/probe.py ``read_journal``).
    """
    values = _failover_parameters(cfg, dr_provider)
    latch = failover.Latch.parse(values.get(cfg.latch_parameter_name))
    raw = values.get(journal_parameter(cfg))
    if not raw:  # not written yet (SSM refuses an empty value)
        return latch, {}
    try:
        journal = json.loads(raw)
    except json.JSONDecodeError:
        return latch, None
    return latch, journal if isinstance(journal, dict) else None


def _failover_parameters(cfg: StackConfig, dr_provider: aws.Provider) -> dict[str, str]:
    """The parameters beside the latch (latch, journal, failback record), by name: one path query
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html)."""
    path = cfg.latch_parameter_name.rsplit("/", 1)[0]
    found = aws.ssm.get_parameters_by_path(path=path, opts=pulumi.InvokeOptions(provider=dr_provider))
    return dict(zip(found.names, found.values, strict=False))


def read_phase_record(cfg: StackConfig, dr_provider: aws.Provider) -> failover.PhaseRecord | None:
    """The failback phase the dr stack's last update applied (:class:`failover.PhaseRecord`)."""
    values = _failover_parameters(cfg, dr_provider)
    return failover.PhaseRecord.parse(
        values.get(failover.phase_record_parameter_name(cfg.latch_parameter_name))
    )


def read_secondary_cluster(
    cfg: StackConfig, dr_provider: aws.Provider
) -> engine_upgrade.SecondaryCluster | None:
    """Region B's Aurora secondary cluster as AWS has it: its engine version and instances (live reads,
    in region B). None when it does not exist yet (the dr stack not deployed).

    ``aws.rds.getClusters`` with a ``db-cluster-id`` filter answers an empty list for a cluster that does
    not exist, where ``getCluster`` would fail the update
    (https://www.pulumi.com/registry/packages/aws/api-docs/rds/getclusters/;
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusters.html, Filters
    ``db-cluster-id``); ``aws.rds.getCluster`` then gives its ``engineVersion`` and ``clusterMembers``
    (https://www.pulumi.com/registry/packages/aws/api-docs/rds/getcluster/).
    """
    identifier = database_identifier(cfg.prefix, cfg.dr_region, aurora=True)
    opts = pulumi.InvokeOptions(provider=dr_provider)
    found = aws.rds.get_clusters(filters=[{"name": "db-cluster-id", "values": [identifier]}], opts=opts)
    if identifier not in (found.cluster_identifiers or []):
        return None
    live = aws.rds.get_cluster(cluster_identifier=identifier, opts=opts)
    return engine_upgrade.SecondaryCluster(
        identifier, cfg.dr_region, str(live.engine_version or ""), tuple(live.cluster_members or [])
    )


def read_region_b_serving(
    cfg: StackConfig, dr_provider: aws.Provider
) -> tuple[tuple[region_b_serving.GroupSeen, ...], tuple[region_b_serving.FunctionSeen, ...]]:
    """What of region B can take writes, as AWS has it now (live reads, in region B): the dr stack's web
    tier Auto Scaling group(s) (:func:`read_region_b_web_tier`) and its payments function's reserved
    concurrency (``aws.lambda_.getFunction`` ``reservedConcurrentExecutions``, -1 when unreserved:
    https://www.pulumi.com/registry/packages/aws/api-docs/lambda/getfunction/). The function is named, not
    auto-named, and the dr stack declares it in every tier, so it exists whenever a switch-writer update
    runs; one deleted by hand fails the read and with it the update, before any resource."""
    name = serverless.payments_function_name(cfg.prefix)
    live = aws.lambda_.get_function(function_name=name, opts=pulumi.InvokeOptions(provider=dr_provider))
    reserved = live.reserved_concurrent_executions
    function = region_b_serving.FunctionSeen(name, None if reserved is None else int(reserved))
    return read_region_b_web_tier(cfg, dr_provider), (function,)


def read_region_b_web_tier(
    cfg: StackConfig, dr_provider: aws.Provider
) -> tuple[region_b_serving.GroupSeen, ...]:
    """The dr stack's web tier Auto Scaling group(s) in region B as AWS has them now (live reads, in region
    B); empty when there is none.

    The group is auto-named, so it is found by the tags the program gives it
    (:data:`region_b_serving.GROUP_TAGS`). ``aws.autoscaling.getAmiIds`` (the pulumi-aws name of the
    Autoscaling Groups data source) answers the names of the groups that match ``tag:<key>`` filters, an
    empty list when none does, where ``getGroup`` would fail the update
    (https://www.pulumi.com/registry/packages/aws/api-docs/autoscaling/getamiids/;
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html);
    ``aws.autoscaling.getGroup`` then gives each one's ``minSize``, ``desiredCapacity`` and ``maxSize``
    (https://www.pulumi.com/registry/packages/aws/api-docs/autoscaling/getgroup/).
    """
    opts = pulumi.InvokeOptions(provider=dr_provider)
    filters = [
        aws.autoscaling.GetAmiIdsFilterArgs(name=key, values=[value])
        for key, value in region_b_serving.group_filters(cfg.tag_map()).items()
    ]
    found = aws.autoscaling.get_ami_ids(filters=filters, opts=opts)
    seen: list[region_b_serving.GroupSeen] = []
    for name in sorted(found.names or []):
        group = aws.autoscaling.get_group(name=name, opts=opts)
        seen.append(
            region_b_serving.GroupSeen(
                name, int(group.min_size or 0), int(group.desired_capacity or 0), int(group.max_size or 0)
            )
        )
    return tuple(seen)


def read_region_b_served_since(
    cfg: StackConfig, groups: Sequence[str], functions: Sequence[str], since: datetime
) -> tuple[region_b_quiet.Served, ...]:
    """What AWS recorded since ``since`` (the zero-lag proof's drain) of region B's web tier ``groups``
    launching instances and its ``functions`` being invoked (lambdas/failover/region_b_quiet.py: scaling
    activities, ``AWS/Lambda`` ``Invocations``), read in region B when the program runs (break30 B30-1).

    With boto3, not an invoke: the AWS provider has no data source for either (pulumi-aws 7's autoscaling
    functions are ``getAmiIds`` and ``getGroup``; its cloudwatch functions read event buses, log groups and
    Contributor Insights rules, no metric data: https://www.pulumi.com/registry/packages/aws/api-docs/),
    and like the invokes it runs before any resource (``pulumi preview`` makes it too: reads only). The credentials are the ones the
    providers use: components/providers.py gives them none, so both take the default chain (environment,
    shared files, instance role: https://boto3.amazonaws.com/v1/documentation/api/latest/guide/credentials.html).
    A read AWS refuses refuses the promotion (it cannot say region B took no write), in one line."""
    from boto3.session import Session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"})
    session = Session(region_name=cfg.dr_region)
    try:
        found = region_b_quiet.served_since(
            session.client("autoscaling", config=config),
            session.client("cloudwatch", config=config),
            groups,
            functions,
            since,
            datetime.now(UTC),
        )
    except (BotoCoreError, ClientError) as exc:
        code = (
            exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        )
        raise failover.FailoverRefused(
            "dr:failback switch-writer is refused: region B's scaling activities and its function's invocations "
            f"since the zero-lag proof's drain could not be read in {cfg.dr_region} ({code}), so whether region "
            "B took writes after the proof cannot be told. The deploy role needs autoscaling:DescribeScalingActivities "
            "and cloudwatch:GetMetricData (`python -m automation iam --for deploy`); run this update again."
        ) from None
    return tuple(found)


def journal_parameter(cfg: StackConfig) -> str:
    """The run journal's SSM parameter, beside the latch (lambdas/failover/journal.py ``_journal_name``)."""
    return f"{cfg.latch_parameter_name}-journal"


def run(cfg: StackConfig) -> dict[str, Any]:
    """Register the stack's resources and return its outputs."""
    regional = providers.build(cfg)
    # Through the stack's own region's provider: the dr stack deploys while region A is down.
    account = aws.get_caller_identity_output(
        opts=pulumi.InvokeOutputOptions(provider=regional.for_region(cfg.role))
    ).account_id
    boundary = [with_permissions_boundary(account.apply(lambda a: permissions_boundary_arn(a, cfg.prefix)))]
    if cfg.role == "primary":
        # Before any resource: mid-failback, region A's database is not what this update would declare.
        latch, journal = read_failover_state(cfg, regional.dr)
        failover.refuse_primary_update(latch, journal, journal_parameter=journal_parameter(cfg))
        assert journal is not None  # refused above when unreadable
        if cfg.database.mode == "aurora-global":
            # Before any resource: a minor upgrade of the global database with a headless secondary
            # fails part-way (AWS refuses to upgrade a secondary without an instance).
            engine_upgrade.refuse_headless_upgrade(
                cfg.database.engine_version, read_secondary_cluster(cfg, regional.dr)
            )
        fenced = failover.region_a_fenced(journal)
        if fenced:
            pulumi.log.warn(
                f"{fenced}: region A's web tier floor, its functions' reserved concurrency and their event "
                "sources keep the fence's values in this update (ignore_changes); changes to them apply "
                "at the first update after the failback gives region A back"
            )
        region = PrimaryRegion(
            "primary",
            PrimaryRegionArgs(config=cfg, dr_provider=regional.dr, keep_fence=fenced is not None),
            pulumi.ResourceOptions(providers={"aws": regional.primary}, transformations=boundary),
        )
        return region.exports()

    assert cfg.primary_stack is not None  # guaranteed by config validation
    primary = read_primary_outputs(
        cfg.primary_stack, cfg.primary_region, expected_database_mode=cfg.database.mode
    )
    latch, journal = read_failover_state(cfg, regional.dr)
    previous = read_phase_record(cfg, regional.dr)
    try:
        tier = failover.decide(
            cfg.dr,
            primary.web_capacity,
            database_mode=cfg.database.mode,
            latch=latch,
            warm_pool=cfg.compute.dr_warm_pool,
            previous=previous,
        )
    except failover.FailoverRefused:
        # While the runbook's failback has region B drained, its refusal is the one that says what to
        # do (wait, or resume it). A writer-move mark alone is also what the IaC failback's `latch
        # switch-writer` leaves: then the flags' own refusal (e.g. run `latch release`) is the remedy.
        failover.refuse_dr_update(
            latch,
            None
            if journal is None
            else {k: v for k, v in journal.items() if k != failover.JOURNAL_WRITER_MOVE},
            journal_parameter=journal_parameter(cfg),
        )
        raise
    # Before any resource: mid-failback, region B is drained while the writer moves to region A; an
    # update that would give it back its capacity is refused (one that keeps it drained is not; an
    # unreadable journal under an active latch is refused whatever the update does).
    failover.refuse_dr_update(latch, journal, journal_parameter=journal_parameter(cfg), tier=tier)
    require_failback_settings(primary, cfg.database.mode, tier.failback_replica)
    if cfg.database.mode == "aurora-global" and latch.active:
        # Before any resource: failed over, region B's cluster holds the writer; lowering drInstances must
        # not delete its last instance (break13b B13b-8).
        secondary = read_secondary_cluster(cfg, regional.dr)
        engine_upgrade.refuse_headless_writer(
            cfg.database.dr_instances,
            tuple(
                physical_name(secondary.identifier, str(i), limit=RDS_IDENTIFIER_MAX)
                for i in range(cfg.database.dr_instances)
            )
            if secondary is not None
            else (),
            secondary,
            failed_over=latch.active,
        )
    failover.refuse_unmoved_aurora_writer(previous, tier, latch, journal, cfg.database.mode)
    failover.refuse_unproven_failback_promotion(previous, tier, latch, journal, cfg.database.mode)
    if failover.promotes_on_failover(tier, latch, cfg.database.mode):
        live = live_generation(
            database_identifier(cfg.prefix, cfg.dr_region, aurora=False), None, regional.dr
        )
        failover.refuse_program_promotion(
            tier, latch, cfg.database.mode, None if live is None else live.replicating
        )
    if failover.promotes_failback_instance(tier, latch, cfg.database.mode):
        # The proof was measured before this update, and the state this update plans against is not
        # refreshed: region B's web tier and function, read live now, must still be drained (break27
        # B27-2). Region B scaled up after this read and before the promotion is not seen
        # (components/region_b_serving.py).
        groups, functions = read_region_b_serving(cfg, regional.dr)
        region_b_serving.refuse_promotion_while_region_b_serves(
            tier, latch, cfg.database.mode, groups, functions
        )
        # Drained now is not drained since the proof: region B served by hand after it and drained again
        # reads drained (break30 B30-1). What AWS recorded since the proof's drain says whether it took
        # writes the proof's measurement did not cover.
        proof = failover.drain_proof(journal)
        since = None if proof is None else region_b_quiet.proof_drained_at(proof)
        served = (
            ()
            if since is None
            else read_region_b_served_since(cfg, [g.name for g in groups], [f.name for f in functions], since)
        )
        region_b_serving.refuse_promotion_after_region_b_served(tier, latch, cfg.database.mode, proof, served)
    dr = PilotLightRegion(
        "dr",
        PilotLightRegionArgs(config=cfg, primary=primary, tier=tier, primary_provider=regional.primary),
        pulumi.ResourceOptions(providers={"aws": regional.dr}, transformations=boundary),
    )
    glob = GlobalFailover(
        "global",
        GlobalFailoverArgs(
            config=cfg,
            primary=primary,
            tier=tier,
            primary_provider=regional.primary,
            dr_provider=regional.dr,
            dr_web_dns=dr.web.alb_dns_name,
            dr_api_domain=dr.api.domain_target,
            dr_api_regional=dr.api.regional_domain,
            alarm_topic_arn=dr.observability.topic_arn,
            dr_dashboard_dimensions=dr.dashboard_dimensions,
            replica_bucket_arn=dr.replica_bucket_arn,  # data tier
            replica_kms_key_arn=dr.replica_kms_key_arn,
        ),
        pulumi.ResourceOptions(transformations=boundary),
    )
    return {**dr.exports(), **glob.exports()}
