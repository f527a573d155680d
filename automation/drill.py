"""``python -m automation drill --local``: the real runbook against a local AWS emulator, with a report.

What runs, and against what: a moto server on 127.0.0.1 (started and stopped by this command)
stands in for both AWS regions. Nothing here touches an AWS account.

1. The stacks are synthesized offline (:mod:`automation.synth`) and the dr stack's ``runbook``
   output gives the names: Auto Scaling groups, functions, database identifiers, latch, topic.
2. The DR-relevant resources are created in the emulator under those names, in region A and
   region B: the database and its cross-region replica, launch templates and Auto Scaling groups
   (A serving, B at 0/0/0), the functions (B's at reserved concurrency 0) and B's queue event
   source, the DynamoDB table in both regions, the latch, the alert topic.
3. Region A's health endpoint is served locally; region B's health endpoint runs the API's own
   health evaluation (:mod:`lambdas.api.health`) against the emulator.
4. Region A fails (its endpoint stops answering), the failover runbook runs with the local
   executor, region B is verified; then the failback runbook runs and standby is verified.
5. A Markdown report and a timeline chart (PNG) are written under ``reports/``.

The command with no ``--local`` runs the cloud drill of :mod:`automation.cloud` (Pulumi CLI and
AWS credentials needed).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from automation import synth

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_ACCOUNT = "123456789012"


# --------------------------------------------------------------------------------------------------
# names from the offline synthesis


def _physical(value: Any) -> Any:
    """A synthesized value with AWS-assigned names resolved as the emulator will name them.

    Computed names (``<marker><logical>.name``) become the logical name, which is what Pulumi's
    auto-naming starts from; other computed values are filled in once the emulator has them.
    """
    if isinstance(value, str) and value.startswith(synth.COMPUTED) and value.endswith(".name"):
        return value[len(synth.COMPUTED) : -len(".name")]
    if isinstance(value, list):
        return [_physical(v) for v in value]
    return value


def drill_overrides(mode: str) -> dict[str, Any]:
    """Config overrides for the drill's syntheses (database mode; RDS engine for rds-replica)."""
    db: dict[str, Any] = {"mode": mode}
    if mode == "rds-replica":
        db["engine"] = "postgres"
    return {"pilotlight:database": db}


def synthesized_context(mode: str) -> tuple[dict[str, Any], synth.Synthesis, synth.Synthesis]:
    """The dr stack's ``runbook`` output with names resolved; computed ARNs/URLs left to provisioning."""
    overrides = drill_overrides(mode)
    primary = synth.synthesize("primary", overrides)
    dr = synth.synthesize("dr", overrides, primary_outputs=primary.outputs)
    runbook = {k: _physical(v) for k, v in dr.outputs["runbook"].items()}
    for key in ("primaryCapacity", "drCapacity"):
        runbook[key] = {k: int(v) for k, v in runbook[key].items()}
    return runbook, primary, dr


def _input(s: synth.Synthesis, type_: str, key: str, default: str | None = None) -> str:
    for r in s.by_type(type_):
        value = r.inputs.get(key)
        if isinstance(value, str) and synth.COMPUTED not in value:
            return value
    if default is None:
        raise KeyError(f"no {type_} with a known {key!r} in stack {s.stack!r}")
    return default


# --------------------------------------------------------------------------------------------------
# local health endpoints


class _HealthServer:
    """An HTTP server on 127.0.0.1 answering ``GET /health`` with what ``answer()`` returns."""

    def __init__(self, answer: Callable[[], tuple[int, dict[str, Any]]]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = outer.answer()
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.answer = answer
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop answering: connections are refused from now on, as from a region that is down."""
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------------
# the emulator


@contextmanager
def emulator() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port), with the fidelity fixes of :mod:`automation.emulator`."""
    from moto.server import ThreadedMotoServer

    from automation.emulator import patch_moto

    undo = patch_moto()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's request log is noise here
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
        undo()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambdas/__init__.py", "")
    return buffer.getvalue()


@dataclass
class Deployment:
    """What the drill created in the emulator, and the clients to inspect it."""

    endpoint: str
    context: dict[str, Any]
    mode: str
    table_name: str
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str) -> Any:
        import boto3

        key = (service, region)
        if key not in self.clients:
            self.clients[key] = boto3.client(
                service,
                region_name=region,
                endpoint_url=self.endpoint,
                aws_access_key_id="drill",
                aws_secret_access_key="drill",
            )
        return self.clients[key]


