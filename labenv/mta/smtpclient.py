"""A small asyncio SMTP client for relaying, with a transcript for VERB sessions."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Transcript = Callable[[str], Awaitable[None]] | None

# Bare CR or LF, or CRLF, each becomes CRLF before relaying, so that no "."
# after a bare line end can reach the next hop as an end of data.
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
REPLY_LINE_LIMIT = 4096


class SmtpReplyError(Exception):
    """The server sent something that is not an SMTP reply, or closed the connection."""


class SmtpClient:
    """One connection to a next hop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float, transcript: Transcript):
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._transcript = transcript
        self.extensions: dict[str, str] = {}

    @classmethod
    async def connect(
        cls, host: str, port: int, connect_timeout: float, command_timeout: float, transcript: Transcript
    ) -> "SmtpClient":
        """Open a TCP connection to ``host``:``port``; each later reply may take ``command_timeout`` seconds."""
        opening = asyncio.open_connection(host, port, limit=REPLY_LINE_LIMIT)
        reader, writer = await asyncio.wait_for(opening, connect_timeout)
        return cls(reader, writer, command_timeout, transcript)

    async def _show(self, text: str) -> None:
        if self._transcript is not None:
            await self._transcript(text)

    async def reply(self) -> tuple[int, list[str]]:
        """Read one possibly multi-line reply and return its code and text lines."""
        lines: list[str] = []
        while True:
            raw = await asyncio.wait_for(self._reader.readline(), self._timeout)
            if not raw:
                raise SmtpReplyError("connection closed by the server")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            await self._show(line)
            if len(line) < 3 or not line[:3].isdigit():
                raise SmtpReplyError(f"malformed reply {line!r}")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    async def command(self, line: str) -> tuple[int, list[str]]:
        """Send one command line and return the reply."""
        await self._show(f">>> {line}")
        log.debug(">>> %s", line)
        self._writer.write(line.encode("utf-8", "surrogateescape") + b"\r\n")
        await self._writer.drain()
        return await self.reply()

    async def hello(self, hostname: str) -> tuple[int, list[str]]:
        """Send EHLO, falling back to HELO when the server rejects it, and record the extensions."""
        code, lines = await self.command(f"EHLO {hostname}")
        if code == 250:
            for line in lines[1:]:
                keyword, _, value = line.partition(" ")
                self.extensions[keyword.upper()] = value
            return code, lines
        return await self.command(f"HELO {hostname}")

    async def data(self, message: bytes) -> tuple[int, list[str]]:
        """Send DATA, the message with CRLF line ends and dot-stuffing (RFC 5321 section 4.5.2), and the final dot."""
        code, lines = await self.command("DATA")
        if code != 354:
            return code, lines
        body = _LINE_ENDS.sub(b"\r\n", message)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        if body.startswith(b"."):
            body = b"." + body
        body = body.replace(b"\r\n.", b"\r\n..")
        await self._show(">>> .")
        self._writer.write(body + b".\r\n")
        await self._writer.drain()
        return await self.reply()

    async def close(self) -> None:
        """Send QUIT if possible and close the connection."""
        try:
            await self.command("QUIT")
        except (OSError, SmtpReplyError, asyncio.TimeoutError) as exc:
            log.debug("QUIT failed: %s", exc)
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError as exc:
            log.debug("closing the connection failed: %s", exc)
