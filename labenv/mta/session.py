"""The SMTP dialogue of the lab MTA: aiosmtpd's protocol with sendmail's replies and extensions."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import pwd
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiosmtpd.smtp import SMTP

from labenv.mta import headers, maillog
from labenv.mta.data import read_data
from labenv.mta.events import LOG_INFO, LOG_NOTICE
from labenv.mta.lookup import ClientName
from labenv.mta.params import (
    MailParameters,
    ParameterError,
    parse_mail_parameters,
    parse_rcpt_parameters,
    split_path,
)
from labenv.mta.spool import Envelope, Recipient, SpoolError

if TYPE_CHECKING:
    from labenv.mta.server import MtaServices

log = logging.getLogger(__name__)

# RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets with CRLF.
COMMAND_LINE_LIMIT = 512
# Replies that aiosmtpd's command loop writes itself, in sendmail's words
# with enhanced status codes (RFC 3463): an empty line, a command name that
# is not ASCII, a line over the limit, 8-bit bytes in an argument.
STOCK_REPLIES = {
    "500 Error: bad syntax": '500 5.5.1 Command unrecognized: ""',
    "500 Command line too long": "500 5.5.0 Command line too long",
    "500 Error: strict ASCII mode": "500 5.5.2 8-bit characters in a command need SMTPUTF8, which is not offered",
}
# RFC 1870 section 3, RFC 3461 section 4 and RFC 2852 section 4 let MAIL and
# RCPT grow by the length of the parameters they define.
MAIL_LINE_LIMIT = COMMAND_LINE_LIMIT + 26 + 110 + 16
RCPT_LINE_LIMIT = COMMAND_LINE_LIMIT + 510 + 40
HELP_TOPICS = {
    "HELO": "HELO <hostname>: introduce yourself.",
    "EHLO": "EHLO <hostname>: introduce yourself and ask for the ESMTP extensions.",
    "MAIL": "MAIL FROM: <sender> [SIZE=n BODY=7BIT|8BITMIME RET=FULL|HDRS ENVID=id BY=n;R|N]: start a transaction.",
    "RCPT": "RCPT TO: <recipient> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY ORCPT=type;addr]: add a recipient.",
    "DATA": "DATA: send the message, ending with \".\" on a line by itself.",
    "RSET": "RSET: abort the current transaction.",
    "NOOP": "NOOP: do nothing.",
    "QUIT": "QUIT: close the connection.",
    "HELP": "HELP [topic]: show help.",
    "VRFY": "VRFY <recipient>: verify a local address.",
    "EXPN": "EXPN <recipient>: expand a local address.",
    "VERB": "VERB: report each delivery step of the next messages in this session.",
    "ETRN": "ETRN <domain>: start a run of the mail queue.",
    "DSN": "DSN: delivery status notifications, see RFC 3461.",
}


class _CommandTable(dict):
    """aiosmtpd's command lookup, with sendmail's reply to unknown commands.

    aiosmtpd replies to an unknown command with its own text and drops the
    connection after a few of them; sendmail replies 500 and carries on.
    """

    def __init__(self, methods: dict, unknown: Callable[[str, str | None], Awaitable[None]]) -> None:
        super().__init__(methods)
        self._unknown = unknown

    def get(self, command: str, default: object = None) -> object:
        method = super().get(command)
        return method if method is not None else functools.partial(self._unknown, command)


@dataclass
class Transaction:
    """The state between MAIL and the end of DATA."""

    sender: str | None = None
    parameters: MailParameters = field(default_factory=MailParameters)
    recipients: list[Recipient] = field(default_factory=list)


class MtaSession(SMTP):
    """One SMTP connection; aiosmtpd parses lines, this class gives the replies."""

    def __init__(self, services: "MtaServices") -> None:
        config = services.config
        super().__init__(
            handler=object(),
            hostname=config.hostname,
            ident=f"ESMTP {config.product}",
            data_size_limit=config.max_message_size,
            timeout=config.idle_timeout,
            loop=asyncio.get_running_loop(),
        )
        self.services = services
        self.config = config
        # aiosmtpd keeps these limits in a class-level dict that its own EHLO
        # grows on every call, so each session gets its own fixed copy.
        self.command_size_limits = collections.defaultdict(lambda: COMMAND_LINE_LIMIT)
        self._smtp_methods = _CommandTable(self._smtp_methods, self._unknown_command)
        self.transaction = Transaction()
        self.verbose = False
        self.client_ip = "unknown"
        self._client_name_task: asyncio.Task[ClientName] | None = None
        self.client: ClientName = ClientName(None, False)

    # -- connection ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else "unknown"
        # The banner carries the time of connection, as sendmail's does.
        self.__ident__ = f"ESMTP {self.config.product}; {headers.rfc2822_date()}"
        self._client_name_task = asyncio.get_running_loop().create_task(
            self.services.lookups.client_name(self.client_ip)
        )
        self.services.sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._client_name_task is not None:
            self._client_name_task.cancel()
        self.services.sessions.discard(self)
        super().connection_lost(error)

    def shut_down(self) -> None:
        """Tell the client that the server is stopping and close the connection (RFC 5321 section 3.8)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(f"421 4.3.2 {self.config.hostname} Shutting down\r\n".encode())
            self.transport.close()

    def _timeout_cb(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(f"421 4.4.2 {self.config.hostname} Timeout waiting for input\r\n".encode())
        self.services.maillog.note(
            None, f"timeout waiting for input from {self._relay_text()} during server cmd read", LOG_NOTICE
        )
        super()._timeout_cb()

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()
        self.transaction = Transaction()

    async def _await_client_name(self) -> ClientName:
        if self._client_name_task is not None:
            self.client = await self._client_name_task
            self._client_name_task = None
        return self.client

    def _relay_text(self) -> str:
        name = self.client.name
        text = f"{name} [{self.client_ip}]" if name else f"[{self.client_ip}]"
        return text + (" (may be forged)" if self.client.may_be_forged else "")

    # -- greeting -----------------------------------------------------------

    async def _greet(self, hostname: str | None, extended: bool) -> bool:
        if not hostname:
            verb = "EHLO" if extended else "HELO"
            await self.push(f"501 5.0.0 {verb} requires domain address")
            return False
        await self._await_client_name()
        self._set_rset_state()
        self.session.host_name = hostname
        self.session.extended_smtp = extended
        return True

    def _hello_line(self) -> str:
        return f"{self.config.hostname} Hello {self.client.name or 'unknown'} [{self.client_ip}], pleased to meet you"

    async def smtp_HELO(self, hostname: str | None) -> None:
        if await self._greet(hostname, extended=False):
            self.command_size_limits.clear()
            await self.push(f"250 {self._hello_line()}")

    async def smtp_EHLO(self, hostname: str | None) -> None:
        if not await self._greet(hostname, extended=True):
            return
        self.command_size_limits["MAIL"] = MAIL_LINE_LIMIT
        self.command_size_limits["RCPT"] = RCPT_LINE_LIMIT
        keywords = ["ENHANCEDSTATUSCODES", "PIPELINING"]
        if self.config.expn:
            keywords.append("EXPN")
        keywords += ["VERB", "8BITMIME", f"SIZE {self.config.max_message_size}", "DSN", "ETRN", "DELIVERBY", "HELP"]
        await self._push_lines(250, [self._hello_line(), *keywords])

    async def _push_lines(self, code: int, lines: list[str]) -> None:
        """Send a multi-line reply in one write, so that it leaves in one segment."""
        text = "\r\n".join(f"{code}-{line}" for line in lines[:-1])
        await self.push(f"{text}\r\n{code} {lines[-1]}" if text else f"{code} {lines[-1]}")

    # -- transaction --------------------------------------------------------

    async def _need_hello(self) -> bool:
        if not self.session.host_name:
            await self.push("503 5.0.0 Polite people say HELO first")
            return True
        return False

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self._need_hello():
            return
        if self.transaction.sender is not None:
            await self.push("503 5.5.0 Sender already specified")
            return
        try:
            address, words = split_path(arg or "", "FROM:")
            if words and not self.session.extended_smtp:
                raise ParameterError("501 5.5.4 Parameters need EHLO")
            parameters = parse_mail_parameters(words, self.config.max_message_size)
        except ParameterError as exc:
            await self.push(str(exc))
            return
        # The sender is taken as given: the handout's forged sender must pass,
        # because this lab shows what an unauthenticated MTA accepts.
        self.transaction.sender = address
        self.transaction.parameters = parameters
        await self.push(f"250 2.1.0 <{address}>... Sender ok")

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self._need_hello():
            return
        if self.transaction.sender is None:
            await self.push("503 5.0.0 Need MAIL before RCPT")
            return
        try:
            address, words = split_path(arg or "", "TO:")
            if not address:
                raise ParameterError("553 5.0.0 <>... User address required")
            if words and not self.session.extended_smtp:
                raise ParameterError("501 5.5.4 Parameters need EHLO")
            parameters = parse_rcpt_parameters(words)
        except ParameterError as exc:
            await self.push(str(exc))
            return
        reply = self._check_recipient(address)
        if reply is not None:
            self.services.maillog.note(
                None,
                f"ruleset=check_rcpt, arg1=<{address}>, relay={self._relay_text()}, reject={reply}",
                LOG_NOTICE,
            )
            await self.push(reply)
            return
        self.transaction.recipients.append(Recipient(address, parameters.notify, parameters.orcpt))
        await self.push(f"250 2.1.5 <{address}>... Recipient ok")

    def _check_recipient(self, address: str) -> str | None:
        route = self.services.router.route(address)
        if route is None:
            return f"550 5.1.1 <{address}>... User unknown"
        if not route.is_local and not self.services.router.may_relay(self.client_ip):
            return f"550 5.7.1 <{address}>... Relaying denied"
        return None

    async def smtp_RSET(self, arg: str | None) -> None:
        if arg:
            await self.push("501 5.5.4 Syntax: RSET")
            return
        self._set_rset_state()
        await self.push("250 2.0.0 Reset state")

    async def smtp_NOOP(self, arg: str | None) -> None:
        await self.push("250 2.0.0 OK")

    async def smtp_QUIT(self, arg: str | None) -> None:
        await self.push(f"221 2.0.0 {self.config.hostname} closing connection")
        self._handler_coroutine.cancel()
        self.transport.close()

    # -- DATA ---------------------------------------------------------------

    async def smtp_DATA(self, arg: str | None) -> None:
        if await self._need_hello():
            return
        if self.transaction.sender is None:
            await self.push("503 5.0.0 Need MAIL command")
            return
        if not self.transaction.recipients:
            # RFC 2920 section 3.1: with PIPELINING a DATA sent after rejected
            # RCPTs must fail here, never get a 354.
            await self.push("503 5.0.0 Need RCPT (recipient)")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        queue_id = self.services.spool.new_queue_id()
        try:
            await self._receive_message(queue_id)
        finally:
            self.services.spool.release_queue_id(queue_id)
            self._set_post_data_state()

    async def _receive_message(self, queue_id: str) -> None:
        await self.push('354 Enter mail, end with "." on a line by itself')
        started = time.time()
        try:
            data, oversized = await read_data(self._reader, self.config.max_message_size)
        except (asyncio.CancelledError, asyncio.IncompleteReadError, ConnectionError):
            self.services.maillog.note(
                queue_id, f"lost input channel from {self._relay_text()} to MTA after data", LOG_NOTICE
            )
            raise

        if oversized:
            self.services.maillog.note(
                queue_id, f"message from {self._relay_text()} exceeded {self.config.max_message_size} bytes; rejected"
            )
            await self.push("552 5.3.4 Message size exceeds fixed maximum message size")
            return

        envelope, message = self._build_message(queue_id, data, started)
        # Under an enforcing policy, DMARC reject is decided before the
        # message is queued, so the client gets the 550 and nothing is stored.
        reply = await self.services.hooks.reject_reply(envelope, message)
        if reply is not None:
            self.services.maillog.note(queue_id, f"rejected from {self._relay_text()}: {reply}", LOG_NOTICE)
            await self.push(reply)
            return

        # Shielded: a client that disconnects during the fsync cancels this
        # coroutine, but a message that reaches the spool must still be delivered.
        try:
            await asyncio.shield(self._queue_message(envelope, message))
        except SpoolError as exc:
            log.error("cannot queue %s: %s", queue_id, exc)
            await self.push("451 4.3.0 Temporary failure writing the queue; try again later")
            return

        await self.push(f"250 2.0.0 {queue_id} Message accepted for delivery")

    async def _queue_message(self, envelope: Envelope, message: bytes) -> None:
        await self.services.spool.store(envelope, message)
        self.services.maillog.received(envelope)
        if self.verbose:
            await self.services.queue.deliver_now(envelope.queue_id, self._verbose_line)
        else:
            self.services.queue.submit(envelope.queue_id, (envelope, message))

    async def _verbose_line(self, text: str) -> None:
        # sendmail sends its VERB transcript as 050 replies, which clients show and skip.
        if self.transport is None or self.transport.is_closing():
            return
        for line in text.splitlines() or [""]:
            self._writer.write(f"050 {line}\r\n".encode("utf-8", "replace"))

    def _build_message(self, queue_id: str, data: bytes, started: float) -> tuple[Envelope, bytes]:
        """Prepend the Received field, add a missing Message-Id and Date, and build the envelope."""
        transaction = self.transaction
        recipients = transaction.recipients
        protocol = "ESMTP" if self.session.extended_smtp else "SMTP"
        received = headers.received_header(
            helo=self.session.host_name,
            client_name=self.client.name,
            client_ip=self.client_ip,
            hostname=self.config.hostname,
            product=self.config.product,
            protocol=protocol,
            queue_id=queue_id,
            recipients=[recipient.address for recipient in recipients],
            when=started,
        )

        present = headers.first_values(data, (b"message-id", b"date", b"from", b"precedence"))
        added: list[bytes] = []
        if b"from" not in present:
            # sendmail's H?F?From: rule: a message without From: gets the
            # envelope sender, so a typed-in forgery shows the forged address.
            author = transaction.sender or f"MAILER-DAEMON@{self.config.hostname}"
            added.append(f"From: {author}\r\n".encode())
        if b"message-id" in present:
            msgid = present[b"message-id"].decode("utf-8", "replace")
        else:
            msgid = headers.message_id(queue_id, self.config.hostname, started)
            added.append(f"Message-Id: {msgid}\r\n".encode())
        if b"date" not in present:
            added.append(f"Date: {headers.rfc2822_date(started)}\r\n".encode())
        message = headers.append_fields(received + data, added)

        precedence = present.get(b"precedence")
        envelope = Envelope(
            queue_id=queue_id,
            sender=transaction.sender or "",
            recipients=recipients,
            received_at=started,
            client_ip=self.client_ip,
            client_name=self.client.name,
            helo=self.session.host_name,
            protocol=protocol,
            # sendmail's size= counts the message as received with LF line ends.
            size=len(data) - data.count(b"\r\n"),
            body_type=transaction.parameters.body,
            ret=transaction.parameters.ret,
            envid=transaction.parameters.envid,
            msgid=msgid,
            message_class=maillog.message_class(precedence.decode("ascii", "replace") if precedence is not None else None),
            may_be_forged=self.client.may_be_forged,
        )
        return envelope, message

    # -- other commands -----------------------------------------------------

    def _describe_user(self, argument: str) -> str | None:
        address = argument.strip().strip("<>")
        route = self.services.router.route(address)
        if route is None or not route.is_local:
            return None
        try:
            full_name = pwd.getpwnam(route.user).pw_gecos.split(",")[0]
        except KeyError:
            full_name = ""
        mailbox = f"<{route.user}@{self.config.hostname}>"
        return f"{full_name} {mailbox}" if full_name else mailbox

    async def smtp_VRFY(self, arg: str | None) -> None:
        if not self.config.vrfy:
            await self.push("252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)")
            return
        await self._answer_lookup(arg, "VRFY")

    async def smtp_EXPN(self, arg: str | None) -> None:
        if not self.config.expn:
            await self.push("502 5.7.0 Sorry, we do not allow this operation")
            return
        await self._answer_lookup(arg, "EXPN")

    async def _answer_lookup(self, arg: str | None, verb: str) -> None:
        if not arg:
            await self.push(f"501 5.5.2 {verb} requires an argument")
            return
        described = self._describe_user(arg)
        if described is None:
            await self.push(f"550 5.1.1 {arg.strip()}... User unknown")
        else:
            await self.push(f"250 2.1.5 {described}")

    async def smtp_VERB(self, arg: str | None) -> None:
        self.verbose = True
        await self.push("250 2.0.0 Verbose mode")

    async def smtp_ETRN(self, arg: str | None) -> None:
        if not arg:
            await self.push("501 5.5.2 Parameter required")
            return
        self.services.maillog.note(None, f"ETRN {arg} from {self._relay_text()}")
        self.services.queue.run_queue_soon()
        await self.push(f"250 2.0.0 Queuing for node {arg} started")

    async def smtp_HELP(self, arg: str | None) -> None:
        if arg:
            topic = HELP_TOPICS.get(arg.strip().upper())
            if topic is None:
                await self.push(f'504 5.3.0 HELP topic "{arg.strip()}" unknown')
            else:
                await self._push_lines(214, [f"2.0.0 {topic}", "2.0.0 End of HELP info"])
            return
        lines = [
            f"This is {self.config.product}",
            "Topics:",
            "\tHELO\tEHLO\tMAIL\tRCPT\tDATA",
            "\tRSET\tNOOP\tQUIT\tHELP\tVRFY",
            "\tEXPN\tVERB\tETRN\tDSN",
            'For more info use "HELP <topic>".',
            "End of HELP info",
        ]
        await self._push_lines(214, [f"2.0.0 {line}" for line in lines])

    async def push(self, status: str) -> None:
        await super().push(STOCK_REPLIES.get(status, status))

    async def _unknown_command(self, command: str, arg: str | None) -> None:
        await self.push(f'500 5.5.1 Command unrecognized: "{command}"')

    async def smtp_AUTH(self, arg: str | None) -> None:
        await self.push("503 5.3.3 AUTH not available")

    async def smtp_STARTTLS(self, arg: str | None) -> None:
        await self.push("502 5.5.1 STARTTLS not available")
