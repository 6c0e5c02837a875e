"""A memory cgroup of its own for one benchmarked program: the peak of ALL its processes.

A container's memory limit applies to everything in its cgroup: python, pg_dump, gpg and the
gpg-agent that gpg starts (which leaves the process tree but not the cgroup). Sampling /proc of a
process tree misses the agent and double-counts shared pages; the cgroup's own counters do not.
Works with cgroup v2 (memory.peak, memory.stat anon) and v1 (memory.max_usage_in_bytes,
memory.stat total_rss); needs root. `MemoryCgroup.create()` returns None where neither is usable.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from typing import Optional

V2_ROOT = "/sys/fs/cgroup"
V1_ROOT = "/sys/fs/cgroup/memory"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _stat(path: str) -> dict:
    return {k: int(v) for k, v in (line.split() for line in _read(path).splitlines() if line.strip())}


class MemoryCgroup:
    def __init__(self, path: str, v2: bool):
        self.path, self.v2 = path, v2
        self.anon_peak = 0
        self._sampling = False
        self._sampler: Optional[threading.Thread] = None

    @classmethod
    def create(cls, limit_bytes: int) -> Optional["MemoryCgroup"]:
        name = f"botstack-bench-{uuid.uuid4().hex[:8]}"
        try:
            if "memory" in _read(os.path.join(V2_ROOT, "cgroup.controllers")).split():
                path, v2 = os.path.join(V2_ROOT, name), True
            elif os.path.isdir(V1_ROOT):
                path, v2 = os.path.join(V1_ROOT, name), False
            else:
                return None
        except OSError:
            if not os.path.isdir(V1_ROOT):
                return None
            path, v2 = os.path.join(V1_ROOT, name), False
        try:
            if v2 and "memory" not in _read(os.path.join(V2_ROOT, "cgroup.subtree_control")).split():
                with open(os.path.join(V2_ROOT, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory")
            os.mkdir(path)
            with open(os.path.join(path, "memory.max" if v2 else "memory.limit_in_bytes"), "w") as f:
                f.write(str(limit_bytes))
        except OSError:
            return None
        return cls(path, v2)

    @property
    def procs_file(self) -> str:
        """Write a pid here to move that process (and its future children) into the cgroup."""
        return os.path.join(self.path, "cgroup.procs")

    def anon_bytes(self) -> int:
        """Anonymous memory of every process in the cgroup now (page cache excluded)."""
        st = _stat(os.path.join(self.path, "memory.stat"))
        return st.get("anon", 0) if self.v2 else st.get("total_rss", 0) + st.get("total_swap", 0)

    def peak_bytes(self) -> Optional[int]:
        """The kernel's high-water mark of the cgroup's usage, page cache included."""
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(os.path.join(self.path, name)))
        except OSError:
            return None

    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        return _stat(os.path.join(self.path, name)).get("oom_kill", 0)

    def start_sampling(self, every: float = 0.02) -> None:
        self._sampling = True

        def sample() -> None:
            while self._sampling:
                self.anon_peak = max(self.anon_peak, self.anon_bytes())
                time.sleep(every)

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._sampling = False
        if self._sampler:
            self._sampler.join()
        self.anon_peak = max(self.anon_peak, self.anon_bytes())

    def remove(self) -> None:
        """End what is left in it (gpg-agents our run started), then delete it."""
        for _ in range(50):
            pids = [int(p) for p in _read(os.path.join(self.path, "cgroup.procs")).split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        os.rmdir(self.path)
