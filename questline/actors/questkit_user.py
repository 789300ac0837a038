"""The QuestKit user actor: one per ``appId/userId``, the single owner of that user's progression.

It holds the user's mission ``ProgressRecord``s, the wallet and its append-only
ledger, badges, items, idempotency records and revoked token ids. Everything that
must happen exactly once happens inside one turn: an idempotency key is looked up
and recorded in the same turn that applies the event or the claim, so concurrent
duplicates (the SDK retries with the same key) are serialised by the mailbox and
the second one finds the first one's cached response.

Catalog. Methods that need the catalog take the ``etag`` (content hash) of the
catalog the front door believes current. Compiled catalogs are cached per process
by etag (``questkit_common.CATALOGS``); on a miss a method answers
``{"catalogMiss": True}`` without touching anything, and the caller runs
``load_catalog`` (which asks the app actor) and retries. That keeps the hot
methods synchronous (the shard runs them inline) while a catalog replacement is
seen as soon as a front door sees it: at once by the front door that served the
replacement, within ``CATALOG_REFRESH_S`` (1 s) by every other front door.

Token revocation is checked here, in the same turn as the operation, so a revoked
token is refused at once by every front-door process (no per-process cache).

Replies are plain dicts: ``{"body": ..., "replay": "hit"?}`` on success,
``{"error": code, "message": ...}`` for a QuestKit error (nothing changed).
"""

from __future__ import annotations

import os
import random
from typing import Any

import msgspec

from questline.actors.hub import UpdateLog
from questline.actors.questkit_common import (
    CATALOGS,
    CompiledCatalog,
    app_address,
    compile_catalog,
)
from questline.actors.ratelimit import slide
from questline.engine import Actor
from questline.rules import ledger
from questline.rules.ledger import Wallet
from questline.rules.missions import (
    ClaimNotReady,
    ProgressRecord,
    claim,
    evaluate_event,
    progress_view,
    to_updates,
)
from questline.rules.questkit_models import (
    BadgeReward,
    Balance,
    BalanceChangedUpdate,
    CurrencyReward,
    Event,
    ItemReward,
    Mission,
    MissionClaimedUpdate,
    MissionProgress,
    RewardGranted,
    RewardGrantedUpdate,
    SDKUpdate,
)
from questline.rules.recommendations import recommend

IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000
# Expired records are swept at most this often (they are ignored on read as soon as
# they expire), so state is bounded by TTL + SWEEP_MS of keys.
SWEEP_MS = 60 * 60 * 1000
# A revoked jti is kept until the token's own expiry; without one, for a full token life.
REVOCATION_TTL_MS = 60 * 60 * 1000
RECOMMENDATION_LIMIT = 3
UPDATES_PREFIX = "u."  # this user's live-update log (UpdateLog keys u.seq, u.first, u.e:<seq>)

CATALOG_MISS: dict[str, Any] = {"catalogMiss": True}
REVOKED: dict[str, Any] = {"error": "unauthorized", "message": "This token has been revoked."}

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two Crockford characters per 10 bits: 13 lookups spell the 26 characters of a ULID.
_CROCKFORD_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_PAIR_SHIFTS = tuple(range(120, -1, -10))


# Event ids must be unique, not secret: a PRNG seeded from the OS per process is enough.
_ids = random.Random(os.urandom(16))


