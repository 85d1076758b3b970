"""The record of one replay: transcripts, check results and captures, saved as JSON.

The report is written from this record alone, so a saved run.json can be
turned into a report again, and tests build reports from recorded runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CheckResult:
    """The outcome of one expectation or relation."""

    name: str
    kind: str
    location: str
    ok: bool
    expected: str
    actual: str


@dataclass
class StepRecord:
    """The record of one step: the command, its transcript and its check results."""

    host: str
    user: str
    command: str
    transcript: str
    exit_status: int | None
    seconds: float
    attempts: int = 1
    checks: list[CheckResult] = field(default_factory=list)
    # A dialog wait that timed out or a connection that failed; the step stopped there.
    error: str | None = None
    # The lab-level action (such as "auth-policy") when the step ran no command on a host.
    action: str | None = None
    # The auth policy an earlier step of the replay set, in force while this step ran; None if none was set.
    policy: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(check.ok for check in self.checks)


@dataclass
class SessionRecord:
    """The steps of one session."""

    key: str
    title: str
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


@dataclass
class HostFacts:
    """The name, address and role of a lab host, as the report shows them."""

    name: str
    fqdn: str
    address: str
    role: str


@dataclass
class RunRecord:
    """A whole replay of a scenario on one lab."""

    scenario: str
    title: str
    lab: str
    domain: str
    started: str
    seconds: float = 0.0
    question: str = ""
    hosts: list[HostFacts] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    sessions: list[SessionRecord] = field(default_factory=list)
    relations: list[CheckResult] = field(default_factory=list)
    captures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(session.ok for session in self.sessions) and all(check.ok for check in self.relations)

    def failures(self) -> list[tuple[str, StepRecord | None, CheckResult | None]]:
        """Return (session key, step, check) for every failed check and step error."""
        found: list[tuple[str, StepRecord | None, CheckResult | None]] = []
        for session in self.sessions:
            for step in session.steps:
                if step.error:
                    found.append((session.key, step, None))
                found.extend((session.key, step, check) for check in step.checks if not check.ok)
        found.extend(("relations", None, check) for check in self.relations if not check.ok)
        return found

    def host_by_address(self, address: str) -> HostFacts | None:
        return next((host for host in self.hosts if host.address == address), None)

    def host_by_fqdn(self, name: str) -> HostFacts | None:
        lowered = name.lower().rstrip(".")
        return next((host for host in self.hosts if lowered in (host.fqdn.lower(), host.name.lower())), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        sessions = [
            SessionRecord(
                key=session["key"],
                title=session["title"],
                steps=[
                    StepRecord(**{**step, "checks": [CheckResult(**check) for check in step["checks"]]})
                    for step in session["steps"]
                ],
            )
            for session in data["sessions"]
        ]
        return cls(
            **{
                **data,
                "hosts": [HostFacts(**host) for host in data["hosts"]],
                "sessions": sessions,
                "relations": [CheckResult(**check) for check in data["relations"]],
            }
        )

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
