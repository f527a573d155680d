"""Payments: validate a request, record it once in the ledger and DynamoDB, keep a receipt in S3.

When the stack has a relational database, the payment is recorded in its ledger first
(:mod:`lambdas.api.ledger`): a region whose database is not the writer refuses the payment there,
before anything is written to DynamoDB or S3, and ``GET`` reads the ledger.

Items live under ``pk = PAYMENT#<payment_id>``, ``sk = PAYMENT``. A payment is written with a
conditional put, so a client retrying the same request gets the payment it already made (200) and a
different request reusing the id is refused (409). Receipts are write-once too (``If-None-Match: *``)
and are derived from the stored item only, so a retry can safely write one that a failed first
attempt never wrote.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from lambdas.api.config import PaymentSettings
from lambdas.api.ledger import Ledger, LedgerConflict, LedgerUnavailable
from lambdas.api.responses import ApiError, aws_error_code, log_json, to_json

PAYMENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
DEFAULT_CURRENCY = "USD"
# Bounded so an amount always fits DynamoDB's number type and prints exactly as a JSON float
# (fewer than 15 significant digits).
MAX_AMOUNT = Decimal("999999999999.99")
CUSTOMER_ID_MAX_LENGTH = 128
FIELDS = ("payment_id", "amount", "currency", "customer_id")
SORT_KEY = "PAYMENT"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PaymentRequest:
    """A validated ``POST /payments`` body. ``amount`` is exact, with at most two decimal places."""

    payment_id: str
    amount: Decimal
    currency: str
    customer_id: str | None = None


@dataclass(frozen=True)
class PaymentResult:
    """The outcome of ``create_payment``: ``created`` is False when an identical payment already existed."""

    created: bool
    payment: dict[str, Any]
    receipt_key: str


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity by default; neither is JSON nor an amount.
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body(body: str | None, is_base64_encoded: bool = False) -> Any:
    """Decode the request body as JSON, floats as Decimal. Raises ApiError 400 on field ``body``."""
    if body is None or body == "":
        raise ApiError(400, "a JSON request body is required", field="body")
    text = body
    if is_base64_encoded:
        try:
            text = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ApiError(400, "the request body is not valid base64-encoded UTF-8", field="body") from exc
    try:
        # Decimal keeps 10.1 as 10.1 (a float would make it 10.0999...), so the two-decimal-places
        # check and the stored amount are exact.
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError, so are huge integer literals
        raise ApiError(400, "the request body is not valid JSON", field="body") from exc


def validate_payment_id(value: Any, field: str = "payment_id") -> str:
    """A payment id: 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'."""
    if not isinstance(value, str) or not PAYMENT_ID_PATTERN.fullmatch(value):
        raise ApiError(400, f"{field} must be 1 to 64 characters from A-Z, a-z, 0-9, _ and -", field)
    return value


def _validate_amount(value: Any) -> Decimal:
    message = f"amount must be a number above 0, at most {MAX_AMOUNT}, with at most 2 decimal places"
    # bool is an int subclass: true must not become an amount of 1.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ApiError(400, message, "amount")
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
            raise ApiError(400, message, "amount")
        if amount != amount.quantize(CENT):
            raise ApiError(400, message, "amount")
    except InvalidOperation as exc:
        raise ApiError(400, message, "amount") from exc
    return amount.quantize(CENT)


