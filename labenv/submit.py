"""The sendmail-compatible submission command: read a message on stdin and submit it over SMTP.

Installed as /usr/sbin/sendmail in the lab hosts, so that bsd-mailx and s-nail
use it unchanged. It adds the header fields sendmail's submission program adds
(a local ``Received:`` line, and Date, From and Message-Id when missing) and
hands the message to the SMTP server named by ``LABENV_SMTP_SERVER``
(default ``localhost:25``). With ``-v`` it prints the SMTP dialogue the way
``sendmail -v`` does. Exit codes follow sendmail's, from <sysexits.h>.
"""

from __future__ import annotations

import email.utils
import os
import pwd
import re
import selectors
import socket
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from labenv import __version__
from labenv.errors import LabenvError
from labenv.mta.headers import field_values, header_end, message_id, rfc2822_date
from labenv.mta.queueid import QueueIdGenerator

# <sysexits.h>
EX_OK = 0
EX_USAGE = 64
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_PROTOCOL = 76
EX_CONFIG = 78

DEFAULT_SERVER = "localhost:25"
DEFAULT_CONFIG = Path("/etc/labenv/mta.toml")
DEFAULT_PRODUCT = f"labenv-mta {__version__}"
# RFC 5321 section 4.5.3.2.6 gives the reply to the final dot 10 minutes,
# the longest client timeout it names.
REPLY_TIMEOUT = 600.0
CONNECT_TIMEOUT = 60.0
REPLY_LINE_LIMIT = 4096

# getopt letters of sendmail 8 that take an argument, attached or as the next word.
OPTIONS_WITH_ARGUMENT = set("ABCDFLMNOQRVXbdfhoprS")
# Flags sendmail accepts that change nothing for a submission over SMTP.
IGNORED_FLAGS = set("GUmns")
# -o options that matter here; the rest (-odi, -oem, -oep, ...) are accepted and ignored.
IGNORE_DOTS_OPTION = "i"
SUPPORTED_MODES = ("m", "s")

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3} ")
_ADDRESS_PREFIX = re.compile(r"<[^>]*>\.\.\. ")


class SubmitError(LabenvError):
    """The submission failed; ``exit_code`` is the sysexits code sendmail would return."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Options:
    """The command line, in sendmail's terms."""

    verbose: bool = False
    sender: str | None = None
    full_name: str | None = None
    extract_recipients: bool = False
    ignore_dots: bool = False
    mode: str = "m"
    body_type: str | None = None
    recipients: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Submission:
    """A message ready to send: CRLF line ends, submission fields added, and its envelope."""

    message: bytes
    sender: str
    recipients: list[str]
    body_type: str | None = None


@dataclass(frozen=True)
class Identity:
    """The submitting user and the local host."""

    login: str
    full_name: str
    hostname: str
    product: str

    def qualify(self, address: str) -> str:
        """Add ``@hostname`` to a bare user name, as sendmail qualifies local addresses."""
        if not address or "@" in address:
            return address
        return f"{address}@{self.hostname}"


# -- command line ------------------------------------------------------------


def parse_args(argv: list[str]) -> Options:
    """Parse sendmail's options the way getopt does; raise SubmitError (EX_USAGE) for invalid ones."""
    options = Options()
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            index -= 1
            break
        position = 1
        while position < len(word):
            letter = word[position]
            position += 1
            if letter not in OPTIONS_WITH_ARGUMENT:
                _apply_flag(options, letter)
                continue
            # The argument is the rest of this word, or else the next word.
            value = word[position:]
            if not value:
                if index >= len(argv):
                    raise SubmitError(f"option -{letter} requires an argument", EX_USAGE)
                value = argv[index]
                index += 1
            _apply_option(options, letter, value)
            break
    options.recipients = split_recipients(argv[index:])
    return options


