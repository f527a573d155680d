"""The local drill's world: the deployment, its endpoints, Route 53 and a client, in the emulator.

* **Names** come from the offline synthesis (:mod:`automation.synth`): the dr stack's ``runbook``
  output, and the databases, KMS keys and Route 53 records as the program registers them.
* **The deployment** is created in a moto server on 127.0.0.1 while an
  :class:`~automation.emulator.aws.Emulator` is installed around it (the emulator patches moto in
  this process, so the server's threads run its behaviours too): the database pair, encrypted as the
  program encrypts it (a KMS key per region: region A's database with A's key, region B's replica or
  secondary with B's), the web tiers and functions (region B's at zero), the queue's event source,
  the table in both regions, the latch and the alert topic.
* **Health endpoints** on 127.0.0.1 answer ``GET /health`` with the API's own health evaluation
  (:mod:`lambdas.api.health`) while their region answers and its application serves, 503 while it
  does not serve, and drop the connection while the region is dark.
* **Route 53** is the emulator's model (:class:`~automation.emulator.traffic.Routing`) of the dr
  stack's failover records, health checks and switch alarm, fed from the emulated CloudWatch.
* **A client** posts a payment every :data:`WRITE_EVERY` virtual seconds to the region Route 53
  answers for the web name (no resolver caching): ``POST /payments`` handed to that region's
  function (:mod:`automation.drill_function`, the real API handler), acknowledged only on a 2xx.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from automation import synth
from lambdas.failover.names import ledger_marker_function_name

if TYPE_CHECKING:  # the emulator package needs moto, a development dependency: imported when a drill runs
    from automation.drill_function import Answer as ApiAnswer
    from automation.drill_function import ApiFunction
    from automation.emulator.aws import Emulator
    from automation.emulator.network import RdsNetwork
    from automation.emulator.traffic import AlarmSpec, HealthCheckSpec, Routing

WRITE_EVERY = 5.0
"""Virtual seconds between two client writes."""

Answer = tuple[int, dict[str, Any]] | None
"""A health endpoint's answer: (HTTP status, JSON body), or None to drop the connection."""


# --------------------------------------------------------------------------------------------------
# names from the offline synthesis


def _physical(value: Any) -> Any:
    """A synthesized value with AWS-assigned names resolved as the emulator will name them.

    Computed names (``<marker><logical>.name``) become the logical name, which is what Pulumi's
    auto-naming starts from; other computed values are filled in once the emulator has them.
    """
    if isinstance(value, str) and value.startswith(synth.COMPUTED):
        for attribute in (".name", ".bucket"):  # a bucket's name is its ``bucket``
            if value.endswith(attribute):
                return value[len(synth.COMPUTED) : -len(attribute)]
    if isinstance(value, list):
        return [_physical(v) for v in value]
    return value


DB_NAME = "pilotlight"
"""The database the drill's stacks name (``pilotlight:database.dbName``): the one each real server
holds (``automation.postgres.DATABASE``), as RDS creates the stack's ``DBName`` with the instance."""


def drill_overrides(mode: str) -> dict[str, Any]:
    """Config overrides for the drill's syntheses (database mode and name; RDS engine for rds-replica)."""
    db: dict[str, Any] = {"mode": mode, "dbName": DB_NAME}
    if mode == "rds-replica":
        db["engine"] = "postgres"
    return {"pilotlight:database": db}


@dataclass(frozen=True)
class Synthesized:
    """Both stacks synthesized offline, and the dr stack's ``runbook`` output with names resolved."""

    mode: str
    context: dict[str, Any]
    primary: synth.Synthesis
    dr: synth.Synthesis

    @property
    def table_name(self) -> str:
        return str(self.primary.outputs["tableName"]).replace(synth.COMPUTED, "")

    def database(self, stack: synth.Synthesis) -> synth.Resource:
        """The stack's RDS instance (rds-replica) or Aurora cluster (aurora-global)."""
        kind = "aws:rds/instance:Instance" if self.mode == "rds-replica" else "aws:rds/cluster:Cluster"
        return stack.by_type(kind)[0]

    def key_name(self, stack: synth.Synthesis) -> str:
        """The logical name of the KMS key the stack's database is encrypted with."""
        arn = str(self.database(stack).inputs["kmsKeyId"])
        return arn.rsplit(":", 1)[-1].replace(synth.COMPUTED, "")

    def aurora_instances(self) -> list[str]:
        """Region A's Aurora instance identifiers, as the primary stack names them."""
        return sorted(
            str(r.inputs["identifier"])
            for r in self.primary.by_type("aws:rds/clusterInstance:ClusterInstance")
        )


