"""An HTTP double of the parts of DigitalOcean's API that the teardown steps and
scripts/ci-ssh-access call, answering as the real API does (status codes, bodies, errors).
Run as a script (the teardown tests start it inside a network namespace):

    python3 do_api_double.py PORT STATE_FILE LOG_FILE

- GET /v2/droplets/{id}: 200 `{"droplet": {...}}`, or 404 `{"id": "not_found", ...}`
- GET /v2/firewalls?per_page=N&page=P: `{"firewalls": [...], "links": {"pages": {"next": <absolute
  URL on api.digitalocean.com>}}, "meta": {"total": T}}`, N capped at 200 (or the state's page_size)
- POST /v2/firewalls: 202 `{"firewall": {..., "status": "waiting"}}`; 422 `unprocessable_entity`
  for a body the API refuses (no name, a bad name, no rule); the firewall turns `succeeded` after
  the state's `apply_after` GETs (default 1)
- GET /v2/firewalls/{id}: 200 `{"firewall": {...}}` or 404; DELETE: 204 (no body) or 404
- every call without the right bearer token: 401 `{"id": "Unauthorized", ...}`

STATE_FILE (JSON, read at every request and written back after a change): `token`, `droplets`
(id -> status), `firewalls` (a list, as the API shows them), optionally `answer`: [status, body]
forced for every request (an outage, a proxy's page), `page_size`, `apply_after`. Each request is
appended to LOG_FILE as a JSON line: method, path, whether it carried the right token, its body.
"""
from __future__ import annotations

import json
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

NOT_FOUND = {"id": "not_found", "message": "The resource you were accessing could not be found."}
UNAUTHORIZED = {"id": "Unauthorized", "message": "Unable to authenticate you"}
FIREWALL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_]{0,254}")


def droplet_body(droplet_id: int, status: str) -> dict:
    return {"droplet": {"id": droplet_id, "name": f"botstack-dev-{droplet_id}", "memory": 1024, "vcpus": 1,
                        "disk": 25, "locked": False, "status": status, "created_at": "2026-11-01T10:00:00Z",
                        "tags": ["botstack-dev"], "volume_ids": [], "networks": {"v4": [], "v6": []},
                        "region": {"slug": "ams3"}, "size_slug": "s-1vcpu-1gb"}}


def unprocessable(message: str) -> tuple[int, dict]:
    return 422, {"id": "unprocessable_entity", "message": message}


class Handler(BaseHTTPRequestHandler):
    state_file: Path
    log_file: Path

    def _handle(self, method: str) -> None:
        state = json.loads(self.state_file.read_text())
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        authorised = self.headers.get("Authorization") == f"Bearer {state['token']}"
        body = json.loads(raw) if raw else None
        with self.log_file.open("a") as log:
            log.write(json.dumps({"method": method, "path": self.path, "authorised": authorised,
                                  **({"body": body} if body is not None else {})}) + "\n")
        if state.get("answer"):
            status, answer = state["answer"]
        elif not authorised:
            status, answer = 401, UNAUTHORIZED
        else:
            status, answer = self._route(method, state, body)
            self.state_file.write_text(json.dumps(state))
        self._send(status, answer)

    def _route(self, method: str, state: dict, body: object) -> tuple[int, object]:
        url = urlparse(self.path)
        fws: list[dict] = state.setdefault("firewalls", [])
        if method == "GET" and (m := re.fullmatch(r"/v2/droplets/([0-9]+)", url.path)):
            status = state.get("droplets", {}).get(m[1])
            return (200, droplet_body(int(m[1]), status)) if status else (404, NOT_FOUND)
        if url.path == "/v2/firewalls" and method == "GET":
            q = parse_qs(url.query)
            per_page = min(int(q.get("per_page", ["20"])[0]), 200, state.get("page_size", 200))
            page = int(q.get("page", ["1"])[0])
            chunk = [_shown(fw) for fw in fws[(page - 1) * per_page: page * per_page]]
            links: dict = {}
            if page * per_page < len(fws):
                links = {"pages": {"next": f"https://api.digitalocean.com/v2/firewalls?page={page + 1}"
                                           f"&per_page={per_page}"}}
            return 200, {"firewalls": chunk, "links": links, "meta": {"total": len(fws)}}
        if url.path == "/v2/firewalls" and method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                return unprocessable("name is required")
            if not FIREWALL_NAME.fullmatch(body["name"]):
                return unprocessable("name must contain only letters, digits, '.', '-' and '_'")
            if not (body.get("inbound_rules") or body.get("outbound_rules")):
                return unprocessable("at least one rule is required")
            fw = {"id": str(uuid.uuid4()), "name": body["name"], "status": "waiting",
                  "created_at": "2026-12-06T03:00:00Z", "inbound_rules": body.get("inbound_rules") or [],
                  "outbound_rules": body.get("outbound_rules") or [], "droplet_ids": body.get("droplet_ids") or [],
                  "tags": body.get("tags") or [], "pending_changes": [], "polls": 0}
            fws.append(fw)
            return 202, {"firewall": _shown(fw)}
        if m := re.fullmatch(r"/v2/firewalls/([0-9a-f-]+)", url.path):
            found = [fw for fw in fws if fw["id"] == m[1]]
            if not found:
                return 404, NOT_FOUND
            fw = found[0]
            if method == "DELETE":
                fws.remove(fw)
                return 204, None
            fw["polls"] += 1
            if fw["status"] == "waiting" and fw["polls"] >= state.get("apply_after", 1):
                fw["status"] = state.get("apply_to", "succeeded")
            return 200, {"firewall": _shown(fw)}
        return 404, NOT_FOUND

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _send(self, status: int, body: object) -> None:
        data = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _shown(fw: dict) -> dict:
    return {k: v for k, v in fw.items() if k != "polls"}


def main(argv: list[str]) -> None:
    port, state_file, log_file = int(argv[0]), Path(argv[1]), Path(argv[2])
    Handler.state_file, Handler.log_file = state_file, log_file
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
