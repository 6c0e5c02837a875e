"""Asking instead of guessing, and confirming what was saved.

When the parser is not sure (`Ambiguous`), the bot asks with one button per likely reading and a
✖ Cancel. The readings are stored server-side (table `questions`, migration 0005); a button carries
only `k<index>:<question id>` (`bot/callbacks.py`), and a press is checked against the presser,
the question's age (a day) and the index, and consumed once (`DELETE … RETURNING`), so a double
press saves one reminder. Every saved reminder is confirmed with its absolute time, the relative
one ("in 1 h 30 min") and an ↩ Undo button.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from telegram import Update
from telegram.ext import ContextTypes

from . import callbacks as cb
from . import logs, store, updates
from .catalogue import t
from .limits import REMINDER_TEXT
from .phrases import Ambiguous, Parsed
from .presses import PressHandlers
from .recurrence import next_occurrence, normalize
from .services import UserRow
from .views import confirmation, question_view

log = logs.get("bot.asking")
QUESTION_TTL = timedelta(days=1)
MAX_OPEN_QUESTIONS = 20   # per user: older ones are dropped (a question is cheap to ask again)


async def add_question(pool, user_id: int, chat_id: int, tz: str, readings: list[Parsed],
                       source: str) -> int:
    data = [{"due_at": p.due_at.isoformat(), "recurrence": p.recurrence, "text": p.text,
             "notes": p.notes} for p in readings]
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO questions (user_id, chat_id, tz, readings, source) VALUES (%s, %s, %s, %s, %s) "
            "RETURNING id", (user_id, chat_id, tz, Jsonb(data), source[:500]))
        qid = (await cur.fetchone())[0]
        await conn.execute(
            """DELETE FROM questions WHERE user_id = %s AND id NOT IN (
                   SELECT id FROM questions WHERE user_id = %s ORDER BY id DESC LIMIT %s)""",
            (user_id, user_id, MAX_OPEN_QUESTIONS))
        return qid


async def take_question(pool, qid: int, user_id: int, now: datetime) -> dict | None:
    """The question (consumed), if it is this user's and not expired; None otherwise."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """DELETE FROM questions WHERE id = %s AND user_id = %s AND created_at > %s
               RETURNING id, chat_id, tz, readings, source""", (qid, user_id, now - QUESTION_TTL))
        return await cur.fetchone()


def checked_reading(raw: object, tz: str, now: datetime) -> Parsed | None:
    """A stored reading, re-checked (fail closed): a rule steps to its next occurrence after now; a
    one-off time that has passed meanwhile is refused (None)."""
    if not isinstance(raw, dict):
        return None
    try:
        due = datetime.fromisoformat(str(raw["due_at"]))
        text = str(raw["text"])[:REMINDER_TEXT] or "⏰"
        rule = raw.get("recurrence")
        notes = [n for n in raw.get("notes") or [] if isinstance(n, str) and n.startswith("note_")]
        if due.tzinfo is None:
            return None
        if rule is not None:
            rule = normalize(rule)
            if due <= now:
                due = next_occurrence(rule, tz, now)
        elif due <= now:
            return None
        return Parsed(due, rule, text, notes=notes)
    except (KeyError, TypeError, ValueError):
        return None


class AskHandlers(PressHandlers):
    async def confirm(self, update: Update, u: UserRow, lang: str, p: Parsed, source: str) -> int | None:
        """Save `p` and reply with the confirmation (absolute and relative time, ↩ Undo); None
        (and the refusal naming the limit) when the user has as many reminders as one may keep."""
        try:
            rid = await store.add_reminder(self.svc.pool, u.user_id, updates.chat(update).id, p.text,
                                           u.tz, p.due_at, p.recurrence, source[:500])
        except store.ReminderLimitReached as e:
            log.event("reminder_refused", user=u.user_id, reason="cap", limit=e.limit)
            await self.svc.reply(update, t(lang, "cap_reached", limit=e.limit))
            return None
        self.svc.wake_if_due(p.due_at)
        text, kb = confirmation(rid, p.text, p.due_at, u.tz, p.recurrence, lang, self.svc.now(), p.notes)
        try:
            await self.svc.reply(update, text, reply_markup=kb)
        finally:  # logged after the reply is on its way (off the reply's path), whatever came of it
            log.event("reminder_created", user=u.user_id, reminder=rid, due_at=p.due_at.isoformat(),
                      recurring=bool(p.recurrence))
        return rid

    async def ask(self, update: Update, u: UserRow, lang: str, e: Ambiguous, phrase: str) -> None:
        readings = e.candidates[:3]
        qid = await add_question(self.svc.pool, u.user_id, updates.chat(update).id, u.tz, readings, phrase)
        log.event("asked", user=u.user_id, question=qid, readings=len(readings), words=len(e.words))
        text, kb = question_view(qid, phrase, [(p.due_at, p.recurrence) for p in readings], e.words[:5],
                                 u.tz, lang, self.svc.now())
        await self.svc.reply(update, text, reply_markup=kb)

    # -- the buttons ----------------------------------------------------------------------------
    async def pick(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = updates.user_id(update)
        log.event("button", user=uid, kind="pick")
        action = await self._decode(update, cb.Pick)
        if action is None:
            return
        now = self.svc.now()
        row = await take_question(self.svc.pool, action.question_id, uid, now)
        if row is None:
            await self._answer(update, "ans_question_gone")
            return
        readings = row["readings"] if isinstance(row["readings"], list) else []
        p = checked_reading(readings[action.index], row["tz"], now) if action.index < len(readings) else None
        if p is None:
            await self._answer(update, "ans_question_gone")
            return
        u = await self.svc.user(update)
        lang = self.svc.lang(update, u)
        try:
            rid = await store.add_reminder(self.svc.pool, uid, row["chat_id"], p.text, row["tz"], p.due_at,
                                           p.recurrence, (row["source"] or "")[:500])
        except store.ReminderLimitReached as e:
            log.event("reminder_refused", user=uid, reason="cap", limit=e.limit)
            await self._answer(update, "cap_reached", limit=e.limit)
            await self._edit(update, t(lang, "cap_reached", limit=e.limit))
            return
        log.event("reminder_created", user=uid, reminder=rid, due_at=p.due_at.isoformat(),
                  recurring=bool(p.recurrence), asked=True)
        self.svc.wake_if_due(p.due_at)
        await self._answer(update, "ans_picked", id=rid)
        text, kb = confirmation(rid, p.text, p.due_at, row["tz"], p.recurrence, lang, now, p.notes)
        await self._edit(update, text, kb)

    async def dismiss(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = updates.user_id(update)
        log.event("button", user=uid, kind="dismiss")
        action = await self._decode(update, cb.Dismiss)
        if action is None:
            return
        row = await take_question(self.svc.pool, action.question_id, uid, self.svc.now())
        if row is None:
            await self._answer(update, "ans_question_gone")
            return
        await self._answer(update, "ans_dismissed")
        u = self.svc.cached(uid)
        await self._edit(update, t(self.svc.lang(update, u), "label_dismissed"))

    async def undo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = updates.user_id(update)
        log.event("button", user=uid, kind="undo")
        action = await self._decode(update, cb.Undo)
        if action is None:
            return
        row = await store.cancel(self.svc.pool, uid, action.reminder_id)  # only the presser's own
        if row is None:
            await self._answer(update, "ans_already_cancelled")
            return
        log.event("reminder_undone", user=uid, reminder=row["id"])
        await self._answer(update, "ans_undone", id=row["id"])
        u = self.svc.cached(uid)
        await self._edit(update, t(self.svc.lang(update, u), "label_undone", id=row["id"], text=row["text"]))
