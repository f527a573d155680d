"""Routing and error handling: unknown routes, wrong methods, AWS errors by code, our own bugs.

AWS failures are injected with botocore event hooks on the handler's own clients, so the request
goes through the real client up to the point where AWS would have answered.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from lambdas.api import payments
from lambdas.api.clients import ClientCache
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


def raising(code: str, operation: str, **extra: Any) -> Callable[..., None]:
    """A before-call hook that fails the call the way AWS would, with ``code``."""

    def hook(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": code, "Message": f"secret detail for {code}"}, **extra}, operation
        )

    return hook


def item_exists(payment_id: str) -> bool:
    table = boto3.client("dynamodb", region_name=PRIMARY)
    key = {"pk": {"S": f"PAYMENT#{payment_id}"}, "sk": {"S": "PAYMENT"}}
    return "Item" in table.get_item(TableName=TABLE, Key=key)


def test_unknown_route_is_404(invoke: Invoke) -> None:
    answer = invoke(load_event("unknown_route"))

    assert answer.status == 404
    assert answer.body == {"error": "no such route"}


def test_unknown_path_behind_proxy_is_404(invoke: Invoke) -> None:
    answer = invoke(load_event("proxy_get_payment", path="/payments/pay_001/refunds"))

    assert answer.status == 404


@pytest.mark.parametrize(
    ("event", "method", "allowed"),
    [
        pytest.param("post_payment", "GET", "POST", id="GET-payments"),
        pytest.param("get_payment", "DELETE", "GET", id="DELETE-payment"),
        pytest.param("get_health", "POST", "GET", id="POST-health"),
    ],
)
def test_wrong_method_is_405_with_allow(invoke: Invoke, event: str, method: str, allowed: str) -> None:
    answer = invoke(load_event(event, httpMethod=method))

    assert answer.status == 405
    assert answer.headers["Allow"] == allowed
    assert allowed in answer.body["error"]


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"]
)
def test_throttled_put_is_503_with_retry_after(
    invoke: Invoke, clients: ClientCache, caplog: pytest.LogCaptureFixture, code: str
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")
    clients.client("dynamodb", PRIMARY).meta.events.register(
        "before-call.dynamodb.PutItem", raising(code, "PutItem")
    )

    answer = invoke(post_event(VALID))

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert "secret detail" not in answer.body["error"]
    assert not item_exists("pay_001")
    [line] = api_log_lines(caplog.records)
    assert line["level"] == "ERROR"
    assert line["error_code"] == code and line["operation"] == "PutItem" and line["retryable"] is True
    assert line["payment_id"] == "pay_001" and line["route"] == "/payments"
    assert line["request_id"] == "11111111-2222-3333-4444-555555555555"


def test_other_aws_error_is_a_generic_500(
    invoke: Invoke, clients: ClientCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")
    hook = raising("AccessDeniedException", "PutItem")
    clients.client("dynamodb", PRIMARY).meta.events.register("before-call.dynamodb.PutItem", hook)

    answer = invoke(post_event(VALID))

    assert answer.status == 500
    assert answer.body == {"error": "internal error"}
    assert "Retry-After" not in answer.headers
    [line] = api_log_lines(caplog.records)
    assert line["error_code"] == "AccessDeniedException"
    assert line["aws_message"] == "secret detail for AccessDeniedException"


def test_throttled_read_is_503(invoke: Invoke, clients: ClientCache) -> None:
    hook = raising("ThrottlingException", "GetItem")
    clients.client("dynamodb", PRIMARY).meta.events.register("before-call.dynamodb.GetItem", hook)

    answer = invoke(get_event("pay_001"))

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"


def test_retry_after_s3_slowdown_completes_the_payment(invoke: Invoke, clients: ClientCache) -> None:
    s3 = clients.client("s3", PRIMARY)
    hook = raising("SlowDown", "PutObject")
    s3.meta.events.register("before-call.s3.PutObject", hook)

    first = invoke(post_event(VALID))
    s3.meta.events.unregister("before-call.s3.PutObject", hook)
    second = invoke(post_event(VALID))

    assert first.status == 503
    assert item_exists("pay_001")  # the payment was recorded before S3 pushed back
    assert second.status == 200
    receipt = boto3.client("s3", region_name=PRIMARY).head_object(
        Bucket=BUCKET[PRIMARY], Key="receipts/pay_001.json"
    )
    assert receipt["ServerSideEncryption"] == "aws:kms"


def test_unreachable_endpoint_is_503(invoke: Invoke, clients: ClientCache) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    clients.client("dynamodb", PRIMARY).meta.events.register("before-call.dynamodb.GetItem", unreachable)

    answer = invoke(get_event("pay_001"))

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert "amazonaws" not in answer.body["error"]


@pytest.mark.parametrize(("amount", "status"), [(42.5, 200), (43, 409)])
def test_conflict_without_returned_item_reads_it_back(
    invoke: Invoke, clients: ClientCache, amount: float, status: int
) -> None:
    invoke(post_event(VALID))
    # A conditional failure that does not carry the old item: the payment is read back instead.
    hook = raising("ConditionalCheckFailedException", "PutItem")
    clients.client("dynamodb", PRIMARY).meta.events.register("before-call.dynamodb.PutItem", hook)

    answer = invoke(post_event({**VALID, "amount": amount}))

    assert answer.status == status


def test_unexpected_exception_is_logged_with_traceback_and_answered_500(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("bug in the payment code")

    monkeypatch.setattr(payments, "create_payment", broken)

    answer = invoke(post_event(VALID))

    assert answer.status == 500
    assert answer.body == {"error": "internal error"}
    [line] = api_log_lines(caplog.records)
    assert line["message"] == "unhandled error"
    assert line["error_type"] == "RuntimeError"
    assert "bug in the payment code" in line["traceback"]


def test_missing_table_setting_is_a_logged_500(
    invoke: Invoke, function_env: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="lambdas.api")
    function_env(TABLE_NAME=None)

    answer = invoke(post_event(VALID))

    assert answer.status == 500
    assert "TABLE_NAME" not in answer.body["error"]
    [line] = api_log_lines(caplog.records)
    assert "TABLE_NAME" in line["error"]


def test_importing_the_handler_makes_no_client() -> None:
    # In a fresh interpreter, with client creation made impossible, the import must still succeed.
    code = (
        "import boto3.session, botocore.session\n"
        "def refuse(*a, **k): raise AssertionError('client made at import time')\n"
        "boto3.session.Session.client = refuse\n"
        "botocore.session.Session.create_client = refuse\n"
        "import lambdas.api.handler as h\n"
        "assert h._CLIENTS is None\n"
    )
    repo = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
