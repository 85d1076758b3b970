"""Commands that replay scenarios and run the demo."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from labenv.errors import ExpectationFailed, ScenarioError
from labenv.lab.defaults import DEFAULT_LAB_NAME

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger(__name__)

# Reports go under ./reports/<lab>-<timestamp>/ unless --report-dir names a folder.
REPORTS_BASE = Path("reports")


def default_scenario() -> Path:
    """Return the handout scenario shipped in the source checkout's scenarios/ folder."""
    import labenv

    path = Path(labenv.__file__).resolve().parent.parent / "scenarios" / "handout.toml"
    if not path.is_file():
        raise ScenarioError(
            f"default scenario {path} not found (labenv is not run from a source checkout); "
            "give a scenario file: labenv replay FILE"
        )
    return path


def summary_console(file: IO[str] | None = None) -> Console:
    """Create the console for step lines and the summary table.

    Rich wraps at 80 columns when the output is not a terminal, so without
    soft wrap a long step line of `make demo` broke in two in logs and pipes.
    """
    from rich.console import Console

    return Console(file=file, soft_wrap=True)


def run_replay(scenario_path: Path, lab_name: str, report_dir: Path | None):
    """Replay ``scenario_path`` on the running lab, print the summary, write the report; return (record, path)."""
    from labenv.replay.loader import load_scenario
    from labenv.replay.report import default_report_dir, write_report
    from labenv.replay.runner import replay
    from labenv.replay.summary import print_step, print_summary
    from labenv.replay.terminals import LabTerminals
    from labenv.runtime.engine import connect
    from labenv.runtime.status import load_running_lab

    # paramiko logs a failed connection at ERROR with a traceback. The runner
    # reports that failure as a failed step, so paramiko stays quiet below DEBUG.
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    scenario = load_scenario(scenario_path)
    client = connect()
    console = summary_console()
    try:
        lab = load_running_lab(client, lab_name)
        terminals = LabTerminals(lab, docker_client=client)
        try:
            record = replay(scenario, lab, terminals, on_step=lambda key, step: print_step(console, key, step))
        finally:
            terminals.close()
    finally:
        client.close()
    print_summary(console, record)
    folder = report_dir or default_report_dir(REPORTS_BASE, lab.name)
    report = write_report(record, folder)
    click.echo(f"report: {report} and {report.with_suffix('.html')}")
    return record, report


def _fail_if_differences(record, report: Path) -> None:
    if not record.ok:
        raise ExpectationFailed(
            f"{len(record.failures())} expectation(s) failed in {record.scenario} on lab {record.lab}; "
            f"the differences are listed above and in {report}"
        )


@click.command()
@click.argument("scenario", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", "lab_name", default=DEFAULT_LAB_NAME, show_default=True, help="Name of the running lab.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.md, report.html and run.json [default: reports/<lab>-<UTC time>].")
def replay(scenario: Path | None, lab_name: str, report_dir: Path | None) -> None:
    """Replay a scenario's sessions on a running lab over SSH and check what each step shows.

    Without SCENARIO the sessions of scenarios/handout.toml are replayed. Exits 1 when
    an expectation fails.
    """
    record, report = run_replay(scenario or default_scenario(), lab_name, report_dir)
    _fail_if_differences(record, report)


@click.command()
@click.option("--name", "lab_name", default=DEFAULT_LAB_NAME, show_default=True, help="Name of the lab.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for every host to be ready when the lab has to be started.")
def demo(lab_name: str, timeout: float) -> None:
    """Start the lab if it is not ready, replay the handout's sessions and print the report path."""
    from labenv.runtime import lifecycle
    from labenv.runtime.engine import connect
    from labenv.runtime.status import lab_status

    client = connect()
    try:
        status = lab_status(client, lab_name)
        if status is None or not status.hosts or any(host.health != "ready" for host in status.hosts):
            click.echo(f"starting lab {lab_name}", err=True)
            lab, source = lifecycle.load_lab_for_up(client, lab_name, None, {})
            lifecycle.up(client, lab, source, timeout=timeout,
                         progress=lambda message: click.echo(f"  {message}", err=True))
    finally:
        client.close()
    record, report = run_replay(default_scenario(), lab_name, None)
    _fail_if_differences(record, report)


COMMANDS = [replay, demo]
