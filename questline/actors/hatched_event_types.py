"""The registry of a Hatched customer's event types (``/event-types``).

One actor per customer owns the registry, so "a name is registered at most once"
holds by construction (every create and rename is one turn). Registration is
documentation and dashboard structure, not a gate: ``POST /events`` accepts any
type, and the seen-type statistics live with the event log partitions; the HTTP
layer joins the two so ``GET /event-types`` and ``GET /events/types`` agree.
"""

from __future__ import annotations

import secrets
from typing import Any

from questline.engine import Actor, Address
from questline.rules.hatched_errors import HatchedError, not_found
from questline.rules.hatched_models import iso_ms

MAX_EVENT_TYPES = 500


def event_types_address(customer_id: str) -> Address:
    return Address("hatched.event_types", customer_id)


class EventTypesActor(Actor):
    kind = "hatched.event_types"

    def _all(self) -> dict[str, dict[str, Any]]:
        return self.storage.get("types", {})

    @staticmethod
    def _view(record: dict[str, Any]) -> dict[str, Any]:
        return {"id": record["id"], "name": record["name"], "description": record["description"],
                "created_at": iso_ms(record["created_at"]), "updated_at": iso_ms(record["updated_at"])}

    @staticmethod
    def _taken(types: dict[str, dict[str, Any]], name: str, other_than: str | None) -> None:
        for record in types.values():
            if record["name"] == name and record["id"] != other_than:
                raise HatchedError(409, "event_type_exists", f"An event type named {name} is already registered.",
                                   {"id": record["id"], "name": name})

    def create(self, name: str, description: str | None) -> dict[str, Any]:
        types = self._all()
        self._taken(types, name, None)
        if len(types) >= MAX_EVENT_TYPES:
            raise HatchedError(409, "event_type_limit", f"At most {MAX_EVENT_TYPES} event types can be registered.",
                               {"max": MAX_EVENT_TYPES})
        now = self.now()
        record = {"id": f"evtype_{secrets.token_hex(8)}", "name": name, "description": description,
                  "created_at": now, "updated_at": now}
        types[record["id"]] = record
        self.storage.put("types", types)
        return self._view(record)

    def list_types(self) -> list[dict[str, Any]]:
        """Oldest first, so a dashboard list does not reshuffle when one is added."""
        return [self._view(r) for r in sorted(self._all().values(), key=lambda r: (r["created_at"], r["id"]))]

    def get(self, type_id: str) -> dict[str, Any]:
        record = self._all().get(type_id)
        if record is None:
            raise not_found("event_type", type_id)
        return self._view(record)

    def replace(self, type_id: str, name: str, description: str | None) -> dict[str, Any]:
        """PUT: the new name and description (a rename keeps the id)."""
        types = self._all()
        record = types.get(type_id)
        if record is None:
            raise not_found("event_type", type_id)
        self._taken(types, name, type_id)
        record.update(name=name, description=description, updated_at=self.now())
        self.storage.put("types", types)
        return self._view(record)

    def delete(self, type_id: str) -> dict[str, Any]:
        types = self._all()
        record = types.pop(type_id, None)
        if record is None:
            raise not_found("event_type", type_id)
        self.storage.put("types", types)
        return self._view(record)
