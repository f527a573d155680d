"""breaklife21: the failback refusal read from a latch the program does not write.

``components.failover.Latch.parse`` promises to fail safe on a latch it cannot read (treated as
active); ``failback_in_progress`` promises that "a stamp that cannot be compared counts as under way:
refusing an update is the safe side". The latch is an SSM String parameter anyone with
ssm:PutParameter can write (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html);
ISO 8601 allows a time without an offset, which ``datetime.fromisoformat`` reads as naive.
"""

from __future__ import annotations

import pytest

from components.failover import FailbackInProgress, Latch, refuse_dr_update


def test_bl21_3_a_latch_since_without_an_offset_is_refused_with_the_failback_message_not_a_type_error() -> (
    None
):
    """BL21-3 (low): a latch whose ``since`` has no UTC offset (hand-written, or by another tool)
    beside the runbook's ``drStoppedAt`` (always with +00:00) makes ``failback_in_progress`` compare a
    naive with an aware datetime: ``TypeError`` escapes (only ``ValueError`` is caught) and
    ``pulumi up`` dies with a Python traceback instead of the documented refusal that names what to
    do."""
    latch = Latch("active", "2026-03-01T10:00:00", "hand-written")
    try:
        refuse_dr_update(latch, {"drStoppedAt": "2026-03-01T11:00:00+00:00"})
    except FailbackInProgress:
        return
    except TypeError as exc:  # what dr21 does
        raise AssertionError(f"the refusal crashed instead of refusing: {exc!r}") from exc
    raise AssertionError("a failback that stopped region B's writes after the latch was not refused")


def test_bl21_4_an_unreadable_journal_under_an_active_latch_refuses_the_dr_stack_as_an_unreadable_latch_does() -> (
    None
):
    """BL21-4 (low): the latch fails safe (unreadable JSON reads as active: "refusing ... rather than
    risk sending traffic back"), the journal beside it fails open: ``read_failover_state`` reads a
    journal that is not a JSON object as empty, so under an active latch, with the record of a
    failback draining region B unreadable, ``pulumi up -s dr`` is not refused and (the latch keeps the
    DR tier active) gives region B its capacity back, whether or not a writer move is under way."""
    import json

    import pytest

    from automation import synth

    with pytest.raises(FailbackInProgress) as refused:
        synth.synthesize(
            "dr",
            {"dr:active": True},
            latch=Latch("active", "2026-03-01T10:00:00+00:00", "failover").to_json(),
            journal=json.dumps({"drStoppedAt": "2026-03-01T11:30:00+00:00"})[:-5],  # cut mid-write
        )
    # One error naming the parameter and what to do (SSM keeps a parameter's versions:
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameterHistory.html).
    text = str(refused.value)
    assert "pulumi up -s dr is refused" in text and "failover-state-journal" in text, text
    assert "get-parameter-history" in text and "put-parameter" in text, text


@pytest.mark.parametrize("value", ["[]", '"drStoppedAt"', '{"drStoppedAt": "2026-03-01T11:30'])
@pytest.mark.parametrize("latch", ["active", "standby"])
def test_bl21_4_the_primary_stack_refuses_a_journal_it_cannot_read_whatever_the_latch_says(
    value: str, latch: str
) -> None:
    """The primary stack keeps region A fenced while the journal says a failover fenced it
    (``region_a_fenced``); a journal it cannot read cannot say it did not, so the update is refused
    (the canary reads such a journal as a failover holding region A: lambdas/health_check/probe.py)."""
    from automation import synth

    with pytest.raises(FailbackInProgress, match="pulumi up -s primary is refused: the run journal"):
        synth.synthesize(
            "primary", latch=Latch(latch, "2026-03-01T10:00:00+00:00", "failover").to_json(), journal=value
        )


def test_bl21_4_a_standby_latch_with_an_unreadable_journal_does_not_refuse_the_dr_stack() -> None:
    """Under a standby latch no failback is under way: the dr stack decides from the latch alone."""
    refuse_dr_update(Latch("standby", "2026-03-01T10:00:00+00:00", "failback"), None)


