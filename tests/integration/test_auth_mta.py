"""The authentication hooks inside real lab MTAs: relay signs, final host checks."""

from __future__ import annotations

import asyncio
import email
import mailbox
import smtplib

import pytest

from labenv.auth.dkim_keys import generate_key_pair
from labenv.auth.mta_hooks import LabAuthHooks
from labenv.mta.config import HostPort, MtaConfig
from labenv.mta.server import MtaServer
from labenv.mta.spool import Envelope
from tests.support.dns_server import DnsServer

SPOOF = (
    b"From: Mickey Mouse <mmouse@toontown.test>\r\n"
    b"To: john@alcyone.test\r\n"
    b"Subject: free cheese\r\n"
    b"\r\n"
    b"Trust me.\r\n"
)
NOTES = SPOOF.replace(b"Mickey Mouse <mmouse@toontown.test>", b"Jane <jane@campus.test>")


class NullSink:
    def send(self, severity: int, message: str) -> None:
        pass


@pytest.fixture(scope="module")
def key_pair():
    return generate_key_pair(bits=1024)


@pytest.fixture
def dns_server(key_pair):
    records = {
        "toontown.test": ['TXT "v=spf1 ip4:192.0.2.10 -all"'],
        "_dmarc.toontown.test": ['TXT "v=DMARC1; p=reject"'],
        "campus.test": ['TXT "v=spf1 ip4:127.0.0.0/8 -all"'],
        "_dmarc.campus.test": ['TXT "v=DMARC1; p=reject"'],
        "lab._domainkey.campus.test": [f"TXT {key_pair.zone_rdata()}"],
        "outside.test": ['TXT "v=spf1 -all"'],
        "_dmarc.outside.test": ['TXT "v=DMARC1; p=quarantine"'],
        "alcyone.test": ["MX 10 alcyone.test.", "A 127.0.0.1"],
    }
    with DnsServer(records) as server:
        yield server


@pytest.fixture
def start_mta(tmp_path):
    started: list[MtaServer] = []

    def start(name: str, hooks: LabAuthHooks, **fields) -> MtaServer:
        base = tmp_path / name
        config = MtaConfig(
            hostname=name,
            listen=HostPort("127.0.0.1", 0),
            domains=(name,),
            users=("john",),
            spool=base / "spool",
            mail_dir=base / "mail",
            retry_delays=(0.2,),
            **fields,
        )
        config.mail_dir.mkdir(parents=True)
        server = MtaServer(config, hooks=hooks, sink=NullSink())
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def delivered(server: MtaServer, user: str = "john") -> list[email.message.Message]:
    server.wait_idle()
    box = mailbox.mbox(server.config.mail_dir / user, create=False)
    try:
        return list(box)
    finally:
        box.close()


def final_hooks(dns_server, mode: str, notes: list) -> LabAuthHooks:
    return LabAuthHooks(
        authserv_id="alcyone.test", resolver_address=dns_server.address_text, mode=mode,
        note=lambda queue_id, text: notes.append((queue_id, text)),
    )


def send(server: MtaServer, sender: str, message: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.address[1], timeout=10) as client:
        client.ehlo("regulus.campus.test")
        client.sendmail(sender, ["john@alcyone.test"], message)


def test_final_observe_reports_spoof(dns_server, start_mta):
    notes: list = []
    final = start_mta("alcyone.test", final_hooks(dns_server, "observe", notes))
    send(final, "mmouse@toontown.test", SPOOF)

    [message] = delivered(final)
    assert message["Received-SPF"].startswith("fail (alcyone.test: domain of mmouse@toontown.test")
    results = " ".join(message["Authentication-Results"].split())
    assert results == (
        "alcyone.test; spf=fail smtp.mailfrom=mmouse@toontown.test; dkim=none; "
        "dmarc=fail (p=reject) header.from=toontown.test"
    )
    assert message["X-Labenv-Quarantine"] is None
    assert len(notes) == 1
    assert "dmarc=fail policy=reject action=reject mode=observe" in notes[0][1]


def test_final_fields_above_received(dns_server, start_mta):
    final = start_mta("alcyone.test", final_hooks(dns_server, "observe", []))
    send(final, "mmouse@toontown.test", SPOOF)
    [message] = delivered(final)
    names = [name for name, _ in message.items()]
    assert names[:4] == ["Return-Path", "Received-SPF", "Authentication-Results", "Received"]


