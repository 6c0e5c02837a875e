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
from typing import ClassVar, Self, TypeVar, cast

from .limits import CALLBACK_DATA_BYTES

_ID = r"([0-9]{1,18})"


class _Button:
    PATTERN: ClassVar[re.Pattern]

    @classmethod
    def from_match(cls, m: re.Match) -> Self:
        """The action from its PATTERN's match: the groups are its integer fields, in order."""
        return cls(*(int(g) for g in m.groups()))


class _Action(_Button):
    """One field, encoded ``PREFIX:id``; subclasses name the field and the prefix."""
    PREFIX: ClassVar[str]

    def __init_subclass__(cls, prefix: str = "", **kw):
        super().__init_subclass__(**kw)
        if prefix:
            cls.PREFIX, cls.PATTERN = prefix, re.compile(rf"^{prefix}:{_ID}$")

    def encode(self) -> str:
        (value,) = vars(self).values()  # the subclass's one field
        return f"{self.PREFIX}:{value}"


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
class Snooze(_Button):
    """``s<minutes>:<delivery id>``: snooze by the user's default or an hour."""
    delivery_id: int
    minutes: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^s([0-9]{{1,4}}):{_ID}$")

    @classmethod
    def from_match(cls, m: re.Match) -> Self:
        minutes, delivery_id = (int(g) for g in m.groups())
        return cls(delivery_id=delivery_id, minutes=minutes)

    def encode(self) -> str:
        return f"s{self.minutes}:{self.delivery_id}"


@dataclass(frozen=True)
class Undo(_Action, prefix="u"):
    """↩ on a confirmation: remove the reminder just saved."""
    reminder_id: int


@dataclass(frozen=True)
class UndoEdit(_Action, prefix="ue"):
    """↩ on an edit's confirmation: put the reminder back as it was (the edit is kept server-side,
    table `reminder_edits`; the data carries only its id)."""
    edit_id: int


@dataclass(frozen=True)
class Dismiss(_Action, prefix="n"):
    """✖ on a question the bot asked: save none of its readings."""
    question_id: int


@dataclass(frozen=True)
class Pick(_Button):
    """``k<index>:<question id>``: save reading `index` (0-2) of a question the bot asked."""
    question_id: int
    index: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^k([0-2]):{_ID}$")

    @classmethod
    def from_match(cls, m: re.Match) -> Self:
        index, question_id = (int(g) for g in m.groups())
        return cls(question_id=question_id, index=index)

    def encode(self) -> str:
        return f"k{self.index}:{self.question_id}"


ACTIONS = (Done, Snooze, Tomorrow9, Cancel, Edit, Pause, Resume, Undo, UndoEdit, Dismiss, Pick)
Action = Done | Snooze | Tomorrow9 | Cancel | Edit | Pause | Resume | Undo | UndoEdit | Dismiss | Pick


A = TypeVar("A", bound=_Button)


def decode_as(data: str | None, cls: type[A]) -> A | None:
    """The `cls` action a button's data names, or None for anything else (old, forged, malformed,
    or another action's data)."""
    if not data or len(data.encode("utf-8")) > CALLBACK_DATA_BYTES:
        return None
    m = cls.PATTERN.match(data)
    return None if m is None else cls.from_match(m)


def decode(data: str | None) -> Action | None:
    """The action a button's data names, or None for anything else (old, forged or malformed)."""
    for cls in ACTIONS:
        action = decode_as(data, cls)
        if action is not None:
            return cast(Action, action)
    return None