def validate_payment_request(data: Any) -> PaymentRequest:
    """Check a decoded ``POST /payments`` body; the first bad field raises ApiError 400 naming it."""
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", field="body")
    for key in data:
        if key not in FIELDS:
            raise ApiError(400, f"unknown field; allowed fields: {', '.join(FIELDS)}", field=str(key))
    if "payment_id" not in data:
        raise ApiError(400, "payment_id is required", "payment_id")
    payment_id = validate_payment_id(data["payment_id"])
    if "amount" not in data:
        raise ApiError(400, "amount is required", "amount")
    amount = _validate_amount(data["amount"])
    currency = data.get("currency", DEFAULT_CURRENCY)
    if not isinstance(currency, str) or not CURRENCY_PATTERN.fullmatch(currency):
        raise ApiError(400, "currency must be a 3-letter uppercase ISO 4217 code, such as USD", "currency")
    customer_id = data.get("customer_id")
    if customer_id is not None and (
        not isinstance(customer_id, str) or not 1 <= len(customer_id) <= CUSTOMER_ID_MAX_LENGTH
    ):
        raise ApiError(
            400, f"customer_id must be a string of 1 to {CUSTOMER_ID_MAX_LENGTH} characters", "customer_id"
        )
    return PaymentRequest(payment_id=payment_id, amount=amount, currency=currency, customer_id=customer_id)


def payment_key(payment_id: str) -> dict[str, dict[str, str]]:
    """The DynamoDB key of a payment, in the low-level client's attribute-value format."""
    return {"pk": {"S": f"PAYMENT#{payment_id}"}, "sk": {"S": SORT_KEY}}


def receipt_key(payment_id: str) -> str:
    """The S3 key of a payment's receipt."""
    return f"receipts/{payment_id}.json"


def build_item(request: PaymentRequest, region: str, now: datetime) -> dict[str, Any]:
    """The stored payment, as plain Python values (amount as Decimal)."""
    item: dict[str, Any] = {
        "pk": f"PAYMENT#{request.payment_id}",
        "sk": SORT_KEY,
        "payment_id": request.payment_id,
        "amount": request.amount,
        "currency": request.currency,
        "created_at": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "region": region,
    }
    if request.customer_id is not None:
        item["customer_id"] = request.customer_id
    return item


def public_view(item: dict[str, Any]) -> dict[str, Any]:
    """The payment as the API shows it: the stored item without its table keys."""
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def matches_request(item: dict[str, Any], request: PaymentRequest) -> bool:
    """Whether a stored payment records the same request (same amount, currency and customer)."""
    return (
        item.get("payment_id") == request.payment_id
        and Decimal(item.get("amount", "NaN")) == request.amount
        and item.get("currency") == request.currency
        and item.get("customer_id") == request.customer_id
    )


def _serialise(item: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in item.items()}


def _deserialise(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in item.items()}


def get_payment(dynamodb: BaseClient, table_name: str, payment_id: str) -> dict[str, Any] | None:
    """The stored payment (public view), or None. Consistent read: a payment just written is seen."""
    response = dynamodb.get_item(TableName=table_name, Key=payment_key(payment_id), ConsistentRead=True)
    raw = response.get("Item")
    return public_view(_deserialise(raw)) if raw else None


def write_receipt(s3: BaseClient, bucket: str, kms_key_id: str | None, payment: dict[str, Any]) -> str:
    """Store the receipt for a payment once; an existing receipt is left as it is. Returns its key."""
    key = receipt_key(payment["payment_id"])
    extra: dict[str, str] = {"SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    receipt = {"receipt_for": payment["payment_id"], **payment, "amount": f"{Decimal(payment['amount']):.2f}"}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=to_json(receipt).encode("utf-8"),
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
            IfNoneMatch="*",
            **extra,
        )
    except ClientError as exc:
        # 412 means the receipt is already there: receipts are write-once, and its content comes
        # from the same stored item, so there is nothing left to do. Anything else is a failure.
        if aws_error_code(exc) != "PreconditionFailed":
            raise
    return key


def record_in_ledger(
    ledger: Ledger, request: PaymentRequest, item: dict[str, Any]
) -> tuple[bool, dict[str, Any]]:
    """Record the payment in the ledger; whether it was new, and the ledger's row (the first write's).

    Raises ApiError 409 when the id is taken by a different request, and LedgerUnavailable when
    this region's database cannot take it (not the writer, unreachable): nothing else is written then.
    """
    try:
        entry = ledger.record(
            payment_id=request.payment_id,
            amount=request.amount,
            currency=request.currency,
            customer_id=request.customer_id,
            region=item["region"],
            created_at=item["created_at"],
        )
    except LedgerConflict as exc:
        raise ApiError(409, "payment_id was changed concurrently; retry", "payment_id") from exc
    if not entry.inserted and not matches_request(entry.payment, request):
        raise ApiError(409, "payment_id is already used by a payment with a different body", "payment_id")
    return entry.inserted, entry.payment


