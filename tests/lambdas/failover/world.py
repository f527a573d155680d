"""A pilot-light deployment in moto, and the runbook context pointing at it (tests and benchmark).

``build_world`` creates, in region A (us-east-1) and region B (us-west-2), what the runbook acts
on: the database pair (``rds-replica``: source instance in A and its read replica in B;
``aurora-global``: a global cluster with a writer cluster in A and a headless secondary in B),
launch templates and Auto Scaling groups (A at its capacity, B at 0/0/0), Lambda functions in both
regions (B's at reserved concurrency 0), an SQS queue with a disabled event source mapping in B,
the SSM latch (standby), the runbook lock's DynamoDB table, the SNS topic with an SQS subscription to read what was published, and
replication-lag datapoints for failback. ``World`` inspects the end state.

It works in-process under ``mock_aws`` (``endpoint_url=None``) and against a moto server.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto.cloudwatch.models import cloudwatch_backends

from automation.emulator.stores import create_receipts_buckets
from lambdas.failover.context import GENERATION_KEY, generation_of
from lambdas.failover.names import (
    REPLICATION_RULE_ID,
    generation_parameter_name,
    ledger_marker_function_name,
    switch_namespace,
)
from tests.lambdas.failover.faults import region_dark

ACCOUNT = "123456789012"
REGION_A = "us-east-1"
REGION_B = "us-west-2"
SWITCH_NAME = "FailoverSwitch"
CAPACITY = {"min": 1, "desired": 2, "max": 4}

HealthFn = Callable[[], tuple[int, dict[str, Any]]]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def all_db_instances(rds: Any) -> list[dict[str, Any]]:
    """Every DB instance of the region, over all pages: DescribeDBInstances answers at most
    ``MaxRecords`` (default 100) per call, and a test process's moto holds every test's instances
    (under pytest-xdist a worker runs many modules in one process)."""
    return [d for page in rds.get_paginator("describe_db_instances").paginate() for d in page["DBInstances"]]


@dataclass
class World:
    """The emulated deployment, with helpers to read its state."""

    mode: str
    app: str
    endpoint_url: str | None
    context: dict[str, Any]
    notify_queue_url: str
    session: boto3.Session = field(default_factory=boto3.Session)
    clients_cache: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)
    """Plain clients by (service, region, endpoint); worlds built from one session may share it."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Room for the test harness (e.g. the runbook's clients for this world)."""

    def client(self, service: str, region: str) -> Any:
        """A plain client (no fault hooks) for setting up and inspecting."""
        key = (service, region, self.endpoint_url)
        if key not in self.clients_cache:
            self.clients_cache[key] = self.session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=self.endpoint_url,
            )
        return self.clients_cache[key]

    # -- state ---------------------------------------------------------------------------------

    def asg(self, region: str) -> tuple[int, int, int]:
        """(min, desired, max) of the web tier group in ``region``."""
        name = self.context["primaryAsgName"] if region == REGION_A else self.context["drAsgName"]
        g = self.client("autoscaling", region).describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ][0]
        return g["MinSize"], g["DesiredCapacity"], g["MaxSize"]

    def concurrency(self, region: str) -> dict[str, int | None]:
        """Reserved concurrency of each function of ``region`` (None = not set)."""
        key = "primaryFunctionNames" if region == REGION_A else "drFunctionNames"
        lam = self.client("lambda", region)
        return {
            name: lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
            for name in self.context[key]
        }

    def mappings(self, region: str = REGION_B) -> list[str]:
        """State of each event source mapping of ``region`` (region B's by default)."""
        key = "primaryEventSourceMappingIds" if region == REGION_A else "drEventSourceMappingIds"
        lam = self.client("lambda", region)
        return [lam.get_event_source_mapping(UUID=u)["State"] for u in self.context[key]]

    def latch(self) -> dict[str, Any]:
        """The latch parameter, parsed."""
        name = self.context["latchParameterName"]
        value = self.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"]
        return json.loads(value)

    def switch_values(self) -> list[float]:
        """Every value put on the switch metric, oldest first (read from moto's backend)."""
        backend = cloudwatch_backends[ACCOUNT][REGION_B]
        return [
            float(d.value)
            for d in backend.metric_data
            if d.namespace == self.context["switchMetric"]["namespace"]
            and d.name == SWITCH_NAME
            and [(x.name, x.value) for x in d.dimensions] == [("App", self.app)]
        ]

    def age_metrics(self, minutes: int) -> None:
        """Move every datapoint of this world's regions ``minutes`` into the past (time passes)."""
        for region in (REGION_A, REGION_B):
            for datum in cloudwatch_backends[ACCOUNT][region].metric_data:
                datum.timestamp -= timedelta(minutes=minutes)

    def notifications(self) -> list[dict[str, Any]]:
        """SNS messages delivered to the test subscription so far (drains the queue)."""
        sqs = self.client("sqs", REGION_B)
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.notify_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.notify_queue_url, ReceiptHandle=m["ReceiptHandle"])

    def db(self, region: str, identifier: str) -> dict[str, Any] | None:
        """A DB instance, or None."""
        try:
            return self.client("rds", region).describe_db_instances(DBInstanceIdentifier=identifier)[
                "DBInstances"
            ][0]
        except self.client("rds", region).exceptions.DBInstanceNotFoundFault:
            return None

    def cluster_members(self, region: str, cluster_id: str) -> list[str]:
        """The DB instances of an Aurora cluster (DescribeDBClusters ``DBClusterMembers``, "The list of DB
        instances that make up the DB cluster":
        https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html)."""
        (cluster,) = self.client("rds", region).describe_db_clusters(DBClusterIdentifier=cluster_id)[
            "DBClusters"
        ]
        return [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]

    def global_writer(self) -> str | None:
        """ARN of the global cluster's writer member."""
        group = self.client("rds", REGION_B).describe_global_clusters(
            GlobalClusterIdentifier=self.context["globalClusterId"]
        )["GlobalClusters"][0]
        return next((m["DBClusterArn"] for m in group["GlobalClusterMembers"] if m["IsWriter"]), None)

    def dr_is_writer(self) -> bool:
        """Whether region B holds the writer."""
        if self.mode == "rds-replica":
            inst = self.db(REGION_B, self.context["drDbInstanceId"])
            return bool(inst and not inst.get("ReadReplicaSourceDBInstanceIdentifier"))
        return self.global_writer() == self.context["drClusterArn"]

    def snapshot(self) -> dict[str, Any]:
        """Everything the runbook changes, for before/after comparisons."""
        state: dict[str, Any] = {
            "asgA": self.asg(REGION_A),
            "asgB": self.asg(REGION_B),
            "fnA": self.concurrency(REGION_A),
            "fnB": self.concurrency(REGION_B),
            "mappings": self.mappings(),
            "latch": self.latch(),
            "switch": self.switch_values(),
            "drWriter": self.dr_is_writer(),
        }
        if self.mode == "rds-replica":
            dbs = all_db_instances(self.client("rds", REGION_A)) + all_db_instances(
                self.client("rds", REGION_B)
            )
            state["dbs"] = sorted(
                (d["DBInstanceIdentifier"], d.get("ReadReplicaSourceDBInstanceIdentifier"))
                for d in dbs
                if d["DBInstanceIdentifier"].startswith(f"{self.app}-")
            )
        else:
            state["writer"] = self.global_writer()
        return state

    # -- health endpoints ----------------------------------------------------------------------

    def primary_health(self) -> tuple[int, dict[str, Any]]:
        """Region A's health endpoint once a runbook wrote the latch (region A is back, and fenced or
        unfenced by the runbook; a failover that stopped and rolled back leaves it standby): 200 while its web tier has capacity, and who writes.
        Before that, region A is down (503) until a test says otherwise (``health.set``)."""
        try:
            latch = self.latch()
            # A runbook wrote the latch (a failover, its rollback, a failback): region A is back.
            active = latch.get("state") == "active" or latch.get("runbook") in ("failback", "failover")
        except Exception:  # no latch readable: say nothing about region A
            active = False
        if not active:
            return 503, {"region": REGION_A, "error": "no healthy targets"}
        if region_dark(REGION_A):  # a test's fault makes region A unreachable: its web tier too
            return 503, {"region": REGION_A, "error": "region unreachable"}
        serving = self.asg(REGION_A)[1] > 0
        if self.mode == "rds-replica":
            # The newest of region A's instances (the failback's replica, once made) decides.
            ids = [f"{self.context['primaryDbInstanceId']}-failback", self.context["primaryDbInstanceId"]]
            found = [d for d in (self.db(REGION_A, i) for i in ids) if d is not None]
            writer = bool(found) and not found[0].get("ReadReplicaSourceDBInstanceIdentifier")
        else:
            writer = not self.dr_is_writer()
        return (200 if serving else 503), {"region": REGION_A, "writer": writer}

    def dr_health(self) -> tuple[int, dict[str, Any]]:
        """What region B's health endpoint would answer: 200 once it has a web tier, and who writes."""
        serving = self.asg(REGION_B)[1] > 0
        body = {"region": REGION_B, "writer": self.dr_is_writer()}
        return (200 if serving else 503), body