def synthesize(mode: str) -> Synthesized:
    """Synthesize both stacks for ``mode``; computed ARNs and URLs are left to provisioning."""
    overrides = drill_overrides(mode)
    primary = synth.synthesize("primary", overrides)
    dr = synth.synthesize("dr", overrides, primary_outputs=primary.outputs)
    runbook = {k: _physical(v) for k, v in dr.outputs["runbook"].items()}
    for key in ("primaryCapacity", "drCapacity"):
        runbook[key] = {k: int(v) for k, v in runbook[key].items()}
    return Synthesized(mode, runbook, primary, dr)


# --------------------------------------------------------------------------------------------------
# the moto server


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port), emptied first; install the Emulator around it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's request log is noise here
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its state per process: start from an empty emulator, whatever ran before.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambdas/__init__.py", "")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# the deployment


@dataclass
class Deployment:
    """What the drill created in the emulator, and plain clients to inspect it (never refused)."""

    endpoint: str
    mode: str
    context: dict[str, Any]
    emulator: Emulator
    table_name: str
    kms_keys: dict[str, str] = field(default_factory=dict)
    """Region -> the ARN of the KMS key its database is encrypted with."""
    databases: dict[str, str] = field(default_factory=dict)
    """Region -> the database copy (ARN) the region's application is configured to write to."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Region -> the ARN of the Secrets Manager secret with the database's application login."""
    functions: dict[str, ApiFunction] = field(default_factory=dict)
    """Region -> its payments function: the real API handler with the stack's environment."""
    network: RdsNetwork | None = None
    """What a function's connection to an instance endpoint name reaches (real servers only)."""
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def region_a(self) -> str:
        return str(self.context["primaryRegion"])

    @property
    def region_b(self) -> str:
        return str(self.context["drRegion"])

    def client(self, service: str, region: str) -> Any:
        import boto3

        key = (service, region)
        if key not in self.clients:
            self.clients[key] = boto3.client(
                service,  # type: ignore[call-overload]  # service names are plain strings here
                region_name=region,
                endpoint_url=self.endpoint,
                aws_access_key_id="drill",
                aws_secret_access_key="drill",
            )
        return self.clients[key]


