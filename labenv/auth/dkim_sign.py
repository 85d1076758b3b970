"""DKIM signing on the relay, with dkimpy (RFC 6376)."""

import logging

import dkim

from labenv.errors import LabenvError

log = logging.getLogger(__name__)

# RFC 6376 section 5.4.1 recommends these; From is required. A field named
# here but missing from the message is still listed, which stops anyone from
# adding it later without breaking the signature (section 5.4.2).
SIGNED_HEADERS = (
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
    "In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
)


class DkimSigningError(LabenvError):
    """The message or the private key could not be used to make a DKIM signature."""


def sign_message(
    message: bytes,
    *,
    domain: str,
    selector: str,
    private_key_pem: bytes,
    canonicalization: tuple[str, str] = ("relaxed", "relaxed"),
) -> bytes:
    """Sign ``message`` and return the ``DKIM-Signature:`` header line (ending in CRLF) to prepend.

    ``canonicalization`` is the (header, body) pair of the ``c=`` tag.
    """
    signer = dkim.DKIM(message, logger=log)
    try:
        signature = signer.sign(
            selector.encode("ascii"),
            domain.encode("ascii"),
            private_key_pem,
            canonicalize=tuple(part.encode("ascii") for part in canonicalization),
            include_headers=[name.encode("ascii") for name in SIGNED_HEADERS],
        )
    except dkim.DKIMException as exc:
        raise DkimSigningError(
            f"DKIM signing for d={domain} s={selector} failed: {exc}; check the private key and the message headers"
        ) from exc
    log.debug("DKIM signed d=%s s=%s", domain, selector)
    return signature
