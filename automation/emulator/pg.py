"""Real PostgreSQL behind the emulator's databases: each RDS instance or Aurora cluster is a server.

Opt-in: ``Emulator(postgres=PgCluster())``. The emulator keeps modelling AWS's control plane (states,
durations on the virtual clock, ``FailoverState``); this module holds the data plane, on real
PostgreSQL 18 servers on 127.0.0.1 (:mod:`automation.postgres`), keyed by the database copy's ARN
as the emulator's data plane keys them:

=================================================  ================================================
AWS                                                here
=================================================  ================================================
CreateDBInstance / CreateDBCluster (a writer)      :meth:`PgDatabases.create_writer`
CreateDBInstanceReadReplica, an Aurora secondary   :meth:`PgDatabases.create_standby` (pg_basebackup)
PromoteReadReplica: stops replicating at once      :meth:`~PgDatabases.stop_replicating` when it
(the unapplied tail is lost), writer when done     starts, :meth:`~PgDatabases.promote` when done
Aurora switchover: writes blocked, secondaries     :meth:`~PgDatabases.fence` the writer, wait for
synchronized, roles swapped                        zero LSN lag, promote, rebuild the old writer
Aurora failover (AllowDataLoss)                    stop replicating, promote; the old writer is
                                                   rebuilt as a standby when its region answers
ModifyDBInstance NewDBInstanceIdentifier           :meth:`~PgDatabases.rename`: the server follows
a dark region                                      :meth:`~PgDatabases.go_dark` kills its servers
``ReplicaLag`` / ``AuroraGlobalDBReplicationLag``  :meth:`~PgDatabases.lag_seconds`
=================================================  ================================================

**Lag on the virtual clock.** A real standby replays in milliseconds of wall time while the
emulator's minutes pass in microseconds, so ``replay_lag_seconds`` (a wall-clock age) says nothing
about virtual time. The lag published is the data plane's definition instead (the age of the oldest
acknowledged write the copy does not hold, :mod:`automation.emulator.data`), measured on the real
servers: each acknowledged write is stamped with its virtual instant and the writer's WAL position
after its commit (``pg_current_wal_lsn()``); the standby's ``pg_last_wal_replay_lsn()`` says which
of them it has replayed. The LSN stamp is at or after the commit record's end, so the lag is never
under-stated. ``ReplicaLag`` of RDS for PostgreSQL (``now() - pg_last_xact_replay_timestamp()``) is
read the same way: the virtual stamp of the latest write replayed (:meth:`PgDatabases.last_replayed_at`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pg8000.exceptions
import pg8000.native

from automation.postgres import (
    APP_USER,
    DATABASE,
    OutcomeUnknown,
    PgCluster,
    PgServer,
    PostgresError,
    ServerUnreachable,
    WriteRefused,
    current_wal_lsn,
    disconnect,
    ensure_ledger,
    fence,
    insert_payment,
    is_in_recovery,
    kill,
    lsn_lag_bytes,
    make_standby,
    payment_ids,
    promote,
    rebuild_as_standby,
    replay_status,
    sql,
    wait_for_replay_to_settle,
)

PAYMENT = re.compile(r"^pay-(\d+)$")


def payment_id(write_id: int) -> str:
    """The ledger's payment id of the emulator's write ``write_id`` (one payment per write)."""
    return f"pay-{write_id:06d}"


def write_id_of(payment: str) -> int | None:
    """The emulator's write id of a payment id made by :func:`payment_id`, else None."""
    match = PAYMENT.match(payment)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Ack:
    """One acknowledged payment: where it committed, when (virtual), and the WAL position after it."""

    write_id: int
    server: str
    at: datetime
    lsn: int | None
    """``pg_current_wal_lsn()`` right after the commit; None when the server died before it was read."""


