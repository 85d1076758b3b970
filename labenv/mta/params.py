"""Parsing of SMTP command arguments: addresses and ESMTP parameters (RFC 5321, 1870, 2852, 3461, 6152)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# RFC 3461 section 4: xtext is printable ASCII except "+" and "=", with +HH escapes.
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*")
# RFC 2852 section 4: BY=<seconds>;<mode R or N>[T]
_BY = re.compile(r"-?\d{1,9};[RN]T?", re.IGNORECASE)
NOTIFY_VALUES = {"SUCCESS", "FAILURE", "DELAY"}


class ParameterError(Exception):
    """A command argument is invalid; the message is the full SMTP reply."""


@dataclass
class MailParameters:
    """The ESMTP parameters of one MAIL command."""

    size: int | None = None
    body: str | None = None
    ret: str | None = None
    envid: str | None = None
    by: str | None = None
    others: dict[str, str] = field(default_factory=dict)


@dataclass
class RcptParameters:
    """The ESMTP parameters of one RCPT command."""

    notify: list[str] | None = None
    orcpt: str | None = None


def split_path(argument: str, keyword: str) -> tuple[str, list[str]]:
    """Split ``FROM:<addr> PARAM...`` into the address (without brackets) and the parameter words.

    Raises ParameterError with a 501 reply when the keyword or the brackets are missing.
    """
    if argument[: len(keyword)].upper() != keyword:
        raise ParameterError(f"501 5.5.2 Syntax error in parameters scanning \"{keyword[:-1]}\"")
    rest = argument[len(keyword):].strip()
    if rest.startswith("<"):
        close = rest.find(">")
        if close < 0:
            raise ParameterError(f"501 5.5.2 Syntax error in parameters scanning \"{rest}\"")
        address, words = rest[1:close], rest[close + 1:].split()
    else:
        # sendmail accepts an address without brackets, as do most MTAs.
        address, *words = rest.split() or [""]
    # RFC 5321 section 4.1.2: a source route "@a,@b:user@host" is accepted and its route ignored.
    if address.startswith("@") and ":" in address:
        address = address.split(":", 1)[1]
    if any(char in address for char in " <>\"\\") and not (address.startswith('"')):
        raise ParameterError(f"553 5.1.3 <{address}>... Address contains invalid characters")
    return address, words


def _pairs(words: list[str]) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for word in words:
        name, eq, value = word.partition("=")
        pairs.append((name.upper(), value if eq else None))
    return pairs


def _xtext(name: str, value: str | None, limit: int) -> str:
    if value is None or not _XTEXT.fullmatch(value) or len(value) > limit:
        raise ParameterError(f"501 5.5.4 Syntax error in {name} parameter value")
    return value


def parse_mail_parameters(words: list[str], size_limit: int) -> MailParameters:
    """Validate the parameters of MAIL; raise ParameterError with the reply for the first bad one."""
    params = MailParameters()
    for name, value in _pairs(words):
        if name == "SIZE":
            if value is None or not value.isdigit():
                raise ParameterError("501 5.5.4 Syntax error in SIZE parameter value")
            params.size = int(value)
            if size_limit and params.size > size_limit:
                raise ParameterError("552 5.3.4 Message size exceeds fixed maximum message size")
        elif name == "BODY":
            if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                raise ParameterError(f"501 5.5.4 Unknown BODY type {value}")
            params.body = value.upper()
        elif name == "RET":
            if value is None or value.upper() not in ("FULL", "HDRS"):
                raise ParameterError("501 5.5.4 Syntax error in RET parameter value")
            params.ret = value.upper()
        elif name == "ENVID":
            params.envid = _xtext(name, value, 100)
        elif name == "BY":
            if value is None or not _BY.fullmatch(value):
                raise ParameterError("501 5.5.4 Syntax error in BY parameter value")
            params.by = value.upper()
        else:
            raise ParameterError(f"555 5.5.4 {name} parameter unrecognized")
    return params


def parse_rcpt_parameters(words: list[str]) -> RcptParameters:
    """Validate the parameters of RCPT; raise ParameterError with the reply for the first bad one."""
    params = RcptParameters()
    for name, value in _pairs(words):
        if name == "NOTIFY":
            items = [item.upper() for item in (value or "").split(",")]
            valid = items == ["NEVER"] or (items and set(items) <= NOTIFY_VALUES)
            if not valid:
                raise ParameterError("501 5.5.4 Bad NOTIFY parameter")
            params.notify = items
        elif name == "ORCPT":
            addr_type, semicolon, _ = (value or "").partition(";")
            if not semicolon or not addr_type:
                raise ParameterError("501 5.5.4 Syntax error in ORCPT parameter value")
            params.orcpt = _xtext(name, value, 500)
        else:
            raise ParameterError(f"555 5.5.4 {name} parameter unrecognized")
    return params


def decode_xtext(value: str) -> str:
    """Undo the ``+HH`` escapes of xtext (RFC 3461 section 4)."""
    return re.sub(r"\+([0-9A-F]{2})", lambda match: chr(int(match.group(1), 16)), value)
