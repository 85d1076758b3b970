"""Ask SpamAssassin's spamd for a score and its X-Spam-* header fields over SPAMC/1.5.

The client sends the HEADERS command, so spamd returns the message's header
section as it rewrote it, and the X-Spam-* fields are taken from there exactly
as spamd folded them. A message that could not be scanned is reported with
``scanned=False`` and a reason, never with a score.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

from labenv.errors import LabenvError

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = "SPAMC/1.5"
# spamc's default --max-size: larger messages go back unscanned.
DEFAULT_MAX_SIZE = 500 * 1024
# The HEADERS reply carries the header section only, so a reply larger than
# the message plus this margin is not a reply from spamd.
REPLY_MARGIN = 64 * 1024

_STATUS_LINE = re.compile(rb"SPAMD/(\d+\.\d+) +(\d+) +(.*)")
# "Spam: True ; 4.2 / 5.0"; scores may be negative.
_SPAM_HEADER = re.compile(rb"(True|False|Yes|No) *; *(-?\d+(?:\.\d+)?) */ *(-?\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass
class SpamCheck:
    """The outcome of one spamd check.

    ``headers`` contains the X-Spam-* fields spamd added, in spamd's order and
    folding, each field (continuation lines included) ending with CRLF.
    ``score`` and ``threshold`` are None whenever ``scanned`` is False, and
    ``reason`` then gives the cause.
    """

    scanned: bool
    is_spam: bool | None = None
    score: float | None = None
    threshold: float | None = None
    headers: list[bytes] = field(default_factory=list)
    reason: str | None = None


class SpamdProtocolError(LabenvError):
    """spamd's reply does not follow SPAMC/1.5; ``check`` turns it into a reason."""


def not_scanned(reason: str) -> SpamCheck:
    """Build the result for a message that was not scanned."""
    return SpamCheck(scanned=False, reason=reason)


def build_request(command: str, message: bytes, user: str | None) -> bytes:
    """Build a SPAMC/1.5 request for ``command`` carrying ``message``."""
    lines = [f"{command} {PROTOCOL_VERSION}", f"Content-length: {len(message)}"]
    if user:
        lines.append(f"User: {user}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + message


def split_header_fields(header_section: bytes) -> list[bytes]:
    """Split a header section into fields, each with its continuation lines and ending in CRLF."""
    fields: list[bytes] = []
    for line in header_section.splitlines():
        if not line:
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields


def header_section(message: bytes) -> bytes:
    """Return the header section of ``message``, up to the first empty line."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = message.find(separator)
        if end != -1:
            return message[:end]
    return message


def parse_reply(reply: bytes, original: bytes) -> SpamCheck:
    """Parse spamd's reply to HEADERS; raise SpamdProtocolError when it is malformed or an error."""
    head, separator, body = reply.partition(b"\r\n\r\n")
    if not separator:
        raise SpamdProtocolError(f"no blank line after the reply header in {reply[:80]!r}")
    status, *header_lines = head.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(status)
    if match is None:
        raise SpamdProtocolError(f"invalid status line {status[:80]!r}")
    if match.group(2) != b"0":
        raise SpamdProtocolError(f"spamd returned {status.decode('ascii', 'replace')}")

    values = {}
    for line in header_lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise SpamdProtocolError(f"invalid reply header line {line[:80]!r}")
        values[name.strip().lower()] = value.strip()

    spam = _SPAM_HEADER.fullmatch(values.get(b"spam", b""))
    if spam is None:
        raise SpamdProtocolError(f"missing or invalid Spam header in {head[:200]!r}")
    length = values.get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) != len(body)):
        raise SpamdProtocolError(f"Content-length {length!r} but {len(body)} body bytes")

    # A sender can put X-Spam-* fields in the message itself; only fields
    # that were not in the original header section are spamd's own.
    original_fields = set(split_header_fields(header_section(original)))
    added = [
        field_bytes
        for field_bytes in split_header_fields(body)
        if field_bytes[:7].lower() == b"x-spam-" and field_bytes not in original_fields
    ]
    return SpamCheck(
        scanned=True,
        is_spam=spam.group(1).lower() in (b"true", b"yes"),
        score=float(spam.group(2)),
        threshold=float(spam.group(3)),
        headers=added,
    )


async def _exchange(host: str, port: int, request: bytes, reply_limit: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        # spamc half-closes after the request too; spamd reads by Content-length either way.
        writer.write_eof()
        await writer.drain()
        reply = b""
        while chunk := await reader.read(reply_limit + 1 - len(reply)):
            reply += chunk
            if len(reply) > reply_limit:
                break
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError as error:
            logger.debug("closing the spamd connection to %s:%s failed: %s", host, port, error)
    if len(reply) > reply_limit:
        raise SpamdProtocolError(f"reply longer than {reply_limit} bytes")
    return reply


async def check(
    message: bytes,
    user: str,
    *,
    host: str,
    port: int,
    timeout: float = 30.0,
    max_size: int = DEFAULT_MAX_SIZE,
) -> SpamCheck:
    """Score ``message`` for ``user`` with the spamd at ``host``:``port``.

    A refused connection, a timeout or a malformed reply comes back as
    ``scanned=False`` with a reason instead of an exception. Messages over
    ``max_size`` bytes are not sent at all, as spamc does. The caller logs
    ``reason`` with its queue id when the result is not scanned.
    """
    if len(message) > max_size:
        return not_scanned(f"message over {max_size} bytes ({len(message)} bytes)")

    request = build_request("HEADERS", message, user)
    try:
        reply = await asyncio.wait_for(_exchange(host, port, request, len(message) + REPLY_MARGIN), timeout)
    except asyncio.TimeoutError:
        return not_scanned(f"timed out after {timeout:g} s waiting for spamd at {host}:{port}")
    except SpamdProtocolError as error:
        return not_scanned(f"protocol error: {error}")
    except OSError as error:
        return not_scanned(f"spamd unreachable: {host}:{port}: {error}")

    logger.debug("spamd %s:%s replied %d bytes", host, port, len(reply))
    try:
        return parse_reply(reply, message)
    except SpamdProtocolError as error:
        return not_scanned(f"protocol error: {error}")


async def ping(host: str, port: int, timeout: float = 5.0) -> bool:
    """Tell whether a spamd at ``host``:``port`` returns PONG to PING within ``timeout`` seconds."""
    request = f"PING {PROTOCOL_VERSION}\r\n\r\n".encode("ascii")
    try:
        reply = await asyncio.wait_for(_exchange(host, port, request, 1024), timeout)
    except (asyncio.TimeoutError, OSError, SpamdProtocolError) as error:
        logger.debug("spamd ping to %s:%s failed: %s", host, port, error or type(error).__name__)
        return False
    match = _STATUS_LINE.match(reply.split(b"\r\n", 1)[0])
    return match is not None and match.group(2) == b"0" and match.group(3).strip() == b"PONG"
