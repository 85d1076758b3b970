"""The MTA's mail log: sendmail-format lines sent to syslog and mirrored to Python logging.

Every line about a message starts with its queue id, the same id the
250 reply and the ``Received:`` field show.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from labenv.mta import maillog
from labenv.mta.spool import Envelope

log = logging.getLogger(__name__)

# syslog severities (RFC 5424 section 6.2.1)
LOG_ERR = 3
LOG_WARNING = 4
LOG_NOTICE = 5
LOG_INFO = 6


class SyslogSink(Protocol):
    """Anything that sends one syslog message with a severity."""

    def send(self, severity: int, message: str) -> None: ...


class MailLog:
    """Writes the mail log lines of one MTA."""

    def __init__(self, sink: SyslogSink | None, daemon: str) -> None:
        self._sink = sink
        self.daemon = daemon

    def emit(self, severity: int, message: str) -> None:
        """Send one line to syslog and to the Python logger."""
        log.log(logging.WARNING if severity <= LOG_WARNING else logging.INFO, "%s", message)
        if self._sink is not None:
            self._sink.send(severity, message)

    def received(self, envelope: Envelope) -> None:
        """Log the ``from=`` line of a message just queued."""
        self.emit(
            LOG_INFO,
            maillog.from_line(
                envelope.queue_id,
                sender=envelope.sender,
                size=envelope.size,
                klass=envelope.message_class,
                nrcpts=len(envelope.recipients),
                msgid=envelope.msgid,
                proto=envelope.protocol,
                daemon=self.daemon if envelope.protocol else None,
                relay_host=envelope.client_name,
                relay_ip=envelope.client_ip,
                bodytype=envelope.body_type,
                may_be_forged=envelope.may_be_forged,
            ),
        )

    def delivered(
        self,
        envelope: Envelope,
        recipient: str,
        *,
        mailer: str,
        attempt_started: float,
        queue_runs: int,
        dsn: str,
        stat: str,
        relay: str | None = None,
    ) -> None:
        """Log the ``to=`` line of one delivery attempt."""
        now = time.time()
        severity = LOG_INFO if dsn.startswith("2") else LOG_NOTICE
        self.emit(
            severity,
            maillog.to_line(
                envelope.queue_id,
                recipient=recipient,
                delay=now - envelope.received_at,
                xdelay=now - attempt_started,
                mailer=mailer,
                pri=maillog.priority(envelope.size, envelope.message_class, len(envelope.recipients), queue_runs),
                dsn=dsn,
                stat=stat,
                relay=relay,
            ),
        )

    def note(self, queue_id: str | None, message: str, severity: int = LOG_INFO) -> None:
        """Log a free-form line about a message, or a ``NOQUEUE:`` line without an id."""
        if queue_id is None:
            self.emit(severity, maillog.noqueue_line(message))
        else:
            self.emit(severity, f"{queue_id}: {message}")
