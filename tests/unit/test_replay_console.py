"""Tests of the console that prints replay step lines and the summary."""

import io

from labenv.cli.replay_commands import summary_console
from labenv.replay.record import CheckResult, StepRecord
from labenv.replay.summary import print_step, print_summary
from tests.unit.test_replay_report import recorded_run


def test_step_line_unwrapped_in_pipe():
    output = io.StringIO()
    step = StepRecord(
        host="loghost",
        user="root",
        command="grep 6B4LGGMF000007 /var/log/syslog",
        transcript="",
        exit_status=0,
        seconds=0.15,
    )
    print_step(summary_console(output), "logs", step)
    lines = output.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("(0/0 checks, 0.15 s)")
    assert len(lines[0]) > 80


def summary_lines(record) -> list[str]:
    output = io.StringIO()
    print_summary(summary_console(output), record)
    return output.getvalue().splitlines()


def relations_cells(lines: list[str]) -> list[str]:
    row = next(line for line in lines if "relations" in line and "│" in line)
    return [cell.strip() for cell in row.strip("│ ").split("│")]


def test_summary_relations_row_counts():
    record = recorded_run()
    record.relations.append(CheckResult("one sender", "relation", "handout.toml:250 (relation[1].same)", False,
                                        "forged = received_from", "forged=a, received_from=b"))
    cells = relations_cells(summary_lines(record))
    assert cells == ["relations", "relations between sessions", "2", "1/2", "FAIL"]


def test_summary_relations_row_passes():
    cells = relations_cells(summary_lines(recorded_run()))
    assert cells == ["relations", "relations between sessions", "1", "1/1", "pass"]


def test_summary_session_rows_unchanged():
    lines = summary_lines(recorded_run())
    read = next(line for line in lines if line.startswith("│ read"))
    assert [cell.strip() for cell in read.strip("│ ").split("│")] == ["read", "Read", "1", "1/1", "pass"]
