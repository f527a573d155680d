"""The local drill end to end: the real runbooks against a moto server, in both database modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from automation import drill


@pytest.mark.parametrize("mode", ["rds-replica", "aurora-global"])
def test_local_drill_fails_over_and_back_and_writes_a_report(mode: str, tmp_path: Path) -> None:
    lines: list[str] = []
    result = drill.run_local(mode, reports_dir=tmp_path, out=lines.append)

    assert result.failover.outcome == "done", result.failover.format_table()
    assert result.failback.outcome == "done", result.failback.format_table()
    # The emulator's end state after each runbook, not just the runbooks' own word for it.
    failed = [c for c in result.after_failover + result.after_failback if not c.ok]
    assert failed == []
    assert {c.what.split(" (")[0] for c in result.after_failover} >= {
        "region B web tier desired capacity",
        "latch",
        "region B event source",
    }
    assert result.passed
    # The region B health answer came from the API's own health code, reporting the writer in B.
    verify = result.failover.record("verify")
    assert "as writer" in verify.detail and "us-west-2" in verify.detail

    assert result.report_path is not None and result.chart_path is not None
    report = result.report_path.read_text()
    assert "local AWS emulator" in report and "| promote_database | done |" in report
    assert result.chart_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("against a local AWS emulator" in line for line in lines)


def test_drill_refuses_an_unknown_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        drill.main(["--local", "--mode", "dynamo"])
    assert exit_.value.code == 2
    assert "invalid choice: 'dynamo'" in capsys.readouterr().err
