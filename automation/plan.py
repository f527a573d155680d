"""``python -m automation plan``: both stacks offline, grouped by region and component.

Runs the real program under Pulumi's mocks (:mod:`automation.synth`): no Pulumi CLI, no AWS
account. Prints each stack's resources per region and component, what ``dr:active=true`` changes
compared with standby, the monthly cost estimate and the RTO budget, and how long synthesis took.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from automation import synth
from automation.synth import Resource, Synthesis

# Inputs shown next to a resource in the tree: the ones a reviewer checks first.
KEY_INPUTS = (
    "cidrBlock", "availabilityZone", "vpcEndpointType", "serviceName", "minSize", "desiredCapacity", "maxSize",
    "instanceType", "instanceClass", "engine", "engineVersion", "replicateSourceDb", "globalClusterIdentifier",
    "reservedConcurrentExecutions", "enabled", "failoverRoutingPolicies", "ttl", "type", "threshold",
    "treatMissingData", "enableKeyRotation", "billingMode", "storageEncrypted", "multiAz", "name",
)  # fmt: skip
# Inputs that differ between any two syntheses because they are hashes of the build, not config.
VOLATILE_INPUTS = ("code", "sourceCodeHash", "__defaults")


def short_type(type_: str) -> str:
    """``aws:ec2/vpc:Vpc`` → ``ec2.Vpc``."""
    if ":" not in type_:
        return type_
    pkg, mod, name = [*type_.split(":"), "", ""][:3]
    return f"{mod.split('/')[0]}.{name}" if pkg == "aws" else type_


def _summary(r: Resource, width: int = 100) -> str:
    parts = []
    for key in KEY_INPUTS:
        if key in r.inputs and r.inputs[key] not in (None, [], {}):
            parts.append(f"{key}={synth.show(r.inputs[key])}")
    opts = [
        o
        for o, on in (("protect", r.protect), (f"ignore_changes={r.ignore_changes}", bool(r.ignore_changes)))
        if on
    ]
    text = "  ".join(parts + opts)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_tree(s: Synthesis) -> str:
    """Resources grouped by region, then by component, each with its key inputs."""
    groups: dict[str, dict[str, list[Resource]]] = defaultdict(lambda: defaultdict(list))
    for r in s.resources:
        if not r.custom or r.is_provider or r.type.startswith("pulumi:"):
            continue
        groups[r.region or "(no provider)"][r.component or "(stack)"].append(r)
    lines = []
    for region in sorted(groups):
        count = sum(len(v) for v in groups[region].values())
        lines.append(f"  {region}  ({count} resources)")
        for comp in sorted(groups[region]):
            lines.append(f"    {comp}")
            for r in sorted(groups[region][comp], key=lambda x: (x.type, x.name)):
                lines.append(f"      {short_type(r.type):<34} {r.name:<44} {_summary(r)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# diff


@dataclass
class Change:
    """One resource's difference between two syntheses."""

    name: str
    type: str
    region: str | None
    kind: str  # added | removed | changed
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def diff(before: Synthesis, after: Synthesis) -> list[Change]:
    """What differs between two syntheses of a stack, by resource name: inputs and options."""
    # Keyed by (type, name): Pulumi allows one name for resources of different types.
    a = {(r.type, r.name): r for r in before.resources if r.custom}
    b = {(r.type, r.name): r for r in after.resources if r.custom}
    out: list[Change] = []
    for key in sorted(a.keys() - b.keys()):
        out.append(Change(key[1], key[0], a[key].region, "removed"))
    for key in sorted(b.keys() - a.keys()):
        out.append(Change(key[1], key[0], b[key].region, "added"))
    for key in sorted(a.keys() & b.keys(), key=lambda k: (k[1], k[0])):
        name = key[1]
        ra, rb = a[key], b[key]
        fields: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(ra.inputs) | set(rb.inputs)):
            if key in VOLATILE_INPUTS:
                continue
            if ra.inputs.get(key) != rb.inputs.get(key):
                fields[key] = (ra.inputs.get(key), rb.inputs.get(key))
        for opt in ("protect", "ignore_changes", "parent", "region"):
            va, vb = getattr(ra, opt), getattr(rb, opt)
            if va != vb:
                fields[f"<{opt}>"] = (va, vb)
        if fields:
            out.append(Change(name, ra.type, ra.region, "changed", fields))
    return out