def provision(endpoint: str, context: dict[str, Any], mode: str, table_name: str) -> Deployment:
    """Create the DR-relevant resources in the emulator under the synthesized names."""
    dep = Deployment(endpoint, dict(context), mode, table_name)
    ctx = dep.context
    a, b = ctx["primaryRegion"], ctx["drRegion"]

    role_arn = dep.client("iam", a).create_role(
        RoleName=f"{ctx['appName']}-drill-fn",
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        ),
    )["Role"]["Arn"]  # fmt: skip

    # Database pair.
    if mode == "rds-replica":
        source = dep.client("rds", a).create_db_instance(
            DBInstanceIdentifier=ctx["primaryDbInstanceId"],
            Engine="postgres",
            DBInstanceClass="db.t4g.medium",
            AllocatedStorage=20,
            MasterUsername="drill",
            MasterUserPassword="drill-only-password",
        )["DBInstance"]
        dep.client("rds", b).create_db_instance_read_replica(
            DBInstanceIdentifier=ctx["drDbInstanceId"],
            SourceDBInstanceIdentifier=source["DBInstanceArn"],
            DBInstanceClass="db.t4g.medium",
        )
    else:
        rds_a, rds_b = dep.client("rds", a), dep.client("rds", b)
        rds_a.create_global_cluster(
            GlobalClusterIdentifier=ctx["globalClusterId"], Engine="aurora-postgresql"
        )
        rds_a.create_db_cluster(
            DBClusterIdentifier=ctx["primaryClusterId"],
            Engine="aurora-postgresql",
            GlobalClusterIdentifier=ctx["globalClusterId"],
            MasterUsername="drill",
            MasterUserPassword="drill-only-password",
        )
        rds_a.create_db_instance(
            DBInstanceIdentifier=f"{ctx['primaryClusterId']}-1",
            DBClusterIdentifier=ctx["primaryClusterId"],
            Engine="aurora-postgresql",
            DBInstanceClass=ctx["drInstanceClass"],
        )
        cluster = rds_b.create_db_cluster(
            DBClusterIdentifier=ctx["drClusterId"],
            Engine="aurora-postgresql",
            GlobalClusterIdentifier=ctx["globalClusterId"],
        )["DBCluster"]
        ctx["drClusterArn"] = cluster["DBClusterArn"]

    # Web tiers: A serving, B at 0/0/0.
    for region, name, cap in (
        (a, ctx["primaryAsgName"], ctx["primaryCapacity"]),
        (b, ctx["drAsgName"], {"min": 0, "desired": 0, "max": 0}),
    ):
        ec2 = dep.client("ec2", region)
        ec2.create_launch_template(
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
    for region, names in ((a, ctx["primaryFunctionNames"]), (b, ctx["drFunctionNames"])):
        fn = dep.client("lambda", region)
        for name in names:
            fn.create_function(
                FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="lambdas.api.handler.handler", Code={"ZipFile": _zip()}
            )  # fmt: skip
            if region == b:
                fn.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    queue_url = dep.client("sqs", b).create_queue(QueueName=f"{ctx['appName']}-inbox")["QueueUrl"]
    queue_arn = dep.client("sqs", b).get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    mapping = dep.client("lambda", b).create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=ctx["drFunctionNames"][0], Enabled=False
    )
    ctx["drEventSourceMappingIds"] = [mapping["UUID"]]

    # The global table, one per region in the emulator (moto does not replicate between regions).
    for region in (a, b):
        dep.client("dynamodb", region).create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip

    from components.failover import Latch

    dep.client("ssm", b).put_parameter(Name=ctx["latchParameterName"], Value=Latch().to_json(), Type="String")
    topic_name = ctx["notifyTopicArn"].rsplit(":", 1)[-1].replace(synth.COMPUTED, "")
    ctx["notifyTopicArn"] = dep.client("sns", b).create_topic(Name=topic_name)["TopicArn"]
    return dep


# --------------------------------------------------------------------------------------------------
# checks of the emulator's state


