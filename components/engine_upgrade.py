"""Engine upgrades of the Aurora global database: what AWS refuses, decided before any resource. Pure Python.

The engine version lives on the global cluster only (components/primary_data.py): raising
``database.engineVersion`` on the primary stack upgrades every member cluster, the secondaries first.
AWS refuses a minor upgrade of a secondary cluster that has no DB instance ("headless": the dr stack's
``database.drInstances: 0``, the cheapest pilot light): for a minor upgrade of an Aurora global
database, the secondary clusters must have at least one DB instance
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-upgrade.html,
"Minor version upgrades"). The provider's global-cluster upgrade then fails with
InvalidDBClusterStateFault "Cannot modify engine version without a primary instance in DB cluster",
which it does not retry (hashicorp/terraform-provider-aws, internal/service/rds/global_cluster.go,
``globalClusterUpgradeMinorEngineVersion``), part-way through an update whose other changes were
applied. :func:`refuse_headless_upgrade` refuses such an update before any resource is registered,
from region B's secondary as AWS has it now (``components.program`` reads it live).

The same live read serves the dr stack failed over: :func:`refuse_headless_writer` refuses a
``database.drInstances`` that would delete every instance of region B's cluster while it holds the writer
(the README's "set drInstances back" after an upgrade, run mid-failover; break13b B13b-8).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config import ConfigError

ENGINE_VERSION_KEY = "pilotlight:database.engineVersion"


class EngineUpgradeRefused(ConfigError):
    """``database.engineVersion`` asks for an upgrade AWS refuses in the live state (a headless secondary).

    A :class:`ConfigError` (the key is the problem, and every caller that reports a bad config reports
    it), whose message is one line.
    """

    def __init__(self, problem: str) -> None:
        super().__init__([problem])
        self.args = (problem,)


@dataclass(frozen=True)
class SecondaryCluster:
    """Region B's secondary cluster of the global database, as AWS has it (a live read)."""

    identifier: str
    region: str
    engine_version: str
    instances: tuple[str, ...]

    @property
    def headless(self) -> bool:
        return not self.instances


def is_minor_upgrade(current: str, wanted: str) -> bool:
    """Whether ``current`` -> ``wanted`` changes the version within one major version.

    Aurora PostgreSQL names its major version first ("16.4" -> "16.6"), as Aurora MySQL names the
    MySQL version ("8.0.mysql_aurora.3.05.2"); a major upgrade is a different procedure
    (aurora-global-database-upgrade.html, "Major version upgrades") the program does not run.
    """
    return current != wanted and current.split(".", 1)[0] == wanted.split(".", 1)[0]


def refuse_headless_upgrade(wanted: str, secondary: SecondaryCluster | None) -> None:
    """Raise :class:`EngineUpgradeRefused` when ``wanted`` is a minor upgrade and region B's secondary
    has no DB instance. None: no secondary yet (the dr stack not deployed): nothing to refuse."""
    if secondary is None or not secondary.headless or not is_minor_upgrade(secondary.engine_version, wanted):
        return
    raise EngineUpgradeRefused(
        f"{ENGINE_VERSION_KEY}: {secondary.engine_version} -> {wanted} is refused: region B's secondary "
        f"cluster {secondary.identifier} ({secondary.region}) has no DB instance, and AWS cannot minor-upgrade "
        "a secondary without one (the global cluster's upgrade would stop part-way with 'Cannot modify "
        "engine version without a primary instance in DB cluster'). Nothing was changed. Give it an "
        "instance first: on the dr stack set pilotlight:database.drInstances to 1 (allowed 0..3) and run "
        "`pulumi up -s dr`; then run this upgrade again, update the dr stack, and set drInstances back to "
        '0 (README, "Engine upgrades (aurora-global)"). Or keep engineVersion at '
        f"{secondary.engine_version}."
    )


DR_INSTANCES_KEY = "pilotlight:database.drInstances"


class HeadlessWriterRefused(ConfigError):
    """``database.drInstances`` would delete every instance of region B's cluster while it holds the writer.

    A :class:`ConfigError` (the key is the problem), whose message is one line.
    """

    def __init__(self, problem: str) -> None:
        super().__init__([problem])
        self.args = (problem,)


def refuse_headless_writer(
    dr_instances: int,
    program_instances: tuple[str, ...],
    secondary: SecondaryCluster | None,
    *,
    failed_over: bool,
) -> None:
    """Raise :class:`HeadlessWriterRefused` when, failed over (the latch active: region B's cluster is, or may
    still be, the global database's writer), ``drInstances`` would delete every DB instance region B's
    cluster has now (break13b B13b-8).

    ``program_instances``: the identifiers of the program's own instances ``0..drInstances-1`` (those kept);
    every other live member not a runbook's writer (``is_failover_instance``, adopted and kept whatever
    ``drInstances`` says) is deleted by the update. AWS refuses deleting the last instance of a global
    database's writer cluster ("Cannot delete the last instance of the master cluster. Delete the replica
    cluster before deleting the last master cluster instance": hashicorp/terraform-provider-aws#26234), part
    way through an update; and a cluster without an instance serves nothing ("the cluster volume ... is
    accessible through the DB instances": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/
    Aurora.Overview.html): region B's writer would stop taking writes mid-failover.
    """
    from lambdas.failover.names import is_failover_instance

    if not failed_over or secondary is None or not secondary.instances:
        return
    kept = [
        m
        for m in secondary.instances
        if m in program_instances or is_failover_instance(secondary.identifier, m)
    ]
    if kept:
        return
    raise HeadlessWriterRefused(
        f"{DR_INSTANCES_KEY}: {dr_instances} is refused while failed over: it would delete "
        f"{', '.join(secondary.instances)}, every DB instance of region B's cluster {secondary.identifier} "
        f"({secondary.region}), which holds (or may still hold) the global database's writer; AWS refuses "
        "deleting the writer cluster's last instance ('Cannot delete the last instance of the master cluster') "
        "and without one region B takes no writes. Nothing was changed. Keep drInstances at "
        f"{len(secondary.instances)} until the failback is complete (latch standby), then lower it."
    )
