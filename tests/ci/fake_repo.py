"""A throwaway copy of the repository's stack files and one CI script, with tests/ci/fake_pulumi.py
as `pulumi` on PATH."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.infra.harness import REPO


class Repo:
    def __init__(self, root: Path, script: Path):
        self.root = root
        self.script = script
        self.log = root / "pulumi.log"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "pulumi"
        fake.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name('fake_pulumi.py')} \"$@\"\n")
        fake.chmod(0o755)
        (root / "scripts").mkdir()
        shutil.copy2(script, root / "scripts" / script.name)
        for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
            shutil.copy2(REPO / name, root / name)
        self.env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_PULUMI_LOG": str(self.log)}

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(self.root / "scripts" / self.script.name), *args],
                              env={**self.env, **env}, capture_output=True, text=True, timeout=60)

    def pulumi(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """The stand-in pulumi itself, as a workflow step would call it."""
        return subprocess.run(["pulumi", *args], cwd=self.root, env={**self.env, **env}, capture_output=True,
                              text=True, timeout=60)

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

