"""Append-only currency ledger and the balances projected from it.

Every change to a balance is a ``LedgerEntry`` (who/what/why), so balances can be
audited and rebuilt by replay; the ``Wallet`` is the projection the user's actor
keeps so reads do not replay the whole history.

Amounts keep the type the catalog gives them: integer rewards stay exact Python
ints (the recommended choice -- no rounding, no size limit); a float amount
makes that balance a float from then on. Float sums are rounded to 9 decimals so
that binary drift (ten grants of 0.1 summing to 0.9999999999999999) cannot make
a legitimate spend of 1.0 fail with InsufficientFunds. Balances never go below
zero: an entry that would is refused, and the caller's turn changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import msgspec

from questline.rules.filters import is_number
from questline.rules.questkit_models import Balance

Amount = int | float

FLOAT_DECIMALS = 9


class InsufficientFunds(Exception):
    """The entry would take a balance below zero."""

    def __init__(self, currency: str, balance: Amount, delta: Amount) -> None:
        super().__init__(f"{currency} balance {balance} cannot cover {delta}")
        self.currency = currency
        self.balance = balance
        self.delta = delta


class LedgerEntry(msgspec.Struct, rename="camel", frozen=True):
    """One balance change. ``reason`` says what kind (``mission.claim``), ``ref`` which one."""

    seq: int  # 1, 2, 3 ... per user; gaps or reordering mean a corrupted ledger
    currency: str
    delta: Amount
    reason: str
    ref: str
    at: int  # Unix ms


class Wallet(msgspec.Struct, rename="camel"):
    """Balances per currency, when each last changed, and the last entry's seq.

    A currency stays present once held, even at 0: "never held" (404
    ``balance_not_found``) and "spent to zero" are different answers.
    """

    balances: dict[str, Amount] = msgspec.field(default_factory=dict)
    updated_at: dict[str, int] = msgspec.field(default_factory=dict)
    last_seq: int = 0


def add_amounts(a: Amount, b: Amount) -> Amount:
    """``a + b`` keeping ints exact and rounding float drift away."""
    total = a + b
    if isinstance(total, float):
        total = round(total, FLOAT_DECIMALS)
    return total


def _check_delta(delta: object) -> None:
    if not is_number(delta) or not math.isfinite(delta):  # type: ignore[arg-type]
        raise ValueError(f"ledger delta must be a finite number, got {delta!r}")


def apply(balances: Mapping[str, Amount], entry: LedgerEntry) -> dict[str, Amount]:
    """New balances after ``entry`` (the input is not modified); InsufficientFunds below 0."""
    _check_delta(entry.delta)
    current = balances.get(entry.currency, 0)
    new = add_amounts(current, entry.delta)
    if new < 0:
        raise InsufficientFunds(entry.currency, current, entry.delta)
    result = dict(balances)
    result[entry.currency] = new
    return result


def replay(entries: Iterable[LedgerEntry]) -> Wallet:
    """Rebuild the wallet from the full ledger; ValueError if seqs are not 1, 2, 3, ..."""
    wallet = Wallet()
    for entry in entries:
        if entry.seq != wallet.last_seq + 1:
            raise ValueError(f"ledger seq {entry.seq} after {wallet.last_seq}")
        wallet = _apply_to_wallet(wallet, entry)
    return wallet


def _apply_to_wallet(wallet: Wallet, entry: LedgerEntry) -> Wallet:
    balances = apply(wallet.balances, entry)
    updated_at = dict(wallet.updated_at)
    updated_at[entry.currency] = entry.at
    return Wallet(balances=balances, updated_at=updated_at, last_seq=entry.seq)


def post(
    wallet: Wallet, currency: str, delta: Amount, reason: str, ref: str, at: int
) -> tuple[Wallet, LedgerEntry]:
    """Append one entry: the new wallet and the entry to journal (both or neither)."""
    if not currency:
        raise ValueError("currency must not be empty")
    entry = LedgerEntry(
        seq=wallet.last_seq + 1, currency=currency, delta=delta, reason=reason, ref=ref, at=at
    )
    return _apply_to_wallet(wallet, entry), entry


def balance(wallet: Wallet, user_id: str, currency: str) -> Balance | None:
    """The Balance for one currency, or None if the user never held it."""
    if currency not in wallet.balances:
        return None
    return Balance(
        user_id=user_id,
        currency=currency,
        amount=wallet.balances[currency],
        updated_at=wallet.updated_at.get(currency, 0),
    )


def balances(wallet: Wallet, user_id: str) -> list[Balance]:
    """All balances the user holds, sorted by currency (stable output for GET /v1/balance)."""
    result: list[Balance] = []
    for currency in sorted(wallet.balances):
        found = balance(wallet, user_id, currency)
        if found is not None:
            result.append(found)
    return result


def project(user_id: str, entries: Iterable[LedgerEntry]) -> list[Balance]:
    """Balances straight from the ledger (audit / rebuild path)."""
    return balances(replay(entries), user_id)
