"""Stack configuration, parsed and validated once into frozen dataclasses.

Components never read ``pulumi.Config``: ``__main__.py`` calls :func:`load`, which reads every
config value of the stack and hands it to :func:`parse`. ``parse`` is pure (a mapping of
``namespace:key`` to the raw string Pulumi stores), so the whole schema is tested without Pulumi,
and the offline plan validates ``--set`` overrides against :data:`SCHEMA` before running anything.

Every problem is collected and reported at once, each naming the key, the value it had and what
is allowed, before any resource is registered.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from components.ledger_access import CA_BUNDLE_PAGE, LedgerPath, ledger_path, pem_problem

PROJECT = "pilotlight"

ROLES = ("primary", "dr")
DATABASE_MODES = ("aurora-global", "rds-replica")
ENGINES = {"aurora-global": ("aurora-postgresql",), "rds-replica": ("postgres",)}
"""The engines each ``database.mode`` allows: PostgreSQL only ("real or absent"). The payments ledger and
its marker function speak PostgreSQL only (``lambdas/api/ledger.py``: pg8000 or the RDS Data API;
``lambdas/api/marker.py``), and a planned writer move on RDS for MySQL or MariaDB has no sound zero-lag
proof (:data:`ENGINE_WHY`)."""
ENGINE_WHY = (
    "the payments ledger and its marker function speak PostgreSQL only (lambdas/api/ledger.py, "
    "lambdas/api/marker.py)"
)
"""Why every engine but PostgreSQL is refused, said with the refusal."""
ENGINE_WHY_MYSQL = (
    "; and on RDS for MySQL or MariaDB no AWS metric proves that a replica holds every write before a planned writer move: "
    "ReplicaLag is Seconds_Behind_Source, which reads 0 over a slow link while the replica's I/O thread is "
    "still behind (https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html)"
)
"""The further reason for MySQL and MariaDB engines (break32 B32-3)."""
NAT_STRATEGIES = ("per-az", "single", "none")
HEALTH_CHECK_INTERVALS = (10, 30)
CRITICALITIES = ("low", "medium", "high", "critical")
FAILBACK_PHASES = ("replicate", "drain", "switch-writer", "route-back", "complete")
"""The explicit failback procedure, in order (README, "Failing back"):