def test_final_enforce_marks_quarantine(dns_server, start_mta):
    final = start_mta("alcyone.test", final_hooks(dns_server, "enforce", []))
    send(final, "someone@outside.test", SPOOF.replace(b"mmouse@toontown.test", b"someone@outside.test"))
    [message] = delivered(final)
    assert message["X-Labenv-Quarantine"] == "dmarc p=quarantine"


def test_enforce_reject_reply(dns_server):
    hooks = final_hooks(dns_server, "enforce", [])
    envelope = Envelope(
        queue_id="q1", sender="mmouse@toontown.test", recipients=[], received_at=0.0,
        client_ip="10.77.1.5", helo="regulus.campus.test",
    )
    reply = asyncio.run(hooks.reject_reply(envelope, SPOOF))
    assert reply == "550 5.7.1 Rejected by DMARC policy for toontown.test"


def test_observe_never_rejects(dns_server):
    hooks = final_hooks(dns_server, "observe", [])
    envelope = Envelope(queue_id="q2", sender="mmouse@toontown.test", recipients=[], received_at=0.0, client_ip="10.77.1.5")
    assert asyncio.run(hooks.reject_reply(envelope, SPOOF)) is None


def start_chain(dns_server, key_pair, start_mta, mode: str) -> tuple[MtaServer, MtaServer]:
    """Start a final MTA and a signing relay that sends it everything; return (relay, final)."""
    final = start_mta("alcyone.test", final_hooks(dns_server, mode, []))
    relay_hooks = LabAuthHooks(
        authserv_id="regulus.campus.test", dkim_domain="campus.test", dkim_selector="lab",
        dkim_key_pem=key_pair.private_key_pem,
    )
    relay = start_mta(
        "regulus.campus.test", relay_hooks, role="relay",
        resolver=HostPort(*dns_server.address), relay_port=final.address[1],
    )
    return relay, final


def test_relay_signs_and_final_passes(dns_server, key_pair, start_mta):
    relay, final = start_chain(dns_server, key_pair, start_mta, "enforce")
    send(relay, "jane@campus.test", NOTES)
    relay.wait_idle()

    [message] = delivered(final)
    assert message["DKIM-Signature"] is not None
    results = " ".join(message["Authentication-Results"].split())
    assert "spf=pass smtp.mailfrom=jane@campus.test" in results
    assert "dkim=pass header.d=campus.test header.s=lab" in results
    assert "dmarc=pass (p=reject) header.from=campus.test" in results


def test_relay_signature_does_not_align_spoof(dns_server, key_pair, start_mta):
    relay, final = start_chain(dns_server, key_pair, start_mta, "observe")
    send(relay, "mmouse@toontown.test", SPOOF)
    relay.wait_idle()

    [message] = delivered(final)
    results = " ".join(message["Authentication-Results"].split())
    assert "dkim=pass header.d=campus.test" in results
    assert "dmarc=fail (p=reject) header.from=toontown.test" in results


def test_final_enforce_rejects_spoof_in_session(dns_server, start_mta):
    notes: list = []
    final = start_mta("alcyone.test", final_hooks(dns_server, "enforce", notes))
    with smtplib.SMTP("127.0.0.1", final.address[1], timeout=10) as client:
        client.ehlo("regulus.campus.test")
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("mmouse@toontown.test", ["john@alcyone.test"], SPOOF)
    assert caught.value.smtp_code == 550
    assert caught.value.smtp_error.decode().startswith("5.7.1 ")
    assert "toontown.test" in caught.value.smtp_error.decode()
    final.wait_idle()
    assert not (final.config.mail_dir / "john").exists()


def test_serve_builds_hooks_from_config_tables(dns_server, tmp_path):
    from labenv.cli.mta_commands import _auth_hooks

    config = MtaConfig(
        role="final",
        hostname="alcyone.test",
        listen=HostPort("127.0.0.1", 0),
        domains=("alcyone.test",),
        users=("john",),
        spool=tmp_path / "spool",
        mail_dir=tmp_path / "mail",
        resolver=HostPort(*dns_server.address),
        auth={"policy": "enforce"},
    )
    hooks = _auth_hooks(config, lambda: None)
    assert hooks.mode == "enforce"
    assert hooks.resolver is not None
    assert hooks.dkim_key_pem is None
