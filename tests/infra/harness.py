"""Runs the Pulumi program in Pulumi's unit-test runtime (mocks, preview=False), fed from the real
Pulumi.<stack>.yaml files with secure values replaced by test values.

Every test secret contains TESTSECRET, so a scan for that string finds any leak.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml
from pulumi.runtime import rpc

from tests.infra import do_rules

REPO = Path(__file__).resolve().parents[2]
SECRET_MARK = "TESTSECRET"
TEST_TOKEN = "123456789:TESTSECRET-telegram-token-0123456789abcdef"
# what scripts/deploy puts into a stack file before the first `up` (the program refuses a stack without)
TEST_PASSPHRASE = f"{SECRET_MARK}0backup0passphrase0from0the0stack0file"

# Minimal compose file used only when the real compose/compose.yml does not exist yet.
FALLBACK_COMPOSE = """\
services:
  bot:
    image: python:3.12-slim
    deploy: {resources: {limits: {memory: 256m}}}
  postgres:
    image: postgres:17
    profiles: [localdb]
    deploy: {resources: {limits: {memory: 384m}}}
  backup:
    image: python:3.12-slim
    profiles: [localdb]
    deploy: {resources: {limits: {memory: 128m}}}
"""


def stack_config(stack: str) -> dict[str, Any]:
    """`botstack:*` keys of the real stack file (namespace stripped), secure values replaced."""
    doc = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    out: dict[str, Any] = {}
    for key, value in (doc.get("config") or {}).items():
        ns, _, name = key.partition(":")
        if ns != "botstack":
            continue
        if isinstance(value, dict) and "secure" in value:
            value = f"{SECRET_MARK}-{name}"
        out[name] = value
    out.setdefault("telegramBotToken", TEST_TOKEN)
    out.setdefault("backupPassphrase", TEST_PASSPHRASE)
    return out


def make_repo(dest: Path) -> Path:
    """A copy of the repo's release dirs (compose/, bot/, deploy/) to change freely in a test."""
    for d in ("compose", "bot", "deploy"):
        if (REPO / d).is_dir():
            shutil.copytree(REPO / d, dest / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".env"))
        else:
            (dest / d).mkdir(parents=True)
    compose = dest / "compose" / "compose.yml"
    if not compose.exists():
        compose.write_text(FALLBACK_COMPOSE)
    return dest


def _secret(value: Any) -> Any:
    return rpc.wrap_rpc_secret(value)


@dataclass(frozen=True)
class Ed25519Key:
    private_openssh: str
    private_pem: str
    public_openssh: str       # "ssh-ed25519 AAAA...\n", with pulumi-tls's trailing newline
    fingerprint_sha256: str   # "SHA256:<unpadded base64>", as `ssh-keygen -l` prints it


# one key per resource name per test process: a resource keeps its key across runs (as in a real
# stack's state, so two runs compare equal) while no key is ever fixed in the repository
_KEYS: dict[str, Ed25519Key] = {}


def real_ed25519_key(name: str, stack: str = "") -> Ed25519Key:
    """A real ed25519 key for the tls.PrivateKey resource `name` of `stack`, the same for the same
    name and stack (each stack generates its own keys, as a real one does)."""
    name = f"{stack}/{name}" if stack else name
    if name not in _KEYS:
        _KEYS[name] = _new_ed25519_key()
    return _KEYS[name]


def _new_ed25519_key() -> Ed25519Key:
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private_openssh = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                        serialization.NoEncryption()).decode()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    blob = base64.b64decode(public.split()[1])
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return Ed25519Key(private_openssh, private_pem, public + "\n", fingerprint)


