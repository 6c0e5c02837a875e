"""One message catalogue (en, ru) for every user-visible string."""
from __future__ import annotations

import ast
import pathlib
import re
import string

import pytest

from bot import catalogue
from bot.catalogue import LANGS, MESSAGES
from tests.bot.conftest import USER, q

BOT = pathlib.Path(__file__).resolve().parents[2] / "bot"


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_every_key_exists_in_both_languages_with_the_same_fields(key):
    entry = MESSAGES[key]
    assert set(entry) == set(LANGS)
    assert all(entry[lang].strip() for lang in LANGS)
    assert _fields(entry["en"]) == _fields(entry["ru"])


@pytest.mark.parametrize("key", sorted(k for k in MESSAGES if k not in ("btn_cancel", "btn_edit",
                                                                       "btn_pause", "btn_resume")))
def test_the_russian_text_is_a_translation(key):
    ru = MESSAGES[key]["ru"]
    assert ru != MESSAGES[key]["en"] and re.search("[а-яё]", ru, re.I), key


# Calls whose text arguments reach a user. A literal with letters in one of them is a string that
# bypassed the catalogue.
_SENDING = {"reply", "reply_text", "send_message", "answer", "edit_message_text", "reply_document",
            "InlineKeyboardButton", "BotCommand", "answer_callback_query"}
_ARGS = {"text", "caption"}


def _literal_words(node: ast.AST) -> list[str]:
    """String literals with words in `node`, except inside `t(...)` (catalogue keys)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "t":
        return []
    if isinstance(node, ast.Constant):
        ok = not (isinstance(node.value, str) and re.search(r"[A-Za-zА-Яа-яЁё]{2,}", node.value))
        return [] if ok else [node.value]
    return [w for child in ast.iter_child_nodes(node) for w in _literal_words(child)]


def _violations(path: pathlib.Path) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if name not in _SENDING:
            continue
        args = list(node.args) + [k.value for k in node.keywords if k.arg in _ARGS]
        for a in args:
            bad += [f"{path.name}:{node.lineno}: {w!r}" for w in _literal_words(a)]
    return bad


def test_no_user_visible_string_is_outside_the_catalogue():
    bad = [v for p in sorted(BOT.glob("*.py")) if p.name != "catalogue.py" for v in _violations(p)]
    assert bad == []


def test_the_scan_catches_a_literal_reply(tmp_path):
    p = tmp_path / "x.py"
    p.write_text("async def f(u):\n    await u.reply_text('Hello there')\n")
    assert _violations(p)


def test_language_follows_telegram_unless_overridden():
    assert catalogue.language("ru-RU") == "ru" and catalogue.language("de") == "en"
    assert catalogue.language("ru", override="en") == "en"


async def test_lang_overrides_telegrams_language_and_is_stored(make_bot, database_url):
    b = await make_bot()
    (m,) = await b.say(USER, "/lang ru")
    assert m["text"] == MESSAGES["lang_set"]["ru"]
    assert q(database_url, "SELECT lang FROM users WHERE user_id = %s", USER) == [("ru",)]
    (m,) = await b.say(USER, "/list")
    assert m["text"] == MESSAGES["list_empty"]["ru"]


async def test_lang_auto_goes_back_to_telegrams_language(make_bot, database_url):
    b = await make_bot()
    await b.say(USER, "/lang ru")
    (m,) = await b.say(USER, "/lang auto")
    assert m["text"] == MESSAGES["lang_auto"]["en"]
    assert q(database_url, "SELECT lang FROM users WHERE user_id = %s", USER) == [(None,)]


async def test_the_language_choice_survives_a_restart(make_bot):
    b = await make_bot()
    await b.say(USER, "/lang ru")
    await b.stop()
    b2 = await make_bot()
    (m,) = await b2.say(USER, "/help")
    assert m["text"] == MESSAGES["help"]["ru"]


async def test_a_russian_user_gets_russian_help(make_bot):
    b = await make_bot()
    (m,) = await b.say(USER, "/help", lang="ru")
    assert m["text"] == MESSAGES["help"]["ru"]
