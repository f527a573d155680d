"""The ledger marker function (``lambdas/api/marker.py``) on real PostgreSQL servers.

Invariant it serves: *nothing acknowledged is lost on a planned change* on RDS for PostgreSQL. The
runbook's proof there (``lambdas/failover/lossless.py``, ``replay_evidence``) is a commit made after the
drain and replayed by the replica; this function makes that commit on the source, and only there:
a standby refuses it (its own answer), and the row is no payment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import boto3
import pytest

from automation.postgres import (
    APP_USER,
    DATABASE,
    PgCluster,
    PgServer,
    make_standby,
    payment_ids,
    wait_for_catch_up,
)
from lambdas.api.clients import ClientCache
from lambdas.api.marker import commit_marker
from tests.lambdas.api.support import DR, PRIMARY


@pytest.fixture(scope="module")
def pair(pg_cluster: PgCluster) -> Iterator[tuple[PgServer, PgServer]]:
    """A writer (the drained source) and its streaming standby (the replica the runbook waits for)."""
    writer = pg_cluster.new_writer(pg_cluster.unique_name("mark-a"))
    standby = make_standby(writer, pg_cluster.unique_name("mark-b"))
    wait_for_catch_up(writer, standby)
    yield writer, standby
    for server in (writer, standby):
        pg_cluster.discard(server)


@pytest.fixture
def env_for(clients: ClientCache) -> Callable[[PgServer, str], dict[str, str]]:
    """The marker function's environment in a region, pointed at a server (as the stack sets it)."""

    def make(server: PgServer, region: str) -> dict[str, str]:
        secret = boto3.client("secretsmanager", region_name=region).create_secret(
            Name=f"marker-{server.name}-{region}",
            SecretString=json.dumps({"username": APP_USER, "password": "unused", "engine": "postgres"}),
        )
        return {
            "AWS_REGION": region,
            "DB_SECRET_ARN": secret["ARN"],
            "DB_HOST": server.host,
            "DB_PORT": str(server.port),
            "DB_NAME": DATABASE,
            "DB_SSLMODE": "disable",
        }

    return make


def _markers(server: PgServer) -> list[str]:
    rows = server.query("SELECT marker FROM ledger_marker ORDER BY committed_at", database=DATABASE)
    return [str(r[0]) for r in rows]


def test_the_marker_commits_on_the_source_and_reaches_the_replica_as_no_payment(
    pair: tuple[PgServer, PgServer], env_for: Callable[[PgServer, str], dict[str, str]], clients: ClientCache
) -> None:
    writer, standby = pair
    before = payment_ids(writer) if _has_ledger(writer) else []
    answer = commit_marker({"marker": "drain-20261130T120450Z"}, env_for(writer, PRIMARY), clients)
    assert answer["committed"] is True and answer["committedAt"], answer
    assert "drain-20261130T120450Z" in _markers(writer)
    wait_for_catch_up(writer, standby)
    assert "drain-20261130T120450Z" in _markers(standby), "the standby replays the marker's commit"
    assert (payment_ids(writer) if _has_ledger(writer) else []) == before, "a marker is no payment"


def test_a_replica_refuses_the_marker_and_says_so(
    pair: tuple[PgServer, PgServer], env_for: Callable[[PgServer, str], dict[str, str]], clients: ClientCache
) -> None:
    _, standby = pair
    answer = commit_marker({"marker": "on-the-replica"}, env_for(standby, DR), clients)
    assert answer["committed"] is False and answer["reason"], answer
    # An answer from a live database: the runbook must not read it as a dark source (lambdas/failover/darkness.py).
    assert answer["error"] == "not_writer", answer


def test_a_database_that_does_not_answer_is_named_unreachable(
    pair: tuple[PgServer, PgServer], env_for: Callable[[PgServer, str], dict[str, str]], clients: ClientCache
) -> None:
    """The marker's word that the source database is dark (break33 B33-2): nothing listens at its address."""
    writer, _ = pair
    env = {**env_for(writer, PRIMARY), "DB_PORT": "1"}  # a port nothing listens on: connection refused
    answer = commit_marker({"marker": "to-nowhere"}, env, clients)
    assert answer["committed"] is False and answer["error"] == "database_unreachable", answer


def test_without_a_database_nothing_is_committed(clients: ClientCache) -> None:
    answer = commit_marker({"marker": "m"}, {"AWS_REGION": PRIMARY}, clients)
    assert answer == {"committed": False, "reason": "no database configured (DB_SECRET_ARN unset)"}
    assert "DB_SECRET_ARN" not in os.environ


def _has_ledger(server: PgServer) -> bool:
    return bool(server.query("SELECT to_regclass('ledger') IS NOT NULL", database=DATABASE)[0][0])
