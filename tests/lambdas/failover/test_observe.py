"""``python -m automation status``'s reading of the rds-replica pair across re-seeded generations
(``lambdas/failover/observe.py``): where the writer is, after the ``pulumi up`` that re-seeds region B
(issue 13's ``<dr db>-g<n>``) and the IaC failback phases of later generations."""

from __future__ import annotations

from lambdas.failover.names import current_failback_id
from lambdas.failover.observe import DbMember, _rds_writer


def test_the_failback_instance_looked_at_follows_region_b_s_generation() -> None:
    """Generation 0 looks at ``<primary>-failback``; once the outputs name ``<dr db>-g2``, the IaC
    failback instance of generation 2 (``components/data.py``). It knew only generation 0's name."""
    assert current_failback_id("app-db", "app-db-replica") == "app-db-failback"
    assert current_failback_id("app-db", "app-db-replica-g2") == "app-db-failback-g2"
    assert current_failback_id("app-db-failback-g1", "app-db-replica-g2") == "app-db-failback-g2"


def test_the_writer_is_region_a_s_when_a_later_generation_s_failback_instance_is_standalone() -> None:
    """traffic_follows_writer as ``status`` reports it: after an IaC failback of generation 1 region
    A's writer is ``<primary>-failback-g1`` while region B's re-seeded ``-g1`` replica follows it; the
    status must say region A holds the writer. It looked only for a name ending in ``-failback`` and
    answered region B's old standalone instance, or none."""
    members = [
        DbMember("primary", "app-db", "writer", "available"),  # left standalone by an earlier cycle
        DbMember("primary", "app-db-failback-g1", "writer", "available", failback=True),
        DbMember("dr", "app-db-replica-g1", "writer", "available"),  # promoted by the failover
    ]
    assert _rds_writer(members) == "primary"
    members[1] = DbMember(
        "primary", "app-db-failback-g1", "replica", "available", "arn:...:app-db-replica-g1", failback=True
    )
    members[0] = DbMember("primary", "app-db", "replica", "available", "arn:...:app-db-replica-g1")
    assert _rds_writer(members) == "dr"
