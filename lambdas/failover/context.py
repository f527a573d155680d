"""What the runbook needs to know about the deployment, parsed and validated once.

The DR stack exports this as its ``runbook`` output (``pulumi stack output runbook --json``), passes
it to the failover Lambda as the ``RUNBOOK_CONTEXT`` environment variable, and the break-glass CLI
reads it from a JSON file (``--outputs``) when Pulumi or its state backend is unreachable. One
parser serves all three, so a key the runbook needs is never missing in one path only.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lambdas.failover.exceptions import ContextError

__all__ = ["KEYS", "ContextError", "RunbookContext", "generation_of", "validate"]

DATABASE_MODES = ("aurora-global", "rds-replica")

GENERATION_KEY = "generation"
"""The key holding the stamp the program puts on the outputs (:func:`generation_of`)."""

GENERATION_PREFIX = "g1-"
"""Version of the stamp's recipe: a later recipe gets a new prefix, never a silent mismatch."""


def _canonical(value: Any) -> Any:
    """The value as JSON round trips keep it: integral floats as ints, empty values dropped.

    Pulumi carries numbers as doubles and may drop null outputs, so ``2`` and ``2.0``, or an
    absent key and ``null``, must stamp alike.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def generation_of(data: Mapping[str, Any]) -> str:
    """The generation stamp of a ``runbook`` output: a hash of every key but ``generation``.

    The program stamps its output with it and writes the same value to a parameter in region B
    (``components/pilot_light_region.py``); the preflight refuses outputs whose stamp is not the
    live one (stale) or does not match their own contents (edited after export). A content hash
    changes only when the context does, so a routine ``pulumi up`` leaves it, and files, alone.
    """
    body = {k: v for k, v in _canonical(data).items() if k != GENERATION_KEY}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    return GENERATION_PREFIX + digest.hexdigest()[:20]


# ---------------------------------------------------------------------------------------------
# The keys of the ``runbook`` output and what each must hold
# ---------------------------------------------------------------------------------------------


class Requirement(StrEnum):
    """When a key must be present."""

    ALWAYS = "always"
    """Every deployment exports it; the runbook cannot act without it."""
    OPTIONAL = "optional"
    """Exported by the program, with a default or a meaning when absent (older outputs, tests)."""
    RDS_REPLICA = "rds-replica"
    """Only (and always) with ``databaseMode: rds-replica``."""
    AURORA_GLOBAL = "aurora-global"
    """Only (and always) with ``databaseMode: aurora-global``."""


Check = Callable[[Any], str | None]
"""Returns None when the value is acceptable, else what is wrong with it (for the message)."""


@dataclass(frozen=True)
class KeySpec:
    """One key of the ``runbook`` output.

    Attributes:
        expected: what the value must be, for people ("a non-empty string").
        check: the check behind ``expected``; a string it returns refines the message.
        required: when the key must be present.
        region_key: for ARNs, the key naming the region the resource must be in.
    """

    expected: str
    check: Check
    required: Requirement = Requirement.ALWAYS
    region_key: str | None = None


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _string(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else ""


def _region(v: Any) -> str | None:
    return None if isinstance(v, str) and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", v) else ""


def _mode(v: Any) -> str | None:
    return None if v in DATABASE_MODES else ""


def _positive(v: Any) -> str | None:
    return None if _is_int(v) and v > 0 else ""


def _capacity(v: Any) -> str | None:
    if not isinstance(v, Mapping) or set(v) != {"min", "desired", "max"}:
        return ""
    if not all(_is_int(v[k]) for k in ("min", "desired", "max")):
        return ""
    if not 0 <= v["min"] <= v["desired"] <= v["max"]:
        return "0 <= min <= desired <= max does not hold"
    return None


def _strings(v: Any) -> str | None:
    ok = isinstance(v, list | tuple) and all(isinstance(x, str) and x.strip() for x in v)
    return None if ok else ""


def _metric(v: Any) -> str | None:
    if not isinstance(v, Mapping) or not {"namespace", "name"} <= set(v):
        return ""
    extra = set(v) - {"namespace", "name", "dimensions"}
    if extra:
        return f"unknown field(s) {sorted(extra)}"
    dims = v.get("dimensions") or {}
    if _string(v["namespace"]) is not None or _string(v["name"]) is not None or not isinstance(dims, Mapping):
        return ""
    return None if all(isinstance(x, str) for x in dims.values()) else "dimension values must be strings"


def _arn(service: str) -> Check:
    def check(v: Any) -> str | None:
        parts = v.split(":", 5) if isinstance(v, str) else []
        return None if len(parts) == 6 and parts[0] == "arn" and parts[2] == service and parts[5] else ""

    return check


def _arns(service: str) -> Check:
    one = _arn(service)
    return lambda v: None if isinstance(v, list | tuple) and all(one(x) is None for x in v) else ""


def _url(v: Any) -> str | None:
    return None if isinstance(v, str) and re.match(r"https?://[^/\s]+", v) else ""


def _table(v: Any) -> str | None:
    # DynamoDB's table name rules: 3 to 255 of a-z, A-Z, 0-9, '_', '-', '.'
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
    return None if isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", v) else ""


def _generation(v: Any) -> str | None:
    ok = isinstance(v, str) and re.fullmatch(re.escape(GENERATION_PREFIX) + "[0-9a-f]{20}", v)
    return None if ok else ""


_R, _O = Requirement.RDS_REPLICA, Requirement.OPTIONAL
_A = Requirement.AURORA_GLOBAL
_TEXT, _NAMES = "a non-empty string", "a list of non-empty strings"
KEYS: dict[str, KeySpec] = {
    "appName": KeySpec(_TEXT, _string),
    "environment": KeySpec(_TEXT, _string),
    "primaryRegion": KeySpec("an AWS region name (e.g. us-east-1)", _region),
    "drRegion": KeySpec("an AWS region name (e.g. us-west-2)", _region),
    "databaseMode": KeySpec(f"one of {', '.join(DATABASE_MODES)}", _mode),
    "maxReplicationLagSeconds": KeySpec("a positive integer", _positive, _O),
    "primaryAsgName": KeySpec(_TEXT, _string),
    "primaryCapacity": KeySpec("an object of integers min, desired, max", _capacity),
    "drAsgName": KeySpec(_TEXT, _string),
    "drCapacity": KeySpec("an object of integers min, desired, max", _capacity),
    "primaryFunctionNames": KeySpec(_NAMES, _strings, _O),
    "drFunctionNames": KeySpec(_NAMES, _strings, _O),
    "primaryEventSourceMappingIds": KeySpec(_NAMES, _strings, _O),
    "drEventSourceMappingIds": KeySpec(_NAMES, _strings, _O),
    "switchMetric": KeySpec("an object with strings namespace and name, and dimensions", _metric),
    "latchParameterName": KeySpec(_TEXT, _string),
    "lockTableName": KeySpec("a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)", _table),
    "notifyTopicArn": KeySpec("an SNS topic ARN", _arn("sns"), region_key="drRegion"),
    "notifyKeyArn": KeySpec("a KMS key ARN", _arn("kms"), _O, "drRegion"),
    "dataKeyArns": KeySpec("a list of KMS key ARNs", _arns("kms"), _O),
    # the lock table's key (the runbook role's DynamoDB calls on it use it: components/runbook_iam.py)
    "lockTableKeyArn": KeySpec("a KMS key ARN", _arn("kms"), _O, "drRegion"),
    # the receipts buckets (a planned change waits for their replication to drain)
    "primaryBucketName": KeySpec(_TEXT, _string, _O),
    "drBucketName": KeySpec(_TEXT, _string, _O),
    # the DynamoDB global table (the same name in each region; a planned change waits for it too)
    "globalTableName": KeySpec("a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)", _table, _O),
    "primaryHealthUrl": KeySpec("an http(s) URL or null", _url, _O),
    "drHealthUrl": KeySpec("an http(s) URL or null", _url, _O),
    "primaryKmsKeyArn": KeySpec("a KMS key ARN", _arn("kms"), _O, "primaryRegion"),
    "drKmsKeyArn": KeySpec("a KMS key ARN", _arn("kms"), _O, "drRegion"),
    "primaryDbInstanceId": KeySpec(_TEXT, _string, _R),
    "drDbInstanceId": KeySpec(_TEXT, _string, _R),
    # rds-replica: where the failback's replica runs in region A (its VPC, its parameter group)
    "primaryDbSubnetGroupName": KeySpec(_TEXT, _string, _R),
    "primaryDbParameterGroupName": KeySpec(_TEXT, _string, _R),
    "globalClusterId": KeySpec(_TEXT, _string, _A),
    "primaryClusterId": KeySpec(_TEXT, _string, _A),
    "drClusterId": KeySpec(_TEXT, _string, _A),
    "drClusterArn": KeySpec("an RDS cluster ARN", _arn("rds"), _A, "drRegion"),
    "drInstanceClass": KeySpec(_TEXT, _string, _A),
    GENERATION_KEY: KeySpec(f"the program's stamp ({GENERATION_PREFIX} and 20 hex digits)", _generation, _O),
}
"""Every key the program may export in the ``runbook`` output: nothing else is accepted.

