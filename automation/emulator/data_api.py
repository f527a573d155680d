"""The RDS Data API (``rds-data`` ExecuteStatement) against the real server behind an Aurora cluster.

moto's own ``rds-data`` executes nothing (it answers queued canned results); while an emulator with
real servers is installed (``Emulator(postgres=...)``), ExecuteStatement for a cluster ARN runs the
statement on that cluster's PostgreSQL server, as the user the request's Secrets Manager secret
names, and answers in the Data API's shape (``records`` of ``Field`` values, ``numberOfRecordsUpdated``,
``columnMetadata`` when ``includeResultMetadata``;
https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html).

It fails the way the Data API documents:

* "You can only execute Data API queries on writer instances in a DB cluster ... a secondary cluster
  doesn't have a writer instance until it's promoted to be the primary ... read and write queries
  sent to the secondary cluster fail while it lacks a writer instance"
  (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html): a
  secondary, a cluster whose global database is failing or switching over, or whose writer's
  server does not answer, gets ``DatabaseUnavailableException`` ("The writer instance in the DB
  cluster isn't available", HTTP 504); a cluster with no DB instance gets
  ``DatabaseNotFoundException`` ("The DB cluster doesn't have a DB instance", HTTP 404);
* a statement the database rejects (a read-only transaction, a constraint) gets
  ``DatabaseErrorException`` (HTTP 400) with the server's message;
* a secret that cannot be read gets ``SecretsErrorException`` (HTTP 400).

The error codes and HTTP statuses are those of the ``rds-data`` service model botocore ships.
Transactions (``BeginTransaction`` / ``transactionId``) are not emulated: a request that names one is
refused with ``BadRequestException`` rather than run outside its transaction.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pg8000.exceptions
from moto.core.exceptions import JsonRESTError
from moto.rds.models import DBCluster

from automation.postgres import DATABASE, PostgresError, sql
from lambdas.api.ledger import to_data_api_records

if TYPE_CHECKING:
    from automation.emulator.aws import Emulator


class DataApiError(JsonRESTError):
    """An ``rds-data`` error, with the code and HTTP status the service model gives it."""

    def __init__(self, error_type: str, message: str, status: int) -> None:
        super().__init__(error_type, message)
        self.code = status


def _value(field: dict[str, Any]) -> Any:
    """A ``Field`` / ``SqlParameter.value`` as a Python value."""
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        if key in field:
            return field[key]
    raise DataApiError("BadRequestException", f"unsupported parameter value {sorted(field)}", 400)


def _secret_user(region: str, secret_arn: str | None) -> str:
    from moto.secretsmanager.models import secretsmanager_backends

    from automation.emulator.aws import ACCOUNT

    if not secret_arn:
        raise DataApiError("BadRequestException", "secretArn is required", 400)
    try:
        secret = secretsmanager_backends[ACCOUNT][region].get_secret_value(secret_arn, "", "")
        user = json.loads(secret["SecretString"])["username"]
    except Exception as exc:  # moto raises its own not-found errors; a garbled secret is as bad
        raise DataApiError("SecretsErrorException", f"cannot read secret {secret_arn}: {exc}", 400) from exc
    return str(user)


def execute_statement(emulator: Emulator, region: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one ExecuteStatement request on the real server behind its cluster; the response body."""
    from automation.emulator.aws import _find_database, _global_of

    arn = str(params.get("resourceArn") or "")
    pg = emulator.pg
    cluster = _find_database(arn)
    server = pg.server(arn) if pg is not None else None
    if not isinstance(cluster, DBCluster) or server is None:
        raise DataApiError("BadRequestException", f"no Aurora DB cluster {arn}", 400)
    if params.get("transactionId"):
        raise DataApiError("BadRequestException", "transactions are not emulated", 400)
    if not cluster._members:
        raise DataApiError("DatabaseNotFoundException", "The DB cluster doesn't have a DB instance.", 404)
    group = _global_of(cluster)
    moving = group is not None and getattr(group, "status", "available") != "available"
    if not cluster.is_writer or moving or not server.running:
        raise DataApiError(
            "DatabaseUnavailableException", "The writer instance in the DB cluster isn't available.", 504
        )
    user = _secret_user(region, params.get("secretArn"))
    values = {str(p["name"]): _value(p.get("value") or {}) for p in params.get("parameters") or []}
    try:
        con = sql.connect(server, user=user, database=str(params.get("database") or DATABASE))
    except PostgresError as exc:  # unreachable, or fenced (pg_hba rejects the application)
        raise DataApiError(
            "DatabaseUnavailableException",
            f"The writer instance in the DB cluster isn't available: {exc}",
            504,
        ) from exc
    try:
        rows = con.run(str(params["sql"]), **values) or []
        columns = list(con.columns or [])
        verb = str(params["sql"]).lstrip().split(None, 1)[0].upper() if str(params["sql"]).strip() else ""
        dml = verb in ("INSERT", "UPDATE", "DELETE", "MERGE")
        updated = max(0, int(con.row_count or 0)) if dml else 0
    except pg8000.exceptions.DatabaseError as exc:
        raise DataApiError("DatabaseErrorException", sql.message(exc), 400) from exc
    except (pg8000.exceptions.InterfaceError, OSError) as exc:
        raise DataApiError("DatabaseUnavailableException", f"connection lost: {exc}", 504) from exc
    finally:
        sql.close_quietly(con)
    body: dict[str, Any] = {"numberOfRecordsUpdated": updated, "generatedFields": []}
    if columns:
        body["records"] = to_data_api_records(rows)
    if params.get("includeResultMetadata"):
        body["columnMetadata"] = [{"name": c.get("name"), "label": c.get("name")} for c in columns]
    return body
