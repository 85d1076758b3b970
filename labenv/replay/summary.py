"""The console summary of a replay: one line per step, a table per run, and each difference."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from labenv.replay.record import RunRecord, StepRecord


def print_step(console: Console, session_key: str, step: StepRecord) -> None:
    """Print one line for a finished step: its result, prompt and check count."""
    passed = sum(check.ok for check in step.checks)
    mark = Text("pass", style="green") if step.ok else Text("FAIL", style="bold red")
    line = Text.assemble(mark, f" {session_key}: {step.user}@{step.host}: {step.command} ")
    line.append(f"({passed}/{len(step.checks)} checks, {step.seconds:g} s)", style="dim")
    console.print(line, highlight=False)


def print_summary(console: Console, record: RunRecord) -> None:
    """Print the per-session table, then expected against actual for every failure."""
    table = Table(title=f"{record.title} on lab {record.lab} ({record.seconds:g} s)")
    for column in ("session", "title", "steps", "checks passed", "result"):
        table.add_column(column)
    for session in record.sessions:
        checks = [check for step in session.steps for check in step.checks]
        table.add_row(
            session.key,
            session.title,
            str(len(session.steps)),
            f"{sum(check.ok for check in checks)}/{len(checks)}",
            Text("pass", style="green") if session.ok else Text("FAIL", style="bold red"),
        )
    if record.relations:
        passed = sum(check.ok for check in record.relations)
        ok = passed == len(record.relations)
        table.add_row("relations", "", "", f"{passed}/{len(record.relations)}",
                      Text("pass", style="green") if ok else Text("FAIL", style="bold red"))
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
