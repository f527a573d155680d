"""Darkness is a verdict over time, and the lossless wait asks about the source database (break33 B33-3, B33-2).

Invariants (docs/safety.md): no_loss ("a blip of connection errors never turns a lossless failover into a
lossy one"; only an unplanned promotion's tail is forgiven) and converges (B10-4: a forced failover that
lost region A's database promotes rather than waiting and stopping). ``lambdas/failover/darkness.py``:

* the fence leaves region A's fence pending only after every region-A endpoint failed to connect at every
  look for ``DARK_CONFIRM_SECONDS`` (journal ``FENCE_DARK_MARK``), in both executors;
* a forced failover's lossless wait promotes unplanned only after the source database's RDS API and its
  data plane (the ledger marker function) agreed it was dark for ``DARK_CONFIRM_SECONDS`` (``DARK_MARK``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import EndpointConnectionError
from moto.rds.models import rds_backends

from automation.emulator.aws import ACCOUNT
from automation.emulator.data import Store
from lambdas.failover import darkness
from lambdas.failover.clients import Clients
from lambdas.failover.journal import DARK_MARK, FENCE_DARK_MARK
from tests.lambdas.failover.faults import _SCOPE, Fault, _header
from tests.lambdas.failover.harness import new_session
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment, actor_clients
from tests.safety.sfn_executor import Outcome, last_execution, run_state_machine

Deploy = Callable[..., Deployment]


def _journal(d: Deployment) -> dict[str, Any]:
    name = f"{d.ctx.latch_parameter_name}-journal"
    return json.loads(d.world.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"])


class _DarkFromTheFence(Fault):
    """Every region-A endpoint fails to connect for ``seconds`` virtual seconds from the fence's first call
    on (DescribeAutoScalingGroups in region A): the runbook's side of the network cut off from region A,
    which itself answers its clients and replicates throughout. Requests before that call pass."""

    def __init__(self, clock: Any, seconds: float) -> None:
        super().__init__(region=REGION_A, unreachable=True)
        self.clock, self.seconds = clock, seconds
        self.since: datetime | None = None

    def __call__(self, request: Any, event_name: str, **kw: Any) -> Any:
        match = _SCOPE.search(_header(request, "Authorization"))
        if not match or match.group(1) != REGION_A:
            return None
        if self.since is None:
            _, service, operation = event_name.split(".", 2)
            if (service, operation) != ("auto-scaling", "DescribeAutoScalingGroups"):
                return None
            self.since = self.clock.now()
        if (self.clock.now() - self.since).total_seconds() >= self.seconds:
            return None
        with self._lock:
            self.injected += 1
        raise EndpointConnectionError(endpoint_url=request.url)


def _burst_then_forced_failover(d: Deployment, fault: Fault, executor_name: str = "cli") -> Any:
    """B21b-1's burst (region B's replica minutes behind), then a forced failover with ``fault`` on."""
    d.op_advance(120)
    d.add_fault(fault)
    d.op_write(10_000)  # ~500 s of replica apply (Timings.rds_apply 0.05 s a write), past the 300 s drain
    return d.op_run("failover", params={"force": True}, executor_name=executor_name)


def test_no_loss_a_dark_spell_on_every_region_a_endpoint_shorter_than_the_window_keeps_the_failover_lossless(
    deploy: Deploy,
) -> None:
    """Every region-A endpoint fails to connect for 60 s (< ``DARK_CONFIRM_SECONDS``) from the fence's first
    call: the fence looks again, reaches region A once the spell ends, stamps its writes stopped and the
    promotion waits for zero lag: no fence pending, no acknowledged write lost."""
    d = deploy("rds-replica")
    spell = _DarkFromTheFence(d.emulator.clock, 60.0)
    run = _burst_then_forced_failover(d, spell)
    assert spell.injected > 0, "the spell never met the runbook"
    d.op_advance(181)
    d.judge()
    journal = _journal(d)
    assert run.outcome == "done", run.detail
    assert not journal.get("fencePending"), f"a 60 s spell left the fence pending: {journal}"
    assert journal.get("primaryStoppedAt") and not journal.get(FENCE_DARK_MARK), journal
    assert not d.violations, [str(v) for v in d.violations]


def test_converges_region_a_dark_longer_than_the_window_leaves_the_fence_pending_and_promotes_unplanned(
    deploy: Deploy,
) -> None:
    """Region A goes dark (every endpoint, its database and replication) and stays dark: the fence confirms it
    for ``DARK_CONFIRM_SECONDS`` and only then leaves itself pending; the failover promotes region B."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(200)
    d.op_outage()
    started = d.emulator.clock.now()
    run = d.op_run("failover", params={"force": True})
    assert run.outcome == "done", run.detail
    pending = datetime.fromisoformat(str(_journal(d)["fencePending"]))
    assert pending - started >= timedelta(seconds=darkness.DARK_CONFIRM_SECONDS), (
        f"fence left pending {pending - started} after the run started: not confirmed for "
        f"{darkness.DARK_CONFIRM_SECONDS:.0f} s"
    )
    assert d.emulator.database_writable(REGION_B), "region B's database takes no write after the failover"
    assert d.writer().split(":")[3] == REGION_B, f"the writer AWS last made is {d.writer()}"
    d.judge()
    assert not d.violations, [str(v) for v in d.violations]


