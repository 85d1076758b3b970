"""Parse what replayed steps print: mbox files and sendmail-style log lines."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage

from labenv.trace_received import unfold

__all__ = ["LogLine", "log_fields", "mbox_messages", "parse_log_line", "pick_message", "pick_message_text", "unfold"]

# An mbox "From " separator line: "From sender date", at the start of the file
# or after a blank line.
_MBOX_SEPARATOR = re.compile(r"(?:\A|\n\n)(?=From \S+ )")

# RFC 3164 line as rsyslog's traditional format writes it, with an optional
# sendmail queue id (14 characters since sendmail 8.12) before the message.
_SYSLOG_LINE = re.compile(
    r"^(?P<timestamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<tag>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: "
    r"(?:\[ID \d+ [\w.]+\] )?(?:(?P<queue_id>[0-9A-Za-z]{14}|NOQUEUE): )?(?P<message>.*)$"
)

# key=value pairs of sendmail log lines; a value may hold commas inside
# <...> or (...), as in "stat=Sent (ok, queued)".
_LOG_FIELD = re.compile(r"(?:^|, )(?P<key>[a-z]+)=(?P<value>(?:<[^>]*>|\([^)]*\)|[^,(<])*)")

@dataclass(frozen=True)
class LogLine:
    """One syslog line, split into its parts."""

    text: str
    timestamp: str
    host: str
    tag: str
    pid: str | None
    queue_id: str | None
    message: str
    fields: dict[str, str] = field(default_factory=dict)


def mbox_messages(text: str) -> list[str]:
    """Split the text of an mbox file into messages, each without its "From " line."""
    parts = [part for part in _MBOX_SEPARATOR.split(text) if part.startswith("From ")]
    return [part.split("\n", 1)[1] if "\n" in part else "" for part in parts]


def pick_message_text(text: str, containing: str | None = None) -> str | None:
    """Return the text of the last message of an mbox text (the last containing ``containing``, if given)."""
    candidates = mbox_messages(text)
    if containing is not None:
        candidates = [message for message in candidates if containing in message]
    return candidates[-1] if candidates else None


def pick_message(text: str, containing: str | None = None) -> EmailMessage | None:
    """Parse the message that ``pick_message_text`` picks; None when there is none."""
    picked = pick_message_text(text, containing)
    if picked is None:
        return None
    return email.message_from_string(picked, policy=email.policy.compat32)  # type: ignore[return-value]


def log_fields(message: str) -> dict[str, str]:
    """Return the key=value fields of a sendmail-style log message, in order."""
    return {match.group("key"): match.group("value").strip() for match in _LOG_FIELD.finditer(message)}


def parse_log_line(line: str) -> LogLine | None:
    """Parse one syslog line; return None when it is not in the traditional format."""
    match = _SYSLOG_LINE.match(line.rstrip("\r\n"))
    if not match:
        return None
    queue_id = match.group("queue_id")
    return LogLine(
        text=match.group(0),
        timestamp=match.group("timestamp"),
        host=match.group("host"),
        tag=match.group("tag"),
        pid=match.group("pid"),
        queue_id=None if queue_id == "NOQUEUE" else queue_id,
        message=match.group("message"),
        fields=log_fields(match.group("message")),
    )
