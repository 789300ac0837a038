"""Deterministic local recommendations for GET /v1/recommendations.

QuestKit asks a model; questline ranks locally so the answer works offline and is
the same every time for the same state (an external generator can rephrase
``reason`` later). Ranking, among missions that can progress now (not expired,
campaign running, not completed or claimed in the current window):

1. started missions, closest to completion first (highest progress below 1);
2. unstarted missions of running campaigns, the campaign ending soonest first;
3. unstarted missions outside any campaign (the contract is silent on them;
   without this tier an app with no campaigns would never suggest anything new).

Ties break by mission id. A user with no activity at all (no progress record)
gets no missions and a reason inviting them to act, as the reference requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from questline.rules.missions import (
    ProgressRecord,
    current_record,
    is_open,
    mission_campaigns,
)
from questline.rules.questkit_models import Campaign, Mission

NO_ACTIVITY_REASON = "No activity yet: complete an action in the app to start your first mission."
ALL_DONE_REASON = "You're all caught up: new missions will show up here."


def recommend(
    missions: Sequence[Mission],
    records: Mapping[str, ProgressRecord | None],
    campaigns: Iterable[Campaign],
    now_ms: int,
    limit: int = 3,
) -> tuple[list[str], str]:
    """Up to ``limit`` mission ids to suggest, and a one-sentence reason for the first."""
    if not any(record is not None for record in records.values()):
        return [], NO_ACTIVITY_REASON
    by_mission = mission_campaigns(missions, campaigns)

    started: list[tuple[float, str, Mission, ProgressRecord]] = []
    in_campaign: list[tuple[int, str, Mission, Campaign]] = []
    standalone: list[tuple[str, Mission]] = []
    for mission in missions:
        campaign = by_mission.get(mission.id)
        if not is_open(mission, campaign, now_ms):
            continue
        record = current_record(mission, records.get(mission.id), now_ms)
        if record is not None and record.status != "active":
            continue  # completed (claim it instead) or claimed (dormant)
        target = mission.criteria.count
        if record is not None and record.current_count > 0 and target > 0:
            progress = record.current_count / target
            if progress < 1:
                started.append((-progress, mission.id, mission, record))
        elif campaign is not None:
            in_campaign.append((campaign.end_at, mission.id, mission, campaign))
        else:
            standalone.append((mission.id, mission))

    started.sort(key=lambda item: (item[0], item[1]))
    in_campaign.sort(key=lambda item: (item[0], item[1]))
    standalone.sort(key=lambda item: item[0])
    ranked = (
        [item[1] for item in started]
        + [item[1] for item in in_campaign]
        + [item[0] for item in standalone]
    )
    if not ranked:
        return [], ALL_DONE_REASON
    chosen = ranked[: max(limit, 0)]

    if started:
        _, _, mission, record = started[0]
        reason = (
            f'You\'re closest to finishing "{mission.title}" '
            f"({record.current_count}/{mission.criteria.count})."
        )
    elif in_campaign:
        _, _, mission, campaign = in_campaign[0]
        reason = f'"{campaign.title}" is running: start with "{mission.title}".'
    else:
        reason = f'Try something new: "{standalone[0][1].title}".'
    return chosen, reason
