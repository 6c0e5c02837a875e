"""One delivery: the message a due reminder becomes, its buttons, and the outcome of sending it.

Every way a send can end is one of three typed outcomes, and the scheduler records each:
- `Delivered`: Telegram accepted it (the reminder is done or moves to its next occurrence);
- `RetryLater`: it may not have reached the user (5xx, timeouts, 429s after the limiter's own
  retries, an answer PTB cannot read, a bug): the same occurrence is tried again after a back-off
  (30 s doubling to 1 h); when the answer leaves it unknown whether the message went out, the next
  copy says "possibly a repeat";
- `Failed`: Telegram refused for good (blocked, chat gone, a request it will never accept) or the
  retries are used up: the delivery is failed, a recurring reminder moves on, the admins are told.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, TelegramError, TimedOut

from . import callbacks as cb
from .catalogue import fmt_delay, language, t
from .limits import MESSAGE_TEXT, fit
from .views import local_time

LATE_NOTE_AFTER = timedelta(seconds=90)
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 8            # ~2 h of back-off before a reminder is given up and the admins told


@dataclass(frozen=True)
class Delivered:
    reminder_id: int
    delivery_id: int
    message_id: int | None
    late_seconds: int
    next_due: datetime | None


@dataclass(frozen=True)
class RetryLater:
    reminder_id: int
    delivery_id: int
    error: str
    retry_at: datetime
    in_doubt: bool


@dataclass(frozen=True)
class Failed:
    reminder_id: int
    delivery_id: int
    error: str
    next_due: datetime | None


Outcome = Delivered | RetryLater | Failed


def lang_of(r: dict) -> str:
    return language(r.get("telegram_lang"), r.get("lang"))


def keyboard(delivery_id: int, snooze_minutes: int, lang: str) -> InlineKeyboardMarkup:
    first = t(lang, "btn_snooze_min", n=snooze_minutes) if snooze_minutes != 60 else t(lang, "btn_snooze_hour")
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(t(lang, "btn_done"), callback_data=cb.Done(delivery_id).encode()),
         InlineKeyboardButton(first, callback_data=cb.Snooze(delivery_id, snooze_minutes).encode())],
        [InlineKeyboardButton(t(lang, "btn_snooze_hour"), callback_data=cb.Snooze(delivery_id, 60).encode()),
         InlineKeyboardButton(t(lang, "btn_tomorrow"), callback_data=cb.Tomorrow9(delivery_id).encode())],
    ])


def render(r: dict, now: datetime) -> tuple[str, int]:
    """The reminder's message (always within Telegram's 4,096) and how late it is, in seconds."""
    lang = lang_of(r)
    late = max(0, int((now - r["due_at"]).total_seconds()))
    notes = []
    due = local_time(r["due_at"], r["tz"], lang)
    if r.get("quiet_held"):
        notes.append(t(lang, "quiet_note", due=due))
    elif late >= LATE_NOTE_AFTER.total_seconds():
        notes.append(t(lang, "late_note", delay=fmt_delay(late, lang), due=due))
    if r.get("in_doubt"):
        notes.append(t(lang, "repeat_note"))
    tail = ("\n\n" + "\n".join(notes)) if notes else ""
    head = fit(f"⏰ {r['text']}", MESSAGE_TEXT - len(tail) - 2)
    return head + tail, late


def backoff(attempts: int) -> timedelta:
    return min(RETRY_CAP, RETRY_BASE * (2 ** max(0, min(attempts, 20) - 1)))


def classify_error(r: dict, e: BaseException, now: datetime, next_due: datetime | None) -> Outcome:
    """The outcome of a send that raised `e` (anything but cancellation)."""
    rid, did = r["id"], r["delivery_id"]
    text = f"{type(e).__name__}: {str(e)[:300]}"
    attempts = int(r.get("attempts") or 0) + 1
    if isinstance(e, (Forbidden, BadRequest, InvalidToken, ChatMigrated)):
        return Failed(rid, did, text, next_due)
    if attempts >= MAX_ATTEMPTS:
        return Failed(rid, did, text + f" (gave up after {attempts} attempts)", next_due)
    # a timeout or an answer we could not read may hide a message that did go out
    unknown = isinstance(e, (TimedOut, asyncio.TimeoutError)) or not isinstance(e, (TelegramError, OSError))
    return RetryLater(rid, did, text, now + backoff(attempts), in_doubt=unknown)
