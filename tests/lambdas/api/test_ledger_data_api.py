"""The ledger over the RDS Data API (aurora-global): request shapes, error meanings, the emulator seam.

moto's ``rds-data`` answers canned results, so the real handler runs here with its ``rds-data``
client stubbed (botocore ``Stubber``): each test states the exact ``ExecuteStatement`` requests the
function must make and answers them as the Data API reference says the service does
(https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from lambdas.api.clients import ClientCache
from lambdas.api.config import ConfigError, DriverLedger, ledger_from_env
from lambdas.api.ledger import (
    INSERT_SQL,
    LEDGER_DDL,
    SELECT_SQL,
    from_data_api_parameters,
    from_data_api_records,
    ssl_context,
    to_data_api_parameters,
    to_data_api_records,
)
from tests.lambdas.api.support import DR, PRIMARY, TABLE, Answer, api_log_lines, get_event, post_event

Invoke = Callable[[dict[str, Any]], Answer]

CLUSTER_ARN = f"arn:aws:rds:{PRIMARY}:123456789012:cluster:pilotlight-prod-{PRIMARY}"
SECRET_ARN = f"arn:aws:secretsmanager:{PRIMARY}:123456789012:secret:pilotlight/prod/database/master-AbCdEf"
BODY = {"payment_id": "pay-data-api", "amount": 7, "currency": "USD"}
CREATED_AT = "2026-01-02T03:04:05.678Z"


def statement(sql: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    """The one request shape: this region's cluster and secret, the database, no transaction."""
    return {
        "resourceArn": CLUSTER_ARN,
        "secretArn": SECRET_ARN,
        "database": "app",
        "sql": sql,
        "parameters": params,
    }


def insert_params(payment_id: str = "pay-data-api") -> list[dict[str, Any]]:
    return [
        {"name": "payment_id", "value": {"stringValue": payment_id}},
        {"name": "amount", "value": {"stringValue": "7.00"}},
        {"name": "currency", "value": {"stringValue": "USD"}},
        {"name": "customer_id", "value": {"isNull": True}},
        {"name": "region", "value": {"stringValue": PRIMARY}},
        {"name": "created_at", "value": {"stringValue": CREATED_AT}},
    ]


def row(outcome: str | None, payment_id: str = "pay-data-api") -> list[dict[str, Any]]:
    fields = [
        {"stringValue": payment_id},
        {"stringValue": "7.00"},
        {"stringValue": "USD"},
        {"isNull": True},
        {"stringValue": PRIMARY},
        {"stringValue": CREATED_AT},
    ]
    return fields if outcome is None else [{"stringValue": outcome}, *fields]


@pytest.fixture
def data_api(
    clients: ClientCache, function_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stubber]:
    """The function in aurora-global mode, its ``rds-data`` client stubbed; every stubbed call must be made.

    One attempt per call: retries are botocore's business, the meaning of each answer is ours.
    """
    function_env(
        DB_MODE="aurora-global",
        GLOBAL_CLUSTER_ID="pilotlight-prod-global",
        DB_CLUSTER_ARN=CLUSTER_ARN,
        DB_SECRET_ARN=SECRET_ARN,
        DB_NAME="app",
    )
    rds_data = boto3.client("rds-data", region_name=PRIMARY, config=Config(retries={"max_attempts": 1}))
    real = clients.client

    def client(service: str, region: str, **kwargs: Any) -> Any:
        if service == "rds-data":
            assert region == PRIMARY, f"rds-data client made for {region}: the ledger must stay in-region"
            return rds_data
        return real(service, region, **kwargs)

    monkeypatch.setattr(clients, "client", client)
    # Every payment is stamped with the same time, so the stubbed request can be exact.
    monkeypatch.setattr("lambdas.api.handler.datetime", _FixedClock)
    with Stubber(rds_data) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


class _FixedClock:
    @staticmethod
    def now(tz: Any) -> Any:
        from datetime import datetime

        return datetime.fromisoformat(CREATED_AT.replace("Z", "+00:00"))


