"""Physical streaming replication between local servers: standbys, promotion, rebuilds, lag.

What each RDS / Aurora operation maps onto (the emulator does the mapping):

============================================  ===============================================
RDS / Aurora                                  here
============================================  ===============================================
create a cross-region read replica            :func:`make_standby` (``pg_basebackup -R``)
promote a read replica                        :func:`promote` (``pg_promote``)
global failover / switchover: old writer      :func:`promote` the secondary, then
becomes a secondary                           :func:`rebuild_as_standby` the old writer
``ReplicaLag`` (RDS, seconds)                 :func:`replay_lag_seconds`
``AuroraGlobalDBReplicationLag`` (ms)         :func:`replay_lag_seconds` x 1000
"zero lag measured after writes stopped"      :func:`lsn_lag_bytes` == 0
a network partition between the regions       :func:`disconnect` / :func:`reconnect`
============================================  ===============================================

PostgreSQL pages relied on: streaming replication and ``primary_conninfo``
(https://www.postgresql.org/docs/18/warm-standby.html), ``pg_basebackup``
(https://www.postgresql.org/docs/18/app-pgbasebackup.html), the recovery control and information
functions ``pg_promote``, ``pg_is_in_recovery``, ``pg_last_wal_receive_lsn``,
``pg_last_wal_replay_lsn``, ``pg_last_xact_replay_timestamp``, ``pg_wal_replay_pause`` /
``_resume`` and the WAL functions ``pg_current_wal_lsn`` / ``pg_wal_lsn_diff``
(https://www.postgresql.org/docs/18/functions-admin.html), and the views ``pg_stat_replication``
and ``pg_stat_wal_receiver`` (https://www.postgresql.org/docs/18/monitoring-stats.html).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from automation.postgres import sql
from automation.postgres.exceptions import (
    NotAStandby,
    NotAWriter,
    PromotionFailed,
    ReplicationTimeout,
)
from automation.postgres.fence import clear_fence_files
from automation.postgres.server import PgServer, StopMode

POLL = 0.02
"""Seconds between two looks at a replication condition."""


def is_in_recovery(server: PgServer) -> bool:
    """``pg_is_in_recovery()``: true for a standby, false for a writer (also after promotion)."""
    return bool(sql.scalar(server, "SELECT pg_is_in_recovery()"))


def current_wal_lsn(writer: PgServer) -> int:
    """The writer's current WAL write position (``pg_current_wal_lsn()``), in bytes."""
    return sql.parse_lsn(sql.scalar(writer, "SELECT pg_current_wal_lsn()::text"))


def make_standby(primary: PgServer, name: str | None = None, timeout: float = 60.0) -> PgServer:
    """A new standby of ``primary``, running and streaming, on a port of its own.

    ``pg_basebackup -R -X stream --checkpoint=fast`` copies the writer's data directory over a
    replication connection, streams the WAL written meanwhile, and writes ``standby.signal`` and
    ``primary_conninfo`` so that the copy starts as a hot standby streaming from ``primary``.
    """
    if is_in_recovery(primary):
        raise NotAWriter(f"{primary.name} is a standby; make standbys of the writer")
    standby = primary.cluster.allocate(name or primary.cluster.unique_name(f"{primary.name}-standby"))
    try:
        _seed(standby, primary, timeout)
    except BaseException:
        primary.cluster.discard(standby)
        raise
    return standby


def rebuild_as_standby(old_writer: PgServer, new_writer: PgServer, timeout: float = 60.0) -> PgServer:
    """Discard ``old_writer``'s data and re-seed it as a standby of ``new_writer``.

    What Aurora does to the old primary cluster after a global database failover or switchover:
    it becomes a secondary of the new primary, with the same endpoint
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html).
    Everything the old writer had and the new one lacks (writes it took after the promotion, or
    unreplicated ones before it) is gone, as it is in Aurora. ``pg_rewind`` could reuse the
    unchanged blocks instead of copying everything; these databases are small, so the simpler
    full copy is used. Returns ``old_writer``, now a streaming standby on its own port.
    """
    if old_writer is new_writer:
        raise ValueError(f"{old_writer.name} cannot be rebuilt from itself")
    if is_in_recovery(new_writer):
        raise NotAWriter(f"{new_writer.name} is a standby; rebuild from the writer")
    old_writer.stop(StopMode.IMMEDIATE)
    shutil.rmtree(old_writer.data_dir)
    _seed(old_writer, new_writer, timeout)
    return old_writer


