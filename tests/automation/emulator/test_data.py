"""The data plane: acknowledged writes, copies per region, and asynchronous replication links.

Replication lag is never set by hand: it is the age of the oldest write a copy lacks from its source,
which is what RDS's ``ReplicaLag`` ("the amount of time a read replica DB instance lags behind a
source DB instance", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html) and
Aurora's ``AuroraGlobalDBReplicationLag`` describe
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-monitoring.html).
These tests drive ``DataPlane`` directly with a virtual clock and a set of dark regions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from automation.emulator.clock import VirtualClock
from automation.emulator.data import DataPlane, Store

A, B = "us-east-1", "us-west-2"
SRC, DST = "db:a", "db:b"


@dataclass
class Plane:
    """A data plane with one source copy in A and one replica in B, and the regions that are dark."""

    clock: VirtualClock = field(default_factory=VirtualClock)
    dark: set[str] = field(default_factory=set)
    data: DataPlane = field(init=False)

    def __post_init__(self) -> None:
        self.data = DataPlane(self.clock.now, lambda region: region not in self.dark)
        self.data.copy(SRC, Store.DATABASE, A)
        self.data.copy(DST, Store.DATABASE, B)

    def writes(self, n: int) -> list[int]:
        return [self.data.write(SRC).id for _ in range(n)]

    def go_dark(self, region: str) -> None:
        self.data.sync()  # what was due before the outage is applied, as Emulator.go_dark does
        self.dark.add(region)

    def come_back(self, region: str) -> None:
        self.data.sync()
        self.dark.discard(region)
        self.data.sync()  # replication resumes from this instant, as Emulator.come_back does


@pytest.fixture
def plane() -> Plane:
    p = Plane()
    p.data.link(SRC, DST, delay=2.0, apply_seconds=0.05)
    return p


def test_a_write_is_held_at_its_source_at_once_and_at_the_replica_after_the_delay(plane: Plane) -> None:
    (w,) = plane.writes(1)
    assert plane.data.held(SRC) == {w}
    assert plane.data.held(DST) == set()
    plane.clock.advance(1.9)
    assert plane.data.held(DST) == set()
    plane.clock.advance(0.1)
    assert plane.data.held(DST) == {w}


def test_lag_is_the_age_of_the_oldest_unapplied_write(plane: Plane) -> None:
    """ReplicaLag from the unapplied tail: 0 with nothing pending, then the oldest pending write's age."""
    assert plane.data.lag_seconds(DST) == 0.0
    plane.writes(1)
    plane.clock.advance(1.5)
    plane.writes(1)
    plane.clock.advance(0.4)
    assert plane.data.lag_seconds(DST) == pytest.approx(1.9)
    plane.clock.advance(0.1)  # the first arrives; the second is 0.5 s old
    assert plane.data.lag_seconds(DST) == pytest.approx(0.5)
    plane.clock.advance(2.0)
    assert plane.data.lag_seconds(DST) == 0.0


def test_lag_is_none_for_a_copy_nothing_replicates_into(plane: Plane) -> None:
    assert plane.data.lag_seconds(SRC) is None


def test_a_burst_builds_lag_that_drains_at_the_apply_rate(plane: Plane) -> None:
    """Writes apply one after another (``apply_seconds`` each): 400 writes take 20 s to apply."""
    plane.writes(400)
    plane.clock.advance(12.0)  # 2 s delay, then 10 s of applying: 200 applied
    assert len(plane.data.held(DST)) == pytest.approx(200, abs=1)
    assert plane.data.lag_seconds(DST) == pytest.approx(12.0)
    plane.clock.advance(10.0)
    assert plane.data.lag_seconds(DST) == 0.0


@pytest.mark.parametrize("dark", [A, B], ids=["source dark", "replica dark"])
def test_replication_stops_while_either_region_is_dark_and_lag_grows(plane: Plane, dark: str) -> None:
    plane.writes(3)
    plane.go_dark(dark)
    plane.clock.advance(600)
    assert plane.data.held(DST) == set()
    assert plane.data.lag_seconds(DST) == pytest.approx(600)


def test_what_was_due_before_an_outage_was_applied(plane: Plane) -> None:
    (early,) = plane.writes(1)
    plane.clock.advance(5)
    (late,) = plane.writes(1)
    plane.clock.advance(1)
    plane.go_dark(A)
    plane.clock.advance(60)
    assert plane.data.held(DST) == {early}, "the write older than the delay crossed before the outage"
    assert plane.data.lag_seconds(DST) == pytest.approx(61), f"#{late} waits for region A"


