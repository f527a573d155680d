"""The ledger over the driver path (rds-replica): the real handler, pg8000, real PostgreSQL servers.

DynamoDB, S3 and Secrets Manager are moto; the database is a real PostgreSQL 18 server from
``automation.postgres`` (a writer and its streaming standby, as region A's instance and region B's
read replica), so "a replica refuses the write" is the server's own answer, not a model of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from automation.postgres import (
    APP_USER,
    DATABASE,
    PgCluster,
    PgServer,
    ensure_ledger,
    fence,
    kill,
    make_standby,
    payment_ids,
    wait_for_catch_up,
)
from lambdas.api import handler as handler_module
from tests.lambdas.api.support import (
    DR,
    PRIMARY,
    TABLE,
    Answer,
    FakeContext,
    api_log_lines,
    get_event,
    load_event,
    post_event,
)

Invoke = Callable[[dict[str, Any]], Answer]

BODY = {"payment_id": "pay-ledger-1", "amount": 12.5, "currency": "EUR", "customer_id": "cust-1"}


@pytest.fixture(scope="module")
def pair(pg_cluster: PgCluster) -> Iterator[tuple[PgServer, PgServer]]:
    """Region A's writer with the ledger and region B's streaming standby, shared by the module."""
    writer = pg_cluster.new_writer(pg_cluster.unique_name("api-a"))
    standby = make_standby(writer, pg_cluster.unique_name("api-b"))
    ensure_ledger(writer)
    wait_for_catch_up(writer, standby)
    yield writer, standby
    for server in (writer, standby):
        pg_cluster.discard(server)


@pytest.fixture
def lone_writer(pg_cluster: PgCluster) -> Iterator[PgServer]:
    """A writer of its own, for the tests that kill or fence it."""
    server = pg_cluster.new_writer(pg_cluster.unique_name("api-w"))
    yield server
    pg_cluster.discard(server)


@pytest.fixture
def use_database(aws: None, function_env: Callable[..., None]) -> Callable[..., None]:
    """Point the function of a region at a server: the secret in that region, the driver's variables."""

    def point(server: PgServer, region: str = PRIMARY, role: str = "primary") -> None:
        secret = boto3.client("secretsmanager", region_name=region).create_secret(
            Name=f"db-{server.name}-{region}",
            # The test servers trust 127.0.0.1 (automation/postgres/sql.py): the password is unused.
            SecretString=json.dumps({"username": APP_USER, "password": "unused", "engine": "postgres"}),
        )
        function_env(
            role=role,
            region=region,
            DB_MODE="rds-replica",
            DB_INSTANCE_ID=server.name,
            DB_SECRET_ARN=secret["ARN"],
            DB_HOST=server.host,
            DB_PORT=str(server.port),
            DB_NAME=DATABASE,
            DB_SSLMODE="disable",
        )

    return point


def ledger_rows(server: PgServer) -> list[list[Any]]:
    return server.query(
        "SELECT payment_id, amount::text, currency, customer_id, region FROM ledger ORDER BY payment_id",
        database=DATABASE,
    )


