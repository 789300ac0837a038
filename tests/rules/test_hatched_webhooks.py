"""Pure webhook logic: signatures, verification, backoff, URL checks and event mapping."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from questline.rules.hatched_webhooks import (
    EVENT_TYPES,
    RetryPolicy,
    delivered,
    encode_payload,
    event_from_operation,
    events_from_ingest,
    events_problem,
    parse_signatures,
    payload_id,
    sign,
    signature_header,
    url_problem,
    verify,
)
from tests.http.webhook_receiver import documented_verifier

BODY = b'{"id":"whe_1","type":"coins.earned","data":{"amount":10}}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"whsec_k", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign("whsec_k", 1700000000, BODY) == expected
    assert signature_header(["whsec_k"], 1700000000, BODY) == f"v1={expected}"


def test_two_secrets_sign_newest_first_and_either_verifies() -> None:
    header = signature_header(["new", "old"], 1700000000, BODY)
    assert parse_signatures(header) == [sign("new", 1700000000, BODY), sign("old", 1700000000, BODY)]
    for secret in ("new", "old"):
        assert verify(secret, header, "1700000000", BODY, now_s=1700000010)
    assert not verify("other", header, "1700000000", BODY, now_s=1700000010)
    with pytest.raises(ValueError):
        signature_header([], 1, BODY)


def test_verify_refuses_tampering_and_stale_timestamps() -> None:
    header = signature_header(["k"], 1700000000, BODY)
    assert not verify("k", header, "1700000000", BODY.replace(b"10", b"99"), now_s=1700000000)
    assert not verify("k", header, "1700000001", BODY, now_s=1700000000)
    assert not verify("k", header, "1700000000", BODY, now_s=1700000000 + 301)
    assert not verify("k", header, "1700000000", BODY, now_s=1700000000 - 301)
    assert verify("k", header, "1700000000", BODY, now_s=1700000000 + 300)
    assert not verify("k", header, "soon", BODY, now_s=1700000000)
    assert not verify("k", "v0=" + sign("k", 1700000000, BODY), "1700000000", BODY, now_s=1700000000)
    assert not verify("k", "", "1700000000", BODY, now_s=1700000000)


def test_documented_recipe_agrees_with_the_signer() -> None:
    import time

    recipe = documented_verifier()
    now = int(time.time())
    headers = {"X-Hatched-Timestamp": str(now), "X-Hatched-Signature": signature_header(["a", "b"], now, BODY)}
    assert recipe("a", headers, BODY) and recipe("b", headers, BODY)
    assert not recipe("c", headers, BODY)
    assert not recipe("a", headers, BODY + b" ")
    assert not recipe("a", {**headers, "X-Hatched-Timestamp": str(now - 1000)}, BODY)
    assert not recipe("a", {**headers, "X-Hatched-Timestamp": "-5"}, BODY)


def test_backoff_doubles_to_the_cap_and_covers_an_hour() -> None:
    policy = RetryPolicy()
    assert [policy.nominal_delay_ms(n) for n in range(1, 6)] == [1000, 2000, 4000, 8000, 16000]
    assert policy.nominal_delay_ms(11) == policy.nominal_delay_ms(15) == 600_000
    assert policy.min_span_ms() >= 3_600_000
    assert policy.nominal_delay_ms(10_000) == 600_000
    with pytest.raises(ValueError):
        policy.nominal_delay_ms(0)


def test_jitter_only_lengthens_and_stays_bounded() -> None:
    policy = RetryPolicy(base_ms=1000, cap_ms=8000, max_attempts=5, jitter=0.2)
    assert policy.delay_ms(1, 0.0) == 1000
    assert policy.delay_ms(1, 0.999) == 1199
    assert policy.delay_ms(3, 0.5) == 4400
    assert policy.next_attempt_at(1, 10_000, 0.0) == 11_000
    assert policy.next_attempt_at(4, 10_000, 0.0) == 18_000
    assert policy.next_attempt_at(5, 10_000, 0.0) is None  # five attempts made: give up


@pytest.mark.parametrize("kwargs", [{"base_ms": 0}, {"base_ms": 10, "cap_ms": 5}, {"max_attempts": 0},
                                    {"jitter": 1.5}])
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_only_2xx_is_delivered() -> None:
    assert delivered(200) and delivered(204) and delivered(299)
    assert not any(delivered(code) for code in (None, 100, 301, 304, 400, 410, 429, 500, 503))


@pytest.mark.parametrize(("url", "problem"), [
    ("https://hooks.example/x?a=1", None),
    ("http://127.0.0.1:8080/hook", None),
    ("ftp://hooks.example/x", "http or https"),
    ("hooks.example/x", "http or https"),
    ("https://", "host"),
    ("https://u:p@hooks.example/", "credentials"),
    ("https://hooks.example:99999/", "valid URL"),
    ("https://hooks.example/a b", "whitespace"),
])
def test_url_checks(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_repeated_event_types_are_refused() -> None:
    assert events_problem(["coins.earned", "badge.awarded"]) is None
    assert "coins.earned" in (events_problem(["coins.earned", "coins.earned"]) or "")
    assert "webhook.test" not in EVENT_TYPES


def _record(**effects: object) -> dict:
    base = {"coins": 0, "badges_awarded": [], "tokens": [], "skills": [], "streaks": [], "evolution_ready": False}
    return {"event_id": "evt_1", "user_id": "u1", "type": "lesson_completed", "request_id": "req_1",
            "effects": {**base, **effects},
            "buddies": [{"buddy_id": "bdy_1", "effects": {**base, **effects}, "skipped": [],
                         "evolution": {"ready": effects.get("evolution_ready", False), "current_stage": 1,
                                       "next_stage": 2}},
                        {"buddy_id": "bdy_archived", "effects": None, "skipped": [], "evolution": None}]}


def test_an_ingested_event_maps_to_its_webhooks() -> None:
    items = events_from_ingest(_record(coins=10, badges_awarded=["first", "second"], evolution_ready=True))
    types = [t for t, _, _ in items]
    assert types == ["coins.earned", "badge.awarded", "badge.awarded", "evolution.ready", "event.processed"]
    coins = items[0][2]
    assert coins == {"event_id": "evt_1", "user_id": "u1", "event_type": "lesson_completed", "buddy_id": "bdy_1",
                     "amount": 10}
    assert [d["badge_key"] for t, _, d in items if t == "badge.awarded"] == ["first", "second"]
    assert items[3][2]["next_stage"] == 2
    assert items[4][2]["buddy_ids"] == ["bdy_1", "bdy_archived"]
    assert len({ident for _, ident, _ in items}) == len(items)
    # Stable ids: the same record maps to the same ids (receivers dedupe on them).
    assert [i for _, i, _ in events_from_ingest(_record(coins=10, badges_awarded=["first", "second"],
                                                        evolution_ready=True))] == [i for _, i, _ in items]


def test_an_event_without_effects_is_only_processed() -> None:
    assert [t for t, _, _ in events_from_ingest(_record())] == ["event.processed"]


def test_operations_map_to_completed_or_failed() -> None:
    op = {"operation_id": "op_1", "type": "hatch", "status": "completed", "buddy_id": "bdy_1"}
    event_type, ident, data = event_from_operation(op) or ("", "", {})
    assert event_type == "operation.completed" and data == op and ident == payload_id("operation.completed", "op_1")
    assert (event_from_operation({**op, "status": "failed"}) or ("",))[0] == "operation.failed"
    assert event_from_operation({**op, "status": "cancelled"}) is None


def test_payload_bytes_are_compact_and_keep_unicode() -> None:
    assert encode_payload({"b": 1, "a": "é"}) == '{"b":1,"a":"é"}'.encode()
