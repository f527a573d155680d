"""What the runbook needs to know about the deployment, parsed and validated once.

The DR stack exports this as its ``runbook`` output (``pulumi stack output runbook --json``), passes
it to the failover Lambda as the ``RUNBOOK_CONTEXT`` environment variable, and the break-glass CLI
reads it from a JSON file (``--outputs``) when Pulumi or its state backend is unreachable. One
parser serves all three, so a key the runbook needs is never missing in one path only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdas.failover.exceptions import ContextError

__all__ = ["ContextError", "RunbookContext"]

DATABASE_MODES = ("aurora-global", "rds-replica")


@dataclass(frozen=True)
class Capacity:
    """Auto Scaling group sizes."""

    min: int
    desired: int
    max: int


@dataclass(frozen=True)
class SwitchMetric:
    """The CloudWatch metric in region B behind the failover switch (1 = traffic to B)."""

    namespace: str
    name: str
    dimensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunbookContext:
    """Everything the failover and failback steps act on. Keys are the camelCase JSON names."""

    app_name: str
    environment: str
    primary_region: str
    dr_region: str
    database_mode: str
    # rds-replica
    primary_db_instance_id: str | None
    dr_db_instance_id: str | None
    # aurora-global
    global_cluster_id: str | None
    primary_cluster_id: str | None
    dr_cluster_id: str | None
    dr_cluster_arn: str | None
    dr_instance_class: str | None
    # web tier
    primary_asg_name: str
    primary_capacity: Capacity
    dr_asg_name: str
    dr_capacity: Capacity
    # functions
    primary_function_names: tuple[str, ...]
    dr_function_names: tuple[str, ...]
    dr_event_source_mapping_ids: tuple[str, ...]
    # region A's mappings as the program made them (the fence also finds others by function)
    primary_event_source_mapping_ids: tuple[str, ...]
    # routing, state, people
    switch_metric: SwitchMetric
    latch_parameter_name: str
    lock_table_name: str  # the runbook lock (lambdas/failover/lock.py): single flight
    notify_topic_arn: str
    primary_health_url: str | None
    dr_health_url: str | None
    max_replication_lag_seconds: int = 60
    # encryption: each region's KMS key (an encrypted cross-region replica needs its region's key)
    primary_kms_key_arn: str | None = None
    dr_kms_key_arn: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunbookContext:
        """Parse the ``runbook`` output. Raises ContextError naming every missing or bad key."""
        problems: list[str] = []

        def req(key: str) -> Any:
            if key not in data or data[key] in (None, ""):
                problems.append(f"missing key {key!r}")
                return None
            return data[key]

        def opt(key: str) -> Any:
            value = data.get(key)
            return None if value == "" else value

        def capacity(key: str) -> Capacity:
            raw = req(key)
            if raw is None:
                return Capacity(0, 0, 0)
            try:
                cap = Capacity(int(raw["min"]), int(raw["desired"]), int(raw["max"]))
            except (KeyError, TypeError, ValueError):
                problems.append(
                    f"{key!r} must be an object with integer 'min', 'desired', 'max'; got {raw!r}"
                )
                return Capacity(0, 0, 0)
            if not 0 <= cap.min <= cap.desired <= cap.max:
                problems.append(f"{key!r} must satisfy 0 <= min <= desired <= max; got {raw!r}")
            return cap

        def names(key: str) -> tuple[str, ...]:
            raw = data.get(key, [])
            if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
                problems.append(f"{key!r} must be a list of strings; got {raw!r}")
                return ()
            return tuple(raw)

        mode = req("databaseMode")
        if mode is not None and mode not in DATABASE_MODES:
            problems.append(f"'databaseMode' is {mode!r}; allowed: {', '.join(DATABASE_MODES)}")
        if mode == "rds-replica":
            for key in ("primaryDbInstanceId", "drDbInstanceId"):
                req(key)
        if mode == "aurora-global":
            for key in (
                "globalClusterId",
                "primaryClusterId",
                "drClusterId",
                "drClusterArn",
                "drInstanceClass",
            ):
                req(key)

        metric_raw = req("switchMetric")
        metric = SwitchMetric("", "")
        if metric_raw is not None:
            try:
                metric = SwitchMetric(
                    str(metric_raw["namespace"]),
                    str(metric_raw["name"]),
                    {str(k): str(v) for k, v in dict(metric_raw.get("dimensions", {})).items()},
                )
            except (KeyError, TypeError, ValueError):
                problems.append(f"'switchMetric' must have 'namespace' and 'name'; got {metric_raw!r}")

        lag = data.get("maxReplicationLagSeconds", 60)
        if not isinstance(lag, int) or lag <= 0:
            problems.append(f"'maxReplicationLagSeconds' must be a positive integer; got {lag!r}")
            lag = 60

        ctx = cls(
            app_name=req("appName"),
            environment=req("environment"),
            primary_region=req("primaryRegion"),
            dr_region=req("drRegion"),
            database_mode=mode or "",
            primary_db_instance_id=opt("primaryDbInstanceId"),
            dr_db_instance_id=opt("drDbInstanceId"),
            global_cluster_id=opt("globalClusterId"),
            primary_cluster_id=opt("primaryClusterId"),
            dr_cluster_id=opt("drClusterId"),
            dr_cluster_arn=opt("drClusterArn"),
            dr_instance_class=opt("drInstanceClass"),
            primary_asg_name=req("primaryAsgName"),
            primary_capacity=capacity("primaryCapacity"),
            dr_asg_name=req("drAsgName"),
            dr_capacity=capacity("drCapacity"),
            primary_function_names=names("primaryFunctionNames"),
            dr_function_names=names("drFunctionNames"),
            dr_event_source_mapping_ids=names("drEventSourceMappingIds"),
            primary_event_source_mapping_ids=names("primaryEventSourceMappingIds"),
            switch_metric=metric,
            latch_parameter_name=req("latchParameterName"),
            lock_table_name=req("lockTableName"),
            notify_topic_arn=req("notifyTopicArn"),
            primary_health_url=opt("primaryHealthUrl"),
            dr_health_url=opt("drHealthUrl"),
            max_replication_lag_seconds=lag,
            primary_kms_key_arn=opt("primaryKmsKeyArn"),
            dr_kms_key_arn=opt("drKmsKeyArn"),
        )
        if ctx.primary_region and ctx.primary_region == ctx.dr_region:
            problems.append(
                f"'primaryRegion' and 'drRegion' are both {ctx.primary_region!r}; they must differ"
            )
        if problems:
            raise ContextError("runbook outputs are not usable: " + "; ".join(problems))
        return ctx

    @classmethod
    def from_json(cls, text: str) -> RunbookContext:
        """Parse a JSON document (the ``runbook`` output, or a file holding it)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContextError(f"runbook outputs are not valid JSON: {exc}") from exc
        if isinstance(data, dict) and "runbook" in data and isinstance(data["runbook"], dict):
            data = data["runbook"]  # accept `pulumi stack output --json` whole
        if not isinstance(data, dict):
            raise ContextError("runbook outputs must be a JSON object")
        return cls.from_dict(data)
