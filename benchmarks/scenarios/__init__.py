"""The scenario registry: one module per scenario, each defining ``SCENARIO``.

Modules whose name starts with ``_`` are helpers, not scenarios. Discovery is
lazy (:func:`registry`), so importing a request source from a scenario module
in a load-generator process does not import every other scenario.
"""

from __future__ import annotations

import importlib
import pkgutil

from benchmarks.harness import Scenario


def registry() -> dict[str, Scenario]:
    """Every scenario, by name, in run order."""
    found: list[Scenario] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        scenario = getattr(module, "SCENARIO", None)
        if not isinstance(scenario, Scenario):
            raise TypeError(f"{module.__name__} defines no SCENARIO = Scenario(...)")
        found.append(scenario)
    found.sort(key=lambda s: (s.order, s.name))
    return {s.name: s for s in found}
