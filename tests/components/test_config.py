"""Config validation: every bad input is refused with a message naming the key and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError, StackConfig, parse

BASE: dict[str, Any] = {
    "pilotlight:role": "primary",
    "pilotlight:appName": "shop",
    "pilotlight:environment": "production",
    "pilotlight:primaryRegion": "us-east-1",
    "pilotlight:drRegion": "us-west-2",
    "pilotlight:primaryCidr": "10.0.0.0/16",
    "pilotlight:drCidr": "10.1.0.0/16",
}
DR = {**BASE, "pilotlight:role": "dr", "pilotlight:primaryStack": "org/pilotlight/primary"}


def parse_with(base: dict[str, Any], **changes: Any) -> StackConfig:
    values = {**base}
    for key, value in changes.items():
        full = key.replace("__", ":").replace("_", "")
        values[full] = json.dumps(value) if isinstance(value, dict) else value
    return parse(values, stack="test")


def test_valid_primary_and_dr_parse_with_documented_defaults() -> None:
    primary = parse(BASE, stack="primary")
    dr = parse(DR, stack="dr")
    assert primary.role == "primary" and primary.nat_strategy == "per-az"
    assert dr.role == "dr" and dr.nat_strategy == "none" and dr.dr.active is False
    assert primary.database.mode == "aurora-global" and primary.database.dr_instances == 0
    assert primary.protect is True  # production protects stateful resources
    assert dr.tag_map()["Environment"] == "production" and "CostCenter" in dr.tag_map()


BAD: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("same region", BASE, {"pilotlight:drRegion": "us-east-1"}, ["pilotlight:drRegion", "same as"]),
    ("overlapping CIDRs", BASE, {"pilotlight:drCidr": "10.0.128.0/17"}, ["pilotlight:drCidr", "overlaps"]),
    ("malformed CIDR", BASE, {"pilotlight:primaryCidr": "10.0.0.300/16"}, ["pilotlight:primaryCidr", "not a valid"]),
    ("host bits set", BASE, {"pilotlight:primaryCidr": "10.0.0.1/16"}, ["pilotlight:primaryCidr"]),
    ("CIDR too large", BASE, {"pilotlight:primaryCidr": "10.0.0.0/8"}, ["pilotlight:primaryCidr", "/16 to /24"]),
    ("public CIDR", BASE, {"pilotlight:primaryCidr": "8.8.0.0/16"}, ["pilotlight:primaryCidr", "private"]),
    ("unknown role", BASE, {"pilotlight:role": "secondary"}, ["pilotlight:role", "primary, dr"]),
    ("dr:active on primary", BASE, {"dr:active": "true"}, ["dr:active", "primary stack", "dr stack only"]),
    ("dr:capacityPercent on primary", BASE, {"dr:capacityPercent": "50"}, ["dr:capacityPercent", "primary"]),
    ("capacity 0", DR, {"dr:capacityPercent": "0"}, ["dr:capacityPercent", "1..200"]),
    ("capacity 201", DR, {"dr:capacityPercent": "201"}, ["dr:capacityPercent", "1..200"]),
    ("capacity not a number", DR, {"dr:capacityPercent": "half"}, ["dr:capacityPercent", "1..200"]),
    ("empty app name", BASE, {"pilotlight:appName": "x"}, ["pilotlight:appName", "naming rules"]),
    ("app name upper case", BASE, {"pilotlight:appName": "MyShop"}, ["pilotlight:appName", "lower-case"]),
    ("app name underscore", BASE, {"pilotlight:appName": "my_shop"}, ["pilotlight:appName"]),
    ("app name trailing hyphen", BASE, {"pilotlight:appName": "shop-"}, ["pilotlight:appName", "hyphen"]),
    ("app name doubled hyphen", BASE, {"pilotlight:appName": "my--shop"}, ["pilotlight:appName", "single hyphens"]),
    ("app name S3 xn--", BASE, {"pilotlight:appName": "xn--shop"}, ["pilotlight:appName", "xn--", "S3"]),
    ("app name S3 sthree-", BASE, {"pilotlight:appName": "sthree-shop"}, ["pilotlight:appName", "sthree-"]),
    ("app name S3 amzn-s3-demo-", BASE, {"pilotlight:appName": "amzn-s3-demo-x"}, ["pilotlight:appName", "amzn-s3-demo-"]),
    ("app name SSM aws", BASE, {"pilotlight:appName": "awsome-shop"}, ["pilotlight:appName", "aws", "SSM"]),
    ("app name SSM ssm", BASE, {"pilotlight:appName": "ssmart"}, ["pilotlight:appName", "ssm", "SSM"]),
    ("environment hyphen", BASE, {"pilotlight:environment": "eu-prod"}, ["pilotlight:environment", "no hyphens"]),
    ("environment trailing hyphen", BASE, {"pilotlight:environment": "prod-"}, ["pilotlight:environment"]),
    ("environment upper case", BASE, {"pilotlight:environment": "Prod"}, ["pilotlight:environment", "lower-case"]),
    ("unknown region", BASE, {"pilotlight:drRegion": "us-west-9"}, ["pilotlight:drRegion", "not an AWS region"]),
    ("missing region", {k: v for k, v in BASE.items() if k != "pilotlight:primaryRegion"}, {},
     ["pilotlight:primaryRegion", "missing"]),
    ("dr without primary stack", {k: v for k, v in DR.items() if k != "pilotlight:primaryStack"}, {},
     ["pilotlight:primaryStack", "missing"]),
    ("reserved tag prefix", BASE, {"pilotlight:tags": json.dumps({"aws:owner": "x"})}, ["pilotlight:tags", "aws:"]),
    ("bad tag key", BASE, {"pilotlight:tags": json.dumps({"team#1": "x"})}, ["pilotlight:tags", "team#1"]),
    ("tag key too long", BASE, {"pilotlight:tags": json.dumps({"k" * 129: "x"})}, ["pilotlight:tags", "1-128"]),
    ("unknown pilotlight key", BASE, {"pilotlight:databse": "{}"}, ["pilotlight:databse", "unknown key"]),
    ("unknown dr key", DR, {"dr:actve": "true"}, ["dr:actve", "unknown key"]),
    ("unknown database.mode", BASE, {"pilotlight:database": json.dumps({"mode": "dynamo"})},
     ["pilotlight:database.mode", "aurora-global, rds-replica"]),
    ("engine the mode does not support", BASE,
     {"pilotlight:database": json.dumps({"mode": "aurora-global", "engine": "mysql"})},
     ["pilotlight:database.engine", "aurora-postgresql"]),
    ("rds engine unsupported", BASE,
     {"pilotlight:database": json.dumps({"mode": "rds-replica", "engine": "oracle-ee"})},
     ["pilotlight:database.engine", "allowed: postgres", "PostgreSQL only"]),
    ("drInstances 4", BASE, {"pilotlight:database": json.dumps({"drInstances": 4})},
     ["pilotlight:database.drInstances", "0..3"]),
    ("drInstances -1", BASE, {"pilotlight:database": json.dumps({"drInstances": -1})},
     ["pilotlight:database.drInstances", "0..3"]),
    ("unknown database field", BASE, {"pilotlight:database": json.dumps({"size": 3})},
     ["pilotlight:database", "unknown field", "size"]),
    ("capacity order", BASE, {"pilotlight:compute": json.dumps({"minSize": 3, "desiredCapacity": 2})},
     ["pilotlight:compute", "minSize 3 <= desiredCapacity 2"]),
    ("health check interval", BASE, {"pilotlight:routing": json.dumps({"healthCheckInterval": 20})},
     ["pilotlight:routing.healthCheckInterval", "10, 30"]),
    ("ttl above 60", BASE, {"pilotlight:routing": json.dumps({"ttl": 300})}, ["pilotlight:routing.ttl", "1..60"]),
    ("failback phase unknown", {**DR, "dr:active": "true"}, {"dr:failback": "later"},
     ["dr:failback", "replicate, drain, switch-writer, route-back, complete"]),
    ("failback without active", DR, {"dr:failback": "replicate"}, ["dr:failback", "needs dr:active true"]),
    ("az count", BASE, {"pilotlight:azCount": "5"}, ["pilotlight:azCount", "2..3"]),
    ("nat strategy", BASE, {"pilotlight:natStrategy": "gateway"}, ["pilotlight:natStrategy", "per-az, single, none"]),
]  # fmt: skip


@pytest.mark.parametrize(("base", "changes", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_refused_naming_the_key_and_allowed_values(
    base: dict[str, Any], changes: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        parse({**base, **changes}, stack="test")
    message = str(err.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize(("app", "env"), [("my-shop", "staging2"), ("a1-b2-c3", "prod"), ("shop", "e")])
def test_hyphenated_app_names_and_plain_environments_are_accepted(app: str, env: str) -> None:
    cfg = parse({**BASE, "pilotlight:appName": app, "pilotlight:environment": env}, stack="t")
    assert cfg.prefix == f"{app}-{env}"


@pytest.mark.parametrize("engine", ["mysql", "mariadb"])
@pytest.mark.parametrize("role", [BASE, DR], ids=["primary", "dr"])
def test_rds_for_mysql_is_absent_one_error_naming_the_key_the_allowed_engines_and_why(
    role: dict[str, Any], engine: str
) -> None:
    """Real or absent (break32 B32-3): the payments ledger and its marker function speak PostgreSQL only, and
    no metric proves a MySQL replica holds every write (Seconds_Behind_Source reads 0 over a slow link). An
    rds-replica on MySQL is refused with exactly one problem (none of the checks after it speaks of the
    engine again), naming the key, each mode's engines and why, before anything is registered."""
    db = {"mode": "rds-replica", "engine": engine}
    # natStrategy none on the primary is refused for a database the function reaches by driver: not here.
    values = {**role, "pilotlight:database": json.dumps(db), "pilotlight:natStrategy": "single"}
    with pytest.raises(ConfigError) as err:
        parse(values, stack="test")
    assert len(err.value.problems) == 1, err.value.problems
    (problem,) = err.value.problems
    for fragment in (
        f"pilotlight:database.engine: {engine!r}",
        "allowed: postgres",
        "aurora-global: aurora-postgresql; rds-replica: postgres",
        "PostgreSQL only",
        "Seconds_Behind_Source",
        "https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html",
    ):
        assert fragment in problem, f"{fragment!r} not in {problem!r}"