replicate       re-establish replication from region B to region A (new replica in A)
drain           region B stops taking writes (web tier 0, functions off); replication catches up
switch-writer   lag under the bound: the writer moves back to region A
route-back      the failover switch is released: Route 53 prefers region A again
complete        region B returns to standby (web tier 0, functions off); the latch is cleared
"""

# Commercial AWS regions (opt-in ones included). A typo here would otherwise surface only as a
# provider error after part of the stack was planned.
AWS_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "ca-central-1", "ca-west-1", "mx-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2",
        "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "ap-southeast-7",
        "me-south-1", "me-central-1", "il-central-1", "af-south-1",
    }
)  # fmt: skip

# Every key the program reads, with a one-line description: the plan's `--set` is checked against
# this, and the README's config reference mirrors it.
SCHEMA: dict[str, str] = {
    "pilotlight:role": "primary | dr",
    "pilotlight:appName": "lower-case name used in every resource name (3-24 chars, single hyphens)",
    "pilotlight:environment": "environment name (letters, digits); 'production' protects stateful resources",
    "pilotlight:primaryRegion": "region A, where the application runs",
    "pilotlight:drRegion": "region B, where the pilot light waits",
    "pilotlight:primaryCidr": "VPC CIDR in region A (/16../24)",
    "pilotlight:drCidr": "VPC CIDR in region B (/16../24), must not overlap region A's",
    "pilotlight:azCount": "availability zones per region, 2 or 3",
    "pilotlight:natStrategy": "per-az | single | none (default: per-az on primary, none on dr)",
    "pilotlight:costCenter": "CostCenter tag",
    "pilotlight:criticality": "Criticality tag: low | medium | high | critical",
    "pilotlight:tags": "extra tags (object)",
    "pilotlight:primaryStack": "dr only: the primary stack, e.g. myorg/pilotlight/primary",
    "pilotlight:protect": "protect stateful resources (default: environment == production)",
    "pilotlight:database": "object: mode, engine, engineVersion, instanceClass, primaryInstances, ...",
    "pilotlight:compute": "object: instanceType, minSize, desiredCapacity, maxSize, amiId, drWarmPool",
    "pilotlight:routing": "object: domain, hostedZoneId, healthCheckInterval, failureThreshold, ttl, ...",
    "pilotlight:storage": "object: replicationTimeControl, noncurrentVersionDays, legacyBucketPrefix",
    "dr:active": "dr only: true lights the pilot light (failover)",
    "dr:capacityPercent": "dr only: active web capacity as % of the primary's (1..200, default 100)",
    "dr:autoFailover": "dr only: health alarms start the failover runbook (default false)",
    "dr:failback": f"dr only: failback phase: {' | '.join(FAILBACK_PHASES)}",
    "aws:region": "ignored by pilotlight: every resource uses an explicit regional provider",
}

_DB_KEYS = {
    "mode", "engine", "engineVersion", "instanceClass", "primaryInstances", "drInstances",
    "allocatedStorage", "backupRetentionDays", "dbName", "username", "multiAz",
    "performanceInsights", "maxReplicationLagSeconds", "caBundle",
}  # fmt: skip
_COMPUTE_KEYS = {"instanceType", "minSize", "desiredCapacity", "maxSize", "amiId", "drWarmPool", "volumeSize"}
_ROUTING_KEYS = {
    "domain", "hostedZoneId", "healthCheckInterval", "failureThreshold", "ttl", "certificateArn",
    "alertEmail", "confirmationMinutes", "drCertificateArn",
}  # fmt: skip
_STORAGE_KEYS = {"replicationTimeControl", "noncurrentVersionDays", "legacyBucketPrefix"}

# Hyphen-separated words: no trailing or doubled hyphen, which naming.physical_name would strip or
# collapse (two configurations would then name their resources alike).
_APP_NAME = re.compile(r"^(?=.{3,24}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# No hyphen at all: ``<app>-<env>`` must keep its boundary (app "shop-eu" env "prod" and app "shop"
# env "eu-prod" would share every name).
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9]{0,15}$")
# Names AWS refuses downstream: S3 bucket names must not start with these
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html), and an SSM
# parameter name (the latch, /<app>/...) must not start with aws or ssm, case-insensitive
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
_APP_NAME_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-", "aws", "ssm")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$", re.UNICODE)
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$", re.UNICODE)
_PG_VERSION = re.compile(r"^([0-9]{1,3})(\.[0-9]{1,3})?$")
_DB_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
# The program serves web.<domain>, api.<domain> and api-<region>.<domain> (each region's API by its
# own name): a DNS name has at most 253 characters written out (RFC 1035 2.3.4;
# https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DomainNameFormat.html).
REGION_NAME_MAX = max(len(r) for r in AWS_REGIONS)
DOMAIN_MAX = 253 - len("api-.") - REGION_NAME_MAX
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class ConfigError(ValueError):
    """The stack configuration is invalid. The message lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid pilotlight configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Tags:
    """Tags every resource carries (seed 004), through the providers' default tags."""

    environment: str
    cost_center: str
    criticality: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self, app_name: str, role: str) -> dict[str, str]:
        """The tag map: required tags win over user tags of the same name."""
        return {
            **self.extra,
            "Application": app_name,
            "Environment": self.environment,
            "CostCenter": self.cost_center,
            "Criticality": self.criticality,
            "StackRole": role,
            "ManagedBy": "pulumi",
        }


@dataclass(frozen=True)
class DrFlags:
    """The ``dr:*`` flags; only meaningful on the dr stack (all defaults on primary)."""

    active: bool = False
    capacity_percent: int = 100
    auto_failover: bool = False
    failback: str | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    """``pilotlight:database``. Defaults give the cheapest safe pilot light for each mode."""

    mode: Literal["aurora-global", "rds-replica"] = "aurora-global"
    engine: str = "aurora-postgresql"
    engine_version: str = "16.4"
    instance_class: str = "db.r6g.large"
    primary_instances: int = 2  # writer + one reader in another AZ
    dr_instances: int = 0  # 0 = headless secondary (cheapest); 1 = fastest failover
    allocated_storage: int = 50  # GiB, rds-replica only
    backup_retention_days: int = 7
    db_name: str = "app"
    username: str = "app_admin"
    multi_az: bool = True  # rds-replica primary
    performance_insights: bool = True
    max_replication_lag_seconds: int = 60
    # AWS's RDS CA bundle (global-bundle.pem) the user downloaded: shipped in the functions that
    # connect with a driver, which then verify the server (verify-full). None: TLS, not verified.
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class ComputeConfig:
    """``pilotlight:compute``: the web tier's Auto Scaling group in region A."""

    instance_type: str = "t3.small"
    min_size: int = 2
    desired_capacity: int = 2
    max_size: int = 6
    ami_id: str | None = None  # None: the region's public SSM parameter for Amazon Linux 2023
    dr_warm_pool: int = 0  # stopped instances kept in region B for a fast scale-out
    volume_size: int = 8


