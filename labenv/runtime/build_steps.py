"""Run the host commands of an image build and report a failure with its last output lines."""

import collections
import logging
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from labenv.errors import BuildError

log = logging.getLogger(__name__)

# Number of output lines a BuildError quotes from a failed command.
TAIL_LINES = 15


def format_tail(lines: Sequence[str]) -> str:
    """Format the last output lines of a failed step for an error message."""
    return "\n".join("  | " + line for line in lines) or "  | (no output)"


def run_step(step: str, argv: Sequence[str | Path], *, cwd: Path | None = None) -> None:
    """Run one build command, logging its output at DEBUG.

    Raises BuildError naming the step, the command, its exit status and the
    last output lines when the command fails or cannot be started.
    """
    command = " ".join(shlex.quote(str(arg)) for arg in argv)
    log.debug("%s: running %s", step, command)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        process = subprocess.Popen(
            [str(arg) for arg in argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise BuildError(f"{step} failed: cannot run {command}: {exc}; install the program or fix PATH") from exc

    assert process.stdout is not None
    with process:
        for line in process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log.debug("%s: %s", step, line)
    if process.returncode != 0:
        raise BuildError(
            f"{step} failed with exit status {process.returncode}: {command}\n"
            f"last output lines:\n{format_tail(tail)}\n"
            "run again with --debug to see the whole output"
        )