def _apply_flag(options: Options, letter: str) -> None:
    if letter == "v":
        options.verbose = True
    elif letter == "t":
        options.extract_recipients = True
    elif letter == "i":
        options.ignore_dots = True
    elif letter == "q":
        raise SubmitError("queue runs (-q) are not supported: the lab MTA keeps the queue itself", EX_USAGE)
    elif letter not in IGNORED_FLAGS:
        raise SubmitError(f"invalid option -{letter}", EX_USAGE)


def _apply_option(options: Options, letter: str, value: str) -> None:
    if letter in ("f", "r"):
        options.sender = value
    elif letter == "F":
        options.full_name = value
    elif letter == "o" and value == IGNORE_DOTS_OPTION:
        options.ignore_dots = True
    elif letter == "B":
        options.body_type = value.upper()
    elif letter == "b":
        if value not in SUPPORTED_MODES:
            raise SubmitError(
                f"mode -b{value} is not supported: this sendmail only submits mail (-bm) or speaks SMTP on stdin (-bs)",
                EX_USAGE,
            )
        options.mode = value


def split_recipients(words: list[str]) -> list[str]:
    """Split command-line recipients, which sendmail allows to be separated by spaces or commas."""
    pairs = email.utils.getaddresses([", ".join(words)])
    return [address for _, address in pairs if address]


# -- identity and settings -----------------------------------------------------


def parse_server(value: str) -> tuple[str, int]:
    """Parse ``HOST[:PORT]`` (``[v6]:PORT`` for IPv6) from LABENV_SMTP_SERVER."""
    host, port = value, "25"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SubmitError(
            f"invalid LABENV_SMTP_SERVER {value!r}: expected HOST or HOST:PORT with a port 1-65535", EX_CONFIG
        )
    return host, int(port)


def read_mta_settings(path: Path) -> dict:
    """Read the host name and product from the local MTA's configuration file, if there is one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise SubmitError(f"cannot read {path}: {error.strerror}; check its permissions", EX_CONFIG) from error
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SubmitError(f"invalid TOML in {path}: {error}; fix the file or set LABENV_MTA_CONFIG", EX_CONFIG) from error


def local_identity(environ: dict[str, str]) -> Identity:
    """Find the login name, its full name (GECOS) and the host's FQDN."""
    settings = read_mta_settings(Path(environ.get("LABENV_MTA_CONFIG", DEFAULT_CONFIG)))
    try:
        entry = pwd.getpwuid(os.getuid())
        login, gecos = entry.pw_name, entry.pw_gecos
    except KeyError:
        login, gecos = environ.get("LOGNAME") or environ.get("USER") or f"uid{os.getuid()}", ""
    return Identity(
        login=login,
        full_name=gecos.split(",")[0],
        hostname=str(settings.get("hostname") or socket.getfqdn()),
        product=str(settings.get("product") or DEFAULT_PRODUCT),
    )


# -- the message -----------------------------------------------------------------


def read_message(stream: BinaryIO, ignore_dots: bool) -> bytes:
    """Read the message from ``stream``; without -i a line holding only "." ends it."""
    lines = []
    for line in stream:
        if not ignore_dots and line.rstrip(b"\r\n") == b".":
            break
        lines.append(line)
    return b"".join(lines)


def to_crlf(message: bytes) -> bytes:
    """Turn every line end (CRLF, LF or a bare CR) into CRLF and end the message with one."""
    message = _LINE_ENDS.sub(b"\r\n", message)
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message


def header_recipients(message: bytes) -> list[str]:
    """Collect the addresses in To, Cc and Bcc, the fields sendmail -t reads."""
    values = []
    for name in (b"to", b"cc", b"bcc"):
        values += [value.decode("utf-8", "surrogateescape") for value in field_values(message, name)]
    return [address for _, address in email.utils.getaddresses(values) if address]


def remove_fields(message: bytes, name: bytes) -> bytes:
    """Remove every header field called ``name``, continuation lines included."""
    end = header_end(message)
    kept_lines = []
    removing = False
    for line in message[:end].splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not removing:
                kept_lines.append(line)
            continue
        removing = line.partition(b":")[0].strip().lower() == name
        if not removing:
            kept_lines.append(line)
    return b"".join(kept_lines) + message[end:]


