"""Partner payment submissions from the SQS inbox queue, the function's other event source.

Each message body is a ``POST /payments`` body, recorded exactly as the API records it. The event
source mapping reports partial batch failures (``ReportBatchItemFailures``): a message listed in
``batchItemFailures`` is delivered again, up to the queue's ``maxReceiveCount``, and then moved to
the dead-letter queue. Refused messages (a bad body, a payment_id reused with another body) are
listed too, so they end up in the dead-letter queue for people instead of being deleted unread;
delivering a good message twice is harmless because payments are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.api.config import PaymentSettings
from lambdas.api.ledger import Ledger, LedgerUnavailable
from lambdas.api.payments import create_payment, parse_json_body, validate_payment_request
from lambdas.api.responses import ApiError, describe_aws_error, describe_unexpected_error, log_json


def is_sqs_event(event: Mapping[str, Any]) -> bool:
    """Whether the event is a batch from an SQS event source mapping."""
    records = event.get("Records")
    return (
        isinstance(records, list)
        and len(records) > 0
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def process_batch(
    records: Sequence[Mapping[str, Any]],
    dynamodb: BaseClient,
    s3: BaseClient,
    settings: PaymentSettings,
    clock: Callable[[], datetime],
    context: Mapping[str, Any] | None = None,
    ledger: Ledger | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Record each message's payment; the answer lists the messages that must not be deleted."""
    failures: list[dict[str, str]] = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        ctx: dict[str, Any] = {"source": "sqs", "message_id": message_id, **(context or {})}
        try:
            request = validate_payment_request(parse_json_body(record.get("body")))
            ctx["payment_id"] = request.payment_id
            create_payment(dynamodb, s3, settings, request, clock(), ledger=ledger)
            continue
        except ApiError as err:
            log_json(
                logging.ERROR,
                "inbox message refused",
                status=err.status,
                field=err.field,
                error=err.message,
                **ctx,
            )
        except LedgerUnavailable as err:
            # Not the writer, or not answering: kept for redelivery, never written elsewhere.
            log_json(
                logging.WARNING,
                "ledger unavailable",
                reason=err.reason,
                error=err.message,
                detail=err.detail,
                **ctx,
            )
        except (ClientError, BotoCoreError) as err:
            retryable, fields = describe_aws_error(err)
            log_json(logging.ERROR, "AWS call failed", retryable=retryable, **fields, **ctx)
        except Exception as err:
            # One broken message must not fail the batch: the others would be redelivered and
            # processed again for nothing. It is logged and kept for redelivery like any failure.
            log_json(logging.ERROR, "unhandled error", **describe_unexpected_error(err), **ctx)
        failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
