"""Records the URN parts (type, name, parent chain) of dev, prod and both in managed mode: run from
the repository root, `.venv/bin/python tests/infra/data/record_urns.py`, once, before a refactor."""
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, ".")
from tests.infra.harness import run_program, make_repo
out = {}
for label, stack, over in [("dev", "dev", {}), ("prod", "prod", {}), ("dev-managed", "dev", {"database": "managed"}), ("prod-managed", "prod", {"database": "managed"})]:
    with tempfile.TemporaryDirectory() as d:
        repo = make_repo(Path(d))
        run = run_program(stack, repo, over)
        assert run.error is None, run.error
        out[label] = sorted(["$".join(list(c) + [f"{t}::{n}"]) for t, n, c in run.urns])
Path("tests/infra/data/urns-before-refactor.json").write_text(json.dumps(out, indent=1) + "\n")
print({k: len(v) for k, v in out.items()})
