"""Chat handlers: commands, plain-text reminders, buttons, the stranger gate and the error handler."""
from __future__ import annotations

import collections
import io
import json
import shutil
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from . import __version__, logs, store
from .config import Config, valid_timezone
from .db import DB_ERRORS
from .parsing import ParseError, looks_like_reminder, parse
from .recurrence import describe, local_to_utc

log = logs.get("bot.handlers")

EXAMPLES_EN = (
    "/remind in 10 minutes tea\n"
    "remind me tomorrow at 9 to call mom\n"
    "at 18:30 gym · on 1 December 18:00 pay rent · next monday 10:00 standup\n"
    "every day at 9 pills · every weekday 8:30 standup · every monday 10:00 review · "
    "every month on the 1st rent")
EXAMPLES_RU = (
    "через 10 минут чай · напомни завтра в 9 позвонить маме · в 18:30 спорт · "
    "1 декабря в 18:00 оплатить · в следующий понедельник в 10 встреча\n"
    "каждый день в 9 таблетки · по будням в 8:30 зарядка · каждый понедельник в 10:00 планёрка · "
    "каждый месяц 1 числа квартплата")

HELP = (
    "I remind you of things, in your time zone.\n\n"
    "Examples (English):\n" + EXAMPLES_EN + "\n\n"
    "Примеры (по-русски):\n" + EXAMPLES_RU + "\n\n"
    "/list — upcoming reminders (with cancel buttons)\n"
    "/cancel N — cancel reminder #N\n"
    "/tz Europe/Berlin — set your time zone\n"
    "/export — your data as a JSON file\n"
    "/help — this message")

T = {
    "unparsed": {
        "en": "I could not find a time in that. Try for example:\n" + EXAMPLES_EN,
        "ru": "Не понял, когда напомнить. Например:\n" + EXAMPLES_RU,
    },
    "past": {"en": "That time has already passed.", "ru": "Это время уже прошло."},
    "unavailable": {
        "en": "⚠️ Temporarily unavailable (database), please try again in a minute.",
        "ru": "⚠️ Временно недоступно (база данных), попробуйте через минуту.",
    },
    "saved": {"en": "✅ Reminder #{id}: {text}\n🗓 {when}", "ru": "✅ Напоминание #{id}: {text}\n🗓 {when}"},
    "refusal": "Sorry, this is a private bot.",
}


def lang_of(update: Update, text: str | None = None) -> str:
    if text and any("а" <= ch.lower() <= "я" or ch.lower() == "ё" for ch in text):
        return "ru"
    u = update.effective_user
    if u and (u.language_code or "").startswith("ru"):
        return "ru"
    return "en"


