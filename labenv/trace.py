"""labenv trace: explain where a delivered message came from, hop by hop, with the lab's own evidence."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import dns.resolver

from labenv.auth.from_header import author_domain, header_values
from labenv.auth.resolver import make_resolver
from labenv.auth.verify import verify_message
from labenv.errors import ConfigError, DockerError
from labenv.trace_analysis import boundary_hop, classify_hops, compare_identities, envelope_sender, received_fields
from labenv.trace_report import TraceReport, write_verdict

log = logging.getLogger(__name__)

_MBOX_SEPARATOR = re.compile(rb"^From .*\r?\n", re.MULTILINE)
MAIL_LOG = "/var/log/mail.log"
DNS_PORT = 53


@dataclass
class LabEvidence:
    """The evidence a running lab adds to a trace: its hosts, the mail log and its name server."""

    receiver: str
    hosts: dict[str, str]  # FQDN -> address
    log_lines: list[str] | None
    resolver_address: str | None


def split_mbox(content: bytes) -> list[bytes]:
    """Split an mbox file into messages with CRLF line ends, dropping the From_ lines.

    The lab MTA writes mboxo: a body line starting "From " is stored as
    ">From ", so every line starting "From " separates two messages.
    NOTE: the ">" added by that quoting is indistinguishable from one the
    sender wrote, so it stays, and a DKIM body hash over such a line fails.
    """
    messages = []
    parts = _MBOX_SEPARATOR.split(content)
    for part in parts[1:] if content.startswith(b"From ") else parts:
        text = part.replace(b"\r\n", b"\n")
        # The mbox format adds one empty line after each message.
        if text.endswith(b"\n\n"):
            text = text[:-1]
        if text.strip():
            messages.append(text.replace(b"\n", b"\r\n"))
    return messages


def select_message(messages: list[bytes], index: int | None, source: str) -> tuple[bytes, str]:
    """Pick message ``index`` (1 is the oldest, -1 or None the newest) and describe it."""
    if not messages:
        raise ConfigError(f"no messages in {source}; send one first, or give another --user or FILE")
    position = len(messages) if index is None or index == -1 else index
    if position < 0:
        position = len(messages) + 1 + position
    if not 1 <= position <= len(messages):
        raise ConfigError(f"invalid --index {index}: {source} contains messages 1 to {len(messages)}")
    return messages[position - 1], f"{source}, message {position} of {len(messages)}"


def trace_message(
    message: bytes,
    *,
    source: str,
    evidence: LabEvidence | None = None,
    resolver: dns.resolver.Resolver | None = None,
    resolver_text: str | None = None,
) -> TraceReport:
    """Analyse one message; with ``evidence`` use the lab's hosts and log, with ``resolver`` recompute SPF/DKIM/DMARC."""
    fields = received_fields(message)
    if evidence is not None:
        receiver, hosts, log_lines = evidence.receiver, evidence.hosts, evidence.log_lines
    else:
        # Without a lab, the host that wrote the topmost field is taken as the receiver.
        receiver = fields[0].by if fields and fields[0].by else ""
        hosts, log_lines = {}, None
    hops = classify_hops(fields, receiver, hosts, log_lines)

    author = author_domain(message)
    headers = {
        "from": _first(message, "From"),
        "to": _first(message, "To"),
        "subject": _first(message, "Subject"),
        "date": _first(message, "Date"),
        "message_id": _first(message, "Message-ID"),
        "return_path": envelope_sender(message),
        "from_domain": author.domain,
    }
    recorded = [f"Authentication-Results: {value}" for value in header_values(message, "Authentication-Results")]
    recorded += [f"Received-SPF: {value}" for value in header_values(message, "Received-SPF")]
    report = TraceReport(source, headers, hops, compare_identities(message, hops), recorded)

    _recompute(report, message, receiver, resolver, resolver_text)
    report.verdict = write_verdict(report)
    return report


def _recompute(
    report: TraceReport, message: bytes, receiver: str, resolver: dns.resolver.Resolver | None, resolver_text: str | None
) -> None:
    boundary = boundary_hop(report.hops)
    if resolver is None:
        report.auth_note = "no lab and no --resolver given"
        return
    if boundary is None or not boundary.received.address:
        report.auth_note = "no Received field from the receiving host records the peer address"
        return
    report.auth = verify_message(
        message,
        client_ip=boundary.received.address,
        helo=boundary.received.helo or "",
        mail_from=report.headers["return_path"] or "",
        resolver=resolver,
        authserv_id=receiver or "labenv-trace",
    )
    report.auth_note = f"against the DNS server {resolver_text}" if resolver_text else None


def _first(message: bytes, name: str) -> str | None:
    values = header_values(message, name)
    return values[0] if values else None


# -- reading a running lab -------------------------------------------------------


def lab_evidence(lab_name: str) -> tuple[LabEvidence, object, object]:
    """Collect hosts, mail log and resolver of a running lab; also return the Docker client and lab model."""
    from labenv.runtime.engine import connect
    from labenv.runtime.hostfiles import read_host_file, running_container
    from labenv.runtime.status import load_running_lab

    client = connect()
    lab = load_running_lab(client, lab_name)
    final = lab.host_with_role("final")
    hosts = {host.fqdn: str(host.address) for host in lab.hosts}

    log_lines: list[str] | None
    try:
        loghost = running_container(client, lab_name, lab.host_with_role("syslog").name)
        log_lines = read_host_file(loghost, MAIL_LOG).decode("utf-8", "replace").splitlines()
    except (ConfigError, DockerError) as exc:
        # The trace is still useful without the log: hops then show as unverified.
        log.warning("mail log not read, so lab hops stay unverified: %s", exc)
        log_lines = None
    ns = lab.host_with_role("dns")
    evidence = LabEvidence(final.fqdn, hosts, log_lines, f"{ns.address}:{DNS_PORT}")
    return evidence, client, lab


def read_lab_mailbox(client, lab, user: str) -> bytes:
    """Return the mbox of ``user`` on the lab's final host."""
    from labenv.runtime.hostfiles import read_host_file, running_container

    final = lab.host_with_role("final")
    container = running_container(client, lab.name, final.name)
    return read_host_file(container, f"/var/mail/{user}")


def resolver_for(address: str | None, timeout: float) -> dns.resolver.Resolver | None:
    """Make a resolver for ``HOST:PORT``, or None when no address is known."""
    return make_resolver(address, timeout=timeout) if address else None
