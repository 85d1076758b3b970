"""Delivery status notifications (RFC 3461, RFC 3464) for failed and, on request, successful deliveries."""

from __future__ import annotations

import time

from labenv.mta import headers
from labenv.mta.outcome import Outcome
from labenv.mta.params import decode_xtext
from labenv.mta.spool import Envelope, Recipient


def wants_notice(recipient: Recipient, state: str) -> bool:
    """Tell whether ``recipient`` asked for a notice about ``state``; without NOTIFY, only failures are reported."""
    if recipient.notify is None:
        return state == "failed"
    return {"failed": "FAILURE", "sent": "SUCCESS", "delayed": "DELAY"}[state] in recipient.notify


def _age(seconds: float) -> str:
    hours = int(seconds // 3600)
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{int(seconds // 60)} minutes"


def _recipient_block(recipient: Recipient, result: Outcome, action: str, now: float) -> list[str]:
    lines = []
    if recipient.orcpt:
        addr_type, _, value = recipient.orcpt.partition(";")
        lines.append(f"Original-Recipient: {addr_type};{decode_xtext(value)}")
    lines += [f"Final-Recipient: RFC822; {recipient.address}", f"Action: {action}", f"Status: {result.dsn}"]
    if result.remote_mta:
        lines.append(f"Remote-MTA: DNS; {result.remote_mta}")
    if result.diagnostic:
        kind = "SMTP" if result.remote_mta else "X-Unix"
        lines.append(f"Diagnostic-Code: {kind}; {result.diagnostic}")
    lines.append(f"Last-Attempt-Date: {headers.rfc2822_date(now)}")
    return lines


def build_report(
    envelope: Envelope,
    message: bytes,
    entries: list[tuple[Recipient, Outcome, str]],
    *,
    hostname: str,
    bounce_id: str,
) -> bytes:
    """Build a multipart/report for ``entries`` of (recipient, outcome, action).

    The action is failed, delayed, delivered or relayed (RFC 3464 section 2.3.3).

    RET=HDRS returns only the header section of the original; otherwise it is
    returned whole (RFC 3461 section 4.3).
    """
    now = time.time()
    boundary = f"{bounce_id}.{int(now)}/{hostname}"
    actions = {action for _, _, action in entries}
    if "failed" in actions:
        subject = "Returned mail: see transcript for details"
    elif "delayed" in actions:
        subject = "Warning: could not send message for past " + _age(now - envelope.received_at)
    else:
        subject = "Successful Mail Delivery Report"
    human = [
        f"The original message was received at {headers.rfc2822_date(envelope.received_at)}",
        f"from {envelope.client_name or 'unknown'} [{envelope.client_ip}]",
        "",
    ]
    for recipient, result, action in entries:
        human.append(f"<{recipient.address}>: {action}: {result.diagnostic or result.stat}")
    status = [f"Reporting-MTA: dns; {hostname}"]
    if envelope.envid:
        status.append(f"Original-Envelope-Id: {decode_xtext(envelope.envid)}")
    status.append(f"Received-From-MTA: DNS; {envelope.client_name or envelope.client_ip}")
    status.append(f"Arrival-Date: {headers.rfc2822_date(envelope.received_at)}")
    for recipient, result, action in entries:
        status.append("")
        status += _recipient_block(recipient, result, action, now)
    if envelope.ret == "HDRS":
        returned_type, returned = "text/rfc822-headers", message[: headers.header_end(message)]
    else:
        returned_type, returned = "message/rfc822", message
    head = [
        f"From: Mail Delivery Subsystem <MAILER-DAEMON@{hostname}>",
        f"To: <{envelope.sender}>",
        f"Subject: {subject}",
        f"Date: {headers.rfc2822_date(now)}",
        f"Message-Id: {headers.message_id(bounce_id, hostname, now)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message",
        "",
        f"--{boundary}",
        "Content-Type: text/plain",
        "",
        *human,
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        *status,
        "",
        f"--{boundary}",
        f"Content-Type: {returned_type}",
        "",
        "",
    ]
    text = "\r\n".join(head).encode("utf-8", "surrogateescape")
    if not returned.endswith(b"\r\n"):
        returned += b"\r\n"
    return text + returned + f"\r\n--{boundary}--\r\n".encode()
