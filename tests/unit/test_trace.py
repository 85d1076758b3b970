"""labenv trace: hop classification, identity comparison, verdict and the command line."""

import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from labenv.cli import cli
from labenv.errors import ConfigError
from labenv.mta.headers import received_header
from labenv.trace import LabEvidence, select_message, split_mbox, trace_message
from labenv.trace_analysis import CLAIMED, CONFIRMED, OBSERVED, UNVERIFIED, classify_hops, compare_identities, received_fields
from labenv.trace_report import render_text
from tests.support.dns_server import DnsServer

WHEN = datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc).timestamp()
LAB_HOSTS = {"regulus.campus.test": "10.77.0.10", "alcyone.campus.test": "10.77.0.20"}


def lab_received(helo, name, address, by, queue_id) -> bytes:
    return received_header(
        helo=helo, client_name=name, client_ip=address, hostname=by, product="labenv-mta 0.1.0",
        protocol="ESMTP", queue_id=queue_id, recipients=["john@alcyone.campus.test"], when=WHEN,
    )


# A spoof as the lab produces it: typed into the relay over `telnet localhost 25`
# with a forged HELO and an invented older Received field.
SPOOF = (
    b"Return-Path: <mmouse@toontown.test>\r\n"
    + lab_received("regulus.campus.test", "regulus.campus.test", "10.77.0.10", "alcyone.campus.test", "q4K8a1B9000200")
    + lab_received("foobar.yech.test", "localhost", "127.0.0.1", "regulus.campus.test", "q4K8a1B9000100")
    + b"Received: from mail.toontown.test (mail.toontown.test [192.0.2.10]) by smtp.toontown.test"
      b" with ESMTP id FAKE1; Fri, 04 Dec 2026 07:59:00 +0000\r\n"
    + b"From: Mickey Mouse <mmouse@toontown.test>\r\n"
      b"To: john@alcyone.campus.test\r\n"
      b"Subject: free cheese\r\n"
      b"\r\n"
      b"Trust me.\r\n"
)
HANDOUT_SHAPED = (
    b"Return-Path: <mmouse@toontown.test>\r\n"
    b"Received: from foobar.yech.com (regulus.csustan.edu [130.17.70.16]) by alcyone.csustan.edu "
    b"(8.12.10+Sun/8.12.8) with SMTP id j0O893wM016306 for <john@alcyone.csustan.edu>; "
    b"Mon, 24 Jan 2005 00:10:19 -0800 (PST)\r\n"
    b"From: mmouse@toontown.test\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"hi\r\n"
)
MAIL_LOG = [
    "Dec  4 08:00:00 regulus labenv-mta[7]: q4K8a1B9000100: from=<mmouse@toontown.test>, size=120, "
    "class=0, nrcpts=1, msgid=<x@regulus>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
    "Dec  4 08:00:01 regulus labenv-mta[7]: q4K8a1B9000100: to=<john@alcyone.campus.test>, delay=00:00:01, "
    "mailer=esmtp, relay=alcyone.campus.test. [10.77.0.20], stat=Sent (q4K8a1B9000200 Message accepted for delivery)",
    "Dec  4 08:00:01 alcyone labenv-mta[9]: q4K8a1B9000200: from=<mmouse@toontown.test>, size=140, relay=regulus.campus.test [10.77.0.10]",
    "Dec  4 08:00:02 other labenv-mta[1]: q4K8a1B9000999: unrelated",
]
ZONE = {
    "toontown.test": ['TXT "v=spf1 ip4:192.0.2.10 -all"'],
    "_dmarc.toontown.test": ['TXT "v=DMARC1; p=reject"'],
    "campus.test": ['TXT "v=spf1 ip4:10.77.0.0/24 -all"'],
}


def evidence(log_lines=MAIL_LOG) -> LabEvidence:
    return LabEvidence("alcyone.campus.test", LAB_HOSTS, log_lines, None)


def statuses(message, log_lines=MAIL_LOG, receiver="alcyone.campus.test"):
    return [hop.status for hop in classify_hops(received_fields(message), receiver, LAB_HOSTS, log_lines)]


def test_hops_observed_confirmed_claimed():
    assert statuses(SPOOF) == [OBSERVED, CONFIRMED, CLAIMED]


def test_hops_unverified_without_log():
    assert statuses(SPOOF, log_lines=None) == [OBSERVED, UNVERIFIED, CLAIMED]


def test_hops_unverified_when_log_lacks_id():
    assert statuses(SPOOF, log_lines=MAIL_LOG[3:]) == [OBSERVED, UNVERIFIED, CLAIMED]


def test_hops_chain_breaks_at_foreign_peer():
    # The final host saw 192.0.2.99, so the field below, though it names a lab host, is a claim.
    message = SPOOF.replace(b"[10.77.0.10]", b"[192.0.2.99]").replace(b"(regulus.campus.test [", b"(unknown [")
    assert statuses(message) == [OBSERVED, CLAIMED, CLAIMED]


def test_hops_above_receiver_claimed():
    message = b"Received: from x (x [1.2.3.4]) by later.test with SMTP id L; Fri, 04 Dec 2026 09:00:00 +0000\r\n" + SPOOF
    assert statuses(message) == [CLAIMED, OBSERVED, CONFIRMED, CLAIMED]


