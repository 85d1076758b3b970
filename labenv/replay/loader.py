"""Read and validate a scenario file; every error names the file, line and field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from labenv.auth.mta_hooks import MODES
from labenv.errors import ScenarioError
from labenv.replay import template
from labenv.replay.scenario import (
    EXPECTATION_KINDS,
    LAB_ACTIONS,
    DialogAction,
    Expectation,
    LabAction,
    Location,
    Relation,
    Scenario,
    Session,
    Step,
)
from labenv.replay.tomllines import Path as TomlPath
from labenv.replay.tomllines import TomlLines

TOP_KEYS = {"title", "question", "vars", "session", "relation"}
SESSION_KEYS = {"key", "title", "step"}
STEP_KEYS = {"host", "user", "command", "name", "dialog", "expect", "timeout", "retry", "access"}
ACTION_KEYS = {"action", "value", "name"}
# The values each lab-level action accepts.
ACTION_VALUES = {"auth-policy": MODES}
ACCESS_METHODS = ("ssh", "exec")
DIALOG_KEYS = {"expect", "send", "timeout"}
EXPECT_KEYS = set(EXPECTATION_KINDS) | {"name", "code", "index", "value", "absent", "message_with", "fields"}
RELATION_KEYS = {"name", "same"}

# The options each expectation kind accepts besides its kind key and "name".
KIND_OPTIONS = {
    "match": set(),
    "line": set(),
    "reply": {"code"},
    "header": {"index", "value", "absent", "message_with"},
    "log": {"fields"},
}


def field_name(path: TomlPath) -> str:
    """Format a path as ``session[1].step[0].dialog[2].send``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = part
    return text


class _Reader:
    """Walks the parsed document, keeping the file and line of each value for errors."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines = TomlLines(text)
        # Capture names in the order the file defines them.
        self.captures: list[str] = []

    def where(self, path: TomlPath) -> Location:
        return Location(self.file, self.lines.line_of(path), field_name(path))

    def fail(self, path: TomlPath, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.where(path)}: {problem}")

    def check_keys(self, table: dict[str, Any], allowed: set[str], path: TomlPath) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    path + (key,),
                    f"unknown field {key!r}; expected one of: {', '.join(sorted(allowed))}",
                )

    def get(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], path: TomlPath,
            default: Any = None, required: bool = False) -> Any:
        if key not in table:
            if required:
                raise self.fail(path, f"missing field {key!r}; add it to this table")
            return default
        value = table[key]
        # bool is a subclass of int; a number field must reject true/false.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(path + (key,), f"invalid value {value!r}: expected a number")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(path + (key,), f"invalid value {value!r}: expected {names}")
        return value

    def check_template(self, text: str, path: TomlPath, regex: bool) -> None:
        """Check placeholder names and, for a regex, its syntax; record named groups as captures."""
        for name in template.placeholders(text):
            root, _, rest = name.partition(".")
            if root not in template.ROOTS:
                raise self.fail(
                    path, f"unknown placeholder {{{name}}}; names start with one of: {', '.join(template.ROOTS)}"
                )
            if root == "captured" and rest not in self.captures:
                raise self.fail(
                    path,
                    f"placeholder {{{name}}} uses a capture no earlier pattern defines; "
                    f"define it with a named group (?P<{rest}>...) in an earlier step",
                )
        if not regex:
            return
        try:
            compiled = re.compile(template.PLACEHOLDER.sub("x", text))
        except re.error as exc:
            raise self.fail(path, f"invalid regular expression {text!r}: {exc}") from None
        for group in compiled.groupindex:
            if group not in self.captures:
                self.captures.append(group)


def load_scenario(path: str | Path) -> Scenario:
    """Read the scenario file at ``path``; raise ScenarioError naming file, line and field."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {file}: {exc.strerror}; check the path") from exc
    return parse_scenario(text, file)


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Parse scenario ``text``; ``file`` is the name used in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{file}: invalid TOML: {exc}; fix the syntax at that line") from exc
    reader = _Reader(file, text)
    reader.check_keys(document, TOP_KEYS, ())

    variables = reader.get(document, "vars", dict, (), default={})
    for key, value in variables.items():
        if not isinstance(value, str):
            raise reader.fail(("vars", key), f"invalid value {value!r}: variables are strings")
        reader.check_template(value, ("vars", key), regex=False)

    sessions_raw = reader.get(document, "session", list, (), required=True)
    sessions = []
    seen_keys: set[str] = set()
    for index, raw in enumerate(sessions_raw):
        session = _read_session(reader, raw, ("session", index))
        if session.key in seen_keys:
            raise reader.fail(("session", index, "key"), f"duplicate session key {session.key!r}; keys must be unique")
        seen_keys.add(session.key)
        sessions.append(session)

    relations = tuple(
        _read_relation(reader, raw, ("relation", index))
        for index, raw in enumerate(reader.get(document, "relation", list, (), default=[]))
    )
    return Scenario(
        path=file,
        title=reader.get(document, "title", str, (), default=Path(file).stem),
        variables=dict(variables),
        sessions=tuple(sessions),
        relations=relations,
        question=reader.get(document, "question", str, (), default=""),
    )