@dataclass(frozen=True)
class RoutingConfig:
    """``pilotlight:routing``: Route 53 failover, health checks and alerts."""

    domain: str = "app.example.com"
    hosted_zone_id: str | None = None  # None: the dr stack creates a public zone for `domain`
    health_check_interval: int = 10
    failure_threshold: int = 3
    ttl: int = 60
    certificate_arn: str | None = None  # region A's ACM certificate: HTTPS listener + API custom domain
    dr_certificate_arn: str | None = None  # region B's (ACM certificates are regional)
    alert_email: str | None = None
    confirmation_minutes: int = 3  # automated failover waits this long on a failed primary


@dataclass(frozen=True)
class StorageConfig:
    """``pilotlight:storage``: the application bucket and its replication."""

    replication_time_control: bool = False
    noncurrent_version_days: int = 30
    # The bucket prefix rule of releases before B12-2 (a shortened <app>-<env> without a hash), for a
    # deployment whose bucket was named by it: its deploy policy and boundary then name that bucket. It
    # is the rule two environments' prefixes could coincide under (storage.bucket_prefix); README.
    legacy_bucket_prefix: bool = False


@dataclass(frozen=True)
class StackConfig:
    """The whole configuration of one stack (primary or dr)."""

    role: Literal["primary", "dr"]
    stack: str
    app_name: str
    environment: str
    primary_region: str
    dr_region: str
    primary_cidr: str
    dr_cidr: str
    az_count: int
    nat_strategy: str
    tags: Tags
    protect: bool
    primary_stack: str | None
    dr: DrFlags
    database: DatabaseConfig
    compute: ComputeConfig
    routing: RoutingConfig
    storage: StorageConfig

    @property
    def region(self) -> str:
        """The region this stack's own tier lives in."""
        return self.primary_region if self.role == "primary" else self.dr_region

    @property
    def cidr(self) -> str:
        """This stack's VPC CIDR."""
        return self.primary_cidr if self.role == "primary" else self.dr_cidr

    @property
    def prefix(self) -> str:
        """Name prefix shared by both stacks' resources: ``<app>-<env>``."""
        return f"{self.app_name}-{self.environment}"

    @property
    def latch_parameter_name(self) -> str:
        """The SSM parameter in region B holding the failover latch."""
        return f"/{self.app_name}/{self.environment}/failover-state"

    def tag_map(self) -> dict[str, str]:
        """Default tags for this stack's providers."""
        return self.tags.as_dict(self.app_name, self.role)


# --------------------------------------------------------------------------------------------------
# parsing


T = TypeVar("T")


