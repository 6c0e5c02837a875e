"""What every handler needs: configuration, the pool, the clock, the user's row and language, and
a reply that always fits Telegram's limits."""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from telegram import Update

from . import store, updates
from .catalogue import language, t
from .config import Config
from .limits import fit

if TYPE_CHECKING:  # types only: the scheduler and the maintenance switch import nothing from here
    from psycopg_pool import AsyncConnectionPool

    from .maintenance import MaintenanceState
    from .scheduler import Scheduler


@dataclass(frozen=True)
class UserRow:
    user_id: int
    chat_id: int
    tz: str
    lang: str | None            # the /lang choice; None: from Telegram
    quiet_start: int | None     # minutes after local midnight
    quiet_end: int | None
    snooze_minutes: int
    editing_id: int | None


class Services:
    """Bound to one Application. A small read-through cache of user rows saves a round trip per
    message; the database stays the truth (every setting is written there first, then the cache
    entry dropped)."""

    def __init__(self, cfg: Config, pool: AsyncConnectionPool, now: Callable[[], datetime],
                 scheduler_ref: Callable[[], Scheduler | None] | None = None,
                 maintenance: MaintenanceState | None = None):
        self.cfg, self.pool, self.now = cfg, pool, now
        self.scheduler_ref = scheduler_ref or (lambda: None)
        self.maintenance = maintenance
        self.started = time.monotonic()
        self._users: collections.OrderedDict[int, UserRow] = collections.OrderedDict()

    async def user(self, update: Update) -> UserRow:
        sender, chat = updates.sender(update), updates.chat(update).id
        uid = sender.id
        hit = self._users.get(uid)
        if hit is not None and hit.chat_id == chat:
            self._users.move_to_end(uid)
            return hit
        row = await store.ensure_user(self.pool, uid, chat, sender.language_code)
        u = UserRow(user_id=row["user_id"], chat_id=row["chat_id"],
                    tz=row["tz"] or self.cfg.default_timezone, lang=row["lang"],
                    quiet_start=row["quiet_start"], quiet_end=row["quiet_end"],
                    snooze_minutes=row["snooze_minutes"], editing_id=row["editing_id"])
        self._users[uid] = u
        while len(self._users) > 10_000:
            self._users.popitem(last=False)
        return u

    def wake_if_due(self, due: datetime) -> None:
        """Nudge the scheduler when `due` is (about) now, so a reminder set for now is not left to
        its next tick; waking it early costs one empty poll."""
        sch = self.scheduler_ref()
        if sch is not None and due <= self.now() + timedelta(seconds=2):
            sch.wake()

    def cached(self, user_id: int) -> UserRow | None:
        return self._users.get(user_id)

    def forget(self, user_id: int) -> None:
        self._users.pop(user_id, None)

    def remember(self, u: UserRow, **changes) -> UserRow:
        """Cache `u` with `changes` (already written to the database); the new row."""
        new = self._users[u.user_id] = replace(u, **changes)
        return new

    @staticmethod
    def lang(update: Update, u: UserRow | None = None) -> str:
        tg = update.effective_user.language_code if update.effective_user else None
        return language(tg, u.lang if u else None)

    async def reply(self, update: Update, text: str, **kw):
        return await updates.message(update).reply_text(fit(text), do_quote=False, **kw)

    async def say(self, update: Update, u: UserRow | None, key: str, **fields):
        return await self.reply(update, t(self.lang(update, u), key, **fields))
