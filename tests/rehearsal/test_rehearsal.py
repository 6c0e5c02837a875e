"""The Docker dress rehearsal (issue 5): the real compose/ stack, built from the real Dockerfiles on
stand-in base images, deployed, rolled forward, rolled back, restarted and killed with the real
deploy/ scripts, chatted with through the Bot API double, backed up to moto's S3 server.

The steps run in order and share one stack; once a step fails the rest are skipped. See
docs/rehearsal.md for what each step proves, the run times and the figures.
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import time
from pathlib import Path

import pytest

from infra import contract
from tests.support.docker_engine import REPO, docker
from tests.rehearsal.stack import SUBSTITUTED, USER_ID

pytestmark = pytest.mark.rehearsal

BOT = "bot"
STATE: dict = {}


def _text(m: dict) -> str:
    return m.get("text") or m.get("caption") or ""


def _edit_code_change(tree: Path) -> None:
    """Release 2: a bot code change (a new version string, shown by /status)."""
    init = tree / "bot" / "__init__.py"
    src = init.read_text()
    new = re.sub(r'__version__ = "([^"]+)"', r'__version__ = "\1+rehearsal2"', src)
    assert new != src, "bot/__init__.py has no __version__ to change"
    init.write_text(new)


def _edit_broken(tree: Path) -> None:
    """Release 3: a bot that crashes at start-up (its image builds; its health check never passes)."""
    _edit_code_change(tree)
    main = tree / "bot" / "__main__.py"
    src = main.read_text()
    head = "from __future__ import annotations\n"
    assert head in src, "bot/__main__.py changed shape: adapt the rehearsal's broken release"
    main.write_text(src.replace(head, head + 'raise SystemExit("rehearsal: deliberately broken release 3")\n', 1))


def _stack_states(r) -> dict[str, str]:
    return {svc: f"{row.get('State')}/{row.get('Health') or '-'}" for svc, row in r.services().items()}


def _assert_all_up(r, expect: set[str]) -> None:
    states = _stack_states(r)
    missing = expect - set(states)
    assert not missing, f"services missing from the stack: {missing}; have {states}"
    bad = {s: v for s, v in states.items() if s in expect and not (
        v.startswith("running/") and v.split("/")[1] in ("healthy", "-"))}
    assert not bad, f"services not running/healthy: {bad}"


def _bot_container_events(since: float, until: float) -> list[tuple[str, str, float]]:
    out = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--format",
                 "{{json .}}", "--filter", "type=container", "--filter",
                 f"label=com.docker.compose.service={BOT}", "--filter",
                 "label=com.docker.compose.project=botstack").stdout
    events = []
    for line in out.splitlines():
        e = json.loads(line)
        if e.get("status") in ("start", "die", "stop", "kill"):
            events.append((e["status"], e["id"][:12], e.get("timeNano", 0) / 1e9))
    return events


# -- 1 ------------------------------------------------------------------------------------------
def test_01_engine_and_stand_in_images(rehearsal):
    r = rehearsal
    for ref in r.images.values():
        assert docker("image", "inspect", ref, check=False).returncode == 0, f"stand-in {ref} missing"
    # the real files keep their real, pinned public images
    compose_yml = (REPO / "compose" / "compose.yml").read_text()
    assert "botstack-test/" not in compose_yml, "compose.yml must not name the test stand-ins"
    m = re.search(r"\$\{POSTGRES_IMAGE:-([^}]+)\}", compose_yml)
    assert m and re.search(r":\d", m.group(1)), f"compose.yml: POSTGRES_IMAGE default is not pinned: {m}"
    for dockerfile in [REPO / "bot" / "Dockerfile", *sorted((REPO / "compose").rglob("Dockerfile"))]:
        assert "botstack-test/" not in dockerfile.read_text(), f"{dockerfile} names a test stand-in"


# -- 2 ------------------------------------------------------------------------------------------
def test_02_deploy_release_1(rehearsal):
    r = rehearsal
    t0 = time.monotonic()
    rid = r.stage(r.tree("release-1"))
    r.write_env(rid)
    env_file = r.root / "shared" / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600, "shared/.env must be mode 0600"
    deployed = contract.parse(env_file.read_text())
    rendered = r.rendered_env()
    changed = {k for k in rendered if deployed.get(k) != rendered[k]}
    assert changed <= SUBSTITUTED, f"the deployed .env differs from the program's beyond {SUBSTITUTED}: {changed}"
    proc = r.activate(rid)
    t_active = time.monotonic()
    for secret in r.secrets():
        assert secret not in proc.stdout + proc.stderr, "activate.sh output shows a secret of the .env"
    assert r.link("current") == rid and r.link("previous") is None, \
        f"after the first deploy current -> {rid}, no previous; got {r.link('current')}, {r.link('previous')}"
    _assert_all_up(r, {BOT, "postgres", "backup", "botapi", "s3"})
    r.s3().create_bucket(Bucket="botstack-rehearsal")  # made by the Pulumi program on DigitalOcean
    r.ask("/start", "Hi!", timeout=60)
    t_answer = time.monotonic()
    STATE["r1"] = rid
    r.figures["deploy_to_first_answer_s"] = round(t_answer - t0, 1)
    r.figures["deploy_activate_s"] = round(t_active - t0, 1)
    r.figures["healthy_to_first_answer_s"] = round(t_answer - t_active, 1)
    # re-running the same activation is harmless (idempotent)
    r.activate(rid)
    assert r.link("current") == rid and r.link("previous") is None
    _assert_all_up(r, {BOT, "postgres", "backup", "botapi", "s3"})


# -- 3 ------------------------------------------------------------------------------------------
def test_03_chat_time_zone_and_reminders(rehearsal):
    r = rehearsal
    r.ask("/tz Europe/Berlin", "Time zone set to Europe/Berlin")
    due = r.ask("/remind in 1 minute stretch your legs", lambda t: "stretch your legs" in t)
    STATE["due_created_at"] = time.monotonic()
    later = r.ask("/remind tomorrow at 9:00 call the dentist", lambda t: "call the dentist" in t)
    listing = r.ask("/list", "Upcoming reminders")
    assert "stretch your legs" in _text(listing) and "call the dentist" in _text(listing), _text(listing)
    assert "Europe/Berlin" in _text(later), f"times are shown in the user's zone: {_text(later)!r}"
    rows = r.psql(f"SELECT text, tz, status FROM reminders WHERE user_id = {USER_ID} ORDER BY id")
    assert "stretch your legs|Europe/Berlin|pending" in rows, rows
    assert r.psql(f"SELECT tz FROM users WHERE user_id = {USER_ID}") == "Europe/Berlin"
    STATE["saved_text"] = _text(due)


# -- 4 ------------------------------------------------------------------------------------------
def test_04_backup_and_restore_drill_to_s3(rehearsal):
    r = rehearsal
    before = set(r.bucket_keys())
    run = r.compose("exec", "-T", "backup", "botstack-backup", "run", check=False, timeout=300)
    assert run.returncode == 0, f"botstack-backup run failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    new = set(r.bucket_keys()) - before
    assert new, "the backup put no object into the S3 double's bucket"
    for key in new:
        body = r.s3().get_object(Bucket="botstack-rehearsal", Key=key)["Body"].read()
        assert body and b"stretch your legs" not in body and b"CREATE TABLE" not in body, \
            f"the offsite object {key} is not encrypted"
    local = [p for p in (r.data_dir / "backups").rglob("*") if p.is_file()]
    assert local, f"no local backup copy under DATA_DIR/backups ({r.data_dir / 'backups'})"
    drill = r.compose("exec", "-T", "backup", "botstack-backup", "drill", check=False, timeout=300)
    assert drill.returncode == 0, f"botstack-backup drill failed:\n{drill.stdout[-2000:]}\n{drill.stderr[-3000:]}"
    kinds = r.psql("SELECT kind || ':' || ok FROM backup_runs ORDER BY id")
    assert "backup:true" in kinds and "drill:true" in kinds, f"backup_runs: {kinds}"
    status = r.ask("/status", "Last backup:")
    line = next(x for x in _text(status).splitlines() if x.startswith("Last backup:"))
    assert "ok" in line and "none" not in line, f"/status does not show the backup: {line!r}"
    assert f"Version: {STATE['r1']}" in _text(status), f"/status shows the release: {_text(status)!r}"
    for secret in r.secrets():
        assert secret not in r.logs("backup", 400), "the backup job's logs show a secret"
    STATE["backup_keys"] = sorted(new)


# -- 5 ------------------------------------------------------------------------------------------
def test_05_reminder_due_and_snooze(rehearsal):
    r = rehearsal
    left = 75 - (time.monotonic() - STATE["due_created_at"])
    m = r.wait_sent(lambda m: _text(m).startswith("⏰") and "stretch your legs" in _text(m),
                    timeout=max(left, 5), what="the due reminder 'stretch your legs'")
    buttons = [b for row in m.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
    snooze = next((b for b in buttons if b.get("callback_data", "").startswith("s10:")), None)
    assert snooze, f"the reminder has no 10-minute snooze button: {buttons}"
    r.press(snooze["callback_data"], m["message_id"])
    deadline = time.monotonic() + 20
    edited = None
    while time.monotonic() < deadline:
        calls = r.api("calls?method=editMessageText")["calls"]
        edited = next((c for c in calls if c["params"].get("message_id") == m["message_id"]
                       and c["status"] == 200), None)
        if edited:
            break
        time.sleep(0.3)
    assert edited and "Snoozed until" in edited["params"]["text"], f"no 'Snoozed until' edit: {edited}"
    row = r.psql("SELECT status, due_at > now() + interval '9 minutes', due_at < now() + interval '11 minutes'"
                 f" FROM reminders WHERE user_id = {USER_ID} AND text = 'stretch your legs'")
    assert row == "pending|t|t", f"the snoozed reminder is pending again, due in 10 minutes: {row!r}"


# -- 6 ------------------------------------------------------------------------------------------
def test_06_release_2_code_change(rehearsal):
    r = rehearsal
    t0 = time.monotonic()
    wall0 = time.time()
    rid = r.stage(r.tree("release-2", _edit_code_change))
    assert rid != STATE["r1"]
    r.write_env(rid)
    old_bot = r.container(BOT)
    r.activate(rid)
    wall1 = time.time()
    r.figures["redeploy_code_change_s"] = round(time.monotonic() - t0, 1)
    new_bot = r.container(BOT)
    assert new_bot != old_bot, "release 2 did not replace the bot container"
    assert (r.link("current"), r.link("previous")) == (rid, STATE["r1"]), \
        f"current/previous: {r.link('current')}/{r.link('previous')}"
    _assert_all_up(r, {BOT, "postgres", "backup", "botapi", "s3"})
    # the old bot stopped before the new one started (never two bots polling one token)
    events = _bot_container_events(wall0 - 1, wall1 + 1)
    died = [i for i, e in enumerate(events) if e[0] == "die" and old_bot.startswith(e[1])]
    started = [i for i, e in enumerate(events) if e[0] == "start" and new_bot.startswith(e[1])]
    assert died and started and died[0] < started[0], f"bot container events: {events}"
    r.figures["redeploy_old_bot_stop_to_new_bot_start_s"] = round(events[started[0]][2] - events[died[0]][2], 1)
    status = r.ask("/status", f"Version: {rid}", timeout=60)
    assert "+rehearsal2" in _text(status), _text(status)
    # data kept across the release
    assert "call the dentist" in _text(r.ask("/list", "Upcoming reminders"))
    STATE["r2"] = rid
    docker_stats(r)


def docker_stats(r) -> None:
    """Memory of each container at rest against its limit; the bot image's size."""
    time.sleep(5)
    out = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}\t{{.MemPerc}}").stdout
    mem, tight = {}, {}
    for line in out.splitlines():
        name, usage, perc = line.split("\t")
        if name.startswith("botstack-") or name.startswith("botstack_"):
            mem[name] = f"{usage} ({perc})"
            if float(perc.rstrip("%")) > 60:
                tight[name] = usage
    r.figures["memory_at_rest"] = mem
    assert not tight, f"containers above 60 % of their memory limit at rest: {tight}"
    img = r.inspect(r.container(BOT))["Image"]
    size = int(docker("image", "inspect", "--format", "{{.Size}}", img).stdout.strip())
    r.figures["bot_image_mb"] = round(size / 1e6, 1)


