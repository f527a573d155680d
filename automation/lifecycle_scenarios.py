"""The lifecycle scenarios: sequences of ``pulumi up``s, runbook runs and outages, per database mode.

Pure data (:mod:`automation.lifecycle` runs them). Each follows the README's documented procedure:
a declared failover is ``python -m automation latch activate`` (the runbook's promote step moves the
writer, in both modes: the program never promotes on a failover) then ``dr:active true``; IaC failback is ``dr:failback`` one phase at a time
(``python -m automation latch switch-writer`` before ``switch-writer``: Aurora's switchover,
rds-replica's zero-lag proof), with
``python -m automation latch release`` before ``route-back``, then ``complete`` with
``dr:active false``, then ``dr:failback`` is removed for the routine update and the primary stack is
updated last (``automation.cloud.failback``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automation.lifecycle import RegionA, Runbook, Step, Up
from components.config import DATABASE_MODES, FAILBACK_PHASES

MODES = DATABASE_MODES
PRIMARY_FOLLOWS_WRITER = "region A's application follows the writer: pulumi up -s primary"
LATCH_SWITCH_WRITER = {
    "aurora-global": "Aurora: python -m automation latch switch-writer",
    "rds-replica": "zero lag after the drain: python -m automation latch switch-writer",
}


def _db(mode: str, **extra: Any) -> dict[str, Any]:
    return {"pilotlight:database": {"mode": mode, **extra}}


def deploy(mode: str) -> list[Step]:
    return [
        Up("primary", "deploy: pulumi up -s primary", _db(mode)),
        Up("dr", "deploy: pulumi up -s dr", _db(mode)),
    ]


def declared_failover(mode: str) -> list[Step]:
    return [
        # pulumi up never writes the latch, and Route 53 follows only the latch: traffic moves first
        # (the runbook's promote step moves the writer after the switch, in both modes: break34 B34-5).
        Runbook("activate", "latch activate: python -m automation latch activate"),
        Up("dr", "declared failover: dr:active true", {"dr:active": True}),
    ]


def runbook_failover() -> list[Step]:
    return [
        RegionA(False, "region A fails"),
        Runbook("failover", "automated failover: the runbook (promote, scale, switch, latch)"),
        RegionA(True, "region A recovers"),
    ]


def iac_failback(mode: str) -> list[Step]:
    steps: list[Step] = []
    for phase in FAILBACK_PHASES[:-1]:
        if phase == "switch-writer":
            # Aurora: the program cannot move the writer; the runbook's switch_writer step does.
            # rds-replica: the update promotes region A's replica once this proved zero lag after the drain.
            steps.append(Runbook("switch-writer", LATCH_SWITCH_WRITER[mode]))
        if phase == "route-back":
            # pulumi up never writes the latch: route-back runs once it is released (README, "Failing back").
            steps.append(Runbook("release", "latch release: python -m automation latch release"))
        steps.append(Up("dr", f"IaC failback phase {phase}", {"dr:active": True, "dr:failback": phase}))
        if phase == "switch-writer" and mode == "rds-replica":
            # Region A's writer is now the promoted failback instance: the primary stack adopts it and
            # region A's application follows it before traffic goes back (README, "Failing back").
            steps.append(Up("primary", PRIMARY_FOLLOWS_WRITER))
    steps += [
        Up("dr", "IaC failback phase complete", {"dr:active": False, "dr:failback": "complete"}),
        Up("dr", "routine update: dr:failback removed", rm=("dr:failback",)),
        Up("primary", "routine update of the primary stack"),
    ]
    return steps


def runbook_failback() -> list[Step]:
    return [
        Runbook(
            "failback", "runbook failback (replicate, drain, switch writer, release switch, clear latch)"
        ),
        Up("dr", "routine update: dr:active false", {"dr:active": False}),
        # Region A's writer is the replica the runbook created under <primary> (rename to replace):
        # the primary stack's next update adopts it from its failback-stamp tag (B13-8).
        Up("primary", "routine update of the primary stack"),
    ]


def upgrade(mode: str, *, headless: bool = False) -> list[Step]:
    """An engine minor-version upgrade; for Aurora, with an instance in region B first unless ``headless``."""
    # Within the deployed major version (PostgreSQL 16; rds-replica deploys "16", Aurora "16.4"): for
    # rds-replica, region A's instance ignores engineVersion after it is created (RDS's auto minor upgrade
    # owns the minor, README "Engine versions"), so the step must plan no engine change (B13b-4).
    new = "16.6"
    steps = deploy(mode)
    if mode == "aurora-global" and not headless:
        steps.append(
            Up(
                "dr",
                "give the secondary an instance (AWS: a headless secondary cannot be upgraded)",
                _db(mode, drInstances=1),
            )
        )
    steps.append(Up("primary", f"minor upgrade: engineVersion {new}", _db(mode, engineVersion=new)))
    extra = {} if headless or mode != "aurora-global" else {"drInstances": 1}
    steps.append(
        Up("dr", "routine update of the dr stack after the upgrade", _db(mode, engineVersion=new, **extra))
    )
    if mode == "aurora-global" and not headless:
        steps.append(Up("dr", "secondary back to headless", _db(mode, engineVersion=new, drInstances=0)))
    return steps


def shrink_while_failed_over(mode: str) -> list[Step]:
    """Aurora with an instance in region B, failed over: ``drInstances`` back to 0 would delete the writer
    cluster's last instance (AWS refuses it; the dr stack refuses the update first, B13b-8)."""
    one = {"drInstances": 1} if mode == "aurora-global" else {}
    return [
        Up("primary", "deploy: pulumi up -s primary", _db(mode, **one)),
        Up("dr", "deploy: pulumi up -s dr (an instance in region B)", _db(mode, **one)),
        *runbook_failover(),
        Up("dr", "failed over: dr:active true", {"dr:active": True}),
        Up(
            "dr",
            "drInstances back to 0 while failed over"
            + (
                " (refused: region B's cluster holds the writer)"
                if one
                else " (no Aurora instances: no change)"
            ),
            {"dr:active": True, **_db(mode, drInstances=0)},
        ),
    ]


