"""The QuestKit actor kinds and the client the front door uses to talk to them.

``QuestKitClient`` is the one place that knows the user actor's catalog protocol
(pass the etag you believe current; on ``catalogMiss`` have the actor load it and
retry) and how fresh a front door's idea of "current" is: it asks the app actor
at most once per ``CATALOG_REFRESH_S`` per app, so a catalog replacement reaches
every front-door process within that bound (and the process that served the
replacement at once, through ``note_catalog``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from questline.actors.questkit_app import QuestKitAppActor
from questline.actors.questkit_common import app_address, user_address
from questline.actors.questkit_user import QuestKitUserActor
from questline.actors.ratelimit import RateLimitActor
from questline.engine import Actor, Runtime

QUESTKIT_ACTORS: list[type[Actor]] = [QuestKitAppActor, QuestKitUserActor, RateLimitActor]

CATALOG_REFRESH_S = 1.0
_MISS_RETRIES = 3


class AppNotFound(Exception):
    """The app id names no registered app."""


class QuestKitClient:
    """Per-process helper over a runtime: catalog etags per app, user calls with catalog retry."""

    def __init__(self, runtime: Runtime, refresh_s: float = CATALOG_REFRESH_S) -> None:
        self.runtime = runtime
        self.refresh_s = refresh_s
        self._etags: dict[str, tuple[str, float]] = {}
        self._refreshing: dict[str, asyncio.Future[str]] = {}

    def note_catalog(self, app_id: str, etag: str) -> None:
        """Adopt a catalog etag learnt first-hand (admin replace, install, a user actor's load)."""
        self._etags[app_id] = (etag, time.monotonic())

    async def catalog_etag(self, app_id: str) -> str:
        """The etag this process treats as current (at most ``refresh_s`` old)."""
        known = self._etags.get(app_id)
        if known is not None and time.monotonic() - known[1] < self.refresh_s:
            return known[0]
        pending = self._refreshing.get(app_id)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._refreshing[app_id] = fut
        try:
            meta = await self.runtime.call(app_address(app_id), "catalog_etag")
            if meta is None:
                raise AppNotFound(app_id)
            self.note_catalog(app_id, meta["etag"])
            fut.set_result(meta["etag"])
            return meta["etag"]
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            del self._refreshing[app_id]

    async def call_user(
        self, app_id: str, user_id: str, method: str, *args: Any, catalog: bool = True
    ) -> dict[str, Any]:
        """Call a user actor method; catalog methods get the etag first and retry on a miss."""
        address = user_address(app_id, user_id)
        if not catalog:
            return await self.runtime.call(address, method, *args)
        etag: str | None = await self.catalog_etag(app_id)
        for _ in range(_MISS_RETRIES):
            reply = await self.runtime.call(address, method, etag, *args)
            if not reply.get("catalogMiss"):
                return reply
            loaded = await self.runtime.call(address, "load_catalog", etag)
            if loaded is None:
                raise AppNotFound(app_id)
            if loaded != etag:
                self.note_catalog(app_id, loaded)
            etag = loaded
        raise RuntimeError(f"catalog of app {app_id!r} kept changing during the call")
