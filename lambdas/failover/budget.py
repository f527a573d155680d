"""Time budgets of the runbook, derived from its client settings (pure: no AWS, no Pulumi).

Two figures depend on how long an AWS call may take when everything goes wrong:

* the runbook **Lambda's timeout** (``components/orchestrator.py`` sets it to
  ``LAMBDA_TIMEOUT_SECONDS``), which must outlast what one invocation may spend in its clients, so
  that a slow AWS call ends as the step's own error (``StepRetryable``, with its AWS code) rather
  than as a killed invocation; and
* the **lock's expiry** (``lambdas.failover.lock``), which must outlast the longest stretch a live
  run may go without refreshing it, so a slow but live run never loses its lock.

A call's worst case is ``attempts x (connect + read timeout)`` plus botocore's back-off between
attempts: ``rand(0,1) x min(2 ** (attempt - 1), 20)`` seconds for throttling (1 s base scale),
raised to at most 5 s more by an ``x-amz-retry-after`` header (``botocore/retries/standard.py``,
``ExponentialBackoff``; the ``adaptive`` mode uses the same back-off, its client-side rate
limiter only spaces the attempts). A read timeout bounds each socket read, not a whole response:
a server trickling bytes could exceed it, which AWS endpoints do not do; that is assumed.
"""

from __future__ import annotations

import math

from lambdas.failover.clients import DR_SETTINGS, PRIMARY_SETTINGS, ClientSettings

BACKOFF_BASE_SECONDS = 1.0
"""botocore's throttling base scale (``ExponentialBackoff._DEFAULT_BACKOFF_CONFIG``)."""
BACKOFF_MAX_SECONDS = 20.0
"""botocore's ``ExponentialBackoff._MAX_BACKOFF``."""
RETRY_AFTER_EXTRA_SECONDS = 5.0
"""botocore's ``_RETRY_AFTER_MAX_ADDITIONAL``: an ``x-amz-retry-after`` header adds at most this."""

PROBE_SECONDS = 3 * 3.0 + 2 * 1.0
"""A health probe with the default ``probeTries`` (3), ``probeTimeout`` (3 s), ``probeInterval`` (1 s)
(``lambdas.failover.stepkit._probe``): the one wait a step makes inside one invocation."""

LAMBDA_MAX_TIMEOUT_SECONDS = 900
"""Lambda's maximum function timeout (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html)."""

LAMBDA_TIMEOUT_SECONDS = 900
"""The runbook Lambda's timeout (``components/orchestrator.py``). ``lambda_timeout_bound()`` is the
least it may be; the maximum is taken because a step makes several calls and every second more
is a step that finishes instead of being retried."""

SFN_RETRY_MAX_DELAY_SECONDS = 60
"""The longest back-off between two attempts of a Task (``state_machine.RetryPolicy.max_delay_seconds``)."""

SFN_POLL_SECONDS = 30
"""The Wait between two polls of a long-running step (``state_machine.build_definition``'s default)."""

HEARTBEAT_SECONDS = 300
"""How often the in-process executor refreshes its lock (``lambdas.failover.executor``)."""


def backoff_seconds(attempts: int) -> float:
    """The longest botocore may sleep between ``attempts`` attempts of one call (all retries)."""
    return sum(
        min(BACKOFF_BASE_SECONDS * 2 ** (i - 1), BACKOFF_MAX_SECONDS) + RETRY_AFTER_EXTRA_SECONDS
        for i in range(1, attempts)
    )


def call_seconds(settings: ClientSettings) -> float:
    """The longest one AWS call may take with ``settings``: every attempt timing out, all back-offs."""
    per_attempt = settings.connect_timeout + settings.read_timeout
    return settings.max_attempts * per_attempt + backoff_seconds(settings.max_attempts)


def lambda_timeout_bound(
    dr: ClientSettings = DR_SETTINGS, primary: ClientSettings = PRIMARY_SETTINGS
) -> float:
    """The least the runbook Lambda's timeout may be.

    One invocation refreshes the lock (a region-B call), then runs one step: at least one region-B
    call and one region-A call (the fence, the failback) may each hit their worst case, plus a
    health probe. A step whose several calls *all* hit their worst case can still outlast this;
    that invocation is killed (``Lambda.Unknown``) and the state machine retries it (the step is
    idempotent).
    """
    return 2 * call_seconds(dr) + call_seconds(primary) + PROBE_SECONDS


def lock_ttl_bound(lambda_timeout: float = LAMBDA_TIMEOUT_SECONDS, dr: ClientSettings = DR_SETTINGS) -> float:
    """The least the lock's expiry may be: the longest a live run goes between two refreshes.

    * Step Functions: every invocation refreshes the lock first. Between two refreshes: one whole
      invocation (``lambda_timeout``), then the longer of a Retry back-off and a poll Wait, then
      the next refresh call itself (a region-B call).
    * In process: a refresh every ``HEARTBEAT_SECONDS``, which may itself take a region-B call.
    """
    sfn = lambda_timeout + max(SFN_RETRY_MAX_DELAY_SECONDS, SFN_POLL_SECONDS) + call_seconds(dr)
    cli = HEARTBEAT_SECONDS + call_seconds(dr)
    return max(sfn, cli)


def _minutes(seconds: float) -> int:
    return int(math.ceil(seconds / 60.0) * 60)


LOCK_TTL_SECONDS = _minutes(lock_ttl_bound())
"""The lock's expiry after its last refresh: ``lock_ttl_bound()`` rounded up to the minute (1380 s,
23 minutes, with the settings of ``clients.py``). A run that died holding the lock blocks other
runs this long at most; the same run resumed (same run id) re-enters at once, and the CLI's
``--break-lock`` ends it by hand."""


INVOCATION_LOCK_TTL_SECONDS = _minutes(LAMBDA_TIMEOUT_SECONDS + call_seconds(PRIMARY_SETTINGS))
"""The lease of a step invoked on its own, outside any run (the canary's ``fence_primary`` Event
invocation, ``lambdas.failover.handler``): one invocation, which Lambda ends at its timeout, plus one
region-A call it may have in flight then. Shorter than ``LOCK_TTL_SECONDS``: an invocation that died
holding it blocks the next run for this long at most."""
