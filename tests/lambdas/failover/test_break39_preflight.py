"""break39: the preflight's global-table check (21c0a0c, ``preflight.replica_problem``, ``REPLICA_NOT_THERE``) and
the test-world change of 5bb3a5b (``faults.region_dark``: a world's region-A health endpoint answers 503 while a
whole-region unreachable fault is in force) attacked. Findings are strict xfails with the observed output in their
reasons; controls (what held) beside them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from lambdas.failover import preflight
from lambdas.failover.context import RunbookContext
from tests.lambdas.failover.faults import Fault, FaultSwitch, region_dark
from tests.lambdas.failover.harness import clients_for, new_session
from tests.lambdas.failover.test_break37_preflight import _ReplicaStatus, _table_problems
from tests.lambdas.failover.world import REGION_A, REGION_B, World, build_world

_apps = itertools.count(1)


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    yield build_world(
        "rds-replica",
        app=f"b39pf{next(_apps)}",
        encrypted=True,
        primary_health_url="http://127.0.0.1:9/primary",
        session=new_session(),
        global_table=True,
    )


def _check(world: World, *hooks: Any, runbook: str = "failover") -> preflight.PreflightReport:
    return preflight.check(RunbookContext.from_dict(world.context), clients_for(world, *hooks), runbook)  # type: ignore[arg-type]


P39_1 = (
    "no_loss / the preflight's own promise ('two regional tables of that name replicate nothing': refused). "
    "REPLICATION_NOT_AUTHORIZED is documented as replication stopped: 'If you deny required SLR permissions, "
    "replication to and from affected replicas will stop, and the replica table status will change to "
    "REPLICATION_NOT_AUTHORIZED', and after 20 hours 'the replica is irreversibly converted to a single-Region "
    "DynamoDB table' (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/globaltables-security.html); "
    "ARCHIVING/ARCHIVED are ReplicaStatus values (boto3 ReplicaStatus enum) for a table whose KMS key was out of "
    "reach more than seven days, archived to a backup (API_ArchivalSummary), on which 'Operations are not "
    "allowed'. replica_problem refuses none of them: they warn, like UPDATING. Observed: replica_problem("
    "{'Replicas': [{'RegionName': 'us-west-2', 'ReplicaStatus': S}]}, 'us-west-2') -> (None, \"has its replica "
    'in us-west-2 in ReplicaStatus S, not ACTIVE (ready for use)") for S in REPLICATION_NOT_AUTHORIZED, '
    "ARCHIVING, ARCHIVED, and the whole preflight (region A answering, its describe naming region B's replica so) "
    "passes with a warning. The split is inconsistent: the same replica 20 hours later (a regional table, no "
    "Replicas) is refused. The warn rationale (what one region says of the other while that region is down) does "
    "not apply to a status that says replication stopped for a reason other than the region being down; a "
    "planned change then waits its whole budget for a drain marker that cannot arrive, an unplanned one moves "
    "the writer to a copy that stopped receiving writes when the status changed."
)


@pytest.mark.parametrize("status", ["REPLICATION_NOT_AUTHORIZED", "ARCHIVING", "ARCHIVED"])
def test_p39_1_a_replica_documented_as_not_replicating_only_warns(status: str) -> None:
    """The finding ``P39_1`` (above). Fixed: preflight.REPLICA_NOT_THERE now holds REPLICATION_NOT_AUTHORIZED, ARCHIVING and ARCHIVED; this test failed before the fix (it was a strict xfail)."""
    found, warned = preflight.replica_problem(
        {"Replicas": [{"RegionName": REGION_B, "ReplicaStatus": status}]}, REGION_B
    )
    print("P39-1 observed:", status, (found, warned))
    assert found is not None, (found, warned)


def test_p39_1_the_preflight_passes_with_region_a_naming_region_b_s_replica_not_authorized(
    world: World,
) -> None:
    """The finding ``P39_1`` (above). Fixed: preflight.REPLICA_NOT_THERE now holds REPLICATION_NOT_AUTHORIZED, ARCHIVING and ARCHIVED; this test failed before the fix (it was a strict xfail)."""
    answer = _ReplicaStatus(REGION_B, "REPLICATION_NOT_AUTHORIZED")
    report = _check(world, answer)
    print("P39-1 preflight:", answer.answered, report.ok, _table_problems(report), report.warnings)
    assert answer.answered == 1
    assert not report.ok, report.format()


class _OwnTableStatus:
    """DescribeTable of ``region``'s replica answering its own ``TableStatus`` as ``status`` (its ``Replicas``
    untouched: the other region's replica ACTIVE), as AWS answers a table whose KMS key is out of reach or
    that was archived (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html
    TableStatus: INACCESSIBLE_ENCRYPTION_CREDENTIALS, ARCHIVING, ARCHIVED)."""

    def __init__(self, table: str, region: str, status: str) -> None:
        self.table, self.region, self.status = table, region, status
        self.answered = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        table = parsed.get("Table") or {}
        if table.get("TableName") == self.table and f":{self.region}:" in str(table.get("TableArn", "")):
            table["TableStatus"] = self.status
            self.answered += 1

    def install(self, session: Any) -> _OwnTableStatus:
        session.events.register("after-call.dynamodb.DescribeTable", self)
        return self


P39_2 = (
    "converges / the preflight's promise that a run which would stop on the table is refused before any change. "
    "global_table() reads only the other region's ReplicaStatus (replica_problem), never the described table's "
    "own TableStatus: region B's replica answering TableStatus INACCESSIBLE_ENCRYPTION_CREDENTIALS or ARCHIVED "
    "(reads and writes refused) with region A's replica ACTIVE in its Replicas passes the preflight with no "
    "problem and no warning, yet the program's own region-B health check refuses exactly that table "
    "(lambdas/api/health.py check_table: USABLE_TABLE_STATUSES = ('ACTIVE', 'UPDATING'), else TableNotUsable, "
    "503): the failover fences region A and moves the writer to a region whose API cannot read or write its "
    "table. Region B must answer (the preflight says 'the runbook cannot work without it'), so its answer about "
    "its own table is no undocumented view of a dark region. Observed: hook answered 1 describe, report.ok True, "
    "no 'globalTableName' problem or warning."
)


@pytest.mark.parametrize("status", ["INACCESSIBLE_ENCRYPTION_CREDENTIALS", "ARCHIVED"])
def test_p39_2_region_b_s_own_table_unusable_passes_the_preflight(world: World, status: str) -> None:
    """The finding ``P39_2`` (above). Fixed: the preflight refuses a table whose own TableStatus takes no read or write in the region the run moves the writer to (preflight.UNUSABLE_TABLE_STATUSES), and warns in the region it leaves; this test failed before the fix (it was a strict xfail)."""
    answer = _OwnTableStatus(world.context["globalTableName"], REGION_B, status)
    report = _check(world, answer)
    table_notes = [w for w in report.warnings if "globalTableName" in w]
    print("P39-2 observed:", status, answer.answered, report.ok, _table_problems(report), table_notes)
    assert answer.answered == 1
    assert not report.ok, report.format()


def test_p39_control_failback_preflight_checks_the_table_the_same_way_roles_reversed(world: World) -> None:
    """Held: the CLI's failback preflight (automation/runbook_cli.py runs ``preflight.check`` for both runbooks)
    describes the table in both regions with the other region as the replica it looks for, so roles reversed
    (a failback moves the writer B -> A) refuse a replica not there in either direction."""
    answer = _ReplicaStatus(REGION_A, "CREATING")  # region B's describe names region A's replica CREATING
    report = _check(world, answer, runbook="failback")
    problems = _table_problems(report)
    assert set(problems) == {REGION_B}, report.format()
    assert f"has its replica in {REGION_A} in ReplicaStatus CREATING" in problems[REGION_B]
    assert _check(world, runbook="failback").ok


D39_1 = (
    "test-world fidelity (5bb3a5b's tests/lambdas/failover/faults.py Fault.darkens). A whole-region unreachable "
    "fault with skip > 0 (region A goes dark after the first N calls: test_runbook.py "
    "test_a_planned_rds_failover_never_promotes_unplanned_when_region_a_goes_dark_mid_run uses skip=1) is "
    "never 'in force' for region_dark ('and not self.skip'), even after its skipped calls were let through "
    "and every call to region A fails to connect: world.primary_health then answers 200 (latch written by a "
    "run, region A's group serving) for a region whose every API is dark, so the promotion's late web look "
    "reads 'region A answers' and a test of an unplanned path can pass or stop for the web look's reason, "
    "not the one it names. Observed: after the skipped call, DescribeAutoScalingGroups in region A raises "
    "EndpointConnectionError, region_dark('us-east-1') False, world.primary_health() -> (200, {'region': "
    "'us-east-1', 'writer': True}). Fix direction: darkens() should count the skip as spent once len(seen) >= "
    "skip."
)


def test_d39_1_a_region_dark_after_its_first_call_is_not_dark_for_the_worlds_web_tier(world: World) -> None:
    """The finding ``D39_1`` (above). Fixed: Fault.darkens counts the skipped calls as spent once they were let through; this test failed before the fix (it was a strict xfail)."""
    latch = world.context["latchParameterName"]
    world.client("ssm", REGION_B).put_parameter(
        Name=latch,
        Value=json.dumps({"state": "active", "runbook": "failover"}),
        Type="String",
        Overwrite=True,
    )
    session = new_session()
    switch = FaultSwitch().install(session)
    switch.active = [Fault(region=REGION_A, unreachable=True, skip=1)]
    asg = session.client("autoscaling", region_name=REGION_A, endpoint_url=world.endpoint_url)
    asg.describe_auto_scaling_groups()  # the skipped call: let through
    with pytest.raises(EndpointConnectionError):
        asg.describe_auto_scaling_groups()  # region A dark from now on
    health = world.primary_health()
    print("D39-1 observed:", region_dark(REGION_A), health)
    assert region_dark(REGION_A), health
    assert health[0] == 503, health


def test_d39_control_an_exhausted_fault_and_a_cleared_switch_are_not_dark(world: World) -> None:
    """Held: a whole-region fault whose ``times`` are spent, and a FaultSwitch whose active faults were cleared,
    no longer darken region A's web tier (region_dark reads them live); a fault scoped to one service never does."""
    spent = Fault(region=REGION_A, unreachable=True, times=1)
    spent.injected = 1
    switch = FaultSwitch()
    switch.active = [Fault(region=REGION_A, unreachable=True)]
    assert region_dark(REGION_A)
    switch.active = []
    assert not region_dark(REGION_A)
    switch.active = [spent]
    assert not region_dark(REGION_A)
    switch.active = [Fault(service="rds", region=REGION_A, unreachable=True)]
    assert not region_dark(REGION_A)
    Fault(region=REGION_A, unreachable=True).install(new_session())  # installed for good: not a run's
    switch.active = []
    assert not region_dark(REGION_A)
