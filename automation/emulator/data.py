"""The data the emulated stores hold: a write log per store, copies per region, replication links.

moto keeps the *shape* of a deployment (instances, clusters, tables, buckets) but no data; this
module keeps the data, so that loss is something the emulator can count rather than assume.

* A ``Write`` is one acknowledged client write (relational database, DynamoDB table or S3
  receipts), with the instant it was acknowledged and the region whose writer took it.
* A ``Copy`` is one physical copy of a store in one region: an RDS instance, an Aurora cluster,
  a table replica, a bucket. Its content is the list of writes it holds, in arrival order.
* A ``Link`` replicates one copy into another asynchronously: each write becomes visible in the
  target ``delay`` seconds after it was committed at the source, one after another at a bounded
  ``apply_seconds`` per write (so a burst of writes builds lag that drains over time), and only
  while both regions answer. What has not been applied is the link's unapplied tail.

Replication lag is computed from the unapplied tail, never set by hand: it is the age of the oldest
write the target does not yet hold (0 when it holds everything), which is how RDS describes
``ReplicaLag`` for MySQL and MariaDB (for PostgreSQL RDS publishes the age of the last replayed
commit instead, :meth:`DataPlane.last_replayed_at`) ("the amount of time a read replica DB instance lags behind a source DB instance";
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html) and Aurora
``AuroraGlobalDBReplicationLag`` ("the amount of lag ... when replicating updates from the primary
AWS Region", in milliseconds; https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-monitoring.html).
The delays are assumptions, stated where they are defined (``automation.emulator.world``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Store(StrEnum):
    """The three stores a payment touches; each has its own write log and replication."""

    DATABASE = "database"
    """The relational ledger: RDS instance or Aurora cluster. One writer; replicas are read-only."""
    TABLE = "table"
    """The DynamoDB global table: every replica takes writes, replication both ways."""
    RECEIPTS = "receipts"
    """The S3 receipts bucket: cross-region replication both ways."""


@dataclass(frozen=True)
class Write:
    """One acknowledged client write."""

    id: int
    store: Store
    region: str
    copy: str
    at: datetime
    client: bool = True
    """False for a commit no client was told of (the runbook's drain marker): it replicates and is
    replayed like any other, but it is no acknowledged write (:meth:`DataPlane.acknowledged`)."""


@dataclass
class Copy:
    """One physical copy of a store in one region (keyed by ARN or identifier)."""

    key: str
    store: Store
    region: str
    content: list[int] = field(default_factory=list)
    present: set[int] = field(default_factory=set)

    def receive(self, write_id: int) -> bool:
        """Hold ``write_id``; False if it was already held."""
        if write_id in self.present:
            return False
        self.present.add(write_id)
        self.content.append(write_id)
        return True


@dataclass
class Link:
    """Asynchronous replication from ``source`` into ``target``."""

    source: Copy
    target: Copy
    delay: float
    apply_seconds: float
    applied: int = 0
    """How many of the source's content entries have been considered (applied or already held)."""
    last_apply: datetime | None = None
    up_since: datetime | None = None
    arrived: list[tuple[datetime, int]] = field(default_factory=list)
    """(instant applied, write id) of every write this link applied, in order."""
    latest_commit: datetime | None = None
    """The latest commit instant among ``arrived``'s writes (kept as they arrive: read every minute)."""

    def tail(self) -> list[int]:
        """Write ids at the source not yet applied at the target (the unapplied tail)."""
        return [w for w in self.source.content[self.applied :] if w not in self.target.present]


class DataPlane:
    """Every copy, link and write of the emulated deployment."""

    def __init__(self, now: Callable[[], datetime], reachable: Callable[[str], bool]) -> None:
        self._now = now
        self._reachable = reachable
        self.writes: dict[int, Write] = {}
        self._acknowledged: dict[Store, list[Write]] = {store: [] for store in Store}
        """``acknowledged``'s answer per store, kept as writes are recorded (``writes`` only grows,
        and a ``Write`` never changes): the checker asks after every operation."""
        self.copies: dict[str, Copy] = {}
        self.links: list[Link] = []
        self.severed: set[tuple[frozenset[str], Store]] = set()
        """(region pair, store) whose replication does not flow although both regions answer (a
        network partition between regions, a replication error): see ``Emulator.partition``."""
        self._ids = 0

    # -- topology ------------------------------------------------------------------------------

    def copy(self, key: str, store: Store, region: str) -> Copy:
        """The copy called ``key`` (created empty on first use)."""
        found = self.copies.get(key)
        if found is None:
            found = self.copies[key] = Copy(key, store, region)
        return found

    def link(self, source: str, target: str, *, delay: float, apply_seconds: float) -> Link:
        """Start replicating ``source`` into ``target`` (from the beginning of the source's content)."""
        self.unlink(target)
        link = Link(self.copies[source], self.copies[target], delay, apply_seconds, up_since=self._now())
        self.links.append(link)
        return link

    def unlink(self, target: str) -> list[int]:
        """Stop replication into ``target`` now; returns the tail it will never receive."""
        self.sync()
        lost: list[int] = []
        keep: list[Link] = []
        for link in self.links:
            if link.target.key == target:
                lost += link.tail()
            else:
                keep.append(link)
        self.links = keep
        return lost

    def source_of(self, target: str) -> Copy | None:
        """The copy ``target`` replicates from, if any."""
        return next((link.source for link in self.links if link.target.key == target), None)

    def flowing(self, link: Link) -> bool:
        """Whether ``link`` can replicate now: both regions answer and nothing severs them."""
        source, target = link.source.region, link.target.region
        if not (self._reachable(source) and self._reachable(target)):
            return False
        return (frozenset((source, target)), link.target.store) not in self.severed

    def link_into(self, target: str) -> Link | None:
        """The link replicating into ``target``, if any."""
        return next((link for link in self.links if link.target.key == target), None)

    def rename(self, old: str, new: str) -> None:
        """Copy ``old`` is now called ``new`` (its instance was renamed): same content, same links.

        Writes already recorded keep the key they were taken under (what the client reached then).
        """
        if new in self.copies:
            raise ValueError(f"copy {new} already exists: cannot rename {old} to it")
        copy = self.copies.pop(old, None)
        if copy is None:
            return
        copy.key = new
        self.copies[new] = copy

    def replace_content(self, target: str, source: str) -> list[int]:
        """``target`` discards what it holds and becomes a copy of ``source`` (a rebuild).

        Returns the writes ``target`` held that ``source`` does not: they survive only in
        whatever snapshot was taken before the rebuild.
        """
        self.sync()
        t, s = self.copies[target], self.copies[source]
        discarded = [w for w in t.content if w not in s.present]
        t.content, t.present = [], set()
        return discarded

    # -- writes and replication ----------------------------------------------------------------

    def next_id(self) -> int:
        """Reserve the id of a write about to be attempted (a real database names it before it commits)."""
        self._ids += 1
        return self._ids

    def write(
        self,
        key: str,
        *,
        at: datetime | None = None,
        write_id: int | None = None,
        client: bool = True,
        synced: bool = False,
    ) -> Write:
        """Record an acknowledged write at copy ``key`` (the caller checked it accepts writes).

        ``write_id``: one reserved with :meth:`next_id`; by default a new one. ``client`` False: a
        commit no client was told of (see :class:`Write`). ``synced``: the caller called :meth:`sync`
        at this instant already (a burst: nothing more is due until the clock moves).
        """
        if not synced:
            self.sync()
        copy = self.copies[key]
        if write_id is None:
            write_id = self.next_id()
        elif write_id in self.writes:
            raise ValueError(f"write {write_id} is already recorded")
        write = Write(write_id, copy.store, copy.region, copy.key, at or self._now(), client)
        self.writes[write.id] = write
        if write.client:
            self._acknowledged[write.store].append(write)
        copy.receive(write.id)
        return write

    def sync(self, until: datetime | None = None) -> None:
        """Apply every replicated write due by ``until`` (default: now) over links that are up.

        Call before anything that changes a link's state (an outage, a promotion), so what was
        due before the change is applied and what was not is not; and again right after a region
        answers again, so its links are up from that instant (a link is up from the first sync
        that finds both regions answering).
        """
        now = until or self._now()
        for link in self.links:
            if not self.flowing(link):
                link.up_since = None
                continue
            if link.up_since is None:
                link.up_since = now
            content = link.source.content
            while link.applied < len(content):
                wid = content[link.applied]
                if wid in link.target.present:
                    link.applied += 1
                    continue
                due = self.writes[wid].at + timedelta(seconds=link.delay)
                if link.last_apply is not None:
                    due = max(due, link.last_apply + timedelta(seconds=link.apply_seconds))
                due = max(due, link.up_since)
                if due > now:
                    break
                link.target.receive(wid)
                link.last_apply = due
                link.arrived.append((due, wid))
                committed = self.writes[wid].at
                if link.latest_commit is None or committed > link.latest_commit:
                    link.latest_commit = committed
                link.applied += 1

    def lag_seconds(self, target: str) -> float | None:
        """Age of the oldest write ``target`` lacks from its source (0.0 when none); None if no link."""
        self.sync()
        link = self.link_into(target)
        if link is None:
            return None
        tail = link.tail()
        if not tail:
            return 0.0
        oldest = min(self.writes[w].at for w in tail)
        return max(0.0, (self._now() - oldest).total_seconds())

    def last_replayed_at(self, target: str) -> datetime | None:
        """Commit instant of the latest write ``target`` applied by replication (None: none yet, or no
        link). A link applies its source's writes in commit order, so every write committed before
        it is applied too: what ``pg_last_xact_replay_timestamp()`` reports on a PostgreSQL standby
        ("the time stamp of the last transaction replayed during recovery ... the time at which the
        commit or abort WAL record for that transaction was generated on the primary",
        https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-RECOVERY-INFO-TABLE)."""
        self.sync()
        link = self.link_into(target)
        return None if link is None else link.latest_commit

    def arrivals(self, target: str, since: datetime, until: datetime | None = None) -> list[float]:
        """Replication latency (seconds, commit to arrival) of each write the link into ``target``
        applied in ``[since, until)`` (a CloudWatch period), oldest first; empty if no link."""
        self.sync()
        link = self.link_into(target)
        if link is None:
            return []
        end = until or self._now()
        return [(at - self.writes[wid].at).total_seconds() for at, wid in link.arrived if since <= at < end]

    def held(self, key: str) -> set[int]:
        """Write ids copy ``key`` holds now."""
        self.sync()
        return set(self.copies[key].present)

    def acknowledged(self, store: Store) -> list[Write]:
        """Every acknowledged client write to ``store``, oldest first."""
        return list(self._acknowledged[store])

    def missing(self, key: str, among: Iterable[Write]) -> list[Write]:
        """Writes of ``among`` that copy ``key`` does not hold."""
        self.sync()
        held = self.copies[key].present  # ``held`` without its copy: only read here
        return [w for w in among if w.id not in held]
