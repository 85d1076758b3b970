"""Scripted programs on real socket pairs, standing in for SSH terminals in tests of the replay."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence

# A script: each string is written to the terminal; None reads one typed line
# (up to CR) and echoes it with CR LF, as a terminal in canonical mode does.
Script = Sequence[str | None]


class ScriptedTerminal:
    """One end of a socket pair; a thread plays the program on the other end.

    It has the methods of a paramiko channel that ``labenv.replay.runner`` uses.
    """

    def __init__(self, script: Script, exit_status: int = 0):
        self.sock, program_end = socket.socketpair()
        self.exit_status = exit_status
        # The lines the program read, without their CR.
        self.typed: list[str] = []
        self.thread = threading.Thread(target=self._play, args=(program_end, script), daemon=True)
        self.thread.start()

    def _play(self, sock: socket.socket, script: Script) -> None:
        with sock:
            try:
                for item in script:
                    if item is not None:
                        sock.sendall(item.encode())
                        continue
                    line = b""
                    while not line.endswith(b"\r"):
                        chunk = sock.recv(1)
                        if not chunk:
                            return
                        line += chunk
                    self.typed.append(line[:-1].decode())
                    sock.sendall(line[:-1] + b"\r\n")
            except OSError:
                # The test closed its end early; the program just stops.
                return

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def exit_status_ready(self) -> bool:
        return not self.thread.is_alive()

    def recv_exit_status(self) -> int:
        return self.exit_status

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)
