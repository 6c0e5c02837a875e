"""The stored recurrence rule: one JSON shape (interval, several weekdays, yearly, hourly), the
migration of rows written by earlier releases, DST-safe stepping, and how /list and /export show
it in both languages."""
from __future__ import annotations

import pathlib
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest

from bot import db
from bot.recurrence import next_occurrence, normalize
from bot.views import describe

TZ = "Europe/Berlin"


def local(t: datetime) -> str:
    return t.astimezone(ZoneInfo(TZ)).strftime("%a %Y-%m-%d %H:%M")


def test_the_migration_rewrites_old_rules_into_the_new_shape_and_is_idempotent(database_url):
    files = db.migration_files()
    old = [p for name, p in files if name < "0004"]
    with psycopg.connect(database_url, autocommit=True) as c:
        for p in old:
            c.execute(p.read_text())
        c.execute("INSERT INTO users (user_id, chat_id) VALUES (1, 1)")
        for rule in ('{"kind": "daily", "hour": 9, "minute": 0}',
                     '{"kind": "weekdays", "hour": 8, "minute": 30}',
                     '{"kind": "weekly", "weekday": 4, "hour": 18, "minute": 0}',
                     '{"kind": "monthly", "day": 31, "hour": 9, "minute": 0}', None):
            c.execute("INSERT INTO reminders (user_id, chat_id, text, tz, recurrence, due_at) "
                      "VALUES (1, 1, 'x', %s, %s, now())", (TZ, rule))
        c.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY, "
                  "applied_at timestamptz NOT NULL DEFAULT now())")
        for name, _ in files:
            if name < "0004":
                c.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (name,))
    assert "0004_recurrence_rules" in db.migrate(database_url)
    sql = pathlib.Path(dict(files)["0004_recurrence_rules"]).read_text()
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute(sql)  # a second run changes nothing
        rules = [r[0] for r in c.execute("SELECT recurrence FROM reminders ORDER BY id")]
    assert rules == [
        {"kind": "daily", "interval": 1, "hour": 9, "minute": 0},
        {"kind": "weekly", "interval": 1, "weekdays": [0, 1, 2, 3, 4], "hour": 8, "minute": 30},
        {"kind": "weekly", "interval": 1, "weekdays": [4], "hour": 18, "minute": 0},
        {"kind": "monthly", "interval": 1, "day": 31, "hour": 9, "minute": 0},
        None]
    for r in rules[:4]:
        assert normalize(r) == r  # the migrated rule is already in the current shape


@pytest.mark.parametrize("old,new", [
    ({"kind": "weekdays", "hour": 8, "minute": 30},
     {"kind": "weekly", "interval": 1, "weekdays": [0, 1, 2, 3, 4], "hour": 8, "minute": 30}),
    ({"kind": "weekly", "weekday": 4, "hour": 18, "minute": 0},
     {"kind": "weekly", "interval": 1, "weekdays": [4], "hour": 18, "minute": 0}),
])
def test_a_rule_of_an_earlier_release_is_read_as_the_same_rule(old, new):
    after = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    assert normalize(old) == new
    assert next_occurrence(old, TZ, after) == next_occurrence(new, TZ, after)


@pytest.mark.parametrize("rule", [
    {"kind": "daily", "hour": 24, "minute": 0}, {"kind": "weekly", "weekdays": [], "hour": 9, "minute": 0},
    {"kind": "weekly", "weekdays": [7], "hour": 9, "minute": 0}, {"kind": "fortnightly", "hour": 9, "minute": 0},
    {"kind": "daily", "interval": 2, "hour": 9, "minute": 0},       # an interval needs its start
    {"kind": "yearly", "month": 2, "day": 30, "hour": 9, "minute": 0}, "daily", None,
    {"kind": "daily", "hour": True, "minute": 0}, {"kind": "hourly", "interval": 0, "hour": 9, "minute": 0,
                                                   "start": "2026-11-25"},
])
def test_a_malformed_rule_is_refused_by_name(rule):
    with pytest.raises(ValueError):
        normalize(rule)  # type: ignore[arg-type]  # malformed on purpose


def test_intervals_count_from_their_start_across_dst():
    every2w = {"kind": "weekly", "interval": 2, "weekdays": [4], "hour": 9, "minute": 0, "start": "2026-10-16"}
    after = datetime(2026, 10, 16, 12, 0, tzinfo=timezone.utc)
    seen = []
    for _ in range(3):
        after = next_occurrence(every2w, TZ, after)
        seen.append(local(after))
    # 2026-10-25: Berlin leaves summer time; the wall-clock time stays 09:00
    assert seen == ["Fri 2026-10-30 09:00", "Fri 2026-11-13 09:00", "Fri 2026-11-27 09:00"]
    every3d = {"kind": "daily", "interval": 3, "hour": 7, "minute": 15, "start": "2026-03-27"}
    t = next_occurrence(every3d, TZ, datetime(2026, 3, 27, 12, 0, tzinfo=timezone.utc))
    assert local(t) == "Mon 2026-03-30 07:15"  # across the spring change, still 07:15
    hourly = {"kind": "hourly", "interval": 2, "hour": 23, "minute": 0, "start": "2026-03-28"}
    t = next_occurrence(hourly, TZ, datetime(2026, 3, 29, 0, 30, tzinfo=timezone.utc))
    assert t == datetime(2026, 3, 29, 2, 0, tzinfo=timezone.utc)  # every 2 real hours


