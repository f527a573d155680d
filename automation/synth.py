"""Offline synthesis: run the Pulumi program under Pulumi's official mocks and record every resource.

No Pulumi CLI and no AWS: ``pulumi.runtime.set_mocks`` stands in for the engine. A monitor
subclass records, for every registration, the type, name, inputs, options (parent, protect,
retain_on_delete, ignore_changes, depends_on) and the provider it went to, and the provider's region. The offline
plan prints these records; the tests assert on them. The dr stack is synthesized against the
outputs of a synthesis of the primary stack, so the two are checked together.

Values the mocks invent for what AWS would only know after deploy (ids, ARNs, endpoints) carry
:data:`COMPUTED`, so the plan can show them as ``<computed>``.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPUTED = "\u29d7"  # a marker no real value contains; shown as <computed>
ACCOUNT_ID = "123456789012"
PROJECT = "pilotlight"


class SynthError(ValueError):
    """The stack cannot be synthesized: unknown stack, bad override, or a program error."""


@dataclass
class Resource:
    """One registered resource, as the engine would have received it."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    custom: bool
    parent: str | None = None
    provider: str | None = None
    region: str | None = None
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    stack: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    component: str | None = None  # the nearest enclosing ``pilotlight:index:*`` component
    import_id: str | None = None  # the ``import`` resource option: adopt this existing resource
    # A function's code archive: each file's name in it -> the local file it is read from.
    archive: dict[str, str] = field(default_factory=dict)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")


@dataclass
class Synthesis:
    """The result of one offline synthesis."""

    stack: str
    config: dict[str, Any]
    resources: list[Resource]
    outputs: dict[str, Any]
    seconds: float
    invokes: list[tuple[str, dict[str, Any], str | None]]

    def by_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Resource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(f"no resource named {name!r} in stack {self.stack!r}")

    def aws_resources(self) -> list[Resource]:
        return [r for r in self.resources if r.custom and r.type.startswith("aws:")]


# --------------------------------------------------------------------------------------------------
# stack config files


def stack_names() -> list[str]:
    """The stacks with a ``Pulumi.<stack>.yaml`` in the project."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def load_stack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A stack's config as Pulumi hands it to the program: ``ns:key`` → string (objects as JSON)."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise SynthError(f"unknown stack {stack!r}; stacks: {', '.join(stack_names())}")
    data = yaml.safe_load(path.read_text()) or {}
    raw = dict(data.get("config") or {})
    raw.update(overrides or {})
    values: dict[str, Any] = {}
    for key, value in raw.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and "value" in value and len(value) == 1:
            value = value["value"]
        values[full] = json.dumps(value) if isinstance(value, dict | list) else _scalar(value)
    return values


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs (``--set``) checked against the config schema. Nested: ``database.mode=x``."""
    from components.config import SCHEMA

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SynthError(f"--set {pair!r}: expected key=value, e.g. dr:active=true")
        key, value = pair.split("=", 1)
        key = key.strip() if ":" in key else f"{PROJECT}:{key.strip()}"
        top, _, nested = key.partition(".")
        if top not in SCHEMA:
            raise SynthError(f"--set {key!r}: not a pilotlight config key; known keys: {', '.join(SCHEMA)}")
        if nested:
            section = out.setdefault(top, {})
            if not isinstance(section, dict):
                raise SynthError(f"--set {key!r}: {top} is already set as a whole")
            section[nested] = _json_scalar(value)
        else:
            out[top] = _json_scalar(value)
    return out


