"""Group commit for the spool: file writes and directory fsyncs shared by concurrent callers."""

from __future__ import annotations

import asyncio
import contextlib
import os
from concurrent.futures import Executor
from pathlib import Path

from labenv.errors import LabenvError

# Store batches that may run at once, each in its own I/O thread. More
# batches overlap more fsyncs but make each one smaller.
STORE_BATCHES = 4


class SpoolError(LabenvError):
    """The spool directory could not be read or written."""


class DirectorySync:
    """Coalesces fsyncs of one directory across concurrent callers."""

    def __init__(self, directory: Path, executor: Executor | None) -> None:
        self._directory = directory
        self._executor = executor
        self._next: asyncio.Future[None] | None = None
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def sync(self) -> None:
        """Return once an fsync of the directory that started after this call has finished."""
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.create_future()
        waiter = self._next
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._run())
        await waiter

    async def drain(self) -> None:
        """Wait for the fsync in progress, if any, so that the event loop can close cleanly."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._next is not None:
                batch, self._next = self._next, None
                try:
                    await loop.run_in_executor(self._executor, fsync_directory, self._directory)
                except OSError as exc:
                    batch.set_exception(SpoolError(f"fsync of spool directory {self._directory} failed: {exc}"))
                else:
                    batch.set_result(None)
        finally:
            self._running = False


def fsync_directory(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, chunks: list[bytes], final: Path) -> None:
    """Write ``chunks`` to the new file ``path``, fsync it and rename it to ``final``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(path, final)


class StoreBatcher:
    """Writes spool files in batches, each ending with one fsync of the directory.

    Every file handed over while STORE_BATCHES batches run goes into the
    next batch. A batch is one job for an I/O thread: it writes, fsyncs and
    renames each file in turn, then fsyncs the directory once. The event
    loop thus schedules one job per batch rather than two per message.
    """

    def __init__(self, directory: Path, executor: Executor | None) -> None:
        self._directory = directory
        self._executor = executor
        self._pending: list[tuple[Path, list[bytes], Path, asyncio.Future[None]]] = []
        self._running: set[asyncio.Future[list[Exception | None]]] = set()

    async def write(self, temp: Path, chunks: list[bytes], final: Path) -> None:
        """Write ``chunks`` to ``temp``, fsync it and rename it to ``final``, durably.

        Raises OSError when the file could not be written (``temp`` is then
        removed), or SpoolError when only the directory fsync failed.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((temp, chunks, final, done))
        if len(self._running) < STORE_BATCHES:
            self._start_batch(loop)
        await done

    async def drain(self) -> None:
        """Wait for the batches in progress, so that the event loop can close cleanly."""
        while self._running:
            # asyncio.wait, unlike gather, leaves the jobs alone if this wait is cancelled.
            await asyncio.wait(set(self._running))

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        files = [(temp, chunks, final) for temp, chunks, final, _ in batch]
        job = loop.run_in_executor(self._executor, write_batch, self._directory, files)
        self._running.add(job)
        job.add_done_callback(lambda finished: self._finish_batch(loop, batch, finished))

    def _finish_batch(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Path, list[bytes], Path, asyncio.Future[None]]],
        job: asyncio.Future[list[Exception | None]],
    ) -> None:
        self._running.discard(job)
        # write_batch returns errors rather than raising them, so an exception
        # here is a bug, and every waiter gets it rather than hanging.
        failure = job.exception()
        errors = job.result() if failure is None else [failure] * len(batch)
        for (*_, done), error in zip(batch, errors):
            if done.cancelled():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
        if self._pending and len(self._running) < STORE_BATCHES:
            self._start_batch(loop)


def write_batch(directory: Path, files: list[tuple[Path, list[bytes], Path]]) -> list[Exception | None]:
    """Write each file as ``write_file`` does, then fsync ``directory`` once; return each file's error or None.

    A file that could not be written gets its OSError. When the directory
    fsync fails, every file written gets a SpoolError.
    """
    errors: list[Exception | None] = []
    for temp, chunks, final in files:
        try:
            write_file(temp, chunks, final)
        except OSError as exc:
            # The cleanup may fail too (the name may be a directory), and
            # that must not cost the other files of the batch their replies.
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            errors.append(exc)
        else:
            errors.append(None)
    if any(error is None for error in errors):
        try:
            fsync_directory(directory)
        except OSError as exc:
            failure = SpoolError(f"fsync of spool directory {directory} failed: {exc}")
            errors = [failure if error is None else error for error in errors]
    return errors
