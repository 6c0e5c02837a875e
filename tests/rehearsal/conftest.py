"""Fixtures of the Docker dress rehearsal (marker `rehearsal`; see docs/rehearsal.md).

`rehearsal` (module scope): a Docker engine (reused when one answers, else started and, at the end,
stopped), the stand-in images (built or reused from the cache), a temp dir playing the droplet's
/opt/botstack and /mnt/botstack-data. Its teardown removes every container, network and volume of
the `botstack` project and the temp dir, stops the engine if we started it, and fails the run when
anything of the project is left.

The steps of a rehearsal module depend on each other: once one fails, the following ones are
skipped (they would only fail for the same reason).

Environment:
  BOTSTACK_REHEARSAL=skip     skip the rehearsal (e.g. a machine that cannot run Docker)
  BOTSTACK_TEST_CACHE=DIR     the cache dir (default /var/cache/botstack-test)
  BOTSTACK_REHEARSAL_KEEP=1   keep the stack and the temp dir after the run (debugging; the engine
                              is then left running too)
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.rehearsal.engine import Engine, cache_dir, docker
from tests.rehearsal.stack import Rehearsal, remove_project_leftovers

FIGURES = Path(__file__).resolve().parents[2] / ".botstack" / "rehearsal-figures.json"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("BOTSTACK_REHEARSAL", "").lower() == "skip":
        skip = pytest.mark.skip(reason="BOTSTACK_REHEARSAL=skip")
        for item in items:
            if item.get_closest_marker("rehearsal"):
                item.add_marker(skip)


_failed: dict[str, str] = {}


def pytest_runtest_makereport(item, call):
    if item.get_closest_marker("rehearsal") and call.excinfo is not None and call.when == "call" \
            and not call.excinfo.errisinstance(pytest.skip.Exception):
        _failed.setdefault(str(item.fspath), item.name)


def pytest_runtest_setup(item):
    if item.get_closest_marker("rehearsal"):
        prev = _failed.get(str(item.fspath))
        if prev:
            pytest.skip(f"an earlier rehearsal step failed ({prev})")


def engine_still_running(engine: Engine) -> bool:
    try:
        pid = int(engine.pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def rehearsal(request):
    from tests.rehearsal import images

    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="botstack-rehearsal-"))
    engine = Engine(cache_dir() / "engine")
    keep = os.environ.get("BOTSTACK_REHEARSAL_KEEP") == "1"
    r = None
    try:
        engine.ensure()
        leftovers = docker("ps", "-aq", "--filter", "label=com.docker.compose.project=botstack",
                           check=False).stdout.split()
        if leftovers:
            print(f"[rehearsal] removing {len(leftovers)} container(s) of project botstack left by "
                  "an earlier run")
            remove_project_leftovers()
        t_img = time.monotonic()
        built = images.ensure_all()
        r = Rehearsal(work, built)
        r.engine = engine
        r.figures["engine"] = "reused" if not engine.started else "started by the rehearsal"
        r.figures["engine_version"] = engine.server_version
        r.figures["stand_in_images_s"] = round(time.monotonic() - t_img, 1)
        yield r
    finally:
        problems: list[str] = []
        if r is not None and _failed:
            # CI has nothing else to look at: the last deploy-script runs and the services' logs,
            # printed past pytest's capture (the failed step's report is already out)
            capman = request.config.pluginmanager.getplugin("capturemanager")
            with capman.global_and_fixture_disabled():
                print("\n[rehearsal] a step failed; the last deploy-script runs:")
                for entry in r.log_lines[-3:]:
                    print(entry[-6000:])
                try:
                    print("[rehearsal] the services' last log lines:")
                    print(r.compose("logs", "--no-color", "--tail", "40", check=False).stdout[-20000:])
                except Exception as e:  # noqa: BLE001 - diagnostics only
                    print(f"[rehearsal] (no logs: {e!r})")
        if not keep:
            try:
                problems = remove_project_leftovers() if r is None else r.teardown()
            except Exception as e:  # the engine may be gone already
                problems = [f"teardown error: {e!r}"]
            shutil.rmtree(work, ignore_errors=True)
            if work.exists() and r is not None:  # not root: files of the containers' users remain
                docker("run", "--rm", "-v", f"{work}:/w", r.images["debian"], "sh", "-c",
                       "rm -rf /w/* /w/.[!.]*", check=False)
                shutil.rmtree(work, ignore_errors=True)
            started = engine.started
            engine.stop()
            if started and engine_still_running(engine):
                problems.append("the dockerd the rehearsal started is still running")
        if r is not None:
            r.figures["total_s"] = round(time.monotonic() - t0, 1)
            FIGURES.parent.mkdir(parents=True, exist_ok=True)
            FIGURES.write_text(json.dumps(r.figures, indent=2) + "\n")
            print(f"[rehearsal] figures: {json.dumps(r.figures)}")
        if problems:
            pytest.fail(f"the rehearsal left project resources behind: {problems}")
