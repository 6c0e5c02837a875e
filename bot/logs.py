"""Structured logging: one JSON line per event on stdout, with every secret redacted.

The redaction sits in the formatter of the only handler (on the root logger), so it covers every
library's records (httpx prints request URLs, which contain ``/bot<token>/``), exception tracebacks,
and uncaught exceptions (routed through ``sys.excepthook``)."""
from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time

_TOKEN_RE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,}")  # anything shaped like a bot token
_URL_BOT_RE = re.compile(r"/bot[^/\s'\"]+/")
_PW_RE = re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@")
_secrets: list[str] = []


def add_secret(value: str | None) -> None:
    if value and value not in _secrets and len(value) >= 4:
        _secrets.append(value)


def redact(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "<redacted>")
    text = _URL_BOT_RE.sub("/bot<redacted>/", text)
    text = _TOKEN_RE.sub("<redacted>", text)
    return _PW_RE.sub(r"\1<redacted>@", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name}
        event = getattr(record, "event", None)
        if event:
            out["event"] = event
        try:
            out["msg"] = record.getMessage()
        except Exception:  # a bad format string must not kill logging
            out["msg"] = str(record.msg)
        fields = getattr(record, "fields", None)
        if fields:
            for k, v in fields.items():
                out.setdefault(k, v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, ensure_ascii=False, default=str))


class _Events(logging.LoggerAdapter):
    def event(self, event: str, level: int = logging.INFO, msg: str = "", exc_info=None, **fields):
        self.logger.log(level, msg or event, extra={"event": event, "fields": fields},
                        exc_info=exc_info)


def get(name: str = "bot") -> _Events:
    return _Events(logging.getLogger(name), {})


_configured = threading.Lock()


def setup(level: int = logging.INFO, stream=None) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # Request-level chatter: httpx logs every URL (with the token) at INFO. Redaction would cover
    # it, but one line per request is noise, so these stay at WARNING.
    for name in ("httpx", "httpcore", "telegram.request", "telegram._bot", "telegram.ext.ExtBot",
                 "apscheduler", "psycopg.pool", "hpack"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)

    def hook(exc_type, exc, tb):
        logging.getLogger("bot").critical("uncaught exception", exc_info=(exc_type, exc, tb),
                                          extra={"event": "crash"})
    sys.excepthook = hook
    threading.excepthook = lambda a: hook(a.exc_type, a.exc_value, a.exc_traceback)