@pytest.mark.parametrize("naming", ["token", "legacy"])
def test_bl21_5_the_adoption_of_the_runbooks_aurora_instance_is_judged_against_the_provider_defaults(
    naming: str,
) -> None:
    """BL21-5 (medium: an import the harness accepts that the real engine would refuse).

    The runbook's promote step creates ``<cluster>-failover-<token>`` (an earlier runbook:
    ``<cluster>-failover-1``, which deployed stacks keep and must still adopt) with four arguments (identifier,
    cluster, class, engine: lambdas/failover/promotion.py ``_promote_aurora``); AWS gives it the
    ``PromotionTier`` it documents as "Default: 1"
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html,
    ``PromotionTier``). The dr stack adopts it with the ``import`` option declaring the same four
    arguments; the provider fills the ones left out with its schema defaults before the engine
    diffs them against the resource it read, and ``promotionTier`` has one: "Default 0"
    (https://www.pulumi.com/registry/packages/aws/api-docs/rds/clusterinstance/). The engine then
    sees promotionTier 0 (program) vs 1 (AWS) and fails the import
    (https://www.pulumi.com/docs/iac/concepts/options/import/), which blocks every ``pulumi up -s dr``
    after a runbook failover of a headless secondary. The harness's ``import_mismatches`` models
    provider defaults of omitted inputs only for ``aws:rds/instance:Instance``
    (``IMPORT_ABSENT_DIFFERS``), so ``plan --lifecycle runbook-runbook`` (aurora-global) reports the
    adoption clean."""
    from automation import synth
    from automation.lifecycle import Stored, import_mismatches
    from lambdas.failover.names import failover_instance_id, legacy_failover_instance_id, new_failover_token

    cluster = synth.synthesize("dr").by_type("aws:rds/cluster:Cluster")[0].inputs["clusterIdentifier"]
    token = new_failover_token()
    ident = (
        failover_instance_id(cluster, token) if naming == "token" else legacy_failover_instance_id(cluster)
    )
    s = synth.synthesize(
        "dr",
        {"dr:active": True},
        latch=Latch("active", "2026-03-01T10:00:00+00:00", "failover").to_json(),
        live={"clusterMembers": {cluster: [ident]}},
    )
    adopted = [r for r in s.by_type("aws:rds/clusterInstance:ClusterInstance") if r.import_id is not None]
    assert [a.import_id for a in adopted] == [ident], "the dr stack adopts the runbook's instance, only it"
    r = adopted[0]
    # One logical name per instance, from its name: deployed stacks hold <cluster>-failover-1 under the
    # historical one, so it is kept (a new logical name would delete the instance and import it again).
    logical = "dr-data-db-failover-instance" + (f"-{token}" if naming == "token" else "")
    assert r.name == logical, r.name
    new = Stored(
        r.urn,
        r.type,
        r.name,
        "dr",
        r.region,
        dict(r.inputs),
        {},
        import_id=ident,
        ignore_changes=list(r.ignore_changes or []),
    )
    # What AWS has: the runbook's four arguments and AWS's defaults for the rest.
    live = {
        "identifier": ident,
        "clusterIdentifier": cluster,
        "instanceClass": r.inputs.get("instanceClass"),
        "engine": "aurora-postgresql",
        "promotionTier": 1,
    }
    # The cluster reference resolves to the cluster's identifier, as the harness resolves it.
    refs = {r.inputs["clusterIdentifier"]: cluster}

    def resolve(v: object) -> object:
        return refs.get(v, v) if isinstance(v, str) else v

    # The harness judges an adoption that leaves the tier out against the provider's default ...
    omitted = Stored(
        **{**new.__dict__, "inputs": {k: v for k, v in new.inputs.items() if k != "promotionTier"}}
    )
    mismatches = import_mismatches(omitted, live, resolve)
    assert [k for k, _, _ in mismatches] == ["promotionTier"], (
        "the provider's default promotionTier 0 differs from the runbook instance's 1 (AWS's default): "
        f"the import fails on the real engine; the harness found {mismatches}"
    )
    # ... and the program declares what AWS gave the runbook's instance: the import matches.
    assert r.inputs.get("promotionTier") == 1, r.inputs
    assert import_mismatches(new, live, resolve) == []


SINCE = "2026-03-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("previous", "active", "phase", "refused"),
    [
        # BL21-8: after switch-writer, any tier that undrains region B is refused ...
        ("switch-writer", True, "replicate", True),
        ("switch-writer", True, None, True),
        ("switch-writer", True, "drain", False),  # drained: safe
        ("switch-writer", True, "switch-writer", False),
        # ... going back before switch-writer is safe (region B still holds the writer) ...
        ("drain", True, "replicate", False),
        # (`replicate`, then dr:active true without a phase is not a step back BL21-8 refuses; in
        # rds-replica mode it drops region A's protected failback instance, refused since breaklife22
        # BL22-3: tests/components/test_failover.py, test_dr_active_without_a_phase_is_refused_...)
        # ... and standby is always allowed (it ends a failback the runbook finished).
        ("switch-writer", False, None, False),
    ],
)
def test_bl21_8_failback_phases_only_step_back_where_region_b_stays_drained(
    previous: str, active: bool, phase: str | None, refused: bool
) -> None:
    from components.config import DrFlags
    from components.failover import Capacity, FailoverRefused, PhaseRecord, decide

    latch = Latch("active" if active or phase is not None else "standby", SINCE, "failover")
    record = PhaseRecord(previous, SINCE)

    def run() -> object:
        return decide(
            DrFlags(active, failback=phase),
            Capacity(2, 2, 6),
            database_mode="rds-replica",
            latch=latch,
            previous=record,
        )

    if refused:
        with pytest.raises(FailoverRefused, match="dr:failback") as err:
            run()
        text = str(err.value)
        assert "switch-writer, route-back, complete" in text and "dr:active false" in text, text
    else:
        run()


def test_bl21_8_a_record_of_another_failover_does_not_bind_a_new_one() -> None:
    """A new failover writes a new latch ``since``: the last cycle's failback record does not stop it."""
    from components.config import DrFlags
    from components.failover import Capacity, PhaseRecord, decide

    tier = decide(
        DrFlags(True),
        Capacity(2, 2, 6),
        database_mode="aurora-global",
        latch=Latch("active", "2026-04-01T10:00:00+00:00", "failover"),
        previous=PhaseRecord("complete", SINCE),
    )
    assert tier.region_b_serves


@pytest.mark.parametrize("raw", ["garbled", '{"phase": "sideways"}', "[1]"])
def test_bl21_8_an_unreadable_failback_record_fails_safe(raw: str) -> None:
    from components.failover import PhaseRecord

    record = PhaseRecord.parse(raw)
    assert record is not None and record.unreadable and record.phase == "switch-writer"
