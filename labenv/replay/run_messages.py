"""Find the queue ids of the messages one replay produced, apart from those of earlier replays.

The steps read whole mailboxes and log files, so their transcripts also
contain the messages and log lines of earlier replays on the same lab.
"""

from __future__ import annotations

import email
import email.policy
import re

from labenv.replay import mailtext
from labenv.replay.record import RunRecord
from labenv.trace_received import parse_received

# A sendmail queue id has 14 characters since sendmail 8.12. Captures that do
# not look like one, such as HELO names, addresses and protocol names, are skipped.
QUEUE_ID = re.compile(r"[0-9A-Za-z]{14}")


def _printed_messages(record: RunRecord) -> list[tuple[set[str], str | None]]:
    """Return (queue ids of the Received lines, Message-ID) of every message a step printed."""
    found = []
    for session in record.sessions:
        for step in session.steps:
            for text in mailtext.mbox_messages(step.transcript):
                message = email.message_from_string(text, policy=email.policy.compat32)
                queue_ids = {parse_received(str(value)).queue_id for value in message.get_all("Received", [])}
                message_id = message.get("Message-ID")
                found.append((queue_ids - {None}, str(message_id).strip().strip("<>") if message_id else None))
    return found


def _logged_message_ids(record: RunRecord) -> list[tuple[str, str]]:
    """Return (queue id, msgid) of every log line that names both, such as sendmail's from= line."""
    found = []
    for session in record.sessions:
        for step in session.steps:
            for text in step.transcript.splitlines():
                line = mailtext.parse_log_line(text)
                if line is not None and line.queue_id and "msgid" in line.fields:
                    found.append((line.queue_id, line.fields["msgid"].strip("<>")))
    return found


def run_queue_ids(record: RunRecord) -> set[str]:
    """Collect the queue ids of this run's messages, starting from the captured ones.

    A printed message whose Received lines name a known queue id, or whose
    Message-ID is known, belongs to the run, and so do all queue ids in its
    Received lines. A log line whose msgid is known adds its queue id, which
    links the queue ids that one message got on each host. The search repeats
    until nothing new turns up. An empty set means the run captured no queue id.
    """
    queue_ids = {value for value in record.captures.values() if QUEUE_ID.fullmatch(value)}
    message_ids: set[str] = set()
    messages = _printed_messages(record)
    logged = _logged_message_ids(record)
    while True:
        size = (len(queue_ids), len(message_ids))
        for received_ids, message_id in messages:
            if received_ids & queue_ids or (message_id is not None and message_id in message_ids):
                queue_ids |= received_ids
                if message_id is not None:
                    message_ids.add(message_id)
        for queue_id, message_id in logged:
            if queue_id in queue_ids:
                message_ids.add(message_id)
            elif message_id in message_ids:
                queue_ids.add(queue_id)
        if (len(queue_ids), len(message_ids)) == size:
            return queue_ids
