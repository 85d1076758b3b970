"""SPF record syntax (RFC 7208 sections 4.6 and 7): terms, CIDR lengths and macros."""

import ipaddress
import re
from dataclasses import dataclass

QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
# Macro letters allowed in a domain-spec; c, r and t are for the explanation only (section 7.2).
MACRO_LETTERS = set("slodiphv")

_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_MECHANISM = re.compile(r"^([+\-~?]?)([a-z0-9]+)([:/].*)?$", re.IGNORECASE)
_DUAL_CIDR = re.compile(r"^(.*?)(?:/(\d+))?(?://(\d+))?$")
# The delimiter class is the set of section 7.1: . - + , / _ =
_MACRO = re.compile(r"%\{([a-z])(\d*)(r?)([.\-+,/_=]*)\}", re.IGNORECASE)


class SpfSyntaxError(ValueError):
    """A record, term or macro does not follow RFC 7208; check_host reports permerror."""


@dataclass(frozen=True)
class Mechanism:
    """One directive: qualifier, mechanism name, domain-spec or network, CIDR lengths."""

    qualifier: str
    name: str
    argument: str | None
    cidr4: int = 32
    cidr6: int = 128

    @property
    def result(self) -> str:
        return QUALIFIERS[self.qualifier]

    def __str__(self) -> str:
        return f"{self.qualifier if self.qualifier != '+' else ''}{self.name}{':' + self.argument if self.argument else ''}"


@dataclass(frozen=True)
class SpfRecord:
    """A parsed ``v=spf1`` record: its mechanisms in order and the two modifiers RFC 7208 defines."""

    mechanisms: tuple[Mechanism, ...]
    redirect: str | None
    explanation: str | None


def is_spf_record(text: str) -> bool:
    """Tell whether a TXT string is an SPF record: ``v=spf1`` then a space or the end (section 4.5)."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def parse_record(text: str) -> SpfRecord:
    """Parse an SPF record into its terms; raise SpfSyntaxError on any invalid term."""
    if not is_spf_record(text):
        raise SpfSyntaxError(f"not an SPF record: {text!r}")

    mechanisms: list[Mechanism] = []
    modifiers: dict[str, str] = {}
    for term in text.split(" ")[1:]:
        if not term:
            continue
        modifier = _MODIFIER.match(term)
        if modifier:
            key = modifier.group(1).lower()
            if key in modifiers and key in {"redirect", "exp"}:
                # Section 6: redirect and exp each appear at most once.
                raise SpfSyntaxError(f"modifier {key}= appears twice")
            check_macro_string(modifier.group(2))
            modifiers[key] = modifier.group(2)
            continue
        mechanisms.append(parse_mechanism(term))

    return SpfRecord(tuple(mechanisms), modifiers.get("redirect"), modifiers.get("exp"))


def parse_mechanism(term: str) -> Mechanism:
    """Parse one directive such as ``-ip4:10.0.0.0/8`` or ``mx/24//64``."""
    match = _MECHANISM.match(term)
    if not match:
        raise SpfSyntaxError(f"invalid SPF term {term!r}")
    qualifier = match.group(1) or "+"
    name = match.group(2).lower()
    rest = match.group(3) or ""
    if name not in MECHANISMS:
        raise SpfSyntaxError(f"unknown SPF mechanism {name!r} in {term!r}")

    if name == "all":
        if rest:
            raise SpfSyntaxError(f"'all' takes no argument: {term!r}")
        return Mechanism(qualifier, name, None)

    if name in {"ip4", "ip6"}:
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs a network: {term!r}")
        return _parse_network(qualifier, name, rest[1:], term)

    if name in {"include", "exists"}:
        if not rest.startswith(":") or len(rest) < 2:
            raise SpfSyntaxError(f"{name} needs a domain: {term!r}")
        check_macro_string(rest[1:])
        return Mechanism(qualifier, name, rest[1:])

    # a, mx and ptr take an optional domain-spec; a and mx also a dual CIDR length.
    domain, cidr4, cidr6 = _split_dual_cidr(rest, term)
    if name == "ptr" and (cidr4 is not None or cidr6 is not None):
        raise SpfSyntaxError(f"ptr takes no CIDR length: {term!r}")
    if domain:
        check_macro_string(domain)
    return Mechanism(qualifier, name, domain or None, 32 if cidr4 is None else cidr4, 128 if cidr6 is None else cidr6)


