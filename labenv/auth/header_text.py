"""Safe rendering of client-supplied text (HELO names, envelope senders) inside header field values."""

import re

# RFC 5322 section 3.2.3 atext plus "." "@" and the brackets of address
# literals: such a value cannot end a clause or open a comment.
_PLAIN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@\[\]:]+$")


def quoted(text: str) -> str:
    """Return ``text`` as an RFC 5322 quoted-string, with control and non-ASCII characters replaced by "?"."""
    cleaned = "".join(char if " " <= char <= "~" else "?" for char in text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def token_or_quoted(text: str) -> str:
    """Return ``text`` as it is when it is a plain token, else quoted.

    A client chooses its HELO name and envelope sender, so without quoting it
    could add clauses such as ``; dmarc=pass`` to a field the receiver writes.
    """
    return text if _PLAIN.match(text) else quoted(text)


def comment(text: str) -> str:
    """Return ``text`` as an RFC 5322 comment: in parentheses, with inner ones turned into brackets."""
    cleaned = "".join(char if " " <= char <= "~" else "?" for char in text)
    return "(" + cleaned.replace("\\", "/").replace("(", "[").replace(")", "]") + ")"
