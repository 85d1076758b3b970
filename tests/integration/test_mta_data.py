"""Hostile and unusual input: smuggling, bare line ends, long lines, 8-bit commands, lost clients."""

from __future__ import annotations

import socket
import time

import pytest

SMUGGLED_TAIL = b"MAIL FROM:<admin@alcyone.test>\r\nRCPT TO:<jane@alcyone.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n"

# Every variant of a "." line that is not <CRLF>.<CRLF> (RFC 5321 section 4.1.1.4).
FAKE_ENDS = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n", b"\r.\n", b"\n.\r", b"\r.\r"]


def _open_data(client) -> None:
    client.command("EHLO regulus.test")
    client.command("MAIL FROM:<a@b.test>")
    client.command("RCPT TO:<john@alcyone.test>")
    assert client.command("DATA").startswith("354 ")


@pytest.mark.parametrize("fake_end", FAKE_ENDS, ids=[repr(end) for end in FAKE_ENDS])
def test_smuggling_variant_stays_inside(mta, raw_client, fake_end):
    client = raw_client(mta.port)
    _open_data(client)
    client.send(b"Subject: first\r\n\r\nfirst" + fake_end + SMUGGLED_TAIL + b".\r\n")
    reply = client.reply()
    assert reply.startswith("250 2.0.0 ")
    assert client.command("QUIT").startswith("221 ")
    messages = mta.messages("john")
    assert len(messages) == 1
    assert mta.messages("jane") == []
    raw = mta.raw_mbox("john")
    # The fake end and everything after it stayed in the one message, with
    # CRLF turned into LF. A "." that starts a CRLF line is taken off as
    # dot-stuffing (RFC 5321 section 4.5.2).
    kept = fake_end.replace(b"\r\n.", b"\r\n") if fake_end.startswith(b"\r\n") else fake_end
    assert kept.replace(b"\r\n", b"\n") + b"MAIL FROM:<admin@alcyone.test>\n" in raw
    assert len(mta.sink.matching("from=<")) == 1


def test_bare_lf_and_cr_kept(mta, raw_client):
    client = raw_client(mta.port)
    _open_data(client)
    client.send(b"Subject: bare\r\n\r\none\ntwo\rthree\r\n.\r\n")
    assert client.reply().startswith("250 ")
    raw = mta.raw_mbox("john")
    assert b"\none\ntwo\rthree\n" in raw


