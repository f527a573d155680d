"""The writer the failover adds to a headless Aurora secondary: no one can take its name first, and a
run that dies around its creation resumes to one writer, never two (review breakiam22b BI22b-9).

DB instance identifiers are unique per account and region: CreateDBInstance answers
``DBInstanceAlreadyExists`` ("The user already has a DB instance with the given identifier",
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html). The runbook
names the writer ``<cluster>-failover-<token>`` with a token it draws, journals the name before it
asks, and takes as its own only an instance the cluster holds (DescribeDBInstances
``DBClusterIdentifier``; DescribeDBClusters ``DBClusterMembers``, "The list of DB instances that make
up the DB cluster": https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.failover import executor
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.names import (
    FAILOVER_NAME_ATTEMPTS,
    FAILOVER_WRITER_MARK,
    failover_instance_prefix,
    failover_token,
)
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.harness import FORCED, new_session, run_book
from tests.lambdas.failover.world import REGION_B, World, all_db_instances


class Died(BaseException):
    """The run's process dies (a kill): nothing in the runbook may catch it."""


def _journal(world: World) -> dict[str, Any]:
    name = f"{world.context['latchParameterName']}-journal"
    try:
        value = world.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"]
    except world.client("ssm", REGION_B).exceptions.ParameterNotFound:
        return {}
    return json.loads(value)


def _failover_instances(world: World) -> list[str]:
    """Every instance of region B named like the runbook's writer of region B's cluster, member or not."""
    prefix = failover_instance_prefix(world.context["drClusterId"])
    return sorted(
        d["DBInstanceIdentifier"]
        for d in all_db_instances(world.client("rds", REGION_B))
        if d["DBInstanceIdentifier"].startswith(prefix)
    )


@dataclass
class _Run:
    """A run's own clients (its own session, as a separate process would have) and the CreateDBInstance
    calls it made."""

    clients: Clients
    creates: list[str] = field(default_factory=list)


def _run_clients(world: World, *, die: str | None = None) -> _Run:
    """Clients whose run dies (``Died``) right ``"before"`` its first CreateDBInstance is sent (AWS never
    sees it) or right ``"after"`` AWS applied it; never when ``die`` is None."""
    session = new_session()
    run = _Run(
        Clients.for_context(RunbookContext.from_dict(world.context), session, endpoint_url=world.endpoint_url)
    )

    def before(params: dict[str, Any], **_: Any) -> None:
        run.creates.append(str(params["DBInstanceIdentifier"]))
        if die == "before":
            raise Died

    def after(**_: Any) -> None:
        if die == "after":
            raise Died

    session.events.register("provide-client-params.rds.CreateDBInstance", before)
    session.events.register("after-call.rds.CreateDBInstance", after)
    return run


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_failover_that_dies_around_create_db_instance_resumes_to_one_writer(
    make_world: Callable[..., World], when: str
) -> None:
    """converges, and the write-ahead of the writer's name: a run that dies right before its
    CreateDBInstance reaches AWS, or right after AWS applied it, leaves the drawn name in the journal;
    its resume (the same run id re-enters the lock) ends done with region B's cluster holding exactly
    one writer, under that name, and no second instance of that name's kind anywhere in region B. The
    resume asks for no new name: after the creation it asks for nothing at all."""
    world = make_world("aurora-global")
    ctx = RunbookContext.from_dict(world.context)
    cluster_id = world.context["drClusterId"]
    first = _run_clients(world, die=when)
    with pytest.raises(Died):
        executor.run("failover", ctx, first.clients, params=FORCED, run_id="local-writer", max_workers=1)
    (asked,) = first.creates
    assert failover_token(cluster_id, asked) is not None, asked
    assert _journal(world).get(FAILOVER_WRITER_MARK) == asked, "the name is journaled before it is asked for"
    assert world.cluster_members(REGION_B, cluster_id) == ([asked] if when == "after" else [])

    resumed = _run_clients(world)
    report = executor.run("failover", ctx, resumed.clients, params=FORCED, run_id="local-writer")

    assert report.outcome == "done", report.format_table()
    assert world.cluster_members(REGION_B, cluster_id) == [asked]
    assert _failover_instances(world) == [asked], "a second writer instance was created"
    assert resumed.creates == ([] if when == "after" else [asked]), resumed.creates
    assert world.global_writer() == world.context["drClusterArn"]


@dataclass
class Squatter(Fault):
    """Someone who reads the run journal and, the moment the runbook is about to create the name it
    drew, creates a standalone instance under it first (``times`` times; then lets it be)."""

    world: World | None = None
    taken: list[str] = field(default_factory=list)

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        if event_name != "before-send.rds.CreateDBInstance" or self.world is None:
            return None
        if self.times is not None and len(self.taken) >= self.times:
            return None
        name = str(_journal(self.world)[FAILOVER_WRITER_MARK])
        self.world.client("rds", REGION_B).create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="squatter",
            MasterUserPassword="squatter-password-1",
        )
        self.taken.append(name)
        return None  # the runbook's request goes on to AWS, which now refuses it


def test_a_journaled_name_taken_before_its_creation_is_left_alone_and_another_drawn(
    make_world: Callable[..., World],
) -> None:
    """A drawn name taken anyway (by chance, or by someone who read the journal) is not the runbook's:
    the failover leaves that instance alone, draws another name and ends with region B's cluster
    holding a writer of its own; the journal no longer names a writer to create."""
    world = make_world("aurora-global")
    cluster_id = world.context["drClusterId"]
    squatter = Squatter(times=1, world=world)

    report = run_book(world, "failover", squatter)

    assert report.outcome == "done", report.format_table()
    (taken,) = squatter.taken
    (writer,) = world.cluster_members(REGION_B, cluster_id)
    assert writer != taken and failover_token(cluster_id, writer) is not None, (writer, taken)
    left = world.db(REGION_B, taken)
    assert left is not None and not left.get("DBClusterIdentifier"), left
    # The journal keeps the name it created (a resume asks for it again), not the taken one.
    assert _journal(world).get(FAILOVER_WRITER_MARK) == writer
    assert world.global_writer() == world.context["drClusterArn"]


def test_a_failover_whose_every_drawn_name_is_taken_stops_naming_them(
    make_world: Callable[..., World],
) -> None:
    """Bounded: when every name it draws is taken before it asks (someone at work, not chance), the
    promotion stops after FAILOVER_NAME_ATTEMPTS names, says which and where, and never moves the
    global writer to a cluster without an instance."""
    world = make_world("aurora-global")
    squatter = Squatter(world=world)

    report = run_book(world, "failover", squatter)

    assert report.outcome == "stopped" and report.stopped_at == "promote_database", report.format_table()
    assert len(squatter.taken) == FAILOVER_NAME_ATTEMPTS, squatter.taken
    record = report.record("promote_database")
    assert record.code == "DBInstanceAlreadyExists" and all(t in record.detail for t in squatter.taken), (
        record
    )
    assert world.cluster_members(REGION_B, world.context["drClusterId"]) == []
    assert world.global_writer() != world.context["drClusterArn"]
