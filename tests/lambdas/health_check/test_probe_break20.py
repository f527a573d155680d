"""Review break20: the region-B canary's release of the switch on the run journal's word.

Each test names the finding (B20-n) and the invariant it protects (docs/safety.md). Findings are
regression tests: each failed before its fix (soak20 review) and passes now.
"""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from automation import __main__ as main_module
from automation.emulator import patch_moto
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.health_check import probe
from tests.lambdas.failover.harness import (
    HealthServer,
    cli_on_shifted_clock,
    declare_without_promotion,
    new_session,
)
from tests.lambdas.failover.world import REGION_A, REGION_B, World, build_world

_apps = itertools.count(1)
_session = new_session()
_clients: dict[tuple[str, str, str | None], Any] = {}


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """A moto server on a free local port (same process: the moto gap patches apply to it)."""
    undo = patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        undo()


@pytest.fixture
def health() -> Iterator[HealthServer]:
    server = HealthServer()
    yield server
    server.close()


def _region_a_answer(world: World) -> tuple[int, dict[str, Any]]:
    """What region A's health endpoint answers (lambdas/api/health.py): 200 while its web tier has
    capacity, and whether its database (the primary instance) is a writer, i.e. not a replica."""
    serving = world.asg(REGION_A)[1] > 0
    primary = world.db(REGION_A, world.context["primaryDbInstanceId"]) or {}
    writer = bool(primary) and not primary.get("ReadReplicaSourceDBInstanceIdentifier")
    return (200 if serving else 503), {"status": "ok", "region": REGION_A, "writer": writer}


