"""The adversarial review of issue 12 ("deployable for real"), its findings as tests (branch break12).

Probes: configurations the config accepts that a real ``pulumi up`` refuses or confuses.

Each probe passes once its finding is fixed; a finding still open is a strict expected failure
naming it.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from automation import synth
from components import config, naming, storage


def _cfg(stack: str = "primary", **overrides: Any) -> config.StackConfig:
    values = synth.merge_overrides(synth.load_stack_config(stack), overrides)
    return config.parse(values, stack=stack)


def _accepted(**overrides: Any) -> config.StackConfig | None:
    try:
        return _cfg(**overrides)
    except config.ConfigError:
        return None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # A trailing hyphen in the environment is accepted, and physical_name strips it.
        ({"pilotlight:environment": "prod"}, {"pilotlight:environment": "prod-"}),
        # A doubled hyphen is accepted, and physical_name collapses it.
        ({"pilotlight:environment": "eu-prod"}, {"pilotlight:environment": "eu--prod"}),
        # The app/env boundary is not part of the name: app "shop-eu" env "prod" vs app "shop" env "eu-prod".
        (
            {"pilotlight:appName": "shop-eu", "pilotlight:environment": "prod"},
            {"pilotlight:appName": "shop", "pilotlight:environment": "eu-prod"},
        ),
    ],
)
def test_two_accepted_deployments_never_share_a_physical_name(a: dict[str, Any], b: dict[str, Any]) -> None:
    ca, cb = _accepted(**a), _accepted(**b)
    if ca is None or cb is None:
        return  # the config keeps them apart by refusing one: fine
    assert (ca.app_name, ca.environment) != (cb.app_name, cb.environment)
    fn = naming.limit_of("aws:lambda/function:Function", "name")
    # The payments function, log group, SNS topic, DynamoDB table, backup vault... all start like this.
    assert naming.physical_name(ca.prefix, "payments", limit=fn) != naming.physical_name(
        cb.prefix, "payments", limit=fn
    ), f"{a} and {b} are both accepted and name their resources alike"


@pytest.mark.parametrize("app", ["xn--shop", "sthree-shop", "amzn-s3-demo-shop"])
def test_an_accepted_app_name_gives_a_valid_bucket_name(app: str) -> None:
    """S3: names must not start with xn--, sthree-, amzn-s3-demo-
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)."""
    cfg = _accepted(**{"pilotlight:appName": app})
    if cfg is None:
        return
    prefix = storage.bucket_prefix(cfg.prefix, cfg.primary_region)
    assert not prefix.startswith(("xn--", "sthree-", "amzn-s3-demo-")), (
        f"appName {app!r} is accepted but CreateBucket refuses {prefix}…"
    )


@pytest.mark.parametrize("app", ["awsome-shop", "ssmart-pay"])
def test_an_accepted_app_name_gives_a_latch_parameter_ssm_accepts(app: str) -> None:
    """PutParameter: "A parameter name can't be prefixed with aws or ssm (case-insensitive)"
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
    moto reproduces the service's check and message."""
    cfg = _accepted(**{"pilotlight:appName": app})
    if cfg is None:
        return
    from moto import mock_aws

    with mock_aws():
        ssm = boto3.client("ssm", region_name=cfg.dr_region)
        try:
            ssm.put_parameter(Name=cfg.latch_parameter_name, Value='{"state":"standby"}', Type="String")
        except ClientError as exc:
            pytest.fail(
                f"appName {app!r} is accepted but the latch {cfg.latch_parameter_name} is refused: {exc}"
            )
