"""Test-only switches that bring a fixed safety defect back, so the checker can show it still sees it.

``ACTIVE`` is empty in every deployed runbook: no product code adds to it, no environment variable or
parameter reaches it. ``tests/safety`` turns a name on for one schedule (``tests.safety.regressions``)
and asserts that the checker reports the invariant the old behaviour broke. A step consults it with
``on(name)`` only at the point where the old and the new behaviour part.
"""

from __future__ import annotations

from enum import StrEnum


class Regression(StrEnum):
    """The old behaviours that broke an invariant of docs/safety.md; each names what it brings back."""

    FENCE_BEST_EFFORT = "fence-best-effort"
    """A fence refused by a region A that answers is a warning and the failover promotes anyway
    (breaks one_writer)."""
    SWITCH_BEFORE_LATCH = "switch-before-latch"
    """The failover moves the writer and throws the switch before it writes the latch, so a run
    stopped in between leaves the canary free to release the switch (breaks traffic_follows_writer). A graph shape, not a
    branch in a step: ``tests.safety.regressions`` restores the old graph."""
    NO_PRIMARY_KMS_KEY = "no-primary-kms-key"
    """The failback ignores the region-A key the outputs name and waits for a hand-passed one (breaks
    converges for an encrypted break-glass failback)."""
    FAILBACK_STAYS_DRAINED = "failback-stays-drained"
    """A failback that stops after its drain (zero lag not reached, a switchover cancelled or refused, a
    promotion refused, a poll budget run out) leaves region B drained although it still holds the
    writer: neither the lag wait nor the rollback step ``restore_dr`` undoes the drain (breaks
    converges)."""
    PROMOTE_UNPROTECTED = "promote-unprotected"
    """A failover "promotes" a region-B instance that is not replicating (breaks no_loss)."""
    UNPLANNED_SNAPSHOT_NOT_KEPT = "unplanned-snapshot-not-kept"
    """The writes an Aurora managed failover discarded are left in the automated
    ``rds:unplanned-global-failover-*`` snapshot, which expires with the backup retention (breaks
    no_loss)."""
    SCALE_TO_CONTEXT = "scale-to-context"
    """A failover re-run sets region B's desired capacity back to the context's, undoing what
    autoscaling raised (breaks single_flight)."""
    FAILBACK_BESIDE_PRIMARY = "failback-beside-primary"
    """The rds-replica failback creates and promotes ``<primary>-failback`` beside region A's old
    primary instead of renaming the old primary and replacing it under its name, so region A's
    application keeps writing to the old instance (breaks no_loss)."""
    FAILBACK_UNTAGGED = "failback-untagged"
    """The rds-replica failback creates its replica under ``<primary>`` without the failback-stamp tag,
    so the primary stack cannot tell it from the old primary and never adopts it (breaks B13-8:
    region A's writer in no stack's state)."""
    LAG_NOT_ACTIVE_IS_CAUGHT_UP = "lag-not-active-is-caught-up"
    """The zero-lag wait reads a negative lag (``ReplicaLag`` -1: replication not active) as
    caught up, and moves the writer over a replica that lacks writes (breaks no_loss)."""

    ONE_ZERO_PROVES_ZERO_LAG = "one-zero-proves-zero-lag"
    """The zero-lag wait takes any single zero datapoint of a minute after the drain as proof,
    although it may have been sampled before a write committed late in the drain (breaks no_loss)."""

    PG_ZERO_LAG_DATAPOINTS = "pg-zero-lag-datapoints"
    """RDS for PostgreSQL's planned changes wait for two zero ``ReplicaLag`` minutes after the drain, as
    the receipts' do. The documented PostgreSQL metric (``now() - pg_last_xact_replay_timestamp()``) grows
    on a caught-up replica of a drained source, so the wait never ends (breaks converges: a failback
    gives up and undoes its drain, every time)."""

    SKIP_STORE_DRAIN = "skip-store-drain"
    """A planned change moves the writer once the database is at zero lag, without waiting for the
    receipts' S3 replication to drain (breaks no_loss in the receipts store)."""

    NO_LOCK = "no-lock"
    """Runs do not take the runbook lock (``lambdas.failover.lock.acquire`` answers as if it were
    free and writes nothing), so a second run acts while the first is between steps (breaks
    single_flight)."""

    JOURNAL_LAST_WRITER_WINS = "journal-last-writer-wins"
    """A journal write overwrites what another run (a fence that joined the failover) put between its
    read and its put, with no repair: the fence's record of what it disabled is lost (breaks
    converges: the failback leaves region A's event sources off)."""

    FENCE_WEB_TIER_FIRST = "fence-web-tier-first"
    """The fence scales region A's web tier to zero before it throttles the functions, so a run that
    dies in between leaves functions serving the writer while Route 53, following the load
    balancer, answers region B (breaks traffic_follows_writer: seed 26)."""

    SWITCH_AFTER_PROMOTION = "switch-after-promotion"
    """The failover throws the switch after the promotion, not before it: a run that dies right after
    the writer move leaves Route 53 answering a region A that comes back with its old writer until
    the canary's next minute takes effect (breaks no_loss: seed 6). A graph shape, not a branch in a
    step: ``tests.safety.regressions`` restores the old graph."""

    FAILBACK_UNDOES_MOVE = "failback-undoes-move"
    """A failback that stops after ``switch_writer`` asked AWS to move the writer (``WRITER_MOVE_MARK``)
    gives region B its writes back whenever region B still looks like the writer (an RDS replica
    still naming its source, whatever its status), although a promotion or switchover may already
    be moving it to region A: writes region B takes then are cut off (breaks no_loss, one_writer:
    B10-1/B10-2, B21-1)."""

    STOP_KEEPS_FENCE = "stop-keeps-fence"
    """A failover that stops on a failed step before the writer moved leaves region A fenced (and the
    latch, the switch and a pending fence as they were): nothing serves the writer until an operator
    resumes (breaks converges: 9B-3)."""


ACTIVE: set[str] = set()
"""Names of the regressions turned on (tests only)."""


def on(regression: Regression) -> bool:
    """Whether the old behaviour ``regression`` is turned on (never, outside the safety tests)."""
    return regression.value in ACTIVE
