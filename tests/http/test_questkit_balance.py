"""GET /v1/balance and GET /v1/balance/:currency, backed by the user's append-only ledger."""

from __future__ import annotations

from tests.http.questkit_support import QK, START, make_qk_fixture, qk_fixture  # noqa: F401


async def test_no_balances_yet(qk: QK):
    token = await qk.token()
    r = await qk.get(token, "/v1/balance")
    assert r.status_code == 200
    assert r.json() == {"balances": []}
    r = await qk.get(token, "/v1/balance/coins")
    assert r.status_code == 404
    assert r.json()["error"] == "balance_not_found"


async def test_balances_accumulate_per_currency_with_ledger(qk: QK):
    token = await qk.token()
    for _ in range(3):
        await qk.event(token, "app.opened")
    assert (await qk.claim(token, "open-daily")).status_code == 200
    qk.clock.advance(1000)
    assert (await qk.claim(token, "open-weekly")).status_code == 200
    body = (await qk.get(token, "/v1/balance")).json()
    assert body == {"balances": [
        {"userId": "u1", "currency": "coins", "amount": 10, "updatedAt": START},
        {"userId": "u1", "currency": "gems", "amount": 2, "updatedAt": START + 1000},
    ]}
    assert (await qk.get(token, "/v1/balance/gems")).json() == {"balance": body["balances"][1]}
    assert (await qk.get(token, "/v1/balance/gold")).status_code == 404

    # Tomorrow the daily mission can be earned and claimed again: the ledger grows.
    qk.clock.set(START - START % 86_400_000 + 86_400_000)
    token = await qk.token()
    await qk.event(token, "app.opened")
    await qk.event(token, "app.opened")
    claim = (await qk.claim(token, "open-daily")).json()
    assert claim["balance"]["amount"] == 20
    ledger = await qk.user_call("ledger_entries")
    assert [(e["seq"], e["currency"], e["delta"]) for e in ledger] == [(1, "coins", 10), (2, "gems", 2), (3, "coins", 10)]
    assert ledger[0]["ref"] != ledger[2]["ref"]  # one grant per mission and window


async def test_balances_are_per_user(qk: QK):
    alice = await qk.token("alice")
    bob = await qk.token("bob")
    await qk.event(alice, "app.opened", user="alice")
    await qk.event(alice, "app.opened", user="alice")
    await qk.claim(alice, "open-daily")
    assert (await qk.get(alice, "/v1/balance/coins")).json()["balance"]["amount"] == 10
    assert (await qk.get(bob, "/v1/balance/coins")).status_code == 404
    assert (await qk.get(bob, "/v1/balance")).json() == {"balances": []}
