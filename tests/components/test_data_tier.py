"""The data tier: both stacks x both database modes, keys in each store's own region, B -> A wiring,
no secret in anything recorded, protection in production, promotion and failback, bad input.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.runtime import rpc

from automation import plan, synth
from components import data, storage
from components.wiring import StackWiringError
from lambdas.failover.context import RunbookContext
from tests.components.conftest import synthesize

A, B = "us-east-1", "us-west-2"
RDS_POSTGRES = {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}}
AURORA = {"pilotlight:database": {"mode": "aurora-global"}}
MODES = {"aurora-global": AURORA, "rds-postgres": RDS_POSTGRES}
FAILBACK = {**RDS_POSTGRES, "dr:active": True, "dr:failback": "replicate"}
STACKS = ("primary", "dr")

STATEFUL_TYPES = {
    "aws:kms/key:Key",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:rds/globalCluster:GlobalCluster",
    "aws:s3/bucket:Bucket",
    "aws:dynamodb/table:Table",
    "aws:secretsmanager/secret:Secret",
    "aws:backup/vault:Vault",
}
ARN = re.compile(r"arn:aws:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d):")


# --------------------------------------------------------------------------------------------------
# helpers


def strings(value: Any) -> Iterator[str]:
    """Every string in a recorded value (dicts, lists, JSON documents inside strings included)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        if value.startswith(("{", "[")):
            try:
                yield from strings(json.loads(value))
                return
            except json.JSONDecodeError:
                pass
        yield value


def referenced_arn(text: str, match: re.Match[str]) -> str:
    """The ARN a string refers to: object wildcards (``bucket/*``) refer to the bucket."""
    return text[match.start() :].removesuffix("/*")


def plain_strings(value: Any) -> Iterator[str]:
    """Like :func:`strings`, but skipping values Pulumi carries as secrets (encrypted in state)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return
        for v in value.values():
            yield from plain_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plain_strings(v)
    elif isinstance(value, str):
        yield value


def data_tier(s: synth.Synthesis) -> list[synth.Resource]:
    """The data tier's AWS resources: those under the *-data components, and the replication rule."""
    return [
        r
        for r in s.aws_resources()
        if (r.component or "").split("-")[1:2] == ["data"] or r.name.startswith("global-s3-replication")
    ]


def key_resources(*syntheses: synth.Synthesis) -> dict[str, synth.Resource]:
    return {r.name: r for s in syntheses for r in s.by_type("aws:kms/key:Key")}


def key_refs(r: synth.Resource, buckets: dict[str, synth.Resource]) -> list[tuple[str, str, str]]:
    """(what, region the key must be in, key ARN) for every key reference of an encrypted resource."""
    i = r.inputs
    refs: list[tuple[str, str, str]] = []
    region = r.region or ""
    if r.type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
        refs.append(("storage", region, i["kmsKeyId"]))
    if r.type in ("aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance") and i.get(
        "performanceInsightsEnabled"
    ):
        refs.append(("performance insights", region, i["performanceInsightsKmsKeyId"]))
    if r.type == "aws:dynamodb/table:Table":
        assert i["serverSideEncryption"]["enabled"] is True
        refs.append(("table", region, i["serverSideEncryption"]["kmsKeyArn"]))
        refs += [("table replica", rep["regionName"], rep["kmsKeyArn"]) for rep in i.get("replicas", [])]
    if r.type == "aws:secretsmanager/secret:Secret":
        refs.append(("secret", region, i["kmsKeyId"]))
        refs += [("secret replica", rep["region"], rep["kmsKeyId"]) for rep in i["replicas"]]
    if r.type == "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        default = i["rules"][0]["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms"
        refs.append(("bucket", region, default["kmsMasterKeyId"]))
    if r.type == "aws:backup/vault:Vault":
        refs.append(("vault", region, i["kmsKeyArn"]))
    if r.type == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
        dest = i["rules"][0]["destination"]
        dest_bucket = buckets[dest["bucket"].split(synth.COMPUTED)[1]]
        refs.append(
            ("replicas", dest_bucket.region or "", dest["encryptionConfiguration"]["replicaKmsKeyId"])
        )
    return refs


