"""The pre-commit hook refuses .env files and token-like strings and accepts clean files."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOK = os.path.join(ROOT, "scripts", "hooks", "check_secrets.py")

# Built at run time so this file itself holds no token-shaped string.
TG_TOKEN = "7301234567" + ":" + "AAF" + "q9Zx81bT_cWv-3kLmN0pRsTuVwXyZ12"
AWS_KEY = "AKIA" + "Q3EXAMPLE7KEY2ZZ"
DO_TOKEN = "dop_v1_" + "0123456789abcdef" * 4
SPACES_KEY = "DO00" + "ABCDEFGH23456789"
PRIVATE = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"


def hook(*paths, cwd):
    return subprocess.run([sys.executable, HOOK, *paths], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("name", [".env", "compose/.env", "prod.env", ".env.production"])
def test_refuses_env_files(tmp_path, name):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("SOMETHING=harmless\n")
    res = hook(name, cwd=tmp_path)
    assert res.returncode == 1 and ".env files are never committed" in res.stderr


@pytest.mark.parametrize("line", [
    f"TELEGRAM_BOT_TOKEN={TG_TOKEN}",
    f"token = '{TG_TOKEN}'",
    f"aws_access_key_id = {AWS_KEY}",
    f"DIGITALOCEAN_TOKEN={DO_TOKEN}",
    f"SPACES_ACCESS_KEY_ID={SPACES_KEY}",
    PRIVATE,
    "SPACES_SECRET_ACCESS_KEY=" + "k8Qw2Zr7Tn0Vb5Xm3Lp9Hs4Jd6Fg1Ac8Ey2Ui7Oo",
    "DATABASE_URL=postgresql://doadmin:" + "AVNS_x8Kq2Lm9Pz4Rt7" + "@db-host:25060/botstack",
])
def test_refuses_token_like_strings(tmp_path, line):
    (tmp_path / "settings.py").write_text(f"# config\n{line}\n")
    res = hook("settings.py", cwd=tmp_path)
    assert res.returncode == 1, line
    assert "settings.py:2:" in res.stderr


def test_accepts_clean_files_and_the_env_example(tmp_path):
    (tmp_path / "app.py").write_text("import os\nTOKEN = os.environ['TELEGRAM_BOT_TOKEN']\n"
                                     "URL = 'postgresql://botstack:${POSTGRES_PASSWORD}@postgres/botstack'\n")
    (tmp_path / "blob.bin").write_bytes(b"\0" + TG_TOKEN.encode())
    res = hook("app.py", "blob.bin", "missing-file.txt", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = hook("compose/.env.example", "compose/compose.yml", "compose/compose.dev.yml", "docs/backups.md",
               ".pre-commit-config.yaml", cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_allowlist_marker(tmp_path):
    (tmp_path / "fixture.py").write_text(f"T = '{TG_TOKEN}'  # pragma: allowlist secret\n")
    assert hook("fixture.py", cwd=tmp_path).returncode == 0


def test_refuses_a_staged_env_file_in_a_real_repository(tmp_path):
    """What pre-commit does: run the hook on the staged file names."""
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TG_TOKEN}\n")
    (tmp_path / "ok.txt").write_text("hello\n")
    subprocess.run(git + ["add", "-f", ".env", "ok.txt"], cwd=tmp_path, check=True)
    staged = subprocess.run(git + ["diff", "--cached", "--name-only"], cwd=tmp_path, check=True,
                            capture_output=True, text=True).stdout.split()
    res = hook(*staged, cwd=tmp_path)
    assert res.returncode == 1 and ".env" in res.stderr
    assert hook("ok.txt", cwd=tmp_path).returncode == 0


def test_pre_commit_config_runs_the_hook():
    with open(os.path.join(ROOT, ".pre-commit-config.yaml")) as f:
        cfg = yaml.safe_load(f)
    hooks = [h for r in cfg["repos"] for h in r["hooks"]]
    assert all("scripts/hooks/check_secrets.py" in h["entry"] for h in hooks)
    env_hook = next(h for h in hooks if h["id"] == "botstack-no-env-files")
    import re
    assert re.search(env_hook["files"], "compose/.env") and re.search(env_hook["files"], ".env")
    assert re.search(env_hook["exclude"], "compose/.env.example")