def render_diff(changes: Iterable[Change]) -> str:
    lines = []
    for c in changes:
        mark = {"added": "+", "removed": "-", "changed": "~"}[c.kind]
        lines.append(f"  {mark} {short_type(c.type):<34} {c.name}  [{c.region}]")
        for key, (old, new) in c.fields.items():
            lines.append(f"        {key}: {synth.show(old)} -> {synth.show(new)}")
    return "\n".join(lines) if lines else "  (no changes)"


# --------------------------------------------------------------------------------------------------
# report sections from other modules (cost, RTO); each is optional so the plan works as they land


Section = Callable[[dict[str, Synthesis]], tuple[str, dict[str, Any]]]
SECTIONS: list[Section] = []


def _sections() -> list[Section]:
    # Cost and RTO sections live in their own module; the plan works without it.
    try:
        plan_report = importlib.import_module("automation.plan_report")
    except ModuleNotFoundError:
        return list(SECTIONS)
    return [*SECTIONS, *plan_report.sections()]


# --------------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m automation plan",
        description="Synthesize the stacks offline (Pulumi mocks: no Pulumi CLI, no AWS) and show the plan.",
    )
    parser.add_argument("--stack", action="append", help="stack to plan (repeatable); default: all stacks")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="config override for the planned stack(s), e.g. dr:active=true or database.mode=rds-replica",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--no-diff", action="store_true", help="skip the failover diff of the dr stack")
    parser.add_argument(
        "--lifecycle", metavar="SCENARIO",
        help="plan each update of a lifecycle scenario against the state the previous ones left "
        "(database mode from --set database.mode=...); scenarios: " + ", ".join(_scenario_names()),
    )  # fmt: skip
    return parser


