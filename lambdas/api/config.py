"""Settings for the API function, read from its environment variables.

Each route parses only the settings it uses, on every invocation: parsing is a few dictionary
look-ups, and reading them per request means a fresh environment (a test, a redeploy) is always seen.
A missing or bad variable raises ConfigError naming it; the handler answers 500 and logs the name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

ROLES = ("primary", "dr")
DB_MODES = ("rds-replica", "aurora-global")
SSL_MODES = ("require", "verify-full", "disable")
"""``DB_SSLMODE`` values, named as libpq names them
(https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-SSLMODE-STATEMENTS)."""
DEFAULT_DB_PORT = 5432
# A regional RDS endpoint names its region: <name>.<id>.<region>.rds.amazonaws.com (.cn in China);
# an Aurora cluster's writer/reader/custom endpoint puts cluster-, cluster-ro- or cluster-custom-
# before the id, an RDS Proxy's proxy-
# (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Endpoints.html). An Aurora
# global database's writer endpoint, <name>.global-<id>.global.rds.amazonaws.com, names no region:
# it "always points to the writer DB instance in the current primary cluster", wherever that is now
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-rds-globalcluster-globalendpoint.html;
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-connecting.html),
# so it does not match.
_RDS_HOST = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.(?:cluster-(?:ro-|custom-)?|proxy-)?[a-z0-9]+"
    r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?\.?$"
)
_LOOPBACK = frozenset({"localhost", "::1"})
DB_HOST_FORM = "<name>.<id>.<region>.rds.amazonaws.com"


class ConfigError(ValueError):
    """An environment variable the route needs is missing or holds a value it cannot use."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class DataApiLedger:
    """The ledger through the RDS Data API: this region's Aurora cluster, no driver, no VPC.

    Attributes:
        cluster_arn: this region's member cluster of the global database (``DB_CLUSTER_ARN``).
        secret_arn: the credentials secret in this region (``DB_SECRET_ARN``).
        database: the database name (``DB_NAME``).
    """

    cluster_arn: str
    secret_arn: str
    database: str


@dataclass(frozen=True)
class DriverLedger:
    """The ledger through the pure-Python driver ``pg8000``, from a function attached to the VPC.

    Attributes:
        host, port: this region's database endpoint (``DB_HOST``, ``DB_PORT``, default 5432).
        database: the database name (``DB_NAME``).
        secret_arn: the credentials secret in this region (``DB_SECRET_ARN``).
        sslmode: ``DB_SSLMODE``, one of :data:`SSL_MODES`; default ``verify-full`` when
            ``DB_SSLROOTCERT`` is set, else ``require`` (the program's parameter groups set
            ``rds.force_ssl``, so the server refuses anything without TLS).
        ca_bundle: ``DB_SSLROOTCERT`` (libpq's ``sslrootcert``), a PEM file of the CA certificates
            ``verify-full`` checks the server's chain against: AWS's RDS bundle, ``global-bundle.pem``
            (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html), carried
            in the function's code package.
    """

    host: str
    port: int
    database: str
    secret_arn: str
    sslmode: str = "require"
    ca_bundle: str | None = None


LedgerTarget = DataApiLedger | DriverLedger


def arn_region(arn: str) -> str:
    """The region field of an ARN (``arn:partition:service:region:account:resource``); "" if none."""
    parts = arn.split(":", 5)
    return parts[3] if len(parts) == 6 and parts[0] == "arn" else ""


def host_region(host: str) -> str | None:
    """The region a regional RDS endpoint name is in; None for any other name (the global endpoint too)."""
    match = _RDS_HOST.search(host.lower())
    return match.group("region") if match else None


def _is_loopback(host: str) -> bool:
    return host.lower() in _LOOPBACK or re.fullmatch(r"127(?:\.\d{1,3}){3}", host) is not None


def _check_db_host(host: str, region: str) -> None:
    """``DB_HOST`` must be a regional RDS endpoint of ``region`` (or this machine's loopback address).

    Anything else may resolve to a database in another region, and a write there would be a second
    writer: the Aurora global writer endpoint (it follows the primary cluster), a CNAME, an IP
    address. A loopback address is the function's own host, never another region's (a local run).
    """
    if _is_loopback(host):
        return
    found = host_region(host)
    allowed = f"allowed: this region's endpoint, {DB_HOST_FORM.replace('<region>', region)}"
    if found is None:
        raise ConfigError(
            f"DB_HOST {host!r} is not a regional RDS endpoint (it may reach any region); {allowed}"
        )
    if found != region:
        raise ConfigError(f"DB_HOST is in region {found}; the function runs in {region}; {allowed}")


def _same_region(name: str, found: str | None, region: str) -> None:
    # The ledger is written in the function's own region or not at all: a write that crossed to
    # the other region's database would be a second writer.
    if found is not None and found != region:
        raise ConfigError(f"{name} is in region {found or '(none)'}; the function runs in {region}")