class _Reader:
    """Reads raw Pulumi config strings, collecting problems instead of raising on the first."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.problems: list[str] = []

    def raw(self, key: str) -> Any:
        value = self.values.get(key)
        return None if value is None or value == "" else value

    def has(self, key: str) -> bool:
        return self.raw(key) is not None

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        return default if value is None else str(value)

    def boolean(self, key: str, default: bool) -> bool:
        return _to_bool(self, key, self.raw(key), default)

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        return _to_int(self, key, self.raw(key), default, lo, hi)

    def obj(self, key: str, allowed: set[str]) -> dict[str, Any]:
        value = self.raw(key)
        if value is None:
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                self.problems.append(f"{key}: {value!r} is not a JSON object")
                return {}
        if not isinstance(value, dict):
            self.problems.append(f"{key}: must be an object, got {value!r}")
            return {}
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.problems.append(f"{key}: unknown field(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
        return value

    def choice(self, key: str, value: Any, allowed: tuple[T, ...], default: T) -> T:
        if value is None:
            return default
        if value not in allowed:
            self.problems.append(f"{key}: {value!r} is not allowed; allowed: {', '.join(map(str, allowed))}")
            return default
        return cast(T, value)


def _to_bool(r: _Reader, key: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    r.problems.append(f"{key}: {value!r} is not a boolean; allowed: true, false")
    return default


def _to_int(r: _Reader, key: str, value: Any, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        r.problems.append(f"{key}: {value!r} is not a whole number; allowed: {lo}..{hi}")
        return default
    if isinstance(value, bool) or not lo <= number <= hi:
        r.problems.append(f"{key}: {value!r} is out of range; allowed: {lo}..{hi}")
        return default
    return number


def _cidr(r: _Reader, key: str, value: str | None) -> ipaddress.IPv4Network | None:
    if value is None:
        r.problems.append(f"{key}: missing; give an IPv4 CIDR between /16 and /24, e.g. 10.0.0.0/16")
        return None
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        r.problems.append(f"{key}: {value!r} is not a valid IPv4 CIDR ({exc}); e.g. 10.0.0.0/16")
        return None
    if not 16 <= net.prefixlen <= 24:
        r.problems.append(f"{key}: {value!r} has prefix /{net.prefixlen}; allowed: /16 to /24")
        return None
    if not net.is_private:
        r.problems.append(f"{key}: {value!r} is not a private range (RFC 1918)")
        return None
    return net


def _region(r: _Reader, key: str, value: str | None) -> str:
    if value is None:
        r.problems.append(f"{key}: missing; give an AWS region such as us-east-1")
        return ""
    if value not in AWS_REGIONS:
        r.problems.append(f"{key}: {value!r} is not an AWS region; allowed: {', '.join(sorted(AWS_REGIONS))}")
    return value


def _tags(r: _Reader, extra_raw: Any) -> dict[str, str]:
    extra: dict[str, str] = {}
    if extra_raw is None:
        return extra
    if isinstance(extra_raw, str):
        try:
            extra_raw = json.loads(extra_raw)
        except json.JSONDecodeError:
            r.problems.append(f"pilotlight:tags: {extra_raw!r} is not a JSON object of tag key to value")
            return extra
    if not isinstance(extra_raw, dict):
        r.problems.append(f"pilotlight:tags: must be an object of tag key to value, got {extra_raw!r}")
        return extra
    for key, value in extra_raw.items():
        key = str(key)
        if key.lower().startswith("aws:"):
            r.problems.append(f"pilotlight:tags: tag key {key!r} uses the reserved prefix 'aws:'")
        elif not _TAG_KEY.match(key):
            r.problems.append(
                f"pilotlight:tags: tag key {key!r} is not allowed; 1-128 characters of letters, digits, "
                "spaces and _ . : / = + - @"
            )
        elif not _TAG_VALUE.match(str(value)):
            r.problems.append(
                f"pilotlight:tags: value of {key!r} ({value!r}) is not allowed; up to 256 characters of "
                "letters, digits, spaces and _ . : / = + - @"
            )
        else:
            extra[key] = str(value)
    return extra


def parse(values: Mapping[str, Any], *, stack: str) -> StackConfig:
    """Parse and validate a stack's raw config (``namespace:key`` → value). Raises ConfigError."""
    r = _Reader(values)

    unknown = sorted(
        k
        for k in values
        if k.split(":", 1)[0] in (PROJECT, "dr") and k not in SCHEMA and values[k] is not None
    )
    for key in unknown:
        near = [s for s in SCHEMA if s.split(":", 1)[0] == key.split(":", 1)[0]]
        r.problems.append(f"{key}: unknown key; known keys: {', '.join(near)}")

    role_raw = r.string("pilotlight:role")
    if role_raw is None:
        r.problems.append("pilotlight:role: missing; allowed: primary, dr")
        role: Literal["primary", "dr"] = "primary"
    else:
        role = r.choice("pilotlight:role", role_raw, ROLES, "primary")

    app_name = r.string("pilotlight:appName", PROJECT) or ""
    if not _APP_NAME.match(app_name) or app_name.startswith(_APP_NAME_RESERVED_PREFIXES):
        r.problems.append(
            f"pilotlight:appName: {app_name!r} breaks AWS naming rules; allowed: 3-24 characters, lower-case "
            "letters, digits and single hyphens between them, starting with a letter and not ending with a "
            f"hyphen, not starting with {', '.join(_APP_NAME_RESERVED_PREFIXES)} (reserved by S3 and SSM)"
        )
    environment = r.string("pilotlight:environment", "production") or ""
    if not _ENVIRONMENT.match(environment):
        r.problems.append(
            f"pilotlight:environment: {environment!r} is not allowed; 1-16 lower-case letters and digits, "
            "starting with a letter, no hyphens (the environment follows the app name after a hyphen)"
        )

    primary_region = _region(r, "pilotlight:primaryRegion", r.string("pilotlight:primaryRegion"))
    dr_region = _region(r, "pilotlight:drRegion", r.string("pilotlight:drRegion"))
    if primary_region and primary_region == dr_region:
        r.problems.append(
            f"pilotlight:drRegion: {dr_region!r} is the same as pilotlight:primaryRegion; the DR region must "
            "be another region"
        )

    primary_net = _cidr(r, "pilotlight:primaryCidr", r.string("pilotlight:primaryCidr", "10.0.0.0/16"))
    dr_net = _cidr(r, "pilotlight:drCidr", r.string("pilotlight:drCidr", "10.1.0.0/16"))
    if primary_net and dr_net and primary_net.overlaps(dr_net):
        r.problems.append(
            f"pilotlight:drCidr: {dr_net} overlaps pilotlight:primaryCidr {primary_net}; the two VPCs must not "
            "overlap (replication, peering and failback need distinct ranges)"
        )

    az_count = r.integer("pilotlight:azCount", 2, 2, 3)
    nat_default = "per-az" if role == "primary" else "none"
    nat_strategy = r.choice(
        "pilotlight:natStrategy", r.string("pilotlight:natStrategy"), NAT_STRATEGIES, nat_default
    )

    criticality = r.choice(
        "pilotlight:criticality", r.string("pilotlight:criticality"), CRITICALITIES, "high"
    )
    cost_center = r.string("pilotlight:costCenter", "operations") or ""
    if not _TAG_VALUE.match(cost_center):
        r.problems.append(f"pilotlight:costCenter: {cost_center!r} is not a valid tag value")
    tags = Tags(environment, cost_center, criticality, _tags(r, r.raw("pilotlight:tags")))

    protect = r.boolean("pilotlight:protect", environment == "production")

    primary_stack = r.string("pilotlight:primaryStack")
    if role == "dr" and primary_stack is None:
        r.problems.append(
            "pilotlight:primaryStack: missing; the dr stack reads region A's outputs from it, e.g. "
            "'myorg/pilotlight/primary'"
        )
    if role == "primary" and primary_stack is not None:
        r.problems.append("pilotlight:primaryStack: only the dr stack takes a primary stack reference")

    dr = _dr_flags(r, role)
    database = _database(r)
    compute = _compute(r)
    routing = _routing(r)
    _certificate_regions(r, routing, primary_region, dr_region)
    storage = _storage(r)
    if (
        role == "primary"
        and nat_strategy == "none"
        and ledger_path(
            database.mode,
            database.engine,
            database.engine_version,
            database.instance_class,
            (primary_region or "", dr_region or ""),
        )[0]
        is LedgerPath.DRIVER
    ):
        # The payments function then runs in the private subnets, and its health answer reads the
        # latch in region B: no interface endpoint reaches another region, only a NAT gateway does.
        r.problems.append(
            "pilotlight:natStrategy: 'none' leaves region A's payments function (in the VPC, to reach "
            f"its {database.engine} database) no way to region B's latch; allowed here: single, per-az"
        )

    if r.problems:
        raise ConfigError(r.problems)
    assert primary_net is not None and dr_net is not None
    return StackConfig(
        role=role,
        stack=stack,
        app_name=app_name,
        environment=environment,
        primary_region=primary_region,
        dr_region=dr_region,
        primary_cidr=str(primary_net),
        dr_cidr=str(dr_net),
        az_count=az_count,
        nat_strategy=nat_strategy,
        tags=tags,
        protect=protect,
        primary_stack=primary_stack,
        dr=dr,
        database=database,
        compute=compute,
        routing=routing,
        storage=storage,
    )


