"""End-to-end runs of the failover and failback runbooks against moto, in process."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from lambdas.failover import executor, journal, steps
from lambdas.failover.context import RunbookContext
from lambdas.failover.graph import FAILBACK, FAILOVER, RUNBOOKS
from lambdas.failover.names import is_failover_instance
from tests.lambdas.failover.faults import Fault, unreachable
from tests.lambdas.failover.harness import (
    FAST,
    FORCED,
    FaultSwitch,
    HealthServer,
    assert_failed_over,
    clients_for,
    run_book,
    shifted_runs,
)
from tests.lambdas.failover.world import REGION_A, REGION_B, World

MODES = ["rds-replica", "aurora-global"]


def test_every_step_of_both_runbooks_has_a_handler() -> None:
    for book in RUNBOOKS.values():
        for name in book.names():
            assert name in steps.STEPS, f"{book.name}: no handler for {name}"


@pytest.mark.parametrize("mode", MODES)
def test_full_failover(make_world: Callable[..., World], mode: str) -> None:
    world = make_world(mode)
    assert not world.dr_is_writer()

    report = run_book(world, "failover")

    assert report.outcome == "done", report.format_table()
    assert report.stopped_at is None
    assert [r.step for r in report.timeline] == FAILOVER.names()
    assert report.record("confirm_primary_down").status == "skipped"
    assert "forced by operator: test drill" in report.record("confirm_primary_down").detail
    assert {r.status for r in report.timeline[1:]} == {"done"}
    assert_failed_over(world)
    latch = world.latch()
    assert latch["runbook"] == "failover" and latch["reason"] == "test drill" and latch["since"]
    [message] = world.notifications()
    assert "failover" in message["Subject"] and REGION_B in message["Subject"]
    assert "promote_database: done" in message["Message"]  # the timeline summary travels with it
    if mode == "rds-replica":
        promoted = world.db(REGION_B, world.context["drDbInstanceId"])
        assert promoted and not promoted.get("ReadReplicaSourceDBInstanceIdentifier")
    else:
        # the headless secondary got an instance before it became the writer
        (writer,) = world.cluster_members(REGION_B, world.context["drClusterId"])
        assert is_failover_instance(world.context["drClusterId"], writer), writer
        assert world.db(REGION_B, writer) is not None
        assert world.global_writer() == world.context["drClusterArn"]


@pytest.mark.parametrize("mode", MODES)
def test_second_run_changes_nothing(make_world: Callable[..., World], mode: str) -> None:
    world = make_world(mode)
    assert run_book(world, "failover").outcome == "done"
    world.notifications()
    before = world.snapshot()

    again = run_book(world, "failover")

    assert again.outcome == "done"
    assert again.statuses == {
        "confirm_primary_down": "skipped",
        **{name: "already_done" for name in FAILOVER.names()[1:]},
    }, again.format_table()
    assert world.snapshot() == before
    assert world.notifications() == []  # nobody is paged twice


def test_confirm_primary_down_refuses_while_region_a_answers(world: World, health: HealthServer) -> None:
    health.set("/primary", 200, {"region": REGION_A, "writer": True})
    before = world.snapshot()

    report = run_book(world, "failover", params=FAST)

    assert report.outcome == "stopped" and report.stopped_at == "confirm_primary_down"
    assert "primary answers healthy" in (report.reason or "") and "--force" in (report.reason or "")
    assert all(r.status == "not_run" for r in report.timeline[1:-1])
    # The failover's on_stop ran and found nothing to undo: a refusal changes nothing.
    assert (report.timeline[-1].step, report.timeline[-1].status) == ("roll_back_fence", "already_done")
    assert world.snapshot() == before

    health.set("/primary", 503, {"error": "down"})
    resumed = run_book(world, "failover", params=FAST)

    assert resumed.outcome == "done", resumed.format_table()
    assert resumed.record("confirm_primary_down").status == "done"
    assert "HTTP 503" in resumed.record("confirm_primary_down").detail


def test_confirm_primary_down_unreachable_endpoint_counts_as_down(world: World) -> None:
    world.context["primaryHealthUrl"] = "http://127.0.0.1:9/health"  # discard port: nothing listens
    report = run_book(world, "failover", params={**FAST, "probeTimeout": 0.5})
    assert report.outcome == "done"
    assert "unreachable" in report.record("confirm_primary_down").detail


def test_confirm_primary_down_without_url_needs_force(world: World) -> None:
    world.context["primaryHealthUrl"] = None
    report = run_book(world, "failover", params=FAST)
    assert report.stopped_at == "confirm_primary_down"
    assert "--force" in (report.reason or "")


def test_region_a_reachable_is_fenced(world: World) -> None:
    report = run_book(world, "failover")
    fence = report.record("fence_primary")
    assert fence.status == "done"
    assert f"{world.app}-web-us-east-1 1/2/4 -> 0/0/4" in fence.detail
    assert world.asg(REGION_A) == (0, 0, 4)
    assert set(world.concurrency(REGION_A).values()) == {0}
    # Region A's queue consumer stops too: its messages wait for region B.
    assert world.mappings(REGION_A) == ["Disabled"]


def test_region_a_unreachable_failover_completes_with_warning(world: World) -> None:
    shifted_runs(world)  # the unplanned promotion's 70 s switch wait passes at once
    outage = unreachable(REGION_A)
    before_a = (world.asg(REGION_A), world.concurrency(REGION_A))

    report = run_book(world, "failover", outage)

    assert report.outcome == "done", report.format_table()
    fence = report.record("fence_primary")
    assert fence.status == "warning"
    assert fence.detail.startswith("region A could not be fenced:")
    assert "EndpointConnectionError" in fence.detail
    assert report.warnings == [fence]
    assert "1 warning(s)" in report.format_table()
    # the failover path reads nothing else from region A: the fence tried it, then one look at each
    # endpoint it acts through found none answering (region A dark, not one service down: break32
    # B32-1); region A clients give up after 2 attempts
    assert [call.split(":", 1)[1] for call in outage.seen] == [
        "auto-scaling.DescribeAutoScalingGroups",
        "auto-scaling.DescribeAutoScalingGroups",
        "rds.DescribeDBInstances",
        "rds.DescribeDBInstances",
        "auto-scaling.DescribeAutoScalingGroups",
        "auto-scaling.DescribeAutoScalingGroups",
        "lambda.GetFunctionConcurrency",
        "lambda.GetFunctionConcurrency",
        # promote_database looks at region A's database before the unplanned writer move (break35 B35-2,
        # promotion._late_fence_due), a verdict over time (break36 B36-2): a look every 15 s of the 70 s
        # switch wait (5), then the late look itself. Each look: its RDS API, the data plane (the ledger
        # marker function; its Lambda API down counts only with the Auto Scaling API down too, break37
        # B37-2), then every endpoint the fence acts through (region A wholly dark, its fence pending)
        *[
            *["rds.DescribeDBInstances"] * 2,
            *["lambda.Invoke"] * 2,
            *["auto-scaling.DescribeAutoScalingGroups"] * 2,
            *["rds.DescribeDBInstances"] * 2,
            *["auto-scaling.DescribeAutoScalingGroups"] * 2,
            *["lambda.GetFunctionConcurrency"] * 2,
        ]
        * 6,
    ]
    assert (world.asg(REGION_A), world.concurrency(REGION_A)) == before_a
    assert world.dr_is_writer() and world.asg(REGION_B) == (1, 2, 4)


@pytest.mark.parametrize("mode", MODES)
def test_failback_restores_standby(make_world: Callable[..., World], mode: str) -> None:
    world = make_world(mode)
    assert run_book(world, "failover").outcome == "done"
    world.notifications()
    # Failback comes minutes later: the switch's 1 and 0 must not share a one-minute period.
    world.age_metrics(minutes=5)

    report = run_book(world, "failback", params={**FAST, "reason": "region A recovered"})

    assert report.outcome == "done", report.format_table()
    assert [r.step for r in report.timeline] == FAILBACK.names()
    assert world.asg(REGION_B) == (0, 0, 0)
    assert set(world.concurrency(REGION_B).values()) == {0}
    assert world.mappings() == ["Disabled"]
    assert world.mappings(REGION_A) == ["Enabled"], "the failback turns region A's consumer back on"
    assert world.switch_values()[-1] == 0.0
    assert world.latch()["state"] == "standby" and world.latch()["runbook"] == "failback"
    assert world.asg(REGION_A) == (1, 2, 4)
    assert all(v is None for v in world.concurrency(REGION_A).values())
    [message] = world.notifications()
    assert "failback" in message["Subject"] and REGION_A in message["Subject"]
    if mode == "rds-replica":
        # Rename to replace: region A's writer is the promoted replica, under the primary's own name
        # (the endpoint region A's application uses); the old primary is kept under the name the
        # journal records.
        primary = world.context["primaryDbInstanceId"]
        writer = world.db(REGION_A, primary)
        assert writer and not writer.get("ReadReplicaSourceDBInstanceIdentifier"), writer
        journal = json.loads(
            world.client("ssm", REGION_B).get_parameter(
                Name=world.context["latchParameterName"] + "-journal"
            )["Parameter"]["Value"]
        )
        [kept] = journal["retainedPrimaries"]
        assert kept["instance"].startswith(f"{primary}-pre-failback-") and kept["was"] == primary
        assert world.db(REGION_A, kept["instance"]), f"the old primary is kept as {kept['instance']}"
        assert "failback" not in journal, "clear_latch ends the failback's journal entry"
        assert kept["instance"] in report.record("reestablish_replication").detail
        # Region B keeps its (now stale) standalone instance: re-seeding it as a replica of the new
        # writer is the stacks' job (pulumi up with the new identifiers), not the runbook's.
    else:
        assert (world.global_writer() or "").endswith(f":cluster:{world.app}-a")
        assert not world.dr_is_writer()  # the switchover made region B a secondary again

    before = world.snapshot()
    again = run_book(world, "failback", params=FAST)
    assert again.outcome == "done"
    assert {again.statuses[n] for n in FAILBACK.names()[1:]} == {"already_done"}, again.format_table()
    assert world.snapshot() == before


def test_failback_refuses_when_region_a_is_unreachable(world: World) -> None:
    assert run_book(world, "failover").outcome == "done"
    before = world.snapshot()

    report = run_book(world, "failback", unreachable(REGION_A), params=FAST)

    assert report.stopped_at == "confirm_primary_healthy"
    assert "EndpointConnectionError" in (report.reason or "")
    assert report.record("confirm_primary_healthy").retryable
    assert world.snapshot() == before


def test_aurora_failback_stops_when_old_primary_left_the_global_cluster(
    make_world: Callable[..., World],
) -> None:
    world = make_world("aurora-global")
    assert run_book(world, "failover").outcome == "done"
    world.client("rds", REGION_A).remove_from_global_cluster(
        GlobalClusterIdentifier=f"{world.app}-global", DbClusterIdentifier=f"{world.app}-a"
    )

    report = run_book(world, "failback", params=FAST)

    assert report.stopped_at == "reestablish_replication"
    assert f"not a member of global cluster {world.app}-global" in (report.reason or "")
    assert "create-db-cluster" in (report.reason or "")  # says what to do by hand


def test_planned_aurora_failover_uses_switchover(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world("aurora-global")
    calls: list[str] = []
    from automation.emulator import gaps as moto_patches

    for name in ("failover_global_cluster", "switchover_global_cluster"):
        original = getattr(moto_patches, name)
        monkeypatch.setattr(
            "moto.rds.responses.RDSResponse." + name,
            lambda self, _o=original, _n=name: (calls.append(_n), _o(self))[1],
        )

    assert run_book(world, "failover", params={**FORCED, "planned": True}).outcome == "done"

    assert calls == ["switchover_global_cluster"]
    assert world.global_writer() == world.context["drClusterArn"]


def test_report_renders_for_people_and_machines(world: World) -> None:
    lines: list[tuple[str, str, str]] = []
    ctx = RunbookContext.from_dict(world.context)

    report = executor.run(
        "failover",
        ctx,
        clients_for(world),
        params=FORCED,
        on_progress=lambda event, rec: lines.append((event, rec.step, rec.status)),
    )

    assert ("start", "promote_database", "running") in lines
    assert ("end", "promote_database", "done") in lines
    assert len(lines) == 2 * len(FAILOVER.steps)
    table = report.format_table()
    for name in FAILOVER.names():
        assert name in table
    assert table.splitlines()[-1].startswith("failover: done in")
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["outcome"] == "done" and len(as_json["timeline"]) == len(FAILOVER.steps)
    assert all(r["durationSeconds"] >= 0 and r["start"] for r in as_json["timeline"])
    # layers never overlap: a step starts only after every step of the previous layer ended
    by_layer: dict[int, list[executor.StepRecord]] = {}
    for r in report.timeline:
        by_layer.setdefault(r.layer, []).append(r)
    for layer in range(1, len(by_layer)):
        assert max(r.ended_at for r in by_layer[layer - 1]) <= min(r.started_at for r in by_layer[layer])  # type: ignore[type-var]


def test_a_bug_in_a_step_stops_the_run_and_is_reported(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: object, clients: object, params: object) -> steps.StepResult:
        raise KeyError("oops")

    monkeypatch.setitem(steps.STEPS, "throw_switch", broken)
    report = run_book(world, "failover")
    assert report.stopped_at == "throw_switch"
    assert "KeyError" in (report.reason or "")
    assert report.record("verify").status == "not_run"


def test_promotion_that_never_finishes_stops_the_run_retryably(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.rds.models import RDSBackend

    # RDS accepts the request but the replica never stops being a replica
    monkeypatch.setattr(
        RDSBackend, "promote_read_replica", lambda self, kw: self.databases[kw["db_instance_identifier"]]
    )

    report = run_book(world, "failover")

    record = report.record("promote_database")
    assert report.stopped_at == "promote_database"
    assert record.retryable and record.code == "WaiterTimeout"
    assert "DBInstancePromoted" in record.detail and "Max attempts exceeded" in record.detail
    # The switch leads the writer move; the stop then runs the failover's on_stop, which finds the
    # replica still replicating (the writer never moved) and rolls back.
    assert report.record("throw_switch").status == "done"
    assert report.record("verify").status == "not_run"
    assert report.timeline[-1].step == "roll_back_fence" and report.timeline[-1].status != "not_run"


def test_failback_refuses_a_failback_instance_replicating_from_elsewhere(world: World) -> None:
    """A replica under the primary's name that does not replicate region B's writer is never promoted."""
    assert run_book(world, "failover").outcome == "done"
    rds_a = world.client("rds", REGION_A)
    primary = world.context["primaryDbInstanceId"]
    rds_a.modify_db_instance(
        DBInstanceIdentifier=primary, NewDBInstanceIdentifier="someone-else", ApplyImmediately=True
    )
    rds_a.create_db_instance_read_replica(
        DBInstanceIdentifier=primary, SourceDBInstanceIdentifier="someone-else", DBInstanceClass="db.t3.micro"
    )

    report = run_book(world, "failback", params=FAST)

    assert report.stopped_at == "reestablish_replication"
    assert (
        "replicates from" in (report.reason or "")
        and report.record("reestablish_replication").code == "UnexpectedReplicationSource"
    )


def test_failover_refuses_a_region_b_database_that_is_not_replicating(world: World) -> None:
    """Protected again, or refuse: a standalone instance in region B is a frozen copy."""
    world.client("rds", REGION_B).promote_read_replica(DBInstanceIdentifier=world.context["drDbInstanceId"])
    before_a = (world.asg(REGION_A), world.concurrency(REGION_A))

    report = run_book(world, "failover")

    # Refused by the first step: the steps after it start region B's tiers in parallel with the
    # fence, and a region B serving its frozen copy would take writes nobody keeps.
    assert report.stopped_at == "confirm_primary_down", report.format_table()
    record = report.record("confirm_primary_down")
    assert record.code == "NotReplicating"
    assert "is not replicating from the writer" in record.detail and "Nothing was changed" in record.detail
    # The refusal names the documented re-seeding: the dr stack's next standby update (issue 13, E4).
    assert "pulumi up -s dr" in record.detail, record.detail
    assert (world.asg(REGION_A), world.concurrency(REGION_A)) == before_a
    assert world.asg(REGION_B) == (0, 0, 0) and set(world.concurrency(REGION_B).values()) == {0}
    assert world.latch()["state"] == "standby"


def test_a_failed_promotion_puts_the_latch_back(world: World) -> None:
    """The latch leads the writer; when the writer never moved, it must not keep saying region B."""
    from tests.lambdas.failover.faults import deny

    report = run_book(world, "failover", deny("rds", "PromoteReadReplica", REGION_B))

    assert report.stopped_at == "promote_database"
    assert report.record("write_latch").status == "done"
    latch = world.latch()
    assert latch["state"] == "standby" and "before the writer moved" in latch["reason"]


def test_a_failover_rerun_over_a_tampered_latch_is_not_refused(world: World) -> None:
    """Region A fenced by a failover, latch set back to standby by hand: region B is the writer."""
    assert run_book(world, "failover").outcome == "done"
    world.client("ssm", REGION_B).put_parameter(
        Name=world.context["latchParameterName"],
        Value=json.dumps({"state": "standby"}),
        Type="String",
        Overwrite=True,
    )

    again = run_book(world, "failover")

    assert again.outcome == "done", again.format_table()
    assert world.latch()["state"] == "active"


def test_one_writer_a_fence_left_pending_is_completed_when_region_a_answers(world: World) -> None:
    """One writer: a failover that could not reach region A journals a pending fence; the canary's
    call (``onlyIfPending``) fences region A once it answers, and a second call changes nothing."""
    shifted_runs(world)  # the unplanned promotion's 70 s switch wait passes at once
    report = run_book(world, "failover", unreachable(REGION_A))
    assert report.record("fence_primary").status == "warning"
    assert world.asg(REGION_A) == (1, 2, 4), "region A was unreachable: not fenced yet"
    canary_call = {"runbook": "failover", "onlyIfPending": True, "wait": False}
    clients = world.extras["runbook"][1]
    ctx = RunbookContext.from_dict(world.context)

    fenced = steps.step_handler("fence_primary")(ctx, clients, canary_call)

    assert fenced.status == "done", fenced.detail
    assert world.asg(REGION_A) == (0, 0, 4) and set(world.concurrency(REGION_A).values()) == {0}
    assert world.mappings(REGION_A) == ["Disabled"]
    again = steps.step_handler("fence_primary")(ctx, clients, canary_call)
    assert (again.status, again.detail) == ("already_done", "no fence of region A pending")


def test_the_canary_s_call_does_nothing_without_a_pending_fence(world: World) -> None:
    """A failback gives region A its capacity back while the latch is still active: the canary's
    call must not fence it again (nothing is pending after a fence that succeeded)."""
    assert run_book(world, "failover").record("fence_primary").status == "done"
    world.client("autoscaling", REGION_A).update_auto_scaling_group(
        AutoScalingGroupName=world.context["primaryAsgName"], MinSize=1, DesiredCapacity=2
    )
    clients = world.extras["runbook"][1]
    ctx = RunbookContext.from_dict(world.context)

    result = steps.step_handler("fence_primary")(ctx, clients, {"runbook": "failover", "onlyIfPending": True})

    assert result.status == "already_done"
    assert world.asg(REGION_A) == (1, 2, 4)


def test_a_planned_rds_failover_never_promotes_unplanned_when_region_a_goes_dark_mid_run(
    world: World,
) -> None:
    """Nothing acknowledged is lost on a planned change: region A answers the up-front check
    (confirm_primary_down's describe of its database), then goes dark, so the fence cannot reach
    it. ``--planned`` promised a lossless move: the promotion refuses rather than promote unplanned
    (losing the unreplicated tail), names the flag, and the latch goes back to standby."""
    shifted_runs(world)  # the promotion's waits pass at once
    fault = Fault(region=REGION_A, unreachable=True, skip=1)
    report = run_book(world, "failover", fault, params={**FORCED, "planned": True})
    assert report.outcome == "stopped" and report.stopped_at == "promote_database", report.reason
    assert "--planned" in (report.reason or "") and "without --planned" in (report.reason or "")
    instance = world.db(REGION_B, world.context["drDbInstanceId"]) or {}
    assert instance.get("ReadReplicaSourceDBInstanceIdentifier"), "region B's replica was promoted"
    assert world.latch().get("state") == "standby"


@pytest.mark.parametrize("mode", MODES)
def test_a_forced_failover_over_a_region_a_dark_since_an_earlier_fence_promotes_unplanned(
    make_world: Callable[..., World], mode: str
) -> None:
    """Lossless only from a healthy source, and the failover works when region A is dark (soak seed 10):
    an earlier fence (the canary's, a stopped run's) stamped ``primaryStoppedAt``; region A then went
    dark, and the forced failover's own fence could not reach it (``fencePending``). The old stamp
    made the promotion wait for zero lag measured from a source that no longer answers, until it
    gave up: the failover never promoted while region A was down. It promotes unplanned, with the
    upper estimate of what may be lost."""
    world = make_world(mode)
    switch = FaultSwitch()
    world.extras["runbook"] = (switch, clients_for(world, switch))
    clients = world.extras["runbook"][1]
    ctx = RunbookContext.from_dict(world.context)
    earlier = (clients.clock.now() - timedelta(minutes=10)).isoformat()
    journal._journal(clients, ctx, primaryStoppedAt=earlier)  # an earlier fence's stamp
    # The earlier run threw the switch minutes ago: Route 53 already answers region B, so the
    # unplanned promotion has no switch evaluation (70 s of this test's real clock) to wait for.
    m = ctx.switch_metric
    clients.cloudwatch("dr").put_metric_data(
        Namespace=m.namespace,
        MetricData=[
            {
                "MetricName": m.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions.items()],
                "Value": 1.0,
                "Timestamp": clients.clock.now() - timedelta(minutes=3),
            }
        ],
    )

    report = run_book(world, "failover", unreachable(REGION_A))

    assert report.outcome == "done", report.format_table()
    assert report.record("fence_primary").status == "warning", "region A did not answer this fence"
    assert world.dr_is_writer()
    if mode == "rds-replica":
        assert "unplanned" in report.record("promote_database").detail
