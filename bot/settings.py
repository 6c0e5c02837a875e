"""Per-user settings: /tz, /lang, /quiet, /snooze. Each is written to the database first."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from telegram import Update
from telegram.ext import ContextTypes

from . import logs, store
from .catalogue import LANGS
from .config import valid_timezone
from .quiet import fmt_minutes, parse_window

log = logs.get("bot.settings")


def _arg(context) -> str:
    return " ".join(context.args or []).strip()


class SettingsHandlers:
    def __init__(self, svc):
        self.svc = svc

    async def tz(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="tz", user=update.effective_user.id)
        u = await self.svc.user(update)
        zone = _arg(context)
        if not zone:
            await self.svc.say(update, u, "tz_show", tz=u.tz)
            return
        if not valid_timezone(zone):
            await self.svc.say(update, u, "tz_unknown", zone=repr(zone[:64]))
            return
        await store.set_user(self.svc.pool, u.user_id, tz=zone)
        self.svc.forget(u.user_id)
        local = self.svc.now().astimezone(ZoneInfo(zone))
        await self.svc.say(update, u, "tz_set", tz=zone, time=f"{local:%H:%M}")

    async def lang(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="lang", user=update.effective_user.id)
        u = await self.svc.user(update)
        arg = _arg(context).lower()
        if not arg:
            await self.svc.say(update, u, "lang_show")
            return
        if arg not in LANGS + ("auto",):
            await self.svc.say(update, u, "lang_usage")
            return
        choice = None if arg == "auto" else arg
        await store.set_user(self.svc.pool, u.user_id, lang=choice)
        self.svc.remember(u, lang=choice)
        u = self.svc.cached(u.user_id)
        await self.svc.say(update, u, "lang_auto" if choice is None else "lang_set")

    async def quiet(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="quiet", user=update.effective_user.id)
        u = await self.svc.user(update)
        arg = _arg(context)
        if not arg:
            if u.quiet_start is None:
                await self.svc.say(update, u, "quiet_none")
            else:
                await self.svc.say(update, u, "quiet_show", start=fmt_minutes(u.quiet_start),
                                   end=fmt_minutes(u.quiet_end), tz=u.tz)
            return
        if arg.lower() in ("off", "выкл", "нет"):
            window = (None, None)
        else:
            window = parse_window(arg)
            if window is None:
                await self.svc.say(update, u, "quiet_usage")
                return
        await store.set_user(self.svc.pool, u.user_id, quiet_start=window[0], quiet_end=window[1])
        self.svc.remember(u, quiet_start=window[0], quiet_end=window[1])
        if window[0] is None:
            await self.svc.say(update, u, "quiet_off")
        else:
            await self.svc.say(update, u, "quiet_show", start=fmt_minutes(window[0]),
                               end=fmt_minutes(window[1]), tz=u.tz)

    async def snooze(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="snooze", user=update.effective_user.id)
        u = await self.svc.user(update)
        arg = _arg(context)
        if not arg:
            await self.svc.say(update, u, "snooze_show", minutes=u.snooze_minutes)
            return
        if not (arg.isascii() and arg.isdigit() and len(arg) <= 4 and 1 <= int(arg) <= 1440):
            await self.svc.say(update, u, "snooze_usage")
            return
        await store.set_user(self.svc.pool, u.user_id, snooze_minutes=int(arg))
        self.svc.remember(u, snooze_minutes=int(arg))
        await self.svc.say(update, u, "snooze_set", minutes=int(arg))
