"""The local drill's report: terminal lines, a Markdown report and a timeline chart (PNG).

Every time shown is the emulator's virtual time (``HH:MM:SS`` on its clock, which starts at
12:00:00), every duration a virtual duration: a promotion takes its emulated minutes. Wall-clock
seconds are given once per run, to show what the drill itself cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automation.drill_checks import Check, PhaseWrites, Promotion, Verdict, refused_spans, short

if TYPE_CHECKING:
    from automation.drill import DrillResult, PhaseResult

DETAIL_WIDTH = 100
"""Terminal lines cut a step's detail here; the Markdown report keeps it whole."""


def duration(seconds: float) -> str:
    """A virtual duration for people: ``0.4 s``, ``59.0 s``, ``5 min 02 s``, ``1 h 03 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _cut(text: str, width: int = DETAIL_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def step_line(record: Any) -> str:
    """One step as it ends: name, status, virtual start, virtual duration, detail."""
    start = f"{record.started_at:%H:%M:%S}" if record.started_at else "-"
    return f"     {record.step:<24} {record.status:<12} {start}  {duration(record.duration_s):>12}  {_cut(record.detail)}"


def run_line(result: PhaseResult) -> str:
    run = result.run
    head = f"   {run.runbook}: {run.outcome.upper()} in {duration(run.duration_s)} (virtual), {result.wall_seconds:.1f} s wall"
    if run.outcome != "done":
        head += f"; stopped at {run.stopped_at}: {_cut(str(run.reason), 160)}"
    return head


def promotion_line(p: Promotion | None) -> str:
    """The lag at promotion, in one line."""
    if p is None:
        return "no change of writer seen"
    if p.tail:
        ids = ", ".join(f"#{w.id}" for w in p.tail[:5]) + (" ..." if len(p.tail) > 5 else "")
        tail = f"{len(p.tail)} write(s) unapplied ({ids}), lag {duration(p.lag_seconds)}"
        tail += " (unplanned: the source's region was dark)" if p.unplanned else ""
    else:
        tail = "nothing unapplied, lag 0"
    if p.last_datapoint is None:
        metric = f"no {p.metric} datapoint before it"
    else:
        at, value = p.last_datapoint
        metric = f"last {p.metric} datapoint before it: {duration(value)} at {at:%H:%M:%S}"
    return f"writer moved to {short(p.writer)} at {p.at:%H:%M:%S}: {tail}; {metric}"


def check_line(c: Check) -> str:
    mark = {Verdict.OK: "ok", Verdict.FAILED: "FAILED", Verdict.EXPECTED_FAILURE: "FAILED, known defect", Verdict.UNEXPECTED_PASS: "ok, UNEXPECTED: known defect gone"}  # fmt: skip
    line = f"     [{mark[c.verdict]}] {c.what}: {c.observed}"
    if c.known_defect:
        line += f"\n         known defect ({'expected failure' if not c.ok else 'remove its mark'}): {c.known_defect}"
    return line


def check_lines(checks: Iterable[Check]) -> list[str]:
    return [check_line(c) for c in checks]


def _writes_row(w: PhaseWrites) -> tuple[str, ...]:
    outage = f"{duration((w.outage[1] - w.outage[0]).total_seconds())} from {w.outage[0]:%H:%M:%S}" if w.outage else "none"  # fmt: skip
    return (
        w.phase.value,
        f"{w.start:%H:%M:%S}-{w.end:%H:%M:%S}",
        str(w.attempts),
        str(len(w.acknowledged)),
        str(w.refused),
        str(len(w.present)),
        str(len(w.lost)),
        str(len(w.unplanned_tail)),
        outage,
    )


WRITES_HEAD = (
    "phase",
    "virtual window",
    "attempted",
    "acknowledged",
    "refused",
    "in final writer",
    "lost",
    "of which unplanned tail",
    "longest write outage",
)


def refusal_line(w: PhaseWrites) -> str:
    """What the refused writes of a phase were told."""
    told = ", ".join(f"{n} {label}" for label, n in w.refusals.items()) or "none"
    return f"{w.phase}: refused ({w.refused}): {told}"


def lost_lines(w: PhaseWrites) -> list[str]:
    """The lost writes of a phase, named: the unplanned tail, then the rest by where they are."""
    lines = [refusal_line(w)]
    if w.unplanned_tail:
        lines.append(
            f"{w.phase}: unplanned tail: "
            + ", ".join(f"#{x.id} ({x.at:%H:%M:%S}, {x.region})" for x in w.unplanned_tail)
        )
    for key, ids in w.held_elsewhere.items():
        where = "held by no database" if key == "none" else f"held only by {short(key)}"
        shown = ", ".join(f"#{i}" for i in ids[:8]) + (" ..." if len(ids) > 8 else "")
        lines.append(f"{w.phase}: {len(ids)} lost, {where}: {shown}")
    return lines


def summary_lines(result: DrillResult) -> list[str]:
    """The per-phase figures and the data checks, for the terminal."""
    lines = ["9. per phase (judged at the end, against the final writer):"]
    lines.append(f"   {data_source(result)}")
    for p in result.phases:
        lines.append(f"   {p.phase}: {promotion_line(p.promotion)}")
        if p.bound is not None:
            lines.append(f"   {p.phase}: the runbook reported (unplanned): {p.bound.note}")
    table = [WRITES_HEAD, *(_writes_row(p.writes) for p in result.phases if p.writes)]
    widths = [max(len(row[i]) for row in table) for i in range(len(WRITES_HEAD))]
    for row in table:
        lines.append("   " + "  ".join(cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))))  # fmt: skip
    for p in result.phases:
        if p.writes:
            lines += [f"   {line}" for line in lost_lines(p.writes)]
    for p in result.phases:
        data = [
            c
            for c in p.checks
            if c.key.value in ("promotion_tail", "no_loss", "loss_bound", "one_writer", "discarded_kept")
        ]
        if data:
            lines.append(f"   {p.phase} data:")
            lines += check_lines(data)
    return lines


def canary_lines(result: DrillResult) -> list[str]:
    """Region B's canary: its scheduled runs per phase, what they published, the runbook steps they
    invoked; and the re-seed after the failback."""
    canary = result.canary
    lines: list[str] = ["   region B's canary (on its schedule) and the re-seed:"]
    if canary is not None:
        lines.append(
            f"   canary {canary.name}: {len(canary.runs)} run(s), one every {canary.period:g} s ({canary.schedule})"
        )
        for p in result.phases:
            w = p.writes
            if w is None:
                continue
            runs = [r for r in canary.runs if w.start <= r.at < w.end]
            switch = {
                label: sum(1 for r in runs if r.switch == value)
                for label, value in (("1", 1), ("0", 0), ("not published", None))
            }
            failed = sum(1 for r in runs if r.error)
            lines.append(
                f"   {p.phase}: {len(runs)} canary run(s), region A healthy in {sum(r.healthy for r in runs)}; "
                f"switch "
                + ", ".join(f"{k} x{v}" for k, v in switch.items() if v)
                + (f"; {failed} failed" if failed else "")
            )
        acted = [i for i in canary.invocations if i.status != "already_done"]
        idle = len(canary.invocations) - len(acted)
        lines.append(
            f"   runbook Event invocations by the canary: {len(canary.invocations)} "
            f"({idle} found nothing pending)"
        )
        lines += [f"     {i.at:%H:%M:%S} {i.step} {i.status}: {_cut(i.detail, 150)}" for i in acted]
    reseed = result.failback.reseed
    if reseed is not None:
        lines.append(
            f"   re-seed after the failback: {'done' if reseed.done else 'nothing done'}: {reseed.detail}"
        )
    return lines if len(lines) > 1 else []


def data_source(result: DrillResult) -> str:
    """Where the write counts come from: ledger rows in real servers, or the modelled write log."""
    if result.deployment.emulator.pg is None:
        return "writes: the emulator's modelled write log (no real database)"
    return (
        "payments: each a POST /payments event handed to the region's function (the real API handler, its "
        "stack's environment); acknowledged = it answered 2xx (a 503 not_writer or any other refusal is "
        "not); in final writer = ledger rows in the final writer's real PostgreSQL server; "
        "lost = acknowledged and not there"
    )


def verdict_line(result: DrillResult) -> str:
    checks = result.checks
    expected = [c for c in checks if c.verdict is Verdict.EXPECTED_FAILURE]
    failed = [c for c in checks if c.verdict is Verdict.FAILED]
    stale = [c for c in checks if c.verdict is Verdict.UNEXPECTED_PASS]
    runs = ", ".join(f"{p.run.runbook} {p.run.outcome}" for p in result.phases)
    counts = f"{sum(c.ok for c in checks)}/{len(checks)} checks hold"
    parts = [runs, counts]
    if expected:
        parts.append(f"{len(expected)} expected failure(s) (known defects)")
    if failed:
        parts.append(f"{len(failed)} FAILED")
    if stale:
        parts.append(f"{len(stale)} known defect(s) no longer show: remove their marks")
    if not result.passed:
        word = "FAILED (exit 1)"
    elif expected:
        word = "KNOWN DEFECTS ONLY (exit 0; not a pass)"
    else:
        word = "PASSED (exit 0)"
    virtual = duration((result.ended - result.started).total_seconds())
    return f"drill {word}: {'; '.join(parts)}. {virtual} virtual, {result.seconds:.1f} s wall"


# --------------------------------------------------------------------------------------------------
# Markdown and chart


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(result: DrillResult, reports_dir: Path) -> tuple[Path, Path]:
    """A Markdown report and a timeline chart (PNG) of both runbooks."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    chart = reports_dir / f"drill-{result.mode}-{stamp}.png"
    report = reports_dir / f"drill-{result.mode}-{stamp}.md"
    _chart(result, chart)
    lines = [
        f"# pilotlight local drill ({result.mode})",
        "",
        f"**{verdict_line(result)}** Run {datetime.now(UTC):%Y-%m-%d %H:%M UTC}.",
        "",
        "Ran against the **local AWS emulator** (moto on 127.0.0.1 with `automation/emulator/`), not an",
        "AWS account: the runbooks, step handlers and health evaluation are the product's own code; every",
        "time is the emulator's **virtual** time and every duration an emulated one (its stated AWS",
        "timings: an RDS promotion 5 min, a cross-region replica 20 min, an Aurora instance 10 min).",
        "Every check is judged from the emulated AWS state and the emulator's log of acknowledged",
        "writes, never from the runbook's own report. A client writes every few virtual seconds",
        "through the region Route 53 answers.",
        "",
        f"**Data.** {_md(data_source(result))}.",
        "",
        f"![timeline]({chart.name})",
        "",
        "## Verdict",
        "",
        "Each check below states a claim and what the emulator shows. **ok**: it holds. **FAILED**: it",
        "does not, and nothing known explains it. **expected failure**: it does not hold, as a known",
        "defect of today's runbook predicts (named in the check; `KNOWN_DEFECTS` in",
        "`automation/drill_checks.py`). **unexpected pass**: a known defect no longer shows, and its mark",
        "must go. The drill exits 0 only when both runbooks completed and every check is ok or an",
        "expected failure: that is not a pass, and the verdict line says which it is.",
        "",
        "## What happened (virtual time)",
        "",
        "| time | event |",
        "| --- | --- |",
    ]
    lines += [f"| {at:%H:%M:%S} | {_md(text)} |" for at, text in result.events]
    lines.append("")
    for p in result.phases:
        run = p.run
        lines += [
            f"## {p.phase.value.capitalize()}: runbook {run.outcome}",
            "",
            f"{duration(run.duration_s)} virtual, {p.wall_seconds:.1f} s wall. Parameters: "
            + ", ".join(f"`{k}={v}`" for k, v in p.params.items())
            + ".",
            "",
        ]
        if run.outcome != "done":
            lines += [f"Stopped at `{run.stopped_at}`: {_md(run.reason)}", ""]
        lines += [
            "| step | status | start | took | detail |",
            "| --- | --- | --- | ---: | --- |",
        ]
        lines += [
            f"| {r.step} | {r.status} | {f'{r.started_at:%H:%M:%S}' if r.started_at else '-'} | "
            f"{duration(r.duration_s) if r.started_at else '-'} | {_md(r.detail)} |"
            for r in run.timeline
        ]
        lines += ["", f"**Lag at promotion.** {_md(promotion_line(p.promotion))}.", ""]
        if p.bound is not None:
            lines += [f"**Loss bound the runbook reported.** {_md(p.bound.note)}.", ""]
        if p.writes:
            w = p.writes
            lines += [
                "**Writes.** "
                + f"{w.attempts} attempted, {len(w.acknowledged)} acknowledged, {w.refused} refused; "
                + f"{len(w.present)} held by the final writer `{short(w.writer)}`, {len(w.lost)} lost"
                + (f" ({len(w.unplanned_tail)} in the unplanned tail)" if w.unplanned_tail else "")
                + "."
                + (
                    f" Longest write outage: {duration((w.outage[1] - w.outage[0]).total_seconds())} from {w.outage[0]:%H:%M:%S}."
                    if w.outage
                    else ""
                ),
                "",
            ]
            lines += [f"- {_md(line)}" for line in lost_lines(w)]
            lines.append("")
        lines += ["| check | verdict | observed | known defect |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {_md(c.what)} | {c.verdict.value} | {_md(c.observed)} | {_md(c.known_defect or '')} |"
            for c in p.checks
        ]
        lines.append("")
    extra = canary_lines(result)
    if extra:
        lines += [
            "## Region B's canary and the re-seed",
            "",
            "The canary is the real `lambdas.health_check.handler.handler` on its EventBridge schedule, with",
            "its stack's environment; the runbook steps it invoked ran as the runbook Lambda runs one event.",
            "The re-seed after an rds-replica failback is the operator's `pulumi up -s dr`",
            "(`automation/reseed.py`).",
            "",
        ]
        lines += [f"- {_md(line.strip())}" for line in extra[1:]]
        lines.append("")
    if result.probes:
        lines += [
            "## Through the handler, after the drill",
            "",
            "Requests to region A's function once every count was taken (they write nothing).",
            "",
            "| request | region | answered | expected |",
            "| --- | --- | ---: | ---: |",
        ]
        lines += [
            f"| {_md(p.what)}: `{p.answer.method} {p.answer.path}` | {p.answer.region} | "
            f"{p.answer.status}{'' if p.answer.acknowledged or p.answer.status == 404 else ' ' + _md(p.answer.reason)} | {p.expected} |"
            for p in result.probes
        ]
        lines.append("")
    report.write_text("\n".join(lines))
    return report, chart


