"""Route 53 health checks and failover answers, as Route 53 documents them (pure).

Every rule cites the page it follows by tag; ``ASSUMPTION`` marks what the pages leave open.

[R53-HEALTH] Route 53 Developer Guide, "How Amazon Route 53 determines whether a health check is
             healthy" (18 % of checkers, new checks, calculated checks, alarm data streams).
             https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html
[R53-VALUES] Route 53 Developer Guide, "Values that you specify when you create or update health
             checks" (failure threshold, calculated thresholds, invert, LastKnownStatus).
             https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-creating-values.html
[R53-API]    Route 53 API Reference, HealthCheckConfig (ranges and defaults).
             https://docs.aws.amazon.com/Route53/latest/APIReference/API_HealthCheckConfig.html
[R53-CHOOSE] Route 53 Developer Guide, "How Amazon Route 53 chooses records when health checking is
             configured" (failover records, both unhealthy).
             https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-how-route-53-chooses-records.html
[R53-LAST]   Route 53 Developer Guide, "How Amazon Route 53 averts failover problems" (last resort).
             https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-problems.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from automation.emulator.alarms import MICROS, AlarmState, instant, micros, parse_enum
from automation.emulator.exceptions import SpecError, TimeWentBackwards


class HealthCheckType(StrEnum):
    """The health check types the product creates (TCP and string matching are not modelled)."""

    HTTP = "HTTP"  # region A's web endpoint without certificates
    HTTPS = "HTTPS"  # region A's API endpoint, and the web endpoint with certificates
    CLOUDWATCH_METRIC = "CLOUDWATCH_METRIC"  # the failover switch
    CALCULATED = "CALCULATED"  # the PRIMARY record's gate: endpoint AND switch


class InsufficientDataHealthStatus(StrEnum):
    """A CLOUDWATCH_METRIC check's status while its alarm has insufficient data [R53-VALUES]."""

    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    LAST_KNOWN_STATUS = "LastKnownStatus"  # the switch: a single runbook datapoint holds


class FailoverRole(StrEnum):
    """The two records of a failover pair."""

    PRIMARY = "PRIMARY"  # region A, gated by the calculated check
    SECONDARY = "SECONDARY"  # region B, no health check: always answerable


@dataclass(frozen=True)
class HealthCheckSpec:
    """A Route 53 health check (``HealthCheckConfig``), the fields the model reads [R53-API].

    Defaults are the API's: request interval 30 s, failure threshold 3. ``insufficient_data_health_status``
    defaults to LastKnownStatus ("By default, Route 53 uses the status of the health check from the
    last time CloudWatch had sufficient data", HealthCheckConfig).
    """

    id: str
    type: HealthCheckType
    request_interval: int = 30
    failure_threshold: int = 3
    alarm_name: str | None = None
    alarm_region: str | None = None
    insufficient_data_health_status: InsufficientDataHealthStatus = (
        InsufficientDataHealthStatus.LAST_KNOWN_STATUS
    )
    child_ids: tuple[str, ...] = ()
    child_health_threshold: int | None = None
    inverted: bool = False

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "type", parse_enum(HealthCheckType, "type", self.type))
        put(
            self,
            "insufficient_data_health_status",
            parse_enum(
                InsufficientDataHealthStatus,
                "insufficient_data_health_status",
                self.insufficient_data_health_status,
            ),
        )
        put(self, "child_ids", tuple(self.child_ids))
        if not isinstance(self.id, str) or not self.id:
            raise SpecError(f"id: must be a non-empty string, got {self.id!r}")
        if self.request_interval not in (10, 30):
            raise SpecError(f"request_interval: {self.request_interval!r} is not one of 10, 30 (seconds)")
        if not isinstance(self.failure_threshold, int) or not 1 <= self.failure_threshold <= 10:
            raise SpecError(f"failure_threshold: {self.failure_threshold!r} is not an integer in 1..10")
        if self.type is HealthCheckType.CLOUDWATCH_METRIC and not (self.alarm_name and self.alarm_region):
            raise SpecError(f"alarm_name, alarm_region: required for a CLOUDWATCH_METRIC check ({self.id})")
        if self.type is HealthCheckType.CALCULATED:
            # [R53-API] ChildHealthChecks: at most 256; HealthThreshold: 0..256.
            if not 1 <= len(self.child_ids) <= 256:
                raise SpecError(f"child_ids: a CALCULATED check ({self.id}) needs 1..256 children")
            t = self.child_health_threshold
            if not isinstance(t, int) or not 0 <= t <= 256:
                raise SpecError(f"child_health_threshold: {t!r} is not an integer in 0..256 ({self.id})")


