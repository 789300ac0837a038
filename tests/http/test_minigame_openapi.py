"""The surface's OpenAPI document is built from the same table and Structs as the routes."""

from __future__ import annotations

from starlette.routing import Route

from questline.http.minigame import OPENAPI_PATH, STATUS, minigame_routes
from tests.http.minigame_support import Game, game_fixture  # noqa: F401


async def test_openapi_covers_every_route_and_documented_error(game: Game) -> None:
    r = await game.client.get(OPENAPI_PATH)
    assert r.status_code == 200
    doc = r.json()
    served = {
        (method.lower(), route.path)
        for route in minigame_routes()
        if isinstance(route, Route) and route.path != OPENAPI_PATH
        for method in (route.methods or ()) - {"HEAD"}
    }
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == served
    session = doc["paths"]["/api/minigame/session"]["post"]
    assert set(session["responses"]) == {"200", "400", "401", "403", "404", "409", "429"}
    result_errors = " ".join(v["description"] for k, v in doc["paths"]["/api/minigame/result"]["post"]["responses"].items() if k != "200")
    for code in ("invalid_signature", "session_not_found", "session_expired", "session_already_used",
                 "duration_too_short", "duration_too_long", "invalid_event_hash", "character_mismatch"):
        assert code in result_errors
    schema = doc["components"]["schemas"]["SessionResponse"]
    assert set(schema["required"]) == {"token", "seed", "type", "min_duration_ms", "max_duration_ms", "skill_band"}
    gated = doc["paths"]["/api/board/{id}/accept"]["post"]
    assert any(p["name"] == "Minigame-Result" for p in gated["parameters"])
    assert set(STATUS.values()) >= {400, 401, 403, 404, 408, 409, 429}
