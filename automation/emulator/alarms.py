"""CloudWatch metric alarms, evaluated as CloudWatch documents it (pure; no moto, no boto3).

Every rule cites the page it follows by tag; ``ASSUMPTION`` marks what the pages leave open.

[CW-EVAL]    CloudWatch User Guide, "Evaluating an alarm" (period, evaluation periods, M out of N).
             https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
[CW-MISSING] CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing data" and
             "How alarm state is evaluated when data is missing" (the two example tables).
             https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html
[CW-API]     CloudWatch API Reference, PutMetricAlarm (valid periods, evaluation limits, the
             AWS/DynamoDB note).
             https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html

Time is kept as integer microseconds since the Unix epoch, so period alignment is exact; naive
datetimes are taken as UTC.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import TypeVar

from automation.emulator.exceptions import SpecError

# ASSUMPTION: [CW-MISSING] says CloudWatch retrieves "a higher number of data points than specified
# by Evaluation Periods", the exact number depending on the period and resolution, and its only
# worked example retrieves 5 for 3 evaluation periods. The model uses N + 2 for every alarm.
EXTRA_PERIODS = 2

MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)

E = TypeVar("E", bound=StrEnum)


def parse_enum(enum: type[E], name: str, value: object) -> E:
    """``value`` as a member of ``enum``, or a :class:`SpecError` naming ``name`` and the allowed words."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise SpecError(f"{name}: {value!r} is not one of {allowed}") from None


def micros(t: datetime) -> int:
    """Microseconds since the epoch (naive datetimes are UTC)."""
    if t.tzinfo is None:
        return (t - _NAIVE_EPOCH) // timedelta(microseconds=1)
    return (t - _EPOCH) // timedelta(microseconds=1)


def instant(us: int, tz: tzinfo | None) -> datetime:
    """The inverse of :func:`micros`, in the caller's kind of datetime (naive, or in ``tz``)."""
    if tz is None:
        return _NAIVE_EPOCH + timedelta(microseconds=us)
    return (_EPOCH + timedelta(microseconds=us)).astimezone(tz)


class AlarmState(StrEnum):
    """The three states of a CloudWatch alarm [CW-EVAL]."""

    OK = "OK"  # the metric is within the threshold
    ALARM = "ALARM"  # the metric is outside the threshold
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"  # just started, or too little data to decide


class Statistic(StrEnum):
    """How the datapoints of one period become the period's value (the alarm's ``Statistic``).

    All five of CloudWatch's simple statistics, so any alarm of the program can be modelled; the
    comments say where the product uses one. Percentiles (extended statistics) are refused.
    """

    MAXIMUM = "Maximum"  # the switch alarm: any 1 in the minute throws it
    MINIMUM = "Minimum"  # the canary's PrimaryHealthy alarm: any failed probe counts
    AVERAGE = "Average"
    SUM = "Sum"  # error counts
    SAMPLE_COUNT = "SampleCount"


class ComparisonOperator(StrEnum):
    """The static-threshold operators, all four, so any alarm of the program can be modelled.

    The anomaly-detection ones compare with a band the model does not have, and are refused.
    """

    GREATER_OR_EQUAL = "GreaterThanOrEqualToThreshold"  # the switch alarm
    GREATER = "GreaterThanThreshold"
    LESS = "LessThanThreshold"  # the canary's PrimaryHealthy alarm
    LESS_OR_EQUAL = "LessThanOrEqualToThreshold"


class TreatMissingData(StrEnum):
    """How an alarm treats periods with no datapoint [CW-MISSING]; the four settings CloudWatch has."""

    MISSING = "missing"  # the default: all missing -> INSUFFICIENT_DATA (the switch in standby)
    IGNORE = "ignore"  # keep the current state
    BREACHING = "breaching"  # e.g. the replica-lag alarm while its database replicates
    NOT_BREACHING = "notBreaching"  # error-count metrics that only report errors


