"""GET /health judges the database from its data plane too (break39 B39-1): real PostgreSQL, real handler.

Invariant protected: **traffic follows the writer** (docs/safety.md). Region A's health endpoint is what
Route 53's endpoint check of region A probes (``components/global_failover.py`` ``endpoint_check``) and what
a forced failover's late look reads as "region A serves its writer" (``lambdas/failover/darkness.py``).
Before, it answered 503 whenever RDS's *control plane* failed for the function (``DescribeDBInstances``),
so during a regional control-plane incident a region A serving its writer looked dark to both: Route 53
sent clients to region B's replica while region A kept its writer, and the failover's late look took a
serving region A for dark (break39 B39-1, 340 s of traffic on the non-writer). The probe asks the database
itself (``lambdas/api/health.py`` ``WRITER_PROBE_SQL``) through the same driver path the payments use.

The database is a real PostgreSQL 18 server from ``automation.postgres`` (a writer and its streaming
standby); RDS's API is moto, made unreachable for the function by a botocore hook raising what botocore
raises when an endpoint does not answer (``EndpointConnectionError``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

from automation.postgres import (
    APP_USER,
    DATABASE,
    PgCluster,
    PgServer,
    fence,
    kill,
    make_standby,
    wait_for_catch_up,
)
from lambdas.api.clients import ClientCache
from lambdas.api.ledger import DatabaseBusy, DatabaseUnreachable, NotWriter
from tests.lambdas.api.support import DR, PRIMARY, Answer, load_event

Invoke = Callable[[dict[str, Any]], Answer]


@pytest.fixture(scope="module")
def pair(pg_cluster: PgCluster) -> Iterator[tuple[PgServer, PgServer]]:
    """Region A's writer and region B's streaming standby, shared by the module (never fenced or killed)."""
    writer = pg_cluster.new_writer(pg_cluster.unique_name("health-a"))
    standby = make_standby(writer, pg_cluster.unique_name("health-b"))
    wait_for_catch_up(writer, standby)
    yield writer, standby
    for server in (writer, standby):
        pg_cluster.discard(server)


@pytest.fixture
def lone_writer(pg_cluster: PgCluster) -> Iterator[PgServer]:
    """A writer of its own, for the tests that fence or kill it."""
    server = pg_cluster.new_writer(pg_cluster.unique_name("health-w"))
    yield server
    pg_cluster.discard(server)


@pytest.fixture
def region(
    aws: None, function_env: Callable[..., None], set_latch: Callable[[str], None]
) -> Callable[..., None]:
    """Point a region's function at a server: RDS describes the instance (a source in region A, a read
    replica in region B, as the program creates them), the secret, the driver's variables."""
    set_latch("standby")

    def point(server: PgServer, role: str = "primary") -> None:
        home = PRIMARY if role == "primary" else DR
        rds = boto3.client("rds", region_name=home)
        if role == "primary":
            rds.create_db_instance(
                DBInstanceIdentifier=server.name,
                DBInstanceClass="db.t3.micro",
                Engine="postgres",
                MasterUsername="app",
                MasterUserPassword="not-a-real-password",
                AllocatedStorage=20,
            )
        else:
            source = boto3.client("rds", region_name=PRIMARY).create_db_instance(
                DBInstanceIdentifier=f"{server.name}-src",
                DBInstanceClass="db.t3.micro",
                Engine="postgres",
                MasterUsername="app",
                MasterUserPassword="not-a-real-password",
                AllocatedStorage=20,
            )["DBInstance"]
            rds.create_db_instance_read_replica(
                DBInstanceIdentifier=server.name,
                SourceDBInstanceIdentifier=source["DBInstanceArn"],
                DBInstanceClass="db.t3.micro",
            )
        secret = boto3.client("secretsmanager", region_name=home).create_secret(
            Name=f"db-{server.name}-{home}",
            # The test servers trust 127.0.0.1 (automation/postgres/sql.py): the password is unused.
            SecretString=json.dumps({"username": APP_USER, "password": "unused", "engine": "postgres"}),
        )
        function_env(
            role=role,
            region=home,
            DB_MODE="rds-replica",
            DB_INSTANCE_ID=server.name,
            DB_SECRET_ARN=secret["ARN"],
            DB_HOST=server.host,
            DB_PORT=str(server.port),
            DB_NAME=DATABASE,
            DB_SSLMODE="disable",
        )

    return point


@pytest.fixture
def rds_api_down(clients: ClientCache) -> Callable[[str], None]:
    """Make RDS's API in ``home`` fail to connect for the function, as in a regional control-plane incident."""

    def down(home: str) -> None:
        def refuse(**kwargs: Any) -> None:
            raise EndpointConnectionError(endpoint_url=f"https://rds.{home}.amazonaws.com/")

        clients.client("rds", home, health=True).meta.events.register("before-send.rds.*", refuse)

    return down