SCENARIOS: dict[str, tuple[str, Callable[[str], list[Step]]]] = {
    "declared-iac": (
        "deploy -> declared failover -> IaC failback phases -> routine updates",
        lambda m: [*deploy(m), *declared_failover(m), *iac_failback(m)],
    ),
    "runbook-iac": (
        "deploy -> region A fails -> runbook failover -> region A back -> IaC failback phases -> routine updates",
        lambda m: [*deploy(m), *runbook_failover(), *iac_failback(m)],
    ),
    "declared-runbook": (
        "deploy -> declared failover -> runbook failback -> routine update",
        lambda m: [*deploy(m), *declared_failover(m), *runbook_failback()],
    ),
    "runbook-runbook": (
        "deploy -> region A fails -> runbook failover -> region A back -> runbook failback -> routine update",
        lambda m: [*deploy(m), *runbook_failover(), *runbook_failback()],
    ),
    "twice": (
        "deploy -> declared failover and IaC failback, twice",
        lambda m: [
            *deploy(m),
            *declared_failover(m),
            *iac_failback(m),
            *declared_failover(m),
            *iac_failback(m),
        ],
    ),
    "upgrade": (
        "deploy -> engine minor-version upgrade of the database (Aurora: an instance in B first)",
        lambda m: upgrade(m),
    ),
    "shrink-failed-over": (
        "deploy (Aurora: an instance in B) -> runbook failover -> drInstances 0 while region B holds the writer",
        shrink_while_failed_over,
    ),
    "upgrade-headless": (
        "deploy -> engine minor-version upgrade with a headless Aurora secondary",
        lambda m: upgrade(m, headless=True),
    ),
}


def steps_for(scenario: str, mode: str) -> list[Step]:
    """The steps of ``scenario`` in database ``mode``; ValueError names the allowed values."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown lifecycle scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
    if mode not in MODES:
        raise ValueError(f"unknown database mode {mode!r}; modes: {', '.join(MODES)}")
    return SCENARIOS[scenario][1](mode)
