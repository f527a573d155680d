"""The payments ledger in the relational database: one table, one idempotent insert, one read.

``POST /payments`` records the payment here first, in this region's database and nowhere else;
DynamoDB and the S3 receipt follow only once the ledger has it. A database that is not the writer
refuses the insert, and the function answers 503 without writing anything.

Every statement goes through one seam, :data:`Execute`: a function that runs one SQL statement with
named parameters (``:name``) in autocommit and returns its rows. Two implementations:

- :func:`data_api_executor`: the RDS Data API (``rds-data`` ``ExecuteStatement``), for the Aurora
  global database. AWS documents the Data API for Aurora PostgreSQL provisioned clusters from 16.1
  (13.11, 14.8, 15.3, 17.4) in the program's regions
  (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.Aurora_Fea_Regions_DB-eng.Feature.Data_API.html),
  not on T instance classes, and on a global database's secondary cluster only once it is promoted
  and has a writer instance: until then "read and write queries sent to the secondary cluster fail"
  (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html).
  That failure is the refusal a secondary region needs.
- :func:`driver_executor`: the pure-Python driver ``pg8000`` from a function attached to the VPC,
  for RDS PostgreSQL (a read replica refuses writes with SQLSTATE 25006, read_only_sql_transaction).

The SQL is written once for both: named parameters are the syntax of both the Data API and
``pg8000.native``; every value is sent as a string (or NULL) and cast in SQL, and every column comes
back as text, so neither path depends on the other's type mapping. :data:`LEDGER_DDL` is the one
definition of the table: ``automation/postgres/ledger.py`` (the test servers) imports it.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lambdas.api.config import ConfigError, DataApiLedger, DriverLedger, LedgerTarget
from lambdas.api.responses import aws_error_code, is_throttling

LEDGER_DDL = """\
CREATE TABLE IF NOT EXISTS ledger (
    payment_id  text PRIMARY KEY,
    amount      numeric(14, 2) NOT NULL,
    currency    text NOT NULL,
    customer_id text,
    region      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
)"""
"""The ledger table. ``amount`` holds :data:`lambdas.api.payments.MAX_AMOUNT` exactly; ``region`` is
the region whose function wrote the row."""

MARKER_DDL = """\
CREATE TABLE IF NOT EXISTS ledger_marker (
    marker       text NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
)"""
"""The runbook's markers, apart from the payments: a row per marker the marker function committed."""

MARK_SQL = "INSERT INTO ledger_marker (marker) VALUES (:marker) RETURNING CAST(committed_at AS text)"