def provision(endpoint: str, names: Synthesized, emulator: Emulator) -> Deployment:
    """Create the DR-relevant resources under the synthesized names (the emulator must be installed)."""
    from automation.emulator.aws import ACCOUNT, AppTier
    from automation.emulator.stores import create_receipts_buckets
    from lambdas.failover.names import REPLICATION_RULE_ID

    dep = Deployment(endpoint, names.mode, dict(names.context), emulator, names.table_name)
    ctx = dep.context
    ctx["globalTableName"] = dep.table_name
    a, b = dep.region_a, dep.region_b
    emulator.provisioning = True  # resources are created available, as a deployed stack has them

    role_arn = dep.client("iam", a).create_role(
        RoleName=f"{ctx['appName']}-drill-fn",
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        ),
    )["Role"]["Arn"]  # fmt: skip

    # One KMS key per region, as the program creates them: a key cannot be used outside its region.
    for region, stack in ((a, names.primary), (b, names.dr)):
        dep.kms_keys[region] = dep.client("kms", region).create_key(Description=names.key_name(stack))[
            "KeyMetadata"
        ]["Arn"]
    _fill_key_arns(dep, names)
    _provision_database(dep, names)
    _provision_secrets(dep, names)

    # Web tiers: A serving, B at 0/0/0.
    for region, name, cap in (
        (a, ctx["primaryAsgName"], ctx["primaryCapacity"]),
        (b, ctx["drAsgName"], {"min": 0, "desired": 0, "max": 0}),
    ):
        dep.client("ec2", region).create_launch_template(
            LaunchTemplateName=f"{name}-lt",
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small"},
        )
        dep.client("autoscaling", region).create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
            MinSize=cap["min"],
            MaxSize=cap["max"],
            DesiredCapacity=cap["desired"],
            AvailabilityZones=[f"{region}a", f"{region}b"],
        )  # fmt: skip

    # Functions: A serving; B deployed at reserved concurrency 0 with its event source disabled.
    for region, fn_names in ((a, ctx["primaryFunctionNames"]), (b, ctx["drFunctionNames"])):
        fn = dep.client("lambda", region)
        for name in fn_names:
            fn.create_function(
                FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="lambdas.api.handler.handler", Code={"ZipFile": _zip()}
            )  # fmt: skip
            if region == b:
                fn.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    if ctx["databaseMode"] == "rds-replica":
        # Each region's ledger marker function, as components/serverless.py deploys it on the driver
        # path: the commit after a drain that the RDS for PostgreSQL zero-lag proof needs.
        marker = ledger_marker_function_name(f"{ctx['appName']}-{ctx['environment']}")
        for region in (a, b):
            dep.client("lambda", region).create_function(
                FunctionName=marker, Runtime="python3.12", Role=role_arn, Handler="lambdas.api.marker.handler", Code={"ZipFile": _zip()}
            )  # fmt: skip
            emulator.register_marker_function(region, marker)
    # Each region's function consumes its own queue: enabled in A, disabled in B.
    for region, fn_names, key, enabled in (
        (a, ctx["primaryFunctionNames"], "primaryEventSourceMappingIds", True),
        (b, ctx["drFunctionNames"], "drEventSourceMappingIds", False),
    ):
        sqs = dep.client("sqs", region)
        queue_url = sqs.create_queue(QueueName=f"{ctx['appName']}-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        mapping = dep.client("lambda", region).create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName=fn_names[0], Enabled=enabled
        )
        ctx[key] = [mapping["UUID"]]

    # The global table, one replica per region in moto, replicating through the emulator (moto does not
    # replicate between regions): the runbook's drain marker written in one replica becomes readable in
    # the other after the table's replication delay (lambdas/failover/lossless.py table_marker_latency).
    # Only the runbook's items replicate (``moto_items``): the drill's payments function writes its
    # items through moto, which never replicated them, and the drill checks the database; replicating
    # them would put region A's outage-era latencies (their backlog arriving when A answers again)
    # into the failback's ten-times wait, a change of the drill's timeline this fix does not make.
    for region in (a, b):
        dep.client("dynamodb", region).create_table(
            TableName=dep.table_name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
    from lambdas.failover.lossless import DRAIN_MARKER_PK

    emulator.register_global_table(dep.table_name, (a, b), moto_items=DRAIN_MARKER_PK)

    # The receipts buckets, each replicating into the other, as components/storage.py deploys them.
    buckets = {a: ctx["primaryBucketName"], b: ctx["drBucketName"]}
    role = f"arn:aws:iam::{ACCOUNT}:role/{ctx['appName']}-receipts-replication"
    create_receipts_buckets(lambda region: dep.client("s3", region), buckets, role, REPLICATION_RULE_ID)
    emulator.register_bucket_replication(*buckets.values())

    from components.failover import Latch

    dep.client("ssm", b).put_parameter(Name=ctx["latchParameterName"], Value=Latch().to_json(), Type="String")
    # The runbook lock's table, as components/pilot_light_region.py declares it (region B, the
    # schema of lambdas/failover/lock.py).
    from lambdas.failover import lock

    dep.client("dynamodb", b).create_table(
        TableName=ctx["lockTableName"], BillingMode="PAY_PER_REQUEST", **lock.table_schema()
    )
    topic_name = ctx["notifyTopicArn"].rsplit(":", 1)[-1].replace(synth.COMPUTED, "")
    ctx["notifyTopicArn"] = dep.client("sns", b).create_topic(Name=topic_name)["TopicArn"]

    # What serves the workload in each region, and the database its application is configured with.
    for region, asg, functions in (
        (a, ctx["primaryAsgName"], ctx["primaryFunctionNames"]),
        (b, ctx["drAsgName"], ctx["drFunctionNames"]),
    ):
        # The application follows the database the region's stack names (a re-seed moves region B's).
        emulator.register_app(
            AppTier(region, asg, tuple(functions), lambda region=region: dep.databases[region])
        )
    emulator.provisioning = False
    _provision_functions(dep, names)
    return dep


def _fill_key_arns(dep: Deployment, names: Synthesized) -> None:
    """The runbook outputs' data key ARNs (``primaryKmsKeyArn``, ``drKmsKeyArn``, ``dataKeyArns``,
    ``lockTableKeyArn``: components/data.py fills them from each stack's data key) as the keys the
    world created: a user passes the failback nothing the outputs carry."""
    by_synthesized = {
        str(names.database(stack).inputs["kmsKeyId"]): dep.kms_keys[region]
        for region, stack in ((dep.region_a, names.primary), (dep.region_b, names.dr))
    }
    ctx = dep.context
    for key in ("primaryKmsKeyArn", "drKmsKeyArn", "lockTableKeyArn"):
        if key in ctx:
            ctx[key] = by_synthesized.get(str(ctx[key]), ctx[key])
    if "dataKeyArns" in ctx:
        ctx["dataKeyArns"] = [by_synthesized.get(str(k), k) for k in ctx["dataKeyArns"]]
    for key in ("primaryKmsKeyArn", "drKmsKeyArn"):
        if synth.COMPUTED in str(ctx.get(key, "")):
            raise ValueError(f"runbook output {key}: {synth.show(ctx[key])} is not a key the drill created")


def _provision_functions(dep: Deployment, names: Synthesized) -> None:
    """Each region's payments function: the real handler, the environment its stack declares."""
    from automation.drill_function import ApiFunction, resolve_environment, synthesized_environment
    from automation.emulator.network import RdsNetwork

    if dep.emulator.pg is not None:
        dep.network = RdsNetwork(dep.emulator)
    for region, fn_names in ((dep.region_a, dep.context["primaryFunctionNames"]), (dep.region_b, dep.context["drFunctionNames"])):  # fmt: skip
        env = resolve_environment(synthesized_environment(names, region), dep, region)
        dep.functions[region] = ApiFunction(region, str(fn_names[0]), env, dep.endpoint)


def _provision_database(dep: Deployment, names: Synthesized) -> None:
    """The encrypted database pair: region A's writer with A's key, region B's copy with B's key."""
    ctx = dep.context
    a, b = dep.region_a, dep.region_b
    rds_a, rds_b = dep.client("rds", a), dep.client("rds", b)
    source = names.database(names.primary).inputs
    retention = int(source.get("backupRetentionPeriod") or 7)
    if dep.mode == "rds-replica":
        instance_class = str(source.get("instanceClass") or "db.t4g.medium")
        writer = rds_a.create_db_instance(
            DBInstanceIdentifier=ctx["primaryDbInstanceId"],
            Engine=str(source.get("engine") or "postgres"),
            DBInstanceClass=instance_class,
            AllocatedStorage=20,
            MasterUsername="drill",
            MasterUserPassword="drill-only-password",
            DBName=DB_NAME,
            BackupRetentionPeriod=retention,
            StorageEncrypted=True,
            KmsKeyId=dep.kms_keys[a],
        )["DBInstance"]
        replica = rds_b.create_db_instance_read_replica(
            DBInstanceIdentifier=ctx["drDbInstanceId"],
            SourceDBInstanceIdentifier=writer["DBInstanceArn"],
            DBInstanceClass=instance_class,
            KmsKeyId=dep.kms_keys[b],
            SourceRegion=a,
        )["DBInstance"]
        dep.databases = {a: writer["DBInstanceArn"], b: replica["DBInstanceArn"]}
        return
    engine = str(source.get("engine") or "aurora-postgresql")
    gid = ctx["globalClusterId"]
    rds_a.create_global_cluster(GlobalClusterIdentifier=gid, Engine=engine, StorageEncrypted=True)
    cluster_a = rds_a.create_db_cluster(
        DBClusterIdentifier=ctx["primaryClusterId"],
        Engine=engine,
        GlobalClusterIdentifier=gid,
        MasterUsername="drill",
        MasterUserPassword="drill-only-password",
        DatabaseName=DB_NAME,
        BackupRetentionPeriod=retention,
        StorageEncrypted=True,
        KmsKeyId=dep.kms_keys[a],
    )["DBCluster"]
    for identifier in names.aurora_instances() or [f"{ctx['primaryClusterId']}-0"]:
        rds_a.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBClusterIdentifier=ctx["primaryClusterId"],
            Engine=engine,
            DBInstanceClass=ctx["drInstanceClass"],
        )
    # Region B's secondary is headless, as the program deploys it (the cheapest pilot light).
    cluster_b = rds_b.create_db_cluster(
        DBClusterIdentifier=ctx["drClusterId"],
        Engine=engine,
        GlobalClusterIdentifier=gid,
        BackupRetentionPeriod=retention,
        StorageEncrypted=True,
        KmsKeyId=dep.kms_keys[b],
    )["DBCluster"]
    ctx["drClusterArn"] = cluster_b["DBClusterArn"]
    dep.databases = {a: cluster_a["DBClusterArn"], b: cluster_b["DBClusterArn"]}


