"""Per-user settings: /tz, /lang, /quiet, /snooze, one row each in `SETTINGS`.

Every setting has the same shape: without an argument it shows the current value; with one it
parses it (a refusal names the culprit and changes nothing), writes the database first, then the
cache, then confirms from the updated row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from zoneinfo import ZoneInfo

from telegram import Update
from telegram.ext import ContextTypes

from . import logs, store, updates
from .catalogue import LANGS
from .config import valid_timezone
from .quiet import fmt_minutes, parse_window
from .services import Services, UserRow

log = logs.get("bot.settings")

Reply = tuple[str, dict[str, object]]      # a catalogue key and its fields
Changes = dict[str, object]                # the users columns a new value writes


@dataclass(frozen=True)
class Setting:
    command: str
    show: Callable[[UserRow], Reply]                 # /command alone
    parse: Callable[[str], Changes | None]           # None: the argument is not a valid value
    refuse: Callable[[str], Reply]                   # the reply to an invalid argument
    confirm: Callable[[UserRow, datetime], Reply]    # from the updated row and the time now


def _tz(arg: str) -> Changes | None:
    return {"tz": arg} if valid_timezone(arg) else None


def _lang(arg: str) -> Changes | None:
    arg = arg.lower()
    if arg not in LANGS + ("auto",):
        return None
    return {"lang": None if arg == "auto" else arg}


def _quiet(arg: str) -> Changes | None:
    if arg.lower() in ("off", "выкл", "нет"):
        return {"quiet_start": None, "quiet_end": None}
    window = parse_window(arg)
    return None if window is None else {"quiet_start": window[0], "quiet_end": window[1]}


def _quiet_show(u: UserRow) -> Reply:
    if u.quiet_start is None or u.quiet_end is None:
        return "quiet_none", {}
    return "quiet_show", {"start": fmt_minutes(u.quiet_start), "end": fmt_minutes(u.quiet_end), "tz": u.tz}


def _snooze(arg: str) -> Changes | None:
    if not (arg.isascii() and arg.isdigit() and len(arg) <= 4 and 1 <= int(arg) <= 1440):
        return None
    return {"snooze_minutes": int(arg)}


SETTINGS = (
    Setting("tz", show=lambda u: ("tz_show", {"tz": u.tz}), parse=_tz,
            refuse=lambda arg: ("tz_unknown", {"zone": repr(arg[:64])}),
            confirm=lambda u, now: ("tz_set", {"tz": u.tz, "time": f"{now.astimezone(ZoneInfo(u.tz)):%H:%M}"})),
    Setting("lang", show=lambda u: ("lang_show", {}), parse=_lang, refuse=lambda arg: ("lang_usage", {}),
            confirm=lambda u, now: ("lang_auto" if u.lang is None else "lang_set", {})),
    Setting("quiet", show=_quiet_show, parse=_quiet, refuse=lambda arg: ("quiet_usage", {}),
            confirm=lambda u, now: ("quiet_off", {}) if u.quiet_start is None else _quiet_show(u)),
    Setting("snooze", show=lambda u: ("snooze_show", {"minutes": u.snooze_minutes}), parse=_snooze,
            refuse=lambda arg: ("snooze_usage", {}),
            confirm=lambda u, now: ("snooze_set", {"minutes": u.snooze_minutes})),
)


class SettingsHandlers:
    def __init__(self, svc: Services):
        self.svc = svc
        by_name = {s.command: s for s in SETTINGS}
        self.tz, self.lang, self.quiet, self.snooze = (self._handler(by_name[n]) for n in
                                                       ("tz", "lang", "quiet", "snooze"))

    def _handler(self, setting: Setting):
        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await self._handle(setting, update, " ".join(context.args or []).strip())
        handle.__name__ = setting.command
        return handle

    async def _handle(self, s: Setting, update: Update, arg: str) -> None:
        log.event("command", cmd=s.command, user=updates.user_id(update))
        u = await self.svc.user(update)
        if not arg:
            key, fields = s.show(u)
        else:
            changes = s.parse(arg)
            if changes is None:
                key, fields = s.refuse(arg)
            else:
                await store.set_user(self.svc.pool, u.user_id, **changes)
                u = self.svc.remember(u, **changes)
                key, fields = s.confirm(u, self.svc.now())
        await self.svc.say(update, u, key, **fields)
