"""Per-user mission state machine (reference: "Evaluation of one event against one mission").

The user's actor keeps one ``ProgressRecord`` per touched mission and feeds every
event through ``apply_event``; these functions never read the clock, so a replay
with the same ``now_ms`` gives the same result.

States: no record (never touched) -> ``active`` (count 1..target-1) ->
``completed`` (count == target, waiting for a claim) -> ``claimed`` (dormant).
Window rollover needs no timer: a record whose window is older than the window
containing "now" simply reads as fresh (count 0), and a claimed mission becomes
available again, the next time it is looked at.

``locked`` is never stored; it is a view. ``progress_view`` shows ``locked`` for
a mission that cannot progress right now -- its campaign has not started or has
ended, or it is past ``expiresAt`` -- unless it is ``completed`` or ``claimed``
in the current window (a finished reward must stay visible and claimable).
Campaign timing is passed in as the optional ``campaign`` argument; with
``apply_event`` the same rule drops events whose timestamp falls outside the
campaign's ``[startAt, endAt]`` (both ends inclusive, like ``expiresAt``).

Clock skew: a record is never moved backwards. If a record belongs to a window
later than the one containing ``now_ms`` (a front door with a lagging clock), it
is shown as is and events are dropped rather than wiping its progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import msgspec

from questline.rules.filters import matches
from questline.rules.questkit_models import (
    Campaign,
    Event,
    Mission,
    MissionCompletedUpdate,
    MissionProgress,
    MissionProgressUpdate,
    SDKUpdate,
    Status,
)
from questline.rules.windows import window_start

RecordStatus = Literal["active", "completed", "claimed"]
Change = Literal["mission.progress", "mission.completed"]


class ProgressRecord(msgspec.Struct, rename="camel", omit_defaults=True):
    """What the user's actor stores per mission (small: it is journaled on every change).

    ``window_start`` is the window the count belongs to; ``claimed_window_start``
    the window in which the reward was claimed (set only when claimed).
    """

    status: RecordStatus
    current_count: int
    window_start: int
    updated_at: int
    claimed_window_start: int | None = None


class ClaimNotReady(Exception):
    """The mission is not completed in the current window (maps to 409 ``claim_not_ready``)."""


class EventOutcome(msgspec.Struct):
    """Result of one event against all missions: what to store and what to publish."""

    records: dict[str, ProgressRecord]  # mission id -> new record, only for changed missions
    changes: list[tuple[str, Change]]  # (mission id, update type) in publish order

    @property
    def missions_updated(self) -> list[str]:
        """``missionsUpdated`` of the POST /v1/events response, in catalog order."""
        return list(self.records)


def _record_window(record: ProgressRecord) -> int:
    if record.status == "claimed" and record.claimed_window_start is not None:
        return record.claimed_window_start
    return record.window_start


def current_record(
    mission: Mission, record: ProgressRecord | None, now_ms: int
) -> ProgressRecord | None:
    """``record`` if it still applies in the window containing ``now_ms``, else None (fresh)."""
    if record is None:
        return None
    if _record_window(record) < window_start(mission.criteria.window, now_ms):
        return None
    return record


def campaign_running(campaign: Campaign, ts_ms: int) -> bool:
    """Is ``ts_ms`` within the campaign, ``startAt`` and ``endAt`` included?"""
    return campaign.start_at <= ts_ms <= campaign.end_at


def is_open(mission: Mission, campaign: Campaign | None, ts_ms: int) -> bool:
    """Can the mission make progress at ``ts_ms``: not expired, campaign running?"""
    if mission.expires_at is not None and ts_ms > mission.expires_at:
        return False
    return campaign is None or campaign_running(campaign, ts_ms)


def mission_campaigns(
    missions: Iterable[Mission], campaigns: Iterable[Campaign]
) -> dict[str, Campaign]:
    """Mission id -> its campaign, from ``campaignId`` or else from ``missionIds``.

    ``validate_catalog`` guarantees the two agree and that a mission has at most one.
    """
    by_id = {campaign.id: campaign for campaign in campaigns}
    result: dict[str, Campaign] = {}
    for campaign in by_id.values():
        for mission_id in campaign.mission_ids:
            result.setdefault(mission_id, campaign)
    for mission in missions:
        if mission.campaign_id is not None and mission.campaign_id in by_id:
            result[mission.id] = by_id[mission.campaign_id]
    return result


def apply_event(
    mission: Mission,
    record: ProgressRecord | None,
    event: Event,
    now_ms: int,
    campaign: Campaign | None = None,
) -> tuple[ProgressRecord | None, list[Change]]:
    """Count ``event`` toward ``mission``: ``(new record, updates to publish)``.

    Returns ``(None, [])`` when the event does not count, so the caller writes
    and publishes nothing (the reference publishes nothing for missions already
    completed or claimed).
    """
    criteria = mission.criteria
    if event.name != criteria.event_name:
        return None, []
    if not matches(criteria.filter, event.payload):
        return None, []
    if not is_open(mission, campaign, event.timestamp):
        return None, []
    current = window_start(criteria.window, now_ms)
    if window_start(criteria.window, event.timestamp) != current:
        return None, []  # late event from a past window (or one from a future window)

    count = 0
    if record is not None:
        record_window = _record_window(record)
        if record_window > current:
            return None, []  # record is ahead of our clock: never move it backwards
        if record_window == current:
            if record.status != "active":
                return None, []  # completed waits for its claim; claimed is dormant
            count = record.current_count
        # else: progress from an earlier window restarts at 0

    target = criteria.count
    new_count = min(count + 1, target)
    status: RecordStatus = "completed" if new_count >= target else "active"
    new_record = ProgressRecord(
        status=status, current_count=new_count, window_start=current, updated_at=now_ms
    )
    changes: list[Change] = ["mission.progress"]
    if status == "completed":
        changes.append("mission.completed")
    return new_record, changes


def evaluate_event(
    missions: Sequence[Mission],
    records: Mapping[str, ProgressRecord],
    event: Event,
    now_ms: int,
    campaigns: Mapping[str, Campaign] | None = None,
) -> EventOutcome:
    """Run ``apply_event`` for every mission (``campaigns``: mission id -> campaign)."""
    campaigns = campaigns or {}
    outcome = EventOutcome(records={}, changes=[])
    for mission in missions:
        new_record, changes = apply_event(
            mission, records.get(mission.id), event, now_ms, campaigns.get(mission.id)
        )
        if new_record is not None:
            outcome.records[mission.id] = new_record
            outcome.changes.extend((mission.id, change) for change in changes)
    return outcome


def progress_view(
    mission: Mission,
    record: ProgressRecord | None,
    user_id: str,
    now_ms: int,
    campaign: Campaign | None = None,
) -> MissionProgress | None:
    """The MissionProgress GET /v1/missions shows, or None (``progress: null``) if never touched.

    A record from an earlier window reads as ``active`` with count 0, updated at
    the start of the current window (when the reset effectively happened).
    """
    if record is None:
        return None
    target = mission.criteria.count
    current = current_record(mission, record, now_ms)
    if current is None:
        status: Status = "active"
        count = 0
        updated_at = window_start(mission.criteria.window, now_ms)
    else:
        status, count, updated_at = current.status, current.current_count, current.updated_at
    if status == "active" and not is_open(mission, campaign, now_ms):
        status = "locked"
    progress = min(max(count / target, 0.0), 1.0) if target > 0 else 0.0
    return MissionProgress(
        user_id=user_id,
        mission_id=mission.id,
        status=status,
        progress=progress,
        current_count=count,
        target_count=target,
        updated_at=updated_at,
    )


def claim(mission: Mission, record: ProgressRecord | None, now_ms: int) -> ProgressRecord:
    """Mark a mission completed in the current window as claimed; else raise ClaimNotReady.

    Granting the reward is the caller's job, in the same actor turn, so the
    claim and the grant commit together (a second claim raises: exactly once).
    """
    current = current_record(mission, record, now_ms)
    if current is None:
        raise ClaimNotReady(f"mission {mission.id!r} has no progress in the current window")
    if current.status != "completed":
        raise ClaimNotReady(f"mission {mission.id!r} is {current.status}, not completed")
    return msgspec.structs.replace(
        current,
        status="claimed",
        claimed_window_start=current.window_start,
        updated_at=now_ms,
    )


def to_updates(changes: Iterable[Change], view: MissionProgress) -> list[SDKUpdate]:
    """SSE payloads for the changes of one mission, in publish order."""
    updates: list[SDKUpdate] = []
    for change in changes:
        if change == "mission.progress":
            updates.append(MissionProgressUpdate(data=view))
        else:
            updates.append(MissionCompletedUpdate(data=view))
    return updates
