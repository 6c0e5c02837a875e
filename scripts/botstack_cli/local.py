"""`botstack local up|down|chat`: the whole environment on your own Docker, without a cloud account.

`up` runs the Pulumi program for stack `dev` under Pulumi's mock runtime (no cloud: the same harness
the tests use, tests/infra/harness.py), boots its rendered user-data in the stand-in droplet
(tests/droplet: a systemd container with cloud-init, its own dockerd and a loop-device volume with
the program's label), and runs the program's own deploy commands into it over SSH, as
pulumi-command would. The bot talks to the real Telegram when TELEGRAM_BOT_TOKEN is set (with
BOTSTACK_LOCAL_USER_ID, your Telegram user id, allowed and admin), else to the Bot API double, which
`botstack local chat` lets you talk to from the terminal. Spaces is moto's S3 server.

What it made is written to .botstack/local/ (state.json: the stand-in's containers, network, volume
and loop device; outputs.json: the stack's outputs with the stand-in's address; the admin SSH key
it generated), so every other command works with the stack name `local`, and `down` removes it all.
Needs root (a loop device) and the test dependencies (scripts/install-test-deps; it re-runs itself
with .venv/bin/python when started with another interpreter).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import CliError

REPO = Path(__file__).resolve().parents[2]
# BOTSTACK_LOCAL_DIR and BOTSTACK_LOCAL_PREFIX move it and rename what it makes (the tests do)
LOCAL_DIR = Path(os.environ.get("BOTSTACK_LOCAL_DIR") or REPO / ".botstack" / "local")
STATE = LOCAL_DIR / "state.json"
OUTPUTS = LOCAL_DIR / "outputs.json"
ADMIN_KEY = LOCAL_DIR / "admin_ed25519"
PREFIX = os.environ.get("BOTSTACK_LOCAL_PREFIX") or "botstack-local"
STACK = "dev"  # the stack whose config the local environment runs (Pulumi.dev.yaml)


def _harness() -> Any:
    """The stand-in droplet harness; re-exec under the project's venv when it is not importable."""
    os.environ["BOTSTACK_STANDIN_PREFIX"] = PREFIX
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        import importlib
        session = importlib.import_module("tests.droplet.session")
        importlib.import_module("tests.rehearsal.images")
    except ImportError as exc:
        venv = REPO / ".venv" / "bin" / "python"
        if venv.exists() and Path(sys.prefix).resolve() != venv.parents[1].resolve() \
                and not os.environ.get("BOTSTACK_LOCAL_REEXEC"):
            os.environ["BOTSTACK_LOCAL_REEXEC"] = "1"
            os.execv(str(venv), [str(venv), str(REPO / "scripts" / "botstack"), *sys.argv[1:]])
        raise CliError(f"`botstack local` needs the test harness and its dependencies ({exc.name or exc}): "
                       "run scripts/install-test-deps first", 2) from None
    return session


def _admin_key() -> str:
    if not ADMIN_KEY.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "botstack-local-admin",
                        "-f", str(ADMIN_KEY)], check=True, capture_output=True)
    return Path(f"{ADMIN_KEY}.pub").read_text().strip()


def _overrides(botapi_url: str) -> dict:
    """Config of the local stack: Pulumi.dev.yaml with your local admin key, and either the real
    Telegram (TELEGRAM_BOT_TOKEN + BOTSTACK_LOCAL_USER_ID) or the Bot API double."""
    over: dict[str, Any] = {"sshPublicKeys": [_admin_key()]}
    token = os.environ.get("TELEGRAM_BOT_TOKEN")
    if token:
        uid = os.environ.get("BOTSTACK_LOCAL_USER_ID", "")
        if not uid.isdigit():
            raise CliError("with TELEGRAM_BOT_TOKEN set, set BOTSTACK_LOCAL_USER_ID to your Telegram user "
                           "id too (the bot serves only allowed users)", 2)
        over.update(telegramBotToken=token, allowedUserIds=[int(uid)], adminUserIds=[int(uid)])
    else:
        over["telegramApiBaseUrl"] = botapi_url
    return over