def _dr_flags(r: _Reader, role: str) -> DrFlags:
    keys = ("dr:active", "dr:capacityPercent", "dr:autoFailover", "dr:failback")
    if role == "primary":
        for key in keys:
            if r.has(key):
                r.problems.append(
                    f"{key}: set on the primary stack; dr:* flags belong to the dr stack only "
                    "(pulumi config rm {key} -s <primary>)".replace("{key}", key)
                )
        return DrFlags()
    failback_raw = r.string("dr:failback")
    failback = (
        None
        if failback_raw is None
        else r.choice("dr:failback", failback_raw, FAILBACK_PHASES, FAILBACK_PHASES[0])
    )
    active = r.boolean("dr:active", False)
    if failback is not None and failback != "complete" and not active:
        r.problems.append(
            f"dr:failback: {failback!r} needs dr:active true (the failback phases run from an active DR "
            "region; only the last phase, 'complete', goes with dr:active false)"
        )
    if failback == "complete" and active:
        r.problems.append("dr:failback: 'complete' returns region B to standby; set dr:active false with it")
    return DrFlags(
        active=active,
        capacity_percent=r.integer("dr:capacityPercent", 100, 1, 200),
        auto_failover=r.boolean("dr:autoFailover", False),
        failback=failback,
    )


def _database(r: _Reader) -> DatabaseConfig:
    key = "pilotlight:database"
    data = r.obj(key, _DB_KEYS)
    d = DatabaseConfig()
    mode = r.choice(f"{key}.mode", data.get("mode"), DATABASE_MODES, d.mode)
    default_engine = ENGINES[mode][0]
    engine = str(data.get("engine", default_engine))
    if engine not in ENGINES[mode]:
        # One problem, naming every mode's engines and why no other is offered; the checks after this
        # one see the mode's own engine, so the engine is reported once.
        per_mode = "; ".join(f"{m}: {', '.join(e)}" for m, e in ENGINES.items())
        why = ENGINE_WHY + (ENGINE_WHY_MYSQL if "mysql" in engine or "mariadb" in engine else "")
        r.problems.append(
            f"{key}.engine: {engine!r} is not supported by mode {mode!r}; allowed: {', '.join(ENGINES[mode])} "
            f"({per_mode}). Why: {why}"
        )
        engine = default_engine
    # rds-replica defaults to a major version only: "If auto_minor_version_upgrade is enabled, you can provide
    # a prefix of the version such as 8.0 (for 8.0.36). The actual engine version used is returned in the
    # attribute engineVersionActual" (pulumi-aws rds.Instance engineVersion,
    # https://www.pulumi.com/registry/packages/aws/api-docs/rds/instance/), so CreateDBInstance picks the
    # engine's current default minor, one RDS still creates: a pinned minor ages out (RDS stops creating
    # minors past their end of standard support: PostgreSQL release calendar,
    # https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-release-calendar.html).
    # Region A's instance lets RDS own its minor afterwards (primary_data.py: engineVersion ignored).
    # Aurora keeps a full version: the global cluster's upgrades are the program's (engine_upgrade.py).
    default_version = {"aurora-postgresql": "16.4", "postgres": "16"}.get(engine, "16.4")
    default_class = "db.r6g.large" if mode == "aurora-global" else "db.t4g.medium"

    def i(name: str, default: int, lo: int, hi: int) -> int:
        return _to_int(r, f"{key}.{name}", data.get(name), default, lo, hi)

    def b(name: str, default: bool) -> bool:
        return _to_bool(r, f"{key}.{name}", data.get(name), default)

    instance_class = str(data.get("instanceClass", default_class))
    if not instance_class.startswith("db.") or not _INSTANCE_TYPE.match(instance_class[3:]):
        r.problems.append(
            f"{key}.instanceClass: {instance_class!r} is not an RDS instance class (e.g. db.r6g.large)"
        )
    db_name = str(data.get("dbName", d.db_name))
    username = str(data.get("username", d.username))
    for name, value in (("dbName", db_name), ("username", username)):
        if not _DB_IDENT.match(value):
            r.problems.append(
                f"{key}.{name}: {value!r} is not allowed; 1-63 letters, digits or _, starting with a letter"
            )
    engine_version = str(data.get("engineVersion", default_version))
    # PostgreSQL (both engines here) names a version MAJOR.MINOR since 10, the major first
    # (https://www.postgresql.org/support/versioning/); RDS and Aurora offer majors 11 and later
    # (https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-versions.html), and
    # the parameter group family is postgres<major> / aurora-postgresql<major>: another engine's version
    # ("8.0.40", MySQL's) would render a family AWS does not have (break13b B13b-4b).
    version = _PG_VERSION.match(engine_version)
    if version is None or int(version.group(1)) < 11:
        r.problems.append(
            f"{key}.engineVersion: {engine_version!r} is not a PostgreSQL version of {engine!r}; expected "
            f"MAJOR or MAJOR.MINOR with major 11 or later (e.g. {default_version!r})"
        )
    return DatabaseConfig(
        mode=cast(Literal["aurora-global", "rds-replica"], mode),
        engine=engine,
        engine_version=engine_version,
        instance_class=instance_class,
        primary_instances=i("primaryInstances", d.primary_instances, 1, 16),
        dr_instances=i("drInstances", d.dr_instances, 0, 3),
        allocated_storage=i("allocatedStorage", d.allocated_storage, 20, 65536),
        backup_retention_days=i("backupRetentionDays", d.backup_retention_days, 1, 35),
        db_name=db_name,
        username=username,
        multi_az=b("multiAz", d.multi_az),
        performance_insights=b("performanceInsights", d.performance_insights),
        max_replication_lag_seconds=i("maxReplicationLagSeconds", d.max_replication_lag_seconds, 1, 3600),
        ca_bundle=_ca_bundle(r, f"{key}.caBundle", data.get("caBundle")),
    )


