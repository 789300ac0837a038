"""The app ``questline serve`` builds (admission control included), for uvicorn --factory.

The overload test runs this app in its own process (``uvicorn tests.http.overload_app:app --factory``) so it can
observe the server's memory and survival from outside. Settings come from
``QUESTLINE_RUNTIME``, ``QUESTLINE_SHARDS``, ``QUESTLINE_DATA_DIR`` and ``QUESTLINE_CATALOG``.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from questline import surfaces
from questline.engine import EngineConfig, create_runtime
from questline.http import create_app


def app() -> Starlette:
    served = surfaces.load_surfaces()
    config = EngineConfig(
        actor_classes=surfaces.actor_classes(served),
        shards=int(os.environ.get("QUESTLINE_SHARDS", "2")),
        data_dir=Path(os.environ["QUESTLINE_DATA_DIR"]),
    )
    runtime = create_runtime(os.environ.get("QUESTLINE_RUNTIME", "local"), config)
    return create_app(runtime, extra_routes=surfaces.routes(served), on_startup=surfaces.startup_hooks(served))
