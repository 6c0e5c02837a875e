"""issue 21 item 4, the tool's side: `restore-into-empty` brings a new stack's EMPTY database back
from the newest authenticated backup of a store and prefix, before the bot starts; never over data.
Real pg_dump/pg_restore, gpg, PostgreSQL; moto's S3 server as the store."""
from __future__ import annotations

import os

import psycopg
import pytest

from botstack_backup import restore_empty
from botstack_backup.cli import main
from botstack_backup.config import Config
from botstack_backup.errors import ConfigError
from botstack_backup.tool import BackupTool

from .conftest import ADMINS, PASSPHRASE, TOKEN, backup_runs, s3_client, table_counts

NEW_PASSPHRASE = "another stack, another passphrase"


@pytest.fixture
def empty_db(pg_server):
    url = pg_server.create_database("empty")
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def new_stack(tmp_path, s3_server, bucket, botapi, empty_db, clock, monkeypatch):
    """new_stack(**env) -> the tool of a new stack: its own (empty) database and backup directory,
    by default the same store as the stack that made the backups (destroy, then up)."""
    for key in [k for k in os.environ if k.startswith("RESTORE_FROM")]:
        monkeypatch.delenv(key)

    def make(**over) -> BackupTool:
        env = {"DATABASE_URL": empty_db, "BACKUP_PASSPHRASE": PASSPHRASE,
               "BACKUP_DIR": str(tmp_path / "new-droplet"), "SPACES_ENDPOINT": s3_server,
               "SPACES_BUCKET": bucket, "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing",
               "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": botapi.base_url,
               "ADMIN_USER_IDS": ",".join(map(str, ADMINS))}
        env.update(over)
        return BackupTool(Config.from_env(env), now=clock)
    return make


def test_a_new_stack_restores_the_newest_backup_into_its_empty_database(make_tool, new_stack, seeded_db,
                                                                        empty_db, botapi, clock, capsys):
    old = make_tool()
    old.run()
    clock.advance(hours=24)
    with psycopg.connect(seeded_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users VALUES (9001, 'made after the first backup')")
    newest = old.run()
    with psycopg.connect(seeded_db, autocommit=True) as conn:  # made after the last backup: lost
        conn.execute("INSERT INTO users VALUES (9002, 'made after the last backup')")

    assert main(["restore-into-empty"], tool=new_stack()) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"restored {newest.name} (made ") and out.endswith(f"from s3://{old.cfg.spaces_bucket}/backups/")
    counts = table_counts(empty_db)
    assert counts.pop("public.backup_runs") == newest.manifest["tables"].pop("public.backup_runs") + 1  # + this restore
    assert counts == newest.manifest["tables"] and counts["public.users"] == 251
    [row] = [r for r in backup_runs(empty_db) if r["kind"] == "restore"]  # recorded in the restored table
    assert row["ok"] and "into the empty database" in row["detail"]
    assert any(newest.name in m["text"] and "restored" in m["text"] for m in botapi.sent_messages(ADMINS[0]))


def test_a_database_with_data_is_refused_before_anything_is_downloaded(make_tool, new_stack, empty_db,
                                                                       botapi, capsys):
    make_tool().run()
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE reminders (id int)")
        conn.execute("INSERT INTO reminders VALUES (1)")
    tool = new_stack()
    assert main(["restore-into-empty"], tool=tool) == 5
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "is not empty (1 tables, views or sequences): restore-into-empty never restores over data" in err
    assert table_counts(empty_db) == {"public.reminders": 1}
    assert not [d for d in os.listdir(tool.dir) if d.startswith("restore-")]
    assert any("restore FAILED" in m["text"] for m in botapi.sent_messages(ADMINS[0]))


def test_at_every_later_start_a_database_with_data_is_left_alone_quietly(make_tool, new_stack, empty_db,
                                                                         botapi, capsys):
    make_tool().run()
    tool = new_stack()
    assert main(["restore-into-empty", "--skip-if-data"], tool=tool) == 0  # the first start restores
    before = table_counts(empty_db)
    sent = len(botapi.sent_messages(ADMINS[0]))
    capsys.readouterr()
    assert main(["restore-into-empty", "--skip-if-data"], tool=tool) == 0  # every start after it
    assert capsys.readouterr().out.startswith("nothing restored: the database has data (")
    assert table_counts(empty_db) == before
    assert len(botapi.sent_messages(ADMINS[0])) == sent


