"""Parsing of Received: header fields (RFC 5321 section 4.4) into their clauses, for labenv trace."""

from __future__ import annotations

import email.utils
import re
from dataclasses import asdict, dataclass
from datetime import datetime

# The clause keywords of a Received field (RFC 5321 section 4.4, Stamp).
KEYWORDS = ("from", "by", "via", "with", "id", "for")

_ADDRESS_LITERAL = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_BARE_ADDRESS = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})$")
_FOLD = re.compile(r"\r?\n[ \t]+")
_WORD = re.compile(r"[^\s(]+")


@dataclass(frozen=True)
class ReceivedField:
    """One Received field split into what the receiving host wrote about the hop.

    ``helo`` is the name the sending host gave in HELO/EHLO (a claim);
    ``reverse_name`` and ``address`` are what the receiving host saw or
    looked up for the TCP peer, if it wrote them down.
    """

    raw: str
    helo: str | None = None
    reverse_name: str | None = None
    address: str | None = None
    ident_user: str | None = None
    may_be_forged: bool = False
    by: str | None = None
    by_comment: str | None = None
    via: str | None = None
    protocol: str | None = None
    queue_id: str | None = None
    recipient: str | None = None
    date_text: str | None = None
    when: datetime | None = None

    def to_dict(self) -> dict:
        """Return the fields as JSON-ready values, the time as ISO 8601."""
        data = asdict(self)
        data["when"] = self.when.isoformat() if self.when else None
        return data


def unfold(value: str) -> str:
    """Join a folded header value into one line (RFC 5322 section 2.2.3)."""
    return _FOLD.sub(" ", value).strip()


def parse_received(value: str) -> ReceivedField:
    """Parse the value of one Received field; clauses it cannot read are left as None."""
    text = unfold(value)
    # The date follows the last semicolon (RFC 5321 section 4.4).
    clauses_text, semicolon, date_text = text.rpartition(";")
    if not semicolon:
        clauses_text, date_text = text, ""
    date_text = date_text.strip() or None

    clauses = _split_clauses(clauses_text)
    found: dict = {"raw": text, "date_text": date_text, "when": _parse_date(date_text)}
    for keyword, word, comments in clauses:
        if keyword == "from":
            found["helo"] = word
            found.update(_parse_from_comments(comments))
        elif keyword == "by":
            found["by"] = word
            found["by_comment"] = " ".join(comments) or None
        elif keyword == "via":
            found["via"] = word
        elif keyword == "with":
            found["protocol"] = word
        elif keyword == "id":
            found["queue_id"] = word
        elif keyword == "for":
            found["recipient"] = word.strip("<>") if word else None
    # sendmail writes "(from user@localhost)" in place of a from clause for local submission.
    for keyword, _, comments in clauses:
        if keyword is None:
            for comment in comments:
                match = re.fullmatch(r"\(from (\S+)\)", comment)
                if match:
                    found.setdefault("ident_user", match.group(1))
    return ReceivedField(**found)


def _split_clauses(text: str) -> list[tuple[str | None, str | None, list[str]]]:
    """Split into (keyword, value, comments) triples; comments are the parenthesised parts."""
    clauses: list[tuple[str | None, str | None, list[str]]] = []
    keyword: str | None = None
    value: str | None = None
    comments: list[str] = []
    for token in _tokens(text):
        if token.startswith("("):
            comments.append(token)
        elif token.lower() in KEYWORDS:
            if keyword is not None or comments:
                clauses.append((keyword, value, comments))
            keyword, value, comments = token.lower(), None, []
        elif value is None:
            value = token
    if keyword is not None or comments:
        clauses.append((keyword, value, comments))
    return clauses


def _tokens(text: str) -> list[str]:
    """Split on spaces, keeping each parenthesised comment (nested too) as one token."""
    tokens: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
        elif char == "(":
            depth = 0
            start = position
            while position < len(text):
                if text[position] == "(":
                    depth += 1
                elif text[position] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                position += 1
            tokens.append(text[start : position + 1])
            position += 1
        else:
            match = _WORD.match(text, position)
            tokens.append(match.group(0))
            position = match.end()
    return tokens


def _parse_from_comments(comments: list[str]) -> dict:
    """Read the TCP peer from the from-clause comment: ``(name [address])`` and its variants."""
    found: dict = {}
    for comment in comments:
        inner = comment[1:-1].strip()
        if "may be forged" in inner:
            found["may_be_forged"] = True
            inner = inner.replace("(may be forged)", "").strip()
        literal = _ADDRESS_LITERAL.search(inner)
        if literal:
            found["address"] = literal.group(1)
            name = inner[: literal.start()].strip()
        elif _BARE_ADDRESS.match(inner):
            found["address"] = inner
            name = ""
        else:
            continue
        if "@" in name:
            # sendmail writes an ident answer as user@name.
            found["ident_user"], _, name = name.rpartition("@")
        if name and name.lower() != "unknown":
            found["reverse_name"] = name
    return found


def _parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