@dataclass
class Check:
    """One assertion about the emulator's state."""

    what: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def state_checks(dep: Deployment, *, failed_over: bool) -> list[Check]:
    """What the emulator must look like after a failover (or after a failback)."""
    ctx = dep.context
    a, b = ctx["primaryRegion"], ctx["drRegion"]
    checks: list[Check] = []

    group = dep.client("autoscaling", b).describe_auto_scaling_groups(
        AutoScalingGroupNames=[ctx["drAsgName"]]
    )["AutoScalingGroups"][0]
    want = ctx["drCapacity"]["desired"] if failed_over else 0
    checks.append(
        Check(f"region B web tier desired capacity ({ctx['drAsgName']})", want, group["DesiredCapacity"])
    )

    primary_group = dep.client("autoscaling", a).describe_auto_scaling_groups(
        AutoScalingGroupNames=[ctx["primaryAsgName"]]
    )["AutoScalingGroups"][0]
    want = 0 if failed_over else ctx["primaryCapacity"]["desired"]
    checks.append(Check("region A web tier desired capacity (fenced to 0 during the failover)", want, primary_group["DesiredCapacity"]))  # fmt: skip

    for name in ctx["drFunctionNames"]:
        reserved = (
            dep.client("lambda", b)
            .get_function_concurrency(FunctionName=name)
            .get("ReservedConcurrentExecutions")
        )
        checks.append(
            Check(f"region B function {name} reserved concurrency", None if failed_over else 0, reserved)
        )
    for uuid in ctx["drEventSourceMappingIds"]:
        state = dep.client("lambda", b).get_event_source_mapping(UUID=uuid)["State"]
        checks.append(Check("region B event source", "Enabled" if failed_over else "Disabled", state))

    latch = json.loads(
        dep.client("ssm", b).get_parameter(Name=ctx["latchParameterName"])["Parameter"]["Value"]
    )
    checks.append(Check("latch (SSM, region B)", "active" if failed_over else "standby", latch.get("state")))

    # CloudWatch keeps one-minute statistics, and a drill's failover and failback share a minute:
    # what is observable is that the runbook published a 1 (thrown) or a 0 (released).
    metric = ctx["switchMetric"]
    stat = "Maximum" if failed_over else "Minimum"
    stats = dep.client("cloudwatch", b).get_metric_statistics(
        Namespace=metric["namespace"],
        MetricName=metric["name"],
        Dimensions=[{"Name": k, "Value": v} for k, v in metric["dimensions"].items()],
        StartTime=datetime.fromtimestamp(time.time() - 3600, UTC),
        EndTime=datetime.fromtimestamp(time.time() + 60, UTC),
        Period=60,
        Statistics=[stat],
    )["Datapoints"]
    value = max(stats, key=lambda d: d["Timestamp"])[stat] if stats else None
    word = "thrown (a 1 published)" if failed_over else "released (a 0 published)"
    checks.append(Check(f"failover switch {word} in region B", 1.0 if failed_over else 0.0, value))

    if dep.mode == "rds-replica" and failed_over:
        # After a failback region B's database stays promoted until it is rebuilt as a replica.
        replica = dep.client("rds", b).describe_db_instances(DBInstanceIdentifier=ctx["drDbInstanceId"])[
            "DBInstances"
        ][0]
        checks.append(Check("region B database is a writer (replica promoted)", True, "ReadReplicaSourceDBInstanceIdentifier" not in replica))  # fmt: skip
    return checks


def publish_replication_lag(dep: Deployment) -> None:
    """Stand in for RDS's own metric: the lag of the new B -> A replication, as AWS would report it.

    moto runs no database engine and publishes no ``AWS/RDS`` metrics; the failback waits on them.
    """
    ctx = dep.context
    if dep.mode == "rds-replica":
        metric, dims, value = (
            "ReplicaLag",
            {"DBInstanceIdentifier": f"{ctx['primaryDbInstanceId']}-failback"},
            0.5,
        )
    else:
        metric, dims, value = (
            "AuroraGlobalDBReplicationLag",
            {"DBClusterIdentifier": ctx["primaryClusterId"]},
            850.0,
        )
    dep.client("cloudwatch", ctx["primaryRegion"]).put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Value": value,
            }
        ],
    )


