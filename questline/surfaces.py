"""The surfaces questline serves, assembled in one place.

Each surface contributes HTTP routes, the actor kinds it needs and optional
startup hooks (e.g. loading its demo catalog). The CLI and tests build the app
from this list, so adding a surface never touches the CLI or the app factory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.routing import BaseRoute

from questline.actors.hub import HubActor
from questline.engine import Actor, Runtime

StartupHook = Callable[[Runtime], Awaitable[None]]


class SurfaceConfigError(Exception):
    """A surface cannot start with the settings given (e.g. a required secret is missing)."""


@dataclass
class Surface:
    name: str
    routes: list[BaseRoute] = field(default_factory=list)
    actors: list[type[Actor]] = field(default_factory=list)
    startup: list[StartupHook] = field(default_factory=list)


def load_surfaces() -> list[Surface]:
    """Every surface available in this build."""
    from questline.actors.minigame import MINIGAME_ACTORS, install_demo_minigame
    from questline.http.hatched import HATCHED_ACTORS, hatched_routes
    from questline.http.minigame import minigame_routes
    from questline.http.questmaster import QUESTMASTER_ACTORS, questmaster_routes

    try:
        questmaster = questmaster_routes()
    except (RuntimeError, ValueError) as exc:
        raise SurfaceConfigError(f"QuestMaster: {exc}") from exc
    return [
        Surface("live-updates", actors=[HubActor]),
        Surface("questmaster", routes=questmaster, actors=list(QUESTMASTER_ACTORS)),
        Surface("minigame", routes=minigame_routes(), actors=list(MINIGAME_ACTORS), startup=[install_demo_minigame]),
        Surface("hatched", routes=hatched_routes(), actors=list(HATCHED_ACTORS)),
    ]


def actor_classes(surfaces: list[Surface]) -> list[type[Actor]]:
    seen: dict[str, type[Actor]] = {}
    for surface in surfaces:
        for cls in surface.actors:
            if seen.setdefault(cls.kind, cls) is not cls:
                raise ValueError(f"actor kind {cls.kind!r} registered twice")
    return list(seen.values())


def routes(surfaces: list[Surface]) -> list[BaseRoute]:
    return [route for surface in surfaces for route in surface.routes]


def startup_hooks(surfaces: list[Surface]) -> list[StartupHook]:
    return [hook for surface in surfaces for hook in surface.startup]
