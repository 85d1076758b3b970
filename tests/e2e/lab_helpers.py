"""Small helpers the end-to-end tests share: running commands in hosts and waiting for mail."""

from __future__ import annotations

import email
import email.message
import mailbox
import re
import tempfile
import time

from labenv.runtime.containers import find_container
from labenv.runtime.hostfiles import read_host_file

# Delivery through both MTAs and spamd takes about a second; the limit is
# generous because spamd's first scan after start loads its rules.
DELIVERY_TIMEOUT = 90.0

QUEUE_ID = r"[0-9A-Za-z]{14}"


def run(client, lab_name: str, host_name: str, command: str, user: str = "root") -> tuple[int, str]:
    """Run ``command`` with sh in the host as ``user`` and return its exit code and combined output."""
    container = find_container(client, lab_name, host_name)
    home = "/root" if user == "root" else f"/home/{user}"
    result = container.exec_run(
        ["sh", "-c", command], user=user, workdir=home, environment={"HOME": home, "USER": user, "LOGNAME": user}
    )
    return result.exit_code, result.output.decode(errors="replace")


def mailbox_messages(client, lab_name: str, host_name: str, user: str) -> list[email.message.Message]:
    """Return the messages in ``user``'s mbox on the host, oldest first."""
    content = read_host_file(find_container(client, lab_name, host_name), f"/var/mail/{user}")
    with tempfile.NamedTemporaryFile(suffix=".mbox") as copy:
        copy.write(content)
        copy.flush()
        box = mailbox.mbox(copy.name, create=False)
        try:
            return [email.message_from_bytes(message.as_bytes()) for message in box]
        finally:
            box.close()


def wait_for_message(client, lab_name: str, host_name: str, user: str, subject: str) -> email.message.Message:
    """Wait until a message with ``subject`` is in ``user``'s mbox and return it."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        for message in mailbox_messages(client, lab_name, host_name, user):
            if message.get("Subject") == subject:
                return message
        if time.monotonic() > deadline:
            raise AssertionError(f"no message with subject {subject!r} reached {user} on {host_name}")
        time.sleep(1)


def wait_for_log(client, lab_name: str, host_name: str, path: str, pattern: str, count: int = 1) -> list[str]:
    """Wait until ``path`` on the host has ``count`` lines matching ``pattern``, and return the matches."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    matcher = re.compile(pattern)
    while True:
        text = read_host_file(find_container(client, lab_name, host_name), path).decode(errors="replace")
        lines = [line for line in text.splitlines() if matcher.search(line)]
        if len(lines) >= count:
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} on {host_name} has {len(lines)} lines matching {pattern!r}, expected {count}")
        time.sleep(1)


def received_lines(message: email.message.Message) -> list[str]:
    """Return the message's Received fields, newest first, each unfolded to one line."""
    return [" ".join(str(value).split()) for value in message.get_all("Received", [])]
