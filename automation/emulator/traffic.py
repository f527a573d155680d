"""Where Route 53 sends traffic at a virtual instant, judged from the alarms' data streams.

A pure model (no moto, no boto3, deterministic, fast) of the AWS behaviours that decide the
product's routing: CloudWatch alarm evaluation (:mod:`automation.emulator.alarms`), Route 53 health
checks and failover answers (:mod:`automation.emulator.health`). :class:`Routing` runs them
together, over virtual time, for the records the Pulumi program registers, so a model-based checker
can ask "which region does ``web.<domain>`` resolve to now?" at any instant. This module re-exports
the whole API.

Sources are cited by the tags listed in those two modules ([CW-EVAL], [CW-MISSING], [R53-HEALTH],
...); ``ASSUMPTION`` marks what the pages leave open.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from automation.emulator.alarms import (
    EXTRA_PERIODS,
    MICROS,
    AlarmSpec,
    AlarmState,
    ComparisonOperator,
    Statistic,
    TreatMissingData,
    evaluate_alarm,
    instant,
    micros,
)
from automation.emulator.exceptions import SpecError, TimeWentBackwards
from automation.emulator.health import (
    FailoverRecord,
    FailoverRole,
    HealthChecks,
    HealthCheckSpec,
    HealthCheckType,
    InsufficientDataHealthStatus,
    answer,
)

__all__ = [
    "EXTRA_PERIODS",
    "AlarmSpec",
    "AlarmState",
    "ComparisonOperator",
    "FailoverRecord",
    "FailoverRole",
    "HealthCheckSpec",
    "HealthCheckType",
    "HealthChecks",
    "InsufficientDataHealthStatus",
    "RecordedResource",
    "Routing",
    "SpecError",
    "Statistic",
    "TimeWentBackwards",
    "TreatMissingData",
    "answer",
    "evaluate_alarm",
]

ALARM_TYPE = "aws:cloudwatch/metricAlarm:MetricAlarm"
HEALTH_CHECK_TYPE = "aws:route53/healthCheck:HealthCheck"
RECORD_TYPE = "aws:route53/record:Record"


class RecordedResource(Protocol):
    """What :meth:`Routing.from_synthesis` reads of a resource (``automation.synth.Resource``)."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    region: str | None


DatapointsFn = Callable[[AlarmSpec, datetime, datetime], Sequence[tuple[datetime, float]]]


