"""DNS lookups the MTA makes: reverse names of clients, forward confirmation and MX routes.

Every query goes to the one configured name server, never to the system's
resolv.conf, so the lab DNS and a test server behave alike. Without a
configured server, no query is sent: clients show as ``unknown`` and remote
routes fail temporarily. Reverse names are looked up in a hosts file first,
as the C library does with "files dns" in nsswitch.conf, which is how
sendmail greets a local client as ``localhost [127.0.0.1]``.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.resolver
import dns.reversename

from labenv.mta.config import HostPort

log = logging.getLogger(__name__)


class LookupFailed(Exception):
    """A DNS lookup failed; ``temporary`` is true when a retry may succeed."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class ClientName:
    """The reverse name of a client address and whether its forward lookup confirms it."""

    name: str | None
    confirmed: bool

    @property
    def may_be_forged(self) -> bool:
        """Whether sendmail would append ``(may be forged)``: a PTR name that does not resolve back."""
        return self.name is not None and not self.confirmed


@dataclass(frozen=True)
class MailExchanger:
    """One next hop: its host name, preference and addresses."""

    preference: int
    host: str
    addresses: tuple[str, ...]


def _normalise(ip: str) -> str:
    try:
        return ipaddress.ip_address(ip).compressed
    except ValueError:
        return ip


def read_hosts_file(path: Path) -> dict[str, str]:
    """Map each address in a hosts(5) file to the first name listed for it; a missing file maps nothing."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        log.debug("hosts file %s not found; reverse names come from DNS only", path)
        return {}
    table: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            # The first line for an address wins, as with gethostbyaddr().
            table.setdefault(_normalise(fields[0]), fields[1])
    return table


class Lookups:
    """Asynchronous lookups against one configured name server."""

    def __init__(self, server: HostPort | None, timeout: float, hosts_file: Path | None = None) -> None:
        self._hosts = read_hosts_file(hosts_file) if hosts_file is not None else {}
        self._resolver: dns.asyncresolver.Resolver | None = None
        if server is not None:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [server.host]
            resolver.port = server.port
            resolver.timeout = timeout
            resolver.lifetime = timeout
            self._resolver = resolver

    async def client_name(self, ip: str) -> ClientName:
        """Look up the PTR name of ``ip`` and check that the name's A/AAAA records include ``ip``."""
        listed = self._hosts.get(_normalise(ip))
        if listed is not None:
            return ClientName(listed, True)
        if self._resolver is None:
            return ClientName(None, False)
        try:
            answer = await self._resolver.resolve(dns.reversename.from_address(ip), "PTR")
        except (dns.exception.DNSException, ValueError) as exc:
            log.debug("no reverse name for %s: %s", ip, exc)
            return ClientName(None, False)
        name = answer[0].target.to_text(omit_final_dot=True)
        try:
            addresses = await self.addresses(name)
        except LookupFailed as exc:
            log.debug("forward lookup of %s for %s failed: %s", name, ip, exc)
            return ClientName(name, False)
        return ClientName(name, ipaddress.ip_address(ip) in {ipaddress.ip_address(a) for a in addresses})

    async def addresses(self, host: str) -> tuple[str, ...]:
        """Return the IPv4 then IPv6 addresses of ``host``."""
        resolver = self._require_resolver(host)
        found: list[str] = []
        errors: list[str] = []
        temporary = False
        for rdtype in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(host, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                errors.append(f"{rdtype}: {exc}")
                temporary = True
                continue
            found.extend(record.address for record in answer)
        if not found:
            detail = "; ".join(errors) or "no A or AAAA record"
            raise LookupFailed(f"cannot resolve {host}: {detail}", temporary=temporary)
        return tuple(found)

    async def mail_exchangers(self, domain: str) -> list[MailExchanger]:
        """Return the next hops for ``domain``: its MX hosts by preference, else the domain's own address (RFC 5321 section 5.1)."""
        resolver = self._require_resolver(domain)
        try:
            answer = await resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN as exc:
            raise LookupFailed(f"domain {domain} does not exist", temporary=False) from exc
        except dns.resolver.NoAnswer:
            return [MailExchanger(0, domain, await self.addresses(domain))]
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"MX lookup for {domain} failed: {exc}", temporary=True) from exc
        records = sorted(answer, key=lambda record: record.preference)
        # RFC 7505: a single MX with the root as exchange means the domain accepts no mail.
        if len(records) == 1 and records[0].exchange.to_text() == ".":
            raise LookupFailed(f"domain {domain} accepts no mail (null MX)", temporary=False)
        hops: list[MailExchanger] = []
        last_error: LookupFailed | None = None
        for record in records:
            host = record.exchange.to_text(omit_final_dot=True)
            try:
                hops.append(MailExchanger(record.preference, host, await self.addresses(host)))
            except LookupFailed as exc:
                last_error = exc
        if not hops:
            raise last_error or LookupFailed(f"no usable MX host for {domain}", temporary=True)
        return hops

    def _require_resolver(self, name: str) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            raise LookupFailed(f"cannot look up {name}: no resolver is configured (set resolver = HOST:PORT)", temporary=True)
        return self._resolver
