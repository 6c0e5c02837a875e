"""Telegram's size limits on what the bot sends, and the one place outgoing text is made to fit;
and the bot's own limits on what a user may store.

The Bot API counts message and caption lengths "after entities parsing"; Telegram measures them in
UTF-16 code units (as it does entity offsets), so a text is measured that way here: an emoji
outside the Basic Multilingual Plane counts twice, which is never more than Telegram allows.
"""
from __future__ import annotations

import re

MESSAGE_TEXT = 4096          # sendMessage / editMessageText text
CAPTION = 1024               # sendDocument caption
CALLBACK_ANSWER = 200        # answerCallbackQuery text
CALLBACK_DATA_BYTES = 64     # InlineKeyboardButton.callback_data, in UTF-8 bytes
BUTTON_TEXT = 64             # kept short: clients cut long button labels anyway
COMMAND_DESCRIPTION = 256    # BotCommand.description
REMINDER_TEXT = 1000         # a reminder's own text (ours, not Telegram's)
MAX_INPUT = 1100             # a phrase longer than this cannot hold a 1,000-character text
# Reminders still to come (pending, being sent, paused) one user may keep: a new one beyond it is
# refused, nothing saved. Far above personal use, and it bounds what one user (or a leaked
# account) can pile into the database and the delivery queue. Enforced in bot/store.py.
MAX_REMINDERS_PER_USER = 1000

ELLIPSIS = "…"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int = MESSAGE_TEXT) -> str:
    """`text` cut (with an ellipsis) so that it fits `limit` UTF-16 code units; never empty."""
    if utf16_len(text) <= limit:
        return text if text.strip() else ELLIPSIS
    out, used = [], utf16_len(ELLIPSIS)
    for ch in text:
        n = 2 if ord(ch) > 0xFFFF else 1
        if used + n > limit:
            break
        out.append(ch)
        used += n
    return "".join(out).rstrip() + ELLIPSIS


def clean(text: str) -> str:
    """User text as stored: no NUL or other C0 control characters (PostgreSQL's text refuses NUL,
    and they render as nothing), line breaks and tabs kept."""
    return _CONTROL.sub("", text)
