"""Append-only currency ledger: credits, debits, no negative balances, projections."""

from __future__ import annotations

import json

import msgspec
import pytest

from questline.rules.ledger import (
    InsufficientFunds,
    LedgerEntry,
    Wallet,
    apply,
    balance,
    balances,
    post,
    project,
    replay,
)


def entry(delta: int | float, currency: str = "coins", seq: int = 1, at: int = 100) -> LedgerEntry:
    return LedgerEntry(seq=seq, currency=currency, delta=delta, reason="test", ref="r", at=at)


def test_apply_credits_without_mutating_the_input() -> None:
    before = {"coins": 5}
    after = apply(before, entry(10))
    assert after == {"coins": 15}
    assert before == {"coins": 5}


def test_apply_starts_unknown_currencies_at_zero() -> None:
    assert apply({}, entry(3, "gems")) == {"gems": 3}


def test_debit_down_to_exactly_zero_is_allowed() -> None:
    assert apply({"coins": 10}, entry(-10)) == {"coins": 0}


def test_overdraw_is_refused_and_changes_nothing() -> None:
    before = {"coins": 10}
    with pytest.raises(InsufficientFunds) as info:
        apply(before, entry(-11))
    assert (info.value.currency, info.value.balance, info.value.delta) == ("coins", 10, -11)
    assert before == {"coins": 10}
    with pytest.raises(InsufficientFunds):
        apply({}, entry(-1))


def test_int_amounts_stay_exact_ints() -> None:
    result = apply({"coins": 10**20}, entry(1))
    assert result["coins"] == 10**20 + 1 and type(result["coins"]) is int


def test_a_float_amount_makes_the_balance_float() -> None:
    result = apply({"coins": 1}, entry(0.5))
    assert result["coins"] == 1.5 and type(result["coins"]) is float


def test_float_drift_does_not_block_a_legitimate_spend() -> None:
    wallet = Wallet()
    for _ in range(10):
        wallet, _ = post(wallet, "gems", 0.1, "grant", "g", 1)
    assert wallet.balances["gems"] == 1.0
    wallet, _ = post(wallet, "gems", -1.0, "spend", "s", 2)
    assert wallet.balances["gems"] == 0


@pytest.mark.parametrize("delta", [True, "5", None, float("nan"), float("inf")])
def test_bad_deltas_are_rejected(delta: object) -> None:
    with pytest.raises(ValueError, match="finite number"):
        apply({}, entry(delta))  # type: ignore[arg-type]


def test_post_numbers_entries_and_tracks_update_times() -> None:
    wallet = Wallet()
    wallet, first = post(wallet, "coins", 50, "mission.claim", "m1", 1000)
    wallet, second = post(wallet, "gems", 2, "mission.claim", "m2", 2000)
    wallet, third = post(wallet, "coins", -20, "shop.buy", "sku1", 3000)
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert wallet == Wallet(
        balances={"coins": 30, "gems": 2}, updated_at={"coins": 3000, "gems": 2000}, last_seq=3
    )


def test_refused_post_leaves_the_wallet_alone() -> None:
    wallet, _ = post(Wallet(), "coins", 5, "grant", "g", 1)
    with pytest.raises(InsufficientFunds):
        post(wallet, "coins", -6, "spend", "s", 2)
    assert wallet.balances == {"coins": 5} and wallet.last_seq == 1


def test_balance_projection() -> None:
    wallet, _ = post(Wallet(), "gems", 5, "grant", "g", 10)
    wallet, _ = post(wallet, "coins", 3, "grant", "g", 20)
    wallet, _ = post(wallet, "gems", -5, "spend", "s", 30)
    assert balance(wallet, "u", "tokens") is None  # never held: 404 balance_not_found
    spent = balance(wallet, "u", "gems")
    assert spent is not None
    assert json.loads(msgspec.json.encode(spent)) == {
        "userId": "u",
        "currency": "gems",
        "amount": 0,
        "updatedAt": 30,
    }
    assert [b.currency for b in balances(wallet, "u")] == ["coins", "gems"]
    assert balances(Wallet(), "u") == []


def test_replay_and_project_rebuild_the_wallet() -> None:
    wallet, entries = Wallet(), []
    for currency, delta, at in [("coins", 10, 1), ("gems", 1, 2), ("coins", -4, 3)]:
        wallet, e = post(wallet, currency, delta, "r", "ref", at)
        entries.append(e)
    assert replay(entries) == wallet
    assert project("u", entries) == balances(wallet, "u")


def test_replay_rejects_gaps_and_reordering() -> None:
    with pytest.raises(ValueError, match="seq 2 after 0"):
        replay([entry(1, seq=2)])
    with pytest.raises(ValueError, match="seq 1 after 1"):
        replay([entry(1, seq=1), entry(1, seq=1)])


def test_entries_and_wallet_survive_msgpack() -> None:
    wallet, e = post(Wallet(), "coins", 2.5, "grant", "g", 1)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(e), type=LedgerEntry) == e
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(wallet), type=Wallet) == wallet
