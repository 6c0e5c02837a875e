"""Where the backups go, and where a new stack's first start restores from (issue 21).

`botstack:backupStoreEndpoint`, `backupStoreRegion`, `backupStoreBucket` and the secrets
`backupStoreAccessKeyId`, `backupStoreSecretAccessKey`: the user's own S3-compatible store
(Backblaze B2, Cloudflare R2, Scaleway...). Set, the program makes no Spaces bucket or key and the
backup job writes there (the `.env`'s SPACES_* keys carry the store); unset, Spaces as before.
All four but the region go together: a partial store is refused, naming what is missing.

`botstack:restoreFrom` (`s3://BUCKET[/PREFIX]`, read with the stack's store key and endpoint unless
`restoreFromAccessKeyId`/`restoreFromSecretAccessKey` (a read-only key for it: another stack's
Spaces bucket needs one, the stack's own Spaces key reaches its own bucket only) and
`restoreFromEndpoint` say otherwise; `restoreFromPassphrase` when the backups were made with another
passphrase): the first deploy restores the newest authenticated backup there into the
empty database before the bot starts (deploy/activate.sh runs the backup tool's
`restore-into-empty --skip-if-data`); never over existing data.

Pure Python (no pulumi import): infra/config.py reads these keys through it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from infra.errors import ConfigError

Getter = Callable[[str], Any]

DEFAULTS: dict[str, Any] = {
    "backupStoreEndpoint": "",
    "backupStoreRegion": "",
    "backupStoreBucket": "",
    "backupStoreAccessKeyId": "",
    "backupStoreSecretAccessKey": "",
    "restoreFrom": "",
    "restoreFromEndpoint": "",
    "restoreFromPassphrase": "",
    "restoreFromAccessKeyId": "",
    "restoreFromSecretAccessKey": "",
}
SECRET_KEYS = {"backupStoreAccessKeyId", "backupStoreSecretAccessKey", "restoreFromPassphrase",
               "restoreFromAccessKeyId", "restoreFromSecretAccessKey"}
DEFAULT_REGION = "us-east-1"  # what S3 clients sign with when a store has no regions (R2: "auto" works too)

# S3's bucket names (B2's, R2's, Scaleway's too): 3-63 of lowercase letters, digits, '.', '-'
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ENDPOINT = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?")
_REGION = re.compile(r"[a-z0-9-]{1,40}")
_PREFIX = re.compile(r"[A-Za-z0-9._/-]*")
# a key id and secret go into the line-based .env: printable, no spaces
_CREDENTIAL = re.compile(r"[\x21-\x7e]{8,256}")


@dataclass(frozen=True)
class OwnStore:
    endpoint: str
    region: str
    bucket: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class RestoreFrom:
    bucket: str
    prefix: str
    endpoint: str        # empty: the stack's store's
    passphrase: str = field(repr=False)  # empty: the stack's backupPassphrase
    access_key_id: str = field(default="", repr=False)      # empty: the stack's store key
    secret_access_key: str = field(default="", repr=False)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _text(get: Getter, key: str) -> str:
    raw = get(key)
    return "" if raw is None else str(raw).strip()


def _endpoint(key: str, value: str) -> str:
    if not _ENDPOINT.fullmatch(value):
        raise ConfigError(key, f"{value[:80]!r} is not an https:// endpoint (e.g. https://s3.eu-central-003.backblazeb2.com)")
    return value.rstrip("/")


def own_store(get: Getter) -> Optional[OwnStore]:
    values = {k: _text(get, k) for k in ("backupStoreEndpoint", "backupStoreRegion", "backupStoreBucket",
                                         "backupStoreAccessKeyId", "backupStoreSecretAccessKey")}
    if not any(values.values()):
        return None
    missing = [k for k, v in values.items() if not v and k != "backupStoreRegion"]
    if missing:
        raise ConfigError(missing[0], "is not set, but " + ", ".join(
            k for k, v in values.items() if v) + " is: the own store needs its endpoint, bucket and both "
            "secrets (pulumi config set [--secret] botstack:<key>), or none of them for Spaces")
    bucket = values["backupStoreBucket"]
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError("backupStoreBucket", f"{bucket[:80]!r} is not a bucket name (3-63 of a-z, 0-9, '.', '-')")
    region = values["backupStoreRegion"] or DEFAULT_REGION
    if not _REGION.fullmatch(region):
        raise ConfigError("backupStoreRegion", f"{region[:60]!r} is not a region name (a-z, 0-9, '-')")
    for key in ("backupStoreAccessKeyId", "backupStoreSecretAccessKey"):
        if not _CREDENTIAL.fullmatch(values[key]):  # the message never repeats a secret
            raise ConfigError(key, "must be 8-256 printable characters without spaces")
    return OwnStore(_endpoint("backupStoreEndpoint", values["backupStoreEndpoint"]), region, bucket,
                    values["backupStoreAccessKeyId"], values["backupStoreSecretAccessKey"])


def restore_from(get: Getter, managed_db: bool) -> Optional[RestoreFrom]:
    uri = _text(get, "restoreFrom")
    endpoint = _text(get, "restoreFromEndpoint")
    passphrase = str(get("restoreFromPassphrase") or "")
    key_id, secret = _text(get, "restoreFromAccessKeyId"), _text(get, "restoreFromSecretAccessKey")
    if not uri:
        for key, value in (("restoreFromEndpoint", endpoint), ("restoreFromPassphrase", passphrase),
                           ("restoreFromAccessKeyId", key_id), ("restoreFromSecretAccessKey", secret)):
            if value:
                raise ConfigError(key, "is set without botstack:restoreFrom")
        return None
    if managed_db:
        raise ConfigError("restoreFrom", "restores into the stack's own PostgreSQL (database: container); a "
                                         "managed cluster restores from DigitalOcean's backups")
    if not uri.startswith("s3://"):
        raise ConfigError("restoreFrom", f"{uri[:80]!r} is not s3://BUCKET/PREFIX")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError("restoreFrom", f"{bucket[:80]!r} is not a bucket name (3-63 of a-z, 0-9, '.', '-')")
    prefix = prefix.strip("/")
    if not _PREFIX.fullmatch(prefix) or ".." in prefix.split("/") or "//" in prefix:
        raise ConfigError("restoreFrom", f"{prefix[:80]!r} is not a key prefix (letters, digits, '.', '_', '-', '/')")
    if passphrase and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{12,256}", passphrase):
        raise ConfigError("restoreFromPassphrase", "must be 12-256 characters of letters, digits and ._~+/=-")
    if bool(key_id) != bool(secret):
        raise ConfigError("restoreFromAccessKeyId" if not key_id else "restoreFromSecretAccessKey",
                          "is not set, but the other half of restoreFrom's key is: both or neither")
    for key, value in (("restoreFromAccessKeyId", key_id), ("restoreFromSecretAccessKey", secret)):
        if value and not _CREDENTIAL.fullmatch(value):
            raise ConfigError(key, "must be 8-256 printable characters without spaces")
    return RestoreFrom(bucket, (prefix + "/") if prefix else "backups/",
                       _endpoint("restoreFromEndpoint", endpoint) if endpoint else "", passphrase, key_id, secret)
