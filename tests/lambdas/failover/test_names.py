"""Names the runbook generates fit AWS's limits, stay distinct, and are the same on every run."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.failover import failback, names, steps
from lambdas.failover.context import RunbookContext
from tests.lambdas.failover.harness import FAST, clients_for
from tests.lambdas.failover.world import REGION_B, World


def test_fit_keeps_a_name_that_fits_and_cuts_one_that_does_not_with_a_stable_hash() -> None:
    assert names.fit("short-name", 63) == "short-name"
    long = "x" * 70
    cut = names.fit(long, 63)
    assert len(cut) == 63 and cut == names.fit(long, 63)
    assert names.fit("a" * 69 + "1", 63) != names.fit("a" * 69 + "2", 63)
    assert not names.fit("ab-" * 30, 50).rstrip("0123456789abcdef").endswith("--")
    with pytest.raises(ValueError, match="no room"):
        names.fit("abc", 5)


@pytest.mark.parametrize("length", [1, 40, 52, 53, 63])
def test_failover_instance_id_fits_the_rds_identifier_limit(length: int) -> None:
    cluster = ("c" * length)[:length]
    ident = names.failover_instance_id(cluster)
    assert 1 <= len(ident) <= names.RDS_IDENTIFIER_MAX, ident
    assert not ident.endswith("-") and "--" not in ident
    if length + len("-failover-1") <= 63:
        assert ident == f"{cluster}-failover-1"  # names that fit do not change between versions


def test_two_long_clusters_differing_at_the_end_get_different_instance_ids() -> None:
    a = "p" * 62 + "1"
    b = "p" * 62 + "2"
    assert names.failover_instance_id(a) != names.failover_instance_id(b)


def test_the_failback_writer_is_the_primary_s_own_name(world: World) -> None:
    """Rename to replace: the runbook creates and promotes the failback replica under the name region
    A's application is configured with, never a second name beside it."""
    ctx = RunbookContext.from_dict(world.context)
    assert (
        failback._failback_writer_id(ctx, "reestablish_replication") == world.context["primaryDbInstanceId"]
    )


AT = datetime(2031, 12, 31, 23, 59, 30, tzinfo=UTC)


@pytest.mark.parametrize("length", [1, 20, 37, 38, 54, 63])
def test_the_retained_name_fits_keeps_its_marker_and_stamp(length: int) -> None:
    """Names fit: the old primary's retained name is a valid 63-character identifier for any primary
    identifier RDS accepts, and always ends ``-pre-failback-<stamp>`` (what the role's pattern names)."""
    primary = "d" + "b" * (length - 1)
    retained = names.retained_instance_id(primary, AT)
    assert len(retained) <= names.RDS_IDENTIFIER_MAX and not retained.endswith("-") and "--" not in retained
    assert retained.endswith("-pre-failback-203112312359"), retained
    assert fnmatch.fnmatchcase(retained, names.retained_instance_pattern(primary))
    if length <= 37:
        assert retained == f"{primary}-pre-failback-203112312359"  # names that fit are not cut
    other = names.retained_instance_id(primary[:-1] + "c", AT)
    assert other != retained, "two long primaries differing at the end keep different retained names"
    # The stamp reads back from the retained name (the failback-stamp tag's value, B13-8), and only
    # from a retained name of this primary.
    assert names.retained_stamp(primary, retained) == "203112312359"
    assert names.retained_stamp(primary, primary) is None
    assert names.retained_stamp(primary, other) is None


def test_failover_adds_a_writer_instance_whose_identifier_fits(make_world: Callable[..., World]) -> None:
    """A headless secondary with a 63-character identifier gets a writer that RDS accepts."""
    world = make_world("aurora-global")
    rds = world.client("rds", REGION_B)
    cluster_id = f"{world.app}-" + "s" * (62 - len(world.app))
    assert len(cluster_id) == 63
    arn = rds.create_db_cluster(
        DBClusterIdentifier=cluster_id,
        Engine="aurora-postgresql",
        GlobalClusterIdentifier=world.context["globalClusterId"],
    )["DBCluster"]["DBClusterArn"]
    world.context |= {"drClusterId": cluster_id, "drClusterArn": arn}
    ctx = RunbookContext.from_dict(world.context)

    steps.step_handler("promote_database")(ctx, clients_for(world), {**FAST, "wait": True})

    members = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["DBClusterMembers"]
    created = [m["DBInstanceIdentifier"] for m in members]
    assert created == [names.failover_instance_id(cluster_id)]
    assert all(len(i) <= names.RDS_IDENTIFIER_MAX for i in created), created


@given(
    cluster=st.from_regex(r"[a-z][a-z0-9-]{0,61}[a-z0-9]", fullmatch=True).filter(lambda c: "--" not in c),
    stamp=st.from_regex(r"20[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}", fullmatch=True),
)
def test_every_kept_copy_of_a_cluster_s_snapshot_is_within_its_pattern(cluster: str, stamp: str) -> None:
    """The runbook role may copy and tag only its own cluster's kept snapshots (breakiam22b BI22b-7):
    every copy kept_snapshot_id makes of ``rds:unplanned-global-failover-<cluster>-<time>`` matches
    kept_snapshot_pattern(cluster), and another cluster's does not unless its id starts with the part
    the pattern keeps."""
    from automation.iam_eval import resource_matches
    from lambdas.failover.names import kept_snapshot_id, kept_snapshot_pattern

    kept = kept_snapshot_id(f"rds:unplanned-global-failover-{cluster}-{stamp}")
    assert resource_matches(kept_snapshot_pattern(cluster), kept)
    other = kept_snapshot_id(f"rds:unplanned-global-failover-x{cluster}-{stamp}")
    assert not resource_matches(kept_snapshot_pattern(cluster), other)
