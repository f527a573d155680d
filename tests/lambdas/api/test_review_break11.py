"""Review break11: what issue 11 built (the payments ledger in PostgreSQL), read against AWS's docs.

Each test is a defect found in review, kept as a strict xfail naming it: it fails today for the
reason given, and passes (turning the xfail into an error) once the defect is fixed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import pytest

from automation.postgres import APP_USER, DATABASE, PgCluster, PgServer, ensure_ledger, sql
from components.ledger_access import LedgerPath, ledger_path
from lambdas.api import handler as handler_module
from lambdas.api.clients import ClientCache
from lambdas.api.config import ConfigError, ledger_from_env
from tests.components.conftest import synthesize
from tests.lambdas.api.support import PRIMARY, TABLE, Answer, FakeContext, get_event, post_event

Invoke = Callable[[dict[str, Any]], Answer]


@pytest.fixture(scope="module")
def writer(pg_cluster: PgCluster) -> Iterator[PgServer]:
    """Region A's writer with the ledger table, shared by this module's tests."""
    server = pg_cluster.new_writer(pg_cluster.unique_name("b11"))
    ensure_ledger(server)
    yield server
    pg_cluster.discard(server)


def point_at(server: PgServer, function_env: Callable[..., None], region: str = PRIMARY) -> None:
    """The payments function of ``region`` on the driver path to ``server`` (as test_ledger_driver)."""
    secret = boto3.client("secretsmanager", region_name=region).create_secret(
        Name=f"db-{server.name}-{region}-{time.monotonic_ns()}",
        SecretString=json.dumps({"username": APP_USER, "password": "unused", "engine": "postgres"}),
    )
    function_env(
        region=region,
        DB_MODE="rds-replica",
        DB_INSTANCE_ID=server.name,
        DB_SECRET_ARN=secret["ARN"],
        DB_HOST=server.host,
        DB_PORT=str(server.port),
        DB_NAME=DATABASE,
        DB_SSLMODE="disable",
    )


def ledger_row(server: PgServer, payment_id: str) -> list[Any] | None:
    rows = server.query(
        "SELECT payment_id, amount::text FROM ledger WHERE payment_id = :p", database=DATABASE, p=payment_id
    )
    return rows[0] if rows else None


# --------------------------------------------------------------------------------------------------
# 1. A POST answered 409 commits its (refused) body in the ledger, and GET then serves it.


def test_a_payment_refused_with_409_is_not_in_the_ledger_and_get_does_not_serve_it(
    invoke: Invoke, function_env: Callable[..., None], writer: PgServer
) -> None:
    """The ledger is the system of record: a payment the client was told was refused is not in it."""
    pid = "pay-b11-reused"
    # Before the stack had a database: the payment lives in DynamoDB only.
    function_env()
    first = invoke(post_event({"payment_id": pid, "amount": 10, "currency": "EUR"}))
    assert first.status == 201, first.body
    point_at(writer, function_env)

    reused = invoke(post_event({"payment_id": pid, "amount": 20, "currency": "EUR"}))
    read = invoke(get_event(pid))

    assert reused.status == 409, reused.body  # the client is told: refused
    table = boto3.client("dynamodb", region_name=PRIMARY).get_item(
        TableName=TABLE, Key={"pk": {"S": f"PAYMENT#{pid}"}, "sk": {"S": "PAYMENT"}}
    )["Item"]
    assert float(table["amount"]["N"]) == 10
    # ... so the refused body (amount 20) must not be the ledger's record of the payment.
    row = ledger_row(writer, pid)
    served = read.status == 200 and float(read.body["payment"]["amount"]) == 20
    assert row != [pid, "20.00"] and not served, (
        f"answered 409, yet the ledger holds {row} and GET answers {read.status} {read.body}"
    )


def test_a_payment_refused_by_an_item_landing_during_the_request_leaves_no_ledger_row(
    invoke: Invoke, function_env: Callable[..., None], writer: PgServer, clients: ClientCache
) -> None:
    """The race the table read cannot see: an item with another body lands (the global table
    replicating an unplanned failover's tail) between the read and the conditional put. The 409
    must still leave no ledger row, and GET must not serve the refused body."""
    pid = "pay-b11-landing"
    point_at(writer, function_env)
    other = boto3.client("dynamodb", region_name=PRIMARY)

    def land(**_: Any) -> None:
        other.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"PAYMENT#{pid}"},
                "sk": {"S": "PAYMENT"},
                "payment_id": {"S": pid},
                "amount": {"N": "99"},
                "currency": {"S": "EUR"},
                "created_at": {"S": "2026-01-01T00:00:00.000Z"},
                "region": {"S": "us-west-2"},
            },
        )

    clients.client("dynamodb", PRIMARY).meta.events.register_first("before-call.dynamodb.PutItem", land)

    answer = invoke(post_event({"payment_id": pid, "amount": 20, "currency": "EUR"}))

    assert answer.status == 409, answer.body
    assert ledger_row(writer, pid) is None, "answered 409, yet the refused payment is the ledger's row"


def test_an_inbox_message_reusing_an_id_is_refused_and_leaves_no_ledger_row(
    function_env: Callable[..., None], writer: PgServer, clients: ClientCache, stores: None
) -> None:
    """The SQS inbox records payments through the same path: a refused message leaves no row."""
    pid = "pay-b11-inbox"
    function_env()
    body = {"payment_id": pid, "amount": 10, "currency": "EUR"}
    message = {"eventSource": "aws:sqs", "messageId": "m-1", "body": json.dumps(body)}
    assert handler_module.handler({"Records": [message]}, FakeContext()) == {"batchItemFailures": []}
    point_at(writer, function_env)

    reused = {**message, "messageId": "m-2", "body": json.dumps({**body, "amount": 20})}
    answer = handler_module.handler({"Records": [reused]}, FakeContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert ledger_row(writer, pid) is None, "the refused inbox message is the ledger's row"


# --------------------------------------------------------------------------------------------------
# 2. Two identical requests at once: the second is told 409 although its payment is recorded.


def test_an_identical_request_racing_the_first_is_answered_200_not_409(
    invoke: Invoke, function_env: Callable[..., None], writer: PgServer
) -> None:
    """Idempotent on the payment id: a duplicate in flight at the same time gets the payment (200)."""
    pid = "pay-b11-race"
    point_at(writer, function_env)
    body = {"payment_id": pid, "amount": 12.5, "currency": "EUR", "customer_id": "c1"}
    # The first request's insert, in a transaction not yet committed (as a concurrent invocation
    # is between its INSERT and its COMMIT).
    first = sql.connect(writer, user=APP_USER, database=DATABASE)
    first.run("BEGIN")
    first.run(
        "INSERT INTO ledger (payment_id, amount, currency, customer_id, region, created_at) "
        "VALUES (:p, 12.50, 'EUR', 'c1', :r, now())",
        p=pid,
        r=PRIMARY,
    )
    answers: list[Answer] = []
    thread = threading.Thread(target=lambda: answers.append(invoke(post_event(body))), daemon=True)
    thread.start()
    # Wait until the second request's INSERT is blocked on the first one's row lock.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = writer.query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pilotlight-api' "
            "AND wait_event_type = 'Lock'",
        )
        if waiting and int(waiting[0][0]) > 0:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the second request never waited on the first one's insert")
    first.run("COMMIT")
    first.close()
    thread.join(timeout=20)

    assert answers, "the second request did not answer"
    second = answers[0]
    assert ledger_row(writer, pid) == [pid, "12.50"]
    assert second.status in (200, 201), (
        f"identical request answered {second.status} {second.body} while its payment is committed"
    )


# --------------------------------------------------------------------------------------------------
# 3. The region check lets the Aurora global writer endpoint through: writes across regions.


def test_the_aurora_global_writer_endpoint_is_refused_as_a_db_host() -> None:
    """'Never writes across regions': a DB_HOST that may resolve to another region is a ConfigError."""
    env = {
        "DB_SECRET_ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf",
        "DB_NAME": "app",
        "DB_HOST": "shop-global.global-a1b2c3d4e5.global.rds.amazonaws.com",
    }
    with pytest.raises(ConfigError, match="DB_HOST"):
        ledger_from_env(env, "us-west-2")


@pytest.mark.parametrize(
    "host",
    [
        "shop-global.global-a1b2c3d4e5.global.rds.amazonaws.com",  # the Aurora global writer endpoint
        "db.example.com",  # a CNAME may point anywhere
        "10.0.1.25",  # an address names no region
        "shop.abc123xyz.us-east-1.rds.amazonaws.com",  # the other region's endpoint
        "shop.cluster-abc123xyz.us-east-1.rds.amazonaws.com",
        "evil.us-west-2.rds.amazonaws.com.example.com",
    ],
)
def test_a_db_host_outside_the_functions_region_is_one_error_naming_the_allowed_form(host: str) -> None:
    """'Never writes across regions': only this region's RDS endpoint names are a DB_HOST."""
    env = {
        "DB_SECRET_ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf",
        "DB_NAME": "app",
        "DB_HOST": host,
    }
    with pytest.raises(ConfigError) as raised:
        ledger_from_env(env, "us-west-2")
    message = str(raised.value)
    assert (
        message.startswith("DB_HOST")
        and "allowed: this region's endpoint, <name>.<id>.us-west-2.rds.amazonaws.com" in message
    )


@pytest.mark.parametrize(
    "host",
    [
        "shop.abc123xyz.us-west-2.rds.amazonaws.com",
        "shop.cluster-abc123xyz.us-west-2.rds.amazonaws.com",
        "shop.proxy-abc123xyz.us-west-2.rds.amazonaws.com",
        "127.0.0.1",  # this machine: a local run, never another region
    ],
)
def test_this_regions_endpoints_are_a_db_host(host: str) -> None:
    env = {
        "DB_SECRET_ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf",
        "DB_NAME": "app",
        "DB_HOST": host,
    }
    target = ledger_from_env(env, "us-west-2")
    assert target is not None and getattr(target, "host", None) == host


# --------------------------------------------------------------------------------------------------
# 4. The Data API is chosen in regions where AWS does not offer it.


def test_a_region_without_the_data_api_gets_the_driver_path() -> None:
    """https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.Aurora_Fea_Regions_DB-eng.Feature.Data_API.html"""
    s = synthesize(
        "primary", {"pilotlight:primaryRegion": "ap-southeast-4", "pilotlight:drRegion": "ap-southeast-2"}
    )
    clusters = s.by_type("aws:rds/cluster:Cluster")
    functions = [f for f in s.by_type("aws:lambda/function:Function") if f.name.endswith("-api-payments")]
    assert len(functions) == 1
    env = functions[0].inputs["environment"]["variables"]
    assert "DB_HOST" in env, f"the payments function in ap-southeast-4 uses the Data API: {sorted(env)}"
    assert not any(c.inputs.get("enableHttpEndpoint") for c in clusters)


# --------------------------------------------------------------------------------------------------
# 5. TLS to the database is never verified.


def test_the_deployed_driver_path_verifies_the_databases_certificate(tmp_path: Path) -> None:
    """https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html

    Fixed (tls11): AWS's bundle (global-bundle.pem, UsingWithRDS.SSL.html) cannot ship with the
    program, so the user names the one they downloaded in ``database.caBundle``; the deployed
    function then verifies (verify-full, against the file its archive carries). Without the key
    the plan warns that TLS is not verified (tests/components/test_ledger_wiring.py).
    """
    database = {
        "mode": "rds-replica",
        "engine": "postgres",
        "caBundle": "tests/components/data/test-rds-ca.pem",
    }
    s = synthesize("primary", {"pilotlight:database": database})
    functions = [f for f in s.by_type("aws:lambda/function:Function") if f.name.endswith("-api-payments")]
    env = dict(functions[0].inputs["environment"]["variables"])
    env["DB_HOST"] = "pilotlight-db.c9akciq32.us-east-1.rds.amazonaws.com"  # the instance's address, deployed
    assert env.get("DB_SSLMODE") in (None, "verify-full"), env.get("DB_SSLMODE")
    assert "DB_SSLROOTCERT" in env, sorted(env)
    # The file it names, read from the function's own archive (Lambda unpacks it into /var/task).
    shipped = functions[0].archive[PurePosixPath(env["DB_SSLROOTCERT"]).relative_to("/var/task").as_posix()]
    (tmp_path / "bundle.pem").write_bytes(Path(shipped).read_bytes())
    env["DB_SSLROOTCERT"] = str(tmp_path / "bundle.pem")
    target = ledger_from_env(env, "us-east-1")
    assert target is not None and getattr(target, "sslmode", None) == "verify-full", target


# --------------------------------------------------------------------------------------------------
# 6. Too many connections is a 500, not a 503 to retry.


def test_too_many_connections_is_a_503_the_client_may_retry(
    invoke: Invoke, function_env: Callable[..., None], pg_cluster: PgCluster
) -> None:
    """The server's own refusal: the application role's connection limit is reached (SQLSTATE 53300)."""
    server = pg_cluster.new_writer(pg_cluster.unique_name("b11-cl"))
    try:
        ensure_ledger(server)
        server.query(f"ALTER ROLE {APP_USER} CONNECTION LIMIT 0")
        point_at(server, function_env)

        answer = invoke(post_event({"payment_id": "pay-b11-limit", "amount": 5}))

        assert answer.status == 503, answer.body
        assert answer.body.get("reason") == "database_unreachable"
        assert answer.headers.get("Retry-After"), answer.headers
        assert "Traceback" not in json.dumps(answer.body)
    finally:
        pg_cluster.discard(server)


# --------------------------------------------------------------------------------------------------
# 7. An Aurora PostgreSQL major version AWS does not list for the Data API gets it.


def test_an_undocumented_major_version_gets_the_driver_path() -> None:
    """https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.Aurora_Fea_Regions_DB-eng.Feature.Data_API.html"""
    # Review of the finding: the page's current version lists "Aurora PostgreSQL 18 | Version 18.3 and
    # higher" (an older copy stops at 17), so 18.3 keeps the Data API; what the table does not list is
    # 18 below 18.3, and any major version after 18.
    regions = ("us-east-1", "us-west-2")
    for version in ("18.1", "19.1"):
        path, why = ledger_path("aurora-global", "aurora-postgresql", version, "db.r6g.large", regions)
        assert path is LedgerPath.DRIVER, why
    path, why = ledger_path("aurora-global", "aurora-postgresql", "18.3", "db.r6g.large", regions)
    assert path is LedgerPath.DATA_API, why


# --------------------------------------------------------------------------------------------------
# 8. A retry answered from DynamoDB's item, while the ledger (what GET reads) records another one.


def test_a_retry_answers_what_get_then_reads(
    invoke: Invoke, function_env: Callable[..., None], writer: PgServer
) -> None:
    """What POST answers for a payment is what GET /payments/{id} reads back."""
    pid = "pay-b11-retry"
    body = {"payment_id": pid, "amount": 7, "currency": "EUR"}
    function_env()
    assert invoke(post_event(body)).status == 201
    time.sleep(0.01)  # a later created_at for the retry's own item
    point_at(writer, function_env)

    retry = invoke(post_event(body))
    read = invoke(get_event(pid))

    assert retry.status in (200, 201) and read.status == 200, (retry.body, read.body)
    assert retry.body["payment"] == read.body["payment"], (retry.body["payment"], read.body["payment"])
