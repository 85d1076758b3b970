"""Final delivery: spam check, Return-Path and authentication headers, then the user's mbox."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from labenv.mta import headers, mbox, outcome, spamc
from labenv.mta.events import LOG_NOTICE
from labenv.mta.outcome import Outcome
from labenv.mta.spool import Envelope

if TYPE_CHECKING:
    from labenv.mta.server import MtaServices

log = logging.getLogger(__name__)


async def spam_fields(services: "MtaServices", envelope: Envelope, message: bytes, user: str) -> list[bytes]:
    """Return the X-Spam-* fields from spamd for ``user``, or a not-scanned mark when spamd gave no verdict."""
    config = services.config
    if config.spamd is None:
        return []
    result = await spamc.check(
        message,
        user,
        host=config.spamd.host,
        port=config.spamd.port,
        timeout=config.spamd_timeout,
        max_size=config.spamd_max_size,
    )
    if result.scanned:
        return [field if field.endswith(b"\r\n") else field.rstrip(b"\n") + b"\r\n" for field in result.headers]
    reason = result.reason or "no reason given"
    services.maillog.note(envelope.queue_id, f"spam check for {user} skipped: {reason}", LOG_NOTICE)
    # Header field values are ASCII; the reason could carry a spamd reply.
    text = reason.encode("ascii", "replace").replace(b"\r", b" ").replace(b"\n", b" ")
    return [b"X-Labenv-Spam-Check: not scanned (" + text + b")\r\n"]


async def deliver_local(services: "MtaServices", envelope: Envelope, message: bytes, user: str) -> Outcome:
    """Deliver one copy of ``message`` to the mbox of ``user``."""
    added = await spam_fields(services, envelope, message, user)
    # Sender authentication results (SPF, DKIM, DMARC) are prepended here by
    # the verification hook, above the Received field this host added.
    auth_fields = await services.hooks.verify_incoming(envelope, message)
    return_path = f"Return-Path: <{envelope.sender}>\r\n".encode("utf-8", "surrogateescape")
    copy = headers.append_fields(return_path + b"".join(auth_fields) + message, added)
    try:
        await services.mailboxes.append(user, copy, envelope.sender, time.time())
    except mbox.MailboxError as exc:
        if exc.temporary:
            return outcome.deferred("4.2.0", str(exc))
        return outcome.failed("5.2.0", str(exc))
    return outcome.sent()
