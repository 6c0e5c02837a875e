"""The gate in front of every handler (group -1): strangers and maintenance mode.

Fail closed: an update from anyone not allowed ends here, whatever happens while refusing (a
malformed or failed Bot API answer, a hang, a bug): `ApplicationHandlerStop` is raised on every
path, so PTB never runs the group-0 handlers for it. Nothing about a stranger is stored or logged.
"""
from __future__ import annotations

import asyncio
import collections
import time

from telegram import Update, User
from telegram.ext import ApplicationHandlerStop, ContextTypes

from . import logs
from .catalogue import language, t
from .limits import CALLBACK_ANSWER, fit
from .services import Services

log = logs.get("bot.gate")
REFUSAL_DEADLINE = 5.0          # seconds a refusal may take before it is abandoned
REFUSE_SAME_USER_EVERY = 600.0  # one refusal per stranger per 10 minutes
REFUSALS_PER_MINUTE = 20        # and at most 20 refusals a minute overall


class Gate:
    def __init__(self, svc: Services):
        self.svc = svc
        self._refused: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._window: collections.deque = collections.deque()

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            user = update.effective_user
            allowed = user is not None and self.svc.cfg.is_allowed(user.id)
        except Exception:
            user, allowed = None, False
        if allowed:
            m = self.svc.maintenance
            if m is None or not m.enabled:
                return
            if user is not None:  # always so when allowed
                await self._bounded(self._maintenance(update, context, user, m.message), "maintenance_reply_failed")
            raise ApplicationHandlerStop
        log.event("stranger_refused" if user else "update_without_user", level=20)
        await self._bounded(self._refuse(update, context, user), "refusal_failed")
        raise ApplicationHandlerStop

    @staticmethod
    async def _bounded(coro, event: str) -> None:
        try:
            await asyncio.wait_for(coro, timeout=REFUSAL_DEADLINE)
        except Exception as e:  # a failed answer changes nothing: the update stops here
            log.event(event, level=30, error=type(e).__name__)

    def _may_refuse(self, user_id: int) -> bool:
        now = time.monotonic()
        while self._window and self._window[0] < now - 60:
            self._window.popleft()
        last = self._refused.get(user_id)
        if (last is not None and now - last <= REFUSE_SAME_USER_EVERY) or len(self._window) >= REFUSALS_PER_MINUTE:
            return False
        self._refused[user_id] = now
        self._refused.move_to_end(user_id)
        while len(self._refused) > 1000:
            self._refused.popitem(last=False)
        self._window.append(now)
        return True

    async def _refuse(self, update: Update, context, user) -> None:
        q = update.callback_query
        if user is None:
            return
        if not self._may_refuse(user.id):
            if q:
                await q.answer()
            return
        text = t(language(user.language_code), "refusal")
        if q:
            await q.answer(fit(text, CALLBACK_ANSWER))
        elif update.effective_chat:
            await context.bot.send_message(update.effective_chat.id, text)

    async def _maintenance(self, update: Update, context, user: User, custom: str | None) -> None:
        lang = language(user.language_code)
        cached = self.svc.cached(user.id)
        if cached is not None:
            lang = language(user.language_code, cached.lang)
        text = custom or t(lang, "maintenance")
        if update.callback_query:
            await update.callback_query.answer(fit(text, CALLBACK_ANSWER))
        elif update.effective_chat:
            await context.bot.send_message(update.effective_chat.id, fit(text))
