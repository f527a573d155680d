"""The runbook's exceptions, one class per failure meaning, so callers catch by meaning.

* ``ContextError``: the outputs given to the runbook are unusable (before any AWS call).
* ``PreflightError``: the outputs do not describe the live system (stale, or naming a resource
  that is not there); raised by the read-only preflight, before any change.
* ``EventError``: a Step Functions event is not a valid step invocation (answered 400).
* ``StepFailed``: a step could not reach its target state; the run stops there. Its ``reason``
  says why, with the AWS code; a fence refused by a region A that answers, a planned promotion
  whose zero lag never came, a database that is not replicating all end here.
* ``StepRetryable``: a ``StepFailed`` worth retrying later (the state machine's Retry matches
  this name): throttling past botocore's retries, a wait that ran out.
* ``LockHeld``: another live run holds the runbook lock (single flight); this run changed nothing.
* ``LockLost``: this run's lock expired and another run took it; this run stops before its next
  change.
* ``SourceDark``: region A stopped answering while a forced failover waited for zero lag from it;
  raised and caught inside the promotion (it never leaves a step).
* ``DefinitionError``: a generated Step Functions definition is structurally broken (offline
  validation, at synth and in tests).

The modules that raise them re-export them under their old names (``steps.StepFailed``,
``context.ContextError``, ``handler.StepRetryable``, ``handler.EventError``,
``state_machine.DefinitionError``).
"""

from __future__ import annotations

from collections.abc import Sequence


class ContextError(ValueError):
    """The outputs given to the runbook are missing a key or hold a value it cannot use."""


class PreflightError(Exception):
    """The outputs do not match the live system; nothing was changed (every problem is listed)."""


class EventError(ValueError):
    """The event is not a valid step invocation."""


class StepFailed(Exception):
    """A step could not reach its target state; the run stops at this step.

    Attributes:
        step: the step name.
        reason: what went wrong, with the AWS error code when there is one.
        retryable: botocore's retries were exhausted on a throttling or transient error, or a
            waiter timed out: running the step again later may succeed.
        code: the AWS error code (or exception class for connection errors), if any.
    """

    def __init__(self, step: str, reason: str, *, retryable: bool = False, code: str | None = None) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.retryable = retryable
        self.code = code


class StepRetryable(StepFailed):
    """A step failure worth retrying later; the state machine's Retry matches this name."""


class LockHeld(StepFailed):
    """Another live run holds the runbook lock: this run stops before changing anything.

    Attributes (besides ``StepFailed``'s): ``holder``, the lock item as read (owner, run id,
    runbook, acquired-at, expiry), or None when it could not be read.
    """

    def __init__(self, step: str, reason: str, holder: dict[str, object] | None = None) -> None:
        super().__init__(step, reason, code="LockHeld")
        self.holder = holder


class LockLost(StepFailed):
    """This run's lock is gone (expired and taken by another run, or broken): it stops here."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(step, reason, code="LockLost")


class SourceDark(Exception):
    """Region A stopped answering while a forced failover waited for zero lag from it (B10-4)."""


class DefinitionError(ValueError):
    """A state machine definition is structurally broken; ``problems`` lists every issue found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid state machine definition:\n  " + "\n  ".join(self.problems))
