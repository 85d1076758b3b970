"""A small expect: type lines into a program on a pseudo-terminal and wait for its prompts.

It works on any object with ``recv``, ``sendall`` and ``settimeout``: a paramiko
channel in the runner, a socket in the tests. Everything received is kept,
so the transcript shows what a student would see, typed lines included,
because the terminal echoes them.
"""

from __future__ import annotations

import codecs
import logging
import re
import socket
import time
from typing import Protocol

log = logging.getLogger(__name__)

# How long one recv waits before the deadline is checked again, in seconds.
POLL_SECONDS = 0.2


class Channel(Protocol):
    def recv(self, size: int) -> bytes: ...

    def sendall(self, data: bytes) -> None: ...

    def settimeout(self, timeout: float | None) -> None: ...


class ExpectTimeout(Exception):
    """The awaited text did not appear before the deadline (or the program ended first)."""

    def __init__(self, pattern: str, seconds: float, tail: str, ended: bool):
        self.pattern = pattern
        self.seconds = seconds
        self.tail = tail
        self.ended = ended
        reason = "the program ended" if ended else f"nothing matched within {seconds:g} s"
        super().__init__(f"waiting for /{pattern}/: {reason}; last output: {tail!r}")


def normalize(raw: str) -> str:
    """Turn terminal line ends (CR LF, and CR CR LF from some programs) into LF."""
    return re.sub(r"\r+\n", "\n", raw)


class Expect:
    """The conversation with one program: what was received, and a read position."""

    def __init__(self, channel: Channel, encoding: str = "utf-8"):
        self.channel = channel
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self.encoding = encoding
        # Received text with LF line ends, and trailing CRs held back until
        # the next chunk shows whether an LF follows them.
        self._text = ""
        self._pending_cr = ""
        self._position = 0
        self.ended = False

    @property
    def transcript(self) -> str:
        """Everything received so far, with LF line ends."""
        return self._text + self._pending_cr

    def send_line(self, text: str) -> None:
        """Type ``text`` and Enter."""
        log.debug("send %r", text)
        # A terminal's Enter key sends CR; the pty's ICRNL setting turns it into LF.
        self.channel.sendall(text.encode(self.encoding) + b"\r")

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until ``pattern`` appears in the output not yet matched; return the match.

        Raise ExpectTimeout when ``timeout`` seconds pass or the program ends first.
        """
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            match = compiled.search(self._text, self._position)
            if match:
                self._position = match.end()
                log.debug("matched /%s/: %r", pattern, match.group(0))
                return match
            remaining = deadline - time.monotonic()
            if self.ended or remaining <= 0:
                raise ExpectTimeout(pattern, timeout, self.transcript[-300:], self.ended)
            self._read(min(POLL_SECONDS, remaining))

    def read_to_end(self, timeout: float) -> bool:
        """Read until the program closes its output; return False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while not self.ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._read(min(POLL_SECONDS, remaining))
        return True

    def _read(self, seconds: float) -> None:
        self.channel.settimeout(seconds)
        try:
            data = self.channel.recv(65536)
        except (socket.timeout, TimeoutError):
            return
        except ConnectionResetError:
            # A socket peer that closes with unread input resets instead of ending cleanly.
            data = b""
        if not data:
            self.ended = True
            self._text += self._pending_cr + self._decoder.decode(b"", final=True)
            self._pending_cr = ""
            return
        chunk = self._pending_cr + self._decoder.decode(data)
        complete = chunk.rstrip("\r")
        self._pending_cr = chunk[len(complete):]
        self._text += normalize(complete)
