"""Resource URNs are the identity Pulumi keeps state under: a refactor that changes a type, a name
or a parent chain would make `pulumi up` delete and recreate the resource (the data volume, the
bucket). tests/infra/data/urns-before-refactor.json was recorded from the program before the
components got typed Args (tests/infra/data/record_urns.py)."""
from __future__ import annotations

import json

import pytest

from tests.infra.harness import REPO, make_repo, run_program

RECORDED = json.loads((REPO / "tests" / "infra" / "data" / "urns-before-refactor.json").read_text())
CASES = {"dev": ("dev", {}), "prod": ("prod", {}), "dev-managed": ("dev", {"database": "managed"}),
         "prod-managed": ("prod", {"database": "managed"})}
# resources added since the recording (new, so nothing of the old state moves)
ADDED = {
    "botstack:infra:Server::server$digitalocean:index/sshKey:SshKey::server-deploy-ssh-key",
    # stops the stack and flushes the volume before it is detached
    "botstack:infra:Deploy::deploy$command:local:Command::deploy-stop-stack",
    "botstack:infra:Database::database$random:index/randomPassword:RandomPassword::database-app-password",
    "botstack:infra:Database::database$random:index/randomPassword:RandomPassword::database-backup-password",
    # writes your SSH keys (issue 19: they left the user-data, whose every change replaced the droplet)
    "botstack:infra:Deploy::deploy$command:remote:Command::deploy-admin-keys",
    # a new size: final backup and graceful stop before the provider powers the droplet off (issue 19)
    "botstack:infra:Server::server$command:local:Command::server-pre-resize",
}

# resources removed on purpose since the recording
REMOVED = {
    # your SSH keys are no longer registered with DigitalOcean (a key is accepted once per account,
    # so they collided); they reach the droplet through cloud-init. The stack's deploy key is.
    "botstack:infra:Server::server$digitalocean:index/sshKey:SshKey::server-ssh-key-0",
    # the final backup became a local command (ssh that tolerates a vanished droplet): the first
    # `up` after the change deletes the remote one, i.e. takes one extra backup
    "botstack:infra:Deploy::deploy$command:remote:Command::deploy-final-backup",
    # the stack's own VPC (issue 19): on an account with no VPC in the region it became the
    # region's default, which DigitalOcean never deletes, so `destroy` failed. The droplet now sits
    # in the region's default VPC. A stack made before keeps its droplet in the old VPC (vpc_uuid
    # is Computed: left out, it keeps its value) and must forget that VPC before the first `up`
    # (docs/infra.md, "Upgrading a stack deployed before issue 19").
    "botstack:infra:Network::network$digitalocean:index/vpc:Vpc::network-vpc",
    # the generated backup passphrase (issue 19): `pulumi destroy` deleted it with the state while
    # the bucket with the backups it encrypted stayed. The program refuses to run without
    # botstack:backupPassphrase; scripts/deploy moves a generated one there and forgets this
    # resource (`pulumi state delete`), so nothing deletes it.
    "botstack:infra:Storage::storage$random:index/randomPassword:RandomPassword::storage-backup-passphrase",
}
# ...and added in container mode only
ADDED_CONTAINER = {"botstack:infra:Deploy::deploy$command:local:Command::deploy-final-backup"}


def urns(case: str, tmp_path) -> set[str]:
    stack, overrides = CASES[case]
    run = run_program(stack, make_repo(tmp_path / "repo"), overrides)
    assert run.error is None, run.error
    return {"$".join(list(chain) + [f"{t}::{n}"]) for t, n, chain in run.urns}


@pytest.mark.parametrize("case", list(CASES))
def test_every_recorded_urn_is_still_there(case, tmp_path):
    missing = set(RECORDED[case]) - REMOVED - urns(case, tmp_path)
    assert not missing, f"these resources would be replaced: {sorted(missing)}"


@pytest.mark.parametrize("case", list(CASES))
def test_only_the_known_new_resources_were_added(case, tmp_path):
    assert urns(case, tmp_path) - set(RECORDED[case]) == ADDED | (set() if "managed" in case else ADDED_CONTAINER)