class Mocks(pulumi.runtime.Mocks):
    """Echoes inputs back and adds the outputs the program reads, secrets marked as the provider
    schemas mark them (additionalSecretOutputs)."""

    def __init__(self, bare: bool = False, account: Optional[do_rules.Account] = None, stack: str = "") -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        # DigitalOcean's rules (tests/infra/do_rules.py): a create the API would refuse raises
        self.account = account if account is not None else do_rules.Account()
        self.stack = stack
        self.bare = bare  # a first `pulumi preview`: no ids, no computed outputs (they are unknown)
        self.private_keys: dict[str, str] = {}  # tls.PrivateKey name -> its OpenSSH private key
        self.public_keys: dict[str, str] = {}   # tls.PrivateKey name -> "ssh-ed25519 AAAA..."

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        owner = f"{self.stack}:{args.name}" if self.stack else args.name
        self.account.create(args.typ, owner, args.inputs)
        if self.bare:
            return "", dict(args.inputs)
        t, n = args.typ, args.name
        state = dict(args.inputs)
        rid = f"{n}-id"
        if t == "tls:index/privateKey:PrivateKey":
            # real ed25519 keys, as pulumi-tls makes them: the stand-in droplet boots with the host key
            # from user-data and the deploy connection logs in with the deploy key
            key = real_ed25519_key(n, self.stack)
            self.private_keys[n] = key.private_openssh
            self.public_keys[n] = key.public_openssh.strip()
            state["privateKeyOpenssh"] = _secret(key.private_openssh)
            state["privateKeyPem"] = _secret(key.private_pem)
            state["publicKeyOpenssh"] = key.public_openssh
            state["publicKeyFingerprintSha256"] = key.fingerprint_sha256
        elif t == "random:index/randomPassword:RandomPassword":
            state["result"] = _secret(f"{SECRET_MARK}pw{n.replace('-', '')}")
        elif t == "random:index/randomId:RandomId":
            state["hex"] = "a1b2c3d4"
        elif t == "digitalocean:index/spacesKey:SpacesKey":
            state["accessKey"] = "DO00TESTACCESSKEYID"
            state["secretKey"] = _secret(f"{SECRET_MARK}-spaces-secret-key")
        elif t == "digitalocean:index/databaseUser:DatabaseUser":
            state["password"] = _secret(f"{SECRET_MARK}-db-user-password")
        elif t == "digitalocean:index/databaseCluster:DatabaseCluster":
            state.update(privateHost="private-botstack-pg.db.ondigitalocean.com", port=25060,
                         password=_secret(f"{SECRET_MARK}-doadmin"), clusterUrn=f"do:dbaas:{n}",
                         uri=_secret(f"postgresql://doadmin:{SECRET_MARK}-doadmin@host:25060/defaultdb"),
                         privateUri=_secret(f"postgresql://doadmin:{SECRET_MARK}-doadmin@private:25060/defaultdb"))
        elif t == "digitalocean:index/droplet:Droplet":
            # the account's droplet: a new id for a new (or replacing) droplet, as DigitalOcean gives
            droplet = self.account.droplets[self.account.droplet_id(owner)]
            rid = str(droplet.id)
            state.update(dropletUrn=f"do:droplet:{rid}", ipv4Address="192.0.2.50", vpcUuid=droplet.vpc,
                         disk=droplet.disk_gib)
        elif t == "digitalocean:index/reservedIp:ReservedIp":
            rid = "192.0.2.10"
            state.update(ipAddress="192.0.2.10", reservedIpUrn="do:reservedip:192.0.2.10")
        elif t == "digitalocean:index/vpc:Vpc":
            rid = f"vpc-{owner}"
            state["ipRange"] = "10.110.0.0/20"
        elif t == "digitalocean:index/volume:Volume":
            state["volumeUrn"] = f"do:volume:{n}"
        elif t == "digitalocean:index/spacesBucket:SpacesBucket":
            state["bucketUrn"] = f"do:space:{n}"
        elif t == "digitalocean:index/sshKey:SshKey":
            state["fingerprint"] = f"fp:{n}"
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


