"""Real PostgreSQL servers on 127.0.0.1, and the session that owns and always stops them.

A :class:`PgCluster` is one session (a test session, one local drill): a private scratch
directory, the OS user that runs the servers (see :mod:`automation.postgres.binaries`), and every
:class:`PgServer` made in it. Closing it stops every server and deletes every file; it closes
itself at interpreter exit (``atexit``) and on the way out of a ``with`` block, whatever the
exception (``KeyboardInterrupt`` included). A session killed outright (SIGKILL) leaves its servers
behind: the next :class:`PgCluster` on the machine finds directories whose owner process is gone
and stops and deletes them (:func:`reap_orphans`).

Each writer starts as a copy of one template made per session with ``initdb``
(https://www.postgresql.org/docs/18/app-initdb.html) and configured for physical streaming
replication (https://www.postgresql.org/docs/18/warm-standby.html#STREAMING-REPLICATION):

- ``wal_level = replica`` and ``max_wal_senders`` so standbys can stream the WAL, and
  ``wal_keep_size`` so a paused or briefly disconnected standby still finds the segments it needs
  without a replication slot (https://www.postgresql.org/docs/18/runtime-config-replication.html);
- ``hot_standby = on`` so standbys answer read-only queries
  (https://www.postgresql.org/docs/18/hot-standby.html);
- ``listen_addresses = '127.0.0.1'`` and no Unix socket; ``pg_hba.conf`` trusts 127.0.0.1 for
  ordinary and ``replication`` connections and nothing else
  (https://www.postgresql.org/docs/18/auth-pg-hba-conf.html);
- ``fsync = off``: the failures simulated here are process deaths (``pg_ctl stop -m immediate``),
  after which the kernel still holds every ``write()`` the server made, so a commit that was
  acknowledged survives exactly as it would with ``fsync = on``; only an operating-system crash
  could lose it (https://www.postgresql.org/docs/18/runtime-config-wal.html#GUC-FSYNC).
  ``synchronous_commit = on`` stays: the commit record is written before the client hears "ok".

All writers of one session therefore share one database system identifier. A standby made from a
writer is a copy of it either way, as an RDS replica or an Aurora secondary is a copy of its source.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pg8000.native

from automation.postgres import sql
from automation.postgres.binaries import PgRunner
from automation.postgres.exceptions import CommandFailed, ServerStartError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""Every server listens here and nowhere else."""

SCRATCH_PREFIX = "pilotlight-pg-"
"""Name prefix of a session's scratch directory (what :func:`reap_orphans` looks for)."""

FENCE_CONF = "pilotlight_fence.conf"
"""Included at the end of ``postgresql.conf`` if present: the fence's server settings."""

FENCE_HBA = "pilotlight_fence_hba.conf"
"""Included at the top of ``pg_hba.conf`` if present: the fence's connection rules."""

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


class StopMode(StrEnum):
    """``pg_ctl stop -m`` modes (https://www.postgresql.org/docs/18/app-pg-ctl.html)."""

    FAST = "fast"
    """Roll back open transactions, disconnect clients, write a shutdown checkpoint: a clean stop."""

    IMMEDIATE = "immediate"
    """Abort every server process at once, no checkpoint; the next start runs crash recovery.

    This is a region going dark mid-write: whatever was committed (written to WAL) survives,
    whatever was in flight is lost, and standbys stop receiving.
    """