def up(args) -> int:
    if STATE.exists():
        raise CliError("the local stack is up already (`botstack local status`; `botstack local down` "
                       "removes it)", 2)
    if os.geteuid() != 0:
        raise CliError("`botstack local up` needs root (the stand-in's volume is a loop device)", 2)
    session_mod = _harness()
    from tests.rehearsal import images
    from tests.rehearsal.engine import Engine, cache_dir

    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    work = LOCAL_DIR / "work"
    work.mkdir(exist_ok=True)
    Engine(cache_dir() / "engine").ensure()
    t0 = time.monotonic()
    say("building or reusing the stand-in images (the first time takes several minutes)")
    refs = {"python": images.ensure_python(), "postgres": images.ensure_postgres(),
            "moto": images.ensure_moto(), "droplet": images.ensure_droplet_base()}

    Session: Any = session_mod.Session  # Any: the harness is imported by name at run time

    class Local(Session):
        def program(self, name, edit=None):
            from tests.infra.harness import make_repo, run_program
            repo = make_repo(self.work / name)
            run = run_program(STACK, repo, _overrides(self.d.botapi_url))
            if run.error is not None:
                raise CliError(f"the program failed for the local stack: {run.error}")
            return run, repo

    s = Local(work, refs)
    try:
        say("booting the stand-in droplet from the program's user-data (cloud-init installs Docker)")
        s.boot()
        save_state(s, refs)
        say("deploying the stack with the program's own commands over SSH")
        s.deploy(s.steps1)
    except BaseException:
        say("failed: removing what was made")
        _teardown(s.d)
        raise
    save_state(s, refs)
    write_outputs(s)
    say(f"the local stack is up in {time.monotonic() - t0:.0f}s")
    print("next: scripts/botstack local status | logs | ssh | backup | ... ; "
          + ("talk to your bot in Telegram" if os.environ.get("TELEGRAM_BOT_TOKEN")
             else "scripts/botstack local chat (the Bot API double)")
          + "; scripts/botstack local down removes it")
    return 0


def save_state(s, refs) -> None:
    STATE.write_text(json.dumps({"prefix": PREFIX, "work": str(s.work), "images": refs,
                                 "created": s.d.created, "loop": s.d.loop,
                                 "botapi_url": getattr(s.d, "botapi_url", None),
                                 "user_id": s.user_id}, indent=2))


def write_outputs(s) -> None:
    out = dict(s.run1.outputs)
    key = out["knownHostsLine"].split(None, 1)[1]
    address = s.d.address
    out.update(reservedIp=address, ssh=f"ssh botadmin@{address}", knownHostsLine=f"{address} {key}",
               botapiUrl=s.d.botapi_url, localUserId=s.user_id)
    OUTPUTS.write_text(json.dumps({k: v for k, v in out.items() if _plain(v)}, indent=2))


def _plain(value) -> bool:
    return isinstance(value, (str, int, float, bool, list, dict)) and "[secret]" not in str(value)


def _teardown(droplet) -> list[str]:
    try:
        return droplet.teardown()
    except Exception as exc:  # noqa: BLE001 - reported to the user
        return [f"teardown error: {exc!r}"]


def down(args) -> int:
    if not STATE.exists():
        raise CliError("the local stack is not up (nothing to remove)", 2)
    _harness()
    from tests.droplet.standin import Droplet
    state = json.loads(STATE.read_text())
    d = Droplet(Path(state["work"]), state.get("images") or {})
    d.created = [tuple(x) for x in state["created"]]
    d.loop = state.get("loop")
    left = _teardown(d)
    if left:
        raise CliError(f"could not remove: {', '.join(left)} (state kept in {STATE})")
    shutil.rmtree(LOCAL_DIR / "work", ignore_errors=True)
    for f in (STATE, OUTPUTS):
        f.unlink(missing_ok=True)
    say("the local stack is removed")
    return 0


def _control(url: str, path: str, body=None):
    import urllib.request
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/_control/{path}", data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def chat(args, stdin=None, stdout=None) -> int:
    """A small terminal chat with the local bot through the Bot API double: each line you type is a
    Telegram message from the local user; the bot's answers are printed (buttons in brackets)."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    if not OUTPUTS.exists():
        raise CliError("the local stack is not up: run `botstack local up` first", 2)
    out = json.loads(OUTPUTS.read_text())
    url, uid = out.get("botapiUrl"), out.get("localUserId")
    if not url or os.environ.get("TELEGRAM_BOT_TOKEN") and not uid:
        raise CliError("the local stack talks to the real Telegram: chat with it there", 2)
    try:
        seen = len(_control(url, f"sent?chat_id={uid}")["messages"])
    except OSError as exc:
        raise CliError(f"the Bot API double does not answer at {url}: {exc}") from None
    stdout.write(f"chatting with the local bot as Telegram user {uid} (Ctrl-D ends)\n")
    for line in iter(stdin.readline, ""):
        text = line.strip()
        if not text:
            continue
        _control(url, "updates", {"message": {"from_id": uid, "text": text}})
        deadline, got = time.monotonic() + 10, False
        while time.monotonic() < deadline and not got:
            time.sleep(0.3)
            msgs = _control(url, f"sent?chat_id={uid}")["messages"]
            for m in msgs[seen:]:
                buttons = [b.get("text") for row in ((m.get("reply_markup") or {}).get("inline_keyboard") or [])
                           for b in row]
                stdout.write("bot> " + (m.get("text") or "") + (f"  {buttons}" if buttons else "") + "\n")
                got = True
            seen = len(msgs)
        if not got:
            stdout.write("(no answer within 10 s)\n")
        stdout.flush()
    return 0


def say(msg: str) -> None:
    print(f"botstack local: {msg}", file=sys.stderr, flush=True)


def main(args) -> int:
    return {"up": up, "down": down, "chat": chat}[args.command](args)
