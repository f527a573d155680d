"""GET /health in both roles and both database modes, through the real handler, against moto.

moto 5.2.5 gaps, filled here by editing moto's backend (never the product code):
- ``promote_read_replica`` leaves ``ReadReplicaSourceDBInstanceIdentifier`` on the promoted
  instance; RDS removes it.
- there is no ``failover_global_cluster`` / ``switchover_global_cluster``; the members' ``IsWriter``
  flags are flipped as Aurora would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

from lambdas.api.clients import ClientCache
from lambdas.api.handler import handler
from lambdas.api.health import decide_active
from tests.lambdas.api.support import (
    DR,
    LATCH,
    PRIMARY,
    TABLE,
    Answer,
    FakeContext,
    api_log_lines,
    load_event,
)

Invoke = Callable[[dict[str, Any]], Answer]
SetEnv = Callable[..., None]
SetLatch = Callable[[str], None]

SOURCE_DB = "orders-db"
REPLICA_DB = "orders-db-replica"
GLOBAL_CLUSTER = "orders-global"
PRIMARY_CLUSTER = "orders-primary"
DR_CLUSTER = "orders-dr"


def cluster_arn(region: str, cluster_id: str) -> str:
    return f"arn:aws:rds:{region}:{DEFAULT_ACCOUNT_ID}:cluster:{cluster_id}"


@pytest.fixture
def rds_pair(aws: None) -> None:
    """A source instance in the primary region and its cross-region read replica in the DR region."""
    source = boto3.client("rds", region_name=PRIMARY).create_db_instance(
        DBInstanceIdentifier=SOURCE_DB,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
    )["DBInstance"]
    boto3.client("rds", region_name=DR).create_db_instance_read_replica(
        DBInstanceIdentifier=REPLICA_DB,
        SourceDBInstanceIdentifier=source["DBInstanceArn"],
        DBInstanceClass="db.t3.micro",
    )


@pytest.fixture
def aurora_pair(aws: None) -> None:
    """An Aurora global database: the writer cluster in the primary region, a secondary in the DR region."""
    common = {
        "Engine": "aurora-postgresql",
        "EngineVersion": "15.4",
        "GlobalClusterIdentifier": GLOBAL_CLUSTER,
    }
    primary = boto3.client("rds", region_name=PRIMARY)
    primary.create_global_cluster(
        GlobalClusterIdentifier=GLOBAL_CLUSTER, Engine="aurora-postgresql", EngineVersion="15.4"
    )
    primary.create_db_cluster(
        DBClusterIdentifier=PRIMARY_CLUSTER,
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
        **common,
    )
    boto3.client("rds", region_name=DR).create_db_cluster(DBClusterIdentifier=DR_CLUSTER, **common)


def promote_replica() -> None:
    boto3.client("rds", region_name=DR).promote_read_replica(DBInstanceIdentifier=REPLICA_DB)
    # moto gap: RDS drops the replication source on promotion, moto keeps it.
    rds_backends[DEFAULT_ACCOUNT_ID][DR].databases[REPLICA_DB].source_db_instance_identifier = None


def fail_over_aurora() -> None:
    # moto gap: no global-cluster failover; make the DR member the writer as Aurora would.
    rds_backends[DEFAULT_ACCOUNT_ID][PRIMARY].clusters[PRIMARY_CLUSTER].is_writer = False
    rds_backends[DEFAULT_ACCOUNT_ID][DR].clusters[DR_CLUSTER].is_writer = True


def rds_env(role: str) -> dict[str, str]:
    region, instance = (PRIMARY, SOURCE_DB) if role == "primary" else (DR, REPLICA_DB)
    return {"role": role, "region": region, "DB_MODE": "rds-replica", "DB_INSTANCE_ID": instance}


def aurora_env(role: str) -> dict[str, str]:
    region, cluster = (PRIMARY, PRIMARY_CLUSTER) if role == "primary" else (DR, DR_CLUSTER)
    return {
        "role": role,
        "region": region,
        "DB_MODE": "aurora-global",
        "GLOBAL_CLUSTER_ID": GLOBAL_CLUSTER,
        "DB_CLUSTER_ARN": cluster_arn(region, cluster),
    }


def health() -> dict[str, Any]:
    return load_event("get_health")


@pytest.mark.parametrize(
    ("role", "latch", "failed_over", "writer", "active"),
    [
        pytest.param("primary", "standby", False, True, True, id="primary-standby"),
        pytest.param("primary", "active", False, True, False, id="primary-latch-active"),
        pytest.param("dr", "standby", False, False, False, id="dr-standby"),
        pytest.param("dr", "failing-over", False, False, False, id="dr-failing-over"),
        pytest.param("dr", "active", False, False, True, id="dr-latch-active"),
        pytest.param("dr", "standby", True, True, True, id="dr-writer-before-latch"),
    ],
)
@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_health_reports_writer_and_active(
    invoke: Invoke,
    function_env: SetEnv,
    set_latch: SetLatch,
    request: pytest.FixtureRequest,
    mode: str,
    role: str,
    latch: str,
    failed_over: bool,
    writer: bool,
    active: bool,
) -> None:
    if mode == "rds-replica":
        request.getfixturevalue("rds_pair")
        function_env(**rds_env(role))
        if failed_over:
            promote_replica()
    else:
        request.getfixturevalue("aurora_pair")
        function_env(**aurora_env(role))
        if failed_over:
            fail_over_aurora()
    set_latch(latch)

    answer = invoke(health())

    assert answer.status == 200
    assert answer.body["role"] == role
    assert answer.body["region"] == (PRIMARY if role == "primary" else DR)
    assert answer.body["writer"] is writer
    assert answer.body["active"] is active
    assert answer.body["checks"]["database"]["status"] == "ok"
    assert answer.body["checks"]["database"]["mode"] == mode
    assert answer.body["checks"]["latch"] == {
        "status": "ok",
        "state": latch,
        "parameter": LATCH,
        "region": DR,
    }
    assert answer.body["checks"]["table"] == {"status": "ok", "table": TABLE, "table_status": "ACTIVE"}
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("mode", "writer"),
    [
        # The old source instance stays a standalone writer after its replica is promoted: nothing
        # in RDS demotes it, which is why the runbook fences region A first.
        pytest.param("rds-replica", True, id="rds-replica"),
        pytest.param("aurora-global", False, id="aurora-global"),
    ],
)
def test_primary_after_failover_is_inactive(
    invoke: Invoke,
    function_env: SetEnv,
    set_latch: SetLatch,
    request: pytest.FixtureRequest,
    mode: str,
    writer: bool,
) -> None:
    if mode == "rds-replica":
        request.getfixturevalue("rds_pair")
        function_env(**rds_env("primary"))
        promote_replica()
    else:
        request.getfixturevalue("aurora_pair")
        function_env(**aurora_env("primary"))
        fail_over_aurora()
    set_latch("active")

    answer = invoke(health())

    assert answer.status == 200
    assert answer.body["writer"] is writer
    assert answer.body["active"] is False


def test_without_a_database_writer_is_null(invoke: Invoke, function_env: SetEnv, set_latch: SetLatch) -> None:
    function_env(role="dr", region=DR)
    set_latch("active")

    answer = invoke(health())

    assert answer.status == 200
    assert answer.body["writer"] is None
    assert answer.body["active"] is True
    assert answer.body["checks"]["database"]["status"] == "skipped"


def test_without_a_table_the_table_check_is_skipped(
    invoke: Invoke, function_env: SetEnv, set_latch: SetLatch
) -> None:
    function_env(TABLE_NAME=None)
    set_latch("standby")

    answer = invoke(health())

    assert answer.status == 200
    assert answer.body["checks"]["table"]["status"] == "skipped"


def test_body_matches_route53_string_match(
    clients: ClientCache, function_env: SetEnv, stores: None, set_latch: SetLatch
) -> None:
    set_latch("standby")

    raw = handler(health(), FakeContext())["body"]

    # A Route 53 HTTP_STR_MATCH health check can look for exactly this text.
    assert '"active": true' in raw


@pytest.mark.parametrize(
    ("latch_value", "error"),
    [
        pytest.param(None, "ParameterNotFound", id="missing"),
        pytest.param("not json", "MalformedLatch", id="not-json"),
        pytest.param('{"status": "active"}', "MalformedLatch", id="no-state"),
    ],
)
def test_primary_assumes_active_when_latch_unreadable(
    invoke: Invoke,
    function_env: SetEnv,
    set_latch: SetLatch,
    rds_pair: None,
    latch_value: str | None,
    error: str,
) -> None:
    function_env(**rds_env("primary"))
    if latch_value is not None:
        set_latch(latch_value)

    answer = invoke(health())

    assert answer.status == 200
    assert answer.body["active"] is True
    latch = answer.body["checks"]["latch"]
    assert latch["status"] == "degraded"
    assert latch["error"] == error
    assert "primary active" in latch["assumed"]


def test_dr_replica_fails_health_when_latch_unreadable(
    invoke: Invoke, function_env: SetEnv, rds_pair: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")
    function_env(**rds_env("dr"))

    answer = invoke(health())

    assert answer.status == 503
    assert answer.body["active"] is False
    assert answer.body["checks"]["latch"]["status"] == "failed"
    assert answer.body["checks"]["latch"]["error"] == "ParameterNotFound"
    [line] = api_log_lines(caplog.records)
    assert line["message"] == "health check failed"
    assert line["check"] == "latch" and line["error_code"] == "ParameterNotFound" and line["role"] == "dr"


def test_dr_writer_stays_healthy_when_latch_unreadable(
    invoke: Invoke, function_env: SetEnv, rds_pair: None
) -> None:
    function_env(**rds_env("dr"))
    promote_replica()

    answer = invoke(health())

    assert answer.status == 200
    assert answer.body["active"] is True
    assert answer.body["checks"]["latch"]["status"] == "degraded"


def test_missing_rds_instance_fails_health(
    invoke: Invoke, function_env: SetEnv, set_latch: SetLatch, rds_pair: None
) -> None:
    function_env(**{**rds_env("dr"), "DB_INSTANCE_ID": "no-such-db"})
    set_latch("standby")

    answer = invoke(health())

    assert answer.status == 503
    assert answer.body["writer"] is None
    assert answer.body["checks"]["database"] == {"status": "failed", "error": "DBInstanceNotFound"}
    assert "Retry-After" not in answer.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param(
            {"DB_CLUSTER_ARN": cluster_arn(DR, "orphan")}, "NotAGlobalClusterMember", id="not-a-member"
        ),
        pytest.param(
            {"GLOBAL_CLUSTER_ID": "no-such-global"}, "GlobalClusterNotFoundFault", id="no-global-cluster"
        ),
    ],
)
def test_aurora_membership_problems_fail_health(
    invoke: Invoke,
    function_env: SetEnv,
    set_latch: SetLatch,
    aurora_pair: None,
    overrides: dict[str, str],
    error: str,
) -> None:
    function_env(**{**aurora_env("dr"), **overrides})
    set_latch("standby")

    answer = invoke(health())

    assert answer.status == 503
    assert answer.body["writer"] is None
    assert answer.body["checks"]["database"] == {"status": "failed", "error": error}


def test_missing_table_fails_health(invoke: Invoke, function_env: SetEnv, set_latch: SetLatch) -> None:
    function_env(role="dr", region=DR)
    set_latch("standby")
    boto3.client("dynamodb", region_name=DR).delete_table(TableName=TABLE)

    answer = invoke(health())

    assert answer.status == 503
    assert answer.body["checks"]["table"] == {"status": "failed", "error": "ResourceNotFoundException"}


def test_throttled_check_answers_503_with_retry_after(
    invoke: Invoke,
    clients: ClientCache,
    function_env: SetEnv,
    set_latch: SetLatch,
    rds_pair: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")
    function_env(**rds_env("primary"))
    set_latch("standby")

    def throttle(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeDBInstances"
        )

    clients.client("rds", PRIMARY, health=True).meta.events.register(
        "before-call.rds.DescribeDBInstances", throttle
    )

    answer = invoke(health())

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.body["checks"]["database"] == {"status": "failed", "error": "Throttling"}
    assert answer.body["active"] is True  # the latch still decides the primary's role
    [line] = api_log_lines(caplog.records)
    assert line["check"] == "database" and line["error_code"] == "Throttling"


def test_bad_role_is_a_logged_500(
    invoke: Invoke, function_env: SetEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")
    function_env(role="secondary")

    answer = invoke(health())

    assert answer.status == 500
    assert answer.body == {"error": "internal error"}
    [line] = api_log_lines(caplog.records)
    assert line["message"] == "configuration error"
    assert "STACK_ROLE" in line["error"]


@pytest.mark.parametrize(
    ("role", "writer", "latch", "active"),
    [
        ("primary", True, "standby", True),
        ("primary", None, None, True),
        ("primary", False, "failing-over", True),
        ("primary", True, "active", False),
        ("dr", False, "standby", False),
        ("dr", None, None, False),
        ("dr", None, "active", True),
        ("dr", True, None, True),
        ("dr", True, "standby", True),
    ],
)
def test_decide_active(role: str, writer: bool | None, latch: str | None, active: bool) -> None:
    assert decide_active(role, writer, latch) is active


@pytest.mark.parametrize("status", ["failed", "stopped", "inaccessible-encryption-credentials"])
def test_a_database_rds_describes_as_serving_nothing_fails_health(
    invoke: Invoke, function_env: SetEnv, set_latch: SetLatch, rds_pair: None, status: str
) -> None:
    """A region whose writer RDS describes as taking no write (failed: "can't recover", stopped, its KMS key
    out of reach: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html) is
    not healthy: the failover's late look reads a 200 from this endpoint as "region A serves its writer", and
    a failed writer answering 200 held a forced failover over a dead database until it gave up with no writer
    anywhere (break39 B39-2)."""
    rds_backends[DEFAULT_ACCOUNT_ID][PRIMARY].databases[SOURCE_DB].status = status
    function_env(**rds_env("primary"))
    set_latch("standby")

    answer = invoke(health())

    assert answer.status == 503
    assert answer.body["checks"]["database"] == {"status": "failed", "error": "DatabaseUnavailable"}