def submission_fields(message: bytes, identity: Identity, sender: str, full_name: str, qid: str, now: float) -> bytes:
    """Build the fields sendmail's submission program puts above the message's own fields."""
    date = rfc2822_date(now)
    lines = [
        f"Received: (from {identity.login}@localhost)",
        f"\tby {identity.hostname} ({identity.product}/Submit) id {qid}; {date}",
    ]
    if not field_values(message, b"date"):
        lines.append(f"Date: {date}")
    if not field_values(message, b"from"):
        lines.append(f"From: {full_name} <{sender}>" if full_name else f"From: {sender}")
    if not field_values(message, b"message-id"):
        lines.append(f"Message-Id: {message_id(qid, identity.hostname, now)}")
    return "".join(line + "\r\n" for line in lines).encode("utf-8", "surrogateescape")


def prepare_message(raw: bytes, options: Options, identity: Identity, qid: str, now: float) -> Submission:
    """Build the message as it is sent and its envelope from the input and the options."""
    message = to_crlf(raw)
    sender = identity.login if options.sender is None else options.sender.strip()
    # "-f <>" sets the null reverse-path, used for bounces (RFC 5321 section 4.5.5).
    sender = identity.qualify(sender.removeprefix("<").removesuffix(">"))
    recipients = list(options.recipients)
    if options.extract_recipients:
        recipients += header_recipients(message)
        message = remove_fields(message, b"bcc")
    # Duplicates are sent once, in the order first seen.
    recipients = list(dict.fromkeys(identity.qualify(address) for address in recipients))
    full_name = options.full_name if options.full_name is not None else identity.full_name
    added = submission_fields(message, identity, sender or f"MAILER-DAEMON@{identity.hostname}", full_name, qid, now)
    if header_end(message) == 0 and not message.startswith(b"\r\n"):
        # The input has no header section, so the body needs a separating empty line.
        added += b"\r\n"
    return Submission(added + message, sender, recipients, options.body_type)


def dot_stuff(message: bytes) -> bytes:
    """Double every leading dot (RFC 5321 section 4.5.2) of a CRLF message."""
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..")


# -- SMTP ----------------------------------------------------------------------


@dataclass
class Reply:
    """One SMTP reply: its code and its text lines without the code."""

    code: int
    lines: list[str]

    @property
    def detail(self) -> str:
        """Return the last text line without its enhanced status code (RFC 3463)."""
        text = self.lines[-1] if self.lines else ""
        match = _ENHANCED_CODE.match(text)
        return text[match.end():] if match else text


class SmtpDialogue:
    """A blocking SMTP client connection that prints the dialogue like sendmail -v."""

    def __init__(self, sock: socket.socket, transcript: TextIO | None) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.transcript = transcript

    def show(self, text: str) -> None:
        if self.transcript is not None:
            print(text, file=self.transcript, flush=True)

    def send(self, *commands: str) -> None:
        """Send one or more command lines in one write, as PIPELINING allows (RFC 2920)."""
        for command in commands:
            self.show(f">>> {command}")
        self.sock.sendall(b"".join(command.encode("utf-8", "surrogateescape") + b"\r\n" for command in commands))

    def send_data(self, message: bytes) -> None:
        """Send the dot-stuffed message and the final dot; only the dot is shown, as sendmail does."""
        self.show(">>> .")
        self.sock.sendall(dot_stuff(message) + b".\r\n")

    def reply(self) -> Reply:
        """Read one reply, possibly of several lines; raise SubmitError when it is not SMTP."""
        lines = []
        while True:
            raw = self.reader.readline(REPLY_LINE_LIMIT)
            if not raw:
                raise SubmitError("connection closed by the server", EX_TEMPFAIL)
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.show(line)
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
                raise SubmitError(f"invalid SMTP reply {line[:80]!r}", EX_PROTOCOL)
            lines.append(line[4:])
            if line[3:4] != "-":
                return Reply(int(line[:3]), lines)

    def command(self, line: str) -> Reply:
        self.send(line)
        return self.reply()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def failure_code(reply: Reply, stage: str) -> int:
    """Map a rejecting reply to sendmail's exit code."""
    if reply.code < 500:
        return EX_TEMPFAIL
    if stage == "rcpt" and reply.code in (550, 551, 553):
        return EX_NOUSER
    return EX_UNAVAILABLE


