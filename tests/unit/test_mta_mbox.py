"""mbox entries and the locking delivery to them."""

from __future__ import annotations

import asyncio
import mailbox
import os
import pwd
import threading
import time

import pytest

from labenv.mta import mbox


def test_entry_quotes_from_lines():
    entry = mbox.mbox_entry(b"Subject: s\r\n\r\nFrom me\r\n>From you\r\nnot From here\r\n", "a@b.test", 0)
    lines = entry.split(b"\n")
    assert lines[0].startswith(b"From a@b.test ")
    # mboxo quoting, as mail.local writes it: only lines starting "From " change.
    assert lines[3:7] == [b">From me", b">From you", b"not From here", b""]
    assert entry.endswith(b"here\n\n")


def test_entry_quotes_first_line():
    entry = mbox.mbox_entry(b"From the top\r\nSubject: s\r\n\r\nx\r\n", "a@b.test", 0)
    assert entry.split(b"\n")[1] == b">From the top"


def test_entry_without_from_lines_unchanged():
    message = b"Subject: s\r\n\r\nFrom: not a separator\r\n From indented\r\nFrom\r\n"
    entry = mbox.mbox_entry(message, "a@b.test", 0)
    assert entry.split(b"\n", 1)[1] == message.replace(b"\r\n", b"\n") + b"\n"


def test_entry_null_sender_and_missing_newline():
    entry = mbox.mbox_entry(b"Subject: s\r\n\r\nno newline", "", 0)
    assert entry.startswith(b"From MAILER-DAEMON ")
    assert entry.endswith(b"no newline\n\n")


def test_deliver_appends_readable_entries(tmp_path):
    for number in range(3):
        entry = mbox.mbox_entry(f"Subject: {number}\r\n\r\nFrom x\r\n".encode(), "a@b.test", time.time())
        mbox.deliver(tmp_path, "john", entry, lock_timeout=1)
    box = mailbox.mbox(tmp_path / "john", create=False)
    assert [message["Subject"] for message in box] == ["0", "1", "2"]
    assert box[1].get_payload() == ">From x\n"
    box.close()
    assert not (tmp_path / "john.lock").exists()
    assert oct(os.stat(tmp_path / "john").st_mode & 0o777) == "0o600"


def test_held_dotlock_defers(tmp_path):
    (tmp_path / "john.lock").touch()
    with pytest.raises(mbox.MailboxError) as caught:
        mbox.deliver(tmp_path, "john", b"From a\n\n", lock_timeout=0.2)
    assert caught.value.temporary
    assert "john.lock" in str(caught.value)
    assert not (tmp_path / "john").exists()


def test_stale_dotlock_removed(tmp_path):
    lock = tmp_path / "john.lock"
    lock.touch()
    old = time.time() - mbox.STALE_LOCK_SECONDS - 10
    os.utime(lock, (old, old))
    mbox.deliver(tmp_path, "john", b"From a Mon Jan 24 00:09:03 2005\nSubject: s\n\n\n", lock_timeout=1)
    assert (tmp_path / "john").read_bytes().startswith(b"From a ")


def test_concurrent_deliveries_do_not_interleave(tmp_path):
    def deliver(number: int) -> None:
        body = (f"line {number}\r\n" * 2000).encode()
        entry = mbox.mbox_entry(f"Subject: {number}\r\n\r\n".encode() + body, "a@b.test", time.time())
        mbox.deliver(tmp_path, "john", entry, lock_timeout=30)

    threads = [threading.Thread(target=deliver, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    box = mailbox.mbox(tmp_path / "john", create=False)
    messages = list(box)
    box.close()
    assert sorted(message["Subject"] for message in messages) == [str(number) for number in range(8)]
    for message in messages:
        assert set(message.get_payload().splitlines()) == {f"line {message['Subject']}"}


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_new_mailbox_owned_by_user(tmp_path):
    user = pwd.getpwnam("daemon")
    mbox.deliver(tmp_path, "daemon", b"From a Mon Jan 24 00:09:03 2005\n\n\n", lock_timeout=1)
    status = os.stat(tmp_path / "daemon")
    assert status.st_uid == user.pw_uid
    assert status.st_gid == user.pw_gid


def test_writer_batches_concurrent_appends(tmp_path):
    writer = mbox.MailboxWriter(tmp_path, lock_timeout=5, executor=None)

    async def run() -> None:
        await asyncio.gather(
            *(writer.append("john", f"Subject: {number}\r\n\r\nbody\r\n".encode(), "a@b.test", time.time()) for number in range(50))
        )
        await writer.close()

    asyncio.run(run())
    box = mailbox.mbox(tmp_path / "john", create=False)
    subjects = sorted(int(message["Subject"]) for message in box)
    box.close()
    assert subjects == list(range(50))


def test_writer_fails_whole_batch_on_lock(tmp_path):
    (tmp_path / "john.lock").touch()
    writer = mbox.MailboxWriter(tmp_path, lock_timeout=0.2, executor=None)

    async def run() -> list:
        results = await asyncio.gather(
            *(writer.append("john", b"Subject: s\r\n\r\nx\r\n", "a@b.test", time.time()) for _ in range(3)),
            return_exceptions=True,
        )
        await writer.close()
        return results

    results = asyncio.run(run())
    assert all(isinstance(result, mbox.MailboxError) and result.temporary for result in results)
    assert not (tmp_path / "john").exists()
