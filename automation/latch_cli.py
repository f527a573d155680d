"""``python -m automation latch show|activate|release``: the failover latch, written explicitly (boto3).

The latch (SSM parameter ``/<app>/<env>/failover-state`` in region B) is the one record of whether
region B is the active site, and Route 53 follows it: the region-B canary holds the failover switch
while it says ``active``, and the runbook throws and releases the switch with it. ``pulumi up``
reads it (live) and never writes its value: a value the program wrote would be diffed against the
stack's state, which does not see what the runbook wrote, so it would silently not be written.
It is written by the runbook (failover: ``active``; failback: ``standby``) and by this command, with
the runbook's own steps (``lambdas.failover.steps``), so the format is the runbook's:

- ``show``: the latch, the switch and the writer's region (read-only);
- ``activate``: the declared failover's first step, before ``pulumi up`` with ``dr:active true``
  (which is refused until then): the runbook failover's ``fence_primary``, ``write_latch``,
  ``throw_switch`` and ``promote_database`` steps, in the runbook's order, in both database modes; a step
  that fails before the writer moved is rolled back by the runbook failover's ``roll_back_fence``
  (break34 B34-1). Traffic goes to region B at once, and its database becomes the writer before the
  update lights its tiers: the program never promotes on a failover (break34 B34-5: a Pulumi update
  cannot wait for zero lag). Where region A answers the move is lossless (rds-replica: the drain, then zero
  replica lag and the stores' replication proven after it; aurora-global: a switchover after the stores);
  ``--unplanned`` promotes over a region A that does not answer once the switch has taken effect,
  reporting an upper estimate of what may be lost (refused without it). Idempotent;
- ``switch-writer``: before ``dr:failback switch-writer``. rds-replica: that update promotes region
  A's failback replica, and it is refused without the proof this writes
  (``lambdas/failover/drain_proof.py``): region B seen drained in AWS, then the replica at zero lag
  from datapoints taken after the drain (minutes: the ALB's 300 s deregistration delay, then two
  zero-lag minutes). aurora-global: the failback's writer move, the runbook's ``switch_writer``
  step (a switchover to region A, which waits for it to catch up: nothing acknowledged is lost);
  the program cannot move an Aurora writer itself. When AWS
  refuses or cancels the switchover and region B still holds the writer with nothing moving it, the
  step's writer-move mark is withdrawn (as the failback's ``restore_dr`` does), so ``dr:failback
  switch-writer`` stays refused; the refusal is one line, exit status 1;
- ``release``: for the IaC failback (``dr:failback``), before ``route-back``: refuses unless region
  A's database is the writer (traffic must never be sent to a region without it), gives region A back
  what a runbook failover fenced (the runbook's ``unfence_primary``) and waits until it serves as the
  writer (``verify_primary``; refuses, nothing released, if it does not), then clears the
  run journal's marks of a failover holding region A (``steps.end_failover_hold``: the canary never
  releases the switch while they are set) and runs the runbook's ``release_switch`` and
  ``clear_latch`` steps. Idempotent: a released latch answers ``already_done``.

Single flight (docs/safety.md): every command but ``show`` runs under the runbook lock
(``lambdas/failover/lock.py``), as the runbook's runs do: ``LatchLock`` takes it before the command's
first read that decides anything (owner ``python -m automation latch <command>``, run id
``latch-<command>-<hex>``), keeps it with the in-process executor's heartbeat while the command waits, and
gives it back at the end, done, refused or failed. While another run holds it (a failover, a failback,
another operator's ``latch`` command) the command refuses before changing anything, naming the holder.
``activate`` holds it as a ``failover`` run (a pending fence of region A may join it, as it joins the
runbook's failover: neither un-fences region A); ``switch-writer`` and ``release`` as a ``failback``.

Exit status: 0 done (or shown), 1 refused (nothing changed), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from types import TracebackType

from botocore.exceptions import BotoCoreError, ClientError

from automation.runbook_cli import (
    EXIT_BAD_INPUT,
    EXIT_DONE,
    EXIT_STOPPED,
    InputError,
    _fail,
    add_deployment_arguments,
    connect,
)
from lambdas.failover import drain_proof, lock, steps
from lambdas.failover.budget import LOCK_TTL_SECONDS
from lambdas.failover.clients import Clients
from lambdas.failover.context import ContextError, RunbookContext
from lambdas.failover.exceptions import LockHeld, LockLost, StepFailed
from lambdas.failover.executor import Heartbeat
from lambdas.failover.failback import _refuse_while_region_b_may_be_promoted
from lambdas.failover.fencing import (
    _refuse_planned_without_region_a,
    _refuse_unprotected,
    _refuse_unprovable_engine,
)
from lambdas.failover.observe import Observation, Unread, observe
from lambdas.failover.on_stop import withdraw_unmoved_writer_move
from lambdas.failover.stepkit import _db_instance

ACTIONS = ("show", "activate", "switch-writer", "release")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m automation latch",
        description="Show or release the failover latch (SSM, region B) that Route 53 follows.",
        epilog="Exit status: 0 done, 1 refused (nothing changed), 2 bad input.",
    )
    parser.add_argument(
        "action",
        choices=ACTIONS,
        help="show: read-only; activate: before dr:active true; switch-writer (aurora-global): before "
        "dr:failback switch-writer; release: before dr:failback route-back",
    )
    parser.add_argument(
        "--unplanned",
        action="store_true",
        help="activate: region A's database does not answer: promote anyway once traffic has left region A "
        "(aurora-global: a managed failover instead of a switchover; rds-replica: the replica's promotion), "
        "which may lose the unreplicated tail and reports an upper estimate. Without it, a declared "
        "failover moves the writer only at zero lag measured after region A's writes stopped",
    )
    add_deployment_arguments(parser)
    parser.add_argument("--reason", help="why: recorded in the latch")
    return parser


LOCK_RUNBOOK = {"activate": "failover", "switch-writer": "failback", "release": "failback"}
"""The runbook each command holds the lock as: ``activate`` is a declared failover (it never un-fences
region A, so a pending fence may join it: ``lock.join_fence``); the other two give region A back its
writer or its traffic, which a fence must never join."""

LATCH_LOCK_TTL_SECONDS = LOCK_TTL_SECONDS
"""The lease a latch command holds the lock for after each refresh: the in-process executor's
(``budget.LOCK_TTL_SECONDS``). The command keeps it with the same heartbeat (``executor.Heartbeat``: a
refresh every ``HEARTBEAT_SECONDS`` while it waits, and before each step), so the longest stretch without
a refresh is the executor's in-process bound (``budget.lock_ttl_bound``: ``HEARTBEAT_SECONDS`` plus one
region-B call), whatever the command waits for (a switchover, the zero-lag proof's minutes). A command
whose process died holds it this long at most."""


class LatchLock:
    """The runbook lock around one latch command (a context manager; the one helper every command uses).

    ``__enter__`` takes it, or raises ``LockHeld`` (nothing changed) naming the holder and the remedy;
    ``check()`` refreshes it before a change that follows a wait, raising ``LockLost`` when it is no longer
    this command's; ``__exit__`` gives it back, also after an error or Ctrl-C (a latch command is never
    resumed by run id: it is run again). Only a process death the checker models (``Crash``) leaves it to
    expire."""

    def __init__(self, ctx: RunbookContext, clients: Clients, action: str) -> None:
        self.ctx, self.clients, self.action = ctx, clients, action
        self.run_id = f"latch-{action}-{uuid.uuid4().hex[:12]}"
        self.owner = f"python -m automation latch {action}"
        self.heartbeat: Heartbeat | None = None
        self.notes: list[str] = []

    def __enter__(self) -> LatchLock:
        try:
            acquired = lock.acquire(
                self.clients,
                self.ctx,
                run_id=self.run_id,
                owner=self.owner,
                runbook=LOCK_RUNBOOK[self.action],
                ttl_seconds=LATCH_LOCK_TTL_SECONDS,
            )
        except LockHeld as exc:
            raise LockHeld(lock.TAKE, self._held_by(exc), exc.holder) from exc
        except (ClientError, BotoCoreError) as exc:
            raise LockHeld(
                lock.TAKE,
                f"the runbook lock ({self.ctx.lock_table_name}, {self.ctx.dr_region}) cannot be taken "
                f"({type(exc).__name__}: {exc}), so `latch {self.action}` cannot tell whether another run is "
                "acting. Nothing was changed; run it again once DynamoDB answers",
            ) from exc
        if acquired.taken_over is not None:
            self.notes.append(f"runbook lock: {acquired.describe()}")
        self.heartbeat = Heartbeat(self.ctx, self.clients, self.run_id, LATCH_LOCK_TTL_SECONDS)
        self.heartbeat.start()
        return self

    def _held_by(self, exc: LockHeld) -> str:
        h = exc.holder or {}
        if not h:
            return f"{exc.reason}. Nothing was changed"
        runbook, run_id = h.get("runbook", "?"), h.get("runId", "?")
        resume = (
            f" or, if it is a runbook CLI run whose process died, resume it: `python -m automation {runbook} "
            f"--run-id {run_id}`"
            if str(run_id).startswith("local-") and runbook in ("failover", "failback")
            else ""
        )
        return (
            f"another run holds the runbook lock: {runbook} run {run_id} by {h.get('owner', '?')}, expires "
            f"{h.get('expiresAt', '?')}. `latch {self.action}` must not act beside it (two runs acting at once "
            "can leave two writers), so nothing was changed. Wait for that run to end (or its lock to "
            f"expire){resume}, then run `latch {self.action}` again"
        )

    def check(self) -> None:
        """Before the next change: refresh the lease now; ``LockLost`` when it is no longer this command's."""
        assert self.heartbeat is not None, "check() outside the with block"
        self.heartbeat.tick(force=True)
        if self.heartbeat.lost is not None:
            raise LockLost(
                lock.TAKE,
                f"{self.heartbeat.lost}; `latch {self.action}` stopped before its next change (what it did "
                f"so far stays: every step is idempotent). Run `latch {self.action}` again once that run ended",
            )

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if kind is not None and not issubclass(kind, (Exception, KeyboardInterrupt)):
            return  # a process death (the checker's Crash): a dead process releases nothing
        try:
            released = lock.release(self.clients, self.ctx, run_id=self.run_id)
        except (ClientError, BotoCoreError) as error:
            self.notes.append(
                f"runbook lock NOT released ({type(error).__name__}: {error}): it expires on its own, "
                f"{LATCH_LOCK_TTL_SECONDS} s after its last refresh"
            )
            return
        if not released:
            self.notes.append("runbook lock: no longer this command's when it ended (expired and taken)")