def _read_session(reader: _Reader, raw: Any, path: TomlPath) -> Session:
    if not isinstance(raw, dict):
        raise reader.fail(path, "invalid session: expected a table [[session]]")
    reader.check_keys(raw, SESSION_KEYS, path)
    steps_raw = reader.get(raw, "step", list, path, required=True)
    if not steps_raw:
        raise reader.fail(path, "session has no steps; add a [[session.step]] table")
    return Session(
        key=reader.get(raw, "key", str, path, required=True),
        title=reader.get(raw, "title", str, path, default=""),
        steps=tuple(_read_step(reader, step, path + ("step", index)) for index, step in enumerate(steps_raw)),
        location=reader.where(path),
    )


def _read_step(reader: _Reader, raw: Any, path: TomlPath) -> Step | LabAction:
    if not isinstance(raw, dict):
        raise reader.fail(path, "invalid step: expected a table [[session.step]]")
    if "action" in raw:
        return _read_lab_action(reader, raw, path)
    reader.check_keys(raw, STEP_KEYS, path)
    command = reader.get(raw, "command", str, path, required=True)
    reader.check_template(command, path + ("command",), regex=False)

    # Dialog patterns come before the checks in a step, so their captures are defined first.
    dialog = tuple(
        _read_dialog(reader, item, path + ("dialog", index))
        for index, item in enumerate(reader.get(raw, "dialog", list, path, default=[]))
    )
    expectations = tuple(
        _read_expectation(reader, item, path + ("expect", index))
        for index, item in enumerate(reader.get(raw, "expect", list, path, default=[]))
    )

    timeout = reader.get(raw, "timeout", (int, float), path, default=30.0)
    retry = reader.get(raw, "retry", (int, float), path, default=0.0)
    if timeout <= 0:
        raise reader.fail(path + ("timeout",), f"invalid timeout {timeout}: expected seconds above 0")
    if retry < 0:
        raise reader.fail(path + ("retry",), f"invalid retry {retry}: expected seconds, 0 or more")
    access = reader.get(raw, "access", str, path, default="ssh")
    if access not in ACCESS_METHODS:
        raise reader.fail(path + ("access",), f"invalid access {access!r}: expected one of {', '.join(ACCESS_METHODS)}")

    return Step(
        host=reader.get(raw, "host", str, path, required=True),
        user=reader.get(raw, "user", str, path, required=True),
        command=command,
        location=reader.where(path),
        dialog=dialog,
        expectations=expectations,
        timeout=float(timeout),
        retry=float(retry),
        name=reader.get(raw, "name", str, path, default=""),
        access=access,
    )


def _read_lab_action(reader: _Reader, raw: dict[str, Any], path: TomlPath) -> LabAction:
    # A lab-level step runs no command, so the host-step keys are errors here.
    reader.check_keys(raw, ACTION_KEYS, path)
    action = reader.get(raw, "action", str, path, required=True)
    if action not in LAB_ACTIONS:
        raise reader.fail(path + ("action",), f"unknown action {action!r}; expected one of: {', '.join(LAB_ACTIONS)}")
    value = reader.get(raw, "value", str, path, required=True)
    allowed = ACTION_VALUES[action]
    if value not in allowed:
        raise reader.fail(path + ("value",), f"invalid {action} value {value!r}; expected one of: {', '.join(allowed)}")
    return LabAction(
        action=action,
        value=value,
        location=reader.where(path + ("action",)),
        name=reader.get(raw, "name", str, path, default=""),
    )


