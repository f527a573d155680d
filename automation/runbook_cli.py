"""Break-glass runbook CLI: ``python -m automation failover|failback`` from a laptop, boto3 only.

Runs the same steps as the Step Functions state machine in region B (``lambdas.failover.steps``),
in process (``lambdas.failover.executor``), so it works when the CI pipeline, Step Functions or
the Pulumi state backend are unavailable. What the steps act on comes from the DR stack's
``runbook`` output: read from a JSON file (``--outputs``, the break-glass path: keep a copy
next to the runbook) or, when the Pulumi CLI and the state backend answer, from the stack.

Before anything changes, the preflight (``lambdas.failover.preflight``) checks the outputs against
the live system: the generation stamp (a stale file is refused) and one read-only call per resource
they name. ``--dry-run`` stops after it and prints what each step would do.

Single flight: the run takes the runbook lock (region B) before its first change and gives it back
at the end. Another live run's lock stops this one before anything changes, naming the holder; an
expired lock is taken over (the output says so). ``--force`` never breaks a lock. The run id is
printed first: a run whose process died keeps the lock, and ``--run-id <that id>`` resumes it at
once; ``--break-lock`` takes a live lock from a run the operator knows is dead (a warning, and
the confirmation, say what that risks).

Exit status: 0 the runbook completed (or the dry run was printed); 1 it stopped at a step (named,
with the reason: fix it and run the same command again, finished steps answer already_done), or
another run holds the lock; 2 bad input, outputs that do not match the live system, or not
confirmed, and nothing was done.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import boto3

from lambdas.failover import dryrun, executor, preflight
from lambdas.failover.clients import Clients
from lambdas.failover.context import ContextError, RunbookContext
from lambdas.failover.exceptions import PreflightError
from lambdas.failover.executor import RunReport, StepRecord
from lambdas.failover.graph import RUNBOOKS
from lambdas.failover.observe import observe

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The Pulumi project whose stack outputs are read when ``--outputs`` is not given."""

EXIT_DONE, EXIT_STOPPED, EXIT_BAD_INPUT = 0, 1, 2


class InputError(Exception):
    """Bad input: reported with exit status 2 before anything is done."""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m automation",
        description="Run the failover or failback runbook from here, with boto3 (break-glass).",
        epilog="Exit status: 0 done, 1 stopped at a step (run again to resume), 2 bad input / not confirmed.",
    )
    parser.add_argument("runbook", choices=sorted(RUNBOOKS), help="which runbook to run")
    add_deployment_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the outputs against the live system and print what each step would do; change nothing",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="fail over even if region A's health endpoint answers (skips confirm_primary_down)",
    )
    parser.add_argument("--reason", help="why: recorded in the latch and the notification")
    parser.add_argument(
        "--planned",
        action="store_true",
        help="region A is healthy: a lossless move (Aurora switchover; RDS promotion at zero lag after the "
        "drain) instead of a failover; refused before any change when region A does not answer",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=None,
        metavar="S",
        help="how long a fenced web tier may still commit writes before the lag is measured "
        "(default 300: the load balancer's deregistration delay)",
    )
    parser.add_argument(
        "--run-id",
        metavar="ID",
        help="this run's id in the runbook lock (default: a new one); give the id a dead run printed to "
        "resume it while its lock is still held",
    )
    parser.add_argument(
        "--break-lock",
        action="store_true",
        help="take the runbook lock even from another run that looks live (only when you know it is dead: "
        "two runs acting at once can leave two writers)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step as JSON lines on stderr")
    return parser


def _stack_runbook_output(stack_name: str) -> Mapping[str, Any]:
    """The ``runbook`` output of ``stack_name`` via the Pulumi Automation API (imported lazily)."""
    hint = "pass --outputs FILE (the stack's `runbook` output as JSON)"
    try:
        from pulumi import automation as auto
    except ImportError as exc:
        raise InputError(f"the pulumi Python package is not installed; {hint}") from exc
    try:
        stack = auto.select_stack(stack_name=stack_name, work_dir=str(REPO_ROOT))
        outputs = stack.outputs()
    except FileNotFoundError as exc:
        raise InputError(f"the Pulumi CLI is not installed or not on PATH; {hint}") from exc
    except auto.CommandError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"could not read the outputs of stack {stack_name!r}: {first}; {hint}") from exc
    if "runbook" not in outputs:
        raise InputError(f"stack {stack_name!r} has no `runbook` output; is it the DR stack? {hint}")
    value = outputs["runbook"].value
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise InputError(f"stack {stack_name!r}: the `runbook` output is not an object")
    return value


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}")
"""What ``--run-id`` accepts: the ids runs print (``local-<hex>``, a Step Functions execution ARN)."""