def dr_health_answer(dep: Deployment) -> Callable[[], tuple[int, dict[str, Any]]]:
    """Region B's ``GET /health``, evaluated by the API's own code against the emulator."""
    from lambdas.api.config import HealthSettings
    from lambdas.api.health import evaluate_health

    ctx = dep.context
    env = {
        "AWS_REGION": ctx["drRegion"],
        "STACK_ROLE": "dr",
        "TABLE_NAME": dep.table_name,
        "LATCH_PARAMETER": ctx["latchParameterName"],
        "LATCH_REGION": ctx["drRegion"],
        "DB_MODE": dep.mode,
    }
    if dep.mode == "rds-replica":
        env["DB_INSTANCE_ID"] = ctx["drDbInstanceId"]
    else:
        env.update({"GLOBAL_CLUSTER_ID": ctx["globalClusterId"], "DB_CLUSTER_ARN": ctx["drClusterArn"]})
    settings = HealthSettings.from_env(env)
    b = ctx["drRegion"]

    def answer() -> tuple[int, dict[str, Any]]:
        report = evaluate_health(
            settings, dep.client("dynamodb", b), dep.client("rds", b), dep.client("ssm", b)
        )
        return (200 if report.healthy else 503), report.body()

    return answer


# --------------------------------------------------------------------------------------------------
# the drill


@dataclass
class DrillResult:
    """The outcome of a local drill."""

    mode: str
    passed: bool
    failover: Any
    failback: Any
    after_failover: list[Check]
    after_failback: list[Check]
    seconds: float
    report_path: Path | None = None
    chart_path: Path | None = None


def run_local(mode: str = "rds-replica", *, reports_dir: Path | None = ROOT / "reports", out: Callable[[str], None] = print) -> DrillResult:  # fmt: skip
    """Run the drill end to end against a local emulator; write the report under ``reports_dir``."""
    import boto3

    from lambdas.failover.clients import Clients
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.executor import run as run_runbook

    start = time.monotonic()
    out(
        "local drill: the real failover and failback runbooks against a local AWS emulator (moto on 127.0.0.1)"
    )
    out("             nothing here touches an AWS account; timings are the emulator's, not AWS's")
    context, primary, _dr = synthesized_context(mode)
    table_name = str(primary.outputs["tableName"]).replace(synth.COMPUTED, "")
    out(
        f"1. synthesized both stacks offline ({mode}): {len(primary.resources)} + {len(_dr.resources)} resources"
    )

    with emulator() as endpoint:
        dep = provision(endpoint, context, mode, table_name)
        region_a = _HealthServer(lambda: (200, {"status": "ok", "region": dep.context["primaryRegion"]}))
        region_b = _HealthServer(dr_health_answer(dep))
        dep.context["primaryHealthUrl"], dep.context["drHealthUrl"] = region_a.url, region_b.url
        out(f"2. provisioned region A ({context['primaryRegion']}) and region B ({context['drRegion']}) in the emulator at {endpoint}")  # fmt: skip

        ctx = RunbookContext.from_dict(dep.context)
        session = boto3.Session(aws_access_key_id="drill", aws_secret_access_key="drill")
        clients = Clients.for_context(ctx, session, endpoint_url=endpoint)
        params = {"reason": "local drill", "waiterDelay": 0.2, "waiterMaxAttempts": 50, "probeTries": 2, "probeInterval": 0.1, "probeTimeout": 1}  # fmt: skip

        def progress(event: str, record: Any) -> None:
            if event == "end":
                out(f"     {record.step:<26} {record.status:<13} {record.duration_s:6.2f}s  {record.detail}")

        region_a.stop()
        out("3. injected a region A failure: its health endpoint stopped answering")
        out("4. failover runbook:")
        failover = run_runbook("failover", ctx, clients, params=params, on_progress=progress)
        after_failover = state_checks(dep, failed_over=True)
        _print_checks(out, "5. region B after the failover", after_failover)
        health_status, health = region_b.answer()
        out(f"   region B health: HTTP {health_status} region={health.get('region')} writer={health.get('writer')} active={health.get('active')}")  # fmt: skip

        region_a = _HealthServer(lambda: (200, {"status": "ok", "region": dep.context["primaryRegion"]}))
        dep.context["primaryHealthUrl"] = region_a.url
        ctx = RunbookContext.from_dict(dep.context)
        clients = Clients.for_context(ctx, session, endpoint_url=endpoint)
        publish_replication_lag(dep)
        out(
            "6. region A is back (the emulator reports the B -> A replication lag RDS would publish); failback runbook:"
        )
        failback = run_runbook("failback", ctx, clients, params=params, on_progress=progress)
        after_failback = state_checks(dep, failed_over=False)
        _print_checks(out, "7. after the failback (standby again)", after_failback)
        region_a.stop()
        region_b.stop()

    passed = (
        failover.outcome == "done"
        and failback.outcome == "done"
        and all(c.ok for c in after_failover + after_failback)
    )
    result = DrillResult(
        mode, passed, failover, failback, after_failover, after_failback, time.monotonic() - start
    )
    if reports_dir is not None:
        result.report_path, result.chart_path = write_report(result, reports_dir)
        out(f"8. report: {result.report_path}   chart: {result.chart_path}")
    out(f"drill {'PASSED' if passed else 'FAILED'} in {result.seconds:.1f} s (emulator)")
    return result


