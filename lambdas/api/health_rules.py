"""The health check's decisions about the database, pure: RDS's answer and the database's own, combined.

Split from ``lambdas/api/health.py`` (which makes the calls) so the rules can be read, and mutation-tested
(``pyproject.toml`` ``[tool.mutmut]``), on their own. Why there are two answers: RDS's
``DescribeDBInstances`` / ``DescribeGlobalClusters`` are control-plane calls, and AWS's guidance is to
rely on data-plane operations for recovery and to expect control planes to be less available
(https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/aws-infrastructure.html;
https://docs.aws.amazon.com/r53recovery/latest/dg/data-and-control-planes.html: "use data plane functions for your
mechanisms whenever you can ... a data plane ... can maintain availability ... when a control plane might
become unavailable").
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lambdas.api.responses import aws_error_code, is_throttling

OK = "ok"
FAILED = "failed"
DEGRADED = "degraded"  # could not be checked, but the answer does not depend on it
SKIPPED = "skipped"

REFUSED = "refused"
"""The data plane's error for a database that rejected the function's session by rule (a fence)."""
BUSY = "busy"
"""The data plane's answer for a database that is up and turned the probe's session away for load."""

CONTROL_PLANE_UNANSWERED = frozenset(
    {"ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout", "RequestTimeoutException"}
)
"""RDS error codes that say the API gave no answer about the database (the throttling codes too)."""


class CheckError(Exception):
    """A dependency answered, but with something that makes the check fail. ``code`` names the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def control_plane_answered(error: BaseException) -> bool:
    """Whether a failed control-plane check is RDS's statement about the database (no such instance,
    ``failed``, not a member: the check fails whatever the data plane says), rather than no answer
    at all (unreachable, throttled, a 5xx), which the data plane's answer may stand in for."""
    if isinstance(error, CheckError):
        return True
    if isinstance(error, ClientError):
        code = aws_error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return not (is_throttling(code) or code in CONTROL_PLANE_UNANSWERED or status >= 500)
    return False


def error_code(error: BaseException) -> str:
    """The code a failed check reports: AWS's error code, a CheckError's, or the exception's class."""
    if isinstance(error, ClientError):
        return aws_error_code(error)
    if isinstance(error, CheckError):
        return error.code
    return type(error).__name__


def judge_database(
    control: dict[str, Any] | BaseException, data: dict[str, Any] | None
) -> tuple[bool | None, dict[str, Any]]:
    """The database check from RDS's answer (``control``: :func:`check_database`'s result, or what it
    raised) and the data plane's (``data``: :func:`_probe`'s outcome; None when the function has no
    credentials for the database).

    Returns ``writer`` (None: unknown) and the check's outcome. The rules, safest first:

    - RDS stated a problem (:func:`control_plane_answered`): failed, whatever the data plane says;
    - no data plane: RDS's answer alone, as before the probe existed;
    - the data plane answered: ``writer`` is its answer (what takes writes is the database's own
      say); RDS not answering only degrades the check;
    - the data plane answered ``busy`` (up, turning sessions away for load: too many connections,
      the Data API throttling): degraded, never failed, ``writer`` RDS's answer (unknown without
      one). A writer under load stays the region Route 53 answers with: failing it would send
      clients to region B's non-writer, and a load that comes and goes would move them back and forth;
    - the database refused the function's session by rule (:data:`REFUSED`, a fence): failed when
      RDS calls it the writer (it takes no payment; Route 53 should send none there);
    - the data plane gave no answer (unreachable, a timeout, a 5xx, the secret unread): failed only
      when RDS gave none either; otherwise degraded, ``writer`` RDS's answer. No answer is not a
      statement: a writer that the probe missed (a saturated instance, a slow session start, a
      maintenance reboot RDS describes) keeps the answer it had before the probe existed, so a
      blip of the function's own path never sends clients to region B's non-writer (break40 B40-1..3).
    """
    outcome: dict[str, Any]
    if isinstance(control, BaseException):
        code = error_code(control)
        if control_plane_answered(control) or data is None or "answer" not in data:
            outcome = {"status": FAILED, "error": code}
            if data is not None:
                outcome["data_plane"] = data
            return None, outcome
        outcome = {"status": DEGRADED, "control_plane_error": code, "data_plane": data}
        return (None if data["answer"] == BUSY else data["answer"] == "writer"), outcome
    outcome = {"status": OK, **control}
    if data is None:
        return bool(control["writer"]), outcome
    outcome["data_plane"] = data
    if data.get("answer") == BUSY:
        outcome["status"] = DEGRADED
        return bool(control["writer"]), outcome
    if "answer" in data:
        outcome["writer"] = data["answer"] == "writer"
        return outcome["writer"], outcome
    if control["writer"] and data.get("error") == REFUSED:
        outcome.update({"status": FAILED, "error": "WriterRefusesSessions"})
        return None, outcome
    outcome["status"] = DEGRADED
    return bool(control["writer"]), outcome
