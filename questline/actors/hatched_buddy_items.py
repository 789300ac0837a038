"""Buddy turns for items: purchase, unlock, purchased list and equip.

A mixin of ``BuddyActor`` (one actor, one owner): a purchase debits coins and
grants the item in the same turn, so it happens whole or not at all.
"""

from __future__ import annotations


class ItemTurns:
    """Purchase, unlock and equip turns of a buddy."""
