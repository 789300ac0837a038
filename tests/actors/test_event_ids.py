"""QuestKit event ids: ``evt_`` + a ULID whose first 10 characters spell the time."""

from __future__ import annotations

import re

from questline.actors.questkit_user import new_event_id

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid_value(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + _CROCKFORD.index(char)
    return value


def test_event_id_is_a_ulid_carrying_its_millisecond():
    now = 1_732_000_000_123
    event_id = new_event_id(now)
    assert re.fullmatch(r"evt_[0-7][0-9A-HJKMNP-TV-Z]{25}", event_id)
    assert _ulid_value(event_id[4:]) >> 80 == now
    assert new_event_id(now) != event_id


def test_event_ids_sort_by_time():
    ids = [new_event_id(t) for t in (1_000, 1_001, 2_000_000_000_000, 2_000_000_000_001)]
    assert ids == sorted(ids)