def _chart(result: DrillResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = [(p.phase.value, r) for p in result.phases for r in p.run.timeline if r.started_at is not None]
    fig, ax = plt.subplots(figsize=(11, 0.35 * len(rows) + 1.8))
    colors = {
        "done": "#2e7d32",
        "already_done": "#81c784",
        "skipped": "#9e9e9e",
        "warning": "#f9a825",
        "failed": "#c62828",
    }
    origin = result.started

    def minutes(at: datetime) -> float:
        return (at - origin).total_seconds() / 60

    labels = []
    for i, (name, r) in enumerate(rows):
        color = colors.get(r.status, "#1565c0")
        ax.barh(i, max(r.duration_s / 60, 0.15), left=minutes(r.started_at), color=color, zorder=2)
        labels.append(f"{name}: {r.step}")
    refused = refused_spans(result.client.attempts, result.ended)
    for start, end in refused:
        ax.axvspan(minutes(start), minutes(end), color="#ef9a9a", alpha=0.35, linewidth=0, zorder=0)
    for at, text in ((result.dark_at, "region A dark"), (result.back_at, "region A back")):
        ax.axvline(minutes(at), color="#455a64", linestyle="--", linewidth=0.8)
        ax.text(minutes(at), -0.8, f" {text}", fontsize=7)
    ax.set_yticks(range(len(rows)), labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("virtual minutes since the client's first write (local emulator)")
    ax.set_title(f"pilotlight local drill ({result.mode}): runbook timelines")
    handles = [Patch(color=c) for c in colors.values()] + [Patch(color="#ef9a9a", alpha=0.35)]
    ax.legend(
        handles, [*colors, "client writes refused"], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def probe_line(probe: Any) -> str:
    """One request made through the handler after the drill: what it was, what came back."""
    a = probe.answer
    verdict = "ok" if probe.ok else f"FAILED (expected {probe.expected})"
    reason = "" if a.acknowledged or a.status == 404 else f" {a.reason}"
    return f"   {probe.what}: {a.method} {a.path} in {a.region} -> {a.status}{reason} [{verdict}]"
