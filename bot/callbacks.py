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


@dataclass(frozen=True)
class Done:
    delivery_id: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^d:{_ID}$")

    def encode(self) -> str:
        return f"d:{self.delivery_id}"


@dataclass(frozen=True)
class Snooze:
    delivery_id: int
    minutes: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^s([0-9]{{1,4}}):{_ID}$")

    def encode(self) -> str:
        return f"s{self.minutes}:{self.delivery_id}"


@dataclass(frozen=True)
class Tomorrow9:
    delivery_id: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^t9:{_ID}$")

    def encode(self) -> str:
        return f"t9:{self.delivery_id}"


@dataclass(frozen=True)
class Cancel:
    reminder_id: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^c:{_ID}$")

    def encode(self) -> str:
        return f"c:{self.reminder_id}"


@dataclass(frozen=True)
class Edit:
    reminder_id: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^e:{_ID}$")

    def encode(self) -> str:
        return f"e:{self.reminder_id}"


@dataclass(frozen=True)
class Pause:
    reminder_id: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^p:{_ID}$")

    def encode(self) -> str:
        return f"p:{self.reminder_id}"


@dataclass(frozen=True)
class Resume:
    reminder_id: int
    PATTERN: ClassVar[re.Pattern] = re.compile(rf"^r:{_ID}$")

    def encode(self) -> str:
        return f"r:{self.reminder_id}"


ACTIONS = (Done, Snooze, Tomorrow9, Cancel, Edit, Pause, Resume)
Action = Done | Snooze | Tomorrow9 | Cancel | Edit | Pause | Resume


def decode(data: str | None) -> Action | None:
    """The action a button's data names, or None for anything else (old, forged or malformed)."""
    if not data or len(data.encode("utf-8")) > CALLBACK_DATA_BYTES:
        return None
    for cls in ACTIONS:
        m = cls.PATTERN.match(data)
        if m:
            return cls(*(int(g) for g in m.groups()[::-1])) if cls is Snooze else cls(int(m.group(1)))
    return None


def any_known(data: object) -> bool:
    """A pattern for the catch-all handler: data that no action's pattern accepts."""
    return not (isinstance(data, str) and decode(data) is not None)