@dataclass
class _Endpoint:
    healthy: bool = True  # [R53-HEALTH] a new check is healthy until there is enough data
    streak: int = 0  # consecutive results that disagree with `healthy`
    next_check: int | None = None  # µs


class HealthChecks:
    """The status of a set of health checks as virtual time goes by.

    Route 53 probes an endpoint from many checkers and calls it healthy when more than 18 % of them
    do [R53-HEALTH]. ASSUMPTION: the model is one checker that sees the endpoint as ``probe`` says,
    checking every ``request_interval`` from the first :meth:`advance`; since every real checker
    sees the same endpoint, the aggregate flips with it, up to one interval earlier or later (the
    real checkers are not synchronised). A CLOUDWATCH_METRIC check reads the alarm state that the
    caller models from the data stream, never a state set by SetAlarmState [R53-HEALTH].
    """

    def __init__(self, specs: Iterable[HealthCheckSpec]) -> None:
        self._specs: dict[str, HealthCheckSpec] = {}
        for spec in specs:
            if spec.id in self._specs:
                raise SpecError(f"id: {spec.id!r} appears twice")
            self._specs[spec.id] = spec
        for spec in self._specs.values():
            for child in spec.child_ids:
                if child not in self._specs:
                    raise SpecError(f"child_ids: {spec.id} refers to unknown health check {child!r}")
                # [R53-VALUES] "You can't configure a calculated health check to monitor the health
                # of other calculated health checks."
                if self._specs[child].type is HealthCheckType.CALCULATED:
                    raise SpecError(f"child_ids: {spec.id} monitors calculated check {child}")
        endpoint_types = (HealthCheckType.HTTP, HealthCheckType.HTTPS)
        self._endpoints = {i: _Endpoint() for i, s in self._specs.items() if s.type in endpoint_types}
        self._alarms = [s for s in self._specs.values() if s.type is HealthCheckType.CLOUDWATCH_METRIC]
        self._calculated = [s for s in self._specs.values() if s.type is HealthCheckType.CALCULATED]
        self._raw = dict.fromkeys(self._specs, True)  # before inversion; new checks are healthy
        self._last_known: dict[str, bool] = {}
        self._now: int | None = None

    @property
    def specs(self) -> Mapping[str, HealthCheckSpec]:
        """The checks, by id."""
        return self._specs

    def advance(
        self,
        now: datetime,
        probe: Callable[[HealthCheckSpec], bool],
        alarm_state: Callable[[str, str], str],
    ) -> None:
        """Make every check Route 53 would have made since the last call, up to and including ``now``.

        ``probe(spec)`` answers one endpoint check (True: 2xx/3xx in time); it is called once per
        check, in time order. ``alarm_state(name, region)`` is the alarm's state now.
        """
        t = micros(now)
        if self._now is not None and t < self._now:
            raise TimeWentBackwards(
                f"health checks are at {instant(self._now, UTC)}; asked for {instant(t, UTC)}"
            )
        self._now = t
        for check_id, state in self._endpoints.items():
            spec = self._specs[check_id]
            if state.next_check is None:
                state.next_check = t
            while state.next_check <= t:
                ok = bool(probe(spec))
                # [R53-VALUES] Failure threshold: "the number of consecutive health checks that an
                # endpoint must pass or fail for Route 53 to change the current status".
                if ok == state.healthy:
                    state.streak = 0
                else:
                    state.streak += 1
                    if state.streak >= spec.failure_threshold:
                        state.healthy, state.streak = ok, 0
                state.next_check += spec.request_interval * MICROS
            self._raw[check_id] = state.healthy
        for spec in self._alarms:
            assert spec.alarm_name is not None and spec.alarm_region is not None
            self._raw[spec.id] = self._from_alarm(spec, alarm_state(spec.alarm_name, spec.alarm_region))
        for spec in self._calculated:
            # [R53-HEALTH] Route 53 counts the healthy children and compares the count with the
            # threshold; [R53-VALUES] a threshold above the child count is always unhealthy, 0 is
            # always healthy (both follow from the comparison).
            assert spec.child_health_threshold is not None
            healthy = sum(self.status(c) for c in spec.child_ids)
            self._raw[spec.id] = healthy >= spec.child_health_threshold

    def _from_alarm(self, spec: HealthCheckSpec, state: str) -> bool:
        # [R53-HEALTH] OK -> healthy, ALARM -> unhealthy, not enough data -> the check's
        # InsufficientDataHealthStatus; [R53-VALUES] LastKnownStatus is the status "from the last
        # time that CloudWatch had sufficient data", and healthy for a check that has none.
        alarm = parse_enum(AlarmState, f"alarm_state({spec.alarm_name})", state)
        if alarm is not AlarmState.INSUFFICIENT_DATA:
            self._last_known[spec.id] = alarm is AlarmState.OK
            return self._last_known[spec.id]
        setting = spec.insufficient_data_health_status
        if setting is InsufficientDataHealthStatus.HEALTHY:
            return True
        if setting is InsufficientDataHealthStatus.UNHEALTHY:
            return False
        return self._last_known.get(spec.id, True)

    def status(self, check_id: str) -> bool:
        """True when Route 53 considers the check healthy.

        [R53-VALUES] Invert health check status: "unhealthy when the status is healthy and vice
        versa"; [R53-HEALTH] so an inverted new check starts unhealthy.
        """
        spec = self._specs[check_id]
        return self._raw[check_id] != spec.inverted


