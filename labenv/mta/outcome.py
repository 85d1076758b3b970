"""The result of one delivery attempt to one recipient."""

from __future__ import annotations

from dataclasses import dataclass

SENT = "sent"
DEFERRED = "deferred"
FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """The result for one recipient; ``state`` is sent, deferred or failed.

    ``stat`` is the text of sendmail's ``stat=`` field and ``diagnostic`` the
    remote reply (or local reason) that a DSN quotes. ``remote_dsn`` is true
    when the next hop took over DSN duty (RFC 3461 section 5.2).
    """

    state: str
    dsn: str
    stat: str
    diagnostic: str = ""
    relay: str | None = None
    remote_mta: str | None = None
    remote_dsn: bool = False

    @property
    def is_final(self) -> bool:
        """Whether no further attempt will be made."""
        return self.state != DEFERRED


def sent(stat: str = "Sent", **extra: object) -> Outcome:
    """Build a successful outcome."""
    return Outcome(SENT, "2.0.0", stat, **extra)


def deferred(dsn: str, reason: str, **extra: object) -> Outcome:
    """Build a temporary failure; sendmail writes ``stat=Deferred: <reason>``."""
    return Outcome(DEFERRED, dsn, f"Deferred: {reason}", diagnostic=reason, **extra)


def failed(dsn: str, reason: str, **extra: object) -> Outcome:
    """Build a permanent failure."""
    return Outcome(FAILED, dsn, reason, diagnostic=reason, **extra)
