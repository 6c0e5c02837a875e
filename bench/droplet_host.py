"""The stand-in droplet, timed and weighed: boot to the first answer in chat, first deploy, redeploy,
and the whole host's memory at rest and during a backup, against the 1 GB droplet (and what it
would take to fit the $4 `s-1vcpu-512mb-10gb`).

    .venv/bin/python bench/droplet_host.py [--reminders 100000] [--keep]

It boots the same stand-in as tests/droplet (systemd + cloud-init from the program's rendered
user-data, its own dockerd, the deploy over SSH; docs/rehearsal.md) and needs root and a Docker
engine. Memory is read from the cgroups on this machine, every 0.2 s: the stand-in's own cgroup
(systemd, journald, sshd, fail2ban, dockerd, containerd and the shims, unattended-upgrades) and each
container of its inner engine (which this machine's cgroup v1 places beside it). "RSS" is
anonymous memory (rss + shmem); "usage" also counts the active page cache (what `docker stats`
shows). What a real droplet has on top and the stand-in cannot show: the kernel itself, the
DigitalOcean agents (monitoring and droplet agent) and Ubuntu's extra daemons.
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

from tests.droplet import remote  # noqa: E402
from tests.droplet.session import Session  # noqa: E402
from tests.rehearsal import images  # noqa: E402
from tests.support.docker_engine import Engine, cache_dir, docker  # noqa: E402

MIB = 1024 * 1024
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")


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


def measure(s: Session, reminders: int) -> dict:
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
    meter = Meter(s)
    fig["memory_at_rest_mib"], _ = during(meter, lambda: time.sleep(10))
    fig["memory_during_backup_mib"], secs = during(meter, lambda: s.compose(
        "exec", "-T", "backup", "botstack-backup", "run", timeout=600))
    fig["backup_s"] = round(secs, 1)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reminders", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true", help="leave the stand-in running")
    args = ap.parse_args()
    engine = Engine(cache_dir() / "engine").ensure()
    refs = {"python": images.ensure_python(), "postgres": images.ensure_postgres(17),
            "moto": images.ensure_moto(), "droplet": images.ensure_droplet_base()}
    work = Path(tempfile.mkdtemp(prefix="botstack-bench-droplet-"))
    s = Session(work, refs)
    try:
        s.boot()
        report(measure(s, args.reminders))
    finally:
        if not args.keep:
            left = s.teardown()
            engine.stop()
            if left:
                print(f"left behind: {left}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
