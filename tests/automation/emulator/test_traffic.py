"""Route 53 failover answers from alarm data streams: each test names the AWS rule it checks.

Tags ([CW-EVAL], [CW-MISSING], [R53-HEALTH], ...) are the sources listed in
``automation/emulator/alarms.py`` and ``automation/emulator/health.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automation.emulator.traffic import (
    AlarmSpec,
    AlarmState,
    FailoverRecord,
    HealthChecks,
    HealthCheckSpec,
    Routing,
    SpecError,
    TimeWentBackwards,
    answer,
    evaluate_alarm,
)
from components.global_failover import SWITCH_ALARM, SWITCH_METRIC, switch_metric

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
A, B = "us-east-1", "us-west-2"
WEB = "web.app.example.com"
SWITCH_NAMESPACE = switch_metric("app")["namespace"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def switch_alarm() -> AlarmSpec:
    """The product's switch alarm, settings from the product's own constant (the same in every state)."""
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
        **SWITCH_ALARM,
    )


CHECKS = [
    HealthCheckSpec("web-check", "HTTP", request_interval=10, failure_threshold=3),
    HealthCheckSpec(
        "switch-check",
        "CLOUDWATCH_METRIC",
        alarm_name="app-failover-switch",
        alarm_region=B,
        insufficient_data_health_status="LastKnownStatus",
    ),
    HealthCheckSpec(
        "gate",
        "CALCULATED",
        child_ids=("web-check", "switch-check"),
        child_health_threshold=2,
    ),
]
PAIR = [
    FailoverRecord("Z1", WEB, "PRIMARY", "alb-a", "gate", 60),
    FailoverRecord("Z1", WEB, "SECONDARY", "alb-b", None, 60),
]


@dataclass
class World:
    """A metric stream and region A's endpoint, as the checker would drive them."""

    routing: Routing
    points: list[tuple[datetime, float]] = field(default_factory=list)
    up: bool = True
    probes: int = 0

    def datapoints(self, alarm: AlarmSpec, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
        assert (alarm.namespace, alarm.metric_name) == (SWITCH_NAMESPACE, SWITCH_METRIC), alarm
        return [(t, v) for t, v in self.points if start <= t < end]

    def endpoint_up(self, _: HealthCheckSpec) -> bool:
        self.probes += 1
        return self.up

    def where(self, when: datetime, name: str = WEB) -> str | None:
        return self.routing.where(name, when, datapoints=self.datapoints, endpoint_up=self.endpoint_up)


def world() -> World:
    routing = Routing.from_specs(
        alarms=[switch_alarm()],
        health_checks=CHECKS,
        records=PAIR,
        region_of_target={"alb-a": A, "alb-b": B},
    )
    return World(routing)


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


# --------------------------------------------------------------------------------------------------
# health checks


def checks(*specs: HealthCheckSpec) -> HealthChecks:
    return HealthChecks(specs)


def cw_check(setting: str, inverted: bool = False) -> HealthCheckSpec:
    return HealthCheckSpec(
        "cw",
        "CLOUDWATCH_METRIC",
        alarm_name="a",
        alarm_region=B,
        insufficient_data_health_status=setting,
        inverted=inverted,
    )


@pytest.mark.parametrize(
    ("setting", "states", "expected"),
    [
        ("LastKnownStatus", ["INSUFFICIENT_DATA"], True),  # new check: healthy
        ("LastKnownStatus", ["ALARM", "INSUFFICIENT_DATA"], False),
        ("LastKnownStatus", ["ALARM", "OK", "INSUFFICIENT_DATA"], True),
        ("Healthy", ["ALARM", "INSUFFICIENT_DATA"], True),
        ("Unhealthy", ["OK", "INSUFFICIENT_DATA"], False),
        ("Healthy", ["ALARM"], False),
        ("Unhealthy", ["OK"], True),
    ],
)
def test_cloudwatch_checks_follow_the_alarm_and_the_insufficient_data_setting(
    setting: str, states: list[str], expected: bool
) -> None:
    """[R53-HEALTH] OK healthy, ALARM unhealthy, INSUFFICIENT_DATA per the setting;
    [R53-VALUES] LastKnownStatus with no known status is healthy."""
    hc = checks(cw_check(setting))
    for k, state in enumerate(states):
        hc.advance(at(k), lambda _: True, lambda _n, _r, s=state: s)
    assert hc.status("cw") is expected


def test_an_inverted_new_check_starts_unhealthy() -> None:
    """[R53-HEALTH] "If you chose the option to invert the health check status, Route 53 considers a
    new health check to be unhealthy until there's enough data"."""
    hc = checks(cw_check("LastKnownStatus", inverted=True))
    hc.advance(at(0), lambda _: True, lambda _n, _r: "INSUFFICIENT_DATA")
    assert hc.status("cw") is False
    hc.advance(at(1), lambda _: True, lambda _n, _r: "ALARM")
    assert hc.status("cw") is True


@pytest.mark.parametrize(("threshold", "expected"), [(0, True), (1, True), (2, False), (3, False)])
def test_calculated_checks_count_healthy_children(threshold: int, expected: bool) -> None:
    """[R53-HEALTH] healthy when at least the threshold of children are healthy; [R53-VALUES] 0 is
    always healthy, more than the children always unhealthy."""
    hc = checks(
        cw_check("Healthy"),
        HealthCheckSpec("web", "HTTP", request_interval=10, failure_threshold=1),
        HealthCheckSpec("calc", "CALCULATED", child_ids=("cw", "web"), child_health_threshold=threshold),
    )
    hc.advance(at(0), lambda _: False, lambda _n, _r: "OK")
    assert hc.status("calc") is expected


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"type": "TCP_PLUS"}, "type"),
        ({"request_interval": 20}, "request_interval"),
        ({"failure_threshold": 11}, "failure_threshold"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"type": "CLOUDWATCH_METRIC"}, "alarm_name"),
        ({"type": "CALCULATED"}, "child_ids"),
        ({"type": "CALCULATED", "child_ids": ("x",)}, "child_health_threshold"),
        ({"insufficient_data_health_status": "Maybe"}, "insufficient_data_health_status"),
    ],
)
def test_bad_health_check_specs_name_the_field(kwargs: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValueError, match=field_name):
        HealthCheckSpec(**{"id": "x", "type": "HTTP", **kwargs})


