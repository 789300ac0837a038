"""Analytics aggregations against a small fixture whose every figure was worked out by hand.

The range is the 7 UTC days from 2026-04-01 (day 0) to 2026-04-08 (exclusive).
Events outside it (day -1, day 8) and an archived buddy hatched before it are there
to be left out.
"""

from __future__ import annotations

import datetime as dt

import pytest

from questline.rules import hatched_analytics as a
from questline.rules.hatched_analytics import (
    DAY_MS,
    BadgeFact,
    BuddyFact,
    DateRange,
    DeliveryFact,
    EventFact,
    EvolutionFact,
    ItemFact,
    LedgerFact,
    StreakFact,
)

D0 = dt.date(2026, 4, 1)
DAY0 = (D0 - dt.date(1970, 1, 1)).days


def T(day: int, hour: int = 0) -> int:
    return (DAY0 + day) * DAY_MS + hour * 3_600_000


def ordinal(day: int) -> int:
    return (D0 + dt.timedelta(days=day)).toordinal()


RNG = DateRange(start=T(0), end=T(7))

EVENTS = [
    EventFact(event_id="e1", user_id="u1", type="lesson_completed", occurred_at=T(0, 10), buddy_ids=["b1"],
              has_effects=True, streaks=["started"]),
    EventFact(event_id="e2", user_id="u1", type="lesson_completed", occurred_at=T(1, 9), buddy_ids=["b1"],
              has_effects=True, streaks=["extended"]),
    EventFact(event_id="e3", user_id="u2", type="quiz_passed", occurred_at=T(1, 12), buddy_ids=["b2"],
              has_effects=True),
    EventFact(event_id="e4", user_id="u2", type="lesson_completed", occurred_at=T(3, 8), buddy_ids=["b2"]),
    EventFact(event_id="e5", user_id="u3", type="app_opened", occurred_at=T(3, 20)),
    EventFact(event_id="e6", user_id="u1", type="lesson_completed", occurred_at=T(8), buddy_ids=["b1"],
              has_effects=True),
    EventFact(event_id="e7", user_id="u2", type="quiz_passed", occurred_at=T(-1, 5), buddy_ids=["b2"]),
]

B1 = BuddyFact(
    buddy_id="b1", user_id="u1", name="Ada", status="active", created_at=T(0, 8), evolution_stage=2, coins=40,
    coins_earned=70, tokens={"xp": 30}, events_total=2, badges=[BadgeFact(key="first_lesson", at=T(0, 10))],
    ledger=[LedgerFact(currency="coins", delta=50, source="event", at=T(0, 10)),
            LedgerFact(currency="xp", delta=30, source="event", at=T(0, 10)),
            LedgerFact(currency="coins", delta=20, source="manual", at=T(1, 9)),
            LedgerFact(currency="coins", delta=-30, source="marketplace", at=T(2))],
    evolutions=[EvolutionFact(from_stage=1, to_stage=2, at=T(2, 12))],
    items=[ItemFact(item_id="hat", name="Hat", via="purchase", price=30, at=T(2), equipped=True)],
    streaks=[StreakFact(key="daily_learning", period="daily", current=2, longest=2, last_period=ordinal(1))],
)
B2 = BuddyFact(
    buddy_id="b2", user_id="u2", name="Bo", status="active", created_at=T(1, 11), evolution_stage=1, coins=10,
    coins_earned=10, badges=[BadgeFact(key="first_lesson", at=T(1, 12)), BadgeFact(key="quiz_whiz", at=None)],
    ledger=[LedgerFact(currency="coins", delta=10, source="event", at=T(1, 12))],
    items=[ItemFact(item_id="scarf", name="Scarf", via="unlock", price=0, at=T(3))],
    streaks=[StreakFact(key="daily_learning", period="daily", current=1, longest=1, last_period=ordinal(-2))],
)
B3 = BuddyFact(
    buddy_id="b3", user_id="u2", name="Cy", status="archived", created_at=T(-5), evolution_stage=3, coins=100,
    coins_earned=100, tokens={"xp": 5},
    evolutions=[EvolutionFact(from_stage=1, to_stage=2, at=T(-4)), EvolutionFact(from_stage=2, to_stage=3, at=T(-3))],
    streaks=[StreakFact(key="daily_learning", period="daily", current=5, longest=9, last_period=ordinal(-3))],
)
BUDDIES = [B1, B2, B3]


