"""Dead-man's switch pings (healthchecks.io and its self-hosted version speak the same protocol).

HEALTHCHECK_BACKUP_URL is a check's ping URL. Every backup run pings `<url>/start` when it starts,
the URL itself when it succeeds, and `<url>/<exit status>` when it fails (the suffix goes on the
URL's path; its query, e.g. `?create=1`, is kept). Unset or empty: no pings at all. A ping never
fails the backup, and its URL (it holds the ping key) is never logged.
"""
from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("botstack_backup")

TIMEOUT = 10.0
MAX_BODY = 10_000  # healthchecks.io keeps the first 10 kB of a ping's body


class Pinger:
    def __init__(self, url: str, timeout: float = TIMEOUT):
        self.url = (url or "").strip()
        self.timeout = timeout
        self._usable = urlsplit(self.url).scheme in ("http", "https") and bool(urlsplit(self.url).netloc)
        if self.url and not self._usable:
            log.error("HEALTHCHECK_BACKUP_URL is not an http(s) URL: no healthcheck pings")

    def with_suffix(self, suffix: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + suffix)) if suffix else self.url

    def start(self) -> bool:
        return self._ping("start", "start")

    def success(self, detail: str = "") -> bool:
        return self._ping("", "success", detail)

    def fail(self, exit_status: int, detail: str = "") -> bool:
        return self._ping(str(exit_status), f"failure (exit {exit_status})", detail)

    def _ping(self, suffix: str, what: str, detail: str = "") -> bool:
        if not self._usable:
            return False
        req = urllib.request.Request(self.with_suffix(suffix), data=detail.encode("utf-8")[:MAX_BODY],
                                     method="POST", headers={"Content-Type": "text/plain; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read(1024)
            return True
        except urllib.error.HTTPError as exc:
            log.error("healthcheck ping (%s) refused: HTTP %s", what, exc.code)
        except (urllib.error.URLError, OSError, socket.timeout) as exc:
            reason = getattr(exc, "reason", exc)
            log.error("healthcheck ping (%s) not delivered: %s", what, type(reason).__name__)
        return False
