"""`pulumi destroy`: the delete steps of the program's remote commands (the final backup) run over
SSH while the stack still runs, and put one more backup into the (double of the) bucket."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.rehearsal


def test_destroy_runs_the_final_backup_into_the_bucket(droplet):
    steps = getattr(droplet, "steps2", droplet.steps1)
    deleting = [s for s in reversed(steps) if s.delete]  # destroy deletes dependents first
    assert [s.name for s in deleting] == ["deploy-final-backup"]
    before = droplet.bucket_keys()
    out = droplet.destroy_step(deleting[0])
    assert "final backup done" in out
    assert len(droplet.bucket_keys()) > len(before)
