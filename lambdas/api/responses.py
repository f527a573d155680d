"""HTTP answers for API Gateway's proxy integration, the error the routes raise, and JSON log lines.

Named ``responses`` rather than ``http`` so that nothing can shadow the standard library's ``http``
package (which botocore imports) if ``lambdas/api`` ever lands on ``sys.path`` itself.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

logger = logging.getLogger("lambdas.api")

# Seconds a client should wait before retrying after a 503. Short: throttling clears quickly, and
# the SDK inside the function has already retried with backoff before we give up.
RETRY_AFTER_SECONDS = 1

# Error codes that mean "slow down", as botocore's standard retry mode classifies them. They become
# 503 + Retry-After so callers retry; every other AWS error is a 500 with a generic message.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "BandwidthLimitExceeded",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)

GENERIC_500 = "internal error"
GENERIC_503 = "service temporarily unavailable, retry later"


class ApiError(Exception):
    """A request the API answers with an error status. ``message`` and ``field`` are shown to the caller."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"error": ..., "field": ...}``, ``field`` only when one field is at fault."""
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


def _json_default(value: Any) -> Any:
    # DynamoDB hands numbers back as Decimal; money has at most two decimal places and is bounded
    # (payments.MAX_AMOUNT), so float prints it exactly.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Serialise with the default separators: Route 53 string matching looks for ``"active": true``."""
    return json.dumps(value, default=_json_default)


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A proxy-integration response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": to_json(body),
        "isBase64Encoded": False,
    }


def error_response(error: ApiError) -> dict[str, Any]:
    """The response for an ApiError."""
    return json_response(error.status, error.body(), error.headers)


def retry_after_headers() -> dict[str, str]:
    """Headers for a 503 the caller should retry."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def log_json(level: int, message: str, **context: Any) -> None:
    """Log one line of JSON: ``json.dumps`` escapes newlines, so even a traceback stays on one line."""
    logger.log(level, to_json({"level": logging.getLevelName(level), "message": message, **context}))


def aws_error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError ("" if the response carries none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_throttling(code: str) -> bool:
    """Whether an AWS error code means the caller should slow down and retry."""
    return code in THROTTLING_CODES


def describe_aws_error(error: ClientError | BotoCoreError) -> tuple[bool, dict[str, Any]]:
    """Whether retrying may help, and the fields to log about the error (never shown to callers)."""
    if isinstance(error, ClientError):
        code = aws_error_code(error)
        return is_throttling(code), {
            "error_code": code,
            "operation": error.operation_name,
            "aws_message": str(error.response.get("Error", {}).get("Message", "")),
        }
    # No error code without a response: a connection or read timeout is the region or the network
    # being unavailable, which a retry may outlive; anything else is our bug.
    retryable = isinstance(error, BotoConnectionError | HTTPClientError)
    return retryable, {"error_type": type(error).__name__, "error": str(error)}


def aws_error_response(error: ClientError | BotoCoreError, context: Mapping[str, Any]) -> dict[str, Any]:
    """Log an AWS error with its context and answer it: 503 + Retry-After when retrying helps, else 500.

    The caller sees a generic message only; the code, operation and AWS message go to the log.
    """
    retryable, fields = describe_aws_error(error)
    log_json(logging.ERROR, "AWS call failed", retryable=retryable, **fields, **context)
    if retryable:
        return json_response(503, {"error": GENERIC_503}, retry_after_headers())
    return json_response(500, {"error": GENERIC_500})


def describe_unexpected_error(error: Exception) -> dict[str, Any]:
    """The fields to log about an exception nobody expected, traceback included."""
    return {
        "error_type": type(error).__name__,
        "error": str(error),
        "traceback": "".join(traceback.format_exception(error)),
    }


def unexpected_error_response(error: Exception, context: Mapping[str, Any]) -> dict[str, Any]:
    """Log an unexpected exception with its traceback and answer a generic 500."""
    log_json(logging.ERROR, "unhandled error", **describe_unexpected_error(error), **context)
    return json_response(500, {"error": GENERIC_500})
