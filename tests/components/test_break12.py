"""Adversarial review of issue 12 ("Deployable for real"), branch break12: what a real deployment still hits.

Each test names the invariant it protects; a finding still open is a strict expected failure naming it
(B12-n), with a control beside it where the failure could otherwise be the harness's.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from automation import iam, synth
from components.config import ENGINES, ConfigError
from tests.automation.test_review_iam import ACCOUNT, allows
from tests.components.conftest import synthesize

CERTS = {
    "pilotlight:routing": {
        "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/a",
        "drCertificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/b",
    }
}
DOMAIN = "app.example.com"


def _canary_targets(dr: synth.Synthesis) -> dict[str, str]:
    (canary,) = [f for f in dr.by_type("aws:lambda/function:Function") if f.name == "dr-orchestrator-canary"]
    return {t["name"]: t["url"] for t in json.loads(canary.inputs["environment"]["variables"]["TARGETS"])}


def _covered_by_the_domain(host: str, domain: str) -> bool:
    return host == domain or host.endswith(f".{domain}")


# --------------------------------------------------------------------------------------------------
# B12-1: with certificates, the canary probes region A's web tier by the load balancer's DNS name over
# HTTPS, a name the certificate does not cover.


def test_the_canary_probes_region_a_s_https_web_tier_by_a_name_its_certificate_covers() -> None:
    """An HTTPS listener presents its ACM certificate, which is for the names the user requested (here
    ``*.<domain>``). It cannot name the load balancer's ``*.elb.amazonaws.com`` DNS name: "each domain
    name that you specify must be validated to verify that you own or control the domain" (ACM API
    Reference, RequestCertificate: https://docs.aws.amazon.com/acm/latest/APIReference/API_RequestCertificate.html;
    the symptom: kubernetes/kops#6290 "x509: certificate is valid for <DOMAIN>, not elb.amazonaws.com"). The canary
    probes with ``urllib.request``, whose default HTTPS context verifies the certificate and the host
    name (https://docs.python.org/3/library/http.client.html#http.client.HTTPSConnection: "uses
    ssl._create_default_https_context" / ``ssl.create_default_context``: ``check_hostname`` True), as
    :func:`test_control_the_canary_probe_refuses_a_certificate_for_another_name` shows. Route 53's
    health check of the same URL is unaffected (it does not validate certificates), which is why only
    the canary, the automated path, breaks.

    Invariant: every HTTPS URL the canary probes has a host under the configured domain."""
    targets = _canary_targets(synthesize("dr", CERTS))
    assert set(targets) == {"web", "api"}, targets
    bad = {
        name: url
        for name, url in targets.items()
        if urlsplit(url).scheme == "https"
        and not _covered_by_the_domain(urlsplit(url).hostname or "", DOMAIN)
    }
    assert not bad, f"canary targets probed over HTTPS by a name outside {DOMAIN}: {bad}"


@pytest.fixture
def https_for_web_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 answering the web tier's health document, with a certificate for
    ``web.<domain>`` and ``*.<domain>`` only, signed by a CA the process trusts (SSL_CERT_FILE)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "break12 test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"web.{DOMAIN}")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(f"web.{DOMAIN}"), x509.DNSName(f"*.{DOMAIN}")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "region": "us-east-1", "role": "primary"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_control_the_canary_probe_refuses_a_certificate_for_another_name(https_for_web_domain: int) -> None:
    """The canary's own probe (lambdas/health_check/probe.py) against a healthy endpoint whose
    certificate is for ``web.<domain>``, reached by another name (as the ALB is by its DNS name): the
    probe reports it unhealthy, a TLS verification failure, not an HTTP answer."""
    from lambdas.health_check import probe

    target = probe.Target("web", f"https://localhost:{https_for_web_domain}/health")
    result, _ = probe.probe_once(target, timeout=5)
    assert not result.healthy and result.status is None, result
    assert "CERTIFICATE_VERIFY_FAILED" in str(result.error) or "certificate" in str(result.error).lower(), (
        result
    )


def test_the_canary_reaches_region_a_s_alb_and_verifies_the_certificate_for_the_web_name(
    https_for_web_domain: int,
) -> None:
    """The canary's web target as the dr stack declares it with certificates: URL ``https://web.<domain>``,
    ``address`` region A's ALB. Against a healthy endpoint whose certificate is for ``web.<domain>``,
    reached at an address (here 127.0.0.1, as the ALB's DNS name in AWS), the probe verifies the
    certificate for the URL's name and reports healthy.

    Invariant: the probe connects to the target's address and verifies TLS for the URL's host."""
    from lambdas.health_check import probe

    target = probe.Target("web", f"https://web.{DOMAIN}:{https_for_web_domain}/health", address="127.0.0.1")
    result, _ = probe.probe_once(target, timeout=5)
    assert result.healthy and result.status == 200, result


def test_control_an_addressed_probe_still_refuses_a_certificate_for_another_name(
    https_for_web_domain: int,
) -> None:
    """Verification stays on with an address: the same endpoint, named by a URL its certificate does not
    cover, is unhealthy with a TLS verification failure."""
    from lambdas.health_check import probe

    target = probe.Target(
        "web", f"https://web.example.org:{https_for_web_domain}/health", address="127.0.0.1"
    )
    result, _ = probe.probe_once(target, timeout=5)
    assert not result.healthy and result.status is None, result
    assert "CERTIFICATE_VERIFY_FAILED" in str(result.error) or "certificate" in str(result.error).lower(), (
        result
    )


def test_the_dr_stack_declares_the_web_target_s_address_as_region_a_s_alb() -> None:
    """Invariant: with certificates the web target carries region A's ALB DNS name as its address (the
    failover record web.<domain> may point at region B); without them the URL is the ALB's own."""
    dr = synthesize("dr", CERTS)
    (canary,) = [f for f in dr.by_type("aws:lambda/function:Function") if f.name == "dr-orchestrator-canary"]
    (web,) = [
        t for t in json.loads(canary.inputs["environment"]["variables"]["TARGETS"]) if t["name"] == "web"
    ]
    assert web["url"] == f"https://web.{DOMAIN}/health", web
    assert "web-alb" in web["address"] and not _covered_by_the_domain(web["address"], DOMAIN), web
    plain = _canary_targets(synthesize("dr", {}))
    assert urlsplit(plain["web"]).scheme == "http", plain


# --------------------------------------------------------------------------------------------------
# B12-2: two accepted environments' bucket prefixes coincide, and S3 is fenced by that prefix alone.

APP = "abcdefghijklmnopqrstuvwx"  # 24: the longest pilotlight:appName


def _stacks(app: str, environment: str, regions: tuple[str, str]) -> tuple[synth.Synthesis, synth.Synthesis]:
    overrides: dict[str, Any] = {
        "pilotlight:appName": app,
        "pilotlight:environment": environment,
        "pilotlight:primaryRegion": regions[0],
        "pilotlight:drRegion": regions[1],
        "pilotlight:routing": {"domain": f"{environment}.example.com"},
    }
    primary = synth.synthesize("primary", overrides)
    return primary, synth.synthesize("dr", overrides, primary_outputs=primary.outputs)


PAIRS = [
    # test_naming's longest configuration: two environments differing only at the end.
    (APP, "stagingeuwest001", "stagingeuwest002", ("ap-southeast-1", "ap-northeast-1")),
    # An ordinary one: app "checkout-service", environments "staging" and "stage".
    ("checkout-service", "staging", "stage", ("ap-southeast-1", "ap-northeast-1")),
]


@pytest.mark.parametrize(("app", "mine", "theirs", "regions"), PAIRS, ids=["longest", "checkout-service"])
def test_a_deployer_of_one_environment_cannot_change_another_environment_s_bucket(
    app: str, mine: str, theirs: str, regions: tuple[str, str]
) -> None:
    """The deploy policy grants S3 on ``arn:aws:s3:::<bucketPrefix>*`` (automation/iam.py
    ``bucket_resources``) and its Deny of other deployments' tags lists no ``s3:*``
    (``other_deployments_denied``), so the bucket's name is the only fence between environments of one
    account. ``bucket_prefix`` keeps the region and cuts the ``<app>-<env>`` part to S3's limit (a
    bucket name has 3-63 characters, https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html,
    and the provider's ``bucket_prefix`` leaves 37 of them: it appends 26) with no hash of what it cut,
    unlike every other name (components/naming.py ``physical_name``). An IAM wildcard ``*`` matches any
    characters (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).

    Invariant: no write the deploy policy of one environment allows reaches another environment's
    bucket (S3 appends 26 characters to the prefix: the other environment's bucket name is its prefix
    and any suffix)."""
    own_primary, own_dr = _stacks(app, mine, regions)
    other_primary, other_dr = _stacks(app, theirs, regions)
    docs = tuple(iam.deploy_policies([own_primary, own_dr], ACCOUNT))
    tags = {f"aws_ResourceTag/{k}": v for k, v in iam.deployment_tags([other_primary, other_dr]).items()}
    reached = sorted(
        (action, bucket)
        for bucket in (
            r.inputs["bucketPrefix"] + "0" * synth_suffix()
            for s in (other_primary, other_dr)
            for r in s.by_type("aws:s3/bucket:Bucket")
        )
        for action in (
            "s3:PutBucketPolicy",
            "s3:PutLifecycleConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:PutReplicationConfiguration",
            "s3:PutBucketVersioning",
            "s3:PutBucketPublicAccessBlock",
            "s3:DeleteBucket",
        )
        if allows(docs, action, f"arn:aws:s3:::{bucket}", **tags)
    )
    assert not reached, f"{mine}'s deploy policy allows on {theirs}'s buckets: {reached}"


@pytest.mark.parametrize(
    ("prefix", "region"),
    [("pilotlight-production", "us-east-1"), ("checkout-service-prod", "ap-southeast-1")],
)
def test_a_bucket_prefix_that_fits_is_unchanged(prefix: str, region: str) -> None:
    """Invariant: a prefix that fits S3's 37 characters is the one earlier releases gave (no existing
    bucket's name changes); only a shortened one ends in a hash."""
    from components import storage

    assert storage.bucket_prefix(prefix, region) == f"{prefix}-{region}-"


def test_an_existing_bucket_is_never_replaced_for_its_prefix() -> None:
    """Invariant: the bucket ignores bucketPrefix (force-new) once created, so a deployment whose prefix
    the B12-2 rule changed keeps its bucket on the next routine pulumi up."""
    for stack in ("primary", "dr"):
        for r in synthesize(stack, {}).by_type("aws:s3/bucket:Bucket"):
            assert "bucketPrefix" in r.ignore_changes, f"{stack}:{r.name}: {r.ignore_changes}"


def test_the_legacy_bucket_prefix_keeps_an_upgraded_deployment_s_bucket_in_its_policies() -> None:
    """A deployment whose bucket the former rule named (``storage.legacyBucketPrefix``): its bucket
    keeps that prefix and its deploy policy names it, so an upgrade neither renames the bucket nor
    locks the deployer out of it.

    Invariant: with legacyBucketPrefix the bucket and the deploy policy use the former prefix."""
    from components import storage

    app, mine, _, regions = PAIRS[1]
    cfg = {"pilotlight:storage": {"legacyBucketPrefix": True}}
    primary = synth.synthesize(
        "primary",
        {
            "pilotlight:appName": app,
            "pilotlight:environment": mine,
            "pilotlight:primaryRegion": regions[0],
            "pilotlight:drRegion": regions[1],
            **cfg,
        },
    )
    (bucket,) = primary.by_type("aws:s3/bucket:Bucket")
    legacy = storage.legacy_bucket_prefix(f"{app}-{mine}", regions[0])
    assert legacy != storage.bucket_prefix(f"{app}-{mine}", regions[0])
    assert bucket.inputs["bucketPrefix"] == legacy, bucket.inputs
    assert f"arn:aws:s3:::{legacy}*" in iam.bucket_resources([primary])


def synth_suffix() -> int:
    from components.naming import S3_PREFIX_SUFFIX

    return S3_PREFIX_SUFFIX


def test_control_the_deploy_policy_reaches_its_own_bucket() -> None:
    """The probe above is not vacuous: the same check finds the deployer's own bucket writable."""
    app, mine, _, regions = PAIRS[1]
    primary, dr = _stacks(app, mine, regions)
    docs = tuple(iam.deploy_policies([primary, dr], ACCOUNT))
    tags = {f"aws_ResourceTag/{k}": v for k, v in iam.deployment_tags([primary, dr]).items()}
    (bucket,) = [r.inputs["bucketPrefix"] for r in primary.by_type("aws:s3/bucket:Bucket")]
    assert allows(docs, "s3:PutBucketPolicy", f"arn:aws:s3:::{bucket}{'0' * synth_suffix()}", **tags)


# --------------------------------------------------------------------------------------------------
# B12-3: the subnets go into the first azCount zone names, Local Zones included.

LOCAL_ZONES = {"us-west-2": ["us-west-2-lax-1a", "us-west-2-lax-1b"], "us-east-1": ["us-east-1-bos-1a"]}


def _with_local_zones(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mocks answer getAvailabilityZones as the provider does for an account that enabled the
    region's Local Zones: Availability Zones and Local Zones together, sorted by name."""
    original = synth._Mocks.call

    def call(self: Any, args: Any) -> dict[str, Any]:
        answer = original(self, args)
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            region = answer["id"]
            wanted = {f.get("name"): set(f.get("values") or []) for f in dict(args.args).get("filters") or []}
            local = (
                [] if wanted.get("opt-in-status") == {"opt-in-not-required"} else LOCAL_ZONES.get(region, [])
            )
            local = [] if wanted.get("zone-type") == {"availability-zone"} else local
            names = sorted([*answer["names"], *local])
            answer = {**answer, "names": names, "zoneIds": [f"id-{n}" for n in names]}
        return answer

    monkeypatch.setattr(synth._Mocks, "call", call)


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_every_subnet_is_in_an_availability_zone_even_with_local_zones_enabled(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "When Local Zones are enabled in a region, by default the API and this data source include both
    Local Zones and Availability Zones. To return only Availability Zones, see the example section below"
    (pulumi-aws ``aws.getAvailabilityZones``: https://www.pulumi.com/registry/packages/aws/api-docs/getavailabilityzones/,
    whose example filters ``opt-in-status`` = ``opt-in-not-required``); the provider sorts the zones by
    name (terraform-provider-aws, ``dataSourceAvailabilityZonesRead``: ``sort.Slice(... ZoneName ...)``),
    and a Local Zone's name is its region's, a hyphen and a group (``us-west-2-lax-1a``,
    https://docs.aws.amazon.com/local-zones/latest/ug/how-local-zones-work.html), so it sorts before
    ``<region>a``. A Local Zone offers a subset of services (same page, "AWS resources supported in Local
    Zones"): Aurora, interface endpoints of SSM and NAT gateways are not among what every Local Zone
    offers, so the first ``pulumi up`` fails, and a web tier split between a Local Zone and one AZ is not
    the two-AZ tier the plan promises.

    Invariant: every subnet the program creates is in one of the region's Availability Zones."""
    _with_local_zones(monkeypatch)
    s = synth.synthesize(stack, {})
    region = {"primary": "us-east-1", "dr": "us-west-2"}[stack]
    outside = sorted(
        f"{r.name}: {r.inputs['availabilityZone']}"
        for r in s.by_type("aws:ec2/subnet:Subnet")
        if r.inputs["availabilityZone"] in LOCAL_ZONES[region]
    )
    assert not outside, f"subnets in Local Zones: {outside}"


def test_control_without_local_zones_the_subnets_are_in_the_first_availability_zones() -> None:
    """The probe's mock changes nothing else: with no Local Zone in the answer, region B's subnets are in
    its first two Availability Zones."""
    s = synth.synthesize("dr", {})
    assert {r.inputs["availabilityZone"] for r in s.by_type("aws:ec2/subnet:Subnet")} == {
        "us-west-2a",
        "us-west-2b",
    }


# --------------------------------------------------------------------------------------------------
# B12-4: the default RDS for PostgreSQL engine version is one RDS no longer creates.

# RDS for PostgreSQL 16 minors RDS stopped creating: AWS's notice of the end of standard support of
# 16.5-16.8 on 2026-05-31 ("Starting May 1, 2026, you will not be able to create new database instances
# on Amazon RDS for PostgreSQL minor versions ... 16.5, 16.6, 16.7, 16.8 ... will automatically upgrade
# ... to version ... 16.11 (or higher)", quoted in saayam-for-all/database's wiki "AWS RDS instances -
# Health Checks", 2026-05-30, and https://lucaberton.com/blog/aws-rds-postgresql-minor-version-deprecation-may-2026/);
# earlier minors left standard support before them (Release calendar for Amazon RDS for PostgreSQL:
# https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-release-calendar.html).
OLDEST_CREATABLE_POSTGRES_16 = (16, 9)


def test_the_default_postgres_engine_version_is_one_rds_still_creates() -> None:
    """Invariant: the engine version a configuration gets by default is one AWS creates today (a
    version past RDS's end of standard support cannot be chosen for a new instance; one past its
    creation cut-off fails CreateDBInstance with InvalidParameterCombination "Cannot find version")."""
    from components import config

    cfg = config.parse(
        synth.load_stack_config(
            "primary", {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}}
        ),
        stack="primary",
    )
    version = tuple(int(p) for p in cfg.database.engine_version.split(".")[:2])
    # A major version alone ("16") is no minor: CreateDBInstance then takes the engine's default minor, one
    # RDS creates ("you can provide a prefix of the version", pulumi-aws rds.Instance engineVersion).
    assert len(version) == 1 or version[0] != 16 or version >= OLDEST_CREATABLE_POSTGRES_16, (
        f"default postgres engineVersion {cfg.database.engine_version}: RDS creates 16.x only from "
        f"{'.'.join(map(str, OLDEST_CREATABLE_POSTGRES_16))}"
    )


# --------------------------------------------------------------------------------------------------
# B12-5: an RDS instance pins its minor engine version while RDS upgrades it.


@pytest.mark.parametrize("engine", ["postgres"])  # the only rds-replica engine (MySQL is absent: B32-3)
def test_no_rds_instance_asks_for_a_minor_version_rds_may_have_upgraded_past(engine: str) -> None:
    """RDS upgrades an instance with ``AutoMinorVersionUpgrade`` to a newer minor in its maintenance window
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.Maintenance.html), and
    upgrades deprecated minors whatever the setting (the notice quoted for B12-4: "Amazon RDS will
    automatically upgrade ... to version ... 16.11 (or higher)"). The provider's ``aws_db_instance`` has no
    diff suppression of ``engine_version`` against ``engine_version_actual``: "a configured value ... that
    RDS has automatically upgraded past — still produces an engine_version diff. The update path then sends
    EngineVersion ... and RDS rejects it as a downgrade (e.g. Cannot upgrade postgres from 14.22 to 14.17 /
    InvalidParameterCombination)" (hashicorp/terraform-provider-aws#49496, open; the issue it fixes,
    #39579). The provider documents the way out: "If auto_minor_version_upgrade is enabled, you can provide
    a prefix of the version such as 8.0" (aws_db_instance ``engine_version``); ``ignore_changes`` does too.

    Invariant: every RDS instance the stacks declare either lets RDS own its minor version (a major-only
    ``engineVersion``, or ``engineVersion`` ignored) or turns automatic minor upgrades off."""
    overrides = {"pilotlight:database": {"mode": "rds-replica", "engine": engine}}
    pinned = []
    for stack in ("primary", "dr"):
        for r in synthesize(stack, overrides).by_type("aws:rds/instance:Instance"):
            version = r.inputs.get("engineVersion")
            if (
                version
                and r.inputs.get("autoMinorVersionUpgrade", True)
                and "engineVersion" not in r.ignore_changes
                and version.count(".") >= (2 if engine == "mysql" else 1)
            ):
                pinned.append(f"{stack}:{r.name} engineVersion={version}")
    assert not pinned, f"RDS instances pinning a minor version RDS upgrades: {pinned}"


def test_a_configured_minor_version_is_the_creation_version_rds_then_owns() -> None:
    """A user's full ``engineVersion`` (16.4) is what the instance is created with; region A's instance
    ignores it afterwards, so an instance RDS upgraded is never asked to go back.

    Invariant: region A's RDS instance with automatic minor upgrades ignores engineVersion."""
    s = synthesize(
        "primary",
        {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres", "engineVersion": "16.4"}},
    )
    (instance,) = s.by_type("aws:rds/instance:Instance")
    assert instance.inputs["engineVersion"] == "16.4", instance.inputs
    assert instance.inputs.get("autoMinorVersionUpgrade") is True
    assert "engineVersion" in instance.ignore_changes, f"{instance.name}: {instance.ignore_changes}"


# --------------------------------------------------------------------------------------------------
# B12-6: rds-replica with engine mysql (the mode's default engine) ships a PostgreSQL-only ledger.


def _payments(stack: str, engine: str) -> synth.Resource:
    s = synthesize(stack, {"pilotlight:database": {"mode": "rds-replica", "engine": engine}})
    (fn,) = [f for f in s.by_type("aws:lambda/function:Function") if f.name.endswith("-api-payments")]
    return fn


ENGINE_DRIVERS = {"postgres": ("pg8000/",), "aurora-postgresql": ("pg8000/",)}
"""The client the payments function needs per engine (rds-replica: pg8000 to the instance; Aurora: the Data
API through boto3, with pg8000 packaged all the same)."""


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_the_payments_function_carries_a_driver_for_every_engine_the_config_accepts(stack: str) -> None:
    """B12-6 (fixed by making MySQL absent, break32 B32-3): rds-replica defaulted to engine mysql while the
    payments function's only driver path is pg8000 (lambdas/api/ledger.py driver_executor), a PostgreSQL
    wire-protocol client: every POST /payments failed while /health (RDS API only) answered 200. pg8000 is
    "a pure-Python PostgreSQL driver" (https://github.com/tlocke/pg8000); a MySQL server speaks the MySQL
    client/server protocol (https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html).

    Invariant: for every engine the config accepts for rds-replica, the function that writes the ledger
    carries a client for it; and MySQL is refused before anything is synthesized."""
    for engine in ENGINES["rds-replica"]:
        fn = _payments(stack, engine)
        assert any(n.startswith(ENGINE_DRIVERS[engine]) for n in fn.archive), (
            engine,
            sorted(fn.archive)[:20],
        )
    with pytest.raises(ConfigError, match=r"pilotlight:database\.engine: 'mysql'"):
        _payments(stack, "mysql")


def test_control_the_postgres_payments_function_carries_pg8000() -> None:
    """The probe reads the packaged archive: with engine postgres the driver the code imports is there."""
    fn = _payments("primary", "postgres")
    assert any(n.startswith("pg8000/") for n in fn.archive), sorted(fn.archive)[:20]
    assert fn.inputs["environment"]["variables"].get("DB_PORT") in (None, "5432")


# --------------------------------------------------------------------------------------------------
# B12-7: a certificate from the wrong region is accepted, and the deployment fails part-way.


@pytest.mark.parametrize(
    ("key", "arn"),
    [
        ("drCertificateArn", "arn:aws:acm:us-east-1:123456789012:certificate/b"),
        ("certificateArn", "arn:aws:acm:us-west-2:123456789012:certificate/a"),
    ],
)
def test_a_certificate_of_another_region_is_refused_before_any_resource(key: str, arn: str) -> None:
    """ACM certificates are regional: "To use a certificate with Elastic Load Balancing for the same
    fully qualified domain name (FQDN) or set of FQDNs in more than one AWS Region, you must request or
    import a certificate for each Region" (https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html),
    and a Regional API Gateway custom domain takes a certificate "in the same Region as your API"
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html).
    DESIGN "What bad input gets": config is validated before any resource is registered, "each stops pulumi
    up with one clear message naming the key".

    Invariant: a certificate ARN whose region is not its stack's region is refused by the config, naming
    the key."""
    from components import config

    routing = {
        "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/a",
        "drCertificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/b",
        key: arn,
    }
    with pytest.raises(config.ConfigError, match=key):
        config.parse(synth.load_stack_config("dr", {"pilotlight:routing": routing}), stack="dr")


def test_control_certificates_of_their_own_regions_are_accepted() -> None:
    from components import config

    cfg = config.parse(synth.load_stack_config("dr", CERTS), stack="dr")
    assert cfg.routing.dr_certificate_arn and ":us-west-2:" in cfg.routing.dr_certificate_arn


@pytest.mark.parametrize(
    ("routing", "key", "expected"),
    [
        (
            {"drCertificateArn": "arn:aws:acm:us-west-2:210987654321:certificate/b"},
            "drCertificateArn",
            "account",
        ),
        ({"certificateArn": "arn:aws:acm:us-east-1:123:certificate/a"}, "certificateArn", "not an ACM"),
    ],
    ids=["another-account", "malformed"],
)
def test_a_certificate_of_another_account_or_a_malformed_arn_is_refused(
    routing: dict[str, str], key: str, expected: str
) -> None:
    """Invariant: both certificates are of the one account both stacks deploy into, and each ARN has
    ACM's form (arn:aws:acm:<region>:<account>:certificate/<id>); the message names the key."""
    from components import config

    merged = {**CERTS["pilotlight:routing"], **routing}
    with pytest.raises(config.ConfigError, match=f"{key}.*{expected}"):
        config.parse(synth.load_stack_config("dr", {"pilotlight:routing": merged}), stack="dr")


# --------------------------------------------------------------------------------------------------
# B12-8 (low): the first Graviton family gets an x86_64 image.


def test_an_accepted_graviton_instance_type_gets_an_arm64_image() -> None:
    """ "A1 instances are the first EC2 instances powered by AWS Graviton Processors" (Amazon EC2 A1,
    https://aws.amazon.com/ec2/instance-types/a1/), arm64 only; the program reads the public parameter
    ``/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-<arch>``
    (https://docs.aws.amazon.com/linux/al2023/ug/ec2.html). An x86_64 image cannot boot on it (RunInstances:
    "The architecture 'x86_64' of the specified instance type does not match the architecture 'arm64'").

    Invariant: the web tier's image parameter names the architecture of the configured instance type."""
    s = synth.synthesize("primary", {"pilotlight:compute": {"instanceType": "a1.large"}})
    names = [args.get("name") for token, args, _ in s.invokes if token == "aws:ssm/getParameter:getParameter"]
    assert names and all(str(n).endswith("-arm64") for n in names), names


def test_control_a_current_graviton_type_gets_the_arm64_image() -> None:
    s = synth.synthesize("primary", {"pilotlight:compute": {"instanceType": "t4g.small"}})
    names = [args.get("name") for token, args, _ in s.invokes if token == "aws:ssm/getParameter:getParameter"]
    assert names and all(str(n).endswith("-arm64") for n in names), names


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("a1.large", "arm64"),
        ("t4g.small", "arm64"),
        ("m6g.large", "arm64"),
        ("m6gd.xlarge", "arm64"),
        ("c7gn.large", "arm64"),
        ("r8g.large", "arm64"),
        ("x2gd.large", "arm64"),
        ("im4gn.large", "arm64"),
        ("is4gen.medium", "arm64"),
        ("g5g.xlarge", "arm64"),
        ("hpc7g.4xlarge", "arm64"),
        ("t3.small", "x86_64"),
        ("m7i-flex.large", "x86_64"),
        ("g4dn.xlarge", "x86_64"),
        ("g5.xlarge", "x86_64"),
        ("g6e.xlarge", "x86_64"),
        ("gr6.4xlarge", "x86_64"),
        ("inf2.xlarge", "x86_64"),
        ("x2iedn.xlarge", "x86_64"),
        ("u-6tb1.metal", "x86_64"),
    ],
)
def test_the_architecture_of_an_instance_family_follows_the_graviton_option_letter(
    instance_type: str, arch: str
) -> None:
    """Invariant: a Graviton family (a1, or a ``g`` among the options after the generation digits) is
    arm64; a GPU series ``g`` (g4dn, g5) and every other family are x86_64."""
    from components.compute import architecture

    assert architecture(instance_type) == arch, instance_type


# --------------------------------------------------------------------------------------------------
# B12-9 (low): requirements.txt admits pulumi-aws releases without the arguments the program passes.


def test_the_pulumi_aws_floor_is_a_release_with_the_write_only_arguments() -> None:
    """pulumi-aws 7.0.0 shipped without write-only fields; pulumi/pulumi-aws#5906 (merged 2025-10-16)
    re-introduced their supporting ``*WoVersion`` fields ahead of the bridge release that enabled the
    ``*Wo`` fields themselves (pulumi/pulumi-terraform-bridge#3215). ``pip install -r requirements.txt``
    keeps an installed pulumi-aws that satisfies the specifier (pip's "only-if-needed" upgrade strategy:
    https://pip.pypa.io/en/stable/user_guide/#only-if-needed-recursive-upgrade).

    Invariant: the floor of every runtime requirement is a release that has every argument the program
    passes (here: the installed SDK, which has them, is not older than the floor allows)."""
    import re

    import pulumi_aws.rds

    requirement = next(
        line
        for line in (Path(synth.ROOT) / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi-aws")
    )
    floor = tuple(int(p) for p in re.search(r">=([0-9.]+)", requirement).group(1).split("."))  # type: ignore[union-attr]
    floor = (*floor, 0, 0, 0)[:3]
    assert (
        "master_password_wo" in pulumi_aws.rds.ClusterArgs.__init__.__code__.co_varnames
    )  # the SDK tested has it
    assert floor > (7, 0, 0), (
        f"requirements.txt {requirement!r} admits pulumi-aws 7.0.0, which lacks master_password_wo"
    )
    from importlib.metadata import version as installed_version

    installed = tuple(int(p) for p in installed_version("pulumi-aws").split(".")[:3])
    assert floor <= installed, f"requirements.txt {requirement!r}: the tested pulumi-aws is {installed}"
    assert "<8" in requirement, f"requirements.txt {requirement!r} must keep the major range"
