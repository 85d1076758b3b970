"""DNS lookups shared by the SPF, DKIM and DMARC checks, with their error classes."""

import logging

import dns.exception
import dns.name
import dns.resolver

from labenv.errors import LabenvError

log = logging.getLogger(__name__)


class DnsTemporaryError(LabenvError):
    """A lookup timed out or the server failed, so the answer is unknown (SPF and DMARC temperror)."""


def lookup(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list:
    """Return the records of type ``rdtype`` at ``name``.

    An empty list means a void answer: NXDOMAIN or NODATA, which RFC 7208
    section 4.6.4 counts alike. A timeout or a server failure raises
    DnsTemporaryError, because the checks must report those as temperror.
    """
    try:
        answer = resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        log.debug("DNS %s %s: NXDOMAIN", name, rdtype)
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        log.debug("DNS %s %s failed: %s", name, rdtype, exc)
        raise DnsTemporaryError(
            f"DNS lookup of {name} {rdtype} failed: {exc}; check that the name server answers"
        ) from exc
    except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong, dns.name.IDNAException) as exc:
        # A name that cannot exist in DNS has no records.
        log.debug("DNS %s %s: invalid name: %s", name, rdtype, exc)
        return []
    records = list(answer.rrset or [])
    log.debug("DNS %s %s: %d records", name, rdtype, len(records))
    return records


def lookup_txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """Return the TXT records at ``name``, each with its strings joined without a separator.

    RFC 7208 section 3.3 and RFC 6376 section 3.6.2.2 both join the strings of
    one TXT record with nothing between them.
    """
    return [b"".join(record.strings).decode("utf-8", "replace") for record in lookup(resolver, name, "TXT")]
