"""Manifests that only the passphrase holder can write, and names that stay inside their directory.

Whoever can write to the bucket can recompute a sha256, so the manifest carries an HMAC-SHA256 of its
canonical JSON (every field but "mac"), keyed with PBKDF2-HMAC-SHA256 of the backup passphrase and a
random salt. The slow key derivation matters: the MAC must not make guessing the passphrase any
cheaper than gpg's own S2K does. docs/backups.md shows how to check a MAC with python3 alone.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
from typing import Any, Dict

from .errors import ForgedError
from .store import DUMP_SUFFIX, MANIFEST_SUFFIX, NAME_RE as FILE_NAME_RE, parse_ts, strip_suffix

Manifest = Dict[str, Any]
# A manifest is a few KiB (table names and counts); anything far larger is not one, and is not read
# whole into the container's 192M.
MAX_MANIFEST_BYTES = 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

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


def load(data: bytes, where: str) -> object:
    """The JSON value of a manifest file or object; ForgedError for anything that is not JSON."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ForgedError(f"refused: {where} is {len(data)} bytes, not a backup manifest")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ForgedError(f"refused: {where} is not a backup manifest (not JSON: {type(exc).__name__})") from None


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
    salt_hex, value = mac.get("salt"), mac.get("value")
    if (not isinstance(salt_hex, str) or not re.fullmatch(r"(?:[0-9a-f]{2}){16,64}", salt_hex)
            or not isinstance(value, str) or not _HEX64.match(value)):
        raise ForgedError(f"refused: the manifest {where} does not carry a valid MAC (malformed)")
    expected = hmac.new(_key(passphrase, bytes.fromhex(salt_hex)), canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), value.encode("ascii")):
        raise ForgedError(f"refused: the manifest {where} does not carry a valid MAC (forged, altered, "
                          "or made with another BACKUP_PASSPHRASE)")


def verify(manifest: object, passphrase: str, where: str) -> Manifest:
    """A manifest read from `where` (an object key or a local path), checked before anything trusts it:
    a JSON object, safe names that agree with where it was found, a valid MAC, and every field the
    tool reads of the type it expects. Whatever it holds, the only failure is ForgedError."""
    try:
        return _verify(manifest, passphrase, where)
    except ForgedError:
        raise
    except Exception as exc:  # planted data must end in a refusal, never in an escaped exception
        raise ForgedError(f"refused: the manifest {where} could not be checked ({type(exc).__name__})") from None


def precheck(manifest: object, where: str) -> Manifest:
    """The checks that cost nothing (no key derivation): shape, names, the MAC's form."""
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
    return manifest


def _verify(manifest: object, passphrase: str, where: str) -> Manifest:
    checked = precheck(manifest, where)
    _check_mac(checked, passphrase, where)
    _check_fields(checked, where)
    return checked


def _malformed(where: str, field: str, value: object) -> ForgedError:
    return ForgedError(f"refused: the manifest {where} records a malformed {field} ({str(value)[:40]!r})")


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_fields(m: Manifest, where: str) -> None:
    """Every field the tool reads, of the type it reads it as (even under a valid MAC)."""
    for field in ("sha256_encrypted", "sha256_plain"):
        if not isinstance(m.get(field), str) or not _HEX64.match(m[field]):
            raise _malformed(where, field, m.get(field))
    for field in ("size_encrypted", "size_plain"):
        if not _count(m.get(field)):
            raise _malformed(where, field, m.get(field))
    tables = m.get("tables")
    if not isinstance(tables, dict) or not all(isinstance(k, str) and _count(v) for k, v in tables.items()):
        raise _malformed(where, "tables", tables)
    if "final" in m and not isinstance(m["final"], bool):
        raise _malformed(where, "final", m["final"])
    if "schema_version" in m and not isinstance(m["schema_version"], str):
        raise _malformed(where, "schema_version", m["schema_version"])
    if created_at(m) != parse_ts(FILE_NAME_RE.match(m["name"]).group("ts")):  # type: ignore[union-attr]  # check_name matched
        raise _malformed(where, "created_at", m.get("created_at"))


def created_at(m: Manifest) -> dt.datetime:
    """The manifest's creation time (aware, UTC); ForgedError when it is not one."""
    raw = m.get("created_at")
    try:
        t = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if isinstance(raw, str) else None
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise _malformed(str(m.get("manifest_key")), "created_at", raw)
    return t
