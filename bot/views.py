"""How reminders, rules, sizes and ages read in a chat (in the user's language)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from . import callbacks as cb
from .catalogue import fmt_delay, t, weekday_name
from .limits import BUTTON_TEXT, MESSAGE_TEXT, fit
from .recurrence import normalize


def plural(lang: str, n: int, key: str) -> str:
    """The unit word for n ("days", "дня"): the catalogue holds the forms, one|other (en) or
    one|few|many (ru)."""
    forms = t(lang, key).split("|")
    if lang == "ru" and len(forms) == 3:
        if n % 10 == 1 and n % 100 != 11:
            return forms[0]
        return forms[1] if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else forms[2]
    return forms[0] if n == 1 else forms[-1]


def day_month(lang: str, month: int, day: int) -> str:
    return f"{day} {t(lang, 'month_names').split()[month - 1]}"


def describe(rule: dict | None, lang: str) -> str:
    """A stored rule in words ("every 2 weeks on Fri at 09:00", "каждый год 8 марта в 09:00")."""
    if not rule:
        return ""
    try:
        r = normalize(rule)
    except ValueError:
        return t(lang, "rule_unknown")
    hm, n, kind = f"{r['hour']:02d}:{r['minute']:02d}", r["interval"], r["kind"]
    if kind == "hourly":
        if n == 1:
            return t(lang, "rule_hourly_1", time=hm)
        return t(lang, "rule_hourly", n=n, unit=plural(lang, n, "unit_hours"), time=hm)
    if kind == "daily":
        if n == 1:
            return t(lang, "rule_daily", time=hm)
        return t(lang, "rule_every_n_days", n=n, unit=plural(lang, n, "unit_days"), time=hm)
    if kind == "weekly":
        days = r["weekdays"]
        names = ", ".join(weekday_name(lang, d) for d in days)
        if n > 1:
            return t(lang, "rule_every_n_weeks", n=n, unit=plural(lang, n, "unit_weeks"),
                     weekdays=names, time=hm)
        if days == [0, 1, 2, 3, 4]:
            return t(lang, "rule_weekdays", time=hm)
        if days == [5, 6]:
            return t(lang, "rule_weekends", time=hm)
        if len(days) == 1:
            return t(lang, "rule_weekly", weekday=names, time=hm)
        return t(lang, "rule_weekly_days", weekdays=names, time=hm)
    if kind == "monthly":
        if n == 1:
            return t(lang, "rule_monthly", day=r["day"], time=hm)
        return t(lang, "rule_every_n_months", n=n, unit=plural(lang, n, "unit_months"), day=r["day"],
                 time=hm)
    date = day_month(lang, r["month"], r["day"])
    if n == 1:
        return t(lang, "rule_yearly", date=date, time=hm)
    return t(lang, "rule_every_n_years", n=n, unit=plural(lang, n, "unit_years"), date=date, time=hm)


def local_time(at: datetime, tz: str, lang: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return f"{weekday_name(lang, local.weekday())} {local:%Y-%m-%d %H:%M}"


def when(due_at: datetime, tz: str, rule: dict | None, lang: str) -> str:
    s = f"{local_time(due_at, tz, lang)} ({tz})"
    return t(lang, "next", rule=describe(rule, lang), when=s) if rule else s


def list_view(rows: list[dict], total: int, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /list message: one line and one row of buttons per reminder (at most 20 of them)."""
    if not rows:
        return t(lang, "list_empty"), None
    lines = [t(lang, "list_header")]
    keyboard = []
    for r in rows:
        mark = " " + t(lang, "paused_mark") if r["status"] == "paused" else ""
        lines.append(f"#{r['id']} {fit(r['text'], 80)} — {when(r['due_at'], r['tz'], r['recurrence'], lang)}"
                     + mark)
        row = [InlineKeyboardButton(t(lang, "btn_cancel", id=r["id"]),
                                    callback_data=cb.Cancel(r["id"]).encode()),
               InlineKeyboardButton(t(lang, "btn_edit", id=r["id"]),
                                    callback_data=cb.Edit(r["id"]).encode())]
        if r["recurrence"]:
            paused = r["status"] == "paused"
            row.append(InlineKeyboardButton(
                t(lang, "btn_resume" if paused else "btn_pause", id=r["id"]),
                callback_data=(cb.Resume if paused else cb.Pause)(r["id"]).encode()))
        keyboard.append(row)
    if total > len(rows):
        lines.append(t(lang, "list_more", n=total - len(rows)))
    lines.append(t(lang, "list_footer"))
    return fit("\n".join(lines), MESSAGE_TEXT), InlineKeyboardMarkup(keyboard)