def test_a_calculated_check_cannot_monitor_a_calculated_check() -> None:
    """[R53-VALUES] "You can't configure a calculated health check to monitor the health of other
    calculated health checks"."""
    inner = HealthCheckSpec("inner", "CALCULATED", child_ids=("web",), child_health_threshold=1)
    outer = HealthCheckSpec("outer", "CALCULATED", child_ids=("inner",), child_health_threshold=1)
    web = HealthCheckSpec("web", "HTTP")
    with pytest.raises(SpecError, match="child_ids"):
        checks(web, inner, outer)


# --------------------------------------------------------------------------------------------------
# failover answers


def healthy_map(**status: bool) -> Callable[[str], bool]:
    return lambda check: status[check]


@pytest.mark.parametrize(
    ("primary_ok", "secondary_ok", "expected"),
    [
        (True, True, "PRIMARY"),
        (True, False, "PRIMARY"),
        (False, True, "SECONDARY"),
        (False, False, "PRIMARY"),
    ],
)
def test_failover_answer_and_both_unhealthy_returns_the_primary(
    primary_ok: bool, secondary_ok: bool, expected: str
) -> None:
    """[R53-CHOOSE] "If Route 53 considers both the primary and secondary records unhealthy,
    Route 53 returns the primary record"."""
    pair = [replace(PAIR[0], health_check_id="p"), replace(PAIR[1], health_check_id="s")]
    assert answer(pair, healthy_map(p=primary_ok, s=secondary_ok)).role == expected


def test_a_secondary_without_health_check_is_always_answerable() -> None:
    """[R53-CHOOSE] records without a health check are always healthy."""
    assert answer(PAIR, healthy_map(gate=False)).role == "SECONDARY"


def test_a_failover_pair_must_be_one_primary_and_one_secondary() -> None:
    with pytest.raises(SpecError, match="records"):
        answer([PAIR[0], PAIR[0]], healthy_map(gate=True))


