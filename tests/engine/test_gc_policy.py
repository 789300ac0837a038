"""The server processes' collector settings (applied by the entry points, not on import)."""

from __future__ import annotations

import gc

from questline.engine import gc_policy


def test_tune_for_serving_freezes_startup_objects_and_raises_thresholds() -> None:
    before = gc.get_threshold()
    try:
        gc_policy.tune_for_serving()
        assert gc.get_threshold() == (gc_policy.GEN0_THRESHOLD, gc_policy.GEN1_THRESHOLD, gc_policy.GEN2_THRESHOLD)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_importing_the_engine_leaves_the_collector_alone() -> None:
    import subprocess
    import sys

    code = (
        "import gc; before = gc.get_threshold(); import questline.engine, questline.cli; "
        "print(gc.get_threshold() == before, gc.get_freeze_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "0"]
