"""Runs deliveries from the spool: workers, retries with backoff, bounces and queue runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from labenv.mta import dsn, outcome
from labenv.mta.events import LOG_NOTICE
from labenv.mta.local import deliver_local
from labenv.mta.outcome import Outcome
from labenv.mta.remote import deliver_remote
from labenv.mta.smtpclient import Transcript
from labenv.mta.spool import Envelope, Recipient, SpoolError

if TYPE_CHECKING:
    from labenv.mta.server import MtaServices

log = logging.getLogger(__name__)

# How long stop() lets running deliveries finish before cancelling them.
STOP_GRACE_SECONDS = 10.0
# Bytes of just-accepted messages kept in memory for their first delivery
# attempt, so that it need not read them back from the spool. Messages beyond
# this wait in the spool only.
MEMORY_QUEUE_BYTES = 64 * 1024 * 1024


@dataclass
class _Attempt:
    """One pass over the unfinished recipients of a message."""

    envelope: Envelope
    message: bytes
    done: set[int]
    queue_runs: int
    started: float
    deferred: bool = False
    # Serialises the spool's done records, so that the final removal cannot
    # overtake a record still being written.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DeliveryQueue:
    """Delivers queued messages with a pool of worker tasks."""

    def __init__(self, services: "MtaServices") -> None:
        self._services = services
        self._ready: asyncio.Queue[str | None] = asyncio.Queue()
        # Envelope and message of accepted messages not yet attempted, by queue id.
        self._in_memory: dict[str, tuple[Envelope, bytes]] = {}
        self._in_memory_bytes = 0
        self._active: set[str] = set()
        self._attempts: dict[str, int] = defaultdict(int)
        self._retry_at: dict[str, float] = {}
        self._warned: set[tuple[str, int]] = set()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    def start(self, queued: list[str]) -> None:
        """Start the workers and the retry timer, then queue ``queued`` (found in the spool at start)."""
        for _ in range(max(1, self._services.config.delivery_workers)):
            self._tasks.append(asyncio.get_running_loop().create_task(self._worker()))
        self._tasks.append(asyncio.get_running_loop().create_task(self._timer()))
        if queued:
            log.info("recovering %d queued messages", len(queued))
        for qid in queued:
            self.submit(qid)

    async def stop(self) -> None:
        """Let running deliveries finish (for up to STOP_GRACE_SECONDS), then cancel the workers.

        Messages not started yet stay in the spool for the next start.
        """
        self._stopping = True
        for _ in self._tasks:
            self._ready.put_nowait(None)
        workers = self._tasks[:-1]
        timer = self._tasks[-1] if self._tasks else None
        if timer is not None:
            timer.cancel()
        if workers:
            done, pending = await asyncio.wait(workers, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                log.warning("cancelling a delivery still running after %s s", STOP_GRACE_SECONDS)
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()

    def submit(self, qid: str, stored: tuple[Envelope, bytes] | None = None) -> None:
        """Queue ``qid`` for immediate delivery.

        ``stored`` is the envelope and message just written to the spool under
        ``qid``, with no recipient done yet. The first attempt then uses them
        instead of reading the spool file.
        """
        if stored is not None and qid not in self._in_memory:
            size = len(stored[1])
            if self._in_memory_bytes + size <= MEMORY_QUEUE_BYTES:
                self._in_memory[qid] = stored
                self._in_memory_bytes += size
        self._idle.clear()
        self._ready.put_nowait(qid)

    def run_queue_soon(self) -> None:
        """Retry every deferred message now (ETRN, or a queue run asked for by an operator)."""
        for qid in list(self._retry_at):
            self._retry_at[qid] = 0.0
        self._wakeup.set()

    async def wait_idle(self) -> None:
        """Wait until nothing is queued for immediate delivery or being delivered."""
        await self._idle.wait()

    async def _worker(self) -> None:
        while True:
            qid = await self._ready.get()
            if qid is None or self._stopping:
                return
            try:
                await self.deliver_now(qid, None)
            except Exception:
                # One broken message must not stop the worker; it stays queued for the next run.
                log.exception("delivery of %s failed unexpectedly; it stays queued", qid)
                self._schedule_retry(qid)
            finally:
                if self._ready.empty() and not self._active:
                    self._idle.set()

    async def _timer(self) -> None:
        while True:
            now = time.time()
            due = [qid for qid, when in self._retry_at.items() if when <= now]
            for qid in due:
                del self._retry_at[qid]
                self.submit(qid)
            upcoming = min(self._retry_at.values(), default=now + 60.0)
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), max(0.05, upcoming - now))
            except asyncio.TimeoutError:
                pass

    def _schedule_retry(self, qid: str) -> None:
        delays = self._services.config.retry_delays
        attempt = self._attempts[qid]
        delay = delays[min(attempt, len(delays)) - 1] if attempt else delays[0]
        self._retry_at[qid] = time.time() + delay
        self._wakeup.set()

    async def deliver_now(self, qid: str, transcript: Transcript) -> None:
        """Attempt every unfinished recipient of ``qid`` once; ``transcript`` receives VERB lines."""
        if qid in self._active:
            return
        self._active.add(qid)
        try:
            await self._attempt(qid, transcript)
        finally:
            self._active.discard(qid)

    async def _load(self, qid: str) -> tuple[Envelope, bytes, set[int]]:
        stored = self._in_memory.pop(qid, None)
        if stored is None:
            return await self._services.spool.load_async(qid)
        self._in_memory_bytes -= len(stored[1])
        return stored[0], stored[1], set()

    async def _attempt(self, qid: str, transcript: Transcript) -> None:
        services = self._services
        try:
            envelope, message, done = await self._load(qid)
        except FileNotFoundError:
            return
        self._attempts[qid] += 1
        attempt = _Attempt(envelope, message, done, queue_runs=self._attempts[qid] - 1, started=time.time())
        pending = [(index, recipient) for index, recipient in enumerate(envelope.recipients) if index not in done]
        # Each local mailbox and each remote domain is delivered on its own, so
        # a locked mailbox or a slow next hop does not hold up the others, and
        # each recipient is recorded as finished as soon as it is.
        await asyncio.gather(*(self._deliver_group(attempt, group, transcript) for group in self._groups(pending)))
        if attempt.deferred:
            self._schedule_retry(qid)
        else:
            self._attempts.pop(qid, None)
            self._retry_at.pop(qid, None)
            self._warned = {key for key in self._warned if key[0] != qid}

    def _groups(self, pending: list[tuple[int, Recipient]]) -> list[list[tuple[int, Recipient]]]:
        groups: list[list[tuple[int, Recipient]]] = []
        remote: dict[str, list[tuple[int, Recipient]]] = defaultdict(list)
        for index, recipient in pending:
            route = self._services.router.route(recipient.address)
            if route is not None and not route.is_local:
                remote[route.domain].append((index, recipient))
            else:
                groups.append([(index, recipient)])
        return groups + list(remote.values())

    async def _deliver_group(self, attempt: "_Attempt", group: list[tuple[int, Recipient]], transcript: Transcript) -> None:
        services = self._services
        envelope = attempt.envelope
        results = await self._deliver(envelope, attempt.message, group, transcript)
        expired = time.time() - envelope.received_at > services.config.max_queue_age
        for index, recipient in group:
            result = results[index]
            if not result.is_final and expired:
                days = services.config.max_queue_age / 86400
                result = outcome.failed("4.4.7", f"Message could not be delivered for {days:g} days ({result.diagnostic})")
                results[index] = result
            route = services.router.route(recipient.address)
            services.maillog.delivered(
                envelope,
                recipient.address,
                mailer="local" if route is None or route.is_local else "esmtp",
                attempt_started=attempt.started,
                queue_runs=attempt.queue_runs,
                dsn=result.dsn,
                stat=result.stat,
                relay=result.relay,
            )
            if not result.is_final:
                attempt.deferred = True
        # The notice is stored before the recipients are marked done, so a
        # crash in between sends it twice rather than never.
        await self._send_notices(envelope, attempt.message, group, results)
        # NOTE: a crash after a mailbox or next hop took the message but before
        # this record is durable makes the restart deliver that recipient again.
        for index, _ in group:
            if results[index].is_final:
                async with attempt.lock:
                    attempt.done.add(index)
                    remaining = len(envelope.recipients) - len(attempt.done)
                    await services.spool.mark_done(envelope.queue_id, index, remaining)

    async def _deliver(
        self, envelope: Envelope, message: bytes, group: list[tuple[int, Recipient]], transcript: Transcript
    ) -> dict[int, Outcome]:
        services = self._services
        index, recipient = group[0]
        route = services.router.route(recipient.address)
        if route is None:
            # The user left the configuration after the message was accepted.
            return {index: outcome.failed("5.1.1", "User unknown")}
        if not route.is_local:
            return await deliver_remote(services, envelope, message, route.domain, group, transcript)
        if transcript is not None:
            await transcript(f"<{recipient.address}>... Connecting to local...")
        result = await deliver_local(services, envelope, message, route.user)
        if transcript is not None:
            await transcript(f"<{recipient.address}>... {result.stat}")
        return {index: result}

    async def _send_notices(
        self, envelope: Envelope, message: bytes, pending: list[tuple[int, Recipient]], results: dict[int, Outcome]
    ) -> None:
        """Queue one DSN for the recipients that asked for one; never for a bounce or the null sender."""
        if not envelope.sender or envelope.is_bounce:
            return
        overdue = time.time() - envelope.received_at >= self._services.config.delay_warning
        entries: list[tuple[Recipient, Outcome, str]] = []
        warned: list[tuple[str, int]] = []
        for index, recipient in pending:
            result = results[index]
            if result.state == outcome.FAILED and dsn.wants_notice(recipient, "failed"):
                entries.append((recipient, result, "failed"))
            elif result.state == outcome.SENT and dsn.wants_notice(recipient, "sent") and not result.remote_dsn:
                action = "delivered" if result.relay is None else "relayed"
                entries.append((recipient, result, action))
            elif result.state == outcome.DEFERRED and overdue and dsn.wants_notice(recipient, "delayed"):
                key = (envelope.queue_id, index)
                if key not in self._warned:
                    entries.append((recipient, result, "delayed"))
                    warned.append(key)
        if entries:
            await self.inject_notice(envelope, message, entries)
            # NOTE: kept in memory only, so a restart may send a DELAY notice again.
            self._warned.update(warned)

    async def inject_notice(self, envelope: Envelope, message: bytes, entries: list[tuple[Recipient, Outcome, str]]) -> None:
        """Store a DSN to the sender of ``envelope`` and queue it; it must be durable before recipients are marked done."""
        services = self._services
        spool = services.spool
        bounce_id = spool.new_queue_id()
        body = dsn.build_report(envelope, message, entries, hostname=services.config.hostname, bounce_id=bounce_id)
        now = time.time()
        notice = Envelope(
            queue_id=bounce_id,
            sender="",
            recipients=[Recipient(envelope.sender)],
            received_at=now,
            client_ip="127.0.0.1",
            client_name="localhost",
            helo=services.config.hostname,
            protocol="",
            size=len(body) - body.count(b"\r\n"),
            is_bounce=True,
        )
        try:
            await spool.store(notice, body)
        except SpoolError as exc:
            log.error("cannot queue the DSN for %s: %s", envelope.queue_id, exc)
            raise
        finally:
            spool.release_queue_id(bounce_id)
        reasons = "; ".join(f"{result.diagnostic or result.stat}" for _, result, _ in entries)
        services.maillog.note(envelope.queue_id, f"{bounce_id}: DSN: {reasons}", LOG_NOTICE)
        services.maillog.received(notice)
        self.submit(bounce_id, (notice, body))
