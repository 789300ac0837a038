"""Buddy turns for items: purchase, unlock, purchased list, eligibility and equip.

A mixin of ``BuddyActor`` (one actor, one owner): a purchase debits coins, appends
the ledger row and grants the item in the same turn, so it happens whole or not
at all, and because the buddy's turns are serialised, concurrent purchases can
never spend the same coins twice. The HTTP routes and the widget call these
turns; the checks live in ``rules/hatched_market.py``.

Owned items are a snapshot taken when acquired (name, slot, price paid), so a
later catalog edit or delete never changes what a buddy owns or wears.
"""

from __future__ import annotations

from typing import Any

from questline.actors.hatched_buddy_host import BuddyHost
from questline.actors.hatched_market import market_address
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_market import (
    BuddyFacts,
    apply_equip,
    check_purchase,
    item_unmet,
    visible_to,
)
from questline.rules.hatched_models import iso_ms


class ItemTurns(BuddyHost):
    """Purchase, unlock and equip turns of a buddy."""

    # -- state the checks read ----------------------------------------------------------
    def _owned(self) -> dict[str, dict[str, Any]]:
        return self.storage.get("items", {})

    def _unlocked_gate_keys(self, buddy: dict[str, Any]) -> list[str]:
        """Gates this buddy has unlocked (the progression mixin owns gates and may override this)."""
        return sorted(self.storage.get("gate_unlocks", {}))

    def _facts(self, buddy: dict[str, Any]) -> BuddyFacts:
        return BuddyFacts(evolution_stage=buddy["evolution_stage"], badges=list(buddy["badges"]),
                          skills=dict(buddy["skills"]), coins_earned=buddy["coins_earned"],
                          tokens=dict(buddy["tokens"]), unlocked_gates=self._unlocked_gate_keys(buddy))

    @staticmethod
    def _config_sets(buddy: dict[str, Any]) -> dict[str, Any]:
        """Requirement sets of the buddy's pinned config version (never the live one)."""
        return buddy.get("config", {}).get("marketplace_requirements", {})

    async def _snapshot(self, item_id: str, marketplace_id: str | None) -> dict[str, Any]:
        """The catalog's current item; the catalog never calls buddies, so this cannot deadlock."""
        return await self.call(market_address(self.key.partition("/")[0]), "item_snapshot", item_id, marketplace_id)

    @staticmethod
    def _owned_view(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "acquired_at": iso_ms(record["acquired_at"])}

    def _grant(self, item: dict[str, Any], via: str, price_paid: int, ledger_id: str | None,
               reason: str) -> dict[str, Any]:
        owned = self._owned()
        record = {"item_id": item["item_id"], "marketplace_id": item["marketplace_id"], "name": item["name"],
                  "slot": item["slot"], "category": item["category"], "image_url": item["image_url"],
                  "acquired_via": via, "price_paid": price_paid, "ledger_entry_id": ledger_id, "reason": reason,
                  "acquired_at": self.now()}
        owned[item["item_id"]] = record
        self.storage.put("items", owned)
        self.storage.put("items_seq", [*self.storage.get("items_seq", []), item["item_id"]])
        return record

    # -- purchase and unlock -----------------------------------------------------------------
    async def purchase(self, item_id: str, marketplace_id: str | None,
                       idempotency_key: str | None) -> dict[str, Any]:
        """Check, debit, ledger and grant in one turn; any refusal writes nothing.

        A retried request with the same idempotency key answers what the first one did.
        """
        request = {"op": "purchase", "item_id": item_id, "marketplace_id": marketplace_id}
        replay = self._remembered(idempotency_key, request)
        if replay is not None:
            return replay
        self._active()
        item = await self._snapshot(item_id, marketplace_id)
        buddy = self._active()
        check_purchase(item, self._facts(buddy), buddy["coins"], item_id in self._owned(), self._config_sets(buddy))
        row = None
        if item["price"] > 0:
            buddy["coins"] -= item["price"]
            row = self._append_ledger("coins", -item["price"], buddy["coins"], f"purchase:{item_id}",
                                      "marketplace", idempotency_key or item_id)
        record = self._grant(item, "purchase", item["price"], row["id"] if row else None, "purchase")
        view = self._save(buddy)
        response = {"buddy_id": view["buddy_id"], "item": self._owned_view(record), "coins": buddy["coins"],
                    "ledger_entry": row}
        self._remember(idempotency_key, request, response)
        return response

    async def unlock_item(self, item_id: str, marketplace_id: str | None, reason: str,
                          idempotency_key: str | None) -> dict[str, Any]:
        """Grant without coins or requirement checks (admin, migration, campaign); hidden items too."""
        request = {"op": "unlock", "item_id": item_id, "marketplace_id": marketplace_id, "reason": reason}
        replay = self._remembered(idempotency_key, request)
        if replay is not None:
            return replay
        self._active()
        item = await self._snapshot(item_id, marketplace_id)
        buddy = self._active()
        if item_id in self._owned():
            raise HatchedError(409, "item_already_owned", f"The buddy already owns item {item_id}.",
                               {"item_id": item_id})
        record = self._grant(item, "unlock", 0, None, reason)
        view = self._save(buddy)
        response = {"buddy_id": view["buddy_id"], "item": self._owned_view(record), "coins": buddy["coins"]}
        self._remember(idempotency_key, request, response)
        return response

    def purchased_items(self) -> list[dict[str, Any]]:
        """Everything the buddy owns (bought or unlocked), newest first, with whether it is worn."""
        buddy = self._buddy()
        owned = self._owned()
        worn = set(buddy["equipped_items"])
        ids = list(reversed(self.storage.get("items_seq", [])))
        return [{**self._owned_view(owned[i]), "equipped": i in worn} for i in ids if i in owned]

    def item_eligibility(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """For catalog items: owned, visible to this buddy, purchasable now and why not.

        ``purchasable`` runs the very check a purchase runs, so the two cannot disagree.
        """
        buddy = self._buddy()
        facts, sets, owned = self._facts(buddy), self._config_sets(buddy), self._owned()
        out = []
        for item in items:
            missing = item_unmet(item, facts, sets)
            try:
                check_purchase(item, facts, buddy["coins"], item["item_id"] in owned, sets)
                refusal = None
            except HatchedError as exc:
                refusal = exc.code
            out.append({"item_id": item["item_id"], "owned": item["item_id"] in owned,
                        "visible": visible_to(item, missing), "requirements_met": not missing, "unmet": missing,
                        "affordable": buddy["coins"] >= item["price"], "purchasable": refusal is None,
                        "refusal": refusal})
        return out

    async def storefront(self, marketplace_id: str | None) -> dict[str, Any]:
        """What this buddy's marketplace widget shows: the items visible to it, each with its eligibility.

        ``marketplace_id`` None means the customer's first active marketplace.
        """
        self._buddy()
        shop = await self.call(market_address(self.key.partition("/")[0]), "storefront", marketplace_id)
        eligibility = self.item_eligibility(shop["items"])
        items = [{**item, "eligibility": e} for item, e in zip(shop["items"], eligibility, strict=True)
                 if e["visible"]]
        buddy = self._buddy()
        return {"marketplace": shop["marketplace"], "buddy_id": buddy["buddy_id"], "coins": buddy["coins"],
                "items": items}

    # -- equip -----------------------------------------------------------------------------------
    def equipped(self) -> dict[str, Any]:
        buddy = self._buddy()
        owned = self._owned()
        return {"buddy_id": buddy["buddy_id"], "equipped_items": list(buddy["equipped_items"]),
                "items": [self._owned_view(owned[i]) for i in buddy["equipped_items"] if i in owned],
                "image_url": f"/api/v1/buddies/{buddy['buddy_id']}/art.svg"}

    def check_equip(self, equip: list[str], unequip: list[str]) -> dict[str, Any]:
        """Before an equip operation starts: the buddy exists and is active (ownership is
        checked when the operation runs, because a purchase may land in between)."""
        buddy = self._active()
        return {"buddy_id": buddy["buddy_id"], "equip": list(dict.fromkeys(equip)),
                "unequip": list(dict.fromkeys(unequip))}

    def run_equip_item(self, operation_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """The equip_item operation's work, once per operation id (a re-run answers the first result)."""
        done = self.storage.get(f"op_equip:{operation_id}")
        if done is not None:
            return done
        buddy = self._active()
        change = apply_equip(list(buddy["equipped_items"]), self._owned(), request.get("equip", []),
                             request.get("unequip", []))
        buddy["equipped_items"] = change["equipped_items"]
        view = self._save(buddy)
        result = {"buddy": view, "result": {"buddy_id": view["buddy_id"], **change, "image_url": view["image_url"]}}
        self.storage.put(f"op_equip:{operation_id}", result)
        return result
