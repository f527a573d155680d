"""The payments function reaches its own region's database, by the path AWS documents for it.

Synthesized under Pulumi mocks (``automation/synth.py``): the function's environment is the contract
``lambdas/api/config.py`` parses (``ledger_from_env``), so it is checked by that parser; the
permissions name the secret, key and cluster of the function's own region; the driver path puts
the function in the private subnets, in the security group the database admits, with endpoints to
reach what it calls; the bundle carries the driver, importable with nothing else installed.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from automation import synth
from automation.plan_report import database_tls_section
from components.config import ConfigError, parse
from components.ledger_access import (
    CA_BUNDLE_ARCHIVE_NAME,
    CA_BUNDLE_FUNCTION_PATH,
    DATA_API_REGIONS,
    FUNCTION_ENDPOINTS,
    LedgerPath,
    ledger_path,
)
from components.serverless import LEDGER_DRIVER_DISTRIBUTIONS, lambda_code
from lambdas.api.config import DataApiLedger, DriverLedger, ledger_from_env
from lambdas.api.ledger import ssl_context
from lambdas.failover.clients import DR_SETTINGS, PRIMARY_SETTINGS
from lambdas.failover.names import ledger_marker_function_name
from tests.components.conftest import synthesize
from tests.components.test_config import BASE

RDS = {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}}
# The syntheses test_iam.py makes too (cached per session).
SYNTHESES: list[tuple[str, dict[str, Any], str, LedgerPath]] = [
    ("primary", {}, "us-east-1", LedgerPath.DATA_API),
    ("dr", {}, "us-west-2", LedgerPath.DATA_API),
    ("primary", RDS, "us-east-1", LedgerPath.DRIVER),
    ("dr", {**RDS, "dr:active": True, "dr:failback": "replicate"}, "us-west-2", LedgerPath.DRIVER),
]
IDS = ["primary-aurora", "dr-aurora", "primary-rds", "dr-rds"]


def payments_function(s: synth.Synthesis) -> synth.Resource:
    functions = [f for f in s.by_type("aws:lambda/function:Function") if f.name.endswith("-api-payments")]
    assert len(functions) == 1, [f.name for f in s.by_type("aws:lambda/function:Function")]
    return functions[0]


def statements(s: synth.Synthesis) -> dict[str, dict[str, Any]]:
    policies = [p for p in s.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-api-fn-policy")]
    assert len(policies) == 1, [p.name for p in policies]
    return {st.get("Sid", ""): st for st in json.loads(policies[0].inputs["policy"])["Statement"]}


def deployed(env: dict[str, str], region: str) -> dict[str, str]:
    """The environment as deployed: a computed DB_HOST (the instance's ``address``) becomes an endpoint
    name of ``region``, the form RDS gives it (<identifier>.<id>.<region>.rds.amazonaws.com)."""
    out = dict(env)
    if synth.COMPUTED in out.get("DB_HOST", ""):
        out["DB_HOST"] = f"pilotlight-db.c9akciq32.{region}.rds.amazonaws.com"
    return out


@pytest.mark.parametrize(("stack", "overrides", "region", "path"), SYNTHESES, ids=IDS)
def test_the_functions_environment_names_its_own_regions_database_for_the_lambda_parser(
    stack: str, overrides: dict[str, Any], region: str, path: LedgerPath
) -> None:
    """What components set is what the function parses, in its own region, for the right path."""
    fn = payments_function(synthesize(stack, overrides))
    env = fn.inputs["environment"]["variables"]

    target = ledger_from_env(deployed(env, region), region)

    expected = DataApiLedger if path is LedgerPath.DATA_API else DriverLedger
    assert isinstance(target, expected), f"{fn.name} ({fn.urn}): {target!r} for path {path}"
    assert f":{region}:" in env["DB_SECRET_ARN"], (
        f"{fn.name}: secret of another region {env['DB_SECRET_ARN']}"
    )
    assert env["DB_NAME"] == "app"
    if isinstance(target, DriverLedger):
        assert target.sslmode == "require" and target.port == 5432, target


@pytest.mark.parametrize(("stack", "overrides", "region", "path"), SYNTHESES, ids=IDS)
def test_the_function_may_read_its_regions_secret_and_use_its_path_and_nothing_more(
    stack: str, overrides: dict[str, Any], region: str, path: LedgerPath
) -> None:
    """Least privilege for the ledger: the secret and key of this region; the Data API on this region's
    cluster only; network interfaces only in this region, its private subnets and the app group."""
    s = synthesize(stack, overrides)
    env = payments_function(s).inputs["environment"]["variables"]
    granted = statements(s)

    assert granted["LedgerCredentials"]["Resource"] == env["DB_SECRET_ARN"]
    assert granted["LedgerCredentials"]["Action"] == "secretsmanager:GetSecretValue"
    assert granted["LedgerCredentialsKey"]["Action"] == "kms:Decrypt"
    assert f":kms:{region}:" in granted["LedgerCredentialsKey"]["Resource"]
    if path is LedgerPath.DATA_API:
        assert granted["LedgerDataApi"] == {
            "Sid": "LedgerDataApi",
            "Effect": "Allow",
            "Action": "rds-data:ExecuteStatement",
            "Resource": env["DB_CLUSTER_ARN"],
        }
        assert not [sid for sid in granted if sid.startswith("VpcInterfaces")]
    else:
        assert "LedgerDataApi" not in granted
        create = granted["VpcInterfacesCreate"]["Resource"]
        assert all(r.startswith(f"arn:aws:ec2:{region}:") for r in create), create
        assert any(":subnet/" in r and "private" in r for r in create), create


@pytest.mark.parametrize(("stack", "overrides", "region", "path"), SYNTHESES, ids=IDS)
def test_the_driver_path_runs_in_the_private_subnets_in_the_group_the_database_admits(
    stack: str, overrides: dict[str, Any], region: str, path: LedgerPath
) -> None:
    """RDS: the function joins the app tier's security group, the only one the database's group
    admits on 5432. Aurora on the Data API: outside the VPC, and the clusters' HTTP endpoint is on."""
    s = synthesize(stack, overrides)
    fn = payments_function(s)
    vpc = fn.inputs.get("vpcConfig")
    if path is LedgerPath.DATA_API:
        assert vpc is None, f"{fn.name} ({fn.urn}) is in a VPC on the Data API path"
        clusters = s.by_type("aws:rds/cluster:Cluster")
        assert clusters and all(c.inputs.get("enableHttpEndpoint") is True for c in clusters), [
            (c.name, c.inputs.get("enableHttpEndpoint")) for c in clusters
        ]
        return
    assert vpc is not None, f"{fn.name} ({fn.urn}) is outside the VPC on the driver path"
    assert all("-net-private-" in subnet for subnet in vpc["subnetIds"]), vpc
    (group,) = vpc["securityGroupIds"]
    db_groups = [g for g in s.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-db-sg")]
    assert db_groups, "no database security group"
    for db_group in db_groups:
        admitted = [
            rule
            for rule in db_group.inputs["ingress"]
            if rule["fromPort"] == 5432 and group in rule["securityGroups"]
        ]
        assert admitted, f"{db_group.name} ({db_group.urn}) does not admit {group} on 5432"


def test_a_dr_vpc_without_nat_has_endpoints_for_what_the_function_calls_and_only_when_it_is_in_it() -> None:
    """Region B runs without NAT by default: the driver path needs Secrets Manager, SSM (the latch) and
    RDS (the writer check) endpoints; on the Data API path they would cost money for nothing."""

    def interface_services(overrides: dict[str, Any]) -> set[str]:
        s = synthesize("dr", overrides)
        return {
            str(e.inputs["serviceName"]).rsplit(".", 1)[1]
            for e in s.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
            if e.inputs.get("vpcEndpointType") == "Interface"
        }

    assert interface_services(SYNTHESES[3][1]) >= set(FUNCTION_ENDPOINTS)
    assert "secretsmanager" not in interface_services({})


@pytest.mark.parametrize(
    ("engine_version", "instance_class", "path"),
    [
        ("16.4", "db.r6g.large", LedgerPath.DATA_API),
        ("16.1", "db.r6g.large", LedgerPath.DATA_API),
        ("16.0", "db.r6g.large", LedgerPath.DRIVER),
        ("13.10", "db.r6g.large", LedgerPath.DRIVER),
        ("15.3", "db.r7g.xlarge", LedgerPath.DATA_API),
        ("16.4", "db.t4g.medium", LedgerPath.DRIVER),
        ("12.22", "db.r6g.large", LedgerPath.DRIVER),
    ],
)
def test_aurora_uses_the_data_api_only_where_aws_documents_it(
    engine_version: str, instance_class: str, path: LedgerPath
) -> None:
    """Versions from the Data API's region and version table; no T instance classes (its limitations)."""
    regions = ("us-east-1", "us-west-2")
    assert (
        ledger_path("aurora-global", "aurora-postgresql", engine_version, instance_class, regions)[0] is path
    )
    assert (
        ledger_path("rds-replica", "postgres", engine_version, instance_class, regions)[0]
        is LedgerPath.DRIVER
    )


@pytest.mark.parametrize(
    ("regions", "path"),
    [
        (("us-east-1", "us-west-2"), LedgerPath.DATA_API),
        (("ap-southeast-4", "ap-southeast-2"), LedgerPath.DRIVER),  # Melbourne: "Not available"
        (("us-east-1", "ap-south-2"), LedgerPath.DRIVER),  # Hyderabad as region B: "Not available"
        (("us-east-1", "eu-south-2"), LedgerPath.DRIVER),  # a row not read: the path that works anywhere
    ],
)
def test_the_data_api_needs_both_regions_in_aws_s_table(regions: tuple[str, str], path: LedgerPath) -> None:
    """Region B's function uses the same path once its cluster is promoted: both regions must have it.
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.Aurora_Fea_Regions_DB-eng.Feature.Data_API.html"""
    chosen, why = ledger_path("aurora-global", "aurora-postgresql", "16.4", "db.r6g.large", regions)
    assert chosen is path, why
    if path is LedgerPath.DRIVER:
        assert why.startswith(next(r for r in regions if r not in DATA_API_REGIONS)), why


def test_a_primary_without_nat_is_refused_when_the_function_must_be_in_the_vpc() -> None:
    """The driver path puts region A's function in the VPC, and its health answer reads region B's
    latch: only a NAT gateway reaches another region, so natStrategy none is refused, naming the key."""
    rds = {**BASE, "pilotlight:database": json.dumps(RDS["pilotlight:database"])}
    with pytest.raises(ConfigError) as err:
        parse({**rds, "pilotlight:natStrategy": "none"}, stack="test")
    assert "pilotlight:natStrategy" in str(err.value) and "single, per-az" in str(err.value)
    parse({**rds, "pilotlight:natStrategy": "single"}, stack="test")
    parse({**BASE, "pilotlight:natStrategy": "none"}, stack="test")  # Aurora: the Data API, no VPC


def test_the_bundle_carries_the_driver_as_python_source_importable_on_its_own(tmp_path: Path) -> None:
    """The function's archive holds pg8000 and what it imports (source, metadata, licences, no
    bytecode), and the driver imports from the archive alone (``python -S``: no site-packages), as in the Lambda runtime."""
    archive = lambda_code(LEDGER_DRIVER_DISTRIBUTIONS)
    names = set(archive.assets)
    for module in (
        "pg8000/native.py",
        "scramp/core.py",
        "asn1crypto/x509.py",
        "dateutil/parser/_parser.py",
        "six.py",
    ):
        assert module in names, f"{module} missing from the payments bundle"
    assert "lambdas/api/ledger.py" in names
    # Source, and each distribution's METADATA (pg8000 and scramp read their version) and licence.
    other = sorted(n for n in names if not n.endswith(".py"))
    assert all(n.split("/", 1)[0].endswith(".dist-info") for n in other), other
    assert not [n for n in other if n.endswith("/RECORD")], other
    assert {n.split("-", 1)[0] for n in other if n.endswith("/METADATA")} >= {"pg8000", "scramp"}, other
    for name, asset in archive.assets.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(asset.path).read_bytes())
    probe = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import pg8000.native, scramp; print(pg8000.native.__file__)"
    result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path)), result.stdout


