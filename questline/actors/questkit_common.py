"""What the QuestKit actors share: addresses, id rules and the per-process catalog cache.

Catalogs are content-addressed: an ``etag`` is a hash of the catalog's canonical
JSON, so a compiled catalog cached under ``(app_id, etag)`` can never be the wrong
one, whichever runtime, data directory or restart produced it. The cache only
ever holds immutable catalogs, so user actors on the same shard process share
them without copying.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from questline.engine import Address
from questline.rules.missions import mission_campaigns
from questline.rules.questkit_models import Campaign, Catalog, Mission

APP_KIND = "questkit.app"
USER_KIND = "questkit.user"

# App ids become part of actor keys (``app/user``): no slash, so the split is unambiguous.
APP_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_USER_ID_LENGTH = 256
MAX_IDEMPOTENCY_KEY_LENGTH = 255

_CACHE_SIZE = 128


def app_address(app_id: str) -> Address:
    return Address(APP_KIND, app_id)


def user_address(app_id: str, user_id: str) -> Address:
    return Address(USER_KIND, f"{app_id}/{user_id}")


def hub_of(app_id: str, user_id: str) -> Address:
    """Where one user's live updates are sequenced (``GET /v1/sse/updates`` watches it).

    The user actor keeps its own update log (:class:`~questline.actors.hub.UpdateLog`):
    it is the only source of the stream, so frames are durable with the same commit as
    the change they describe.
    """
    return user_address(app_id, user_id)


def valid_app_id(app_id: object) -> bool:
    return isinstance(app_id, str) and APP_ID_PATTERN.fullmatch(app_id) is not None


def valid_user_id(user_id: object) -> bool:
    return isinstance(user_id, str) and 0 < len(user_id) <= MAX_USER_ID_LENGTH


def valid_idempotency_key(key: object) -> bool:
    """Printable ASCII, 1..255 characters (it is echoed into storage keys and logs)."""
    return (
        isinstance(key, str)
        and 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        and key.isascii()
        and key.isprintable()  # ASCII and printable: space to "~"
    )


def canonical_catalog_json(catalog: Catalog) -> bytes:
    """The stored form of a catalog: msgspec's JSON of the Struct (stable field order)."""
    return msgspec.json.encode(catalog)


def catalog_etag(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class CompiledCatalog:
    """One immutable catalog version with the indexes the user actor needs per turn."""

    app_id: str
    etag: str
    version: int
    catalog: Catalog
    by_id: dict[str, Mission] = field(default_factory=dict)
    by_event: dict[str, list[Mission]] = field(default_factory=dict)
    campaigns_by_id: dict[str, Campaign] = field(default_factory=dict)
    campaign_of: dict[str, Campaign] = field(default_factory=dict)

    @property
    def missions(self) -> list[Mission]:
        return self.catalog.missions

    @property
    def campaigns(self) -> list[Campaign]:
        return self.catalog.campaigns


def compile_catalog(raw: bytes, etag: str, version: int) -> CompiledCatalog:
    """Decode a stored catalog (already validated when it was accepted) and index it."""
    catalog = msgspec.json.decode(raw, type=Catalog)
    by_event: dict[str, list[Mission]] = {}
    for mission in catalog.missions:
        by_event.setdefault(mission.criteria.event_name, []).append(mission)
    return CompiledCatalog(
        app_id=catalog.app_id,
        etag=etag,
        version=version,
        catalog=catalog,
        by_id={m.id: m for m in catalog.missions},
        by_event=by_event,
        campaigns_by_id={c.id: c for c in catalog.campaigns},
        campaign_of=mission_campaigns(catalog.missions, catalog.campaigns),
    )


class CatalogCache:
    """A small LRU of compiled catalogs keyed by ``(app_id, etag)`` (one per process)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], CompiledCatalog] = OrderedDict()

    def get(self, app_id: str, etag: str | None) -> CompiledCatalog | None:
        if etag is None:
            return None
        item = self._items.get((app_id, etag))
        if item is not None:
            self._items.move_to_end((app_id, etag))
        return item

    def put(self, compiled: CompiledCatalog) -> None:
        key = (compiled.app_id, compiled.etag)
        self._items[key] = compiled
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


CATALOGS = CatalogCache()
"""The process-wide cache used by user actors (safe to share: entries are immutable)."""
