"""RTO budget and RPO table: directions that must hold, figures worked by hand, bad input."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automation.rto import RtoInputs, format_budget, format_rpo, rpo_table, rto_budget

BASE = RtoInputs(
    health_check_interval_seconds=30,
    failure_threshold=3,
    dns_ttl_seconds=60,
    database_mode="aurora-global",
    aurora_dr_instances=1,
    warm_pool=False,
    dr_web_capacity=2,
    confirmation_window_seconds=180,
    orchestration_overhead_seconds=30,
)


def test_warm_pool_and_fast_health_checks_lower_the_rto() -> None:
    cold_slow = rto_budget(BASE)
    warm_fast = rto_budget(replace(BASE, warm_pool=True, health_check_interval_seconds=10))
    assert warm_fast.total_expected_seconds < cold_slow.total_expected_seconds
    assert warm_fast.total_worst_seconds < cold_slow.total_worst_seconds
    # Each on its own helps too (with an instance in region B the web tier is the slower branch).
    assert rto_budget(replace(BASE, warm_pool=True)).total_expected_seconds < cold_slow.total_expected_seconds
    fast = rto_budget(replace(BASE, health_check_interval_seconds=10))
    assert fast.total_expected_seconds < cold_slow.total_expected_seconds


def test_a_headless_aurora_secondary_raises_the_rto() -> None:
    with_instance = rto_budget(BASE)
    headless = rto_budget(replace(BASE, aurora_dr_instances=0))
    assert headless.total_expected_seconds > with_instance.total_expected_seconds
    assert headless.total_worst_seconds > with_instance.total_worst_seconds
    assert any("headless" in name for name in headless.critical_path)


def test_a_known_configuration_gives_a_known_budget() -> None:
    # Aurora with one DR instance, 10 s checks x 3, warm pool, ALB defaults (5 x 30 s), TTL 60,
    # confirmation 180 s, orchestration 30 s. Worked by hand from the documented step figures:
    detection = 10 * 3 + 30  # checks + aggregation/propagation
    # confirmation, orchestration, region A confirmed dark (fence), its database dark again at the promotion
    # (the 120-s window less the switch wait's expected 90 s it overlaps)
    serial_before = detection + 180 + 30 + 120 + 30
    database = 60  # detach and promote
    web = 60 + 5 * 30  # start warm-pool instances + ALB healthy threshold
    serial_after = 10 + 90 + 60 + 30  # functions, switch, TTL, verify
    budget = rto_budget(replace(BASE, health_check_interval_seconds=10, warm_pool=True))
    assert budget.total_expected_seconds == serial_before + max(database, web) + serial_after == 820

    worst_detection = 10 * 4 + 60
    worst = worst_detection + 180 + 60 + 150 + 60 + max(300, 150 + 6 * 30) + 60 + 180 + 60 + 120
    assert budget.total_worst_seconds == worst


def test_the_critical_path_takes_the_slower_parallel_branch() -> None:
    rds = rto_budget(replace(BASE, database_mode="rds-replica", warm_pool=True))
    names = rds.critical_path
    assert any(n.startswith("database") for n in names)
    assert not any(n.startswith("web tier") for n in names)
    by_name = {c.name: c for c in rds.components}
    serial = sum(c.expected_seconds for c in rds.components if c.branch is None)
    branches: dict[str, float] = {}
    for c in rds.components:
        if c.branch:
            branches[c.branch] = branches.get(c.branch, 0) + c.expected_seconds
    assert rds.total_expected_seconds == serial + max(branches.values())
    assert all(by_name[n].branch in (None, "database") for n in names)


def test_components_are_ordered_and_each_cites_a_source() -> None:
    budget = rto_budget(BASE)
    names = [c.name for c in budget.components]
    assert names[0].startswith("detection")
    assert names[-1].startswith("verify")
    order = [
        "detection",
        "confirmation",
        "orchestration",
        "database",
        "functions",
        "switch",
        "DNS TTL",
        "verify",
    ]
    firsts = [next(i for i, n in enumerate(names) if n.startswith(step)) for step in order]
    assert firsts == sorted(firsts)
    for c in budget.components:
        assert c.source and c.expected_seconds <= c.worst_seconds
    documented = [c for c in budget.components if "docs.aws.amazon.com" in c.source]
    assert len(documented) >= 8


def test_a_smaller_warm_pool_than_capacity_falls_back_to_cold_launch() -> None:
    full = rto_budget(replace(BASE, warm_pool=True))
    short = rto_budget(replace(BASE, warm_pool=True, warm_pool_size=1, dr_web_capacity=4))
    assert short.total_expected_seconds > full.total_expected_seconds


@pytest.mark.parametrize(
    ("change", "field", "allowed"),
    [
        ({"failure_threshold": 0}, "failure_threshold", "1 to 10"),
        ({"failure_threshold": 11}, "failure_threshold", "1 to 10"),
        ({"health_check_interval_seconds": 15}, "health_check_interval_seconds", "10, 30"),
        ({"database_mode": "dynamo"}, "database_mode", "aurora-global, rds-replica"),
        ({"aurora_dr_instances": -1}, "aurora_dr_instances", "0 to 16"),
        ({"warm_pool": "yes"}, "warm_pool", "true or false"),
        ({"dns_ttl_seconds": -5}, "dns_ttl_seconds", ">= 0|0 to"),
        ({"dr_web_capacity": True}, "dr_web_capacity", ">= 0"),
    ],
)
def test_bad_inputs_name_the_field_and_the_allowed_values(
    change: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(ValueError, match=field) as err:
        replace(BASE, **change)
    assert any(a in str(err.value) for a in allowed.split("|"))


@given(
    threshold=st.integers(min_value=1, max_value=9),
    mode=st.sampled_from(["aurora-global", "rds-replica"]),
    instances=st.integers(min_value=0, max_value=2),
    warm=st.booleans(),
    ttl=st.integers(min_value=0, max_value=300),
)
def test_rto_is_monotonic_in_failure_threshold_and_interval(
    threshold: int, mode: str, instances: int, warm: bool, ttl: int
) -> None:
    base = replace(
        BASE,
        failure_threshold=threshold,
        database_mode=mode,
        aurora_dr_instances=instances,
        warm_pool=warm,
        dns_ttl_seconds=ttl,
    )
    lower = rto_budget(base)
    higher_threshold = rto_budget(replace(base, failure_threshold=threshold + 1))
    assert higher_threshold.total_expected_seconds > lower.total_expected_seconds
    assert higher_threshold.total_worst_seconds > lower.total_worst_seconds
    fast = rto_budget(replace(base, health_check_interval_seconds=10))
    slow = rto_budget(replace(base, health_check_interval_seconds=30))
    assert fast.total_expected_seconds < slow.total_expected_seconds
    assert fast.total_worst_seconds < slow.total_worst_seconds


def test_format_budget_shows_steps_totals_and_sources() -> None:
    budget = rto_budget(BASE)
    text = format_budget(budget)
    assert "total expected" in text and "worst case" in text
    assert "[1]" in text and "docs.aws.amazon.com" in text
    for c in budget.components:
        assert c.name in text
    assert budget.to_dict()["total_expected_seconds"] == budget.total_expected_seconds


# -- RPO ------------------------------------------------------------------------------------------


def test_rpo_table_for_aurora_global() -> None:
    rows = rpo_table("aurora-global")
    db = rows[0]
    assert "Aurora" in db.data_store and db.typical_rpo_seconds == 1.0
    stores = " ".join(r.data_store for r in rows)
    for store in ("S3", "DynamoDB", "Secrets Manager", "AWS Backup"):
        assert store in stores
    s3 = next(r for r in rows if "S3" in r.data_store)
    assert s3.typical_rpo_seconds == 900 and "99.99%" in s3.typical_rpo
    for r in rows:
        assert "docs.aws.amazon.com" in r.source


def test_rpo_table_for_rds_replica_depends_on_write_load() -> None:
    rows = rpo_table("rds-replica", backup_interval_hours=12)
    assert "read replica" in rows[0].data_store
    assert rows[0].typical_rpo_seconds is None and "write load" in rows[0].typical_rpo
    backup = next(r for r in rows if "Backup" in r.data_store)
    assert backup.typical_rpo_seconds == 12 * 3600
    assert "read replica" in format_rpo(rows)


def test_rpo_table_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match=r"database_mode.*aurora-global, rds-replica"):
        rpo_table("mongodb")
