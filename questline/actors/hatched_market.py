"""One customer's marketplace catalog: marketplaces, their items, order and item art seeds.

The catalog is its own actor (one per customer) so browsing and editing the shop
never queues behind config or operation work on the customer actor. It is the
single writer of the catalog, so an import or a reorder is one turn: it commits
whole or not at all. Buddies ask it for an item snapshot inside their purchase
turn; it never calls a buddy, so that call cannot deadlock.
"""

from __future__ import annotations

import secrets
from typing import Any

from questline.engine import Actor, Address
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_market import MAX_ITEMS_PER_MARKETPLACE, check_reorder, check_skus
from questline.rules.hatched_models import iso_ms

API = "/api/v1"


def market_address(customer_id: str) -> Address:
    return Address("hatched.market", customer_id)


def item_image_url(marketplace_id: str, item_id: str, version: int) -> str:
    """Versioned so a regenerated image is a new URL (caches never show the old art)."""
    return f"{API}/marketplaces/{marketplace_id}/items/{item_id}/art.svg?v={version}"


class MarketActor(Actor):
    kind = "hatched.market"

    # -- marketplaces ------------------------------------------------------------------
    def _market(self, marketplace_id: str) -> dict[str, Any]:
        record = self.storage.get(f"mkt:{marketplace_id}")
        if record is None:
            raise not_found("marketplace", marketplace_id)
        return record

    def _market_view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": record["id"],
            "name": record["name"],
            "description": record["description"],
            "active": record["active"],
            "currency": "coins",
            "item_count": len(self.storage.get(f"items:{record['id']}", [])),
            "created_at": iso_ms(record["created_at"]),
            "updated_at": iso_ms(record["updated_at"]),
        }

    def create_marketplace(self, body: dict[str, Any]) -> dict[str, Any]:
        record = {"id": f"mkt_{secrets.token_hex(8)}", **body, "created_at": self.now(), "updated_at": self.now()}
        self.storage.put(f"mkt:{record['id']}", record)
        self.storage.put("mkt_ids", [*self.storage.get("mkt_ids", []), record["id"]])
        return self._market_view(record)

    def list_marketplaces(self) -> list[dict[str, Any]]:
        return [self._market_view(self._market(i)) for i in self.storage.get("mkt_ids", [])]

    def get_marketplace(self, marketplace_id: str) -> dict[str, Any]:
        return self._market_view(self._market(marketplace_id))

    def update_marketplace(self, marketplace_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        record = self._market(marketplace_id)
        record.update(fields, updated_at=self.now())
        self.storage.put(f"mkt:{marketplace_id}", record)
        return self._market_view(record)

    # -- items ---------------------------------------------------------------------------
    def _item(self, marketplace_id: str, item_id: str) -> dict[str, Any]:
        self._market(marketplace_id)
        item = self.storage.get(f"item:{item_id}")
        if item is None or item["marketplace_id"] != marketplace_id:
            raise not_found("item", item_id)
        return item

    def _item_view(self, item: dict[str, Any], position: int | None = None) -> dict[str, Any]:
        if position is None:
            position = self.storage.get(f"items:{item['marketplace_id']}", []).index(item["item_id"])
        return {
            "item_id": item["item_id"],
            "marketplace_id": item["marketplace_id"],
            "name": item["name"],
            "description": item["description"],
            "price": item["price"],
            "currency": "coins",
            "slot": item["slot"],
            "category": item["category"],
            "sku": item["sku"],
            "visibility": item["visibility"],
            "requirements": item["requirements"],
            "requirement_set": item["requirement_set"],
            "metadata": item["metadata"],
            "position": position,
            "image_url": item_image_url(item["marketplace_id"], item["item_id"], item["image_version"]),
            "created_at": iso_ms(item["created_at"]),
            "updated_at": iso_ms(item["updated_at"]),
        }

    def _skus(self, marketplace_id: str) -> dict[str, str]:
        return self.storage.get(f"skus:{marketplace_id}", {})

    def _put_item(self, item: dict[str, Any], previous_sku: str | None) -> None:
        skus = self._skus(item["marketplace_id"])
        if previous_sku and skus.get(previous_sku) == item["item_id"]:
            del skus[previous_sku]
        if item["sku"]:
            skus[item["sku"]] = item["item_id"]
        self.storage.put(f"skus:{item['marketplace_id']}", skus)
        self.storage.put(f"item:{item['item_id']}", item)

    def _new_items(self, marketplace_id: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate a batch against the catalog, then write every item (or none: raise first)."""
        self._market(marketplace_id)
        order: list[str] = self.storage.get(f"items:{marketplace_id}", [])
        if len(order) + len(bodies) > MAX_ITEMS_PER_MARKETPLACE:
            raise HatchedError(409, "marketplace_full",
                               f"A marketplace holds at most {MAX_ITEMS_PER_MARKETPLACE} items.",
                               {"max": MAX_ITEMS_PER_MARKETPLACE, "current": len(order), "adding": len(bodies)})
        errors = check_skus(self._skus(marketplace_id), bodies)
        if errors:
            raise HatchedError(409, "duplicate_sku", "Some items reuse a sku; nothing was written.",
                               {"items": errors})
        now = self.now()
        items = []
        for body in bodies:
            item_id = f"itm_{secrets.token_hex(8)}"
            item = {**body, "item_id": item_id, "marketplace_id": marketplace_id, "image_seed": item_id,
                    "image_version": 1, "created_at": now, "updated_at": now}
            self._put_item(item, None)
            order.append(item_id)
            items.append(item)
        self.storage.put(f"items:{marketplace_id}", order)
        return [self._item_view(item, order.index(item["item_id"])) for item in items]

    def create_item(self, marketplace_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._new_items(marketplace_id, [body])[0]

    def import_items(self, marketplace_id: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """All or nothing: one turn, every check before the first write."""
        return self._new_items(marketplace_id, bodies)

    def list_items(self, marketplace_id: str) -> list[dict[str, Any]]:
        """In the marketplace's order (what reorder set)."""
        self._market(marketplace_id)
        order: list[str] = self.storage.get(f"items:{marketplace_id}", [])
        return [self._item_view(self.storage.get(f"item:{i}"), n) for n, i in enumerate(order)]

    def get_item(self, marketplace_id: str, item_id: str) -> dict[str, Any]:
        return self._item_view(self._item(marketplace_id, item_id))

    def update_item(self, marketplace_id: str, item_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        item = self._item(marketplace_id, item_id)
        previous_sku = item["sku"]
        item.update(fields, updated_at=self.now())
        errors = check_skus(self._skus(marketplace_id), [item])
        if errors:
            raise HatchedError(409, "duplicate_sku", errors[0]["errors"][0], {"items": errors})
        self._put_item(item, previous_sku)
        return self._item_view(item)

    def delete_item(self, marketplace_id: str, item_id: str) -> dict[str, Any]:
        """Gone from the catalog; buddies that own it keep their copy."""
        item = self._item(marketplace_id, item_id)
        skus = self._skus(marketplace_id)
        if item["sku"] and skus.get(item["sku"]) == item_id:
            del skus[item["sku"]]
            self.storage.put(f"skus:{marketplace_id}", skus)
        self.storage.delete(f"item:{item_id}")
        order = [i for i in self.storage.get(f"items:{marketplace_id}", []) if i != item_id]
        self.storage.put(f"items:{marketplace_id}", order)
        return {"item_id": item_id, "deleted": True}

    def reorder_items(self, marketplace_id: str, item_ids: list[str]) -> list[dict[str, Any]]:
        self._market(marketplace_id)
        check_reorder(self.storage.get(f"items:{marketplace_id}", []), item_ids)
        self.storage.put(f"items:{marketplace_id}", list(item_ids))
        return self.list_items(marketplace_id)

    # -- art -------------------------------------------------------------------------------
    def regenerate_image(self, marketplace_id: str, item_id: str) -> dict[str, Any]:
        """A new seed, hence new art and a new URL; the old art is not kept."""
        item = self._item(marketplace_id, item_id)
        item["image_version"] += 1
        item["image_seed"] = f"{item_id}:{item['image_version']}"
        item["updated_at"] = self.now()
        self.storage.put(f"item:{item_id}", item)
        return self._item_view(item)

    def item_art(self, marketplace_id: str, item_id: str) -> dict[str, Any]:
        item = self._item(marketplace_id, item_id)
        return {"seed": item["image_seed"], "slot": item["slot"], "name": item["name"]}

    # -- buddies ask -------------------------------------------------------------------------
    def storefront(self, marketplace_id: str | None) -> dict[str, Any]:
        """A marketplace and its items in order, with whether it sells (None: the first active one)."""
        if marketplace_id is None:
            active = [i for i in self.storage.get("mkt_ids", []) if self._market(i)["active"]]
            if not active:
                raise HatchedError(404, "marketplace_not_found", "This customer has no active marketplace.")
            marketplace_id = active[0]
        market = self._market(marketplace_id)
        items = [{**item, "marketplace_active": market["active"]} for item in self.list_items(marketplace_id)]
        return {"marketplace": self._market_view(market), "items": items}

    def item_snapshot(self, item_id: str, marketplace_id: str | None) -> dict[str, Any]:
        """What a buddy needs to check and record a purchase or unlock (read-only)."""
        item = self.storage.get(f"item:{item_id}")
        if item is None or (marketplace_id is not None and item["marketplace_id"] != marketplace_id):
            raise not_found("item", item_id)
        market = self._market(item["marketplace_id"])
        view = self._item_view(item)
        return {**view, "marketplace_active": market["active"]}
