"""Chat commands and plain-text reminders: /start, /help, /remind, /list, /cancel, /export."""
from __future__ import annotations

import io
import json
from typing import Protocol

from telegram import Update
from telegram.ext import ContextTypes

from . import logs, store, updates
from .updates import command_argument, parse_id
from .catalogue import t
from .limits import CAPTION, REMINDER_TEXT, clean, fit
from .asking import AskHandlers
from .parsing import Ambiguous, ParseError, looks_like_reminder, parse
from .services import Services, UserRow
from .views import describe, list_view, when

log = logs.get("bot.commands")

_PARSE_ERRORS = {"past": "past", "text too long": "too_long", "out of range": "out_of_range",
                 "too frequent": "too_frequent"}


class EditApplier(Protocol):
    """What creating a reminder needs of the editing handlers: a message while an edit is pending
    edits that reminder instead (bot/editing.py)."""

    async def apply(self, update: Update, u: UserRow, rid: int, text: str) -> None: ...


class ChatHandlers:
    """Creating and looking at reminders."""

    def __init__(self, svc: Services, editing: EditApplier | None = None):
        self.svc = svc
        self.editing = editing
        self.asking = AskHandlers(svc)

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
        except Ambiguous as e:
            await self.asking.ask(update, u, lang, e, phrase)  # never guess: ask with buttons
            return
        except ParseError as e:
            await self.explain(update, lang, u.user_id, e)
            return
        await self.asking.confirm(update, u, lang, p, phrase)

    async def explain(self, update: Update, lang: str, user_id: int, e: ParseError) -> None:
        """The reply to a phrase that is not a reminder: why, and examples."""
        if isinstance(e, Ambiguous):  # /edit: no buttons there, so the readings in words
            log.event("unparsed", user=user_id, reason="ambiguous")
            cached = self.svc.cached(user_id)
            tz = cached.tz if cached else self.svc.cfg.default_timezone
            readings = " / ".join(when(c.due_at, tz, c.recurrence, lang) for c in e.candidates[:3])
            await self.svc.reply(update, t(lang, "ambiguous", readings=readings))
            return
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
        lang = self.svc.lang(update, u)
        for r in data["reminders"]:  # the rule as stored (docs/bot.md) and in the user's words
            r["repeats"] = describe(r["recurrence"], lang) if r.get("recurrence") else None
        blob = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        caption = t(self.svc.lang(update, u), "export_caption", n=len(data["reminders"]))
        await updates.message(update).reply_document(
            io.BytesIO(blob), filename=f"reminders-{u.user_id}.json", caption=fit(caption, CAPTION),
            do_quote=False)
