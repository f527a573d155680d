"""Monthly cost of the stacks, from the resources the offline plan records.

Pure functions over a price table (``automation/prices.json``) and a list of recorded resources:
no AWS, no Pulumi. Every resource ends up in exactly one place in the report: a priced line item,
a ``$0`` line ("no standing charge"), or the "not priced" list with the reason. Nothing is
silently dropped, so a new resource type shows up as "not priced" until someone prices it.

Usage-based items (NAT data, ALB LCUs, log ingestion, storage, replicated writes) use the
``assumptions`` block of the price table, and the report prints those assumptions next to the
figures. The primary stack always uses the "serving" traffic profile; the dr stack uses "standby"
unless ``estimate(..., active=True)`` says it is taking traffic after a failover.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

DEFAULT_PRICES_PATH = Path(__file__).with_name("prices.json")

GLOBAL_REGION = "global"
"""Route 53 bills globally: its line items are reported under this pseudo-region."""

NO_STANDING_CHARGE = "no standing charge"


class ResourceLike(Protocol):
    """One resource as the offline plan records it (the plan's own class satisfies this)."""

    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...

    @property
    def region(self) -> str | None: ...

    @property
    def stack(self) -> str: ...


# --------------------------------------------------------------------------------------------
# Price table
# --------------------------------------------------------------------------------------------

_REQUIRED_TOP = ("as_of", "source", "currency", "hours_per_month", "regions", "assumptions", "global")
_REQUIRED_REGION = (
    "ec2_linux_hourly",
    "ebs_gp3_gb_month",
    "nat_gateway_hourly",
    "nat_gateway_gb_processed",
    "vpc_interface_endpoint_az_hourly",
    "vpc_interface_endpoint_gb_processed",
    "alb_hourly",
    "alb_lcu_hourly",
    "public_ipv4_hourly",
    "rds_hourly",
    "rds_gp3_storage_gb_month",
    "aurora_postgresql_hourly",
    "aurora_storage_gb_month",
    "aurora_io_million",
    "aurora_global_replicated_write_io_million",
    "kms_key_month",
    "secrets_manager_secret_month",
    "cloudwatch_standard_alarm_metric_month",
    "cloudwatch_high_resolution_alarm_metric_month",
    "cloudwatch_composite_alarm_month",
    "cloudwatch_dashboard_month",
    "cloudwatch_custom_metric_month",
    "cloudwatch_logs_ingest_gb",
    "cloudwatch_vended_logs_ingest_gb",
    "vended_logs_to_s3_gb",
    "s3_standard_gb_month",
    "s3_put_per_1000",
    "data_transfer_inter_region_gb",
    "s3_replication_time_control_gb",
    "dynamodb_on_demand_write_million",
    "dynamodb_on_demand_replicated_write_million",
    "dynamodb_storage_gb_month",
    "backup_warm_storage_gb_month",
    "sfn_standard_per_1000_transitions",
    "ssm_advanced_parameter_month",
)


@dataclass(frozen=True)
class PriceTable:
    """The parsed price table: per-region prices, global (Route 53) prices and usage assumptions."""

    as_of: str
    source: Mapping[str, str]
    currency: str
    hours_per_month: float
    regions: Mapping[str, Mapping[str, Any]]
    global_prices: Mapping[str, Any]
    assumptions: Mapping[str, Any]
    notes: tuple[str, ...] = ()

    def traffic(self, profile: str) -> Mapping[str, float]:
        """The usage assumptions of one traffic profile ("serving" or "standby")."""
        return self.assumptions["traffic"][profile]


def load_prices(path: str | Path | None = None) -> PriceTable:
    """Read and validate the price table (default: ``automation/prices.json``).

    Raises ``ValueError`` naming the missing key, region or bad value.
    """
    p = Path(path) if path is not None else DEFAULT_PRICES_PATH
    with p.open(encoding="utf-8") as fh:
        raw = json.load(fh)
    return parse_prices(raw, origin=str(p))


def parse_prices(raw: Mapping[str, Any], *, origin: str = "price table") -> PriceTable:
    """Validate an already-decoded price table (see :func:`load_prices`)."""
    missing = [k for k in _REQUIRED_TOP if k not in raw]
    if missing:
        raise ValueError(f"{origin}: missing top-level key(s): {', '.join(missing)}")
    try:
        date.fromisoformat(str(raw["as_of"]))
    except ValueError as exc:
        raise ValueError(f"{origin}: as_of must be an ISO date (YYYY-MM-DD), got {raw['as_of']!r}") from exc
    hours = raw["hours_per_month"]
    if not isinstance(hours, int | float) or hours <= 0:
        raise ValueError(f"{origin}: hours_per_month must be a positive number, got {hours!r}")
    source = raw["source"]
    if isinstance(source, str):
        source = {"pricing": source}
    if not isinstance(source, Mapping) or not source:
        raise ValueError(f"{origin}: source must name the pricing pages used (URL per service)")
    regions = raw["regions"]
    if not isinstance(regions, Mapping) or not regions:
        raise ValueError(f"{origin}: regions must be a non-empty object")
    for region, table in regions.items():
        absent = [k for k in _REQUIRED_REGION if k not in table]
        if absent:
            raise ValueError(f"{origin}: region {region} is missing: {', '.join(absent)}")
    assumptions = raw["assumptions"]
    for profile in ("serving", "standby"):
        if profile not in assumptions.get("traffic", {}):
            raise ValueError(f"{origin}: assumptions.traffic.{profile} is missing")
    notes = raw.get("notes", ())
    return PriceTable(
        as_of=str(raw["as_of"]),
        source=dict(source),
        currency=str(raw["currency"]),
        hours_per_month=float(hours),
        regions=regions,
        global_prices=raw["global"],
        assumptions=assumptions,
        notes=tuple(notes) if isinstance(notes, list | tuple) else (str(notes),),
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    """One priced (or zero-priced) line: what it is, what it costs a month and why."""

    stack: str
    region: str
    name: str
    type: str
    monthly_usd: float
    basis: str


@dataclass(frozen=True)
class NotPriced:
    """A resource the estimator could not price, with the reason (never silently dropped)."""

    stack: str
    region: str
    name: str
    type: str
    reason: str


@dataclass(frozen=True)
class CostReport:
    """Line items per stack and region, with totals and the assumptions behind them."""

    items: tuple[LineItem, ...]
    not_priced: tuple[NotPriced, ...]
    as_of: str
    source: Mapping[str, str]
    currency: str
    hours_per_month: float
    assumptions: Mapping[str, Any]
    active: bool = False
    notes: tuple[str, ...] = ()
    structural: tuple[str, ...] = ()
    """Pulumi providers, components and stack references: no AWS resource, no charge."""

    @property
    def total(self) -> float:
        """Monthly total of every line item in the report."""
        return math.fsum(i.monthly_usd for i in self.items)

    @property
    def stacks(self) -> tuple[str, ...]:
        """The stacks present, in first-seen order."""
        seen: dict[str, None] = {}
        for item in (*self.items, *self.not_priced):
            seen.setdefault(item.stack, None)
        return tuple(seen)

    def stack_total(self, stack: str) -> float:
        """Monthly total of one stack."""
        return math.fsum(i.monthly_usd for i in self.items if i.stack == stack)

    def totals_by_stack(self) -> dict[str, float]:
        """``{stack: monthly total}``."""
        return {s: self.stack_total(s) for s in self.stacks}

    def totals_by_region(self) -> dict[str, dict[str, float]]:
        """``{stack: {region: monthly total}}``."""
        out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for i in self.items:
            out[i.stack][i.region].append(i.monthly_usd)
        return {s: {r: math.fsum(v) for r, v in regions.items()} for s, regions in out.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for ``--json``."""
        return {
            "currency": self.currency,
            "as_of": self.as_of,
            "source": dict(self.source),
            "hours_per_month": self.hours_per_month,
            "active": self.active,
            "total_monthly": round(self.total, 2),
            "totals_by_stack": {k: round(v, 2) for k, v in self.totals_by_stack().items()},
            "totals_by_region": {
                s: {r: round(v, 2) for r, v in regions.items()}
                for s, regions in self.totals_by_region().items()
            },
            "items": [
                {
                    "stack": i.stack,
                    "region": i.region,
                    "name": i.name,
                    "type": i.type,
                    "monthly_usd": round(i.monthly_usd, 4),
                    "basis": i.basis,
                }
                for i in self.items
            ],
            "not_priced": [
                {"stack": n.stack, "region": n.region, "name": n.name, "type": n.type, "reason": n.reason}
                for n in self.not_priced
            ],
            "structural": list(self.structural),
            "assumptions": _plain(self.assumptions),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CostComparison:
    """The pilot light's standing cost relative to the primary's."""

    primary_total: float
    dr_total: float
    standby_ratio: float
    """dr total / primary total, as a percentage."""

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready view."""
        return {
            "primary_total_monthly": round(self.primary_total, 2),
            "dr_total_monthly": round(self.dr_total, 2),
            "standby_ratio_percent": round(self.standby_ratio, 1),
        }


def compare(primary: CostReport, dr: CostReport) -> CostComparison:
    """Standby ratio: the dr report's total over the primary report's total, in percent.

    Each report is the estimate of one stack (``estimate`` called on that stack's resources).
    """
    if primary.total <= 0:
        raise ValueError("compare: the primary report's total is $0; the standby ratio is undefined")
    return CostComparison(primary.total, dr.total, 100.0 * dr.total / primary.total)


# --------------------------------------------------------------------------------------------
# Estimation
# --------------------------------------------------------------------------------------------

# Types that exist only to configure or wire other resources: no standing monthly charge.
_FREE_TYPES = frozenset(
    {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:ec2/networkAcl:NetworkAcl",
        "aws:ec2/networkAclRule:NetworkAclRule",
        "aws:ec2/networkAclAssociation:NetworkAclAssociation",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl",
        "aws:ec2/defaultRouteTable:DefaultRouteTable",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/keyPair:KeyPair",
        "aws:ec2/vpcEndpointRouteTableAssociation:VpcEndpointRouteTableAssociation",
        "aws:autoscaling/policy:Policy",
        "aws:autoscaling/lifecycleHook:LifecycleHook",
        "aws:autoscaling/attachment:Attachment",
        "aws:autoscaling/notification:Notification",
        "aws:lb/targetGroup:TargetGroup",
        "aws:lb/listener:Listener",
        "aws:lb/listenerRule:ListenerRule",
        "aws:lb/targetGroupAttachment:TargetGroupAttachment",
        "aws:alb/targetGroup:TargetGroup",
        "aws:alb/listener:Listener",
        "aws:alb/listenerRule:ListenerRule",
        "aws:alb/targetGroupAttachment:TargetGroupAttachment",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
        "aws:rds/optionGroup:OptionGroup",
        "aws:rds/globalCluster:GlobalCluster",
        "aws:kms/alias:Alias",
        "aws:kms/keyPolicy:KeyPolicy",
        "aws:kms/grant:Grant",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        "aws:secretsmanager/secretRotation:SecretRotation",
        "aws:s3/bucketVersioningV2:BucketVersioningV2",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketNotification:BucketNotification",
        "aws:s3/bucketLoggingV2:BucketLoggingV2",
        "aws:s3/bucketLogging:BucketLogging",
        "aws:s3/bucketAclV2:BucketAclV2",
        "aws:s3/bucketAcl:BucketAcl",
        "aws:s3/bucketObject:BucketObject",
        "aws:s3/bucketObjectv2:BucketObjectv2",
        "aws:lambda/permission:Permission",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:lambda/alias:Alias",
        "aws:lambda/layerVersion:LayerVersion",
        "aws:lambda/functionUrl:FunctionUrl",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "aws:sns/topic:Topic",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sqs/queue:Queue",
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/eventBus:EventBus",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter",
        "aws:route53/record:Record",
        "aws:backup/plan:Plan",
        "aws:backup/selection:Selection",
        "aws:backup/vaultPolicy:VaultPolicy",
        "aws:backup/vaultNotifications:VaultNotifications",
        "aws:dynamodb/tableItem:TableItem",
        "aws:acm/certificate:Certificate",
        "aws:acm/certificateValidation:CertificateValidation",
    }
)
_FREE_PREFIXES = ("aws:iam/", "aws:apigateway/", "aws:apigatewayv2/")
_FREE_REASONS = {
    "aws:lambda/function:Function": "no standing charge: pay per request and GB-second (idle = $0)",
    "aws:sns/topic:Topic": "no standing charge: pay per publish",
    "aws:route53/record:Record": "no standing charge: alias queries to AWS resources are free",
    "aws:rds/globalCluster:GlobalCluster": "no standing charge: member clusters are priced",
    "aws:ec2/launchTemplate:LaunchTemplate": "no standing charge: priced via its Auto Scaling group",
}


@dataclass
class _Ctx:
    """What one resource's pricing needs to see besides itself."""

    prices: PriceTable
    active: bool
    instance_types: Mapping[str, str]
    launch_templates: Sequence[ResourceLike]
    items: list[LineItem] = field(default_factory=list)
    not_priced: list[NotPriced] = field(default_factory=list)
    structural: list[str] = field(default_factory=list)
    custom_metrics: set[tuple[str, str, str, str]] = field(default_factory=set)

    @property
    def hours(self) -> float:
        return self.prices.hours_per_month

    def profile(self, stack: str) -> str:
        return "serving" if stack != "dr" or self.active else "standby"

    def traffic(self, stack: str, key: str) -> float:
        return float(self.prices.traffic(self.profile(stack))[key])

    def assume(self, key: str) -> float:
        return float(self.prices.assumptions[key])

    def add(self, r: ResourceLike, region: str, usd: float, basis: str, *, name: str | None = None) -> None:
        self.items.append(LineItem(r.stack, region, name or r.name, r.type, usd, basis))

    def skip(self, r: ResourceLike, region: str, reason: str) -> None:
        self.not_priced.append(NotPriced(r.stack, region, r.name, r.type, reason))


def estimate(
    resources: Iterable[ResourceLike],
    prices: PriceTable,
    *,
    active: bool = False,
    instance_types: Mapping[str, str] | None = None,
) -> CostReport:
    """Price every resource: a line item each (``$0`` ones included), or "not priced" with why.

    ``active``: the dr stack is serving traffic (after failover), so its usage-based items use the
    "serving" profile. The resources themselves must come from the matching synthesis (the active
    dr stack has its Auto Scaling group at capacity). ``instance_types`` maps an Auto Scaling group
    name to its instance type, for when the plan cannot resolve the launch template.
    """
    rs = list(resources)
    ctx = _Ctx(
        prices=prices,
        active=active,
        instance_types=dict(instance_types or {}),
        launch_templates=[r for r in rs if r.type == "aws:ec2/launchTemplate:LaunchTemplate"],
    )
    for r in rs:
        _price_one(ctx, r)
    return CostReport(
        items=tuple(ctx.items),
        not_priced=tuple(ctx.not_priced),
        as_of=prices.as_of,
        source=prices.source,
        currency=prices.currency,
        hours_per_month=prices.hours_per_month,
        assumptions=prices.assumptions,
        active=active,
        notes=prices.notes,
        structural=tuple(ctx.structural),
    )


def _price_one(ctx: _Ctx, r: ResourceLike) -> None:
    t = r.type
    region = r.region or "unknown"
    if t.startswith(("pulumi:", "pilotlight:")):
        ctx.structural.append(r.name)
        return
    if t.startswith("aws:route53/"):
        _route53(ctx, r)
        return
    pricer = _PRICERS.get(t)
    if pricer is not None:
        table = ctx.prices.regions.get(region)
        if table is None:
            ctx.skip(r, region, f"region {region!r} is not in the price table")
            return
        pricer(ctx, r, region, table)
        return
    if t in _FREE_TYPES or t.startswith(_FREE_PREFIXES) or t in _FREE_REASONS:
        ctx.add(r, region, 0.0, _FREE_REASONS.get(t, NO_STANDING_CHARGE))
        return
    ctx.skip(r, region, "resource type not in the estimator")


# -- helpers ----------------------------------------------------------------------------------


def _num(value: Any, default: float) -> float:
    """A number from recorded inputs; unknown (None, missing, non-numeric) gives the default."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return default


def _count(value: Any) -> int | None:
    """Length of a recorded list input, or None when unknown."""
    if isinstance(value, list | tuple) and value:
        return len(value)
    return None


def _fmt(x: float) -> str:
    """A number without trailing zeros, for basis strings."""
    return f"{x:g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- compute ----------------------------------------------------------------------------------


def _lt_instance_type_and_volume(ctx: _Ctx, r: ResourceLike) -> tuple[str | None, float | None, str]:
    """The instance type and root volume size of an Auto Scaling group, and where they came from."""
    inputs = r.inputs
    override = ctx.instance_types.get(r.name) or ctx.instance_types.get(str(inputs.get("name") or ""))
    how = "caller-supplied instance type" if override else ""
    spec: Mapping[str, Any] = inputs.get("launchTemplate") or {}
    mixed = inputs.get("mixedInstancesPolicy") or {}
    if not spec and mixed:
        lt = mixed.get("launchTemplate") or {}
        spec = lt.get("launchTemplateSpecification") or {}
        for o in lt.get("overrides") or ():
            if o.get("instanceType") and not override:
                override, how = str(o["instanceType"]), "mixed instances override"
                break
    template = _match_launch_template(ctx, r, spec)
    volume = _root_volume(template.inputs) if template is not None else None
    if override:
        return override, volume, how
    if template is not None and template.inputs.get("instanceType"):
        return str(template.inputs["instanceType"]), volume, f"launch template {template.name}"
    return None, volume, ""


def _match_launch_template(ctx: _Ctx, r: ResourceLike, spec: Mapping[str, Any]) -> ResourceLike | None:
    same_place = [t for t in ctx.launch_templates if t.stack == r.stack and t.region == r.region]
    wanted_name = spec.get("name")
    wanted_id = spec.get("id")
    # Longest name first, so "web-lt" does not claim the id of "dr-web-lt".
    for t in sorted(same_place, key=lambda t: -len(t.name)):
        if wanted_name and wanted_name in (t.name, t.inputs.get("name")):
            return t
        # Mocks derive ids from the logical name ("<name>_id", "<name>-id", "<marker><name>.id").
        if isinstance(wanted_id, str) and (
            wanted_id == t.name or any(wanted_id.endswith(t.name + sep + "id") for sep in ("_", "-", "."))
        ):
            return t
    # One template in the same stack and region: it is the one (ids are unknown at synthesis).
    return same_place[0] if len(same_place) == 1 else None


def _root_volume(lt_inputs: Mapping[str, Any]) -> float | None:
    for m in lt_inputs.get("blockDeviceMappings") or ():
        ebs = (m or {}).get("ebs") or {}
        if ebs.get("volumeSize") is not None:
            return _num(ebs.get("volumeSize"), 0.0) or None
    return None


def _instance_cost(
    ctx: _Ctx, table: Mapping[str, Any], itype: str, count: float, volume_gb: float
) -> tuple[float, str] | None:
    hourly = table["ec2_linux_hourly"].get(itype)
    if hourly is None:
        return None
    ebs = table["ebs_gp3_gb_month"]
    usd = count * (hourly * ctx.hours + volume_gb * ebs)
    basis = f"{_fmt(count)} x {itype} x {_fmt(ctx.hours)} h + {_fmt(count)} x {_fmt(volume_gb)} GB gp3"
    return usd, basis


def _asg(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    inputs = r.inputs
    desired = _num(inputs.get("desiredCapacity"), _num(inputs.get("minSize"), 0.0))
    itype, volume, how = _lt_instance_type_and_volume(ctx, r)
    volume_gb = volume if volume is not None else ctx.assume("ebs_root_gb_per_instance")
    warm = inputs.get("warmPool") or None
    warm_count = 0.0
    if isinstance(warm, Mapping):
        # EC2 Auto Scaling sizes the pool as max prepared capacity (default: max size) minus
        # desired capacity, never below the pool's own minimum.
        max_prepared = _num(warm.get("maxGroupPreparedCapacity"), _num(inputs.get("maxSize"), 0.0))
        if max_prepared < 0:  # -1 means "use the group's max size"
            max_prepared = _num(inputs.get("maxSize"), 0.0)
        warm_count = max(_num(warm.get("minSize"), 0.0), max_prepared - desired, 0.0)
    if desired == 0 and warm_count == 0:
        ctx.add(r, region, 0.0, "desired capacity 0: no instances running")
        return
    if itype is None:
        ctx.skip(
            r, region, "instance type unknown: launch template not matched; pass instance_types={asg: type}"
        )
        return
    if itype not in table["ec2_linux_hourly"]:
        ctx.skip(r, region, f"instance type {itype} not in the price table for {region}")
        return
    if desired > 0:
        cost = _instance_cost(ctx, table, itype, desired, volume_gb)
        assert cost is not None
        ctx.add(r, region, cost[0], f"{cost[1]} ({how})" if how else cost[1])
    if warm_count > 0:
        state = str((warm or {}).get("poolState") or "Stopped")
        if state == "Running":
            cost = _instance_cost(ctx, table, itype, warm_count, volume_gb)
            assert cost is not None
            ctx.add(r, region, cost[0], f"warm pool (Running): {cost[1]}", name=f"{r.name} (warm pool)")
        else:
            # Stopped (and Hibernated) instances bill for their EBS volumes only.
            usd = warm_count * volume_gb * table["ebs_gp3_gb_month"]
            basis = f"warm pool ({state}): {_fmt(warm_count)} x {_fmt(volume_gb)} GB gp3, EBS only"
            ctx.add(r, region, usd, basis, name=f"{r.name} (warm pool)")


def _instance(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    itype = r.inputs.get("instanceType")
    volume = _num(
        (r.inputs.get("rootBlockDevice") or {}).get("volumeSize"), ctx.assume("ebs_root_gb_per_instance")
    )
    cost = _instance_cost(ctx, table, str(itype), 1, volume) if itype else None
    if cost is None:
        ctx.skip(r, region, f"instance type {itype!r} not in the price table for {region}")
        return
    ctx.add(r, region, cost[0], cost[1])


# -- network ----------------------------------------------------------------------------------


def _nat(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    gb = ctx.traffic(r.stack, "nat_gb_processed_per_gateway")
    usd = table["nat_gateway_hourly"] * ctx.hours + gb * table["nat_gateway_gb_processed"]
    basis = f"1 x NAT gateway x {_fmt(ctx.hours)} h + {_fmt(gb)} GB processed ({ctx.profile(r.stack)})"
    ctx.add(r, region, usd, basis)


def _eip(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    usd = table["public_ipv4_hourly"] * ctx.hours
    ctx.add(r, region, usd, f"1 x public IPv4 x {_fmt(ctx.hours)} h")


def _vpc_endpoint(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    kind = str(r.inputs.get("vpcEndpointType") or "Gateway")
    if kind == "Gateway":
        ctx.add(r, region, 0.0, "gateway endpoint: no charge")
        return
    if kind != "Interface":
        ctx.skip(r, region, f"VPC endpoint type {kind} not in the estimator")
        return
    azs = _count(r.inputs.get("subnetIds"))
    az_basis = (
        f"{azs} AZ" if azs else f"{_fmt(ctx.assume('interface_endpoint_azs_when_unknown'))} AZ (assumed)"
    )
    n = float(azs) if azs else ctx.assume("interface_endpoint_azs_when_unknown")
    gb = ctx.traffic(r.stack, "interface_endpoint_gb_processed_per_endpoint")
    usd = (
        n * table["vpc_interface_endpoint_az_hourly"] * ctx.hours
        + gb * table["vpc_interface_endpoint_gb_processed"]
    )
    ctx.add(r, region, usd, f"{az_basis} x {_fmt(ctx.hours)} h + {_fmt(gb)} GB processed")


def _load_balancer(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    kind = str(r.inputs.get("loadBalancerType") or "application")
    if kind != "application":
        ctx.skip(r, region, f"{kind} load balancer not in the price table (ALB only)")
        return
    lcu = ctx.traffic(r.stack, "alb_average_lcu")
    usd = (table["alb_hourly"] + lcu * table["alb_lcu_hourly"]) * ctx.hours
    basis = f"1 x ALB x {_fmt(ctx.hours)} h + {_fmt(lcu)} LCU avg"
    if not r.inputs.get("internal"):
        azs = _count(r.inputs.get("subnets")) or _count(r.inputs.get("subnetMappings"))
        n = float(azs) if azs else ctx.assume("alb_azs_when_unknown")
        usd += n * table["public_ipv4_hourly"] * ctx.hours
        basis += f" + {_fmt(n)} public IPv4{'' if azs else ' (assumed AZs)'}"
    ctx.add(r, region, usd, basis)


# -- databases --------------------------------------------------------------------------------


def _cluster_instance(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    cls = r.inputs.get("instanceClass")
    engine = str(r.inputs.get("engine") or "aurora-postgresql")
    if engine != "aurora-postgresql":
        ctx.skip(r, region, f"engine {engine} not in the price table (Aurora PostgreSQL only)")
        return
    hourly = table["aurora_postgresql_hourly"].get(cls)
    if hourly is None:
        ctx.skip(r, region, f"Aurora instance class {cls!r} not in the price table for {region}")
        return
    ctx.add(r, region, hourly * ctx.hours, f"1 x {cls} (Aurora PostgreSQL) x {_fmt(ctx.hours)} h")


def _cluster(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    engine = str(r.inputs.get("engine") or "aurora-postgresql")
    if engine != "aurora-postgresql":
        ctx.skip(r, region, f"engine {engine} not in the price table (Aurora PostgreSQL only)")
        return
    gb = ctx.assume("aurora_storage_gb")
    usd = gb * table["aurora_storage_gb_month"]
    basis = f"{_fmt(gb)} GB Aurora storage"
    secondary = bool(r.inputs.get("globalClusterIdentifier")) and r.stack == "dr" and not ctx.active
    if secondary:
        io = ctx.assume("aurora_replicated_write_io_million_per_month")
        usd += io * table["aurora_global_replicated_write_io_million"]
        basis += f" + {_fmt(io)} M replicated write I/Os (global secondary)"
    else:
        io = ctx.assume("aurora_io_million_per_month")
        usd += io * table["aurora_io_million"]
        basis += f" + {_fmt(io)} M I/Os"
    ctx.add(r, region, usd, basis)


def _rds_engine(engine: str) -> str | None:
    if engine in ("mysql", "mariadb"):
        return "mysql"  # MariaDB is listed at the MySQL rates
    if engine in ("postgres", "postgresql"):
        return "postgres"
    return None


def _rds_instance(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    inputs = r.inputs
    raw_engine = inputs.get("engine")
    replica_of = inputs.get("replicateSourceDb")
    cls = inputs.get("instanceClass")
    # A cross-region replica inherits its engine from the source; the plan may not record one.
    engine = _rds_engine(str(raw_engine)) if raw_engine else None
    inherited = not raw_engine and bool(replica_of)
    if inherited:
        engine = "postgres"  # the dearer of the two for these classes: a conservative figure
    if engine is None:
        ctx.skip(r, region, f"RDS engine {raw_engine!r} not in the price table (mysql, postgres)")
        return
    deployment = "multi_az" if inputs.get("multiAz") else "single_az"
    hourly = table["rds_hourly"][engine][deployment].get(cls)
    if hourly is None:
        ctx.skip(r, region, f"RDS instance class {cls!r} ({engine}) not in the price table for {region}")
        return
    gb = _num(inputs.get("allocatedStorage"), ctx.assume("rds_storage_gb_when_unknown"))
    storage = table["rds_gp3_storage_gb_month"][deployment]
    usd = hourly * ctx.hours + gb * storage
    az = "Multi-AZ (x2)" if deployment == "multi_az" else "single-AZ"
    basis = f"1 x {cls} {engine} {az} x {_fmt(ctx.hours)} h + {_fmt(gb)} GB gp3"
    if inherited:
        basis += " (replica inherits its engine: priced at PostgreSQL rates, the dearer)"
    if replica_of and r.stack == "dr" and not ctx.active:
        # Cross-region replication traffic is billed as inter-region transfer (at this region's
        # rate: the source region is not always known at synthesis).
        xfer = ctx.assume("rds_replication_gb_per_month")
        usd += xfer * table["data_transfer_inter_region_gb"]
        basis += f" + {_fmt(xfer)} GB replication transfer"
    ctx.add(r, region, usd, basis)


# -- security, config, observability ----------------------------------------------------------


def _kms(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    ctx.add(r, region, table["kms_key_month"], "1 x KMS key-month")


def _secret(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    ctx.add(r, region, table["secrets_manager_secret_month"], "1 x secret-month")
    for replica in r.inputs.get("replicas") or ():
        rep_region = str((replica or {}).get("region") or "unknown")
        rep_table = ctx.prices.regions.get(rep_region)
        if rep_table is None:
            ctx.not_priced.append(
                NotPriced(
                    r.stack,
                    rep_region,
                    f"{r.name} (replica)",
                    r.type,
                    "replica region not in the price table",
                )
            )
            continue
        usd = rep_table["secrets_manager_secret_month"]
        ctx.add(
            r, rep_region, usd, "1 x replica secret-month (billed as a secret)", name=f"{r.name} (replica)"
        )


def _metric_key(region: str, metric: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    ns = metric.get("namespace")
    name = metric.get("metricName")
    if not ns or not name or str(ns).startswith("AWS/"):
        return None
    dims = metric.get("dimensions") or {}
    return (region, str(ns), str(name), json.dumps(_plain(dims), sort_keys=True))


def _alarm(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    inputs = r.inputs
    # Metric-math alarms are billed per metric they read; a plain alarm reads one.
    metrics: list[Mapping[str, Any]] = []
    for q in inputs.get("metricQueries") or ():
        metric = q.get("metric") if isinstance(q, Mapping) else None
        if isinstance(metric, Mapping):
            metrics.append(metric)
    n = max(len(metrics), 1)
    period = min((_num(m.get("period"), 60.0) for m in metrics), default=_num(inputs.get("period"), 60.0))
    high_res = period < 60  # 10 s and 30 s alarms are high-resolution
    kind = "high-resolution" if high_res else "standard"
    rate = table[f"cloudwatch_{kind.replace('-', '_')}_alarm_metric_month"]
    ctx.add(r, region, n * rate, f"{n} x {kind} alarm metric-month")
    for m in metrics or [inputs]:
        key = _metric_key(region, m)
        if key is not None and key not in ctx.custom_metrics:
            ctx.custom_metrics.add(key)
            ctx.add(
                r,
                region,
                table["cloudwatch_custom_metric_month"],
                f"1 x custom metric-month ({key[1]}/{key[2]}, published by the workload)",
                name=f"metric {key[1]}/{key[2]}",
            )


def _composite_alarm(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    ctx.add(r, region, table["cloudwatch_composite_alarm_month"], "1 x composite alarm-month")


def _dashboard(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    ctx.add(r, region, table["cloudwatch_dashboard_month"], "1 x dashboard-month (free tier not deducted)")


def _metric_filter(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    t = r.inputs.get("metricTransformation") or {}
    key = _metric_key(region, {"namespace": t.get("namespace"), "metricName": t.get("name")})
    if key is None or key in ctx.custom_metrics:
        ctx.add(r, region, 0.0, "metric already counted or not custom")
        return
    ctx.custom_metrics.add(key)
    ctx.add(
        r, region, table["cloudwatch_custom_metric_month"], f"1 x custom metric-month ({key[1]}/{key[2]})"
    )


def _log_group(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    gb = ctx.traffic(r.stack, "log_ingest_gb_per_log_group")
    usd = gb * table["cloudwatch_logs_ingest_gb"]
    ctx.add(r, region, usd, f"{_fmt(gb)} GB ingested ({ctx.profile(r.stack)}); storage not modelled")


def _flow_log(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    gb = ctx.traffic(r.stack, "flow_log_gb_per_flow_log")
    dest = str(r.inputs.get("logDestinationType") or "cloud-watch-logs")
    rate = table["vended_logs_to_s3_gb"] if dest == "s3" else table["cloudwatch_vended_logs_ingest_gb"]
    ctx.add(r, region, gb * rate, f"{_fmt(gb)} GB vended logs to {dest} ({ctx.profile(r.stack)})")


# -- storage and data -------------------------------------------------------------------------


def _bucket(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    gb = ctx.assume("s3_gb_per_bucket")
    ctx.add(r, region, gb * table["s3_standard_gb_month"], f"{_fmt(gb)} GB S3 Standard (assumed per bucket)")


def _replication(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    gb = ctx.assume("s3_replicated_gb_per_month")
    objects = ctx.assume("s3_replicated_objects_per_month")
    usd = gb * table["data_transfer_inter_region_gb"] + objects / 1000 * table["s3_put_per_1000"]
    basis = f"{_fmt(gb)} GB inter-region transfer + {_fmt(objects)} replica PUTs"
    rules = r.inputs.get("rules") or ()
    rtc = any(
        str(((rule or {}).get("destination") or {}).get("replicationTime", {}).get("status", "")) == "Enabled"
        for rule in rules
    )
    if rtc:
        usd += gb * table["s3_replication_time_control_gb"]
        basis += f" + {_fmt(gb)} GB Replication Time Control"
    ctx.add(r, region, usd, basis)


def _dynamodb(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    mode = str(r.inputs.get("billingMode") or "PROVISIONED")
    if mode != "PAY_PER_REQUEST":
        ctx.skip(r, region, "provisioned-capacity DynamoDB not in the price table (on-demand only)")
        return
    writes = ctx.assume("dynamodb_writes_million_per_month")
    gb = ctx.assume("dynamodb_storage_gb")
    replicas = [str((x or {}).get("regionName") or "unknown") for x in r.inputs.get("replicas") or ()]
    key = "dynamodb_on_demand_replicated_write_million" if replicas else "dynamodb_on_demand_write_million"
    kind = "replicated writes" if replicas else "writes"
    # Every replica (the table's own region included) is billed for every write and stores a copy.
    for where, name in [(region, r.name)] + [(rep, f"{r.name} (replica)") for rep in replicas]:
        t = table if where == region else ctx.prices.regions.get(where)
        if t is None:
            ctx.not_priced.append(
                NotPriced(r.stack, where, name, r.type, "replica region not in the price table")
            )
            continue
        usd = writes * t[key] + gb * t["dynamodb_storage_gb_month"]
        ctx.add(r, where, usd, f"{_fmt(writes)} M on-demand {kind} + {_fmt(gb)} GB", name=name)


def _table_replica(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    writes = ctx.assume("dynamodb_writes_million_per_month")
    gb = ctx.assume("dynamodb_storage_gb")
    usd = (
        writes * table["dynamodb_on_demand_replicated_write_million"]
        + gb * table["dynamodb_storage_gb_month"]
    )
    ctx.add(r, region, usd, f"{_fmt(writes)} M on-demand replicated writes + {_fmt(gb)} GB")


def _ssm_parameter(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    tier = str(r.inputs.get("tier") or "Standard")
    if tier == "Advanced":
        ctx.add(r, region, table["ssm_advanced_parameter_month"], "1 x advanced parameter-month")
    else:
        ctx.add(r, region, 0.0, f"{tier} tier parameter: {NO_STANDING_CHARGE}")


def _backup_vault(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    gb = ctx.assume("backup_gb_per_vault")
    ctx.add(r, region, gb * table["backup_warm_storage_gb_month"], f"{_fmt(gb)} GB warm backup storage")


def _state_machine(ctx: _Ctx, r: ResourceLike, region: str, table: Mapping[str, Any]) -> None:
    if str(r.inputs.get("type") or "STANDARD") != "STANDARD":
        ctx.add(r, region, 0.0, "express workflow: no standing charge")
        return
    runs = ctx.assume("step_functions_executions_per_month")
    steps = ctx.assume("step_functions_transitions_per_execution")
    usd = runs * steps / 1000 * table["sfn_standard_per_1000_transitions"]
    ctx.add(r, region, usd, f"{_fmt(runs)} drills x {_fmt(steps)} state transitions")


def _route53(ctx: _Ctx, r: ResourceLike) -> None:
    g = ctx.prices.global_prices
    t = r.type
    if t == "aws:route53/zone:Zone":
        ctx.add(r, GLOBAL_REGION, g["route53_hosted_zone_month"], "1 x hosted zone-month")
        return
    if t != "aws:route53/healthCheck:HealthCheck":
        if t in _FREE_TYPES:
            ctx.add(r, GLOBAL_REGION, 0.0, _FREE_REASONS.get(t, NO_STANDING_CHARGE))
        else:
            ctx.skip(r, GLOBAL_REGION, "resource type not in the estimator")
        return
    hc = g["route53_health_check_month"]
    kind = str(r.inputs.get("type") or "")
    if kind == "CALCULATED":
        ctx.add(r, GLOBAL_REGION, hc["calculated"], "1 x calculated health check-month")
        return
    if kind == "CLOUDWATCH_METRIC":
        ctx.add(r, GLOBAL_REGION, hc["cloudwatch_metric"], "1 x CloudWatch-alarm health check-month")
        return
    if kind not in ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"):
        ctx.skip(r, GLOBAL_REGION, f"health check type {kind!r} not in the estimator")
        return
    aws_endpoint = _is_aws_endpoint(r.inputs)
    base = hc["aws_endpoint"] if aws_endpoint else hc["non_aws_endpoint"]
    feature = hc["optional_feature_aws_endpoint"] if aws_endpoint else hc["optional_feature_non_aws_endpoint"]
    features = []
    if kind.startswith("HTTPS"):
        features.append("HTTPS")
    if kind.endswith("STR_MATCH"):
        features.append("string matching")
    if _num(r.inputs.get("requestInterval"), 30.0) == 10:
        features.append("fast interval")
    if r.inputs.get("measureLatency"):
        features.append("latency measurement")
    usd = base + feature * len(features)
    where = "AWS endpoint" if aws_endpoint else "non-AWS endpoint"
    basis = f"1 x {where} health check" + (f" + {', '.join(features)}" if features else "")
    ctx.add(r, GLOBAL_REGION, usd, basis)


def _is_aws_endpoint(inputs: Mapping[str, Any]) -> bool:
    """Route 53 bills AWS endpoints (ELB, EC2, API Gateway... in the same account) at the lower rate.

    The stacks only check their own load balancers and APIs, whose names are unknown at synthesis;
    a literal host name outside amazonaws.com is taken as non-AWS (the dearer, conservative rate).
    """
    fqdn = inputs.get("fqdn")
    if not fqdn:
        return True
    return str(fqdn).rstrip(".").endswith(".amazonaws.com")


_Pricer = Callable[[_Ctx, ResourceLike, str, Mapping[str, Any]], None]

_PRICERS: dict[str, _Pricer] = {
    "aws:autoscaling/group:Group": _asg,
    "aws:ec2/instance:Instance": _instance,
    "aws:ec2/natGateway:NatGateway": _nat,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:alb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:rds/clusterInstance:ClusterInstance": _cluster_instance,
    "aws:rds/cluster:Cluster": _cluster,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:kms/key:Key": _kms,
    "aws:kms/replicaKey:ReplicaKey": _kms,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": _composite_alarm,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": _metric_filter,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:ec2/flowLog:FlowLog": _flow_log,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketV2:BucketV2": _bucket,
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": _replication,
    "aws:dynamodb/table:Table": _dynamodb,
    "aws:dynamodb/tableReplica:TableReplica": _table_replica,
    "aws:backup/vault:Vault": _backup_vault,
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:sfn/stateMachine:StateMachine": _state_machine,
}


# --------------------------------------------------------------------------------------------
# Presentation
# --------------------------------------------------------------------------------------------


def format_table(report: CostReport, *, comparison: CostComparison | None = None) -> str:
    """The report for people: priced lines per stack and region, $0 lines summarised by type,
    "not priced" in full, totals, then the assumptions and where the prices come from."""
    lines: list[str] = []
    cur = report.currency
    name_w, basis_w = 38, 64
    by_place: dict[tuple[str, str], list[LineItem]] = defaultdict(list)
    for i in report.items:
        by_place[(i.stack, i.region)].append(i)
    region_totals = report.totals_by_region()
    for stack in report.stacks:
        profile = "serving" if stack != "dr" or report.active else "standby"
        lines.append(f"== stack {stack} ({profile}) ==")
        for (s, region), items in sorted(by_place.items()):
            if s != stack:
                continue
            lines.append(f"  -- {region}: {region_totals[stack][region]:,.2f} {cur}/month")
            priced = sorted((i for i in items if i.monthly_usd > 0), key=lambda i: -i.monthly_usd)
            for i in priced:
                name = i.name if len(i.name) <= name_w else i.name[: name_w - 1] + "~"
                lines.append(f"    {name:<{name_w}} {i.monthly_usd:>10,.2f}  {i.basis[: basis_w * 2]}")
            free = [i for i in items if i.monthly_usd <= 0]
            if free:
                counts: dict[str, int] = defaultdict(int)
                for i in free:
                    counts[i.type.rsplit(":", 1)[-1]] += 1
                summary = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
                lines.append(f"    {len(free)} resources at $0 ({NO_STANDING_CHARGE}): {summary}")
        lines.append(f"  total {stack}: {report.stack_total(stack):,.2f} {cur}/month")
        lines.append("")
    if report.not_priced:
        lines.append("not priced (add to automation/prices.json or the estimator):")
        for n in report.not_priced:
            lines.append(f"  {n.stack}/{n.region}  {n.name}  [{n.type}]  {n.reason}")
        lines.append("")
    if report.structural:
        lines.append(f"{len(report.structural)} Pulumi providers/components: no AWS resource, no charge")
    lines.append(f"total: {report.total:,.2f} {cur}/month")
    if comparison is not None:
        lines.append(
            f"standby ratio: dr {comparison.dr_total:,.2f} / primary {comparison.primary_total:,.2f}"
            f" = {comparison.standby_ratio:.1f} %"
        )
    lines.append("")
    lines.append(
        f"prices: on-demand list prices as of {report.as_of}, {_fmt(report.hours_per_month)} h/month"
    )
    for topic, url in report.source.items():
        lines.append(f"  {topic}: {url}")
    lines.append("assumptions (usage per month):")
    for key, value in report.assumptions.items():
        if key == "traffic":
            for profile, values in value.items():
                rendered = ", ".join(f"{k}={_fmt(float(v))}" for k, v in values.items())
                lines.append(f"  traffic.{profile}: {rendered}")
        elif key != "description":
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)
