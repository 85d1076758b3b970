"""Run a scenario on a lab: each step in a pseudo-terminal on its host, then its checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from labenv.errors import ExpectationFailed, LabenvError, ScenarioError
from labenv.lab.model import Lab
from labenv.replay import template
from labenv.replay.checks import check_expectation, check_relation
from labenv.replay.context import host_facts, lab_context
from labenv.replay.expect import Expect, ExpectTimeout
from labenv.replay.labactions import PolicySetter, PolicySwitch, lab_policy_setter
from labenv.replay.record import RunRecord, SessionRecord, StepRecord
from labenv.replay.scenario import LabAction, Scenario, Step
from labenv.replay.terminals import Terminal, TerminalOpener

log = logging.getLogger(__name__)

# Seconds between two attempts of a step that has a retry time.
RETRY_PAUSE = 1.0

# Seconds to wait for the exit status once a program's output has ended.
EXIT_STATUS_WAIT = 2.0

def replay(
    scenario: Scenario,
    lab: Lab,
    open_terminal: TerminalOpener,
    on_step: Callable[[str, StepRecord], None] | None = None,
    set_policy: PolicySetter | None = None,
) -> RunRecord:
    """Run every session of ``scenario`` on ``lab`` and return the record.

    A failed check does not stop the replay, so the record shows every
    difference at once. A later check that needs a capture the failed one
    would have made fails with a message naming that capture. ``on_step``
    is called after each step. ``set_policy`` runs auth-policy steps (by
    default on the running lab); the policy found before the first one is
    set again at the end, even when a step failed or the replay was stopped.
    """
    started = time.monotonic()
    context = lab_context(lab, scenario)
    record = RunRecord(
        scenario=scenario.path,
        title=scenario.title,
        lab=lab.name,
        domain=lab.domain,
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        question=scenario.question,
        hosts=host_facts(lab),
        variables=dict(context["vars"]),
    )
    policy = PolicySwitch(lab.host_with_role("final").name, set_policy or lab_policy_setter(lab))
    try:
        for session in scenario.sessions:
            session_record = SessionRecord(session.key, session.title)
            record.sessions.append(session_record)
            log.info("session %s: %s", session.key, session.title)
            for step in session.steps:
                if isinstance(step, LabAction):
                    step_record = policy.run(step)
                else:
                    step_record = run_step(step, context, open_terminal)
                    step_record.policy = policy.current
                session_record.steps.append(step_record)
                if on_step:
                    on_step(session.key, step_record)
    finally:
        policy.restore()

    record.captures = dict(context["captured"])
    record.relations = [check_relation(relation, record.captures) for relation in scenario.relations]
    record.seconds = round(time.monotonic() - started, 2)
    return record


def run_step(step: Step, context: dict[str, Any], open_terminal: TerminalOpener) -> StepRecord:
    """Run ``step``, again while its checks fail and its retry time lasts; keep the last attempt's captures."""
    deadline = time.monotonic() + step.retry
    attempts = 0
    while True:
        attempts += 1
        captured_before = dict(context["captured"])
        record, retryable = _attempt(step, context, open_terminal)
        record.attempts = attempts
        if record.ok or not retryable or time.monotonic() >= deadline:
            return record
        log.debug("step %s failed on attempt %d; retrying", step.location, attempts)
        context["captured"] = captured_before
        time.sleep(RETRY_PAUSE)


def _attempt(step: Step, context: dict[str, Any], open_terminal: TerminalOpener) -> tuple[StepRecord, bool]:
    """Run ``step`` once; return its record and whether running it again could change the outcome."""
    where = str(step.location)
    started = time.monotonic()
    record = StepRecord(host=step.host, user=step.user, command=step.command, transcript="", exit_status=None,
                        seconds=0.0)
    try:
        # A command may use a capture that an earlier failed step never made.
        command = template.render(step.command, context, where=where)
    except ScenarioError as exc:
        record.error = str(exc)
        return record, False
    record.command = command
    log.debug("%s@%s: %s", step.user, step.host, command)
    try:
        terminal = open_terminal(step.host, step.user, command, step.access)
    except LabenvError as exc:
        record.error = str(exc)
        return record, True

    session = Expect(terminal)
    try:
        _run_dialog(step, context, session)
        if not session.read_to_end(step.timeout):
            record.error = f"{where}: {command!r} did not end within {step.timeout:g} s; raise the step's timeout"
    except LabenvError as exc:
        record.error = str(exc)
    finally:
        record.exit_status = _exit_status(terminal, session.ended)
        terminal.close()
    record.transcript = session.transcript
    record.seconds = round(time.monotonic() - started, 2)

    for expectation in step.expectations:
        result, captured = check_expectation(expectation, record.transcript, context)
        context["captured"].update(captured)
        record.checks.append(result)
    return record, True


def _exit_status(terminal: Terminal, ended: bool) -> int | None:
    """Return the program's exit status, or None when it is still running or never sent one."""
    # Over SSH the exit status arrives in its own message, a moment after the
    # output ends; closing the channel first would lose it.
    deadline = time.monotonic() + (EXIT_STATUS_WAIT if ended else 0)
    while not terminal.exit_status_ready():
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
    status = terminal.recv_exit_status()
    # paramiko reports -1 when the server closed the channel without a status.
    return None if status == -1 else status


def _run_dialog(step: Step, context: dict[str, Any], session: Expect) -> None:
    for action in step.dialog:
        where = str(action.location)
        if action.expect is not None:
            pattern = template.render(action.expect, context, regex=True, where=where)
            try:
                match = session.expect(pattern, action.timeout or step.timeout)
            except ExpectTimeout as exc:
                raise ExpectationFailed(f"{where}: {exc}") from exc
            context["captured"].update({k: v for k, v in match.groupdict().items() if v is not None})
        if action.send is not None:
            session.send_line(template.render(action.send, context, where=where))
