"""Inline buttons, one handler per action (each registered with its own pattern, see
`bot/callbacks.py`). Every answer fits answerCallbackQuery's 200 characters."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from . import callbacks as cb
from . import logs, store
from .catalogue import t
from .limits import CALLBACK_ANSWER, fit
from .recurrence import local_to_utc
from .catalogue import weekday_name
from .views import list_view

log = logs.get("bot.buttons")


class ButtonHandlers:
    def __init__(self, svc, editing):
        self.svc = svc
        self.editing = editing

    async def _answer(self, update: Update, key: str, **fields) -> None:
        u = self.svc.cached(update.effective_user.id)  # no write: the presser may be someone else
        await update.callback_query.answer(fit(t(self.svc.lang(update, u), key, **fields), CALLBACK_ANSWER))

    async def _edit(self, update: Update, text: str, kb) -> None:
        try:
            await update.callback_query.edit_message_text(fit(text), reply_markup=kb)
        except BadRequest as e:
            if "not modified" not in str(e).lower() and "not found" not in str(e).lower():
                raise

    async def _refresh_list(self, update: Update, user_id: int) -> None:
        rows, total = await store.list_upcoming(self.svc.pool, user_id)
        u = await self.svc.user(update)
        text, kb = list_view(rows, total, self.svc.lang(update, u))
        await self._edit(update, text, kb)

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("button", user=update.effective_user.id, kind="unknown")
        await self._answer(update, "ans_unknown_button")

    # -- the /list buttons --------------------------------------------------------------------------
    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        action = cb.decode(update.callback_query.data)
        uid = update.effective_user.id
        log.event("button", user=uid, kind="cancel")
        row = await store.cancel(self.svc.pool, uid, action.reminder_id)
        await self._answer(update, "ans_cancelled" if row else "ans_already_cancelled", id=action.reminder_id)
        await self._refresh_list(update, uid)

    async def edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        action = cb.decode(update.callback_query.data)
        log.event("button", user=update.effective_user.id, kind="edit")
        u = self.svc.cached(update.effective_user.id)  # no write: the presser may be someone else
        await update.callback_query.answer()
        await self.editing.prompt(update, u, action.reminder_id)

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._pause_or_resume(update, True)

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._pause_or_resume(update, False)

    async def _pause_or_resume(self, update: Update, paused: bool) -> None:
        action = cb.decode(update.callback_query.data)
        log.event("button", user=update.effective_user.id, kind="pause" if paused else "resume")
        u = await self.svc.user(update)
        key, fields = await self.editing.set_paused(u, action.reminder_id, paused, self.svc.lang(update, u))
        answer = {"paused": "ans_paused", "resumed": "ans_resumed"}.get(key, key)
        await self._answer(update, answer, **fields)
        await self._refresh_list(update, u.user_id)

    # -- the delivered reminder's buttons -----------------------------------------------------------
    async def done(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._delivery_action(update, cb.decode(update.callback_query.data))

    snooze = done
    tomorrow = done

    async def _delivery_action(self, update: Update, action) -> None:
        uid = update.effective_user.id
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
            await self._answer(update, "ans_already" if res == "already" else "ans_gone")
            return
        log.event("reminder_action", user=uid, delivery=d["id"], action=name)
        await update.callback_query.answer(fit(label, CALLBACK_ANSWER))
        if new_due is not None and new_due <= self.svc.now() + timedelta(seconds=2):
            sch = self.svc.scheduler_ref()
            if sch is not None:
                sch.wake()
        msg = update.callback_query.message
        base = msg.text if msg is not None and getattr(msg, "text", None) else f"⏰ {d['text']}"
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