def _journal(ssm: Any, ctx: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The run journal's name and value (empty when absent)."""
    name = f"{ctx['latchParameterName']}-journal"
    try:
        return name, json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return name, {}


def _canary(world: World, health: HealthServer) -> probe.Settings:
    ctx = world.context
    m = ctx["switchMetric"]
    return probe.Settings(
        region=REGION_B,
        targets=(probe.Target("web", health.url("/a-web")), probe.Target("api", health.url("/a-api"))),
        app=world.app,
        switch=probe.SwitchMetric(m["namespace"], m["name"], m["dimensions"]),
        latch_parameter=ctx["latchParameterName"],
        timeout_seconds=2.0,
        attempts=1,
    )


@pytest.mark.parametrize("tamper", ["deleted", "garbled"])
def test_b20_1_a_tampered_latch_after_a_declared_failover_keeps_traffic_on_the_writer(
    emulator: str, health: HealthServer, tamper: str, tmp_path: Path
) -> None:
    """Traffic follows the writer; an absent or garbled latch fails safe (docs/safety.md).

    The declared failover (docs/safety.md "Across pulumi ups", docs/ci.md step 3) was
    ``python -m automation latch activate`` (write_latch, throw_switch: before break34 B34-1 no fence,
    so no journal mark), then ``pulumi up -s dr`` with ``dr:active true``, which promoted region B's replica
    (since break34 B34-5 ``latch activate`` promotes it with the runbook's step; here the promotion is one the
    runbook did not make, the worst case for the canary: no ``promotionRequested`` either).
    Promoting a read replica makes it a standalone DB instance and leaves its source as it was: the
    source keeps taking writes ("When you promote a read replica, the new DB instance ... The
    source DB instance is not affected",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html). Region A's
    stack is not updated, so its web tier still serves and its health endpoint says its database is
    the writer. Nothing in the run journal says a failover holds region A: the journal is empty.

    The canary under soak20 releases the switch under a deleted or garbled latch when the journal is
    readable and clear and every region-A target says healthy writer: Route 53 then answers region A,
    whose old primary takes writes beside region B's writer (which holds every write since the
    switch). Before soak20 a deleted or garbled latch kept the switch where it was (None).
    """
    world = build_world(
        app=f"b20x{next(_apps)}", endpoint_url=emulator, session=_session, clients_cache=_clients
    )
    ctx = world.context
    path = tmp_path / "dr-outputs.json"
    path.write_text(json.dumps({"runbook": ctx}))
    # 1. The declared failover's first steps: the hold, the fence, the latch active and the switch thrown.
    clients = Clients.for_context(RunbookContext.from_dict(ctx), new_session(), endpoint_url=emulator)
    declare_without_promotion(RunbookContext.from_dict(ctx), clients)
    # 2. Region B's replica promoted by a call the runbook did not make (the dr:active true update of a
    #    pilotlight before break34 B34-5, which removed replicate_source_db: a PromoteReadReplica call).
    rds_b = world.client("rds", REGION_B)
    rds_b.promote_read_replica(DBInstanceIdentifier=ctx["drDbInstanceId"])
    assert world.dr_is_writer(), "region B's database is the writer after the declared failover"
    ssm = world.client("ssm", REGION_B)
    journal_name, journal = _journal(ssm, ctx)
    # The fix: ``latch activate`` marks the declared failover in the journal (before it, the journal
    # was empty, and this finding's canary released the switch).
    assert journal.get("failoverDeclaredAt"), f"journal {journal_name}: {journal}"
    # The worst case for the canary: region A's web tier given its capacity back by hand after the
    # declared failover's fence (break34 B34-1), so it serves and its old primary is a standalone writer.
    asg_a = world.client("autoscaling", REGION_A)
    asg_a.update_auto_scaling_group(
        AutoScalingGroupName=ctx["primaryAsgName"], MinSize=1, MaxSize=4, DesiredCapacity=2
    )
    health.routes["/a-web"] = lambda: _region_a_answer(world)
    health.routes["/a-api"] = lambda: _region_a_answer(world)
    status, body = _region_a_answer(world)
    assert status == 200 and body["writer"] is True, body

    cloudwatch = world.client("cloudwatch", REGION_B)
    before = probe.run(_canary(world, health), cloudwatch, ssm)
    assert before["switch"] == 1, "the active latch holds the switch thrown"

    # 3. The latch is tampered with (deleted, or overwritten with something that is not a latch).
    if tamper == "deleted":
        ssm.delete_parameter(Name=ctx["latchParameterName"])
    else:
        ssm.put_parameter(Name=ctx["latchParameterName"], Value="{oops", Type="String", Overwrite=True)

    result = probe.run(_canary(world, health), cloudwatch, ssm)

    assert world.dr_is_writer()
    assert result["switch"] != 0, (
        f"canary for {world.app}: latch {tamper}, region B ({REGION_B}) holds the writer "
        f"{ctx['drDbInstanceId']}, yet the switch was released to region A ({REGION_A}), whose old "
        f"primary {ctx['primaryDbInstanceId']} is a standalone writer: traffic_follows_writer, one_writer"
    )


def _closed_port_url() -> str:
    """A URL on a port nothing listens on: connecting is refused (region A dark to the canary)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/health"


def test_b20_2_a_hand_set_standby_after_a_declared_aurora_failover_is_not_released_while_a_is_dark(
    emulator: str, health: HealthServer, tmp_path: Path
) -> None:
    """Traffic follows the writer: a latch set to standby by hand must not hand region A traffic while
    region B holds the writer (docs/safety.md, seeds 20 and 48).

    ``python -m automation latch activate`` in aurora-global mode runs write_latch, promote_database
    (a switchover: region A's cluster becomes a secondary, read-only) and throw_switch. No fence runs,
    so the run journal holds no failover mark. Someone then sets the latch to standby by hand. Before
    soak20 the canary held the switch (None) both while region A was dark and once it answered
    saying its database is not the writer. Under soak20 it publishes 0 while region A is dark
    (standby, journal clear, no target answers). The switch alarm (Maximum >= 1 over 60 s, missing
    data ``missing``) goes OK on that 0; when region A is back and answers ``writer: false`` the
    canary publishes nothing (None), so the alarm goes INSUFFICIENT_DATA ("missing: if all data
    points in the alarm evaluation range are missing, the alarm transitions to INSUFFICIENT_DATA",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data)
    and the Route 53 check keeps its last status, released ("LastKnownStatus: Route 53 uses the
    status of the health check from the last time that CloudWatch had sufficient data",
    https://docs.aws.amazon.com/Route53/latest/APIReference/API_HealthCheckConfig.html). Once region
    A's endpoint check passes, Route 53 answers region A, whose cluster is a read-only secondary:
    traffic goes to a region without the writer for good.
    """
    world = build_world(
        "aurora-global",
        app=f"b20y{next(_apps)}",
        endpoint_url=emulator,
        session=_session,
        clients_cache=_clients,
    )
    ctx = world.context
    path = tmp_path / "dr-outputs.json"
    path.write_text(json.dumps({"runbook": ctx}))
    with cli_on_shifted_clock():
        assert (
            main_module.main(["latch", "activate", "--outputs", str(path), "--endpoint-url", emulator]) == 0
        )
    assert world.dr_is_writer(), "the declared failover's switchover made region B's cluster the writer"
    ssm = world.client("ssm", REGION_B)
    cloudwatch = world.client("cloudwatch", REGION_B)
    journal_name, journal = _journal(ssm, ctx)
    # The fix: ``latch activate`` marks the declared failover in the journal (before it, the journal
    # was empty, and this finding's canary released the switch).
    assert journal.get("failoverDeclaredAt"), f"journal {journal_name}: {journal}"

    # Set to standby by hand.
    ssm.put_parameter(
        Name=ctx["latchParameterName"],
        Value=json.dumps({"state": "standby", "since": "2026-12-01T10:00:00+00:00", "runbook": "manual"}),
        Type="String",
        Overwrite=True,
    )

    # Control: region A answering that its cluster is not the writer keeps the switch (both canaries).
    def secondary() -> tuple[int, dict[str, Any]]:
        return 200, {"status": "ok", "region": REGION_A, "writer": not world.dr_is_writer()}

    health.routes["/a-web"] = secondary
    health.routes["/a-api"] = secondary
    answering = probe.run(_canary(world, health), cloudwatch, ssm)
    assert answering["switch"] is None, answering

    # Region A dark to the canary.
    dark = replace(
        _canary(world, health),
        targets=(probe.Target("web", _closed_port_url()), probe.Target("api", _closed_port_url())),
    )
    result = probe.run(dark, cloudwatch, ssm)

    assert all(t["status"] is None for t in result["targets"]), "region A answers nothing"
    assert world.dr_is_writer()
    assert result["switch"] != 0, (
        f"canary for {world.app}: latch set to standby by hand, region B ({REGION_B}) holds the writer "
        f"{ctx['drClusterArn']}, region A ({REGION_A}) dark: the switch was released; back, region A's "
        "secondary says it is not the writer, nothing is published and Route 53 keeps the release "
        "(LastKnownStatus): traffic_follows_writer"
    )