def _withdraw_refused(ledger: Ledger, payment: dict[str, Any]) -> None:
    """Take back the row this request committed for a payment DynamoDB then refused (best effort).

    Only a race reaches here (the table was read first): an item with another body landed in the
    table between that read and the conditional put. The delete names this row exactly, so it never
    removes a row another request wrote.
    """
    try:
        removed = ledger.withdraw(payment)
    except LedgerUnavailable as err:
        log_json(
            logging.ERROR,
            "refused payment left in the ledger",
            payment_id=payment["payment_id"],
            reason=err.reason,
            error=err.message,
            detail=err.detail,
        )
        return
    if not removed:
        log_json(
            logging.WARNING, "refused payment's ledger row already gone", payment_id=payment["payment_id"]
        )


def _conflict() -> ApiError:
    return ApiError(409, "payment_id is already used by a payment with a different body", "payment_id")


def create_payment(
    dynamodb: BaseClient,
    s3: BaseClient,
    settings: PaymentSettings,
    request: PaymentRequest,
    now: datetime,
    ledger: Ledger | None = None,
) -> PaymentResult:
    """Record a payment once (in the ledger first, when there is one) and store its receipt.

    With a ledger, the table is read first (a consistent read) and a payment id it holds with
    another body is refused (409) before anything is written to the ledger: a refused payment never
    becomes the ledger's row. A payment the table holds with the same body (made before the ledger
    existed, or kept by the global table while an unplanned failover lost the ledger's tail) is
    recorded in the ledger with the table's time and region, so the ledger and the table agree.
    The answer is then the ledger's row, which is what ``GET`` reads.

    ``created`` is the ledger's answer when there is a ledger: the system of record decides whether
    this request made the payment. Raises ApiError 409 when the payment id is taken by a different
    request; ledger and AWS errors propagate for the handler to answer.
    """
    item = build_item(request, settings.region, now)
    created = True
    if ledger is not None:
        held = get_payment(dynamodb, settings.table_name, request.payment_id)
        if held is not None:
            if not matches_request(held, request):
                raise _conflict()
            item.update(created_at=held["created_at"], region=held["region"])
        # A retry keeps the first write's time and region, so the ledger and the table agree.
        created, stored = record_in_ledger(ledger, request, item)
        item.update(stored)
    try:
        dynamodb.put_item(
            TableName=settings.table_name,
            Item=_serialise(item),
            ConditionExpression="attribute_not_exists(pk)",
            # The existing item comes back with the failure, which saves a read on a retry.
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise
        raw = exc.response.get("Item")
        if raw:
            existing = _deserialise(raw)
        else:
            existing = get_payment(dynamodb, settings.table_name, request.payment_id)
        if existing is None:
            # The item that failed the condition was deleted before it could be read back.
            if ledger is not None and created:
                _withdraw_refused(ledger, item)
            raise ApiError(409, "payment_id was changed concurrently; retry", "payment_id") from exc
        if not matches_request(existing, request):
            if ledger is not None and created:
                _withdraw_refused(ledger, item)
            raise _conflict() from exc
        if ledger is None:
            item = existing
            created = False
        # With a ledger, the answer stays the ledger's row: what GET /payments/{id} reads.
    payment = public_view(item)
    # Also on a retry: the first attempt may have stored the payment and then failed on S3.
    key = write_receipt(s3, settings.receipts_bucket, settings.receipts_kms_key_id, payment)
    return PaymentResult(created=created, payment=payment, receipt_key=key)
