"""Tests of the small expect, driving a scripted program over a real socket pair."""

import socket
import threading

import pytest

from labenv.replay.expect import Expect, ExpectTimeout


def serve(sock: socket.socket, script):
    """Play a program on ``sock``: strings are written, None reads one typed line."""
    typed = []
    with sock:
        try:
            play(sock, script, typed)
        except OSError:
            # The test closed its end early; what was typed so far is the result.
            pass
    return typed


def play(sock, script, typed):
    for item in script:
        if item is not None:
            sock.sendall(item.encode())
            continue
        line = b""
        while not line.endswith(b"\r"):
            chunk = sock.recv(1)
            if not chunk:
                return
            line += chunk
        typed.append(line[:-1].decode())
        # Like a terminal, echo what was typed, with CR LF.
        sock.sendall(line[:-1] + b"\r\n")


@pytest.fixture
def program():
    pairs = []

    def start(script):
        ours, theirs = socket.socketpair()
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("typed", serve(theirs, script)))
        thread.start()
        pairs.append((ours, thread))
        return Expect(ours), thread, result

    yield start
    for ours, thread in pairs:
        ours.close()
        thread.join(5)


def test_expect_dialog(program):
    session, thread, result = program(["Subject: ", None, None, None, "\r", "\r\nCc: ", None, "EOT\r\n"])
    session.expect("Subject: $", timeout=5)
    session.send_line("Test")
    session.send_line("This is a test.")
    session.send_line(".")
    session.expect("^Cc: ", timeout=5)
    session.send_line("")
    assert session.read_to_end(timeout=5)
    thread.join(5)
    assert result["typed"] == ["Test", "This is a test.", ".", ""]
    assert session.transcript == "Subject: Test\nThis is a test.\n.\n\nCc: \nEOT\n"


def test_expect_captures_in_order(program):
    session, _, _ = program(["250 first\r\n", "250 2.0.0 ABC Message accepted\r\n"])
    first = session.expect(r"^250 (\S+)", timeout=5)
    second = session.expect(r"^250 (\S+)", timeout=5)
    assert first.group(1) == "first"
    assert second.group(1) == "2.0.0"


def test_expect_timeout(program):
    session, _, _ = program(["? ", None])
    with pytest.raises(ExpectTimeout) as caught:
        session.expect("never", timeout=0.5)
    assert not caught.value.ended
    assert caught.value.tail == "? "
    session.send_line("x")


def test_expect_program_ended(program):
    session, _, _ = program(["bye\r\n"])
    with pytest.raises(ExpectTimeout) as caught:
        session.expect("prompt", timeout=5)
    assert caught.value.ended
    assert "the program ended" in str(caught.value)
