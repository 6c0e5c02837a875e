"""A local Telegram Bot API double: a real HTTP server for tests, benchmarks and the dress rehearsal.

The bot (python-telegram-bot with ``base_url``), the backup tool's alerts (plain HTTP) and the Docker
rehearsal all talk to it exactly as they would to ``https://api.telegram.org``:
``POST|GET <base_url>/bot<token>/<method>`` with query-string, JSON, form-urlencoded or
multipart/form-data parameters, answered with ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``.

Stable API (other parts of the project depend on it)
----------------------------------------------------
In-process::

    from tests.support.botapi_double import BotApiDouble
    with BotApiDouble(token="123456:TEST-TOKEN") as api:      # host="127.0.0.1", port=0 (free port)
        api.base_url                # "http://127.0.0.1:PORT" (the Bot API root; no /bot suffix)
        api.push_message(user_id, "hello", chat_id=None)      # -> the Update dict enqueued
        api.push_command(user_id, "remind", "in 10 minutes tea")   # "/remind in 10 minutes tea"
        api.push_callback(user_id, "done:42", message_id)      # a button press on a sent message
        api.calls                   # [Call(method, params), ...] in arrival order (copy; thread-safe)
        api.sent_messages(chat_id=None)    # successful sendMessage/sendDocument results (Message dicts)
        api.wait_for(lambda: len(api.sent_messages(1)) >= 2, timeout=10)   # condition variable
        await api.async_wait_for(pred, timeout=10)              # the same, off the event loop
        api.fail_next("sendMessage", status=429, retry_after=3, count=1)    # or 500 / 502 / 400 / 403
        api.timeout_next("sendMessage", seconds=5, count=1, process=False)  # stall, then drop
        api.hang_next("sendMessage", seconds=30, chat_id=666)   # a hang (for one chat only)
        api.malformed_next("sendMessage", kind="result", chat_id=666)  # 200 with a broken answer
        # every injection takes chat_id=...: only calls for that chat are affected
        api.injected                # Counter: {"429": n, "500": n, "timeout": n, "limit429": n, ...}
        api.rate_stats()            # sends, max per 1 s window overall / per chat, min gap per chat
        api.reset()                 # forget calls, messages, injections (keeps pending updates)

``Call`` is a 2-tuple ``(method, params)`` (so ``for method, params in api.calls`` works) with extra
attributes ``.status`` (HTTP status answered, 0 when the connection was dropped), ``.at``
(``time.monotonic()``), ``.token`` and ``.result``.  Multipart file parts appear in ``params`` as
``{"filename": str, "content_type": str, "size": int, "content": str}`` (``content`` is the UTF-8
text, or base64 with ``"encoding": "base64"`` when it is not UTF-8).

Behaviour, like Telegram:
- a token other than the double's own gets 401 ``Unauthorized``; an unknown method gets 404;
- ``getUpdates``: updates with ``update_id < offset`` are confirmed and forgotten; it returns at most
  ``limit`` updates with ``update_id >= offset``, waiting up to ``timeout`` seconds (long polling) when
  there are none; a negative offset returns the last ``-offset`` updates;
- ``sendMessage`` / ``sendDocument`` / ``editMessageText`` / ``editMessageReplyMarkup`` store and return
  Message objects; editing to the same text and markup answers 400 "message is not modified";
  editing an unknown message answers 400 "message to edit not found";
- ``getMe``, ``setMyCommands``, ``deleteWebhook``, ``getWebhookInfo``, ``answerCallbackQuery``,
  ``sendChatAction``, ``close``, ``logOut``, ``deleteMessage``, ``getMyCommands`` are answered harmlessly.

Telegram's rules on what it accepts (a request the real Bot API refuses is refused here too, with
its ``400`` and description, so a test fails where Telegram would):
- message text (sendMessage, editMessageText): required, not only whitespace, at most 4,096
  characters (measured in UTF-16 code units, as Telegram counts) -> "message text is empty",
  "message is too long";
- sendDocument caption: at most 1,024 -> "message caption is too long";
- inline keyboard buttons: a non-empty text, ``callback_data`` of 1-64 bytes (UTF-8) ->
  "BUTTON_DATA_INVALID"; at most 100 buttons, 8 per row -> "too many buttons";
- answerCallbackQuery: a ``callback_query_id`` the double issued -> "query is too old and response
  timeout expired or query ID is invalid"; text at most 200 characters -> "MESSAGE_TOO_LONG";
- setMyCommands: at most 100 commands of 1-32 characters ``[a-z0-9_]``, descriptions of 1-256
  characters -> "BOT_COMMAND_INVALID" / "BOT_COMMAND_DESCRIPTION_INVALID"; ``language_code`` empty or
  two letters.
Errors have Telegram's shape: ``{"ok": false, "error_code": N, "description": "...",
"parameters": {"retry_after": s}}`` (``parameters`` only for 429).

Rate-limit accounting: the time of every successful message send (``sendMessage``, ``sendDocument``)
is recorded per chat and overall; ``rate_stats()`` reports the worst 1-second windows.  With
``enforce_limits=True`` the double answers 429 (``retry_after`` 1) when a send exceeds a token bucket
of ``overall_limit`` (30)/s overall or ``per_chat_limit`` (1)/s per chat, with a small tolerance
(``limit_tolerance``, default 0.1 of a token) for network jitter; these count as ``injected["limit429"]``.

Standalone (Docker dress rehearsal)::

    python -m tests.support.botapi_double --host 0.0.0.0 --port 8081 --token T [--enforce-limits]

Control API on the same server (JSON in and out):
- ``GET  /_control/health`` -> ``{"ok": true, "token_ok": ..., "pending_updates": n}``
- ``POST /_control/updates`` enqueue an update. Body: a full Update JSON (``update_id`` optional,
  assigned when absent), or the shorthands
  ``{"message": {"from_id": 42, "text": "/start", "chat_id": 42}}`` (``chat_id`` defaults to
  ``from_id``) and ``{"callback": {"from_id": 42, "data": "done:1", "message_id": 7}}``.
  Answers ``{"ok": true, "update": {...}}``.
- ``GET  /_control/calls[?method=sendMessage&since=N]`` -> ``{"ok": true, "calls": [{"i", "method",
  "params", "status", "at"}...]}`` (``since`` skips the first N calls).
- ``GET  /_control/sent[?chat_id=42]`` -> ``{"ok": true, "messages": [...]}``
- ``POST /_control/fail`` ``{"method": "sendMessage", "status": 429, "retry_after": 2, "count": 1}``
  or ``{"method": "sendMessage", "timeout": 5, "count": 1, "process": false}``
  or ``{"method": "sendMessage", "malformed": "result"|"body", "count": 1}``; each takes an optional
  ``"chat_id"``.
- ``GET  /_control/stats`` -> ``{"ok": true, "rate": rate_stats(), "injected": {...}}``
- ``POST /_control/reset`` forget calls, messages and injections.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import itertools
import json
import re
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

__all__ = ["BotApiDouble", "Call"]

SEND_METHODS = frozenset({"sendmessage", "senddocument"})
_INT_KEYS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id", "reply_to_message_id",
             "cache_time", "from_chat_id", "message_thread_id", "max_connections"}
_BOOL_KEYS = {"drop_pending_updates", "show_alert", "disable_notification", "protect_content",
              "disable_web_page_preview", "allow_sending_without_reply", "disable_content_type_detection"}
_JSON_KEYS = {"reply_markup", "allowed_updates", "commands", "entities", "caption_entities",
              "link_preview_options", "reply_parameters", "scope"}


class Call(tuple):
    """A recorded request: unpacks as ``(method, params)``; also ``.status``, ``.at``, ``.token``."""

    def __new__(cls, method: str, params: dict, status: int = 200, at: float = 0.0,
                token: str = "", result: Any = None):
        self = super().__new__(cls, (method, params))
        self.status = status
        self.at = at
        self.token = token
        self.result = result
        return self

    @property
    def method(self) -> str:
        return self[0]

    @property
    def params(self) -> dict:
        return self[1]

    def __repr__(self) -> str:
        return f"Call({self[0]!r}, {self[1]!r}, status={self.status})"


def _coerce(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _INT_KEYS and re.fullmatch(r"-?\d+", value):
        return int(value)
    if key in _BOOL_KEYS and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if key in _JSON_KEYS and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _Bucket:
    """A token bucket (rate/s, burst capacity) used for optional limit enforcement."""

    def __init__(self, rate: float, capacity: float):
        self.rate, self.capacity = rate, capacity
        self.tokens, self.stamp = capacity, time.monotonic()

    def take(self, now: float, tolerance: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0 - tolerance:
            self.tokens -= 1.0
            return True
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        import sys
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that went away (e.g. a killed bot): not our problem
        super().handle_error(request, client_address)


class BotApiDouble:
    """A fake Telegram Bot API server. See the module docstring for the stable API."""

    def __init__(self, token: str = "123456:TEST-TOKEN", host: str = "127.0.0.1", port: int = 0,
                 *, enforce_limits: bool = False, overall_limit: float = 30.0,
                 per_chat_limit: float = 1.0, limit_tolerance: float = 0.1,
                 bot_username: str = "botstack_test_bot"):
        self.token = token
        self.host, self._port = host, port
        self.enforce_limits = enforce_limits
        self.overall_limit, self.per_chat_limit = overall_limit, per_chat_limit
        self.limit_tolerance = limit_tolerance
        self.bot_username = bot_username
        try:
            self.bot_id = int(token.split(":", 1)[0])
        except ValueError:
            self.bot_id = 123456
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._update_ids = itertools.count(1)
        self._cbq_ids = itertools.count(1)
        self._pending: list[dict] = []  # enqueued, not yet confirmed updates
        self._issued_callbacks: set[str] = set()
        self._reset_state()

    def _reset_state(self) -> None:
        self._calls: list[Call] = []
        self._messages: dict[tuple[int, int], dict] = {}  # (chat_id, message_id) -> Message
        self._sent: list[dict] = []
        self._msg_ids: dict[int, itertools.count] = {}
        self._failures: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.injected: collections.Counter = collections.Counter()
        self._send_times: list[tuple[float, int]] = []  # (monotonic, chat_id)
        self._overall_bucket = _Bucket(self.overall_limit, self.overall_limit)
        self._chat_buckets: dict[int, _Bucket] = {}
        self.answered_callbacks: list[dict] = []

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "BotApiDouble":
        double = self

        class Handler(_Handler):
            api = double

        self._stopping = False
        self._server = _Server((self.host, self._port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="botapi-double",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "BotApiDouble":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def bot_url(self) -> str:
        """``<base_url>/bot<token>`` (what PTB's ``base_url`` parameter expects as prefix)."""
        return f"{self.base_url}/bot{self.token}"

    # -- inspection ----------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_of(self, method: str) -> list[Call]:
        m = method.lower()
        return [c for c in self.calls if c.method.lower() == m]

    def sent_messages(self, chat_id: int | None = None) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self._sent if chat_id is None or m["chat"]["id"] == int(chat_id)]

    def message(self, chat_id: int, message_id: int) -> dict | None:
        """The current state of a stored message (after edits), or None."""
        with self._lock:
            m = self._messages.get((int(chat_id), int(message_id)))
            return dict(m) if m else None

    def pending_updates(self) -> list[dict]:
        with self._lock:
            return list(self._pending)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Block until ``predicate()`` is truthy (re-checked after every request); return its value.

        Raises ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s; "
                                       f"last calls: {self._calls[-5:]!r}")
                self._cond.wait(left)

    async def async_wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """``wait_for`` for asyncio code: waits in a thread so the event loop keeps running."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def wait_for_messages(self, chat_id: int | None, count: int, timeout: float = 10.0) -> list[dict]:
        """Wait until at least ``count`` messages were sent (to ``chat_id``); return them all."""
        return self.wait_for(lambda: (lambda ms: ms if len(ms) >= count else None)(
            self.sent_messages(chat_id)), timeout)

    def rate_stats(self, window: float = 1.0) -> dict:
        """Worst ``window``-second counts of successful sends, overall and per chat."""
        with self._lock:
            times = list(self._send_times)
        stats = {"sends": len(times), "window": window, "max_overall_in_window": 0,
                 "max_per_chat_in_window": 0, "min_gap_per_chat": None, "duration": 0.0,
                 "mean_rate": 0.0}
        if not times:
            return stats
        ts = [t for t, _ in times]
        stats["max_overall_in_window"] = _max_in_window(ts, window)
        per_chat: dict[int, list[float]] = collections.defaultdict(list)
        for t, c in times:
            per_chat[c].append(t)
        stats["max_per_chat_in_window"] = max(_max_in_window(v, window) for v in per_chat.values())
        gaps = [b - a for v in per_chat.values() for a, b in itertools.pairwise(v)]
        stats["min_gap_per_chat"] = min(gaps) if gaps else None
        stats["duration"] = ts[-1] - ts[0]
        if len(ts) > 1 and ts[-1] > ts[0]:
            stats["mean_rate"] = (len(ts) - 1) / (ts[-1] - ts[0])
        return stats

    def send_times(self, chat_id: int | None = None) -> list[float]:
        with self._lock:
            return [t for t, c in self._send_times if chat_id is None or c == int(chat_id)]

    # -- driving -------------------------------------------------------------------------------
    def _user(self, user_id: int, first_name: str | None = None, username: str | None = None,
              language_code: str | None = "en") -> dict:
        user = {"id": int(user_id), "is_bot": False, "first_name": first_name or f"User{user_id}"}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._msg_ids.setdefault(int(chat_id), itertools.count(1))
        return next(counter)

    def push_update(self, update: dict) -> dict:
        """Enqueue a raw Update dict (``update_id`` assigned when absent); return it."""
        with self._cond:
            update = dict(update)
            if "update_id" not in update:
                update["update_id"] = next(self._update_ids)
            self._pending.append(update)
            self._cond.notify_all()
            return update

    def push_message(self, user_id: int, text: str, chat_id: int | None = None, *,
                     first_name: str | None = None, username: str | None = None,
                     language_code: str | None = "en", date: int | None = None) -> dict:
        """Enqueue a private-chat text message from ``user_id``; a leading ``/cmd`` gets an entity."""
        chat_id = int(chat_id if chat_id is not None else user_id)
        with self._cond:
            user = self._user(user_id, first_name, username, language_code)
            chat = ({"id": chat_id, "type": "private", "first_name": user["first_name"]}
                    if chat_id > 0 else {"id": chat_id, "type": "group", "title": f"Group {chat_id}"})
            msg = {"message_id": self._next_message_id(chat_id), "from": user, "chat": chat,
                   "date": int(date if date is not None else time.time()), "text": text}
            m = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
            if m:
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": m.end()}]
            self._messages[(chat_id, msg["message_id"])] = msg
            return self.push_update({"message": msg})

    def push_command(self, user_id: int, command: str, args: str = "", chat_id: int | None = None,
                     **kw) -> dict:
        """Enqueue ``/command args`` (``command`` with or without the slash)."""
        text = "/" + command.lstrip("/") + (f" {args}" if args else "")
        return self.push_message(user_id, text, chat_id=chat_id, **kw)

    def push_callback(self, user_id: int, data: str, message_id: int, chat_id: int | None = None, *,
                      first_name: str | None = None) -> dict:
        """Enqueue a button press by ``user_id`` on message ``message_id`` of ``chat_id`` (default:
        the user's private chat)."""
        chat_id = int(chat_id if chat_id is not None else user_id)
        with self._cond:
            msg = self._messages.get((chat_id, int(message_id)))
            if msg is None:
                msg = {"message_id": int(message_id), "date": int(time.time()),
                       "chat": {"id": chat_id, "type": "private"}, "text": ""}
            cbq_id = str(next(self._cbq_ids))
            self._issued_callbacks.add(cbq_id)
            cbq = {"id": cbq_id, "from": self._user(user_id, first_name),
                   "message": dict(msg), "chat_instance": str(chat_id), "data": data}
            return self.push_update({"callback_query": cbq})

    # -- failure injection ---------------------------------------------------------------------
    def _inject(self, method: str, count: int, failure: dict, chat_id: int | None) -> None:
        failure["chat_id"] = None if chat_id is None else int(chat_id)
        with self._lock:
            for _ in range(count):
                self._failures[method.lower()].append(dict(failure))

    def fail_next(self, method: str, status: int = 500, retry_after: int | None = None,
                  count: int = 1, description: str | None = None, *, chat_id: int | None = None) -> None:
        """Answer the next ``count`` calls of ``method`` (``"*"``: any method but getUpdates; only
        those for ``chat_id`` if given) with HTTP ``status`` and Telegram's error shape (429 gets
        ``parameters.retry_after``, default 1)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self._inject(method, count, {"kind": "status", "status": int(status), "retry_after": retry_after,
                                     "description": description}, chat_id)

    def timeout_next(self, method: str, seconds: float, count: int = 1, process: bool = False, *,
                     chat_id: int | None = None) -> None:
        """Stall the next ``count`` calls of ``method`` for ``seconds``; then drop the connection
        without an answer (``process=False``: nothing happens, like a request lost on the way) or
        carry the call out and answer late (``process=True``: like a reply lost on the way)."""
        self._inject(method, count, {"kind": "timeout", "seconds": float(seconds),
                                     "process": bool(process)}, chat_id)

    def hang_next(self, method: str, seconds: float = 30.0, count: int = 1, *,
                  chat_id: int | None = None) -> None:
        """A hang: the call gets no answer for ``seconds`` (longer than the client waits), then
        the connection is dropped and nothing was done."""
        self.timeout_next(method, seconds, count, process=False, chat_id=chat_id)

    def malformed_next(self, method: str, kind: str = "result", count: int = 1, *,
                       chat_id: int | None = None) -> None:
        """Answer HTTP 200 with data a client cannot use. ``kind="result"``: the call is carried out
        and ``{"ok": true, "result": ...}`` comes back with a result of the wrong shape (a message
        went out, the answer does not say so); ``kind="body"``: the body is not JSON at all (an
        HTML page from a proxy) and nothing was done."""
        if kind not in ("result", "body"):
            raise ValueError("kind must be 'result' or 'body'")
        self._inject(method, count, {"kind": "malformed", "malformed": kind}, chat_id)

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def reset(self) -> None:
        """Forget calls, messages, injections and rate records (pending updates stay)."""
        with self._cond:
            pending = self._pending
            self._reset_state()
            self._pending = pending
            self._cond.notify_all()

    # -- request handling (called from server threads) -----------------------------------------
    def _take_failure(self, method: str, params: dict) -> dict | None:
        try:
            chat = int(params.get("chat_id"))
        except (TypeError, ValueError):
            chat = None
        with self._lock:
            for key in (method.lower(), "*"):
                if key == "*" and method.lower() == "getupdates":
                    continue
                q = self._failures.get(key)
                for f in list(q or ()):
                    if f.get("chat_id") is None or f["chat_id"] == chat:
                        q.remove(f)
                        return f
        return None

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def handle(self, token: str, method: str, params: dict) -> tuple[int, dict | None]:
        """Dispatch one Bot API call; return (HTTP status, body) — body None means drop the line."""
        now = time.monotonic()
        if token != self.token:
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            self._record(Call(method, params, 401, now, token))
            return 401, body
        failure = self._take_failure(method, params)
        if failure is not None and failure["kind"] == "status":
            status = failure["status"]
            self.injected[str(status)] += 1
            body = {"ok": False, "error_code": status,
                    "description": failure["description"] or _DESCRIPTIONS.get(status, "Error")}
            if status == 429:
                body["description"] = (failure["description"]
                                       or f"Too Many Requests: retry after {failure['retry_after']}")
                body["parameters"] = {"retry_after": failure["retry_after"]}
            self._record(Call(method, params, status, now, token))
            return status, body
        if failure is not None and failure.get("malformed") == "body":
            with self._lock:
                self.injected["malformed"] += 1
            self._record(Call(method, params, 200, now, token))
            return 200, _NOT_JSON
        if failure is not None and failure["kind"] == "timeout":
            with self._lock:
                self.injected["timeout"] += 1
            self._sleep(failure["seconds"])
            if not failure["process"]:
                self._record(Call(method, params, 0, time.monotonic(), token))
                return 0, None
        status, body = self._dispatch(method, params)
        self._record(Call(method, params, status, time.monotonic(), token,
                          body.get("result") if body else None))
        if failure is not None and failure["kind"] == "malformed":
            with self._lock:
                self.injected["malformed"] += 1
            if failure["malformed"] == "body":
                return 200, _NOT_JSON
            return 200, {"ok": True, "result": {"unexpected": "shape"} if status == 200 else None}
        return status, body

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)

    def _dispatch(self, method: str, p: dict) -> tuple[int, dict]:
        m = method.lower()
        handler = getattr(self, "_m_" + m, None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        try:
            return handler(p)
        except _ApiError as e:
            body = {"ok": False, "error_code": e.status, "description": e.description}
            if e.retry_after is not None:
                body["parameters"] = {"retry_after": e.retry_after}
            return e.status, body

    @staticmethod
    def _ok(result: Any) -> tuple[int, dict]:
        return 200, {"ok": True, "result": result}

    def _bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Botstack Test",
                "username": self.bot_username}

    def _m_getme(self, p):
        return self._ok({**self._bot_user(), "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False,
                         "can_connect_to_business": False, "has_main_web_app": False})

    def _m_getupdates(self, p):
        offset = int(p.get("offset") or 0)
        limit = max(1, min(100, int(p.get("limit") or 100)))
        timeout = max(0.0, float(p.get("timeout") or 0))
        deadline = time.monotonic() + timeout
        with self._cond:
            if offset > 0:
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
            while True:
                if offset < 0:
                    batch = self._pending[offset:][:limit]
                else:
                    batch = self._pending[:limit]
                if batch or self._stopping:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return self._ok(batch)

    def _check_limits(self, chat_id: int) -> None:
        if not self.enforce_limits:
            return
        now = time.monotonic()
        with self._lock:
            bucket = self._chat_buckets.get(chat_id)
            if bucket is None:
                bucket = self._chat_buckets[chat_id] = _Bucket(self.per_chat_limit, 1.0)
            # check both before taking either, so a refusal consumes nothing
            ob, cb = self._overall_bucket, bucket
            ob_tokens = min(ob.capacity, ob.tokens + (now - ob.stamp) * ob.rate)
            cb_tokens = min(cb.capacity, cb.tokens + (now - cb.stamp) * cb.rate)
            if ob_tokens >= 1 - self.limit_tolerance and cb_tokens >= 1 - self.limit_tolerance:
                ob.take(now, self.limit_tolerance)
                cb.take(now, self.limit_tolerance)
                return
            self.injected["limit429"] += 1
        raise _ApiError(429, "Too Many Requests: retry after 1", retry_after=1)

    def _new_message(self, p: dict, extra: dict) -> dict:
        chat_id = _chat_id(p)
        self._check_limits(chat_id)
        with self._cond:
            msg = {"message_id": self._next_message_id(chat_id), "from": self._bot_user(),
                   "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                   "date": int(time.time()), **extra}
            if isinstance(p.get("reply_markup"), dict) and p["reply_markup"].get("inline_keyboard"):
                msg["reply_markup"] = {"inline_keyboard": p["reply_markup"]["inline_keyboard"]}
            self._messages[(chat_id, msg["message_id"])] = msg
            self._sent.append(msg)
            self._send_times.append((time.monotonic(), chat_id))
            return dict(msg)

    def _m_sendmessage(self, p):
        text = p.get("text")
        _check_text(text)
        _check_markup(p.get("reply_markup"))
        extra = {"text": text}
        if p.get("entities"):
            extra["entities"] = p["entities"]
        return self._ok(self._new_message(p, extra))

    def _m_senddocument(self, p):
        doc = p.get("document")
        if not doc:
            raise _ApiError(400, "Bad Request: there is no document in the request")
        if isinstance(doc, dict):
            document = {"file_id": f"DOC{len(self._sent) + 1}", "file_unique_id": "u",
                        "file_name": doc.get("filename"), "mime_type": doc.get("content_type"),
                        "file_size": doc.get("size")}
        else:
            document = {"file_id": str(doc), "file_unique_id": "u"}
        if p.get("caption") and _utf16_len(str(p["caption"])) > CAPTION_LIMIT:
            raise _ApiError(400, "Bad Request: message caption is too long")
        _check_markup(p.get("reply_markup"))
        extra = {"document": document}
        if p.get("caption"):
            extra["caption"] = p["caption"]
        return self._ok(self._new_message(p, extra))

    def _edit(self, p: dict, text: str | None) -> tuple[int, dict]:
        if "inline_message_id" in p:
            return self._ok(True)
        key = (_chat_id(p), int(p.get("message_id") or 0))
        with self._cond:
            msg = self._messages.get(key)
            if msg is None:
                raise _ApiError(400, "Bad Request: message to edit not found")
            markup = p.get("reply_markup")
            new_markup = ({"inline_keyboard": markup["inline_keyboard"]}
                          if isinstance(markup, dict) and markup.get("inline_keyboard") else None)
            new_text = msg.get("text") if text is None else text
            if new_text == msg.get("text") and new_markup == msg.get("reply_markup"):
                raise _ApiError(400, "Bad Request: message is not modified: specified new message "
                                     "content and reply markup are exactly the same as a current "
                                     "content and reply markup of the message")
            msg = dict(msg, text=new_text, edit_date=int(time.time()))
            msg.pop("reply_markup", None)
            if new_markup:
                msg["reply_markup"] = new_markup
            self._messages[key] = msg
            return self._ok(dict(msg))

    def _m_editmessagetext(self, p):
        _check_text(p.get("text"))
        _check_markup(p.get("reply_markup"))
        return self._edit(p, p["text"])

    def _m_editmessagereplymarkup(self, p):
        _check_markup(p.get("reply_markup"))
        return self._edit(p, None)

    def _m_answercallbackquery(self, p):
        if str(p.get("callback_query_id")) not in self._issued_callbacks:
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                 "query ID is invalid")
        if p.get("text") is not None and _utf16_len(str(p["text"])) > CALLBACK_TEXT_LIMIT:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        with self._lock:
            self.answered_callbacks.append(dict(p))
        return self._ok(True)

    def _m_deletemessage(self, p):
        with self._lock:
            self._messages.pop((_chat_id(p), int(p.get("message_id") or 0)), None)
        return self._ok(True)

    def _m_setmycommands(self, p):
        _check_commands(p)
        with self._lock:
            self.commands = p.get("commands")
        return self._ok(True)

    def _m_getmycommands(self, p):
        return self._ok(getattr(self, "commands", None) or [])

    def _m_deletemycommands(self, p):
        return self._ok(True)

    def _m_deletewebhook(self, p):
        if p.get("drop_pending_updates"):
            with self._cond:
                self._pending.clear()
        return self._ok(True)

    def _m_setwebhook(self, p):
        return self._ok(True)

    def _m_getwebhookinfo(self, p):
        return self._ok({"url": "", "has_custom_certificate": False, "pending_update_count":
                         len(self._pending)})

    def _m_sendchataction(self, p):
        return self._ok(True)

    def _m_close(self, p):
        return self._ok(True)

    def _m_logout(self, p):
        return self._ok(True)

    # -- control API ---------------------------------------------------------------------------
    def control(self, verb: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        if path == "health":
            return 200, {"ok": True, "pending_updates": len(self._pending), "calls": len(self._calls)}
        if path == "updates" and verb == "POST":
            if not isinstance(body, dict):
                return 400, {"ok": False, "description": "body must be a JSON object"}
            if "message" in body and "from_id" in body["message"]:
                m = body["message"]
                upd = self.push_message(int(m["from_id"]), str(m.get("text", "")),
                                        chat_id=m.get("chat_id"),
                                        language_code=m.get("language_code", "en"))
            elif "callback" in body:
                c = body["callback"]
                upd = self.push_callback(int(c["from_id"]), str(c["data"]), int(c["message_id"]),
                                         chat_id=c.get("chat_id"))
            else:
                upd = self.push_update(body)
            return 200, {"ok": True, "update": upd}
        if path == "calls":
            since = int(query.get("since", 0))
            method = query.get("method", "").lower()
            out = [{"i": i, "method": c.method, "params": c.params, "status": c.status, "at": c.at}
                   for i, c in enumerate(self.calls) if i >= since
                   and (not method or c.method.lower() == method)]
            return 200, {"ok": True, "calls": out}
        if path == "sent":
            chat = query.get("chat_id")
            return 200, {"ok": True, "messages": self.sent_messages(int(chat) if chat else None)}
        if path == "fail" and verb == "POST":
            if not isinstance(body, dict) or "method" not in body:
                return 400, {"ok": False, "description": "need {method, status|timeout}"}
            chat = body.get("chat_id")
            if "timeout" in body:
                self.timeout_next(body["method"], float(body["timeout"]), int(body.get("count", 1)),
                                  bool(body.get("process", False)), chat_id=chat)
            elif "malformed" in body:
                self.malformed_next(body["method"], str(body["malformed"]), int(body.get("count", 1)),
                                    chat_id=chat)
            else:
                self.fail_next(body["method"], int(body.get("status", 500)), body.get("retry_after"),
                               int(body.get("count", 1)), chat_id=chat)
            return 200, {"ok": True}
        if path == "stats":
            return 200, {"ok": True, "rate": self.rate_stats(), "injected": dict(self.injected)}
        if path == "reset" and verb == "POST":
            self.reset()
            return 200, {"ok": True}
        return 404, {"ok": False, "description": "unknown control endpoint"}


_DESCRIPTIONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden: bot was blocked by the user",
                 404: "Not Found", 409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway",
                 503: "Service Unavailable", 504: "Gateway Timeout"}


_NOT_JSON = object()  # marker: answer 200 with an HTML page instead of JSON
MESSAGE_TEXT_LIMIT, CAPTION_LIMIT, CALLBACK_TEXT_LIMIT, CALLBACK_DATA_BYTES = 4096, 1024, 200, 64


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_text(text: Any) -> None:
    if not isinstance(text, str) or not text.strip():
        raise _ApiError(400, "Bad Request: message text is empty")
    if _utf16_len(text) > MESSAGE_TEXT_LIMIT:
        raise _ApiError(400, "Bad Request: message is too long")


def _check_markup(markup: Any) -> None:
    """Inline keyboards as Telegram checks them (other markups pass)."""
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or sum(len(r) for r in rows if isinstance(r, list)) > 100 \
            or any(not isinstance(r, list) or len(r) > 8 for r in rows):
        raise _ApiError(400, "Bad Request: too many buttons")
    for row in rows:
        for b in row:
            if not isinstance(b, dict) or not str(b.get("text", "")).strip():
                raise _ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
            data = b.get("callback_data")
            if data is not None and not (1 <= len(str(data).encode("utf-8")) <= CALLBACK_DATA_BYTES):
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _check_commands(p: dict) -> None:
    cmds = p.get("commands")
    if not isinstance(cmds, list) or len(cmds) > 100:
        raise _ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
    for c in cmds:
        if not isinstance(c, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
            raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        if not 1 <= len(str(c.get("description", "")).strip()) <= 256:
            raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
    lang = p.get("language_code")
    if lang not in (None, "") and not re.fullmatch(r"[a-z]{2}", str(lang)):
        raise _ApiError(400, "Bad Request: LANG_CODE_INVALID")


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


def _chat_id(p: dict) -> int:
    try:
        return int(p.get("chat_id"))
    except (TypeError, ValueError):
        raise _ApiError(400, "Bad Request: chat not found") from None


def _max_in_window(ts: Iterable[float], window: float) -> int:
    ts = sorted(ts)
    best, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def _parse_body(ctype: str, body: bytes) -> dict:
    ctype_l = (ctype or "").lower()
    params: dict[str, Any] = {}
    if not body:
        return params
    if ctype_l.startswith("application/json"):
        data = json.loads(body.decode("utf-8"))
        if isinstance(data, dict):
            params.update(data)
    elif ctype_l.startswith("multipart/form-data"):
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None or part.get_content_type() not in ("text/plain",):
                entry = {"filename": filename, "content_type": part.get_content_type(),
                         "size": len(payload)}
                try:
                    entry["content"] = payload.decode("utf-8")
                except UnicodeDecodeError:
                    entry["content"] = base64.b64encode(payload).decode("ascii")
                    entry["encoding"] = "base64"
                if filename is None and part.get_content_type() == "application/octet-stream":
                    # a plain field sent without a content type by some clients
                    params[name] = payload.decode("utf-8", "replace")
                else:
                    params[name] = entry
            else:
                params[name] = payload.decode(part.get_content_charset() or "utf-8")
    else:  # application/x-www-form-urlencoded or anything else
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


class _Handler(BaseHTTPRequestHandler):
    api: BotApiDouble
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on keep-alive connections
    wbufsize = -1                   # headers and body leave in one write (flushed per request)

    def log_message(self, fmt, *args):  # quiet: tests read the bot's logs, not ours
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, verb: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        path = url.path
        try:
            if path.startswith("/_control/"):
                body = json.loads(raw.decode("utf-8")) if raw.strip() else None
                status, out = self.api.control(verb, path[len("/_control/"):].strip("/"), query, body)
                self._reply(status, out)
                return
            m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)/?", path)
            if not m:
                self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                return
            token, method = m.group(1), m.group(2)
            params = dict(query)
            params.update(_parse_body(self.headers.get("Content-Type", ""), raw))
            params = {k: _coerce(k, v) for k, v in params.items()}
            status, out = self.api.handle(token, method, params)
            if out is _NOT_JSON:
                page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            if out is None:  # injected timeout: drop the connection without an answer
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            self._reply(status, out)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the double must not look like a hang
            try:
                self._reply(500, {"ok": False, "error_code": 500, "description": f"double error: {e!r}"})
            except OSError:
                self.close_connection = True

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run the Telegram Bot API double (see module docstring).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--token", default="123456:TEST-TOKEN")
    ap.add_argument("--enforce-limits", action="store_true")
    args = ap.parse_args(argv)
    api = BotApiDouble(token=args.token, host=args.host, port=args.port,
                       enforce_limits=args.enforce_limits)
    api.start()
    print(json.dumps({"event": "botapi_double_listening", "host": args.host, "port": api.port}),
          flush=True)
    stop = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    api.stop()


if __name__ == "__main__":
    main()
