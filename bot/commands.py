"""Chat commands and plain-text reminders: /start, /help, /remind, /list, /cancel, /export."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Protocol

from telegram import Update
from telegram.ext import ContextTypes

from . import logs, store, updates
from .updates import command_argument, parse_id
from .catalogue import t
from .limits import CAPTION, REMINDER_TEXT, clean, fit
from .parsing import ParseError, looks_like_reminder, parse
from .services import Services, UserRow
from .views import list_view, when

log = logs.get("bot.commands")

_PARSE_ERRORS = {"past": "past", "text too long": "too_long", "out of range": "out_of_range"}


class EditApplier(Protocol):
    """What creating a reminder needs of the editing handlers: a message while an edit is pending
    edits that reminder instead (bot/editing.py)."""

    async def apply(self, update: Update, u: UserRow, rid: int, text: str) -> None: ...


class ChatHandlers:
    """Creating and looking at reminders."""

    def __init__(self, svc: Services, editing: EditApplier | None = None):
        self.svc = svc
        self.editing = editing

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="start", user=updates.user_id(update))
        u = await self.svc.user(update)
        lang = self.svc.lang(update, u)
        await self.svc.reply(update, t(lang, "start", help=t(lang, "help"), tz=u.tz))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="help", user=updates.user_id(update))
        u = await self.svc.user(update)  # cached after the first message: usually no round trip
        await self.svc.reply(update, t(self.svc.lang(update, u), "help"))

    async def remind(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="remind", user=updates.user_id(update))
        await self.create(update, command_argument(update))

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = updates.text(update)
        log.event("message", user=updates.user_id(update), prefixed=looks_like_reminder(text[:200]))
        u = await self.svc.user(update)
        if u.editing_id is not None and self.editing is not None:
            await self.editing.apply(update, u, u.editing_id, text)
            return
        await self.create(update, text, u)

    async def create(self, update: Update, phrase: str, u: UserRow | None = None) -> None:
        u = u or await self.svc.user(update)
        lang = self.svc.lang(update, u)
        phrase = clean(phrase)
        try:
            p = parse(phrase, self.svc.now(), u.tz)
        except ParseError as e:
            await self.explain(update, lang, u.user_id, e)
            return
        try:
            rid = await store.add_reminder(self.svc.pool, u.user_id, updates.chat(update).id, p.text,
                                           u.tz, p.due_at, p.recurrence, phrase[:500])
        except store.ReminderLimitReached as e:
            log.event("reminder_refused", user=u.user_id, reason="cap", limit=e.limit)
            await self.svc.reply(update, t(lang, "cap_reached", limit=e.limit))
            return
        log.event("reminder_created", user=u.user_id, reminder=rid, due_at=p.due_at.isoformat(),
                  recurring=bool(p.recurrence))
        sch = self.svc.scheduler_ref()
        if sch is not None and p.due_at <= self.svc.now() + timedelta(seconds=2):
            sch.wake()
        await self.svc.reply(update, t(lang, "saved", id=rid, text=p.text,
                                       when=when(p.due_at, u.tz, p.recurrence, lang)))

    async def explain(self, update: Update, lang: str, user_id: int, e: ParseError) -> None:
        """The reply to a phrase that is not a reminder: why, and examples."""
        key = _PARSE_ERRORS.get(str(e), "unparsed")
        log.event("unparsed", user=user_id, reason=str(e)[:40])
        text = t(lang, key, limit=REMINDER_TEXT) if key == "too_long" else t(lang, key)
        if key != "unparsed":
            text += "\n" + t(lang, "unparsed")
        await self.svc.reply(update, text)

    async def list(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="list", user=updates.user_id(update))
        u = await self.svc.user(update)
        rows, total = await store.list_upcoming(self.svc.pool, u.user_id)
        text, kb = list_view(rows, total, self.svc.lang(update, u))
        await self.svc.reply(update, text, reply_markup=kb)

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="cancel", user=updates.user_id(update))
        u = await self.svc.user(update)
        rid = parse_id((context.args or [""])[0])
        if rid is None:
            await self.svc.say(update, u, "cancel_usage")
            return
        row = await store.cancel(self.svc.pool, u.user_id, rid)
        if row is None:
            await self.svc.say(update, u, "no_reminder", id=rid)
            return
        log.event("reminder_cancelled", user=u.user_id, reminder=row["id"])
        await self.svc.say(update, u, "cancelled", id=row["id"], text=row["text"])

    async def export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="export", user=updates.user_id(update))
        u = await self.svc.user(update)
        data = await store.export(self.svc.pool, u.user_id)
        data["exported_at"] = self.svc.now().isoformat()
        blob = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        caption = t(self.svc.lang(update, u), "export_caption", n=len(data["reminders"]))
        await updates.message(update).reply_document(
            io.BytesIO(blob), filename=f"reminders-{u.user_id}.json", caption=fit(caption, CAPTION),
            do_quote=False)
