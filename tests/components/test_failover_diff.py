"""`dr:active true` changes only the DR tier: no stateful resource is added, removed or changed."""

from __future__ import annotations

import pytest

from automation.plan import diff, render_diff
from components.failover import FailoverRefused
from tests.components.conftest import synthesize

MODES = {
    "aurora-global": {"pilotlight:database": {"mode": "aurora-global"}},
    "rds-replica": {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}},
}
# What a failover may change, per type: capacity, promotion, functions, event sources, routing.
ALLOWED = {
    "aws:autoscaling/group:Group": {"minSize", "maxSize", "desiredCapacity"},
    "aws:lambda/function:Function": {"reservedConcurrentExecutions"},
    "aws:lambda/eventSourceMapping:EventSourceMapping": {"enabled"},
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"threshold", "treatMissingData"},
    # Promotion drops replicateSourceDb; while a replica, the instance ignores it (never re-pointed).
    "aws:rds/instance:Instance": {"replicateSourceDb", "<ignore_changes>"},
}
STATEFUL_PREFIXES = ("aws:rds/", "aws:s3/", "aws:dynamodb/", "aws:kms/", "aws:secretsmanager/", "aws:backup/")


@pytest.mark.parametrize("mode", MODES)
def test_failover_changes_only_the_dr_tier_in_place(mode: str) -> None:
    standby = synthesize("dr", {**MODES[mode], "dr:active": False})
    active = synthesize("dr", {**MODES[mode], "dr:active": True})
    changes = diff(standby, active)
    print(f"\nfailover diff ({mode}):\n{render_diff(changes)}")
    assert changes, "dr:active true must change something"
    for change in changes:
        assert change.kind == "changed", f"{change.name} was {change.kind}: a failover never adds or removes"
        assert set(change.fields) <= ALLOWED.get(change.type, set()), (change.name, change.fields)
    stateful = [c for c in changes if c.type.startswith(STATEFUL_PREFIXES)]
    if mode == "aurora-global":
        assert stateful == []  # promotion is the runbook's (failover_global_cluster)
    else:
        assert all(set(c.fields) - {"<ignore_changes>"} == {"replicateSourceDb"} for c in stateful)
    # And region A is untouched: the update works while region A is down.
    assert all(c.region == active.config["pilotlight:drRegion"] for c in changes)


def test_the_latch_refuses_a_routine_revert() -> None:
    with pytest.raises(FailoverRefused, match="dr:failback"):
        synthesize("dr", {"dr:active": False}, latch='{"state": "active", "since": "2026-11-22T03:00:00Z"}')


def test_dr_active_true_under_a_standby_latch_is_refused_naming_the_activate_command() -> None:
    # E2: Route 53 follows only the latch; a declared failover activates it before lighting region B.
    for latch in (None, '{"state": "standby", "since": "2026-11-22T05:00:00Z", "runbook": "failback"}'):
        with pytest.raises(FailoverRefused, match="python -m automation latch activate"):
            synthesize("dr", {"dr:active": True}, latch=latch or '{"state": "standby"}')


def test_the_switch_alarm_is_the_same_in_standby_and_active() -> None:
    # E2: a configuration the program left behind never overrides the runbook's release of the switch.
    standby = synthesize("dr", {"dr:active": False}).named("global-switch")
    active = synthesize("dr", {"dr:active": True}).named("global-switch")
    assert standby.inputs == active.inputs, "aws:cloudwatch/metricAlarm:MetricAlarm global-switch"
    assert (active.inputs["threshold"], active.inputs["treatMissingData"]) == (1, "missing")


def test_an_active_latch_with_dr_active_true_is_accepted() -> None:
    s = synthesize("dr", {"dr:active": True}, latch='{"state": "active"}')
    assert s.outputs["traffic"] == "dr"
