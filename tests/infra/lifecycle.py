"""A stack's whole life against DigitalOcean's rules (tests/infra/do_rules.py): `up` after `up`
with changed config, a droplet deleted by hand, `--refresh`, `destroy`.

`LifeStack` keeps what a Pulumi state keeps (each resource's inputs, options and id, in the order
the engine made them) and plays the engine's deletes against the account: resources a run no
longer registers, the old half of each replacement (Pulumi deletes dependents first: reverse
order of creation), and everything at `destroy` except what is retained. A refresh drops what the
provider's Read drops. Whatever the API or the provider would refuse raises DoRuleError.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi

from tests.infra import do_rules
from tests.infra.do_rules import Account, DoRuleError
from tests.infra.harness import REPO, Run, run_program, unwrap


def project_refreshes() -> bool:
    """Pulumi.yaml `options: refresh: always`: every `up`, `preview` and `destroy` refreshes first."""
    import yaml
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text()) or {}
    return (project.get("options") or {}).get("refresh") == "always"


@dataclass
class Held:
    """One resource in the state."""
    typ: str
    name: str
    inputs: dict[str, Any]
    options: Optional[pulumi.ResourceOptions]
    droplet_id: Optional[int] = None   # a droplet's id (the resource id)

    @property
    def retained(self) -> bool:
        return bool(self.options is not None and self.options.retain_on_delete)


@dataclass
class LifeStack:
    stack: str
    repo: Path
    account: Account = field(default_factory=Account)
    config: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Held] = field(default_factory=dict)   # name -> resource, in creation order
    backend: do_rules.Backend = field(default_factory=do_rules.Backend)
    log: list[str] = field(default_factory=list)          # what the engine did, in order

    def owner(self, name: str) -> str:
        return f"{self.stack}:{name}"

    def up(self, refresh: Optional[bool] = None, **changes: Any) -> Run:
        """`pulumi up` with the config changed by `changes` (a value None removes the key); refresh
        first when asked (`--refresh`) or when Pulumi.yaml says always."""
        self.backend.begin(self.stack)
        try:
            run = self._up(refresh, changes)
        finally:
            self.backend.end(self.stack)
        return run

    def killed_up(self) -> None:
        """`pulumi up` killed (a CI job cancelled, a laptop closed) before it ended: its lock stays."""
        self.backend.begin(self.stack)
        self.backend.killed(self.stack)

    def _up(self, refresh: Optional[bool], changes: dict[str, Any]) -> Run:
        if refresh or (refresh is None and project_refreshes()):
            self.refresh()
        for key, value in changes.items():
            if value is None:
                self.config.pop(key, None)
            else:
                self.config[key] = value
        drop = tuple(k for k, v in changes.items() if v is None)
        run = run_program(self.stack, self.repo, dict(self.config), drop=drop, account=self.account)
        if run.error is not None:
            raise run.error
        before = self.state
        after: dict[str, Held] = {}
        for r in run.mocks.resources:
            if r.typ.startswith("botstack:"):
                continue
            held = Held(r.typ, r.name, unwrap(dict(r.inputs)), run.options.get(r.name))
            if r.typ == do_rules.DROPLET:
                held.droplet_id = self.account.droplet_id(self.owner(r.name))
            after[r.name] = held
        replaced = set(do_rules.replaced([_args(h) for h in before.values()], [_args(h) for h in after.values()]))
        replaced |= {n for n, h in after.items() if n in before and _triggers(before[n]) != _triggers(h)}
        replaced |= {n for n, h in after.items() if n in before and h.typ == do_rules.DROPLET
                     and before[n].droplet_id != h.droplet_id}
        self._check_resizes(before, after, run)
        # the old halves of replacements, then what is gone from the program: dependents first
        gone = [h for n, h in before.items() if n not in after or n in replaced]
        self.state = after
        for held in reversed(gone):
            self._delete(held)
        return run

    def _check_resizes(self, before: dict[str, Held], after: dict[str, Held], run: Run) -> None:
        """A droplet whose size changes in place is powered off hard (do_rules.LiveDroplet.resize):
        something must have stopped its stack first, i.e. a command the droplet depends on whose
        inputs changed in this run (so its `update` ran first) and whose update stops the stack."""
        for name, held in after.items():
            old = before.get(name)
            if held.typ != do_rules.DROPLET or old is None or old.droplet_id != held.droplet_id:
                continue
            if old.inputs.get("size") == held.inputs.get("size"):
                continue
            stoppers = [h for h in after.values()
                        if h.typ == do_rules.LOCAL_COMMAND and do_rules.depends_on(run.options, name, h.name)
                        and h.name in before and before[h.name].inputs != h.inputs
                        and "docker stop" in str(h.inputs.get("update", ""))]
            if not stoppers:
                raise DoRuleError(f"{name}: resized by a hard power-off (PowerOff) with the stack running: "
                                  "no step stops it first")
            self.log.append(f"update {stoppers[0].name}: stack stopped before the resize")

    def refresh(self) -> None:
        """What the provider's Read finds gone is dropped from the state (resource_droplet.go: a 404;
        resource_reserved_ip_assignment.go: the IP's droplet nil or another;
        resource_volume_attachment.go: the volume's droplet another)."""
        live = self.account.droplets
        for name, held in list(self.state.items()):
            if held.typ == do_rules.DROPLET and held.droplet_id not in live:
                gone = True
            elif held.typ == do_rules.IP_ASSIGNMENT:
                gone = self.account.ip_assigned_to.get(str(held.inputs.get("ipAddress"))) != held.inputs.get("dropletId")
            elif held.typ == do_rules.VOLUME_ATTACHMENT:
                gone = held.inputs.get("dropletId") not in live
            else:
                gone = False
            if gone:
                self.log.append(f"refresh: {name} is gone")
                del self.state[name]

    def destroy(self, refresh: Optional[bool] = None) -> None:
        self.backend.begin(self.stack)
        try:
            self._destroy(refresh)
        finally:
            self.backend.end(self.stack)

    def _destroy(self, refresh: Optional[bool]) -> None:
        if refresh or (refresh is None and project_refreshes()):
            self.refresh()
        for held in reversed(list(self.state.values())):
            if held.retained:
                self.log.append(f"retain {held.name}")
            else:
                self._delete(held)
            del self.state[held.name]

    def _delete(self, held: Held) -> None:
        if held.typ == do_rules.LOCAL_COMMAND and held.inputs.get("delete"):
            self._teardown(held)
        self.account.delete(held.typ, self.owner(held.name), held.inputs, held.droplet_id)
        self.log.append(f"delete {held.name}")

    def _teardown(self, held: Held) -> None:
        """A teardown step's delete dials the reserved IP; whichever droplet answers runs it, so a step
        made for a droplet that is gone must be able to tell (its droplet id, checked against the
        droplet's metadata by infra/teardown.py) or it stops the new droplet's stack."""
        host = str(held.inputs.get("environment", {}).get("BOTSTACK_SSH_HOST"))
        reached = self.account.ip_assigned_to.get(host)
        made_for = [str(t) for t in _triggers(held)]
        if reached is None:
            self.log.append(f"teardown {held.name}: nothing answers")
            return
        if str(reached) in made_for:
            self.log.append(f"teardown {held.name} on droplet {reached}")
            return
        told = str(held.inputs.get("environment", {}).get(do_rules.DROPLET_ID_ENV, ""))
        if told != str(made_for[0] if made_for else ""):
            raise DoRuleError(f"{held.name}: made for droplet {made_for}, runs on droplet {reached} "
                              "without knowing which droplet it was made for: it would stop the new stack")
        self.log.append(f"teardown {held.name}: droplet {reached} is not {told}, skipped")

    def droplet(self) -> do_rules.LiveDroplet:
        [held] = [h for h in self.state.values() if h.typ == do_rules.DROPLET]
        assert held.droplet_id is not None
        return self.account.droplets[held.droplet_id]


def _triggers(held: Held) -> list:
    return list(held.inputs.get("triggers") or [])


def _args(held: Held) -> pulumi.runtime.MockResourceArgs:
    return pulumi.runtime.MockResourceArgs(held.typ, held.name, held.inputs)