def describe(obs: Observation) -> str:
    """One line each: the latch, the switch, the writer."""
    ctx = obs.ctx
    latch = obs.latch
    state = "unreadable" if isinstance(latch, Unread) else (latch or {}).get("state", "absent")
    since = (
        ""
        if isinstance(latch, Unread) or not latch
        else f" since {latch.get('since')} ({latch.get('runbook')})"
    )
    switch = obs.switch
    switch_text = (
        "unreadable"
        if isinstance(switch, Unread)
        else ("no datapoint" if switch is None else f"{switch.value:g}")
    )
    writer = {"primary": ctx.primary_region, "dr": ctx.dr_region}.get(obs.writer_side or "", "unknown")
    return (
        f"latch {ctx.latch_parameter_name} ({ctx.dr_region}): {state}{since}\n"
        f"failover switch: {switch_text}\n"
        f"writer: {writer}"
    )


def release(ctx: RunbookContext, clients: Clients, *, reason: str | None) -> tuple[bool, list[str]]:
    """Release the switch and clear the latch once region A holds the writer; (done, lines). Under the
    runbook lock (``LatchLock``): refused, nothing changed, while another run holds it."""
    lines: list[str] = []
    held = LatchLock(ctx, clients, "release")
    try:
        with held:
            done = _release(ctx, clients, held, lines, reason=reason)
    except (LockHeld, LockLost) as exc:
        done = False
        lines.append(f"refused: {exc.reason}")
    return done, [*lines, *held.notes]


