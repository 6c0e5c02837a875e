"""Telling people: Telegram alerts to the admins, and the `backup_runs` table for the bot's /status."""
from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from typing import List, Optional

import psycopg

from .config import Config

log = logging.getLogger("botstack_backup")

MAX_TEXT = 4000  # Telegram's limit is 4096 characters


class Alerter:
    def __init__(self, cfg: Config):
        self.token = cfg.telegram_token
        self.base = cfg.telegram_api_base_url.rstrip("/")
        self.admin_ids = list(cfg.admin_ids)

    def send(self, text: str) -> int:
        """Send `text` to every admin; returns how many got it. Never raises, never logs the URL."""
        if not self.token or not self.admin_ids:
            log.warning("alert not sent (TELEGRAM_BOT_TOKEN or ADMIN_USER_IDS not set): %s", text)
            return 0
        url = f"{self.base}/bot{self.token}/sendMessage"
        sent = 0
        for chat_id in self.admin_ids:
            body = json.dumps({"chat_id": chat_id, "text": text[:MAX_TEXT],
                               "disable_web_page_preview": True}).encode()
            req = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=15) as resp:
                    resp.read()
                sent += 1
            except urllib.error.HTTPError as exc:
                log.error("alert to admin %s refused by the Bot API: HTTP %s", chat_id, exc.code)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                log.error("alert to admin %s not delivered: %s", chat_id, type(reason).__name__)
        return sent


class Recorder:
    """INSERTs into backup_runs (bot/migrations/0002_backup_runs.sql). Never raises."""

    def __init__(self, database_url: str):
        self.url = database_url

    def record(self, kind: str, started_at: dt.datetime, ok: bool, *, object_key: Optional[str] = None,
               size_bytes: Optional[int] = None, uploaded: Optional[bool] = None,
               detail: str = "") -> bool:
        if not self.url:
            log.warning("backup_runs: not recorded (DATABASE_URL not set)")
            return False
        try:
            with psycopg.connect(self.url, connect_timeout=10) as conn:
                conn.execute(
                    "INSERT INTO backup_runs (kind, started_at, finished_at, ok, object_key, size_bytes,"
                    " uploaded, detail) VALUES (%s, %s, now(), %s, %s, %s, %s, %s)",
                    (kind, started_at, ok, object_key, size_bytes, uploaded, detail[:2000]))
            return True
        except psycopg.errors.UndefinedTable:
            log.error("backup_runs: table missing (the bot's migration 0002 has not run yet); "
                      "%s run not recorded", kind)
        except psycopg.Error as exc:
            log.error("backup_runs: could not record the %s run: %s", kind,
                      str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return False

    def uploaded_keys(self, limit: int = 1000) -> List[str]:
        """Object keys of the latest backups recorded as having reached the bucket (backups and
        backlog uploads); empty when there is no database or no table. Never raises."""
        if not self.url:
            return []
        try:
            with psycopg.connect(self.url, connect_timeout=10) as conn:
                rows = conn.execute(
                    "SELECT object_key FROM backup_runs WHERE ok AND uploaded AND object_key IS NOT NULL"
                    " AND kind IN ('backup', 'upload') ORDER BY id DESC LIMIT %s", (limit,)).fetchall()
        except psycopg.Error as exc:
            log.warning("backup_runs: cannot read the recorded uploads: %s", type(exc).__name__)
            return []
        return [r[0] for r in rows if isinstance(r[0], str)]
