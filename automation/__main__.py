"""``python -m automation <command>``: the operator's entry point.

plan      offline plan of both stacks (no Pulumi CLI, no AWS)
failover  break-glass failover runbook from a laptop (boto3 only)
failback  break-glass failback runbook
status    where the system stands (writer, lag, latch, switch, capacities, lock, journal), read-only
latch     the failover latch Route 53 follows: show | activate (declared failover) | release (failback)
drill     ``--local``: the real runbooks against a local AWS emulator, with a report; else a cloud drill
cloud     Automation API operations on real stacks: deploy, failover, failback, drill, destroy, preview
iam       least-privilege IAM policies: --for deploy | break-glass | boundary | operator
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "plan": ("automation.plan", "offline plan of both stacks: resources, failover diff, cost, RTO"),
    "failover": ("automation.runbook_cli", "run the failover runbook with boto3 (break-glass)"),
    "failback": ("automation.runbook_cli", "run the failback runbook with boto3"),
    "status": ("automation.status_cli", "where the system stands, read-only (--outputs FILE)"),
    "latch": ("automation.latch_cli", "the failover latch Route 53 follows: show | activate | release"),
    "drill": (
        "automation.drill",
        "--local: drill the runbooks against a local AWS emulator; else a cloud drill",
    ),
    "cloud": ("automation.cloud", "Automation API: deploy | failover | failback | drill | destroy | preview"),
    "iam": (
        "automation.iam",
        "least-privilege IAM policies: --for deploy | break-glass | boundary | operator",
    ),
}


def usage() -> str:
    lines = ["usage: python -m automation <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_mod, help_) in COMMANDS.items()]
    lines += ["", "python -m automation <command> --help for a command's options"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(
            f"error: unknown command {command!r}; commands: {', '.join(COMMANDS)}\n\n{usage()}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    # The runbook CLI serves both failover and failback, so it takes the command word too.
    return int(module.main(argv if command in ("failover", "failback") else rest))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