def _secret_name(names: Synthesized, region: str) -> str:
    """The secret's name as the program gives it (``DB_SECRET_ARN`` less AWS's random suffix)."""
    from automation.drill_function import synthesized_environment

    arn = synthesized_environment(names, region).get("DB_SECRET_ARN", "")
    name = arn.split(":secret:", 1)[-1]
    return name.split("-" + synth.COMPUTED, 1)[0] if ":secret:" in arn else "pilotlight-db-app"


def _provision_secrets(dep: Deployment, names: Synthesized) -> None:
    """The database login the API functions read, one secret per region (the program replicates it).

    With real servers it is the servers' application role (``automation.postgres``'s ``app``); the
    host and port are those of the region's server as deployed (the functions resolve the endpoint
    from the instance name on each request, so a rename or a new server does not stale them).
    """
    pg = dep.emulator.pg
    login = pg.app_credentials() if pg is not None else {"username": "app", "password": "modelled"}
    for region in (dep.region_a, dep.region_b):
        server = pg.server(dep.databases[region]) if pg is not None else None
        value = {**login, "engine": "postgres"}
        if server is not None:
            value |= {"host": server.host, "port": server.port}
        dep.secrets[region] = dep.client("secretsmanager", region).create_secret(
            Name=_secret_name(names, region), SecretString=json.dumps(value)
        )["ARN"]


