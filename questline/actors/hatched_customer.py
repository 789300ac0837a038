"""One Hatched customer (tenant): profile, API key metadata, config versions, catalog.

The customer actor is the single writer of its configuration, so "exactly one
published version" and "publish never mutates an existing version" hold by
construction: every transition is one turn. It is off the event hot path --
buddies carry a copy of their pinned config, so ingesting events never calls it.
"""

from __future__ import annotations

import secrets
from typing import Any

from questline.actors.hatched_auth import keyindex_address
from questline.engine import Actor, Address
from questline.rules.hatched_config import (
    diff_content,
    impact_summary,
    preset_content,
    validate_content,
)
from questline.rules.hatched_errors import HatchedError, invalid_transition, not_found
from questline.rules.hatched_models import (
    KEYED_SECTIONS,
    ConfigContent,
    content_from_builtins,
    content_to_builtins,
    iso_ms,
)


def customer_address(customer_id: str) -> Address:
    return Address("hatched.customer", customer_id)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class CustomerActor(Actor):
    kind = "hatched.customer"

    # -- profile -------------------------------------------------------------------
    def init(self, profile: dict[str, Any]) -> dict[str, Any]:
        """Create the customer once; a repeated call returns what exists (safe to retry)."""
        existing = self.storage.get("profile")
        if existing is not None:
            return self._profile_view(existing)
        record = {**profile, "customer_id": self.key, "plan": profile.get("plan", "free"),
                  "settings": profile.get("settings", {}), "created_at": self.now()}
        self.storage.put("profile", record)
        return self._profile_view(record)

    def profile(self) -> dict[str, Any]:
        return self._profile_view(self._require_profile())

    def _require_profile(self) -> dict[str, Any]:
        profile = self.storage.get("profile")
        if profile is None:
            raise not_found("customer", self.key)
        return profile

    def _profile_view(self, profile: dict[str, Any]) -> dict[str, Any]:
        return {
            "customer_id": profile["customer_id"],
            "email": profile.get("email"),
            "name": profile.get("name"),
            "plan": profile["plan"],
            "settings": profile["settings"],
            "active_config_version_id": self.storage.get("published_id"),
            "created_at": iso_ms(profile["created_at"]),
        }

    # -- API keys ------------------------------------------------------------------
    async def add_key(self, meta: dict[str, Any], index_record: dict[str, Any]) -> dict[str, Any]:
        """Record a new key and register its verifier (inside this turn, so a key is
        usable the moment its creation is acknowledged)."""
        self._require_profile()
        keys: dict[str, Any] = self.storage.get("keys", {})
        record = {**meta, "created_at": self.now(), "revoked_at": None}
        await self.call(keyindex_address(meta["id"]), "register", index_record)
        keys[meta["id"]] = record
        self.storage.put("keys", keys)
        return self._key_view(record)

    def list_keys(self) -> list[dict[str, Any]]:
        keys: dict[str, Any] = self.storage.get("keys", {})
        live = [k for k in keys.values() if k["revoked_at"] is None]
        return [self._key_view(k) for k in sorted(live, key=lambda k: k["created_at"], reverse=True)]

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        keys: dict[str, Any] = self.storage.get("keys", {})
        record = keys.get(key_id)
        if record is None or record["revoked_at"] is not None:
            raise not_found("api_key", key_id)
        await self.call(keyindex_address(key_id), "revoke")
        record["revoked_at"] = self.now()
        self.storage.put("keys", keys)
        return self._key_view(record)

    async def rotate_keys(self, meta: dict[str, Any], index_record: dict[str, Any]) -> dict[str, Any]:
        """Revoke every live secret key, then issue the new one (publishable keys stay)."""
        keys: dict[str, Any] = self.storage.get("keys", {})
        revoked: list[str] = []
        for key_id, record in keys.items():
            if record["revoked_at"] is None and record["type"] == "secret":
                await self.call(keyindex_address(key_id), "revoke")
                record["revoked_at"] = self.now()
                revoked.append(key_id)
        self.storage.put("keys", keys)
        view = await self.add_key(meta, index_record)
        return {**view, "revoked_key_ids": revoked}

    @staticmethod
    def _key_view(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": record["id"],
            "name": record["name"],
            "type": record["type"],
            "environment": record["environment"],
            "prefix": record["prefix"],
            "permissions": record["permissions"],
            "created_at": iso_ms(record["created_at"]),
            "revoked_at": iso_ms(record["revoked_at"]) if record["revoked_at"] else None,
        }

    # -- config versions -----------------------------------------------------------
    def _version(self, version_id: str) -> dict[str, Any]:
        record = self.storage.get(f"cv:{version_id}")
        if record is None:
            raise not_found("config_version", version_id)
        return record

    def _new_version(self, name: str, description: str, content: dict[str, Any], cloned_from: str | None) -> dict[str, Any]:
        draft_id = self.storage.get("draft_id")
        if draft_id is not None:
            raise HatchedError(409, "draft_exists", "A draft config version already exists; edit or publish it first.",
                               {"draft_id": draft_id})
        number = self.storage.get("seq", 0) + 1
        record = {
            "id": new_id("cfg"),
            "version": number,
            "status": "draft",
            "name": name or f"Version {number}",
            "description": description,
            "content": content,
            "cloned_from": cloned_from,
            "created_at": self.now(),
            "updated_at": self.now(),
            "published_at": None,
            "archived_at": None,
        }
        self.storage.put("seq", number)
        self.storage.put(f"cv:{record['id']}", record)
        self.storage.put("cv_ids", [*self.storage.get("cv_ids", []), record["id"]])
        self.storage.put("draft_id", record["id"])
        return record

    def _working_draft(self) -> dict[str, Any]:
        """The draft that section routes edit; made from the published version on first edit."""
        self._require_profile()
        draft_id = self.storage.get("draft_id")
        if draft_id is not None:
            return self._version(draft_id)
        published_id = self.storage.get("published_id")
        base = self._version(published_id)["content"] if published_id else content_to_builtins(ConfigContent())
        return self._new_version("", "", base, published_id)

    def _working_content(self) -> dict[str, Any]:
        """What section reads show: the draft if one exists, else the published version."""
        self._require_profile()
        version_id = self.storage.get("draft_id") or self.storage.get("published_id")
        return self._version(version_id)["content"] if version_id else content_to_builtins(ConfigContent())

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": record["id"],
            "version": record["version"],
            "status": record["status"],
            "name": record["name"],
            "description": record["description"],
            "content": record["content"],
            "cloned_from": record["cloned_from"],
            "created_at": iso_ms(record["created_at"]),
            "updated_at": iso_ms(record["updated_at"]),
            "published_at": iso_ms(record["published_at"]) if record["published_at"] else None,
            "archived_at": iso_ms(record["archived_at"]) if record["archived_at"] else None,
        }

    def create_version(self, name: str, description: str, content: dict[str, Any] | None) -> dict[str, Any]:
        """A new draft: from the given content, else a copy of the published version."""
        self._require_profile()
        published_id = self.storage.get("published_id")
        if content is None:
            base = self._version(published_id)["content"] if published_id else content_to_builtins(ConfigContent())
            return self._view(self._new_version(name, description, base, published_id))
        return self._view(self._new_version(name, description, content, None))

    def list_versions(self, status: str | None) -> list[dict[str, Any]]:
        self._require_profile()
        records = [self._version(i) for i in reversed(self.storage.get("cv_ids", []))]
        return [self._view(r) for r in records if status is None or r["status"] == status]

    def get_version(self, version_id: str) -> dict[str, Any]:
        self._require_profile()
        return self._view(self._version(version_id))

    def update_version(self, version_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Edit a draft; published and archived versions are immutable snapshots."""
        self._require_profile()
        record = self._version(version_id)
        if record["status"] != "draft":
            raise HatchedError(409, "config_version_immutable",
                               f"Config version {version_id} is {record['status']}; only drafts can be edited.",
                               {"status": record["status"]})
        for field in ("name", "description", "content"):
            if patch.get(field) is not None:
                record[field] = patch[field]
        record["updated_at"] = self.now()
        self.storage.put(f"cv:{version_id}", record)
        return self._view(record)

    def clone_version(self, version_id: str, name: str | None) -> dict[str, Any]:
        self._require_profile()
        source = self._version(version_id)
        return self._view(self._new_version(name or f"Copy of {source['name']}", source["description"],
                                            source["content"], version_id))

    def publish_version(self, version_id: str) -> dict[str, Any]:
        """draft -> published; the previous published version -> archived, in one turn."""
        self._require_profile()
        record = self._version(version_id)
        if record["status"] != "draft":
            raise invalid_transition("config_version", version_id, record["status"], "published")
        errors = validate_content(content_from_builtins(record["content"]))
        if errors:
            raise HatchedError(422, "config_invalid", "The draft cannot be published until these are fixed.",
                               {"errors": errors})
        now = self.now()
        previous_id = self.storage.get("published_id")
        if previous_id is not None:
            previous = self._version(previous_id)
            previous["status"] = "archived"
            previous["archived_at"] = now
            self.storage.put(f"cv:{previous_id}", previous)
        record["status"] = "published"
        record["published_at"] = now
        record["updated_at"] = now
        self.storage.put(f"cv:{version_id}", record)
        self.storage.put("published_id", version_id)
        self.storage.delete("draft_id")
        return self._view(record)

    def published_config(self) -> dict[str, Any] | None:
        """``{id, version, content}`` of the live version (eggs and buddies pin this)."""
        published_id = self.storage.get("published_id")
        if published_id is None:
            return None
        record = self._version(published_id)
        return {"id": record["id"], "version": record["version"], "content": record["content"]}

    def version_impact(self, version_id: str) -> dict[str, Any]:
        self._require_profile()
        record = self._version(version_id)
        published_id = self.storage.get("published_id")
        published = content_from_builtins(self._version(published_id)["content"]) if published_id else None
        changes = diff_content(published, content_from_builtins(record["content"]))
        counts: dict[str, int] = self.storage.get("buddy_versions", {})
        total = sum(counts.values())
        on_this = counts.get(version_id, 0)
        return {
            "config_version_id": version_id,
            "status": record["status"],
            "compared_to": published_id,
            "changes": changes,
            "affects_new_buddies": record["status"] == "draft" and bool(changes),
            "affects_existing_buddies": False,
            "existing_buddies": {"total": total, "on_this_version": on_this, "on_other_versions": total - on_this},
            "migration_available": record["status"] == "published" and total - on_this > 0,
            "summary": impact_summary(changes, total - on_this),
        }

    def apply_preset(self, preset_key: str) -> dict[str, Any]:
        """Replace the working draft's content with a preset (making a draft if needed)."""
        content = preset_content(preset_key)
        if content is None:
            raise not_found("preset", preset_key)
        draft = self._working_draft()
        draft["content"] = content_to_builtins(content)
        draft["updated_at"] = self.now()
        self.storage.put(f"cv:{draft['id']}", draft)
        profile = self._require_profile()
        profile["preset"] = preset_key
        self.storage.put("profile", profile)
        return self._view(draft)

    # -- draft sections ------------------------------------------------------------
    def section_list(self, section: str) -> list[dict[str, Any]]:
        items: dict[str, Any] = self._working_content()[section]
        return [{"id": item_id, **item} for item_id, item in items.items()]

    def section_get(self, section: str, item_id: str) -> dict[str, Any]:
        item = self._working_content()[section].get(item_id)
        if item is None:
            raise not_found(section.rstrip("s"), item_id)
        return {"id": item_id, **item}

    def _check_unique(self, section: str, items: dict[str, Any], item: dict[str, Any], item_id: str | None) -> None:
        if section not in KEYED_SECTIONS:
            return
        for other_id, other in items.items():
            if other_id != item_id and other.get("key") == item.get("key"):
                raise HatchedError(409, "duplicate_key", f"{section} already has an item with key {item['key']}.",
                                   {"key": item["key"], "id": other_id})

    def _save_section(self, draft: dict[str, Any], section: str, items: dict[str, Any]) -> None:
        draft["content"][section] = items
        draft["updated_at"] = self.now()
        self.storage.put(f"cv:{draft['id']}", draft)

    def section_create(self, section: str, prefix: str, item: dict[str, Any]) -> dict[str, Any]:
        draft = self._working_draft()
        items: dict[str, Any] = draft["content"][section]
        self._check_unique(section, items, item, None)
        item_id = new_id(prefix)
        items[item_id] = item
        self._save_section(draft, section, items)
        return {"id": item_id, **item}

    def section_update(self, section: str, item_id: str, item: dict[str, Any]) -> dict[str, Any]:
        draft = self._working_draft()
        items: dict[str, Any] = draft["content"][section]
        if item_id not in items:
            raise not_found(section.rstrip("s"), item_id)
        self._check_unique(section, items, item, item_id)
        items[item_id] = item
        self._save_section(draft, section, items)
        return {"id": item_id, **item}

    def section_delete(self, section: str, item_id: str) -> dict[str, Any]:
        draft = self._working_draft()
        items: dict[str, Any] = draft["content"][section]
        if item_id not in items:
            raise not_found(section.rstrip("s"), item_id)
        del items[item_id]
        self._save_section(draft, section, items)
        return {"id": item_id, "deleted": True}

    def section_put(self, section: str, item_key: str, item: dict[str, Any]) -> dict[str, Any]:
        """Upsert by the customer's key (token config, gates)."""
        draft = self._working_draft()
        items: dict[str, Any] = draft["content"][section]
        created = item_key not in items
        items[item_key] = item
        self._save_section(draft, section, items)
        return {"key": item_key, "created": created, **item}

    def section_remove(self, section: str, item_key: str) -> dict[str, Any]:
        draft = self._working_draft()
        items: dict[str, Any] = draft["content"][section]
        if item_key not in items:
            raise not_found(section.rstrip("s"), item_key)
        del items[item_key]
        self._save_section(draft, section, items)
        return {"key": item_key, "deleted": True}


