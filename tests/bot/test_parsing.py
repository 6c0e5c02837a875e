"""Phrase families (English and Russian) and recurrence arithmetic, including DST changes."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.parsing import ParseError, parse
from bot.recurrence import next_occurrence

TZ = "Europe/Berlin"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)  # Wed 11:00 in Berlin


def local(p):
    return p.due_at.astimezone(ZoneInfo(TZ)).strftime("%a %Y-%m-%d %H:%M")


CASES = [
    # phrase, local due, recurrence kind (None: one-shot), text
    ("in 10 minutes tea", "Wed 2026-11-25 11:10", None, "tea"),
    ("in an hour stretch", "Wed 2026-11-25 12:00", None, "stretch"),
    ("in 2 hours 30 minutes x", "Wed 2026-11-25 13:30", None, "x"),
    ("in 3 days renew", "Sat 2026-11-28 11:00", None, "renew"),
    ("tomorrow at 9 call mom", "Thu 2026-11-26 09:00", None, "call mom"),
    ("remind me tomorrow at 9 to call mom", "Thu 2026-11-26 09:00", None, "call mom"),
    ("remind me to call mom tomorrow at 9", "Thu 2026-11-26 09:00", None, "call mom"),
    ("tomorrow 9am dentist", "Thu 2026-11-26 09:00", None, "dentist"),
    ("at 18:30 gym", "Wed 2026-11-25 18:30", None, "gym"),
    ("at 07:00 early", "Thu 2026-11-26 07:00", None, "early"),  # passed today: tomorrow
    ("on 1 December 18:00 pay rent", "Tue 2026-12-01 18:00", None, "pay rent"),
    ("Dec 5 at 3pm party", "Sat 2026-12-05 15:00", None, "party"),
    ("2026-12-24 18:00 xmas", "Thu 2026-12-24 18:00", None, "xmas"),
    ("next monday 10:00 standup", "Mon 2026-11-30 10:00", None, "standup"),
    ("every day at 9 pills", "Thu 2026-11-26 09:00", "daily", "pills"),
    ("every weekday 8:30 standup", "Thu 2026-11-26 08:30", "weekly", "standup"),
    ("every monday 10:00 review", "Mon 2026-11-30 10:00", "weekly", "review"),
    ("every sunday at 7pm call", "Sun 2026-11-29 19:00", "weekly", "call"),
    ("every month on the 1st pay rent", "Tue 2026-12-01 09:00", "monthly", "pay rent"),
    ("every month on the 15th at 10:00 bills", "Tue 2026-12-15 10:00", "monthly", "bills"),
    # Russian
    ("через 10 минут чай", "Wed 2026-11-25 11:10", None, "чай"),
    ("через полчаса чай", "Wed 2026-11-25 11:30", None, "чай"),
    ("через час звонок", "Wed 2026-11-25 12:00", None, "звонок"),
    ("напомни завтра в 9 позвонить маме", "Thu 2026-11-26 09:00", None, "позвонить маме"),
    ("напомни мне позвонить маме завтра в 9", "Thu 2026-11-26 09:00", None, "позвонить маме"),
    ("послезавтра в 7 вечера кино", "Fri 2026-11-27 19:00", None, "кино"),
    ("в 18:30 спорт", "Wed 2026-11-25 18:30", None, "спорт"),
    ("1 декабря в 18:00 оплатить", "Tue 2026-12-01 18:00", None, "оплатить"),
    ("24.12 18:00 ёлка", "Thu 2026-12-24 18:00", None, "ёлка"),
    ("в следующий понедельник в 10 встреча", "Mon 2026-11-30 10:00", None, "встреча"),
    ("каждый день в 9 таблетки", "Thu 2026-11-26 09:00", "daily", "таблетки"),
    ("по будням в 8:30 зарядка", "Thu 2026-11-26 08:30", "weekly", "зарядка"),
    ("каждый понедельник в 10:00 планёрка", "Mon 2026-11-30 10:00", "weekly", "планёрка"),
    ("каждую среду в 19 бассейн", "Wed 2026-11-25 19:00", "weekly", "бассейн"),
    ("по пятницам в 18 отчёт", "Fri 2026-11-27 18:00", "weekly", "отчёт"),
    ("каждый месяц 1 числа квартплата", "Tue 2026-12-01 09:00", "monthly", "квартплата"),
    ("каждое 15 число счёт", "Tue 2026-12-15 09:00", "monthly", "счёт"),
]


@pytest.mark.parametrize("phrase,due,kind,text", CASES, ids=[c[0] for c in CASES])
def test_every_phrase_family_gives_its_time_rule_and_text(phrase, due, kind, text):
    p = parse(phrase, NOW, TZ)
    assert local(p) == due
    assert (p.recurrence or {}).get("kind") == kind
    assert p.text == text
    assert p.lang == ("ru" if any("а" <= c <= "я" for c in phrase) else "en")


@pytest.mark.parametrize("phrase", ["hello there", "", "remind me", "купить хлеба", "today at 08:00 x",
                                    "every month on the 40th x"])
def test_a_phrase_without_a_time_is_refused(phrase):
    with pytest.raises(ParseError):
        parse(phrase, NOW, TZ)


def test_the_users_time_zone_applies():
    p = parse("tomorrow at 9 x", NOW, "America/New_York")
    assert p.due_at == datetime(2026, 11, 26, 14, 0, tzinfo=timezone.utc)


def test_recurring_keeps_wall_clock_across_dst():
    rule = {"kind": "daily", "hour": 9, "minute": 0}
    # spring forward in Berlin: 2026-03-29 (CET +1 -> CEST +2)
    before = next_occurrence(rule, TZ, datetime(2026, 3, 28, 9, 0, tzinfo=timezone.utc))
    assert before == datetime(2026, 3, 29, 7, 0, tzinfo=timezone.utc)  # 09:00 CEST
    prev = next_occurrence(rule, TZ, datetime(2026, 3, 27, 9, 0, tzinfo=timezone.utc))
    assert prev == datetime(2026, 3, 28, 8, 0, tzinfo=timezone.utc)    # 09:00 CET
    # fall back: 2026-10-25
    assert next_occurrence(rule, TZ, datetime(2026, 10, 24, 8, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 10, 25, 8, 0, tzinfo=timezone.utc)               # 09:00 CET
    # a time in the spring-forward gap moves forward by the gap
    gap = next_occurrence({"kind": "daily", "hour": 2, "minute": 30}, TZ,
                          datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc))
    assert gap.astimezone(ZoneInfo(TZ)).strftime("%H:%M") == "03:30"


def test_weekday_and_monthly_rules_find_the_next_occurrence():
    wd = {"kind": "weekdays", "hour": 8, "minute": 30}
    fri = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    assert next_occurrence(wd, TZ, fri).astimezone(ZoneInfo(TZ)).strftime("%a %H:%M") == "Mon 08:30"
    m31 = {"kind": "monthly", "day": 31, "hour": 9, "minute": 0}
    assert next_occurrence(m31, TZ, datetime(2027, 2, 1, tzinfo=timezone.utc)).day == 28


def test_every_example_the_help_gives_is_understood_without_a_question():
    import re as _re

    from bot.catalogue import _EXAMPLES
    examples = [e.strip() for lang in _EXAMPLES for e in _re.split(r"\n| · ", _EXAMPLES[lang])]
    assert len(examples) >= 20
    for e in examples:
        p = parse(e, NOW, TZ)  # raises (and fails) on a question or a refusal
        assert p.due_at > NOW and p.text not in ("", "⏰"), e


SEVEN = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)  # Wed 07:00 in Berlin


@pytest.mark.parametrize("phrase,due,kind,text", [
    # issue 18: each of these was saved at a wrong time, refused, or left time words in the text
    ("in 1.5 hours take the laundry out", "Wed 2026-11-25 08:30", None, "take the laundry out"),
    ("через 2 с половиной часа выйти", "Wed 2026-11-25 09:30", None, "выйти"),
    ("in an hour and a half call Bob", "Wed 2026-11-25 08:30", None, "call Bob"),
    ("remind me tommorow at 9", "Thu 2026-11-26 09:00", None, "⏰"),
    ("tomorrow at noon lunch", "Thu 2026-11-26 12:00", None, "lunch"),
    ("on the 15th at 10:00 pay the card", "Tue 2026-12-15 10:00", None, "pay the card"),
    ("every 2 weeks on friday team sync", "Fri 2026-11-27 09:00", "weekly", "team sync"),
    ("every morning at 7 run", "Thu 2026-11-26 07:00", "daily", "run"),  # 07:00 now: the next one
    ("every year on March 8 flowers", "Mon 2027-03-08 09:00", "yearly", "flowers"),
    ("каждые 2 недели в пятницу отчёт", "Fri 2026-11-27 09:00", "weekly", "отчёт"),
    ("через пол часа чай", "Wed 2026-11-25 07:30", None, "чай"),
    ("в полдень обед", "Wed 2026-11-25 12:00", None, "обед"),
    ("в полночь спать", "Thu 2026-11-26 00:00", None, "спать"),
    ("в 18.30 ужин", "Wed 2026-11-25 18:30", None, "ужин"),
    ("at 10.30 call", "Wed 2026-11-25 10:30", None, "call"),
    ("через 1,5 часа выйти", "Wed 2026-11-25 08:30", None, "выйти"),
    ("tonight at 11 bed", "Wed 2026-11-25 23:00", None, "bed"),
    ("every month pay rent", "Wed 2026-11-25 09:00", "monthly", "pay rent"),  # today's day
])
def test_the_phrases_of_issue_18(phrase, due, kind, text):
    p = parse(phrase, SEVEN, TZ)
    assert (local(p), (p.recurrence or {}).get("kind"), p.text) == (due, kind, text)
