"""secrets_box: round trips, random nonces, wrong key / tamper errors, and key sources."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from questline import secrets_box
from questline.secrets_box import SecretsBoxError, seal, unseal


def b64key(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.fixture(autouse=True)
def _isolated_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads or creates the real ~/.config key."""
    monkeypatch.delenv(secrets_box.KEY_ENV, raising=False)
    monkeypatch.delenv(secrets_box.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(secrets_box, "_file_keys", {})


def test_round_trip_with_a_random_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(secrets_box.KEY_ENV, b64key(os.urandom(32)))
    first, second = seal("whsec_hello ünïcode"), seal("whsec_hello ünïcode")
    assert first != second  # a fresh nonce per seal
    assert first.startswith("v1.") and "whsec_hello" not in first
    assert unseal(first) == unseal(second) == "whsec_hello ünïcode"
    assert unseal(seal("")) == ""


def test_wrong_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(secrets_box.KEY_ENV, b64key(os.urandom(32)))
    token = seal("s3cret")
    monkeypatch.setenv(secrets_box.KEY_ENV, b64key(os.urandom(32)))
    with pytest.raises(SecretsBoxError, match="another key"):
        unseal(token)


def test_tampering_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(secrets_box.KEY_ENV, b64key(os.urandom(32)))
    token = seal("s3cret")
    version, kid, body = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1
    tampered = f"{version}.{kid}." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(SecretsBoxError, match="tampered"):
        unseal(tampered)
    with pytest.raises(SecretsBoxError, match="version"):
        unseal("v2." + token[3:])
    with pytest.raises(SecretsBoxError, match="corrupted"):
        unseal(f"{version}.{kid}.AAAA")
    with pytest.raises(SecretsBoxError):
        unseal("plaintext")


def test_malformed_keys_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(secrets_box.KEY_ENV, b64key(os.urandom(16)))
    with pytest.raises(SecretsBoxError, match="32 bytes"):
        seal("x")
    monkeypatch.setenv(secrets_box.KEY_ENV, "not base64 !!")
    with pytest.raises(SecretsBoxError):
        seal("x")


def test_key_file_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = os.urandom(32)
    key_file = tmp_path / "k"
    key_file.write_text(b64key(key) + "\n")
    monkeypatch.setenv(secrets_box.KEY_FILE_ENV, str(key_file))
    token = seal("from file")
    monkeypatch.delenv(secrets_box.KEY_FILE_ENV)
    monkeypatch.setenv(secrets_box.KEY_ENV, b64key(key))  # the same key, given inline
    assert unseal(token) == "from file"
    monkeypatch.delenv(secrets_box.KEY_ENV)
    monkeypatch.setenv(secrets_box.KEY_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(SecretsBoxError, match="cannot read"):
        seal("x")


def test_default_key_file_is_created_0600_once(tmp_path: Path) -> None:
    path = tmp_path / "config" / "questline" / "secret.key"
    assert not path.exists()
    token = seal("first use")
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    content = path.read_text()
    secrets_box._file_keys.clear()  # a new process: the same file, the same key
    assert unseal(token) == "first use"
    assert path.read_text() == content
    assert len(base64.urlsafe_b64decode(content.strip() + "=" * (-len(content.strip()) % 4))) == 32
