"""The phrase corpus (tests/bot/corpus/phrases.tsv): every phrase gets its expected reading, a
question, or a refusal; never a wrong time, never a crash. Prints understood / asked / refused /
wrong per family (run with -s)."""
from __future__ import annotations

import pathlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.parsing import Ambiguous, ParseError, Parsed, parse

CORPUS = pathlib.Path(__file__).with_name("corpus") / "phrases.tsv"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)  # Wednesday 11:00 in Berlin
TZ = "Europe/Berlin"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
UNDERSTOOD_AT_LEAST = 0.97


@dataclass
class Case:
    family: str
    phrase: str
    expect: str
    text: str
    line: int


def load() -> list[Case]:
    out = []
    for n, raw in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        family, phrase, expect, text = raw.split("\t")
        out.append(Case(family, phrase, expect, text, n))
    return out


def rule_str(rule: dict | None) -> str:
    """A rule as the corpus writes it: kind[/interval][:detail]."""
    if not rule:
        return ""
    kind, n = rule["kind"], rule.get("interval", 1)
    head = kind + (f"/{n}" if n != 1 or kind == "hourly" else "")
    if kind == "weekly":
        return head + ":" + ",".join(WEEKDAYS[d] for d in rule["weekdays"])
    if kind == "monthly":
        return head + f":{rule['day']}"
    if kind == "yearly":
        return head + f":{rule['month']:02d}-{rule['day']:02d}"
    return head


def reading(p: Parsed) -> str:
    due = p.due_at.astimezone(ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M")
    return f"{due} {rule_str(p.recurrence)}".strip()


def outcome(case: Case) -> tuple[str, str]:
    """(understood | asked | refused | wrong, what the parser did)."""
    try:
        p = parse(case.phrase, NOW, TZ)
    except Ambiguous as e:
        got = "ASK " + " / ".join(reading(c) for c in e.candidates)
        return ("understood" if case.expect == "ASK" else "asked"), got
    except ParseError as e:
        return ("understood" if case.expect == "NO" else "refused"), f"NO ({e})"
    got = f"{reading(p)} «{p.text}»"
    if case.expect in ("ASK", "NO"):
        return "wrong", got
    return ("understood" if reading(p) == case.expect and p.text == case.text else "wrong"), got


CASES = load()


def report() -> tuple[dict[str, Counter], list[tuple[Case, str, str]]]:
    per: dict[str, Counter] = defaultdict(Counter)
    misses = []
    for c in CASES:
        kind, got = outcome(c)
        per[c.family][kind] += 1
        if kind != "understood":
            misses.append((c, kind, got))
    return per, misses


def test_the_corpus_is_large_and_bilingual():
    assert len(CASES) >= 400
    ru = sum(any("а" <= ch <= "я" for ch in c.phrase.lower()) for c in CASES)
    assert 150 <= ru <= len(CASES) - 150


def test_the_corpus_never_gets_a_wrong_time_and_understands_at_least_97_percent():
    per, misses = report()
    total = Counter()
    print(f"\n{'family':<10} {'phrases':>7} {'understood':>10} {'asked':>6} {'refused':>8} {'wrong':>6}")
    for fam, c in per.items():
        total.update(c)
        print(f"{fam:<10} {sum(c.values()):>7} {c['understood']:>10} {c['asked']:>6} {c['refused']:>8} "
              f"{c['wrong']:>6}")
    n = sum(total.values())
    print(f"{'all':<10} {n:>7} {total['understood']:>10} {total['asked']:>6} {total['refused']:>8} "
          f"{total['wrong']:>6}  ({100 * total['understood'] / n:.1f} % understood)")
    for c, kind, got in misses:
        print(f"  {kind:<8} line {c.line}: {c.phrase!r} expected {c.expect} «{c.text}», got {got}")
    assert not [m for m in misses if m[1] == "wrong"], "a wrong reading is never acceptable"
    assert total["understood"] / n >= UNDERSTOOD_AT_LEAST


@pytest.mark.parametrize("case", [c for c in CASES if c.expect not in ("ASK", "NO")],
                         ids=lambda c: f"{c.line}")
def test_an_understood_phrase_is_due_in_the_future_and_its_text_has_no_time_words_used(case):
    try:
        p = parse(case.phrase, NOW, TZ)
    except ParseError:
        return  # counted (asked / refused) by the report above
    assert p.due_at > NOW
    assert p.text and len(p.text) <= len(case.phrase)