def new_event_id(now_ms: int) -> str:
    """``evt_`` + a ULID (48-bit ms time, 80 random bits): unique and sortable by time.

    Crockford base32 of the 128-bit value in 26 characters (130 bits, so the first
    character carries the top 3 bits), spelled 10 bits at a time from a table:
    half the cost of ``base64.b32encode``, which is pure Python.
    """
    value = (now_ms & ((1 << 48) - 1)) << 80 | _ids.getrandbits(80)
    pairs = _CROCKFORD_PAIRS
    return "evt_" + "".join([pairs[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def _builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)


def _update(update: SDKUpdate) -> dict[str, Any]:
    """One update-log item: an SSE ``update`` frame carrying the SDKUpdate as JSON-ready builtins."""
    return {"event": "update", "data": _builtins(update)}


def _progress_key(mission_id: str) -> str:
    return f"p:{mission_id}"


class QuestKitUserActor(Actor):
    kind = "questkit.user"

    # -- identity --------------------------------------------------------------------
    @property
    def app_id(self) -> str:
        return self.key.partition("/")[0]

    @property
    def user_id(self) -> str:
        return self.key.partition("/")[2]

    # -- shared prelude ----------------------------------------------------------------
    def _revoked(self, jti: str | None) -> bool:
        if jti is None:
            return False
        until = self.storage.get(f"r:{jti}")
        return until is not None and until > self.now()

    def _catalog(self, etag: str | None) -> CompiledCatalog | None:
        return CATALOGS.get(self.app_id, etag)

    def _record(self, mission_id: str) -> ProgressRecord | None:
        return self.storage.get(_progress_key(mission_id), type=ProgressRecord)

    def _view(self, cat: CompiledCatalog, mission: Mission, record: ProgressRecord | None) -> MissionProgress | None:
        return progress_view(mission, record, self.user_id, self.now(), cat.campaign_of.get(mission.id))

    def _replay(self, key: str | None) -> dict[str, Any] | None:
        if key is None:
            return None
        cached = self.storage.get(key)
        if cached is None or cached["exp"] <= self.now():
            return None
        return {"body": cached["body"], "replay": "hit"}

    def _remember(self, key: str | None, body: dict[str, Any]) -> None:
        if key is None:
            return
        exp = self.now() + IDEMPOTENCY_TTL_MS
        self.storage.put(key, {"exp": exp, "body": body})
        self._arm_sweep(exp)

    def _arm_sweep(self, at_ms: int) -> None:
        if self.get_alarm() is None:
            self.set_alarm(at_ms)

    @property
    def _updates(self) -> UpdateLog:
        return UpdateLog(self, UPDATES_PREFIX)

    def _publish(self, updates: list[dict[str, Any]]) -> None:
        """Sequence the turn's updates in this user's own log; they reach streams after the commit."""
        if updates:
            self._updates.publish(updates)

    # -- live updates (GET /v1/sse/updates watches this actor) ------------------------------
    def replay(self, after: int | None) -> dict[str, Any]:
        """What a stream that last saw ``after`` missed (see :meth:`UpdateLog.replay`)."""
        return self._updates.replay(after)

    def head(self) -> int:
        return self._updates.head()

    # -- catalog loading (the only awaiting method) ---------------------------------------
    async def load_catalog(self, etag: str | None) -> str | None:
        """Make sure this process has a compiled catalog; returns the etag to retry with.

        If ``etag`` is cached nothing is fetched. Otherwise the app's current catalog
        is fetched and cached, and its etag returned (the front door's ``etag`` may be
        older than the app's: it then adopts the newer one). None: the app is gone.
        """
        if CATALOGS.get(self.app_id, etag) is not None:
            return etag
        snap = await self.call(app_address(self.app_id), "catalog_snapshot")
        if snap is None:
            return None
        if CATALOGS.get(self.app_id, snap["etag"]) is None:
            CATALOGS.put(compile_catalog(snap["catalog"], snap["etag"], snap["version"]))
        return snap["etag"]

    # -- events ------------------------------------------------------------------------------
    def _rate_limited(self, jti: str, limit: int, window_ms: int) -> dict[str, Any] | None:
        """Count one event against the token's sliding window (``rl:<jti>``); the 429 reply if full.

        The window lives here, not in a ``ratelimit`` actor: the user actor is the one
        owner of its tokens' state, so the limit is as exact across front doors, and
        the event costs one actor turn and one commit instead of two.
        """
        key = f"rl:{jti}"
        verdict, log = slide(self.storage.get(key, []), self.now(), limit, window_ms)
        if log is None:
            return {"error": "rate_limited", "retryAfterMs": verdict["retryAfterMs"]}
        self.storage.put(key, log)
        self._arm_sweep(self.now() + SWEEP_MS)
        return None

    def ingest(
        self,
        etag: str | None,
        jti: str | None,
        event: Event,
        idempotency_key: str | None = None,
        rate: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """Apply one event to every mission whose criteria name it; exactly once per key.

        ``rate`` = (limit, window_ms) counts the event against ``jti``'s window first
        (a refused event changes nothing); a replayed key still counts, as a retry is
        a request.
        """
        cat = self._catalog(etag)
        if cat is None:
            return CATALOG_MISS  # before anything is written: the caller retries this turn
        if rate is not None and jti is not None:
            limited = self._rate_limited(jti, *rate)
            if limited is not None:
                return limited
        if self._revoked(jti):
            return REVOKED
        if event.user_id != self.user_id:
            return {"error": "user_mismatch", "message": "The event's userId is not this user."}
        idem = None if idempotency_key is None else f"i:ev:{idempotency_key}"
        replay = self._replay(idem)
        if replay is not None:
            return replay
        now = self.now()
        missions = cat.by_event.get(event.name, [])
        records: dict[str, ProgressRecord] = {}
        for mission in missions:
            record = self._record(mission.id)
            if record is not None:
                records[mission.id] = record
        outcome = evaluate_event(missions, records, event, now, cat.campaign_of)
        views: dict[str, MissionProgress] = {}
        for mission_id, record in outcome.records.items():
            self.storage.put(_progress_key(mission_id), record)
            view = self._view(cat, cat.by_id[mission_id], record)
            assert view is not None  # a stored record always has a view
            views[mission_id] = view
        updates = [
            _update(update)
            for mission_id, change in outcome.changes
            for update in to_updates([change], views[mission_id])
        ]
        body = {
            "accepted": True,
            "eventId": new_event_id(now),
            "missionsUpdated": outcome.missions_updated,
        }
        self._remember(idem, body)
        self._publish(updates)
        return {"body": body}

    # -- missions --------------------------------------------------------------------------------
    def list_missions(
        self,
        etag: str | None,
        jti: str | None,
        campaign_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """``{missions, progress, nextCursor?}`` in catalog order; the cursor is the last id seen."""
        if self._revoked(jti):
            return REVOKED
        cat = self._catalog(etag)
        if cat is None:
            return CATALOG_MISS
        rows: list[tuple[Mission, MissionProgress | None]] = []
        for mission in cat.missions:
            if campaign_id is not None:
                campaign = cat.campaign_of.get(mission.id)
                if campaign is None or campaign.id != campaign_id:
                    continue
            view = self._view(cat, mission, self._record(mission.id))
            if status is not None and (view is None or view.status != status):
                continue
            rows.append((mission, view))
        start = 0
        if cursor is not None:
            ids = [mission.id for mission, _ in rows]
            if cursor not in ids:
                return {"error": "validation_error", "message": "Unknown cursor - at `cursor`"}
            start = ids.index(cursor) + 1
        page = rows[start : start + limit]
        body: dict[str, Any] = {
            "missions": [_builtins(mission) for mission, _ in page],
            "progress": {mission.id: _builtins(view) for mission, view in page if view is not None},
        }
        if start + limit < len(rows) and page:
            body["nextCursor"] = page[-1][0].id
        return {"body": body}

    def get_mission(self, etag: str | None, jti: str | None, mission_id: str) -> dict[str, Any]:
        """``{mission, progress}``; progress is null before any activity."""
        if self._revoked(jti):
            return REVOKED
        cat = self._catalog(etag)
        if cat is None:
            return CATALOG_MISS
        mission = cat.by_id.get(mission_id)
        if mission is None:
            return {"error": "mission_not_found", "message": f"No mission {mission_id!r}."}
        view = self._view(cat, mission, self._record(mission_id))
        return {"body": {"mission": _builtins(mission), "progress": _builtins(view)}}

    def claim(
        self, etag: str | None, jti: str | None, mission_id: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """completed -> claimed and the reward granted, in one turn: exactly once."""
        if self._revoked(jti):
            return REVOKED
        idem = None if idempotency_key is None else f"i:cl:{mission_id}:{idempotency_key}"
        replay = self._replay(idem)
        if replay is not None:
            return replay
        cat = self._catalog(etag)
        if cat is None:
            return CATALOG_MISS
        mission = cat.by_id.get(mission_id)
        if mission is None:
            return {"error": "mission_not_found", "message": f"No mission {mission_id!r}."}
        now = self.now()
        try:
            record = claim(mission, self._record(mission_id), now)
        except ClaimNotReady as exc:
            return {"error": "claim_not_ready", "message": str(exc)}
        self.storage.put(_progress_key(mission_id), record)
        view = self._view(cat, mission, record)
        assert view is not None
        reward = mission.reward
        balance = self._grant(reward, mission_id, record.window_start, now)
        updates: list[SDKUpdate] = [
            MissionClaimedUpdate(data=view),
            RewardGrantedUpdate(
                data=RewardGranted(user_id=self.user_id, reward=reward, mission_id=mission_id)
            ),
        ]
        if balance is not None:
            updates.append(BalanceChangedUpdate(data=balance))
        body = {
            "progress": _builtins(view),
            "balance": _builtins(balance),
            "reward": _builtins(reward),
        }
        self._remember(idem, body)
        self._publish([_update(update) for update in updates])
        return {"body": body}

    def _grant(
        self, reward: Any, mission_id: str, window_start: int, now: int
    ) -> Balance | None:
        """Apply the reward; returns the new Balance for currency rewards."""
        if isinstance(reward, CurrencyReward):
            wallet: Wallet = self.storage.get("wallet", type=Wallet) or Wallet()
            wallet, entry = ledger.post(
                wallet, reward.currency, reward.amount, "mission.claim", f"{mission_id}@{window_start}", now
            )
            self.storage.put("wallet", wallet)
            self.storage.put(f"l:{entry.seq:012d}", entry)
            return ledger.balance(wallet, self.user_id, reward.currency)
        if isinstance(reward, BadgeReward):
            badges: dict[str, Any] = self.storage.get("badges", {})
            badges.setdefault(reward.badge_id, {"grantedAt": now, "missionId": mission_id})
            self.storage.put("badges", badges)
            return None
        if isinstance(reward, ItemReward):
            items: dict[str, int] = self.storage.get("items", {})
            items[reward.item_id] = items.get(reward.item_id, 0) + reward.quantity
            self.storage.put("items", items)
            return None
        raise TypeError(f"unknown reward {reward!r}")

    # -- balances -------------------------------------------------------------------------------
    def _wallet(self) -> Wallet:
        return self.storage.get("wallet", type=Wallet) or Wallet()

    def balances(self, jti: str | None) -> dict[str, Any]:
        if self._revoked(jti):
            return REVOKED
        return {"body": {"balances": _builtins(ledger.balances(self._wallet(), self.user_id))}}

    def balance(self, jti: str | None, currency: str) -> dict[str, Any]:
        if self._revoked(jti):
            return REVOKED
        found = ledger.balance(self._wallet(), self.user_id, currency)
        if found is None:
            return {"error": "balance_not_found", "message": f"No {currency!r} balance for this user."}
        return {"body": {"balance": _builtins(found)}}

    def ledger_entries(self) -> list[dict[str, Any]]:
        """The full ledger, oldest first (audit; balances can be rebuilt from it)."""
        return [self.storage.get(key) for key in self.storage.keys("l:")]

    def inventory(self) -> dict[str, Any]:
        """Badges and items granted so far (no QuestKit route reads them yet)."""
        return {"badges": self.storage.get("badges", {}), "items": self.storage.get("items", {})}

    # -- campaigns --------------------------------------------------------------------------------
    def campaigns(self, etag: str | None, jti: str | None, include_expired: bool = False) -> dict[str, Any]:
        """Campaigns not yet ended (``endAt >= now``), or all of them."""
        if self._revoked(jti):
            return REVOKED
        cat = self._catalog(etag)
        if cat is None:
            return CATALOG_MISS
        now = self.now()
        chosen = [c for c in cat.campaigns if include_expired or c.end_at >= now]
        return {"body": {"campaigns": _builtins(chosen)}}

    def campaign(
        self, etag: str | None, jti: str | None, campaign_id: str, include_missions: bool = False
    ) -> dict[str, Any]:
        if self._revoked(jti):
            return REVOKED
        cat = self._catalog(etag)
        if cat is None:
            return CATALOG_MISS
        found = cat.campaigns_by_id.get(campaign_id)
        if found is None:
            return {"error": "campaign_not_found", "message": f"No campaign {campaign_id!r}."}
        body: dict[str, Any] = {"campaign": _builtins(found)}
        if include_missions:
            body["missions"] = [_builtins(cat.by_id[mid]) for mid in found.mission_ids if mid in cat.by_id]
        return {"body": body}

    # -- recommendations ----------------------------------------------------------------------------
    def recommendations(self, etag: str | None, jti: str | None) -> dict[str, Any]:
        """Ranked locally from this user's state (``rules.recommendations``): deterministic."""
        if self._revoked(jti):
            return REVOKED
        cat = self._catalog(etag)
        if cat is None:
            return CATALOG_MISS
        records = {mission.id: self._record(mission.id) for mission in cat.missions}
        mission_ids, reason = recommend(
            cat.missions, records, cat.campaigns, self.now(), RECOMMENDATION_LIMIT
        )
        body = {
            "missionIds": mission_ids,
            "reason": reason,
            "cached": False,
            "count": len(mission_ids),
            "fallback": False,
        }
        return {"body": body}

    # -- tokens ------------------------------------------------------------------------------------------
    def revoke(self, jti: str, exp_ms: int | None = None) -> bool:
        """Deny ``jti`` from now on (until the token would have expired anyway)."""
        now = self.now()
        until = exp_ms if exp_ms is not None and exp_ms > now else now + REVOCATION_TTL_MS
        key = f"r:{jti}"
        if self.storage.get(key, 0) < until:
            self.storage.put(key, until)
        self._arm_sweep(until)
        return True

    def token_ok(self, jti: str) -> bool:
        """False when ``jti`` was revoked (``authenticate`` asks this on every request)."""
        return not self._revoked(jti)

    # -- housekeeping -----------------------------------------------------------------------------------
    def on_alarm(self) -> None:
        """Drop expired idempotency records, revocations and idle rate windows; re-arm for what is left."""
        now = self.now()
        next_due: int | None = None
        for key in self.storage.keys("i:"):
            exp = self.storage.get(key)["exp"]
            if exp <= now:
                self.storage.delete(key)
            else:
                next_due = exp if next_due is None else min(next_due, exp)
        for key in self.storage.keys("r:"):
            until = self.storage.get(key)
            if until <= now:
                self.storage.delete(key)
            else:
                next_due = until if next_due is None else min(next_due, until)
        for key in self.storage.keys("rl:"):
            if not self.storage.get(key) or max(self.storage.get(key)) <= now - SWEEP_MS:
                self.storage.delete(key)  # no window is longer than a sweep period
            else:
                next_due = now + SWEEP_MS if next_due is None else min(next_due, now + SWEEP_MS)
        if next_due is not None:
            self.set_alarm(max(next_due, now + SWEEP_MS))

    def idempotency_records(self) -> int:
        """How many idempotency records are stored (tests check the state stays bounded)."""
        return len(self.storage.keys("i:"))