class Routing:
    """Route 53's answers for the failover records of a program, at monotonic virtual instants.

    Alarms are evaluated at each of their period boundaries ([CW-EVAL]: a period is the length of
    time "to evaluate the metric"; a datapoint put at 12:00:30 is seen by the 12:01:00 evaluation),
    and health checks at each request interval, in time order, since the previous call. Only the
    alarms that a CLOUDWATCH_METRIC check watches are evaluated: no other alarm changes an answer.

    ASSUMPTION: the alarms were already running when the model starts. The first call evaluates
    them at the last boundary at or before it, over the data already in the stream, as CloudWatch
    does for a new alarm over a metric that was already reported [CW-MISSING]. Health checks start
    as new checks at the first call [R53-HEALTH].
    """

    def __init__(
        self,
        alarms: Iterable[AlarmSpec],
        health_checks: Iterable[HealthCheckSpec],
        records: Iterable[FailoverRecord],
        region_of_target: Mapping[str, str],
    ) -> None:
        self._checks = HealthChecks(health_checks)
        alarm_by_key = {(a.name, a.region): a for a in alarms}
        self._watched: dict[tuple[str, str], AlarmSpec] = {}
        for spec in self._checks.specs.values():
            if spec.type is not HealthCheckType.CLOUDWATCH_METRIC:
                continue
            assert spec.alarm_name is not None and spec.alarm_region is not None
            key = (spec.alarm_name, spec.alarm_region)
            if key not in alarm_by_key:
                raise SpecError(f"alarm_name: {spec.id} watches unknown alarm {key[0]!r} in {key[1]}")
            alarm = alarm_by_key[key]
            # [R53-VALUES] Route 53 supports standard-resolution metrics only.
            if alarm.period < 60:
                raise SpecError(f"period: {spec.id} watches {alarm.name}, a high-resolution alarm")
            self._watched[key] = alarm
        self._records: dict[str, list[FailoverRecord]] = {}
        for record in records:
            self._records.setdefault(record.name, []).append(record)
        self._region_of_target = dict(region_of_target)
        for pair in self._records.values():
            answer(pair, lambda _: True)  # the pair's shape, checked now rather than on first ask
            for record in pair:
                if record.health_check_id is not None and record.health_check_id not in self._checks.specs:
                    raise SpecError(f"health_check_id: {record.name}/{record.role} refers to unknown check")
                if record.target not in self._region_of_target:
                    raise SpecError(f"region_of_target: no region for {record.name}/{record.role} target")
        self._states = dict.fromkeys(self._watched, AlarmState.INSUFFICIENT_DATA)
        self._evaluated: dict[tuple[str, str], int] = {}  # last boundary evaluated, µs
        self._start: int | None = None  # the first call, µs
        self._now = 0
        self._tz: tzinfo | None = None

    @classmethod
    def from_specs(
        cls,
        *,
        alarms: Iterable[AlarmSpec] = (),
        health_checks: Iterable[HealthCheckSpec] = (),
        records: Iterable[FailoverRecord],
        region_of_target: Mapping[str, str],
    ) -> Routing:
        """A routing from hand-written specs (tests, what-if models)."""
        return cls(alarms, health_checks, records, region_of_target)

    @classmethod
    def from_synthesis(
        cls, resources: Iterable[RecordedResource], region_of_target: Mapping[str, str]
    ) -> Routing:
        """The routing of a synthesized program (``automation.synth.synthesize(...).resources``).

        Health checks are named by their resource names; references between them (calculated
        children, records' health checks) are ids only known after deploy, resolved through the
        ids the engine (under synthesis, the mocks) returned. ``region_of_target`` maps each
        record's value (e.g. a load balancer's DNS name) to its region.
        """
        resources = list(resources)
        ids = {str(r.outputs.get("id", r.name)): r.name for r in resources if r.type == HEALTH_CHECK_TYPE}
        alarms: list[AlarmSpec] = []
        checks: list[HealthCheckSpec] = []
        records: list[FailoverRecord] = []
        for r in resources:
            if r.type == HEALTH_CHECK_TYPE:
                checks.append(_health_check_from(r, ids))
            elif r.type == RECORD_TYPE and r.inputs.get("failoverRoutingPolicies"):
                records.append(_record_from(r, ids))
        watched = {
            (c.alarm_name, c.alarm_region) for c in checks if c.type is HealthCheckType.CLOUDWATCH_METRIC
        }
        for r in resources:
            if r.type == ALARM_TYPE and (_alarm_name(r), r.region) in watched:
                alarms.append(_alarm_from(r))
        return cls(alarms, checks, records, region_of_target)

    def where(
        self,
        name: str,
        now: datetime,
        *,
        datapoints: DatapointsFn,
        endpoint_up: Callable[[HealthCheckSpec], bool],
    ) -> str | None:
        """The region Route 53 answers for ``name`` at ``now`` (None: no failover records by that name).

        ``datapoints(alarm, start, end)`` returns the alarm metric's datapoints in ``[start, end)``;
        ``endpoint_up(check)`` answers one endpoint health check. Calls must not go back in time.
        """
        self.advance(now, datapoints=datapoints, endpoint_up=endpoint_up)
        record = self.record(name)
        return None if record is None else self._region_of_target[record.target]

    def advance(
        self, now: datetime, *, datapoints: DatapointsFn, endpoint_up: Callable[[HealthCheckSpec], bool]
    ) -> None:
        """Move alarms and health checks to ``now`` (what :meth:`where` does before answering)."""
        t = micros(now)
        if self._start is None:
            self._start, self._tz = t, now.tzinfo
            for key, alarm in self._watched.items():
                period = alarm.period * MICROS
                self._evaluated[key] = t // period * period - period  # the first is due at or before t
        elif t < self._now:
            raise TimeWentBackwards(f"routing is at {instant(self._now, UTC)}; asked for {now}")
        self._now = t

        def state(name: str, region: str) -> str:
            return self._states[(name, region)]

        # Alarm evaluations and health checks in time order: a CLOUDWATCH_METRIC check with
        # LastKnownStatus must see every state its alarm went through, not only the last one.
        # ASSUMPTION: Route 53 sees an alarm's new state, and DNS answers see a check's new status,
        # at once; the pages give no delay for either.
        while True:
            due = {key: self._evaluated[key] + a.period * MICROS for key, a in self._watched.items()}
            boundary = min((b for b in due.values() if b <= t), default=None)
            if boundary is None:
                break
            at = instant(boundary, self._tz)
            for key, b in due.items():
                if b == boundary:
                    alarm = self._watched[key]
                    span = timedelta(seconds=(EXTRA_PERIODS + alarm.evaluation_periods) * alarm.period)
                    points = datapoints(alarm, at - span, at)
                    self._states[key] = evaluate_alarm(alarm, points, at, self._states[key])
                    self._evaluated[key] = boundary
            if boundary >= self._start:  # health checks start with the model, not before
                self._checks.advance(at, endpoint_up, state)
        self._checks.advance(now, endpoint_up, state)

    def record(self, name: str) -> FailoverRecord | None:
        """The record Route 53 answers for ``name`` as of the last call (its ``ttl`` tells how long
        resolvers may keep answering with it: the model answers for Route 53, not for caches)."""
        pair = self._records.get(name)
        return None if pair is None else answer(pair, self._checks.status)

    def alarm_state(self, name: str, region: str) -> AlarmState:
        """The modelled state of a watched alarm."""
        return self._states[(name, region)]

    def alarm(self, name: str, region: str) -> AlarmSpec:
        """The configuration of a watched alarm, as last put."""
        return self._watched[(name, region)]

    def put_alarm(self, spec: AlarmSpec) -> None:
        """PutMetricAlarm on a watched alarm (a ``pulumi up`` updating it in place): "When you update an
        existing alarm, its state is left unchanged, but the update completely overwrites the previous
        configuration of the alarm"
        (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
        Its next evaluation is at its next period boundary, over the new configuration's metric."""
        key = (spec.name, spec.region)
        if key not in self._watched:
            raise SpecError(f"alarm_name: no health check watches {spec.name!r} in {spec.region}")
        self._watched[key] = spec

    def healthy(self, check_id: str) -> bool:
        """The modelled status of a health check."""
        return self._checks.status(check_id)

    @property
    def names(self) -> list[str]:
        """The record names with a failover pair."""
        return sorted(self._records)