@functools.cache
def _dr(overrides_json: str) -> synth.Synthesis:
    overrides = json.loads(overrides_json)
    shared = {k: v for k, v in overrides.items() if not k.startswith("dr:")}
    primary = synthesize("primary", shared)  # cached: the dr stack reuses its outputs
    return synth.synthesize(
        "dr",
        overrides,
        latch=synth.procedure_latch(overrides),
        primary_outputs=primary.outputs,
        primary_overrides=shared,
    )


def synth_stack(stack: str, overrides: dict[str, Any] | None = None) -> synth.Synthesis:
    """A cached synthesis; a dr synthesis reuses the cached primary synthesis it depends on."""
    if stack == "primary":
        return synthesize("primary", overrides)
    return _dr(json.dumps(overrides or {}, sort_keys=True))


def syntheses_for(overrides: dict[str, Any]) -> tuple[synth.Synthesis, synth.Synthesis]:
    shared = {k: v for k, v in overrides.items() if not k.startswith("dr:")}
    return synth_stack("primary", shared), synth_stack("dr", overrides)


# --------------------------------------------------------------------------------------------------
# matrix: both stacks x both modes


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("mode", MODES)
def test_both_stacks_synthesize_the_data_tier_in_both_modes(stack: str, mode: str) -> None:
    s = synth_stack(stack, MODES[mode])
    region = A if stack == "primary" else B
    types = {r.type for r in data_tier(s) if r.region == region}
    assert {"aws:kms/key:Key", "aws:s3/bucket:Bucket", "aws:rds/subnetGroup:SubnetGroup"} <= types
    if mode == "aurora-global":
        assert "aws:rds/cluster:Cluster" in types and "aws:rds/instance:Instance" not in types
        assert ("aws:rds/globalCluster:GlobalCluster" in types) == (stack == "primary")
    else:
        assert "aws:rds/instance:Instance" in types and "aws:rds/cluster:Cluster" not in types
    if stack == "primary":
        assert {
            "aws:dynamodb/table:Table",
            "aws:secretsmanager/secret:Secret",
            "aws:backup/plan:Plan",
        } <= types
    else:  # one stack owns the global table and the secret; the dr stack must never declare them
        assert not types & {"aws:dynamodb/table:Table", "aws:secretsmanager/secret:Secret"}
    assert s.outputs["databaseMode"] == MODES[mode]["pilotlight:database"]["mode"]


def test_aurora_global_primary_and_headless_secondary() -> None:
    primary, dr = syntheses_for(AURORA)
    (glob,) = primary.by_type("aws:rds/globalCluster:GlobalCluster")
    assert glob.inputs["storageEncrypted"] is True and glob.inputs["engine"] == "aurora-postgresql"
    (writer,) = primary.by_type("aws:rds/cluster:Cluster")
    assert (
        writer.region == A
        and writer.inputs["globalClusterIdentifier"] == glob.inputs["globalClusterIdentifier"]
    )
    assert len(primary.by_type("aws:rds/clusterInstance:ClusterInstance")) == 2  # primaryInstances default
    (secondary,) = dr.by_type("aws:rds/cluster:Cluster")
    assert secondary.region == B
    # Joined from the primary stack's outputs, never a hard-coded identifier; no credentials of its own.
    assert secondary.inputs["globalClusterIdentifier"] == primary.outputs["globalClusterId"]
    assert secondary.inputs["engineVersion"] == primary.outputs["databaseEngineVersion"]
    assert not {"masterUsername", "masterPasswordWo", "masterPassword"} & set(secondary.inputs)
    # A global failover changes these; a later `pulumi up` must not fight the new topology.
    assert {"globalClusterIdentifier", "replicationSourceIdentifier"} <= set(secondary.ignore_changes)
    assert "replicationSourceIdentifier" in writer.ignore_changes
    assert dr.by_type("aws:rds/clusterInstance:ClusterInstance") == []  # drInstances 0: headless


@pytest.mark.parametrize("count", [1, 3])
def test_aurora_dr_instances_follow_config(count: int) -> None:
    dr = synth_stack("dr", {"pilotlight:database": {"mode": "aurora-global", "drInstances": count}})
    instances = dr.by_type("aws:rds/clusterInstance:ClusterInstance")
    assert len(instances) == count and all(i.region == B for i in instances)


