"""Route 53 failover answers from alarm data streams: each test names the AWS rule it checks.

Tags ([CW-EVAL], [CW-MISSING], [R53-HEALTH], ...) are the sources listed in
``automation/emulator/alarms.py`` and ``automation/emulator/health.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automation.emulator.alarms import AlarmSpec, evaluate_alarm
from automation.emulator.exceptions import SpecError
from components.global_failover import SWITCH_METRIC, SWITCH_NAMESPACE, switch_alarm_settings

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
A, B = "us-east-1", "us-west-2"
WEB = "web.app.example.com"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def switch_alarm(traffic: str = "primary") -> AlarmSpec:
    """The product's switch alarm, settings from the product's own pure function."""
    return AlarmSpec(
        name="app-failover-switch",
        region=B,
        namespace=SWITCH_NAMESPACE,
        metric_name=SWITCH_METRIC,
        dimensions={"App": "app"},
        statistic="Maximum",
        period=60,
        evaluation_periods=1,
        comparison_operator="GreaterThanOrEqualToThreshold",
        **switch_alarm_settings(traffic),
    )


# --------------------------------------------------------------------------------------------------
# CloudWatch alarm evaluation: the two tables of [CW-MISSING], row by row


def table_alarm(m: int, treat: str, namespace: str = "Test") -> AlarmSpec:
    return AlarmSpec(
        name="t",
        region=A,
        namespace=namespace,
        metric_name="m",
        statistic="Maximum",
        period=300,  # the tables' 5-minute period
        evaluation_periods=3,
        datapoints_to_alarm=m,
        comparison_operator="GreaterThanOrEqualToThreshold",
        threshold=1,
        treat_missing_data=treat,
    )


def row(pattern: str) -> list[tuple[datetime, float]]:
    """'0 - X - X', oldest first, over the 5 periods before T0 ('0' within, 'X' breaching)."""
    marks = pattern.split()
    return [
        (T0 - timedelta(minutes=5 * (5 - k)), 1.0 if c == "X" else 0.0)
        for k, c in enumerate(marks)
        if c != "-"
    ]


RETAIN = "retain"
TABLES = [
    # 3 out of 3: MISSING, IGNORE, BREACHING, NOT BREACHING
    (3, "0 - X - X", ("OK", "OK", "OK", "OK")),
    (3, "0 - - - -", ("OK", "OK", "OK", "OK")),
    (3, "- - - - -", ("INSUFFICIENT_DATA", RETAIN, "ALARM", "OK")),
    (3, "0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (3, "- - - - X", ("INSUFFICIENT_DATA", RETAIN, "ALARM", "OK")),
    (3, "X - - - -", ("ALARM", RETAIN, "ALARM", "OK")),
    # 2 out of 3
    (2, "0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, "0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, "0 - X - -", ("OK", "OK", "ALARM", "OK")),
    (2, "- - - - 0", ("OK", "OK", "ALARM", "OK")),
    (2, "- - - - X", ("INSUFFICIENT_DATA", RETAIN, "ALARM", "OK")),
]


@pytest.mark.parametrize(("m", "pattern", "expected"), TABLES, ids=[f"{m}of3 {p}" for m, p, _ in TABLES])
@pytest.mark.parametrize("previous", ["OK", "ALARM", "INSUFFICIENT_DATA"])
def test_missing_data_tables(m: int, pattern: str, expected: tuple[str, ...], previous: str) -> None:
    """[CW-MISSING] M out of N over the evaluation range, each treat-missing-data setting;
    ``ignore`` keeps the current state."""
    for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected, strict=True):
        got = evaluate_alarm(table_alarm(m, treat), row(pattern), T0, previous)
        assert got == (previous if want == RETAIN else want), (treat, pattern, previous)


def test_dynamodb_alarms_always_ignore_missing_data() -> None:
    """[CW-API] AWS/DynamoDB alarms "always ignore missing data" whatever TreatMissingData says."""
    spec = table_alarm(3, "breaching", namespace="AWS/DynamoDB")
    assert evaluate_alarm(spec, [], T0, "OK") == "OK"


def test_only_complete_periods_aligned_to_the_period_count() -> None:
    """[CW-EVAL] a datapoint at a boundary belongs to the period it opens."""
    spec = switch_alarm()
    assert evaluate_alarm(spec, [(at(60), 1.0)], at(60), "OK") == "INSUFFICIENT_DATA"
    assert evaluate_alarm(spec, [(at(60), 1.0)], at(119.9), "OK") == "INSUFFICIENT_DATA"
    assert evaluate_alarm(spec, [(at(60), 1.0)], at(120), "OK") == "ALARM"


def test_the_most_recent_real_datapoint_decides_the_switch() -> None:
    """[CW-MISSING] with at least N real datapoints, the most recent ones are evaluated; the
    Maximum of a period with a 1 and a 0 is 1."""
    spec = switch_alarm()
    assert evaluate_alarm(spec, [(at(10), 1.0), (at(70), 0.0)], at(120), "ALARM") == "OK"
    assert evaluate_alarm(spec, [(at(70), 1.0), (at(80), 0.0)], at(120), "OK") == "ALARM"


def test_m_out_of_n_breaching_points_need_not_be_consecutive() -> None:
    """[CW-EVAL] "The breaching data points do not have to be consecutive"."""
    spec = replace(table_alarm(2, "missing"), evaluation_periods=3, datapoints_to_alarm=2)
    assert evaluate_alarm(spec, row("0 0 X 0 X"), T0, "OK") == "ALARM"
    assert evaluate_alarm(spec, row("0 0 0 0 X"), T0, "OK") == "OK"


@given(
    period=st.sampled_from([60, 120, 300, 3600]),
    n=st.integers(1, 5),
    data=st.data(),
    threshold=st.floats(-1e6, 1e6),
    operator=st.sampled_from(
        [
            "GreaterThanOrEqualToThreshold",
            "GreaterThanThreshold",
            "LessThanThreshold",
            "LessThanOrEqualToThreshold",
        ]
    ),
    previous=st.sampled_from(["OK", "ALARM", "INSUFFICIENT_DATA"]),
    offset=st.integers(0, 10**9),
)
def test_breaching_with_no_datapoints_is_always_alarm(
    period: int, n: int, data: Any, threshold: float, operator: str, previous: str, offset: int
) -> None:
    """[CW-MISSING] ``breaching``: missing datapoints are treated as breaching the threshold."""
    m = data.draw(st.integers(1, n))
    spec = AlarmSpec(
        name="p",
        region=A,
        namespace="N",
        metric_name="M",
        statistic="Average",
        period=period,
        evaluation_periods=n,
        datapoints_to_alarm=m,
        comparison_operator=operator,
        threshold=threshold,
        treat_missing_data="breaching",
    )
    assert evaluate_alarm(spec, [], T0 + timedelta(seconds=offset), previous) == "ALARM"


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("statistic", "p99"),
        ("period", 45),
        ("period", 0),
        ("evaluation_periods", 0),
        ("evaluation_periods", 1441),
        ("datapoints_to_alarm", 2),
        ("comparison_operator", "LessThanLowerOrGreaterThanUpperThreshold"),
        ("treat_missing_data", "maybe"),
        ("threshold", float("nan")),
        ("name", ""),
    ],
)
def test_bad_alarm_specs_name_the_field(field_name: str, value: object) -> None:
    with pytest.raises(ValueError, match=field_name):
        replace(switch_alarm(), **{field_name: value})


def test_bad_enum_values_list_the_allowed_ones() -> None:
    with pytest.raises(SpecError, match="missing, ignore, breaching, notBreaching"):
        replace(switch_alarm(), treat_missing_data="maybe")
