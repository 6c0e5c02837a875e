"""The database roles (compose's db-setup service) on a real PostgreSQL laid out as the official image
lays it out: the bootstrap superuser is POSTGRES_USER, password authentication (scram-sha-256).

The setup script is taken from `docker compose config` of compose/compose.yml (what the container
runs, after compose's interpolation) and run with the host's psql against the cluster."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile

import psycopg
import pytest

from botstack_backup.config import Config
from botstack_backup.tool import BackupTool
from tests.compose.test_compose_config import config_json
from tests.support.postgres import PostgresServer, _bin, free_port

from .conftest import ADMINS, PASSPHRASE, TOKEN, backup_runs, table_counts

SUPERUSER, DB = "botstack", "botstack"
SUPER_PW, APP_PW, BACKUP_PW = "super-pw-TESTSECRET", "app-pw-TESTSECRET", "backup-pw-TESTSECRET"


def _official_like_cluster() -> PostgresServer:
    """initdb -U botstack with a password and scram auth, database botstack: the official image's
    first start with POSTGRES_USER=botstack, POSTGRES_DB=botstack."""
    base = tempfile.mkdtemp(prefix="botstack-d2-pg-")
    pw = pwd.getpwnam("postgres")
    os.chown(base, pw.pw_uid, pw.pw_gid)
    pwfile = os.path.join(base, "pw")
    with open(pwfile, "w") as f:
        f.write(SUPER_PW + "\n")
    os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    run_as = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    datadir = os.path.join(base, "data")
    subprocess.run([*run_as, _bin("initdb"), "-D", datadir, "-E", "UTF8", "--locale=C.UTF-8", "-U", SUPERUSER,
                    "--auth=scram-sha-256", f"--pwfile={pwfile}"], check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    server = PostgresServer(admin_url=f"postgresql://{SUPERUSER}:{SUPER_PW}@127.0.0.1:{port}/postgres",
                            datadir=datadir, port=port, _run_as=run_as)
    server.start()
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    return server


@pytest.fixture
def cluster():
    server = _official_like_cluster()
    yield server
    server.destroy()


def url(server: PostgresServer, user: str, password: str, db: str = DB) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{server.port}/{db}"


def setup_command() -> list[str]:
    svc = config_json(COMPOSE_PROFILES="localdb")["services"]["db-setup"]
    # `config` prints the file re-escaped ($$); the container gets single dollars
    return [part.replace("$$", "$") for part in svc["entrypoint"]] + list(svc.get("command") or [])


def run_setup(server: PostgresServer, **over: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PGHOST": "127.0.0.1", "PGPORT": str(server.port),
           "POSTGRES_USER": SUPERUSER, "POSTGRES_PASSWORD": SUPER_PW, "POSTGRES_DB": DB,
           "APP_DB_PASSWORD": APP_PW, "BACKUP_DB_PASSWORD": BACKUP_PW, **over}
    return subprocess.run(setup_command(), env=env, capture_output=True, text=True, timeout=120)


def setup_ok(server: PostgresServer) -> None:
    res = run_setup(server)
    assert res.returncode == 0, res.stderr
    assert "roles botstack_app and botstack_backup are in place" in res.stdout


def old_layout(server: PostgresServer) -> dict:
    """The stack before the roles: the bot's migrations and its data, all owned by the superuser,
    plus a view, a function, an enum and a standalone sequence. Returns the row counts."""
    from bot import db as bot_db

    su = url(server, SUPERUSER, SUPER_PW)
    bot_db.migrate(su)
    with psycopg.connect(su, autocommit=True) as conn:
        conn.execute("INSERT INTO users (user_id, chat_id) SELECT g, g FROM generate_series(1, 40) g")
        conn.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) "
                     "SELECT 1 + g % 40, 1, 'r' || g, 'UTC', now() + g * interval '1 hour' "
                     "FROM generate_series(1, 300) g")
        conn.execute("INSERT INTO backup_runs (kind, started_at, ok) VALUES ('backup', now(), true)")
        conn.execute("CREATE VIEW pending AS SELECT * FROM reminders WHERE status = 'pending'")
        conn.execute("CREATE FUNCTION reminder_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM reminders'")
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'late')")
        conn.execute("CREATE SEQUENCE ticket_no")
    return table_counts(su)


OWNERS_SQL = """
SELECT 'schema ' || nspname, nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'
UNION ALL
SELECT c.relkind::text || ' ' || c.relname, c.relowner::regrole::text FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'i')
UNION ALL
SELECT 'function ' || proname, proowner::regrole::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'type ' || typname, typowner::regrole::text FROM pg_type
  WHERE typnamespace = 'public'::regnamespace AND typtype = 'e'