def check_lock_flags(args: argparse.Namespace) -> None:
    """``--run-id`` and ``--break-lock`` as the lock can use them; InputError naming the flag."""
    if args.run_id is not None and not RUN_ID.fullmatch(args.run_id):
        raise InputError(
            f"--run-id must be the id a run printed (1 to 256 of letters, digits and . _ : / -, "
            f"starting with a letter or digit, e.g. local-0123456789ab); got {args.run_id!r}"
        )
    if args.break_lock and args.dry_run:
        raise InputError(
            "--break-lock cannot be used with --dry-run: a dry run takes no lock, so there is none to break"
        )


def add_deployment_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the DR stack's ``runbook`` output and AWS are: ``--stack``, ``--outputs``, ``--endpoint-url``
    (the runbook, ``status`` and ``latch`` commands read the same deployment the same way)."""
    parser.add_argument("--stack", default="dr", help="DR stack whose `runbook` output to read (default: dr)")
    parser.add_argument(
        "--outputs",
        metavar="FILE",
        help="JSON file with the DR stack's `runbook` output (`pulumi stack output runbook --json -s dr "
        "> runbook.json`); no Pulumi CLI or state backend needed",
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="AWS endpoint of a local emulator (moto server)"
    )


def connect(args: argparse.Namespace) -> tuple[RunbookContext, Clients]:
    """The validated outputs named by :func:`add_deployment_arguments` and clients for both regions;
    raises InputError or ContextError before any AWS call."""
    ctx = load_context(args)
    return ctx, Clients.for_context(ctx, _session(args.endpoint_url), endpoint_url=args.endpoint_url)


def load_context(args: argparse.Namespace) -> RunbookContext:
    """The runbook context from ``--outputs`` or from the stack; InputError/ContextError if unusable."""
    if args.outputs:
        try:
            text = Path(args.outputs).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read --outputs {args.outputs}: {exc.strerror or exc}") from exc
        return RunbookContext.from_json(text)
    return RunbookContext.from_dict(_stack_runbook_output(args.stack))


def header(ctx: RunbookContext, runbook: str, args: argparse.Namespace) -> str:
    """What is about to happen, for the person at the keyboard."""
    book = RUNBOOKS[runbook]
    to_region = ctx.dr_region if runbook == "failover" else ctx.primary_region
    from_region = ctx.primary_region if runbook == "failover" else ctx.dr_region
    if ctx.database_mode == "rds-replica":
        db = f"rds-replica: {ctx.primary_db_instance_id} (A) / {ctx.dr_db_instance_id} (B)"
    else:
        db = f"aurora-global: {ctx.global_cluster_id}: {ctx.primary_cluster_id} (A) / {ctx.dr_cluster_id} (B)"
    lines = [
        f"pilotlight {runbook.upper()}: {ctx.app_name} ({ctx.environment})",
        f"  traffic and writes move from {from_region} to {to_region}",
        f"  region A: {ctx.primary_region}   region B (DR): {ctx.dr_region}",
        f"  database: {db}",
    ]
    if args.endpoint_url:
        lines.append(f"  AWS endpoint: {args.endpoint_url} (local emulator)")
    lines.append("  steps (a line's steps run in parallel):")
    for i, layer in enumerate(book.layers(), 1):
        for j, step in enumerate(layer):
            mark = f"{i:>2}." if j == 0 else "   "
            note = ""
            if step.name == "confirm_primary_down" and args.force:
                note = "  [skipped: --force]"
            elif step.best_effort:
                note = "  [best effort]"
            lines.append(f"    {mark} {step.name:<24} {step.description}{note}")
    return "\n".join(lines)


def confirm(ctx: RunbookContext, stdin: TextIO, out: TextIO) -> bool:
    """Ask for the DR region's name; no terminal, end of input or a wrong answer means no."""
    if not stdin.isatty():
        print("stdin is not a terminal and --yes was not given.", file=out)
        return False
    print("Type the DR region name to confirm: ", end="", file=out, flush=True)
    try:
        answer = stdin.readline()
    except (EOFError, OSError):
        return False
    if not answer:  # end of input
        print("", file=out)
        return False
    if answer.strip() != ctx.dr_region:
        print(f"{answer.strip()!r} is not {ctx.dr_region!r}.", file=out)
        return False
    return True


