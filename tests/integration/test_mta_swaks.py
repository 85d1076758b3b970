"""swaks as an independent SMTP client against the lab MTA."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")


def _swaks(port: int, *arguments: str) -> str:
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--timeout", "20", *arguments],
        capture_output=True,
        timeout=60,
    )
    return result.stdout.decode("utf-8", "replace") + result.stderr.decode("utf-8", "replace")


def test_swaks_ehlo_session(mta):
    output = _swaks(mta.port, "--helo", "regulus.test", "--from", "john@regulus.test", "--to", "jane@alcyone.test", "--header", "Subject: from swaks")
    assert "<-  250-alcyone.test Hello unknown [127.0.0.1], pleased to meet you" in output
    assert "<-  250 2.1.0 <john@regulus.test>... Sender ok" in output
    assert "<-  250 2.1.5 <jane@alcyone.test>... Recipient ok" in output
    assert '<-  354 Enter mail, end with "." on a line by itself' in output
    assert "<-  221 2.0.0 alcyone.test closing connection" in output
    [message] = mta.messages("jane")
    assert message["Subject"] == "from swaks"


def test_swaks_helo_session(mta):
    output = _swaks(mta.port, "--protocol", "SMTP", "--helo", "disney.com", "--from", "mmouse@disney.com", "--to", "john@alcyone.test")
    assert "<-  250 alcyone.test Hello unknown [127.0.0.1], pleased to meet you" in output
    [message] = mta.messages("john")
    assert message["Received"].startswith("from disney.com (unknown [127.0.0.1])")
    assert " with SMTP id " in message["Received"]


def test_swaks_pipelined_rejected_recipient(mta):
    output = _swaks(mta.port, "--pipeline", "--from", "a@b.test", "--to", "nobody@alcyone.test")
    assert "550 5.1.1 <nobody@alcyone.test>... User unknown" in output
    assert "354 " not in output
    assert mta.messages("john") == []
