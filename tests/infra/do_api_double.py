"""An HTTP double of the part of DigitalOcean's API the teardown steps ask (GET /v2/droplets/{id}),
answering as the real API does: 200 `{"droplet": {...}}` for a droplet that exists, 404
`{"id": "not_found", ...}` for one that does not, 401 `{"id": "Unauthorized", ...}` without the
right bearer token. Run as a script (the tests start it inside a network namespace):

    python3 do_api_double.py PORT STATE_FILE LOG_FILE

STATE_FILE (JSON, read at every request, so a test changes it between calls): `token`, `droplets`
(id -> status, e.g. "active", "off"), and optionally `answer`: [status, body] forced for every
request (an outage, a proxy's page). Each request is appended to LOG_FILE as a JSON line: method,
path, and whether it carried the right token."""
from __future__ import annotations

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NOT_FOUND = {"id": "not_found", "message": "The resource you were accessing could not be found."}
UNAUTHORIZED = {"id": "Unauthorized", "message": "Unable to authenticate you"}


def droplet_body(droplet_id: int, status: str) -> dict:
    return {"droplet": {"id": droplet_id, "name": f"botstack-dev-{droplet_id}", "memory": 1024, "vcpus": 1,
                        "disk": 25, "locked": False, "status": status, "created_at": "2026-11-01T10:00:00Z",
                        "tags": ["botstack-dev"], "volume_ids": [], "networks": {"v4": [], "v6": []},
                        "region": {"slug": "ams3"}, "size_slug": "s-1vcpu-1gb"}}


class Handler(BaseHTTPRequestHandler):
    state_file: Path
    log_file: Path

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        state = json.loads(self.state_file.read_text())
        authorised = self.headers.get("Authorization") == f"Bearer {state['token']}"
        with self.log_file.open("a") as log:
            log.write(json.dumps({"method": "GET", "path": self.path, "authorised": authorised}) + "\n")
        forced = state.get("answer")
        if forced:
            self._send(forced[0], forced[1])
        elif not authorised:
            self._send(401, UNAUTHORIZED)
        elif m := re.fullmatch(r"/v2/droplets/([0-9]+)", self.path):
            status = state["droplets"].get(m[1])
            self._send(200, droplet_body(int(m[1]), status)) if status else self._send(404, NOT_FOUND)
        else:
            self._send(404, NOT_FOUND)

    def _send(self, status: int, body: object) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def main(argv: list[str]) -> None:
    port, state_file, log_file = int(argv[0]), Path(argv[1]), Path(argv[2])
    Handler.state_file, Handler.log_file = state_file, log_file
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