def test_rds_replica_defaults_to_postgres() -> None:
    """The only engine rds-replica allows is its default, at a major version only (fix12 B12-5: RDS picks
    and then owns the minor; README "Engine versions")."""
    cfg = parse({**BASE, "pilotlight:database": json.dumps({"mode": "rds-replica"})}, stack="t")
    assert (
        cfg.database.engine == "postgres" and cfg.database.engine_version == "16"
    )  # major only: break12 B12-4


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        parse({**BASE, "pilotlight:drRegion": "us-east-1", "pilotlight:appName": "X"}, stack="t")
    assert len(err.value.problems) == 2


def test_user_tags_cannot_override_required_tags() -> None:
    cfg = parse({**BASE, "pilotlight:tags": json.dumps({"Environment": "fake", "Team": "sre"})}, stack="t")
    tags = cfg.tag_map()
    assert tags["Environment"] == "production" and tags["Team"] == "sre"


# --------------------------------------------------------------------------------------------------
# database.caBundle: AWS's RDS CA bundle the user downloaded (UsingWithRDS.SSL.html), checked at load.

TEST_CA = "tests/components/data/test-rds-ca.pem"  # a self-signed CA made for these tests (no key kept)


def _bad_bundles(tmp: Path) -> dict[str, tuple[Any, str]]:
    """Each kind of bad ``caBundle``: the value, and the words its one error must contain."""
    ca = (Path(__file__).parent / "data" / "test-rds-ca.pem").read_text()
    (tmp / "notes.txt").write_text("download global-bundle.pem here\n")
    (tmp / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n")
    (tmp / "cert-and-key.pem").write_text(
        ca + "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n"
    )
    lines = ca.splitlines()
    (tmp / "truncated.pem").write_text("\n".join([*lines[:3], lines[-1]]) + "\n")
    return {
        "missing": (str(tmp / "global-bundle.pem"), "does not exist"),
        "directory": (str(tmp), "cannot be read"),
        "not PEM": (str(tmp / "notes.txt"), "no PEM certificate"),
        "a private key": (str(tmp / "key.pem"), "no PEM certificate"),
        "a certificate with its key": (str(tmp / "cert-and-key.pem"), "private key"),
        "a broken certificate": (str(tmp / "truncated.pem"), "do not parse"),
        "not a path": (42, "not a path"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "directory",
        "not PEM",
        "a private key",
        "a certificate with its key",
        "a broken certificate",
        "not a path",
    ],
)
def test_a_ca_bundle_that_is_not_a_pem_file_of_certificates_is_one_clear_error(
    case: str, tmp_path: Path
) -> None:
    """``database.caBundle`` is what the function verifies the database with: a file that would not
    load there (lambdas/api/ledger.py ``ssl_context``) stops the config load, in one message naming
    the key, the value and what is allowed, not a failing ledger call after deploy."""
    value, words = _bad_bundles(tmp_path)[case]
    with pytest.raises(ConfigError) as err:
        parse_with(
            BASE, pilotlight__database={"mode": "rds-replica", "engine": "postgres", "caBundle": value}
        )
    assert len(err.value.problems) == 1, err.value.problems
    problem = err.value.problems[0]
    assert problem.startswith("pilotlight:database.caBundle: "), problem
    assert words in problem and "PEM file of CA certificates" in problem and "global-bundle.pem" in problem, (
        problem
    )
    assert "Traceback" not in str(err.value)


def test_a_ca_bundle_is_read_relative_to_the_project_or_absolute() -> None:
    """A relative path is the project directory's (where Pulumi.yaml is, ``pulumi up``'s working
    directory), so the same config names the same file from any directory; unset means None."""
    relative = parse_with(
        BASE, pilotlight__database={"mode": "rds-replica", "engine": "postgres", "caBundle": TEST_CA}
    )
    absolute = Path(__file__).parent / "data" / "test-rds-ca.pem"
    assert relative.database.ca_bundle == absolute.resolve()
    again = parse_with(BASE, pilotlight__database={"caBundle": str(absolute)})
    assert again.database.ca_bundle == absolute.resolve()
    assert parse(BASE, stack="test").database.ca_bundle is None
