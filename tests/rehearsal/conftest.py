"""Fixtures of the Docker dress rehearsal (marker `rehearsal`; see docs/rehearsal.md).

`rehearsal` (module scope): a Docker engine (reused when one answers, else started and, at the end,
stopped), the stand-in images (built or reused from the cache), a temp dir playing the droplet's
/opt/botstack and /mnt/botstack-data. The frame (tests/support/docker_frame.py) tears down: every
container, network and volume of the `botstack` project (by compose's label), the run's release
images, the temp dir, the engine if we started it; it fails the run when anything of the project is
left.

The steps of a rehearsal module depend on each other: once one fails, the following ones are
skipped (they would only fail for the same reason).

Environment:
  BOTSTACK_REHEARSAL=skip     skip the rehearsal (e.g. a machine that cannot run Docker)
  BOTSTACK_TEST_CACHE=DIR     the cache dir (default /var/cache/botstack-test)
  BOTSTACK_REHEARSAL_KEEP=1   keep the stack and the temp dir after the run (debugging; the engine
                              is then left running too)
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.rehearsal.stack import PROJECT, PROJECT_LABEL, Rehearsal
from tests.support.docker_frame import (docker_frame, docker_tests_skipped, labelled, print_past_capture,
                                        remove_labelled, starts_docker)

FIGURES = Path(__file__).resolve().parents[2] / ".botstack" / "rehearsal-figures.json"


def pytest_collection_modifyitems(config, items):
    if docker_tests_skipped():
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


@pytest.fixture(scope="module")
@starts_docker
def rehearsal(request):
    from tests.rehearsal import images

    with docker_frame("botstack-rehearsal-", "the rehearsal", FIGURES) as frame:
        leftovers = labelled(PROJECT_LABEL)
        if leftovers:
            print(f"[rehearsal] removing what project {PROJECT} left from an earlier run: {leftovers}")
            remove_labelled(PROJECT_LABEL)
        frame.on_teardown(lambda: remove_labelled(PROJECT_LABEL))
        t_img = time.monotonic()
        built = images.ensure_all()
        frame.cleanup_image = built["debian"]
        r = Rehearsal(frame.work, built)
        frame.on_teardown(r.teardown)
        frame.figures = r.figures
        r.figures["engine"] = "reused" if not frame.engine.started else "started by the rehearsal"
        r.figures["engine_version"] = frame.engine.server_version
        r.figures["stand_in_images_s"] = round(time.monotonic() - t_img, 1)
        try:
            yield r
        finally:
            if _failed:
                # CI has nothing else to look at (the failed step's report is already out)
                print_past_capture(request, _failure_report(r))


def _failure_report(r: Rehearsal) -> str:
    """The last deploy-script runs and the services' last log lines."""
    parts = ["\n[rehearsal] a step failed; the last deploy-script runs:"]
    parts += [entry[-6000:] for entry in r.log_lines[-3:]]
    try:
        logs = r.compose("logs", "--no-color", "--tail", "40", check=False).stdout[-20000:]
        parts += ["[rehearsal] the services' last log lines:", logs]
    except Exception as e:  # noqa: BLE001 - diagnostics only
        parts.append(f"[rehearsal] (no logs: {e!r})")
    return "\n".join(parts)
