"""DKIM verification with dkimpy, its keys fetched through a given resolver (RFC 6376)."""

import logging
from dataclasses import dataclass

import dkim
import dns.resolver

from labenv.auth.dnsquery import DnsTemporaryError, lookup_txt
from labenv.auth.from_header import header_values
from labenv.auth.header_text import comment, token_or_quoted

log = logging.getLogger(__name__)
# dkimpy logs a missing key or a DNS timeout at ERROR; it gets a logger of
# its own so that these can be filtered apart from ours.
dkimpy_log = logging.getLogger(__name__ + ".dkimpy")


@dataclass(frozen=True)
class DkimResult:
    """The verdict on one DKIM-Signature field, with the RFC 8601 result name."""

    result: str  # pass, fail, neutral, temperror or permerror
    domain: str  # the d= tag, "" when the signature could not be parsed
    selector: str
    reason: str

    def clause(self) -> str:
        """Format the ``dkim=`` clause of an Authentication-Results field."""
        text = f"dkim={self.result}"
        if self.result != "pass":
            text += " " + comment(self.reason)
        if self.domain:
            # d= and s= come from the message, so they are quoted unless plain.
            text += f" header.d={token_or_quoted(self.domain)} header.s={token_or_quoted(self.selector)}"
        return text


class _KeyFetcher:
    """A dkimpy ``dnsfunc`` that queries our resolver and remembers why a key was missing."""

    def __init__(self, resolver: dns.resolver.Resolver):
        self.resolver = resolver
        self.problem: str | None = None  # "temperror" or "nokey" after a failed fetch

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        self.problem = None
        try:
            records = lookup_txt(self.resolver, name.decode("ascii", "replace").rstrip("."))
        except DnsTemporaryError as exc:
            self.problem = "temperror"
            raise dkim.DnsTimeoutError(str(exc)) from exc
        if not records:
            self.problem = "nokey"
            return None
        return records[0].encode("utf-8")


# dkimpy 1.1 raises these, besides its own DKIMException, on some malformed
# headers and signatures (found by feeding it random bytes).
DKIMPY_PARSE_ERRORS = (IndexError, KeyError, TypeError, ValueError)


def verify_dkim(message: bytes, resolver: dns.resolver.Resolver) -> list[DkimResult]:
    """Verify every DKIM-Signature of ``message``, topmost first; an empty list means none was present."""
    count = len(header_values(message, "DKIM-Signature"))
    return [_verify_one(message, index, resolver) for index in range(count)]


def _verify_one(message: bytes, index: int, resolver: dns.resolver.Resolver) -> DkimResult:
    # A fresh DKIM object per signature, because dkimpy keeps per-signature
    # state (key, domain, selector) on the object.
    fetcher = _KeyFetcher(resolver)
    checker = None
    try:
        checker = dkim.DKIM(message, logger=dkimpy_log)
        valid = checker.verify(idx=index, dnsfunc=fetcher)
    except dkim.ValidationError as exc:
        # dkimpy raises ValidationError both for a body hash mismatch, which
        # is a failed check (RFC 6376 section 6.1.3), and for a missing or
        # invalid tag, which is a malformed signature.
        if "body hash mismatch" in str(exc):
            return _result(checker, "fail", str(exc))
        return _result(checker, "permerror", str(exc))
    except (dkim.DKIMException, *DKIMPY_PARSE_ERRORS) as exc:
        # A malformed message, signature field or key record (RFC 8601 section 2.7.1).
        return _result(checker, "permerror", f"{type(exc).__name__}: {exc}")

    if valid:
        return _result(checker, "pass", "signature verified")
    if fetcher.problem == "temperror":
        return _result(checker, "temperror", "key lookup failed")
    if fetcher.problem == "nokey":
        return _result(checker, "permerror", "no key for signature")
    return _result(checker, "fail", "signature did not verify")


def _result(checker: dkim.DKIM | None, result: str, reason: str) -> DkimResult:
    domain = _text(getattr(checker, "domain", None)).lower()
    selector = _text(getattr(checker, "selector", None))
    log.debug("DKIM %s d=%s s=%s: %s", result, domain, selector, reason)
    return DkimResult(result, domain, selector, reason)


def _text(value: bytes | str | None) -> str:
    # dkimpy sets domain and selector to bytes once it has parsed a
    # signature, and leaves its initial values before that.
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value or ""