def dynamodb_item(payment_id: str, region: str = PRIMARY) -> dict[str, Any] | None:
    table = boto3.resource("dynamodb", region_name=region).Table(TABLE)
    return table.get_item(Key={"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}).get("Item")


def test_post_records_the_payment_in_the_writers_ledger_and_get_reads_it_back(
    invoke: Invoke, use_database: Callable[..., None], pair: tuple[PgServer, PgServer]
) -> None:
    """A payment acknowledged with 201 is a committed ledger row in the writer (and DynamoDB too)."""
    writer, standby = pair
    use_database(writer)

    answer = invoke(post_event(BODY))

    assert answer.status == 201, answer.body
    assert ["pay-ledger-1", "12.50", "EUR", "cust-1", PRIMARY] in ledger_rows(writer)
    assert dynamodb_item("pay-ledger-1") is not None
    # GET reads the ledger: the row is the answer even with the DynamoDB item gone.
    boto3.client("dynamodb", region_name=PRIMARY).delete_item(
        TableName=TABLE, Key={"pk": {"S": "PAYMENT#pay-ledger-1"}, "sk": {"S": "PAYMENT"}}
    )
    read = invoke(get_event("pay-ledger-1"))
    assert read.status == 200, read.body
    assert read.body["payment"] == {**answer.body["payment"]}
    assert invoke(get_event("pay-never-written")).status == 404
    wait_for_catch_up(writer, standby)
    assert "pay-ledger-1" in payment_ids(standby)
    # Region B reads its replica: a read creates nothing, so a standby answers it.
    use_database(standby, region=DR, role="dr")
    from_replica = invoke(get_event("pay-ledger-1"))
    assert from_replica.status == 200, from_replica.body
    assert from_replica.body["payment"] == answer.body["payment"]


def test_same_payment_twice_is_one_row_and_a_different_body_is_refused(
    invoke: Invoke, use_database: Callable[..., None], pair: tuple[PgServer, PgServer]
) -> None:
    """Idempotent on the payment id: a retry writes nothing (200), a reuse with another body is 409."""
    writer, _ = pair
    use_database(writer)
    body = {**BODY, "payment_id": "pay-ledger-twice"}

    first, again = invoke(post_event(body)), invoke(post_event(body))
    reused = invoke(post_event({**body, "amount": 99}))

    assert (first.status, again.status) == (201, 200), (first.body, again.body)
    assert again.body["payment"] == first.body["payment"]
    assert reused.status == 409 and reused.body["field"] == "payment_id"
    rows = [row for row in ledger_rows(writer) if row[0] == "pay-ledger-twice"]
    assert rows == [["pay-ledger-twice", "12.50", "EUR", "cust-1", PRIMARY]]


def test_a_function_whose_database_is_a_replica_refuses_the_write_and_writes_nothing(
    invoke: Invoke,
    use_database: Callable[..., None],
    pair: tuple[PgServer, PgServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Region B before a failover: its database is a streaming standby, so POST is 503 not_writer.

    Nothing is written anywhere: not in either ledger, not in region B's DynamoDB table.
    """
    writer, standby = pair
    use_database(standby, region=DR, role="dr")

    answer = invoke(post_event({**BODY, "payment_id": "pay-on-replica"}))

    assert answer.status == 503, answer.body
    assert answer.body["reason"] == "not_writer"
    assert "not the writer" in answer.body["error"]
    assert set(answer.body) == {"error", "reason"}
    assert answer.headers["Retry-After"] == "1"
    wait_for_catch_up(writer, standby)
    assert "pay-on-replica" not in payment_ids(writer) | payment_ids(standby)
    assert dynamodb_item("pay-on-replica", DR) is None
    logged = [line for line in api_log_lines(caplog.records) if line["message"] == "ledger unavailable"]
    assert logged and "25006" in logged[0]["detail"], logged


def test_a_dead_database_is_a_503_without_a_traceback(
    invoke: Invoke,
    use_database: Callable[..., None],
    lone_writer: PgServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Region A gone dark: POST and GET answer 503 database_unreachable, with no traceback anywhere."""
    use_database(lone_writer)
    assert invoke(post_event({**BODY, "payment_id": "pay-before-kill"})).status == 201
    kill(lone_writer)

    posted = invoke(post_event({**BODY, "payment_id": "pay-after-kill"}))
    read = invoke(get_event("pay-before-kill"))

    for answer in (posted, read):
        assert answer.status == 503, answer.body
        assert answer.body["reason"] == "database_unreachable"
        assert "Traceback" not in json.dumps(answer.body)
    assert dynamodb_item("pay-after-kill") is None
    lines = api_log_lines(caplog.records)
    assert lines and not any("traceback" in line for line in lines), lines


def test_a_fenced_writer_refuses_the_write(
    invoke: Invoke, use_database: Callable[..., None], lone_writer: PgServer
) -> None:
    """A fenced old writer (the runbook's fence) refuses the application: 503, and no row."""
    ensure_ledger(lone_writer)
    use_database(lone_writer)
    fence(lone_writer)

    answer = invoke(post_event({**BODY, "payment_id": "pay-fenced"}))

    assert answer.status == 503, answer.body
    assert answer.body["reason"] == "database_unreachable"
    assert "pay-fenced" not in payment_ids(lone_writer)
    assert dynamodb_item("pay-fenced") is None


def test_an_inbox_batch_on_a_replica_is_kept_for_redelivery_and_written_nowhere(
    clients: Any,
    stores: None,
    use_database: Callable[..., None],
    pair: tuple[PgServer, PgServer],
) -> None:
    """Partner payments consumed in a region whose database is a replica: every message is listed as
    a batch failure (redelivered later, to the writer's region), and none is recorded anywhere."""
    writer, standby = pair
    use_database(standby, region=DR, role="dr")
    event = load_event("sqs_batch")

    answer = handler_module.handler(event, FakeContext())

    ids = [record["messageId"] for record in event["Records"]]
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == ids
    wait_for_catch_up(writer, standby)
    assert not {"partner-001", "partner-003"} & (payment_ids(writer) | payment_ids(standby))
    assert dynamodb_item("partner-001", DR) is None


def test_a_read_before_any_write_is_a_404_and_creates_nothing(
    invoke: Invoke, use_database: Callable[..., None], lone_writer: PgServer
) -> None:
    """No ledger table yet (a new database): GET answers 404, and reading does not create the table."""
    use_database(lone_writer)

    answer = invoke(get_event("pay-nothing-yet"))

    assert answer.status == 404, answer.body
    assert lone_writer.query("SELECT to_regclass('ledger') IS NULL", database=DATABASE) == [[True]]
