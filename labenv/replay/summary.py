"""The console summary of a replay: one line per step, a table per run, and each difference."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from labenv.replay.record import RunRecord, StepRecord

# The columns of the summary table, in the console and in the report.
SUMMARY_COLUMNS = ("session", "title", "steps", "checks passed", "result")

# The title of the summary row that counts the relations checked across sessions.
RELATIONS_TITLE = "relations between sessions"


def print_step(console: Console, session_key: str, step: StepRecord) -> None:
    """Print one line for a finished step: its result, prompt and check count."""
    passed = sum(check.ok for check in step.checks)
    mark = Text("pass", style="green") if step.ok else Text("FAIL", style="bold red")
    line = Text.assemble(mark, f" {session_key}: {step.user}@{step.host}: {step.command} ")
    line.append(f"({passed}/{len(step.checks)} checks, {step.seconds:g} s)", style="dim")
    console.print(line, highlight=False)


@dataclass(frozen=True)
class SummaryRow:
    """One row of the summary table: a session, or all relations together."""

    key: str
    title: str
    # The steps of a session, or the number of relations checked in the relations row.
    count: int
    passed: int
    checked: int
    ok: bool


def summary_rows(record: RunRecord) -> list[SummaryRow]:
    """Count steps and checks per session, then the relations, for the console and report tables."""
    rows = []
    for session in record.sessions:
        checks = [check for step in session.steps for check in step.checks]
        rows.append(SummaryRow(session.key, session.title, len(session.steps),
                               sum(check.ok for check in checks), len(checks), session.ok))
    if record.relations:
        passed = sum(check.ok for check in record.relations)
        checked = len(record.relations)
        rows.append(SummaryRow("relations", RELATIONS_TITLE, checked, passed, checked, passed == checked))
    return rows


def print_summary(console: Console, record: RunRecord) -> None:
    """Print the per-session table, then expected against actual for every failure."""
    table = Table(title=f"{record.title} on lab {record.lab} ({record.seconds:g} s)")
    for column in SUMMARY_COLUMNS:
        table.add_column(column)
    for row in summary_rows(record):
        table.add_row(
            row.key,
            row.title,
            str(row.count),
            f"{row.passed}/{row.checked}",
            Text("pass", style="green") if row.ok else Text("FAIL", style="bold red"),
        )
    console.print(table)

    for session_key, step, check in record.failures():
        where = f"{session_key}: {step.user}@{step.host}: {step.command}" if step else session_key
        console.print(Text(f"\nFAIL {where}", style="bold red"), highlight=False)
        if check is None:
            console.print(f"  the step stopped: {step.error}", highlight=False, markup=False)
            continue
        console.print(f"  {check.name}  [{check.location}]", highlight=False, markup=False)
        console.print(Text("  expected: ", style="bold") + Text(check.expected), highlight=False)
        console.print(Text("  actual:   ", style="bold") + Text(check.actual.replace("\n", "\n            ")),
                      highlight=False)
