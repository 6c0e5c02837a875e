"""Memory of the observability profile's processes, run locally (Debian's packages): Prometheus with
the project's prometheus.yml and rules scraping the real bot, the backup job's metrics and
node_exporter; beside them Debian's postgres_exporter, which the profile does not run (the backup
job reports PostgreSQL's figures itself), for the comparison.

    .venv/bin/python bench/observability_memory.py [--seconds 180] [--interval 30s]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot_common import REPO, BotApiDouble, machine, start_bot, stop

sys.path[:0] = [REPO, os.path.join(REPO, "compose", "backup")]
from botstack_backup import metrics as backup_metrics  # noqa: E402
from botstack_backup.config import Config  # noqa: E402
from botstack_backup.schedule import Scheduler  # noqa: E402
from botstack_backup.tool import BackupTool  # noqa: E402
from tests.observability.conftest import free_port  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.observability.realstack import NodeExporter, Prometheus, config, rss_mib  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--interval", default="30s", help="scrape and rule interval (the profile's: 30s)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="obs-mem-"))
    pg = PostgresServer.start_new()
    api = BotApiDouble("123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").start()
    ports = {n: free_port() for n in ("bot", "backup", "node", "prometheus", "pg")}
    procs = []
    try:
        from bot import db
        url = pg.create_database("obsmem")
        db.migrate(url)
        bot = start_bot(api, url, "1", str(work / "bot.log"), BOT_METRICS_PORT=ports["bot"])
        procs.append(bot)
        tool = BackupTool(Config(database_url=url, backup_dir=str(work / "backups")))
        server = backup_metrics.serve(Scheduler(tool).metrics, ports["backup"], "127.0.0.1")
        node = NodeExporter(ports["node"])
        pgexp = subprocess.Popen([shutil.which("prometheus-postgres-exporter"),
                                  f"--web.listen-address=127.0.0.1:{ports['pg']}"],
                                 env={**os.environ, "DATA_SOURCE_NAME": url},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cfg = config({"bot": f"127.0.0.1:{ports['bot']}", "backup": f"127.0.0.1:{ports['backup']}",
                      "node": f"127.0.0.1:{ports['node']}", "prometheus": f"127.0.0.1:{ports['prometheus']}"},
                     alert_target=f"127.0.0.1:{ports['backup']}", interval=a.interval)
        cfg["scrape_configs"].append({"job_name": "postgres-exporter (comparison only)",
                                      "static_configs": [{"targets": [f"127.0.0.1:{ports['pg']}"]}]})
        prom = Prometheus(work, ports["prometheus"], cfg)
        prom.wait_ready()
        time.sleep(a.seconds)  # a benchmark: it measures what a while of scraping costs
        series = prom.query("prometheus_tsdb_head_series")[0]["value"][1]
        by_job = {r["metric"]["job"]: r["value"][1] for r in prom.query("count by (job) ({__name__=~'.+'})")}
        print(f"{machine()}; {a.seconds} s of scraping every {a.interval}")
        print(f"  prometheus          {rss_mib(prom.proc.pid):6.1f} MiB RSS, {series} series in the head ({by_job})")
        print(f"  node_exporter       {rss_mib(node.proc.pid):6.1f} MiB RSS")
        print(f"  postgres_exporter   {rss_mib(pgexp.pid):6.1f} MiB RSS (not run by the profile)")
        print(f"  bot (metrics on)    {rss_mib(bot.pid):6.1f} MiB RSS")
        prom.stop()
        node.stop()
        pgexp.terminate()
        server.shutdown()
    finally:
        for p in procs:
            stop(p)
        api.stop()
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
