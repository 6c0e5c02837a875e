"""The frame every Docker-based test package shares (the dress rehearsal, the stand-in droplet, the
CLI's SSH stand-in): one engine (reused when one answers, else started and stopped again), one temp
work dir, the `BOTSTACK_REHEARSAL_KEEP` switch, and one teardown that removes what the run made, by
label, and fails the run when anything is left.

    with docker_frame("botstack-rehearsal-", "the rehearsal", FIGURES) as frame:
        ...                                 # frame.work, frame.engine
        frame.on_teardown(thing.teardown)   # returns what it could not remove
        frame.figures = thing.figures       # written to FIGURES at the end, with total_s
        yield thing

Everything a test package creates in the engine carries a label (`OWNER_LABEL=<name>`, or compose's
project label), so `remove_labelled` finds it again after a crash of the run that made it.

Environment:
  BOTSTACK_REHEARSAL=skip     the Docker-based tests are skipped (a machine that cannot run Docker)
  BOTSTACK_REHEARSAL_KEEP=1   debugging: the run's containers, work dir and engine stay as they are
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

from tests.support.docker_engine import Engine, cache_dir, docker

OWNER_LABEL = "org.botstack.test.owner"
KINDS = ("container", "network", "volume")
STARTS_DOCKER = "_botstack_starts_docker"

F = TypeVar("F", bound=Callable)


def starts_docker(fixture_function: F) -> F:
    """Mark a fixture (under its @pytest.fixture) as one that uses the Docker engine: every test
    that requests it, directly or through other fixtures, gets the `docker` marker (tests/conftest.py)
    and runs in ./scripts/test's serial phase, never in a parallel worker."""
    setattr(fixture_function, STARTS_DOCKER, True)
    return fixture_function


def docker_tests_skipped() -> bool:
    return os.environ.get("BOTSTACK_REHEARSAL", "").lower() == "skip"


def keep_requested() -> bool:
    return os.environ.get("BOTSTACK_REHEARSAL_KEEP") == "1"


def owner(name: str) -> list[str]:
    """The `--label` arguments that mark a container, network or volume as made by `name`."""
    return ["--label", f"{OWNER_LABEL}={name}"]


def _ids(kind: str, label: str) -> list[str]:
    listing = ["ps", "-aq"] if kind == "container" else [kind, "ls", "-q"]
    return docker(*listing, "--filter", f"label={label}", check=False).stdout.split()


def labelled(label: str) -> dict[str, list[str]]:
    """The containers, networks and volumes carrying `label` ("key=value" or "key"), by kind."""
    return {kind: ids for kind in KINDS if (ids := _ids(kind, label))}


def remove_labelled(label: str) -> list[str]:
    """Force-remove every container (with its anonymous volumes), then network and volume carrying
    `label`; return a description of what is still there."""
    for kind in KINDS:
        ids = _ids(kind, label)
        if ids:
            rm = ["rm", "-f", "-v"] if kind == "container" else [kind, "rm"] + (["-f"] if kind == "volume" else [])
            docker(*rm, *ids, check=False, timeout=300)
    return [f"{kind}s labelled {label}: {ids}" for kind, ids in labelled(label).items()]


def engine_still_running(engine: Engine) -> bool:
    try:
        pid = int(engine.pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


class DockerFrame:
    def __init__(self, prefix: str):
        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        self.engine = Engine(cache_dir() / "engine")
        self.keep = keep_requested()
        # an image to delete the work dir's files with when the containers' users own some of them
        self.cleanup_image: Optional[str] = None
        self._teardowns: list[Callable[[], list[str]]] = []
        self.figures: Optional[dict] = None  # what the run measured, written at the end

    def on_teardown(self, fn: Callable[[], list[str]]) -> None:
        """`fn` runs at the end (last registered first) and returns what it could not remove."""
        self._teardowns.append(fn)

    def close(self) -> list[str]:
        """Tear down (unless kept); return the problems: what is left, an engine still running."""
        if self.keep:
            print(f"[docker-frame] BOTSTACK_REHEARSAL_KEEP=1: {self.work} and the engine are left as they are")
            return []
        problems: list[str] = []
        for fn in reversed(self._teardowns):
            try:
                problems += fn()
            except Exception as e:  # noqa: BLE001 - the engine may be gone already; reported
                problems.append(f"teardown error in {getattr(fn, '__qualname__', fn)}: {e!r}")
        self._remove_work()
        started = self.engine.started
        self.engine.stop()
        if started and engine_still_running(self.engine):
            problems.append("the dockerd this run started is still running")
        return problems

    def _remove_work(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        if self.work.exists() and self.cleanup_image and not self.engine_gone():
            # not root here: files the containers' users wrote (postgres, backups) remain
            docker("run", "--rm", "-v", f"{self.work}:/w", self.cleanup_image, "sh", "-c",
                   "rm -rf /w/* /w/.[!.]*", check=False)
            shutil.rmtree(self.work, ignore_errors=True)

    def engine_gone(self) -> bool:
        return docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20).returncode != 0


@contextmanager
def docker_frame(prefix: str, what: str, figures: Optional[Path] = None) -> Iterator[DockerFrame]:
    """A `DockerFrame` with its engine up; on leaving (also after a failure) its teardown, the
    figures (with the whole time, `total_s`) written to `figures` and printed, and `pytest.fail`
    naming `what` when anything is left behind."""
    import pytest

    t0 = time.monotonic()
    frame = DockerFrame(prefix)
    try:
        frame.engine.ensure()
        yield frame
    finally:
        problems = frame.close()
        if figures is not None and frame.figures is not None:
            frame.figures["total_s"] = round(time.monotonic() - t0, 1)
            figures.parent.mkdir(parents=True, exist_ok=True)
            figures.write_text(json.dumps(frame.figures, indent=2) + "\n")
            print(f"[{figures.stem}] {json.dumps(frame.figures)}")
        if problems:
            pytest.fail(f"{what} left resources behind: {problems}")


def print_past_capture(request, text: str) -> None:
    """Print where CI shows it (pytest's capture off): a failed step's diagnostics."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(text)
