"""Builders shared by the rules tests: small catalogs and UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from questline.rules.questkit_models import (
    BadgeReward,
    Campaign,
    CurrencyReward,
    Event,
    Mission,
    MissionCriteria,
    Reward,
)


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Unix ms of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


# Monday 2024-05-20 00:00:00 UTC: the start of an ISO week and of a UTC day.
MONDAY = ms(2024, 5, 20)
DAY = 86_400_000


def mission(
    id: str = "m1",
    *,
    event_name: str = "purchase.completed",
    count: int = 3,
    window: Any = "lifetime",
    filter: dict[str, Any] | None = None,
    reward: Reward | None = None,
    campaign_id: str | None = None,
    expires_at: int | None = None,
    title: str | None = None,
) -> Mission:
    return Mission(
        id=id,
        title=title if title is not None else f"Mission {id}",
        description="",
        criteria=MissionCriteria(event_name=event_name, count=count, window=window, filter=filter),
        reward=reward if reward is not None else CurrencyReward(currency="coins", amount=10),
        campaign_id=campaign_id,
        expires_at=expires_at,
    )


def campaign(
    id: str = "c1",
    mission_ids: list[str] | None = None,
    *,
    start_at: int = 0,
    end_at: int = MONDAY + 365 * DAY,
    title: str | None = None,
) -> Campaign:
    return Campaign(
        id=id,
        title=title if title is not None else f"Campaign {id}",
        description="",
        start_at=start_at,
        end_at=end_at,
        mission_ids=mission_ids if mission_ids is not None else [],
    )


def event(
    timestamp: int,
    name: str = "purchase.completed",
    payload: dict[str, Any] | None = None,
    user_id: str = "usr_1",
) -> Event:
    return Event(user_id=user_id, name=name, payload=payload or {}, timestamp=timestamp)


def badge() -> BadgeReward:
    return BadgeReward(badge_id="b1")