def dynamodb_item(payment_id: str, region: str = PRIMARY) -> dict[str, Any] | None:
    table = boto3.resource("dynamodb", region_name=region).Table(TABLE)
    return table.get_item(Key={"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}).get("Item")


def test_post_creates_the_table_once_then_inserts_with_string_parameters_and_no_transaction(
    invoke: Invoke, data_api: Stubber
) -> None:
    """The Data API path's requests: the DDL once per container, then one autocommit INSERT."""
    data_api.add_response("execute_statement", {"records": []}, statement(LEDGER_DDL, []))
    data_api.add_response(
        "execute_statement", {"records": [row("inserted")]}, statement(INSERT_SQL, insert_params())
    )
    data_api.add_response(
        "execute_statement",
        {"records": [row("existing")]},
        statement(INSERT_SQL, insert_params()),
    )
    data_api.add_response(
        "execute_statement",
        {"records": [row(None)]},
        statement(SELECT_SQL, [{"name": "payment_id", "value": {"stringValue": "pay-data-api"}}]),
    )

    first, again, read = invoke(post_event(BODY)), invoke(post_event(BODY)), invoke(get_event("pay-data-api"))

    assert (first.status, again.status, read.status) == (201, 200, 200), (first.body, again.body)
    assert read.body["payment"] == first.body["payment"] == again.body["payment"]
    assert first.body["payment"]["amount"] == 7
    assert dynamodb_item("pay-data-api") is not None


# Error answers as the ExecuteStatement reference lists them (code, HTTP status), and what the
# function must answer. A secondary cluster has no writer until promoted, and "read and write
# queries sent to the secondary cluster fail while it lacks a writer instance"
# (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html).
REFUSALS = [
    pytest.param(
        "DatabaseNotFoundException",
        404,
        "The DB cluster doesn't have a DB instance.",
        503,
        "not_writer",
        id="headless-secondary",
    ),
    pytest.param("DatabaseUnavailableException", 504, "", 503, "not_writer", id="no-writer-instance"),
    pytest.param(
        "DatabaseErrorException",
        400,
        "ERROR: cannot execute INSERT in a read-only transaction",
        503,
        "not_writer",
        id="read-only",
    ),
    pytest.param("StatementTimeoutException", 400, "timed out", 503, "outcome_unknown", id="timeout"),
    pytest.param("InternalServerErrorException", 500, "", 503, "outcome_unknown", id="internal"),
    pytest.param("ServiceUnavailableError", 503, "", 503, "database_unreachable", id="service-unavailable"),
    pytest.param("ThrottlingException", 400, "Rate exceeded", 503, "database_unreachable", id="throttled"),
    pytest.param("ForbiddenException", 403, "", 500, None, id="forbidden"),
    pytest.param("HttpEndpointNotEnabledException", 400, "", 500, None, id="endpoint-off"),
    pytest.param(
        "DatabaseErrorException", 400, 'ERROR: syntax error at or near "INSRT"', 500, None, id="sql-bug"
    ),
]


@pytest.mark.parametrize(("code", "http", "message", "status", "reason"), REFUSALS)
def test_data_api_errors_answer_by_meaning_and_nothing_else_is_written(
    invoke: Invoke,
    data_api: Stubber,
    caplog: pytest.LogCaptureFixture,
    code: str,
    http: int,
    message: str,
    status: int,
    reason: str | None,
) -> None:
    """A refusal (not the writer), a lost answer or an unavailable service is a 503 naming why; an
    error a retry cannot cure is a 500. Either way nothing reaches DynamoDB and no traceback the caller."""
    data_api.add_client_error(
        "execute_statement",
        service_error_code=code,
        service_message=message,
        http_status_code=http,
        expected_params=statement(LEDGER_DDL, []),
    )

    answer = invoke(post_event(BODY))

    assert answer.status == status, answer.body
    assert answer.body.get("reason") == reason
    if status == 503:
        assert answer.headers["Retry-After"] == "1"
    assert "Traceback" not in json.dumps(answer.body)
    assert dynamodb_item("pay-data-api") is None
    assert any(code in json.dumps(line) for line in api_log_lines(caplog.records))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DB_CLUSTER_ARN", CLUSTER_ARN.replace(PRIMARY, DR)),
        ("DB_SECRET_ARN", SECRET_ARN.replace(PRIMARY, DR)),
        ("DB_HOST", f"pilotlight-prod.abc123xyz.{DR}.rds.amazonaws.com"),
    ],
)
def test_a_database_in_another_region_is_a_configuration_error_and_no_call(
    invoke: Invoke,
    data_api: Stubber,
    function_env: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
) -> None:
    """Never a write across regions: a cluster, secret or host of the other region is refused before
    any call (500, the log names the variable)."""
    env = {
        "DB_MODE": "aurora-global",
        "GLOBAL_CLUSTER_ID": "pilotlight-prod-global",
        "DB_CLUSTER_ARN": CLUSTER_ARN,
        "DB_SECRET_ARN": SECRET_ARN,
        "DB_NAME": "app",
    }
    function_env(**{**env, variable: value})

    answer = invoke(post_event(BODY))

    assert answer.status == 500
    errors = [
        line["error"] for line in api_log_lines(caplog.records) if line["message"] == "configuration error"
    ]
    assert errors and errors[0].startswith(f"{variable} is in region {DR}"), errors


