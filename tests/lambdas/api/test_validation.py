"""Request validation and settings, without AWS."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.api.config import AuroraGlobalTarget, ConfigError, HealthSettings, RdsReplicaTarget
from lambdas.api.payments import MAX_AMOUNT, PaymentRequest, parse_json_body, validate_payment_request
from lambdas.api.responses import ApiError

two_places = st.decimals(min_value=Decimal("0.01"), max_value=MAX_AMOUNT, places=2)


@given(amount=two_places)
def test_amounts_with_two_places_are_kept_exactly(amount: Decimal) -> None:
    request = validate_payment_request(parse_json_body(f'{{"payment_id": "p", "amount": {amount}}}'))

    assert request == PaymentRequest(payment_id="p", amount=amount, currency="USD")


@given(amount=two_places, third=st.integers(min_value=1, max_value=9))
def test_amounts_with_a_third_place_are_refused(amount: Decimal, third: int) -> None:
    text = f'{{"payment_id": "p", "amount": {amount:.2f}{third}}}'

    with pytest.raises(ApiError) as caught:
        validate_payment_request(parse_json_body(text))

    assert caught.value.status == 400 and caught.value.field == "amount"


def test_trailing_zeros_are_not_extra_places() -> None:
    request = validate_payment_request(parse_json_body('{"payment_id": "p", "amount": 1.500}'))

    assert request.amount == Decimal("1.50")


BASE = {
    "AWS_REGION": "us-west-2",
    "TABLE_NAME": "t",
    "STACK_ROLE": "dr",
    "LATCH_PARAMETER": "/latch",
    "LATCH_REGION": "us-west-2",
}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param({"STACK_ROLE": ""}, "STACK_ROLE", id="role-missing"),
        pytest.param({"STACK_ROLE": "standby"}, "STACK_ROLE", id="role-unknown"),
        pytest.param({"DB_MODE": "mysql"}, "DB_MODE", id="mode-unknown"),
        pytest.param({"DB_MODE": "rds-replica"}, "DB_INSTANCE_ID", id="rds-without-instance"),
        pytest.param(
            {"DB_MODE": "aurora-global", "GLOBAL_CLUSTER_ID": "g"}, "DB_CLUSTER_ARN", id="aurora-no-arn"
        ),
        pytest.param(
            {"DB_MODE": "aurora-global", "DB_CLUSTER_ARN": "arn"}, "GLOBAL_CLUSTER_ID", id="aurora-no-id"
        ),
        pytest.param({"LATCH_REGION": " "}, "LATCH_REGION", id="latch-region-blank"),
        pytest.param({"AWS_REGION": ""}, "AWS_REGION", id="region-missing"),
    ],
)
def test_health_settings_errors_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        HealthSettings.from_env({**BASE, **env})


@pytest.mark.parametrize(
    ("env", "database"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"DB_MODE": "rds-replica", "DB_INSTANCE_ID": "db"}, RdsReplicaTarget("db"), id="rds"),
        pytest.param(
            {"DB_MODE": "aurora-global", "GLOBAL_CLUSTER_ID": "g", "DB_CLUSTER_ARN": "arn"},
            AuroraGlobalTarget("g", "arn"),
            id="aurora",
        ),
    ],
)
def test_health_settings_pick_the_database(env: dict[str, str], database: object) -> None:
    assert HealthSettings.from_env({**BASE, **env}).database == database