def report(address: str, reply: Reply, errors: TextIO) -> None:
    """Print a rejection as sendmail does: ``address... text``."""
    detail = _ADDRESS_PREFIX.sub("", reply.detail, count=1)
    print(f"{address}... {detail}", file=errors, flush=True)


def extensions_of(ehlo: Reply) -> set[str]:
    """Return the EHLO keywords, upper-cased, from a 250 reply to EHLO."""
    return {line.split(" ", 1)[0].upper() for line in ehlo.lines[1:] if line}


def open_dialogue(host: str, port: int, transcript: TextIO | None) -> SmtpDialogue:
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SubmitError(f"Deferred: {reason} by {host}:{port}; check that the MTA is running", EX_TEMPFAIL) from error
    sock.settimeout(REPLY_TIMEOUT)
    return SmtpDialogue(sock, transcript)


def transfer(
    dialogue: SmtpDialogue, hostname: str, submission: Submission, errors: TextIO
) -> tuple[list[str], Reply | None, int]:
    """Run greeting, EHLO, MAIL, RCPT and DATA; return the accepted recipients, the final reply and the exit code."""
    sender, recipients, message = submission.sender, submission.recipients, submission.message
    greeting = dialogue.reply()
    if greeting.code != 220:
        return [], greeting, failure_code(greeting, "connect")

    ehlo = dialogue.command(f"EHLO {hostname}")
    extensions = extensions_of(ehlo) if ehlo.code == 250 else set()
    if ehlo.code != 250:
        helo = dialogue.command(f"HELO {hostname}")
        if helo.code != 250:
            return [], helo, failure_code(helo, "helo")

    mail = f"MAIL From:<{sender}>"
    if "SIZE" in extensions:
        mail += f" SIZE={len(message)}"
    if submission.body_type and "8BITMIME" in extensions:
        mail += f" BODY={submission.body_type}"
    mail_reply = dialogue.command(mail)
    if mail_reply.code != 250:
        report(f"<{sender}>", mail_reply, errors)
        return [], mail_reply, failure_code(mail_reply, "mail")

    rcpt_lines = [f"RCPT To:<{address}>" for address in recipients]
    # With PIPELINING, sendmail sends every RCPT and DATA in one write and then
    # reads their replies in order (RFC 2920 section 3.1).
    pipelined = "PIPELINING" in extensions
    if pipelined:
        dialogue.send(*rcpt_lines, "DATA")
    accepted = []
    exit_code = EX_OK
    for address, line in zip(recipients, rcpt_lines):
        reply = dialogue.reply() if pipelined else dialogue.command(line)
        if reply.code in (250, 251):
            accepted.append(address)
        else:
            report(address, reply, errors)
            exit_code = exit_code or failure_code(reply, "rcpt")

    if not accepted and not pipelined:
        return [], None, exit_code
    data_reply = dialogue.reply() if pipelined else dialogue.command("DATA")
    if data_reply.code != 354:
        # A pipelined DATA after no accepted recipient is rejected (503 or 554),
        # which is expected and already reported per recipient.
        if accepted:
            report(", ".join(accepted), data_reply, errors)
            exit_code = failure_code(data_reply, "data")
        return [], data_reply, exit_code

    dialogue.send_data(message)
    final = dialogue.reply()
    if final.code != 250:
        report(", ".join(accepted), final, errors)
        return [], final, failure_code(final, "data")
    return accepted, final, exit_code