def test_rds_multi_az_primary_and_encrypted_cross_region_replica() -> None:
    primary, dr = syntheses_for(RDS_POSTGRES)
    engine = "postgres"
    (writer,) = primary.by_type("aws:rds/instance:Instance")
    assert writer.region == A and writer.inputs["multiAz"] is True and writer.inputs["engine"] == engine
    assert writer.inputs["backupRetentionPeriod"] > 0  # a replica source needs automated backups
    assert writer.inputs["skipFinalSnapshot"] is False and writer.inputs["finalSnapshotIdentifier"]
    assert writer.inputs["performanceInsightsEnabled"] is True
    (replica,) = dr.by_type("aws:rds/instance:Instance")
    assert replica.region == B
    assert replica.inputs["replicateSourceDb"] == primary.outputs["dbInstanceArn"]
    (dr_key,) = [k for k in dr.by_type("aws:kms/key:Key") if k.region == B and k.name == "dr-data-key"]
    assert replica.inputs["kmsKeyId"] == dr_key.outputs["arn"]
    (subnets,) = dr.by_type("aws:rds/subnetGroup:SubnetGroup")
    assert replica.inputs["dbSubnetGroupName"] == subnets.inputs["name"] and subnets.region == B
    (params,) = dr.by_type("aws:rds/parameterGroup:ParameterGroup")
    assert params.inputs["family"] == "postgres16"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("mode", MODES)
def test_database_sits_in_isolated_subnets_and_admits_only_the_app_tier(stack: str, mode: str) -> None:
    s = synth_stack(stack, MODES[mode])
    prefix = "primary" if stack == "primary" else "dr"
    (subnets,) = s.by_type("aws:rds/subnetGroup:SubnetGroup")
    isolated = {r.outputs["id"] for r in s.by_type("aws:ec2/subnet:Subnet") if "-isolated-" in r.name}
    assert set(subnets.inputs["subnetIds"]) == isolated
    sg = s.named(f"{prefix}-data-db-sg")
    app_sg = s.named(f"{prefix}-app-sg")
    (rule,) = sg.inputs["ingress"]
    port = 5432
    assert rule["securityGroups"] == [app_sg.outputs["id"]] and not rule.get("cidrBlocks")
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (port, port, "tcp")
    assert sg.inputs.get("egress") in ([], None)
    # And the engine refuses clear-text connections.
    params = next(r for r in s.resources if r.name == f"{prefix}-data-db-params")
    assert {p["name"] for p in params.inputs["parameters"]} & {"rds.force_ssl"}


# --------------------------------------------------------------------------------------------------
# encryption: every store, with the key of its own region


@pytest.mark.parametrize("overrides", [AURORA, RDS_POSTGRES, FAILBACK], ids=["aurora", "pg", "failback"])
def test_every_data_store_is_encrypted_with_a_key_of_its_own_region(overrides: dict[str, Any]) -> None:
    primary, dr = syntheses_for(overrides)
    keys = key_resources(primary, dr)
    buckets = {r.name: r for s in (primary, dr) for r in s.by_type("aws:s3/bucket:Bucket")}
    checked: set[str] = set()
    for s in (primary, dr):
        for r in s.aws_resources():
            for what, region, arn in key_refs(r, buckets):
                assert region, (r.name, what)
                key = keys[arn.split(synth.COMPUTED)[1]]  # resolves to a recorded customer-managed key
                assert key.region == region, f"{r.name} ({what}, in {region}) uses {key.name} in {key.region}"
                assert ARN.match(arn) and ARN.match(arn).group(1) == region  # type: ignore[union-attr]
                assert key.inputs["enableKeyRotation"] is True
                checked.add(r.type)
            if r.type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
                assert r.inputs["storageEncrypted"] is True, r.name
    assert checked >= {
        "aws:rds/instance:Instance" if overrides is not AURORA else "aws:rds/cluster:Cluster",
        "aws:dynamodb/table:Table",
        "aws:secretsmanager/secret:Secret",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:backup/vault:Vault",
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
    }


def test_the_dr_stack_stores_use_its_own_key_and_the_primary_copies_a_primary_owned_key() -> None:
    primary, dr = syntheses_for(RDS_POSTGRES)
    dr_key = dr.named("dr-data-key")
    assert dr_key.region == B
    replica_key = primary.named("primary-data-replica-key")
    assert replica_key.region == B and replica_key.outputs["arn"] == primary.outputs["replicaKmsKeyArn"]
    (table,) = primary.by_type("aws:dynamodb/table:Table")
    assert table.inputs["replicas"][0]["kmsKeyArn"] == replica_key.outputs["arn"]


# --------------------------------------------------------------------------------------------------
# cross-region references


