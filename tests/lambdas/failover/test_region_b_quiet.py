"""lambdas/failover/region_b_quiet.py: which of region B's scaling activities count as its web tier put in
service (break34 B34-3).

Invariant (docs/safety.md, no_loss): the failback promotion is refused when region B may have taken writes
after the zero-lag proof; every activity that may have put an instance in service counts, an unknown wording
included (the safe side), and only the known out-of-service kinds are left out.
"""

from __future__ import annotations

import pytest

from lambdas.failover.region_b_quiet import serving_activity


@pytest.mark.parametrize(
    "description",
    [
        "Launching a new EC2 instance: i-0123",
        "Attaching an existing EC2 instance: i-0123",
        "Moving EC2 instance out of Standby: i-0123",
        "Launching a new EC2 instance from warm pool: i-0123",
        "Some wording AWS has not documented: i-0123",
        "",
    ],
)
def test_an_activity_that_may_put_an_instance_in_service_counts(description: str) -> None:
    assert serving_activity(description), f"no_loss: {description!r} may have served and must count"


@pytest.mark.parametrize(
    "description",
    [
        "Terminating EC2 instance: i-0123",
        "Detaching EC2 instance: i-0123",
        "Moving EC2 instance to Standby: i-0123",
        "Launching a new EC2 instance into warm pool: i-0123",
    ],
)
def test_an_activity_that_takes_an_instance_out_of_service_does_not_count(description: str) -> None:
    assert not serving_activity(description), f"{description!r} serves nothing"