def _release(
    ctx: RunbookContext, clients: Clients, held: LatchLock, lines: list[str], *, reason: str | None
) -> bool:
    obs = observe(ctx, clients)
    if obs.writer_side != "primary":
        where = {"dr": f"region B ({ctx.dr_region})"}.get(obs.writer_side or "", "not known")
        lines.append(
            f"refused: the writer is {where}, not region A ({ctx.primary_region}). Releasing the latch would "
            "send traffic to a region without the writer. Move the writer first (dr:failback switch-writer, "
            "or the runbook's failback: python -m automation failback --outputs runbook.json)."
        )
        return False
    if ctx.database_mode == "rds-replica" and ctx.dr_db_instance_id:
        # A replica names its source until its promotion ends, so observe() reads one being promoted (a
        # declared failover's `latch activate` that died after PromoteReadReplica was asked) as a replica,
        # and region A as the writer: released now, the promotion makes a second writer minutes later,
        # missing every write region A takes meanwhile (break35 B35-1). Refused as the runbook's failback
        # refuses it (break29 B29-1).
        replica = _db_instance(clients, "dr", ctx.dr_db_instance_id)
        try:
            if replica is not None:
                _refuse_while_region_b_may_be_promoted(ctx, clients, replica, "release")
        except StepFailed as exc:
            lines.append(
                f"refused: {exc.reason}. Nothing was released. If a declared failover's `latch activate` "
                "stopped during its promotion, run it again: it finishes the move"
            )
            return False
    params = {"reason": reason or "latch release before dr:failback route-back", "wait": True}
    # Region A gets its capacity back before traffic moves to it. A runbook failover fenced it out of
    # band (web tier 0/0/0, functions at zero concurrency, event sources off); the primary stack's state
    # still holds the values from before the fence, so no `pulumi up -s primary` sends them again (no
    # diff without a refresh) and route-back would send every request to a region with no capacity
    # (life22). The runbook's own steps give it back, from the capacity the outputs carry (idempotent:
    # already_done when nothing was fenced), and wait until region A serves as the writer.
    for step in (steps.unfence_primary, steps.verify_primary):
        held.check()
        try:
            result = step(ctx, clients, params)
        except StepFailed as exc:
            lines.append(
                f"refused: {exc}; region A does not serve as the writer yet, so the switch and the latch "
                "stay on region B. Re-run `latch release` once it does (its web tier in service)."
            )
            return False
        lines.append(f"{step.__name__}: {result.status}: {result.detail}")
    # Region A holds the writer: a failover's hold on it (the journal's marks) is over. Cleared before
    # the release, or the canary, which never releases the switch while the journal holds region A,
    # would leave the switch where the failover put it under the standby latch.
    held.check()  # verify_primary waited
    cleared = steps.end_failover_hold(clients, ctx)
    if cleared:
        lines.append(f"run journal: cleared {', '.join(cleared)} (region A holds the writer)")
    for step in (steps.release_switch, steps.clear_latch):
        held.check()
        result = step(ctx, clients, params)
        lines.append(f"{step.__name__}: {result.status}: {result.detail}")
    return True


