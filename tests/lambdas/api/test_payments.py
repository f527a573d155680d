"""POST /payments and GET /payments/{id} through the real handler, against moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from tests.lambdas.api.support import (
    BUCKET,
    PRIMARY,
    TABLE,
    Answer,
    api_log_lines,
    get_event,
    load_event,
    post_event,
)

Invoke = Callable[[dict[str, Any]], Answer]

VALID = {"payment_id": "pay_001", "amount": 42.5, "currency": "EUR", "customer_id": "cust-9"}


def stored_item(payment_id: str, region: str = PRIMARY) -> dict[str, Any] | None:
    table = boto3.resource("dynamodb", region_name=region).Table(TABLE)
    return table.get_item(Key={"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}).get("Item")


def receipt_versions(payment_id: str, region: str = PRIMARY) -> list[dict[str, Any]]:
    s3 = boto3.client("s3", region_name=region)
    response = s3.list_object_versions(Bucket=BUCKET[region], Prefix=f"receipts/{payment_id}.json")
    return response.get("Versions", [])


def test_valid_post_creates_payment_item_and_receipt(invoke: Invoke) -> None:
    answer = invoke(load_event("post_payment"))

    assert answer.status == 201
    payment = answer.body["payment"]
    assert payment["payment_id"] == "pay_001"
    assert payment["amount"] == 42.5
    assert payment["currency"] == "EUR"
    assert payment["customer_id"] == "cust-9"
    assert payment["region"] == PRIMARY
    assert payment["created_at"].endswith("Z")
    assert "pk" not in payment and "sk" not in payment
    assert answer.body["receipt_key"] == "receipts/pay_001.json"

    item = stored_item("pay_001")
    assert item is not None
    assert item["pk"] == "PAYMENT#pay_001" and item["sk"] == "PAYMENT"
    assert item["amount"] == Decimal("42.5")
    assert item["region"] == PRIMARY
    assert item["created_at"] == payment["created_at"]

    s3 = boto3.client("s3", region_name=PRIMARY)
    receipt = s3.get_object(Bucket=BUCKET[PRIMARY], Key="receipts/pay_001.json")
    assert receipt["ServerSideEncryption"] == "aws:kms"
    assert receipt["ContentType"] == "application/json"
    body = json.loads(receipt["Body"].read())
    assert body["receipt_for"] == "pay_001"
    assert body["amount"] == "42.50"
    assert body["currency"] == "EUR"


def test_currency_defaults_to_usd_and_customer_is_optional(invoke: Invoke) -> None:
    answer = invoke(post_event({"payment_id": "p-2", "amount": 10}))

    assert answer.status == 201
    assert answer.body["payment"]["currency"] == "USD"
    assert "customer_id" not in answer.body["payment"]
    item = stored_item("p-2")
    assert item is not None and item["currency"] == "USD" and "customer_id" not in item


def test_receipt_uses_the_configured_kms_key(invoke: Invoke, function_env: Callable[..., None]) -> None:
    key_id = boto3.client("kms", region_name=PRIMARY).create_key()["KeyMetadata"]["Arn"]
    function_env(RECEIPTS_KMS_KEY_ID=key_id)

    assert invoke(post_event(VALID)).status == 201

    head = boto3.client("s3", region_name=PRIMARY).head_object(
        Bucket=BUCKET[PRIMARY], Key="receipts/pay_001.json"
    )
    assert head["SSEKMSKeyId"] == key_id


def test_base64_encoded_body_is_decoded(invoke: Invoke) -> None:
    encoded = base64.b64encode(json.dumps(VALID).encode()).decode()
    answer = invoke(load_event("post_payment", body=encoded, isBase64Encoded=True))

    assert answer.status == 201
    assert stored_item("pay_001") is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"amount": 1}, "payment_id", id="payment_id-missing"),
        pytest.param({**VALID, "payment_id": ""}, "payment_id", id="payment_id-empty"),
        pytest.param({**VALID, "payment_id": "x" * 65}, "payment_id", id="payment_id-too-long"),
        pytest.param({**VALID, "payment_id": "pay 1"}, "payment_id", id="payment_id-space"),
        pytest.param({**VALID, "payment_id": "pay#1"}, "payment_id", id="payment_id-hash"),
        pytest.param({**VALID, "payment_id": 17}, "payment_id", id="payment_id-number"),
        pytest.param({"payment_id": "p"}, "amount", id="amount-missing"),
        pytest.param({**VALID, "amount": 0}, "amount", id="amount-zero"),
        pytest.param({**VALID, "amount": -5}, "amount", id="amount-negative"),
        pytest.param({**VALID, "amount": 1.234}, "amount", id="amount-three-decimals"),
        pytest.param({**VALID, "amount": "10.00"}, "amount", id="amount-string"),
        pytest.param({**VALID, "amount": True}, "amount", id="amount-bool"),
        pytest.param({**VALID, "amount": None}, "amount", id="amount-null"),
        pytest.param({**VALID, "amount": 1e15}, "amount", id="amount-too-large"),
        pytest.param({**VALID, "currency": "usd"}, "currency", id="currency-lowercase"),
        pytest.param({**VALID, "currency": "US"}, "currency", id="currency-two-letters"),
        pytest.param({**VALID, "currency": "EURO"}, "currency", id="currency-four-letters"),
        pytest.param({**VALID, "currency": 978}, "currency", id="currency-number"),
        pytest.param({**VALID, "customer_id": ""}, "customer_id", id="customer_id-empty"),
        pytest.param({**VALID, "customer_id": 9}, "customer_id", id="customer_id-number"),
        pytest.param({**VALID, "customer_id": "c" * 129}, "customer_id", id="customer_id-too-long"),
        pytest.param({**VALID, "note": "hi"}, "note", id="unknown-field"),
        pytest.param("not json", "body", id="body-not-json"),
        pytest.param('{"payment_id": "p", "amount": NaN}', "body", id="body-nan"),
        pytest.param("[1, 2]", "body", id="body-array"),
        pytest.param("", "body", id="body-empty"),
    ],
)
def test_malformed_field_is_refused_naming_it(invoke: Invoke, body: Any, field: str) -> None:
    answer = invoke(post_event(body))

    assert answer.status == 400
    assert answer.body["field"] == field
    assert answer.body["error"]
    # Nothing is written for a refused request.
    assert stored_item("pay_001") is None
    assert receipt_versions("pay_001") == []


def test_missing_body_is_refused(invoke: Invoke) -> None:
    answer = invoke(load_event("post_payment", body=None))

    assert answer.status == 400
    assert answer.body["field"] == "body"


def test_bad_base64_body_is_refused(invoke: Invoke) -> None:
    answer = invoke(load_event("post_payment", body="%%%not-base64", isBase64Encoded=True))

    assert answer.status == 400
    assert answer.body["field"] == "body"


def test_refusal_is_logged_as_one_json_line(invoke: Invoke, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")

    invoke(post_event({**VALID, "currency": "usd"}))

    [line] = api_log_lines(caplog.records)
    assert line["message"] == "request refused"
    assert line["status"] == 400 and line["field"] == "currency"
    assert line["route"] == "/payments" and line["method"] == "POST"
    assert line["request_id"] == "11111111-2222-3333-4444-555555555555"


def test_identical_repeat_returns_existing_payment_without_a_second_write(invoke: Invoke) -> None:
    first = invoke(post_event(VALID))
    item_before = stored_item("pay_001")

    # Written differently (42.50, keys reordered), but the same payment.
    second = invoke(
        post_event('{"customer_id": "cust-9", "currency": "EUR", "amount": 42.50, "payment_id": "pay_001"}')
    )

    assert first.status == 201
    assert second.status == 200
    assert second.body == first.body
    assert stored_item("pay_001") == item_before
    # The receipt is write-once: the retry did not add a version.
    assert len(receipt_versions("pay_001")) == 1


def test_repeat_writes_a_receipt_the_first_attempt_missed(invoke: Invoke) -> None:
    invoke(post_event(VALID))
    s3 = boto3.client("s3", region_name=PRIMARY)
    [version] = receipt_versions("pay_001")
    # As if the first attempt stored the payment and then failed on S3.
    s3.delete_object(Bucket=BUCKET[PRIMARY], Key="receipts/pay_001.json", VersionId=version["VersionId"])

    answer = invoke(post_event(VALID))

    assert answer.status == 200
    receipt = json.loads(s3.get_object(Bucket=BUCKET[PRIMARY], Key="receipts/pay_001.json")["Body"].read())
    assert receipt["created_at"] == answer.body["payment"]["created_at"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"amount": 42.51}, id="amount"),
        pytest.param({"currency": "USD"}, id="currency"),
        pytest.param({"customer_id": "cust-10"}, id="customer"),
        pytest.param({"customer_id": None}, id="customer-dropped"),
    ],
)
def test_conflicting_repeat_is_refused_and_changes_nothing(invoke: Invoke, change: dict[str, Any]) -> None:
    invoke(post_event(VALID))
    item_before = stored_item("pay_001")

    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    answer = invoke(post_event(body))

    assert answer.status == 409
    assert answer.body["field"] == "payment_id"
    assert stored_item("pay_001") == item_before
    assert len(receipt_versions("pay_001")) == 1


def test_get_returns_a_stored_payment(invoke: Invoke) -> None:
    created = invoke(post_event(VALID))

    answer = invoke(get_event("pay_001"))

    assert answer.status == 200
    assert answer.body == {"payment": created.body["payment"]}


def test_get_behind_a_greedy_proxy_resource(invoke: Invoke) -> None:
    invoke(post_event(VALID))

    answer = invoke(load_event("proxy_get_payment"))

    assert answer.status == 200
    assert answer.body["payment"]["payment_id"] == "pay_001"


def test_get_unknown_payment_is_404(invoke: Invoke) -> None:
    answer = invoke(get_event("nope"))

    assert answer.status == 404
    assert answer.body == {"error": "payment not found"}


@pytest.mark.parametrize("payment_id", ["bad%20id", "x" * 65, "a.b"])
def test_get_malformed_id_is_400(invoke: Invoke, payment_id: str) -> None:
    answer = invoke(get_event(payment_id))

    assert answer.status == 400
    assert answer.body["field"] == "id"
