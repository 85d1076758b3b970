"""Final delivery: mbox format read back by Python and bsd-mailx, headers added, DNS names and spam marks."""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import socket
import smtplib
import subprocess
import threading

import pytest

from labenv.mta.config import HostPort, MtaConfig
from labenv.mta.server import MtaServer
from tests.support.dns_server import DnsServer


def _send(port: int, sender: str, recipients: list[str], data: bytes, helo: str = "regulus.test") -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo(helo)
        client.sendmail(sender, recipients, data)


def test_mbox_read_back_by_python(mta):
    for number in range(3):
        _send(mta.port, "a@b.test", ["john@alcyone.test"], f"Subject: n{number}\r\n\r\nFrom here\r\nbody {number}\r\n".encode())
    # Delivery workers run side by side, so the mailbox order may differ from the order sent.
    messages = {message["Subject"]: message for message in mta.messages("john")}
    assert sorted(messages) == ["n0", "n1", "n2"]
    assert messages["n2"].get_payload() == ">From here\nbody 2\n"
    assert messages["n0"]["Return-Path"] == "<a@b.test>"


@pytest.mark.skipif(shutil.which("mail") is None, reason="bsd-mailx is not installed")
def test_mbox_read_back_by_mailx(mta, tmp_path):
    _send(mta.port, "a@b.test", ["john@alcyone.test"], b"Subject: first one\r\n\r\nhello\r\n")
    _send(mta.port, "c@d.test", ["john@alcyone.test"], b"Subject: second one\r\n\r\nFrom me\r\nbye\r\n")
    mta.server.wait_idle()
    # "x" leaves mailx without rewriting the mailbox.
    result = subprocess.run(
        ["mail", "-N", "-f", str(mta.mbox_path("john"))],
        input=b"p 2\nx\n",
        capture_output=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=30,
        check=True,
    )
    output = result.stdout.decode()
    assert f'"{mta.mbox_path("john")}": 2 messages 2 new' in output
    assert "Subject: second one" in output
    assert ">From me\nbye" in output


def test_received_header_format(mta):
    _send(mta.port, "a@b.test", ["john@alcyone.test"], b"Subject: r\r\n\r\nx\r\n", helo="regulus")
    raw = mta.raw_mbox("john").decode()
    pattern = (
        r"Received: from regulus \(unknown \[127\.0\.0\.1\]\)\n"
        r"\tby alcyone\.test \(labenv-mta 0\.1\.0\) with ESMTP id \w{14}\n"
        r"\tfor <john@alcyone\.test>; \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4} \(\w+\)\n"
    )
    assert re.search(pattern, raw), raw


def test_received_without_for_with_two_recipients(mta):
    _send(mta.port, "a@b.test", ["john@alcyone.test", "jane@alcyone.test"], b"Subject: two\r\n\r\nx\r\n")
    [john] = mta.messages("john")
    [jane] = mta.messages("jane")
    assert " for " not in john["Received"]
    assert john["Received"] == jane["Received"]
    assert re.search(r"with ESMTP id \w{14}; ", john["Received"])


def test_helo_gives_smtp_protocol(mta):
    with smtplib.SMTP("127.0.0.1", mta.port) as client:
        client.helo("regulus")
        client.sendmail("a@b.test", ["john@alcyone.test"], b"Subject: h\r\n\r\nx\r\n")
    [message] = mta.messages("john")
    assert " with SMTP id " in message["Received"]
    assert mta.sink.matching("proto=SMTP, daemon=MTA-v4, relay=[127.0.0.1]")


def test_message_id_and_date_added(mta):
    _send(mta.port, "a@b.test", ["john@alcyone.test"], b"Subject: bare\r\n\r\nx\r\n")
    [message] = mta.messages("john")
    queue_id = re.search(r"id (\w{14})", message["Received"]).group(1)
    assert re.fullmatch(rf"<\d{{12}}\.{queue_id}@alcyone\.test>", message["Message-Id"])
    assert message["Date"]
    [from_line] = mta.sink.matching("from=<a@b.test>")
    assert f"msgid={message['Message-Id']}" in from_line