# --------------------------------------------------------------------------------------------------
# CloudWatch, as stored by the emulator


def datapoints(
    region: str, namespace: str, name: str, dimensions: dict[str, str], start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """Datapoints of one metric in ``[start, end)`` (aware UTC datetimes), oldest first.

    Read from the emulator's CloudWatch store: what ``GetMetricData`` would answer at one-second
    resolution, without the minute aggregation a drill's short runs would blur.
    """
    from moto.cloudwatch.models import cloudwatch_backends

    from automation.emulator.aws import ACCOUNT

    tz = start.tzinfo
    lo, hi = start.replace(tzinfo=None), end.replace(tzinfo=None)
    out: list[tuple[datetime, float]] = []
    for d in list(cloudwatch_backends[ACCOUNT][region].metric_data):
        if d.namespace != namespace or d.name != name:
            continue
        if {x.name: x.value for x in d.dimensions} != dimensions:
            continue
        # moto keeps request timestamps naive UTC, or aware when the caller sent them aware.
        ts = d.timestamp if d.timestamp.tzinfo is None else d.timestamp.astimezone(tz).replace(tzinfo=None)
        value = getattr(d, "value", None)  # statistic sets carry no single value
        if value is not None and lo <= ts < hi:
            out.append((ts.replace(tzinfo=tz), float(value)))
    return sorted(out)


# --------------------------------------------------------------------------------------------------
# health endpoints


class HealthEndpoint:
    """An HTTP server on 127.0.0.1 answering ``GET /health`` with what ``answer()`` returns."""

    def __init__(self, answer: Callable[[], Answer]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                got = answer()
                if got is None:  # the region is dark: the connection drops without an answer
                    self.close_connection = True
                    return
                status, body = got
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def health_answer(dep: Deployment, region: str) -> Callable[[], Answer]:
    """``GET /health`` of ``region``: the API's own evaluation while the region serves."""
    from lambdas.api.config import HealthSettings
    from lambdas.api.health import evaluate_health

    ctx = dep.context
    primary = region == dep.region_a
    env = {
        "AWS_REGION": region,
        "STACK_ROLE": "primary" if primary else "dr",
        "TABLE_NAME": dep.table_name,
        "LATCH_PARAMETER": ctx["latchParameterName"],
        "LATCH_REGION": dep.region_b,
        "DB_MODE": dep.mode,
    }
    if dep.mode == "rds-replica":
        env["DB_INSTANCE_ID"] = ctx["primaryDbInstanceId" if primary else "drDbInstanceId"]
    else:
        env.update({"GLOBAL_CLUSTER_ID": ctx["globalClusterId"], "DB_CLUSTER_ARN": dep.databases[region]})
    settings = HealthSettings.from_env(env)
    emulator = dep.emulator

    def answer() -> Answer:
        if not emulator.reachable(region):
            return None
        if not emulator.serving(region):
            return 503, {"region": region, "error": "no healthy targets"}
        report = evaluate_health(
            settings,
            dep.client("dynamodb", region),
            dep.client("rds", region),
            dep.client("ssm", dep.region_b),
        )
        return (200 if report.healthy else 503), report.body()

    return answer


@contextmanager
def health_endpoints(dep: Deployment) -> Iterator[dict[str, HealthEndpoint]]:
    """Both regions' health endpoints, their URLs in the runbook context; closed on exit."""
    endpoints = {
        region: HealthEndpoint(health_answer(dep, region)) for region in (dep.region_a, dep.region_b)
    }
    dep.context["primaryHealthUrl"] = endpoints[dep.region_a].url
    dep.context["drHealthUrl"] = endpoints[dep.region_b].url
    try:
        yield endpoints
    finally:
        for endpoint in endpoints.values():
            endpoint.close()


# --------------------------------------------------------------------------------------------------
# Route 53 and the client


def routing(names: Synthesized) -> tuple[Routing, str]:
    """Route 53 as the dr stack registers it, and the web name its failover records answer."""
    from automation.emulator.traffic import Routing

    lbs = names.primary.by_type("aws:lb/loadBalancer:LoadBalancer") + names.dr.by_type(
        "aws:lb/loadBalancer:LoadBalancer"
    )
    model = Routing.from_synthesis(names.dr.resources, {lb.outputs["dnsName"]: str(lb.region) for lb in lbs})
    web = next((n for n in model.names if n.startswith("web.")), model.names[0])
    return model, web


@dataclass(frozen=True)
class Attempt:
    """One client write: when, where Route 53 sent it, and the write the emulator acknowledged."""

    at: datetime
    region: str | None
    write: int | None
    """The acknowledged write's id; None when the region did not serve or had no writable database."""
    status: int | None = None
    """What ``POST /payments`` answered (None: no function or web tier took the request)."""
    reason: str | None = None
    """Why it was not acknowledged: the API's ``reason`` (``not_writer``, ``database_unreachable``,
    ``outcome_unknown``...), ``not_served`` when nothing in the region took the request."""


@dataclass
class Client:
    """The workload: a write every :data:`WRITE_EVERY` virtual seconds through Route 53's answer.

    Each tick also notes whether two regions take writes at once (serve, and hold a database that
    accepts writes): the *one writer* invariant of ``docs/safety.md``, judged on every write.
    """

    dep: Deployment
    routing: Routing
    name: str
    attempts: list[Attempt] = field(default_factory=list)
    two_writers: list[datetime] = field(default_factory=list)

    def start(self) -> None:
        self.dep.emulator.clock.every(WRITE_EVERY, self.tick)

    def where(self) -> str | None:
        """The region Route 53 answers for the web name now."""
        emulator = self.dep.emulator

        def points(alarm: AlarmSpec, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
            return datapoints(
                alarm.region, alarm.namespace, alarm.metric_name, dict(alarm.dimensions), start, end
            )

        def endpoint_up(_: HealthCheckSpec) -> bool:
            return emulator.serving(self.dep.region_a)

        return self.routing.where(self.name, emulator.clock.now(), datapoints=points, endpoint_up=endpoint_up)

    def writers(self) -> list[str]:
        """Regions that serve and hold a database accepting writes now."""
        emulator = self.dep.emulator
        return [
            r
            for r in (self.dep.region_a, self.dep.region_b)
            if emulator.serving(r) and emulator.database_writable(r) is not None
        ]

    def tick(self) -> None:
        emulator = self.dep.emulator
        now = emulator.clock.now()
        region = self.where()
        self.attempts.append(
            self.post(region, now) if region else Attempt(now, None, None, None, "no_answer")
        )
        if len(self.writers()) > 1:
            self.two_writers.append(now)

    def post(self, region: str, at: datetime) -> Attempt:
        """One payment through ``region``'s application, as attempted at ``at``.

        With real servers behind the emulator it is ``POST /payments`` handed to the region's function
        (:mod:`automation.drill_function`: the real handler, the real ledger) and acknowledged only on
        a 2xx; otherwise it is a modelled write.
        """
        emulator = self.dep.emulator
        if not emulator.serving(region):
            return Attempt(at, region, None, None, "not_served")  # no web tier or function takes it
        if emulator.pg is None:
            write = emulator.write(region)
            return Attempt(
                at, region, write.id if write else None, 201 if write else 503, None if write else "modelled"
            )
        from automation.drill_function import payment_body
        from automation.emulator.pg import payment_id

        write_id = emulator.data.next_id()
        pid = payment_id(write_id)
        answer = self.request(region, "POST", "/payments", payment_body(pid))
        if not answer.acknowledged:
            return Attempt(at, region, None, answer.status, answer.reason)
        key = self.committed_on(answer)
        return Attempt(at, region, emulator.record_payment(key, write_id).id, answer.status)

    def request(self, region: str, method: str, path: str, body: dict[str, Any] | None = None) -> ApiAnswer:
        """One request to ``region``'s function; what the database network saw it reach is on the answer."""
        function = self.dep.functions[region]
        network = self.dep.network
        return function.request(method, path, body, network.reached if network is not None else None)

    def committed_on(self, answer: ApiAnswer) -> str:
        """The database copy that committed an acknowledged payment.

        Data API: the cluster the function names (``DB_CLUSTER_ARN``); the driver: the instance its
        last connection reached (the endpoint name resolves to whichever instance bears it).
        """
        if self.dep.mode == "aurora-global":
            return self.dep.functions[answer.region].environment["DB_CLUSTER_ARN"]
        if not answer.reached:
            raise RuntimeError(f"{answer.region}: a payment acknowledged with no database connection")
        return answer.reached[-1]

    def burst_until(self, region: str, event: Callable[[], None], *, before: int = 5) -> int:
        """Payments posted back to back through ``region`` (a workload in full flow) while ``event``
        happens once ``before`` of them were acknowledged; returns how many were acknowledged.

        The burst runs on a thread of its own, in wall-clock time, so ``event`` (a region going
        dark) strikes between and during its writes; it ends at the first refused payment.
        """
        now = self.dep.emulator.clock.now()
        acked: list[int] = []
        done = threading.Event()

        def run() -> None:
            while True:
                attempt = self.post(region, now)
                self.attempts.append(attempt)
                if attempt.write is None:
                    break
                acked.append(attempt.write)
            done.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        while len(acked) < before and not done.is_set():
            done.wait(0.005)
        event()
        thread.join(timeout=60)
        return len(acked)
