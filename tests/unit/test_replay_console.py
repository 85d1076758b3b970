"""Tests of the console that prints replay step lines and the summary."""

import io

from labenv.cli.replay_commands import summary_console
from labenv.replay.record import StepRecord
from labenv.replay.summary import print_step


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
