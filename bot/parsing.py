"""Reminder phrases in English and Russian -> (first due time, recurrence rule, text), or a question.

`parse(text, now, tz_name)` returns a `Parsed` only when it is sure. It raises `ParseError` with a
short reason when there is no reminder in the text, and `Ambiguous` (a `ParseError` carrying the
likely readings) when the bot must ask: two readings disagree ("at 5": 05:00 or 17:00; "10.11": a
date or a time; two days named), or time-like words (numbers, units, day and part-of-day words, and
typos of them) were left over in the reminder's text.

How: the phrase is cut into tokens whose words are looked up in a closed vocabulary, with edit
distance for typos (`bot/phrases.py`); a hand-written grammar finds components anywhere in the
message (`bot/grammar.py`: a recurrence, a duration, a date, a day word, a weekday, a time, a part
of the day), and `bot/readings.py` combines them into readings; whatever the grammar did not use
is the text, checked here for time words left over. Calendar helpers are in `bot/dates.py`, rules
and their next occurrences in `bot/recurrence.py`.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from .grammar import Comp, Scan
from .limits import MAX_INPUT, REMINDER_TEXT, clean
from .phrases import (CYRILLIC, DANGLING, LEAD_JUNK, PREFIX_WORDS, TIMEISH, TRAIL_JUNK, Ambiguous,
                      ParseError, Parsed, Tok, tokenize)
from .readings import FURTHEST, Reader

__all__ = ["Ambiguous", "ParseError", "Parsed", "parse", "looks_like_reminder"]

CORE_PREFIX = frozenset("remind reminder remember напомни напомните напомнить напомнишь напоминай "
                        "напоминайте напоминание".split())
POLITE = frozenset("please pls plz pleas plez пожалуйста пжлст пж плиз плз".split())
DEADLINE = frozenset("until till til before до перед".split())
_ISO_T = re.compile(r"\b(\d{4}-\d{1,2}-\d{1,2})[Tt](\d{1,2}:\d{2})(?::\d{2})?\b")
_SLASH_COMMAND = re.compile(r"^\s*/remind(?:@\w+)?\b", re.I)


# ---------------------------------------------------------------------------------------------
def _strip_prefix(toks: list[Tok]) -> int:
    """How many leading tokens are "remind me", "pls", "напомни мне пожалуйста"…"""
    k = 0
    while k < len(toks) and (toks[k].low in PREFIX_WORDS or toks[k].low in ("a", "an", ",", ":")):
        k += 1
    if any(t.low in CORE_PREFIX for t in toks[:k]):
        while k > 0 and toks[k - 1].low in ("a", "an"):
            k -= 1
        return k
    k = 0
    while k < len(toks) and toks[k].low in POLITE:
        k += 1
    return k


def _suspicious(toks: list[Tok], used: list[bool], k: int, kinds: frozenset[str] = frozenset()) -> bool:
    """A token left in the text that looks like time: the parser may have misread the phrase."""
    t = toks[k]

    def near_num(j: int) -> bool:
        return 0 <= j < len(toks) and toks[j].kind in ("num", "iso")

    def free_num(j: int) -> bool:  # a number the parser did not use ("at 9 second" is a noun)
        return near_num(j) and not used[j]

    def beside_used(j: int) -> bool:
        return (j > 0 and used[j - 1]) or (j + 1 < len(toks) and used[j + 1])

    prv0 = toks[k - 1] if k > 0 else None
    if (t.kind == "num" or t.cat in ("num", "tens")) and prv0 is not None and \
            prv0.low in ("or", "или", "-", "–", "to", "до"):
        return True                      # "at 9 or 10", "in a day or two", "час-полтора"
    if t.kind == "word":
        if t.cat == "ampm" and t.low != "am":
            return True                  # "friday pm", "в пятницу вечера"
        if t.cat in ("num", "tens") and k > 0 and toks[k - 1].cat in ("at", "in") and not used[k - 1]:
            return True                  # "at seven" not read as a time
        if t.cat == "unit" and not t.fuzzy:
            # a unit beside a number or after "in", "every", "next" is a time word ("30 min
            # before"); alone it is a noun ("plan the week", "office hours")
            prev = toks[k - 1] if k > 0 else None
            return free_num(k - 1) or free_num(k + 1) or (prev is not None and prev.cat in (
                "in", "every", "next", "this", "a", "half", "num", "tens", "oneandhalf", "pol"))
        nxt_word = k + 1 < len(toks) and toks[k + 1].kind == "word" and toks[k + 1].cat is None
        if t.low.isascii() and nxt_word and (t.cat == "everyadv" and "rec" in kinds
                                             or t.cat == "part" and "time" in kinds):
            return False                 # "send the weekly report every friday", "evening class at 7pm"
        if t.cat in TIMEISH:
            if len(t.low) <= 3 and not t.fuzzy:
                return near_num(k - 1) or near_num(k + 1)
            return True
        if t.cat in ("month", "wdabbr", "ampm", "oclock"):
            return near_num(k - 1) or near_num(k + 1) or (t.cat in ("month", "wdabbr") and beside_used(k)
                                                          and (len(t.low) > 4 or t.cat == "wdabbr"))
        return False
    if t.kind == "iso":
        return True
    if t.kind == "num":
        if not t.isnum():
            return True                  # 1.5, 10:30, 25.12 left over
        if int(t.low) > 59 and not (len(t.low) == 4 and 2000 <= int(t.low) <= 2099):
            return False                 # "call 911", "room 305", "flight 1234" (a year is not)
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        prv = toks[k - 1] if k > 0 else None
        if nxt is None or nxt.kind != "word" or nxt.cat in TIMEISH or nxt.cat in ("ampm", "month"):
            return True
        if prv is not None and (prv.cat in ("at", "in") or prv.low in ("на", "for") or used[k - 1]):
            return True
        return beside_used(k) and len(t.low) <= 2 and nxt.kind != "word"
    return False


def _punct(t: Tok) -> bool:
    return t.kind == "other" and unicodedata.category(t.raw[0]).startswith("P")


def _text(s: str, toks: list[Tok], keep: list[bool], start: int) -> str:
    kept = [k for k in range(len(toks)) if keep[k]]
    # leading "to", "that", "чтобы" after a prefix or a time; trailing dangling prepositions
    while kept and (kept[0] > start or start > 0) and toks[kept[0]].low in LEAD_JUNK | {"and", "и"}:
        kept.pop(0)
    while kept and _punct(toks[kept[0]]):
        kept.pop(0)
    while kept and (toks[kept[-1]].low in DANGLING | TRAIL_JUNK or _punct(toks[kept[-1]])
                    and toks[kept[-1]].low not in ("!", "?", ".", ")")):
        if toks[kept[-1]].low in DANGLING and len(kept) < 2:
            break
        kept.pop()
    out = []
    for n, k in enumerate(kept):
        if n:
            prev = kept[n - 1]
            out.append(s[toks[prev].end:toks[k].start] if prev == k - 1 else " ")
        out.append(toks[k].raw)
    return re.sub(r"\s{2,}", " ", "".join(out)).strip()


def parse(text: str, now: datetime, tz_name: str) -> Parsed:
    """Parse a reminder phrase (with or without "remind me" / "напомни"): the reminder when the
    parser is sure; `Ambiguous` with the likely readings when it is not; `ParseError` otherwise."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    text = clean(text)
    if len(text) > MAX_INPUT:
        raise ParseError("text too long")
    s = _SLASH_COMMAND.sub("", text, count=1)
    s = _ISO_T.sub(r"\1 \2", s)  # "2026-12-24T18:00": a date and a time
    if not s.strip():
        raise ParseError("empty")
    toks = tokenize(s)
    start = _strip_prefix(toks)
    if start >= len(toks):
        raise ParseError("empty")
    scan = Scan(toks[start:])
    try:
        comps = scan.run()
    except (OverflowError, ValueError) as e:
        raise e if isinstance(e, ParseError) else ParseError("out of range") from None
    adjectives = [c for c in comps if c.get("adj")]
    others = [c for c in comps if not c.get("adj")]
    if adjectives and any(c["kind"] == "rec" for c in others):
        comps = others                    # "send the weekly report every friday": a word of the text
    forced_ask = any(c.get("ask") for c in comps)
    if adjectives and others and comps is not others:
        # "daily standup notes tomorrow at 9": every day, or once? ask, the word stays in the text
        comps, forced_ask = [dict(c, adj_alt=True) if c.get("adj") else c for c in comps], True
    if not comps:
        comps = _lone_hour(toks, start)  # "call mom 5": 05:00 or 17:00? ask, never guess
        forced_ask = bool(comps)
    if not comps:
        raise ParseError("no time found")
    used = [False] * len(toks)
    for c in comps:
        if c.get("adj_alt"):
            continue
        for k in range(start + c["start"], start + c["end"]):
            used[k] = True
    keep = [k >= start and not used[k] for k in range(len(toks))]
    # a preposition right before a component is part of it ("call mom at" + "at 5")
    for k in range(len(toks)):
        if keep[k] and toks[k].low in DANGLING and k + 1 < len(toks) and used[k + 1]:
            keep[k] = False
    body = _text(s, toks, keep, start)
    present = {c["kind"] for c in comps}
    for c in comps:
        if c["kind"] == "dt":
            rec_dated = any(x["kind"] == "rec" and x["unit"] in ("year", "month") for x in comps)
            if "time" in present or rec_dated:
                c["kind"], c["y"] = "date", None    # "25.12 at 18:00", "every year 14.02"
            elif present & {"day", "wd", "date", "mday"}:
                c["kind"], c["amb"] = "time", 1 <= c["h"] <= 12   # "tomorrow 10.30"
    reader = Reader(now, tz_name)
    readings: list[Parsed] = []
    errors: list[ParseError] = []
    asked: list[Parsed] = []
    for v in reader.variants(comps):
        try:
            readings.extend(reader.read(v))
        except Ambiguous as e:
            asked.extend(e.candidates)
        except ParseError as e:
            errors.append(e)
        except (OverflowError, ValueError):
            errors.append(ParseError("out of range"))
    if not readings and not asked and any(str(e) == "conflict" for e in errors):
        readings = _each_alone(reader, comps)  # "tomorrow on friday": which one?
        asked = list(readings)
    if any(c.get("adj_alt") for c in comps):   # and the reading without the adjective's rule
        asked.extend(_readings_of(reader, [c for c in comps if not c.get("adj_alt")]))
    readings = _distinct(readings + asked)
    lang = "ru" if CYRILLIC.search(s) else "en"
    for p in readings:
        p.text, p.lang = body or "⏰", lang
        _check(p, now)
    if not readings:
        order = ("too frequent", "out of range", "bad date", "day of month must be 1..31", "past",
                 "bad time", "conflict")
        errors.sort(key=lambda e: order.index(str(e)) if str(e) in order else len(order))
        raise errors[0] if errors else ParseError("no time found")
    if len(readings) > 1 or asked or forced_ask:
        raise Ambiguous(readings[:3])
    kinds = frozenset(c["kind"] for c in comps)
    words = [toks[k].raw for k in range(len(toks)) if keep[k] and _suspicious(toks, used, k, kinds)]
    words += [toks[k].raw for k in range(len(toks) - 1)  # "until 5pm", "до 17:00": a deadline?
              if keep[k] and used[k + 1] and toks[k].low in DEADLINE]
    if words:
        raise Ambiguous(readings, words)
    return readings[0]