def test_range_days_and_view() -> None:
    assert RNG.days() == list(range(DAY0, DAY0 + 7))
    assert RNG.view() == {"from": "2026-04-01T00:00:00.000Z", "to": "2026-04-08T00:00:00.000Z"}
    assert RNG.contains(T(0)) and not RNG.contains(T(7)) and not RNG.contains(None)


def test_overview() -> None:
    assert a.overview(RNG, EVENTS, BUDDIES) == {
        "range": RNG.view(),
        "buddies": {"total": 3, "active": 2, "archived": 1, "hatched_in_range": 2},
        "users": {"with_buddies": 2, "active_in_range": 3},
        "events": {"total": 5, "with_effects": 3, "types": 3},
        "economy": {"coins_earned": 80, "coins_spent": 30, "coins_in_circulation": 150},
        "badges_awarded": 2, "evolutions": 1, "items_acquired": 2,
    }


def test_leaderboard_metrics_ties_and_limit() -> None:
    def ranks(metric: str, limit: int = 10) -> list[tuple[int, str, int]]:
        board = a.leaderboard(RNG, EVENTS, BUDDIES, metric, limit)
        assert board["total"] == 2  # the archived buddy never ranks
        return [(r["rank"], r["buddy_id"], r["value"]) for r in board["data"]]

    assert ranks("coins_earned") == [(1, "b1", 70), (2, "b2", 10)]
    assert ranks("events") == [(1, "b1", 2), (1, "b2", 2)]  # tie: same rank, older buddy first
    assert ranks("badges") == [(1, "b1", 1), (1, "b2", 1)]
    assert ranks("coins") == [(1, "b1", 40), (2, "b2", 10)]
    assert ranks("evolution_stage", limit=1) == [(1, "b1", 2)]


def test_engagement() -> None:
    result = a.engagement(RNG, EVENTS)
    assert [(d["date"], d["active_users"], d["events"]) for d in result["daily"]] == [
        ("2026-04-01", 1, 1), ("2026-04-02", 2, 2), ("2026-04-03", 0, 0), ("2026-04-04", 2, 2),
        ("2026-04-05", 0, 0), ("2026-04-06", 0, 0), ("2026-04-07", 0, 0)]
    assert result["active_users"] == 3 and result["events"] == 5
    assert result["events_per_active_user"] == 1.6667
    assert result["avg_daily_active_users"] == 0.7143  # 5 user-days / 7 days
    assert result["stickiness"] == 0.2381


def test_retention_cohorts_by_first_hatch() -> None:
    # u1's first hatch is day 0 (in range); u2's is day -5 (b3): not a cohort of this range.
    result = a.retention(RNG, EVENTS, BUDDIES, today=DAY0 + 10)
    assert result["cohorts"] == [{"cohort_date": "2026-04-01", "users": 1, "day_1": {"users": 1, "rate": 1.0},
                                  "day_7": {"users": 0, "rate": 0.0}, "day_30": None}]
    assert result["overall"] == {"day_1": 1.0, "day_7": 0.0, "day_30": None}


def test_streak_health() -> None:
    result = a.streak_health(RNG, EVENTS, BUDDIES, today_ordinal=ordinal(2))
    assert result["streaks"] == [{"streak_key": "daily_learning", "period": "daily", "buddies": 2, "ongoing": 1,
                                  "longest": 2, "length_buckets": {"1": 0, "2-6": 1, "7-29": 0, "30+": 0},
                                  "avg_current": 2.0, "max_current": 2}]
    assert result["events_in_range"] == {"started": 1, "extended": 1, "kept_by_freeze": 0, "restarted": 0}


def test_weekly_streak_is_ongoing_through_the_previous_week() -> None:
    monday = ordinal(5) - dt.date.fromordinal(ordinal(5)).weekday()
    fact = BuddyFact(buddy_id="w", user_id="u", name="W", status="active", created_at=T(0), evolution_stage=1,
                     coins=0, coins_earned=0,
                     streaks=[StreakFact(key="weekly", period="weekly", current=3, longest=3, last_period=monday - 7)])
    ongoing = a.streak_health(RNG, [], [fact], today_ordinal=monday + 3)["streaks"][0]["ongoing"]
    lapsed = a.streak_health(RNG, [], [fact], today_ordinal=monday + 10)["streaks"][0]["ongoing"]
    assert (ongoing, lapsed) == (1, 0)


