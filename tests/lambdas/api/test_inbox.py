"""The SQS inbox batch and events the function does not handle, through the real handler, against moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.api.clients import ClientCache
from lambdas.api.config import ConfigError
from lambdas.api.handler import UnsupportedEventError, handler
from tests.lambdas.api.support import BUCKET, PRIMARY, TABLE, FakeContext, api_log_lines, load_event

GOOD_1 = "059f36b4-87a3-44ab-83d2-661975830a7d"
BAD = "2e1424d4-f796-459a-8184-9c92662be6da"
GOOD_2 = "c80e8021-a70a-42c7-a470-796e1186f753"


@pytest.fixture
def ready(clients: ClientCache, function_env: Callable[..., None], stores: None) -> ClientCache:
    """Moto stores, the function's environment and a fresh client cache."""
    return clients


def stored(payment_id: str) -> dict[str, Any] | None:
    table = boto3.resource("dynamodb", region_name=PRIMARY).Table(TABLE)
    return table.get_item(Key={"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}).get("Item")


def test_batch_records_good_messages_and_keeps_the_refused_one(
    ready: ClientCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")

    answer = handler(load_event("sqs_batch"), FakeContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": BAD}]}
    first, second = stored("partner-001"), stored("partner-003")
    assert first is not None and first["currency"] == "GBP" and first["customer_id"] == "acme"
    assert second is not None and second["currency"] == "USD"
    assert stored("partner-002") is None
    receipt = boto3.client("s3", region_name=PRIMARY).head_object(
        Bucket=BUCKET[PRIMARY], Key="receipts/partner-001.json"
    )
    assert receipt["ServerSideEncryption"] == "aws:kms"
    [line] = api_log_lines(caplog.records)
    assert line["message"] == "inbox message refused"
    assert line["message_id"] == BAD and line["field"] == "amount"


def test_redelivered_batch_is_idempotent(ready: ClientCache) -> None:
    handler(load_event("sqs_batch"), FakeContext())
    before = stored("partner-001")

    again = handler(load_event("sqs_batch"), FakeContext())

    assert again == {"batchItemFailures": [{"itemIdentifier": BAD}]}
    assert stored("partner-001") == before


def test_reused_payment_id_with_another_body_is_kept_for_the_dead_letter_queue(ready: ClientCache) -> None:
    event = load_event("sqs_batch")
    handler(event, FakeContext())
    event["Records"][2]["body"] = json.dumps({"payment_id": "partner-003", "amount": 8})

    answer = handler(event, FakeContext())

    assert {"itemIdentifier": GOOD_2} in answer["batchItemFailures"]


def test_throttled_messages_are_returned_for_redelivery(
    ready: ClientCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutItem")

    ready.client("dynamodb", PRIMARY).meta.events.register("before-call.dynamodb.PutItem", throttle)

    answer = handler(load_event("sqs_batch"), FakeContext())

    assert {f["itemIdentifier"] for f in answer["batchItemFailures"]} == {GOOD_1, BAD, GOOD_2}
    throttled = [
        line for line in api_log_lines(caplog.records) if line.get("error_code") == "ThrottlingException"
    ]
    assert {line["message_id"] for line in throttled} == {GOOD_1, GOOD_2}
    assert all(line["retryable"] is True for line in throttled)


def test_misconfigured_batch_fails_whole_invocation(
    ready: ClientCache, function_env: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")
    function_env(RECEIPTS_BUCKET=None)

    with pytest.raises(ConfigError, match="RECEIPTS_BUCKET"):
        handler(load_event("sqs_batch"), FakeContext())

    [line] = api_log_lines(caplog.records)
    assert line["message"] == "configuration error" and "RECEIPTS_BUCKET" in line["error"]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"source": "aws.events", "detail-type": "Scheduled Event"}, id="eventbridge"),
        pytest.param({"Records": [{"eventSource": "aws:s3"}]}, id="s3-notification"),
        pytest.param({"Records": []}, id="empty-records"),
    ],
)
def test_unsupported_event_is_refused_loudly(
    ready: ClientCache, caplog: pytest.LogCaptureFixture, event: dict[str, Any]
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")

    with pytest.raises(UnsupportedEventError):
        handler(event, FakeContext())

    [line] = api_log_lines(caplog.records)
    assert line["message"] == "unsupported event"
