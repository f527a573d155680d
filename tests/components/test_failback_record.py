"""Where the dr stack's failback record is written within one ``pulumi up`` (issue 13).

The record (SSM ``<latch>-failback-phase``) is what the next update's phase checks
(components/failover.py ``refuse_step_back``, ``refuse_phase_skip``) and the runbook's refusals
(lambdas/failover/fencing.py) read of a failback. An update is not all-or-nothing (a failed resource
stops new operations, not those under way: https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), so
the order of the record and the phase's changes decides what a half-applied update leaves it claiming:

* *one writer*: the phase that moves the writer (rds-replica ``switch-writer``) writes the record ahead
  of the promotion; a record behind a promotion that happened would let the next update step back and
  give region B its web tier back beside region A's new writer;
* *nothing acknowledged is lost*: every other phase writes it after its changes, so it never says
  ``drain`` while region B still takes writes (the next phase, ``switch-writer``, would then promote
  region A's replica while region B takes writes that never reach it).

The ordering is the engine's: a resource's dependencies (explicit ``dependsOn``; on a component, every
resource under it: https://github.com/pulumi/pulumi/pull/7732) finish first. The synthesis records the
dependencies as the engine receives them.
"""

from __future__ import annotations

import functools

import pytest

from automation import synth

RDS, AURORA = "rds-replica", "aurora-global"
INSTANCE, ASG = "aws:rds/instance:Instance", "aws:autoscaling/group:Group"
MAPPING, FUNCTION = "aws:lambda/eventSourceMapping:EventSourceMapping", "aws:lambda/function:Function"
CLUSTER = "aws:rds/cluster:Cluster"


@functools.cache
def _dr(mode: str, phase: str) -> synth.Synthesis:
    db = {"pilotlight:database": {"mode": mode}}
    values = {"dr:active": phase != "complete", "dr:failback": phase, **db}
    return synth.synthesize_as_procedure("dr", values, primary_overrides=db)


def _record(s: synth.Synthesis) -> synth.Resource:
    (record,) = [
        r
        for r in s.resources
        if r.type == "aws:ssm/parameter:Parameter" and r.name.endswith("-failback-phase")
    ]
    return record


@pytest.mark.parametrize(("mode", "phase"), [(RDS, "drain"), (AURORA, "switch-writer")])
def test_the_record_is_written_after_the_phases_changes(mode: str, phase: str) -> None:
    s = _dr(mode, phase)
    record = _record(s)
    changed = [
        r
        for r in s.resources
        if r.stack == "dr"
        and (
            r.type in (INSTANCE, ASG, MAPPING, CLUSTER)
            or (r.type == FUNCTION and r.name.startswith("dr-api-"))
        )
    ]
    assert {r.type for r in changed} >= {ASG, MAPPING, FUNCTION}, sorted({r.type for r in changed})
    waits = set(record.depends_on)
    missing = [r.name for r in changed if r.urn not in waits]
    assert missing == [], f"{phase}: the record does not wait for {missing}"
    assert not any(record.urn in r.depends_on for r in changed)


def test_the_writer_move_waits_for_the_record() -> None:
    s = _dr(RDS, "switch-writer")
    record = _record(s)
    (failback,) = [r for r in s.resources if r.type == INSTANCE and r.name.startswith("dr-data-db-failback")]
    assert "replicateSourceDb" not in failback.inputs or not failback.inputs["replicateSourceDb"], (
        "switch-writer promotes region A's failback instance"
    )
    assert record.urn in failback.depends_on, "the promotion must wait for the record (written ahead)"
    assert failback.urn not in record.depends_on


def test_a_program_that_stops_before_the_drain_is_declared_never_registers_the_promotion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The promotion's dependency on region B's drain is resolved after the web and api tiers are declared
    # (components/pilot_light_region.py _LateDependencies). If the program stops between the two, the
    # promotion must not be registered without the drain, and the runtime, which waits for every pending
    # registration before it reports the program's error (pulumi/runtime/stack.py run_pulumi_func), must
    # not wait forever on a dependency never declared: `pulumi up` fails with the program's own error.
    import asyncio
    import threading

    from pulumi.runtime import mocks as pmocks

    from components import pilot_light_region

    registered: list[str] = []
    register = pmocks.MockMonitor.RegisterResource

    def recording(self: pmocks.MockMonitor, request: object) -> object:
        registered.append(str(getattr(request, "name", "")))
        return register(self, request)

    class Stop(Exception):
        pass

    def api_tier(*_: object, **__: object) -> None:
        raise Stop("the api tier could not be declared")

    monkeypatch.setattr(pmocks.MockMonitor, "RegisterResource", recording)
    monkeypatch.setattr(pilot_light_region, "ApiTier", api_tier)
    outcome: list[BaseException | None] = []

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())  # the mocks run the program on this thread's loop
        try:
            _dr.__wrapped__(RDS, "switch-writer")
            outcome.append(None)
        except BaseException as error:  # the outcome is the assertion
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert outcome, "the program never finished: a registration waits on a dependency never declared"
    assert isinstance(outcome[0], Stop), f"the update fails with {outcome[0]!r}, not the program's own error"
    assert "dr-web-asg" in registered, "the program stopped before the web tier: the test proves nothing"
    promoted = [n for n in registered if n.startswith("dr-data-db-failback")]
    assert promoted == [], f"region A's promotion {promoted} was registered without region B's drain"
