"""The payments ledger the workload writes through: one table, idempotent inserts by payment id.

A payment is written at most once whatever the retries: ``INSERT ... ON CONFLICT (payment_id) DO
NOTHING`` (https://www.postgresql.org/docs/18/sql-insert.html#SQL-ON-CONFLICT). That is what makes
:class:`~automation.postgres.exceptions.OutcomeUnknown` safe to handle by retrying the same id on
whichever server is the writer by then.

Every write runs as the application role (:data:`~automation.postgres.sql.APP_USER`) in a
connection of its own, so a fence, a standby or a dead server answers it exactly as it would
answer the real application. Errors come back by meaning:

- :class:`WriteRefused`: certainly not applied (a standby or a fenced writer said no);
- :class:`ServerUnreachable`: certainly not applied (nothing listening);
- :class:`OutcomeUnknown`: the connection broke after the statement was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pg8000.exceptions
import pg8000.native

from automation.postgres import sql
from automation.postgres.exceptions import ConnectionRejected, OutcomeUnknown, WriteRefused
from automation.postgres.server import PgServer

# The table is the API function's (lambdas/api/ledger.py): one definition for the workload and the
# test servers, so what the drill counts is what the function writes.
from lambdas.api.ledger import LEDGER_DDL

__all__ = ["LEDGER_DDL", "PaymentWrite", "ensure_ledger", "insert_payment", "payment_ids"]

_INSERT = (
    "INSERT INTO ledger (payment_id, amount, currency, region) "
    "VALUES (:payment_id, CAST(:amount AS numeric), :currency, :region) "
    "ON CONFLICT (payment_id) DO NOTHING RETURNING pg_current_xact_id()::text"
)


@dataclass(frozen=True)
class PaymentWrite:
    """An acknowledged :func:`insert_payment`: the commit returned to the client."""

    payment_id: str
    inserted: bool
    """False when the payment id was already there (a retry): nothing was written."""
    xid: int | None
    """The inserting transaction's id (``pg_current_xact_id()``), to find its commit in the WAL."""


def ensure_ledger(writer: PgServer) -> None:
    """Create the ledger table on ``writer`` if it is missing (as the application role)."""
    con = _app_connection(writer)
    try:
        con.run(LEDGER_DDL)
    finally:
        sql.close_quietly(con)


def insert_payment(
    writer: PgServer,
    payment_id: str,
    amount: Decimal | str = "1.00",
    currency: str = "EUR",
    region: str | None = None,
) -> PaymentWrite:
    """Write one payment, once: a repeated ``payment_id`` changes nothing and is not an error.

    ``region`` (the ledger's writing region) defaults to the server's name.

    Returns only after the commit was acknowledged (``synchronous_commit = on``: the commit
    record is in the writer's WAL).
    """
    con = _app_connection(writer)
    try:
        try:
            rows = con.run(
                _INSERT,
                payment_id=payment_id,
                amount=f"{Decimal(amount):.2f}",
                currency=currency,
                region=region or writer.name,
            )
        except pg8000.exceptions.DatabaseError as error:
            code = sql.sqlstate(error) or ""
            if code == sql.READ_ONLY_SQL_TRANSACTION:
                raise WriteRefused(f"{writer.name}: {sql.message(error)}", code) from error
            if code.startswith(("57", "08")):  # operator intervention, connection exception
                raise OutcomeUnknown(f"{writer.name}: {sql.message(error)} (SQLSTATE {code})") from error
            raise
        except (pg8000.exceptions.InterfaceError, OSError) as error:
            raise OutcomeUnknown(f"{writer.name}: connection lost during the write: {error}") from error
    finally:
        sql.close_quietly(con)
    if rows:
        return PaymentWrite(payment_id=payment_id, inserted=True, xid=int(rows[0][0]))
    return PaymentWrite(payment_id=payment_id, inserted=False, xid=None)


def payment_ids(server: PgServer) -> frozenset[str]:
    """Every payment id on ``server`` (writer or standby, fenced or not), read by the control plane."""
    rows = sql.query(server, "SELECT payment_id FROM ledger", database=sql.DATABASE)
    return frozenset(str(row[0]) for row in rows)


def _app_connection(server: PgServer) -> pg8000.native.Connection:
    try:
        return sql.connect(server, user=sql.APP_USER)
    except ConnectionRejected as error:
        raise WriteRefused(error.reason, error.sqlstate) from error