def test_economy_summary_and_tokens() -> None:
    result = a.economy_summary(RNG, BUDDIES)
    assert result["coins"] == {"earned": 80, "spent": 30, "net": 50, "in_circulation": 150, "lifetime_earned": 180}
    assert result["by_source"] == [{"source": "event", "earned": 60, "spent": 0},
                                   {"source": "manual", "earned": 20, "spent": 0},
                                   {"source": "marketplace", "earned": 0, "spent": 30}]
    assert result["tokens"] == [{"token_key": "xp", "earned": 30, "spent": 0, "net": 30, "in_circulation": 35,
                                 "holders": 2, "avg_balance_per_holder": 17.5}]
    assert a.token_economy(RNG, BUDDIES)["tokens"] == result["tokens"]


def test_economy_health() -> None:
    result = a.economy_health(RNG, BUDDIES)
    assert result["status"] == "healthy" and result["spend_to_earn_ratio"] == 0.375
    assert (result["coins_earned"], result["coins_spent"]) == (80, 30)
    assert (result["buddies"], result["earning_buddies"], result["spending_buddies"]) == (2, 2, 1)
    assert result["balance"] == {"total": 50, "mean": 25.0, "median": 25.0, "zero_balance_buddies": 0,
                                 "top_10_percent_share": 0.8}
    nothing = a.economy_health(DateRange(start=T(20), end=T(21)), BUDDIES)
    assert nothing["status"] == "no_activity" and nothing["spend_to_earn_ratio"] is None


@pytest.mark.parametrize(("spent", "status"), [(0, "inflationary"), (19, "inflationary"), (20, "healthy"),
                                               (100, "healthy"), (101, "deflationary")])
def test_economy_health_status_thresholds(spent: int, status: str) -> None:
    ledger = [LedgerFact(currency="coins", delta=100, source="event", at=T(1))]
    if spent:
        ledger.append(LedgerFact(currency="coins", delta=-spent, source="manual", at=T(2)))
    fact = BuddyFact(buddy_id="x", user_id="u", name="X", status="active", created_at=T(0), evolution_stage=1,
                     coins=100 - spent, coins_earned=100, ledger=ledger)
    assert a.economy_health(RNG, [fact])["status"] == status


def test_event_counts_and_custom_event_trends() -> None:
    counts = a.event_counts(RNG, EVENTS)
    assert counts["total"] == 5
    assert counts["data"] == [{"type": "lesson_completed", "count": 3, "users": 2, "with_effects": 2},
                              {"type": "app_opened", "count": 1, "users": 1, "with_effects": 0},
                              {"type": "quiz_passed", "count": 1, "users": 1, "with_effects": 1}]
    trends = a.custom_event_trends(RNG, EVENTS, None)["data"]
    assert [(s["type"], s["total"]) for s in trends] == [("lesson_completed", 3), ("app_opened", 1),
                                                        ("quiz_passed", 1)]
    assert [d["count"] for d in trends[0]["daily"]] == [1, 1, 0, 1, 0, 0, 0]
    picked = a.custom_event_trends(RNG, EVENTS, ["quiz_passed", "never_seen"])["data"]
    assert [(s["type"], s["total"]) for s in picked] == [("quiz_passed", 1), ("never_seen", 0)]
    assert [d["count"] for d in picked[0]["daily"]] == [0, 1, 0, 0, 0, 0, 0]


def test_popular_badges_and_items() -> None:
    assert a.popular_badges(RNG, BUDDIES, 10)["data"] == [
        {"badge_key": "first_lesson", "awarded_in_range": 2, "holders": 2, "holder_share": 0.6667},
        {"badge_key": "quiz_whiz", "awarded_in_range": 0, "holders": 1, "holder_share": 0.3333}]
    assert a.popular_items(RNG, BUDDIES, 10)["data"] == [
        {"item_id": "hat", "name": "Hat", "purchases": 1, "unlocks": 0, "coins_spent": 30, "owners": 1, "equipped": 1},
        {"item_id": "scarf", "name": "Scarf", "purchases": 0, "unlocks": 1, "coins_spent": 0, "owners": 1,
         "equipped": 0}]
    assert len(a.popular_items(RNG, BUDDIES, 1)["data"]) == 1


