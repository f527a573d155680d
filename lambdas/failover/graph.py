"""The failover and failback runbooks, defined once as graphs of steps.

Both executors are generated from these graphs: the Step Functions state machine deployed in the
DR region (``lambdas.failover.state_machine``) and the in-process executor used by the break-glass
CLI and the local drill (``lambdas.failover.executor``). A step names the steps it needs; steps
whose needs are met run in parallel. Nothing here calls AWS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One step of a runbook.

    Attributes:
        name: the handler name in ``lambdas.failover.steps`` and the state name in Step Functions.
        needs: steps that must have finished (done, already done, or warned) before this one starts.
        description: one line for people: progress output, reports, the state machine comment.
        long_running: the step may answer ``in_progress`` and must be polled (RDS promotion,
            Aurora failover, waiting for replication lag); Step Functions loops through a Wait state.
        best_effort: a failure is reported as a warning and the run goes on. Only for steps that
            act on region A, which may be unreachable during a regional outage.
    """

    name: str
    needs: tuple[str, ...] = ()
    description: str = ""
    long_running: bool = False
    best_effort: bool = False


@dataclass(frozen=True)
class Runbook:
    """A named, validated graph of steps."""

    name: str
    steps: tuple[Step, ...]
    on_stop: Step | None = None
    """Run once when a step fails and stops the run (never when the run could not take or lost the
    lock, nor when its process dies): it undoes what the stopped run left unsafe, or answers that
    nothing needs undoing. Both executors run it inside the run's lock."""

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if self.on_stop is not None:
            if self.on_stop.name in names:
                raise ValueError(f"runbook {self.name!r}: on_stop {self.on_stop.name!r} is also a step")
            if self.on_stop.needs or self.on_stop.best_effort:
                raise ValueError(f"runbook {self.name!r}: on_stop needs nothing and is not best effort")
        if len(set(names)) != len(names):
            raise ValueError(f"runbook {self.name!r}: duplicate step names in {names}")
        known = set(names)
        for step in self.steps:
            unknown = set(step.needs) - known
            if unknown:
                raise ValueError(f"runbook {self.name!r}: step {step.name!r} needs unknown {sorted(unknown)}")
        self.layers()  # raises on a cycle

    def step(self, name: str) -> Step:
        """The step called ``name``; KeyError names the runbook and the known steps."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"runbook {self.name!r} has no step {name!r}; steps: {[s.name for s in self.steps]}")

    def layers(self) -> list[list[Step]]:
        """Topological layers: every step of a layer needs only steps of earlier layers.

        Steps in one layer are independent and may run in parallel. Order inside a layer follows
        the definition order, so output is stable.
        """
        done: set[str] = set()
        remaining = list(self.steps)
        out: list[list[Step]] = []
        while remaining:
            ready = [s for s in remaining if set(s.needs) <= done]
            if not ready:
                raise ValueError(f"runbook {self.name!r}: cycle among {[s.name for s in remaining]}")
            out.append(ready)
            done.update(s.name for s in ready)
            remaining = [s for s in remaining if s.name not in done]
        return out

    def names(self) -> list[str]:
        """Step names in definition order."""
        return [s.name for s in self.steps]


FAILOVER = Runbook(
    name="failover",
    steps=(
        Step(
            "confirm_primary_down",
            description="Confirm region A is really down (probe its health endpoint), unless forced",
        ),
        # Fencing goes first and in parallel with the DR scale-out: the database is promoted only
        # once region A's writers are stopped (or shown unreachable), so there is never a second
        # writer whose writes the promoted database would not have.
        # Not best effort: when region A answers, a fence it refuses stops the run before promotion
        # (the step itself warns, and goes on, only when region A does not answer at all).
        Step(
            "fence_primary",
            needs=("confirm_primary_down",),
            description="Fence region A (required where it answers): web tier, functions, event sources to 0",
            # Region A found unreachable is looked at again for darkness.DARK_CONFIRM_SECONDS before the
            # fence is left pending (break33 B33-3): the state machine polls it meanwhile.
            long_running=True,
        ),
        Step(
            "scale_web_tier",
            needs=("confirm_primary_down",),
            description="Scale the DR web tier to its active capacity",
        ),
        Step(
            "enable_functions",
            needs=("confirm_primary_down",),
            description="Lift the DR functions' zero concurrency and enable their event sources",
        ),
        # The latch, then the switch, then the writer move: traffic leaves region A before the
        # writer does. A run stopped anywhere after the latch finds the canary republishing the
        # switch from it every minute; one stopped after the switch finds Route 53 already on
        # region B, so a region A that comes back with its old writer (a fence left pending) is
        # not answered while the promotion runs (seed 6: with the switch after the promotion, a
        # run that died right after it left Route 53 answering region A until the canary's next
        # minute took effect). Before the promotion, traffic to region B meets a database that
        # refuses writes: nothing is lost, and the failover's stop (``on_stop``) or its resume
        # ends it.
        Step(
            "write_latch",
            needs=("fence_primary",),
            description="Write the failover latch (SSM, region B) before the writer moves",
        ),
        Step(
            "throw_switch",
            needs=("write_latch", "scale_web_tier", "enable_functions"),
            description="Throw the failover switch in region B: Route 53 sends traffic to region B",
        ),
        Step(
            "promote_database",
            needs=("throw_switch",),
            description="Promote the DR database to writer (RDS replica promotion / Aurora global failover)",
            long_running=True,
        ),
        Step(
            "verify",
            needs=("promote_database",),
            description="Verify region B serves: health endpoint answers, writer in B, web tier in service",
            long_running=True,
        ),
        Step("notify", needs=("verify",), description="Notify the operators (SNS, region B)"),
    ),
    on_stop=Step(
        "roll_back_fence",
        description="A run stopped before the writer moved: latch standby, switch released, region A un-fenced",
        long_running=True,
    ),
)

FAILBACK = Runbook(
    name="failback",
    steps=(
        Step(
            "confirm_primary_healthy",
            description="Confirm region A answers again before anything moves back",
        ),
        Step(
            "reestablish_replication",
            needs=("confirm_primary_healthy",),
            description="Re-establish replication from region B to region A",
            long_running=True,
        ),
        # Region B stops taking writes *before* the lag is measured and the writer moves: a write
        # accepted in B after region A's database is promoted would never reach A. The price is a
        # short write outage (this step until release_switch), the planned cost of losing nothing.
        # Region A's web tier launches while region B still serves: its database refuses writes
        # until switch_writer, and its functions stay fenced until unfence_primary.
        Step(
            "warm_primary",
            needs=("reestablish_replication",),
            description="Launch region A's web tier while region B serves, and wait until it is in service",
            long_running=True,
        ),
        Step(
            "scale_down_dr",
            needs=("warm_primary",),
            description="Stop writes in region B: web tier 0, functions at zero concurrency",
        ),
        Step(
            "wait_replication_lag",
            needs=("scale_down_dr",),
            description="Wait until replication lag B -> A is under the bound (B no longer writes)",
            long_running=True,
        ),
        Step(
            "switch_writer",
            needs=("wait_replication_lag",),
            description="Make region A the writer again",
            long_running=True,
        ),
        Step(
            "unfence_primary",
            needs=("switch_writer",),
            description="Restore region A's web tier capacity and functions",
        ),
        Step(
            "verify_primary",
            needs=("unfence_primary",),
            description="Verify region A serves as the writer before traffic moves back",
            long_running=True,
        ),
        Step(
            "release_switch",
            needs=("verify_primary",),
            description="Release the failover switch: Route 53 prefers region A again",
        ),
        Step("clear_latch", needs=("release_switch",), description="Set the latch back to standby"),
        Step("notify", needs=("clear_latch",), description="Notify the operators (SNS, region B)"),
    ),
    # Every way a failback stops after draining region B (a switchover AWS cancelled, a promotion
    # or switchover error, a poll budget run out, a crashed run resumed that then stops) leaves
    # region B serving while it still holds the writer (docs/safety.md, converges).
    on_stop=Step(
        "restore_dr",
        description="The failback stopped: region B serves again if it still holds the writer",
        # Waits out a switchover AWS has not yet started or cancelled (FailoverState pending).
        long_running=True,
    ),
)

RUNBOOKS: dict[str, Runbook] = {FAILOVER.name: FAILOVER, FAILBACK.name: FAILBACK}
