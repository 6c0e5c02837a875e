"""Fixtures of the stand-in droplet (marker `rehearsal`; see docs/rehearsal.md, "The stand-in droplet").

`droplet` (package scope, so the stand-in boots once for all modules here): the Pulumi program run
under the test mocks (real ed25519 keys, `telegramApiBaseUrl` pointing at the Bot API double), its
rendered user-data booted in a systemd container from a NoCloud seed, the loop-device volume with the
program's label, cloud-init waited for and the stand-in images loaded into the inner engine. The
deploy itself is a test step (test_1_deploy.py). Teardown removes the container, its volumes, the
doubles, the network and the loop device, also after a failure, and fails when anything is left.

The modules run in their numbered order and share one stand-in; once a deploy or reboot step fails
the later steps are skipped (they would fail for the same reason). Host checks do not stop the run.

Environment: BOTSTACK_REHEARSAL=skip skips all of it; BOTSTACK_REHEARSAL_KEEP=1 leaves the stand-in
and its doubles running (debugging); BOTSTACK_STANDIN_PREFIX names what is created (default
botstack-standin).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.droplet.session import Session
from tests.rehearsal.engine import Engine, cache_dir

FIGURES = Path(__file__).resolve().parents[2] / ".botstack" / "droplet-figures.json"
_failed: list[str] = []
CHAIN = ("test_1_deploy.py", "test_3_reboot.py")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("BOTSTACK_REHEARSAL", "").lower() == "skip":
        skip = pytest.mark.skip(reason="BOTSTACK_REHEARSAL=skip")
        for item in items:
            if "tests/droplet/" in str(item.fspath):
                item.add_marker(skip)


def pytest_runtest_makereport(item, call):
    if call.when == "call" and call.excinfo is not None and Path(str(item.fspath)).name in CHAIN \
            and not call.excinfo.errisinstance(pytest.skip.Exception):
        _failed.append(item.name)


def pytest_runtest_setup(item):
    if "tests/droplet/" in str(item.fspath) and _failed:
        pytest.skip(f"an earlier stand-in step failed ({_failed[0]})")


@pytest.fixture(scope="package")
def droplet(request):
    from tests.rehearsal import images

    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="botstack-standin-"))
    engine = Engine(cache_dir() / "engine")
    keep = os.environ.get("BOTSTACK_REHEARSAL_KEEP") == "1"
    s = None
    problems: list[str] = []
    try:
        engine.ensure()
        t = time.monotonic()
        refs = {"python": images.ensure_python(), "postgres": images.ensure_postgres(),
                "moto": images.ensure_moto(), "droplet": images.ensure_droplet_base()}
        s = Session(work, refs)
        s.figures["stand_in_images_s"] = round(time.monotonic() - t, 1)
        s.boot()
        yield s
    finally:
        if s is not None and _failed:
            capman = request.config.pluginmanager.getplugin("capturemanager")
            with capman.global_and_fixture_disabled():
                print("\n[droplet] a step failed; the stand-in's state:\n" + s.diagnostics())
        if not keep:
            try:
                problems = s.teardown() if s is not None else []
            except Exception as e:  # noqa: BLE001 - reported below
                problems = [f"teardown error: {e!r}"]
            shutil.rmtree(work, ignore_errors=True)
            engine.stop()
        if s is not None:
            s.figures["total_s"] = round(time.monotonic() - t0, 1)
            FIGURES.parent.mkdir(parents=True, exist_ok=True)
            FIGURES.write_text(json.dumps(s.figures, indent=2) + "\n")
            print(f"[droplet] figures: {json.dumps(s.figures)}")
        if problems:
            pytest.fail(f"the stand-in droplet left resources behind: {problems}")
