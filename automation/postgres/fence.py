"""Fencing: a server that really refuses the application's writes, until unfenced.

A fence is three things, applied in this order by :func:`fence`:

1. ``pg_hba.conf`` rejects every connection except the control plane's
   (:data:`~automation.postgres.sql.ADMIN_USER`): the first matching line wins, and the fence's
   rules are an included file at the top (``include_if_exists``, PostgreSQL 16+;
   https://www.postgresql.org/docs/18/auth-pg-hba-conf.html). A new application connection fails
   authentication with SQLSTATE 28000 ("pg_hba.conf rejects connection ..."). Replication
   connections are not matched by ``all`` (only by the ``replication`` keyword), so standbys keep
   streaming: a fenced writer's last writes still drain to its standby, which is what a planned
   switchover or failback waits for.
2. ``default_transaction_read_only = on`` in an included configuration file, so any session that
   does connect (the control plane's) starts every transaction read-only
   (https://www.postgresql.org/docs/18/runtime-config-client.html#GUC-DEFAULT-TRANSACTION-READ-ONLY).
3. Every other client backend is terminated with ``pg_terminate_backend``
   (https://www.postgresql.org/docs/18/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL), so an
   application session opened before the fence cannot go on writing.

Both files are read on ``pg_reload_conf()``; a backend started after the postmaster re-read them
reports a later ``pg_conf_load_time()``, which is how :func:`fence` knows the rules are in force
before it terminates the old sessions (a client reconnecting right away is then rejected).

Limits, stated plainly:

- A superuser can still write: it may ``SET default_transaction_read_only = off`` (or
  ``SET TRANSACTION READ WRITE``) in its own session. PostgreSQL has no setting that forbids a
  superuser to write short of recovery mode. The application role cannot even connect, so the
  data plane is fenced; the control plane is trusted, as AWS's is.
- The fence lives in the data directory's files, not in the catalog: it does not replicate (a
  role change such as ``ALTER ROLE app NOLOGIN`` would, and would reach the standby about to be
  promoted), and it survives a restart of the fenced server. ``pg_basebackup`` copies those
  files, so a new standby seeded from a fenced server drops them
  (:func:`clear_fence_files`): the fence belongs to a server, not to the data.
"""

from __future__ import annotations

import time
from datetime import datetime

from automation.postgres import sql
from automation.postgres.exceptions import PostgresError, ServerUnreachable
from automation.postgres.server import FENCE_CONF, FENCE_HBA, PgServer

FENCE_HBA_RULES = f"""\
# pilotlight fence (automation/postgres/fence.py): only the control plane may connect.
host    all             {sql.ADMIN_USER}        127.0.0.1/32            trust
host    all             all             127.0.0.1/32            reject
"""

FENCE_SETTINGS = """\
# pilotlight fence (automation/postgres/fence.py): every transaction starts read-only.
default_transaction_read_only = on
"""


def is_fenced(server: PgServer) -> bool:
    """Whether ``server`` carries a fence (its fence files exist)."""
    return (server.data_dir / FENCE_HBA).exists() or (server.data_dir / FENCE_CONF).exists()


def fence(server: PgServer, timeout: float = 10.0) -> int:
    """Fence a running ``server``; returns how many client sessions were terminated.

    Raises :class:`ServerUnreachable`, changing nothing, when the server is not running.

    Idempotent: fencing a fenced server re-applies the rules and terminates any session that
    still got in (the control plane's, which is read-only by default).
    """
    _require_running(server)
    runner = server.cluster.runner
    runner.write_file(server.data_dir / FENCE_HBA, FENCE_HBA_RULES)
    runner.write_file(server.data_dir / FENCE_CONF, FENCE_SETTINGS)
    _reload_and_wait(server, timeout)
    con = server.connect()
    try:
        rows = con.run(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    finally:
        sql.close_quietly(con)
    return int(rows[0][0]) if rows else 0


def unfence(server: PgServer, timeout: float = 10.0) -> None:
    """Lift the fence of a running ``server``: the application may connect and write again."""
    _require_running(server)
    clear_fence_files(server)
    _reload_and_wait(server, timeout)


def clear_fence_files(server: PgServer) -> None:
    """Delete the fence's files (for a stopped server, or before a reload)."""
    (server.data_dir / FENCE_HBA).unlink(missing_ok=True)
    (server.data_dir / FENCE_CONF).unlink(missing_ok=True)


def _require_running(server: PgServer) -> None:
    # Checked before any file is touched: a fence that raised must not lie in wait for the next
    # start of a server that was down (fencing "where reachable" is the runbook's decision).
    if not server.running:
        raise ServerUnreachable(f"{server.name} is not running: nothing to fence or unfence")


def _reload_and_wait(server: PgServer, timeout: float) -> None:
    """``pg_reload_conf()``, then wait until a new backend sees the reloaded files.

    ``pg_conf_load_time()`` in a session started after the postmaster re-read its configuration
    is the time of that re-read (https://www.postgresql.org/docs/18/functions-info.html); a
    backend inherits the postmaster's ``pg_hba.conf`` rules, so once a new session reports a load
    time later than before the reload, every new connection is judged by the new rules.
    """
    before: datetime = sql.scalar(server, "SELECT pg_conf_load_time()")
    rules_ok = sql.scalar(server, "SELECT pg_reload_conf()")
    if rules_ok is not True:
        raise PostgresError(f"{server.name}: pg_reload_conf() returned {rules_ok!r}")
    deadline = time.monotonic() + timeout
    while True:
        loaded: datetime = sql.scalar(server, "SELECT pg_conf_load_time()")
        if loaded > before:
            break
        if time.monotonic() > deadline:
            raise PostgresError(f"{server.name} did not reload its configuration within {timeout}s")
        time.sleep(0.02)
    errors = sql.query(
        server, "SELECT file_name, line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL"
    )
    if errors:
        raise PostgresError(f"{server.name}: pg_hba.conf errors after reload: {errors}")