@given(st.booleans(), st.booleans(), st.sampled_from([None, "p"]), st.sampled_from([None, "s"]))
def test_the_answer_is_always_one_of_the_two_records(
    p_ok: bool, s_ok: bool, p_check: str | None, s_check: str | None
) -> None:
    pair = [replace(PAIR[0], health_check_id=p_check), replace(PAIR[1], health_check_id=s_check)]
    assert answer(pair, healthy_map(p=p_ok, s=s_ok)) in pair


# --------------------------------------------------------------------------------------------------
# the switch, end to end


def test_throwing_the_switch_sends_traffic_to_b_after_the_next_evaluation() -> None:
    """[CW-EVAL] alarms evaluate complete periods: a 1 put at 12:00:30 counts at 12:01:00."""
    w = world()
    assert w.where(at(0)) == A
    w.points.append((at(30), 1.0))
    assert w.where(at(59)) == A, "the period holding the 1 is not complete before 12:01"
    assert w.where(at(60)) == B
    assert w.routing.alarm_state("app-failover-switch", B) == AlarmState.ALARM
    assert not w.routing.healthy("switch-check") and not w.routing.healthy("gate")


def test_after_the_datapoint_ages_out_last_known_status_keeps_traffic_on_b() -> None:
    """[CW-MISSING] real datapoints anywhere in the evaluation range count (N + 2 periods);
    once none is left, ``missing`` gives INSUFFICIENT_DATA, and [R53-VALUES] LastKnownStatus keeps
    the switch check unhealthy."""
    w = world()
    w.where(at(0))
    w.points.append((at(30), 1.0))
    for minute in (1, 2, 3):
        assert w.where(at(60 * minute)) == B
        assert w.routing.alarm_state("app-failover-switch", B) == AlarmState.ALARM
    assert w.where(at(240)) == B
    assert w.routing.alarm_state("app-failover-switch", B) == AlarmState.INSUFFICIENT_DATA
    assert w.where(at(3600)) == B, "an hour later the single datapoint still holds traffic on B"


def test_a_zero_sends_traffic_back_to_a_only_once_a_is_healthy_again() -> None:
    """[R53-HEALTH] the calculated gate needs both children; [R53-VALUES] region A's check turns
    healthy after failure_threshold consecutive passes."""
    w = world()
    w.where(at(0))
    w.points.append((at(30), 1.0))
    assert w.where(at(60)) == B
    w.up = False  # region A is down while failed over
    assert w.where(at(300)) == B
    assert not w.routing.healthy("web-check")
    w.points.append((at(330), 0.0))  # the runbook releases the switch
    assert w.where(at(360)) == B, "switch released, but region A's endpoint is still unhealthy"
    assert w.routing.alarm_state("app-failover-switch", B) == AlarmState.OK
    w.up = True  # checks at 12:06:10, :20, :30 pass
    assert w.where(at(375)) == B
    assert w.where(at(389)) == B
    assert w.where(at(390)) == A


def test_region_a_failing_failure_threshold_consecutive_checks_sends_traffic_to_b() -> None:
    """[R53-VALUES] failure threshold: consecutive failed checks every request interval."""
    w = world()
    assert w.where(at(0)) == A  # first check at 12:00:00 passes
    w.up = False
    assert w.where(at(20)) == A  # 12:00:10 and :20 failed: two of three
    w.up = True
    assert w.where(at(30)) == A  # a pass resets the count
    w.up = False
    assert w.where(at(50)) == A
    assert w.where(at(60)) == B  # 12:00:40, :50, 12:01:00 failed
    assert w.probes == 7


def test_a_declared_failover_throws_the_switch_and_a_release_brings_traffic_back() -> None:
    """[R53-VALUES] ``latch activate``'s single 1 holds traffic in B for hours (the alarm goes to
    INSUFFICIENT_DATA, and the health check keeps its LastKnownStatus; the canary also republishes it
    every minute), and the runbook's release (a 0) brings it back to A: no configuration the program
    left behind overrides it (issue 13, E2)."""
    w = world()
    w.points.append((at(0), 1.0))
    assert w.where(at(60)) == B
    assert w.where(at(7200)) == B
    w.points.append((at(7200), 0.0))
    assert w.where(at(7300)) == A


