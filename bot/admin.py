"""Admins: /status, and the errors they are told about (rate-limited, redacted)."""
from __future__ import annotations

import shutil
import time
from datetime import timedelta

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from . import __version__, logs, store, updates
from .catalogue import DEFAULT_LANG, language, t
from .db import DB_ERRORS
from .delivery import Failed
from .limits import CALLBACK_ANSWER, fit
from .services import Services
from .views import age, size

log = logs.get("bot.admin")


class AdminHandlers:
    def __init__(self, svc: Services):
        self.svc = svc
        self._errors_sent: dict[str, float] = {}
        self._last_alert = 0.0
        self.app: Application | None = None  # set by build(): alerts go out through the Application's bot

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = updates.user_id(update)
        log.event("command", cmd="status", user=uid)
        u = self.svc.cached(uid)
        lang = self.svc.lang(update, u)
        if not self.svc.cfg.is_admin(uid):
            await self.svc.reply(update, t(lang, "admins_only"))
            return
        st = await store.status(self.svc.pool)
        try:
            du = shutil.disk_usage(self.svc.cfg.disk_path)
            disk = t(lang, "disk_free", free=size(du.free), total=size(du.total))
        except OSError:
            disk = t(lang, "unknown")
        sch = self.svc.scheduler_ref()
        m = self.svc.maintenance
        await self.svc.reply(update, t(
            lang, "status", release=self.svc.cfg.release, version=__version__,
            uptime=age(time.monotonic() - self.svc.started, lang), pending=st["pending"],
            overdue=st["overdue"], db_size=size(st["db_size"]), disk=disk,
            backup=self._backup_line(st, lang),
            maintenance=t(lang, "on" if m is not None and m.enabled else "off"),
            sent=sch.stats["sent"] if sch is not None else 0))

    def _backup_line(self, st: dict, lang: str) -> str:
        b = st["last_backup"]
        if b is None:
            return t(lang, "backup_none")
        now = self.svc.now()
        state = t(lang, "backup_ok" if b["ok"] else "backup_failed")
        if b["uploaded"] not in (None, True):
            state += t(lang, "backup_local")
        line = t(lang, "backup_line", at=f"{b['finished_at']:%Y-%m-%d %H:%M}", size=size(b["size_bytes"] or 0),
                 age=age((now - b["finished_at"]).total_seconds(), lang), state=state)
        if not b["ok"] and st["last_ok_backup_at"]:
            line += t(lang, "backup_last_good", age=age((now - st["last_ok_backup_at"]).total_seconds(), lang))
        # a drill is due every BACKUP_DRILL_INTERVAL_DAYS: none good in twice that is a backup nobody proves
        stale_after = timedelta(days=2 * self.svc.cfg.drill_interval_days)
        drill = st.get("last_ok_drill_at")
        first = st.get("first_backup_at")
        if drill is None and first is not None and now - first > stale_after:
            line += t(lang, "drill_none")
        elif drill is not None and now - drill > stale_after:
            line += t(lang, "drill_stale", age=age((now - drill).total_seconds(), lang))
        return line

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        err = context.error
        if isinstance(err, DB_ERRORS) or type(err).__name__ == "PoolTimeout":
            log.event("database_unavailable", level=40, component="handler",
                      error=(str(err).splitlines() or [""])[0][:200])
            if isinstance(update, Update) and update.effective_chat:
                await self._tell_unavailable(update, context)
            self.notify("database", err)
            return
        log.event("handler_error", level=40, exc_info=err, error=str(err)[:300])
        self.notify(type(err).__name__, err)

    async def _tell_unavailable(self, update: Update, context) -> None:
        u = update.effective_user
        cached = self.svc.cached(u.id) if u else None
        lang = language(u.language_code if u else None, cached.lang if cached else None)
        try:
            if update.callback_query:
                await updates.query(update).answer(fit(t(lang, "unavailable"), CALLBACK_ANSWER))
            else:
                await context.bot.send_message(updates.chat(update).id, t(lang, "unavailable"))
        except TelegramError:
            pass

    def notify(self, kind: str, err: BaseException | None) -> None:
        """Tell the admins, at most once per 5 minutes per kind of error and once a minute overall."""
        self._alert(kind, t(DEFAULT_LANG, "admin_alert", kind=kind,
                            error=f"{type(err).__name__}: {str(err)[:300]}"))

    def delivery_failed(self, o: Failed) -> None:
        self._alert(f"failed#{o.reminder_id}", t(DEFAULT_LANG, "admin_delivery_failed",
                                                 id=o.reminder_id, error=o.error[:300]), every=0)

    def _alert(self, kind: str, text: str, every: float = 300) -> None:
        now = time.monotonic()
        if now - self._errors_sent.get(kind, -1e9) < every or now - self._last_alert < 60 * (every > 0):
            return
        self._errors_sent[kind] = now
        while len(self._errors_sent) > 1000:
            self._errors_sent.pop(next(iter(self._errors_sent)))
        self._last_alert = now
        app = self.app
        if app is None:
            return
        text = fit(logs.redact(text))

        async def send():
            for admin in self.svc.cfg.admin_user_ids:
                try:
                    await app.bot.send_message(admin, text)
                except Exception:
                    pass
        try:
            app.create_task(send(), name="admin-alert")
        except RuntimeError:
            pass
