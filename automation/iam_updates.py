"""The updates ``iam --for deploy`` is made for: the first ``pulumi up`` of both stacks and every later one
the README documents.

Review breakiam24, BI24-2: the deploy policy names alarms, roles, functions... by the names of the resources
in the stacks it synthesizes, and it synthesized the dr stack only as configured that day. The same deployer
later runs the documented updates (README, "Failing over", "Failing back", "Engine upgrades"), which create
what the first deploy did not: ``dr:failback replicate`` region A's lag alarm, ``dr:autoFailover`` the
EventBridge rule and its role. A policy without them is an implicit deny at the first resource of the update
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), in the middle
of a failback.

So the policy is made from the union of the stacks under each documented configuration
(:func:`deploy_syntheses`): the primary stack as configured, the dr stack as configured, and the dr stack
under each of :func:`documented_updates`, with the latch (and failback record) the documented procedure
leaves before it (``synth.procedure_latch``). What the README documents beyond these adds resources of
types and names these already have: the rds-replica re-seed at ``complete`` (region B's next generation,
an RDS instance in region B) and region A's application following the writer (the primary stack adopting
the failback instance, an RDS instance in region A); ``tests/automation/test_breakiam24.py`` checks both,
through the lifecycle harness, against the printed policy, and every ``dr:`` key of the schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from automation import synth


def _database(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``pilotlight:database`` object of parsed overrides merged over the stack file's."""
    merged = synth.merge_overrides(synth.load_stack_config("dr"), dict(values))
    raw = merged.get("pilotlight:database") or "{}"
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def documented_updates(overrides: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(what the README calls it, the dr stack's overrides for it) for each later update of the dr stack
    the README documents, over ``overrides`` (the environment's configuration).

    ``dr:autoFailover`` is on in the failover and in every failback phase: turning it on adds the
    EventBridge rule and its role and takes nothing away, and an operator may have it on through all of
    them; the standby update with it on is its own entry. ``dr:capacityPercent`` changes sizes only.
    """
    from components.config import FAILBACK_PHASES

    auto = {"dr:autoFailover": True}
    updates: list[tuple[str, dict[str, Any]]] = [
        ("dr:autoFailover true", {**overrides, **auto}),
        ("declared failover: dr:active true", {**overrides, **auto, "dr:active": True}),
    ]
    for phase in FAILBACK_PHASES:
        # README, "Failing back": dr:active stays true until complete, which returns region B to standby.
        active = phase != "complete"
        updates.append(
            (f"dr:failback {phase}", {**overrides, **auto, "dr:active": active, "dr:failback": phase})
        )
    database = _database(overrides)
    if database.get("mode") == "aurora-global" and not database.get("drInstances"):
        # README, "Engine upgrades (aurora-global)": a headless secondary gets an instance first.
        with_instance = {**database, "drInstances": 1}
        updates.append(
            ("engine upgrade: database.drInstances 1", {**overrides, "pilotlight:database": with_instance})
        )
    return updates


def deploy_syntheses(overrides: Mapping[str, Any]) -> list[synth.Synthesis]:
    """The stacks ``iam --for deploy`` is made from (see the module docstring): the primary stack under
    ``overrides`` (``dr:`` keys aside), the dr stack under ``overrides``, and the dr stack under each of
    :func:`documented_updates`."""
    shared = {k: v for k, v in overrides.items() if not k.startswith("dr:")}
    primary = synth.synthesize("primary", shared)
    configured = synth.synthesize_as_procedure("dr", dict(overrides), primary_outputs=primary.outputs)
    out = [primary, configured]
    for _label, values in documented_updates(overrides):
        out.append(synth.synthesize_as_procedure("dr", values, primary_outputs=primary.outputs))
    return out
