"""The session report of a replay, written as Markdown, HTML and the run record in JSON."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from labenv.replay.blocks import Block, Heading, Items, Paragraph, Preformatted, Table, to_html, to_markdown
from labenv.replay.evidence import Evidence, gather
from labenv.replay.findings import CONCLUSION, findings
from labenv.replay.record import CheckResult, RunRecord, StepRecord
from labenv.replay.summary import SUMMARY_COLUMNS, summary_rows


def default_report_dir(base: Path, lab: str, now: datetime | None = None) -> Path:
    """Return ``base/<lab>-<UTC timestamp>``, the folder of one report."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return base / f"{lab}-{stamp}"


def write_report(record: RunRecord, folder: Path) -> Path:
    """Write report.md, report.html and run.json into ``folder``; return the Markdown path."""
    folder.mkdir(parents=True, exist_ok=True)
    blocks = report_blocks(record)
    title = f"Replay of {record.title} on lab {record.lab}"
    (folder / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    (folder / "report.html").write_text(to_html(blocks, title), encoding="utf-8")
    (folder / "run.json").write_text(record.to_json(), encoding="utf-8")
    return folder / "report.md"


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _check_line(check: CheckResult) -> str:
    text = f"{_mark(check.ok)}: {check.name} ({check.location})"
    if not check.ok:
        text += f"\nexpected: {check.expected}\nactual: {check.actual}"
    return text


def _prompt(step: StepRecord) -> str:
    return f"{step.user}@{step.host}: {step.command}"


def report_blocks(record: RunRecord) -> list[Block]:
    """Lay out the whole report: summary, sessions, headers, logs and the closing question."""
    failures = record.failures()
    blocks: list[Block] = [
        Heading(1, f"Replay of {record.title} on lab {record.lab}"),
        Paragraph(
            f"Scenario {record.scenario}, started {record.started}, {record.seconds:g} s. "
            + ("Every expectation held." if record.ok else f"{len(failures)} expectation(s) failed.")
        ),
        Table(
            list(SUMMARY_COLUMNS),
            [[row.key, row.title, str(row.count), f"{row.passed}/{row.checked}", _mark(row.ok)]
             for row in summary_rows(record)],
        ),
    ]
    if failures:
        blocks.append(Heading(2, "Failures"))
        entries = []
        for session_key, step, check in failures:
            where = f"{session_key}, {_prompt(step)}" if step else session_key
            entries.append(f"{where}: {_check_line(check) if check else step.error}")
        blocks.append(Items(entries))

    blocks += _session_blocks(record)
    blocks += _relation_blocks(record)
    evidence = gather(record)
    blocks += _header_blocks(evidence)
    blocks += _log_blocks(evidence)
    blocks += _question_blocks(record, evidence)
    blocks += _defence_blocks(record)
    return blocks


def _session_blocks(record: RunRecord) -> list[Block]:
    blocks: list[Block] = []
    for session in record.sessions:
        blocks.append(Heading(2, f"Session {session.key}: {session.title}"))
        for step in session.steps:
            detail = f"exit status {step.exit_status}, {step.seconds:g} s"
            if step.attempts > 1:
                detail += f", {step.attempts} attempts"
            blocks.append(Heading(3, f"{_prompt(step)} ({detail})"))
            blocks.append(Preformatted(f"{_prompt(step)}\n{step.transcript}"))
            entries = [_check_line(check) for check in step.checks]
            if step.error:
                entries.insert(0, f"FAIL: the step stopped: {step.error}")
            if entries:
                blocks.append(Items(entries))
    return blocks


def _relation_blocks(record: RunRecord) -> list[Block]:
    if not record.relations:
        return []
    return [
        Heading(2, "Relations between captured values"),
        Table(
            ["result", "relation", "values", "where"],
            [[_mark(check.ok), check.name, check.actual, check.location] for check in record.relations],
        ),
    ]


def _header_blocks(evidence: Evidence) -> list[Block]:
    title = "Delivered headers" + (f" of queue id {evidence.queue_id}" if evidence.queue_id else "")
    if evidence.message is None:
        return [Heading(2, title), Paragraph("No step printed the delivered message.")]
    rows = []
    for number, hop in enumerate(evidence.hops, start=1):
        if hop.submitter:
            rows.append([str(number), hop.writer_host or hop.by or "?", f"local submission (from {hop.submitter})",
                         "", "", "", hop.queue_id or "", hop.trust or ""])
            continue
        matches = {True: "yes", False: "no", None: "n/a"}[hop.helo_matches]
        client = f"{hop.address} ({hop.client_host})" if hop.client_host else (hop.address or "?")
        if hop.may_be_forged:
            client += ", may be forged"
        rows.append([str(number), hop.writer_host or hop.by or "?", hop.helo or "?", hop.rdns or "?",
                     client, matches, hop.queue_id or "", hop.trust or ""])
    header_text = "\n".join(f"{name}: {value}" for name, value in evidence.headers)
    return [
        Heading(2, title),
        Paragraph("Received lines, topmost (the last hop) first. Each is written by the host named in its "
                  "'by' clause; the HELO is what the client claimed, the reverse-DNS name and the address "
                  "are what the writer saw on the connection."),
        Table(["hop", "written by", "claimed HELO", "reverse DNS", "client address (lab host)",
               "HELO = rDNS", "queue id", "trust (labenv trace)"], rows),
        Preformatted(header_text),
    ]


def _log_blocks(evidence: Evidence) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Log lines by queue id")]
    if not evidence.run_queue_ids_known:
        blocks.append(Paragraph("The run captured no queue id, so the lines of every queue id the steps "
                                "printed are shown, including those of earlier replays on this lab."))
    elif evidence.left_out_queue_ids:
        blocks.append(Paragraph(
            f"Only the queue ids of messages this run produced are shown. {evidence.left_out_lines} "
            f"line(s) of {evidence.left_out_queue_ids} other queue id(s), such as those of earlier "
            "replays on this lab, are left out."
        ))
    if not evidence.log_groups and evidence.left_out_queue_ids:
        return blocks + [Paragraph("No step printed syslog lines of this run's messages.")]
    if not evidence.log_groups:
        return blocks + [Paragraph("No step printed syslog lines.")]
    for group in evidence.log_groups:
        marker = " (the examined message)" if group.queue_id == evidence.queue_id else ""
        blocks.append(Heading(3, f"{group.queue_id}{marker}"))
        blocks.append(Preformatted("\n".join(f"[{host}] {text}" for host, text in group.lines)))
    return blocks


def _question_blocks(record: RunRecord, evidence: Evidence) -> list[Block]:
    question = record.question or "Where did the message really come from?"
    if evidence.message is None:
        return [Heading(2, "The closing question"), Paragraph(question),
                Paragraph("No step printed the delivered message, so this run has no evidence to answer it.")]
    blocks: list[Block] = [
        Heading(2, "The closing question"),
        Paragraph(question),
        Table(["topic", "the message claims", "the receiving side saw", "what it means"],
              [[f.topic, f.claimed, f.observed, f.note] for f in findings(record, evidence)]),
    ]
    if evidence.trace is not None:
        agreement = {True: "yes", False: "no", None: "n/a"}
        blocks.append(Paragraph("Identities compared by labenv trace:"))
        blocks.append(Table(
            ["identities", "first", "second", "agree", "meaning"],
            [[c.label, c.left or "(none)", c.right or "(none)", agreement[c.agree], c.explanation]
             for c in evidence.trace.comparisons],
        ))
        blocks += [Paragraph(paragraph) for paragraph in evidence.trace.verdict]
    blocks.append(Paragraph(CONCLUSION))
    return blocks


def _defence_blocks(record: RunRecord) -> list[Block]:
    """Show the transcripts of the steps run while the replay had alcyone enforcing DMARC."""
    enforced = [step for session in record.sessions for step in session.steps
                if step.policy == "enforce" and step.action is None]
    if not enforced:
        return []
    blocks: list[Block] = [
        Heading(3, "With the defences on"),
        Paragraph("The same forgery after the receiving host switched its auth policy to enforce: SPF and "
                  "DMARC fail as before, and the DMARC policy of the forged domain now turns the end of DATA "
                  "into a rejection, so nothing reaches the mailbox."),
    ]
    for step in enforced:
        blocks.append(Preformatted(f"{_prompt(step)}\n{step.transcript}"))
        if not step.ok:
            blocks.append(Items([_check_line(check) for check in step.checks if not check.ok]
                                + ([f"FAIL: the step stopped: {step.error}"] if step.error else [])))
    return blocks
