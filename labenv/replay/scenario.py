"""The scenario model: sessions of steps typed on lab hosts, and what each must show.

The file format is described in scenarios/README.md; ``labenv.replay.loader``
reads it into these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# The kinds of expectation; exactly one of these keys in a table names its kind.
#   match:  a regex found in the step output; named groups become captures
#   line:   an exact line of the step output
#   reply:  the SMTP reply code that follows a command typed in the step
#   header: a header field of the delivered message printed by the step
#   log:    a syslog line in the step output, with sendmail-style key=value fields
ExpectationKind = Literal["match", "line", "reply", "header", "log"]
EXPECTATION_KINDS: tuple[ExpectationKind, ...] = ("match", "line", "reply", "header", "log")


@dataclass(frozen=True)
class Location:
    """The position of a value: the scenario file, its line and the field path."""

    file: str
    line: int
    field: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.field})"


@dataclass(frozen=True)
class DialogAction:
    """One exchange with an interactive program: wait for ``expect``, then type ``send``."""

    expect: str | None
    send: str | None
    location: Location
    timeout: float | None = None


@dataclass(frozen=True)
class Expectation:
    """One check run on the output of a step once it has ended."""

    kind: ExpectationKind
    # The regex, exact line, command prefix, header name or log-line regex.
    target: str
    name: str
    location: Location
    # reply: code (int). header: index (int, 0 is the topmost field), match (regex),
    # absent (bool), message_with (text that picks the message). log: fields (dict).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """A command run on a lab host as a lab user, in a pseudo-terminal."""

    host: str
    user: str
    command: str
    location: Location
    dialog: tuple[DialogAction, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    # Seconds for each dialog wait and for the command to end.
    timeout: float = 30.0
    # Seconds during which a step whose expectations fail is run again
    # (mail delivery and log forwarding are asynchronous); 0 runs it once.
    retry: float = 0.0
    # A label for the step.
    name: str = ""
    # "ssh" logs in as ``user`` like a student; "exec" uses docker exec, for
    # hosts without sshd such as the log host.
    access: Literal["ssh", "exec"] = "ssh"


# Lab-level actions a step may take instead of running a command on a host.
#   auth-policy: set the [auth] policy of the receiving MTA ("observe" or "enforce")
LabActionKind = Literal["auth-policy"]
LAB_ACTIONS: tuple[LabActionKind, ...] = ("auth-policy",)


@dataclass(frozen=True)
class LabAction:
    """A step that changes the running lab itself, such as the receiving MTA's auth policy."""

    action: LabActionKind
    value: str
    location: Location
    name: str = ""


@dataclass(frozen=True)
class Session:
    """A numbered session of the handout: several steps on one or more hosts."""

    key: str
    title: str
    steps: tuple[Step | LabAction, ...]
    location: Location


@dataclass(frozen=True)
class Relation:
    """Captured values that must all be equal, such as one queue id seen on three hosts."""

    name: str
    same: tuple[str, ...]
    location: Location


@dataclass(frozen=True)
class Scenario:
    """A whole scenario file."""

    path: str
    title: str
    variables: dict[str, str]
    sessions: tuple[Session, ...]
    relations: tuple[Relation, ...] = ()
    # A free-text question the report answers with the evidence gathered.
    question: str = ""
