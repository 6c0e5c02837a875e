"""Manifests that only the passphrase holder can write, and names that stay inside their directory.

Whoever can write to the bucket can recompute a sha256, so the manifest carries an HMAC-SHA256 of its
canonical JSON (every field but "mac"), keyed with PBKDF2-HMAC-SHA256 of the backup passphrase and a
random salt. The slow key derivation matters: the MAC must not make guessing the passphrase any
cheaper than gpg's own S2K does. docs/backups.md shows how to check a MAC with python3 alone.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re

from .errors import ForgedError
from .store import DUMP_SUFFIX, MANIFEST_SUFFIX, strip_suffix

MAC_ALG = "HMAC-SHA256"
KDF = "PBKDF2-HMAC-SHA256"
KDF_ITERATIONS = 600_000
KDF_LABEL = b"botstack-backup manifest v1:"  # keeps this key apart from any other use of the passphrase
# <name>-<YYYYmmddTHHMMSSZ>: letters, digits, '.', '_', '-'; no path separators, no '..'
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}-\d{8}T\d{6}Z$")


def check_name(name: object) -> str:
    """A backup name safe to join into a path; ForgedError otherwise."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise ForgedError(f"refused: the manifest names its backup {str(name)[:80]!r}, which is not a "
                          "backup name (letters, digits, '.', '_', '-' and a timestamp)")
    return name


def canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _key(passphrase: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), KDF_LABEL + salt, KDF_ITERATIONS)


def sign(manifest: dict, passphrase: str) -> dict:
    """The manifest with its "mac" field."""
    salt = os.urandom(16)
    value = hmac.new(_key(passphrase, salt), canonical(manifest), hashlib.sha256).hexdigest()
    return {**manifest, "mac": {"alg": MAC_ALG, "kdf": KDF, "iterations": KDF_ITERATIONS,
                                "salt": salt.hex(), "value": value}}


def _check_mac(manifest: dict, passphrase: str, where: str) -> None:
    mac = manifest.get("mac")
    if mac is None:
        raise ForgedError(
            f"refused: the manifest {where} has no MAC (it was made before manifests were "
            "authenticated, or forged); run `botstack-backup run` for a new backup, or restore this "
            "one by hand (docs/backups.md, disaster recovery)")
    if (not isinstance(mac, dict) or mac.get("alg") != MAC_ALG or mac.get("kdf") != KDF
            or mac.get("iterations") != KDF_ITERATIONS):
        raise ForgedError(f"refused: the manifest {where} has a MAC of an unknown kind")
    try:
        salt = bytes.fromhex(mac.get("salt") or "")
    except (TypeError, ValueError):
        salt = b""
    expected = hmac.new(_key(passphrase, salt), canonical(manifest), hashlib.sha256).hexdigest()
    if len(salt) < 16 or not hmac.compare_digest(expected, str(mac.get("value"))):
        raise ForgedError(f"refused: the manifest {where} does not carry a valid MAC (forged, altered, "
                          "or made with another BACKUP_PASSPHRASE)")


def verify(manifest: object, passphrase: str, where: str) -> dict:
    """A manifest read from `where` (an object key or a local path), checked before anything trusts it:
    a JSON object, safe names that agree with where it was found, and a valid MAC."""
    if not isinstance(manifest, dict):
        raise ForgedError(f"refused: {where} is not a backup manifest")
    name = check_name(manifest.get("name"))
    if strip_suffix(where) != name:
        raise ForgedError(f"refused: {where} holds the manifest of another backup ({name})")
    for field, suffix in (("key", DUMP_SUFFIX), ("manifest_key", MANIFEST_SUFFIX)):
        value = manifest.get(field)
        if not isinstance(value, str) or value.rsplit("/", 1)[-1] != name + suffix or ".." in value.split("/"):
            raise ForgedError(f"refused: the manifest {where} records the {field} {str(value)[:80]!r}, "
                              f"which is not {name}{suffix}")
    _check_mac(manifest, passphrase, where)
    return manifest
