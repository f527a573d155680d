"""The runbook outputs are parsed strictly: the program's keys and nothing else, each of its type.

The allowed keys are the program's: both database modes are synthesized (Pulumi mocks) and the
keys of their ``runbook`` output must be exactly :data:`lambdas.failover.context.KEYS`, so a key the
program starts exporting fails here until the validator knows it (and a key it stops exporting too).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from automation import synth
from lambdas.failover.context import (
    GENERATION_KEY,
    KEYS,
    ContextError,
    Requirement,
    RunbookContext,
    generation_of,
)
from lambdas.failover.names import generation_parameter_name
from tests.components.conftest import synthesize

MODES: dict[str, dict[str, Any]] = {
    "rds-replica": {"pilotlight:database": {"mode": "rds-replica", "engine": "postgres"}},
    "aurora-global": {"pilotlight:database": {"mode": "aurora-global"}},
}


def _dr(mode: str) -> synth.Synthesis:
    return synthesize("dr", MODES[mode])


def test_the_validator_knows_exactly_the_keys_the_program_exports() -> None:
    exported = {mode: set(_dr(mode).outputs["runbook"]) for mode in MODES}
    union = set().union(*exported.values())
    assert sorted(union - set(KEYS)) == [], "the program exports keys the runbook's validator refuses"
    assert sorted(set(KEYS) - union) == [], "the validator accepts keys the program never exports"
    for mode, keys in exported.items():
        other = "aurora-global" if mode == "rds-replica" else "rds-replica"
        assert not {k for k in keys if KEYS[k].required == Requirement(other)}, f"{mode} exports {other} keys"


@pytest.mark.parametrize("mode", MODES)
def test_the_program_stamps_its_outputs_and_deploys_the_stamp_in_region_b(mode: str) -> None:
    dr = _dr(mode)
    runbook = dr.outputs["runbook"]
    assert runbook[GENERATION_KEY] == generation_of(runbook)
    RunbookContext.from_dict(runbook)  # the stamped output parses
    (param,) = [
        p
        for p in dr.by_type("aws:ssm/parameter:Parameter")
        if p.inputs["name"] == generation_parameter_name(runbook["latchParameterName"])
    ]
    assert param.region == runbook["drRegion"]
    value = param.inputs["value"]  # pulumi-aws keeps a parameter's value secret in the state
    assert (value["value"] if isinstance(value, dict) else value) == runbook[GENERATION_KEY]
    # The runbook Lambda gets the same stamped context.
    (fn,) = [f for f in dr.by_type("aws:lambda/function:Function") if f.inputs["name"].endswith("-runbook")]
    assert (
        json.loads(fn.inputs["environment"]["variables"]["RUNBOOK_CONTEXT"])[GENERATION_KEY]
        == (runbook[GENERATION_KEY])
    )


def test_the_stamp_survives_a_json_round_trip_and_sees_every_change() -> None:
    runbook = dict(_dr("rds-replica").outputs["runbook"])
    stamp = generation_of(runbook)
    floats = {**runbook, "maxReplicationLagSeconds": float(runbook["maxReplicationLagSeconds"])}
    assert generation_of(json.loads(json.dumps(floats))) == stamp  # Pulumi's numbers are doubles
    assert generation_of({**runbook, "drHealthUrl": None}) == generation_of(
        {k: v for k, v in runbook.items() if k != "drHealthUrl"}
    )
    for key in runbook:
        if key != GENERATION_KEY:
            changed = {**runbook, key: ["changed"] if runbook[key] != ["changed"] else "x"}
            assert generation_of(changed) != stamp, key


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    return dict(_dr("aurora-global").outputs["runbook"])


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ContextError) as raised:
        RunbookContext.from_dict(data)
    return str(raised.value)


def test_an_unknown_key_is_refused_with_the_closest_known_one(good: dict[str, Any]) -> None:
    data = {k if k != "drAsgName" else "drAsgNmae": v for k, v in good.items()}
    message = _error(data)
    assert "unknown key 'drAsgNmae' (did you mean 'drAsgName'?)" in message
    assert "missing key 'drAsgName'" in message
    assert "unknown key 'colour'" in _error({**good, "colour": "blue"})


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("databaseMode", "aurora", "one of aurora-global, rds-replica; got str 'aurora'"),
        ("drRegion", "us west 2", "an AWS region name"),
        ("maxReplicationLagSeconds", "60", "a positive integer; got str '60'"),
        ("primaryCapacity", {"min": 1, "desired": 2}, "an object of integers min, desired, max"),
        ("drCapacity", {"min": 3, "desired": 2, "max": 4}, "0 <= min <= desired <= max does not hold"),
        ("drFunctionNames", "fn", "a list of non-empty strings; got str 'fn'"),
        ("switchMetric", {"namespace": "N", "name": "M", "dims": {}}, "unknown field(s) ['dims']"),
        ("notifyTopicArn", "arn:aws:sqs:us-west-2:1:q", "an SNS topic ARN"),
        (
            "drClusterArn",
            "arn:aws:rds:us-east-1:1:cluster:c",
            "'drClusterArn' is in region 'us-east-1', not in 'drRegion'",
        ),
        ("primaryHealthUrl", "ftp://x", "an http(s) URL or null"),
        ("generation", "v2", "the program's stamp"),
        (
            "primaryDbInstanceId",
            "db",
            "'primaryDbInstanceId' is a rds-replica key, but 'databaseMode' is 'aurora-global'",
        ),
    ],
)
def test_a_wrong_value_is_refused_naming_the_key_and_what_it_must_be(
    good: dict[str, Any], key: str, value: Any, says: str
) -> None:
    message = _error({**good, key: value})
    assert f"'{key}'" in message and says in message


def test_every_problem_is_reported_at_once(good: dict[str, Any]) -> None:
    data = {**good, "drRegion": 2, "drCapacity": None, "extra": 1}
    del data["appName"]
    message = _error(data)
    assert "4 problems" in message or "5 problems" in message
    for part in (
        "'drRegion' must be",
        "missing key 'drCapacity'",
        "unknown key 'extra'",
        "missing key 'appName'",
    ):
        assert part in message