def size(n: int) -> str:
    f = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if f < 1024 or unit == "TB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return f"{n} B"


def age(seconds: float, lang: str = "en") -> str:
    s = int(seconds)
    if s < 60:
        return t(lang, "delay_s", n=s)
    if s < 3600:
        return fmt_delay(s, lang)
    if s < 86400:
        return f"{t(lang, 'delay_h', n=s // 3600)} {t(lang, 'delay_m', n=s % 3600 // 60)}"
    return f"{t(lang, 'delay_d', n=s // 86400)} {t(lang, 'delay_h', n=s % 86400 // 3600)}"


def relative(due_at: datetime, now: datetime, lang: str) -> str:
    """How far ahead ("in 1 h 30 min", "через 1 ч 30 мин")."""
    secs = max(0, int((due_at - now).total_seconds() + 0.5))
    # to the nearest minute: a reply sent a second after "in 6 hours" still says "in 6 h"
    delay = t(lang, "delay_s", n=secs) if secs < 60 else fmt_delay(round(secs / 60) * 60, lang)
    return t(lang, "due_in", delay=delay)


def confirmation(rid: int, text: str, due_at: datetime, tz: str, rule: dict | None, lang: str,
                 now: datetime, notes: list[str] | None = None,
                 ) -> tuple[str, InlineKeyboardMarkup]:
    """The reply to a saved reminder: the absolute time, the relative one, notes, and ↩ Undo."""
    lines = [t(lang, "saved", id=rid, text=text, when=when(due_at, tz, rule, lang)),
             relative(due_at, now, lang)]
    local = due_at.astimezone(ZoneInfo(tz))
    lines += [t(lang, key, day=local.day, date=day_month(lang, local.month, local.day),
                weekday=weekday_name(lang, local.weekday())) for key in (notes or [])]
    kb = InlineKeyboardMarkup([[InlineKeyboardButton(t(lang, "btn_undo"), callback_data=cb.Undo(rid).encode())]])
    return fit("\n".join(lines), MESSAGE_TEXT), kb


def edit_confirmation(row: dict, now: datetime, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    """The reply to an edit (`row` as store.edit_reminder returns it): the absolute time, the
    relative one, and ↩ Undo, which puts the reminder back as it was (`ue:<edit id>`)."""
    edited = t(lang, "edited", id=row["id"], text=row["text"],
               when=when(row["due_at"], row["tz"], row["recurrence"], lang))
    kb = InlineKeyboardMarkup([[InlineKeyboardButton(t(lang, "btn_undo"),
                                                     callback_data=cb.UndoEdit(row["edit_id"]).encode())]])
    return fit(f"{edited}\n{relative(row['due_at'], now, lang)}", MESSAGE_TEXT), kb


def reading_label(due_at: datetime, rule: dict | None, tz: str, lang: str, now: datetime) -> str:
    """A button for one reading: "Tomorrow 09:00", "Today 21:00", "Fri 04.12 09:00", or the rule."""
    if rule:
        return fit(describe(rule, lang), BUTTON_TEXT)
    zone = ZoneInfo(tz)
    local, today = due_at.astimezone(zone), now.astimezone(zone).date()
    days = (local.date() - today).days
    day = (t(lang, "ask_today") if days == 0 else t(lang, "ask_tomorrow") if days == 1
           else f"{weekday_name(lang, local.weekday())} {local:%d.%m}" if days < 300
           else f"{local:%d.%m.%Y}")
    return fit(f"{day} {local:%H:%M}", BUTTON_TEXT)


def question_view(qid: int, phrase: str, readings: list[tuple[datetime, dict | None]], words: list[str],
                  tz: str, lang: str,
                  now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    """The question: the phrase, the words that made the bot unsure, a button per reading."""
    text = t(lang, "ask", phrase=fit(phrase, 300))
    if words:
        text += "\n" + t(lang, "ask_words", words=fit(", ".join(words), 200))
    rows = [[InlineKeyboardButton(reading_label(due, rule, tz, lang, now), callback_data=cb.Pick(qid, i).encode())]
            for i, (due, rule) in enumerate(readings)]
    rows.append([InlineKeyboardButton(t(lang, "btn_dismiss"), callback_data=cb.Dismiss(qid).encode())])
    return fit(text, MESSAGE_TEXT), InlineKeyboardMarkup(rows)
