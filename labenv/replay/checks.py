"""The expectation engine: check a step's output, collect captures, compare related captures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from labenv.errors import ScenarioError
from labenv.replay import mailtext, template
from labenv.replay.record import CheckResult
from labenv.replay.scenario import Expectation, Relation

# Lines of output quoted in a failure, counted from the end.
TAIL_LINES = 8


def _tail(output: str) -> str:
    lines = output.rstrip("\n").splitlines()
    return "\n".join(lines[-TAIL_LINES:]) or "(no output)"


def _groups(match: re.Match[str]) -> dict[str, str]:
    return {name: value for name, value in match.groupdict().items() if value is not None}


def check_expectation(
    expectation: Expectation, output: str, context: Mapping[str, Any]
) -> tuple[CheckResult, dict[str, str]]:
    """Check ``expectation`` against ``output``; return the result and the values it captured.

    ``context`` fills placeholders; its ``captured`` entry contains earlier captures.
    A placeholder that names a capture an earlier failure never made fails
    this check instead of stopping the replay.
    """
    where = str(expectation.location)
    try:
        ok, expected, actual, captured = _CHECKERS[expectation.kind](expectation, output, context, where)
    except ScenarioError as exc:
        ok, expected, actual, captured = False, expectation.target, str(exc), {}
    result = CheckResult(
        name=expectation.name,
        kind=expectation.kind,
        location=where,
        ok=ok,
        expected=expected,
        actual=actual,
    )
    return result, captured


def _check_match(expectation, output, context, where):
    pattern = template.render(expectation.target, context, regex=True, where=where)
    match = re.search(pattern, output, re.MULTILINE)
    if match:
        return True, f"/{pattern}/", match.group(0), _groups(match)
    return False, f"/{pattern}/", f"no line matched; output ends with:\n{_tail(output)}", {}


def _check_line(expectation, output, context, where):
    expected_line = template.render(expectation.target, context, where=where)
    for line in output.splitlines():
        if line.rstrip() == expected_line.rstrip():
            return True, expected_line, line, {}
    return False, expected_line, f"no such line; output ends with:\n{_tail(output)}", {}


def _check_reply(expectation, output, context, where):
    command = template.render(expectation.target, context, where=where)
    code = expectation.options["code"]
    lines = output.splitlines()
    for number, line in enumerate(lines):
        # "mail -v" shows client commands as ">>> MAIL From:..."; telnet echoes them as typed.
        typed = line.lstrip(">").strip()
        if not typed.upper().startswith(command.upper()):
            continue
        for reply in lines[number + 1:]:
            if re.match(r"^\d{3}[ -]", reply):
                return reply.startswith(str(code)), f"{code} after {command!r}", reply, {}
        return False, f"{code} after {command!r}", f"no reply line after {line!r}", {}
    return False, f"{code} after {command!r}", f"command {command!r} not found in output:\n{_tail(output)}", {}


def _check_header(expectation, output, context, where):
    name = expectation.target
    options = expectation.options
    containing = None
    if options.get("message_with"):
        containing = template.render(options["message_with"], context, where=where)
    message = mailtext.pick_message(output, containing)
    expected = _describe_header(name, options, context, where)
    if message is None:
        scope = f"no message containing {containing!r}" if containing else "no message"
        return False, expected, f"{scope} in output:\n{_tail(output)}", {}

    values = [mailtext.unfold(str(value)) for value in message.get_all(name, [])]
    if options.get("absent"):
        return not values, expected, (f"{name}: {values[0]}" if values else f"no {name} field"), {}
    index = options.get("index")
    if index is not None:
        if index >= len(values):
            return False, expected, f"the message has {len(values)} {name} field(s)", {}
        values = [values[index]]
    if not values:
        return False, expected, f"the message has no {name} field", {}
    if options.get("value") is None:
        return True, expected, f"{name}: {values[0]}", {}
    pattern = template.render(options["value"], context, regex=True, where=where)
    for value in values:
        match = re.search(pattern, value)
        if match:
            return True, expected, f"{name}: {value}", _groups(match)
    return False, expected, "\n".join(f"{name}: {value}" for value in values), {}


def _describe_header(name, options, context, where) -> str:
    if options.get("absent"):
        return f"no {name} field"
    position = f"{name}[{options['index']}]" if options.get("index") is not None else name
    if options.get("value") is None:
        return f"a {position} field"
    return f"{position} matching /{template.render(options['value'], context, regex=True, where=where)}/"


def _check_log(expectation, output, context, where):
    pattern = template.render(expectation.target, context, regex=True, where=where)
    fields = {
        key: template.render(value, context, regex=True, where=where)
        for key, value in expectation.options.get("fields", {}).items()
    }
    expected = f"a log line matching /{pattern}/" + "".join(f", {key}=/{value}/" for key, value in fields.items())
    mismatches: list[str] = []
    for line in output.splitlines():
        match = re.search(pattern, line)
        if not match:
            continue
        parsed = mailtext.parse_log_line(line)
        found = parsed.fields if parsed else mailtext.log_fields(line)
        wrong = [
            f"{key}={found.get(key, '(missing)')}"
            for key, value in fields.items()
            if key not in found or not re.fullmatch(value, found[key])
        ]
        if not wrong:
            return True, expected, line, _groups(match)
        mismatches.append(f"{line}\n  differs in: {', '.join(wrong)}")
    if mismatches:
        return False, expected, "\n".join(mismatches[-3:]), {}
    return False, expected, f"no line matched; output ends with:\n{_tail(output)}", {}


_CHECKERS = {
    "match": _check_match,
    "line": _check_line,
    "reply": _check_reply,
    "header": _check_header,
    "log": _check_log,
}


def check_relation(relation: Relation, captures: Mapping[str, str]) -> CheckResult:
    """Check that every capture named by ``relation`` exists and all are equal."""
    values_text = ", ".join(f"{name}={captures.get(name, '(not captured)')}" for name in relation.same)
    present = [captures[name] for name in relation.same if name in captures]
    ok = len(present) == len(relation.same) and len(set(present)) == 1
    return CheckResult(
        name=relation.name,
        kind="relation",
        location=str(relation.location),
        ok=ok,
        expected=" = ".join(relation.same),
        actual=values_text,
    )
