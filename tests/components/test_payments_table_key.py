"""Deployable: the payments function may use the key of the table replica in its own region.

The global table's replicas are encrypted with customer-managed keys (components/storage.py): region A's
with the primary stack's key, region B's with the primary stack's *replica* key, not the dr stack's own.
DynamoDB uses the table's key on behalf of the caller of each item call, so the caller must be allowed to
use it through DynamoDB (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-authz).
Before this test the region B payments role could use only the dr stack's key (its receipts bucket's): in
region A the two keys are one, so nothing showed, and once region B served every PutItem of a payment would
have failed with a KMS AccessDenied (found by the fix10b helper, break34 work).
"""

from __future__ import annotations

import json

import pytest

from tests.automation.test_review_iam import allows
from tests.components.conftest import synthesize

REGIONS = {"primary": "us-east-1", "dr": "us-west-2"}


def _payments_policy(stack: str) -> dict:
    s = synthesize(stack, {})
    (doc,) = [
        json.loads(r.inputs["policy"])
        for r in s.by_type("aws:iam/rolePolicy:RolePolicy")
        if any(st.get("Sid") == "Payments" for st in json.loads(r.inputs["policy"])["Statement"])
    ]
    return doc


@pytest.mark.parametrize("stack", ["primary", "dr"])
def test_the_payments_role_may_use_its_region_s_table_key_through_dynamodb(stack: str) -> None:
    primary = synthesize("primary", {})
    (table,) = [t for t in primary.by_type("aws:dynamodb/table:Table") if t.inputs.get("replicas")]
    key = (
        table.inputs["serverSideEncryption"]["kmsKeyArn"]
        if stack == "primary"
        else table.inputs["replicas"][0]["kmsKeyArn"]
    )
    region = REGIONS[stack]
    doc = _payments_policy(stack)
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"):
        assert allows((doc,), action, key, kms_ViaService=f"dynamodb.{region}.amazonaws.com"), (action, key)
