"""The stand-in droplet, timed and weighed: boot to the first answer in chat, first deploy, redeploy,
and the whole host's memory at rest and during a backup, against the 1 GB droplet (and what it
would take to fit the $4 `s-1vcpu-512mb-10gb`).

    .venv/bin/python bench/droplet_host.py [--reminders 100000] [--observability] [--keep]

It boots the same stand-in as tests/droplet (systemd + cloud-init from the program's rendered
user-data, its own dockerd, the deploy over SSH; docs/rehearsal.md) and needs root and a Docker
engine. Memory is read from the cgroups on this machine, every 0.2 s: the stand-in's own cgroup
(systemd, journald, sshd, fail2ban, dockerd, containerd and the shims, unattended-upgrades) and each
container of its inner engine (which this machine's cgroup v1 places beside it). "RSS" is
anonymous memory (rss + shmem); "usage" also counts the active page cache (what `docker stats`
shows). What a real droplet has on top and the stand-in cannot show: the kernel itself, the
DigitalOcean agents (monitoring and droplet agent) and Ubuntu's extra daemons.

`--observability` deploys with the stack's `observability: true` (the compose profile: Prometheus and
node-exporter, TEST-ONLY stand-ins built from Debian's packages, docs/rehearsal.md), checks from
inside the stand-in that Prometheus answers on 127.0.0.1:9090 and scrapes every target, and adds
Prometheus' own account of its memory (`process_resident_memory_bytes`, the Go heap, its series) at
rest and after the backup, beside its cgroup's figures.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infra import memory  # noqa: E402
from tests.droplet import remote  # noqa: E402
from tests.droplet.session import Session  # noqa: E402
from tests.rehearsal import images  # noqa: E402
from tests.support.docker_engine import Engine, cache_dir, docker  # noqa: E402

MIB = 1024 * 1024
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")
PROMETHEUS = "http://127.0.0.1:9090"  # published on the stand-in's 127.0.0.1 only (compose.yml)
PROMETHEUS_JOBS = {"bot", "backup", "node", "prometheus"}  # compose/observability/prometheus.yml
# Prometheus' own figures read from its /metrics (name: how it is reported)
PROMETHEUS_SELF = {"process_resident_memory_bytes": "rss_mib", "go_memstats_heap_inuse_bytes": "heap_inuse_mib",
                   "go_memstats_heap_alloc_bytes": "heap_alloc_mib", "prometheus_tsdb_head_series": "head_series"}


def cgroup_dir(container_id: str) -> Path:
    hits = [p for p in CGROUP_MEMORY.rglob(f"*{container_id}*") if p.is_dir()]
    assert hits, f"no memory cgroup for container {container_id[:12]}"
    return min(hits, key=lambda p: len(p.parts))


def memory_of(path: Path) -> dict[str, float]:
    stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
    rss = int(stat.get("total_rss", 0)) + int(stat.get("total_shmem", 0))
    usage = int((path / "memory.usage_in_bytes").read_text()) - int(stat.get("total_inactive_file", 0))
    return {"rss": rss / MIB, "usage": usage / MIB}


class Meter:
    """The stand-in's cgroup and its inner containers' cgroups, by name."""

    def __init__(self, s: Session):
        outer = docker("inspect", "--format", "{{.Id}}", s.d.name).stdout.strip()
        self.groups = {"host (systemd, sshd, fail2ban, dockerd, containerd, shims)": cgroup_dir(outer)}
        rows = s.d.exec("docker", "ps", "--no-trunc", "--format",
                        "{{.ID}} {{.Label \"com.docker.compose.service\"}}").stdout.split("\n")
        for row in filter(None, rows):
            cid, service = row.split()
            self.groups[service] = cgroup_dir(cid)

    def sample(self) -> dict[str, dict[str, float]]:
        out = {name: memory_of(path) for name, path in self.groups.items()}
        out["total"] = {k: sum(v[k] for v in out.values()) for k in ("rss", "usage")}
        return out


def peak(samples: list[dict]) -> dict[str, dict[str, float]]:
    return {name: {k: round(max(s[name][k] for s in samples), 1) for k in ("rss", "usage")}
            for name in samples[0]}


def during(meter: Meter, action) -> tuple[dict, float]:
    samples: list[dict] = [meter.sample()]
    done = threading.Event()

    def loop():
        while not done.is_set():
            samples.append(meter.sample())
            time.sleep(0.2)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    t0 = time.monotonic()
    try:
        action()
    finally:
        done.set()
        t.join()
    return peak(samples), time.monotonic() - t0


def get_inside(s: Session, url: str) -> str:
    """GET `url` from inside the stand-in (where Prometheus' published port is)."""
    script = ("import sys, urllib.request\n"
              "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())")
    return s.d.exec("python3", "-c", script, url, timeout=60).stdout


def prometheus_targets(s: Session) -> list[dict]:
    doc = json.loads(get_inside(s, f"{PROMETHEUS}/api/v1/targets?state=active"))
    return [{"job": t["labels"]["job"], "health": t["health"], "error": t.get("lastError", "")}
            for t in doc["data"]["activeTargets"]]


def wait_targets_up(s: Session, timeout: float = 150) -> list[dict]:
    """Until Prometheus has scraped every job of its config successfully (the first scrape of each
    comes within one 30 s interval of its start)."""
    deadline = time.monotonic() + timeout
    targets: list[dict] = []
    while time.monotonic() < deadline:
        try:
            targets = prometheus_targets(s)
        except AssertionError:  # not answering yet
            targets = []
        if {t["job"] for t in targets} == PROMETHEUS_JOBS and all(t["health"] == "up" for t in targets):
            return targets
        time.sleep(2)
    raise AssertionError(f"Prometheus' targets not all up within {timeout:.0f}s: {targets}")


def prometheus_self(s: Session) -> dict[str, float]:
    """Prometheus' own memory and series, from its /metrics."""
    out: dict[str, float] = {}
    for line in get_inside(s, f"{PROMETHEUS}/metrics").splitlines():
        name, _, value = line.partition(" ")
        if name in PROMETHEUS_SELF:
            v = float(value)
            out[PROMETHEUS_SELF[name]] = int(v) if name.endswith("_series") else round(v / MIB, 1)
    assert len(out) == len(PROMETHEUS_SELF), f"Prometheus' /metrics lacks some of {list(PROMETHEUS_SELF)}: {out}"
    return out


def resident_by_job(s: Session) -> dict[str, float]:
    """Each scraped process' own `process_resident_memory_bytes` (MiB), as Prometheus last scraped it:
    resident pages include the mapped binary and files, which the cgroups count as page cache."""
    return {r["metric"]["job"]: round(float(r["value"][1]) / MIB, 1)
            for r in query(s, "process_resident_memory_bytes")}


def query(s: Session, promql: str) -> list[dict]:
    from urllib.parse import quote
    doc = json.loads(get_inside(s, f"{PROMETHEUS}/api/v1/query?query={quote(promql)}"))
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def check_profile(s: Session) -> None:
    """Prometheus answers on the stand-in's 127.0.0.1:9090 and scrapes all its targets; the versions
    that actually ran (the stand-ins are Debian's, not the pinned ones: docs/rehearsal.md)."""
    fig = s.figures
    fig["prometheus_targets"] = wait_targets_up(s)
    fig["prometheus_version"] = json.loads(get_inside(s, f"{PROMETHEUS}/api/v1/status/buildinfo"))["data"]["version"]
    node = query(s, "node_exporter_build_info")
    assert node, "Prometheus holds no node_exporter_build_info: node-exporter not scraped"
    fig["node_exporter_version"] = node[0]["metric"]["version"]


def measure(s: Session, reminders: int, observability: bool) -> dict:
    fig = s.figures
    t0 = time.monotonic()
    fig["first_deploy_steps_s"] = s.deploy(s.steps1)
    fig["first_deploy_s"] = round(time.monotonic() - t0, 1)
    s.ask("/start", "")
    fig["boot_to_first_answer_s"] = round(time.monotonic() - s.boot_started, 1)
    def bump_version(repo: Path) -> None:
        init = repo / "bot/__init__.py"
        init.write_text(init.read_text().replace('__version__ = "', '__version__ = "bench-'))

    run2, repo2 = s.program("release-2", bump_version)
    t0 = time.monotonic()
    fig["redeploy_steps_s"] = s.deploy(remote.changed(s.steps1, remote.steps_of(run2, repo2)))
    fig["redeploy_s"] = round(time.monotonic() - t0, 1)
    s.psql(f"INSERT INTO reminders (user_id, chat_id, text, tz, due_at) SELECT {s.user_id}, "
           f"{s.user_id}, 'bench reminder ' || i, 'UTC', now() + interval '30 days' "
           f"FROM generate_series(1, {reminders}) i")
    time.sleep(20)  # settle: the bot's and the backup job's first minutes are behind them
    if observability:
        check_profile(s)
    meter = Meter(s)
    fig["memory_at_rest_mib"], _ = during(meter, lambda: time.sleep(10))
    if observability:
        fig["prometheus_self_at_rest"] = prometheus_self(s)
        fig["resident_by_job_at_rest_mib"] = resident_by_job(s)
    fig["memory_during_backup_mib"], secs = during(meter, lambda: s.compose(
        "exec", "-T", "backup", "botstack-backup", "run", timeout=600))
    fig["backup_s"] = round(secs, 1)
    if observability:
        fig["prometheus_self_after_backup"] = prometheus_self(s)
        fig["resident_by_job_after_backup_mib"] = resident_by_job(s)
        fig["prometheus_targets_after_backup"] = prometheus_targets(s)
    fig["reminders_stored"] = int(s.psql("SELECT count(*) FROM reminders"))
    fig["database_size"] = s.psql("SELECT pg_size_pretty(pg_database_size('botstack'))")
    return fig


def report(fig: dict) -> None:
    print(json.dumps(fig, indent=2))
    rest, peak_ = fig["memory_at_rest_mib"], fig["memory_during_backup_mib"]
    print("\nmemory, MiB (anonymous RSS / usage incl. active cache): at rest | peak during a backup")
    for name in rest:
        print(f"  {name:58s} {rest[name]['rss']:7.1f} / {rest[name]['usage']:7.1f} | "
              f"{peak_[name]['rss']:7.1f} / {peak_[name]['usage']:7.1f}")
    total = max(rest["total"]["rss"], peak_["total"]["rss"])
    print(f"\npeak anonymous memory {total:.0f} MiB = {100 * total / 1024:.0f} % of the 1 GB droplet's "
          f"1024 MiB, {100 * total / 512:.0f} % of the 512 MB droplet's, before the kernel, the "
          "DigitalOcean agents and Ubuntu's own daemons (not in the stand-in); the page cache in "
          "'usage' is reclaimable")
    if fig.get("observability"):
        for when in ("at_rest", "after_backup"):
            me = fig[f"prometheus_self_{when}"]
            print(f"Prometheus {fig['prometheus_version']} by its own /metrics, {when.replace('_', ' ')}: "
                  f"RSS {me['rss_mib']} MiB, Go heap in use {me['heap_inuse_mib']} MiB "
                  f"(allocated {me['heap_alloc_mib']} MiB), {me['head_series']} series in the head")
        print(f"resident memory by each process' own metric (MiB, incl. its mapped binary), at rest: "
              f"{fig['resident_by_job_at_rest_mib']}; after the backup: {fig['resident_by_job_after_backup_mib']}")
    print(f"the memory rule's sum of limits for this deploy: {fig['memory_rule_limits_mib']} MiB of 1024")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reminders", type=int, default=100_000)
    ap.add_argument("--observability", action="store_true",
                    help="deploy with the stack's observability profile (Prometheus, node-exporter)")
    ap.add_argument("--keep", action="store_true", help="leave the stand-in running")
    args = ap.parse_args()
    engine = Engine(cache_dir() / "engine").ensure()
    refs = images.ensure_droplet_run(args.observability)
    work = Path(tempfile.mkdtemp(prefix="botstack-bench-droplet-"))
    s = Session(work, refs, config={"observability": args.observability})
    try:
        s.boot()
        s.figures["observability"] = args.observability
        s.figures["memory_rule_limits_mib"] = memory.compose_memory_mib(
            REPO / "compose" / "compose.yml", managed_db=False, observability=args.observability)
        report(measure(s, args.reminders, args.observability))
    finally:
        if not args.keep:
            left = s.teardown()
            engine.stop()
            if left:
                print(f"left behind: {left}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