def test_missing_from_taken_from_envelope(mta):
    _send(mta.port, "mmouse@toontown.test", ["john@alcyone.test"], b"Subject: bogus\r\n\r\nx\r\n")
    [message] = mta.messages("john")
    assert message.get_all("From") == ["mmouse@toontown.test"]


def test_existing_from_left_alone(mta):
    _send(mta.port, "bounce@b.test", ["john@alcyone.test"], b"From: Jane <jane@b.test>\r\nSubject: s\r\n\r\nx\r\n")
    [message] = mta.messages("john")
    assert message.get_all("From") == ["Jane <jane@b.test>"]


def test_reverse_name_and_forward_confirmation(make_mta):
    records = {
        "1.0.0.127.in-addr.arpa.": ["PTR regulus.test."],
        "regulus.test.": ["A 127.0.0.1"],
    }
    with DnsServer(records) as dns_server:
        host, port = dns_server.address
        server = make_mta(resolver=HostPort(host, port))
        with smtplib.SMTP("127.0.0.1", server.port) as client:
            code, text = client.ehlo("regulus")
            assert text.decode().splitlines()[0] == "alcyone.test Hello regulus.test [127.0.0.1], pleased to meet you"
            client.sendmail("a@b.test", ["john@alcyone.test"], b"Subject: r\r\n\r\nx\r\n")
        [message] = server.messages("john")
    assert message["Received"].startswith("from regulus (regulus.test [127.0.0.1])")
    [from_line] = server.sink.matching("from=<a@b.test>")
    assert from_line.endswith("relay=regulus.test [127.0.0.1]")


def test_unconfirmed_reverse_name_may_be_forged(make_mta):
    records = {
        "1.0.0.127.in-addr.arpa.": ["PTR forged.test."],
        "forged.test.": ["A 10.9.9.9"],
    }
    with DnsServer(records) as dns_server:
        host, port = dns_server.address
        server = make_mta(resolver=HostPort(host, port))
        _send(server.port, "a@b.test", ["john@alcyone.test"], b"Subject: f\r\n\r\nx\r\n")
        server.server.wait_idle()
    [from_line] = server.sink.matching("from=<a@b.test>")
    assert from_line.endswith("relay=forged.test [127.0.0.1] (may be forged)")


def test_spamd_down_marks_not_scanned(make_mta, unused_port):
    server = make_mta(spamd=HostPort("127.0.0.1", unused_port), spamd_timeout=2.0)
    _send(server.port, "a@b.test", ["john@alcyone.test"], b"Subject: s\r\n\r\nx\r\n")
    [message] = server.messages("john")
    assert message["X-Labenv-Spam-Check"].startswith("not scanned (spamd unreachable: ")
    assert server.sink.matching("spam check for john skipped: spamd unreachable")


def test_queue_ids_unique_under_load(mta):
    def send_batch(batch: int) -> list[str]:
        ids = []
        with smtplib.SMTP("127.0.0.1", mta.port) as client:
            client.ehlo("load.test")
            for number in range(10):
                client.mail("a@b.test")
                client.rcpt("john@alcyone.test")
                code, text = client.data(f"Subject: {batch}-{number}\r\n\r\n{'x' * 1000}\r\n".encode())
                assert code == 250
                ids.append(text.decode().split()[1])
        return ids

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        ids = [qid for batch in pool.map(send_batch, range(20)) for qid in batch]
    assert len(ids) == 200
    assert len(set(ids)) == 200
    messages = mta.messages("john")
    assert len(messages) == 200
    assert {re.search(r"id (\w{14})", message["Received"]).group(1) for message in messages} == set(ids)
    assert list(mta.config.spool.iterdir()) == []


