"""The runbook Lambda's timeout covers its clients' worst case; the lock outlasts a live run's
longest silence (issue 10, "Single flight"; docs/safety.md ``single_flight`` and ``converges``).

The bounds are derived here from the botocore ``Config`` the runbook's clients are really built
with (``Clients.config``), not from the constants ``budget.py`` reads, and checked against the
synthesized dr stack's Lambda.
"""

from __future__ import annotations

import boto3
import pytest

from lambdas.failover import budget
from lambdas.failover.clients import Clients, ClientSettings
from lambdas.failover.state_machine import LAMBDA_RETRY, STEP_RETRY, TASK_TIMEOUT_SECONDS
from tests.components.conftest import synthesize


def _settings(clients: Clients, side: str) -> ClientSettings:
    config = clients.config(side)  # type: ignore[arg-type]
    assert config.retries["mode"] in ("standard", "adaptive")  # the back-off budget.py models
    return ClientSettings(
        max_attempts=int(config.retries["total_max_attempts"]),
        connect_timeout=float(config.connect_timeout),
        read_timeout=float(config.read_timeout),
    )


def _worst_call(s: ClientSettings) -> float:
    # Every attempt times out connecting and reading; botocore sleeps at most min(2**(i-1), 20) s
    # (+5 s for an x-amz-retry-after header) before retry i.
    sleeps = sum(min(2 ** (i - 1), 20) + 5 for i in range(1, s.max_attempts))
    return s.max_attempts * (s.connect_timeout + s.read_timeout) + sleeps


@pytest.fixture(scope="module")
def clients() -> Clients:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x")
    return Clients(session, "us-east-1", "us-west-2")


def test_the_lambda_timeout_covers_its_clients_worst_case(clients: Clients) -> None:
    """converges: one invocation's lock refresh, a region-B call and a region-A call all at their
    worst, and a health probe, end before the function is killed."""
    dr, primary = _settings(clients, "dr"), _settings(clients, "primary")
    bound = 2 * _worst_call(dr) + _worst_call(primary) + budget.PROBE_SECONDS
    assert bound == budget.lambda_timeout_bound()
    dr_stack = synthesize("dr", {})
    (function,) = [
        f for f in dr_stack.by_type("aws:lambda/function:Function") if f.name == "dr-orchestrator-runbook"
    ]
    configured = function.inputs["timeout"]
    assert bound <= configured <= budget.LAMBDA_MAX_TIMEOUT_SECONDS, (
        f"aws:lambda/function:Function dr-orchestrator-runbook: timeout {configured} s does not cover "
        f"its clients' worst case {bound:.0f} s (or exceeds Lambda's 900 s)"
    )
    assert configured < TASK_TIMEOUT_SECONDS, "a Task must not time out before its invocation"


def test_the_lock_outlasts_a_live_runs_longest_silence(clients: Clients) -> None:
    """single_flight: a live run refreshes its lock before it expires, under either executor."""
    dr = _settings(clients, "dr")
    refresh = _worst_call(dr)
    sfn_gap = budget.LAMBDA_TIMEOUT_SECONDS + max(
        LAMBDA_RETRY.max_delay_seconds, STEP_RETRY.max_delay_seconds, budget.SFN_POLL_SECONDS
    )
    assert sfn_gap + refresh < budget.LOCK_TTL_SECONDS
    assert budget.HEARTBEAT_SECONDS + refresh < budget.LOCK_TTL_SECONDS


def test_a_one_step_run_s_lease_outlasts_its_invocation_and_no_more_than_a_run_s(clients: Clients) -> None:
    """single_flight: the canary's pending fence holds the lock for one invocation. Its lease must
    outlast what Lambda lets the invocation run (its timeout) plus a region-A call still in flight
    then, so it never expires under a live fence; and it is shorter than a run's, so an invocation
    that died holding it blocks the next run less long than a dead run does."""
    primary = _settings(clients, "primary")
    assert budget.LAMBDA_TIMEOUT_SECONDS + _worst_call(primary) <= budget.INVOCATION_LOCK_TTL_SECONDS
    assert budget.INVOCATION_LOCK_TTL_SECONDS < budget.LOCK_TTL_SECONDS