@dataclass(frozen=True)
class ServerSettings:
    """``postgresql.conf`` for every server of a session; the defaults suit tests and drills."""

    max_wal_senders: int = 10
    """Streaming connections a writer accepts (standbys plus ``pg_basebackup``'s own stream)."""

    wal_keep_size: str = "512MB"
    """WAL kept for standbys that fall behind (paused replay, a disconnect) without slots."""

    shared_buffers: str = "32MB"
    """Small: many servers share a 2-core test machine, and the data sets are tiny."""

    max_connections: int = 30
    """Clients per server: a workload, monitors, and the harness's own control sessions."""

    fsync: bool = False
    """Off: process kills keep the kernel's page cache (see the module docstring)."""

    wal_receiver_status_interval: str = "1s"
    """How often a standby reports its positions to the writer (``pg_stat_replication``)."""

    wal_retrieve_retry_interval: str = "500ms"
    """How soon a standby retries its stream after the writer went away and came back."""

    def render(self) -> str:
        """The lines appended to ``postgresql.conf`` after ``initdb``."""
        return "\n".join(
            [
                "",
                "# --- pilotlight local harness (automation/postgres/server.py) ---",
                f"listen_addresses = '{HOST}'",
                "unix_socket_directories = ''",
                "wal_level = replica",
                f"max_wal_senders = {self.max_wal_senders}",
                f"wal_keep_size = '{self.wal_keep_size}'",
                "hot_standby = on",
                "synchronous_commit = on",
                f"fsync = {'on' if self.fsync else 'off'}",
                f"shared_buffers = '{self.shared_buffers}'",
                f"max_connections = {self.max_connections}",
                f"wal_receiver_status_interval = '{self.wal_receiver_status_interval}'",
                f"wal_retrieve_retry_interval = '{self.wal_retrieve_retry_interval}'",
                "log_line_prefix = '%m [%p] %q%u@%d '",
                # Last, so that the fence's settings win over everything above.
                f"include_if_exists = '{FENCE_CONF}'",
                "",
            ]
        )


PG_HBA = f"""\
# pilotlight local harness: TCP on {HOST} only; the first matching line wins.
# A fence (automation/postgres/fence.py) writes the included file; its rules come first.
include_if_exists {FENCE_HBA}
host    all             all             {HOST}/32            trust
host    replication     all             {HOST}/32            trust
"""


SCRATCH_ENV = "PILOTLIGHT_PG_DIR"
"""Environment variable naming the directory that holds sessions' scratch directories."""

_SHM = Path("/dev/shm")
_SHM_MIN_FREE = 1 << 30


def default_base_dir() -> Path:
    """Where sessions put their scratch directories: ``$PILOTLIGHT_PG_DIR``, else ``/dev/shm``, else TMPDIR.

    ``/dev/shm`` is a RAM file system on Linux: every server is a copy of a ~25 MB data directory,
    and on a busy 2-core machine copying that to disk took seconds where RAM takes tenths. It is
    used when it exists, is writable and has 1 GiB free (a container's default is 64 MB).
    Losing it with the machine loses nothing: the servers are throwaway.
    """
    if configured := os.environ.get(SCRATCH_ENV):
        return Path(configured)
    try:
        usage = os.statvfs(_SHM)
        if os.access(_SHM, os.W_OK | os.X_OK) and usage.f_bavail * usage.f_frsize >= _SHM_MIN_FREE:
            return _SHM
    except OSError:
        pass
    return Path(tempfile.gettempdir())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL server: a data directory, a port on 127.0.0.1 and a log file.

    The port is the server's endpoint and stays the same for its whole life, through stops,
    kills, restarts and a rebuild as a standby, as an RDS instance endpoint does.
    """

    def __init__(self, cluster: PgCluster, name: str, data_dir: Path, port: int) -> None:
        self.cluster = cluster
        self.name = name
        self.data_dir = data_dir
        self.port = port
        self.host = HOST
        self.log_file = data_dir.with_name(f"{name}.log")
        self.primary_conninfo: str | None = None
        """How this server streams from its writer, if it was made as a standby."""
        self._endpoint_fixed = False

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"PgServer({self.name!r}, {self.endpoint}, {state})"

    @property
    def endpoint(self) -> str:
        """``host:port``, what an RDS endpoint maps to."""
        return f"{self.host}:{self.port}"

    @property
    def postmaster_pid(self) -> int | None:
        """The running postmaster's process id, from ``postmaster.pid``; ``None`` when stopped."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    @property
    def running(self) -> bool:
        """Whether the server's postmaster is alive."""
        return self.postmaster_pid is not None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections (``pg_ctl start -w``).

        A standby counts as started once it is consistent and accepts read-only connections.
        Before the first successful start, a port taken meanwhile by another process is replaced
        by a new free one; after it, the endpoint is fixed and a taken port is an error.
        """
        if self.running:
            return
        attempts = 1 if self._endpoint_fixed else 5
        for attempt in range(attempts):
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            try:
                self.cluster.runner.run(
                    "pg_ctl",
                    [
                        "start",
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_file),
                        "-w",
                        "-t",
                        str(int(timeout)),
                        "-o",
                        f"-p {self.port} -c cluster_name={self.name}",
                    ],
                    timeout=timeout + 30,
                )
            except CommandFailed as error:
                new_log = self._log_since(offset)
                if "could not bind" in new_log and attempt + 1 < attempts:
                    self.port = free_port()
                    continue
                raise ServerStartError(
                    f"{self.name} did not start:\n{error}\n--- log ---\n{new_log}"
                ) from error
            self._endpoint_fixed = True
            return

    def stop(self, mode: StopMode = StopMode.FAST, timeout: float = 60.0) -> None:
        """Stop the server (``pg_ctl stop -m MODE -w``); nothing to do when it is not running."""
        if not self.running:
            return
        self.cluster.runner.run(
            "pg_ctl",
            ["stop", "-D", str(self.data_dir), "-m", str(mode), "-w", "-t", str(int(timeout))],
            timeout=timeout + 30,
        )

    def connect(self, *, user: str = sql.ADMIN_USER, database: str | None = None) -> pg8000.native.Connection:
        """A new connection (see :func:`automation.postgres.sql.connect`); the caller closes it."""
        return sql.connect(self, user=user, database=database)

    def query(
        self, statement: str, *, user: str = sql.ADMIN_USER, database: str | None = None, **params: Any
    ) -> list[list[Any]]:
        """Run one statement in a connection of its own and return its rows."""
        return sql.query(self, statement, user=user, database=database, **params)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for error messages."""
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _log_since(self, offset: int) -> str:
        if not self.log_file.exists():
            return ""
        with self.log_file.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")