# Columns as the API shows them, all as text: created_at in the API's own format (UTC, milliseconds, Z).
_COLUMNS = (
    "payment_id, amount::text, currency, customer_id, region, "
    """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
)

INSERT_SQL = f"""\
WITH new AS (
    INSERT INTO ledger (payment_id, amount, currency, customer_id, region, created_at)
    VALUES (:payment_id, CAST(:amount AS numeric), :currency, :customer_id, :region,
            CAST(:created_at AS timestamptz))
    ON CONFLICT (payment_id) DO NOTHING
    RETURNING *
)
SELECT 'inserted', {_COLUMNS} FROM new
UNION ALL
SELECT 'existing', {_COLUMNS} FROM ledger
WHERE payment_id = :payment_id AND NOT EXISTS (SELECT 1 FROM new)"""
"""Insert a payment once; one row back: ``inserted`` or the ``existing`` row for that id.

``ON CONFLICT DO NOTHING`` makes a retry write nothing
(https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT). No row comes back when
a concurrent insert of the same id committed after this statement's snapshot was taken: the insert
waited for it and did nothing, and the SELECT still sees the snapshot from before it. In READ
COMMITTED "each command sees a snapshot as of the instant the command began"
(https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED), so
:meth:`Ledger.record` reads the row again in a statement of its own."""

SELECT_SQL = f"SELECT {_COLUMNS} FROM ledger WHERE payment_id = :payment_id"

WITHDRAW_SQL = """\
DELETE FROM ledger
WHERE payment_id = :payment_id AND amount = CAST(:amount AS numeric) AND currency = :currency
  AND customer_id IS NOT DISTINCT FROM :customer_id AND region = :region
  AND created_at = CAST(:created_at AS timestamptz)
RETURNING payment_id"""
"""Delete exactly one request's row (every column matches), never another request's."""

SqlValue = str | None
Row = list[Any]
Execute = Callable[[str, Mapping[str, SqlValue]], list[Row]]
"""The seam every statement goes through: run ``sql`` with its named parameters in this region's
database, autocommit, and return the rows (each a list of column values: str, bool, int or None).

Raises :class:`LedgerUnavailable` (by meaning) when the database cannot take the statement."""

# SQLSTATEs, https://www.postgresql.org/docs/current/errcodes-appendix.html
READ_ONLY_SQL_TRANSACTION = "25006"
UNDEFINED_TABLE = "42P01"
CANNOT_CONNECT_NOW = "57P03"
INVALID_AUTHORIZATION = "28000"
"""invalid_authorization_specification: what ``pg_hba.conf`` ``reject`` answers (a fence); a wrong
password is 28P01, invalid_password."""
TOO_MANY_CONNECTIONS = "53300"
INSUFFICIENT_RESOURCES = "53"
"""Class 53, insufficient resources: at connect time the server refused the session (53300: the
instance's max_connections or the role's CONNECTION LIMIT is reached), so no statement ran."""

CONNECT_TIMEOUT_SECONDS = 5.0
"""pg8000 socket timeout: API Gateway gives up after 29 s, and a dark database must answer 503 first."""


# --------------------------------------------------------------------------------------------------
# errors


class LedgerUnavailable(Exception):
    """The ledger could not take the statement; the API answers 503 and the client may retry.

    ``reason`` is a stable word for the caller and the logs; ``message`` says why, for people;
    ``detail`` (logged, never shown) is what the database or AWS said.
    """

    reason = "ledger_unavailable"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotWriter(LedgerUnavailable):
    """This region's database is not the writer (a replica, a secondary, or a fenced writer)."""

    reason = "not_writer"


class DatabaseUnreachable(LedgerUnavailable):
    """Nothing answered, or the database refused the connection: the statement was not run."""

    reason = "database_unreachable"


class DatabaseBusy(DatabaseUnreachable):
    """The database is up and turned the session away for load (too many connections; the Data API
    throttling): nothing ran. To the API's callers and the marker function it is ``database_unreachable``
    as before; the health check tells it apart (a busy writer is still the writer: ``lambdas/api/health.py``)."""


class SessionRefused(DatabaseUnreachable):
    """The database rejected the function's session by rule (SQLSTATE 28000, ``pg_hba.conf rejects
    connection``: a fence), as opposed to a password it no longer takes (28P01, a rotation). To the API's
    callers and the marker it is ``database_unreachable`` as before; the health check reads it as the
    database's own refusal (``lambdas/api/health_rules.py``)."""


class ConnectionLost(LedgerUnavailable):
    """The statement was sent and no answer came: whether it committed is unknown.

    Safe to retry with the same payment id: the insert is idempotent.
    """

    reason = "outcome_unknown"


# --------------------------------------------------------------------------------------------------
# the ledger


@dataclass(frozen=True)
class LedgerEntry:
    """The ledger's row for a payment after :meth:`Ledger.record`.

    ``inserted`` is False when the row was already there: ``payment`` is then the stored one, which
    may differ from the request (the caller decides whether that is a retry or a conflict).
    """

    inserted: bool
    payment: dict[str, Any]


class TableMissing(Exception):
    """The ledger table does not exist in this database yet: no payment was ever written to it."""


class LedgerConflict(Exception):
    """A concurrent insert of the same payment id committed after this one's snapshot: retry."""


def _payment(row: Sequence[Any]) -> dict[str, Any]:
    payment_id, amount, currency, customer_id, region, created_at = row
    payment: dict[str, Any] = {
        "payment_id": payment_id,
        "amount": Decimal(amount),
        "currency": currency,
        "created_at": created_at,
        "region": region,
    }
    if customer_id is not None:
        payment["customer_id"] = customer_id
    return payment


class Ledger:
    """The ledger over an :data:`Execute`; the table is created on first use in a container."""

    def __init__(self, execute: Execute, memo: dict[str, Any] | None = None, name: str = "") -> None:
        self._execute = execute
        self._memo = memo if memo is not None else {}
        self._ready_key = f"ledger-ready:{name}"

    def _ensure_table(self) -> None:
        # Once per container: a statement more per cold start. On a replica it is refused as the
        # insert would be, so nothing is marked ready there.
        if not self._memo.get(self._ready_key):
            self._execute(LEDGER_DDL, {})
            self._memo[self._ready_key] = True

    def record(
        self,
        *,
        payment_id: str,
        amount: Decimal,
        currency: str,
        customer_id: str | None,
        region: str,
        created_at: str,
    ) -> LedgerEntry:
        """Insert the payment once; the stored row either way. Raises LedgerConflict, LedgerUnavailable."""
        self._ensure_table()
        rows = self._execute(
            INSERT_SQL,
            {
                "payment_id": payment_id,
                "amount": f"{amount:.2f}",
                "currency": currency,
                "customer_id": customer_id,
                "region": region,
                "created_at": created_at,
            },
        )
        if len(rows) == 1:
            outcome, *columns = rows[0]
            return LedgerEntry(inserted=outcome == "inserted", payment=_payment(columns))
        # A concurrent insert of the same id committed while this one waited: a new statement has
        # a new snapshot, which sees it.
        again = self._execute(SELECT_SQL, {"payment_id": payment_id})
        if not again:
            raise LedgerConflict(payment_id)  # committed and deleted again meanwhile
        return LedgerEntry(inserted=False, payment=_payment(again[0]))

    def withdraw(self, payment: Mapping[str, Any]) -> bool:
        """Delete the row :meth:`record` inserted for ``payment`` (all its columns); whether it was there.

        For a payment refused after its row was committed (``lambdas/api/payments.py``)."""
        rows = self._execute(
            WITHDRAW_SQL,
            {
                "payment_id": str(payment["payment_id"]),
                "amount": f"{Decimal(payment['amount']):.2f}",
                "currency": str(payment["currency"]),
                "customer_id": payment.get("customer_id"),
                "region": str(payment["region"]),
                "created_at": str(payment["created_at"]),
            },
        )
        return bool(rows)

    def mark(self, marker: str) -> str:
        """Commit one row in :data:`MARKER_DDL`'s table (not a payment); its commit instant, as text.

        The runbook's PostgreSQL zero-lag proof needs a commit on a drained source
        (``lambdas/failover/lossless.py``, ``replay_evidence``). Raises LedgerUnavailable (on a replica:
        NotWriter, the server's own refusal)."""
        self._execute(MARKER_DDL, {})
        rows = self._execute(MARK_SQL, {"marker": marker})
        return str(rows[0][0]) if rows else ""

    def read(self, payment_id: str) -> dict[str, Any] | None:
        """The stored payment, or None (also when no payment was ever written: no table yet).

        A read creates nothing, so it also works on a replica (a hot standby answers reads).
        """
        try:
            rows = self._execute(SELECT_SQL, {"payment_id": payment_id})
        except TableMissing:
            return None
        return _payment(rows[0]) if rows else None


# --------------------------------------------------------------------------------------------------
# the RDS Data API


def to_data_api_parameters(params: Mapping[str, SqlValue]) -> list[dict[str, Any]]:
    """Named parameters as ExecuteStatement's ``parameters``: strings, or ``isNull`` for None.

    No ``typeHint``: the SQL casts what is not text
    (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_SqlParameter.html).
    """
    return [
        {"name": name, "value": {"isNull": True} if value is None else {"stringValue": value}}
        for name, value in params.items()
    ]


def from_data_api_parameters(parameters: Sequence[Mapping[str, Any]]) -> dict[str, SqlValue]:
    """The inverse of :func:`to_data_api_parameters`: what an emulated Data API runs the SQL with."""
    out: dict[str, SqlValue] = {}
    for parameter in parameters:
        value = parameter.get("value", {})
        out[str(parameter["name"])] = None if value.get("isNull") else str(value["stringValue"])
    return out


def to_data_api_records(rows: Sequence[Sequence[Any]]) -> list[list[dict[str, Any]]]:
    """Rows as ExecuteStatement's ``records`` (``Field`` values), for an emulated Data API.

    https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_Field.html
    """

    def field(value: Any) -> dict[str, Any]:
        if value is None:
            return {"isNull": True}
        if isinstance(value, bool):
            return {"booleanValue": value}
        if isinstance(value, int):
            return {"longValue": value}
        if isinstance(value, float):
            return {"doubleValue": value}
        return {"stringValue": str(value)}

    return [[field(value) for value in row] for row in rows]


def from_data_api_records(records: Sequence[Sequence[Mapping[str, Any]]]) -> list[Row]:
    """ExecuteStatement's ``records`` as rows of plain values."""

    def value(field: Mapping[str, Any]) -> Any:
        if field.get("isNull"):
            return None
        for key in ("stringValue", "booleanValue", "longValue", "doubleValue"):
            if key in field:
                return field[key]
        raise ValueError(f"unsupported Data API field {sorted(field)}")

    return [[value(field) for field in record] for record in records]


# Data API error codes (the ExecuteStatement reference,
# https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html#API_ExecuteStatement_Errors):
# - DatabaseNotFoundException: "The DB cluster doesn't have a DB instance": a headless secondary.
# - DatabaseUnavailableException: "The writer instance in the DB cluster isn't available": a
#   secondary, which has no writer until it is promoted (data-api.limitations.html), or a writer
#   restarting.
# - DatabaseErrorException: the SQL failed in the database; a read-only one means no writer here.
# - StatementTimeoutException: the statement may or may not have run.
_NO_INSTANCE = "DatabaseNotFoundException"
_NO_WRITER = "DatabaseUnavailableException"
_SQL_ERROR = "DatabaseErrorException"
_UNKNOWN_OUTCOME = frozenset({"StatementTimeoutException", "InternalServerErrorException"})
_UNAVAILABLE = frozenset({"ServiceUnavailableError", "SecretsErrorException"})


def data_api_error(error: ClientError, cluster_arn: str) -> LedgerUnavailable | None:
    """The meaning of a Data API error, or None when it is not one a retry may cure (a 500)."""
    code = aws_error_code(error)
    detail = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
    if code == _NO_INSTANCE:
        return NotWriter(
            "this region's Aurora cluster has no DB instance (a headless secondary): it is not the writer",
            detail,
        )
    if code == _NO_WRITER:
        return NotWriter("this region's Aurora cluster has no writer instance available", detail)
    if code == _SQL_ERROR and ("read-only" in detail or READ_ONLY_SQL_TRANSACTION in detail):
        return NotWriter("this region's database is read-only: it is not the writer", detail)
    if code in _UNKNOWN_OUTCOME:
        return ConnectionLost(
            "the database did not confirm the statement; retry with the same payment_id", detail
        )
    if is_throttling(code):
        return DatabaseBusy(f"the Data API is throttling requests for {cluster_arn}", detail)
    if code in _UNAVAILABLE:
        return DatabaseUnreachable(f"the Data API could not reach {cluster_arn}", detail)
    return None


def data_api_executor(client: BaseClient, target: DataApiLedger) -> Execute:
    """The seam over the Data API: ``client`` must be an ``rds-data`` client of the cluster's region."""

    def execute(sql: str, params: Mapping[str, SqlValue]) -> list[Row]:
        try:
            response = client.execute_statement(
                resourceArn=target.cluster_arn,
                secretArn=target.secret_arn,
                database=target.database,
                sql=sql,
                parameters=to_data_api_parameters(params),
            )
        except ClientError as err:
            message = str(err.response.get("Error", {}).get("Message", ""))
            if aws_error_code(err) == _SQL_ERROR and (
                UNDEFINED_TABLE in message or 'relation "ledger" does not exist' in message
            ):
                raise TableMissing(message) from err
            meaning = data_api_error(err, target.cluster_arn)
            if meaning is None:
                raise
            raise meaning from err
        except (ConnectTimeoutError, EndpointConnectionError) as err:
            raise DatabaseUnreachable("the Data API endpoint did not answer", str(err)) from err
        except ReadTimeoutError as err:
            raise ConnectionLost(
                "the Data API did not answer in time; retry with the same payment_id", str(err)
            ) from err
        return from_data_api_records(response.get("records", []))

    return execute


# --------------------------------------------------------------------------------------------------
# the driver (pg8000)


class SecretCredentials:
    """The database user and password from the Secrets Manager secret, read once per container.

    The secret is the one the program creates (``components/data.py``, ``master_credentials``):
    JSON with ``username`` and ``password`` (and ``engine``, ``dbname``, ``port``). :meth:`forget`
    drops the cached value, so a password rotated meanwhile is read again on the next request.
    """

    def __init__(self, secretsmanager: BaseClient, secret_arn: str, memo: dict[str, Any]) -> None:
        self._client = secretsmanager
        self._arn = secret_arn
        self._memo = memo
        self._key = f"db-credentials:{secret_arn}"

    def __call__(self) -> tuple[str, str]:
        """``(username, password)``; raises ConfigError naming a missing field."""
        cached = self._memo.get(self._key)
        if cached is not None:
            return cached
        text = self._client.get_secret_value(SecretId=self._arn).get("SecretString") or ""
        try:
            secret = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"secret {self._arn} is not JSON") from exc
        if not isinstance(secret, dict):
            raise ConfigError(f"secret {self._arn} is not a JSON object")
        for field in ("username", "password"):
            if not isinstance(secret.get(field), str) or not secret[field]:
                raise ConfigError(f"secret {self._arn} has no string field {field!r}")
        credentials = (str(secret["username"]), str(secret["password"]))
        self._memo[self._key] = credentials
        return credentials

    def forget(self) -> None:
        """Drop the cached credentials (the database refused them)."""
        self._memo.pop(self._key, None)


