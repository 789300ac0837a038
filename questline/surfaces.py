"""The surfaces questline serves, assembled in one place.

Each surface contributes HTTP routes, the actor kinds it needs and optional
startup hooks (e.g. loading its demo catalog). The CLI and tests build the app
from this list, so adding a surface never touches the CLI or the app factory.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.routing import BaseRoute

from questline.actors.hub import HubActor
from questline.demo import demo_mode
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
    from questline.actors.questkit import QUESTKIT_ACTORS
    from questline.http.hatched import HATCHED_ACTORS, hatched_routes
    from questline.http.minigame import minigame_routes
    from questline.http.questkit import questkit_routes
    from questline.http.questkit_stream import questkit_stream_routes
    from questline.http.questmaster import QUESTMASTER_ACTORS, questmaster_routes

    try:
        questmaster = questmaster_routes()
    except (RuntimeError, ValueError) as exc:
        raise SurfaceConfigError(f"QuestMaster: {exc}") from exc
    return [
        Surface("live-updates", actors=[HubActor]),
        Surface(
            "questkit",
            routes=questkit_routes(extra_routes=questkit_stream_routes()),
            actors=list(QUESTKIT_ACTORS),
            startup=_questkit_catalog_hooks(),
        ),
        Surface("questmaster", routes=questmaster, actors=list(QUESTMASTER_ACTORS)),
        Surface("minigame", routes=minigame_routes(), actors=list(MINIGAME_ACTORS), startup=[install_demo_minigame]),
        Surface("hatched", routes=hatched_routes(), actors=list(HATCHED_ACTORS)),
    ]


def _questkit_catalog_hooks() -> list[StartupHook]:
    """Install ``QUESTLINE_CATALOG`` (``--catalog``); in demo mode the demo app if none is given.

    Outside demo mode the demo app is never installed: its secret has a public default.
    """
    from questline.demo.questkit import DEMO_CATALOG_PATH
    from questline.questkit_catalog import CatalogFileError, catalog_startup_hook

    path = os.environ.get("QUESTLINE_CATALOG", "").strip() or (DEMO_CATALOG_PATH if demo_mode() else None)
    if path is None:
        return []
    try:
        return [catalog_startup_hook(path)]
    except (CatalogFileError, OSError) as exc:
        raise SurfaceConfigError(f"QuestKit catalog {path}: {exc}") from exc


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
