"""Hatched identity actors: accounts by email, API keys by key id, the signing secret.

Each is tiny and keyed so that one request needs one call: login reads the
account named by the email, and an API key carries its own id, so authenticating
a request is one call to the key's index actor (no scan, no per-customer hop).
"""

from __future__ import annotations

import secrets
from typing import Any

from questline.engine import Actor, Address
from questline.rules.hatched_errors import HatchedError


def account_address(email: str) -> Address:
    return Address("hatched.account", email.strip().lower())


def keyindex_address(key_id: str) -> Address:
    return Address("hatched.keyindex", key_id)


SYSTEM_ADDRESS = Address("hatched.system", "global")


class AccountActor(Actor):
    """One dashboard login: the email is the key, so registration is unique by construction."""

    kind = "hatched.account"

    def register(self, customer_id: str, password: dict[str, str]) -> dict[str, Any]:
        if self.storage.get("account") is not None:
            raise HatchedError(409, "email_already_registered", "An account with this email already exists.")
        account = {"customer_id": customer_id, "password": password, "created_at": self.now()}
        self.storage.put("account", account)
        return account

    def get(self) -> dict[str, Any] | None:
        """The stored record (password hash included): the HTTP layer verifies off the shard."""
        return self.storage.get("account")


class KeyIndexActor(Actor):
    """One API key's verifier: its sha256, owner, type, scopes and revocation flag."""

    kind = "hatched.keyindex"

    def register(self, record: dict[str, Any]) -> None:
        if self.storage.get("key") is not None:
            raise HatchedError(409, "key_id_collision", "Key id already in use; retry.")
        self.storage.put("key", {**record, "revoked": False})

    def revoke(self) -> None:
        record = self.storage.get("key")
        if record is not None and not record["revoked"]:
            record["revoked"] = True
            record["revoked_at"] = self.now()
            self.storage.put("key", record)

    def lookup(self) -> dict[str, Any] | None:
        """The record if the key exists and is live; the caller compares hashes."""
        record = self.storage.get("key")
        if record is None or record["revoked"]:
            return None
        return record


class SystemActor(Actor):
    """Process-independent settings: the dashboard JWT secret, made once and kept durable,
    so several front-door processes sign and verify with the same key without configuration."""

    kind = "hatched.system"

    def jwt_secret(self) -> str:
        secret = self.storage.get("jwt_secret")
        if secret is None:
            secret = secrets.token_urlsafe(48)
            self.storage.put("jwt_secret", secret)
        return secret