def ssl_context(target: DriverLedger) -> ssl.SSLContext | bool:
    """The TLS context for ``DB_SSLMODE`` (False: no TLS).

    ``require`` encrypts without checking the server's certificate (libpq's meaning); ``verify-full``
    checks the chain against ``DB_SSLROOTCERT`` only (not the system store) and the host name.
    """
    if target.sslmode == "disable":
        return False
    if target.sslmode == "verify-full":
        verified = ssl.create_default_context(cafile=target.ca_bundle)
        verified.minimum_version = ssl.TLSVersion.TLSv1_2
        return verified
    # Not create_default_context(): it loads the system CA store, which ``require`` never consults,
    # and the driver makes a context per statement.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _sqlstate(error: BaseException) -> str:
    # pg8000's DatabaseError carries the server's error fields as its first argument (C: SQLSTATE).
    fields = error.args[0] if error.args else None
    return str(fields.get("C", "")) if isinstance(fields, dict) else ""


def _server_message(error: BaseException) -> str:
    fields = error.args[0] if error.args else None
    if isinstance(fields, dict) and "M" in fields:
        return f"{fields.get('C', '')}: {fields['M']}"
    return str(error)


def driver_executor(
    target: DriverLedger,
    credentials: SecretCredentials,
    timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> Execute:
    """The seam over ``pg8000``: one connection per statement, to this region's endpoint only.

    A connection per statement costs a handshake, and buys that a fence, a promotion or a dead
    server is seen by the very next request, with no pooled connection to a former writer.
    """
    # Imported here: only the driver path needs the driver (it is packaged with the function).
    import pg8000.exceptions
    import pg8000.native

    where = f"{target.host}:{target.port}"

    def execute(sql: str, params: Mapping[str, SqlValue]) -> list[Row]:
        user, password = credentials()
        try:
            con = pg8000.native.Connection(
                user,
                host=target.host,
                port=target.port,
                database=target.database,
                password=password,
                ssl_context=ssl_context(target),
                timeout=timeout,
                application_name="pilotlight-api",
            )
        except (pg8000.exceptions.InterfaceError, OSError) as err:
            raise DatabaseUnreachable(f"the database at {where} did not answer", str(err)) from err
        except pg8000.exceptions.DatabaseError as err:
            code = _sqlstate(err)
            if code == CANNOT_CONNECT_NOW:
                raise DatabaseUnreachable(f"the database at {where} is starting or stopping") from err
            if code.startswith(INSUFFICIENT_RESOURCES):
                # Every concurrent execution environment opens its own connection: at peak the
                # server refuses new sessions until others close. Nothing ran; a retry is safe.
                raise DatabaseBusy(
                    f"the database at {where} refused a new connection (too many connections)",
                    _server_message(err),
                ) from err
            if code.startswith("28"):  # invalid authorization: a rotated password, or a fence
                credentials.forget()
                refusal = SessionRefused if code == INVALID_AUTHORIZATION else DatabaseUnreachable
                raise refusal(
                    f"the database at {where} refused the connection", _server_message(err)
                ) from err
            raise
        try:
            return con.run(sql, **params) or []
        except pg8000.exceptions.DatabaseError as err:
            code = _sqlstate(err)
            if code == UNDEFINED_TABLE:
                raise TableMissing(_server_message(err)) from err
            if code == READ_ONLY_SQL_TRANSACTION:
                raise NotWriter(
                    "this region's database is read-only (a replica, or a fenced writer): it is not the writer",
                    _server_message(err),
                ) from err
            if code.startswith(("57", "08")):  # operator intervention, connection exception
                raise ConnectionLost(
                    "the database ended the session during the statement; retry with the same payment_id",
                    _server_message(err),
                ) from err
            raise
        except (pg8000.exceptions.InterfaceError, OSError) as err:
            raise ConnectionLost(
                "the connection to the database broke during the statement; retry with the same payment_id",
                str(err),
            ) from err
        finally:
            # The server may already have dropped the connection.
            with contextlib.suppress(pg8000.exceptions.InterfaceError, OSError):
                con.close()

    return execute


# --------------------------------------------------------------------------------------------------
# wiring


def executor_for(
    target: LedgerTarget,
    client: Callable[[str], BaseClient],
    memo: dict[str, Any],
    timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> Execute:
    """The :data:`Execute` seam for ``target``; ``client(service)`` gives a client in the function's own
    region. ``timeout`` bounds the driver's socket (the Data API client's own configuration bounds it)."""
    if isinstance(target, DataApiLedger):
        return data_api_executor(client("rds-data"), target)
    credentials = SecretCredentials(client("secretsmanager"), target.secret_arn, memo)
    return driver_executor(target, credentials, timeout)


def open_ledger(target: LedgerTarget, client: Callable[[str], BaseClient], memo: dict[str, Any]) -> Ledger:
    """The ledger for ``target``; ``client(service)`` gives a client in the function's own region."""
    name = target.cluster_arn if isinstance(target, DataApiLedger) else f"{target.host}:{target.port}"
    return Ledger(executor_for(target, client, memo), memo, name=name)