def kill(server: PgServer) -> None:
    """Stop ``server`` the way a region goes dark: ``pg_ctl stop -m immediate`` (see :class:`StopMode`)."""
    server.stop(StopMode.IMMEDIATE)


def restart(server: PgServer) -> None:
    """Start ``server`` again on its own port (crash recovery first, if it was killed)."""
    if server.running:
        server.stop(StopMode.FAST)
    server.start()


class PgCluster:
    """One session's servers: created in a private scratch directory, always stopped together.

    Use it as a context manager (or call :meth:`close`); it also closes at interpreter exit.
    """

    def __init__(self, settings: ServerSettings | None = None, *, base_dir: Path | None = None) -> None:
        self.settings = settings or ServerSettings()
        parent = Path(base_dir) if base_dir is not None else default_base_dir()
        self.root = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent))
        (self.root / "owner").write_text(_process_token(os.getpid()) or str(os.getpid()))
        self.servers: dict[str, PgServer] = {}
        self._template: Path | None = None
        self._closed = False
        atexit.register(self.close)
        try:
            self.runner = PgRunner.create(self.root)
            reap_orphans(parent, self.runner, keep=self.root)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def new_writer(self, name: str) -> PgServer:
        """A new, running writer (not in recovery) with the application role and database."""
        server = self.allocate(name)
        template = self._ensure_template()
        shutil.copytree(template, server.data_dir, symlinks=True)
        self._own_tree(server.data_dir)
        server.start()
        return server

    def allocate(self, name: str) -> PgServer:
        """Reserve a name, a data directory path and a port for a new server (nothing created)."""
        if self._closed:
            raise RuntimeError("this PgCluster is closed")
        if not _NAME.match(name):
            raise ValueError(f"server name {name!r}: lower-case letters, digits and '-', up to 41")
        if name in self.servers:
            raise ValueError(f"a server named {name!r} already exists in this cluster")
        server = PgServer(self, name, self.root / name, free_port())
        self.servers[name] = server
        return server

    def unique_name(self, stem: str) -> str:
        """``stem``, or ``stem-2``, ``stem-3`` ... whichever is not taken yet."""
        name, n = stem, 1
        while name in self.servers:
            n += 1
            name = f"{stem}-{n}"
        return name

    def discard(self, server: PgServer) -> None:
        """Stop ``server`` (immediately: its data is thrown away) and delete its files."""
        server.stop(StopMode.IMMEDIATE)
        shutil.rmtree(server.data_dir, ignore_errors=True)
        server.log_file.unlink(missing_ok=True)
        self.servers.pop(server.name, None)

    def close(self) -> None:
        """Stop every server and delete the scratch directory. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for server in list(self.servers.values()):
            try:
                server.stop(StopMode.IMMEDIATE, timeout=20)
            except Exception:  # keep stopping the others; kill this one outright
                log.exception("could not stop %s; killing its postmaster", server.name)
                _kill_pid(server.postmaster_pid)
        shutil.rmtree(self.root, ignore_errors=True)

    def _ensure_template(self) -> Path:
        """``initdb`` once per session; configured, bootstrapped and cleanly stopped."""
        if self._template is not None:
            return self._template
        data = self.root / "template"
        self.runner.run(
            "initdb",
            [
                "-D",
                str(data),
                "-U",
                sql.ADMIN_USER,
                "--auth=trust",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
                # 1 MB WAL segments instead of 16: each copy of a data directory (a new writer, a
                # base backup) carries at least one segment, and these databases are tiny.
                "--wal-segsize=1",
            ],
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(self.settings.render())
        self.runner.write_file(data / "pg_hba.conf", PG_HBA)
        bootstrap = PgServer(self, "template", data, free_port())
        bootstrap.start()
        try:
            bootstrap.query(f"CREATE ROLE {sql.APP_USER} LOGIN")
            bootstrap.query(f"CREATE DATABASE {sql.DATABASE} OWNER {sql.APP_USER}")
        finally:
            bootstrap.stop(StopMode.FAST)
        bootstrap.log_file.unlink(missing_ok=True)
        self._template = data
        return data

    def _own_tree(self, top: Path) -> None:
        if self.runner.os_user is None:
            return
        self.runner.own(top)
        for folder, dirs, files in os.walk(top):
            for entry in (*dirs, *files):
                path = os.path.join(folder, entry)
                os.lchown(path, self.runner.os_user.uid, self.runner.os_user.gid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _kill_pid(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _process_token(pid: int) -> str | None:
    """``pid`` plus its start time (``/proc/PID/stat`` field 22), which a reused pid won't share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return f"{pid} {fields[19]}"


