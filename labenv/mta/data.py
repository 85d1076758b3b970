"""Reading the DATA of an SMTP transaction: end of data, dot-stuffing and the size limit (RFC 5321 section 4.5.2)."""

from __future__ import annotations

import asyncio

END_OF_DATA = b"\r\n.\r\n"
# Room beyond the size limit for dot-stuffing and the final "." line, so that a
# message right at the limit still fits in the reader's buffer.
DATA_LIMIT_MARGIN = 64 * 1024


async def read_data(reader: asyncio.StreamReader, max_size: int) -> tuple[bytes, bool]:
    """Read DATA up to the CRLF.CRLF line and return the message and whether it was over ``max_size``.

    Only a "." alone between two CRLFs ends the message, so bare LF or CR
    variants stay inside it. The message is read as one block rather than
    line by line, and long lines are kept whole. A message over the size
    limit is read to its end and thrown away.
    """
    # NOTE: the session's idle timer is not reset while DATA arrives, so a
    # transfer that takes longer than idle_timeout in total is cut off.
    line_limit = reader._limit
    # StreamReader has no public way to change its limit. The limit caps a
    # command line, but here it must cover a whole message: it also sets
    # the point at which the reader pauses the transport.
    reader._limit = max_size + DATA_LIMIT_MARGIN
    try:
        head = await _read_head(reader)
        if (b"\r\n" + head).endswith(END_OF_DATA):
            data = head[:-3]
        else:
            data = head + (await reader.readuntil(END_OF_DATA))[:-3]
    except asyncio.LimitOverrunError as exc:
        await _discard(reader, exc.consumed)
        return b"", True
    finally:
        reader._limit = line_limit
    if len(data) > max_size:
        return b"", True
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n"), False


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """Read the first bytes of DATA one at a time while they could still be part of an end of data.

    The CRLF of the DATA command counts as the start of the first line, so
    an end of data may begin before the first byte read. Once the bytes so
    far cannot start one, the rest is searched for a whole CRLF.CRLF.
    """
    head = b""
    while True:
        text = b"\r\n" + head
        if text.endswith(END_OF_DATA):
            return head
        if not any(text.endswith(END_OF_DATA[:length]) for length in range(1, len(END_OF_DATA))):
            return head
        head += await reader.readexactly(1)


async def _discard(reader: asyncio.StreamReader, consumed: int) -> None:
    """Throw away DATA until its end, reading at most one buffer at a time."""
    while True:
        await reader.read(consumed)
        try:
            await reader.readuntil(END_OF_DATA)
            return
        except asyncio.LimitOverrunError as exc:
            # asyncio leaves the last bytes of a failed search in the
            # buffer, so an end of data split across reads is still found.
            consumed = exc.consumed
