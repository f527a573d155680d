"""How a failback ends (issue 10): a failback with nothing to move back ends done and changes
nothing; a failback that stops after draining region B leaves region B serving the writer; after an
rds-replica failback, the operator's ``pulumi up`` re-seeds region B, and the next failover promotes
that replica. Each test names the invariant of docs/safety.md it holds the runbook to."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdas.failover import executor
from lambdas.failover.traffic import _switch_thrown
from tests.lambdas.failover.faults import Fault
from tests.lambdas.failover.harness import declare_without_promotion
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import TRAFFIC_GRACE, Deployment, RunState
from tests.safety.scenarios import after_first_call
from tests.safety.scenarios import failed_over as _failed_over

Deploy = Callable[..., Deployment]


@pytest.mark.parametrize("executor_name", ["cli", "sfn"])
@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_converges_a_failback_with_nothing_to_move_back_ends_done_and_changes_nothing(
    deploy: Deploy, mode: str, executor_name: str
) -> None:
    """converges ("runs that already completed say so instead of asking for --force", issue 10): a
    failback when no failover happened (region B's database replicates from region A's writer, region
    A serves, Route 53 answers it) finds its end state in place: it ends done and makes no mutating
    AWS call (judged from the calls AWS received). It stopped with "fail over first" (rds-replica,
    seed 22)."""
    d = deploy(mode)
    d.op_advance(120)
    run = d.op_run("failback", executor_name=executor_name)
    assert run.outcome == "done", run
    assert not run.mutated, "a failback with nothing to move back changed AWS"
    d.op_advance(TRAFFIC_GRACE + 1)
    assert not d.judge(), [str(v) for v in d.violations]


def test_a_failback_with_nothing_to_move_back_reports_that_nothing_was_to_do(deploy: Deploy) -> None:
    """The CLI's report says the run found nothing to do (every step already done), not only
    ``done``."""
    d = deploy("rds-replica")
    d.op_advance(120)
    report = executor.run("failback", d.ctx, d.runbook_clients(), params={"reason": "t"}, max_workers=1)
    assert report.outcome == "done" and report.nothing_to_do, report.format_table()
    assert "nothing to do" in report.format_table()
    assert report.to_dict()["nothingToDo"] is True


@pytest.mark.parametrize(
    ("mode", "crash_after", "latch"),
    [("rds-replica", 6, "standby"), ("aurora-global", 11, "kept")],
    ids=["rds-replica-fenced-latch-set-to-standby", "aurora-global-latch-written"],
)
def test_converges_a_failback_after_a_failover_that_died_before_the_writer_moved(
    deploy: Deploy, mode: str, crash_after: int, latch: str
) -> None:
    """converges / traffic_follows_writer: a forced failover dies before the writer moves, after
    fencing region A (6 mutating calls: the journal's ``primaryStoppedAt``, then region A's functions
    and event source mapping before its web tier, the fence's order since crash10), then the latch set to standby by hand (seed 22's shape); or after writing the
    latch (11 calls: region B scaled out too). The operator fails back: the failback gives region A
    back its web tier and functions, returns region B to standby and ends done, with region A serving
    the writer and Route 53 answering it. It stopped with "fail over first" (rds-replica), having
    restored the latch to active from the journal (so the canary sent traffic to region B, whose
    database is a replica)."""
    d = deploy(mode)
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_after=crash_after)
    assert died.outcome == "crashed", died
    assert not d.emulator.serving(REGION_A), "the dead failover fenced region A"
    if latch == "standby":
        d.op_tamper_latch("standby")
    d.op_advance(1500)  # the dead run's lock expires (the failback is another run)
    run = d.op_run("failback")
    assert run.outcome == "done", run
    assert d.writer() == d.keys()[0], "the writer never left region A"
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.emulator.serving(REGION_A) and d.where() == REGION_A
    assert not d.emulator.serving(REGION_B), "region B back in standby"
    assert not d.judge(), [str(v) for v in d.violations]


@pytest.mark.parametrize(
    ("mode", "latch"),
    [("rds-replica", "standby"), ("rds-replica", "delete"), ("aurora-global", "kept")],
    ids=["rds-replica-latch-set-to-standby", "rds-replica-latch-deleted", "aurora-global-latch-active"],
)
def test_traffic_follows_a_never_moved_writer_when_a_failback_dies_after_warming_region_a(
    deploy: Deploy, mode: str, latch: str
) -> None:
    """traffic_follows_writer (soak seed 2036): a forced failover dies after fencing region A, scaling
    region B out, throwing the switch and writing the latch, but before it moves the writer (13
    mutating calls). The operator fails back, and that run dies right after ``warm_primary`` gave region
    A its web tier back (its first UpdateAutoScalingGroup), with nobody to resume it. Region A's
    database never stopped being the writer, so region A now serves the writer while the failover's
    journal marks made the canary hold the switch on region B, whose database refuses writes: Route 53
    answered region B for as long as nobody resumed the failback (judged after ``TRAFFIC_GRACE``)."""
    d = deploy(mode)
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_after=13)
    assert died.outcome == "crashed", died
    assert not d.emulator.serving(REGION_A), "the dead failover fenced region A"
    assert _switch_thrown(d.ctx, d.runbook_clients()), "the dead failover threw the switch"
    if latch != "kept":
        d.op_tamper_latch(latch)
    d.op_advance(1500)  # the dead run's lock expires (the failback is another run)
    # (The break-glass CLI: a Lambda task that dies in the state machine is retried by its Retry.)
    run = d.op_run("failback", crash_on=frozenset({"UpdateAutoScalingGroup"}))
    assert run.outcome == "crashed", run
    assert d.writer() == d.keys()[0], "the writer never left region A"
    d.op_advance(d.emulator.timings.launch_seconds + TRAFFIC_GRACE + 1)  # region A launches, then the grace
    assert d.emulator.serving(REGION_A), "the dead failback launched region A's web tier"
    assert d.where() == REGION_A, "Route 53 answers region B while region A serves the writer"
    assert not d.judge(), [str(v) for v in d.violations]


def test_no_loss_a_failback_while_region_b_is_being_promoted_refuses_before_any_change(
    deploy: Deploy,
) -> None:
    """no_loss / one writer: a forced failover dies right after it asked RDS to promote region B's
    replica (PromoteReadReplica; the replica names its source until the promotion ends, minutes later:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html), and the
    operator breaks its lock and fails back at once. The failback read "region B replicates from region
    A's writer" as "the writer never left region A", warmed and unfenced region A, released the switch
    and ended done; region B's promotion then completed: two standalone writers, and every write region
    A acknowledged missing from region B's, which the model follows as the writer (319 writes). It must
    refuse, before any change, naming the promotion."""
    d = deploy("rds-replica")
    d.op_advance(120)
    died = d.op_run("failover", params={"force": True}, crash_on=frozenset({"PromoteReadReplica"}))
    assert died.outcome == "crashed", died
    d.op_advance(30)
    report = executor.run(
        "failback", d.ctx, d.runbook_clients(), params={"reason": "t"}, max_workers=1, break_lock=True
    )
    assert report.outcome == "stopped", report.format_table()
    assert "is being promoted" in report.format_table(), report.format_table()
    assert not d.emulator.serving(REGION_A), "the refused failback gave region A its web tier back"
    d.op_advance(d.emulator.timings.promote_seconds + TRAFFIC_GRACE + 1)
    assert not d.judge(), [str(v) for v in d.violations]


def _region_b_serves_the_writer(d: Deployment, run: RunState) -> None:
    assert run.outcome == "stopped" and "switch_writer" in run.detail, run
    if run.executor_name == "cli":  # the CLI's reason says what the rollback did
        assert "restore_dr: " in run.detail, f"the stopped failback did not undo its drain: {run.detail}"
    assert d.writer() == d.keys()[1], "the writer never left region B"
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.emulator.serving(REGION_B) and d.where() == REGION_B
    assert not d.judge(), [str(v) for v in d.violations]


def test_converges_a_failback_whose_promotion_fails_after_a_crash_and_resume_leaves_region_b_serving(
    deploy: Deploy,
) -> None:
    """converges (a run that stops after changing AWS leaves a region serving the writer): an
    rds-replica failback dies right after draining region B (its first PutFunctionConcurrency, in
    scale_down_dr); resumed, its promotion of region A's replica is refused (a missing permission).
    The resumed run stops at switch_writer and its rollback (``restore_dr``, both executors run it on
    every stop) gives region B back its capacity and functions: region B holds the writer, serves it,
    and Route 53 answers it. Only a lag wait that gave up undid the drain before."""
    d = deploy("rds-replica")
    # Region A refuses the promotion (installed first: clients take a session's hooks when built).
    d.add_fault(Fault(service="rds", operation="PromoteReadReplica", region=REGION_A))
    _failed_over(d)
    # (A budget for the rename and the replica's creation, as the drill gives its waiters.)
    died = d.op_run(
        "failback", params={"waiterMaxAttempts": 240}, crash_on=frozenset({"PutFunctionConcurrency"})
    )
    assert died.outcome == "crashed", died
    assert d._dr_desired() == 0, "the dead failback drained region B's web tier"
    d.op_resume()
    assert d.last_run is not None
    _region_b_serves_the_writer(d, d.last_run)


def test_converges_an_aurora_failback_whose_switchover_is_refused_leaves_region_b_serving(
    deploy: Deploy,
) -> None:
    """converges: an Aurora failback by Step Functions drains region B and AWS refuses its
    switchover (a missing permission): the execution stops at switch_writer and passes through the
    rollback state (``restore_dr``) before it gives the lock back: region B serves the writer."""
    d = deploy("aurora-global")
    d.add_fault(Fault(service="rds", operation="SwitchoverGlobalCluster", region=REGION_B))
    _failed_over(d)
    _region_b_serves_the_writer(d, d.op_run("failback", executor_name="sfn"))


def test_protected_again_a_failover_after_a_failback_and_the_re_seed_promotes_the_new_replica(
    deploy: Deploy,
) -> None:
    """protected_again: after an rds-replica failback region B's instance is standalone; the operator's
    ``pulumi up`` re-seeds region B (``op_reseed``: ``<dr db>-g1``, a replica of region A's writer,
    which the outputs name from then on). Region A then goes dark: the next failover promotes the
    re-seeded replica (not the released generation 0) and region B serves the writer, nothing
    acknowledged lost beyond the unplanned tail. (One executor: both run the same promote_database
    handler on the outputs' name, and the schedule costs 30 s.)"""
    d = deploy("rds-replica")
    _failed_over(d)
    assert d.op_run("failback", params={"waiterMaxAttempts": 240}).outcome == "done"
    released = d.ctx.dr_db_instance_id
    d.op_reseed()
    assert d.ctx.dr_db_instance_id == f"{released}-g1", d.ctx.dr_db_instance_id
    assert not d._b_unprotected(), "the re-seeded replica replicates from the writer"
    d.op_advance(300)
    d.op_outage()
    d.op_advance(120)
    run = d.op_run("failover")
    assert run.outcome == "done", run
    assert d.writer() == d.keys()[1] and d.keys()[1].endswith(":db:" + str(d.ctx.dr_db_instance_id))
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.emulator.serving(REGION_B) and d.where() == REGION_B
    assert not d.judge(), [str(v) for v in d.violations]


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_converges_a_forced_failover_whose_region_a_goes_dark_after_its_fence_completes(
    deploy: Deploy, mode: str
) -> None:
    """converges (B10-4): a forced (not ``--planned``) failover fences region A, which answers, so it
    takes the lossless path: drain, zero lag proven after it (the database's, the receipts'), then the
    promotion or switchover. Region A goes dark right after the switch is thrown: zero lag can no
    longer be proven from it, and AWS refuses a switchover whose primary is unavailable
    (SwitchoverGlobalCluster is for healthy clusters). It waited until it gave up (30 minutes) and
    stopped, with region A fenced and dark and region B not promoted. Now it promotes as over a region
    A dark from the start (Aurora: the managed failover AWS documents for a Regional outage,
    ``AllowDataLoss``) and completes: region B holds the writer and serves it."""
    d = deploy(mode)
    d.op_advance(120)
    with after_first_call(d, "PutMetricData", d.op_outage):  # region A dark right after the switch
        run = d.op_run("failover", params={"force": True})
    assert run.outcome == "done", run
    assert d.writer() == d.keys()[1], "region B holds the writer"
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.emulator.serving(REGION_B) and d.where() == REGION_B
    assert not d.judge(), [str(v) for v in d.violations]


def test_converges_b10_4_through_the_state_machine_too(deploy: Deploy) -> None:
    """converges (B10-4) under the Step Functions executor: its steps may not wait, so the darkness
    confirmation (DARK_CONFIRM_SECONDS) is one look per poll of the lossless wait (b21b22 suspected the
    first look would stop the run; here the wait's polls confirm it and the run fails over with
    AllowDataLoss)."""
    d = deploy("aurora-global")
    d.op_advance(120)
    with after_first_call(d, "PutMetricData", d.op_outage):  # region A dark right after the switch
        run = d.op_run("failover", params={"force": True}, executor_name="sfn")
    assert run.outcome == "done", run
    assert d.writer() == d.keys()[1], "region B holds the writer"
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.emulator.serving(REGION_B) and d.where() == REGION_B
    assert not d.judge(), [str(v) for v in d.violations]


def test_a_planned_aurora_failover_whose_region_a_goes_dark_after_its_fence_still_refuses(
    deploy: Deploy,
) -> None:
    """``--planned`` asks for no loss: when AWS refuses the switchover because region A went dark after
    its fence, the run stops (and rolls back) rather than fail over with ``AllowDataLoss``."""
    d = deploy("aurora-global")
    d.op_advance(120)
    with after_first_call(d, "PutMetricData", d.op_outage):  # region A dark right after the switch
        run = d.op_run("failover", params={"force": True, "planned": True})
    assert run.outcome == "stopped", run
    assert d.writer() == d.keys()[0], "the writer stayed in region A"
    assert not any(e.kind == "failing-over" for e in d.emulator.events), "no managed failover"


def test_converges_a_failover_stopped_by_throttling_in_region_b_rolls_its_fence_back(
    deploy: Deploy,
) -> None:
    """converges (soak seed 219): a forced CLI failover fences region A, which answers; then a throttling
    storm in region B (20 refusals per service, beyond the client's 8 attempts) stops it at
    scale_web_tier. Its rollback met the storm too: ``roll_back_fence`` took a throttled read of
    region B's database for "cannot tell whether the writer is moving" and rolled nothing back, so
    region A stayed fenced with the writer and nothing served it. Now the throttled read is a
    retryable failure and the CLI retries the rollback as the state machine's Retry does: region A
    is un-fenced and serves the writer again."""
    d = deploy("rds-replica")
    d.op_advance(120)
    # The fence's last call (region A's web tier) starts the storm.
    with after_first_call(d, "UpdateAutoScalingGroup", lambda: d.op_throttle(REGION_B, 20)) as storm:
        run = d.op_run("failover", params={"force": True})
    assert storm and run.outcome == "stopped" and "roll_back_fence: rolled back" in run.detail, run
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.emulator.serving(REGION_A) and d.where() == REGION_A
    assert not d.judge(), [str(v) for v in d.violations]


def test_a_failback_over_a_declared_failover_that_never_promoted_reports_the_switch_it_released(
    deploy: Deploy,
) -> None:
    """The report says what changed (break29: ``warm_primary`` reported ``already_done`` after it had
    journaled the writer-move mark and put 0 on the switch). A declared failover stopped before its
    promotion (``latch activate`` up to ``throw_switch``: the hold ``failoverDeclaredAt``, the fence, the
    latch active, the switch thrown), so region B was never promoted; the release of the switch is a change
    the report must name."""
    d = deploy("rds-replica")
    d.op_advance(120)
    declare_without_promotion(
        d.ctx, d.runbook_clients(), reason="declared, then called off before the promotion"
    )
    assert _switch_thrown(d.ctx, d.runbook_clients())
    report = executor.run("failback", d.ctx, d.runbook_clients(), params={"reason": "t"}, max_workers=1)
    assert report.outcome == "done", report.format_table()
    warmed = report.record("warm_primary")
    assert warmed.status == "done" and "switch released" in warmed.detail, warmed
    d.op_advance(TRAFFIC_GRACE + 1)
    assert d.where() == REGION_A and not d.judge(), [str(v) for v in d.violations]
