"""Tests of the Bot API double itself (tests/support/botapi_double.py), with plain HTTP and with PTB."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from tests.support.botapi_double import BotApiDouble

TOKEN = "123456:TEST-TOKEN"


def post(url, body=None, ctype="application/json", timeout=10):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def api():
    with BotApiDouble(TOKEN) as d:
        yield d


def make_bot(api, token=TOKEN, read_timeout=5.0):
    return Bot(token, base_url=api.base_url + "/bot",
               request=HTTPXRequest(read_timeout=read_timeout, connect_timeout=2),
               get_updates_request=HTTPXRequest(read_timeout=read_timeout + 5))


def test_send_message_accepts_json_and_form_bodies(api):
    st, out = post(f"{api.base_url}/bot{TOKEN}/sendMessage", {"chat_id": 42, "text": "hi"})
    assert st == 200 and out["ok"] and out["result"]["text"] == "hi"
    st, out = post(f"{api.base_url}/bot{TOKEN}/sendMessage", b"chat_id=42&text=again",
                   "application/x-www-form-urlencoded")
    assert st == 200 and out["result"]["chat"]["id"] == 42
    assert [m["text"] for m in api.sent_messages(42)] == ["hi", "again"]
    assert api.sent_messages(7) == []
    assert [c.method for c in api.calls] == ["sendMessage", "sendMessage"]
    method, params = api.calls[0]
    assert method == "sendMessage" and params["chat_id"] == 42


def test_another_token_gets_401(api):
    st, out = post(f"{api.base_url}/botOTHER:TOKEN/getMe", {})
    assert st == 401 and out == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert api.sent_messages() == []


async def test_ptb_bot_can_use_every_method_the_bot_calls(api):
    bot = make_bot(api)
    async with bot:
        assert bot.username == api.bot_username
        kb = InlineKeyboardMarkup([[InlineKeyboardButton("Done", callback_data="d:1")]])
        m = await bot.send_message(42, "hello", reply_markup=kb)
        assert m.text == "hello" and m.reply_markup.inline_keyboard[0][0].callback_data == "d:1"
        e = await bot.edit_message_text("edited", chat_id=42, message_id=m.message_id)
        assert e.text == "edited" and api.message(42, m.message_id)["text"] == "edited"
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text("edited", chat_id=42, message_id=m.message_id)
        with pytest.raises(BadRequest, match="not found"):
            await bot.edit_message_text("x", chat_id=42, message_id=999)
        await bot.edit_message_reply_markup(chat_id=42, message_id=m.message_id, reply_markup=kb)
        assert api.message(42, m.message_id)["reply_markup"]["inline_keyboard"][0][0]["text"] == "Done"
        pressed = api.push_callback(42, "d:1", m.message_id)["callback_query"]["id"]
        assert await bot.answer_callback_query(pressed, text="ok")
        doc = await bot.send_document(42, b'{"a": 1}', filename="export.json", caption="your data")
        assert doc.document.file_name == "export.json"
        (_, params), = [c for c in api.calls if c.method == "sendDocument"]
        assert params["document"]["content"] == '{"a": 1}' and params["caption"] == "your data"
        from telegram import BotCommand
        assert await bot.set_my_commands([BotCommand("start", "Start")])
        assert await bot.delete_webhook(drop_pending_updates=False)
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.send_chat_action(42, "typing")
    assert [m.get("text") or m.get("document", {}).get("file_name")
            for m in api.sent_messages(42)] == ["hello", "export.json"]


async def test_ptb_refuses_to_start_with_another_token(api):
    bot = make_bot(api, token="999:WRONG")
    with pytest.raises(InvalidToken):
        await bot.initialize()


async def test_get_updates_confirms_offsets_and_long_polls(api):
    bot = make_bot(api)
    async with bot:
        u1 = api.push_message(1, "one")
        u2 = api.push_command(1, "start")
        ups = await bot.get_updates(timeout=0)
        assert [u.update_id for u in ups] == [u1["update_id"], u2["update_id"]]
        assert ups[1].message.text == "/start" and ups[1].message.entities[0].type == "bot_command"
        # not confirmed yet: offset 0 returns them again
        assert len(await bot.get_updates(timeout=0)) == 2
        # confirming drops them
        assert await bot.get_updates(offset=u2["update_id"] + 1, timeout=0) == ()
        assert api.pending_updates() == []
        # long poll: waits and returns as soon as an update arrives
        t = threading.Timer(0.3, lambda: api.push_message(1, "late"))
        t.start()
        t0 = time.monotonic()
        ups = await bot.get_updates(offset=u2["update_id"] + 1, timeout=5)
        assert 0.2 < time.monotonic() - t0 < 3 and ups[0].message.text == "late"
        # long poll with nothing: returns empty after the timeout
        t0 = time.monotonic()
        assert await bot.get_updates(offset=ups[0].update_id + 1, timeout=1) == ()
        assert time.monotonic() - t0 >= 0.9


async def test_a_button_press_carries_its_message(api):
    bot = make_bot(api)
    async with bot:
        m = await bot.send_message(5, "reminder")
        api.push_callback(5, "done:7", m.message_id)
        (u,) = await bot.get_updates(timeout=0)
        assert u.callback_query.data == "done:7" and u.callback_query.from_user.id == 5
        assert u.callback_query.message.message_id == m.message_id


async def test_injected_failures_answer_like_telegram(api):
    bot = make_bot(api, read_timeout=1.0)
    async with bot:
        api.fail_next("sendMessage", status=429, retry_after=7)
        with pytest.raises(RetryAfter) as ei:
            await bot.send_message(1, "x")
        assert ei.value.retry_after.total_seconds() == 7 if hasattr(ei.value.retry_after, "total_seconds") \
            else ei.value.retry_after == 7
        api.fail_next("sendMessage", status=502, count=2)
        for _ in range(2):
            with pytest.raises(NetworkError):
                await bot.send_message(1, "x")
        api.fail_next("sendMessage", status=500)
        with pytest.raises(NetworkError):
            await bot.send_message(1, "x")
        api.timeout_next("sendMessage", seconds=2)
        with pytest.raises(TimedOut):
            await bot.send_message(1, "lost")
        assert (await bot.send_message(1, "fine")).text == "fine"
    assert api.injected["429"] == 1 and api.injected["502"] == 2 and api.injected["500"] == 1
    assert api.injected["timeout"] == 1
    assert [m["text"] for m in api.sent_messages(1)] == ["fine"]


def test_a_slow_answer_still_carries_the_call_out(api):
    api.timeout_next("sendMessage", seconds=1.0, process=True)
    with pytest.raises(OSError):
        post(f"{api.base_url}/bot{TOKEN}/sendMessage", {"chat_id": 3, "text": "late"}, timeout=0.3)
    api.wait_for(lambda: api.sent_messages(3), timeout=5)
    assert api.sent_messages(3)[0]["text"] == "late"


def test_wait_for_wakes_on_a_request_and_times_out(api):
    with pytest.raises(TimeoutError):
        api.wait_for(lambda: api.sent_messages(9), timeout=0.2)
    threading.Timer(0.2, lambda: post(f"{api.base_url}/bot{TOKEN}/sendMessage",
                                      {"chat_id": 9, "text": "x"})).start()
    assert api.wait_for(lambda: api.sent_messages(9), timeout=5)[0]["text"] == "x"


def test_sends_over_telegrams_limits_are_refused_with_429():
    with BotApiDouble(TOKEN, enforce_limits=True) as api:
        url = f"{api.base_url}/bot{TOKEN}/sendMessage"
        assert post(url, {"chat_id": 1, "text": "a"})[0] == 200
        st, out = post(url, {"chat_id": 1, "text": "b"})  # same chat, immediately
        assert st == 429 and out["parameters"]["retry_after"] == 1
        t0 = time.monotonic()
        for chat in range(2, 40):
            post(url, {"chat_id": chat, "text": "c"})
        refill = 30 * (time.monotonic() - t0)  # a slow machine lets the bucket refill meanwhile
        assert api.injected["limit429"] >= 2  # the burst over 30 was refused
        stats = api.rate_stats()
        assert stats["max_overall_in_window"] <= 31 + refill and stats["max_per_chat_in_window"] == 1


def test_the_standalone_double_obeys_its_control_api():
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.botapi_double", "--port", "0",
                             "--token", "T:1"], stdout=subprocess.PIPE, text=True)
    try:
        line = json.loads(proc.stdout.readline())
        base = f"http://127.0.0.1:{line['port']}"
        assert post(f"{base}/_control/health")[1]["ok"]
        st, out = post(f"{base}/_control/updates", {"message": {"from_id": 42, "text": "/start"}})
        assert st == 200 and out["update"]["message"]["chat"]["id"] == 42
        st, out = post(f"{base}/botT:1/getUpdates", {"timeout": 0})
        assert out["result"][0]["message"]["text"] == "/start"
        post(f"{base}/_control/fail", {"method": "sendMessage", "status": 502})
        assert post(f"{base}/botT:1/sendMessage", {"chat_id": 42, "text": "x"})[0] == 502
        assert post(f"{base}/botT:1/sendMessage", {"chat_id": 42, "text": "y"})[0] == 200
        calls = post(f"{base}/_control/calls?method=sendMessage")[1]["calls"]
        assert [(c["params"]["text"], c["status"]) for c in calls] == [("x", 502), ("y", 200)]
        assert [m["text"] for m in post(f"{base}/_control/sent?chat_id=42")[1]["messages"]] == ["y"]
        assert post(f"{base}/_control/stats")[1]["injected"] == {"502": 1}
        st, out = post(f"{base}/_control/updates", {"callback": {"from_id": 42, "data": "d", "message_id": 2}})
        assert out["update"]["callback_query"]["message"]["text"] == "y"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("params,error", [
    ({"chat_id": 1, "text": ""}, "message text is empty"),
    ({"chat_id": 1, "text": " \n "}, "message text is empty"),
    ({"chat_id": 1, "text": "x" * 4097}, "message is too long"),
    ({"chat_id": 1, "text": "😀" * 2049}, "message is too long"),   # UTF-16: 4,098 code units
    ({"chat_id": 1, "text": "x", "reply_markup": json.dumps(
        {"inline_keyboard": [[{"text": "b", "callback_data": "x" * 65}]]})}, "BUTTON_DATA_INVALID"),
    ({"chat_id": 1, "text": "x", "reply_markup": json.dumps(
        {"inline_keyboard": [[{"text": "b", "callback_data": "ж" * 33}]]})}, "BUTTON_DATA_INVALID"),
    ({"chat_id": 1, "text": "x", "reply_markup": json.dumps(
        {"inline_keyboard": [[{"text": "", "callback_data": "d"}]]})}, "BUTTON_TEXT_INVALID"),
])
def test_send_message_refuses_what_telegram_refuses(api, params, error):
    st, out = post(f"{api.base_url}/bot{TOKEN}/sendMessage", params)
    assert st == 400 and out["ok"] is False and out["error_code"] == 400 and error in out["description"]
    assert api.sent_messages() == []


def test_send_message_accepts_texts_at_the_limits(api):
    url = f"{api.base_url}/bot{TOKEN}/sendMessage"
    assert post(url, {"chat_id": 1, "text": "x" * 4096})[0] == 200
    kb = {"inline_keyboard": [[{"text": "b", "callback_data": "x" * 64}]]}
    assert post(url, {"chat_id": 1, "text": "x", "reply_markup": json.dumps(kb)})[0] == 200


def test_answer_callback_query_refuses_unknown_ids_and_long_texts(api):
    url = f"{api.base_url}/bot{TOKEN}/answerCallbackQuery"
    assert "query ID is invalid" in post(url, {"callback_query_id": "404"})[1]["description"]
    cid = api.push_callback(1, "d:1", 1)["callback_query"]["id"]
    st, out = post(url, {"callback_query_id": cid, "text": "x" * 201})
    assert st == 400 and "MESSAGE_TOO_LONG" in out["description"]
    assert post(url, {"callback_query_id": cid, "text": "x" * 200})[0] == 200


def test_send_document_refuses_a_long_caption(api):
    st, out = post(f"{api.base_url}/bot{TOKEN}/sendDocument",
                   {"chat_id": 1, "document": "file-id", "caption": "c" * 1025})
    assert st == 400 and "caption is too long" in out["description"]


@pytest.mark.parametrize("commands,error", [
    ([{"command": "Start", "description": "x"}], "BOT_COMMAND_INVALID"),
    ([{"command": "a" * 33, "description": "x"}], "BOT_COMMAND_INVALID"),
    ([{"command": "start", "description": ""}], "BOT_COMMAND_DESCRIPTION_INVALID"),
    ([{"command": "start", "description": "d" * 257}], "BOT_COMMAND_DESCRIPTION_INVALID"),
])
def test_set_my_commands_refuses_what_telegram_refuses(api, commands, error):
    st, out = post(f"{api.base_url}/bot{TOKEN}/setMyCommands", {"commands": json.dumps(commands)})
    assert st == 400 and error in out["description"]


def test_an_injection_for_one_chat_leaves_the_others_alone(api):
    url = f"{api.base_url}/bot{TOKEN}/sendMessage"
    api.fail_next("sendMessage", status=500, chat_id=2)
    assert post(url, {"chat_id": 1, "text": "a"})[0] == 200
    st, out = post(url, {"chat_id": 2, "text": "b"})
    assert st == 500 and out == {"ok": False, "error_code": 500, "description": "Internal Server Error"}


def test_a_malformed_result_carries_the_call_out_but_answers_garbage(api):
    api.malformed_next("sendMessage", kind="result")
    st, out = post(f"{api.base_url}/bot{TOKEN}/sendMessage", {"chat_id": 1, "text": "a"})
    assert st == 200 and out == {"ok": True, "result": {"unexpected": "shape"}}
    assert [m["text"] for m in api.sent_messages(1)] == ["a"]


def test_a_malformed_body_is_not_json_and_does_nothing(api):
    api.malformed_next("sendMessage", kind="body")
    req = urllib.request.Request(f"{api.base_url}/bot{TOKEN}/sendMessage",
                                 data=json.dumps({"chat_id": 1, "text": "a"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200 and r.read().startswith(b"<html>")
    assert api.sent_messages() == [] and api.injected["malformed"] == 1


def test_a_hang_gets_no_answer_within_the_clients_timeout(api):
    api.hang_next("getMe", seconds=5)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{api.base_url}/bot{TOKEN}/getMe", timeout=0.5)