def _lone_hour(toks: list[Tok], start: int) -> list[Comp]:
    """A phrase with no time but one bare hour in it ("call mom 5", "in 5 call"): a time to offer."""
    used = [False] * len(toks)
    found = [k for k in range(start, len(toks)) if toks[k].isnum() and len(toks[k].low) <= 2
             and int(toks[k].low) <= 23 and _suspicious(toks, used, k)]
    words = [t for t in toks[start:] if t.kind == "word" and t.cat is None]
    if len(found) != 1 or not words:
        return []
    h = int(toks[found[0]].low)
    k = found[0] - start
    out: list[Comp] = [{"kind": "time", "h": h, "mi": 0, "amb": 1 <= h <= 12, "start": k, "end": k + 1}]
    if found[0] > start and toks[found[0] - 1].cat == "in":   # "check the oven in 15": minutes?
        out.append({"kind": "rel", "parts": {"min": h}, "start": k - 1, "end": k + 1})
    return out


def _each_alone(reader: Reader, comps: list[Comp]) -> list[Parsed]:
    """The readings of the phrase without one of its day or time components at a time."""
    return [p for k in range(len(comps)) for p in _readings_of(reader, comps[:k] + comps[k + 1:])]


def _readings_of(reader: Reader, comps: list[Comp]) -> list[Parsed]:
    """Every reading of every variant of `comps`; a variant that reads as nothing is skipped."""
    out: list[Parsed] = []
    for v in reader.variants(comps):
        try:
            out.extend(reader.read(v))
        except Ambiguous as e:
            out.extend(e.candidates)
        except (ParseError, OverflowError, ValueError):
            continue
    return out


def _distinct(ps: list[Parsed]) -> list[Parsed]:
    seen, out = set(), []
    for p in ps:
        key = (p.due_at, repr(sorted((p.recurrence or {}).items())))
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _check(p: Parsed, now: datetime) -> None:
    if len(p.text) > REMINDER_TEXT:
        raise ParseError("text too long")
    if p.due_at - now > FURTHEST:
        raise ParseError("out of range")
    if p.due_at <= now:
        raise ParseError("past")


def looks_like_reminder(text: str) -> bool:
    """Starts with "remind me" / "напомни" (for the logs: cheap, no tokenizing)."""
    return (text or "").lstrip(" /").lower().startswith(("remind", "please remind", "pls remind", "напомни",
                                                          "пожалуйста, напомни", "пожалуйста напомни"))
