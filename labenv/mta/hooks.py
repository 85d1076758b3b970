"""The points where sender authentication plugs into delivery: verification on final delivery, signing on relay."""

from __future__ import annotations

from labenv.mta.spool import Envelope


class AuthHooks:
    """Adds no fields; the authentication package replaces these methods with SPF/DKIM/DMARC work.

    Each method returns complete header fields, each ending in CRLF, that are
    put on top of the message.
    """

    async def verify_incoming(self, envelope: Envelope, message: bytes) -> list[bytes]:
        """Return Authentication-Results and Received-SPF fields for a message about to reach a mailbox."""
        return []

    async def sign_outgoing(self, envelope: Envelope, message: bytes) -> list[bytes]:
        """Return DKIM-Signature fields for a message about to leave for the next hop."""
        return []
