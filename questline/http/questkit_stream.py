"""``GET /v1/sse/updates``: a QuestKit user's live updates (seed 000).

Frames are ``id: <seq>`` + ``event: update`` + ``data: <SDKUpdate JSON>``, read
from the update log the user actor keeps (``hub_of``). The SDK reads the stream with ``fetch`` and an
``Authorization`` header; browsers' EventSource cannot set headers, so a
``?token=`` query parameter is accepted too. The token is fully checked
(signature, expiry, revocation) before the stream opens, and the stream ends
when the token expires.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from questline.actors.questkit_common import hub_of
from questline.http.questkit_auth import authenticate, bearer_token, questkit_endpoint
from questline.http.sse import hub_stream


@questkit_endpoint
async def sse_updates(request: Request) -> Response:
    token = bearer_token(request) or request.query_params.get("token") or None
    principal = await authenticate(request, token)
    return await hub_stream(
        request,
        request.app.state.runtime,
        hub_of(principal.app_id, principal.user_id),
        expires_at_ms=principal.exp_ms,
    )


def questkit_stream_routes() -> list[Route]:
    """Mounted inside QuestKit's ``/v1`` (so it shares its CORS policy)."""
    return [Route("/sse/updates", sse_updates, methods=["GET"], name="questkit_sse_updates")]
