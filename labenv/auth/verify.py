"""The entry points the MTA calls: verify_message on final delivery, sign_message on the relay."""

import logging
from dataclasses import dataclass

import dns.resolver

from labenv.auth.dkim_check import DkimResult, verify_dkim
from labenv.auth.dkim_sign import sign_message
from labenv.auth.dmarc import DmarcResult, check_dmarc
from labenv.auth.header_text import token_or_quoted
from labenv.auth.spf import SpfResult, check_spf

__all__ = ["AuthVerdict", "verify_message", "sign_message", "fold_header"]

log = logging.getLogger(__name__)

# RFC 5322 section 2.1.1: lines should be at most 78 characters.
FOLD_WIDTH = 78


@dataclass(frozen=True)
class AuthVerdict:
    """SPF, DKIM and DMARC results for one message, and the header fields that report them."""

    authserv_id: str
    spf: SpfResult
    dkim: list[DkimResult]
    dmarc: DmarcResult

    @property
    def action(self) -> str:
        """The action the DMARC policy requests: "accept", "quarantine" or "reject"."""
        return self.dmarc.action

    def authentication_results(self) -> str:
        """Build the value of the Authentication-Results field (RFC 8601 section 2.2)."""
        if self.spf.identity == "helo":
            spf_clause = f"spf={self.spf.result} smtp.helo={token_or_quoted(self.spf.helo)}"
        else:
            spf_clause = f"spf={self.spf.result} smtp.mailfrom={token_or_quoted(self.spf.mail_from)}"
        dkim_clauses = [result.clause() for result in self.dkim] or ["dkim=none"]
        return "; ".join([self.authserv_id, spf_clause, *dkim_clauses, self.dmarc.clause()])

    def header_lines(self) -> list[bytes]:
        """Return the Received-SPF and Authentication-Results fields, in that order, each folded and ending in CRLF."""
        fields = [
            ("Received-SPF", self.spf.received_spf(self.authserv_id)),
            ("Authentication-Results", self.authentication_results()),
        ]
        return [fold_header(name, value).encode("utf-8", "replace") for name, value in fields]

    def log_fields(self) -> str:
        """Summarise the verdict in one line of key=value pairs for the mail log."""
        dkim_text = ",".join(f"{result.result}:{result.domain or '-'}" for result in self.dkim) or "none"
        return (
            f"auth: client={self.spf.client_ip} helo={self.spf.helo} mailfrom=<{self.spf.mail_from}> "
            f"from={self.dmarc.header_from or '-'} spf={self.spf.result} dkim={dkim_text} "
            f"dmarc={self.dmarc.result} policy={self.dmarc.policy or '-'} action={self.action}"
        )

    def reject_reply(self) -> str:
        """Build the SMTP reply for a message the DMARC policy rejects (RFC 7489 section 6.7)."""
        if self.dmarc.header_from is None:
            return f"550 5.7.1 Rejected: {self.dmarc.reason}"
        return f"550 5.7.1 Rejected by DMARC policy for {self.dmarc.header_from}"

    def quarantine_field(self) -> bytes:
        """Return the field that marks a message delivered under a quarantine policy."""
        return f"X-Labenv-Quarantine: dmarc p={self.dmarc.policy}\r\n".encode("ascii")


def verify_message(
    message: bytes,
    *,
    client_ip: str,
    helo: str,
    mail_from: str,
    resolver: dns.resolver.Resolver,
    authserv_id: str,
) -> AuthVerdict:
    """Check SPF for the connection, every DKIM signature, then DMARC for the From: domain.

    ``mail_from`` is the envelope sender without angle brackets, "" for the
    null sender. DNS failures become temperror results and are not raised.
    """
    spf = check_spf(client_ip, mail_from, helo, resolver)
    dkim = verify_dkim(message, resolver)
    dmarc = check_dmarc(message, spf, dkim, resolver)
    verdict = AuthVerdict(authserv_id, spf, dkim, dmarc)
    log.debug("%s", verdict.log_fields())
    return verdict


def fold_header(name: str, value: str) -> str:
    """Write ``name: value`` ending in CRLF, folded before a space where a line would pass 78 characters.

    Folding only inserts CRLF before existing spaces (RFC 5322 section
    2.2.3), so unfolding gives back the exact value.
    """
    lines = [f"{name}:"]
    for word in value.split(" "):
        if len(lines[-1]) + 1 + len(word) > FOLD_WIDTH and lines[-1] != f"{name}:":
            lines.append(" " + word)
        else:
            lines[-1] += " " + word
    return "\r\n".join(lines) + "\r\n"
