"""SPF evaluation (RFC 7208): check_host() on dnspython, and the Received-SPF header."""

import ipaddress
import logging
from dataclasses import dataclass

import dns.resolver

from labenv.auth.dnsquery import DnsTemporaryError, lookup, lookup_txt
from labenv.auth.header_text import comment, quoted, token_or_quoted
from labenv.auth.spf_record import Mechanism, SpfSyntaxError, expand_macros, is_spf_record, macro_ip, parse_record

log = logging.getLogger(__name__)

# RFC 7208 section 4.6.4: at most 10 terms that cause DNS lookups, and the
# receiver should stop after more than 2 lookups that return nothing.
MAX_DNS_MECHANISMS = 10
MAX_VOID_LOOKUPS = 2
# Section 4.6.4 again: an mx or ptr term looks at no more than 10 names.
MAX_NAMES_PER_TERM = 10


class _Stop(Exception):
    """Ends evaluation with a temperror or permerror result."""

    def __init__(self, result: str, reason: str):
        super().__init__(reason)
        self.result = result
        self.reason = reason


@dataclass(frozen=True)
class SpfResult:
    """The outcome of one SPF check and what it was about."""

    result: str
    reason: str
    identity: str  # "mailfrom" or "helo"
    client_ip: str
    mail_from: str  # the envelope sender as given, "" for the null sender
    helo: str
    domain: str  # the domain whose policy was checked
    mechanism: str | None = None  # the matching directive, if any
    dns_mechanisms: int = 0
    void_lookups: int = 0

    @property
    def sender(self) -> str:
        """The identity checked: the envelope sender, or postmaster@HELO for the null sender."""
        if self.identity == "helo":
            return f"postmaster@{self.helo}"
        return self.mail_from if "@" in self.mail_from else f"postmaster@{self.mail_from}"

    def explanation(self, receiver: str) -> str:
        """Describe the result in words, in the style of RFC 7208 section 9.1."""
        subject = f"domain of {self.sender}"
        texts = {
            "pass": f"{subject} designates {self.client_ip} as permitted sender",
            "fail": f"{subject} does not designate {self.client_ip} as permitted sender",
            "softfail": f"transitioning {subject} does not designate {self.client_ip} as permitted sender",
            "neutral": f"{self.client_ip} is neither permitted nor denied by {subject}",
            "none": f"{subject} does not publish SPF",
            "temperror": f"error in processing during lookup of {self.sender}: {self.reason}",
            "permerror": f"error in SPF record of {self.domain}: {self.reason}",
        }
        return f"{receiver}: {texts[self.result]}"

    def received_spf(self, receiver: str) -> str:
        """Build the value of a ``Received-SPF:`` header field (RFC 7208 section 9.1)."""
        return (
            f"{self.result} {comment(self.explanation(receiver))} receiver={receiver}; client-ip={self.client_ip}; "
            f"envelope-from={quoted(self.mail_from)}; helo={token_or_quoted(self.helo)}; identity={self.identity}"
        )


def check_spf(
    client_ip: str, mail_from: str, helo: str, resolver: dns.resolver.Resolver
) -> SpfResult:
    """Check the connecting address against the SPF policy of the envelope sender.

    For the null sender (``mail_from == ""``) the HELO name is checked
    instead, as RFC 7208 section 2.4 requires.
    """
    if mail_from:
        identity = "mailfrom"
        local, _, domain = mail_from.rpartition("@")
        local = local or "postmaster"
    else:
        identity = "helo"
        local, domain = "postmaster", helo

    base = dict(identity=identity, client_ip=client_ip, mail_from=mail_from, helo=helo, domain=domain)
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return SpfResult("permerror", f"invalid client address {client_ip!r}", **base)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped

    evaluation = _Evaluation(address, local, domain, helo, resolver)
    result, reason, mechanism = evaluation.check_host(domain)
    log.debug("SPF %s for %s from %s: %s (%s)", result, domain, client_ip, mechanism, reason)
    return SpfResult(
        result, reason, mechanism=mechanism,
        dns_mechanisms=evaluation.dns_mechanisms, void_lookups=evaluation.void_lookups, **base,
    )


def _is_valid_domain(domain: str) -> bool:
    # Section 4.3: the domain must be a fully qualified name of valid labels.
    labels = domain.rstrip(".").split(".")
    return len(labels) >= 2 and all(0 < len(label) < 64 for label in labels) and len(domain) <= 253


