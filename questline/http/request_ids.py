"""Request ids: every request gets one (the caller's ``X-Request-Id`` if sane), echoed back.

The front door (:class:`questline.http.frontdoor.FrontDoorMiddleware`) assigns it
and stores it in ``scope["state"]["request_id"]`` (``request.state.request_id``
in Starlette handlers) so error bodies and logs can quote it.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import MutableMapping
from typing import Any

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")  # as ASGI spells header names
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


_ID_PREFIX = "req_" + os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """``req_`` + 32 hex: 64 random bits per process, then a counter.

    Unique, not secret (it is a correlation id, echoed to the caller), and free of a
    syscall per request, unlike ``uuid4``.
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def sanitize_request_id(raw: str | None) -> str | None:
    """The caller's id if it is a short, header- and log-safe token; otherwise ``None``.

    A hostile id (newlines, quotes, megabytes) must never reach logs or headers.
    """
    if raw is not None and _SANE_ID.fullmatch(raw):
        return raw
    return None


def get_request_id(scope: MutableMapping[str, Any]) -> str | None:
    """The id the front door assigned to this request, if it ran."""
    state = scope.get("state")
    if isinstance(state, MutableMapping):
        value = state.get("request_id")
        return value if isinstance(value, str) else None
    return None