@dataclass
class PgDatabases:
    """The real servers behind the emulator's database copies (RDS instances, Aurora clusters)."""

    cluster: PgCluster
    now: Callable[[], datetime]
    servers: dict[str, PgServer] = field(default_factory=dict)
    """Database copy key (ARN) -> its server. A rename moves the entry; the server stays."""
    sources: dict[str, str] = field(default_factory=dict)
    """Standby server name -> the name of the server it streams from."""
    acks: list[Ack] = field(default_factory=list)
    killed: set[str] = field(default_factory=set)
    """Names of servers an outage killed (restarted when their region answers again)."""
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _admin: dict[str, pg8000.native.Connection] = field(default_factory=dict)
    """Server name -> a control-plane session kept open for the per-write WAL position."""

    # -- topology --------------------------------------------------------------------------------

    def server(self, key: str) -> PgServer | None:
        """The server behind database copy ``key``, if it has one."""
        return self.servers.get(key)

    def _name(self, key: str) -> str:
        stem = re.sub(r"[^a-z0-9-]", "-", key.split(":")[-1].lower())[:38].strip("-") or "db"
        if not stem[0].isalpha():
            stem = f"db-{stem}"
        return self.cluster.unique_name(stem)

    def create_writer(self, key: str) -> PgServer:
        """A new writer with the ledger table for copy ``key``."""
        server = self.cluster.new_writer(self._name(key))
        ensure_ledger(server)
        self.servers[key] = server
        return server

    def create_standby(self, key: str, source_key: str) -> PgServer:
        """A new streaming standby of ``source_key``'s server for copy ``key`` (``pg_basebackup``)."""
        source = self.servers[source_key]
        standby = make_standby(source, self._name(key))
        self.servers[key] = standby
        self.sources[standby.name] = source.name
        return standby

    def rename(self, old: str, new: str) -> None:
        """Copy ``old`` is now called ``new``: the same server answers under the new name."""
        server = self.servers.pop(old, None)
        if server is not None:
            self.servers[new] = server

    # -- writer changes --------------------------------------------------------------------------

    def stop_replicating(self, key: str) -> None:
        """Cut ``key``'s standby off its source and wait until it has replayed what it received."""
        server = self.servers[key]
        if not server.running or not is_in_recovery(server):
            return
        disconnect(server)
        wait_for_replay_to_settle(server)

    def promote(self, key: str) -> None:
        """``pg_promote`` ``key``'s standby: it takes writes from now on."""
        server = self.servers[key]
        if server.running and is_in_recovery(server):
            promote(server)
        self.sources.pop(server.name, None)

    def caught_up(self, source_key: str, target_key: str) -> bool:
        """Whether ``target_key`` streams from ``source_key`` and has replayed everything it wrote."""
        source, target = self.servers[source_key], self.servers[target_key]
        if self.sources.get(target.name) != source.name or not target.running:
            return False  # not (yet) its standby: a rebuild under way, or a standalone server
        return lsn_lag_bytes(source, target) == 0

    def fence(self, key: str) -> None:
        """Make ``key``'s server refuse the application's writes (:mod:`automation.postgres.fence`)."""
        server = self.servers[key]
        if server.running:
            fence(server)

    def rebuild(self, old_key: str, new_key: str) -> None:
        """Discard ``old_key``'s data and re-seed it as a standby of ``new_key`` (same endpoint)."""
        old, new = self.servers[old_key], self.servers[new_key]
        rebuild_as_standby(old, new)
        self.sources[old.name] = new.name

    # -- outages ---------------------------------------------------------------------------------

    def cut_from(self, in_region: Callable[[str], bool]) -> list[str]:
        """Cut every standby off a source in the region (the link between the regions fails first)."""
        names = {s.name for key, s in self.servers.items() if in_region(key)}
        out = []
        for server in self.servers.values():
            if self.sources.get(server.name) in names and server.running and is_in_recovery(server):
                disconnect(server)
                out.append(server.name)
        return out

    def go_dark(self, in_region: Callable[[str], bool]) -> list[str]:
        """Kill every running server whose copy key is in the dark region (``pg_ctl -m immediate``)."""
        with self._lock:
            out = []
            for key, server in self.servers.items():
                if in_region(key) and server.running:
                    kill(server)
                    self.killed.add(server.name)
                    out.append(server.name)
            return out

    def come_back(self, in_region: Callable[[str], bool]) -> list[str]:
        """Restart the servers an outage killed in the region that answers again (crash recovery)."""
        with self._lock:
            out = []
            for key, server in self.servers.items():
                if in_region(key) and server.name in self.killed:
                    server.start()
                    self.killed.discard(server.name)
                    out.append(server.name)
            return out

    # -- the ledger ------------------------------------------------------------------------------

    def insert(self, key: str, payment: str) -> bool:
        """Write one payment on ``key``'s server as the application; True only once it committed."""
        server = self.servers.get(key)
        if server is None:
            return False
        try:
            insert_payment(server, payment)
        except (WriteRefused, ServerUnreachable, OutcomeUnknown):
            return False
        return True

    def record(self, key: str, write_id: int) -> Ack:
        """Note an acknowledged payment (write ``write_id``) on ``key``'s server, stamped now."""
        server = self.servers[key]
        lsn = self._wal_lsn(server)
        ack = Ack(write_id, server.name, self.now(), lsn)
        with self._lock:
            self.acks.append(ack)
        return ack

    def _wal_lsn(self, server: PgServer) -> int | None:
        """The server's ``pg_current_wal_lsn()`` through a kept session (reopened once if it broke).

        None when the server does not answer (killed right after the commit): the write's position
        is unknown, so it never counts as replicated.
        """
        for _ in range(2):
            con = self._admin.get(server.name)
            try:
                if con is None:
                    con = self._admin[server.name] = sql.connect(server)
                with self._lock:  # one kept session, maybe used from a workload thread
                    rows = con.run("SELECT pg_current_wal_lsn()::text") or []
                return sql.parse_lsn(str(rows[0][0]))
            except (PostgresError, pg8000.exceptions.Error, OSError):
                dropped = self._admin.pop(server.name, None)
                if dropped is not None:
                    sql.close_quietly(dropped)
        try:
            return current_wal_lsn(server)
        except PostgresError:
            return None

    def held(self, key: str) -> set[int]:
        """The emulator's write ids whose payment is in ``key``'s server's ledger (read as the admin)."""
        ids = (write_id_of(p) for p in payment_ids(self.servers[key]))
        return {i for i in ids if i is not None}

    def lost(self, target_key: str, source_name: str | None) -> list[int]:
        """Writes acknowledged on ``source_name`` that ``target_key``'s server does not hold."""
        if source_name is None:
            return []
        held = self.held(target_key)
        with self._lock:
            return [a.write_id for a in self.acks if a.server == source_name and a.write_id not in held]

    def source_name(self, key: str) -> str | None:
        """The server ``key``'s standby streams from (its name), if any."""
        server = self.servers.get(key)
        return self.sources.get(server.name) if server else None

    def lag_seconds(self, key: str) -> float | None:
        """Virtual age of the oldest write ``key``'s standby has not replayed (0.0 if none).

        None when ``key`` is not a standby or is not running: nothing to publish.
        """
        server = self.servers.get(key)
        source = self.source_name(key)
        if server is None or source is None or not server.running:
            return None
        try:
            status = replay_status(server)
        except PostgresError:
            return None
        replayed = status.replay_lsn
        if replayed is None:
            return None
        with self._lock:
            behind = [a.at for a in self.acks if a.server == source and (a.lsn is None or a.lsn > replayed)]
        if not behind:
            return 0.0
        return max(0.0, (self.now() - min(behind)).total_seconds())

    def last_replayed_at(self, key: str) -> datetime | None:
        """Virtual commit instant of the latest acknowledged write ``key``'s standby has replayed (None:
        none, or ``key`` is not a running standby): ``pg_last_xact_replay_timestamp()`` on the virtual
        clock. The real function answers in wall-clock time, which says nothing about virtual time
        (see the module's note), so it is read as :meth:`lag_seconds` reads lag: from the writes'
        virtual stamps and WAL positions against the standby's ``pg_last_wal_replay_lsn()``. A write
        counts as replayed only once the replay position has passed its stamp (at or after its commit
        record), so the instant is never later than the real one: the lag published from it is never
        under-stated."""
        server = self.servers.get(key)
        source = self.source_name(key)
        if server is None or source is None or not server.running:
            return None
        try:
            replayed = replay_status(server).replay_lsn
        except PostgresError:
            return None
        if replayed is None:
            return None
        with self._lock:
            done = [a.at for a in self.acks if a.server == source and a.lsn is not None and a.lsn <= replayed]
        return max(done) if done else None

    def app_credentials(self) -> dict[str, str]:
        """The application's login (what the replicated secret holds). The servers trust 127.0.0.1
        (:mod:`automation.postgres.sql`), so the password is a placeholder nothing checks."""
        return {"username": APP_USER, "password": "trust-auth-on-loopback", "dbname": DATABASE}

    def close_sessions(self) -> None:
        """Close the control sessions kept open (the servers keep running for their owner)."""
        with self._lock:
            for con in self._admin.values():
                sql.close_quietly(con)
            self._admin.clear()