def test_yearly_on_29_february_falls_on_the_28th_in_other_years_and_months_clamp():
    feb29 = {"kind": "yearly", "month": 2, "day": 29, "hour": 9, "minute": 0}
    assert local(next_occurrence(feb29, TZ, datetime(2027, 1, 1, tzinfo=timezone.utc))) == "Sun 2027-02-28 09:00"
    assert local(next_occurrence(feb29, TZ, datetime(2028, 1, 1, tzinfo=timezone.utc))) == "Tue 2028-02-29 09:00"
    q = {"kind": "monthly", "interval": 3, "day": 31, "hour": 9, "minute": 0, "start": "2026-12-31"}
    t = next_occurrence(q, TZ, datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert local(t) == "Wed 2027-03-31 09:00"
    t = next_occurrence(q, TZ, t)
    assert local(t) == "Wed 2027-06-30 09:00"


@pytest.mark.parametrize("rule,en,ru", [
    ({"kind": "daily", "interval": 1, "hour": 9, "minute": 0}, "every day at 09:00", "каждый день в 09:00"),
    ({"kind": "daily", "interval": 3, "hour": 20, "minute": 0, "start": "2026-11-25"},
     "every 3 days at 20:00", "каждые 3 дня в 20:00"),
    ({"kind": "weekly", "interval": 1, "weekdays": [0, 1, 2, 3, 4], "hour": 8, "minute": 30},
     "every weekday at 08:30", "по будням в 08:30"),
    ({"kind": "weekly", "interval": 1, "weekdays": [5, 6], "hour": 10, "minute": 0},
     "every weekend at 10:00", "по выходным в 10:00"),
    ({"kind": "weekly", "interval": 1, "weekdays": [1, 3], "hour": 7, "minute": 0},
     "every Tue, Thu at 07:00", "по вт, чт в 07:00"),
    ({"kind": "weekly", "interval": 2, "weekdays": [4], "hour": 9, "minute": 0, "start": "2026-11-27"},
     "every 2 weeks on Fri at 09:00", "каждые 2 недели: пт в 09:00"),
    ({"kind": "monthly", "interval": 1, "day": 15, "hour": 10, "minute": 0},
     "every month on day 15 at 10:00", "каждый месяц 15-го в 10:00"),
    ({"kind": "monthly", "interval": 3, "day": 1, "hour": 9, "minute": 0, "start": "2026-12-01"},
     "every 3 months on day 1 at 09:00", "каждые 3 месяца 1-го в 09:00"),
    ({"kind": "yearly", "interval": 1, "month": 3, "day": 8, "hour": 9, "minute": 0},
     "every year on 8 Mar at 09:00", "каждый год 8 марта в 09:00"),
    ({"kind": "hourly", "interval": 2, "hour": 13, "minute": 0, "start": "2026-11-25"},
     "every 2 hours (from 13:00)", "каждые 2 часа (с 13:00)"),
    ({"kind": "weekdays", "hour": 8, "minute": 30}, "every weekday at 08:30", "по будням в 08:30"),
])
def test_every_rule_reads_in_both_languages(rule, en, ru):
    assert describe(rule, "en") == en
    assert describe(rule, "ru") == ru


async def test_list_and_export_show_the_rule_in_the_users_language(make_bot, api):
    import json

    from tests.bot.conftest import USER
    b = await make_bot()
    await b.say(USER, "каждый год 8 марта в 10:00 поздравить маму", lang="ru")
    await b.say(USER, "по вторникам и четвергам в 19:00 спорт", lang="ru")
    (m,) = await b.say(USER, "/list", lang="ru")
    assert "каждый год 8 марта в 10:00" in m["text"] and "по вт, чт в 19:00" in m["text"]
    (m,) = await b.say(USER, "/list", lang="en")
    assert "every year on 8 Mar at 10:00" in m["text"] and "every Tue, Thu at 19:00" in m["text"]
    await b.say(USER, "/export", lang="ru")
    (call,) = [c for c in api.calls if c.method == "sendDocument"]
    data = json.loads(call.params["document"]["content"])
    assert {r["text"]: r["repeats"] for r in data["reminders"]} == {
        "поздравить маму": "каждый год 8 марта в 10:00", "спорт": "по вт, чт в 19:00"}
    assert data["reminders"][0]["recurrence"] == {"kind": "yearly", "interval": 1, "month": 3, "day": 8,
                                                  "hour": 10, "minute": 0}
