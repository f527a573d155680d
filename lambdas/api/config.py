"""Settings for the API function, read from its environment variables.

Each route parses only the settings it uses, on every invocation: parsing is a few dictionary
look-ups, and reading them per request means a fresh environment (a test, a redeploy) is always seen.
A missing or bad variable raises ConfigError naming it; the handler answers 500 and logs the name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ROLES = ("primary", "dr")
DB_MODES = ("rds-replica", "aurora-global")


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
class PaymentSettings:
    """What the payment routes need.

    Attributes:
        region: the function's own region (``AWS_REGION``); stored on each payment.
        table_name: the DynamoDB table in that region (``TABLE_NAME``).
        receipts_bucket: the S3 bucket for receipts in that region (``RECEIPTS_BUCKET``).
        receipts_kms_key_id: optional KMS key for receipts (``RECEIPTS_KMS_KEY_ID``); unset means S3
            uses the account's AWS managed key for S3.
    """

    region: str
    table_name: str
    receipts_bucket: str
    receipts_kms_key_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PaymentSettings:
        """Read the settings; raises ConfigError naming the first missing variable."""
        return cls(
            region=_required(env, "AWS_REGION"),
            table_name=_required(env, "TABLE_NAME"),
            receipts_bucket=_required(env, "RECEIPTS_BUCKET"),
            receipts_kms_key_id=_optional(env, "RECEIPTS_KMS_KEY_ID"),
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
    """

    region: str
    role: str
    table_name: str | None
    latch_parameter: str
    latch_region: str
    database: DatabaseTarget | None

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
        return cls(
            region=_required(env, "AWS_REGION"),
            role=role,
            table_name=_optional(env, "TABLE_NAME"),
            latch_parameter=_required(env, "LATCH_PARAMETER"),
            latch_region=_required(env, "LATCH_REGION"),
            database=database,
        )
