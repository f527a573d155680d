"""SQL over the pure-Python driver ``pg8000``, with the harness's roles and error meanings.

Roles (created once per session in the template cluster, see :mod:`automation.postgres.server`):

- :data:`ADMIN_USER` ``postgres``, the bootstrap superuser: the control plane. Promotion, lag
  measurement, fencing and replication connections use it, as AWS's control plane would.
- :data:`APP_USER` ``app``, an ordinary login role that owns :data:`DATABASE`: the data plane.
  The workload writes through it, and it is the role a fence shuts out.

Authentication is ``trust`` on 127.0.0.1 only (https://www.postgresql.org/docs/18/auth-trust.html):
the servers are throwaway test servers that listen on the loopback address and nowhere else, and
no password exists to leak.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pg8000.exceptions
import pg8000.native

from automation.postgres.exceptions import ConnectionRejected, ServerUnreachable

if TYPE_CHECKING:
    from automation.postgres.server import PgServer

ADMIN_USER = "postgres"
"""The bootstrap superuser (``initdb -U postgres``): the control plane."""

APP_USER = "app"
"""The application's login role: the data plane, and what a fence shuts out."""

DATABASE = "pilotlight"
"""The application's database, owned by :data:`APP_USER`."""

ADMIN_DATABASE = "postgres"
"""Where control-plane sessions connect (always present, never dropped)."""

CONNECT_TIMEOUT = 10.0
"""Seconds before a socket operation gives up, so a hung server fails a test instead of hanging it."""

# SQLSTATE classes and codes, https://www.postgresql.org/docs/18/errcodes-appendix.html
READ_ONLY_SQL_TRANSACTION = "25006"
INVALID_AUTHORIZATION = "28000"
CANNOT_CONNECT_NOW = "57P03"


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a server error raised by pg8000 (its first argument is the error fields)."""
    if isinstance(error, pg8000.exceptions.DatabaseError) and error.args:
        fields = error.args[0]
        if isinstance(fields, dict):
            code = fields.get("C")
            return code if isinstance(code, str) else None
    return None


def message(error: BaseException) -> str:
    """The server's message text (``M`` field), or the exception's text."""
    if isinstance(error, pg8000.exceptions.DatabaseError) and error.args:
        fields = error.args[0]
        if isinstance(fields, dict) and isinstance(fields.get("M"), str):
            return str(fields["M"])
    return str(error)


def connect(
    server: PgServer,
    *,
    user: str = ADMIN_USER,
    database: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
) -> pg8000.native.Connection:
    """Open a connection to ``server`` on 127.0.0.1 (autocommit, as pg8000.native is).

    Raises :class:`ServerUnreachable` when nothing listens (stopped, killed) or the server is not
    yet or no longer accepting connections, and :class:`ConnectionRejected` when it answers no
    (``pg_hba.conf`` reject: a fenced server; or a role without LOGIN).
    """
    try:
        return pg8000.native.Connection(
            user,
            host=server.host,
            port=server.port,
            database=database or (ADMIN_DATABASE if user == ADMIN_USER else DATABASE),
            timeout=timeout,
            ssl_context=False,
            application_name=f"pilotlight-{user}",
        )
    except (pg8000.exceptions.InterfaceError, OSError) as error:
        # pg8000 wraps a refused TCP connection; a reset during the start-up exchange (a server
        # killed at that moment) comes through as the socket's own OSError.
        raise ServerUnreachable(f"{server.name} ({server.endpoint}): {error}") from error
    except pg8000.exceptions.DatabaseError as error:
        code = sqlstate(error) or ""
        if code == CANNOT_CONNECT_NOW:
            raise ServerUnreachable(f"{server.name} ({server.endpoint}): {message(error)}") from error
        raise ConnectionRejected(f"{server.name}: {message(error)}", code) from error


def query(
    server: PgServer, sql: str, *, user: str = ADMIN_USER, database: str | None = None, **params: Any
) -> list[list[Any]]:
    """Run one statement in its own connection and return its rows (``[]`` when none)."""
    con = connect(server, user=user, database=database)
    try:
        return con.run(sql, **params) or []
    finally:
        close_quietly(con)


def scalar(server: PgServer, sql: str, *, user: str = ADMIN_USER, **params: Any) -> Any:
    """The single value of a one-row, one-column query."""
    rows = query(server, sql, user=user, **params)
    if len(rows) != 1 or len(rows[0]) != 1:
        raise ValueError(f"expected one value from {sql!r}, got {rows!r}")
    return rows[0][0]


def close_quietly(con: pg8000.native.Connection) -> None:
    """Close a connection whose server may already have dropped it."""
    with contextlib.suppress(pg8000.exceptions.InterfaceError, OSError):
        con.close()


def literal(text: str) -> str:
    """``text`` as an SQL string literal, for the few statements that take no bind parameters.

    With ``standard_conforming_strings = on`` (the default since 9.1) only the quote needs doubling
    (https://www.postgresql.org/docs/18/sql-syntax-lexical.html#SQL-SYNTAX-STRINGS).
    """
    return "'" + text.replace("'", "''") + "'"


def parse_lsn(text: str) -> int:
    """A ``pg_lsn`` as text (``16/B374D848``) to its byte position.

    https://www.postgresql.org/docs/18/datatype-pg-lsn.html: two hexadecimal numbers, the high
    and low 32 bits of the 64-bit WAL position.
    """
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    """The inverse of :func:`parse_lsn`."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