class _Evaluation:
    """One run of check_host() with its lookup counters, shared by include and redirect."""

    def __init__(self, address, local: str, sender_domain: str, helo: str, resolver: dns.resolver.Resolver):
        self.address = address
        self.local = local
        self.sender_domain = sender_domain
        self.helo = helo
        self.resolver = resolver
        self.dns_mechanisms = 0
        self.void_lookups = 0

    def check_host(self, domain: str) -> tuple[str, str, str | None]:
        """Return (result, reason, matching directive) for ``domain`` (section 4)."""
        try:
            return self._check_domain(domain, self.local)
        except _Stop as stop:
            return stop.result, stop.reason, None

    # -- records --------------------------------------------------------------

    def _check_domain(self, domain: str, local: str) -> tuple[str, str, str | None]:
        if not _is_valid_domain(domain):
            return "none", f"{domain!r} is not a valid domain name", None
        record_text = self._fetch_record(domain)
        if record_text is None:
            return "none", f"no SPF record at {domain}", None
        try:
            record = parse_record(record_text)
        except SpfSyntaxError as exc:
            raise _Stop("permerror", f"{domain}: {exc}") from exc

        for mechanism in record.mechanisms:
            if self._matches(mechanism, domain, local):
                return mechanism.result, f"matched {mechanism} at {domain}", str(mechanism)

        if record.redirect is not None:
            # Section 6.1: redirect applies only when no mechanism matched,
            # and a target without a record is a permerror.
            self._count_dns_mechanism("redirect")
            target = self._expand(record.redirect, domain, local)
            result, reason, matched = self._check_domain(target, local)
            if result == "none":
                raise _Stop("permerror", f"redirect target {target} has no SPF record")
            return result, reason, matched
        return "neutral", f"no mechanism matched at {domain}", None

    def _fetch_record(self, domain: str) -> str | None:
        try:
            texts = lookup_txt(self.resolver, domain)
        except DnsTemporaryError as exc:
            raise _Stop("temperror", str(exc)) from exc
        records = [text for text in texts if is_spf_record(text)]
        if len(records) > 1:
            # Section 4.5: more than one v=spf1 record is a permerror.
            raise _Stop("permerror", f"{domain} publishes {len(records)} SPF records")
        return records[0] if records else None

    # -- mechanisms -----------------------------------------------------------

    def _matches(self, mechanism: Mechanism, domain: str, local: str) -> bool:
        name = mechanism.name
        if name == "all":
            return True
        if name in {"ip4", "ip6"}:
            network = ipaddress.ip_network(mechanism.argument, strict=False)
            return self.address.version == network.version and self.address in network

        self._count_dns_mechanism(name)
        target = self._expand(mechanism.argument, domain, local) if mechanism.argument else domain
        if name == "include":
            return self._include(target, local)
        if name == "exists":
            # Section 5.7: exists always queries A, whatever the client's family.
            return bool(self._query(target, "A"))
        if name == "a":
            return self._host_matches(target, mechanism)
        if name == "mx":
            return self._mx_matches(target, mechanism)
        return self._ptr_matches(target)

    def _include(self, target: str, local: str) -> bool:
        result, reason, _ = self._check_domain(target, local)
        # Section 5.2: the include table.
        if result == "pass":
            return True
        if result in {"fail", "softfail", "neutral"}:
            return False
        if result == "none":
            raise _Stop("permerror", f"include target {target} has no SPF record")
        raise _Stop(result, reason)

    def _host_matches(self, host: str, mechanism: Mechanism) -> bool:
        rdtype = "A" if self.address.version == 4 else "AAAA"
        length = mechanism.cidr4 if self.address.version == 4 else mechanism.cidr6
        for record in self._query(host, rdtype):
            network = ipaddress.ip_network(f"{record.address}/{length}", strict=False)
            if self.address in network:
                return True
        return False

    def _mx_matches(self, domain: str, mechanism: Mechanism) -> bool:
        exchanges = self._query(domain, "MX")
        if len(exchanges) > MAX_NAMES_PER_TERM:
            raise _Stop("permerror", f"{domain} has {len(exchanges)} MX records, more than {MAX_NAMES_PER_TERM}")
        return any(self._host_matches(record.exchange.to_text(), mechanism) for record in exchanges)

    def _ptr_matches(self, target: str) -> bool:
        names = self._validated_names()
        target = target.rstrip(".").lower()
        return any(name == target or name.endswith("." + target) for name in names)

    def _validated_names(self) -> list[str]:
        # Section 5.5: a PTR name counts only when it resolves back to the
        # client address; DNS errors here mean "no match", not temperror.
        rdtype = "A" if self.address.version == 4 else "AAAA"
        try:
            pointers = lookup(self.resolver, self.address.reverse_pointer, "PTR")
        except DnsTemporaryError:
            return []
        validated = []
        for pointer in pointers[:MAX_NAMES_PER_TERM]:
            name = pointer.target.to_text().rstrip(".").lower()
            try:
                addresses = lookup(self.resolver, name, rdtype)
            except DnsTemporaryError:
                continue
            if any(ipaddress.ip_address(record.address) == self.address for record in addresses):
                validated.append(name)
        return validated

    # -- lookups and limits ---------------------------------------------------

    def _count_dns_mechanism(self, name: str) -> None:
        self.dns_mechanisms += 1
        if self.dns_mechanisms > MAX_DNS_MECHANISMS:
            raise _Stop("permerror", f"more than {MAX_DNS_MECHANISMS} DNS-querying terms (at {name})")

    def _query(self, name: str, rdtype: str) -> list:
        try:
            records = lookup(self.resolver, name, rdtype)
        except DnsTemporaryError as exc:
            raise _Stop("temperror", str(exc)) from exc
        if not records:
            self.void_lookups += 1
            if self.void_lookups > MAX_VOID_LOOKUPS:
                raise _Stop("permerror", f"more than {MAX_VOID_LOOKUPS} void DNS lookups (last: {name} {rdtype})")
        return records

    def _expand(self, spec: str, domain: str, local: str) -> str:
        values = {
            "s": f"{local}@{self.sender_domain}",
            "l": local,
            "o": self.sender_domain,
            "d": domain,
            "i": macro_ip(self.address),
            # NOTE: %{p} is expanded as "unknown" without a PTR lookup; RFC 7208
            # section 7.3 discourages it and allows "unknown" when no name validates.
            "p": "unknown",
            "v": "in-addr" if self.address.version == 4 else "ip6",
            "h": self.helo,
        }
        try:
            expanded = expand_macros(spec, values)
        except SpfSyntaxError as exc:
            raise _Stop("permerror", str(exc)) from exc
        # Section 7.3: an expanded domain longer than 253 characters loses labels on the left.
        while len(expanded) > 253 and "." in expanded:
            expanded = expanded.split(".", 1)[1]
        return expanded.rstrip(".")
