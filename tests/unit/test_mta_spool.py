"""The durable spool: store, load, done records and recovery."""

from __future__ import annotations

import asyncio
import os

from labenv.mta import spoolsync
from labenv.mta.spool import Envelope, Recipient, Spool, SpoolError


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


def test_write_batch_failure_isolated(tmp_path):
    # The second file's temporary name is taken, so only its write fails.
    (tmp_path / "b.tmp").write_bytes(b"left over")
    files = [(tmp_path / f"{name}.tmp", [b"head\n", name.encode()], tmp_path / f"{name}.msg") for name in "abc"]
    errors = spoolsync.write_batch(tmp_path, files)
    assert errors[0] is None
    assert isinstance(errors[1], FileExistsError)
    assert errors[2] is None
    assert (tmp_path / "a.msg").read_bytes() == b"head\na"
    assert (tmp_path / "c.msg").read_bytes() == b"head\nc"
    assert not (tmp_path / "b.msg").exists()


def test_store_failure_spares_batch(tmp_path, monkeypatch):
    # With one batch at a time, the first store runs alone and the other
    # five share the next batch, where the fourth cannot be written.
    monkeypatch.setattr(spoolsync, "STORE_BATCHES", 1)
    spool = Spool(tmp_path)
    spool.prepare()
    qids = [spool.new_queue_id() for _ in range(6)]
    (tmp_path / f"{qids[3]}.tmp").mkdir()

    async def run() -> list[object]:
        results = await asyncio.gather(
            *(spool.store(_envelope(qid, 1), qid.encode()) for qid in qids), return_exceptions=True
        )
        await spool.close()
        return results

    results = asyncio.run(run())
    assert isinstance(results[3], SpoolError)
    assert f"{qids[3]}.tmp" in str(results[3])
    assert [result for index, result in enumerate(results) if index != 3] == [None] * 5
    stored = sorted(path.stem for path in tmp_path.glob("*.msg"))
    assert stored == sorted(qid for index, qid in enumerate(qids) if index != 3)
