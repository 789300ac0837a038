"""The QuestKit tenant ("app") actor: credentials, token key, webhook secret, catalog.

One actor per ``appId`` owns everything that belongs to the app rather than to
one of its users:

- the app secret, stored only as an scrypt hash with a per-app salt (the secret
  itself is never kept); verifying it is slow on purpose, so it runs in a worker
  thread and the last verified secret is remembered in memory (a cache: a fresh
  instance simply verifies again);
- the JWT signing key, 32 random bytes made once at registration and never
  rotated (front doors cache it per process because it cannot change);
- the inbound-webhook signing secret (from the catalog file): HMAC needs it in
  the clear, so it is stored sealed (AES-GCM, :mod:`questline.secrets_box`, key
  outside the data dir), opened only here to check a signature, never leaves the actor;
- the catalog and its version, bumped on every replacement that changes it.
  Replacing a catalog touches only this actor: users' progress lives in their
  own actors, keyed by mission id, and is never rewritten.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from typing import Any

from questline import secrets_box
from questline.actors.questkit_common import (
    canonical_catalog_json,
    catalog_etag,
)
from questline.engine import Actor, ActorContext
from questline.rules.questkit_models import CatalogError, decode_catalog

# scrypt cost: ~16 MiB and tens of ms per check; the app secret is verified on token
# mints and admin calls only, and a verified secret is then remembered in memory.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
JWT_KEY_BYTES = 32
log = logging.getLogger("questline.questkit")


def _scrypt(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


def _fast_digest(secret: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


class QuestKitAppActor(Actor):
    kind = "questkit.app"

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        # Digest of the last secret that passed scrypt (memory only, never stored).
        self._verified: bytes | None = None
        # The webhook secret opened from its sealed form: (sealed token, plaintext), memory only.
        self._webhook: tuple[str, str] | None = None

    # -- credentials -------------------------------------------------------------
    def _cfg(self) -> dict[str, Any] | None:
        return self.storage.get("cfg")

    async def _secret_ok(self, cfg: dict[str, Any], app_secret: str) -> bool:
        if not isinstance(app_secret, str) or not app_secret:
            return False
        salt: bytes = cfg["salt"]
        fast = _fast_digest(app_secret, salt)
        if self._verified is not None and hmac.compare_digest(self._verified, fast):
            return True
        # hashlib.scrypt releases the GIL: the shard's loop keeps serving other actors.
        derived = await asyncio.to_thread(_scrypt, app_secret, salt)
        if hmac.compare_digest(derived, cfg["hash"]):
            self._verified = fast
            return True
        return False

    async def check_secret(self, app_secret: str) -> bytes | None:
        """The JWT signing key if ``app_secret`` is this app's secret, else None."""
        cfg = self._cfg()
        if cfg is None or not await self._secret_ok(cfg, app_secret):
            return None
        return cfg["jwtKey"]

    def jwt_key(self) -> bytes | None:
        """The token signing key (None: no such app). Immutable once the app exists."""
        cfg = self._cfg()
        return None if cfg is None else cfg["jwtKey"]

    def exists(self) -> bool:
        return self._cfg() is not None

    def _webhook_secret(self, cfg: dict[str, Any]) -> str | None:
        """The webhook secret in the clear (None: not configured); raises SecretsBoxError."""
        if cfg.get("webhookSecret"):  # stored in the clear before secrets were sealed
            return str(cfg["webhookSecret"])
        sealed = cfg.get("webhookSecretSealed")
        if not sealed:
            return None
        if self._webhook is None or self._webhook[0] != sealed:
            self._webhook = (sealed, secrets_box.unseal(sealed))
        return self._webhook[1]

    # -- registration (catalog file, at startup) ----------------------------------
    async def install(
        self, app_secret: str, catalog_json: bytes, webhook_secret: str | None = None
    ) -> dict[str, Any]:
        """Create the app or bring it in line with the file; idempotent across restarts.

        A changed secret is re-hashed (tokens already issued stay valid: they are
        signed with the JWT key, which never changes); a changed catalog becomes a
        new version; an identical one changes nothing.
        """
        if not isinstance(app_secret, str) or not app_secret:
            return {"error": "validation_error", "message": "appSecret must be a non-empty string"}
        try:
            catalog = decode_catalog(catalog_json)
        except CatalogError as exc:
            return {"error": "validation_error", "message": str(exc)}
        if catalog.app_id != self.key:
            return {"error": "validation_error", "message": "appId does not match this app"}
        cfg = self._cfg()
        created = cfg is None
        if cfg is None:
            cfg = {"jwtKey": secrets.token_bytes(JWT_KEY_BYTES), "createdAt": self.now()}
            secret_changed = True
        else:
            secret_changed = not await self._secret_ok(cfg, app_secret)
        if secret_changed:
            salt = secrets.token_bytes(16)
            cfg["salt"] = salt
            cfg["hash"] = await asyncio.to_thread(_scrypt, app_secret, salt)
            self._verified = _fast_digest(app_secret, salt)
        try:
            current = self._webhook_secret(cfg)
        except secrets_box.SecretsBoxError:
            current = None  # sealed under another key: seal the file's secret again
        # A secret still stored in the clear is sealed now (and the clear copy dropped).
        webhook_changed = current != webhook_secret or "webhookSecret" in cfg
        cfg.pop("webhookSecret", None)
        if webhook_changed:
            if webhook_secret:
                cfg["webhookSecretSealed"] = await asyncio.to_thread(secrets_box.seal, webhook_secret)
            else:
                cfg.pop("webhookSecretSealed", None)
        if created or secret_changed or webhook_changed:
            self.storage.put("cfg", cfg)
        meta = self._set_catalog(canonical_catalog_json(catalog))
        return {"created": created, "secretChanged": secret_changed and not created, **meta}

    # -- catalog -----------------------------------------------------------------------
    def _set_catalog(self, raw: bytes) -> dict[str, Any]:
        meta: dict[str, Any] = self.storage.get("catalogMeta") or {"etag": None, "version": 0}
        etag = catalog_etag(raw)
        if etag == meta["etag"]:
            return {"version": meta["version"], "etag": etag, "changed": False}
        meta = {"etag": etag, "version": meta["version"] + 1, "updatedAt": self.now()}
        self.storage.put("catalog", raw)
        self.storage.put("catalogMeta", meta)
        return {"version": meta["version"], "etag": etag, "changed": True}

    def catalog_etag(self) -> dict[str, Any] | None:
        """``{etag, version}`` of the current catalog (front doors poll this, ~1/s per app)."""
        meta = self.storage.get("catalogMeta")
        return None if meta is None else {"etag": meta["etag"], "version": meta["version"]}

    def catalog_snapshot(self) -> dict[str, Any] | None:
        """The current catalog as stored: ``{etag, version, catalog: <JSON bytes>}``."""
        meta = self.storage.get("catalogMeta")
        if meta is None:
            return None
        return {"etag": meta["etag"], "version": meta["version"], "catalog": self.storage.get("catalog")}

    async def get_catalog(self, app_secret: str) -> dict[str, Any]:
        """The catalog for the admin API (secret checked)."""
        cfg = self._cfg()
        if cfg is None or not await self._secret_ok(cfg, app_secret):
            return {"error": "invalid_credentials", "message": "Unknown appId or wrong appSecret."}
        snap = self.catalog_snapshot()
        assert snap is not None  # an app always has a catalog (install stores one)
        return snap

    async def replace_catalog(self, app_secret: str, catalog_json: bytes) -> dict[str, Any]:
        """Check the secret and swap the catalog in one turn; an invalid catalog changes nothing."""
        cfg = self._cfg()
        if cfg is None or not await self._secret_ok(cfg, app_secret):
            return {"error": "invalid_credentials", "message": "Unknown appId or wrong appSecret."}
        try:
            catalog = decode_catalog(catalog_json)
        except CatalogError as exc:
            return {"error": "validation_error", "message": str(exc)}
        if catalog.app_id != self.key:
            return {"error": "validation_error", "message": "appId does not match - at `$.appId`"}
        raw = canonical_catalog_json(catalog)
        meta = self._set_catalog(raw)
        return {**meta, "catalog": raw}

    # -- inbound webhooks -----------------------------------------------------------------
    def verify_webhook(self, signed_payload: bytes, signatures: list[str]) -> str:
        """``ok``, ``invalid`` or ``not_configured``; compares every candidate in constant time."""
        cfg = self._cfg()
        try:
            secret = None if cfg is None else self._webhook_secret(cfg)
        except secrets_box.SecretsBoxError as exc:
            log.error("questkit app %s: the webhook secret cannot be opened: %s", self.key, exc)
            return "not_configured"
        if not secret:
            return "not_configured"
        expected = hmac.new(secret.encode(), signed_payload, hashlib.sha256).hexdigest()
        ok = False
        for candidate in signatures:
            # No early exit: every candidate costs the same whether or not one matched.
            ok |= hmac.compare_digest(expected.encode(), candidate.encode())
        return "ok" if ok else "invalid"
