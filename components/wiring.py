"""Stack wiring: the dr stack reads region A's outputs through a StackReference, validated up front.

Outputs are read once, as plain values, before any DR resource is registered: a missing output stops
the update with one message naming every missing output and the stack, instead of failing half way
through. Nothing here reads from region A itself: the outputs come from the state backend, which is
why that backend must survive region A (Pulumi Cloud, or an S3 backend in region B).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from components.config import DatabaseConfig
from components.data import region_a_database
from components.failover import Capacity

# Every output of the primary stack that the dr stack reads. The primary stack exports all of them.
REQUIRED_PRIMARY_OUTPUTS: tuple[str, ...] = (
    "primaryRegion",
    "vpcId",
    "vpcCidr",
    "webCapacity",
    "webAlbDns",
    "webAlbArnSuffix",
    "apiName",
    "webHealthUrl",
    "asgName",
    "apiHost",
    "apiStage",
    "apiHealthUrl",
    "functionNames",
    "eventSourceMappingIds",
    # data tier (the mode-specific ones are checked by check_database_outputs)
    "databaseMode",
    "databaseEngine",
    "databaseEngineVersion",
    "kmsKeyArn",
    "appBucketName",
    "appBucketArn",
    "tableName",
    "dbSecretReplicaArn",
)


class StackWiringError(ValueError):
    """The primary stack's outputs cannot be used by the dr stack."""


@dataclass(frozen=True)
class PrimaryOutputs:
    """Region A's outputs as the dr stack sees them."""

    stack: str
    values: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def web_capacity(self) -> Capacity:
        raw = self.values["webCapacity"]
        return Capacity(int(raw["min"]), int(raw["desired"]), int(raw["max"]))

    @classmethod
    def validate(
        cls,
        stack: str,
        values: Mapping[str, Any],
        expected_region: str,
        *,
        expected_database_mode: str | None = None,
    ) -> PrimaryOutputs:
        """Check every required output is present and usable; one error lists all problems."""
        missing = [k for k in REQUIRED_PRIMARY_OUTPUTS if values.get(k) in (None, "")]
        if missing:
            raise StackWiringError(
                f"primary stack {stack!r} (pilotlight:primaryStack) is missing output(s) {', '.join(missing)}. "
                f"Deploy it first (`pulumi up -s {stack.rsplit('/', 1)[-1]}`) with this version of pilotlight."
            )
        out = cls(stack, dict(values))
        if values["primaryRegion"] != expected_region:
            raise StackWiringError(
                f"primary stack {stack!r} runs in {values['primaryRegion']!r} but pilotlight:primaryRegion is "
                f"{expected_region!r}; point pilotlight:primaryStack at the right stack"
            )
        try:
            out.web_capacity  # noqa: B018 - parse now, fail with a clear message
        except (KeyError, TypeError, ValueError) as exc:
            raise StackWiringError(
                f"primary stack {stack!r}: output 'webCapacity' is {values['webCapacity']!r}; expected "
                f"{{min, desired, max}} ({exc})"
            ) from exc
        if expected_database_mode is not None:
            check_database_outputs(stack, values, expected_database_mode)
        return out


def read_primary_outputs(
    stack: str, expected_region: str, *, expected_database_mode: str | None = None
) -> PrimaryOutputs:
    """Read and validate the primary stack's outputs (plain values) through a StackReference."""
    ref = pulumi.StackReference(f"{stack}-ref", stack_name=stack)
    values: dict[str, Any] = {}
    for key in REQUIRED_PRIMARY_OUTPUTS + OPTIONAL_PRIMARY_OUTPUTS:
        details = _sync_await(ref.get_output_details(key))
        values[key] = details.value if details.value is not None else details.secret_value
    return PrimaryOutputs.validate(
        stack, values, expected_region, expected_database_mode=expected_database_mode
    )


# --- data tier ---
# Outputs of one database mode only: required when the dr stack runs that mode.
DATABASE_MODE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "rds-replica": (
        "dbInstanceArn",
        "dbInstanceId",
        "dbSubnetGroupName",  # the failback replica in region A reuses the primary's network pieces
        "dbParameterGroupName",
        "dbSecurityGroupId",
    ),
    "aurora-global": ("globalClusterId", "primaryClusterId", "primaryClusterArn"),
}


def check_database_outputs(stack: str, values: Mapping[str, Any], expected_mode: str) -> None:
    """The primary's database mode is this stack's, and its outputs for that mode are all there."""
    mode = values.get("databaseMode")
    if mode != expected_mode:
        raise StackWiringError(
            f"primary stack {stack!r} runs pilotlight:database.mode {mode!r} but this dr stack has "
            f"{expected_mode!r}; both stacks must use the same mode (a replica cannot follow a different kind "
            f"of database). Set pilotlight:database.mode to {mode!r} on the dr stack, or change and redeploy "
            "the primary first."
        )
    missing = [k for k in DATABASE_MODE_OUTPUTS.get(expected_mode, ()) if values.get(k) in (None, "")]
    if missing:
        raise StackWiringError(
            f"primary stack {stack!r} (pilotlight:primaryStack) is missing output(s) {', '.join(missing)} "
            f"needed by database mode {expected_mode!r}. Redeploy it with this version of pilotlight."
        )
    if expected_mode == "rds-replica" and values.get("databaseFailbackInstance") is not None:
        try:
            region_a_database(DatabaseConfig(), values["databaseFailbackInstance"])
        except ValueError as exc:
            raise StackWiringError(f"primary stack {stack!r}: {exc}") from exc


def require_failback_settings(outputs: PrimaryOutputs, database_mode: str, creates_failback: bool) -> None:
    """Before any resource: an update that declares region A's IaC failback instance (rds-replica,
    ``dr:failback replicate`` on) needs the primary stack's ``databaseFailbackInstance`` output, the
    settings region A's writer is declared with (B13b-6). Not needed otherwise: a dr update during a
    failover, region A down and its stack last deployed by an older version, must not be refused."""
    if database_mode != "rds-replica" or not creates_failback:
        return
    if outputs.get("databaseFailbackInstance") in (None, ""):
        stack = outputs.stack
        raise StackWiringError(
            f"primary stack {stack!r} (pilotlight:primaryStack) has no output 'databaseFailbackInstance': "
            "region A's failback instance must be created with the settings the primary stack declares for "
            "its writer (instanceClass, multiAz, backupRetentionDays, allocatedStorage, performanceInsights), "
            "or the primary stack's adoption of it fails. Nothing was changed. Run "
            f"`pulumi up -s {stack.rsplit('/', 1)[-1]}` with this version of pilotlight, then this update again."
        )


# --- end data tier ---

# Outputs added by later tiers are read when present; the tiers that need them require them.
OPTIONAL_PRIMARY_OUTPUTS: tuple[str, ...] = (
    "apiDomainTarget",  # only with certificates (routing.certificateArn)
    "apiHealthHost",  # region A's API health check: its own name, or execute-api without certificates
    "apiHealthPath",
    "apiRegionalDomainName",  # only with certificates: api-<region A>.<domain> and its alias target
    "apiRegionalDomainTarget",
    "apiRegionalZoneId",
    *(k for keys in DATABASE_MODE_OUTPUTS.values() for k in keys),  # data tier
    "globalClusterArn",
    "primaryClusterReaderEndpoint",
    "databaseFailbackInstance",  # rds-replica: required when the failback instance is declared
    "dbSecretArn",
    "replicaKmsKeyArn",
    "tableArn",
)
