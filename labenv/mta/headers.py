"""Header fields the MTA adds, built and inserted on raw bytes so that the rest stays as sent."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

CRLF = b"\r\n"

# RFC 5322 section 3.6.8: a field name is printable ASCII except the colon.
_FIELD_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")


def rfc2822_date(when: float | None = None) -> str:
    """Format ``when`` (epoch seconds) in the local zone as sendmail does: ``Mon, 24 Jan 2005 00:09:03 -0800 (PST)``."""
    local = time.localtime(time.time() if when is None else when)
    offset = local.tm_gmtoff // 60
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S", local)
    return f"{stamp} {sign}{hours:02d}{minutes:02d} ({local.tm_zone})"


def received_header(
    *,
    helo: str,
    client_name: str | None,
    client_ip: str,
    hostname: str,
    product: str,
    protocol: str,
    queue_id: str,
    recipients: list[str],
    when: float,
) -> bytes:
    """Build the ``Received:`` field for a message taken in over SMTP (RFC 5321 section 4.4).

    The ``for`` clause appears only with exactly one recipient, so a list of
    recipients never leaks into the copy each of them gets.
    """
    lines = [
        f"Received: from {helo} ({client_name or 'unknown'} [{client_ip}])",
        f"\tby {hostname} ({product}) with {protocol} id {queue_id}",
    ]
    if len(recipients) == 1:
        lines.append(f"\tfor <{recipients[0]}>; {rfc2822_date(when)}")
    else:
        lines[-1] += f"; {rfc2822_date(when)}"
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + CRLF


def message_id(queue_id: str, hostname: str, when: float) -> str:
    """Build the Message-Id sendmail adds to mail without one: ``<YYYYMMDDHHMM.QID@host>`` in UTC."""
    stamp = datetime.fromtimestamp(when, timezone.utc).strftime("%Y%m%d%H%M")
    return f"<{stamp}.{queue_id}@{hostname}>"


def header_end(message: bytes) -> int:
    """Return the offset just past the header section's last field line.

    The section ends at the first line that is neither a field nor a
    continuation (RFC 5322 section 2.2), usually the empty separator line.
    """
    offset = 0
    first = True
    while offset < len(message):
        newline = message.find(b"\n", offset)
        line_end = len(message) if newline < 0 else newline + 1
        line = message[offset:line_end]
        is_continuation = not first and line[:1] in (b" ", b"\t")
        if not (is_continuation or _FIELD_LINE.match(line)):
            return offset
        first = False
        offset = line_end
    return offset


def first_values(message: bytes, names: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """Return the unfolded value of the first field for each of ``names`` (lower case) that the header section has."""
    found: dict[bytes, bytes] = {}
    current: bytes | None = None
    for line in message[: header_end(message)].splitlines():
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                found[current] += line
            continue
        field_name, _, value = line.partition(b":")
        name = field_name.strip().lower()
        current = name if name in names and name not in found else None
        if current is not None:
            found[current] = value
    return {name: value.strip() for name, value in found.items()}


def field_values(message: bytes, name: bytes) -> list[bytes]:
    """Return the unfolded, stripped values of every header field called ``name`` (case-insensitive)."""
    values: list[list[bytes]] = []
    target = name.lower()
    collecting = False
    for line in message[: header_end(message)].splitlines():
        if line[:1] in (b" ", b"\t"):
            if collecting:
                values[-1].append(line)
            continue
        field_name, _, value = line.partition(b":")
        collecting = field_name.strip().lower() == target
        if collecting:
            values.append([value])
    return [b"".join(parts).strip() for parts in values]


def append_fields(message: bytes, new_fields: list[bytes]) -> bytes:
    """Insert ``new_fields`` (each ending in CRLF) after the last header field.

    When the text after the header section does not start with an empty line,
    one is added so that the body cannot be read as more header fields.
    """
    if not new_fields:
        return message
    end = header_end(message)
    rest = message[end:]
    separator = b"" if rest[:2] == CRLF or rest[:1] == b"\n" or not rest else CRLF
    headers = message[:end]
    if headers and not headers.endswith(b"\n"):
        headers += CRLF
    return headers + b"".join(new_fields) + separator + rest
