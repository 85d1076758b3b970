"""Queue ids in sendmail's format."""

from datetime import datetime, timezone

import pytest

from labenv.mta import queueid


def test_handout_id_decodes():
    decoded = queueid.decode("j0O893wM016306", century_hint=2005)
    assert decoded.time == datetime(2005, 1, 24, 8, 9, 3, tzinfo=timezone.utc)
    assert decoded.sequence == 58 * 60 + 22
    assert decoded.pid == 16306


def test_handout_id_encodes():
    when = datetime(2005, 1, 24, 8, 9, 3, tzinfo=timezone.utc)
    assert queueid.encode(when, 58 * 60 + 22, 16306) == "j0O893wM016306"


def test_encode_converts_to_utc():
    from datetime import timedelta

    pst = timezone(timedelta(hours=-8))
    when = datetime(2005, 1, 24, 0, 9, 3, tzinfo=pst)
    assert queueid.encode(when, 0, 1)[:6] == "j0O893"


def test_generator_ids_are_unique_within_a_second():
    generator = queueid.QueueIdGenerator(pid=42)
    now = datetime(2026, 12, 4, 20, 0, 0, tzinfo=timezone.utc)
    ids = {generator.new(now) for _ in range(queueid.SEQUENCE_SPAN)}
    assert len(ids) == queueid.SEQUENCE_SPAN
    assert all(len(qid) == 14 for qid in ids)


@pytest.mark.parametrize("text", ["", "j0O893wM01630", "j0O893wM01630x", "j0O8!3wM016306"])
def test_malformed_ids_are_rejected(text):
    assert not queueid.looks_like_queue_id(text)