``tests/lambdas/failover/test_context.py`` checks this set against the synthesized program in
both database modes, so a key the program starts exporting fails a test until it is known here.
"""


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def validate(data: Mapping[str, Any]) -> list[str]:
    """Every problem of a ``runbook`` output, each naming its key (empty: usable). No AWS call."""
    problems: list[str] = []
    for key in data:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), list(KEYS), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown key {key!r}{hint}")
    mode = data.get("databaseMode")
    for key, spec in KEYS.items():
        value = data.get(key)
        absent = key not in data or value is None or value == ""
        if spec.required in (_R, _A) and mode in DATABASE_MODES and spec.required != mode:
            if not absent:
                problems.append(f"{key!r} is a {spec.required.value} key, but 'databaseMode' is {mode!r}")
            continue
        if absent:
            if spec.required == Requirement.ALWAYS or (spec.required in (_R, _A) and spec.required == mode):
                needed_by = f", needed with 'databaseMode' {mode!r}" if spec.required in (_R, _A) else ""
                problems.append(f"missing key {key!r} ({spec.expected}{needed_by})")
            continue
        detail = spec.check(value)
        if detail is not None:
            why = f" ({detail})" if detail else ""
            problems.append(f"{key!r} must be {spec.expected}; got {_show(value)}{why}")
            continue
        if spec.region_key and isinstance(data.get(spec.region_key), str):
            region = str(value).split(":")[3]
            if region != data[spec.region_key]:
                problems.append(
                    f"{key!r} is in region {region!r}, not in {spec.region_key!r} ({data[spec.region_key]})"
                )
    regions = {data.get("primaryRegion"), data.get("drRegion")}
    for arn in data.get("dataKeyArns") or []:
        if KEYS["dataKeyArns"].check([arn]) is None and arn.split(":")[3] not in regions:
            problems.append(f"'dataKeyArns' names {arn!r}, outside 'primaryRegion' and 'drRegion'")
    if isinstance(data.get("primaryRegion"), str) and data.get("primaryRegion") == data.get("drRegion"):
        problems.append(
            f"'primaryRegion' and 'drRegion' are both {data['primaryRegion']!r}; they must differ"
        )
    return problems


@dataclass(frozen=True)
class Capacity:
    """Auto Scaling group sizes."""

    min: int
    desired: int
    max: int

    @property
    def serving(self) -> bool:
        """Whether a web tier at these sizes can take requests (and so writes): it runs instances, or may
        launch them (a max above 0 lets target tracking raise desired within [min, max]:
        https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-capacity-limits.html). Drained is 0/0/0
        in effect: what ``python -m automation latch switch-writer`` requires before its proof
        (drain_proof.py) and the program before it promotes region A's failback instance
        (components/region_b_serving.py)."""
        return bool(self.desired or self.max)


def function_serving(reserved_concurrency: int | None) -> bool:
    """Whether a function with this reserved concurrency can run, and so take writes: only a reservation
    of 0 throttles every invocation (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
    None (GetFunctionConcurrency: no reservation) and -1 (the provider's "unreserved") leave it running.
    Drained is 0, for the zero-lag proof (drain_proof.py) and for the program before it promotes region A's
    failback instance (components/region_b_serving.py)."""
    return reserved_concurrency != 0


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
    # what the runbook's permissions name besides the above (components/runbook_iam.py)
    notify_key_arn: str | None = None
    data_key_arns: tuple[str, ...] = ()
    lock_table_key_arn: str | None = None
    global_table_name: str | None = None
    # the receipts buckets, replicating into each other (absent in older outputs: not waited for)
    primary_bucket_name: str | None = None
    dr_bucket_name: str | None = None
    # rds-replica: the subnet and parameter groups the failback replica runs in (the runbook's permissions
    # name them; the failback copies them from region A's old primary; the preflight describes them)
    primary_db_subnet_group_name: str | None = None
    primary_db_parameter_group_name: str | None = None
    # the stamp the program put on these outputs, and the stamp their contents hash to
    # (lambdas/failover/preflight.py compares both with the live one in region B)
    generation: str | None = None
    content_generation: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunbookContext:
        """Parse the ``runbook`` output. Raises ContextError naming every unknown, missing or bad key.

        Validation is strict (:func:`validate`): a misspelt key, a value of the wrong type or a
        resource ARN in the wrong region is refused, all problems together, before any AWS call.
        """
        problems = validate(data)
        if problems:
            raise ContextError(
                f"runbook outputs are not usable ({len(problems)} problem"
                f"{'s' if len(problems) > 1 else ''}): " + "; ".join(problems)
            )

        def opt(key: str) -> Any:
            value = data.get(key)
            return None if value == "" else value

        def capacity(key: str) -> Capacity:
            raw = data[key]
            return Capacity(int(raw["min"]), int(raw["desired"]), int(raw["max"]))

        def names(key: str) -> tuple[str, ...]:
            return tuple(data.get(key) or ())

        metric_raw = data["switchMetric"]
        return cls(
            app_name=data["appName"],
            environment=data["environment"],
            primary_region=data["primaryRegion"],
            dr_region=data["drRegion"],
            database_mode=data["databaseMode"],
            primary_db_instance_id=opt("primaryDbInstanceId"),
            dr_db_instance_id=opt("drDbInstanceId"),
            global_cluster_id=opt("globalClusterId"),
            primary_cluster_id=opt("primaryClusterId"),
            dr_cluster_id=opt("drClusterId"),
            dr_cluster_arn=opt("drClusterArn"),
            dr_instance_class=opt("drInstanceClass"),
            primary_asg_name=data["primaryAsgName"],
            primary_capacity=capacity("primaryCapacity"),
            dr_asg_name=data["drAsgName"],
            dr_capacity=capacity("drCapacity"),
            primary_function_names=names("primaryFunctionNames"),
            dr_function_names=names("drFunctionNames"),
            dr_event_source_mapping_ids=names("drEventSourceMappingIds"),
            primary_event_source_mapping_ids=names("primaryEventSourceMappingIds"),
            switch_metric=SwitchMetric(
                metric_raw["namespace"], metric_raw["name"], dict(metric_raw.get("dimensions") or {})
            ),
            latch_parameter_name=data["latchParameterName"],
            lock_table_name=data["lockTableName"],
            notify_topic_arn=data["notifyTopicArn"],
            primary_health_url=opt("primaryHealthUrl"),
            dr_health_url=opt("drHealthUrl"),
            max_replication_lag_seconds=int(data.get("maxReplicationLagSeconds", 60)),
            primary_kms_key_arn=opt("primaryKmsKeyArn"),
            dr_kms_key_arn=opt("drKmsKeyArn"),
            notify_key_arn=opt("notifyKeyArn"),
            data_key_arns=names("dataKeyArns"),
            lock_table_key_arn=opt("lockTableKeyArn"),
            global_table_name=opt("globalTableName"),
            primary_bucket_name=opt("primaryBucketName"),
            dr_bucket_name=opt("drBucketName"),
            primary_db_subnet_group_name=opt("primaryDbSubnetGroupName"),
            primary_db_parameter_group_name=opt("primaryDbParameterGroupName"),
            generation=opt(GENERATION_KEY),
            content_generation=generation_of(data),
        )

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
