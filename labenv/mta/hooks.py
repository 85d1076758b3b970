"""The points where sender authentication plugs into delivery: verification on final delivery, signing on relay."""

from __future__ import annotations

from labenv.mta.spool import Envelope


class AuthHooks:
    """Adds no fields; the authentication package replaces these methods with SPF/DKIM/DMARC work.

    Each method returns complete header fields, each ending in CRLF, that are
    put on top of the message.
    """

    async def reject_reply(self, envelope: Envelope, message: bytes) -> str | None:
        """Return the SMTP reply that rejects a message after DATA, or None to accept it."""
        return None

    async def verify_incoming(self, envelope: Envelope, message: bytes) -> list[bytes]:
        """Return Authentication-Results and Received-SPF fields for a message about to reach a mailbox."""
        return []

    async def sign_outgoing(self, envelope: Envelope, message: bytes) -> list[bytes]:
        """Return DKIM-Signature fields for a message about to leave for the next hop."""
        return []