def test_standby_with_no_datapoint_keeps_traffic_on_a() -> None:
    """[R53-VALUES] LastKnownStatus on a check with no known status is healthy."""
    w = world()
    assert w.where(at(0)) == A
    assert w.routing.alarm_state("app-failover-switch", B) == AlarmState.INSUFFICIENT_DATA
    assert w.where(at(3600)) == A


def test_a_jump_in_time_still_sees_every_alarm_state_on_the_way() -> None:
    """[R53-VALUES] LastKnownStatus is the status "from the last time that CloudWatch had
    sufficient data": one call an hour later must still see the ALARM between."""
    w = world()
    w.where(at(0))
    w.points.append((at(30), 1.0))
    assert w.where(at(3600)) == B
    assert w.routing.alarm_state("app-failover-switch", B) == AlarmState.INSUFFICIENT_DATA


def test_health_checks_start_with_the_model_and_run_every_interval() -> None:
    """[R53-HEALTH] endpoint checks every request interval; none before the first call."""
    w = world()
    w.where(at(35))
    assert w.probes == 1
    w.where(at(95))
    assert w.probes == 7  # 12:00:45, :55, 12:01:05, :15, :25, :35


def test_naive_datetimes_are_utc() -> None:
    w = world()
    naive = T0.replace(tzinfo=None)
    w.where(naive)
    w.points.append((naive + timedelta(seconds=30), 1.0))
    assert w.where(naive + timedelta(seconds=60)) == B


def test_the_answered_record_carries_its_ttl() -> None:
    w = world()
    w.where(at(0))
    record = w.routing.record(WEB)
    assert record is not None and (record.role, record.ttl) == ("PRIMARY", 60)


def test_a_switch_check_on_an_unknown_alarm_is_refused() -> None:
    with pytest.raises(SpecError, match="alarm_name"):
        Routing.from_specs(health_checks=CHECKS, records=PAIR, region_of_target={"alb-a": A, "alb-b": B})


def test_a_target_without_region_is_refused() -> None:
    with pytest.raises(SpecError, match="region_of_target"):
        Routing.from_specs(
            alarms=[switch_alarm()], health_checks=CHECKS, records=PAIR, region_of_target={"alb-a": A}
        )


def test_time_must_not_go_backwards() -> None:
    w = world()
    w.where(at(60))
    with pytest.raises(TimeWentBackwards):
        w.where(at(59))
    assert isinstance(TimeWentBackwards("x"), ValueError)


def test_an_unknown_name_has_no_answer() -> None:
    assert world().where(at(0), "nope.app.example.com") is None


def test_route_53_refuses_high_resolution_alarms() -> None:
    """[R53-VALUES] CloudWatch alarm checks support standard-resolution metrics only."""
    with pytest.raises(SpecError, match="period"):
        Routing.from_specs(
            alarms=[replace(switch_alarm(), period=10)],
            health_checks=CHECKS,
            records=PAIR,
            region_of_target={"alb-a": A, "alb-b": B},
        )


# --------------------------------------------------------------------------------------------------
# the real program


@pytest.fixture(scope="module")
def synthesized() -> tuple[Any, Any]:
    from automation import synth

    primary = synth.synthesize("primary")
    return primary, synth.synthesize("dr", primary_outputs=primary.outputs)