@pytest.mark.parametrize("overrides", [AURORA, RDS_POSTGRES, FAILBACK], ids=["aurora", "rds", "failback"])
def test_dr_cross_region_references_point_from_b_to_the_primary_stacks_outputs(
    overrides: dict[str, Any],
) -> None:
    primary, dr = syntheses_for(overrides)
    from_outputs = set(strings(primary.outputs))
    dr_arns = {r.outputs.get("arn") for r in dr.aws_resources()}
    seen_a = 0
    for r in data_tier(dr):
        for text in strings(r.inputs):
            for m in ARN.finditer(text):
                if m.group(1) == r.region:
                    continue
                arn = referenced_arn(text, m)
                if r.region == B:
                    # B -> A: always one of the primary stack's outputs (StackReference), never built here.
                    assert m.group(1) == A and arn in from_outputs, (r.name, arn)
                    seen_a += 1
                else:
                    # The few resources the dr stack owns in A point back at the dr stack's own resources.
                    assert r.region == A and arn in dr_arns, (r.name, arn)
    assert seen_a > 0


@pytest.mark.parametrize("mode", MODES)
def test_primary_reaches_region_b_only_through_its_own_keys_and_copy_vault(mode: str) -> None:
    primary = synth_stack("primary", MODES[mode])
    own_in_b = {r.outputs["arn"] for r in primary.aws_resources() if r.region == B}
    assert {r.type for r in primary.aws_resources() if r.region == B} == {
        "aws:kms/key:Key",
        "aws:kms/alias:Alias",
        "aws:backup/vault:Vault",
    }
    # Besides: the API function's permission to read the failover latch in B (GET /health reads it).
    latch = f"arn:aws:ssm:{B}:{synth.ACCOUNT_ID}:parameter/pilotlight/production/failover-state"
    for r in primary.aws_resources():
        for text in strings(r.inputs):
            for m in ARN.finditer(text):
                if m.group(1) != r.region:
                    arn = referenced_arn(text, m)
                    assert arn in own_in_b or (r.name == "primary-api-fn-policy" and arn == latch), (
                        r.name,
                        text,
                    )


# --------------------------------------------------------------------------------------------------
# credentials


SENTINEL = "Pw0rdNeverInPlainText0123456789ab"


