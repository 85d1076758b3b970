"""The verifier against the zones and DKIM key that labenv generates for the default lab."""

from __future__ import annotations

import pytest

from labenv.auth.verify import sign_message, verify_message
from labenv.lab.labfile import load_lab
from labenv.lab.secrets import load_or_create_secrets
from labenv.lab.zones import render_zones
from tests.support.dns_server import DnsServer


@pytest.fixture(scope="module")
def lab_dns(tmp_path_factory):
    lab = load_lab(None, name="authzones")
    secrets = load_or_create_secrets(tmp_path_factory.mktemp("state"), lab)
    zone_text = "\n".join(zone.text for zone in render_zones(lab, secrets))
    with DnsServer(zone_text) as server:
        yield lab, secrets, server


def message_from(author: str, subject: str) -> bytes:
    return (
        f"From: {author}\r\nTo: john@alcyone.example\r\nSubject: {subject}\r\n"
        f"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@lab>\r\n\r\nbody\r\n"
    ).encode()


def verify_from_relay(lab, server, message: bytes, mail_from: str):
    relay = lab.host_with_role("relay")
    final = lab.host_with_role("final")
    return verify_message(
        message, client_ip=str(relay.address), helo=relay.fqdn, mail_from=mail_from,
        resolver=server.resolver(), authserv_id=final.fqdn,
    )


def test_lab_signed_mail_passes(lab_dns):
    lab, secrets, server = lab_dns
    key = secrets.dkim_keys[lab.domain]
    author = f"john@{lab.domain}"
    message = message_from(author, "signed")
    signature = sign_message(message, domain=key.domain, selector=key.selector, private_key_pem=key.private_pem)

    verdict = verify_from_relay(lab, server, signature + message, author)
    assert verdict.spf.result == "pass"
    assert [(result.result, result.domain) for result in verdict.dkim] == [("pass", lab.domain)]
    assert verdict.dmarc.result == "pass"


def test_lab_foreign_spoof_fails_dmarc(lab_dns):
    lab, secrets, server = lab_dns
    foreign = lab.foreign_domains[0]
    key = secrets.dkim_keys[lab.domain]
    message = message_from(f"mmouse@{foreign.name}", "spoof")
    signature = sign_message(message, domain=key.domain, selector=key.selector, private_key_pem=key.private_pem)

    verdict = verify_from_relay(lab, server, signature + message, f"mmouse@{foreign.name}")
    assert verdict.spf.result == "fail"
    assert verdict.dkim[0].result == "pass"
    assert verdict.dmarc.result == "fail"
    assert verdict.dmarc.policy == foreign.dmarc_policy
