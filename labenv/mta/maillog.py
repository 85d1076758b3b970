"""Format the mail log lines sendmail writes (sendmail 8.12-8.18, headers.c and deliver.c).

Every function returns the message part of a syslog line, starting with the
queue id, for example ``j0O893wM016306: from=<mmouse@disney.com>, size=93, ...``.
The syslog sink adds the ``Mmm dd hh:mm:ss host tag[pid]:`` prefix.
"""

from __future__ import annotations

# Precedence values and their classes, as in the ``P`` lines of a sendmail.cf
# built from sendmail's m4 templates.
PRECEDENCE_CLASSES = {
    "first-class": 0,
    "special-delivery": 100,
    "list": -30,
    "bulk": -60,
    "junk": -100,
}

# sendmail's default work factors for class, recipients and each queue run.
CLASS_FACTOR = 1800
RECIPIENT_FACTOR = 30000
QUEUE_RUN_FACTOR = 90000

SECONDS_PER_DAY = 86400


def priority(size: int, klass: int, nrcpts: int, queue_runs: int = 0) -> int:
    """Compute the ``pri=`` value: size - class*1800 + nrcpts*30000 + runs*90000."""
    return size - klass * CLASS_FACTOR + nrcpts * RECIPIENT_FACTOR + queue_runs * QUEUE_RUN_FACTOR


def message_class(precedence_header: str | None) -> int:
    """Map a ``Precedence:`` header value to sendmail's message class (0 when absent or unknown)."""
    if precedence_header is None:
        return 0
    return PRECEDENCE_CLASSES.get(precedence_header.strip().lower(), 0)


def format_interval(seconds: float) -> str:
    """Format a delay as ``HH:MM:SS``, with a ``D+`` day prefix from one day on as sendmail does."""
    # Whole seconds only. A clock step backwards between reception and delivery
    # would give a negative delay, which is shown as zero.
    total = max(0, int(seconds))
    days, rest = divmod(total, SECONDS_PER_DAY)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}+{clock}" if days else clock


def format_relay(host: str | None, ip: str | None, may_be_forged: bool = False) -> str:
    """Format a ``relay=`` value: ``host [ip]``, ``[ip]`` without reverse DNS, ``host`` without an address."""
    if host and ip:
        relay = f"{host} [{ip}]"
    elif ip:
        relay = f"[{ip}]"
    else:
        relay = host or "localhost"
    if may_be_forged:
        relay += " (may be forged)"
    return relay


def angle_address(address: str) -> str:
    """Put an address in angle brackets unless it already has them; ``""`` becomes ``<>``."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        return address
    return f"<{address}>"


def from_line(
    qid: str,
    *,
    sender: str,
    size: int,
    klass: int,
    nrcpts: int,
    msgid: str | None,
    proto: str | None,
    daemon: str | None,
    relay_host: str | None,
    relay_ip: str | None,
    bodytype: str | None = None,
    may_be_forged: bool = False,
) -> str:
    """Format the sender line logged once a message is queued.

    ``msgid``, ``proto`` and ``daemon`` are left out when None, as sendmail does
    for a message without Message-Id and for local submissions.
    """
    fields = [
        f"from={angle_address(sender)}",
        f"size={size}",
        f"class={klass}",
        f"nrcpts={nrcpts}",
    ]
    if msgid is not None:
        fields.append(f"msgid={angle_address(msgid)}")
    if bodytype is not None:
        fields.append(f"bodytype={bodytype}")
    if proto is not None:
        fields.append(f"proto={proto}")
    if daemon is not None:
        fields.append(f"daemon={daemon}")
    fields.append(f"relay={format_relay(relay_host, relay_ip, may_be_forged)}")
    return f"{qid}: " + ", ".join(fields)


def to_line(
    qid: str,
    *,
    recipient: str,
    delay: float,
    xdelay: float | None,
    mailer: str,
    pri: int,
    dsn: str,
    stat: str,
    relay: str | None = None,
    ctladdr: str | None = None,
) -> str:
    """Format the line logged for one delivery attempt to one recipient.

    ``delay`` and ``xdelay`` are in seconds. ``relay`` is a formatted value (see
    ``format_relay``) and ``ctladdr`` is written as given, for example
    ``<john@localhost> (1003/1003)``.
    """
    fields = [f"to={angle_address(recipient)}"]
    if ctladdr is not None:
        fields.append(f"ctladdr={ctladdr}")
    fields.append(f"delay={format_interval(delay)}")
    if xdelay is not None:
        fields.append(f"xdelay={format_interval(xdelay)}")
    fields.append(f"mailer={mailer}")
    fields.append(f"pri={pri}")
    if relay is not None:
        fields.append(f"relay={relay}")
    fields.append(f"dsn={dsn}")
    fields.append(f"stat={stat}")
    return f"{qid}: " + ", ".join(fields)


def noqueue_line(message: str) -> str:
    """Format a line for an event that happened before a queue id existed, such as a rejected RCPT."""
    return f"NOQUEUE: {message}"