def submit(
    submission: Submission, identity: Identity, server: tuple[str, int], *, verbose: bool, out: TextIO, errors: TextIO
) -> int:
    """Submit one prepared message; return sendmail's exit code."""
    recipients = submission.recipients
    host, port = server
    transcript = out if verbose else None
    if transcript is not None:
        # NOTE: with several recipients the list is joined with ", "; whether
        # sendmail prints one such line or one per recipient is not checked.
        print(f"{', '.join(recipients)}... Connecting to {host} via relay...", file=transcript, flush=True)
    try:
        dialogue = open_dialogue(host, port, transcript)
    # NOTE: sendmail's submission program would keep the message in
    # /var/spool/clientmqueue and exit 0; this one has no queue, so it exits
    # with EX_TEMPFAIL and the mail client reports the failure.
    except SubmitError as error:
        print(f"{', '.join(recipients)}... {error}", file=errors, flush=True)
        return error.exit_code
    try:
        accepted, final, exit_code = transfer(dialogue, identity.hostname, submission, errors)
        if transcript is not None:
            for address in accepted:
                print(f"{address}... Sent ({final.detail})", file=transcript, flush=True)
            print(f"Closing connection to {host}", file=transcript, flush=True)
        dialogue.command("QUIT")
    except SubmitError as error:
        print(f"{', '.join(recipients)}... {error}", file=errors, flush=True)
        return error.exit_code
    except OSError as error:
        print(f"{', '.join(recipients)}... Deferred: {error} with {host}:{port}", file=errors, flush=True)
        return EX_TEMPFAIL
    finally:
        dialogue.close()
    return exit_code


# -- sendmail -bs ------------------------------------------------------------------


def proxy_smtp(server: tuple[str, int], hostname: str, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Relay an SMTP session on stdin/stdout to the server, turning bare LF from stdin into CRLF."""
    host, port = server
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as error:
        stdout.write(f"421 4.4.1 {hostname} cannot connect to {host}:{port}: {error.strerror or error}\r\n".encode())
        stdout.flush()
        return EX_TEMPFAIL
    sock.setblocking(False)
    stdin_fd, stdout_fd = stdin.fileno(), stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
    selector.register(sock, selectors.EVENT_READ, "server")
    last_byte = b""
    try:
        while True:
            for key, _ in selector.select():
                if key.data == "server":
                    data = sock.recv(65536)
                    if not data:
                        return EX_OK
                    _write_all(stdout_fd, data)
                    continue
                data = os.read(stdin_fd, 65536)
                if not data:
                    # The client is done; let the server finish its replies.
                    selector.unregister(stdin_fd)
                    sock.shutdown(socket.SHUT_WR)
                    continue
                converted = _BARE_LF.sub(b"\r\n", data)
                if data.startswith(b"\n") and last_byte == b"\r":
                    # The CR arrived at the end of the previous read.
                    converted = converted[1:]
                last_byte = data[-1:]
                sock.setblocking(True)
                sock.sendall(converted)
                sock.setblocking(False)
    except OSError as error:
        print(f"connection to {host}:{port} failed: {error}", file=sys.stderr, flush=True)
        return EX_TEMPFAIL
    finally:
        selector.close()
        sock.close()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


# -- entry point -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the sysexits code."""
    program = os.path.basename(sys.argv[0]) or "sendmail"
    args = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ)
    try:
        options = parse_args(args)
        server = parse_server(environ.get("LABENV_SMTP_SERVER", DEFAULT_SERVER))
        identity = local_identity(environ)
    except SubmitError as error:
        print(f"{program}: {error}", file=sys.stderr, flush=True)
        return error.exit_code

    if options.mode == "s":
        return proxy_smtp(server, identity.hostname, sys.stdin.buffer, sys.stdout.buffer)

    raw = read_message(sys.stdin.buffer, options.ignore_dots)
    qid = QueueIdGenerator().new()
    submission = prepare_message(raw, options, identity, qid, time.time())
    if not submission.recipients:
        print(f"{program}: Recipient names must be specified", file=sys.stderr, flush=True)
        return EX_USAGE
    return submit(submission, identity, server, verbose=options.verbose, out=sys.stdout, errors=sys.stderr)
