"""Hatched analytics: pure aggregations over facts read from the event log and the buddies.

Nothing here does I/O. The HTTP layer gathers two kinds of facts for one customer
and a date range, and every figure is a function of them:

* :class:`EventFact` - one ingested event (when it occurred, who, which type,
  which buddies it fed, whether it produced effects);
* :class:`BuddyFact` - one buddy's state and its dated history: ledger rows in
  the range, badge awards, stage transitions, items, streaks.

Ranges are half-open ``[start, end)`` in Unix ms; days are UTC calendar days
(``epoch day = ms // 86_400_000``). A figure that needs data the store does not
keep is not computed here; the route says so instead of inventing it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec

DAY_MS = 86_400_000
RETENTION_DAYS = (1, 7, 30)
# Economy health: spend/earn ratio bounds (coins spent per coin earned in the range).
INFLATIONARY_BELOW = 0.2
DEFLATIONARY_ABOVE = 1.0
LEADERBOARD_METRICS = ("coins_earned", "events", "badges", "coins", "evolution_stage")


class DateRange(msgspec.Struct, frozen=True):
    start: int  # inclusive, Unix ms
    end: int  # exclusive, Unix ms

    def contains(self, ms: int | None) -> bool:
        return ms is not None and self.start <= ms < self.end

    def days(self) -> list[int]:
        return list(range(self.start // DAY_MS, (self.end - 1) // DAY_MS + 1))

    def view(self) -> dict[str, str]:
        return {"from": iso(self.start), "to": iso(self.end)}


def iso(ms: int) -> str:
    text = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def day_label(epoch_day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=epoch_day)).isoformat()


# -- facts ---------------------------------------------------------------------------------------
class EventFact(msgspec.Struct, kw_only=True, frozen=True):
    event_id: str
    user_id: str
    type: str
    occurred_at: int
    buddy_ids: list[str] = []
    has_effects: bool = False
    streaks: list[str] = []  # streak effect statuses: started | extended | kept_by_freeze | restarted


class LedgerFact(msgspec.Struct, kw_only=True, frozen=True):
    currency: str  # "coins" or a token key
    delta: int
    source: str  # event | manual | marketplace | gate | ...
    at: int


class BadgeFact(msgspec.Struct, kw_only=True, frozen=True):
    key: str
    at: int | None = None  # None: held, award time not recorded


class EvolutionFact(msgspec.Struct, kw_only=True, frozen=True):
    from_stage: int
    to_stage: int
    at: int


class ItemFact(msgspec.Struct, kw_only=True, frozen=True):
    item_id: str
    name: str
    via: str  # purchase | unlock
    price: int
    at: int
    equipped: bool = False


class StreakFact(msgspec.Struct, kw_only=True, frozen=True):
    key: str
    period: str  # daily | weekly
    current: int
    longest: int
    last_period: int | None = None  # proleptic ordinal of the last counted day (weekly: its Monday)


class BuddyFact(msgspec.Struct, kw_only=True, frozen=True):
    buddy_id: str
    user_id: str
    name: str
    status: str
    created_at: int
    evolution_stage: int
    coins: int
    coins_earned: int
    tokens: dict[str, int] = {}
    events_total: int = 0
    badges: list[BadgeFact] = []
    ledger: list[LedgerFact] = []  # rows dated inside the requested range only
    evolutions: list[EvolutionFact] = []
    items: list[ItemFact] = []
    streaks: list[StreakFact] = []


def _in(rng: DateRange, events: Iterable[EventFact]) -> list[EventFact]:
    return [e for e in events if rng.contains(e.occurred_at)]


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _coins(buddy: BuddyFact, rng: DateRange) -> tuple[int, int]:
    """Coins earned (credits) and spent (debits) in the range."""
    earned = sum(r.delta for r in buddy.ledger if r.currency == "coins" and r.delta > 0 and rng.contains(r.at))
    spent = -sum(r.delta for r in buddy.ledger if r.currency == "coins" and r.delta < 0 and rng.contains(r.at))
    return earned, spent


# -- figures -------------------------------------------------------------------------------------
def overview(rng: DateRange, events: list[EventFact], buddies: list[BuddyFact]) -> dict[str, Any]:
    inside = _in(rng, events)
    earned = spent = 0
    for b in buddies:
        e, s = _coins(b, rng)
        earned, spent = earned + e, spent + s
    return {
        "range": rng.view(),
        "buddies": {"total": len(buddies), "active": sum(b.status == "active" for b in buddies),
                    "archived": sum(b.status == "archived" for b in buddies),
                    "hatched_in_range": sum(rng.contains(b.created_at) for b in buddies)},
        "users": {"with_buddies": len({b.user_id for b in buddies}),
                  "active_in_range": len({e.user_id for e in inside})},
        "events": {"total": len(inside), "with_effects": sum(e.has_effects for e in inside),
                   "types": len({e.type for e in inside})},
        "economy": {"coins_earned": earned, "coins_spent": spent, "coins_in_circulation": sum(b.coins for b in buddies)},
        "badges_awarded": sum(rng.contains(a.at) for b in buddies for a in b.badges),
        "evolutions": sum(rng.contains(v.at) for b in buddies for v in b.evolutions),
        "items_acquired": sum(rng.contains(i.at) for b in buddies for i in b.items),
    }


def leaderboard(rng: DateRange, events: list[EventFact], buddies: list[BuddyFact], metric: str,
                limit: int) -> dict[str, Any]:
    """Active buddies ranked by ``metric`` (ties share a rank: 1, 2, 2, 4); range metrics count
    what happened inside the range, ``coins`` and ``evolution_stage`` are current values."""
    per_buddy_events: Counter[str] = Counter(b for e in _in(rng, events) for b in e.buddy_ids)

    def score(b: BuddyFact) -> int:
        if metric == "coins_earned":
            return _coins(b, rng)[0]
        if metric == "events":
            return per_buddy_events[b.buddy_id]
        if metric == "badges":
            return sum(rng.contains(a.at) for a in b.badges)
        if metric == "coins":
            return b.coins
        return b.evolution_stage

    scored = sorted(((score(b), b) for b in buddies if b.status == "active"),
                    key=lambda sb: (-sb[0], sb[1].created_at, sb[1].buddy_id))
    rows: list[dict[str, Any]] = []
    for position, (value, b) in enumerate(scored[:limit]):
        rank = rows[-1]["rank"] if rows and rows[-1]["value"] == value else position + 1
        rows.append({"rank": rank, "buddy_id": b.buddy_id, "user_id": b.user_id, "name": b.name,
                     "evolution_stage": b.evolution_stage, "value": value})
    return {"range": rng.view(), "metric": metric, "data": rows, "total": len(scored)}


def engagement(rng: DateRange, events: list[EventFact]) -> dict[str, Any]:
    inside = _in(rng, events)
    by_day: dict[int, list[EventFact]] = defaultdict(list)
    for e in inside:
        by_day[e.occurred_at // DAY_MS].append(e)
    daily = [{"date": day_label(d), "active_users": len({e.user_id for e in by_day[d]}), "events": len(by_day[d])}
             for d in rng.days()]
    users = {e.user_id for e in inside}
    avg_dau = round(sum(r["active_users"] for r in daily) / len(daily), 4) if daily else 0.0
    return {"range": rng.view(), "active_users": len(users), "events": len(inside),
            "events_per_active_user": _ratio(len(inside), len(users)),
            "avg_daily_active_users": avg_dau, "stickiness": _ratio(avg_dau, len(users)), "daily": daily}


def retention(rng: DateRange, events: list[EventFact], buddies: list[BuddyFact], today: int) -> dict[str, Any]:
    """Cohorts: users by the UTC day of their first hatch, when that day is in the range.
    Day-N retention counts cohort users with an event on cohort day + N; ``null`` while
    that day has not finished yet (``today`` is the current epoch day)."""
    first_hatch: dict[str, int] = {}
    for b in buddies:
        first_hatch[b.user_id] = min(first_hatch.get(b.user_id, b.created_at), b.created_at)
    active_days: dict[str, set[int]] = defaultdict(set)
    for e in events:
        active_days[e.user_id].add(e.occurred_at // DAY_MS)
    cohorts: dict[int, list[str]] = defaultdict(list)
    for user, at in first_hatch.items():
        if rng.contains(at):
            cohorts[at // DAY_MS].append(user)
    rows = []
    totals = {n: [0, 0] for n in RETENTION_DAYS}  # retained, eligible users
    for day in sorted(cohorts):
        users = cohorts[day]
        row: dict[str, Any] = {"cohort_date": day_label(day), "users": len(users)}
        for n in RETENTION_DAYS:
            if day + n >= today:
                row[f"day_{n}"] = None
                continue
            kept = sum(day + n in active_days[u] for u in users)
            row[f"day_{n}"] = {"users": kept, "rate": _ratio(kept, len(users))}
            totals[n][0] += kept
            totals[n][1] += len(users)
        rows.append(row)
    overall = {f"day_{n}": _ratio(kept, eligible) for n, (kept, eligible) in totals.items()}
    return {"range": rng.view(), "cohorts": rows, "overall": overall}


def streak_health(rng: DateRange, events: list[EventFact], buddies: list[BuddyFact], today_ordinal: int) -> dict[str, Any]:
    """Streak state now (an ongoing streak counted in the current or previous period, in UTC,
    can still be extended) plus what streak effects events produced in the range."""
    per_key: dict[str, dict[str, Any]] = {}
    for b in buddies:
        if b.status != "active":
            continue
        for s in b.streaks:
            entry = per_key.setdefault(s.key, {"streak_key": s.key, "period": s.period, "buddies": 0, "ongoing": 0,
                                               "currents": [], "longest": 0,
                                               "length_buckets": {"1": 0, "2-6": 0, "7-29": 0, "30+": 0}})
            entry["buddies"] += 1
            entry["longest"] = max(entry["longest"], s.longest)
            step = 7 if s.period == "weekly" else 1
            current_period = today_ordinal - (dt.date.fromordinal(today_ordinal).weekday() if step == 7 else 0)
            if s.current > 0 and s.last_period is not None and s.last_period >= current_period - step:
                entry["ongoing"] += 1
                entry["currents"].append(s.current)
                bucket = "1" if s.current == 1 else "2-6" if s.current < 7 else "7-29" if s.current < 30 else "30+"
                entry["length_buckets"][bucket] += 1
    streaks = []
    for key in sorted(per_key):
        entry = per_key[key]
        currents = entry.pop("currents")
        streaks.append({**entry, "avg_current": round(sum(currents) / len(currents), 4) if currents else 0.0,
                        "max_current": max(currents, default=0)})
    outcomes = Counter(status for e in _in(rng, events) for status in e.streaks)
    return {"range": rng.view(), "streaks": streaks,
            "events_in_range": {k: outcomes.get(k, 0) for k in ("started", "extended", "kept_by_freeze", "restarted")}}


def economy_summary(rng: DateRange, buddies: list[BuddyFact]) -> dict[str, Any]:
    by_source: dict[str, dict[str, int]] = defaultdict(lambda: {"earned": 0, "spent": 0})
    earned = spent = 0
    for b in buddies:
        for r in b.ledger:
            if r.currency != "coins" or not rng.contains(r.at):
                continue
            if r.delta > 0:
                earned += r.delta
                by_source[r.source]["earned"] += r.delta
            else:
                spent -= r.delta
                by_source[r.source]["spent"] -= r.delta
    return {"range": rng.view(), "coins": {"earned": earned, "spent": spent, "net": earned - spent,
                                           "in_circulation": sum(b.coins for b in buddies),
                                           "lifetime_earned": sum(b.coins_earned for b in buddies)},
            "by_source": [{"source": s, **v} for s, v in sorted(by_source.items())],
            "tokens": token_economy(rng, buddies)["tokens"]}


def economy_health(rng: DateRange, buddies: list[BuddyFact]) -> dict[str, Any]:
    """Spend/earn ratio in the range, balance distribution and concentration now.

    ``status``: ``no_activity`` (nothing earned), ``inflationary`` (less than
    INFLATIONARY_BELOW coins spent per coin earned: balances pile up), ``deflationary``
    (more spent than earned), else ``healthy``.
    """
    active = [b for b in buddies if b.status == "active"]
    earned = spent = 0
    earners = spenders = 0
    for b in active:
        e, s = _coins(b, rng)
        earned, spent = earned + e, spent + s
        earners += e > 0
        spenders += s > 0
    balances = sorted((b.coins for b in active), reverse=True)
    top = balances[: max(1, len(balances) // 10)] if balances else []
    ratio = _ratio(spent, earned)
    if not earned:
        status = "no_activity"
    elif ratio is not None and ratio < INFLATIONARY_BELOW:
        status = "inflationary"
    elif ratio is not None and ratio > DEFLATIONARY_ABOVE:
        status = "deflationary"
    else:
        status = "healthy"
    return {"range": rng.view(), "status": status, "spend_to_earn_ratio": ratio,
            "coins_earned": earned, "coins_spent": spent,
            "buddies": len(active), "earning_buddies": earners, "spending_buddies": spenders,
            "balance": {"total": sum(balances), "mean": _ratio(sum(balances), len(balances)),
                        "median": _median(balances), "zero_balance_buddies": sum(v == 0 for v in balances),
                        "top_10_percent_share": _ratio(sum(top), sum(balances))},
            "thresholds": {"inflationary_below": INFLATIONARY_BELOW, "deflationary_above": DEFLATIONARY_ABOVE}}


def token_economy(rng: DateRange, buddies: list[BuddyFact]) -> dict[str, Any]:
    keys = sorted({k for b in buddies for k in b.tokens}
                  | {r.currency for b in buddies for r in b.ledger if r.currency != "coins"})
    rows = []
    for key in keys:
        earned = sum(r.delta for b in buddies for r in b.ledger
                     if r.currency == key and r.delta > 0 and rng.contains(r.at))
        spent = -sum(r.delta for b in buddies for r in b.ledger
                     if r.currency == key and r.delta < 0 and rng.contains(r.at))
        balances = [b.tokens.get(key, 0) for b in buddies]
        holders = sum(v > 0 for v in balances)
        rows.append({"token_key": key, "earned": earned, "spent": spent, "net": earned - spent,
                     "in_circulation": sum(balances), "holders": holders,
                     "avg_balance_per_holder": _ratio(sum(balances), holders)})
    return {"range": rng.view(), "tokens": rows}


def event_counts(rng: DateRange, events: list[EventFact]) -> dict[str, Any]:
    inside = _in(rng, events)
    per_type: dict[str, list[EventFact]] = defaultdict(list)
    for e in inside:
        per_type[e.type].append(e)
    rows = [{"type": t, "count": len(es), "users": len({e.user_id for e in es}),
             "with_effects": sum(e.has_effects for e in es)}
            for t, es in sorted(per_type.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return {"range": rng.view(), "total": len(inside), "data": rows}


def popular_badges(rng: DateRange, buddies: list[BuddyFact], limit: int) -> dict[str, Any]:
    awarded: Counter[str] = Counter(a.key for b in buddies for a in b.badges if rng.contains(a.at))
    held: Counter[str] = Counter(a.key for b in buddies for a in b.badges)
    rows = [{"badge_key": k, "awarded_in_range": awarded[k], "holders": held[k],
             "holder_share": _ratio(held[k], len(buddies))}
            for k in sorted(held, key=lambda k: (-awarded[k], -held[k], k))]
    return {"range": rng.view(), "buddies": len(buddies), "data": rows[:limit]}


def popular_items(rng: DateRange, buddies: list[BuddyFact], limit: int) -> dict[str, Any]:
    per_item: dict[str, dict[str, Any]] = {}
    for b in buddies:
        for i in b.items:
            entry = per_item.setdefault(i.item_id, {"item_id": i.item_id, "name": i.name, "purchases": 0,
                                                    "unlocks": 0, "coins_spent": 0, "owners": 0, "equipped": 0})
            entry["owners"] += 1
            entry["equipped"] += i.equipped
            if rng.contains(i.at):
                entry["purchases" if i.via == "purchase" else "unlocks"] += 1
                entry["coins_spent"] += i.price if i.via == "purchase" else 0
    rows = sorted(per_item.values(), key=lambda r: (-r["purchases"], -r["unlocks"], -r["owners"], r["item_id"]))
    return {"range": rng.view(), "data": rows[:limit]}


def marketplace_funnel(rng: DateRange, buddies: list[BuddyFact]) -> dict[str, Any]:
    """Active buddies -> buddies that bought in the range -> of those, buddies wearing a bought item.

    Storefront views are not recorded, so there is no "viewed" stage.
    """
    active = [b for b in buddies if b.status == "active"]
    bought = [b for b in active if any(i.via == "purchase" and rng.contains(i.at) for i in b.items)]
    wearing = [b for b in bought if any(i.via == "purchase" and rng.contains(i.at) and i.equipped for i in b.items)]
    purchases = [i for b in active for i in b.items if i.via == "purchase" and rng.contains(i.at)]
    stages = [{"stage": "active_buddies", "buddies": len(active), "rate_from_previous": None},
              {"stage": "purchased", "buddies": len(bought), "rate_from_previous": _ratio(len(bought), len(active))},
              {"stage": "equipped_purchase", "buddies": len(wearing),
               "rate_from_previous": _ratio(len(wearing), len(bought))}]
    return {"range": rng.view(), "stages": stages, "purchases": len(purchases),
            "coins_spent": sum(i.price for i in purchases),
            "avg_purchases_per_purchaser": _ratio(len(purchases), len(bought)),
            "not_tracked": ["storefront_views"]}


def evolution_timeline(rng: DateRange, buddies: list[BuddyFact]) -> dict[str, Any]:
    inside = [v for b in buddies for v in b.evolutions if rng.contains(v.at)]
    per_day = Counter(v.at // DAY_MS for v in inside)
    transitions = Counter((v.from_stage, v.to_stage) for v in inside)
    stages = Counter(b.evolution_stage for b in buddies if b.status == "active")
    return {"range": rng.view(), "evolutions": len(inside),
            "daily": [{"date": day_label(d), "evolutions": per_day.get(d, 0)} for d in rng.days()],
            "transitions": [{"from_stage": f, "to_stage": t, "count": c} for (f, t), c in sorted(transitions.items())],
            "stage_distribution": [{"stage": s, "buddies": stages[s]} for s in sorted(stages)]}


def activity_summary(rng: DateRange, events: list[EventFact], buddies: list[BuddyFact]) -> dict[str, Any]:
    days = rng.days()
    rows = {d: {"date": day_label(d), "events": 0, "active_users": 0, "coins_earned": 0, "coins_spent": 0,
                "badges_awarded": 0, "evolutions": 0, "buddies_hatched": 0} for d in days}
    users: dict[int, set[str]] = defaultdict(set)
    for e in _in(rng, events):
        rows[e.occurred_at // DAY_MS]["events"] += 1
        users[e.occurred_at // DAY_MS].add(e.user_id)
    for d, who in users.items():
        rows[d]["active_users"] = len(who)
    for b in buddies:
        if rng.contains(b.created_at):
            rows[b.created_at // DAY_MS]["buddies_hatched"] += 1
        for r in b.ledger:
            if r.currency == "coins" and rng.contains(r.at):
                rows[r.at // DAY_MS]["coins_earned" if r.delta > 0 else "coins_spent"] += abs(r.delta)
        for a in b.badges:
            if rng.contains(a.at):
                assert a.at is not None
                rows[a.at // DAY_MS]["badges_awarded"] += 1
        for v in b.evolutions:
            if rng.contains(v.at):
                rows[v.at // DAY_MS]["evolutions"] += 1
    daily = [rows[d] for d in days]
    keys = ("events", "coins_earned", "coins_spent", "badges_awarded", "evolutions", "buddies_hatched")
    totals = {k: sum(r[k] for r in daily) for k in keys}
    totals["active_users"] = len({e.user_id for e in _in(rng, events)})
    return {"range": rng.view(), "totals": totals, "daily": daily}


def custom_event_trends(rng: DateRange, events: list[EventFact], types: list[str] | None) -> dict[str, Any]:
    """Per event type, the daily counts over the range (every type seen, or only ``types``)."""
    inside = [e for e in _in(rng, events) if types is None or e.type in types]
    per_type: dict[str, Counter[int]] = defaultdict(Counter)
    for e in inside:
        per_type[e.type][e.occurred_at // DAY_MS] += 1
    for t in types or []:
        per_type.setdefault(t, Counter())
    days = rng.days()
    series = [{"type": t, "total": sum(c.values()), "daily": [{"date": day_label(d), "count": c.get(d, 0)} for d in days]}
              for t, c in sorted(per_type.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
    return {"range": rng.view(), "data": series}


class DeliveryFact(msgspec.Struct, kw_only=True, frozen=True):
    config_id: str
    event_type: str
    status: str  # pending | delivered | failed
    attempts: int
    created_at: int
    delivered_at: int | None = None
    last_status_code: int | None = None


def _percentile(values: list[int], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in 0..1)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * q) - 1))]


def webhook_health(rng: DateRange, deliveries: list[DeliveryFact]) -> dict[str, Any]:
    """Deliveries created in the range: outcomes, success rate over settled ones, attempts and
    time to deliver, per config and per last HTTP status."""
    inside = [d for d in deliveries if rng.contains(d.created_at)]

    def block(ds: list[DeliveryFact]) -> dict[str, Any]:
        done = [d for d in ds if d.status == "delivered"]
        failed = sum(d.status == "failed" for d in ds)
        latency = [d.delivered_at - d.created_at for d in done if d.delivered_at is not None]
        return {"deliveries": len(ds), "delivered": len(done), "failed": failed,
                "pending": sum(d.status == "pending" for d in ds),
                "success_rate": _ratio(len(done), len(done) + failed),
                "avg_attempts": _ratio(sum(d.attempts for d in ds), len(ds)),
                "retried": sum(d.attempts > 1 for d in ds),
                "time_to_deliver_ms": {"p50": _percentile(latency, 0.5), "p95": _percentile(latency, 0.95)}}

    configs = sorted({d.config_id for d in inside})
    codes = Counter("none" if d.last_status_code is None else str(d.last_status_code) for d in inside if d.attempts)
    return {"range": rng.view(), **block(inside),
            "by_config": [{"webhook_config_id": c, **block([d for d in inside if d.config_id == c])} for c in configs],
            "last_status_codes": [{"status_code": k, "deliveries": v} for k, v in sorted(codes.items())]}
