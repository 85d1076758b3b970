"""Evidence gathered from a run record: the delivered message, its Received hops, and log lines by queue id.

The report renders these objects as Markdown and HTML. The capture named
``final_qid`` picks the message to examine. In the default scenario it is
the queue id alcyone gave the forged message. Without that capture the
report examines the last message any step printed.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import Message

from labenv.replay import mailtext
from labenv.replay.record import RunRecord
from labenv.replay.run_messages import run_queue_ids
from labenv.trace import LabEvidence, trace_message
from labenv.trace_analysis import STATUS_TEXT
from labenv.trace_received import parse_received
from labenv.trace_report import TraceReport, write_verdict

# The capture that names the queue id of the message the report examines.
MESSAGE_CAPTURE = "final_qid"

# Header fields shown in the report, in this order, when the message has them.
SHOWN_HEADERS = (
    "Return-Path", "Received", "Received-SPF", "Authentication-Results", "DKIM-Signature",
    "From", "To", "Subject", "Date", "Message-Id", "Message-ID",
    "X-Spam-Status", "X-Spam-Level", "X-Spam-Flag", "X-Spam-Checker-Version",
)


@dataclass
class Hop:
    """One Received field, split, with the lab hosts that its address and "by" name belong to."""

    raw: str
    helo: str | None = None
    rdns: str | None = None
    address: str | None = None
    by: str | None = None
    queue_id: str | None = None
    protocol: str | None = None
    # The lab host that owns ``address`` and the one that wrote the line (``by``).
    client_host: str | None = None
    writer_host: str | None = None
    # The local user of a submission stamp, "(from john@localhost)".
    submitter: str | None = None
    # The writer found that forward and reverse DNS of the client disagree.
    may_be_forged: bool = False
    # How far labenv trace trusts this line, e.g. "observed by the receiving host".
    trust: str | None = None

    @property
    def helo_matches(self) -> bool | None:
        """Whether the claimed HELO name equals the reverse-DNS name; None when either is missing."""
        if not self.helo or not self.rdns or self.rdns == "unknown":
            return None
        return self.helo.lower().rstrip(".") == self.rdns.lower().rstrip(".")


@dataclass
class LogGroup:
    """The log lines of one queue id, with the host whose file each came from."""

    queue_id: str
    lines: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Evidence:
    """Everything the report's analysis sections show."""

    message: Message | None
    headers: list[tuple[str, str]]
    hops: list[Hop]
    log_groups: list[LogGroup]
    queue_id: str | None
    # labenv trace's analysis of the message, without DNS lookups.
    trace: TraceReport | None = None
    # The log groups of other messages, such as those of earlier replays on the
    # lab, are left out of ``log_groups``. These count what was left out.
    left_out_queue_ids: int = 0
    left_out_lines: int = 0
    # False when the run captured no queue id, so ``log_groups`` contains every group.
    run_queue_ids_known: bool = True


def find_message_text(record: RunRecord) -> str | None:
    """Return the examined message: the last one printed that contains the ``final_qid`` capture."""
    queue_id = record.captures.get(MESSAGE_CAPTURE)
    found = None
    for session in record.sessions:
        for step in session.steps:
            text = mailtext.pick_message_text(step.transcript, queue_id)
            if text is not None:
                found = text
    return found


def trace_evidence(record: RunRecord) -> LabEvidence:
    """Describe the lab to labenv trace: the final host, every host's address, and the log lines the steps printed."""
    final = next((host.fqdn for host in record.hosts if host.role == "final"), "")
    log_lines = [
        line
        for session in record.sessions
        for step in session.steps
        for line in step.transcript.splitlines()
        if mailtext.parse_log_line(line) is not None
    ]
    return LabEvidence(
        receiver=final,
        hosts={host.fqdn: host.address for host in record.hosts},
        # For trace, None means that no log was read, which differs from an empty log.
        log_lines=log_lines or None,
        resolver_address=None,
    )