def health() -> dict[str, Any]:
    return load_event("get_health")


def test_region_a_serving_its_writer_is_healthy_while_rds_api_is_down(
    invoke: Invoke,
    region: Callable[..., None],
    rds_api_down: Callable[[str], None],
    pair: tuple[PgServer, PgServer],
) -> None:
    """B39-1: the control plane down, the database taking writes: 200, writer, the check degraded (not
    failed) and naming both answers. Before the probe: 503 {'status': 'failed', 'error':
    'EndpointConnectionError'}."""
    writer, _ = pair
    region(writer)
    rds_api_down(PRIMARY)

    answer = invoke(health())

    assert answer.status == 200, answer.body
    assert answer.body["writer"] is True
    assert answer.body["active"] is True
    database = answer.body["checks"]["database"]
    assert database == {
        "status": "degraded",
        "control_plane_error": "EndpointConnectionError",
        "data_plane": {"answer": "writer"},
    }


def test_with_both_planes_answering_the_writer_is_the_databases_own_answer(
    invoke: Invoke, region: Callable[..., None], pair: tuple[PgServer, PgServer]
) -> None:
    writer, _ = pair
    region(writer)

    answer = invoke(health())

    assert answer.status == 200, answer.body
    assert answer.body["writer"] is True
    assert answer.body["checks"]["database"]["status"] == "ok"
    assert answer.body["checks"]["database"]["data_plane"] == {"answer": "writer"}


def test_region_bs_standby_is_healthy_and_not_the_writer_with_or_without_rds_api(
    invoke: Invoke,
    region: Callable[..., None],
    rds_api_down: Callable[[str], None],
    pair: tuple[PgServer, PgServer],
) -> None:
    """A hot standby answers the probe 'replica': region B stays healthy and not the writer."""
    _, standby = pair
    region(standby, role="dr")

    both = invoke(health())
    rds_api_down(DR)
    data_only = invoke(health())

    assert both.status == 200 and both.body["writer"] is False, both.body
    assert both.body["checks"]["database"]["data_plane"] == {"answer": "replica"}
    assert data_only.status == 200 and data_only.body["writer"] is False, data_only.body
    assert data_only.body["checks"]["database"]["status"] == "degraded"


def test_a_fenced_writer_fails_health_although_rds_calls_it_the_writer(
    invoke: Invoke, region: Callable[..., None], lone_writer: PgServer
) -> None:
    """The fenced old writer takes no payment (it refuses the function's session by rule, SQLSTATE 28000):
    that is the database's own say, and Route 53 must not send a payment there, whatever RDS's API says."""
    region(lone_writer)
    fence(lone_writer)

    answer = invoke(health())

    assert answer.status == 503, answer.body
    assert answer.body["checks"]["database"]["error"] == "WriterRefusesSessions"
    assert answer.body["checks"]["database"]["data_plane"] == {"error": "refused"}


def test_a_writer_turning_sessions_away_for_load_stays_healthy_and_the_writer(
    invoke: Invoke, region: Callable[..., None], lone_writer: PgServer
) -> None:
    """Too many connections (SQLSTATE 53300, here the role's CONNECTION LIMIT 0) is a writer under load, not a
    dead one: failing its health would send clients to region B's non-writer (traffic follows the writer)."""
    region(lone_writer)
    lone_writer.query(f"ALTER ROLE {APP_USER} CONNECTION LIMIT 0")

    answer = invoke(health())

    assert answer.status == 200, answer.body
    assert answer.body["writer"] is True
    assert answer.body["checks"]["database"]["status"] == "degraded"
    assert answer.body["checks"]["database"]["data_plane"] == {"answer": "busy"}


def test_a_dead_database_with_rds_api_down_fails_health(
    invoke: Invoke, region: Callable[..., None], rds_api_down: Callable[[str], None], lone_writer: PgServer
) -> None:
    """Neither plane answers: 503, as before the probe (a dark region is not made healthy)."""
    region(lone_writer)
    kill(lone_writer)
    rds_api_down(PRIMARY)

    answer = invoke(health())

    assert answer.status == 503, answer.body
    assert answer.body["checks"]["database"] == {
        "status": "failed",
        "error": "EndpointConnectionError",
        "data_plane": {"error": "database_unreachable"},
    }


def test_a_problem_rds_states_fails_health_although_the_database_answers(
    invoke: Invoke, region: Callable[..., None], pair: tuple[PgServer, PgServer]
) -> None:
    """RDS's own statement (here ``failed``: "can't recover") is not overruled by the data plane (B39-2 holds)."""
    writer, _ = pair
    region(writer)
    rds_backends[DEFAULT_ACCOUNT_ID][PRIMARY].databases[writer.name].status = "failed"

    answer = invoke(health())

    assert answer.status == 503, answer.body
    assert answer.body["checks"]["database"]["error"] == "DatabaseUnavailable"