PROJECT_DIR = Path(__file__).resolve().parent.parent
"""The directory of Pulumi.yaml: a relative ``database.caBundle`` is read from here."""


def _ca_bundle(r: _Reader, key: str, value: Any) -> Path | None:
    """``database.caBundle``: the path of a PEM file of CA certificates, checked as the function loads it."""
    if value is None or value == "":
        return None
    allowed = (
        "allowed: the path (absolute, or relative to the project directory) of a PEM file of CA "
        f"certificates, AWS's global-bundle.pem from {CA_BUNDLE_PAGE}"
    )
    if not isinstance(value, str):
        r.problems.append(f"{key}: {value!r} is not a path; {allowed}")
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else PROJECT_DIR / path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        r.problems.append(f"{key}: {value!r} does not exist; {allowed}")
        return None
    except OSError as exc:
        r.problems.append(f"{key}: {value!r} cannot be read ({exc.strerror}); {allowed}")
        return None
    problem = pem_problem(data)
    if problem is not None:
        r.problems.append(f"{key}: {value!r} is not a PEM file of CA certificates: {problem}; {allowed}")
        return None
    return path.resolve()


def _compute(r: _Reader) -> ComputeConfig:
    key = "pilotlight:compute"
    data = r.obj(key, _COMPUTE_KEYS)
    d = ComputeConfig()

    def i(name: str, default: int, lo: int, hi: int) -> int:
        return _to_int(r, f"{key}.{name}", data.get(name), default, lo, hi)

    instance_type = str(data.get("instanceType", d.instance_type))
    if not _INSTANCE_TYPE.match(instance_type):
        r.problems.append(
            f"{key}.instanceType: {instance_type!r} is not an EC2 instance type (e.g. t3.small)"
        )
    min_size = i("minSize", d.min_size, 1, 100)
    desired = i("desiredCapacity", d.desired_capacity, 1, 100)
    max_size = i("maxSize", d.max_size, 1, 100)
    if not min_size <= desired <= max_size:
        r.problems.append(
            f"{key}: minSize {min_size} <= desiredCapacity {desired} <= maxSize {max_size} must hold"
        )
    ami_id = data.get("amiId")
    if ami_id is not None and not re.match(r"^ami-[0-9a-f]{8,17}$", str(ami_id)):
        r.problems.append(f"{key}.amiId: {ami_id!r} is not an AMI id (ami-0123456789abcdef0)")
    return ComputeConfig(
        instance_type=instance_type,
        min_size=min_size,
        desired_capacity=desired,
        max_size=max_size,
        ami_id=None if ami_id is None else str(ami_id),
        dr_warm_pool=i("drWarmPool", d.dr_warm_pool, 0, 100),
        volume_size=i("volumeSize", d.volume_size, 8, 1024),
    )