def _seed(standby: PgServer, primary: PgServer, timeout: float) -> None:
    standby.cluster.runner.run(
        "pg_basebackup",
        [
            "-D",
            str(standby.data_dir),
            "-h",
            primary.host,
            "-p",
            str(primary.port),
            "-U",
            sql.ADMIN_USER,
            "--write-recovery-conf",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",
        ],
        timeout=timeout + 30,
    )
    clear_fence_files(standby)
    standby.start(timeout=timeout)
    standby.primary_conninfo = str(sql.scalar(standby, "SHOW primary_conninfo"))
    wait_for_streaming(standby, timeout)


def wait_for_streaming(standby: PgServer, timeout: float = 30.0) -> None:
    """Wait until ``standby``'s WAL receiver is connected and streaming."""
    deadline = time.monotonic() + timeout
    while sql.query(standby, "SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'") == []:
        if time.monotonic() > deadline:
            raise ReplicationTimeout(
                f"{standby.name} is not streaming after {timeout}s:\n{standby.log_tail()}"
            )
        time.sleep(POLL)


def promote(server: PgServer, timeout: float = 60.0) -> None:
    """Promote a standby to a writer: ``SELECT pg_promote(wait => true, ...)``.

    The standby first replays every WAL record it has received, then leaves recovery on a new
    timeline and accepts writes. Promoting while replay is paused is allowed: the pause ends and
    promotion goes on (https://www.postgresql.org/docs/18/functions-admin.html#FUNCTIONS-RECOVERY-CONTROL).
    """
    if not is_in_recovery(server):
        raise NotAStandby(f"{server.name} is already a writer")
    promoted = sql.scalar(
        server, "SELECT pg_promote(wait => true, wait_seconds => :seconds)", seconds=max(1, int(timeout))
    )
    if promoted is not True:
        raise PromotionFailed(
            f"{server.name} did not finish promotion within {timeout}s:\n{server.log_tail()}"
        )
    server.primary_conninfo = None


def timeline_switch_lsn(server: PgServer) -> int:
    """Where the previous timeline ended on a promoted server: the exact end of what it replayed.

    Promotion writes a timeline history file (``pg_wal/0000000N.history``) whose last line gives
    the switch point (https://www.postgresql.org/docs/18/continuous-archiving.html#BACKUP-TIMELINES).
    Every transaction whose commit record ends at or before it is on the promoted server; none
    after it is.
    """
    # The timeline is the first 8 hex digits of a WAL file name; the checkpoint that records the
    # new timeline in pg_control may still be running right after promotion.
    timeline = int(sql.scalar(server, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), 16)
    if timeline < 2:
        raise NotAStandby(f"{server.name} was never promoted (timeline 1)")
    history = sql.scalar(server, "SELECT pg_read_file(:path)", path=f"pg_wal/{timeline:08X}.history")
    last = [line for line in str(history).splitlines() if line.strip() and not line.startswith("#")][-1]
    return sql.parse_lsn(last.split()[1])


def pause_replay(standby: PgServer) -> None:
    """Stop applying WAL (``pg_wal_replay_pause()``); the standby keeps receiving it."""
    _require_standby(standby)
    sql.query(standby, "SELECT pg_wal_replay_pause()")
    deadline = time.monotonic() + 10
    while sql.scalar(standby, "SELECT pg_get_wal_replay_pause_state()") != "paused":
        if time.monotonic() > deadline:
            raise ReplicationTimeout(f"{standby.name} did not pause replay")
        time.sleep(POLL)


def resume_replay(standby: PgServer) -> None:
    """Apply WAL again (``pg_wal_replay_resume()``)."""
    _require_standby(standby)
    sql.query(standby, "SELECT pg_wal_replay_resume()")


