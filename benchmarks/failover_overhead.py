"""Orchestration overhead of the failover runbook: a full failover against in-process moto.

Every AWS call is answered at once by moto and waiters poll with no delay, so what is measured is
the runbook's own cost on the critical path: building clients (as the CLI does, from a fresh
boto3 session), botocore request handling, the steps' read-before-write calls, the executor's
layers and threads. Real AWS adds its own latencies (an RDS promotion takes minutes) on top.

Each run fails over a freshly built pilot-light deployment (the tests' world), forced (no health
probe wait). Prints per-step and total wall time, median and max over N runs. Target: total < 2 s.

    .venv/bin/python benchmarks/failover_overhead.py [--runs 5] [--mode rds-replica|aurora-global]

Not a test: it prints the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_SECONDS = 2.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (it reports, it does not judge)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=["rds-replica", "aurora-global"], default="rds-replica")
    args = parser.parse_args(argv)

    # Throwaway credentials: moto needs some, and no real account must ever be reached.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[key] = "benchmark"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_PROFILE", None)

    import boto3
    from moto import mock_aws

    from automation.emulator import patch_moto
    from lambdas.failover import executor
    from lambdas.failover.clients import Clients
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.graph import FAILOVER
    from tests.lambdas.failover.harness import HealthServer, new_session
    from tests.lambdas.failover.world import build_world

    params = {"force": True, "reason": "benchmark", "waiterDelay": 0, "waiterMaxAttempts": 5}
    per_step: dict[str, list[float]] = {name: [] for name in FAILOVER.names()}
    totals: list[float] = []
    health = HealthServer()
    undo = patch_moto()
    try:
        with mock_aws():
            # moto builds each region's EC2 catalogue on first use; that is emulator start-up,
            # not runbook work, so one throwaway world warms it before the timed runs.
            build_world(args.mode, app="warmup", session=new_session())
            for i in range(args.runs):
                world = build_world(
                    args.mode, app=f"bench{i}", dr_health_url=health.url("/dr"), session=new_session()
                )
                health.routes["/dr"] = world.dr_health
                ctx = RunbookContext.from_dict(world.context)
                t0 = time.perf_counter()
                clients = Clients.for_context(ctx, boto3.Session())  # fresh, as the CLI does
                report = executor.run(FAILOVER, ctx, clients, params=params)
                totals.append(time.perf_counter() - t0)
                if report.outcome != "done":
                    print(report.format_table())
                    print(f"run {i + 1} did not complete: {report.reason}", file=sys.stderr)
                    return 1
                for record in report.timeline:
                    per_step[record.step].append(record.duration_s)
    finally:
        undo()
        health.close()

    print(f"failover orchestration overhead, {args.mode}, {args.runs} runs (in-process moto, waiter delay 0)")
    print(f"{'step':<22} {'median':>8} {'max':>8}")
    for name, values in per_step.items():
        print(f"{name:<22} {statistics.median(values):>7.3f}s {max(values):>7.3f}s")
    median, worst = statistics.median(totals), max(totals)
    print(f"{'TOTAL (wall)':<22} {median:>7.3f}s {worst:>7.3f}s")
    verdict = "within" if worst < TARGET_SECONDS else "OVER"
    print(f"target < {TARGET_SECONDS:.0f} s: {verdict} (max {worst:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