def test_marketplace_funnel() -> None:
    result = a.marketplace_funnel(RNG, BUDDIES)
    assert result["stages"] == [{"stage": "active_buddies", "buddies": 2, "rate_from_previous": None},
                                {"stage": "purchased", "buddies": 1, "rate_from_previous": 0.5},
                                {"stage": "equipped_purchase", "buddies": 1, "rate_from_previous": 1.0}]
    assert (result["purchases"], result["coins_spent"], result["avg_purchases_per_purchaser"]) == (1, 30, 1.0)
    assert result["not_tracked"] == ["storefront_views"]


def test_evolution_timeline() -> None:
    result = a.evolution_timeline(RNG, BUDDIES)
    assert result["evolutions"] == 1
    assert [d["evolutions"] for d in result["daily"]] == [0, 0, 1, 0, 0, 0, 0]
    assert result["transitions"] == [{"from_stage": 1, "to_stage": 2, "count": 1}]
    assert result["stage_distribution"] == [{"stage": 1, "buddies": 1}, {"stage": 2, "buddies": 1}]


def test_activity_summary() -> None:
    result = a.activity_summary(RNG, EVENTS, BUDDIES)
    assert result["totals"] == {"events": 5, "coins_earned": 80, "coins_spent": 30, "badges_awarded": 2,
                                "evolutions": 1, "buddies_hatched": 2, "active_users": 3}
    rows = {r["date"]: r for r in result["daily"]}
    assert rows["2026-04-01"] == {"date": "2026-04-01", "events": 1, "active_users": 1, "coins_earned": 50,
                                  "coins_spent": 0, "badges_awarded": 1, "evolutions": 0, "buddies_hatched": 1}
    assert rows["2026-04-02"] == {"date": "2026-04-02", "events": 2, "active_users": 2, "coins_earned": 30,
                                  "coins_spent": 0, "badges_awarded": 1, "evolutions": 0, "buddies_hatched": 1}
    assert rows["2026-04-03"] == {"date": "2026-04-03", "events": 0, "active_users": 0, "coins_earned": 0,
                                  "coins_spent": 30, "badges_awarded": 0, "evolutions": 1, "buddies_hatched": 0}
    assert (rows["2026-04-04"]["events"], rows["2026-04-04"]["active_users"]) == (2, 2)


def test_webhook_health() -> None:
    deliveries = [
        DeliveryFact(config_id="A", event_type="buddy.evolved", status="delivered", attempts=1, created_at=T(0, 1),
                     delivered_at=T(0, 1) + 200, last_status_code=200),
        DeliveryFact(config_id="A", event_type="event.processed", status="delivered", attempts=3, created_at=T(1),
                     delivered_at=T(1) + 5000, last_status_code=200),
        DeliveryFact(config_id="A", event_type="event.processed", status="failed", attempts=5, created_at=T(2),
                     last_status_code=500),
        DeliveryFact(config_id="B", event_type="event.processed", status="pending", attempts=1, created_at=T(3)),
        DeliveryFact(config_id="B", event_type="event.processed", status="pending", attempts=0, created_at=T(4)),
        DeliveryFact(config_id="A", event_type="event.processed", status="delivered", attempts=1, created_at=T(-1),
                     delivered_at=T(-1) + 10, last_status_code=200),
    ]
    result = a.webhook_health(RNG, deliveries)
    assert {k: result[k] for k in ("deliveries", "delivered", "failed", "pending", "success_rate", "avg_attempts",
                                   "retried", "time_to_deliver_ms")} == {
        "deliveries": 5, "delivered": 2, "failed": 1, "pending": 2, "success_rate": 0.6667, "avg_attempts": 2.0,
        "retried": 2, "time_to_deliver_ms": {"p50": 200, "p95": 5000}}
    by_config = {c["webhook_config_id"]: c for c in result["by_config"]}
    assert (by_config["A"]["deliveries"], by_config["A"]["success_rate"], by_config["A"]["avg_attempts"]) == (3, 0.6667,
                                                                                                             3.0)
    assert (by_config["B"]["pending"], by_config["B"]["success_rate"], by_config["B"]["avg_attempts"]) == (2, None, 0.5)
    assert by_config["B"]["time_to_deliver_ms"] == {"p50": None, "p95": None}
    assert result["last_status_codes"] == [{"status_code": "200", "deliveries": 2},
                                           {"status_code": "500", "deliveries": 1},
                                           {"status_code": "none", "deliveries": 1}]