def test_replication_resumes_from_the_instant_the_region_answers_again(plane: Plane) -> None:
    """The backlog drains from recovery on: 400 pending writes are applied within 20 s of it."""
    plane.writes(400)
    plane.go_dark(A)
    plane.clock.advance(300)
    plane.come_back(A)
    plane.clock.advance(19.0)
    assert len(plane.data.held(DST)) == pytest.approx(380, abs=1)
    plane.clock.advance(1.0)
    assert plane.data.lag_seconds(DST) == 0.0


def test_unlink_returns_the_tail_the_target_never_receives(plane: Plane) -> None:
    """A promotion stops replication: the unapplied tail is lost to the promoted copy."""
    plane.writes(2)
    plane.clock.advance(3.0)
    tail = plane.writes(3)
    lost = plane.data.unlink(DST)
    plane.clock.advance(3600)
    assert lost == tail
    assert plane.data.held(DST).isdisjoint(tail)
    assert plane.data.source_of(DST) is None


def test_a_new_link_replicates_the_source_from_its_beginning() -> None:
    """A replica created later catches up on everything the source holds, one write at a time."""
    p = Plane()
    old = p.writes(5)
    p.clock.advance(100)
    p.data.link(SRC, DST, delay=2.0, apply_seconds=0.05)
    assert p.data.held(DST) == {old[0]}, "writes older than the delay are due at once"
    assert p.data.lag_seconds(DST) == pytest.approx(100)
    p.clock.advance(0.2)
    assert p.data.held(DST) == set(old)


def test_relinking_a_target_replaces_its_source() -> None:
    """One source per replica: linking a copy again drops its previous incoming link."""
    p = Plane()
    p.data.copy("db:c", Store.DATABASE, A)
    p.data.link(SRC, DST, delay=1.0, apply_seconds=0.0)
    p.data.link("db:c", DST, delay=1.0, apply_seconds=0.0)
    assert p.data.source_of(DST) is p.data.copies["db:c"]
    assert len(p.data.links) == 1


def test_replication_both_ways_never_echoes_a_write_back() -> None:
    """A global table or a bucket pair: each copy takes writes and replicates into the other."""
    p = Plane()
    p.data.link(SRC, DST, delay=1.0, apply_seconds=0.0)
    p.data.link(DST, SRC, delay=1.0, apply_seconds=0.0)
    (a,) = p.writes(1)
    b = p.data.write(DST).id
    p.clock.advance(5)
    assert p.data.held(SRC) == p.data.held(DST) == {a, b}
    assert p.data.copies[SRC].content == [a, b]
    assert p.data.copies[DST].content == [b, a]
    assert p.data.lag_seconds(SRC) == p.data.lag_seconds(DST) == 0.0


def test_replace_content_returns_what_only_the_discarded_copy_held() -> None:
    """An Aurora rebuild: the old primary's unreplicated writes survive only in its snapshot."""
    p = Plane()
    shared = p.writes(2)
    p.data.link(SRC, DST, delay=1.0, apply_seconds=0.0)
    p.clock.advance(2)
    p.data.unlink(DST)
    only_a = p.writes(2)
    discarded = p.data.replace_content(SRC, DST)
    assert discarded == only_a
    assert p.data.held(SRC) == set()
    assert set(shared) <= p.data.held(DST)


def test_missing_names_the_acknowledged_writes_a_copy_lacks(plane: Plane) -> None:
    plane.writes(2)
    plane.clock.advance(3)
    tail = plane.writes(1)
    acknowledged = plane.data.acknowledged(Store.DATABASE)
    assert [w.id for w in plane.data.missing(DST, acknowledged)] == tail
    assert plane.data.acknowledged(Store.TABLE) == []
    assert all(w.region == A and w.copy == SRC for w in acknowledged)


def test_arrivals_are_the_commit_to_arrival_latencies_of_a_period(plane: Plane) -> None:
    """What DynamoDB's ``ReplicationLatency`` measures per item: commit at the source to appearance
    at the replica, for the writes that arrived in a half-open period ``[since, until)``."""
    start = plane.clock.now()
    plane.writes(2)  # applied at +2.00 and +2.05
    plane.clock.advance(10)
    at = lambda s: start + timedelta(seconds=s)  # noqa: E731
    assert plane.data.arrivals(DST, at(0), at(2.05)) == [2.0]
    assert plane.data.arrivals(DST, at(2.05), at(10)) == [pytest.approx(2.05)]
    assert plane.data.arrivals(SRC, at(0), at(10)) == [], "nothing replicates into the source"