def _zero_lag_ahead(cloudwatch: Any, instance: str) -> None:
    """ReplicaLag 0 for the next minutes, as RDS publishes it once writes stopped (a planned
    failover promotes at zero lag measured after region A's drain)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
                "Value": 0.0,
                "Timestamp": start + timedelta(minutes=m),
            }
            for m in range(1, 11)
        ],
    )


def create_lock_table(dynamodb: Any, name: str, kms_key_arn: str | None = None) -> None:
    """The runbook lock's table as the program creates it: the schema of ``lambdas/failover/lock.py``,
    encrypted with region B's data key when the world is encrypted (components/pilot_light_region.py)."""
    from lambdas.failover import lock

    sse = {"SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key_arn}}
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", **lock.table_schema(), **(sse if kms_key_arn else {})
    )


def _zero_pending_ahead(cloudwatch: Any, source: str, destination: str) -> None:
    """OperationsPendingReplication 0 for the next minutes, as S3 publishes it once nothing is pending."""
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    dims = {"SourceBucket": source, "DestinationBucket": destination, "RuleId": REPLICATION_RULE_ID}
    cloudwatch.put_metric_data(
        Namespace="AWS/S3",
        MetricData=[
            {
                "MetricName": "OperationsPendingReplication",
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Value": 0.0,
                "Timestamp": start + timedelta(minutes=m),
            }
            for m in range(1, 11)
        ],
    )


