"""Fixtures of the stand-in droplet (marker `rehearsal`; see docs/rehearsal.md, "The stand-in droplet").

`droplet` (package scope, so the stand-in boots once for all modules here): the Pulumi program run
under the test mocks (real ed25519 keys, `telegramApiBaseUrl` pointing at the Bot API double), its
rendered user-data booted in a systemd container from a NoCloud seed, the loop-device volume with the
program's label attached once something on the stand-in waits for it, cloud-init waited for and the
stand-in images loaded into the inner engine. The deploy itself is a test step (test_1_deploy.py).
Teardown (tests/support/docker_frame.py) removes the container, its volumes, the doubles and the
network (all labelled with the prefix) and the loop device, also after a failure, and fails when
anything is left.

The modules run in their numbered order and share one stand-in; once a deploy or reboot step fails
the later steps are skipped (they would fail for the same reason). Host checks do not stop the run.

Environment: BOTSTACK_REHEARSAL=skip skips all of it; BOTSTACK_REHEARSAL_KEEP=1 leaves the stand-in
and its doubles running (debugging); BOTSTACK_STANDIN_PREFIX names what is created (default
botstack-standin).
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.droplet.session import Session
from tests.support.docker_frame import docker_frame, docker_tests_skipped, print_past_capture, starts_docker

FIGURES = Path(__file__).resolve().parents[2] / ".botstack" / "droplet-figures.json"
_failed: list[str] = []
CHAIN = ("test_1_deploy.py", "test_3_reboot.py")


def pytest_collection_modifyitems(config, items):
    if docker_tests_skipped():
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
@starts_docker
def droplet(request):
    from tests.rehearsal import images

    with docker_frame("botstack-standin-", "the stand-in droplet", FIGURES) as frame:
        t = time.monotonic()
        refs = images.ensure_droplet_run()
        s = Session(frame.work, refs)
        frame.on_teardown(s.teardown)
        frame.figures = s.figures
        s.figures["stand_in_images_s"] = round(time.monotonic() - t, 1)
        try:
            s.boot()
            yield s
        finally:
            if _failed:
                print_past_capture(request, "\n[droplet] a step failed; the stand-in's state:\n"
                                   + s.diagnostics())
