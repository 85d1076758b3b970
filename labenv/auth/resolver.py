"""DNS resolvers for the authentication checks, pointed at one name server."""

import dns.resolver

from labenv.errors import ConfigError

DEFAULT_TIMEOUT = 2.0


def parse_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``[V6]:PORT``, or a bare host for port 53) into its parts."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":") or "53"
    elif address.count(":") == 1:
        host, port_text = address.split(":")
    else:
        host, port_text = address, "53"
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not host or not 0 < port < 65536:
        raise ConfigError(f"invalid resolver address {address!r}: expected HOST:PORT, for example 10.77.0.53:53")
    return host, port


def make_resolver(address: str | tuple[str, int], *, timeout: float = DEFAULT_TIMEOUT) -> dns.resolver.Resolver:
    """Create a resolver that sends every query to one name server.

    ``address`` is ``"HOST:PORT"`` or a ``(host, port)`` pair. The system's
    resolv.conf is not read, so the lab DNS and a test server behave alike.
    ``timeout`` is the total time in seconds one lookup may take.
    """
    host, port = parse_address(address) if isinstance(address, str) else address
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None
    # EDNS lets a 2048-bit DKIM key record arrive over UDP; without it,
    # answers over 512 bytes need a second query over TCP (RFC 6891).
    resolver.use_edns(0, 0, 1232)
    return resolver