# -- 7 ------------------------------------------------------------------------------------------
def test_07_broken_release_3_rolls_back(rehearsal):
    r = rehearsal
    rid = r.stage(r.tree("release-3", _edit_broken))
    r.write_env(rid)
    t0 = time.monotonic()
    proc = r.activate(rid, check=False)
    r.figures["failed_deploy_and_rollback_s"] = round(time.monotonic() - t0, 1)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"activate.sh of a broken release must fail:\n{out[-3000:]}"
    assert "deliberately broken release 3" in out, f"the failing bot's log lines are shown:\n{out[-3000:]}"
    assert "rolled back" in out, out[-3000:]
    for secret in r.secrets():
        assert secret not in out, "activate.sh output shows a secret of the .env"
    assert (r.link("current"), r.link("previous")) == (STATE["r2"], STATE["r1"]), \
        f"current/previous after a failed release: {r.link('current')}/{r.link('previous')}"
    _assert_all_up(r, {BOT, "postgres", "backup", "botapi", "s3"})
    r.ask("/status", f"Version: {STATE['r2']}", timeout=60)


# -- 8 ------------------------------------------------------------------------------------------
def test_08_stop_and_start_whole_stack(rehearsal):
    r = rehearsal
    counts = r.psql("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM reminders), "
                    "(SELECT count(*) FROM deliveries), (SELECT count(*) FROM backup_runs)")
    # botstack.service's ExecStop (and a reboot) stops the stack's own services; the doubles play
    # Telegram and Spaces, which do not restart with the droplet
    stack = [BOT, "backup", "postgres"]
    r.compose("stop", *stack)
    states = _stack_states(r)
    assert all(not states[s].startswith("running") for s in stack), states
    # botstack.service's ExecStart (`up -d --no-build` with BOTSTACK_RELEASE = current's id): the
    # current release's images must still be there
    r.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", "180")
    r.forget_ports()
    _assert_all_up(r, {BOT, "postgres", "backup", "botapi", "s3"})
    assert r.psql("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM reminders), "
                  "(SELECT count(*) FROM deliveries), (SELECT count(*) FROM backup_runs)") == counts
    listing = r.ask("/list", "Upcoming reminders", timeout=60)
    assert "call the dentist" in _text(listing) and "stretch your legs" in _text(listing), _text(listing)