def _scenario_names() -> list[str]:
    from automation.lifecycle_scenarios import SCENARIOS

    return list(SCENARIOS)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from components.config import ConfigError
    from components.failover import FailoverRefused
    from components.wiring import StackWiringError

    if args.lifecycle is not None:
        return _lifecycle(args.lifecycle, args.overrides)
    known = synth.stack_names()
    stacks = args.stack or known
    for s in stacks:
        if s not in known:
            print(f"error: --stack {s!r} does not exist; stacks: {', '.join(known)}", file=sys.stderr)
            return 2
    try:
        overrides = synth.parse_overrides(args.overrides)
        shared = {k: v for k, v in overrides.items() if not k.startswith("dr:")}
        results: dict[str, Synthesis] = {}
        # Primary first: the dr stack is synthesized against the primary's outputs.
        for s in sorted(stacks, key=lambda n: n != "primary"):
            primary = results["primary"].outputs if "primary" in results else None
            # Offline, the latch is the one the documented procedure leaves (synth.procedure_latch).
            results[s] = synth.synthesize(
                s,
                overrides,
                latch=synth.procedure_latch(overrides),
                primary_outputs=primary,
                primary_overrides=shared,
            )
        failover: dict[str, Any] | None = None
        if "dr" in results and not args.no_diff:
            failover = _failover_diff(results["dr"], overrides, shared)
    except (synth.SynthError, ConfigError, FailoverRefused, StackWiringError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    sections = [(fn.__name__, *fn(results)) for fn in _sections()]
    if args.json:
        doc = {
            "stacks": {
                name: {
                    "synthesis_seconds": round(s.seconds, 3),
                    "outputs": synth.mask(s.outputs),
                    "resources": [_resource_json(r) for r in s.resources if r.custom],
                }
                for name, s in results.items()
            },
            "failover_diff": failover,
            **{name: data for name, _text, data in sections},
        }
        print(json.dumps(doc, indent=2, default=str))
        return 0

    total = 0.0
    for name, s in results.items():
        n = len([r for r in s.resources if r.custom and not r.is_provider])
        print(f"\n== stack {name}: {n} resources, synthesized in {s.seconds:.2f} s ==")
        print(render_tree(s))
        total += s.seconds
    if failover is not None:
        print(f"\n== failover diff: {failover['from']} -> {failover['to']} (dr stack) ==")
        print(failover["text"])
    for _name, text, _data in sections:
        print(f"\n{text}")
    print(
        f"\nsynthesis time: {total:.2f} s for {len(results)} stack(s)  (offline: Pulumi mocks, no AWS calls)"
    )
    return 0


def _failover_diff(current: Synthesis, overrides: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Standby vs active, or, when ``--set dr:active=true`` was given, standby vs what was planned."""
    active = str(overrides.get("dr:active", "")).lower() == "true"
    if active:
        base = {k: v for k, v in overrides.items() if k != "dr:active" and k != "dr:failback"}
        before = synth.synthesize("dr", {**base, "dr:active": False}, primary_overrides=shared)
        after, labels = current, ("dr:active=false", "dr:active=true")
    else:
        active_overrides = {**overrides, "dr:active": True}
        after = synth.synthesize(
            "dr", active_overrides, latch=synth.procedure_latch(active_overrides), primary_overrides=shared
        )
        before, labels = current, ("dr:active=false (current)", "dr:active=true")
    changes = diff(before, after)
    return {
        "from": labels[0],
        "to": labels[1],
        "text": render_diff(changes),
        "changes": [
            {
                "name": c.name,
                "type": c.type,
                "region": c.region,
                "kind": c.kind,
                "fields": synth.mask({k: list(v) for k, v in c.fields.items()}),
            }
            for c in changes
        ],
    }


def _lifecycle(scenario: str, pairs: list[str]) -> int:
    """``--lifecycle``: run a scenario through the state-carrying harness and print each step's plan."""
    from automation import lifecycle
    from automation.lifecycle_scenarios import SCENARIOS, steps_for
    from components.config import ConfigError

    if scenario not in SCENARIOS:
        print(
            f"error: --lifecycle {scenario!r} is not a scenario; scenarios: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    try:
        overrides = synth.parse_overrides(pairs)
        mode = (overrides.get("pilotlight:database") or {}).get("mode") or json.loads(
            synth.load_stack_config("dr").get("pilotlight:database", "{}")
        ).get("mode", "aurora-global")
        steps = steps_for(scenario, str(mode))
        lc = lifecycle.Lifecycle()
        lc.run(steps)
    except (synth.SynthError, ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"lifecycle {scenario} ({mode}): {SCENARIOS[scenario][0]}")
    print(lifecycle.render(lc.results))
    final = lifecycle.final_violations(lc)
    print("\n== end of scenario ==")
    if lc.stopped:
        print(f"  stopped after step {len(lc.results)}: the update failed; {lc.stopped} step(s) not run")
    for v in final:
        print(f"  {v}")
    if not final:
        print("  protected again: traffic in region A with the writer, a replica in region B, latch standby")
    steps_with = sum(1 for r in lc.results if r.violations)
    print(
        f"  {steps_with} of {len(lc.results)} step(s) broke an invariant (offline: Pulumi mocks, no AWS calls)"
    )
    return 0


def _resource_json(r: Resource) -> dict[str, Any]:
    return {
        "type": r.type,
        "name": r.name,
        "region": r.region,
        "component": r.component,
        "protect": r.protect,
        "ignore_changes": r.ignore_changes,
        "inputs": synth.mask(r.inputs),
    }


if __name__ == "__main__":
    raise SystemExit(main())