"""


def owners(server: PostgresServer) -> dict:
    with psycopg.connect(url(server, SUPERUSER, SUPER_PW)) as conn:
        return dict(conn.execute(OWNERS_SQL).fetchall())


def role_attrs(server: PostgresServer, role: str) -> dict:
    with psycopg.connect(url(server, SUPERUSER, SUPER_PW)) as conn:
        cur = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
                           "rolcanlogin, ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b "
                           "ON b.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of "
                           "FROM pg_roles r WHERE rolname = %s", (role,))
        cols = [c.name for c in cur.description]
        return dict(zip(cols, cur.fetchone(), strict=True))


def test_the_setup_on_a_fresh_cluster_makes_two_unprivileged_roles(cluster):
    setup_ok(cluster)
    assert role_attrs(cluster, "botstack_app") == {
        "rolsuper": False, "rolcreaterole": False, "rolcreatedb": False, "rolreplication": False,
        "rolbypassrls": False, "rolcanlogin": True, "member_of": []}
    assert role_attrs(cluster, "botstack_backup") == {
        "rolsuper": False, "rolcreaterole": False, "rolcreatedb": True, "rolreplication": False,
        "rolbypassrls": False, "rolcanlogin": True, "member_of": ["botstack_app"]}
    assert owners(cluster) == {"schema public": "botstack_app"}


def test_the_bots_migrations_run_as_the_app_role_and_it_owns_what_they_create(cluster):
    from bot import db as bot_db

    setup_ok(cluster)
    app = url(cluster, "botstack_app", APP_PW)
    assert bot_db.migrate(app) == [name for name, _ in bot_db.migration_files()]
    assert set(owners(cluster).values()) == {"botstack_app"}
    with psycopg.connect(app, autocommit=True) as conn:
        conn.execute("INSERT INTO users (user_id, chat_id) VALUES (1, 1)")


def test_an_old_layout_moves_to_the_app_role_with_its_data(cluster):
    counts = old_layout(cluster)
    assert set(owners(cluster).values()) == {SUPERUSER, "pg_database_owner"}
    setup_ok(cluster)
    moved = owners(cluster)
    assert set(moved.values()) == {"botstack_app"}, moved
    assert {"r schema_migrations", "r reminders", "S reminders_id_seq", "S ticket_no", "v pending",
            "function reminder_count", "type mood", "schema public"} <= set(moved)
    app = url(cluster, "botstack_app", APP_PW)
    assert table_counts(app) == counts
    with psycopg.connect(app, autocommit=True) as conn:
        conn.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES (1, 1, 'new', 'UTC', now())")
        assert conn.execute("SELECT reminder_count()").fetchone()[0] == counts["public.reminders"] + 1
        conn.execute("ALTER TABLE reminders ADD COLUMN note text")  # the next migration can alter it


def test_the_setup_is_idempotent(cluster):
    counts = old_layout(cluster)
    setup_ok(cluster)
    before = (owners(cluster), role_attrs(cluster, "botstack_app"), role_attrs(cluster, "botstack_backup"))
    setup_ok(cluster)
    setup_ok(cluster)
    assert (owners(cluster), role_attrs(cluster, "botstack_app"), role_attrs(cluster, "botstack_backup")) == before
    assert table_counts(url(cluster, "botstack_app", APP_PW)) == counts


def test_a_rerun_sets_a_changed_password(cluster):
    setup_ok(cluster)
    res = run_setup(cluster, APP_DB_PASSWORD="rotated-TESTSECRET")
    assert res.returncode == 0, res.stderr
    psycopg.connect(url(cluster, "botstack_app", "rotated-TESTSECRET")).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url(cluster, "botstack_app", APP_PW)).close()


@pytest.mark.parametrize("missing", ["APP_DB_PASSWORD", "BACKUP_DB_PASSWORD", "POSTGRES_PASSWORD"])
def test_the_setup_refuses_an_empty_password_naming_it(cluster, missing):
    res = run_setup(cluster, **{missing: ""})
    assert res.returncode == 2
    assert f"db-setup: {missing} is empty" in res.stderr
    with psycopg.connect(url(cluster, SUPERUSER, SUPER_PW)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'botstack\\_%'").fetchone()[0] == 0


ATTACKS = {
    "copy to program": "COPY (SELECT 1) TO PROGRAM 'touch /tmp/botstack-d2-pwned'",
    "copy from program": "COPY t FROM PROGRAM 'id'",
    "copy from a server file": "COPY t FROM '/etc/passwd'",
    "copy to a server file": "COPY (SELECT 1) TO '/tmp/botstack-d2-written'",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
    "pg_read_binary_file": "SELECT pg_read_binary_file('postgresql.conf')",
    "pg_ls_dir": "SELECT pg_ls_dir('.')",
    "lo_import": "SELECT lo_import('/etc/passwd')",
    "create role": "CREATE ROLE intruder LOGIN SUPERUSER",
    "create a plain role": "CREATE ROLE intruder",
    "alter itself to superuser": "ALTER ROLE CURRENT_USER SUPERUSER",
    "grant itself a file role": "GRANT pg_read_server_files TO CURRENT_USER",
    "grant itself the superuser": f"GRANT {SUPERUSER} TO CURRENT_USER",
    "set role to the superuser": f"SET ROLE {SUPERUSER}",
}


@pytest.mark.parametrize("role,password", [("botstack_app", APP_PW), ("botstack_backup", BACKUP_PW)])
def test_neither_role_can_run_programs_read_files_or_make_roles(cluster, role, password):
    setup_ok(cluster)
    with psycopg.connect(url(cluster, "botstack_app", APP_PW), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (line text)")
    refused = {}
    with psycopg.connect(url(cluster, role, password), autocommit=True) as conn:
        for what, statement in ATTACKS.items():
            try:
                conn.execute(statement)
            except psycopg.errors.InsufficientPrivilege as exc:
                refused[what] = str(exc)
            except psycopg.Error as exc:  # any other error is a test bug, not a refusal
                pytest.fail(f"{role}: {what}: {type(exc).__name__}: {exc}")
    assert set(refused) == set(ATTACKS), f"{role} was allowed: {set(ATTACKS) - set(refused)}"
    assert not os.path.exists("/tmp/botstack-d2-pwned") and not os.path.exists("/tmp/botstack-d2-written")
    assert role_attrs(cluster, role)["rolsuper"] is False


@pytest.fixture
def roles_tool(cluster, tmp_path, s3_server, bucket, botapi, clock):
    """The old layout with data, the setup run, and the backup tool logging in as botstack_backup."""
    counts = old_layout(cluster)
    setup_ok(cluster)
    env = {"BACKUP_DATABASE_URL": url(cluster, "botstack_backup", BACKUP_PW),
           "BACKUP_PASSPHRASE": PASSPHRASE, "BACKUP_DIR": str(tmp_path / "backups"),
           "SPACES_ENDPOINT": s3_server, "SPACES_REGION": "us-east-1", "SPACES_BUCKET": bucket,
           "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing",
           "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": botapi.base_url,
           "ADMIN_USER_IDS": ",".join(map(str, ADMINS))}
    return BackupTool(Config.from_env(env), now=clock), counts


def test_the_backup_role_backs_up_and_records_its_run(roles_tool, cluster):
    tool, counts = roles_tool
    result = tool.run()
    assert result.uploaded
    assert {k: v for k, v in result.manifest["tables"].items() if k != "public.backup_runs"} == \
        {k: v for k, v in counts.items() if k != "public.backup_runs"}
    runs = backup_runs(url(cluster, "botstack_app", APP_PW))
    assert runs[-1]["kind"] == "backup" and runs[-1]["ok"] is True


def test_the_backup_role_restores_and_the_bot_owns_its_tables_again(roles_tool, cluster, clock):
    from bot import db as bot_db

    tool, counts = roles_tool
    tool.run()
    app = url(cluster, "botstack_app", APP_PW)
    with psycopg.connect(app, autocommit=True) as conn:
        conn.execute("DELETE FROM reminders")
    clock.advance(minutes=5)
    tool.restore("latest", force=True)
    restored = table_counts(app)
    assert restored["public.reminders"] == counts["public.reminders"]
    assert set(owners(cluster).values()) == {"botstack_app"}
    assert bot_db.migrate(app) == []
    with psycopg.connect(app, autocommit=True) as conn:
        conn.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES (1, 1, 'x', 'UTC', now())")


def test_the_backup_role_drills_in_a_scratch_database_it_then_drops(roles_tool, cluster):
    tool, counts = roles_tool
    tool.run()
    res = tool.drill()
    assert res.counts["public.reminders"] == counts["public.reminders"]
    with psycopg.connect(url(cluster, SUPERUSER, SUPER_PW)) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'botstack\\_drill%'").fetchall()
    assert left == []


def test_the_setup_needs_no_file_outside_compose_yml():
    cmd = setup_command()
    assert cmd[:2] == ["sh", "-c"] and "<<'SQL'" in cmd[2]
    svc = config_json(COMPOSE_PROFILES="localdb")["services"]["db-setup"]
    assert "volumes" not in svc and "configs" not in svc and "build" not in svc
    assert shutil.which("psql")