# -- what mutation testing (mutmut, automation/emulator/data.py) showed no test asserted ------------


def test_a_copy_is_the_same_copy_each_time_it_is_named(plane: Plane) -> None:
    """``copy`` finds the copy it made: asking again never empties it."""
    (w,) = plane.writes(1)
    assert plane.data.copy(SRC, Store.DATABASE, A).present == {w}


def test_receiving_a_held_write_again_changes_nothing(plane: Plane) -> None:
    """Two-way replication may offer a write back to where it came from: it is not held twice."""
    (w,) = plane.writes(1)
    source = plane.data.copies[SRC]
    assert source.receive(w) is False
    assert source.content == [w]


def test_a_dark_link_does_not_stop_the_others(plane: Plane) -> None:
    """Replication of each link depends on its own regions only: a link out of a dark region does
    not hold back a link between two regions that answer."""
    c = "us-west-1"
    plane.data.copy("db:c", Store.DATABASE, c)
    plane.data.copy("db:d", Store.DATABASE, c)
    plane.data.link("db:c", "db:d", delay=1.0, apply_seconds=0.0)
    w_c = plane.data.write("db:c").id
    plane.writes(1)
    plane.go_dark(A)
    plane.clock.advance(5)
    assert w_c in plane.data.held("db:d")


def test_a_link_waiting_on_a_write_does_not_hold_back_the_next_link(plane: Plane) -> None:
    """A link whose next write is not due yet must not stop later links from applying theirs."""
    c = "us-west-1"
    plane.data.copy("db:c", Store.DATABASE, c)
    plane.data.copy("db:d", Store.DATABASE, c)
    plane.data.link("db:c", "db:d", delay=1.0, apply_seconds=0.0)
    w_c = plane.data.write("db:c").id
    plane.clock.advance(1.5)  # db:c's write is due (1 s); a write to A now is not (2 s)
    plane.writes(1)
    assert w_c in plane.data.held("db:d")


def test_writes_already_held_are_skipped_and_the_rest_still_arrive_in_order(plane: Plane) -> None:
    """A target that already holds some of the source's writes still receives every other one,
    each once and in the source's order; writes not yet due stay out."""
    w1, w2, w3 = plane.writes(3)
    plane.data.copies[DST].receive(w1)  # e.g. seeded by a snapshot
    plane.clock.advance(2.5)  # all three due (2 s), applied 0.05 s apart
    w4 = plane.data.write(SRC).id  # writing syncs first
    assert plane.data.copies[DST].content == [w1, w2, w3]
    assert w4 not in plane.data.held(DST)
    plane.clock.advance(3)
    plane.data.sync()
    assert plane.data.copies[DST].content == [w1, w2, w3, w4]


def test_a_new_write_is_received(plane: Plane) -> None:
    """``receive`` says whether the write was new (replication counts on it to skip echoes)."""
    assert plane.data.copies[DST].receive(10_000) is True


def test_a_link_whose_next_write_is_not_due_does_not_stop_the_links_after_it(plane: Plane) -> None:
    """Links are independent: the A->B link waiting on a write that is not due yet must not keep a
    later link from applying a write that is."""
    c = "us-west-1"
    plane.data.copy("db:c", Store.DATABASE, c)
    plane.data.copy("db:d", Store.DATABASE, c)
    plane.data.link("db:c", "db:d", delay=1.0, apply_seconds=0.0)
    plane.writes(1)  # A -> B: due at 2.0 s
    plane.clock.advance(0.5)
    w_c = plane.data.write("db:c").id  # C -> D: due at 1.5 s
    plane.clock.advance(1.1)  # 1.6 s: only C's write is due
    assert w_c in plane.data.held("db:d")


def test_a_severed_link_stops_replicating_while_both_regions_answer(plane: Plane) -> None:
    """A partition between the regions (or broken replication): both answer, nothing flows; what
    was written meanwhile arrives once the link is whole again (the backlog drains from then)."""
    link = plane.data.link_into(DST)
    assert link is not None
    plane.data.sync()
    plane.data.severed.add((frozenset((A, B)), Store.DATABASE))
    assert not plane.data.flowing(link)
    ws = plane.writes(2)
    plane.clock.advance(60)
    assert not set(ws) & plane.data.held(DST), "a severed link applied writes"
    assert plane.data.lag_seconds(DST) == pytest.approx(60.0)
    plane.data.severed.clear()
    plane.data.sync()
    plane.clock.advance(5)
    assert set(ws) <= plane.data.held(DST)