class FakeSpamd:
    """A spamd stand-in that scores every message 2.5 of 5.0 and returns X-Spam fields."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(re.search(rb"Content-length: (\d+)", head).group(1))
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests.append(head)
                headers = body.partition(b"\r\n\r\n")[0] + (
                    b"\r\nX-Spam-Checker-Version: SpamAssassin 4.0.1 (2022-12-14) on spamd.test"
                    b"\r\nX-Spam-Level: **"
                    b"\r\nX-Spam-Status: No, score=2.5 required=5.0 tests=MISSING_MID autolearn=no version=4.0.1"
                    b"\r\n\r\n"
                )
                reply = b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\nSpam: False ; 2.5 / 5.0\r\n\r\n" % len(headers)
                connection.sendall(reply + headers)

    def close(self) -> None:
        self.listener.close()


def test_spam_fields_added_per_user(make_mta):
    spamd = FakeSpamd()
    try:
        server = make_mta(spamd=HostPort("127.0.0.1", spamd.port))
        _send(server.port, "a@b.test", ["john@alcyone.test", "jane@alcyone.test"], b"Subject: s\r\n\r\nx\r\n")
        [john] = server.messages("john")
        [jane] = server.messages("jane")
    finally:
        spamd.close()
    assert john["X-Spam-Status"] == "No, score=2.5 required=5.0 tests=MISSING_MID autolearn=no version=4.0.1"
    assert john["X-Spam-Level"] == "**"
    assert jane["X-Spam-Checker-Version"].startswith("SpamAssassin 4.0.1")
    assert "X-Labenv-Spam-Check" not in john
    users = sorted(re.search(rb"User: (\w+)", head).group(1) for head in spamd.requests)
    assert users == [b"jane", b"john"]


def test_mail_log_reaches_syslog_over_udp(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    config = MtaConfig(
        hostname="alcyone.test",
        listen=HostPort("127.0.0.1", 0),
        domains=("alcyone.test",),
        users=("john",),
        spool=tmp_path / "spool",
        mail_dir=tmp_path / "mail",
        syslog=f"udp:127.0.0.1:{receiver.getsockname()[1]}",
        syslog_tag="sm-mta",
    )
    config.mail_dir.mkdir()
    server = MtaServer(config)
    try:
        _, port = server.start()
        _send(port, "a@b.test", ["john@alcyone.test"], b"Subject: log\r\n\r\nx\r\n")
        datagrams = [receiver.recv(4096).decode(), receiver.recv(4096).decode()]
    finally:
        server.stop()
        receiver.close()
    # mail.info is facility 2, severity 6: PRI 22 (RFC 3164 section 4.1.1).
    assert all(datagram.startswith("<22>") for datagram in datagrams)
    assert re.search(r" sm-mta\[\d+\]: \w{14}: from=<a@b\.test>, size=", datagrams[0])
    assert re.search(r" sm-mta\[\d+\]: \w{14}: to=<john@alcyone\.test>, delay=", datagrams[1])


def test_delivery_reads_spool_when_memory_full(mta, monkeypatch):
    # With no room in memory, the first attempt must read the message back
    # from the spool and deliver the same bytes.
    from labenv.mta import queue

    body = b"Subject: from memory\r\n\r\nline one\r\nFrom two\r\n"
    _send(mta.port, "a@b.test", ["john@alcyone.test"], body)
    monkeypatch.setattr(queue, "MEMORY_QUEUE_BYTES", 0)
    _send(mta.port, "a@b.test", ["john@alcyone.test"], body.replace(b"from memory", b"from spool"))
    messages = {message["Subject"]: message for message in mta.messages("john")}
    assert sorted(messages) == ["from memory", "from spool"]
    for message in messages.values():
        assert message.get_payload() == "line one\n>From two\n"
        assert message["Return-Path"] == "<a@b.test>"
    assert list(mta.server.services.spool.directory.iterdir()) == []