# -- 9 ------------------------------------------------------------------------------------------
def test_09_kill_bot_mid_delivery(rehearsal):
    """Reminders due now, the first send stalls at the double, the bot process is SIGKILLed while
    it is on the wire: after the container restarts every reminder arrives exactly once."""
    r = rehearsal
    texts = [f"rehearsal batch {i}" for i in range(4)]
    r.api("fail", {"method": "sendMessage", "timeout": 60, "count": 1, "process": False})
    values = ", ".join(f"({USER_ID}, {USER_ID}, '{t}', 'Europe/Berlin', now() + interval '2 seconds')"
                       for t in texts)
    r.psql(f"INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES {values}")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if r.psql("SELECT count(*) FROM deliveries WHERE state = 'sending'") != "0":
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no delivery went on the wire within 40 s:\n" + r.logs(BOT, 40))
    cid = r.container(BOT)
    before = r.inspect(cid)
    try:
        os.kill(before["State"]["Pid"], signal.SIGKILL)  # a crash, not a stop: the restart policy acts
    except PermissionError:  # not root (an engine we may use but not own): the engine kills it
        docker("kill", "--signal", "KILL", cid)
        time.sleep(3)
        if not r.inspect(cid)["State"].get("Running"):
            docker("start", cid)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        st = r.inspect(cid)["State"]
        if st.get("Running") and st.get("StartedAt") != before["State"]["StartedAt"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the bot container was not restarted after the crash: {r.inspect(cid)['State']}")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        got = [_text(m) for m in r.sent() if _text(m).startswith("⏰")]
        if all(any(t in g for g in got) for t in texts):
            break
        time.sleep(0.5)
    got = [_text(m) for m in r.sent() if _text(m).startswith("⏰")]
    for t in texts:
        n = sum(1 for g in got if g.splitlines()[0] == f"⏰ {t}")
        assert n == 1, f"{t!r} delivered {n} times; reminders sent: {got[-10:]}\n{r.logs(BOT, 40)}"
    rows = r.psql("SELECT r.status, d.state, count(*) FROM reminders r JOIN deliveries d ON d.reminder_id = r.id"
                  " WHERE r.text LIKE 'rehearsal batch %' GROUP BY 1, 2")
    assert rows == "done|sent|4", f"reminders/deliveries of the batch: {rows!r}"
    # the database is intact: a full dump reads every row
    dump = r.compose("exec", "-T", "postgres", "pg_dump", "-U", "botstack", "-d", "botstack",
                     "--no-owner", "-f", "/dev/null", check=False)
    assert dump.returncode == 0, f"pg_dump failed after the crash: {dump.stderr}"


# -- 10 -----------------------------------------------------------------------------------------
def test_10_final_backup(rehearsal):
    r = rehearsal
    before = set(r.bucket_keys())
    r.script(r.link("current"), "final-backup.sh")
    assert set(r.bucket_keys()) - before, "final-backup.sh put no new object into the bucket"


# -- 11 -----------------------------------------------------------------------------------------
def test_11_teardown_leaves_nothing(rehearsal):
    r = rehearsal
    if os.environ.get("BOTSTACK_REHEARSAL_KEEP") == "1":
        pytest.skip("BOTSTACK_REHEARSAL_KEEP=1: the stack is left running for debugging")
    left = r.teardown()
    assert not left, f"left behind: {left}"
    assert not r.orphan_volumes, f"the stack orphaned anonymous volumes: {r.orphan_volumes}"
    nets = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [n for n in nets if n.startswith("botstack")], f"networks left: {nets}"
    vols = set(docker("volume", "ls", "-q").stdout.split()) - r.volumes_before
    assert not vols, f"volumes left: {vols}"
    imgs = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert not [i for i in imgs if i.rsplit(":", 1)[-1] in r.release_ids], f"release images left: {imgs}"
