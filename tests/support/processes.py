"""Start an MTA as a child process for tests and wait for its greeting."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def start_mta_process(command: list[str], port: int, output: Path, timeout: float = 20.0) -> subprocess.Popen:
    """Start ``command`` with its output appended to ``output`` and return once port ``port`` sends a 220."""
    with output.open("ab") as output_file:
        process = subprocess.Popen(command, stdout=output_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                if probe.recv(100).startswith(b"220 "):
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait(10)
    raise AssertionError(f"MTA did not start within {timeout} s; its output: {output.read_text()}")
