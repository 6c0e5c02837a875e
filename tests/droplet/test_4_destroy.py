"""`pulumi destroy`: the delete steps of the program's commands run in reverse dependency order while
the stack still runs: the final backup puts one more backup into (the double of) the bucket, then
the stack is stopped and the volume flushed before the volume would be detached."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.rehearsal


def test_destroy_runs_the_final_backup_then_stops_the_stack(droplet):
    steps = getattr(droplet, "steps2", droplet.steps1)
    deleting = [s for s in reversed(steps) if s.delete]  # destroy deletes dependents first
    names = [s.name for s in deleting]
    assert "deploy-final-backup" in names and "deploy-stop-stack" in names, names
    assert names.index("deploy-final-backup") < names.index("deploy-stop-stack"), names
    before = droplet.bucket_keys()
    outs = {s.name: droplet.destroy_step(s) for s in deleting}
    assert "final backup done" in outs["deploy-final-backup"]
    assert len(droplet.bucket_keys()) > len(before)
    assert droplet.d.exec("docker", "ps", "-q").stdout.strip() == "", "the stack still runs"
    assert "skipped" not in outs["deploy-stop-stack"]
