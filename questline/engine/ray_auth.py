"""Ray cluster authentication for a questline deployment (imports no Ray: it must run first).

Ray (>= 2.59) enables token auth for local clusters with a token of its own, so
a second front door could not attach with ``--ray-address``. Unless the operator
set ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH`` (or ``RAY_AUTH_MODE=disabled``),
the token lives in the data dir (mode 0600), which front doors of one deployment
share. Ray reads these settings when it is imported, hence a module of its own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def configure_ray_auth(data_dir: Path) -> None:
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return
    if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        path = Path(data_dir) / "ray_auth_token"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(path.resolve())
    os.environ["RAY_AUTH_MODE"] = "token"