class ProgressPrinter:
    """Prints one line per step start and end; called from the executor's worker threads."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, event: str, record: StepRecord) -> None:
        at = time.monotonic() - self.t0
        with self.lock:
            if event == "start":
                print(f"[{at:7.2f}s] start   {record.step}", file=self.out, flush=True)
            else:
                print(
                    f"[{at:7.2f}s] {record.status:<12} {record.step} ({record.duration_s:.2f}s): {record.detail}",
                    file=self.out,
                    flush=True,
                )


def _session(endpoint_url: str | None) -> boto3.Session:
    session = boto3.Session()
    if session.get_credentials() is None:
        if not endpoint_url:
            raise InputError("no AWS credentials found (environment, profile or instance role)")
        # A local emulator accepts any credentials; nothing needs to be configured for a drill.
        session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local")
    return session


def _fail(message: object) -> int:
    """One clear line (or a list) on stderr, and the bad-input status: nothing was done."""
    print(f"error: {message}\nnothing was done.", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    """Run ``python -m automation failover|failback [options]``; returns the exit status."""
    reader: TextIO = stdin if stdin is not None else sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_DONE if exc.code == 0 else EXIT_BAD_INPUT
    out = sys.stderr if args.json else sys.stdout
    try:
        check_lock_flags(args)
    except InputError as exc:
        return _fail(exc)

    try:
        ctx, clients = connect(args)
    except (InputError, ContextError) as exc:
        return _fail(exc)

    print(header(ctx, args.runbook, args), file=out, flush=True)
    # Nothing changes before the outputs are shown to describe the live system (read-only calls).
    checked = preflight.check(ctx, clients, args.runbook)
    try:
        checked.require()
    except PreflightError as exc:
        return _fail(exc)
    print("", file=out)
    print(checked.format(), file=out, flush=True)
    params: dict[str, Any] = {
        "force": args.force,
        "reason": args.reason or f"break-glass {args.runbook} from the runbook CLI",
        "planned": args.planned,
    }
    if args.drain_seconds is not None:
        params["drainSeconds"] = max(0.0, args.drain_seconds)
    if args.dry_run:
        steps = dryrun.plan(args.runbook, ctx, observe(ctx, clients), params)
        print("", file=out)
        print(dryrun.format_plan(args.runbook, steps), file=out)
        if args.json:
            print(json.dumps({"dryRun": True, "runbook": args.runbook, "steps": dict(steps)}, indent=2))
        return EXIT_DONE
    if args.break_lock:
        print(
            "  WARNING: --break-lock takes the runbook lock from whichever run holds it. If that run is "
            "still alive,\n  both act at once (single flight is lost). Use it only for a run you know is dead.",
            file=out,
        )
    if not args.yes and not confirm(ctx, reader, out):
        print("aborted: nothing was done.", file=out)
        return EXIT_BAD_INPUT

    log_handler = logging.StreamHandler(sys.stderr)
    pilotlight_logger = logging.getLogger("pilotlight")
    pilotlight_logger.addHandler(log_handler)
    previous_level = pilotlight_logger.level
    pilotlight_logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        run_id = args.run_id or executor.new_run_id()
        print(
            f"\nrun id: {run_id} (if this process dies, resume with --run-id {run_id})", file=out, flush=True
        )
        report = executor.run(
            args.runbook,
            ctx,
            clients,
            params=params,
            on_progress=ProgressPrinter(out),
            run_id=run_id,
            break_lock=args.break_lock,
        )
    finally:
        pilotlight_logger.removeHandler(log_handler)
        pilotlight_logger.setLevel(previous_level)

    print("", file=out)
    print(report.format_table(), file=out)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    return _exit_status(report)


def _exit_status(report: RunReport) -> int:
    return EXIT_DONE if report.outcome == "done" else EXIT_STOPPED


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