@pytest.fixture
def sentinel_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the mocked Secrets Manager hand out a recognisable password."""
    original = synth._Mocks.call

    def call(self: Any, args: Any) -> dict[str, Any]:
        if args.token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
            return {"randomPassword": SENTINEL, "id": "generated"}
        return original(self, args)

    monkeypatch.setattr(synth._Mocks, "call", call)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.usefixtures("sentinel_password")
def test_no_secret_value_appears_in_any_recorded_input_or_output(mode: str) -> None:
    overrides = MODES[mode]
    primary = synth.synthesize("primary", overrides)
    dr = synth.synthesize("dr", overrides, primary_outputs=primary.outputs)
    everything = [
        (s.stack, r.name, part, value)
        for s in (primary, dr)
        for r in s.resources
        for part, value in (("inputs", r.inputs), ("outputs", r.outputs))
    ] + [(s.stack, "<stack outputs>", "outputs", s.outputs) for s in (primary, dr)]
    everything += [(s.stack, "<config>", "config", s.config) for s in (primary, dr)]
    everything += [(s.stack, tok, "invoke args", a) for s in (primary, dr) for tok, a, _ in s.invokes]
    leaks = [
        (st, name, part) for st, name, part, v in everything if any(SENTINEL in t for t in plain_strings(v))
    ]
    assert leaks == []
    # ... yet the generated password does reach the database and the secret, as Pulumi secrets only.
    carriers = {
        name
        for st, name, part, v in everything
        if part == "inputs" and any(SENTINEL in t for t in strings(v))
    }
    db = "primary-data-db-cluster" if mode == "aurora-global" else "primary-data-db-instance"
    assert carriers == {db, "primary-data-db-secret-value"}
    # No plain password argument anywhere, and RDS-managed passwords are not used (unsupported for
    # replica sources and global database members).
    for s in (primary, dr):
        for r in s.aws_resources():
            assert not {"password", "masterPassword", "secretString"} & set(r.inputs), r.name
            assert not r.inputs.get("manageMasterUserPassword"), r.name


def test_credentials_secret_is_replicated_to_b_with_bs_key() -> None:
    primary = synth_stack("primary")
    (secret,) = primary.by_type("aws:secretsmanager/secret:Secret")
    assert secret.region == A
    assert [rep["region"] for rep in secret.inputs["replicas"]] == [B]
    arn = primary.outputs["dbSecretReplicaArn"]
    assert arn == primary.outputs["dbSecretArn"].replace(f":{A}:", f":{B}:")
    (value,) = primary.by_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert value.inputs["secretStringWoVersion"] == data.CREDENTIALS_VERSION
    dr = synth_stack("dr")
    assert dr.outputs["drDbSecretArn"] == arn  # the DR tier reads the replica in its own region


# --------------------------------------------------------------------------------------------------
# protection


@pytest.mark.parametrize("overrides", [AURORA, RDS_POSTGRES, FAILBACK], ids=["aurora", "rds", "failback"])
@pytest.mark.parametrize("environment", ["production", "staging"])
def test_stateful_resources_are_protected_exactly_in_production(
    overrides: dict[str, Any], environment: str
) -> None:
    env = {"pilotlight:environment": environment}
    primary, dr = syntheses_for({**overrides, **env})
    expected = environment == "production"
    stateful = [r for s in (primary, dr) for r in s.aws_resources() if r.type in STATEFUL_TYPES]
    absent = (
        {"aws:rds/instance:Instance"}
        if overrides is AURORA
        else {
            "aws:rds/cluster:Cluster",
            "aws:rds/globalCluster:GlobalCluster",
        }
    )
    assert {r.type for r in stateful} == STATEFUL_TYPES - absent
    assert [(r.name, r.protect) for r in stateful if r.protect != expected] == []
    for r in stateful:
        for flag in ("deletionProtection", "deletionProtectionEnabled"):
            if flag in r.inputs:
                assert r.inputs[flag] is expected, (r.name, flag)


# --------------------------------------------------------------------------------------------------
# promotion and failback (rds-replica)


def test_rds_promotion_changes_only_replicate_source_db() -> None:
    standby = synth_stack("dr", {**RDS_POSTGRES, "dr:active": False})
    active = synth_stack("dr", {**RDS_POSTGRES, "dr:active": True})
    before, after = standby.named("dr-data-db-instance"), active.named("dr-data-db-instance")
    assert before.inputs["replicateSourceDb"] and "replicateSourceDb" not in after.inputs
    rest = {k: v for k, v in before.inputs.items() if k != "replicateSourceDb"}
    assert rest == after.inputs and before.protect == after.protect and before.urn == after.urn


def test_aurora_data_tier_is_identical_standby_and_active() -> None:
    standby = synth_stack("dr", {**AURORA, "dr:active": False})
    active = synth_stack("dr", {**AURORA, "dr:active": True})
    before = sorted((r.name, json.dumps(r.inputs, sort_keys=True)) for r in data_tier(standby))
    assert before == sorted((r.name, json.dumps(r.inputs, sort_keys=True)) for r in data_tier(active))


@pytest.mark.parametrize(
    ("phase", "promoted"), [("replicate", False), ("drain", False), ("switch-writer", True)]
)
def test_rds_failback_replica_in_region_a(phase: str, promoted: bool) -> None:
    overrides = {**RDS_POSTGRES, "dr:active": True, "dr:failback": phase}
    primary, dr = syntheses_for(overrides)
    replica = dr.named("dr-data-db-instance")
    failback = dr.named("dr-data-db-failback")
    assert failback.region == A
    assert failback.inputs["kmsKeyId"] == primary.outputs["kmsKeyArn"]
    assert failback.inputs["dbSubnetGroupName"] == primary.outputs["dbSubnetGroupName"]
    assert failback.inputs["vpcSecurityGroupIds"] == [primary.outputs["dbSecurityGroupId"]]
    if promoted:
        assert "replicateSourceDb" not in failback.inputs
    else:
        assert failback.inputs["replicateSourceDb"] == replica.outputs["arn"]
    assert "replicateSourceDb" not in replica.inputs  # region B stays the writer until switch-writer
    assert dr.outputs["failbackDbInstanceId"] == failback.inputs["identifier"]


def test_no_failback_replica_in_standby() -> None:
    assert [r.name for r in synth_stack("dr", RDS_POSTGRES).aws_resources() if r.region == A] == [
        "global-s3-replication"
    ]


# --------------------------------------------------------------------------------------------------
# S3, DynamoDB, backups


@pytest.mark.parametrize("stack", STACKS)
def test_buckets_are_versioned_private_tls_only_with_lifecycle(stack: str) -> None:
    s = synth_stack(stack, {"pilotlight:storage": {"noncurrentVersionDays": 45}})
    prefix = "primary-data-s3" if stack == "primary" else "dr-data-s3"
    bucket = s.named(f"{prefix}-bucket")
    assert bucket.inputs["bucketPrefix"] == storage.bucket_prefix(
        "pilotlight-production", bucket.region or ""
    )
    assert s.named(f"{prefix}-versioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    block = s.named(f"{prefix}-public-access").inputs
    assert all(
        block[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    policy = json.loads(s.named(f"{prefix}-tls-only").inputs["policy"])
    assert {st["Condition"].get("Bool", {}).get("aws:SecureTransport") for st in policy["Statement"]} >= {
        "false"
    }
    rules = {r["id"]: r for r in s.named(f"{prefix}-lifecycle").inputs["rules"]}
    assert rules["noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 45
    assert rules["intelligent-tiering"]["transitions"][0]["storageClass"] == "INTELLIGENT_TIERING"


@pytest.mark.parametrize("rtc", [False, True])
def test_replication_a_to_b_with_delete_markers_bs_key_and_optional_rtc(rtc: bool) -> None:
    primary, dr = syntheses_for({"pilotlight:storage": {"replicationTimeControl": rtc}})
    rule_res = dr.named("global-s3-replication")
    assert rule_res.region == A and rule_res.inputs["bucket"] == primary.outputs["appBucketName"]
    (rule,) = rule_res.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["deleteMarkerReplication"]["status"] == "Enabled"
    dest = rule["destination"]
    assert dest["bucket"] == dr.outputs["replicaBucketArn"]
    assert dest["encryptionConfiguration"]["replicaKmsKeyId"] == dr.outputs["drKmsKeyArn"]
    assert dest["metrics"]["status"] == "Enabled"
    assert (dest.get("replicationTime") or {}).get("status") == ("Enabled" if rtc else None)
    role = dr.named("global-s3-replication-role")
    assert role.region == B  # IAM is global: created through B's provider so A need not answer
    # And back: what region B writes during a failover replicates to region A.
    back = dr.named("dr-data-s3-to-primary")
    assert (
        back.region == B
        and back.inputs["rules"][0]["destination"]["bucket"] == primary.outputs["appBucketArn"]
    )


def test_replication_role_is_least_privilege() -> None:
    src, dst = "arn:aws:s3:::src", "arn:aws:s3:::dst"
    ka, kb = f"arn:aws:kms:{A}:1:key/a", f"arn:aws:kms:{B}:1:key/b"
    doc = storage.replication_role_policy(src, ka, dst, kb)
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert all("*" not in json.dumps(st["Resource"]).replace("/*", "") for st in doc["Statement"])
    assert by_sid["WriteReplicas"]["Resource"] == f"{dst}/*"
    assert by_sid["DecryptSource"]["Resource"] == ka and by_sid["DecryptSource"]["Action"] == "kms:Decrypt"
    enc = by_sid["EncryptReplicasWithDestinationKey"]
    assert enc["Resource"] == kb
    assert enc["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{B}.amazonaws.com"
    assert not any(
        "Delete" in a and "Replicate" not in a
        for st in doc["Statement"]
        for a in st["Action"]
        if isinstance(st["Action"], list)
    )


def test_global_table_is_owned_by_the_primary_with_its_replica_in_b() -> None:
    primary, dr = syntheses_for({})
    (table,) = primary.by_type("aws:dynamodb/table:Table")
    i = table.inputs
    assert table.region == A and i["billingMode"] == "PAY_PER_REQUEST"
    assert i["pointInTimeRecovery"]["enabled"] is True and i["streamEnabled"] is True
    assert i["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert [(r["regionName"], r["pointInTimeRecovery"]) for r in i["replicas"]] == [(B, True)]
    assert (i["hashKey"], i["rangeKey"]) == ("pk", "sk")  # what lambdas/api reads and writes
    # Region B declares one table of its own: the runbook lock (lambdas/failover/lock.py), no data.
    assert [t.name for t in dr.by_type("aws:dynamodb/table:Table")] == ["dr-runbook-lock"]
    assert dr.outputs["drTableName"] == i["name"]


def test_backups_in_both_regions_copied_to_b() -> None:
    primary = synth_stack("primary", RDS_POSTGRES)
    vaults = {v.region: v for v in primary.by_type("aws:backup/vault:Vault")}
    assert set(vaults) == {A, B}
    (backup_plan,) = primary.by_type("aws:backup/plan:Plan")
    (rule,) = backup_plan.inputs["rules"]
    assert rule["targetVaultName"] == vaults[A].inputs["name"]
    assert [c["destinationVaultArn"] for c in rule["copyActions"]] == [vaults[B].outputs["arn"]]
    (selection,) = primary.by_type("aws:backup/selection:Selection")
    assert set(selection.inputs["resources"]) == {
        primary.outputs["dbInstanceArn"],
        primary.outputs["tableArn"],
    }


# --------------------------------------------------------------------------------------------------
# outputs for the dr stack, the runbook and the app


@pytest.mark.parametrize("mode", MODES)
def test_runbook_context_parses_with_the_data_tier_keys(mode: str) -> None:
    primary, dr = syntheses_for(MODES[mode])
    ctx = RunbookContext.from_dict(dr.outputs["runbook"])
    assert ctx.database_mode == MODES[mode]["pilotlight:database"]["mode"]
    if mode == "aurora-global":
        assert ctx.global_cluster_id == primary.outputs["globalClusterId"]
        assert ctx.primary_cluster_id == primary.outputs["primaryClusterId"]
        assert ctx.dr_cluster_arn == dr.outputs["drClusterArn"] and ctx.dr_instance_class
    else:
        assert ctx.primary_db_instance_id == primary.outputs["dbInstanceId"]
        assert ctx.dr_db_instance_id == dr.outputs["drDbInstanceId"]


def test_dr_stack_refuses_a_primary_running_another_database_mode() -> None:
    with pytest.raises(StackWiringError) as err:
        synth.synthesize("dr", RDS_POSTGRES, primary_overrides=AURORA)
    assert "'aurora-global'" in str(err.value) and "'rds-replica'" in str(err.value)
    assert "pilotlight:database.mode" in str(err.value)


def test_dr_stack_names_missing_mode_outputs() -> None:
    outputs = dict(synth_stack("primary", RDS_POSTGRES).outputs)
    del outputs["dbInstanceArn"]
    with pytest.raises(StackWiringError, match="dbInstanceArn"):
        synth.synthesize("dr", RDS_POSTGRES, primary_outputs=outputs)


def test_plan_cli_refuses_an_unknown_database_mode_before_registering_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registered: list[str] = []
    original = synth._Mocks.new_resource

    def new_resource(self: Any, args: Any) -> Any:
        registered.append(args.name)
        return original(self, args)

    monkeypatch.setattr(synth._Mocks, "new_resource", new_resource)
    assert plan.main(["--set", "database.mode=x"]) == 2
    err = capsys.readouterr().err
    assert "pilotlight:database.mode" in err and "'x'" in err and "aurora-global, rds-replica" in err
    assert registered == []


# --------------------------------------------------------------------------------------------------
# pure helpers


def test_bucket_prefixes_keep_the_region_and_fit() -> None:
    long_prefix = "a" * 24 + "-" + "b" * 16
    prefix = storage.bucket_prefix(long_prefix, "ap-southeast-2")
    assert len(prefix) <= storage.BUCKET_PREFIX_MAX and prefix.endswith("-ap-southeast-2-")


@pytest.mark.parametrize(
    ("engine", "version", "family"),
    [
        ("postgres", "16.4", "postgres16"),
        ("aurora-postgresql", "15.8", "aurora-postgresql15"),
    ],
)
def test_parameter_family(engine: str, version: str, family: str) -> None:
    assert data.parameter_family(engine, version) == family


def test_helpers_reject_what_they_cannot_use() -> None:
    with pytest.raises(ValueError, match="no parameter group family"):
        data.parameter_family("oracle-ee", "19")
    with pytest.raises(ValueError, match="no parameter group family"):
        data.parameter_family("mysql", "8.0.39")  # absent: components/config.py ENGINES
    with pytest.raises(ValueError, match="not a regional KMS key ARN"):
        storage.kms_key_region("alias/foo")
    assert data.replica_secret_arn(f"arn:aws:secretsmanager:{A}:1:secret:x-Ab1", A, B).split(":")[3] == B