def test_from_synthesis_answers_region_a_in_standby_and_region_b_after_a_1(
    synthesized: tuple[Any, Any],
) -> None:
    """The dr stack's records, checks and switch alarm as the program registers them."""
    primary, dr = synthesized
    # Each record's target is a load balancer's DNS name; its region is its provider's.
    lbs = primary.by_type("aws:lb/loadBalancer:LoadBalancer") + dr.by_type("aws:lb/loadBalancer:LoadBalancer")
    regions = {lb.outputs["dnsName"]: lb.region for lb in lbs}
    routing = Routing.from_synthesis(dr.resources, regions)
    assert WEB in routing.names, routing.names

    points: list[tuple[datetime, float]] = []
    prefix = "pilotlight-production"

    def datapoints(alarm: AlarmSpec, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
        assert (alarm.name, alarm.region) == (f"{prefix}-failover-switch", B), alarm
        assert (alarm.namespace, alarm.metric_name, dict(alarm.dimensions)) == (
            f"Pilotlight/Failover/{prefix}",  # the deployment's own namespace (issue 12, ns21)
            SWITCH_METRIC,
            {"App": prefix},
        )
        return [(t, v) for t, v in points if start <= t < end]

    def where(when: datetime) -> str | None:
        return routing.where(WEB, when, datapoints=datapoints, endpoint_up=lambda _: True)

    assert where(at(0)) == A
    assert where(at(600)) == A
    points.append((at(630), 1.0))  # the runbook throws the switch
    assert where(at(659)) == A
    assert where(at(660)) == B
    assert routing.alarm_state(f"{prefix}-failover-switch", B) == AlarmState.ALARM
    # The PRIMARY record's gate is the calculated check of region A's endpoint and the switch.
    assert not routing.healthy("global-web-primary-gate") and routing.healthy("global-web-check")


def test_from_synthesis_needs_a_region_for_every_target(synthesized: tuple[Any, Any]) -> None:
    with pytest.raises(SpecError, match="region_of_target"):
        Routing.from_synthesis(synthesized[1].resources, {})


LEGACY_SWITCH_NAMESPACE = "Pilotlight/Failover"
"""The namespace every deployment's switch shared before issue 12 (ns21)."""


@pytest.mark.parametrize("thrown", [True, False], ids=["failed-over", "standby"])
def test_upgrading_to_the_deployment_s_own_switch_namespace_keeps_the_switch_where_it_was(
    synthesized: tuple[Any, Any], thrown: bool
) -> None:
    """An existing deployment's switch alarm watched ``Pilotlight/Failover``; the routine ``pulumi up``
    of this version updates it in place to ``Pilotlight/Failover/<app>-<env>`` (``namespace`` is not
    ForceNew: components/global_failover.py, ``switch_metric``) and the canary, updated in the same run,
    writes there from its next tick. In between, the alarm has no data in its new namespace: it goes to
    INSUFFICIENT_DATA ([CW-MISSING]: all missing under ``missing``) and the health check keeps its last
    known status (the program's ``LastKnownStatus``): traffic stays where the switch had put it, region
    B after a failover, region A in standby, at every instant of the upgrade."""
    primary, dr = synthesized
    lbs = primary.by_type("aws:lb/loadBalancer:LoadBalancer") + dr.by_type("aws:lb/loadBalancer:LoadBalancer")
    routing = Routing.from_synthesis(dr.resources, {lb.outputs["dnsName"]: lb.region for lb in lbs})
    prefix = "pilotlight-production"
    alarm = routing.alarm(f"{prefix}-failover-switch", B)
    new_namespace = alarm.namespace
    assert new_namespace == f"{LEGACY_SWITCH_NAMESPACE}/{prefix}"
    routing.put_alarm(replace(alarm, namespace=LEGACY_SWITCH_NAMESPACE))  # as the earlier version left it

    value = 1.0 if thrown else 0.0
    streams: dict[str, list[tuple[datetime, float]]] = {LEGACY_SWITCH_NAMESPACE: [], new_namespace: []}
    upgraded_at = 600  # the alarm's update lands before the canary's first datapoint in the new namespace
    for minute in range(0, 1200, 60):
        stream = LEGACY_SWITCH_NAMESPACE if minute + 45 < upgraded_at else new_namespace
        streams[stream].append((at(minute + 45), value))  # the canary, every minute

    def datapoints(spec: AlarmSpec, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
        return [(t, v) for t, v in streams.get(spec.namespace, []) if start <= t < end]

    expected = B if thrown else A
    states = set()
    for second in range(120, 1200, 10):
        if second == upgraded_at:
            routing.put_alarm(replace(routing.alarm(alarm.name, B), namespace=new_namespace))
        answer_ = routing.where(WEB, at(second), datapoints=datapoints, endpoint_up=lambda _: True)
        assert answer_ == expected, f"{second} s: traffic in {answer_} during the upgrade"
        states.add(routing.alarm_state(alarm.name, B))
    # The window was real: the alarm had no data for an evaluation (the health check held it).
    assert AlarmState.INSUFFICIENT_DATA in states, states
