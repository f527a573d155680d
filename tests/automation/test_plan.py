"""The offline plan CLI: both stacks by region, computed values masked, timings, clear errors."""

from __future__ import annotations

import json

import pytest

from automation import plan


def test_plan_prints_both_stacks_grouped_by_region_with_timing(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main([]) == 0
    out = capsys.readouterr().out
    assert "== stack primary:" in out and "== stack dr:" in out
    assert "  us-east-1  (" in out and "  us-west-2  (" in out
    assert "synthesis time:" in out and "offline" in out


def test_plan_json_masks_computed_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "primary", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    outputs = doc["stacks"]["primary"]["outputs"]
    assert outputs["vpcId"] == "<computed>" and outputs["vpcCidr"] == "10.0.0.0/16"
    assert "\u29d7" not in json.dumps(doc)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "staging"], "--stack 'staging' does not exist"),
        (["--set", "databse.mode=x"], "not a pilotlight config key"),
        (["--set", "dr:active"], "expected key=value"),
        (["--set", "database.mode=dynamo"], "pilotlight:database.mode"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan.main(argv) == 2
    assert message in capsys.readouterr().err