def _print_checks(out: Callable[[str], None], title: str, checks: list[Check]) -> None:
    out(f"{title}:")
    for c in checks:
        out(
            f"     [{'ok' if c.ok else 'FAIL'}] {c.what}: {c.actual!r}"
            + ("" if c.ok else f" (expected {c.expected!r})")
        )


# --------------------------------------------------------------------------------------------------
# report


def write_report(result: DrillResult, reports_dir: Path) -> tuple[Path, Path]:
    """A Markdown report and a timeline chart (PNG) of both runbooks."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    chart = reports_dir / f"drill-{stamp}.png"
    report = reports_dir / f"drill-{stamp}.md"
    _chart(result, chart)
    lines = [
        f"# pilotlight local drill ({result.mode})",
        "",
        f"**{'PASSED' if result.passed else 'FAILED'}** in {result.seconds:.1f} s, {datetime.now(UTC):%Y-%m-%d %H:%M UTC}.",
        "",
        "Ran against a **local AWS emulator** (moto on 127.0.0.1), not an AWS account: the runbooks,",
        "step handlers and health evaluation are the product's own code, but every duration is the",
        "emulator's. See `python -m automation plan` for the RTO budget with AWS's figures.",
        "",
        f"![timeline]({chart.name})",
        "",
    ]
    for title, run in (("Failover", result.failover), ("Failback", result.failback)):
        lines += [
            f"## {title}: {run.outcome}",
            "",
            "| step | status | seconds | detail |",
            "| --- | --- | ---: | --- |",
        ]
        lines += [f"| {r.step} | {r.status} | {r.duration_s:.2f} | {r.detail} |" for r in run.timeline]
        lines.append("")
    for title, checks in (
        ("After the failover", result.after_failover),
        ("After the failback", result.after_failback),
    ):
        lines += [f"## {title}", "", "| check | result | value |", "| --- | --- | --- |"]
        lines += [f"| {c.what} | {'ok' if c.ok else 'FAIL'} | {c.actual!r} |" for c in checks]
        lines.append("")
    report.write_text("\n".join(lines))
    return report, chart


def _chart(result: DrillResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    runs = [("failover", result.failover), ("failback", result.failback)]
    rows = [(name, r) for name, run in runs for r in run.timeline if r.started_at is not None]
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(rows) + 1.5))
    colors = {
        "done": "#2e7d32",
        "already_done": "#81c784",
        "skipped": "#9e9e9e",
        "warning": "#f9a825",
        "failed": "#c62828",
    }
    origin: dict[str, datetime] = {}
    for name, run in runs:
        started = [r.started_at for r in run.timeline if r.started_at is not None]
        if started:
            origin[name] = min(started)
    labels = []
    for i, (name, r) in enumerate(rows):
        offset = (r.started_at - origin[name]).total_seconds()
        ax.barh(i, max(r.duration_s, 0.01), left=offset, color=colors.get(r.status, "#1565c0"))
        labels.append(f"{name}: {r.step}")
    ax.set_yticks(range(len(rows)), labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the runbook started (local emulator)")
    ax.set_title(f"pilotlight local drill ({result.mode}): runbook timelines")
    handles = [Patch(color=c) for c in colors.values()]
    ax.legend(handles, list(colors), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m automation drill",
        description="--local: drill the runbooks against a local AWS emulator (no AWS account). "
        "Without --local: the cloud drill (python -m automation cloud drill).",
    )
    parser.add_argument(
        "--local", action="store_true", help="run against a local emulator (moto on 127.0.0.1)"
    )
    parser.add_argument(
        "--mode",
        choices=("rds-replica", "aurora-global"),
        default="rds-replica",
        help="database mode to drill",
    )
    parser.add_argument(
        "--reports", default=str(ROOT / "reports"), help="where to write the report and chart"
    )
    args, rest = parser.parse_known_args(argv)
    if not args.local:
        from automation import cloud

        return cloud.main(["drill", *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    result = run_local(args.mode, reports_dir=Path(args.reports))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
