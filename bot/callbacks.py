"""Callback data of the inline buttons: a small typed protocol.

Each action is a frozen dataclass with a prefix and integer fields, encoded as
``prefix:field[:field]`` (ASCII, far below Telegram's 64-byte limit) and matched by its own
`CallbackQueryHandler(pattern=...)`. The wire format of the delivery buttons (``d:``, ``s10:``,
``s60:``, ``t9:``) and the list's cancel (``c:``) is the one earlier releases sent, so buttons on
old messages keep working.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .limits import CALLBACK_DATA_BYTES

_ID = r"([0-9]{1,18})"


class _Action:
    """One field, encoded ``PREFIX:id``; subclasses name the field and the prefix."""
    PREFIX: ClassVar[str]
    PATTERN: ClassVar[re.Pattern]

    def __init_subclass__(cls, prefix: str = "", **kw):
        super().__init_subclass__(**kw)
        if prefix:
            cls.PREFIX, cls.PATTERN = prefix, re.compile(rf"^{prefix}:{_ID}$")

    def encode(self) -> str:
        field = next(iter(self.__dataclass_fields__))  # the subclass's one field
        return f"{self.PREFIX}:{getattr(self, field)}"


@dataclass(frozen=True)
class Done(_Action, prefix="d"):
    delivery_id: int


@dataclass(frozen=True)
class Tomorrow9(_Action, prefix="t9"):
    delivery_id: int


@dataclass(frozen=True)
class Cancel(_Action, prefix="c"):
    reminder_id: int


@dataclass(frozen=True)
class Edit(_Action, prefix="e"):
    reminder_id: int


@dataclass(frozen=True)
class Pause(_Action, prefix="p"):
    reminder_id: int


@dataclass(frozen=True)
class Resume(_Action, prefix="r"):
    reminder_id: int


@dataclass(frozen=True)
class Snooze:
    """``s<minutes>:<delivery id>``: snooze by the user's default or an hour."""
    delivery_id: int
    minutes: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^s([0-9]{{1,4}}):{_ID}$")

    def encode(self) -> str:
        return f"s{self.minutes}:{self.delivery_id}"


@dataclass(frozen=True)
class Undo(_Action, prefix="u"):
    """↩ on a confirmation: remove the reminder just saved."""
    reminder_id: int


@dataclass(frozen=True)
class Dismiss(_Action, prefix="n"):
    """✖ on a question: save none of the readings."""
    question_id: int


@dataclass(frozen=True)
class Pick:
    """``k<index>:<question id>``: save reading `index` (0-2) of a question the bot asked."""
    question_id: int
    index: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^k([0-2]):{_ID}$")

    def encode(self) -> str:
        return f"k{self.index}:{self.question_id}"


ACTIONS = (Done, Snooze, Tomorrow9, Cancel, Edit, Pause, Resume, Undo, Dismiss, Pick)
Action = Done | Snooze | Tomorrow9 | Cancel | Edit | Pause | Resume | Undo | Dismiss | Pick


def decode(data: str | None) -> Action | None:
    """The action a button's data names, or None for anything else (old, forged or malformed)."""
    if not data or len(data.encode("utf-8")) > CALLBACK_DATA_BYTES:
        return None
    for cls in ACTIONS:
        m = cls.PATTERN.match(data)
        if m:
            if cls in (Snooze, Pick):  # two fields, the id last on the wire, first in the class
                return cls(*(int(g) for g in m.groups()[::-1]))
            return cls(int(m.group(1)))
    return None
