"""Placeholders such as ``{hosts.alcyone.fqdn}`` in scenario strings, filled from the lab.

A placeholder is a dotted name in braces that starts with a letter. Regex
quantifiers such as ``{14}`` or ``{2,3}`` start with a digit, so patterns need no
escaping. Values put into a regular expression are escaped, so a captured
queue id or an address matches literally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from labenv.errors import ScenarioError

PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*(?:\.[\w-]+)*)\}")

# The top-level names a scenario may use; see scenarios/README.md.
ROOTS = ("lab", "domain", "forged_domain", "hosts", "users", "vars", "captured")


def placeholders(template: str) -> list[str]:
    """Return the dotted names used in ``template``, in order."""
    return PLACEHOLDER.findall(template)


def lookup(context: Mapping[str, Any], dotted: str) -> Any:
    """Return the value at ``dotted`` in the nested mapping, or raise KeyError naming the missing part."""
    value: Any = context
    walked: list[str] = []
    for part in dotted.split("."):
        walked.append(part)
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(".".join(walked))
        value = value[part]
    return value


def render(template: str, context: Mapping[str, Any], *, regex: bool = False, where: str = "") -> str:
    """Replace each placeholder in ``template`` with its value from ``context``.

    With ``regex`` the values are escaped for ``re``. ``where`` (file:line and
    field) goes into the error raised for an unknown name.
    """

    def replace(match: re.Match[str]) -> str:
        try:
            value = lookup(context, match.group(1))
        except KeyError as exc:
            known = ", ".join(sorted(context)) or "none"
            raise ScenarioError(
                f"{where}: unknown placeholder {{{match.group(1)}}} ({exc.args[0]} is not defined); "
                f"known names: {known}, and captures made by earlier steps"
            ) from None
        if isinstance(value, Mapping):
            raise ScenarioError(
                f"{where}: placeholder {{{match.group(1)}}} names a group, not a value; "
                f"add one of: {', '.join(sorted(value))}"
            )
        text = str(value)
        return re.escape(text) if regex else text

    return PLACEHOLDER.sub(replace, template)
