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


def test_plan_refuses_rds_for_mysql_with_one_error_and_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """MySQL is absent (break32 B32-3): ``plan --set database.engine=mysql`` prints the config's one problem
    (the key, each mode's engines, why), exit 2, no traceback and no stack."""
    assert plan.main(["--set", "database.mode=rds-replica", "--set", "database.engine=mysql"]) == 2
    out, err = capsys.readouterr()
    assert out == "", out
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1, err
    assert "pilotlight:database.engine: 'mysql'" in problems[0] and "rds-replica: postgres" in problems[0], (
        err
    )
    assert "Traceback" not in err, err
