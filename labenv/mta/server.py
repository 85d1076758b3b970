"""The MTA process: listening socket, spool, delivery queue and logging, startable in-process or from the CLI."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from labenv.errors import LabenvError
from labenv.mta.config import MtaConfig
from labenv.mta.events import MailLog, SyslogSink
from labenv.mta.hooks import AuthHooks
from labenv.mta.lookup import Lookups
from labenv.mta.mbox import MailboxWriter
from labenv.mta.queue import DeliveryQueue
from labenv.mta.routing import Router
from labenv.mta.session import MtaSession
from labenv.mta.spool import Spool

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
# File writes and fsyncs run in these threads. Each thread that wakes from an
# fsync competes with the event loop for the GIL. With 32 threads and 20
# sessions, py-spy showed the event loop waiting for the GIL after its socket
# calls for about a third of its time.
IO_THREADS = 8


class MtaStartError(LabenvError):
    """The MTA could not start listening."""


@dataclass
class MtaServices:
    """The parts a session and the delivery queue share."""

    config: MtaConfig
    spool: Spool
    lookups: Lookups
    router: Router
    maillog: MailLog
    hooks: AuthHooks
    executor: ThreadPoolExecutor
    mailboxes: MailboxWriter
    queue: DeliveryQueue | None = None
    sessions: set = field(default_factory=set)


def open_sink(config: MtaConfig) -> SyslogSink | None:
    """Open the syslog target named in ``config`` (None for "none")."""
    if config.syslog == "none":
        return None
    from labenv.mta.syslogger import open_syslog

    return open_syslog(config.syslog, config.syslog_tag)


class MtaServer:
    """One MTA instance.

    Use ``start()``/``stop()`` from any thread (the server runs its own event
    loop in a background thread), or ``await serve(stop_event)`` inside a loop.
    """

    def __init__(self, config: MtaConfig, *, hooks: AuthHooks | None = None, sink: SyslogSink | None = None) -> None:
        self.config = config
        self._hooks = hooks or AuthHooks()
        self._sink = sink
        self.services: MtaServices | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self.address: tuple[str, int] | None = None

    async def start_async(self) -> None:
        """Prepare the spool, start delivering the messages it contains and open the listening socket."""
        config = self.config
        if not config.mail_dir.is_dir():
            raise MtaStartError(f"mail directory {config.mail_dir} does not exist; create it or set --mail-dir")
        executor = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="mta-io")
        spool = Spool(config.spool, executor)
        queued = spool.prepare()

        sink = self._sink if self._sink is not None else open_sink(config)
        services = MtaServices(
            config=config,
            spool=spool,
            lookups=Lookups(config.resolver, config.dns_timeout, config.hosts_file),
            router=Router(config),
            maillog=MailLog(sink, config.daemon_name),
            hooks=self._hooks,
            executor=executor,
            mailboxes=MailboxWriter(config.mail_dir, config.dotlock_timeout, executor),
        )
        services.queue = DeliveryQueue(services)
        self.services = services

        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: MtaSession(services), config.listen.host, config.listen.port, reuse_address=True
            )
        except OSError as exc:
            executor.shutdown(wait=False)
            raise MtaStartError(
                f"cannot listen on {config.listen}: {exc.strerror}; choose another --listen address or free the port"
            ) from exc
        self.address = self._server.sockets[0].getsockname()[:2]

        # Deliveries start only once listening works, so a failed start leaves the spool untouched.
        services.queue.start(queued)
        log.info("%s (%s) listening on %s:%s", config.hostname, config.role, *self.address)

    async def stop_async(self) -> None:
        """Stop accepting, let running deliveries finish, and release the threads."""
        if self._server is not None:
            self._server.close()
            # Open sessions are closed too: from Python 3.12 on, wait_closed()
            # waits for every connection, and an idle client could hold it
            # until its timeout.
            for session in list(self.services.sessions if self.services else ()):
                session.shut_down()
            await self._server.wait_closed()
            self._server = None
        if self.services is not None:
            await self.services.queue.stop()
            await self.services.mailboxes.close()
            await self.services.spool.close()
            self.services.executor.shutdown(wait=True)
        log.info("%s stopped", self.config.hostname)

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        await self.start_async()
        try:
            await stop.wait()
        finally:
            await self.stop_async()

    # -- running in a thread ------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Start the server in a background thread and return the address it listens on."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop_event = asyncio.Event()

            async def main() -> None:
                try:
                    await self.start_async()
                except BaseException as exc:
                    failure.append(exc)
                    ready.set()
                    return
                ready.set()
                try:
                    await self._stop_event.wait()
                finally:
                    await self.stop_async()

            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"mta-{self.config.hostname}", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise MtaStartError(f"MTA {self.config.hostname} did not start within {START_TIMEOUT:g} s")
        if failure:
            self._thread.join()
            raise failure[0]
        assert self.address is not None
        return self.address

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until the delivery queue has nothing to deliver right now."""
        assert self._loop is not None and self.services is not None
        asyncio.run_coroutine_threadsafe(self.services.queue.wait_idle(), self._loop).result(timeout)

    def stop(self) -> None:
        """Stop the server started with ``start()`` and wait for its thread."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join()
        self._thread = None