def disconnect(standby: PgServer, timeout: float = 10.0) -> None:
    """Cut ``standby`` off its writer, as a network partition would: no more WAL arrives.

    ``ALTER SYSTEM SET primary_conninfo = ''`` and a reload: "if ``primary_conninfo`` is changed
    while WAL receiver is running, the WAL receiver shuts down and then restarts with new setting,
    except when ``primary_conninfo`` is an empty string"
    (https://www.postgresql.org/docs/18/runtime-config-replication.html#GUC-PRIMARY-CONNINFO,
    https://www.postgresql.org/docs/18/sql-altersystem.html). The standby keeps what it has and
    stays a read-only standby.
    """
    _require_standby(standby)
    sql.query(standby, "ALTER SYSTEM SET primary_conninfo = ''")
    sql.query(standby, "SELECT pg_reload_conf()")
    deadline = time.monotonic() + timeout
    while sql.query(standby, "SELECT 1 FROM pg_stat_wal_receiver") != []:
        if time.monotonic() > deadline:
            raise ReplicationTimeout(f"{standby.name}'s WAL receiver is still running after {timeout}s")
        time.sleep(POLL)


def reconnect(standby: PgServer, timeout: float = 30.0) -> None:
    """Undo :func:`disconnect`: stream from the writer again and wait until streaming."""
    _require_standby(standby)
    if not standby.primary_conninfo:
        raise NotAStandby(f"{standby.name} was not made by make_standby: no primary_conninfo to restore")
    # ALTER SYSTEM takes no bind parameters: the value is inlined as a quoted literal.
    sql.query(standby, f"ALTER SYSTEM SET primary_conninfo = {sql.literal(standby.primary_conninfo)}")
    sql.query(standby, "SELECT pg_reload_conf()")
    wait_for_streaming(standby, timeout)


@dataclass(frozen=True)
class ReplayStatus:
    """One look at a standby's replication state, taken in one query on the standby."""

    receive_lsn: int | None
    """``pg_last_wal_receive_lsn()``: WAL received and flushed by streaming (static once it stops)."""
    replay_lsn: int | None
    """``pg_last_wal_replay_lsn()``: WAL applied; the end of the last record replayed."""
    last_replayed_commit: datetime | None
    """``pg_last_xact_replay_timestamp()``: when the last replayed transaction committed on the writer."""
    now: datetime
    """The standby's ``now()`` in the same query."""
    streaming: bool
    """Whether the WAL receiver is connected (``pg_stat_wal_receiver.status = 'streaming'``)."""
    replay_paused: bool
    """``pg_get_wal_replay_pause_state() <> 'not paused'``."""

    @property
    def rds_replica_lag_seconds(self) -> float | None:
        """RDS's ``ReplicaLag`` formula: ``extract(epoch from now() - pg_last_xact_replay_timestamp())``.

        As documented for RDS for PostgreSQL read replicas
        (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PostgreSQL.Replication.ReadReplicas.Monitor.html).
        It grows while the writer is idle, though nothing is behind. ``None`` before any
        transaction has been replayed.
        """
        if self.last_replayed_commit is None:
            return None
        return max(0.0, (self.now - self.last_replayed_commit).total_seconds())

    @property
    def lag_seconds(self) -> float | None:
        """Replay lag in seconds, reading 0 on a caught-up idle standby.

        0 when the WAL receiver is streaming and everything received has been replayed; otherwise
        :attr:`rds_replica_lag_seconds` (so a disconnected or paused standby's lag grows with the
        time since its last replayed commit, as RDS reports it).
        """
        caught_up = (
            self.replay_lsn is not None
            and self.receive_lsn is not None
            and self.replay_lsn >= self.receive_lsn
        )
        if self.streaming and caught_up:
            return 0.0
        return self.rds_replica_lag_seconds


def replay_status(standby: PgServer) -> ReplayStatus:
    """Read :class:`ReplayStatus` from ``standby`` (raises :class:`NotAStandby` on a writer)."""
    rows = sql.query(
        standby,
        "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
        "pg_last_xact_replay_timestamp(), now(), "
        "EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'), "
        "CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() <> 'not paused' END",
    )
    in_recovery, receive, replay, last_commit, now, streaming, paused = rows[0]
    if not in_recovery:
        raise NotAStandby(f"{standby.name} is a writer: it has no replay lag")
    return ReplayStatus(
        receive_lsn=_lsn_or_none(receive),
        replay_lsn=_lsn_or_none(replay),
        last_replayed_commit=last_commit,
        now=now,
        streaming=bool(streaming),
        replay_paused=bool(paused),
    )