def annotate_hops(message: Message, record: RunRecord) -> list[Hop]:
    """Split each Received field of ``message``, topmost (the last hop) first."""
    hops = []
    for value in message.get_all("Received", []):
        parsed = parse_received(str(value))
        hop = Hop(
            raw=parsed.raw,
            helo=parsed.helo,
            rdns=parsed.reverse_name,
            address=parsed.address,
            by=parsed.by,
            queue_id=parsed.queue_id,
            protocol=parsed.protocol,
            submitter=parsed.ident_user,
            may_be_forged=parsed.may_be_forged,
        )
        if hop.address:
            owner = record.host_by_address(hop.address)
            hop.client_host = owner.name if owner else None
        if hop.by:
            writer = record.host_by_fqdn(hop.by)
            hop.writer_host = writer.name if writer else None
        hops.append(hop)
    return hops


def group_logs(record: RunRecord) -> list[LogGroup]:
    """Collect syslog lines from every step, grouped by queue id in order of first appearance.

    Lines without a queue id (spamd's) join the group whose msgid they name.
    A line printed twice on one host, by tail and then by grep, is kept once.
    """
    groups: dict[str, LogGroup] = {}
    message_ids: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    loose: list[tuple[str, str, mailtext.LogLine]] = []
    for session in record.sessions:
        for step in session.steps:
            for text in step.transcript.splitlines():
                line = mailtext.parse_log_line(text)
                if line is None or (step.host, line.text) in seen:
                    continue
                seen.add((step.host, line.text))
                if line.queue_id is None:
                    loose.append((step.host, line.text, line))
                    continue
                group = groups.setdefault(line.queue_id, LogGroup(line.queue_id))
                group.lines.append((step.host, line.text))
                if "msgid" in line.fields:
                    message_ids[line.fields["msgid"].strip("<>")] = line.queue_id
    for host, text, line in loose:
        for message_id, queue_id in message_ids.items():
            if message_id in line.message:
                groups[queue_id].lines.append((host, text))
                break
    return list(groups.values())


def keep_run_log_groups(evidence: Evidence, queue_ids: set[str]) -> None:
    """Drop the log groups whose queue id is not in ``queue_ids`` and count what was dropped."""
    if not queue_ids:
        evidence.run_queue_ids_known = False
        return
    left_out = [group for group in evidence.log_groups if group.queue_id not in queue_ids]
    evidence.log_groups = [group for group in evidence.log_groups if group.queue_id in queue_ids]
    evidence.left_out_queue_ids = len(left_out)
    evidence.left_out_lines = sum(len(group.lines) for group in left_out)


def gather(record: RunRecord) -> Evidence:
    """Build the evidence the report shows from ``record``."""
    text = find_message_text(record)
    evidence = Evidence(
        message=None,
        headers=[],
        hops=[],
        log_groups=group_logs(record),
        queue_id=record.captures.get(MESSAGE_CAPTURE),
    )
    keep_run_log_groups(evidence, run_queue_ids(record))
    if text is None:
        return evidence
    message = email.message_from_string(text, policy=email.policy.compat32)
    evidence.message = message
    evidence.headers = [
        (name, mailtext.unfold(str(value)))
        for name, value in message.items()
        if name.lower() in {shown.lower() for shown in SHOWN_HEADERS}
    ]
    # No resolver: the report is written from the record alone, so SPF, DKIM
    # and DMARC are not recomputed; the results the receiver recorded are shown.
    evidence.trace = trace_message(text.encode("utf-8", "replace"), source="replay", evidence=trace_evidence(record))
    evidence.trace.auth_note = "the report is written from the run record, without DNS lookups"
    evidence.trace.verdict = write_verdict(evidence.trace)
    evidence.hops = annotate_hops(message, record)
    for hop, traced in zip(evidence.hops, evidence.trace.hops):
        hop.trust = STATUS_TEXT.get(traced.status, traced.status)
    return evidence