@dataclass
class Run:
    mocks: Mocks
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    protected: dict[str, bool] = field(default_factory=dict)
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)
    # every registered resource (components too) as (type, name, parent chain), in order: what
    # the engine builds a URN from, so a refactor that keeps these keeps every URN
    urns: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    error: Optional[BaseException] = None

    def of_type(self, suffix: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.mocks.resources if r.typ.endswith(suffix)]

    def one(self, suffix: str) -> pulumi.runtime.MockResourceArgs:
        found = self.of_type(suffix)
        assert len(found) == 1, f"expected one {suffix}, found {[r.name for r in found]}"
        return found[0]

    def by_name(self) -> dict[str, pulumi.runtime.MockResourceArgs]:
        return {r.name: r for r in self.mocks.resources}


def unwrap(value: Any) -> Any:
    """Inputs with secret wrappers removed."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def run_program(stack: str, repo_root: Path, overrides: Optional[dict[str, Any]] = None,
                drop: tuple[str, ...] = (), main: bool = False, preview: bool = False,
                account: Optional[do_rules.Account] = None, config_of: Optional[str] = None) -> Run:
    """Runs infra.program.build for `stack` with its real config (+ overrides, - drop) through
    pulumi's config (set_all_config, like `pulumi up` does). A ConfigError lands in run.error, and
    so does a do_rules.DoRuleError: what DigitalOcean would refuse. Runs given the same `account`
    share it (dev and prod in one DigitalOcean account); without one, each run has its own.
    `config_of` names the stack file to take the config from when `stack` has none."""
    from infra import program

    values = stack_config(config_of or stack)
    values.update(overrides or {})
    for key in drop:
        values.pop(key, None)
    raw = {f"botstack:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()}
    secret_keys = ["botstack:telegramBotToken", "botstack:healthcheckPingUrl", "botstack:backupPassphrase"]
    pulumi.runtime.set_all_config(raw, secret_keys=secret_keys)
    # as the engine hands a Python program its config (the program lists the keys set from it)
    import os
    saved_env = {k: os.environ.get(k) for k in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    os.environ["PULUMI_CONFIG"] = json.dumps(raw)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    if main:
        repo_root = REPO  # __main__.py builds from the repository it lives in

    # Pulumi's mock runtime runs on the thread's current event loop; pytest-asyncio (the bot's
    # tests) leaves none set behind it, so every run gets a fresh one
    import asyncio
    asyncio.set_event_loop(asyncio.new_event_loop())

    if account is None:
        do_rules.forget_buckets()
    mocks = Mocks(bare=preview, account=account, stack=stack)
    pulumi.runtime.set_mocks(mocks, project="botstack", stack=stack, preview=preview)
    run = Run(mocks)

    import pulumi.resource as pulumi_resource

    real_register = pulumi_resource.register_resource
    chains: dict[int, tuple[str, ...]] = {}

    def recording_register(res, ty, name, custom, remote, new_dependency, props, opts, *a, **kw):
        run.protected[name] = bool(res._protect)
        parent = getattr(opts, "parent", None) if opts is not None else None
        chain = chains.get(id(parent), ()) if parent is not None else ()
        if ty != "pulumi:pulumi:Stack":
            run.urns.append((ty, name, chain))
            chains[id(res)] = chain + (f"{ty}::{name}",)
        if opts is not None:
            run.options[name] = opts
        return real_register(res, ty, name, custom, remote, new_dependency, props, opts, *a, **kw)

    @pulumi.runtime.test
    def program_():
        try:
            if main:
                import runpy
                runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
                return None
            outs = program.build(stack, repo_root)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            run.error = e
            return None
        keys = list(outs)
        wrapped = [pulumi.Output.from_input(outs[k]) for k in keys]

        async def collect():
            for k, o in zip(keys, wrapped, strict=True):
                run.outputs[k] = await o.future(with_unknowns=preview)
                if await o.is_secret():
                    run.secret_outputs.add(k)
        import asyncio
        return pulumi.Output.from_input(asyncio.ensure_future(collect()))

    pulumi_resource.register_resource = recording_register
    try:
        program_()
        if run.error is None and not preview:
            do_rules.check_run(mocks.resources, run.options)
    except do_rules.DoRuleError as e:
        run.error = e
    finally:
        pulumi_resource.register_resource = real_register
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return run