def replay_lag_seconds(standby: PgServer) -> float | None:
    """Replay lag of ``standby`` in seconds, measured on the standby (see :attr:`ReplayStatus.lag_seconds`).

    Which view: the standby's own ``now() - pg_last_xact_replay_timestamp()``, the query RDS
    documents for ``ReplicaLag``, corrected for the no-traffic case: a streaming standby that has
    replayed everything it received reads 0 instead of the time since the last write. Its blind
    spot is WAL the writer has not sent yet; :func:`lsn_lag_bytes` asks both servers and has none.
    (The writer's ``pg_stat_replication.replay_lag`` is the other option: it is NULL once an idle
    standby has caught up, and is only as fresh as the standby's last status report.)
    ``None`` when lag cannot be dated: WAL is pending but no transaction was replayed yet.
    """
    return replay_status(standby).lag_seconds


def lsn_lag_bytes(primary: PgServer, standby: PgServer) -> int:
    """Bytes of WAL the writer has and ``standby`` has not replayed; exact, and never too low.

    ``pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)`` with ``replay_lsn`` read synchronously
    from the standby (``pg_last_wal_replay_lsn()``), not from the writer's ``pg_stat_replication``,
    which is the standby's last status report. The standby is read first: if it reports 0, the
    standby had replayed everything the writer had written at that earlier moment, so
    "zero lag measured after writes stopped" is sound.
    """
    replay = sql.scalar(standby, "SELECT pg_last_wal_replay_lsn()::text")
    if replay is None:
        raise NotAStandby(f"{standby.name} is not replaying WAL (a writer, or not started as a standby)")
    diff = sql.scalar(
        primary,
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:replay AS pg_lsn))::bigint",
        replay=replay,
    )
    return max(0, int(diff))


def wait_for_catch_up(primary: PgServer, standby: PgServer, timeout: float = 30.0) -> None:
    """Wait until :func:`lsn_lag_bytes` is 0."""
    deadline = time.monotonic() + timeout
    while (lag := lsn_lag_bytes(primary, standby)) > 0:
        if time.monotonic() > deadline:
            raise ReplicationTimeout(
                f"{standby.name} is still {lag} bytes behind {primary.name} after {timeout}s"
            )
        time.sleep(POLL)


def wait_for_replay_to_settle(standby: PgServer, quiet: float = 0.3, timeout: float = 30.0) -> int:
    """After its writer died or it was disconnected: wait until replay stops moving; return the LSN.

    Everything received is replayed unless the last record arrived only in part (the stream is
    cut at any byte, not at record boundaries), so "replay == receive" may never hold. Instead:
    the WAL receiver is gone and the replay position has not moved for ``quiet`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: int | None = None
    since = time.monotonic()
    while True:
        status = replay_status(standby)
        if status.replay_paused:
            raise ReplicationTimeout(f"{standby.name}: replay is paused; it will not settle")
        if status.replay_lsn != last or status.streaming:
            last, since = status.replay_lsn, time.monotonic()
        elif time.monotonic() - since >= quiet and last is not None:
            return last
        if time.monotonic() > deadline:
            raise ReplicationTimeout(f"{standby.name}'s replay did not settle within {timeout}s")
        time.sleep(POLL)


@dataclass(frozen=True)
class StandbyConnection:
    """One row of the writer's ``pg_stat_replication``: a standby streaming from it."""

    application_name: str
    state: str
    replay_lsn: int | None
    replay_lag_seconds: float | None


def replication_status(primary: PgServer) -> tuple[StandbyConnection, ...]:
    """The standbys streaming from ``primary`` now, as the writer sees them.

    ``application_name`` is the standby's server name: each server runs with ``cluster_name`` set
    to its name, and a WAL receiver's application name defaults to ``cluster_name``
    (https://www.postgresql.org/docs/18/runtime-config-replication.html#GUC-SYNCHRONOUS-STANDBY-NAMES).
    Positions and lags are the standby's last status report (``wal_receiver_status_interval``).
    """
    rows = sql.query(
        primary,
        "SELECT application_name, state, replay_lsn::text, extract(epoch FROM replay_lag)::float8 "
        "FROM pg_stat_replication ORDER BY application_name",
    )
    return tuple(
        StandbyConnection(str(name), str(state), _lsn_or_none(lsn), None if lag is None else float(lag))
        for name, state, lsn, lag in rows
    )


def _require_standby(server: PgServer) -> None:
    if not is_in_recovery(server):
        raise NotAStandby(f"{server.name} is a writer")


def _lsn_or_none(value: Any) -> int | None:
    return None if value is None else sql.parse_lsn(str(value))