@dataclass(frozen=True)
class AlarmSpec:
    """A static-threshold metric alarm, as ``PutMetricAlarm`` takes it [CW-API].

    Enum fields accept the plain AWS words (``"Maximum"``, ``"missing"``). ``datapoints_to_alarm``
    None means ``evaluation_periods`` (an N out of N alarm) [CW-EVAL].
    """

    name: str
    region: str
    namespace: str
    metric_name: str
    statistic: Statistic
    period: int
    evaluation_periods: int
    comparison_operator: ComparisonOperator
    threshold: float
    treat_missing_data: TreatMissingData = TreatMissingData.MISSING  # the default [CW-API]
    datapoints_to_alarm: int | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "statistic", parse_enum(Statistic, "statistic", self.statistic))
        put(
            self,
            "comparison_operator",
            parse_enum(ComparisonOperator, "comparison_operator", self.comparison_operator),
        )
        put(
            self,
            "treat_missing_data",
            parse_enum(TreatMissingData, "treat_missing_data", self.treat_missing_data),
        )
        for name in ("name", "region", "namespace", "metric_name"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise SpecError(f"{name}: must be a non-empty string, got {getattr(self, name)!r}")
        # [CW-API] Period: 10, 20, 30, or any multiple of 60.
        if not isinstance(self.period, int) or not (
            self.period in (10, 20, 30) or (self.period > 0 and self.period % 60 == 0)
        ):
            raise SpecError(f"period: {self.period!r} is not one of 10, 20, 30 or a positive multiple of 60")
        if not isinstance(self.evaluation_periods, int) or self.evaluation_periods < 1:
            raise SpecError(f"evaluation_periods: {self.evaluation_periods!r} is not an integer >= 1")
        # [CW-API] period x evaluation periods: at most one day under hourly periods, else seven days.
        limit = 86_400 if self.period < 3_600 else 604_800
        if self.period * self.evaluation_periods > limit:
            raise SpecError(
                f"evaluation_periods: {self.evaluation_periods} x period {self.period} s exceeds {limit} s"
            )
        m = self.datapoints_to_alarm
        if m is not None and (not isinstance(m, int) or not 1 <= m <= self.evaluation_periods):
            raise SpecError(
                f"datapoints_to_alarm: {m!r} is not None or an integer in 1..{self.evaluation_periods}"
            )
        if not isinstance(self.threshold, int | float) or not math.isfinite(self.threshold):
            raise SpecError(f"threshold: {self.threshold!r} is not a finite number")

    @property
    def m(self) -> int:
        """Datapoints to alarm ("M")."""
        return self.datapoints_to_alarm or self.evaluation_periods

    def breaches(self, value: float) -> bool:
        """Whether one period's value is on the ALARM side of the threshold."""
        return _COMPARE[self.comparison_operator](value, self.threshold)


_COMPARE: dict[ComparisonOperator, Callable[[float, float], bool]] = {
    ComparisonOperator.GREATER_OR_EQUAL: operator.ge,
    ComparisonOperator.GREATER: operator.gt,
    ComparisonOperator.LESS: operator.lt,
    ComparisonOperator.LESS_OR_EQUAL: operator.le,
}


def _aggregate(statistic: Statistic, values: list[float]) -> float:
    if statistic is Statistic.MAXIMUM:
        return max(values)
    if statistic is Statistic.MINIMUM:
        return min(values)
    if statistic is Statistic.SUM:
        return math.fsum(values)
    if statistic is Statistic.SAMPLE_COUNT:
        return float(len(values))
    return math.fsum(values) / len(values)


def evaluate_alarm(
    spec: AlarmSpec,
    datapoints: Sequence[tuple[datetime, float]],
    now: datetime,
    previous_state: str,
    *,
    evaluation_range: int | None = None,
) -> AlarmState:
    """The state CloudWatch sets when it evaluates ``spec`` at ``now`` (an :class:`AlarmState`).

    Only complete periods count, aligned to multiples of the period since the epoch: the most
    recent one ends at ``now`` rounded down to the period. ASSUMPTION: no ingestion delay; a
    datapoint counts as soon as its period is complete.

    Args:
        spec: the alarm.
        datapoints: ``(timestamp, value)`` of the alarm's metric (any order; others are ignored).
        now: the evaluation instant.
        previous_state: the alarm's state before this evaluation (``ignore`` may keep it).
        evaluation_range: periods retrieved; default ``evaluation_periods + EXTRA_PERIODS``.
    """
    state = parse_enum(AlarmState, "previous_state", previous_state)
    n = spec.evaluation_periods
    r = n + EXTRA_PERIODS if evaluation_range is None else evaluation_range
    if r < n:
        raise SpecError(f"evaluation_range: {r} is fewer than evaluation_periods {n}")
    period = spec.period * MICROS
    end = micros(now) // period * period
    start = end - r * period
    buckets: list[list[float]] = [[] for _ in range(r)]
    for ts, value in datapoints:
        t = micros(ts)
        if start <= t < end:
            buckets[(t - start) // period].append(float(value))
    # Oldest first, None where the period has no datapoint.
    values = [_aggregate(spec.statistic, b) if b else None for b in buckets]
    return _decide(spec, values, state)


def _decide(spec: AlarmSpec, values: list[float | None], previous: AlarmState) -> AlarmState:
    n, m = spec.evaluation_periods, spec.m
    treat = spec.treat_missing_data
    # [CW-API] "Alarms that evaluate metrics in the AWS/DynamoDB namespace always ignore missing
    # data even if you choose a different option for TreatMissingData."
    if spec.namespace == "AWS/DynamoDB":
        treat = TreatMissingData.IGNORE
    real = [v for v in values if v is not None]

    def verdict(breaching: int) -> AlarmState:
        # [CW-MISSING] "If fewer than the value of Datapoints to Alarm are breaching, the alarm
        # state is set to OK. Otherwise, the state is set to ALARM."
        return AlarmState.ALARM if breaching >= m else AlarmState.OK

    if len(real) >= n:
        # [CW-MISSING] None missing: the most recent datapoints. Some missing but at least N real
        # ones: "the most recent existing data points"; the missing-data setting is not needed.
        return verdict(sum(spec.breaches(v) for v in real[-n:]))
    # [CW-MISSING] Fewer than N real datapoints: every real one in the range counts, "no matter
    # when [it was] reported", and the missing ones are filled in "as few times as possible".
    breaching = sum(spec.breaches(v) for v in real)
    fill = n - len(real)
    if treat is TreatMissingData.BREACHING:
        return verdict(breaching + fill)
    if treat is TreatMissingData.NOT_BREACHING:
        return verdict(breaching)
    # `missing` ("does not consider missing data points") and `ignore` fill nothing: the real
    # datapoints decide alone, fitted to every row of the two [CW-MISSING] tables. At least M
    # breaching: ALARM. Fewer, and a non-breaching one among them: OK (rows "0 - - - -",
    # "0 - X - -", "- - - - 0"). Only breaching ones, too few, or none: `ignore` keeps the current
    # state and `missing` goes to INSUFFICIENT_DATA (rows "- - - - -", "- - - - X")...
    if breaching >= m:
        return AlarmState.ALARM
    if breaching < len(real):
        return AlarmState.OK
    if treat is TreatMissingData.IGNORE:
        return previous
    # ...except for the row "X - - - -": ALARM under `missing`, "because the oldest evaluated data
    # point is breaching and there aren't any non-breaching data points". ASSUMPTION: that
    # explanation is the rule (the page states no general one).
    if values[0] is not None:
        return AlarmState.ALARM
    return AlarmState.INSUFFICIENT_DATA