def test_hop_log_lines_by_queue_id():
    hops = classify_hops(received_fields(SPOOF), "alcyone.campus.test", LAB_HOSTS, MAIL_LOG)
    assert hops[0].log_lines == MAIL_LOG[1:3]
    assert hops[1].log_lines == MAIL_LOG[0:2]
    assert hops[2].log_lines == []


def test_compare_handout_helo_differs():
    hops = classify_hops(received_fields(HANDOUT_SHAPED), "alcyone.csustan.edu", {}, None)
    comparisons = {item.label: item for item in compare_identities(HANDOUT_SHAPED, hops)}
    helo = comparisons["HELO and reverse DNS"]
    assert (helo.left, helo.right, helo.agree) == ("foobar.yech.com", "regulus.csustan.edu", False)
    assert comparisons["envelope sender and From:"].agree is True
    assert comparisons["From: and sending host"].agree is False


def test_trace_spoof_verdict():
    with DnsServer(ZONE) as server:
        report = trace_message(SPOOF, source="test", evidence=evidence(), resolver=server.resolver(), resolver_text="x")
    assert report.auth.spf.result == "fail"
    assert report.auth.spf.client_ip == "10.77.0.10"
    assert report.auth.dmarc.result == "fail"
    origin, claim = report.verdict
    assert "alcyone.campus.test received the message from 10.77.0.10 (regulus.campus.test)" in origin
    assert "local submission on regulus.campus.test" in origin
    assert "1 older Received field(s)" in origin
    assert "From: names toontown.test" in claim
    assert "From: and sending host do not match (toontown.test vs regulus.campus.test)" in claim
    assert "may be forged" in claim


def test_trace_handout_without_lab():
    report = trace_message(HANDOUT_SHAPED, source="file")
    assert report.hops[0].status == OBSERVED
    assert report.auth is None
    assert "received the message from 130.17.70.16 (regulus.csustan.edu)" in report.verdict[0]
    assert "HELO and reverse DNS do not match (foobar.yech.com vs regulus.csustan.edu)" in report.verdict[1]


def test_trace_text_sections():
    text = render_text(trace_message(SPOOF, source="test", evidence=evidence()))
    assert "Hop 1 of 3: received by alcyone.campus.test [observed by the receiving host]" in text
    assert "Hop 2 of 3: received by regulus.campus.test [written by a lab host and confirmed by its log]" in text
    assert "Hop 3 of 3: received by smtp.toontown.test [a claim by an upstream host that cannot be checked]" in text
    assert "  HELO (claimed):   foobar.yech.test" in text
    assert "\nVerdict\n" in text


def test_trace_json_round_trips():
    data = json.loads(trace_message(SPOOF, source="test", evidence=evidence()).to_json())
    assert [hop["status"] for hop in data["hops"]] == [OBSERVED, CONFIRMED, CLAIMED]
    assert data["hops"][0]["queue_id"] == "q4K8a1B9000200"
    assert data["headers"]["return_path"] == "mmouse@toontown.test"


def test_split_mbox_drops_separators():
    content = (
        b"From mmouse@toontown.test Fri Dec  4 08:00:00 2026\nSubject: one\n\nfirst\n\n"
        b"From john@campus.test Fri Dec  4 08:01:00 2026\nSubject: two\n\n>From here\n\n"
    )
    assert split_mbox(content) == [b"Subject: one\r\n\r\nfirst\r\n", b"Subject: two\r\n\r\n>From here\r\n"]


def test_split_plain_message():
    assert split_mbox(b"Subject: x\n\nbody\n") == [b"Subject: x\r\n\r\nbody\r\n"]


@pytest.mark.parametrize(("index", "expected"), [(None, b"c"), (-1, b"c"), (1, b"a"), (2, b"b"), (-3, b"a")])
def test_select_message_index(index, expected):
    assert select_message([b"a", b"b", b"c"], index, "box")[0] == expected


@pytest.mark.parametrize("index", [0, 4, -4])
def test_select_message_out_of_range(index):
    with pytest.raises(ConfigError, match="invalid --index"):
        select_message([b"a", b"b", b"c"], index, "box")


def test_cli_trace_file_json(tmp_path):
    path = tmp_path / "spoof.eml"
    path.write_bytes(SPOOF)
    with DnsServer(ZONE) as server:
        result = CliRunner().invoke(cli, ["trace", "--resolver", server.address_text, "--json", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["auth"]["dmarc"]["result"] == "fail"
    assert data["auth"]["spf"]["result"] == "fail"
    assert len(data["verdict"]) == 2


def test_cli_trace_file_text(tmp_path):
    path = tmp_path / "handout.eml"
    path.write_bytes(HANDOUT_SHAPED)
    result = CliRunner().invoke(cli, ["trace", str(path)])
    assert result.exit_code == 0, result.output
    assert "Hop 1 of 1: received by alcyone.csustan.edu" in result.output
    assert "not recomputed: no lab and no --resolver given" in result.output


def test_trace_without_received_fields():
    report = trace_message(b"Subject: x\r\n\r\nbody\r\n", source="file")
    assert report.hops == []
    assert report.verdict[0] == (
        "Where it came from: the message has no Received field, so nothing in it shows where it came from."
    )
    assert "From: names no usable domain" in report.verdict[1]
