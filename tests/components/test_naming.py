"""Every physical name fits AWS's limit for the longest configuration the config accepts.

The syntheses use the longest app name and environment the config accepts, the longest region
names, the most database instances, and every optional feature that adds a named resource
(certificates, failback replica, auto failover, AMI copy, warm pool). Two deployments whose
environments differ only in their last character must not share a name AWS keeps unique, and
neither may one deployment's two stacks.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from typing import Any

import pytest

from automation import synth
from components import config, naming
from lambdas.failover import names
from tests.components.conftest import synthesize

APP = "abcdefghijklmnopqrstuvwx"  # 24: the longest pilotlight:appName
ENVS = ("stagingeuwest001", "stagingeuwest002")  # 16: the longest environment, differing at the end
DOMAIN = f"{'a' * 63}.{'b' * 63}.{'c' * 63}.{'d' * 38}.com"  # config.DOMAIN_MAX characters
MODES: dict[str, dict[str, Any]] = {
    "aurora-global": {"mode": "aurora-global", "primaryInstances": 16, "drInstances": 3},
    "rds-replica": {"mode": "rds-replica", "engine": "postgres"},
}


def longest(environment: str, mode: str) -> dict[str, Any]:
    """The overrides of the longest accepted configuration (each environment has its own domain)."""
    domain = DOMAIN if environment == ENVS[0] else DOMAIN.replace("d.com", "e.com")
    return {
        "pilotlight:appName": APP,
        "pilotlight:environment": environment,
        "pilotlight:primaryRegion": "ap-southeast-1",
        "pilotlight:drRegion": "ap-northeast-1",
        "pilotlight:azCount": 3,
        "pilotlight:database": MODES[mode],
        "pilotlight:compute": {"amiId": "ami-0123456789abcdef0", "drWarmPool": 2},
        "pilotlight:routing": {
            "domain": domain,
            "certificateArn": "arn:aws:acm:ap-southeast-1:123456789012:certificate/a",
            "drCertificateArn": "arn:aws:acm:ap-northeast-1:123456789012:certificate/b",
            "alertEmail": "ops@example.com",
        },
    }


DR_FLAGS = {"dr:active": True, "dr:autoFailover": True, "dr:failback": "replicate"}


@functools.cache
def _deployment(environment: str, mode: str) -> tuple[synth.Synthesis, synth.Synthesis]:
    shared = longest(environment, mode)
    primary = synthesize("primary", shared)
    # A failback phase runs under the failover latch the documented procedure leaves.
    values = {**shared, **DR_FLAGS}
    dr = synth.synthesize_as_procedure("dr", values, primary_outputs=primary.outputs)
    return primary, dr


def named(*syntheses: synth.Synthesis) -> list[naming.NamedResource]:
    return [
        n
        for s in syntheses
        for r in s.aws_resources()
        for n in naming.physical_names(r.type, r.name, r.inputs, r.region, r.outputs.get("arn"))
    ]


def test_the_markers_agree() -> None:
    assert naming.COMPUTED == synth.COMPUTED


def test_the_longest_configuration_is_accepted() -> None:
    values = synth.merge_overrides(
        synth.load_stack_config("dr"), {**longest(ENVS[0], "rds-replica"), **DR_FLAGS}
    )
    cfg = config.parse(values, stack="dr")
    assert (len(cfg.app_name), len(cfg.environment), len(cfg.routing.domain)) == (24, 16, config.DOMAIN_MAX)
    with pytest.raises(config.ConfigError, match=r"web\.<domain>"):
        config.parse(
            {**values, "pilotlight:routing": json.dumps({"domain": DOMAIN.replace(".com", "d.com")})},
            stack="dr",
        )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_physical_name_fits_its_documented_limit(mode: str) -> None:
    found = named(*_deployment(ENVS[0], mode))
    assert naming.name_problems(found) == []
    # The guard saw the names it exists for (not an empty list that trivially passes).
    kinds = {(n.type, n.key) for n in found}
    assert {
        ("aws:backup/vault:Vault", "name"),
        ("aws:lambda/function:Function", "name"),
        ("aws:cloudwatch/logGroup:LogGroup", "name"),
        ("aws:rds/instance:Instance" if mode == "rds-replica" else "aws:rds/cluster:Cluster",
         "identifier" if mode == "rds-replica" else "clusterIdentifier"),
        ("aws:route53/record:Record", "name"),
    } <= kinds  # fmt: skip


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_names_the_runbook_generates_fit(mode: str) -> None:
    _, dr = _deployment(ENVS[0], mode)
    runbook = dr.outputs["runbook"]
    if mode == "aurora-global":
        # The failover's writer of a headless secondary: <cluster>-failover-<token>, the token drawn at
        # the failover. Every token's name must fit, end in the whole token (a hash cut would hide it from
        # the runbook role's <prefix>* pattern), and match that pattern; the longest cluster identifier
        # has 63 characters (no reserve: a new one would rename deployed clusters, convention 6), so
        # the cluster's part is what is cut.
        cluster = runbook["drClusterId"]
        assert len(cluster) == names.RDS_IDENTIFIER_MAX, cluster
        tokens = [
            "0" * names.FAILOVER_TOKEN_LENGTH,
            "f" * names.FAILOVER_TOKEN_LENGTH,
            names.new_failover_token(),
        ]
        generated = [names.failover_instance_id(cluster, t) for t in tokens]
        _, other = _deployment(ENVS[1], mode)
        theirs = names.failover_instance_pattern(other.outputs["runbook"]["drClusterId"])
        for ident, token in zip(generated, tokens, strict=True):
            assert ident.endswith(f"-{names.FAILOVER_INSTANCE_MARKER}-{token}"), ident
            assert fnmatch.fnmatchcase(ident, names.failover_instance_pattern(cluster)), ident
            assert not fnmatch.fnmatchcase(ident, theirs), (
                f"{ident} is within the other deployment's {theirs}"
            )
            found = naming.physical_names(
                "aws:rds/clusterInstance:ClusterInstance", "runbook-writer", {"identifier": ident}, None
            )
            assert naming.name_problems(found) == [], ident
    else:
        generated = [names.failback_instance_id(runbook["primaryDbInstanceId"])]
        # The program's own failback replica and the runbook's are the same instance.
        (replica,) = [r for r in dr.by_type("aws:rds/instance:Instance") if r.name.endswith("-failback")]
        assert replica.inputs["identifier"] == generated[0]
    for ident in generated:
        assert len(ident) <= names.RDS_IDENTIFIER_MAX, ident


@pytest.mark.parametrize("generation", [1, 9, 10, 999])
def test_the_generations_of_the_rds_replica_databases_fit_and_never_collide(generation: int) -> None:
    # Issue 13, E4: each failback re-seeds region B under a new identifier, and the IaC failback of
    # the next cycle creates region A's writer under a new one too; a released instance keeps its name,
    # so no generation may share one with another, and every one fits RDS's 63 characters.
    _, dr = _deployment(ENVS[0], "rds-replica")
    runbook = dr.outputs["runbook"]
    for base in (runbook["drDbInstanceId"], names.failback_instance_id(runbook["primaryDbInstanceId"])):
        ids = [naming.generation_identifier(base, g) for g in range(generation + 1)]
        assert ids[0] == base, "generation 0 keeps the deployed identifier (convention 6)"
        assert all(len(i) <= names.RDS_IDENTIFIER_MAX for i in ids), [i for i in ids if len(i) > 63]
        assert all(not i.endswith("-") and "--" not in i for i in ids), ids
        assert len(set(ids)) == len(ids), f"two generations of {base} share a name"
    # Region B's generations are found again from their identifiers (the live read's look-up).
    dr_base = runbook["drDbInstanceId"]
    ident = naming.generation_identifier(dr_base, generation)
    assert naming.generation_of(dr_base, ident) == generation, ident
    assert naming.generation_of(dr_base, dr_base + "-failback") is None
    assert naming.generation_of(dr_base, dr_base + "-g0") is None


@pytest.mark.parametrize("generation", [1, 2, 9, 10, 999])
def test_lineage_names_cut_with_a_hash_are_read_back(generation: int) -> None:
    # Region A's IaC failback instances of region B's generation n >= 1 are <primary>-failback-g<n>, cut
    # with a hash past 63 characters (always, for the longest configuration). Every reader that finds
    # them by name computes the same name: the primary stack's live read of region A's writer
    # (writer_lineage_index), region B's generations (generation_of: the dr stack and the re-seed), and
    # the runbook's look-up of the current failback instance (current_failback_id: observe, latch release).
    _, dr = _deployment(ENVS[0], "rds-replica")
    runbook = dr.outputs["runbook"]
    primary_base, dr_base = runbook["primaryDbInstanceId"], runbook["drDbInstanceId"]
    writer = names.writer_lineage_id(primary_base, generation + 1)  # the failback instance of generation n
    assert writer == names.failback_generation_id(primary_base, generation)
    uncut = f"{names.failback_instance_id(primary_base)}-{names.GENERATION_MARK}{generation}"
    assert writer != uncut and len(uncut) > names.RDS_IDENTIFIER_MAX, "this name is cut with a hash"
    assert names.writer_lineage_index(primary_base, writer) == generation + 1, writer
    failback_base = names.failback_instance_id(primary_base)
    assert names.generation_of(failback_base, writer) == generation, writer
    # The runbook's context names region A's writer (the lineage member the primary stack declares) and
    # region B's generation: the failback instance of that generation is found from both.
    for k in range(generation + 2):
        current = names.writer_lineage_id(primary_base, k)
        found = names.current_failback_id(current, naming.generation_identifier(dr_base, generation))
        assert found == writer, (current, found)
    # Another deployment's cut names are never taken for this one's (they differ only at the end).
    _, other = _deployment(ENVS[1], "rds-replica")
    theirs = names.writer_lineage_id(other.outputs["runbook"]["primaryDbInstanceId"], generation + 1)
    assert names.writer_lineage_index(primary_base, theirs) is None, theirs


def test_two_deployments_differing_only_at_the_end_of_their_environment_share_no_name() -> None:
    a = [n for n in named(*_deployment(ENVS[0], "aurora-global")) if n.limit.unique]
    b = [n for n in named(*_deployment(ENVS[1], "aurora-global")) if n.limit.unique]
    # Auto-names and bucket prefixes get random characters: only names the program chooses can collide.
    shared = {n.scope_key() for n in a if not n.random_suffix} & {n.scope_key() for n in b}
    assert shared == set()


def test_one_deployment_never_names_two_resources_alike() -> None:
    found = [n for n in named(*_deployment(ENVS[0], "aurora-global")) if n.limit.unique]
    keys = [n.scope_key() for n in found if not n.random_suffix]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


def test_physical_name_keeps_names_that_fit_and_cuts_others_with_a_hash() -> None:
    assert naming.physical_name("app-prod", "us-east-1", "backups", limit=50) == "app-prod-us-east-1-backups"
    assert naming.physical_name("App--Prod", "x", limit=50) == "app-prod-x"
    long_a = naming.physical_name(APP, ENVS[0], "ap-southeast-1", "backup-copies", limit=50)
    long_b = naming.physical_name(APP, ENVS[1], "ap-southeast-1", "backup-copies", limit=50)
    assert len(long_a) <= 50 and len(long_b) <= 50 and long_a != long_b
    assert naming.db_instance_identifier(APP + "-" + ENVS[0], "ap-southeast-1", "db").__len__() <= 54


def test_the_checker_reports_a_name_over_its_limit_and_an_auto_name() -> None:
    too_long = naming.physical_names("aws:backup/vault:Vault", "v", {"name": "v" * 51}, "us-east-1")
    assert "has 51 characters; AWS allows 50" in naming.name_problems(too_long)[0]
    auto = naming.physical_names("aws:lb/targetGroup:TargetGroup", "x" * 25, {}, "us-east-1")
    assert "AWS allows 32" in naming.name_problems(auto)[0]
    bad = naming.physical_names("aws:rds/cluster:Cluster", "c", {"clusterIdentifier": "a--b"}, "us-east-1")
    assert "breaks AWS's rule" in naming.name_problems(bad)[0]
