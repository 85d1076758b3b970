"""Print how long the handout scenario takes: replayed on a warm lab, and `labenv demo` from nothing.

Usage: .venv/bin/python benchmarks/replay_time.py [--name LAB] [--runs N] [--skip-cold]

The warm figure replays the default scenario N times on a lab that is
already up (it is started first if needed). The cold figure removes the
lab, then times `labenv demo`, which starts it and replays once. Build the
images beforehand (`labenv build`), because build time is not part of the
figure. The lab is removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LABENV = str(Path(sys.executable).with_name("labenv"))


def run(*args: str) -> float:
    """Run ``labenv ARGS``, fail loudly on a non-zero exit, and return the seconds it took."""
    started = time.monotonic()
    completed = subprocess.run([LABENV, *args], capture_output=True, text=True)
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        sys.exit(f"labenv {' '.join(args)} failed with exit code {completed.returncode}:\n"
                 f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="replay-bench", help="lab name used for the measurement")
    parser.add_argument("--runs", type=int, default=3, help="number of warm replays")
    parser.add_argument("--skip-cold", action="store_true", help="do not measure labenv demo from nothing")
    options = parser.parse_args()

    try:
        if not options.skip_cold:
            run("down", "--name", options.name)
            cold = run("demo", "--name", options.name)
            print(f"labenv demo from nothing (images built): {cold:.1f} s")
        else:
            run("up", "--name", options.name)

        with tempfile.TemporaryDirectory() as folder:
            warm = [
                run("replay", "--name", options.name, "--report-dir", f"{folder}/run{index}")
                for index in range(options.runs)
            ]
        print(f"replay of the default scenario on a warm lab, {options.runs} runs: "
              f"median {statistics.median(warm):.1f} s, min {min(warm):.1f} s, max {max(warm):.1f} s")
    finally:
        run("down", "--name", options.name)


if __name__ == "__main__":
    main()
