"""Demo content shipped with questline (catalogs a fresh checkout can serve).

Demo mode (``serve --demo``, i.e. ``QUESTLINE_DEMO``) is the one switch that allows
built-in demo secrets and demo tenants; every surface asks ``demo_mode()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEMO_ENV = "QUESTLINE_DEMO"


def demo_mode(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(DEMO_ENV, "").strip().lower() in ("1", "true", "yes", "on")
