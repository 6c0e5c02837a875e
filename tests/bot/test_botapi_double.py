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


def test_plain_http_send_message_json_and_form(api):
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


def test_wrong_token_is_401(api):
    st, out = post(f"{api.base_url}/botOTHER:TOKEN/getMe", {})
    assert st == 401 and out == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert api.sent_messages() == []


async def test_ptb_bot_round_trip(api):
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


async def test_ptb_wrong_token(api):
    bot = make_bot(api, token="999:WRONG")
    with pytest.raises(InvalidToken):
        await bot.initialize()


async def test_get_updates_offsets_and_long_poll(api):
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


async def test_callback_update_carries_message(api):
    bot = make_bot(api)
    async with bot:
        m = await bot.send_message(5, "reminder")
        api.push_callback(5, "done:7", m.message_id)
        (u,) = await bot.get_updates(timeout=0)
        assert u.callback_query.data == "done:7" and u.callback_query.from_user.id == 5
        assert u.callback_query.message.message_id == m.message_id


async def test_injected_failures(api):
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


def test_timeout_next_process_true_sends_late(api):
    api.timeout_next("sendMessage", seconds=1.0, process=True)
    with pytest.raises(OSError):
        post(f"{api.base_url}/bot{TOKEN}/sendMessage", {"chat_id": 3, "text": "late"}, timeout=0.3)
    api.wait_for(lambda: api.sent_messages(3), timeout=5)
    assert api.sent_messages(3)[0]["text"] == "late"


def test_wait_for_times_out_and_wakes(api):
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


def test_control_api_and_standalone_process():
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
