"""rds-replica failback, rename to replace, judged on the emulated data plane.

Invariant protected: *nothing acknowledged is lost* (docs/safety.md ``no_loss``) after an rds-replica
failback — region A's application is configured with the endpoint of ``<primary>``; once the failback
gives region A its capacity back, every write it acknowledges must land in the writer, which is the
instance under that name. Before the change the failback promoted ``<primary>-failback`` and region
A's writes went to the old instance nobody replicates. And region A's old primary, renamed, still
holds what it held (the failover's unplanned tail is kept, under the name the journal records).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from automation.emulator.data import Store
from tests.lambdas.failover.world import REGION_A, REGION_B
from tests.safety.model import Deployment

Deploy = Callable[..., Deployment]

FAILBACK_PARAMS = {"waiterMaxAttempts": 240}


def test_after_an_rds_failback_region_a_writes_reach_the_writer_and_the_old_primary_is_kept(
    deploy: Deploy,
) -> None:
    d = deploy("rds-replica")
    emu, primary = d.emulator, d.ctx.primary_db_instance_id
    primary_arn, _ = d.keys()
    d.op_outage()
    tail = emu.data.write(primary_arn)  # taken by region A just before it went dark: never replicated
    d.op_advance(120)
    d.op_run("failover")
    d.op_recover()
    d.op_advance(600)
    d.op_run("failback", params=FAILBACK_PARAMS | {"failbackKmsKeyId": d.world.context["primaryKmsKeyArn"]})
    assert d.last_run is not None and d.last_run.outcome == "done", d.last_run
    d.op_advance(1800)
    d.judge()

    assert [v for v in d.violations if v.invariant == "no_loss"] == [], [str(v) for v in d.violations]
    assert d.writer() == primary_arn, "the writer bears the name region A's application is configured with"
    after = [
        w
        for w in emu.data.acknowledged(Store.DATABASE)
        if w.region == REGION_A and w.at > emu.clock.now() - __import__("datetime").timedelta(seconds=1500)
    ]
    assert after, "region A serves and writes again after the failback"
    assert all(w.copy == primary_arn for w in after)
    assert {w.id for w in after} <= emu.data.held(primary_arn)
    journal = json.loads(
        d.world.client("ssm", REGION_B).get_parameter(Name=d.ctx.latch_parameter_name + "-journal")[
            "Parameter"
        ]["Value"]
    )
    [kept] = journal["retainedPrimaries"]
    retained_arn = primary_arn.replace(f":db:{primary}", f":db:{kept['instance']}")
    assert tail.id in emu.data.held(retained_arn), "the old primary's data is kept under the recorded name"
    assert tail.id not in emu.data.held(primary_arn)
    assert not any(w.copy == retained_arn or w.id in emu.data.held(retained_arn) for w in after)
    assert REGION_A in retained_arn
