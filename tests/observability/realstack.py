"""A real Prometheus (Debian's) running the project's own prometheus.yml and alert rules, its
targets pointed at local processes: the real `python -m bot`, the backup job's metrics server and
Debian's node_exporter. Used by test_real_prometheus.py and bench/observability_memory.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_YML = REPO / "compose" / "observability" / "prometheus.yml"
RULES = REPO / "compose" / "observability" / "rules" / "botstack.yml"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def config(targets: dict[str, str], alert_target: str, extra_rules: list[str] = (), interval: str = "1s") -> dict:
    """The project's prometheus.yml with each job's target replaced, faster intervals and the rule
    files at their paths in the repository."""
    cfg = yaml.safe_load(PROMETHEUS_YML.read_text())
    cfg["global"].update(scrape_interval=interval, evaluation_interval=interval, scrape_timeout=interval)
    cfg["rule_files"] = [str(RULES), *extra_rules]
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert set(jobs) == set(targets), f"jobs {sorted(jobs)} vs targets {sorted(targets)}"
    for name, target in targets.items():
        jobs[name]["static_configs"] = [{"targets": [target]}]
    cfg["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alert_target]}]
    return cfg


class Prometheus:
    def __init__(self, workdir: Path, port: int, cfg: dict):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(cfg))
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={path}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited; see prometheus.log"
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("prometheus not ready")

    def query(self, expr: str) -> list:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 60) -> list:
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self.query(expr)
            except (OSError, AssertionError):
                result = []
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class NodeExporter:
    def __init__(self, port: int):
        self.proc = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def screenshot(url: str, out: Path, size: str = "1400,900") -> Path:
    """Headless Chromium's picture of `url` (Prometheus' own graph page)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    profile = out.parent / f".chromium-{os.getpid()}"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", f"--window-size={size}", "--hide-scrollbars",
                    "--virtual-time-budget=15000", f"--screenshot={out}", url],
                   capture_output=True, timeout=120, check=True)
    shutil.rmtree(profile, ignore_errors=True)
    return out