@pytest.mark.parametrize(("stack", "overrides", "region", "path"), SYNTHESES, ids=IDS)
def test_the_ledger_marker_function_reaches_its_regions_database_and_nothing_else(
    stack: str, overrides: dict[str, Any], region: str, path: LedgerPath
) -> None:
    """The commit after a drain that the RDS for PostgreSQL zero-lag proof needs (lambdas/api/marker.py,
    lambdas/failover/lossless.py ``replay_evidence``): on the driver path each region has the function
    under the name the runbook invokes, reaching the database as the payments function does, with a
    role that may reach the database and write its logs and nothing more (no table, bucket or queue),
    and no reserved concurrency (the fence never throttles it; no client request reaches it). Aurora
    needs none: its switchover waits for the secondary itself."""
    s = synthesize(stack, overrides)
    markers = [f for f in s.by_type("aws:lambda/function:Function") if f.name.endswith("-ledger-marker")]
    if path is LedgerPath.DATA_API:
        assert markers == [], [f.name for f in markers]
        return
    (marker,) = markers
    payments = payments_function(s)
    prefix = payments.inputs["name"].removesuffix("-payments")
    assert marker.inputs["name"] == ledger_marker_function_name(prefix), (marker.name, marker.inputs["name"])
    assert marker.inputs["handler"] == "lambdas.api.marker.handler"
    env = marker.inputs["environment"]["variables"]
    assert ledger_from_env(deployed(env, region), region) == ledger_from_env(
        deployed(payments.inputs["environment"]["variables"], region), region
    )
    assert marker.inputs["vpcConfig"] == payments.inputs["vpcConfig"], f"{marker.name} ({marker.urn})"
    assert marker.inputs.get("reservedConcurrentExecutions") in (None, -1), marker.inputs
    # The runbook invokes it synchronously: it must answer within the runbook client's read timeout.
    assert marker.inputs["timeout"] < min(PRIMARY_SETTINGS.read_timeout, DR_SETTINGS.read_timeout), (
        marker.inputs
    )
    policies = [p for p in s.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-marker-policy")]
    assert len(policies) == 1, [p.name for p in policies]
    granted = json.loads(policies[0].inputs["policy"])["Statement"]
    ledger = {sid: st for sid, st in statements(s).items() if sid.startswith(("Ledger", "VpcInterfaces"))}
    others = [st for st in granted if st.get("Sid") not in ledger]
    assert [st["Action"] for st in others if "logs:" not in json.dumps(st["Action"])] == [], others
    assert {st["Sid"]: st for st in granted if st.get("Sid") in ledger} == ledger


# --------------------------------------------------------------------------------------------------
# TLS to the database: verify-full with database.caBundle, an honest "not verified" without it.

# A self-signed CA made for these tests (no key kept), named relative to the project as a user would.
TEST_CA = "tests/components/data/test-rds-ca.pem"
TEST_CA_FILE = Path(__file__).parent / "data" / "test-rds-ca.pem"
WITH_CA = {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres", "caBundle": TEST_CA}}
TLS_SYNTHESES = [
    ("primary", WITH_CA, "us-east-1"),
    ("dr", {**WITH_CA, "dr:active": True, "dr:failback": "replicate"}, "us-west-2"),
]


def driver_functions(s: synth.Synthesis) -> list[synth.Resource]:
    """The payments and ledger marker functions: the two that connect to the database with pg8000."""
    found = [
        f
        for f in s.by_type("aws:lambda/function:Function")
        if f.name.endswith(("-api-payments", "-ledger-marker"))
    ]
    assert len(found) == 2, [f.name for f in s.by_type("aws:lambda/function:Function")]
    return found


def unpacked(fn: synth.Resource, task_root: Path, env: dict[str, str]) -> dict[str, str]:
    """The function's archive unpacked into ``task_root`` as Lambda unpacks it into /var/task, and its
    environment with /var/task read as ``task_root``: the files the deployed function would open."""
    for name, source in fn.archive.items():
        target = task_root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(source).read_bytes())
    task = str(Path(CA_BUNDLE_FUNCTION_PATH).parent)
    return {k: v.replace(task, str(task_root), 1) if v.startswith(task + "/") else v for k, v in env.items()}


@pytest.mark.parametrize(("stack", "overrides", "region"), TLS_SYNTHESES, ids=["primary", "dr"])
def test_with_a_ca_bundle_the_functions_verify_the_database_with_the_file_their_archive_carries(
    stack: str, overrides: dict[str, Any], region: str, tmp_path: Path
) -> None:
    """break11 #5: with ``database.caBundle`` the payments and ledger marker functions connect with
    ``verify-full`` (the chain against the bundle and the host name,
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html), and
    ``DB_SSLROOTCERT`` names a file their own code archive carries, byte for byte the user's."""
    for fn in driver_functions(synthesize(stack, overrides)):
        env = deployed(fn.inputs["environment"]["variables"], region)
        assert env.get("DB_SSLMODE") == "verify-full", f"{fn.name} ({fn.urn}): {env.get('DB_SSLMODE')}"
        assert env.get("DB_SSLROOTCERT") == CA_BUNDLE_FUNCTION_PATH, f"{fn.name} ({fn.urn}): {sorted(env)}"
        shipped = fn.archive.get(CA_BUNDLE_ARCHIVE_NAME)
        assert shipped is not None, f"{fn.name} ({fn.urn}): no {CA_BUNDLE_ARCHIVE_NAME} in its archive"
        assert Path(shipped).read_bytes() == TEST_CA_FILE.read_bytes(), shipped

        target = ledger_from_env(unpacked(fn, tmp_path / fn.name, env), region)

        assert isinstance(target, DriverLedger) and target.sslmode == "verify-full", target
        context = ssl_context(target)
        assert isinstance(context, ssl.SSLContext), context
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname, fn.name
        assert [c["subject"] for c in context.get_ca_certs()] == [
            ((("commonName", "pilotlight test RDS CA"),),)
        ], f"{fn.name}: trusts more than the bundle"


@pytest.mark.parametrize(("stack", "overrides", "region", "path"), SYNTHESES[2:], ids=IDS[2:])
def test_without_a_ca_bundle_tls_is_required_and_the_plan_warns_it_is_not_verified(
    stack: str, overrides: dict[str, Any], region: str, path: LedgerPath
) -> None:
    """No bundle can ship that the user did not download, so the functions fall back to what the
    server enforces anyway (``rds.force_ssl``): encrypted, not verified (``require``), no
    ``DB_SSLROOTCERT``, nothing extra in the archive; and ``python -m automation plan`` says so for
    each function, naming the key that fixes it."""
    s = synthesize(stack, overrides)
    for fn in driver_functions(s):
        env = fn.inputs["environment"]["variables"]
        assert env.get("DB_SSLMODE") == "require" and "DB_SSLROOTCERT" not in env, f"{fn.name}: {env}"
        assert CA_BUNDLE_ARCHIVE_NAME not in fn.archive and fn.archive, f"{fn.name} ({fn.urn})"
    text, data = database_tls_section({stack: s})
    for fn in driver_functions(s):
        line = next(line for line in text.splitlines() if f" {fn.name}: " in line)
        assert line.strip().startswith("warning:"), line
        assert "NOT verified" in line and "pilotlight:database.caBundle" in line, line
    assert len(data["unverified"]) == 2, data

    verified_text, verified = database_tls_section({stack: synthesize(stack, {**overrides, **WITH_CA})})
    assert verified["unverified"] == [] and "warning" not in verified_text, verified_text
