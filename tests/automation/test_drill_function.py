"""The drill's payments function gets the environment its stack declares, resolved against the emulator."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from automation import synth
from automation.drill_function import resolve_environment
from automation.drill_world import Deployment
from components.ledger_access import CA_BUNDLE_FUNCTION_PATH


def _deployment(network: Any) -> Deployment:
    """Only what resolve_environment reads: region A's identity, its secret, key and database."""
    region = "us-east-1"
    return cast(
        Deployment,
        SimpleNamespace(
            region_a=region,
            context={"primaryBucketName": "bucket-a"},
            secrets={region: f"arn:aws:secretsmanager:{region}:123456789012:secret:db-x"},
            kms_keys={region: f"arn:aws:kms:{region}:123456789012:key/k"},
            databases={region: f"arn:aws:rds:{region}:123456789012:db:pilotlight-db"},
            network=network,
        ),
    )


def _env() -> dict[str, str]:
    return {
        "DB_INSTANCE_ID": "pilotlight-db",
        "DB_HOST": synth.COMPUTED,
        "DB_SSLMODE": "verify-full",
        "DB_SSLROOTCERT": CA_BUNDLE_FUNCTION_PATH,
    }


def test_a_stack_with_a_ca_bundle_verifies_the_emulated_servers_against_the_emulators_ca() -> None:
    """With ``database.caBundle`` the stack's function reads AWS's bundle from /var/task, which this
    machine has not; the emulated servers are signed by the emulator's CA (its stand-in for AWS's),
    so the drill's function verifies (verify-full) against that one, and still verifies."""
    out = resolve_environment(
        _env(), _deployment(SimpleNamespace(ca_file="/tmp/emulator-rds-ca.pem")), "us-east-1"
    )

    assert out["DB_SSLROOTCERT"] == "/tmp/emulator-rds-ca.pem" and out["DB_SSLMODE"] == "verify-full", out


def test_a_ca_bundle_without_an_emulated_network_is_a_clear_error() -> None:
    """No emulated RDS network (no real servers): nothing to verify against, said in one message."""
    with pytest.raises(ValueError, match="DB_SSLROOTCERT: the drill has no emulated RDS network"):
        resolve_environment(_env(), _deployment(None), "us-east-1")
