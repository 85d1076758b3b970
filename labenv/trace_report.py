"""The trace report: its data, the verdict paragraphs, and its text and JSON forms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from labenv.auth.verify import AuthVerdict
from labenv.trace_analysis import (
    CLAIMED,
    LOOPBACK,
    OBSERVED,
    STATUS_TEXT,
    Comparison,
    Hop,
    boundary_hop,
    origin_hop,
)


@dataclass
class TraceReport:
    """Everything labenv trace found out about one delivered message."""

    source: str
    headers: dict[str, str | None]
    hops: list[Hop]
    comparisons: list[Comparison]
    recorded_results: list[str]
    auth: AuthVerdict | None = None
    auth_note: str | None = None  # why authentication was not recomputed, or where it was
    verdict: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the report as JSON-ready values."""
        auth = None
        if self.auth is not None:
            auth = {
                "spf": {"result": self.auth.spf.result, "domain": self.auth.spf.domain, "reason": self.auth.spf.reason},
                "dkim": [
                    {"result": item.result, "domain": item.domain, "selector": item.selector, "reason": item.reason}
                    for item in self.auth.dkim
                ],
                "dmarc": {
                    "result": self.auth.dmarc.result, "header_from": self.auth.dmarc.header_from,
                    "policy": self.auth.dmarc.policy, "reason": self.auth.dmarc.reason,
                },
                "action": self.auth.action,
                "authentication_results": self.auth.authentication_results(),
            }
        return {
            "source": self.source,
            "headers": self.headers,
            "hops": [hop.to_dict() for hop in self.hops],
            "comparisons": [vars(comparison) for comparison in self.comparisons],
            "recorded_results": self.recorded_results,
            "auth": auth,
            "auth_note": self.auth_note,
            "verdict": self.verdict,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def write_verdict(report: TraceReport) -> list[str]:
    """Write two paragraphs: where the message really came from, and whether it is from whom it claims."""
    return [_origin_paragraph(report.hops), _claim_paragraph(report)]


def _peer_text(hop: Hop) -> str:
    received = hop.received
    address = received.address or "an unrecorded address"
    name = received.reverse_name or "no reverse DNS name"
    return f"{address} ({name})"


def _origin_paragraph(hops: list[Hop]) -> str:
    boundary = boundary_hop(hops)
    if not hops:
        return "Where it came from: the message has no Received field, so nothing in it shows where it came from."
    if boundary is None:
        return (
            "Where it came from: no Received field was written by the receiving host, so every "
            "Received field here is a claim and the origin cannot be established."
        )
    sentences = [
        f"Where it came from: {boundary.received.by} received the message from {_peer_text(boundary)}; "
        "that address is the TCP peer it saw, the one fact in the header it observed itself."
    ]
    origin = origin_hop(hops)
    if origin is not None and origin is not boundary:
        sentences.append(
            f"The chain of lab hosts goes back to {origin.received.by}, which received it from {_peer_text(origin)}; "
            f"that field was {STATUS_TEXT[origin.status]}."
        )
    if origin is not None and origin.received.address in LOOPBACK:
        user = f" by {origin.received.ident_user}" if origin.received.ident_user else ""
        sentences.append(f"That is a local submission on {origin.received.by}{user}: the message was written on that host.")
    claimed = [hop for hop in hops[hops.index(origin) + 1 :] if hop.status == CLAIMED] if origin else []
    if claimed:
        sentences.append(
            f"The {len(claimed)} older Received field(s) below that point were written before the message reached "
            "the lab and can be invented by the sender, so they prove nothing."
        )
    return " ".join(sentences)


def _claim_paragraph(report: TraceReport) -> str:
    author = report.headers.get("from_domain")
    sentences = [f"Whether it is from whom it claims: From: names {author or 'no usable domain'}."]
    for comparison in report.comparisons:
        if comparison.agree is False:
            label = comparison.label[0].upper() + comparison.label[1:]
            sentences.append(f"{label} do not match ({comparison.left} vs {comparison.right}).")
    boundary = boundary_hop(report.hops)
    if boundary is not None and boundary.received.may_be_forged:
        sentences.append("The receiving host marked the reverse DNS name as possibly forged.")

    auth = report.auth
    if auth is None:
        sentences.append(f"SPF, DKIM and DMARC were not recomputed ({report.auth_note or 'no resolver'}).")
        return " ".join(sentences)
    dkim_text = ", ".join(f"{item.result} for {item.domain or '?'}" for item in auth.dkim) or "no signature"
    sentences.append(
        f"Recomputed now: SPF {auth.spf.result} for {auth.spf.domain} from {auth.spf.client_ip}, "
        f"DKIM {dkim_text}, DMARC {auth.dmarc.result}."
    )
    if auth.dmarc.result == "pass":
        how = "an SPF pass" if auth.dmarc.spf_aligned else "a DKIM signature"
        sentences.append(f"{auth.dmarc.header_from} vouches for this message through {how} aligned with From:.")
    elif auth.dmarc.result == "permerror":
        sentences.append(f"The From: field itself is unusable ({auth.dmarc.reason}), so the author cannot be checked.")
    else:
        sentences.append(
            f"Nothing the domain owner published ties this message to {author}: the author shown to the reader "
            "is not authenticated and may be forged."
        )
    return " ".join(sentences)


def render_text(report: TraceReport) -> str:
    """Render the report for a terminal: headers, one section per hop, authentication, verdict."""
    lines = [f"Message: {report.source}"]
    for label, key in (("From", "from"), ("To", "to"), ("Subject", "subject"), ("Date", "date"),
                       ("Message-ID", "message_id"), ("Return-Path", "return_path")):
        value = report.headers.get(key)
        if value is not None:
            lines.append(f"  {label + ':':13}{value}")

    total = len(report.hops)
    for number, hop in enumerate(report.hops, 1):
        received = hop.received
        lines.append("")
        lines.append(f"Hop {number} of {total}: received by {received.by or '?'} [{STATUS_TEXT[hop.status]}]")
        rows = [
            ("HELO (claimed)", received.helo),
            ("reverse DNS", received.reverse_name + (" (may be forged)" if received.may_be_forged else "")
             if received.reverse_name else None),
            ("peer address", received.address),
            ("ident user", received.ident_user),
            ("software", received.by_comment),
            ("protocol", received.protocol),
            ("queue id", received.queue_id),
            ("for", received.recipient),
            ("time", received.date_text),
        ]
        for label, value in rows:
            if value:
                lines.append(f"  {label + ':':18}{value}")
        if hop.status == OBSERVED and received.helo:
            lines.append("  (the address was seen on the connection; the HELO name is what the peer said)")
        for log_line in hop.log_lines:
            lines.append(f"  log: {log_line}")

    lines.append("")
    lines.append("Identities")
    for comparison in report.comparisons:
        state = {True: "match", False: "DIFFER", None: "n/a"}[comparison.agree]
        lines.append(f"  {comparison.label:26}{comparison.left or '-'} / {comparison.right or '-'}  [{state}]")

    lines.append("")
    lines.append("Authentication")
    for recorded in report.recorded_results:
        lines.append(f"  at delivery: {recorded}")
    if report.auth is not None:
        lines.append(f"  recomputed:  {report.auth.authentication_results()}")
        if report.auth_note:
            lines.append(f"               ({report.auth_note})")
        lines.append(f"  SPF detail:  {report.auth.spf.reason}")
    else:
        lines.append(f"  not recomputed: {report.auth_note or 'no resolver given'}")

    lines.append("")
    lines.append("Verdict")
    for paragraph in report.verdict:
        lines.append("  " + paragraph)
    return "\n".join(lines) + "\n"
