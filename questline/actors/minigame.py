"""Minigame actors (seed 003): per tenant, per character, per issued session.

* ``minigame.tenant`` (key ``<tenant>``): the activity registry with
  availability, the activity_type -> minigame map, the hashed tenant secret and
  the signing key. Claims of limited activities (a board order) are decided
  here, one at a time, so an order is accepted exactly once.
* ``minigame.character`` (key ``<tenant>/<character>``): skill XP, passive
  mode, currencies and items, the history of results and which of them were
  settled. Settlement runs in one turn of this actor, so one result settles once.
* ``minigame.session`` (key ``<tenant>/<jti>``): one issued session, its used
  flag and result. All submissions of one token queue here: exactly one wins.

Every refusal is a returned ``{"ok": False, "error": code}`` made before any
write, so a refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import uuid
from pathlib import Path
from typing import Any, Final

from questline.actors.ratelimit import RateLimitActor
from questline.demo import demo_mode
from questline.engine import Actor, Address, Runtime
from questline.rules import minigame as rules
from questline.rules.minigame_catalog import (
    Catalog,
    activity_definition,
    availability,
    category_map,
    parse_catalog,
    resolve_minigame,
    type_map,
    unavailable_error,
)

log = logging.getLogger("questline.minigame")

TENANT_KIND: Final = "minigame.tenant"
CHARACTER_KIND: Final = "minigame.character"
SESSION_KIND: Final = "minigame.session"

# Result rows kept per character (history and settlement); older ones are pruned.
HISTORY_RETAIN: Final = 1_000
# An issued session's record is pruned this long after it expired ("never issued or pruned").
SESSION_RETAIN_MS: Final = 24 * 3600 * 1000


def tenant_address(tenant_id: str) -> Address:
    return Address(TENANT_KIND, tenant_id)


def character_address(tenant_id: str, character_id: str) -> Address:
    return Address(CHARACTER_KIND, f"{tenant_id}/{character_id}")


def session_address(tenant_id: str, jti: str) -> Address:
    return Address(SESSION_KIND, f"{tenant_id}/{jti}")


def _fail(code: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, **extra}


def _types_from(stored: dict[str, dict[str, Any]]) -> dict[str, rules.MinigameType]:
    return {name: rules.MinigameType(**row) for name, row in stored.items()}


class MinigameTenantActor(Actor):
    """A tenant's activity registry, credentials and minigame map."""

    kind = TENANT_KIND
    _maps_cache: tuple[dict[str, rules.MinigameType], dict[str, rules.MinigameType]] | None = None

    def install(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Replace the catalog (definitions, map, secret hash), keeping runtime state.

        Availability already earned (an accepted board order) and the signing key
        survive a re-install, so restarts and catalog edits do not reopen orders
        or invalidate tokens.
        """
        self._maps_cache = None
        if self.storage.get("key") is None:
            self.storage.put("key", secrets.token_bytes(32))
        self.storage.put(
            "cfg",
            {
                "tenant_id": spec["tenant_id"],
                "secret": spec["secret"],
                "types": spec["types"],
                "categories": spec["categories"],
            },
        )
        wanted = {d["id"]: d for d in spec["activities"]}
        for key in self.storage.keys("act:"):
            if key[4:] not in wanted:
                self.storage.delete(key)
                self.storage.delete("st:" + key[4:])
        for act_id, definition in wanted.items():
            self.storage.put("act:" + act_id, definition)
        return {"tenant_id": spec["tenant_id"], "activities": len(wanted)}

    def credentials(self) -> dict[str, Any] | None:
        """The secret's hash and the signing key, for the front door (None: unknown tenant)."""
        cfg = self.storage.get("cfg")
        if cfg is None:
            return None
        return {"secret": cfg["secret"], "signing_key": self.storage.get("key")}

    def _maps(self) -> tuple[dict[str, rules.MinigameType], dict[str, rules.MinigameType]]:
        """The decoded type and category maps, cached on the instance (a cache only:
        the engine rebuilds the instance after a failed turn, ``install`` drops it)."""
        cached = self._maps_cache
        if cached is None:
            cfg = self.storage.get("cfg") or {}
            cached = (_types_from(cfg.get("types", {})), _types_from(cfg.get("categories", {})))
            self._maps_cache = cached
        return cached

    def _lookup(self, activity_type: str, ref_id: str) -> tuple[dict[str, Any] | None, rules.MinigameType | None]:
        definition = self.storage.get("act:" + ref_id)
        if definition is not None and definition["activity_type"] != activity_type:
            definition = None
        types, categories = self._maps()
        return definition, resolve_minigame(definition, activity_type, types, categories)

    def describe(self, activity_type: str, ref_id: str) -> dict[str, Any]:
        """The minigame for an activity without checking availability (passive mode)."""
        _, minigame = self._lookup(activity_type, ref_id)
        if minigame is None:
            return _fail("activity_not_found")
        return {"ok": True, "minigame": minigame.as_dict()}

    def check(self, activity_type: str, ref_id: str, character_id: str) -> dict[str, Any]:
        """Seed steps 3-4: the activity exists, is open to this character, and its minigame."""
        definition, minigame = self._lookup(activity_type, ref_id)
        if definition is None or minigame is None:
            return _fail("activity_not_found")
        status = availability(definition, self.storage.get("st:" + ref_id, {}), self.now(), character_id)
        error = unavailable_error(status)
        if error is not None:
            return _fail(error, status=status)
        return {"ok": True, "minigame": minigame.as_dict()}

    def claim(self, activity_type: str, ref_id: str, character_id: str, jti: str) -> dict[str, Any]:
        """Take one settlement of the activity for ``jti``; idempotent per jti.

        A retry of a claim whose settlement never committed on the character's
        side gets the same answer instead of ``activity_unavailable``.
        """
        definition, minigame = self._lookup(activity_type, ref_id)
        if definition is None or minigame is None:
            return _fail("activity_not_found")
        state: dict[str, Any] = self.storage.get("st:" + ref_id, {})
        limited = definition.get("capacity") is not None or definition.get("per_character") is not None
        if not (limited and jti in state.get("claims", {})):
            status = availability(definition, state, self.now(), character_id)
            error = unavailable_error(status)
            if error is not None:
                return _fail(error, status=status)
            if limited:
                state["count"] = state.get("count", 0) + 1
                by = state.setdefault("by", {})
                by[character_id] = by.get(character_id, 0) + 1
                state.setdefault("claims", {})[jti] = character_id
                self.storage.put("st:" + ref_id, state)
        status = availability(definition, state, self.now())
        return {
            "ok": True,
            "activity": {
                "id": definition["id"],
                "kind": definition["kind"],
                "name": definition["name"],
                "status": status,
            },
            "skill": minigame.skill,
            "rewards": definition["rewards"],
        }

    def activities(self, character_id: str | None = None) -> list[dict[str, Any]]:
        """Every activity with its status now (for the character if given), for discovery."""
        types, categories = self._maps()
        out = []
        now = self.now()
        for key in self.storage.keys("act:"):
            definition = self.storage.get(key)
            minigame = resolve_minigame(definition, definition["activity_type"], types, categories)
            state = self.storage.get("st:" + definition["id"], {})
            out.append(
                {
                    "id": definition["id"],
                    "kind": definition["kind"],
                    "activity_type": definition["activity_type"],
                    "name": definition["name"],
                    "description": definition["description"],
                    "minigame_type": minigame.minigame_type if minigame else None,
                    "skill": minigame.skill if minigame else None,
                    "status": availability(definition, state, now, character_id),
                    "rewards": definition["rewards"],
                    "expires_at": definition["expires_at"],
                    "departs_at": definition["departs_at"],
                }
            )
        return out


class MinigameCharacterActor(Actor):
    """One character's progression: skills, flags, wallet, items, results and settlements."""

    kind = CHARACTER_KIND

    @property
    def _ids(self) -> tuple[str, str]:
        tenant_id, _, character_id = self.key.partition("/")
        return tenant_id, character_id

    # -- reads ------------------------------------------------------------------
    def profile(self) -> dict[str, Any]:
        """What the character has: passive flag, skills with bands, currencies, items."""
        skills: dict[str, int] = self.storage.get("skills", {})
        return {
            "character_id": self._ids[1],
            "passive_mode": bool(self.storage.get("passive", False)),
            "skills": {
                name: {"xp": xp, "band": rules.skill_band(xp)} for name, xp in sorted(skills.items())
            },
            "currency": dict(sorted(self.storage.get("currency", {}).items())),
            "items": dict(sorted(self.storage.get("items", {}).items())),
        }

    def history(self, limit: int, offset: int) -> dict[str, Any]:
        """Results newest first; ``total`` counts every retained result."""
        last: int = self.storage.get("h_last", 0)
        first: int = self.storage.get("h_first", 1)
        total = max(0, last - first + 1)
        results = []
        seq = last - offset
        while seq >= first and len(results) < limit:
            jti = self.storage.get(f"h:{seq:016d}")
            row = self.storage.get("res:" + jti) if jti else None
            if row is not None:
                results.append(
                    {
                        "jti": row["jti"],
                        "minigame_type": row["minigame_type"],
                        "activity_type": row["activity_type"],
                        "score": row["score"],
                        "modifier_applied": row["modifier_applied"],
                        "submitted_at": row["submitted_at"],
                    }
                )
            seq -= 1
        return {"results": results, "total": total}

    # -- writes -----------------------------------------------------------------
    def set_passive(self, enabled: bool) -> dict[str, Any]:
        self.storage.put("passive", bool(enabled))
        self.storage.put("passive_at", self.now())
        return {"passive_mode": bool(enabled)}

    async def open_session(self, activity_type: str, activity_ref_id: str) -> dict[str, Any]:
        """Seed steps 2-13: passive shortcut, activity check, band, jti and seed, store.

        Returns ``{"ok", "passive": False, "session"}`` (the payload to sign) or
        ``{"ok", "passive": True, "result"}`` (the synthetic result to sign).
        """
        tenant_id, character_id = self._ids
        tenant = tenant_address(tenant_id)
        if self.storage.get("passive", False):
            described = await self.call(tenant, "describe", activity_type, activity_ref_id)
            if not described["ok"]:
                return described
            record = rules.result_record(
                jti=str(uuid.uuid4()),
                character_id=character_id,
                activity_type=activity_type,
                activity_ref_id=activity_ref_id,
                minigame_type=described["minigame"]["minigame_type"],
                score=rules.PASSIVE_SCORE,
                modifier=rules.PASSIVE_MODIFIER,
                now_ms=self.now(),
                passive=True,
            )
            self._append_result(record)
            return {"ok": True, "passive": True, "result": record}
        checked = await self.call(tenant, "check", activity_type, activity_ref_id, character_id)
        if not checked["ok"]:
            return checked
        minigame = rules.MinigameType(**checked["minigame"])
        xp = self.storage.get("skills", {}).get(minigame.skill, 0)
        session = rules.session_payload(
            jti=str(uuid.uuid4()),
            tenant_id=tenant_id,
            character_id=character_id,
            activity_type=activity_type,
            activity_ref_id=activity_ref_id,
            minigame=minigame,
            skill_band=rules.skill_band(xp),
            seed=int.from_bytes(secrets.token_bytes(4), "big", signed=True),
            now_ms=self.now(),
        )
        await self.call(session_address(tenant_id, session["jti"]), "issue", session)
        return {"ok": True, "passive": False, "session": session}

    def record_result(self, record: dict[str, Any]) -> bool:
        """Called by a session actor on success; idempotent per jti (a retried submit).

        A row recorded by a submit whose session turn then failed is replaced by the
        retry's row, unless it was settled already (then it stays as it was).
        """
        existing = self.storage.get("res:" + record["jti"])
        if existing is None:
            self._append_result(record)
        elif existing.get("settled_at") is None:
            self.storage.put("res:" + record["jti"], record)
        return True

    def _append_result(self, record: dict[str, Any]) -> None:
        last = self.storage.get("h_last", 0) + 1
        first = self.storage.get("h_first", 1)
        self.storage.put(f"h:{last:016d}", record["jti"])
        self.storage.put("res:" + record["jti"], record)
        while last - first + 1 > HISTORY_RETAIN:
            old = self.storage.get(f"h:{first:016d}")
            self.storage.delete(f"h:{first:016d}")
            if old:
                self.storage.delete("res:" + old)
            first += 1
        self.storage.put("h_last", last)
        self.storage.put("h_first", first)

    async def settle(self, jti: str, activity_type: str, activity_ref_id: str) -> dict[str, Any]:
        """Seed step 5-6 and the settlement: one result settles one activity, once.

        The result row must exist here, be bound to this activity, be unexpired
        and unsettled; then the tenant grants a claim and the scaled rewards land.
        """
        tenant_id, character_id = self._ids
        row = self.storage.get("res:" + jti)
        if (
            row is None
            or row.get("settled_at") is not None
            or row["activity_type"] != activity_type
            or row["activity_ref_id"] != activity_ref_id
            or rules.expired(row["exp"], self.now())
        ):
            return _fail("minigame_result_required")
        claim = await self.call(tenant_address(tenant_id), "claim", activity_type, activity_ref_id, character_id, jti)
        if not claim["ok"]:
            return claim
        modifier = row["modifier_applied"]
        granted = rules.scale_rewards(claim["rewards"], modifier)
        skills: dict[str, int] = self.storage.get("skills", {})
        for skill, amount in granted["xp"].items():
            skills[skill] = skills.get(skill, 0) + amount
        currency: dict[str, int] = self.storage.get("currency", {})
        for name, amount in granted["currency"].items():
            currency[name] = currency.get(name, 0) + amount
        items: dict[str, int] = self.storage.get("items", {})
        for name, amount in granted["items"].items():
            items[name] = items.get(name, 0) + amount
        now = self.now()
        row["settled_at"] = now // 1000
        self.storage.put("res:" + jti, row)
        self.storage.put("skills", skills)
        self.storage.put("currency", currency)
        self.storage.put("items", items)
        return {
            "ok": True,
            "settlement": {
                "jti": jti,
                "activity_type": activity_type,
                "activity_ref_id": activity_ref_id,
                "activity": claim["activity"],
                "minigame_type": row["minigame_type"],
                "score": row["score"],
                "modifier_applied": modifier,
                "rewards": granted,
                "skills": {
                    name: {"xp": skills[name], "band": rules.skill_band(skills[name])}
                    for name in sorted(granted["xp"])
                },
                "settled_at": now // 1000,
            },
        }


class MinigameSessionActor(Actor):
    """One issued session: the single place its submissions are judged, in order."""

    kind = SESSION_KIND

    def issue(self, session: dict[str, Any]) -> bool:
        self.storage.put("session", session)
        self.set_alarm(session["exp"] * 1000 + SESSION_RETAIN_MS)
        return True

    async def submit(
        self, character_id: str, score: float, duration_ms: int, event_hash: str
    ) -> dict[str, Any]:
        """Validation after the signature, in the documented order; the first success wins.

        not found -> expired -> owner -> used -> duration -> score -> event hash.
        """
        session = self.storage.get("session")
        if session is None:
            return _fail("session_not_found")
        now = self.now()
        if rules.expired(session["exp"], now):
            return _fail("session_expired")
        if session["sub"] != character_id:
            return _fail("character_mismatch")
        if self.storage.get("used", False):
            return _fail("session_already_used")
        error = rules.duration_error(duration_ms, session["min_duration_ms"], session["max_duration_ms"])
        if error is not None:
            return _fail(error)
        if not rules.score_in_range(score):
            return _fail("invalid_score")
        if not rules.event_hash_matches(event_hash, session["seed"], duration_ms, score):
            return _fail("invalid_event_hash")
        record = rules.result_record(
            jti=session["jti"],
            character_id=character_id,
            activity_type=session["activity_type"],
            activity_ref_id=session["activity_ref_id"],
            minigame_type=session["type"],
            score=score,
            modifier=rules.modifier_for(score),
            now_ms=now,
        )
        # The character records the row first: if this turn then fails to commit, a
        # retry records it again (idempotent per jti) instead of losing it.
        await self.call(character_address(session["tid"], character_id), "record_result", record)
        self.storage.put("used", True)
        self.storage.put("result", record)
        return {"ok": True, "result": record}

    def on_alarm(self) -> None:
        """Prune the session long after it expired (then: ``session_not_found``)."""
        for key in self.storage.keys():
            if not key.startswith("__"):
                self.storage.delete(key)


MINIGAME_ACTORS: list[type[Actor]] = [
    MinigameTenantActor,
    MinigameCharacterActor,
    MinigameSessionActor,
    RateLimitActor,  # the shared kind; listing it twice across surfaces is allowed
]


# -- catalog installation ------------------------------------------------------------
DEMO_CATALOG: Final = Path(__file__).resolve().parent.parent / "demo" / "minigame_demo.json"


async def _tenant_spec(tenant: Any, existing: dict[str, Any] | None) -> dict[str, Any]:
    """The stored form of a tenant: secret from the environment when named, hashed."""
    secret = os.environ.get(tenant.secret_env) if tenant.secret_env else None
    if secret is None:
        secret = tenant.secret
        if tenant.secret_env:
            log.warning(
                "minigame tenant %r uses the catalog's built-in secret; set %s outside the demo",
                tenant.tenant_id,
                tenant.secret_env,
            )
    if not secret:
        raise ValueError(f"tenant {tenant.tenant_id!r}: no secret (set {tenant.secret_env})")
    record = existing["secret"] if existing else None
    # Keep the old hash when the secret did not change (scrypt costs ~50 ms per run).
    if record is None or not await asyncio.to_thread(rules.verify_secret, secret, record):
        record = await asyncio.to_thread(rules.hash_secret, secret, secrets.token_bytes(16))
    return {
        "tenant_id": tenant.tenant_id,
        "secret": record,
        "types": {name: row.as_dict() for name, row in type_map(tenant).items()},
        "categories": {name: row.as_dict() for name, row in category_map(tenant).items()},
        "activities": [activity_definition(act) for act in tenant.activities],
    }


async def install_minigame_catalog(
    runtime: Runtime, path_or_dict: str | Path | dict[str, Any]
) -> list[dict[str, Any]]:
    """Install a catalog (file path or parsed dict) into the tenants' actors; idempotent."""
    if isinstance(path_or_dict, dict):
        catalog: Catalog = parse_catalog(path_or_dict)
    else:
        catalog = parse_catalog(await asyncio.to_thread(Path(path_or_dict).read_bytes))
    summaries = []
    for tenant in catalog.tenants:
        address = tenant_address(tenant.tenant_id)
        existing = await runtime.call(address, "credentials")
        spec = await _tenant_spec(tenant, existing)
        summaries.append(await runtime.call(address, "install", spec))
    return summaries


async def install_demo_minigame(runtime: Runtime) -> None:
    """Startup hook: the catalog named by QUESTLINE_MINIGAME_CATALOG, else (demo mode only) the demo one.

    Outside demo mode the bundled tenant is never installed: its secret has a public default.
    """
    path = os.environ.get("QUESTLINE_MINIGAME_CATALOG")
    if path:
        await install_minigame_catalog(runtime, path)
    elif demo_mode():
        await install_minigame_catalog(runtime, DEMO_CATALOG)