# --------------------------------------------------------------------------------------------------
# Route 53 failover answers


@dataclass(frozen=True)
class FailoverRecord:
    """One record of a failover pair: where it points and which health check gates it."""

    zone: str
    name: str
    role: FailoverRole
    target: str
    health_check_id: str | None = None
    ttl: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", parse_enum(FailoverRole, "role", self.role))


def answer(records: Sequence[FailoverRecord], is_healthy: Callable[[str], bool]) -> FailoverRecord:
    """The record Route 53 answers with for one failover pair.

    [R53-CHOOSE] Failover records: the primary when it is healthy; otherwise the secondary when it
    is healthy; "If Route 53 considers both the primary and secondary records unhealthy, Route 53
    returns the primary record". "Records without a health check are always healthy", and a
    secondary without one is answered "even if the secondary record is unhealthy". [R53-LAST]: the
    last resort when all records are unhealthy is to consider them all healthy.
    """
    by_role = {r.role: r for r in records}
    if len(records) != 2 or set(by_role) != set(FailoverRole) or len({r.name for r in records}) != 1:
        raise SpecError(
            "records: a failover pair is one PRIMARY and one SECONDARY record of one name, got "
            + ", ".join(f"{r.name}/{r.role}" for r in records)
        )
    primary, secondary = by_role[FailoverRole.PRIMARY], by_role[FailoverRole.SECONDARY]

    def healthy(record: FailoverRecord) -> bool:
        return record.health_check_id is None or is_healthy(record.health_check_id)

    if healthy(primary):
        return primary
    if healthy(secondary):
        return secondary
    return primary
