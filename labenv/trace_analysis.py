"""Evidence about a delivered message's origin: hop trust levels and identity comparisons (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labenv.auth.dmarc import organizational_domain
from labenv.auth.from_header import author_domain, header_values
from labenv.trace_received import ReceivedField, parse_received

# How much a hop can be trusted, from the receiving host's point of view.
OBSERVED = "observed"  # written by the receiving host itself: the peer address is what TCP showed
CONFIRMED = "confirmed"  # written by a lab host that handed the message on, and its log shows the queue id
UNVERIFIED = "unverified"  # written by a lab host that handed the message on, but no log was read
CLAIMED = "claimed"  # written by a host whose statement cannot be checked here

LOOPBACK = ("127.0.0.1", "::1")

STATUS_TEXT = {
    OBSERVED: "observed by the receiving host",
    CONFIRMED: "written by a lab host and confirmed by its log",
    UNVERIFIED: "written by a lab host whose log was not read",
    CLAIMED: "a claim by an upstream host that cannot be checked",
}


@dataclass
class Hop:
    """One Received field with how far it can be trusted and the log lines of its queue id."""

    received: ReceivedField
    status: str
    log_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.received.to_dict(), "status": self.status, "log_lines": self.log_lines}


@dataclass
class Comparison:
    """Two identities that should name the same party, and whether they do."""

    label: str
    left: str | None
    right: str | None
    agree: bool | None  # None when one side is missing
    explanation: str


def received_fields(message: bytes) -> list[ReceivedField]:
    """Parse every Received field of ``message``, newest (topmost) first."""
    return [parse_received(value) for value in header_values(message, "Received")]


def log_lines_for(lines: list[str], queue_id: str | None) -> list[str]:
    """Return the mail log lines that mention ``queue_id`` as a sendmail-style "ID:" prefix or in a reply."""
    if not queue_id:
        return []
    pattern = re.compile(rf"(?:\s|\(){re.escape(queue_id)}(?::|\s|\))")
    return [line for line in lines if pattern.search(line)]


def classify_hops(
    fields: list[ReceivedField], receiver: str, lab_hosts: dict[str, str], log_lines: list[str] | None
) -> list[Hop]:
    """Mark each hop observed, confirmed, unverified or claimed.

    ``receiver`` is the FQDN of the host whose mailbox held the message and
    ``lab_hosts`` maps lab host FQDNs to their addresses. The topmost field
    written by ``receiver`` is observed. Below it, trust continues only while
    the peer of the trusted hop above is the lab host that wrote the next
    field. For such a field, ``log_lines`` (None when no log was read)
    decides between confirmed and unverified. Every field after the first
    break is claimed.
    """
    names = {name.lower() for name in lab_hosts}
    address_names = {address: name.lower() for name, address in lab_hosts.items()}
    hops: list[Hop] = []
    trusted_peer: str | None = None  # the lab host the last trusted hop came from
    started = False
    for received in fields:
        by = (received.by or "").lower()
        lines = log_lines_for(log_lines or [], received.queue_id)
        if not started:
            if by == receiver.lower():
                started = True
                status = OBSERVED
            else:
                # Fields above the receiver's own were added after delivery; nothing vouches for them.
                status = CLAIMED
        elif trusted_peer is not None and by == trusted_peer and by in names:
            if log_lines is None:
                status = UNVERIFIED
            else:
                status = CONFIRMED if lines else UNVERIFIED
        else:
            trusted_peer = None
            status = CLAIMED
        if status in (OBSERVED, CONFIRMED, UNVERIFIED):
            trusted_peer = _peer_lab_host(received, names, address_names)
        hops.append(Hop(received, status, lines))
    return hops


def _peer_lab_host(received: ReceivedField, names: set[str], address_names: dict[str, str]) -> str | None:
    # The address is what the writing host saw; prefer it over any name.
    if received.address and received.address in address_names:
        return address_names[received.address]
    if received.reverse_name and received.reverse_name.lower() in names:
        return received.reverse_name.lower()
    return None


def origin_hop(hops: list[Hop]) -> Hop | None:
    """Return the lowest hop that is backed by more than a claim, or None if none is."""
    trusted = [hop for hop in hops if hop.status != CLAIMED]
    return trusted[-1] if trusted else None


def boundary_hop(hops: list[Hop]) -> Hop | None:
    """Return the hop the receiving host observed: the connection its SPF check is about."""
    return next((hop for hop in hops if hop.status == OBSERVED), None)


def envelope_sender(message: bytes) -> str | None:
    """Return the Return-Path address the final host recorded, "" for the null sender, None if absent."""
    values = header_values(message, "Return-Path")
    if not values:
        return None
    return values[0].strip().strip("<>").strip()


def compare_identities(message: bytes, hops: list[Hop]) -> list[Comparison]:
    """Compare the envelope sender, From:, HELO and reverse DNS of the hop where the message entered."""
    comparisons = []
    author = author_domain(message)
    sender = envelope_sender(message)
    sender_domain = sender.rpartition("@")[2].lower() if sender else None
    hop = origin_hop(hops)

    comparisons.append(_compare_domains(
        "envelope sender and From:", sender_domain, author.domain,
        "the bounce address and the author shown to the reader",
    ))
    if hop is not None:
        received = hop.received
        helo = received.helo.lower() if received.helo else None
        reverse = received.reverse_name.lower() if received.reverse_name else None
        agree = None if helo is None or reverse is None else helo == reverse
        comparisons.append(Comparison(
            "HELO and reverse DNS", received.helo, received.reverse_name, agree,
            "the name the sender gave itself and the name its address has in DNS",
        ))
        comparisons.append(_compare_domains(
            "From: and sending host", author.domain, sending_host(received),
            "the author's domain and the host where the message entered the mail system",
        ))
    return comparisons


def sending_host(received: ReceivedField) -> str | None:
    """Name the host a hop came from: the receiving host itself for a loopback peer, else the reverse DNS name."""
    if received.address in LOOPBACK:
        # A loopback peer means the message was submitted on the host that wrote the field.
        return received.by.lower() if received.by else None
    return received.reverse_name.lower() if received.reverse_name else None


def _compare_domains(label: str, left: str | None, right: str | None, explanation: str) -> Comparison:
    if left is None or right is None:
        return Comparison(label, left, right, None, explanation)
    agree = organizational_domain(left) == organizational_domain(right)
    return Comparison(label, left, right, agree, explanation)
