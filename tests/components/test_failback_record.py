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
