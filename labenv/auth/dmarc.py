"""DMARC (RFC 7489): policy discovery, identifier alignment and the result."""

import logging
import random
from dataclasses import dataclass

import dns.resolver

from labenv.auth.dkim_check import DkimResult
from labenv.auth.dnsquery import DnsTemporaryError, lookup_txt
from labenv.auth.from_header import author_domain
from labenv.auth.header_text import comment
from labenv.auth.spf import SpfResult

log = logging.getLogger(__name__)

POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcPolicy:
    """The tags of a DMARC record that evaluation uses (RFC 7489 section 6.3)."""

    policy: str
    subdomain_policy: str | None
    dkim_alignment: str  # "r" relaxed or "s" strict
    spf_alignment: str
    percent: int
    record_domain: str  # where the record was found


@dataclass(frozen=True)
class DmarcResult:
    """The DMARC verdict on one message and the policy that decides the action."""

    result: str  # pass, fail, none, temperror or permerror
    header_from: str | None
    policy: str | None  # the policy that applies: none, quarantine or reject
    reason: str
    spf_aligned: bool = False
    dkim_aligned: bool = False

    @property
    def action(self) -> str:
        """What the receiver should do: accept, quarantine or reject."""
        if self.result == "permerror" and self.header_from is None:
            # A From: that cannot be checked must not slip through (RFC 7489
            # section 6.6.1 allows rejecting such messages).
            return "reject"
        if self.result != "fail" or self.policy in (None, "none"):
            return "accept"
        return self.policy

    def clause(self) -> str:
        """Format the ``dmarc=`` clause of an Authentication-Results field (RFC 7489 section 11.2)."""
        text = f"dmarc={self.result}"
        if self.policy:
            text += f" (p={self.policy})"
        elif self.result in ("permerror", "temperror"):
            text += " " + comment(self.reason)
        if self.header_from:
            text += f" header.from={self.header_from}"
        return text


def organizational_domain(domain: str) -> str:
    """Return the organizational domain: the last two labels of ``domain``.

    NOTE: this treats every top-level domain, ``.test`` included, as the only
    public suffix. That holds for lab names, but real names under suffixes
    such as ``co.uk`` need the Public Suffix List (RFC 7489 section 3.2).
    """
    labels = domain.lower().rstrip(".").split(".")
    return ".".join(labels[-2:])


def is_aligned(identifier: str, author: str, mode: str) -> bool:
    """Tell whether an authenticated domain aligns with the From: domain (RFC 7489 section 3.1)."""
    identifier = identifier.lower().rstrip(".")
    author = author.lower().rstrip(".")
    if mode == "s":
        return identifier == author
    return organizational_domain(identifier) == organizational_domain(author)


def parse_policy(text: str, record_domain: str) -> DmarcPolicy | None:
    """Parse a ``v=DMARC1`` record; return None when it has no usable policy."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, equals, value = part.strip().partition("=")
        if equals:
            tags.setdefault(key.strip().lower(), value.strip())
    if tags.get("v") != "DMARC1":
        return None

    policy = tags.get("p", "").lower()
    if policy not in POLICIES:
        # Section 6.6.3: an invalid or missing p= means no policy, unless a
        # rua= tag is present, in which case p=none applies.
        if "rua" not in tags:
            return None
        policy = "none"
    subdomain_policy = tags.get("sp", "").lower()
    try:
        percent = min(100, max(0, int(tags.get("pct", "100"))))
    except ValueError:
        percent = 100
    return DmarcPolicy(
        policy=policy,
        subdomain_policy=subdomain_policy if subdomain_policy in POLICIES else None,
        dkim_alignment="s" if tags.get("adkim", "r").lower() == "s" else "r",
        spf_alignment="s" if tags.get("aspf", "r").lower() == "s" else "r",
        percent=percent,
        record_domain=record_domain,
    )


def find_policy(domain: str, resolver: dns.resolver.Resolver) -> DmarcPolicy | None:
    """Look up ``_dmarc.<domain>``, then ``_dmarc.<organizational domain>`` (RFC 7489 section 6.6.3).

    Raises DnsTemporaryError when a lookup fails, because the result must then be temperror.
    """
    candidates = [domain]
    organizational = organizational_domain(domain)
    if organizational != domain:
        candidates.append(organizational)
    for candidate in candidates:
        records = [text for text in lookup_txt(resolver, f"_dmarc.{candidate}") if text.startswith("v=DMARC1")]
        if len(records) != 1:
            # Section 6.6.3: none or several records mean no policy here.
            continue
        policy = parse_policy(records[0], candidate)
        if policy is not None:
            return policy
    return None


def check_dmarc(
    message: bytes, spf: SpfResult, dkim_results: list[DkimResult], resolver: dns.resolver.Resolver
) -> DmarcResult:
    """Evaluate DMARC for ``message`` from its SPF and DKIM results."""
    author = author_domain(message)
    if author.domain is None:
        return DmarcResult("permerror", None, None, author.problem or "no From domain")

    domain = author.domain
    try:
        policy = find_policy(domain, resolver)
    except DnsTemporaryError as exc:
        return DmarcResult("temperror", domain, None, str(exc))
    if policy is None:
        return DmarcResult("none", domain, None, f"no DMARC record for {domain}")

    spf_aligned = spf.result == "pass" and is_aligned(spf.domain, domain, policy.spf_alignment)
    dkim_aligned = any(
        result.result == "pass" and is_aligned(result.domain, domain, policy.dkim_alignment)
        for result in dkim_results
    )
    applied = _applied_policy(policy, domain)
    if spf_aligned or dkim_aligned:
        aligned_by = "SPF" if spf_aligned else "DKIM"
        result = DmarcResult("pass", domain, applied, f"{aligned_by} aligned", spf_aligned, dkim_aligned)
    else:
        result = DmarcResult("fail", domain, applied, "neither SPF nor DKIM aligned with From", False, False)
    log.debug("DMARC %s for %s: %s", result.result, domain, result.reason)
    return result


def _applied_policy(policy: DmarcPolicy, domain: str) -> str:
    applied = policy.policy
    if policy.record_domain != domain and policy.subdomain_policy:
        # Section 6.3: sp= applies to subdomains of the record's domain.
        applied = policy.subdomain_policy
    if policy.percent < 100 and random.randrange(100) >= policy.percent:
        # Section 6.6.4: a message outside the pct= sample gets the next
        # milder policy.
        applied = {"reject": "quarantine", "quarantine": "none"}.get(applied, applied)
    return applied
