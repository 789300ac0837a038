"""Secrets at rest: AES-256-GCM under a key that lives outside the data directory.

A stolen copy of the data directory (a backup, a shard file) must not hand over
the secrets stored in it, so anything that has to be used again in plaintext
(webhook signing secrets, a customer's webhook secret) is stored as ``seal(s)``
and opened with ``unseal`` right before use.

Token format: ``v1.<key id>.<base64url(nonce || ciphertext || tag)>`` with a random
96-bit nonce per seal; the version and key id are authenticated as associated
data. The key id (first 8 hex digits of the key's SHA-256) lets ``unseal`` say
"sealed under another key" instead of a generic failure.

Where the key comes from, first match wins (read on each call, so a test or a
process can switch keys by changing the environment; a key *file* is read once
per path and cached):

1. ``QUESTLINE_SECRET_KEY``: 32 bytes, base64url (padding optional);
2. ``QUESTLINE_SECRET_KEY_FILE``: path of a file holding that text;
3. neither set: ``$XDG_CONFIG_HOME/questline/secret.key`` (default
   ``~/.config/questline/secret.key``). **If that file does not exist it is created
   on first use**, with a fresh random key and mode 0600 (directory 0700), and a
   warning is logged. Back it up: losing it makes every sealed secret unreadable.

Generate a key for the environment with
``python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("questline.secrets_box")

VERSION = "v1"
KEY_ENV = "QUESTLINE_SECRET_KEY"
KEY_FILE_ENV = "QUESTLINE_SECRET_KEY_FILE"
KEY_BYTES = 32
NONCE_BYTES = 12

_file_keys: dict[str, bytes] = {}


class SecretsBoxError(Exception):
    """A key is missing or malformed, or a token cannot be opened (wrong key, tampered)."""


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_key(text: str, source: str) -> bytes:
    try:
        key = _b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise SecretsBoxError(f"{source}: the secret key is not base64url text") from exc
    if len(key) != KEY_BYTES:
        raise SecretsBoxError(f"{source}: the secret key must be {KEY_BYTES} bytes (base64url), got {len(key)}")
    return key


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/questline/secret.key`` (``~/.config`` when the variable is unset)."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    root = Path(base) if base else Path.home() / ".config"
    return root / "questline" / "secret.key"


def _create_key_file(path: Path) -> None:
    """Create ``path`` with a new key, 0600, exclusively (two processes racing keep one key)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(_b64encode(secrets.token_bytes(KEY_BYTES)) + "\n")
        out.flush()
        os.fsync(out.fileno())
    log.warning("created a new secret key at %s (mode 0600): back it up, sealed secrets need it; "
                "set %s or %s to use another key", path, KEY_ENV, KEY_FILE_ENV)


def _read_key_file(path: Path, source: str) -> bytes:
    cached = _file_keys.get(str(path))
    if cached is not None:
        return cached
    try:
        text = path.read_text()
    except OSError as exc:
        raise SecretsBoxError(f"{source}: cannot read the secret key file {path}: {exc}") from exc
    key = _parse_key(text, f"{source} ({path})")
    _file_keys[str(path)] = key
    return key


def load_key() -> bytes:
    """The current key (see the module docstring for where it comes from)."""
    inline = os.environ.get(KEY_ENV, "").strip()
    if inline:
        return _parse_key(inline, KEY_ENV)
    file_name = os.environ.get(KEY_FILE_ENV, "").strip()
    if file_name:
        return _read_key_file(Path(file_name), KEY_FILE_ENV)
    path = default_key_path()
    if not path.exists():
        _create_key_file(path)
    return _read_key_file(path, "default key file")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def seal(plaintext: str) -> str:
    """Encrypt ``plaintext`` under the current key: ``v1.<key id>.<base64url>``."""
    key = load_key()
    kid = key_id(key)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), f"{VERSION}.{kid}".encode())
    return f"{VERSION}.{kid}.{_b64encode(nonce + sealed)}"


def unseal(token: str) -> str:
    """Open a token from :func:`seal`; :class:`SecretsBoxError` says why it cannot be opened."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise SecretsBoxError(f"not a sealed secret of version {VERSION}")
    _, kid, body = parts
    key = load_key()
    if kid != key_id(key):
        raise SecretsBoxError(f"this secret was sealed under another key (key id {kid}, current key id "
                              f"{key_id(key)}); set {KEY_ENV} or {KEY_FILE_ENV} to the key it was sealed with")
    try:
        raw = _b64decode(body)
    except (binascii.Error, ValueError) as exc:
        raise SecretsBoxError("the sealed secret is corrupted (not base64url)") from exc
    if len(raw) < NONCE_BYTES + 16:
        raise SecretsBoxError("the sealed secret is corrupted (too short)")
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{VERSION}.{kid}".encode())
    except InvalidTag as exc:
        raise SecretsBoxError("the sealed secret was tampered with or corrupted (authentication failed)") from exc
    return plain.decode()