def _receipts_buckets(world: World, app: str) -> dict[str, str]:
    """The receipts buckets as components/storage.py deploys them: one per region, versioned, each
    replicating every object into the other with S3 Replication metrics on (RTC off, its default)."""
    names = {REGION_A: f"{app}-receipts-{REGION_A}", REGION_B: f"{app}-receipts-{REGION_B}"}
    role = f"arn:aws:iam::{ACCOUNT}:role/{app}-receipts-replication"
    create_receipts_buckets(lambda region: world.client("s3", region), names, role, REPLICATION_RULE_ID)
    return {"primaryBucketName": names[REGION_A], "drBucketName": names[REGION_B]}


def payments_table(world: World, name: str, region: str, *, replica_in: str | None = None) -> None:
    """A payments table as components/storage.py declares it (keys ``pk`` and ``sk``, streams with both
    images) in ``region``; ``replica_in``: made a global table (version 2019.11.21) with its replica there, as
    the program's ``replicas`` make it: UpdateTable ``ReplicaUpdates`` ``Create``
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicationGroupUpdate.html, modelled
    by automation/emulator/gaps.py). Without it the table is a regional one: DescribeTable answers no
    ``Replicas``."""
    ddb = world.client("dynamodb", region)
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    if replica_in:
        ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": replica_in}}])


def _global_table(world: World, app: str) -> dict[str, str]:
    """The payments global table as components/storage.py deploys it: made in region A with its replica in
    region B (moto does not replicate items between them: a world that runs a planned change over it
    registers it with the emulator, as tests/safety/model.py does)."""
    name = f"{app}-payments"
    payments_table(world, name, REGION_A, replica_in=REGION_B)
    return {"globalTableName": name}


