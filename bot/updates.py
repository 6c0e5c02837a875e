"""Typed access to the parts of an update a handler needs.

Telegram's `Update` makes every part optional (a channel post has no sender, an inline query no
chat). The handlers are registered only for private messages and button presses, and the gate
refuses updates without a sender before any handler runs; these accessors turn the "cannot happen"
into one named error instead of an `AttributeError` on `None` somewhere in a handler, and give the
type checker the non-optional types the handlers rely on.
"""
from __future__ import annotations

from telegram import CallbackQuery, Chat, Message, Update, User


class IncompleteUpdate(Exception):
    """An update lacks the sender, chat, message or button press its handler needs."""


def sender(update: Update) -> User:
    if update.effective_user is None:
        raise IncompleteUpdate(f"update {update.update_id} has no sender")
    return update.effective_user


def user_id(update: Update) -> int:
    return sender(update).id


def chat(update: Update) -> Chat:
    if update.effective_chat is None:
        raise IncompleteUpdate(f"update {update.update_id} has no chat")
    return update.effective_chat


def message(update: Update) -> Message:
    if update.effective_message is None:
        raise IncompleteUpdate(f"update {update.update_id} has no message")
    return update.effective_message


def text(update: Update) -> str:
    """The message's text; "" for a message without text (a sticker, a photo)."""
    return message(update).text or ""


def query(update: Update) -> CallbackQuery:
    if update.callback_query is None:
        raise IncompleteUpdate(f"update {update.update_id} is not a button press")
    return update.callback_query


def command_argument(update: Update) -> str:
    """Everything after the command word ("/remind@bot in 5 min x" -> "in 5 min x")."""
    parts = text(update).split(None, 1)
    return parts[1] if len(parts) > 1 else ""


def parse_id(arg: str) -> int | None:
    arg = arg.strip().lstrip("#")
    if not arg.isascii() or not arg.isdigit() or len(arg) > 18:
        return None
    return int(arg)