def _routing(r: _Reader) -> RoutingConfig:
    key = "pilotlight:routing"
    data = r.obj(key, _ROUTING_KEYS)
    d = RoutingConfig()
    domain = str(data.get("domain", d.domain)).lower().rstrip(".")
    if not _DOMAIN.match(domain):
        r.problems.append(f"{key}.domain: {domain!r} is not a DNS name (e.g. app.example.com)")
    elif len(domain) > DOMAIN_MAX:
        r.problems.append(
            f"{key}.domain: {domain!r} has {len(domain)} characters; allowed: at most {DOMAIN_MAX}, so that "
            "web.<domain>, api.<domain> and api-<region>.<domain> stay within DNS's 253 (RFC 1035 2.3.4)"
        )
    interval = _to_int(
        r, f"{key}.healthCheckInterval", data.get("healthCheckInterval"), d.health_check_interval, 10, 30
    )
    if interval not in HEALTH_CHECK_INTERVALS:
        r.problems.append(f"{key}.healthCheckInterval: {interval} is not allowed; allowed: 10, 30 (seconds)")
    zone = data.get("hostedZoneId")
    if zone is not None and not re.match(r"^Z[A-Z0-9]{4,32}$", str(zone)):
        r.problems.append(f"{key}.hostedZoneId: {zone!r} is not a Route 53 zone id (Z...)")
    certs: dict[str, str | None] = {}
    for name in ("certificateArn", "drCertificateArn"):
        value = data.get(name)
        if value is not None and not str(value).startswith("arn:aws:acm:"):
            r.problems.append(f"{key}.{name}: {value!r} is not an ACM certificate ARN")
        certs[name] = None if value is None else str(value)
    if (certs["certificateArn"] is None) != (certs["drCertificateArn"] is None):
        r.problems.append(
            f"{key}: certificateArn and drCertificateArn go together (one ACM certificate per region), "
            "so both regions serve the same scheme"
        )
    email = data.get("alertEmail")
    if email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", str(email)):
        r.problems.append(f"{key}.alertEmail: {email!r} is not an email address")
    return RoutingConfig(
        domain=domain,
        hosted_zone_id=None if zone is None else str(zone),
        health_check_interval=interval,
        failure_threshold=_to_int(
            r, f"{key}.failureThreshold", data.get("failureThreshold"), d.failure_threshold, 1, 10
        ),
        ttl=_to_int(r, f"{key}.ttl", data.get("ttl"), d.ttl, 1, 60),
        certificate_arn=certs["certificateArn"],
        dr_certificate_arn=certs["drCertificateArn"],
        alert_email=None if email is None else str(email),
        confirmation_minutes=_to_int(
            r, f"{key}.confirmationMinutes", data.get("confirmationMinutes"), d.confirmation_minutes, 1, 60
        ),
    )


