"""``python -m automation status --outputs FILE``: where the system stands, read-only, boto3 only.

Prints the writer's region and each database's role, the replica lag (latest datapoint and its
age), the latch, the failover switch, both web tiers' capacities, the functions' concurrency and
event sources, the runbook lock (read as lambdas/failover/lock.py writes it) and the last run's journal
(``lambdas.failover.observe``). A region that does not answer is printed as such, not raised.

Exit status: 0 printed (even when a region did not answer: the report says so); 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from automation.runbook_cli import (
    EXIT_BAD_INPUT,
    EXIT_DONE,
    InputError,
    _fail,
    add_deployment_arguments,
    connect,
)
from lambdas.failover.context import ContextError
from lambdas.failover.observe import format_status, observe


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m automation status",
        description="Where the pilot-light deployment stands, read from AWS (read-only).",
        epilog="Exit status: 0 printed, 2 bad input.",
    )
    add_deployment_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m automation status [options]``; returns the exit status."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return EXIT_DONE if exc.code == 0 else EXIT_BAD_INPUT
    try:
        ctx, clients = connect(args)
    except (InputError, ContextError) as exc:
        return _fail(exc)
    print(format_status(observe(ctx, clients)))
    return EXIT_DONE


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
