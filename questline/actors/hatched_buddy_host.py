"""What the buddy's mixins may use of ``BuddyActor`` and ``Actor``, declared once.

The mixins (progression, items, analytics facts) are halves of one actor; this
base only tells type checkers which of the actor's members they rely on. It has
no runtime members, so it adds nothing to the buddy's behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from questline.engine import Address
    from questline.engine.actor import Storage
    from questline.rules.hatched import ProgressState
    from questline.rules.hatched_models import ConfigContent


class BuddyHost:
    """The members of ``BuddyActor`` / ``Actor`` the buddy mixins call."""

    if TYPE_CHECKING:
        storage: Storage
        key: str

        def now(self) -> int: ...
        async def call(self, address: Address, method: str, *args: Any) -> Any: ...
        def _buddy(self) -> dict[str, Any]: ...
        def _active(self) -> dict[str, Any]: ...
        def _save(self, buddy: dict[str, Any]) -> dict[str, Any]: ...
        def _remembered(self, idempotency_key: str | None, request: dict[str, Any]) -> dict[str, Any] | None: ...
        def _remember(self, idempotency_key: str | None, request: dict[str, Any],
                      response: dict[str, Any]) -> None: ...
        def _append_ledger(self, currency: str, delta: int, balance_after: int, reason: str, source: str,
                           ref: str | None) -> dict[str, Any]: ...
        def _config(self, buddy: dict[str, Any]) -> ConfigContent: ...
        def _progress(self, buddy: dict[str, Any]) -> ProgressState: ...
