"""What every button handler does with a press: decode its data as one action (or say the button is
unknown), answer it within answerCallbackQuery's 200 characters, and edit the pressed message
(a message already showing that text, or gone, is not an error)."""
from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from . import callbacks as cb
from . import updates
from .catalogue import t
from .limits import CALLBACK_ANSWER, fit
from .services import Services


class PressHandlers:
    def __init__(self, svc: Services):
        self.svc = svc

    async def _answer(self, update: Update, key: str, **fields) -> None:
        u = self.svc.cached(updates.user_id(update))  # no write: the presser may be someone else
        await updates.query(update).answer(fit(t(self.svc.lang(update, u), key, **fields), CALLBACK_ANSWER))

    async def _decode(self, update: Update, cls: type[cb.A]) -> cb.A | None:
        """The pressed button's action, or None after telling the presser the button is unknown."""
        action = cb.decode_as(updates.query(update).data, cls)
        if action is None:
            await self._answer(update, "ans_unknown_button")
        return action

    async def _edit(self, update: Update, text: str, kb: InlineKeyboardMarkup | None = None) -> None:
        try:
            await updates.query(update).edit_message_text(fit(text), reply_markup=kb)
        except BadRequest as e:
            if "not modified" not in str(e).lower() and "not found" not in str(e).lower():
                raise