def _owner_alive(token: str) -> bool:
    parts = token.split()
    if not parts or not parts[0].isdigit():
        return False
    pid = int(parts[0])
    if len(parts) == 1:
        return _alive(pid)
    return _process_token(pid) == token


def reap_orphans(parent: Path, runner: PgRunner, *, keep: Path) -> list[Path]:
    """Stop and delete the servers of sessions that died without closing (SIGKILL, power cut).

    A session's scratch directory holds an ``owner`` file naming its process (pid and start
    time); when that process is gone, every postmaster still running from a data directory in it
    is stopped with ``pg_ctl stop -m immediate`` and the directory is deleted. Directories of live
    sessions (other worktrees testing at the same time) and of other users are left alone.
    """
    reaped: list[Path] = []
    for scratch in sorted(parent.glob(f"{SCRATCH_PREFIX}*")):
        if scratch == keep or not scratch.is_dir():
            continue
        try:
            token = (scratch / "owner").read_text()
            owner_uid = scratch.stat().st_uid
        except OSError:
            continue
        mine = {os.geteuid()} | ({runner.os_user.uid} if runner.os_user else set())
        if owner_uid not in mine or _owner_alive(token):
            continue
        for pid_file in scratch.glob("*/postmaster.pid"):
            try:
                runner.run(
                    "pg_ctl", ["stop", "-D", str(pid_file.parent), "-m", "immediate", "-w"], check=False
                )
            except OSError:
                continue
        log.info("reaped the servers of a dead session in %s", scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        reaped.append(scratch)
    return reaped
