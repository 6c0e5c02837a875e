"""DigitalOcean's API for the CI scripts' tests: tests/infra/do_api_double.py, run on a free
loopback port, with its state (a JSON file) set and read from the test."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

DOUBLE = Path(__file__).resolve().parents[1] / "infra" / "do_api_double.py"
TOKEN = "TESTSECRET-do-token"


class DoApi:
    def __init__(self, d: Path):
        self.state_file, self.log_file = d / "do-api.json", d / "do-api.log"
        self.state_file.write_text(json.dumps({"token": TOKEN, "droplets": {}, "firewalls": []}))
        self.log_file.write_text("")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(DOUBLE), str(self.port), str(self.state_file),
                                      str(self.log_file)])
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the DigitalOcean API double did not start")

    @property
    def env(self) -> dict[str, str]:
        return {"DIGITALOCEAN_TOKEN": TOKEN, "DIGITALOCEAN_API_URL": self.url}

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def update(self, **changes: object) -> None:
        self.state_file.write_text(json.dumps({**self.state(), **changes}))

    def add_firewall(self, name: str, **extra: object) -> None:
        fw = {"id": f"00000000-0000-4000-8000-{len(self.state()['firewalls']):012d}", "name": name,
              "status": "succeeded", "created_at": "2026-12-05T03:00:00Z", "inbound_rules": [],
              "outbound_rules": [], "droplet_ids": [], "tags": [], "pending_changes": [], "polls": 0, **extra}
        self.update(firewalls=[*self.state()["firewalls"], fw])

    def firewall_names(self) -> list[str]:
        return [fw["name"] for fw in self.state()["firewalls"]]

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
