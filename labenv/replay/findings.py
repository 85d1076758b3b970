"""The answer to the closing question: what the message claims against what the receiver saw."""

from __future__ import annotations

import re
from dataclasses import dataclass

from labenv.replay import mailtext
from labenv.replay.evidence import Evidence
from labenv.replay.record import RunRecord


@dataclass
class Finding:
    """One claim of the message set against the evidence the receiving side recorded."""

    topic: str
    claimed: str
    observed: str
    note: str


def _header(evidence: Evidence, name: str) -> str | None:
    return next((value for field, value in evidence.headers if field.lower() == name.lower()), None)


def _sender_log_line(evidence: Evidence) -> mailtext.LogLine | None:
    for group in evidence.log_groups:
        if group.queue_id != evidence.queue_id:
            continue
        for _, text in group.lines:
            line = mailtext.parse_log_line(text)
            if line and "from" in line.fields:
                return line
    return None


def findings(record: RunRecord, evidence: Evidence) -> list[Finding]:
    """Compare each claim the sender made with what the receiving host recorded."""
    found: list[Finding] = []
    envelope = _header(evidence, "Return-Path") or record.variables.get("forged", "(unknown)")
    author = _header(evidence, "From")
    found.append(Finding(
        "sender",
        f"envelope sender {envelope}" + (f", From: {author}" if author else ", no From: field"),
        "the receiver accepted the address as typed (250 Sender ok)",
        "MAIL FROM and From: are text the client chooses; SMTP checks neither.",
    ))

    last_hop = evidence.hops[0] if evidence.hops else None
    if last_hop and last_hop.helo:
        seen = f"{last_hop.rdns or 'unknown'} [{last_hop.address}]"
        owner = f", the lab host {last_hop.client_host}" if last_hop.client_host else ""
        verdict = {True: "The HELO name equals the reverse-DNS name.",
                   False: "The HELO name differs from the reverse-DNS name: the HELO is a claim, "
                          "the address is what the TCP connection showed.",
                   None: "Without a reverse-DNS name only the address identifies the client."}[last_hop.helo_matches]
        found.append(Finding("client host", f"HELO {last_hop.helo}", f"connection from {seen}{owner}", verdict))

    log_line = _sender_log_line(evidence)
    if log_line:
        found.append(Finding(
            "receiver's log",
            f"from={log_line.fields.get('from', '?')}",
            f"relay={log_line.fields.get('relay', '?')} on {log_line.host}",
            "The log repeats the forged sender and adds only the connecting host, as the Received line does.",
        ))

    results = [value for name, value in evidence.headers if name.lower() in ("authentication-results", "received-spf")]
    if results:
        verdicts = sorted(set(re.findall(r"\b(spf|dkim|dmarc)=(\w+)", " ".join(results))))
        summary = ", ".join(f"{method}={result}" for method, result in verdicts) or results[0]
        found.append(Finding(
            "domain authentication",
            f"the domain of {envelope}",
            summary,
            "SPF asks the claimed domain's DNS whether the connecting address may send for it; "
            "DMARC then checks that the From: domain aligns with a passing SPF or DKIM domain.",
        ))
    else:
        found.append(Finding(
            "domain authentication",
            f"the domain of {envelope}",
            "no Authentication-Results or Received-SPF field in the delivered message",
            "Without SPF, DKIM and DMARC results the message carries no check of the claimed domain.",
        ))

    spam = _header(evidence, "X-Spam-Status")
    found.append(Finding(
        "spam score",
        "(nothing; the score is the receiver's own)",
        spam or "no X-Spam-Status field: the message was not scanned",
        "A score rates content and headers; it does not identify the sender.",
    ))
    return found


CONCLUSION = (
    "Everything the sender typed (HELO, MAIL FROM, From:, Subject:, Date:) reaches the recipient as typed. "
    "The receiving host adds one fact it observed itself: the address of the connecting client, with its "
    "reverse-DNS name, in the Received line and in its log. That identifies the last hop, "
    "not the person who typed the message. Earlier Received lines are only as trustworthy as the hosts that "
    "wrote them. Whether the message came from where it claims can be decided only where the claimed domain "
    "publishes a policy: SPF for the envelope domain, DKIM signatures and DMARC for the From: domain."
)
