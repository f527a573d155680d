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


@pytest.mark.parametrize("length", [1, 40, 45, 46, 52, 53, 63])
def test_failover_instance_id_fits_the_rds_identifier_limit_and_keeps_its_token(length: int) -> None:
    """Names fit and stay unpredictable: for any cluster identifier RDS accepts, the failover writer's
    name is a valid identifier of at most 63 characters that ends in the whole drawn token (never cut
    with a hash, which would make the role's ``<prefix>*`` pattern miss it, BI22b-9), and that the
    role's pattern, the program's adoption and the token reader all recognise."""
    cluster = "c" * length
    token = names.new_failover_token()
    ident = names.failover_instance_id(cluster, token)
    assert 1 <= len(ident) <= names.RDS_IDENTIFIER_MAX, ident
    assert not ident.endswith("-") and "--" not in ident
    assert ident.endswith(f"-failover-{token}"), ident
    assert fnmatch.fnmatchcase(ident, names.failover_instance_pattern(cluster))
    assert names.failover_token(cluster, ident) == token and names.is_failover_instance(cluster, ident)
    if length + len("-failover-") + names.FAILOVER_TOKEN_LENGTH <= 63:
        assert ident == f"{cluster}-failover-{token}"  # a cluster's name is cut only when it must be


def test_failover_tokens_are_drawn_fresh_and_checked() -> None:
    """The token is what no one can take ahead of time: drawn anew each time (32 bits from secrets),
    lower-case hex (RDS stores identifiers lower-cased); a name is never built from anything else."""
    tokens = {names.new_failover_token() for _ in range(64)}
    assert len(tokens) == 64, "tokens repeat: the writer's name would be predictable"
    assert all(len(t) == names.FAILOVER_TOKEN_LENGTH and t == t.lower() for t in tokens)
    for bad in ("1", "ABCDEF01", "abcdefgh", "0123456789"):
        with pytest.raises(ValueError, match="token"):
            names.failover_instance_id("cluster", bad)


def test_two_long_clusters_differing_at_the_end_get_different_instance_prefixes() -> None:
    a = "p" * 62 + "1"
    b = "p" * 62 + "2"
    assert names.failover_instance_prefix(a) != names.failover_instance_prefix(b)
    # Neither role's pattern admits the other cluster's writer.
    assert not fnmatch.fnmatchcase(names.failover_instance_id(b, "0" * 8), names.failover_instance_pattern(a))


@pytest.mark.parametrize("length", [1, 40, 52, 53, 63])
def test_the_earlier_runbooks_writer_name_is_still_recognised(length: int) -> None:
    """Deployments whose runbook created ``<cluster>-failover-1`` keep that instance: it is still a
    runbook's writer of that cluster (the dr stack adopts it), under the name the earlier runbook
    computed (cut with a hash past 63 characters), and of no other cluster."""
    cluster = "c" * length
    legacy = names.legacy_failover_instance_id(cluster)
    assert len(legacy) <= names.RDS_IDENTIFIER_MAX and names.is_failover_instance(cluster, legacy)
    if length + len("-failover-1") <= 63:
        assert legacy == f"{cluster}-failover-1"
    assert not names.is_failover_instance(cluster[:-1] + "d", legacy)
    assert not names.is_failover_instance(cluster, f"{cluster}-0")  # the program's own instances


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
    assert len(created) == 1 and names.failover_token(cluster_id, created[0]) is not None, created
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
