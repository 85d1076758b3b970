"""Tests of the small expect, driving a scripted program over a real socket pair."""

import pytest

from labenv.replay.expect import Expect, ExpectTimeout
from labenv.replay.testing import ScriptedTerminal


@pytest.fixture
def program():
    terminals = []

    def start(script):
        terminal = ScriptedTerminal(script)
        terminals.append(terminal)
        return Expect(terminal), terminal

    yield start
    for terminal in terminals:
        terminal.close()


def test_expect_dialog(program):
    session, terminal = program(["Subject: ", None, None, None, "\r", "\r\nCc: ", None, "EOT\r\n"])
    session.expect("Subject: $", timeout=5)
    session.send_line("Test")
    session.send_line("This is a test.")
    session.send_line(".")
    session.expect("^Cc: ", timeout=5)
    session.send_line("")
    assert session.read_to_end(timeout=5)
    terminal.thread.join(5)
    assert terminal.typed == ["Test", "This is a test.", ".", ""]
    assert session.transcript == "Subject: Test\nThis is a test.\n.\n\nCc: \nEOT\n"


def test_expect_captures_in_order(program):
    session, _ = program(["250 first\r\n", "250 2.0.0 ABC Message accepted\r\n"])
    first = session.expect(r"^250 (\S+)", timeout=5)
    second = session.expect(r"^250 (\S+)", timeout=5)
    assert first.group(1) == "first"
    assert second.group(1) == "2.0.0"


def test_expect_timeout(program):
    session, _ = program(["? ", None])
    with pytest.raises(ExpectTimeout) as caught:
        session.expect("never", timeout=0.5)
    assert not caught.value.ended
    assert caught.value.tail == "? "
    session.send_line("x")


def test_expect_program_ended(program):
    session, _ = program(["bye\r\n"])
    with pytest.raises(ExpectTimeout) as caught:
        session.expect("prompt", timeout=5)
    assert caught.value.ended
    assert "the program ended" in str(caught.value)