def test_long_command_line_rejected(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    assert client.command("NOOP " + "x" * 600) == "500 5.5.0 Command line too long"
    assert client.command("NOOP " + "x" * 5000) == "500 5.5.0 Command line too long"
    assert client.command("NOOP") == "250 2.0.0 OK"


def test_empty_command_line_rejected(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    assert client.command("") == '500 5.5.1 Command unrecognized: ""'
    assert client.command("NOOP") == "250 2.0.0 OK"


def test_long_text_line_kept_whole(mta, raw_client):
    client = raw_client(mta.port)
    _open_data(client)
    long_line = b"L" * 5000 + b"." + b"M" * 3000
    client.send(b"Subject: long\r\n\r\n" + long_line + b"\r\n..dotted\r\n.\r\n")
    assert client.reply().startswith("250 ")
    [message] = mta.messages("john")
    assert message.get_payload(decode=False).encode() == long_line + b"\n.dotted\n"


def test_eight_bit_command_rejected(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    reply = client.command("MAIL FROM:<j\xf6rg@b.test>".encode("latin-1"))
    assert reply.startswith("500 5.5.2 ")
    assert "SMTPUTF8" in reply
    assert client.command("MAIL FROM:<jorg@b.test>") == "250 2.1.0 <jorg@b.test>... Sender ok"


def test_client_lost_mid_data(mta, raw_client):
    client = raw_client(mta.port)
    _open_data(client)
    client.send(b"Subject: cut\r\n\r\nhalf a messa")
    client.sock.shutdown(socket.SHUT_RDWR)
    client.close()
    deadline = time.monotonic() + 5
    while not mta.sink.matching("lost input channel") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(mta.sink.matching("lost input channel from [127.0.0.1] to MTA after data")) == 1
    assert mta.messages("john") == []
    assert mta.sink.matching("from=<") == []
    assert list(mta.config.spool.iterdir()) == []


def test_pipelined_data_after_rejected_rcpt(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    client.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<nobody@alcyone.test>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n")
    assert client.reply() == "250 2.1.0 <a@b.test>... Sender ok"
    assert client.reply().startswith("550 5.1.1 ")
    assert client.reply() == "503 5.0.0 Need RCPT (recipient)"
    # The would-be message lines are read as commands and rejected one by one, never as mail.
    assert client.command("RSET") != ""
    assert mta.messages("john") == []


@pytest.mark.parametrize(
    ("data", "subject", "tail"),
    [
        (b"Subject: only headers\r\n", "only headers", b")\n\n"),
        (b"Subject: empty body\r\n\r\n", "empty body", b")\n\n\n"),
        (b"", None, b")\n\n"),
    ],
    ids=["headers-only", "empty-body", "empty"],
)
def test_short_messages_intact(mta, raw_client, data, subject, tail):
    client = raw_client(mta.port)
    _open_data(client)
    client.send(data + b".\r\n")
    assert client.reply().startswith("250 ")
    [message] = mta.messages("john")
    assert message["Subject"] == subject
    assert message.get_payload() == ""
    assert message["Message-Id"].endswith("@alcyone.test>")
    assert message["Date"]
    # No separator line is invented for a message that had none; the last
    # empty line is the one between mbox entries.
    assert mta.raw_mbox("john").endswith(tail)


def test_headers_kept_byte_for_byte(mta, raw_client):
    client = raw_client(mta.port)
    _open_data(client)
    original = (
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
        b"X-Folded: first part\r\n\t  second part   \r\n"
        b"date: Mon, 24 Jan 2005 00:09:03 -0800\r\n"
        b"message-ID: <keep@me>\r\n"
        b"from: A  <a@b.test>\r\n"
        b"\r\n"
        b"From the start\r\n>From quoted already\r\nline\r\n"
    )
    client.send(original + b".\r\n")
    assert client.reply().startswith("250 ")
    raw = mta.raw_mbox("john")
    lf = original.replace(b"\r\n", b"\n")
    headers, _, body = lf.partition(b"\n\n")
    assert headers + b"\n\n" in raw
    assert b"\n>From the start\n>>From quoted already\n" not in raw
    assert b"\n>From the start\n>From quoted already\nline\n" in raw
    assert raw.count(b"Message-Id:") + raw.count(b"message-ID:") == 1


@pytest.mark.parametrize(
    ("data", "body"),
    [
        (b"\r\n", ""),
        (b"\r\n\r\n", "\n"),
        (b"\r\n..\r\n", ".\n"),
        (b"\r\n.x\r\n", "x\n"),
        (b"\r\n\r.\r\n", "\r.\n"),
    ],
    ids=["one-empty-line", "two-empty-lines", "stuffed-dot", "stuffed-text", "cr-dot"],
)
def test_data_start_edge_cases(mta, raw_client, data, body):
    client = raw_client(mta.port)
    _open_data(client)
    client.send(data + b".\r\n")
    assert client.reply().startswith("250 ")
    assert client.command("NOOP") == "250 2.0.0 OK"
    [message] = mta.messages("john")
    assert message.get_payload() == body


def test_oversized_message_discarded_whole(make_mta, raw_client):
    server = make_mta(max_message_size=1000)
    client = raw_client(server.port)
    _open_data(client)
    # Far beyond the reader's buffer, with an end of data split over two sends.
    client.send(b"Subject: huge\r\n\r\n" + (b"z" * 998 + b"\r\n") * 300 + b"tail\r\n.")
    client.send(b"\r\n")
    assert client.reply() == "552 5.3.4 Message size exceeds fixed maximum message size"
    assert client.command("NOOP") == "250 2.0.0 OK"
    assert server.messages("john") == []
