"""Properties of the parser (hypothesis): an accepted phrase is due in the future, its text holds
none of the time words the parser used, and the confirmation's time parses back to the same
instant."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.parsing import Ambiguous, ParseError, parse
from bot.views import local_time

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)  # Wednesday 11:00 in Berlin
TZ = "Europe/Berlin"

# time expressions with the local due time they mean at NOW (both languages)
EXPRESSIONS = [
    ("in 10 minutes", "2026-11-25 11:10"), ("in 1.5 hours", "2026-11-25 12:30"),
    ("in an hour and a half", "2026-11-25 12:30"), ("in 2h30", "2026-11-25 13:30"),
    ("tomorrow at 9", "2026-11-26 09:00"), ("tomorrow at noon", "2026-11-26 12:00"),
    ("tonight at 11", "2026-11-25 23:00"), ("at 18:30", "2026-11-25 18:30"), ("at 10.30pm", "2026-11-25 22:30"),
    ("on friday at 5pm", "2026-11-27 17:00"), ("on 25.12 at 18:00", "2026-12-25 18:00"),
    ("on the 15th at 10:00", "2026-12-15 10:00"), ("dec 5 at 3pm", "2026-12-05 15:00"),
    ("через 10 минут", "2026-11-25 11:10"), ("через полтора часа", "2026-11-25 12:30"),
    ("через 2 с половиной часа", "2026-11-25 13:30"), ("завтра в 9", "2026-11-26 09:00"),
    ("в полдень", "2026-11-25 12:00"), ("в 18.30", "2026-11-25 18:30"), ("в пятницу в 7 вечера", "2026-11-27 19:00"),
    ("1 декабря в 18:00", "2026-12-01 18:00"), ("сегодня вечером", "2026-11-25 19:00"),
    ("tomorow at 9", "2026-11-26 09:00"), ("завтро в 9", "2026-11-26 09:00"),
]
# ordinary words: none of them is a time word, a number or a typo of one
WORDS = ["call", "mom", "buy", "milk", "bread", "pay", "the", "bills", "water", "plants", "send",
         "report", "to", "boss", "gym", "pick", "up", "kids", "позвонить", "маме", "купить", "хлеб",
         "оплатить", "счёт", "полить", "цветы", "отчёт", "забрать", "детей", "🍵", "💊"]
text_words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).filter(
    lambda ws: ws[0] not in ("to", "the") and ws[-1] not in ("to", "the", "up"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXPRESSIONS), text_words, st.booleans(), st.booleans())
def test_a_time_anywhere_in_the_message_gives_its_time_and_leaves_exactly_the_text(expr, words, before,
                                                                                   prefix):
    phrase, due = expr
    text = " ".join(words)
    msg = f"{phrase} {text}" if before else f"{text} {phrase}"
    if prefix:
        msg = ("напомни " if any("а" <= c <= "я" for c in phrase) else "remind me ") + msg
    p = parse(msg, NOW, TZ)
    assert p.due_at > NOW
    assert p.due_at.astimezone(ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M") == due, msg
    assert p.text == text, msg


instants = st.datetimes(min_value=datetime(2026, 11, 25, 11, 0), max_value=datetime(2036, 11, 1),
                        timezones=st.just(timezone.utc)).map(lambda d: d.replace(second=0, microsecond=0))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instants, st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"]),
       st.sampled_from(["en", "ru"]))
def test_the_confirmations_time_parses_back_to_the_same_instant(due, tz, lang):
    local = due.astimezone(ZoneInfo(tz))
    # a wall-clock time that occurs twice (autumn) names its first instant: skip the second one
    assume(local.replace(fold=0).utcoffset() == local.utcoffset() == local.replace(fold=1).utcoffset()
           or local.fold == 0 and local.replace(fold=0).astimezone(timezone.utc) == due)
    assume(due > NOW + timedelta(minutes=1))
    shown = local_time(due, tz, lang)           # what the confirmation says: "Thu 2026-11-26 09:00"
    p = parse(f"{shown} x", NOW, tz)
    assert p.due_at == due and p.text == "x", shown


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS + ["at", "in", "on", "5", "9", "10:30", "tomorrow", "завтра",
                                         "hours", "часа", "every", "каждый", "friday", "вечером",
                                         "1.5", "pm", "утра", "25.12", "tommorow", "минуд"]),
                min_size=1, max_size=12).map(" ".join))
def test_whatever_is_accepted_is_in_the_future_and_keeps_no_used_time_word(msg):
    try:
        p = parse(msg, NOW, TZ)
    except Ambiguous as e:
        assert e.candidates and all(c.due_at > NOW for c in e.candidates)
        return
    except ParseError:
        return
    assert p.due_at > NOW
    left = p.text.lower().split()
    for w in ("tomorrow", "завтра", "tommorow", "every", "каждый", "вечером", "pm", "утра", "1.5",
              "10:30", "25.12", "минуд"):
        assert w not in left, (msg, p.text)