def test_probe_maps_a_refusal_to_not_writer_and_an_unreachable_database_to_an_error() -> None:
    from lambdas.api.health import _probe, probe_database

    def refuse(sql: str, params: Any) -> Any:
        raise NotWriter("secondary")

    def dark(sql: str, params: Any) -> Any:
        raise DatabaseUnreachable("down", "timeout")

    def full(sql: str, params: Any) -> Any:
        raise DatabaseBusy("too many connections", "53300")

    def odd(sql: str, params: Any) -> Any:
        return [["primary"]]

    def broken(sql: str, params: Any) -> Any:
        raise RuntimeError("driver bug")

    assert probe_database(refuse) == "not-writer"
    assert _probe(dark, {}) == {"error": "database_unreachable"}
    assert _probe(odd, {}) == {"error": "UnexpectedProbeAnswer"}
    assert _probe(full, {}) == {"answer": "busy"}
    assert _probe(broken, {}) == {"error": "RuntimeError"}
    assert _probe(lambda sql, params: [["replica"]], {}) == {"answer": "replica"}


# ---------------------------------------------------------------------------------------------------
# the table: DescribeTable is DynamoDB's control plane; GetItem its data plane


def _refuse(operation: str, home: str) -> Callable[..., None]:
    def refuse(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://dynamodb.{home}.amazonaws.com/ ({operation})")

    return refuse


def test_a_table_that_serves_reads_is_healthy_while_describe_table_is_unanswered(
    invoke: Invoke, clients: ClientCache, set_latch: Callable[[str], None]
) -> None:
    set_latch("standby")
    clients.client("dynamodb", PRIMARY, health=True).meta.events.register(
        "before-send.dynamodb.DescribeTable", _refuse("DescribeTable", PRIMARY)
    )

    answer = invoke(health())

    assert answer.status == 200, answer.body
    assert answer.body["checks"]["table"] == {
        "status": "degraded",
        "control_plane_error": "EndpointConnectionError",
        "data_plane": {"answer": "read"},
    }


def test_a_table_neither_plane_answers_for_fails_health(
    invoke: Invoke, clients: ClientCache, set_latch: Callable[[str], None]
) -> None:
    set_latch("standby")
    events = clients.client("dynamodb", PRIMARY, health=True).meta.events
    events.register("before-send.dynamodb.DescribeTable", _refuse("DescribeTable", PRIMARY))
    events.register("before-send.dynamodb.GetItem", _refuse("GetItem", PRIMARY))

    answer = invoke(health())

    assert answer.status == 503, answer.body
    assert answer.body["checks"]["table"] == {
        "status": "failed",
        "error": "EndpointConnectionError",
        "data_plane": {"status": "failed", "error": "EndpointConnectionError"},
    }


def test_a_table_describe_table_calls_unusable_fails_health_although_it_serves_reads(
    invoke: Invoke, clients: ClientCache, set_latch: Callable[[str], None]
) -> None:
    """What DynamoDB *states* (a missing table) is not overruled by a read."""
    set_latch("standby")

    def missing(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ResourceNotFoundException"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
            "DescribeTable",
        )

    clients.client("dynamodb", PRIMARY, health=True).meta.events.register(
        "before-send.dynamodb.DescribeTable", missing
    )

    answer = invoke(health())

    assert answer.status == 503, answer.body
    assert answer.body["checks"]["table"] == {"status": "failed", "error": "ResourceNotFoundException"}


@pytest.mark.parametrize(
    ("code", "busy"),
    [("ThrottlingException", True), ("ServiceUnavailableError", False), ("SecretsErrorException", False)],
)
def test_the_data_api_throttling_is_a_busy_database_not_a_dark_one(code: str, busy: bool) -> None:
    """Throttling means the Data API is there and turning requests away: to the health check a busy writer
    (degraded, still the writer); to the payments and the marker, 503 database_unreachable as before."""
    from lambdas.api.ledger import data_api_error

    meaning = data_api_error(
        ClientError({"Error": {"Code": code, "Message": "m"}}, "ExecuteStatement"), "arn"
    )

    assert isinstance(meaning, DatabaseUnreachable)
    assert meaning.reason == "database_unreachable"
    assert isinstance(meaning, DatabaseBusy) is busy


def test_checks_run_side_by_side_and_a_late_one_is_no_answer() -> None:
    """The health route's deadline bounds the slowest check, not their sum (break40 B40-3, B40-4)."""
    import time

    from lambdas.api.health import side_by_side

    started = time.monotonic()
    done = side_by_side(
        {
            "a": lambda: (time.sleep(0.3), "a")[1],
            "b": lambda: (time.sleep(0.3), "b")[1],
            "late": lambda: time.sleep(3),
        },
        deadline=1.0,
    )
    took = time.monotonic() - started

    assert done == {"a": "a", "b": "b"}
    assert 0.9 <= took < 2.0, took
