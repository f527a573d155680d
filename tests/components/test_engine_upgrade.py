"""components/engine_upgrade.py, tested directly: what AWS refuses of a global database's upgrade."""

from __future__ import annotations

import pytest

from components.config import ConfigError
from components.engine_upgrade import (
    EngineUpgradeRefused,
    SecondaryCluster,
    is_minor_upgrade,
    refuse_headless_upgrade,
)


def secondary(version: str = "16.4", *instances: str) -> SecondaryCluster:
    return SecondaryCluster("app-prod-us-west-2-aurora", "us-west-2", version, instances)


@pytest.mark.parametrize(
    ("current", "wanted", "minor"),
    [
        ("16.4", "16.6", True),
        ("16.6", "16.4", True),  # a change within the major version: AWS refuses the headless member too
        ("16.4", "16.4", False),
        ("15.8", "16.4", False),  # major: another procedure, not this rule
        ("8.0.mysql_aurora.3.05.2", "8.0.mysql_aurora.3.08.0", True),
        ("5.7.mysql_aurora.2.12.1", "8.0.mysql_aurora.3.05.2", False),
    ],
)
def test_a_minor_upgrade_is_a_change_within_one_major_version(current: str, wanted: str, minor: bool) -> None:
    assert is_minor_upgrade(current, wanted) is minor


def test_a_minor_upgrade_with_a_headless_secondary_is_refused_naming_the_key_and_the_remedy() -> None:
    """AWS: a secondary cluster needs at least one DB instance for a minor upgrade
    (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-upgrade.html)."""
    with pytest.raises(EngineUpgradeRefused) as err:
        refuse_headless_upgrade("16.6", secondary("16.4"))
    text = str(err.value)
    assert isinstance(err.value, ConfigError)
    assert text.startswith("pilotlight:database.engineVersion: 16.4 -> 16.6 is refused"), text
    assert "app-prod-us-west-2-aurora" in text and "drInstances to 1 (allowed 0..3)" in text, text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("wanted", "live"),
    [
        ("16.6", secondary("16.4", "app-prod-us-west-2-aurora-1")),  # an instance: AWS upgrades it first
        ("16.6", secondary("16.4", "app-prod-us-west-2-aurora-failover-1")),  # the runbook's instance
        ("16.4", secondary("16.4")),  # no upgrade: a headless secondary is the cheap pilot light
        ("16.6", secondary("16.6")),  # already upgraded (the dr stack's update after the upgrade)
        ("16.6", None),  # no secondary yet: the dr stack is not deployed
    ],
)
def test_everything_else_is_not_refused(wanted: str, live: SecondaryCluster | None) -> None:
    refuse_headless_upgrade(wanted, live)