def _alarm_name(r: RecordedResource) -> str:
    return str(r.inputs.get("name") or r.outputs.get("name") or r.name)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _alarm_from(r: RecordedResource) -> AlarmSpec:
    i = r.inputs
    if not i.get("metricName"):
        raise SpecError(
            f"metric_name: {r.type} {r.name} is a metric-math alarm; the model covers single metrics"
        )
    if i.get("extendedStatistic"):
        raise SpecError(f"statistic: {r.type} {r.name} uses extended statistic {i['extendedStatistic']}")
    if not r.region:
        raise SpecError(f"region: {r.type} {r.name} has no region (no explicit provider)")
    return AlarmSpec(
        name=_alarm_name(r),
        region=r.region,
        namespace=i.get("namespace", ""),
        metric_name=i["metricName"],
        dimensions={str(k): str(v) for k, v in (i.get("dimensions") or {}).items()},
        statistic=i.get("statistic", ""),
        period=_int(i.get("period")) or 0,
        evaluation_periods=_int(i.get("evaluationPeriods")) or 0,
        datapoints_to_alarm=_int(i.get("datapointsToAlarm")),
        comparison_operator=i.get("comparisonOperator", ""),
        threshold=float(i.get("threshold", math.nan)),
        treat_missing_data=i.get("treatMissingData") or TreatMissingData.MISSING,
    )


def _health_check_from(r: RecordedResource, ids: Mapping[str, str]) -> HealthCheckSpec:
    i = r.inputs
    return HealthCheckSpec(
        id=r.name,
        type=i.get("type", ""),
        request_interval=_int(i.get("requestInterval")) or 30,
        failure_threshold=_int(i.get("failureThreshold")) or 3,
        alarm_name=i.get("cloudwatchAlarmName"),
        alarm_region=i.get("cloudwatchAlarmRegion"),
        insufficient_data_health_status=i.get("insufficientDataHealthStatus")
        or InsufficientDataHealthStatus.LAST_KNOWN_STATUS,
        child_ids=tuple(ids.get(str(c), str(c)) for c in i.get("childHealthchecks") or ()),
        child_health_threshold=_int(i.get("childHealthThreshold")),
        inverted=bool(i.get("invertHealthcheck", False)),
    )


def _record_from(r: RecordedResource, ids: Mapping[str, str]) -> FailoverRecord:
    i = r.inputs
    if i.get("records"):
        target = str(i["records"][0])
    elif i.get("aliases"):
        target = str(i["aliases"][0]["name"])
    else:
        raise SpecError(f"target: {r.type} {r.name} has neither records nor an alias")
    check = i.get("healthCheckId")
    return FailoverRecord(
        zone=str(i.get("zoneId", "")),
        name=str(i["name"]),
        role=i["failoverRoutingPolicies"][0]["type"],
        target=target,
        health_check_id=None if not check else ids.get(str(check), str(check)),
        ttl=_int(i.get("ttl")),
    )
