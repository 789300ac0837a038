"""Widget sessions and widget analytics as actors.

One actor per session (keyed by the id embedded in the token), like API keys:
authenticating a widget request is one call, and the session's turns serialise
its state machine (``rules/hatched_widget.py``), so a revocation and a request
racing it have one order. A revocation is also *emitted*: open live streams
watch their session and end the moment it commits.

``buddy_hub`` names the live-update hub of one buddy; the buddy actor publishes
its canonical view there after every committed change.
"""

from __future__ import annotations

import hmac
from typing import Any

from questline.actors.hub import hub_address
from questline.engine import Actor, Address
from questline.rules.hatched_errors import HatchedError
from questline.rules.hatched_models import iso_ms
from questline.rules.hatched_widget import (
    FINAL,
    RETAIN_MS,
    check_access,
    revoke,
    status_of,
)


def session_address(raw_id: str) -> Address:
    return Address("hatched.widget_session", raw_id)


def widget_stats_address(customer_id: str) -> Address:
    return Address("hatched.widget_stats", customer_id)


def buddy_hub(buddy_key: str) -> Address:
    """The hub of one buddy (``buddy_key`` is the buddy actor's key ``<customer>/<buddy>``)."""
    return hub_address(f"hatched.buddy:{buddy_key}")


def _unknown() -> HatchedError:
    return HatchedError(401, "invalid_widget_token", "The widget token is malformed, unknown or forged.")


class WidgetSessionActor(Actor):
    """One widget session or embed token: issued -> active -> expired | revoked."""

    kind = "hatched.widget_session"

    def _record(self) -> dict[str, Any] | None:
        return self.storage.get("session")

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "session_id": record["session_id"],
            "kind": record["kind"],
            "buddy_id": record["buddy_id"],
            "scopes": record["scopes"],
            "status": status_of(record, self.now()),
            "issued_at": iso_ms(record["issued_at"]),
            "expires_at": iso_ms(record["expires_at"]),
            "activated_at": iso_ms(record["activated_at"]) if record.get("activated_at") else None,
            "revoked_at": iso_ms(record["revoked_at"]) if record.get("revoked_at") else None,
        }

    def issue(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a new session (hash only) and arm its expiry."""
        if self._record() is not None:
            raise HatchedError(409, "session_id_collision", "Session id already in use; retry.")
        record = {**record, "issued_at": self.now(), "activated_at": None, "revoked_at": None}
        self.storage.put("session", record)
        self.set_alarm(record["expires_at"])
        return self._view(record)

    def authorize(self, digest: str, scope: str | None) -> dict[str, Any]:
        """Check the token's hash, the state and the scope; the first use makes it active."""
        record = self._record()
        if record is None or not _same(record["token_hash"], digest):
            raise _unknown()
        status = check_access(record, self.now(), scope)
        if status == "issued":
            record["activated_at"] = self.now()
            self.storage.put("session", record)
        return {"session_id": record["session_id"], "customer_id": record["customer_id"],
                "buddy_id": record["buddy_id"], "kind": record["kind"], "scopes": record["scopes"],
                "expires_at": record["expires_at"]}

    def get(self, customer_id: str) -> dict[str, Any]:
        return self._view(self._owned(customer_id))

    def _owned(self, customer_id: str) -> dict[str, Any]:
        record = self._record()
        if record is None or record["customer_id"] != customer_id:
            raise HatchedError(404, "widget_session_not_found", f"Widget session wgs_{self.key} not found.")
        return record

    def revoke(self, customer_id: str) -> dict[str, Any]:
        """Revoke now; watchers (open streams) are told once the revocation commits."""
        record = self._owned(customer_id)
        changed = revoke(record, self.now())
        if changed:
            self.storage.put("session", record)
            self.emit({"event": "revoked", "session_id": record["session_id"]})
            self.set_alarm(self.now() + RETAIN_MS)
        return {**self._view(record), "already_final": not changed}

    def on_alarm(self) -> None:
        """At expiry: tell watchers and keep the record a while (so the token answers
        "expired", not "invalid"); after that, forget it."""
        record = self._record()
        if record is None:
            return
        now = self.now()
        status = status_of(record, now)
        if status not in FINAL:
            self.set_alarm(record["expires_at"])
            return
        ended = record["revoked_at"] if status == "revoked" else record["expires_at"]
        if now >= ended + RETAIN_MS:
            self.storage.delete("session")
            return
        if status == "expired" and not record.get("expiry_told"):
            record["expiry_told"] = True
            self.storage.put("session", record)
            self.emit({"event": "expired", "session_id": record["session_id"]})
        self.set_alarm(ended + RETAIN_MS)


def _same(stored: str, digest: str) -> bool:
    return hmac.compare_digest(stored, digest)


class WidgetStatsActor(Actor):
    """Per-customer widget analytics: marketplace item impressions."""

    kind = "hatched.widget_stats"

    def track_view(self, item_id: str, buddy_id: str) -> dict[str, Any]:
        views: dict[str, Any] = self.storage.get("item_views", {})
        entry = views.setdefault(item_id, {"views": 0, "last_viewed_at": None, "last_buddy_id": None})
        entry.update(views=entry["views"] + 1, last_viewed_at=iso_ms(self.now()), last_buddy_id=buddy_id)
        self.storage.put("item_views", views)
        return {"item_id": item_id, "views": entry["views"], "last_viewed_at": entry["last_viewed_at"]}

    def item_views(self) -> dict[str, Any]:
        return self.storage.get("item_views", {})
