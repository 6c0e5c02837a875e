"""The backup passphrase for `botstack:backupPassphrase` (pure Python; scripts/deploy runs it).

    pulumi stack export --show-secrets --stack S | python -m infra.passphrase

prints one line, `state <passphrase>` when the stack's state holds the passphrase the program used
to generate (the `storage-backup-passphrase` RandomPassword: kept, so existing backups stay
readable), or `new <passphrase>`: 48 random letters and digits. The line goes into a shell
variable and from there through stdin into `pulumi config set --secret`, never onto a terminal.
"""
from __future__ import annotations

import json
import secrets
import string
import sys
from typing import Any, Optional

RESOURCE = "storage-backup-passphrase"
LENGTH = 48


def _plaintext(value: Any) -> Optional[str]:
    """A value of `pulumi stack export --show-secrets`: secrets are objects whose `plaintext` holds
    the JSON-encoded value."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("plaintext"), str):
        inner = json.loads(value["plaintext"])
        return inner if isinstance(inner, str) else None
    return None


def from_state(export: dict) -> Optional[str]:
    for resource in (export.get("deployment") or {}).get("resources") or []:
        if str(resource.get("urn", "")).endswith(f"::{RESOURCE}"):
            found = _plaintext((resource.get("outputs") or {}).get("result"))
            if not found:
                raise ValueError(f"{RESOURCE} is in the state without a readable result (export with --show-secrets)")
            return found
    return None


def new() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(LENGTH))


def main() -> int:
    try:
        found = from_state(json.load(sys.stdin))
    except (ValueError, AttributeError) as error:
        print(f"passphrase: cannot read the stack export: {error}", file=sys.stderr)
        return 1
    print(f"state {found}" if found else f"new {new()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
