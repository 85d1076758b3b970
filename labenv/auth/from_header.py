"""Extraction of the RFC 5322 From: domain that DMARC checks, failing safe on anything odd."""

import email.errors
import email.parser
import email.policy
import re
from dataclasses import dataclass

_FOLD = re.compile(r"\r?\n(?=[ \t])")


@dataclass(frozen=True)
class AuthorDomain:
    """The author domain taken from From:, or the reason none could be taken."""

    domain: str | None
    address: str | None  # the mailbox, for reports
    problem: str | None  # set when domain is None


def header_values(message: bytes, name: str) -> list[str]:
    """Return every raw, unfolded value of the header field ``name`` in ``message``."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    headers = parser.parsebytes(message)
    return [_FOLD.sub("", str(value)).strip() for value in headers.get_all(name, [])]


def author_domain(message: bytes) -> AuthorDomain:
    """Find the one domain in From:, as RFC 7489 section 6.6.1 requires.

    No From:, two From: fields, a From: the parser reports defects in, and
    authors from different domains all give a problem instead of a domain,
    so that such a message can never pass DMARC.
    """
    values = header_values(message, "From")
    if not values:
        return AuthorDomain(None, None, "no From field")
    if len(values) > 1:
        return AuthorDomain(None, None, f"{len(values)} From fields")

    value = values[0]
    try:
        header = email.policy.default.header_factory("From", value)
        mailboxes = list(header.addresses)
        defects = [defect for defect in header.defects if not isinstance(defect, email.errors.ObsoleteHeaderDefect)]
    except (email.errors.HeaderParseError, ValueError, IndexError, AttributeError) as exc:
        return AuthorDomain(None, None, f"From field does not parse: {exc}")

    if defects:
        return AuthorDomain(None, None, f"From field does not parse: {defects[0]}")
    if not mailboxes:
        return AuthorDomain(None, None, "From field has no mailbox")

    domains = {mailbox.domain.lower().rstrip(".") for mailbox in mailboxes}
    if len(domains) > 1:
        return AuthorDomain(None, None, f"From field names several domains: {', '.join(sorted(domains))}")
    domain = domains.pop()
    if not _is_dns_name(domain):
        return AuthorDomain(None, None, f"From domain {domain!r} is not a DNS name")
    return AuthorDomain(domain, mailboxes[0].addr_spec, None)


def _is_dns_name(domain: str) -> bool:
    labels = domain.split(".")
    return len(labels) >= 2 and all(re.fullmatch(r"[a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels)