def _read_dialog(reader: _Reader, raw: Any, path: TomlPath) -> DialogAction:
    if not isinstance(raw, dict):
        raise reader.fail(path, 'invalid dialog item: expected an inline table such as { expect = "Subject: ", send = "Test" }')
    reader.check_keys(raw, DIALOG_KEYS, path)
    expect = reader.get(raw, "expect", str, path)
    send = reader.get(raw, "send", str, path)
    if expect is None and send is None:
        raise reader.fail(path, "dialog item has neither 'expect' nor 'send'; give at least one")
    if expect is not None:
        reader.check_template(expect, path + ("expect",), regex=True)
    if send is not None:
        reader.check_template(send, path + ("send",), regex=False)
    timeout = reader.get(raw, "timeout", (int, float), path)
    return DialogAction(
        expect=expect,
        send=send,
        location=reader.where(path),
        timeout=float(timeout) if timeout is not None else None,
    )


def _read_expectation(reader: _Reader, raw: Any, path: TomlPath) -> Expectation:
    if not isinstance(raw, dict):
        raise reader.fail(path, "invalid expectation: expected a table [[session.step.expect]]")
    reader.check_keys(raw, EXPECT_KEYS, path)
    kinds = [kind for kind in EXPECTATION_KINDS if kind in raw]
    if len(kinds) != 1:
        raise reader.fail(
            path,
            f"an expectation needs exactly one of: {', '.join(EXPECTATION_KINDS)} "
            f"(found {', '.join(kinds) or 'none'})",
        )
    kind = kinds[0]
    target = reader.get(raw, kind, str, path, required=True)
    for option in set(raw) - {kind, "name"}:
        if option not in KIND_OPTIONS[kind]:
            allowed = ", ".join(sorted(KIND_OPTIONS[kind])) or "none"
            raise reader.fail(path + (option,), f"field {option!r} does not apply to a {kind!r} expectation (options: {allowed})")

    reader.check_template(target, path + (kind,), regex=kind in ("match", "log"))
    options: dict[str, Any] = {}
    if kind == "reply":
        code = reader.get(raw, "code", int, path, required=True)
        if not 200 <= code <= 599:
            raise reader.fail(path + ("code",), f"invalid reply code {code}: expected 200 to 599")
        options["code"] = code
    elif kind == "header":
        options["index"] = reader.get(raw, "index", int, path, default=None)
        options["absent"] = reader.get(raw, "absent", bool, path, default=False)
        options["value"] = reader.get(raw, "value", str, path, default=None)
        options["message_with"] = reader.get(raw, "message_with", str, path, default=None)
        if options["value"] is not None:
            reader.check_template(options["value"], path + ("value",), regex=True)
        if options["message_with"] is not None:
            reader.check_template(options["message_with"], path + ("message_with",), regex=False)
    elif kind == "log":
        fields = reader.get(raw, "fields", dict, path, default={})
        for key, value in fields.items():
            if not isinstance(value, str):
                raise reader.fail(path + ("fields", key), f"invalid value {value!r}: a field pattern is a string")
            reader.check_template(value, path + ("fields", key), regex=True)
        options["fields"] = dict(fields)
    name = reader.get(raw, "name", str, path, default=f"{kind} {target}")
    return Expectation(kind=kind, target=target, name=name, location=reader.where(path + (kind,)), options=options)


def _read_relation(reader: _Reader, raw: Any, path: TomlPath) -> Relation:
    if not isinstance(raw, dict):
        raise reader.fail(path, "invalid relation: expected a table [[relation]]")
    reader.check_keys(raw, RELATION_KEYS, path)
    same = reader.get(raw, "same", list, path, required=True)
    if len(same) < 2 or not all(isinstance(name, str) for name in same):
        raise reader.fail(path + ("same",), f"invalid value {same!r}: expected two or more capture names")
    for name in same:
        if name not in reader.captures:
            raise reader.fail(
                path + ("same",),
                f"unknown capture {name!r}; defined captures: {', '.join(reader.captures) or 'none'}",
            )
    return Relation(
        name=reader.get(raw, "name", str, path, default=" = ".join(same)),
        same=tuple(same),
        location=reader.where(path + ("same",)),
    )