def _split_dual_cidr(rest: str, term: str) -> tuple[str, int | None, int | None]:
    if rest and not rest.startswith((":", "/")):
        raise SpfSyntaxError(f"invalid SPF term {term!r}")
    domain_part = rest[1:] if rest.startswith(":") else rest
    match = _DUAL_CIDR.match(domain_part)
    assert match is not None  # the pattern matches every string
    domain, cidr4_text, cidr6_text = match.groups()
    cidr4 = int(cidr4_text) if cidr4_text else None
    cidr6 = int(cidr6_text) if cidr6_text else None
    if (cidr4 is not None and cidr4 > 32) or (cidr6 is not None and cidr6 > 128):
        raise SpfSyntaxError(f"CIDR length out of range in {term!r}")
    if rest.startswith(":") and not domain:
        raise SpfSyntaxError(f"empty domain in {term!r}")
    return domain, cidr4, cidr6


def _parse_network(qualifier: str, name: str, text: str, term: str) -> Mechanism:
    address, _, length_text = text.partition("/")
    try:
        if name == "ip4":
            ipaddress.IPv4Address(address)
            length = int(length_text) if length_text else 32
            valid = 0 <= length <= 32
        else:
            ipaddress.IPv6Address(address)
            length = int(length_text) if length_text else 128
            valid = 0 <= length <= 128
    except ValueError as exc:
        raise SpfSyntaxError(f"invalid network in {term!r}: {exc}") from exc
    if not valid or (length_text and not length_text.isdigit()):
        raise SpfSyntaxError(f"invalid prefix length in {term!r}")
    return Mechanism(qualifier, name, f"{address}/{length}")


def check_macro_string(text: str) -> None:
    """Raise SpfSyntaxError unless every ``%`` in ``text`` starts a valid macro (section 7.1)."""
    position = 0
    while True:
        position = text.find("%", position)
        if position < 0:
            return
        following = text[position + 1 : position + 2]
        if following in {"%", "_", "-"}:
            position += 2
            continue
        match = _MACRO.match(text, position)
        if not match or match.group(1).lower() not in MACRO_LETTERS:
            raise SpfSyntaxError(f"invalid macro at {text[position:position + 12]!r} in {text!r}")
        position = match.end()


def expand_macros(text: str, values: dict[str, str]) -> str:
    """Expand the macros of a domain-spec (section 7.3); ``values`` maps macro letters to strings."""
    check_macro_string(text)

    def expand(match: re.Match) -> str:
        letter, digits, reverse, delimiters = match.groups()
        value = values[letter.lower()]
        parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            count = int(digits)
            if count == 0:
                raise SpfSyntaxError(f"macro transformer 0 is invalid in {text!r}")
            parts = parts[-count:]
        expanded = ".".join(parts)
        # Section 7.3: uppercase letters mean URL-encode the value.
        return _url_escape(expanded) if letter.isupper() else expanded

    pieces = []
    position = 0
    for match in re.finditer(r"%%|%_|%-|" + _MACRO.pattern, text, re.IGNORECASE):
        pieces.append(text[position : match.start()])
        token = match.group(0)
        if token == "%%":
            pieces.append("%")
        elif token == "%_":
            pieces.append(" ")
        elif token == "%-":
            pieces.append("%20")
        else:
            pieces.append(expand(_MACRO.match(token)))
        position = match.end()
    pieces.append(text[position:])
    return "".join(pieces)


def _url_escape(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="-._~")


def macro_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Write an address in the dotted form the ``i`` macro uses: IPv6 as nibbles (section 7.3)."""
    if address.version == 4:
        return str(address)
    return ".".join(address.exploded.replace(":", ""))
