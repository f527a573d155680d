"""The rds-replica failback renames to replace (lambdas/failover/failback.py ``reestablish_replication``).

Invariants protected (docs/safety.md): *every run converges* — a failback stopped at any point of the
rename-to-replace sequence and resumed ends in the same state as one that never stopped; and
*nothing acknowledged is lost* on its data side — region A's old primary is never deleted nor
renamed twice, it is kept under the one name the journal records, and the writer the application
reaches is the instance under the primary's own name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.failover.graph import FAILBACK
from tests.lambdas.failover.faults import deny
from tests.lambdas.failover.harness import FAST, run_book
from tests.lambdas.failover.world import REGION_A, REGION_B, World, all_db_instances

# Each point the new sequence can stop at, as the AWS call refused there (service, operation, region).
CRASH_POINTS: dict[str, tuple[str, str, str]] = {
    "before the rename is journaled": ("ssm", "PutParameter", REGION_B),
    "rename journaled, not requested": ("rds", "ModifyDBInstance", REGION_A),
    "renamed, replica not requested": ("rds", "CreateDBInstanceReadReplica", REGION_A),
    "replica created, not promoted": ("rds", "PromoteReadReplica", REGION_A),
    "promoted, latch still active": ("ssm", "PutParameter (latch)", REGION_B),
}


def journal(world: World) -> dict[str, Any]:
    name = world.context["latchParameterName"] + "-journal"
    return json.loads(world.client("ssm", REGION_B).get_parameter(Name=name)["Parameter"]["Value"])


def region_a_instances(world: World) -> dict[str, dict[str, Any]]:
    primary = world.context["primaryDbInstanceId"]
    found = all_db_instances(world.client("rds", REGION_A))
    return {
        d["DBInstanceIdentifier"]: d
        for d in found
        if d["DBInstanceIdentifier"] == primary or d["DBInstanceIdentifier"].startswith(f"{primary}-")
    }


def end_state(world: World) -> dict[str, Any]:
    primary = world.context["primaryDbInstanceId"]
    instances = region_a_instances(world)
    writer = instances[primary]
    retained = sorted(i for i in instances if i != primary)
    return {
        "writer standalone": "ReadReplicaSourceDBInstanceIdentifier" not in writer,
        "retained": [r.split("-pre-failback-")[0] for r in retained],
        "journal lists": [k["instance"] for k in journal(world)["retainedPrimaries"]] == retained,
        "latch": world.latch()["state"],
        "in VPC": writer.get("DBSubnetGroup", {}).get("DBSubnetGroupName"),
    }


def test_an_uninterrupted_failback_renames_once_and_replaces_under_the_primary_s_name(world: World) -> None:
    primary = world.context["primaryDbInstanceId"]
    before = world.db(REGION_A, primary)
    assert before is not None
    assert run_book(world, "failover").outcome == "done"
    world.age_metrics(minutes=5)
    report = run_book(world, "failback", params=FAST)
    assert report.outcome == "done", report.format_table()
    state = end_state(world)
    assert state == {
        "writer standalone": True,
        "retained": [primary],
        "journal lists": True,
        "latch": "standby",
        "in VPC": before["DBSubnetGroup"]["DBSubnetGroupName"],
    }
    (retained,) = [i for i in region_a_instances(world) if i != primary]
    # The old primary is the instance that was renamed (same resource id), kept, not deleted.
    assert region_a_instances(world)[retained]["DbiResourceId"] == before["DbiResourceId"]


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_a_failback_stopped_anywhere_in_the_sequence_resumes_to_the_same_end_state(
    world: World, point: str
) -> None:
    """Every run converges: stopped at ``point`` and run again, the failback ends as an uninterrupted one
    does — one retained old primary, the journal naming it, the writer under the primary's own name."""
    primary = world.context["primaryDbInstanceId"]
    assert run_book(world, "failover").outcome == "done"
    world.age_metrics(minutes=5)
    service, operation, region = CRASH_POINTS[point]
    fault = deny(service, operation.split()[0], region)
    if operation == "PutParameter (latch)":
        fault.body_excludes = "-journal"  # clear_latch's write, not the run journal's
    first = run_book(world, "failback", fault, params=FAST)
    assert first.outcome == "stopped", first.format_table()
    resumed = run_book(world, "failback", params=FAST)
    assert resumed.outcome == "done", resumed.format_table()
    again = run_book(world, "failback", params=FAST)
    assert {again.statuses[n] for n in FAILBACK.names()[1:]} == {"already_done"}, again.format_table()
    state = end_state(world)
    assert state["writer standalone"] and state["retained"] == [primary] and state["journal lists"], state
    assert state["latch"] == "standby"
