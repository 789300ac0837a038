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
from questline.actors.hatched_buddy import buddy_address
from questline.actors.hatched_events import user_address
from questline.actors.hatched_webhooks import webhooks_address
from questline.engine import Actor, Address
from questline.rules.hatched_art import traits_for
from questline.rules.hatched_config import (
    diff_content,
    impact_summary,
    preset_content,
    validate_content,
)
from questline.rules.hatched_errors import HatchedError, invalid_transition, not_found
from questline.rules.hatched_lifecycle import (
    ACTIVE_EGG_STATES,
    check_egg,
    check_operation,
    visual_variant,
)
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

    def update_profile(self, fields: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
        """Merge an already validated patch: ``fields`` replace profile fields, each key of
        ``settings`` replaces that setting (None removes it)."""
        profile = self._require_profile()
        profile.update(fields)
        merged = {**profile["settings"], **settings}
        profile["settings"] = {k: v for k, v in merged.items() if v is not None}
        self.storage.put("profile", profile)
        return self._profile_view(profile)

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



    # -- eggs ------------------------------------------------------------------------
    def _egg(self, egg_id: str) -> dict[str, Any]:
        egg = self.storage.get(f"egg:{egg_id}")
        if egg is None:
            raise not_found("egg", egg_id)
        return egg

    @staticmethod
    def _egg_view(egg: dict[str, Any]) -> dict[str, Any]:
        return {
            "egg_id": egg["egg_id"],
            "status": egg["status"],
            "visual_variant": egg["visual_variant"],
            "config_version_id": egg["config_version_id"],
            "user_id": egg["user_id"],
            "buddy_id": egg["buddy_id"],
            "metadata": egg["metadata"],
            "created_at": iso_ms(egg["created_at"]),
        }

    def _user_eggs(self, user_id: str) -> list[dict[str, Any]]:
        ids: list[str] = self.storage.get(f"user_eggs:{user_id}", [])
        return [self._egg(i) for i in ids]

    def create_egg(self, user_id: str, metadata: dict[str, Any], ensure: bool, max_active: int,
                   publish_url: str) -> dict[str, Any]:
        """A waiting egg pinned to the published config; ``ensure`` reuses the newest open one."""
        self._require_profile()
        published_id = self.storage.get("published_id")
        if published_id is None:
            raise HatchedError(409, "no_published_config",
                               "Publish a config version before creating eggs.", {"publish_url": publish_url})
        eggs = self._user_eggs(user_id)
        if ensure:
            reusable = [e for e in eggs if e["status"] in ("waiting", "ready")]
            if reusable:
                return {"egg": self._egg_view(max(reusable, key=lambda e: e["created_at"])), "created": False}
        active = [e for e in eggs if e["status"] in ACTIVE_EGG_STATES]
        if len(active) >= max_active:
            raise HatchedError(
                409, "active_egg_limit",
                f"User {user_id} already has {len(active)} active eggs (max {max_active}); hatch or cancel one, "
                "or retry with ?ensure=true.",
                {"active": [{"egg_id": e["egg_id"], "status": e["status"], "created_at": iso_ms(e["created_at"])}
                            for e in active], "max": max_active},
            )
        egg_id = new_id("egg")
        egg = {"egg_id": egg_id, "status": "waiting", "visual_variant": visual_variant(egg_id),
               "config_version_id": published_id, "user_id": user_id, "buddy_id": None,
               "metadata": metadata, "created_at": self.now()}
        self.storage.put(f"egg:{egg_id}", egg)
        self.storage.put(f"user_eggs:{user_id}", [*self.storage.get(f"user_eggs:{user_id}", []), egg_id])
        self.storage.put("egg_ids", [*self.storage.get("egg_ids", []), egg_id])
        return {"egg": self._egg_view(egg), "created": True}

    def get_egg(self, egg_id: str) -> dict[str, Any]:
        return self._egg_view(self._egg(egg_id))

    def list_eggs(self, user_id: str | None, status: str | None) -> list[dict[str, Any]]:
        ids = self.storage.get(f"user_eggs:{user_id}", []) if user_id else self.storage.get("egg_ids", [])
        eggs = [self._egg(i) for i in ids]
        return [self._egg_view(e) for e in eggs if status is None or e["status"] == status]

    def set_egg_status(self, egg_id: str, status: str) -> dict[str, Any]:
        egg = self._egg(egg_id)
        check_egg(egg_id, egg["status"], status)
        egg["status"] = status
        self.storage.put(f"egg:{egg_id}", egg)
        return self._egg_view(egg)

    def hatch_egg(self, egg_id: str, pending_ms: int, processing_ms: int,
                  request_id: str | None = None) -> dict[str, Any]:
        """ready -> hatching, and a pending hatch operation the alarm will drive."""
        egg = self._egg(egg_id)
        check_egg(egg_id, egg["status"], "hatching")
        egg["status"] = "hatching"
        self.storage.put(f"egg:{egg_id}", egg)
        op = self._new_operation("hatch", {"egg_id": egg_id, "user_id": egg["user_id"], "buddy_id": new_id("bdy")},
                                 pending_ms, processing_ms, request_id)
        egg["operation_id"] = op["id"]
        self.storage.put(f"egg:{egg_id}", egg)
        return self._op_view(op)

    def start_buddy_operation(self, op_type: str, buddy_id: str, request: dict[str, Any], pending_ms: int,
                              processing_ms: int, request_id: str | None = None) -> dict[str, Any]:
        """A pending evolve / equip_item operation on one buddy (checked again when it runs).

        When it runs, the buddy's ``run_<op_type>(operation_id, request)`` turn does the
        work; that turn must be idempotent per operation id, because a crash between the
        buddy's turn and this actor's bookkeeping makes the alarm run it again.
        """
        op = self._new_operation(op_type, {**request, "buddy_id": buddy_id}, pending_ms, processing_ms, request_id)
        return self._op_view(op)

    # -- operations ----------------------------------------------------------------------
    def _new_operation(self, op_type: str, request: dict[str, Any], pending_ms: int, processing_ms: int,
                       request_id: str | None = None) -> dict[str, Any]:
        """``request_id``: the HTTP request that started it, quoted by its webhooks."""
        now = self.now()
        op = {"id": new_id("op"), "type": op_type, "status": "pending", "request": request, "result": None,
              "request_id": request_id,
              "error": None, "created_at": now, "updated_at": now, "completed_at": None,
              "due_at": now + pending_ms, "processing_ms": processing_ms}
        self.storage.put(f"op:{op['id']}", op)
        self.storage.put("op_ids", [*self.storage.get("op_ids", []), op["id"]])
        self.storage.put("op_open", [*self.storage.get("op_open", []), op["id"]])
        self._arm(op["due_at"])
        return op

    def _arm(self, at: int) -> None:
        current = self.get_alarm()
        if current is None or at < current:
            self.set_alarm(at)

    def _op(self, op_id: str) -> dict[str, Any]:
        op = self.storage.get(f"op:{op_id}")
        if op is None:
            raise not_found("operation", op_id)
        return op

    @staticmethod
    def _op_view(op: dict[str, Any]) -> dict[str, Any]:
        return {
            "operation_id": op["id"],
            "type": op["type"],
            "status": op["status"],
            "egg_id": op["request"].get("egg_id"),
            "buddy_id": op["request"].get("buddy_id") if op["status"] == "completed" or op["type"] != "hatch"
            else None,
            "result": op["result"],
            "error": op["error"],
            "created_at": iso_ms(op["created_at"]),
            "updated_at": iso_ms(op["updated_at"]),
            "completed_at": iso_ms(op["completed_at"]) if op["completed_at"] else None,
        }

    def get_operation(self, op_id: str) -> dict[str, Any]:
        return self._op_view(self._op(op_id))

    def list_operations(self, op_type: str | None, status: str | None) -> list[dict[str, Any]]:
        ops = [self._op(i) for i in reversed(self.storage.get("op_ids", []))]
        return [self._op_view(o) for o in ops
                if (op_type is None or o["type"] == op_type) and (status is None or o["status"] == status)]

    def cancel_operation(self, op_id: str) -> dict[str, Any]:
        """pending -> cancelled only; a cancelled hatch puts its egg back to ready so it can be retried."""
        op = self._op(op_id)
        check_operation(op_id, op["status"], "cancelled")
        self._finish(op, "cancelled", None, None)
        return self._op_view(op)

    def _finish(self, op: dict[str, Any], status: str, result: dict[str, Any] | None, error: dict[str, Any] | None) -> None:
        now = self.now()
        op.update(status=status, result=result, error=error, updated_at=now,
                  completed_at=now if status in ("completed", "failed") else None)
        self.storage.put(f"op:{op['id']}", op)
        self.storage.put("op_open", [i for i in self.storage.get("op_open", []) if i != op["id"]])
        self.tell(webhooks_address(self.key), "on_operation", self._op_view(op),  # webhooks, after commit
                  op.get("request_id"))
        if op["type"] == "hatch":
            egg = self._egg(op["request"]["egg_id"])
            if status == "completed":
                egg["status"] = "hatched"
                egg["buddy_id"] = op["request"]["buddy_id"]
            else:
                egg["status"] = "ready"  # the hatch never happened: the egg may be hatched again
            self.storage.put(f"egg:{egg['egg_id']}", egg)

    async def on_alarm(self) -> None:
        """Drive due operations one step: pending -> processing -> completed/failed."""
        now = self.now()
        next_due: int | None = None
        for op_id in self.storage.get("op_open", []):
            op = self._op(op_id)
            if op["due_at"] > now:
                next_due = op["due_at"] if next_due is None else min(next_due, op["due_at"])
                continue
            if op["status"] == "pending":
                op.update(status="processing", updated_at=now, due_at=now + op["processing_ms"])
                self.storage.put(f"op:{op_id}", op)
                next_due = op["due_at"] if next_due is None else min(next_due, op["due_at"])
            elif op["status"] == "processing":
                await self._execute(op)
        if next_due is not None:
            self.set_alarm(next_due)

    async def _execute(self, op: dict[str, Any]) -> None:
        if op["type"] == "hatch":
            await self._execute_hatch(op)
        else:
            await self._execute_on_buddy(op)

    async def _execute_hatch(self, op: dict[str, Any]) -> None:
        egg = self._egg(op["request"]["egg_id"])
        buddy_id = op["request"]["buddy_id"]
        cfg = self._version(egg["config_version_id"])
        record = {"buddy_id": buddy_id, "customer_id": self.key, "user_id": egg["user_id"],
                  "egg_id": egg["egg_id"], "name": egg["metadata"].get("name") or "Buddy",
                  "config_version_id": cfg["id"], "config": cfg["content"], "traits": traits_for(egg["egg_id"])}
        try:
            view = await self.call(buddy_address(self.key, buddy_id), "create", record)
            # Events find buddies through the user's index, never through this actor.
            await self.call(user_address(self.key, egg["user_id"]), "add_buddy", buddy_id)
        except Exception as exc:  # the buddy's shard refused: report it, keep the egg usable
            self._finish(op, "failed", None, {"code": "hatch_failed",
                                              "message": f"Hatching egg {egg['egg_id']} failed: {exc}"})
            return
        self._note_buddy(view)
        self._finish(op, "completed", {"buddy_id": buddy_id, "image_url": view["image_url"]}, None)

    async def _execute_on_buddy(self, op: dict[str, Any]) -> None:
        """evolve / equip_item: the buddy's ``run_<type>`` turn does the work in one turn."""
        buddy_id = op["request"]["buddy_id"]
        try:
            result = await self.call(buddy_address(self.key, buddy_id), f"run_{op['type']}", op["id"], op["request"])
        except HatchedError as exc:  # the action is no longer possible: an action-specific failure
            self._finish(op, "failed", None, {"code": exc.code, "message": exc.message})
            return
        except Exception as exc:  # the buddy's shard refused
            self._finish(op, "failed", None, {"code": f"{op['type']}_failed",
                                              "message": f"{op['type']} of buddy {buddy_id} failed: {exc}"})
            return
        if isinstance(result, dict) and "buddy" in result:
            self._note_buddy(result["buddy"])
        self._finish(op, "completed", result.get("result") if isinstance(result, dict) else None, None)

    # -- buddy directory (lists, filters, per-version counts) ----------------------------
    def _note_buddy(self, view: dict[str, Any]) -> None:
        directory: dict[str, Any] = self.storage.get("buddies", {})
        previous = directory.get(view["buddy_id"])
        directory[view["buddy_id"]] = {k: view[k] for k in ("buddy_id", "user_id", "name", "status",
                                                            "config_version_id", "created_at")}
        self.storage.put("buddies", directory)
        counts: dict[str, int] = self.storage.get("buddy_versions", {})
        if previous is not None:
            counts[previous["config_version_id"]] = counts.get(previous["config_version_id"], 1) - 1
        counts[view["config_version_id"]] = counts.get(view["config_version_id"], 0) + 1
        self.storage.put("buddy_versions", {k: v for k, v in counts.items() if v > 0})

    def note_buddy(self, view: dict[str, Any]) -> None:
        """Buddies report renames, archiving and migrations so listings stay current."""
        if view["buddy_id"] in self.storage.get("buddies", {}):
            self._note_buddy(view)

    def list_buddies(self, user_id: str | None, status: str | None, config_version_id: str | None) -> list[dict[str, Any]]:
        directory: dict[str, Any] = self.storage.get("buddies", {})
        return [b for b in directory.values()
                if (user_id is None or b["user_id"] == user_id) and (status is None or b["status"] == status)
                and (config_version_id is None or b["config_version_id"] == config_version_id)]

    async def migrate_buddies(self, version_id: str, buddy_ids: list[str] | None) -> dict[str, Any]:
        """Re-pin buddies (all, or the listed ones) to the published version ``version_id``."""
        record = self._version(version_id)
        if record["status"] != "published":
            raise HatchedError(409, "config_version_not_published",
                               f"Config version {version_id} is {record['status']}; buddies migrate only to the "
                               "published version.", {"status": record["status"]})
        directory: dict[str, Any] = self.storage.get("buddies", {})
        targets = [b for b in directory.values() if b["config_version_id"] != version_id
                   and (buddy_ids is None or b["buddy_id"] in buddy_ids)]
        migrated: list[str] = []
        for entry in targets:
            view = await self.call(buddy_address(self.key, entry["buddy_id"]), "migrate", version_id, record["content"])
            self._note_buddy(view)
            migrated.append(entry["buddy_id"])
        return {"config_version_id": version_id, "migrated": len(migrated), "buddy_ids": migrated}