def _json_scalar(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def merge_overrides(values: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply parsed overrides to a stack's flattened config (nested object keys merge)."""
    merged = dict(values)
    for key, value in overrides.items():
        if isinstance(value, dict):
            base = json.loads(merged[key]) if key in merged else {}
            base.update(value)
            merged[key] = json.dumps(base)
        else:
            merged[key] = json.dumps(value) if isinstance(value, list) else _scalar(value)
    return merged


# --------------------------------------------------------------------------------------------------
# mocks


def _computed(name: str, attr: str) -> str:
    return f"{COMPUTED}{name}.{attr}"


# Attributes AWS fills in after create, per resource type, beyond id/arn: the program reads these.
_COMPUTED_ATTRS: dict[str, tuple[str, ...]] = {
    "aws:lb/loadBalancer:LoadBalancer": ("dnsName", "zoneId", "arnSuffix"),
    "aws:lb/targetGroup:TargetGroup": ("arnSuffix",),
    "aws:rds/cluster:Cluster": ("endpoint", "readerEndpoint", "clusterIdentifier", "clusterResourceId"),
    "aws:rds/instance:Instance": ("endpoint", "address", "identifier", "resourceId"),
    "aws:rds/globalCluster:GlobalCluster": ("globalClusterIdentifier",),
    "aws:apigateway/restApi:RestApi": ("rootResourceId", "executionArn"),
    "aws:apigateway/stage:Stage": ("invokeUrl",),
    "aws:apigateway/domainName:DomainName": ("regionalDomainName", "regionalZoneId"),
    "aws:lambda/function:Function": ("invokeArn", "qualifiedArn", "version"),
    "aws:route53/zone:Zone": ("zoneId", "nameServers"),
    "aws:kms/key:Key": ("keyId",),
    "aws:sqs/queue:Queue": ("url",),
    "aws:lambda/eventSourceMapping:EventSourceMapping": ("uuid",),
    "aws:dynamodb/table:Table": ("streamArn",),
    "aws:s3/bucket:Bucket": ("bucket", "bucketDomainName"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("latestVersion",),
    "aws:secretsmanager/secret:Secret": ("name",),
}


# Where each resource type keeps the physical name the program gives it (default: ``name``).
NAME_INPUTS: dict[str, str] = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:rds/instance:Instance": "identifier",
    "aws:rds/clusterInstance:ClusterInstance": "identifier",
    "aws:rds/cluster:Cluster": "clusterIdentifier",
    "aws:rds/globalCluster:GlobalCluster": "globalClusterIdentifier",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
}

# ARNs in the formats AWS gives them (Service Authorization Reference, "Resource types defined by
# <service>": https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html),
# so that policy documents built from them are checked against the real formats. ``{name}`` is the
# physical name (or, when AWS or Pulumi's auto-naming picks it, the marker and the logical name),
# ``{id}`` an id only known after deploy.
ARN_FORMATS: dict[str, str] = {
    "aws:lambda/function:Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "aws:lambda/eventSourceMapping:EventSourceMapping": "arn:aws:lambda:{region}:{account}:event-source-mapping:{id}",
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{name}",
    "aws:iam/policy:Policy": "arn:aws:iam::{account}:policy/{name}",
    "aws:iam/instanceProfile:InstanceProfile": "arn:aws:iam::{account}:instance-profile/{name}",
    # The provider strips the ``:*`` the API appends to a log group's ARN.
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "aws:cloudwatch/dashboard:Dashboard": "arn:aws:cloudwatch::{account}:dashboard/{name}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/{id}",
    "aws:kms/alias:Alias": "arn:aws:kms:{region}:{account}:{name}",
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{name}",
    "aws:dynamodb/table:Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "aws:rds/instance:Instance": "arn:aws:rds:{region}:{account}:db:{name}",
    "aws:rds/clusterInstance:ClusterInstance": "arn:aws:rds:{region}:{account}:db:{name}",
    "aws:rds/cluster:Cluster": "arn:aws:rds:{region}:{account}:cluster:{name}",
    "aws:rds/globalCluster:GlobalCluster": "arn:aws:rds::{account}:global-cluster:{name}",
    "aws:rds/subnetGroup:SubnetGroup": "arn:aws:rds:{region}:{account}:subgrp:{name}",
    "aws:rds/parameterGroup:ParameterGroup": "arn:aws:rds:{region}:{account}:pg:{name}",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": "arn:aws:rds:{region}:{account}:cluster-pg:{name}",
    # Secrets Manager appends six random characters to the name.
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-{id}",
    "aws:ssm/parameter:Parameter": "arn:aws:ssm:{region}:{account}:parameter/{name}",
    "aws:sfn/stateMachine:StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "aws:backup/vault:Vault": "arn:aws:backup:{region}:{account}:backup-vault:{name}",
    "aws:backup/plan:Plan": "arn:aws:backup:{region}:{account}:backup-plan:{id}",
    "aws:lb/loadBalancer:LoadBalancer": "arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/{id}",
    "aws:lb/targetGroup:TargetGroup": "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/{id}",
    "aws:lb/listener:Listener": "arn:aws:elasticloadbalancing:{region}:{account}:listener/app/{id}/{id}/{id}",
    "aws:autoscaling/group:Group": "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:{id}:autoScalingGroupName/{name}",
    "aws:ec2/launchTemplate:LaunchTemplate": "arn:aws:ec2:{region}:{account}:launch-template/{id}",
    "aws:ec2/vpc:Vpc": "arn:aws:ec2:{region}:{account}:vpc/{id}",
    "aws:ec2/subnet:Subnet": "arn:aws:ec2:{region}:{account}:subnet/{id}",
    "aws:ec2/securityGroup:SecurityGroup": "arn:aws:ec2:{region}:{account}:security-group/{id}",
    "aws:ec2/amiCopy:AmiCopy": "arn:aws:ec2:{region}::image/{id}",
    "aws:route53/zone:Zone": "arn:aws:route53:::hostedzone/{id}",
    "aws:route53/healthCheck:HealthCheck": "arn:aws:route53:::healthcheck/{id}",
    "aws:apigateway/restApi:RestApi": "arn:aws:apigateway:{region}::/restapis/{id}",
}


def arn_for(typ: str, logical: str, inputs: Mapping[str, Any], region: str) -> str | None:
    """The ARN AWS would give a resource of ``typ``, or None for types without a format here."""
    template = ARN_FORMATS.get(typ)
    if template is None:
        return None
    name = inputs.get(NAME_INPUTS.get(typ, "name"))
    if not isinstance(name, str) or not name:
        name = f"{COMPUTED}{logical}"
    if typ == "aws:ssm/parameter:Parameter":
        name = name.lstrip("/")
    if typ.startswith("aws:iam/") and isinstance(inputs.get("path"), str):
        name = inputs["path"].lstrip("/") + name  # IAM ARNs carry the path: role/<path><name>
    return template.format(region=region, account=ACCOUNT_ID, name=name, id=f"{COMPUTED}{logical}")


class _Mocks:
    """Answers registrations and invokes like AWS would, with marked computed values."""

    def __init__(
        self,
        stack: str,
        regions: dict[str, str | None],
        latch: str | None,
        primary_outputs: dict,
        live: Mapping[str, Any] | None = None,
        journal: str | None = None,
        failback_record: str | None = None,
    ):
        self.stack = stack
        self.failback_record = failback_record
        self.regions = regions  # provider urn -> region
        self.latch = latch
        self.journal = journal
        self.live = live
        self.primary_outputs = primary_outputs
        self.invokes: list[tuple[str, dict[str, Any], str | None]] = []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        if typ == "pulumi:pulumi:StackReference":
            return f"{name}-id", {
                "name": inputs.get("name"),
                "outputs": self.primary_outputs,
                "secretOutputNames": [],
            }
        if typ.startswith("pulumi:providers:"):
            return f"{name}-provider-id", inputs
        region = (self.regions.get(_provider_urn(args.provider)) if args.provider else None) or "us-east-1"
        state = dict(inputs)
        rid = _computed(name, "id")
        state.setdefault("id", rid)
        service = typ.split(":")[1].split("/")[0]
        arn = arn_for(typ, name, inputs, region)
        state.setdefault("arn", arn or f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{COMPUTED}{name}")
        if typ == "aws:apigateway/restApi:RestApi":
            state["executionArn"] = f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{COMPUTED}{name}"
        # Names the program leaves to AWS (auto-named resources) are only known after deploy.
        state.setdefault("name", _computed(name, "name"))
        for attr in _COMPUTED_ATTRS.get(typ, ()):
            state.setdefault(attr, _computed(name, attr))
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state["latestVersion"] = 1
        return rid, state

    def call(self, args: Any) -> dict[str, Any]:
        token, call_args = args.token, dict(args.args)
        region = self.regions.get(_provider_urn(args.provider)) if args.provider else None
        self.invokes.append((token, call_args, region))
        region = region or "us-east-1"
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{z}" for z in "abcd"]
            return {"names": names, "zoneIds": [f"{region[:3]}-az{i}" for i in range(1, 5)], "id": region}
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {
                "json": json.dumps({"Version": "2012-10-17", "Statement": call_args.get("statements", [])})
            }
        if token == "aws:ssm/getParametersByPath:getParametersByPath":
            # The latch and the run journal beside it (``<latch>-journal``), when written.
            path = call_args.get("path", "")
            found = {
                f"{path}/failover-state": self.latch,
                f"{path}/failover-state-journal": self.journal,
                # The dr stack's own failback record (components/failover.py PhaseRecord), as AWS has it.
                f"{path}/failover-state-failback-phase": self.failback_record,
            }
            names = [n for n, v in found.items() if v is not None]
            return {
                "names": names,
                "values": [found[n] for n in names],
                "types": ["String"] * len(names),
                "arns": [""] * len(names),
                "path": path,
                "id": path,
            }
        if token == "aws:ssm/getParameter:getParameter":
            return {
                "name": call_args.get("name"),
                "value": f"ami-0{abs(hash(region)) % 10**16:016d}",
                "type": "String",
            }
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:root",
                "userId": "mock",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region}
        if token == "aws:rds/getInstance:getInstance":
            # The live RDS instance (rds.getInstance): its replication source, "" once standalone.
            # Without a live world: a replica of region A's instance, as a deployed standby has it.
            ident = str(call_args.get("dbInstanceIdentifier", ""))
            sources = None if self.live is None else self.live.get("rdsSources", {})
            source = sources.get(ident, "") if sources is not None else f"{COMPUTED}primary-db-arn"
            # Its tags (the runbook's failback stamp on the replica it made): none without a live world.
            tags = {} if self.live is None else dict(self.live.get("rdsTags", {}).get(ident, {}))
            return {"dbInstanceIdentifier": ident, "replicateSourceDb": source, "tags": tags, "id": ident}
        if token == "aws:rds/getInstances:getInstances":
            # The region's live RDS instances (rds.getInstances), narrowed by a ``db-instance-id``
            # filter. Without a live world: none (a first deploy; the program then declares its own).
            listed = [] if self.live is None else list(self.live.get("rdsInstances", {}).get(region, []))
            for f in call_args.get("filters") or []:
                if f.get("name") == "db-instance-id":
                    listed = [i for i in listed if i in set(f.get("values") or [])]
            arns = [arn_for("aws:rds/instance:Instance", i, {"identifier": i}, region) for i in listed]
            return {"instanceIdentifiers": listed, "instanceArns": arns, "id": region}
        if token == "aws:rds/getCluster:getCluster":
            # The live Aurora cluster's instances (rds.getCluster clusterMembers). Without a live
            # world: the instances the program declares (none added out of band).
            ident = str(call_args.get("clusterIdentifier", ""))
            members = [] if self.live is None else self.live.get("clusterMembers", {}).get(ident, [])
            version = None if self.live is None else self.live.get("clusterVersions", {}).get(ident)
            return {
                "clusterIdentifier": ident,
                "clusterMembers": list(members),
                "engineVersion": version,
                "id": ident,
            }
        if token == "aws:rds/getClusters:getClusters":
            # The region's live Aurora clusters (rds.getClusters), narrowed by a ``db-cluster-id``
            # filter. Without a live world: none (a first deploy).
            listed = [] if self.live is None else list(self.live.get("rdsClusters", {}).get(region, []))
            for f in call_args.get("filters") or []:
                if f.get("name") == "db-cluster-id":
                    listed = [i for i in listed if i in set(f.get("values") or [])]
            arns = [arn_for("aws:rds/cluster:Cluster", i, {"clusterIdentifier": i}, region) for i in listed]
            return {"clusterIdentifiers": listed, "clusterArns": arns, "id": region}
        if token == "aws:autoscaling/getAmiIds:getAmiIds":
            # The region's live Auto Scaling groups (autoscaling.getAmiIds, the Autoscaling Groups data
            # source), narrowed by ``tag:<key>`` filters (AND). Without a live world, or one that does not
            # say: the web tier group the program declares in every tier, tagged as it tags it, dormant.
            groups = self._groups(region)
            if self.live is None or "asgs" not in self.live:
                wanted = {
                    str(f.get("name", ""))[4:]: (f.get("values") or [""])[0]
                    for f in call_args.get("filters") or []
                }
                groups = [{"name": DORMANT_GROUP, "tags": wanted}]
            for f in call_args.get("filters") or []:
                key = str(f.get("name", ""))
                if not key.startswith("tag:"):
                    raise ValueError(f"the mock answers tag:<key> filters only, not {key!r}")
                values = set(f.get("values") or [])
                groups = [g for g in groups if (g.get("tags") or {}).get(key[4:]) in values]
            names = sorted(str(g["name"]) for g in groups)
            arns = [
                f"arn:aws:autoscaling:{region}:{ACCOUNT_ID}:autoScalingGroup:{COMPUTED}:autoScalingGroupName/{n}"
                for n in names
            ]
            return {"names": names, "arns": arns, "id": region}
        if token == "aws:autoscaling/getGroup:getGroup":
            # One live group's sizes (autoscaling.getGroup); AWS's provider fails for a group not there.
            name = str(call_args.get("name", ""))
            group = next((g for g in self._groups(region) if g["name"] == name), None)
            if group is None and name == DORMANT_GROUP and (self.live is None or "asgs" not in self.live):
                group = {"name": name}  # (sizes 0/0/0: the pilot light)
            if group is None:
                raise ValueError(f"Auto Scaling group {name!r} not found in {region}")
            return {
                "name": name,
                "minSize": group.get("minSize", 0),
                "desiredCapacity": group.get("desiredCapacity", 0),
                "maxSize": group.get("maxSize", 0),
                "id": name,
            }
        if token == "aws:lambda/getFunction:getFunction":
            # A live function's reserved concurrency (lambda.getFunction; -1: unreserved). Without a live
            # world, or one that does not say: 0, the dormant pilot light as the program declares it.
            name = str(call_args.get("functionName", ""))
            functions = None if self.live is None else self.live.get("functions")
            if functions is not None and name not in functions.get(region, {}):
                raise ValueError(f"Function not found: {name} in {region}")  # the provider fails the update
            reserved = 0 if functions is None else functions[region][name]
            return {"functionName": name, "reservedConcurrentExecutions": reserved, "id": name}
        return {}

    def region_b_served_since(
        self, cfg: Any, groups: Sequence[str], functions: Sequence[str], since: datetime
    ) -> tuple[Any, ...]:
        """components/program.py ``read_region_b_served_since`` (boto3: scaling activities, ``Invocations``)
        answered from ``live["regionBServed"]`` (a list of ``{"what", "at"}``: what could take writes in
        region B, and when), those at or after ``since``; none without a live world that says."""
        from components.program import SERVED_SINCE_READ
        from lambdas.failover.region_b_quiet import Served, parse_moment

        self.invokes.append(
            (SERVED_SINCE_READ, {"groups": list(groups), "functions": list(functions)}, cfg.dr_region)
        )
        out = []
        for entry in [] if self.live is None else self.live.get("regionBServed", []):
            at = parse_moment(entry.get("at"))
            if at is not None and at >= since:
                out.append(Served(str(entry.get("what")), at))
        return tuple(out)

    def _groups(self, region: str) -> list[dict[str, Any]]:
        """``live["asgs"]``: region -> the Auto Scaling groups AWS has there (name, tags, sizes)."""
        return [] if self.live is None else [dict(g) for g in self.live.get("asgs", {}).get(region, [])]


DORMANT_GROUP = "pilot-light-web"
"""The web tier group the mocks answer for an offline synthesis (no live world): the program declares
one in every tier, at 0/0/0 in the pilot light."""


def _provider_urn(ref: str) -> str:
    """A provider reference is ``<urn>::<id>``; URNs contain ``::`` themselves."""
    return ref.rsplit("::", 1)[0] if "::" in ref else ref


def _run_mocked(
    stack: str,
    values: dict[str, Any],
    latch: str | None,
    primary_outputs: dict,
    live: Mapping[str, Any] | None = None,
    journal: str | None = None,
    failback_record: str | None = None,
    main: bool = False,
) -> Synthesis:
    import runpy

    import pulumi
    from pulumi.runtime import mocks as pmocks
    from pulumi.runtime.config import set_all_config

    from components import config as cfg_mod
    from components import program

    records: dict[str, Resource] = {}
    regions: dict[str, str | None] = {}

    class RecordingMonitor(pmocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type == "pulumi:pulumi:Stack":
                return response
            from pulumi.runtime import rpc

            inputs = rpc.deserialize_properties(request.object)
            rec = Resource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=_plain(inputs),
                custom=bool(request.custom),
                parent=request.parent or None,
                provider=_provider_urn(request.provider) if request.provider else None,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=list(request.ignoreChanges),
                depends_on=list(request.dependencies),
                stack=stack,
                outputs=_plain(rpc.deserialize_properties(response.object)) if response.object else {},
                import_id=request.importId or None,
                archive=_archive_files(inputs.get("code")),
            )
            if rec.is_provider:
                regions[rec.urn] = inputs.get("region")
                rec.region = inputs.get("region")
            records[rec.urn] = rec
            return response

    mocks = _Mocks(stack, regions, latch, primary_outputs, live, journal, failback_record)
    mocks_adapter = type(
        "M",
        (pulumi.runtime.Mocks,),
        {"new_resource": lambda s, a: mocks.new_resource(a), "call": lambda s, a: mocks.call(a)},
    )()
    # The mocks look up regions by provider urn; the monitor fills `regions` as providers register.
    mocks.regions = regions
    monitor = RecordingMonitor(mocks_adapter)

    outputs: dict[str, Any] = {}

    def program_fn() -> Any:
        if main:
            # The program as `pulumi up` runs it (pulumi-language-python-exec: runpy of __main__.py).
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
            return None
        parsed = cfg_mod.load()
        result = program.run(parsed)
        return pulumi.Output.from_input(result).apply(lambda r: outputs.update(r) or r)

    set_all_config(values)
    pmocks.set_mocks(monitor=monitor, mocks=mocks_adapter, project=PROJECT, stack=stack, preview=False)
    start = time.perf_counter()
    # The program's one read that is not an invoke (boto3: components/program.py
    # read_region_b_served_since) is answered by the mocks too, and recorded beside the invokes.
    boto3_read = program.read_region_b_served_since
    program.read_region_b_served_since = mocks.region_b_served_since  # type: ignore[assignment]
    try:
        pmocks.test(program_fn)()
    finally:
        program.read_region_b_served_since = boto3_read  # type: ignore[assignment]
    seconds = time.perf_counter() - start

    resources = list(records.values())
    by_urn = {r.urn: r for r in resources}
    for r in resources:
        if r.provider:
            r.region = regions.get(r.provider)
        comp, parent = None, r.parent
        while parent and parent in by_urn:
            p = by_urn[parent]
            if p.type.startswith("pilotlight:index:"):
                comp = comp or p.name
            parent = p.parent
        r.component = comp
    return Synthesis(stack, values, resources, _plain(outputs), seconds, mocks.invokes)


def _archive_files(code: Any) -> dict[str, str]:
    """The files of an ``AssetArchive`` (name in the archive -> local path); {} for anything else."""
    import pulumi

    if not isinstance(code, pulumi.AssetArchive):
        return {}
    return {name: str(getattr(asset, "path", asset)) for name, asset in code.assets.items()}


def _plain(value: Any) -> Any:
    """Deserialized properties → JSON-friendly plain values (resource refs become their urn)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    urn = getattr(value, "urn", None)
    if urn is not None:
        return f"<resource {getattr(value, '_name', '')}>"
    return str(value)


def procedure_latch(values: Mapping[str, Any]) -> str | None:
    """The latch the documented procedure leaves for these ``dr:*`` values (offline plans and tests).

    ``pulumi up`` never writes the latch: a declared failover activates it first (``python -m
    automation latch activate``), and the failback releases it before ``route-back``. So
    ``dr:active true`` is planned under an active latch, except in the phases after the release.
    """
    active = str(values.get("dr:active", "")).lower() == "true"
    if not active or values.get("dr:failback") in ("route-back", "complete"):
        return None
    return json.dumps({"state": "active", "since": "2026-01-01T00:00:00Z", "runbook": "declared failover"})


def synthesize_as_procedure(stack: str, overrides: Mapping[str, Any], **kwargs: Any) -> Synthesis:
    """:func:`synthesize` under the latch the documented procedure leaves for ``overrides``
    (:func:`procedure_latch`): a failback phase runs only under the failover's latch."""
    return synthesize(stack, overrides, latch=procedure_latch(overrides), **kwargs)


def procedure_journal(values: Mapping[str, Any], latch: str | None) -> str | None:
    """The run journal the documented procedure leaves before ``dr:failback switch-writer``: ``python -m
    automation latch switch-writer`` ran first. aurora-global: the runbook's switchover, which writes its
    writer-move mark first (components/failover.py ``refuse_unmoved_aurora_writer``); rds-replica: the
    zero-lag proof for the drain :func:`procedure_record` names (``refuse_unproven_failback_promotion``).
    None (not written) otherwise."""
    from components.failover import JOURNAL_DRAIN_PROVEN, JOURNAL_WRITER_MOVE, Latch

    database = values.get("pilotlight:database") or {}
    if isinstance(database, str):  # a stack's flattened config holds objects as JSON (merge_overrides)
        database = json.loads(database)
    mode = database.get("mode") if isinstance(database, Mapping) else None
    if values.get("dr:failback") != "switch-writer" or not latch:
        return None
    since = Latch.parse(latch).since
    if mode == "aurora-global":
        return json.dumps({JOURNAL_WRITER_MOVE: since})
    return json.dumps(
        {JOURNAL_DRAIN_PROVEN: {"latchSince": since, "drains": 1, "at": since, "drainedAt": since}}
    )


def procedure_record(values: Mapping[str, Any], latch: str | None) -> str | None:
    """The failback record the documented procedure leaves before ``dr:failback`` in ``values``: the
    phase before it, applied under ``latch`` (phases run one at a time: components/failover.py
    ``refuse_phase_skip``), as :func:`procedure_latch` is the latch it leaves. None before ``replicate``
    or without a phase."""
    from components.config import FAILBACK_PHASES
    from components.failover import Latch, PhaseRecord

    phase = values.get("dr:failback")
    if phase not in FAILBACK_PHASES or FAILBACK_PHASES.index(phase) == 0:
        return None
    since = Latch.parse(latch).since if latch else None
    before = FAILBACK_PHASES[FAILBACK_PHASES.index(phase) - 1]
    # One drain so far (components/failover.py drains_recorded) once the phase before is drain or later.
    drained = FAILBACK_PHASES.index(before) >= FAILBACK_PHASES.index("drain")
    return PhaseRecord(before, since, drains=1 if drained else 0).to_json()


def synthesize(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    latch: str | None = None,
    primary_outputs: dict[str, Any] | None = None,
    primary_overrides: Mapping[str, Any] | None = None,
    live: Mapping[str, Any] | None = None,
    journal: str | None = None,
    main: bool = False,
) -> Synthesis:
    """Synthesize one stack offline. A dr stack is synthesized against a synthesis of ``primary``.

    Args:
        stack: a stack with a ``Pulumi.<stack>.yaml``.
        overrides: parsed ``--set`` values (see :func:`parse_overrides`).
        latch: the failover latch value the dr stack reads from SSM (None: not written yet).
        primary_outputs: the primary stack's outputs; default: synthesize stack ``primary``.
        primary_overrides: overrides for that primary synthesis.
        live: what the program's live reads answer: ``rdsSources`` (RDS instance -> replication
            source, "" when standalone: rds.getInstance), ``rdsTags`` (RDS instance -> its tags:
            rds.getInstance), ``rdsInstances`` (region -> RDS instance
            identifiers: rds.getInstances) and ``clusterMembers`` (Aurora cluster ->
            instance identifiers: rds.getCluster) and ``asgs`` (region -> Auto Scaling groups, each
            ``{name, tags, minSize, desiredCapacity, maxSize}``: autoscaling.getAmiIds and getGroup),
            ``functions`` (region -> function name -> reserved concurrency, -1 unreserved: lambda.getFunction);
            None: a deployed standby as the program declares it.
        journal: the run journal beside the latch (SSM ``<latch>-journal``, region B), None: not written.
            ``live["failbackPhase"]`` is the dr stack's failback record; without the key, the one the
            documented procedure leaves before this phase (:func:`procedure_record`). A journal not
            given is the one the procedure leaves (:func:`procedure_journal`).
        main: run ``__main__.py`` as ``pulumi up`` does (no outputs collected; what it raises is what
            the language host would see, unwrapped).
    """
    values = merge_overrides(load_stack_config(stack), overrides or {})
    record = (
        (live or {})["failbackPhase"] if "failbackPhase" in (live or {}) else procedure_record(values, latch)
    )
    if journal is None:
        journal = procedure_journal(values, latch)
    if values.get("pilotlight:role") == "dr" and primary_outputs is None:
        primary_outputs = synthesize("primary", primary_overrides).outputs
    ctx = contextvars.Context()
    if main:
        return ctx.run(
            _run_mocked, stack, values, latch, primary_outputs or {}, live, journal, record, main=True
        )
    try:
        return ctx.run(_run_mocked, stack, values, latch, primary_outputs or {}, live, journal, record)
    except Exception as exc:
        from components.config import ConfigError
        from components.failover import FailoverRefused
        from components.wiring import StackWiringError

        if isinstance(exc, ConfigError | FailoverRefused | StackWiringError):
            raise
        cause = _root_cause(exc)
        if isinstance(cause, ConfigError | FailoverRefused | StackWiringError):
            raise cause from exc
        raise


def _root_cause(exc: BaseException) -> BaseException:
    # A chain may loop: the SDK re-raises a failed registration's exception `from` the first one that
    # failed (pulumi/runtime/stack.py wait_for_rpcs), the same object when it failed first.
    seen: BaseException = exc
    visited = {id(exc)}
    while True:
        nxt = seen.__cause__ or seen.__context__
        if nxt is None or id(nxt) in visited:
            return seen
        visited.add(id(nxt))
        seen = nxt


def mask(value: Any) -> Any:
    """A plain value with everything only known after deploy replaced by ``"<computed>"``."""
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str) and COMPUTED in value:
        return "<computed>"
    return value


def show(value: Any) -> str:
    """A value for people: computed values as ``<computed>``."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return "<computed>" if COMPUTED in text else text
