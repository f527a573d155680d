"""Fixtures for the API function: moto, its table, bucket and latch in two regions, events, an invoker.

The primary region is us-east-1, the DR region us-west-2. Each region has its own copy of the table
and bucket (as a global table and a replicated bucket would), the latch lives in the DR region.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.api import handler as handler_module
from lambdas.api.clients import ClientCache
from tests.lambdas.api.support import BUCKET, DR, LATCH, PRIMARY, TABLE, Answer, FakeContext


@pytest.fixture
def aws() -> Iterator[None]:
    """Every AWS call in the test goes to moto."""
    with mock_aws():
        yield


@pytest.fixture
def clients(aws: None, monkeypatch: pytest.MonkeyPatch) -> ClientCache:
    """A fresh client cache for the handler, so no client (or event hook) leaks between tests."""
    cache = ClientCache()
    monkeypatch.setattr(handler_module, "_CLIENTS", cache)
    return cache


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set the function's environment as its stack would, for a role and a region; extra vars override."""

    def apply(role: str = "primary", region: str = PRIMARY, **extra: str | None) -> None:
        env: dict[str, str | None] = {
            "AWS_REGION": region,
            "TABLE_NAME": TABLE,
            "RECEIPTS_BUCKET": BUCKET[region],
            "STACK_ROLE": role,
            "LATCH_PARAMETER": LATCH,
            "LATCH_REGION": DR,
            "DB_MODE": None,
            "DB_INSTANCE_ID": None,
            "GLOBAL_CLUSTER_ID": None,
            "DB_CLUSTER_ARN": None,
            "DB_SECRET_ARN": None,
            "DB_NAME": None,
            "DB_HOST": None,
            "DB_PORT": None,
            "DB_SSLMODE": None,
            "DB_CA_BUNDLE": None,
            "RECEIPTS_KMS_KEY_ID": None,
            **extra,
        }
        for key, value in env.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)

    apply()
    return apply


@pytest.fixture
def stores(aws: None) -> None:
    """The table and the receipts bucket in both regions (versioned: tests count receipt writes)."""
    for region in (PRIMARY, DR):
        boto3.client("dynamodb", region_name=region).create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3", region_name=region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=BUCKET[region])
        else:
            s3.create_bucket(Bucket=BUCKET[region], CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_versioning(Bucket=BUCKET[region], VersioningConfiguration={"Status": "Enabled"})


@pytest.fixture
def set_latch(aws: None) -> Callable[[str], None]:
    """Write the latch in the DR region; the value is stored raw when it is not a known state."""

    def write(state: str) -> None:
        value = json.dumps({"state": state}) if state in ("active", "standby", "failing-over") else state
        boto3.client("ssm", region_name=DR).put_parameter(
            Name=LATCH, Value=value, Type="String", Overwrite=True
        )

    return write


@pytest.fixture
def invoke(
    clients: ClientCache, function_env: Callable[..., None], stores: None
) -> Callable[[dict[str, Any]], Answer]:
    """Call the real entry point (``lambdas.api.handler.handler``) and decode its answer."""

    def call(event: dict[str, Any]) -> Answer:
        response = handler_module.handler(event, FakeContext())
        assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
        assert response["headers"]["Content-Type"] == "application/json"
        return Answer(response["statusCode"], response["headers"], json.loads(response["body"]))

    return call