def activate(ctx: RunbookContext, clients: Clients, *, reason: str | None, planned: bool = True) -> list[str]:
    """Write the latch active, (Aurora) move the writer, throw the switch: a declared failover's first step.
    Under the runbook lock (``LatchLock``): raises ``LockHeld`` (a StepFailed; nothing changed) while another
    run holds it, ``LockLost`` when it lost it between two steps."""
    held = LatchLock(ctx, clients, "activate")
    try:
        with held:
            lines = _activate(ctx, clients, held, reason=reason, planned=planned)
    except StepFailed as exc:
        if exc.code != PLANNED_NEEDS_REGION_A_CODE:
            raise
        # Before any change, or from the promotion (region A stopped answering after its fence, which
        # the roll-back then undid): the remedy is this command's flag, not the runbook's.
        raise StepFailed(exc.step, _unplanned_remedy(exc.reason), code=exc.code) from exc
    return [*lines, *held.notes]


def _activate(
    ctx: RunbookContext, clients: Clients, held: LatchLock, *, reason: str | None, planned: bool
) -> list[str]:
    params = {
        "reason": reason or "declared failover (python -m automation latch activate)",
        "planned": planned,
        "wait": True,
    }
    # A declared failover is a failover: refused, before anything changes, where the runbook's failover
    # refuses at confirm_primary_down (fencing.py ``_refuse_unprotected``): region A holds the writer a
    # failback moved back, or region B's instance is a standalone copy while the latch says standby (after
    # a failback, before the re-seed). declare_failover_hold would otherwise drop the writer-move mark, the
    # runbook's failback's record of that move (break25 BR25-1), and the active latch it writes would let
    # the next failover resume onto the frozen copy (break26 B26-1).
    _refuse_unprotected(ctx, clients, "activate")
    # A lossless move needs region A: refused before any change when its database does not answer
    # (the runbook's failover refuses so at confirm_primary_down), as is a planned one over an RDS
    # engine with no sound zero-lag proof.
    _refuse_planned_without_region_a(ctx, clients, params, "activate")
    _refuse_unprovable_engine(ctx, clients, params, "activate")
    # Before the latch: the declared failover holds region A (steps.FAILOVER_MARKS) until a failback or
    # ``latch release`` gives it back. Without the mark a deleted or garbled latch would let the canary
    # release the switch to region A's old writer (B20-1).
    steps.declare_failover_hold(clients, ctx)
    # The runbook's fence first, as its failover does (break34 B34-1): where region A answers, its
    # writes stop and the run journal records when (primaryStoppedAt), the moment the stores' drain and
    # zero-lag wait count from before the writer moves; a region A that does not answer is left with
    # its fence pending (completed by the canary when it answers). Without it the switchover was asked
    # with region A still serving and the receipts and global table not waited for.
    #
    # Then the runbook failover's own order, in both database modes: the latch, the switch, and the writer
    # move by the runbook's ``promote_database`` (break34 B34-5). The program never promotes on a failover
    # (components/failover.py ``refuse_program_promotion``): a Pulumi update cannot wait for the drain and
    # the zero-lag datapoints after it, so `dr:active true` promoting region B's replica kept only what had
    # replayed, region A's last writes still on their way. The step waits for both where region A answers
    # (planned), and where it does not promotes only once the switch has taken effect, reporting an upper
    # estimate of what may be lost (``--unplanned``; refused otherwise).
    chain = [steps.fence_primary, steps.write_latch, steps.throw_switch, steps.promote_database]
    lines = []
    try:
        for step in chain:
            held.check()
            result = step(ctx, clients, params)
            lines.append(f"{step.__name__}: {result.status}: {result.detail}")
    except (StepFailed, ClientError, BotoCoreError) as exc:
        if isinstance(exc, LockLost):
            raise
        # Stopped before the writer moved: the runbook failover's on_stop gives region A back what the
        # fence took (latch standby, switch released, region A un-fenced) and does nothing once the
        # writer moves or is moving.
        try:
            held.check()
            undone = steps.roll_back_fence(ctx, clients, params)
            held.notes.append(f"roll_back_fence: {undone.status}: {undone.detail}")
        except (StepFailed, ClientError, BotoCoreError) as unrolled:
            # The step's own failure is the one to report; the roll-back's says what is left to undo.
            held.notes.append(
                f"roll_back_fence failed ({unrolled}): region A may still be fenced; `latch activate` again "
                "completes the failover, `latch release` gives region A back"
            )
        raise
    lines.append(
        "traffic goes to region B and its database is the writer; now run `pulumi up -s dr` with "
        "dr:active true to light it (python -m automation cloud failover does both)"
    )
    return lines