class Bot:
    """The handlers, bound to configuration, pool and clock."""

    def __init__(self, cfg: Config, pool, now, scheduler_ref=None, started_at: float | None = None):
        self.cfg, self.pool, self.now = cfg, pool, now
        self.scheduler_ref = scheduler_ref or (lambda: None)
        self.started = started_at or time.monotonic()
        self._refused: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._refusals_window: collections.deque = collections.deque()
        self._errors_sent: dict[str, float] = {}
        self._users: collections.OrderedDict[int, dict] = collections.OrderedDict()
        self._last_admin_alert = 0.0

    # -- gate -------------------------------------------------------------------------------------
    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is not None and self.cfg.is_allowed(user.id):
            return
        # A stranger (or an update without a user): refuse once per 10 min per user, at most 20
        # refusals a minute overall; store nothing (not even in the logs: no id, no name).
        log.event("stranger_refused" if user else "update_without_user", level=20)
        if user is not None:
            now = time.monotonic()
            last = self._refused.get(user.id)
            while self._refusals_window and self._refusals_window[0] < now - 60:
                self._refusals_window.popleft()
            if (last is None or now - last > 600) and len(self._refusals_window) < 20:
                self._refused[user.id] = now
                self._refused.move_to_end(user.id)
                while len(self._refused) > 1000:
                    self._refused.popitem(last=False)
                self._refusals_window.append(now)
                try:
                    if update.callback_query:
                        await update.callback_query.answer(T["refusal"])
                    elif update.effective_chat:
                        await context.bot.send_message(update.effective_chat.id, T["refusal"])
                except TelegramError:
                    pass
            elif update.callback_query:
                try:
                    await update.callback_query.answer()
                except TelegramError:
                    pass
        raise ApplicationHandlerStop

    # -- helpers ----------------------------------------------------------------------------------
    async def _user(self, update: Update) -> dict:
        """The user's row, created on first contact. A small read-through cache of (chat, tz) saves
        a round trip per message; the database stays the truth (/tz writes it first)."""
        uid, chat = update.effective_user.id, update.effective_chat.id
        hit = self._users.get(uid)
        if hit is not None and hit["chat_id"] == chat:
            self._users.move_to_end(uid)
            return dict(hit)
        row = await store.ensure_user(self.pool, uid, chat)
        row["tz"] = row["tz"] or self.cfg.default_timezone
        self._users[uid] = dict(row)
        while len(self._users) > 10_000:
            self._users.popitem(last=False)
        return row

    async def reply(self, update: Update, text: str, **kw):
        return await update.effective_message.reply_text(text, do_quote=False, **kw)

    def _fmt_when(self, due_at: datetime, tz: str, rule: dict | None, lang: str) -> str:
        local = due_at.astimezone(ZoneInfo(tz))
        s = f"{local:%a %Y-%m-%d %H:%M} ({tz})"
        if rule:
            s = describe(rule, lang) + " — " + ("следующее: " if lang == "ru" else "next: ") + s
        return s

    # -- commands ---------------------------------------------------------------------------------
    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="start", user=update.effective_user.id)
        u = await self._user(update)
        await self.reply(update, f"Hi! {HELP}\n\nYour time zone: {u['tz']}")

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="help", user=update.effective_user.id)
        await self.reply(update, HELP)

    async def tz(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="tz", user=update.effective_user.id)
        u = await self._user(update)
        if not context.args:
            await self.reply(update, f"Your time zone: {u['tz']}. Change it with /tz Europe/Berlin")
            return
        zone = context.args[0].strip()
        if not valid_timezone(zone):
            await self.reply(update, f"Unknown time zone {zone[:64]!r}. Use an IANA name such as "
                                     "Europe/Berlin, America/New_York, Asia/Tokyo.")
            return
        await store.set_tz(self.pool, u["user_id"], zone)
        self._users.pop(u["user_id"], None)
        local = self.now().astimezone(ZoneInfo(zone))
        await self.reply(update, f"✅ Time zone set to {zone} (local time now {local:%H:%M}).")

    async def remind(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="remind", user=update.effective_user.id)
        text = update.effective_message.text or ""
        phrase = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
        await self._create(update, phrase)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("message", user=update.effective_user.id, prefixed=looks_like_reminder(
            update.effective_message.text))
        await self._create(update, update.effective_message.text or "")

    async def _create(self, update: Update, phrase: str) -> None:
        lang = lang_of(update, phrase)
        u = await self._user(update)
        try:
            p = parse(phrase, self.now(), u["tz"])
        except ParseError as e:
            key = "past" if str(e) == "past" else "unparsed"
            log.event("unparsed", user=u["user_id"], reason=str(e))
            await self.reply(update, T[key][lang] + ("" if key == "unparsed" else "\n" + T["unparsed"][lang]))
            return
        rid = await store.add_reminder(self.pool, u["user_id"], update.effective_chat.id, p.text,
                                       u["tz"], p.due_at, p.recurrence, phrase[:500])
        log.event("reminder_created", user=u["user_id"], reminder=rid, due_at=p.due_at.isoformat(),
                  recurring=bool(p.recurrence))
        sch = self.scheduler_ref()
        if sch is not None and p.due_at <= self.now() + timedelta(seconds=2):
            sch.wake()
        await self.reply(update, T["saved"][lang].format(
            id=rid, text=p.text, when=self._fmt_when(p.due_at, u["tz"], p.recurrence, lang)))

    def _list_view(self, rows: list[dict], total: int, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
        if not rows:
            return ("Нет предстоящих напоминаний." if lang == "ru" else "No upcoming reminders."), None
        lines = ["Upcoming reminders:" if lang == "en" else "Предстоящие напоминания:"]
        buttons = []
        for r in rows:
            lines.append(f"#{r['id']} {r['text'][:80]} — {self._fmt_when(r['due_at'], r['tz'], r['recurrence'], lang)}")
            buttons.append(InlineKeyboardButton(f"✖ #{r['id']}", callback_data=f"c:{r['id']}"))
        if total > len(rows):
            lines.append(f"… and {total - len(rows)} more")
        lines.append("Cancel with the buttons or /cancel N")
        kb = InlineKeyboardMarkup([buttons[i:i + 4] for i in range(0, len(buttons), 4)])
        return "\n".join(lines), kb

    async def list(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="list", user=update.effective_user.id)
        u = await self._user(update)
        rows, total = await store.list_upcoming(self.pool, u["user_id"])
        text, kb = self._list_view(rows, total, lang_of(update))
        await self.reply(update, text, reply_markup=kb)

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="cancel", user=update.effective_user.id)
        u = await self._user(update)
        arg = (context.args or [""])[0].lstrip("#")
        if not arg.isdigit():
            await self.reply(update, "Usage: /cancel N (the number shown by /list)")
            return
        row = await store.cancel(self.pool, u["user_id"], int(arg))
        if row is None:
            await self.reply(update, f"No upcoming reminder #{arg}.")
        else:
            log.event("reminder_cancelled", user=u["user_id"], reminder=row["id"])
            await self.reply(update, f"✖ Cancelled #{row['id']}: {row['text']}")

    async def export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.event("command", cmd="export", user=update.effective_user.id)
        u = await self._user(update)
        data = await store.export(self.pool, u["user_id"])
        data["exported_at"] = self.now().isoformat()
        blob = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        await update.effective_message.reply_document(
            io.BytesIO(blob), filename=f"reminders-{u['user_id']}.json",
            caption=f"Your data: {len(data['reminders'])} reminders", do_quote=False)

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = update.effective_user.id
        log.event("command", cmd="status", user=uid)
        if not self.cfg.is_admin(uid):
            await self.reply(update, "/status is for admins.")
            return
        st = await store.status(self.pool)
        up = int(time.monotonic() - self.started)
        try:
            du = shutil.disk_usage(self.cfg.disk_path)
            disk = f"{_size(du.free)} free of {_size(du.total)}"
        except OSError:
            disk = "unknown"
        now = self.now()
        b = st["last_backup"]
        if b is None:
            backup = "none recorded"
        else:
            age = now - b["finished_at"]
            state = "ok" if b["ok"] else "FAILED"
            where = "" if b["uploaded"] in (None, True) else ", local only"
            backup = (f"{b['finished_at']:%Y-%m-%d %H:%M} UTC, {_size(b['size_bytes'] or 0)}, "
                      f"{_age(age.total_seconds())} ago, {state}{where}")
            if not b["ok"] and st["last_ok_backup_at"]:
                backup += f" (last good {_age((now - st['last_ok_backup_at']).total_seconds())} ago)"
        sch = self.scheduler_ref()
        lines = [
            f"Version: {self.cfg.release} (bot {__version__})",
            f"Uptime: {_age(up)}",
            f"Pending reminders: {st['pending']} ({st['overdue']} overdue)",
            f"Database size: {_size(st['db_size'])}",
            f"Disk: {disk}",
            f"Last backup: {backup}",
        ]
        if sch is not None:
            lines.append(f"Sent since start: {sch.stats['sent']}")
        await self.reply(update, "\n".join(lines))

    # -- buttons ----------------------------------------------------------------------------------
    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        uid = q.from_user.id
        data = q.data or ""
        kind, _, arg = data.partition(":")
        log.event("button", user=uid, kind=kind)
        if not arg.isdigit():
            await q.answer("Unknown button")
            return
        if kind == "c":
            row = await store.cancel(self.pool, uid, int(arg))
            await q.answer(f"Cancelled #{arg}" if row else "Already cancelled or done")
            rows, total = await store.list_upcoming(self.pool, uid)
            text, kb = self._list_view(rows, total, lang_of(update))
            await self._edit(q, text, kb)
            return
        if kind not in ("d", "s10", "s60", "t9"):
            await q.answer("Unknown button")
            return
        d = await store.delivery_for_action(self.pool, int(arg))
        if d is None or d["user_id"] != uid:
            # not this user's reminder: change nothing, reveal nothing
            log.event("button_refused", user=uid, kind=kind)
            await q.answer("This button is not yours.")
            return
        now = self.now()
        tz = ZoneInfo(d["tz"])
        if kind == "d":
            new_due, label, action = None, "✅ Done", "done"
        elif kind in ("s10", "s60"):
            mins = 10 if kind == "s10" else 60
            new_due = now + timedelta(minutes=mins)
            label = f"💤 Snoozed until {new_due.astimezone(tz):%H:%M}"
            action = f"snooze{mins}"
        else:
            tomorrow = now.astimezone(tz).date() + timedelta(days=1)
            new_due = local_to_utc(tomorrow, 9, 0, tz)
            label = f"🌅 Moved to {new_due.astimezone(tz):%a %d %b} 09:00"
            action = "tomorrow9"
        res = await store.apply_action(self.pool, d["id"], uid, action, new_due)
        if res == "already":
            await q.answer("Already handled ✔")
            return
        if res != "ok":
            await q.answer("This reminder no longer exists.")
            return
        log.event("reminder_action", user=uid, delivery=d["id"], action=action)
        await q.answer(label)
        base = (q.message.text if q.message and getattr(q.message, "text", None) else f"⏰ {d['text']}")
        await self._edit(q, f"{base}\n\n{label}", None)

    async def _edit(self, q, text: str, kb) -> None:
        try:
            await q.edit_message_text(text, reply_markup=kb)
        except BadRequest as e:
            if "not modified" not in str(e).lower() and "not found" not in str(e).lower():
                raise

    # -- errors -----------------------------------------------------------------------------------
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        err = context.error
        if isinstance(err, DB_ERRORS) or type(err).__name__ == "PoolTimeout":
            log.event("database_unavailable", level=40, component="handler",
                      error=(str(err).splitlines() or [""])[0][:200])
            if isinstance(update, Update) and update.effective_chat:
                try:
                    if update.callback_query:
                        await update.callback_query.answer(T["unavailable"]["en"][:190])
                    else:
                        await context.bot.send_message(update.effective_chat.id,
                                                       T["unavailable"][lang_of(update)])
                except TelegramError:
                    pass
            self.notify_admins(context, "database", err)
            return
        log.event("handler_error", level=40, exc_info=err, error=str(err)[:300])
        self.notify_admins(context, type(err).__name__, err)

    def notify_admins(self, context_or_app, key: str, err: BaseException) -> None:
        """Tell the admins, at most once per 5 minutes per kind of error and once a minute overall."""
        now = time.monotonic()
        if now - self._errors_sent.get(key, -1e9) < 300 or now - self._last_admin_alert < 60:
            return
        self._errors_sent[key] = now
        self._last_admin_alert = now
        app = getattr(context_or_app, "application", context_or_app)
        text = f"⚠️ bot error ({key}): {type(err).__name__}: {str(err)[:300]}"
        text = logs.redact(text)

        async def send():
            for admin in self.cfg.admin_user_ids:
                try:
                    await app.bot.send_message(admin, text)
                except Exception:
                    pass
        try:
            app.create_task(send(), name="admin-alert")
        except RuntimeError:
            pass


def _size(n: int) -> str:
    f = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if f < 1024 or unit == "TB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return f"{n} B"


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
