"""Wire conventions shared by every Hatched route: strict snake_case bodies, JSON
responses, query parsing and the two documented pagination shapes.

Bodies decode into msgspec Structs declared with ``forbid_unknown_fields=True``;
msgspec's messages are rewritten into the contract's style
(``property userId should not exist``) so SDKs that surface them read the same.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from questline.http.limits import request_body
from questline.rules.hatched_errors import HatchedError

T = TypeVar("T")

_encoder = msgspec.json.Encoder()

MAX_BODY_BYTES = 1_000_000
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`(?: - at `\$(?P<path>[^`]*)`)?")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`(?: - at `\$(?P<path>[^`]*)`)?")
_AT = re.compile(r"^(?P<what>.*?) - at `\$(?P<path>[^`]*)`$")


def _dotted(path: str | None) -> str:
    """msgspec's ``.a[0].b`` -> ``a.0.b`` (the property path style of the contract)."""
    if not path:
        return ""
    return path.replace("[", ".").replace("]", "").lstrip(".")


def validation_message(error: str) -> str:
    """Rewrite one msgspec validation message into the contract's style."""
    if m := _UNKNOWN.fullmatch(error):
        prefix = _dotted(m["path"])
        name = f"{prefix}.{m['field']}" if prefix else m["field"]
        return f"property {name} should not exist"
    if m := _MISSING.fullmatch(error):
        prefix = _dotted(m["path"])
        name = f"{prefix}.{m['field']}" if prefix else m["field"]
        return f"property {name} is required"
    if m := _AT.fullmatch(error):
        return f"property {_dotted(m['path'])}: {m['what']}"
    return error


def decode_body(raw: bytes, type: type[T]) -> T:
    """Decode and validate a request body; any failure is a 400 that changes nothing."""
    if len(raw) > MAX_BODY_BYTES:
        raise HatchedError(413, "payload_too_large", f"Request body exceeds {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=type)
    except msgspec.ValidationError as exc:
        message = validation_message(str(exc))
        raise HatchedError(400, "validation_error", message, {"errors": [message]}) from exc
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HatchedError(400, "invalid_json", "Request body is not valid JSON.") from exc


async def read_body(request: Request, type: type[T]) -> T:
    return decode_body(await request_body(request), type)


def idempotency_key(request: Request, body_key: str | None) -> str | None:
    """The write's idempotency key: the body's ``idempotency_key`` or the ``Idempotency-Key``
    header (both allowed, but then they must agree)."""
    header = request.headers.get("idempotency-key")
    if header and body_key and header != body_key:
        message = "Idempotency-Key header and idempotency_key differ."
        raise HatchedError(400, "validation_error", message, {"errors": [message]})
    return body_key or header or None


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from Structs, dicts or lists (msgspec encodes both)."""
    return Response(_encoder.encode(data), status_code=status, media_type="application/json", headers=headers)


def path_param(request: Request, name: str) -> str:
    return str(request.path_params[name])


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within ``[lo, hi]``; anything else is a 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        message = f"query {name} must be an integer between {lo} and {hi}"
        raise HatchedError(400, "validation_error", message, {"errors": [message]})
    return value


def query_enum(request: Request, name: str, allowed: Sequence[str]) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        message = f"query {name} must be one of: {', '.join(allowed)}"
        raise HatchedError(400, "validation_error", message, {"errors": [message]})
    return raw


def query_bool(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


# -- pagination ----------------------------------------------------------------------
def page_params(request: Request) -> tuple[int, int]:
    return (
        query_int(request, "page", 1, 1, 1_000_000),
        query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
    )


def paginate_page(items: Sequence[Any], page: int, limit: int) -> dict[str, Any]:
    """Page-based shape ``{data, meta: {page, limit, total}}``."""
    start = (page - 1) * limit
    return {"data": list(items[start : start + limit]), "meta": {"page": page, "limit": limit, "total": len(items)}}


def encode_cursor(position: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(list(position))).decode().rstrip("=")


def decode_cursor(raw: str) -> list[Any]:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        value = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, msgspec.DecodeError) as exc:
        raise HatchedError(400, "invalid_cursor", "The cursor is malformed or expired.") from exc
    if not isinstance(value, list):
        raise HatchedError(400, "invalid_cursor", "The cursor is malformed or expired.")
    return value


def paginate_cursor(
    items: Sequence[dict[str, Any]],
    request: Request,
    sort_key: Callable[[dict[str, Any]], list[Any]],
) -> dict[str, Any]:
    """Cursor shape ``{data, nextCursor}`` over items sorted descending by ``sort_key``.

    The cursor is the sort key of the last item returned, so inserts between pages
    neither repeat nor skip items.
    """
    limit = query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    ordered = sorted(items, key=sort_key, reverse=True)
    raw = request.query_params.get("cursor")
    if raw:
        after = decode_cursor(raw)
        try:
            ordered = [item for item in ordered if sort_key(item) < after]
        except TypeError as exc:
            raise HatchedError(400, "invalid_cursor", "The cursor is malformed or expired.") from exc
    page = ordered[:limit]
    next_cursor = encode_cursor(sort_key(page[-1])) if len(ordered) > limit else None
    return {"data": page, "nextCursor": next_cursor}
