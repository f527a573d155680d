"""Whether region B took writes after a moment, from AWS's own records (break30 B30-1).

The zero-lag proof (drain_proof.py) says region A's failback replica held every write region B acknowledged
*before* the proof's drain; a reading of region B "drained now" (components/region_b_serving.py) says
nothing of what happened in between: region B given its web tier or its function back by hand after the
proof, taking writes, then drained again by hand, reads drained, and what it acknowledged in between is on
region A's replica only if replication caught up, which nothing measured. Two records AWS keeps for us
say whether that happened, and both are read here, with boto3 clients of region B passed in:

* the web tier's **scaling activities** (``DescribeScalingActivities``): every instance Auto Scaling
  launches, attaches or moves out of Standby is an activity, kept six weeks ("If you omit this property,
  all activities for the past six weeks are described": https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html),
  newest first, and recorded when it starts (no publication delay). An instance put in service since
  the moment could have taken requests.
* the functions' ``AWS/Lambda`` ``Invocations`` (``Sum``, per minute): "Invocations aren't recorded if
  the invocation request is throttled" (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html),
  so a drained function (reserved concurrency 0) records none, and Lambda sends the metric only when it
  is not zero: no datapoint is no invocation. A non-zero minute since the moment is a write region B
  may have acknowledged (an event source mapping enabled by hand invokes the function too).

What it cannot see: CloudWatch publishes a minute's datapoint after the minute (typically within a few
minutes, not bounded by a documented figure), so invocations in the last minutes before the read may not
be published yet; the web tier's launches have no such delay. Region B's function unthrottled by hand and
throttled again within those minutes is not seen (the live read sees it while it can run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

NOT_SERVING = (
    "Terminating EC2 instance",
    "Detaching EC2 instance",
    "Moving EC2 instance to Standby",
)
"""How the scaling activities that take an instance *out* of service start their ``Description``, as the
API reference's examples word them: "Terminating EC2 instance: i-..." (DescribeScalingActivities,
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html), "Detaching EC2
instance: i-..." (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DetachInstances.html),
"Moving EC2 instance to Standby: i-..." (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_EnterStandby.html).
Every other activity is counted as one that may have put an instance in service (break34 B34-3): a launch
("Launching a new EC2 instance: i-..."), an attach ("Attaching an existing EC2 instance: i-...", AttachInstances
registers it with the group's target groups: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_AttachInstances.html),
an instance moved out of Standby ("After you put the instances back in service":
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_ExitStandby.html), a warm-pool instance moved
in service, and any wording not listed here (the safe side: a refusal whose remedy is a fresh proof)."""

INTO_WARM_POOL = "into warm pool"
"""A launch into the warm pool (``Warmed:Stopped`` here: components/compute.py) cannot take requests.
ASSUMPTION: the wording of warm-pool activities is not documented as an API contract; one that does not
say "into warm pool" is counted (the safe side)."""


def serving_activity(description: str) -> bool:
    """Whether a scaling activity's ``Description`` may have put an instance of the group in service:
    anything but a known out-of-service kind (:data:`NOT_SERVING`) or a launch into the warm pool."""
    if description.startswith(NOT_SERVING):
        return False
    return not (description.startswith("Launching") and INTO_WARM_POOL in description)


FIFTEEN_DAYS = timedelta(days=15)
"""One-minute datapoints are kept 15 days, five-minute ones 63 days, hourly ones 455 days
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html, Period)."""


@dataclass(frozen=True)
class Served:
    """One record that region B could take writes after the moment: what, and when."""

    what: str
    at: datetime

    def describe(self) -> str:
        return f"{self.what} at {self.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def launches_since(autoscaling: Any, group: str, since: datetime) -> list[Served]:
    """The scaling activities of ``group`` (region B's web tier) that started at or after ``since`` and may
    have put an instance in service (:func:`serving_activity`): launches, attaches, exits from Standby."""
    found: list[Served] = []
    kwargs: dict[str, Any] = {"AutoScalingGroupName": group, "MaxRecords": 100}
    while True:
        page = autoscaling.describe_scaling_activities(**kwargs)
        older = False
        for activity in page.get("Activities") or []:
            started = _aware(activity.get("StartTime"))
            if started is None or started < since:
                # Newest first ("Activities are sorted by the start time; activities still in progress
                # appear first"): nothing later in the list started after the moment.
                older = older or activity.get("Progress", 100) >= 100
                continue
            description = str(activity.get("Description") or "")
            if serving_activity(description):
                found.append(Served(f"web tier {group}: {description}", started))
        token = page.get("NextToken")
        if older or not token:
            return found
        kwargs["NextToken"] = token


def invocations_since(cloudwatch: Any, function: str, since: datetime, now: datetime) -> list[Served]:
    """The periods since ``since`` in which ``function`` was invoked (``Invocations`` ``Sum`` > 0).

    One-minute periods from the first whole minute after ``since`` (an invocation in ``since``'s own
    minute is before the proof's lag measurement, which starts ``lossless.DRAIN_SECONDS`` later); for a
    moment older than 15 days, the coarser periods CloudWatch keeps, from the period that holds it (which
    may count invocations just before it: the safe side)."""
    age = now - since
    period = 60 if age <= FIFTEEN_DAYS else 300 if age <= timedelta(days=63) else 3600
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    offset = (since - epoch) % timedelta(seconds=period)
    start = since - offset
    if period == 60 and offset:
        start += timedelta(seconds=period)
    end = now + timedelta(minutes=1)
    if start >= end:
        # A moment after this host's now (another host's clock ahead of it): no period after it has ended,
        # so none has a datapoint yet (CloudWatch refuses a StartTime after the EndTime).
        return []
    query: dict[str, Any] = {
        "MetricDataQueries": [
            {
                "Id": "invocations",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Invocations",
                        "Dimensions": [{"Name": "FunctionName", "Value": function}],
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
        ],
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    found: list[Served] = []
    while True:
        answer = cloudwatch.get_metric_data(**query)
        for result in answer.get("MetricDataResults") or []:
            for at, value in zip(result.get("Timestamps") or [], result.get("Values") or [], strict=False):
                stamp = _aware(at)
                if value > 0 and stamp is not None and stamp >= start:
                    found.append(
                        Served(f"function {function}: {value:g} invocation(s) in the {period} s", stamp)
                    )
        token = answer.get("NextToken")
        if not token:
            return sorted(found, key=lambda s: s.at)
        query["NextToken"] = token


def served_since(
    autoscaling: Any,
    cloudwatch: Any,
    groups: Sequence[str],
    functions: Sequence[str],
    since: datetime,
    now: datetime,
) -> list[Served]:
    """Every record that region B's web tier ``groups`` or its ``functions`` could take writes at or
    after ``since`` (empty: none), read from region B's Auto Scaling and CloudWatch."""
    found: list[Served] = []
    for group in groups:
        found += launches_since(autoscaling, group, since)
    for function in functions:
        found += invocations_since(cloudwatch, function, since, now)
    return found


def proof_drained_at(proof: Mapping[str, Any]) -> datetime | None:
    """When the zero-lag proof's drain was seen (its ``drainedAt``, drain_proof.py); a proof written
    before that was recorded gives its ``at``, which is later: its window then misses only region B served
    and drained again while that proof measured. None when neither reads as a time."""
    return parse_moment(proof.get("drainedAt") or proof.get("at"))


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 time as the journal writes it (stepkit ``_now``), None when it is not one."""
    try:
        return _aware(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
