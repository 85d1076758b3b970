"""The labenv command line: a thin layer over the lab, runtime, MTA and replay modules.

Each module in this package registers the commands of one area. Errors reach
the user as one line on stderr with exit code 1; usage errors exit 2; with
--debug the traceback is shown as well.
"""

import logging
import sys

import click

from labenv import __version__
from labenv.errors import LabenvError

log = logging.getLogger(__name__)


class LabenvGroup(click.Group):
    """A click group that turns LabenvError and Ctrl-C into one readable line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LabenvError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                log.exception("command failed")
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo(
                "interrupted: the lab may be half started or half stopped; "
                "run 'labenv down' to remove it, or 'labenv up' again to finish",
                err=True,
            )
            ctx.exit(130)


def configure_logging(verbose: int, debug: bool) -> None:
    """Set up logging for the command line: WARNING by default, INFO with -v, DEBUG with -vv or --debug."""
    if debug or verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.WARNING
    try:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=debug)
        fmt = "%(message)s"
    except ImportError:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)


@click.group(cls=LabenvGroup)
@click.version_option(__version__, prog_name="labenv")
@click.option("-v", "--verbose", count=True, help="Log more: -v for each lab action, -vv for protocol detail.")
@click.option("--debug", is_flag=True, help="Log everything and show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """Build and run a containerized mail lab, replay its sessions and trace messages."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    configure_logging(verbose, debug)


def _register_commands() -> None:
    # Imported here so that each area's module can import this package's
    # group without a cycle.
    from labenv.cli import lab_commands, mta_commands, policy_commands, replay_commands, trace_commands

    for module in (lab_commands, mta_commands, policy_commands, replay_commands, trace_commands):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main() -> None:
    """Entry point of the ``labenv`` console script."""
    cli(prog_name="labenv")
