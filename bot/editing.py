"""Changing reminders: /edit N (time and/or text), /pause N, /resume N, the ✏️ button's
follow-up message, and ↩ Undo on an edit's confirmation."""
from __future__ import annotations

from typing import Protocol
from zoneinfo import ZoneInfo

from telegram import ForceReply, Update
from telegram.ext import ContextTypes

from . import callbacks as cb
from . import logs, store, updates
from .updates import command_argument, parse_id
from .catalogue import t
from .limits import REMINDER_TEXT, clean
from .parsing import ParseError, parse
from .presses import PressHandlers
from .recurrence import next_occurrence
from .services import Services, UserRow
from .views import edit_confirmation, when

log = logs.get("bot.editing")


class Explainer(Protocol):
    """Why a phrase is not a reminder, with examples (ChatHandlers in bot/commands.py)."""

    async def explain(self, update: Update, lang: str, user_id: int, e: ParseError) -> None: ...


# what a refused ↩ Undo of an edit answers (store.undo_edit's outcomes)
_UNDO_REFUSED = {"missing": "ans_edit_nothing", "already": "ans_edit_already_undone", "gone": "ans_edit_gone",
                 "newer": "ans_edit_newer", "changed": "ans_edit_changed", "past": "ans_edit_past"}


class EditHandlers(PressHandlers):
    def __init__(self, svc: Services, chat: Explainer):
        super().__init__(svc)
        self.chat = chat  # ChatHandlers, for explaining a phrase it cannot read

    async def edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="edit", user=updates.user_id(update))
        u = await self.svc.user(update)
        arg = command_argument(update)
        head, _, rest = arg.partition(" ")
        rid = parse_id(head)
        if rid is None:
            await self.svc.say(update, u, "edit_usage")
            return
        if not rest.strip():
            await self.prompt(update, u, rid)
            return
        await self.apply(update, u, rid, rest)

    async def prompt(self, update: Update, u: UserRow, rid: int) -> None:
        """Ask for the new time/text; the user's next plain message edits #rid."""
        if await store.reminder(self.svc.pool, u.user_id, rid) is None:
            await self.svc.say(update, u, "no_reminder", id=rid)
            return
        await store.set_user(self.svc.pool, u.user_id, editing_id=rid)
        self.svc.remember(u, editing_id=rid)
        await updates.chat(update).send_message(
            t(self.svc.lang(update, u), "edit_prompt", id=rid),
            reply_markup=ForceReply(selective=True))

    async def apply(self, update: Update, u: UserRow, rid: int, phrase: str) -> None:
        """A phrase with a time changes the time (and the text if it has one); without, the text."""
        if u.editing_id is not None:
            await store.set_user(self.svc.pool, u.user_id, editing_id=None)
            self.svc.remember(u, editing_id=None)
        lang = self.svc.lang(update, u)
        phrase = clean(phrase).strip()
        current = await store.reminder(self.svc.pool, u.user_id, rid)
        if current is None:
            await self.svc.say(update, u, "no_reminder", id=rid)
            return
        try:
            p = parse(phrase, self.svc.now(), u.tz)
            due, rule = self._keep_rule(current["recurrence"], p.due_at, p.recurrence, u.tz)
            text = None if p.text == "⏰" else p.text
            row = await store.edit_reminder(self.svc.pool, u.user_id, rid, text, due, rule, u.tz)
        except ParseError as e:
            if str(e) not in ("no time found", "empty") or not phrase:
                await self.chat.explain(update, lang, u.user_id, e)
                return
            if len(phrase) > REMINDER_TEXT:
                await self.chat.explain(update, lang, u.user_id, ParseError("text too long"))
                return
            row = await store.edit_reminder(self.svc.pool, u.user_id, rid, phrase, None, None, None)
        if row is None:
            await self.svc.say(update, u, "no_reminder", id=rid)
            return
        log.event("reminder_edited", user=u.user_id, reminder=rid, edit=row["edit_id"])
        self.svc.wake_if_due(row["due_at"])
        # the absolute time and the relative one, and ↩ Undo, as for a new reminder
        text, kb = edit_confirmation(row, self.svc.now(), lang)
        await self.svc.reply(update, text, reply_markup=kb)

    async def undo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """↩ on an edit's confirmation: the reminder as it was before, unless it changed since."""
        uid = updates.user_id(update)
        log.event("button", user=uid, kind="undo_edit")
        action = await self._decode(update, cb.UndoEdit)
        if action is None:
            return
        outcome, row = await store.undo_edit(self.svc.pool, uid, action.edit_id, self.svc.now())
        if outcome != "ok" or row is None:
            log.event("edit_undo_refused", user=uid, edit=action.edit_id, reason=outcome)
            rid = row["reminder_id"] if row else None
            await self._answer(update, _UNDO_REFUSED.get(outcome, "ans_edit_nothing"), id=rid)
            return
        log.event("edit_undone", user=uid, reminder=row["id"], edit=action.edit_id)
        self.svc.wake_if_due(row["due_at"])
        await self._answer(update, "ans_edit_undone", id=row["id"])
        lang = self.svc.lang(update, self.svc.cached(uid))
        await self._edit(update, t(lang, "label_edit_undone", id=row["id"], text=row["text"],
                                   when=when(row["due_at"], row["tz"], row["recurrence"], lang)))

    def _keep_rule(self, old_rule: dict | None, due, new_rule: dict | None, tz: str):
        """A recurring reminder given a plain time keeps its rule at the new time of day ("/edit 5
        at 10": every day at 10); a new rule ("every monday …") replaces it."""
        if not old_rule or new_rule:
            return due, new_rule
        local = due.astimezone(ZoneInfo(tz))
        rule = dict(old_rule, hour=local.hour, minute=local.minute)
        return next_occurrence(rule, tz, self.svc.now()), rule

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._pause_command(update, context, True)

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._pause_command(update, context, False)

    async def _pause_command(self, update: Update, context, paused: bool) -> None:
        log.event("command", cmd="pause" if paused else "resume", user=updates.user_id(update))
        u = await self.svc.user(update)
        rid = parse_id((context.args or [""])[0])
        if rid is None:
            await self.svc.say(update, u, "pause_usage")
            return
        key, fields = await self.set_paused(u, rid, paused, self.svc.lang(update, u))
        await self.svc.say(update, u, key, **fields)

    async def set_paused(self, u: UserRow, rid: int, paused: bool, lang: str = "en") -> tuple[str, dict]:
        """Pause or resume #rid; the catalogue key (and fields) that says what happened."""
        current = await store.reminder(self.svc.pool, u.user_id, rid)
        if current is None:
            return "no_reminder", {"id": rid}
        if not current["recurrence"]:
            return "only_recurring", {"id": rid}
        if paused:
            row = await store.pause(self.svc.pool, u.user_id, rid)
            if row is None and current["status"] == "paused":
                row = current
            log.event("reminder_paused", user=u.user_id, reminder=rid)
            return ("paused", {"id": rid, "text": current["text"]}) if row else ("no_reminder", {"id": rid})
        due = next_occurrence(current["recurrence"], current["tz"], self.svc.now())
        row = await store.resume(self.svc.pool, u.user_id, rid, due)
        if row is None:
            return "not_paused", {"id": rid}
        log.event("reminder_resumed", user=u.user_id, reminder=rid)
        return "resumed", {"id": rid, "text": row["text"],
                           "when": when(row["due_at"], row["tz"], row["recurrence"], lang)}