def build_world(
    mode: str = "rds-replica",
    *,
    app: str = "shop",
    endpoint_url: str | None = None,
    primary_health_url: str | None = None,
    dr_health_url: str | None = None,
    lag_metrics: bool = True,
    session: boto3.Session | None = None,
    clients_cache: dict[tuple[str, str, str | None], Any] | None = None,
    encrypted: bool = False,
    engine: str = "postgres",
    global_table: bool = False,
) -> World:
    """Create the deployment in moto (under ``mock_aws`` or at ``endpoint_url``) and return it.

    Every name starts with ``app``, so several worlds can live in one emulator side by side.
    ``global_table``: the outputs name the payments global table (``globalTableName``), so a planned
    change also waits for its replication (lossless.settled_evidence: at least 6 minutes after the
    drain). Off by default here: moto publishes no ``ReplicationLatency``; the safety model
    (tests/safety/model.py) always carries it.
    """
    world = World(
        mode=mode,
        app=app,
        endpoint_url=endpoint_url,
        context={},
        notify_queue_url="",
        session=session or boto3.Session(),
        clients_cache={} if clients_cache is None else clients_cache,
    )
    c = world.client

    role = c("iam", REGION_A).create_role(
        RoleName=f"{app}-fn",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = _zip()
    functions: dict[str, list[str]] = {}
    for region, cap in ((REGION_A, CAPACITY), (REGION_B, {"min": 0, "desired": 0, "max": 0})):
        c("ec2", region).create_launch_template(
            LaunchTemplateName=f"{app}-web",
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
        )
        c("autoscaling", region).create_auto_scaling_group(
            AutoScalingGroupName=f"{app}-web-{region}",
            LaunchTemplate={"LaunchTemplateName": f"{app}-web", "Version": "$Latest"},
            MinSize=cap["min"],
            DesiredCapacity=cap["desired"],
            MaxSize=cap["max"],
            AvailabilityZones=[f"{region}a"],
        )
        lam = c("lambda", region)
        names = [f"{app}-api-{region}", f"{app}-worker-{region}"]
        for name in names:
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="handler.handler",
                Code={"ZipFile": code},
            )
            if region == REGION_B:
                lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        functions[region] = names
        # The ledger marker function (never fenced, no client request reaches it): the commit the
        # RDS for PostgreSQL zero-lag proof needs after a drain (lambdas/failover/lossless.py).
        lam.create_function(
            FunctionName=ledger_marker_function_name(f"{app}-test"),
            Runtime="python3.12",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": code},
        )

    # Each region's worker consumes its own orders queue: enabled in A, disabled in B (the program's
    # serverless tier, components/serverless.py).
    mappings: dict[str, str] = {}
    for region, enabled in ((REGION_A, True), (REGION_B, False)):
        region_sqs = c("sqs", region)
        orders = region_sqs.create_queue(QueueName=f"{app}-orders")["QueueUrl"]
        orders_arn = region_sqs.get_queue_attributes(QueueUrl=orders, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        mappings[region] = c("lambda", region).create_event_source_mapping(
            EventSourceArn=orders_arn, FunctionName=functions[region][1], Enabled=enabled, BatchSize=10
        )["UUID"]
    mapping = mappings[REGION_B]
    sqs = c("sqs", REGION_B)

    c("ssm", REGION_B).put_parameter(
        Name=f"/{app}/test/failover-latch", Value=json.dumps({"state": "standby"}), Type="String"
    )
    # Every database the program creates is encrypted, each region with its own key (a KMS key
    # cannot be used outside its region).
    keys = (
        {
            r: c("kms", r).create_key(Description=f"{app} data")["KeyMetadata"]["Arn"]
            for r in (REGION_A, REGION_B)
        }
        if encrypted
        else {}
    )
    create_lock_table(c("dynamodb", REGION_B), f"{app}-runbook-lock", keys.get(REGION_B))
    sns = c("sns", REGION_B)
    # The program encrypts the alarm topic with its own key (alias/aws/sns cannot be used by CloudWatch);
    # publishing to it takes a data key of that key (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
    notify_key = (
        c("kms", REGION_B).create_key(Description=f"{app} alerts")["KeyMetadata"]["Arn"]
        if encrypted
        else None
    )
    topic = sns.create_topic(
        Name=f"{app}-ops", Attributes={"KmsMasterKeyId": notify_key} if notify_key else {}
    )["TopicArn"]
    inbox = sqs.create_queue(QueueName=f"{app}-ops-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)

    context: dict[str, Any] = {
        "appName": app,
        "environment": "test",
        "primaryRegion": REGION_A,
        "drRegion": REGION_B,
        "databaseMode": mode,
        "primaryAsgName": f"{app}-web-{REGION_A}",
        "primaryCapacity": CAPACITY,
        "drAsgName": f"{app}-web-{REGION_B}",
        "drCapacity": CAPACITY,
        "primaryFunctionNames": functions[REGION_A],
        "drFunctionNames": functions[REGION_B],
        "primaryEventSourceMappingIds": [mappings[REGION_A]],
        "drEventSourceMappingIds": [mapping],
        # The world's deployment is ``app`` (its App dimension): its own namespace, as the program's.
        "switchMetric": {"namespace": switch_namespace(app), "name": SWITCH_NAME, "dimensions": {"App": app}},
        "latchParameterName": f"/{app}/test/failover-latch",
        "lockTableName": f"{app}-runbook-lock",
        "notifyTopicArn": topic,
        "primaryHealthUrl": primary_health_url,
        "drHealthUrl": dr_health_url,
        "maxReplicationLagSeconds": 30,
    }
    cw_a = c("cloudwatch", REGION_A)
    if encrypted:
        context["primaryKmsKeyArn"], context["drKmsKeyArn"] = keys[REGION_A], keys[REGION_B]
    context |= _receipts_buckets(world, app)
    if global_table:
        context |= _global_table(world, app)
    if lag_metrics:
        # Nothing pending either way, minute by minute, in each destination's region (S3
        # Replication metrics: https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html).
        a_bucket, b_bucket = context["primaryBucketName"], context["drBucketName"]
        _zero_pending_ahead(c("cloudwatch", REGION_B), a_bucket, b_bucket)
        _zero_pending_ahead(c("cloudwatch", REGION_A), b_bucket, a_bucket)

    def tags(role: str) -> list[dict[str, str]]:
        """The providers' default tags the program puts on each database (components/config.py)."""
        return [
            {"Key": k, "Value": v}
            for k, v in {"Application": app, "Environment": "test", "CostCenter": "dr", "Criticality": "high",
                         "StackRole": role, "ManagedBy": "pulumi"}.items()
        ]  # fmt: skip

    if mode == "rds-replica":
        rds_a, rds_b = c("rds", REGION_A), c("rds", REGION_B)
        # Region A's database lives in its VPC, as the program puts it: a subnet group named like
        # the instance (components/data.py database_network) and the database security group.
        ec2_a = c("ec2", REGION_A)
        vpc = ec2_a.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2_a.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION_A}{az}")[
                "Subnet"
            ]["SubnetId"]
            for i, az in enumerate("ab")
        ]
        rds_a.create_db_subnet_group(
            DBSubnetGroupName=f"{app}-db", DBSubnetGroupDescription="isolated", SubnetIds=subnets
        )
        db_sg = ec2_a.create_security_group(GroupName=f"{app}-db", Description="db", VpcId=vpc)["GroupId"]
        source = rds_a.create_db_instance(
            DBSubnetGroupName=f"{app}-db",
            VpcSecurityGroupIds=[db_sg],
            DBInstanceIdentifier=f"{app}-db",
            DBInstanceClass="db.t3.micro",
            Engine=engine,
            MasterUsername="app",
            MasterUserPassword="not-a-secret-1",
            AllocatedStorage=20,
            BackupRetentionPeriod=7,
            Tags=tags("primary"),
            **({"StorageEncrypted": True, "KmsKeyId": keys[REGION_A]} if encrypted else {}),
        )["DBInstance"]
        rds_b.create_db_instance_read_replica(
            DBInstanceIdentifier=f"{app}-db-replica",
            SourceDBInstanceIdentifier=source["DBInstanceArn"],
            DBInstanceClass="db.t3.micro",
            Tags=tags("dr"),
            **({"KmsKeyId": keys[REGION_B], "SourceRegion": REGION_A} if encrypted else {}),
        )
        context |= {
            "primaryDbInstanceId": f"{app}-db",
            "drDbInstanceId": f"{app}-db-replica",
            # as the program exports them: where the failback's replica runs in region A
            "primaryDbSubnetGroupName": f"{app}-db",
            "primaryDbParameterGroupName": source["DBParameterGroups"][0]["DBParameterGroupName"],
        }
        if lag_metrics:
            _zero_lag_ahead(c("cloudwatch", REGION_B), f"{app}-db-replica")
            _zero_lag_ahead(cw_a, f"{app}-db")  # the failback replica, under the primary's name
    else:
        rds_a, rds_b = c("rds", REGION_A), c("rds", REGION_B)
        rds_a.create_global_cluster(GlobalClusterIdentifier=f"{app}-global", Engine="aurora-postgresql")
        rds_a.create_db_cluster(
            DBClusterIdentifier=f"{app}-a",
            Engine="aurora-postgresql",
            GlobalClusterIdentifier=f"{app}-global",
            MasterUsername="app",
            MasterUserPassword="not-a-secret-1",
            Tags=tags("primary"),
            **({"StorageEncrypted": True, "KmsKeyId": keys[REGION_A]} if encrypted else {}),
        )
        rds_a.create_db_instance(
            DBInstanceIdentifier=f"{app}-a-1",
            DBClusterIdentifier=f"{app}-a",
            DBInstanceClass="db.r6g.large",
            Engine="aurora-postgresql",
        )
        dr = rds_b.create_db_cluster(
            DBClusterIdentifier=f"{app}-b",
            Engine="aurora-postgresql",
            GlobalClusterIdentifier=f"{app}-global",
            Tags=tags("dr"),
            # Each member cluster under its own region's key, as the program creates them
            # (components/primary_data.py, components/dr_data.py: storage_encrypted, kms_key_id).
            **({"StorageEncrypted": True, "KmsKeyId": keys[REGION_B]} if encrypted else {}),
        )["DBCluster"]
        context |= {
            "globalClusterId": f"{app}-global",
            "primaryClusterId": f"{app}-a",
            "drClusterId": f"{app}-b",
            "drClusterArn": dr["DBClusterArn"],
            "drInstanceClass": "db.r6g.large",
        }
        if lag_metrics:
            cw_a.put_metric_data(
                Namespace="AWS/RDS",
                MetricData=[
                    {
                        "MetricName": "AuroraGlobalDBReplicationLag",
                        "Dimensions": [{"Name": "DBClusterIdentifier", "Value": f"{app}-a"}],
                        "Value": 850.0,
                    }
                ],
            )
    if encrypted:
        # What the program exports for the runbook's permissions: the topic's key and the data keys.
        context |= {
            "notifyKeyArn": notify_key,
            "dataKeyArns": [keys[REGION_A], keys[REGION_B]],
            "lockTableKeyArn": keys[REGION_B],
        }
    stamp(world, context)
    world.context, world.notify_queue_url = context, inbox
    return world


def stamp(world: World, context: dict[str, Any], *, live: bool = True) -> str:
    """Stamp ``context`` with its generation, and (``live``) deploy that generation, as ``pulumi up``
    does (``components/pilot_light_region.py``). Returns the generation."""
    context[GENERATION_KEY] = generation_of(context)
    if live:
        world.client("ssm", REGION_B).put_parameter(
            Name=generation_parameter_name(context["latchParameterName"]),
            Value=context[GENERATION_KEY],
            Type="String",
            Overwrite=True,
        )
    return context[GENERATION_KEY]
