"""Relay delivery: find the next hop by MX and hand the message over with SMTP."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from labenv.mta import outcome
from labenv.mta.lookup import LookupFailed
from labenv.mta.outcome import Outcome
from labenv.mta.smtpclient import SmtpClient, SmtpReplyError, Transcript
from labenv.mta.spool import Envelope, Recipient

if TYPE_CHECKING:
    from labenv.mta.server import MtaServices

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0
# RFC 5321 section 4.5.3.2 gives minutes per command; the lab's hops are close.
COMMAND_TIMEOUT = 120.0


def _enhanced(code: int, text: str) -> str:
    first = text.split(" ", 1)[0]
    parts = first.split(".")
    if len(parts) == 3 and all(part.isdigit() for part in parts):
        return first
    return f"{code // 100}.0.0"


def _from_reply(code: int, lines: list[str], relay: str, remote: str) -> Outcome:
    text = " ".join(lines)
    reply = f"{code} {text}"
    if code < 400:
        return outcome.sent(f"Sent ({text})", relay=relay, remote_mta=remote, diagnostic=reply)
    if code < 500:
        return outcome.deferred(_enhanced(code, text), reply, relay=relay, remote_mta=remote)
    return outcome.failed(_enhanced(code, text), reply, relay=relay, remote_mta=remote)


def _mail_command(envelope: Envelope, client: SmtpClient, size: int) -> str:
    words = [f"MAIL From:<{envelope.sender}>"]
    if "SIZE" in client.extensions:
        words.append(f"SIZE={size}")
    if envelope.body_type and "8BITMIME" in client.extensions:
        words.append(f"BODY={envelope.body_type}")
    if "DSN" in client.extensions:
        if envelope.ret:
            words.append(f"RET={envelope.ret}")
        if envelope.envid:
            words.append(f"ENVID={envelope.envid}")
    return " ".join(words)


def _rcpt_command(recipient: Recipient, client: SmtpClient) -> str:
    words = [f"RCPT To:<{recipient.address}>"]
    if "DSN" in client.extensions:
        if recipient.notify:
            words.append("NOTIFY=" + ",".join(recipient.notify))
        if recipient.orcpt:
            words.append(f"ORCPT={recipient.orcpt}")
    return " ".join(words)


async def deliver_remote(
    services: "MtaServices",
    envelope: Envelope,
    message: bytes,
    domain: str,
    recipients: list[tuple[int, Recipient]],
    transcript: Transcript,
) -> dict[int, Outcome]:
    """Deliver ``message`` to ``recipients`` of ``domain`` through its mail exchangers, in preference order."""
    try:
        hops = await services.lookups.mail_exchangers(domain)
    except LookupFailed as exc:
        result = outcome.deferred("4.4.3", str(exc)) if exc.temporary else outcome.failed("5.1.2", str(exc))
        return {index: result for index, _ in recipients}
    last: Outcome = outcome.deferred("4.4.1", f"no mail exchanger of {domain} answered")
    for hop in hops:
        for address in hop.addresses:
            relay = f"{hop.host}. [{address}]"
            if transcript is not None:
                for _, recipient in recipients:
                    await transcript(f"<{recipient.address}>... Connecting to {hop.host}. via esmtp...")
            try:
                return await _deliver_to_host(services, envelope, message, recipients, address, relay, hop.host, transcript)
            except (OSError, asyncio.TimeoutError, SmtpReplyError) as exc:
                log.info("%s: connection to %s failed: %s", envelope.queue_id, relay, exc)
                reason = str(exc) or type(exc).__name__
                last = outcome.deferred("4.4.1", f"Connection to {hop.host} failed: {reason}", relay=relay)
    return {index: last for index, _ in recipients}


async def _deliver_to_host(
    services: "MtaServices",
    envelope: Envelope,
    message: bytes,
    recipients: list[tuple[int, Recipient]],
    address: str,
    relay: str,
    host: str,
    transcript: Transcript,
) -> dict[int, Outcome]:
    config = services.config
    client = await SmtpClient.connect(address, config.relay_port, CONNECT_TIMEOUT, COMMAND_TIMEOUT, transcript)
    results: dict[int, Outcome] = {}
    try:
        code, lines = await client.reply()
        if code != 220:
            return {index: _from_reply(code, lines, relay, host) for index, _ in recipients}
        code, lines = await client.hello(config.hostname)
        if code != 250:
            return {index: _from_reply(code, lines, relay, host) for index, _ in recipients}
        # DKIM signing on the relay happens here, once per next-hop transfer,
        # so the signature covers the message as it leaves this host.
        signed = b"".join(await services.hooks.sign_outgoing(envelope, message)) + message
        code, lines = await client.command(_mail_command(envelope, client, len(signed)))
        if code != 250:
            return {index: _from_reply(code, lines, relay, host) for index, _ in recipients}
        accepted: list[int] = []
        for index, recipient in recipients:
            code, lines = await client.command(_rcpt_command(recipient, client))
            if code in (250, 251):
                accepted.append(index)
            else:
                results[index] = _from_reply(code, lines, relay, host)
        if not accepted:
            return results
        code, lines = await client.data(signed)
        final = _from_reply(code, lines, relay, host)
        remote_dsn = "DSN" in client.extensions
        for index in accepted:
            results[index] = dataclasses.replace(final, remote_dsn=remote_dsn)
        if transcript is not None and final.state == outcome.SENT:
            for index, recipient in recipients:
                if index in accepted:
                    await transcript(f"<{recipient.address}>... {final.stat}")
        return results
    finally:
        await client.close()
        if transcript is not None:
            await transcript(f"Closing connection to {host}.")
