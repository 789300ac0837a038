"""Buddy turns for progression: skills, badges, tokens, evolution, gates and metrics.

A mixin of ``BuddyActor`` (one actor, one owner), kept in its own module so each
concern of the buddy reads on its own.
"""

from __future__ import annotations


class ProgressionTurns:
    """Skills, badges, tokens, evolution and gate turns of a buddy."""
