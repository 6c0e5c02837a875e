"""Inline buttons, one handler per action (each registered with its own pattern, see
`bot/callbacks.py`). Every answer fits answerCallbackQuery's 200 characters."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from telegram import Message, Update
from telegram.ext import ContextTypes

from . import callbacks as cb, updates
from . import logs, store
from .catalogue import t
from .editing import EditHandlers
from .limits import CALLBACK_ANSWER, MAX_REMINDERS_PER_USER, fit
from .presses import PressHandlers
from .recurrence import local_to_utc
from .services import Services
from .catalogue import weekday_name
from .views import list_view

log = logs.get("bot.buttons")


class ButtonHandlers(PressHandlers):
    def __init__(self, svc: Services, editing: EditHandlers):
        super().__init__(svc)
        self.editing = editing

    async def _refresh_list(self, update: Update, user_id: int) -> None:
        rows, total = await store.list_upcoming(self.svc.pool, user_id)
        u = await self.svc.user(update)
        text, kb = list_view(rows, total, self.svc.lang(update, u))
        await self._edit(update, text, kb)

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("button", user=updates.user_id(update), kind="unknown")
        await self._answer(update, "ans_unknown_button")

    # -- the /list buttons --------------------------------------------------------------------------
    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        action = await self._decode(update, cb.Cancel)
        if action is None:
            return
        uid = updates.user_id(update)
        log.event("button", user=uid, kind="cancel")
        row = await store.cancel(self.svc.pool, uid, action.reminder_id)
        await self._answer(update, "ans_cancelled" if row else "ans_already_cancelled", id=action.reminder_id)
        await self._refresh_list(update, uid)

    async def edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        action = await self._decode(update, cb.Edit)
        if action is None:
            return
        log.event("button", user=updates.user_id(update), kind="edit")
        # the presser's own row (the gate admitted them; after a restart nothing is cached yet):
        # prompt() looks the reminder up under the presser's id, so another user's is not found
        u = await self.svc.user(update)
        await updates.query(update).answer()
        await self.editing.prompt(update, u, action.reminder_id)

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._pause_or_resume(update, True)

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._pause_or_resume(update, False)

    async def _pause_or_resume(self, update: Update, paused: bool) -> None:
        action: cb.Pause | cb.Resume | None
        if paused:
            action = await self._decode(update, cb.Pause)
        else:
            action = await self._decode(update, cb.Resume)
        if action is None:
            return
        log.event("button", user=updates.user_id(update), kind="pause" if paused else "resume")
        u = await self.svc.user(update)
        key, fields = await self.editing.set_paused(u, action.reminder_id, paused, self.svc.lang(update, u))
        answer = {"paused": "ans_paused", "resumed": "ans_resumed"}.get(key, key)
        await self._answer(update, answer, **fields)
        await self._refresh_list(update, u.user_id)

    # -- the delivered reminder's buttons -----------------------------------------------------------
    async def done(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        action = await self._decode(update, cb.Done)
        if action is not None:
            await self._delivery_action(update, action)

    async def snooze(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        action = await self._decode(update, cb.Snooze)
        if action is not None:
            await self._delivery_action(update, action)

    async def tomorrow(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        action = await self._decode(update, cb.Tomorrow9)
        if action is not None:
            await self._delivery_action(update, action)

    async def _delivery_action(self, update: Update, action: cb.Done | cb.Snooze | cb.Tomorrow9) -> None:
        uid = updates.user_id(update)
        kind = type(action).__name__.lower()
        log.event("button", user=uid, kind=kind)
        d = await store.delivery_for_action(self.svc.pool, action.delivery_id)
        if d is None or d["user_id"] != uid:
            # not this user's reminder: change nothing, reveal nothing
            log.event("button_refused", user=uid, kind=kind)
            await self._answer(update, "ans_not_yours")
            return
        u = await self.svc.user(update)
        lang = self.svc.lang(update, u)
        new_due, label, name = self._plan(action, d["tz"], lang)
        res = await store.apply_action(self.svc.pool, d["id"], uid, name, new_due)
        if res != "ok":
            if res == "full":
                await self._answer(update, "cap_reached", limit=MAX_REMINDERS_PER_USER)
            else:
                await self._answer(update, "ans_already" if res == "already" else "ans_gone")
            return
        log.event("reminder_action", user=uid, delivery=d["id"], action=name)
        await updates.query(update).answer(fit(label, CALLBACK_ANSWER))
        if new_due is not None:
            self.svc.wake_if_due(new_due)
        msg = updates.query(update).message
        base = msg.text if isinstance(msg, Message) and msg.text else f"⏰ {d['text']}"
        await self._edit(update, f"{base}\n\n{label}", None)

    def _plan(self, action, tz_name: str, lang: str):
        """(new due time or None, the label shown, the action's name as recorded)."""
        now, tz = self.svc.now(), ZoneInfo(tz_name)
        if isinstance(action, cb.Done):
            return None, t(lang, "label_done"), "done"
        if isinstance(action, cb.Snooze):
            minutes = max(1, min(action.minutes, 1440))
            due = now + timedelta(minutes=minutes)
            return due, t(lang, "label_snoozed", time=f"{due.astimezone(tz):%H:%M}"), f"snooze{minutes}"
        tomorrow = now.astimezone(tz).date() + timedelta(days=1)
        due = local_to_utc(tomorrow, 9, 0, tz)
        day = f"{weekday_name(lang, tomorrow.weekday())} {tomorrow:%d.%m}"
        return due, t(lang, "label_moved", day=day), "tomorrow9"
