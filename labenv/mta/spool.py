"""The durable queue: one file per message plus a record of finished recipients.

A message file is ``<qid>.msg``: one line of JSON holding the envelope, then
the message exactly as it will be delivered (CRLF line ends). It is written
as ``<qid>.tmp``, fsynced, renamed and made durable by an fsync of the
directory, so a crash leaves either the whole file or only a ``.tmp`` that
recovery deletes. ``<qid>.done`` lists, one per line, the index of each
recipient whose delivery finished (sent or bounced), fsynced after each line.

Concurrent sessions share the directory fsyncs: new message files are
written in batches that end with one directory fsync, and the other requests
for a directory fsync that arrive while one runs are served by the next one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from labenv.mta.queueid import QueueIdGenerator
from labenv.mta.spoolsync import DirectorySync, SpoolError, StoreBatcher

log = logging.getLogger(__name__)

MESSAGE_SUFFIX = ".msg"
TEMP_SUFFIX = ".tmp"
DONE_SUFFIX = ".done"


@dataclass
class Recipient:
    """One envelope recipient with its DSN parameters (RFC 3461 section 4)."""

    address: str
    notify: list[str] | None = None
    orcpt: str | None = None


@dataclass
class Envelope:
    """The envelope and reception details of a queued message."""

    queue_id: str
    sender: str
    recipients: list[Recipient]
    received_at: float
    client_ip: str = "127.0.0.1"
    client_name: str | None = None
    helo: str = "localhost"
    protocol: str = "ESMTP"
    size: int = 0
    body_type: str | None = None
    ret: str | None = None
    envid: str | None = None
    msgid: str | None = None
    message_class: int = 0
    may_be_forged: bool = False
    # Set on bounces this MTA made itself, so that they are never bounced again.
    is_bounce: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Serialise to one line of JSON."""
        # A shallow copy: dataclasses.asdict deep-copies and costs a noticeable
        # share of the accept path.
        fields = dict(vars(self))
        fields["recipients"] = [vars(recipient) for recipient in self.recipients]
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json(cls, line: bytes) -> "Envelope":
        """Parse a line written by ``to_json``."""
        data = json.loads(line)
        data["recipients"] = [Recipient(**item) for item in data["recipients"]]
        return cls(**data)


class Spool:
    """The spool directory of one MTA."""

    def __init__(self, directory: Path, executor: Executor | None = None) -> None:
        self.directory = directory
        self._executor = executor
        self._ids = QueueIdGenerator()
        # Ids handed out but not stored yet, and ids with a message file. This
        # process owns the spool, so the two sets cover every id in use,
        # including those a previous run with the same pid left queued.
        self._reserved: set[str] = set()
        self._queued: set[str] = set()
        self._dir_sync = DirectorySync(directory, executor)
        self._batcher = StoreBatcher(directory, executor)

    def prepare(self) -> list[str]:
        """Create the directory if needed, delete half-written files and return the queued ids, oldest first."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            names = os.listdir(self.directory)
        except OSError as exc:
            raise SpoolError(
                f"cannot use spool directory {self.directory}: {exc.strerror}; check that it exists and is writable"
            ) from exc
        for name in names:
            if name.endswith(TEMP_SUFFIX):
                log.warning("removing half-written spool file %s left by an earlier crash", name)
                (self.directory / name).unlink(missing_ok=True)
        queued = [name[: -len(MESSAGE_SUFFIX)] for name in names if name.endswith(MESSAGE_SUFFIX)]
        for name in names:
            # A .done file without its message is the tail of a finished removal.
            if name.endswith(DONE_SUFFIX) and name[: -len(DONE_SUFFIX)] not in queued:
                (self.directory / name).unlink(missing_ok=True)
        queued.sort(key=lambda qid: (self.directory / (qid + MESSAGE_SUFFIX)).stat().st_mtime)
        self._queued = set(queued)
        return queued

    def new_queue_id(self) -> str:
        """Return a queue id that no queued or in-flight message uses."""
        while True:
            qid = self._ids.new()
            if qid in self._reserved or qid in self._queued:
                log.debug("queue id %s is taken; drawing another", qid)
                continue
            self._reserved.add(qid)
            return qid

    def release_queue_id(self, qid: str) -> None:
        """Return a reserved id; it stays taken if its message was stored."""
        self._reserved.discard(qid)

    async def store(self, envelope: Envelope, message: bytes) -> None:
        """Write the message durably; when this returns, a crash can no longer lose it."""
        qid = envelope.queue_id
        temp = self.directory / (qid + TEMP_SUFFIX)
        final = self.directory / (qid + MESSAGE_SUFFIX)
        try:
            await self._batcher.write(temp, [envelope.to_json(), message], final)
        except OSError as exc:
            raise SpoolError(f"cannot write {temp}: {exc.strerror}") from exc
        except SpoolError:
            # Only the directory fsync failed. The file has its final name, so
            # its id stays taken and a restart finds and delivers it.
            self._queued.add(qid)
            raise
        self._queued.add(qid)

    async def close(self) -> None:
        """Wait for spool writes and directory fsyncs still in progress."""
        await self._batcher.drain()
        await self._dir_sync.drain()

    async def load_async(self, qid: str) -> tuple[Envelope, bytes, set[int]]:
        """Run ``load`` in the I/O threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.load, qid)

    def load(self, qid: str) -> tuple[Envelope, bytes, set[int]]:
        """Read a queued message, its envelope and the indexes of recipients already done."""
        data = (self.directory / (qid + MESSAGE_SUFFIX)).read_bytes()
        first_line, _, message = data.partition(b"\n")
        done_path = self.directory / (qid + DONE_SUFFIX)
        done: set[int] = set()
        if done_path.exists():
            done = {int(line) for line in done_path.read_bytes().split() if line.isdigit()}
        return Envelope.from_json(first_line), message, done

    async def mark_done(self, qid: str, index: int, remaining: int) -> None:
        """Record durably that recipient ``index`` is finished; remove the message when none remain."""
        loop = asyncio.get_running_loop()
        if remaining == 0:
            await loop.run_in_executor(self._executor, self._remove, qid)
            await self._dir_sync.sync()
            self._queued.discard(qid)
            return
        done_path = self.directory / (qid + DONE_SUFFIX)
        created = await loop.run_in_executor(self._executor, _append_line, done_path, b"%d\n" % index)
        if created:
            await self._dir_sync.sync()

    def _remove(self, qid: str) -> None:
        # The message goes first: a crash between the two unlinks leaves a
        # stray .done file, which prepare() deletes.
        (self.directory / (qid + MESSAGE_SUFFIX)).unlink(missing_ok=True)
        (self.directory / (qid + DONE_SUFFIX)).unlink(missing_ok=True)


def _append_line(path: Path, line: bytes) -> bool:
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return created
