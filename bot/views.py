"""How reminders, rules, sizes and ages read in a chat (in the user's language)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from . import callbacks as cb
from .catalogue import fmt_delay, t, weekday_name
from .limits import MESSAGE_TEXT, fit


def describe(rule: dict | None, lang: str) -> str:
    if not rule:
        return ""
    hm = f"{rule['hour']:02d}:{rule['minute']:02d}"
    kind = rule["kind"]
    if kind == "weekly":
        return t(lang, "rule_weekly", weekday=weekday_name(lang, rule["weekday"]), time=hm)
    if kind == "monthly":
        return t(lang, "rule_monthly", day=rule["day"], time=hm)
    return t(lang, "rule_" + kind, time=hm)


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