def test_the_emulator_seam_round_trips_parameters_and_records() -> None:
    """What an emulated Data API needs: the request's parameters as pg8000 keyword arguments, and
    pg8000's rows as the response's records, each the inverse of what the function does."""
    params = {"payment_id": "p", "amount": "1.00", "customer_id": None}
    assert from_data_api_parameters(to_data_api_parameters(params)) == params
    rows = [["inserted", "p", "1.00", None, True, 3]]
    records = to_data_api_records(rows)
    assert records[0][3] == {"isNull": True} and records[0][4] == {"booleanValue": True}
    assert from_data_api_records(records) == rows


DRIVER_ENV = {"DB_SECRET_ARN": SECRET_ARN, "DB_NAME": "app", "DB_HOST": "127.0.0.1"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {**DRIVER_ENV, "DB_SSLMODE": "prefer"},
            "DB_SSLMODE is 'prefer'; allowed: require, verify-full, disable",
        ),
        ({**DRIVER_ENV, "DB_PORT": "70000"}, "DB_PORT is '70000'; allowed: a TCP port, 1 to 65535"),
        (
            {**DRIVER_ENV, "DB_SSLMODE": "verify-full"},
            "DB_SSLROOTCERT is not set; DB_SSLMODE verify-full needs it (a PEM file of CA certificates)",
        ),
        ({"DB_SECRET_ARN": SECRET_ARN, "DB_HOST": "127.0.0.1"}, "environment variable DB_NAME is not set"),
        ({"DB_SECRET_ARN": SECRET_ARN, "DB_NAME": "app"}, "neither DB_HOST (driver) nor DB_CLUSTER_ARN"),
    ],
    ids=["sslmode", "port", "verify-full-without-ca", "no-name", "no-target"],
)
def test_a_bad_ledger_variable_is_one_error_naming_it_and_the_allowed_values(
    env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        ledger_from_env(env, PRIMARY)
    assert expected in str(err.value)


def test_no_database_secret_means_no_ledger_and_the_driver_defaults_to_tls() -> None:
    """A stack without a database leaves the ledger out; the driver path encrypts unless told not to
    (the program's parameter groups set rds.force_ssl, so the server refuses plain connections)."""
    assert ledger_from_env({"DB_CLUSTER_ARN": CLUSTER_ARN}, PRIMARY) is None
    target = ledger_from_env(DRIVER_ENV, PRIMARY)
    assert isinstance(target, DriverLedger) and (target.port, target.sslmode) == (5432, "require")
    context = ssl_context(target)
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_NONE
    assert ssl_context(replace(target, sslmode="disable")) is False


def test_sslmode_require_does_not_read_the_ca_store_on_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """``require`` verifies nothing (libpq's meaning), so its context must not load the system CA
    certificates: the driver makes one per statement, and loading the store cost ~0.1 s a request
    in the local drill. ``verify-full`` still checks the server against DB_CA_BUNDLE."""
    target = ledger_from_env(DRIVER_ENV, PRIMARY)
    assert isinstance(target, DriverLedger)

    def loaded(*_: object, **__: object) -> None:
        raise AssertionError("sslmode=require loaded the CA store")

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", loaded)
    monkeypatch.setattr(ssl.SSLContext, "set_default_verify_paths", loaded)
    context = ssl_context(target)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_read_before_the_table_exists_is_a_404(invoke: Invoke, data_api: Stubber) -> None:
    """GET on a new database: PostgreSQL's undefined_table (42P01) comes back as the Data API's
    DatabaseErrorException; the payment is simply not there. A read creates nothing."""
    data_api.add_client_error(
        "execute_statement",
        service_error_code="DatabaseErrorException",
        service_message='ERROR: relation "ledger" does not exist\n  Position: 129; SQLState: 42P01',
        http_status_code=400,
        expected_params=statement(
            SELECT_SQL, [{"name": "payment_id", "value": {"stringValue": "pay-data-api"}}]
        ),
    )

    answer = invoke(get_event("pay-data-api"))

    assert answer.status == 404, answer.body