# "The ARN must have the following form: arn:aws:acm:region:123456789012:certificate/12345678-1234-..."
# (ACM API Reference, DescribeCertificate CertificateArn,
# https://docs.aws.amazon.com/acm/latest/APIReference/API_DescribeCertificate.html).
_ACM_ARN = re.compile(
    r"^arn:aws:acm:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):certificate/[A-Za-z0-9-]+$"
)


def _certificate_regions(r: _Reader, routing: RoutingConfig, primary_region: str, dr_region: str) -> None:
    """Each certificate ARN names its own stack's region, and both name one account.

    ACM certificates are regional: "To use a certificate with Elastic Load Balancing for the same fully
    qualified domain name (FQDN) or set of FQDNs in more than one AWS region, you must request or import a
    certificate for each region" (https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html), and a
    Regional API Gateway custom domain takes a certificate in the API's Region
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html).
    certificateArn serves region A's listener and API domain, drCertificateArn region B's; both stacks are
    deployed into one account (the deploy policy is one account's, automation/iam.py). Refused here, before
    any resource, instead of at the HTTPS listener after the data tier and network exist."""
    key = "pilotlight:routing"
    accounts: dict[str, str] = {}
    for name, arn, region, role in (
        ("certificateArn", routing.certificate_arn, primary_region, "pilotlight:primaryRegion"),
        ("drCertificateArn", routing.dr_certificate_arn, dr_region, "pilotlight:drRegion"),
    ):
        if arn is None or not arn.startswith("arn:aws:acm:"):
            continue  # absent, or already reported as not an ACM ARN
        match = _ACM_ARN.match(arn)
        if match is None:
            r.problems.append(
                f"{key}.{name}: {arn!r} is not an ACM certificate ARN "
                "(arn:aws:acm:<region>:<account>:certificate/<id>)"
            )
            continue
        if region and match["region"] != region:
            r.problems.append(
                f"{key}.{name}: {arn!r} is a certificate of {match['region']}; expected region: {region} "
                f"({role}): ACM certificates are regional, request or import one in {region}"
            )
        accounts[name] = match["account"]
    if len(set(accounts.values())) > 1:
        r.problems.append(
            f"{key}.drCertificateArn: account {accounts['drCertificateArn']} differs from certificateArn's "
            f"{accounts['certificateArn']}; both stacks deploy into one account, whose certificates they use"
        )


def _storage(r: _Reader) -> StorageConfig:
    key = "pilotlight:storage"
    data = r.obj(key, _STORAGE_KEYS)
    d = StorageConfig()
    return StorageConfig(
        replication_time_control=_to_bool(
            r, f"{key}.replicationTimeControl", data.get("replicationTimeControl"), d.replication_time_control
        ),
        noncurrent_version_days=_to_int(
            r,
            f"{key}.noncurrentVersionDays",
            data.get("noncurrentVersionDays"),
            d.noncurrent_version_days,
            1,
            3650,
        ),
        legacy_bucket_prefix=_to_bool(
            r, f"{key}.legacyBucketPrefix", data.get("legacyBucketPrefix"), d.legacy_bucket_prefix
        ),
    )


def load() -> StackConfig:
    """Read every config value of the running stack and parse it. Call once, from ``__main__.py``."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    # The engine hands the program its config through the runtime's map (or PULUMI_CONFIG when run
    # by a language host); reading the whole map lets unknown keys be reported, not ignored.
    values: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse(values, stack=pulumi.get_stack())