def test_nothing_in_the_store_is_a_clear_outcome(new_stack, bucket, capsys):
    assert main(["restore-into-empty"], tool=new_stack()) == 9
    err = capsys.readouterr().err.strip()
    assert err == (f"botstack-backup restore-into-empty: nothing to restore: no complete backup under "
                   f"s3://{bucket}/backups/")


def test_from_another_store_and_prefix_with_its_own_passphrase(make_tool, new_stack, s3_server, seeded_db,
                                                               empty_db, monkeypatch, capsys):
    old = make_tool(BACKUP_PREFIX="old-stack/backups")
    made = old.run()
    s3_client(s3_server).create_bucket(Bucket="new-stack-bucket")
    tool = new_stack(SPACES_BUCKET="new-stack-bucket", BACKUP_PASSPHRASE=NEW_PASSPHRASE)
    monkeypatch.setenv("RESTORE_FROM", f"s3://{old.cfg.spaces_bucket}/old-stack/backups")
    monkeypatch.setenv("RESTORE_FROM_PASSPHRASE", PASSPHRASE)
    assert main(["restore-into-empty"], tool=tool) == 0
    assert table_counts(empty_db)["public.users"] == made.manifest["tables"]["public.users"]
    # without the old passphrase the old stack's manifests are not provably ours: refused
    monkeypatch.delenv("RESTORE_FROM_PASSPHRASE")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; DROP SCHEMA extra CASCADE; CREATE SCHEMA public")
    assert main(["restore-into-empty"], tool=tool) == 10
    assert "refused" in capsys.readouterr().err


def test_a_table_made_between_the_check_and_the_restore_makes_it_fail_and_change_nothing(
        make_tool, new_stack, empty_db, monkeypatch):
    """pg_restore runs without --clean, in one transaction: never over data, even in a race."""
    make_tool().run()
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text)")
        conn.execute("INSERT INTO users VALUES (1, 'the new bot was quicker')")
    monkeypatch.setattr(restore_empty, "_objects", lambda url: 0)  # the check saw it still empty
    assert main(["restore-into-empty"], tool=new_stack()) == 1
    assert table_counts(empty_db) == {"public.users": 1}
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT name FROM users").fetchone()[0] == "the new bot was quicker"


@pytest.mark.parametrize("uri, culprit", [
    ("https://bucket/prefix", "must be s3://BUCKET/PREFIX"),
    ("s3://a/backups", "'a' is not a bucket name"),
    ("s3://bucket/../other", "is not a key prefix"),
    ("s3://bucket/back ups", "is not a key prefix"),
])
def test_a_bad_source_is_one_line_naming_it_before_anything_happens(new_stack, uri, culprit, capsys):
    tool = new_stack()
    assert main(["restore-into-empty", "--from", uri], tool=tool) == 2
    err = capsys.readouterr().err.strip()
    assert culprit in err and "\n" not in err
    assert not os.path.exists(tool.dir)


def test_the_source_defaults_to_the_stacks_own_store():
    cfg = Config.from_env({"SPACES_ENDPOINT": "https://fra1.example", "SPACES_BUCKET": "own",
                           "SPACES_ACCESS_KEY_ID": "k", "SPACES_SECRET_ACCESS_KEY": "s",
                           "BACKUP_PASSPHRASE": PASSPHRASE, "BACKUP_PREFIX": "mine/"})
    own = restore_empty.source_config(cfg, {})
    assert (own.spaces_bucket, own.prefix, own.spaces_endpoint, own.passphrase) == ("own", "mine/", "https://fra1.example", PASSPHRASE)
    other = restore_empty.source_config(cfg, {"RESTORE_FROM": "s3://old-bucket", "RESTORE_FROM_ENDPOINT": "https://s3.eu.example",
                                              "RESTORE_FROM_ACCESS_KEY_ID": "rk", "RESTORE_FROM_SECRET_ACCESS_KEY": "rs"})
    assert (other.spaces_bucket, other.prefix, other.spaces_endpoint, other.spaces_access_key_id,
            other.spaces_secret_access_key) == ("old-bucket", "backups/", "https://s3.eu.example", "rk", "rs")
    with pytest.raises(ConfigError):
        restore_empty.source_config(cfg, {"RESTORE_FROM": "s3://"})