PLANNED_NEEDS_REGION_A_CODE = "PlannedNeedsRegionA"


def _unplanned_remedy(reason: str) -> str:
    """The runbook's PlannedNeedsRegionA refusal, with this command's remedy (``--unplanned``, not
    ``--planned``, is what the operator changes here)."""
    said = reason.split(" To fail over now", 1)[0]
    return (
        f"{said} To fail over now, accepting the loss of what region A had not replicated (the command reports "
        "an upper estimate), run `python -m automation latch activate --unplanned` (`python -m automation "
        "cloud failover --unplanned`); or wait until region A answers and run it again"
    )


def switch_writer(ctx: RunbookContext, clients: Clients, *, reason: str | None) -> tuple[bool, list[str]]:
    """Before ``dr:failback switch-writer``; (done, lines). Aurora: the runbook's switch_writer step
    (switchover to region A). rds-replica: the zero-lag proof the update's promotion needs
    (lambdas/failover/drain_proof.py): region B drained, then region A's failback instance at zero lag
    measured after the drain; the update then promotes it. Under the runbook lock (``LatchLock``), held
    across the proof's wait: refused, nothing changed, while another run holds it."""
    held = LatchLock(ctx, clients, "switch-writer")
    try:
        with held:
            done, lines = _switch_writer(ctx, clients, held, reason=reason)
    except (LockHeld, LockLost) as exc:
        done, lines = False, [f"refused: {exc.reason}"]
    return done, [*lines, *held.notes]


