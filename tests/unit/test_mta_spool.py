"""The durable spool: store, load, done records and recovery."""

from __future__ import annotations

import asyncio
import os

from labenv.mta.spool import Envelope, Recipient, Spool


def _envelope(qid: str, recipients: int = 2) -> Envelope:
    return Envelope(
        queue_id=qid,
        sender="a@b.test",
        recipients=[Recipient(f"user{number}@x.test", ["FAILURE"], "rfc822;u") for number in range(recipients)],
        received_at=1.5,
        envid="E1",
    )


def test_store_then_load(tmp_path):
    spool = Spool(tmp_path)
    spool.prepare()
    qid = spool.new_queue_id()
    message = b"Subject: x\r\n\r\nline\r\n.\r\n"
    asyncio.run(spool.store(_envelope(qid), message))
    envelope, loaded, done = spool.load(qid)
    assert envelope == _envelope(qid)
    assert loaded == message
    assert done == set()
    assert [path.name for path in tmp_path.iterdir()] == [f"{qid}.msg"]


def test_done_records_and_removal(tmp_path):
    spool = Spool(tmp_path)
    spool.prepare()
    qid = spool.new_queue_id()

    async def run() -> None:
        await spool.store(_envelope(qid), b"x\r\n")
        await spool.mark_done(qid, 1, remaining=1)

    asyncio.run(run())
    assert spool.load(qid)[2] == {1}
    asyncio.run(spool.mark_done(qid, 0, remaining=0))
    assert list(tmp_path.iterdir()) == []


def test_prepare_removes_half_written_files(tmp_path):
    (tmp_path / "AAAAAAAA000001.tmp").write_bytes(b'{"queue_id": "AAAA')
    (tmp_path / "BBBBBBBB000001.done").write_bytes(b"0\n")
    spool = Spool(tmp_path)
    assert spool.prepare() == []
    assert list(tmp_path.iterdir()) == []


def test_prepare_lists_queued_oldest_first(tmp_path):
    spool = Spool(tmp_path)
    spool.prepare()
    first, second = spool.new_queue_id(), spool.new_queue_id()

    async def run() -> None:
        await spool.store(_envelope(first), b"1")
        await spool.store(_envelope(second), b"2")

    asyncio.run(run())
    # Two stores can share one timestamp tick, so give them distinct times.
    os.utime(tmp_path / f"{first}.msg", (1000, 1000))
    os.utime(tmp_path / f"{second}.msg", (2000, 2000))
    assert Spool(tmp_path).prepare() == [first, second]


def test_queue_ids_skip_taken(tmp_path):
    spool = Spool(tmp_path)
    spool.prepare()
    ids = {spool.new_queue_id() for _ in range(5000)}
    assert len(ids) == 5000


def test_concurrent_stores_share_fsyncs(tmp_path):
    spool = Spool(tmp_path)
    spool.prepare()
    qids = [spool.new_queue_id() for _ in range(50)]

    async def run() -> None:
        await asyncio.gather(*(spool.store(_envelope(qid, 1), qid.encode()) for qid in qids))
        await spool.close()

    asyncio.run(run())
    assert sorted(path.stem for path in tmp_path.iterdir()) == sorted(qids)
    for qid in qids:
        assert spool.load(qid)[1] == qid.encode()