def ledger_from_env(env: Mapping[str, str], region: str) -> LedgerTarget | None:
    """The ledger's database, or None when the stack gives the function none (``DB_SECRET_ARN`` unset).

    ``DB_HOST`` set: the driver path; otherwise ``DB_CLUSTER_ARN``: the Data API. Every name must
    be in ``region``: raises ConfigError naming the variable otherwise, or when one is missing.
    """
    secret_arn = _optional(env, "DB_SECRET_ARN")
    if secret_arn is None:
        return None
    _same_region("DB_SECRET_ARN", arn_region(secret_arn), region)
    database = _required(env, "DB_NAME")
    host = _optional(env, "DB_HOST")
    if host is not None:
        _check_db_host(host, region)
        port_text = _optional(env, "DB_PORT") or str(DEFAULT_DB_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"DB_PORT is {port_text!r}; allowed: a TCP port, 1 to 65535")
        ca_bundle = _optional(env, "DB_SSLROOTCERT")
        sslmode = _optional(env, "DB_SSLMODE") or ("verify-full" if ca_bundle else "require")
        if sslmode not in SSL_MODES:
            raise ConfigError(f"DB_SSLMODE is {sslmode!r}; allowed: {', '.join(SSL_MODES)}")
        if sslmode == "verify-full" and ca_bundle is None:
            raise ConfigError(
                "DB_SSLROOTCERT is not set; DB_SSLMODE verify-full needs it (a PEM file of CA certificates)"
            )
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ConfigError(f"DB_SSLROOTCERT is {ca_bundle!r}, which is not a file in the function")
        return DriverLedger(host, int(port_text), database, secret_arn, sslmode, ca_bundle)
    cluster_arn = _optional(env, "DB_CLUSTER_ARN")
    if cluster_arn is None:
        raise ConfigError(
            "DB_SECRET_ARN is set but neither DB_HOST (driver) nor DB_CLUSTER_ARN (Data API) is"
        )
    _same_region("DB_CLUSTER_ARN", arn_region(cluster_arn), region)
    return DataApiLedger(cluster_arn, secret_arn, database)


@dataclass(frozen=True)
class PaymentSettings:
    """What the payment routes need.

    Attributes:
        region: the function's own region (``AWS_REGION``); stored on each payment.
        table_name: the DynamoDB table in that region (``TABLE_NAME``).
        receipts_bucket: the S3 bucket for receipts in that region (``RECEIPTS_BUCKET``).
        receipts_kms_key_id: optional KMS key for receipts (``RECEIPTS_KMS_KEY_ID``); unset means S3
            uses the account's AWS managed key for S3.
        ledger: the relational database the payment is recorded in first (see
            :func:`ledger_from_env`); None when the stack has none.
    """

    region: str
    table_name: str
    receipts_bucket: str
    receipts_kms_key_id: str | None = None
    ledger: LedgerTarget | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PaymentSettings:
        """Read the settings; raises ConfigError naming the first missing or bad variable."""
        region = _required(env, "AWS_REGION")
        return cls(
            region=region,
            table_name=_required(env, "TABLE_NAME"),
            receipts_bucket=_required(env, "RECEIPTS_BUCKET"),
            receipts_kms_key_id=_optional(env, "RECEIPTS_KMS_KEY_ID"),
            ledger=ledger_from_env(env, region),
        )


@dataclass(frozen=True)
class RdsReplicaTarget:
    """An RDS instance that is either the source or a cross-region read replica (``DB_MODE=rds-replica``)."""

    db_instance_id: str


@dataclass(frozen=True)
class AuroraGlobalTarget:
    """This region's member cluster of an Aurora global database (``DB_MODE=aurora-global``)."""

    global_cluster_id: str
    db_cluster_arn: str


DatabaseTarget = RdsReplicaTarget | AuroraGlobalTarget


@dataclass(frozen=True)
class HealthSettings:
    """What the health route needs.

    Attributes:
        region: the function's own region (``AWS_REGION``).
        role: ``primary`` or ``dr`` (``STACK_ROLE``).
        table_name: the DynamoDB table the API serves from (``TABLE_NAME``); its status is a check,
            skipped when the stack gives the function no table.
        latch_parameter: the SSM parameter holding the failover latch (``LATCH_PARAMETER``).
        latch_region: the region of that parameter (``LATCH_REGION``), the DR region. Required rather
            than defaulted to ``region``, because in the primary stack that default would be wrong.
        database: the relational database whose writer role is reported, or None when the stack has
            none (``DB_MODE`` unset).
        ledger: the same database's data plane, the way the payment routes reach it
            (:func:`ledger_from_env`), or None when the function has no credentials for it; the
            health check then asks only RDS's control plane (``lambdas/api/health.py``).
    """

    region: str
    role: str
    table_name: str | None
    latch_parameter: str
    latch_region: str
    database: DatabaseTarget | None
    ledger: LedgerTarget | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HealthSettings:
        """Read the settings; raises ConfigError naming the first missing or bad variable."""
        role = _required(env, "STACK_ROLE")
        if role not in ROLES:
            raise ConfigError(f"STACK_ROLE is {role!r}; allowed: {', '.join(ROLES)}")
        mode = _optional(env, "DB_MODE")
        database: DatabaseTarget | None
        if mode is None:
            database = None
        elif mode == "rds-replica":
            database = RdsReplicaTarget(db_instance_id=_required(env, "DB_INSTANCE_ID"))
        elif mode == "aurora-global":
            database = AuroraGlobalTarget(
                global_cluster_id=_required(env, "GLOBAL_CLUSTER_ID"),
                db_cluster_arn=_required(env, "DB_CLUSTER_ARN"),
            )
        else:
            raise ConfigError(f"DB_MODE is {mode!r}; allowed: {', '.join(DB_MODES)} or unset")
        region = _required(env, "AWS_REGION")
        return cls(
            region=region,
            role=role,
            table_name=_optional(env, "TABLE_NAME"),
            latch_parameter=_required(env, "LATCH_PARAMETER"),
            latch_region=_required(env, "LATCH_REGION"),
            database=database,
            ledger=ledger_from_env(env, region) if database is not None else None,
        )