def _rds_api_out_everywhere(d: Deployment) -> Fault:
    """Region A's RDS API refuses connections, for every caller (the runbook Lambda the canary invokes too)."""
    fault = Fault(service="rds", region=REGION_A, unreachable=True)
    d.add_fault(fault)
    session = new_session()
    d.emulator.attach(session)
    fault.install(session)
    d._async_clients = actor_clients(d, session)
    return fault


def test_converges_an_rds_api_outage_over_a_live_database_is_waited_out_never_promoted_unplanned(
    deploy: Deploy,
) -> None:
    """rds-replica. Region A's RDS API refuses connections; its database is alive (the marker function commits
    on it) but replication out of it has stopped, so zero lag is never proven. The forced failover's wait
    asks the data plane each time the RDS API looks dark, finds the database answering, and never takes it for
    dark: the run gives up at its budget (``LagTimeout``) with region B still a replica. Waiting, not an
    unplanned promotion that would lose what region A still holds (break32 B32-7)."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(50)
    d.op_advance(120)
    _rds_api_out_everywhere(d)
    d.emulator.partition(REGION_A, REGION_B, Store.DATABASE)
    d.op_write(20)  # held by region A only: an unplanned promotion would lose them
    run = d.op_run("failover", params={"force": True, "waiterMaxAttempts": 40})  # 600 s: drain + 2 windows
    probes = [
        e for e in d.emulator.events if e.kind == "marker" and str(e.data.get("marker")).startswith("probe-")
    ]
    assert run.outcome == "stopped" and "zero lag" in run.detail, run.detail
    assert probes, "the wait never asked region A's data plane"
    assert not d.emulator.lost_at_promotion and d.writer().split(":")[3] == REGION_A, d.writer()
    assert not _journal(d).get(DARK_MARK), _journal(d)


def test_converges_a_dead_source_database_with_a_tail_is_promoted_unplanned_its_tail_the_documented_price(
    deploy: Deploy,
) -> None:
    """rds-replica, B33-2 with a tail: replication out of region A's database stops, clients write on (those
    writes only region A's database holds), then the database fails (status ``failed``) and region A's RDS API
    refuses connections; its Auto Scaling and Lambda APIs answer. The forced failover's wait finds the source
    database dark on both planes for ``DARK_CONFIRM_SECONDS`` and promotes unplanned. The writes the failed
    instance holds are the unplanned promotion's tail (docs/safety.md no_loss), which the checker forgives
    because AWS describes the source instance as serving nothing at the request (``Emulator.database_answers``),
    not because the runbook says it was unplanned."""
    d = deploy("rds-replica")
    d.op_advance(120)
    d.op_write(50)
    d.op_advance(120)
    d.emulator.partition(REGION_A, REGION_B, Store.DATABASE)
    d.op_write(20)
    rds_backends[ACCOUNT][REGION_A].databases[str(d.ctx.primary_db_instance_id)].status = "failed"
    _rds_api_out_everywhere(d)
    d.op_advance(60)
    run = d.op_run("failover", params={"force": True})
    assert run.outcome == "done", run.detail
    assert d.emulator.database_writable(REGION_B), "region B's database takes no write after the failover"
    d.judge()
    assert not d.violations, [str(v) for v in d.violations]
    assert any(d.emulator.lost_at_promotion.values()), (
        "the failed source held no tail: the test shows nothing"
    )


def test_a_look_continues_the_journal_s_window_within_the_gap_and_restarts_after_it(deploy: Deploy) -> None:
    """``darkness.look``: a resumed run (or the next poll) continues the window the journal holds when its
    previous look is at most ``DARK_LOOK_GAP_SECONDS`` old; an older one, or any look that is not dark,
    restarts it."""
    d = deploy("rds-replica")
    clients = Clients.for_context(d.ctx, d.session, clock=d.emulator.clock)
    assert not darkness.look(clients, d.ctx, FENCE_DARK_MARK, True).confirmed
    d.op_advance(60)
    assert darkness.look(clients, d.ctx, FENCE_DARK_MARK, True).seconds >= 60
    d.op_advance(60)
    assert darkness.look(clients, d.ctx, FENCE_DARK_MARK, True).confirmed
    d.op_advance(darkness.DARK_LOOK_GAP_SECONDS + 1)
    stale = darkness.look(clients, d.ctx, FENCE_DARK_MARK, True)
    assert stale.dark and stale.seconds == 0, "a look after the gap continued a window nobody watched"
    assert not darkness.look(clients, d.ctx, FENCE_DARK_MARK, False).dark
    assert FENCE_DARK_MARK not in _journal(d), "a look that found region A answering left the window"


def test_no_loss_the_state_machine_s_fence_looks_again_through_a_short_dark_spell(deploy: Deploy) -> None:
    """The Step Functions executor: the fence answers ``in_progress`` while it confirms, the state machine polls
    it (``fence_primary: wait``), the spell ends, the fence reaches region A and the change stays lossless."""
    d = deploy("rds-replica")
    spell = _DarkFromTheFence(d.emulator.clock, 45.0)
    d.op_advance(120)
    d.add_fault(spell)
    d.op_write(2_000)
    outcome, detail = run_state_machine(d, "failover", {"force": True, "reason": "checker"})
    assert (outcome, detail) == (Outcome.DONE, ""), detail
    _, events = last_execution(d)
    polls = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "WaitStateEntered"]
    assert "fence_primary: wait" in polls, polls
    journal = _journal(d)
    assert journal.get("primaryStoppedAt") and not journal.get("fencePending"), journal
    d.op_advance(181)
    d.judge()
    assert not d.violations, [str(v) for v in d.violations]