def _switch_writer(
    ctx: RunbookContext, clients: Clients, held: LatchLock, *, reason: str | None
) -> tuple[bool, list[str]]:
    if ctx.database_mode != "aurora-global":
        try:
            said = drain_proof.prove_drain(ctx, clients, {"reason": reason}, refresh_lock=held.check)
            return True, [f"prove_drain: {said}"]
        except StepFailed as exc:
            return False, [
                f"refused: {exc.reason}. dr:failback switch-writer stays refused (no zero-lag proof); nothing "
                "was changed"
            ]
    held.check()
    try:
        result = steps.switch_writer(ctx, clients, {"reason": reason or "IaC failback", "wait": True})
    except StepFailed as exc:
        return False, [_switch_writer_refused(ctx, clients, exc)]
    return True, [f"switch_writer: {result.status}: {result.detail}"]


AWS_SAID_NO = ("WaiterTimeout",)
"""Retryable failures after which AWS state alone says whether a move is under way: the writer wait gave
up (a switchover AWS cancelled ends with region B the writer and no ``FailoverState``)."""


def _switch_writer_refused(ctx: RunbookContext, clients: Clients, exc: StepFailed) -> str:
    """The one line for a ``switch_writer`` step that stopped, after the run journal's writer-move mark
    (written ahead of the switchover) is withdrawn where AWS shows nothing moved the writer (break24
    BR24-2): the mark is what lets ``dr:failback switch-writer`` record that region A holds it.

    As the failback's own ``restore_dr`` does: a refusal by AWS (not retryable), or a writer wait that
    gave up, with region B's cluster still the global writer and no ``FailoverState`` (pending,
    switching-over: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html),
    withdraws it. A throttled or unanswered call may have been applied, so the mark stays (the safe
    side: a move may be under way) and re-running the command waits for it or asks again."""
    refused = f"refused: switch_writer stopped: {exc.reason}"
    if exc.retryable and exc.code not in AWS_SAID_NO:
        return (
            f"{refused}; a switchover may be under way, so the run journal's writer-move mark stays: re-run "
            "`python -m automation latch switch-writer --outputs runbook.json` (it waits for the switchover "
            "or asks again; `latch show` shows the writer)"
        )
    try:
        writer = withdraw_unmoved_writer_move(ctx, clients, "switch_writer")
    except (StepFailed, ClientError, BotoCoreError) as unread:
        writer, where = None, f"the writer cannot be read now ({type(unread).__name__}): "
    else:
        where = ""
    if writer is None:
        return (
            f"{refused}; {where}region B's cluster may not be the writer any more (or a switchover is under "
            "way), so the run journal's writer-move mark stays: `python -m automation latch show --outputs "
            "runbook.json` shows the writer; re-run `latch switch-writer` to wait for the move"
        )
    return (
        f"{refused}; {writer} and nothing moves it, so the run journal's writer-move mark is withdrawn and "
        "dr:failback switch-writer stays refused. Region B stays drained (dr:failback drain): re-run "
        "`python -m automation latch switch-writer --outputs runbook.json` once AWS accepts the switchover "
        "(every cluster of the global database available), or set dr:failback replicate to give region B "
        "its serving capacity back"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m automation latch ...``; returns the exit status."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return EXIT_DONE if exc.code == 0 else EXIT_BAD_INPUT
    try:
        ctx, clients = connect(args)
    except (InputError, ContextError) as exc:
        return _fail(exc)
    if args.action == "show":
        print(describe(observe(ctx, clients)))
        return EXIT_DONE
    if args.action == "activate":
        try:
            print("\n".join(activate(ctx, clients, reason=args.reason, planned=not args.unplanned)))
        except StepFailed as exc:
            print(f"refused: {exc.step}: {exc.reason}")
            return EXIT_STOPPED
        return EXIT_DONE
    if args.action == "switch-writer":
        done, lines = switch_writer(ctx, clients, reason=args.reason)
        print("\n".join(lines))
        return EXIT_DONE if done else EXIT_STOPPED
    done, lines = release(ctx, clients, reason=args.reason)
    print("\n".join(lines))
    return EXIT_DONE if done else EXIT_STOPPED


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
