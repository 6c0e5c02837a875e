"""Callback data as a small typed protocol: each action round-trips, fits Telegram's 64 bytes, has
its own CallbackQueryHandler pattern, and anything else decodes to nothing."""
from __future__ import annotations

import pytest
from telegram.ext import CallbackQueryHandler

from bot import callbacks as cb
from bot.config import load

BIGGEST = 10**18 - 1
ACTIONS = [cb.Done(BIGGEST), cb.Tomorrow9(BIGGEST), cb.Cancel(BIGGEST), cb.Edit(BIGGEST),
           cb.Pause(BIGGEST), cb.Resume(BIGGEST), cb.Snooze(BIGGEST, 1440), cb.Undo(BIGGEST),
           cb.UndoEdit(BIGGEST), cb.Dismiss(BIGGEST), cb.Pick(BIGGEST, 2)]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: type(a).__name__)
def test_an_action_round_trips_within_64_bytes(action):
    data = action.encode()
    assert cb.decode(data) == action and len(data.encode()) <= 64


@pytest.mark.parametrize("data", ["", "d:", "d:x", "d:²", "d:1:2", "x:1", "s:1", "s99999:1",
                                  "d:" + "9" * 19, "c:-1", None])
def test_anything_else_decodes_to_nothing(data):
    assert cb.decode(data) is None


def test_the_old_wire_format_still_decodes():
    assert cb.decode("s10:42") == cb.Snooze(42, 10) and cb.decode("t9:42") == cb.Tomorrow9(42)


def test_every_action_has_its_own_handler(tmp_path):
    from bot.app import build
    env = {"TELEGRAM_BOT_TOKEN": "1:abc", "DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
           "ALLOWED_USER_IDS": "1", "ADMIN_USER_IDS": "", "DEFAULT_TIMEZONE": "UTC",
           "BOT_HEARTBEAT_FILE": str(tmp_path / "hb")}
    app = build(load(env))
    patterns = [h.pattern for h in app.handlers[0] if isinstance(h, CallbackQueryHandler)]
    assert patterns[:-1] == [a.PATTERN for a in cb.ACTIONS] and patterns[-1] is None
