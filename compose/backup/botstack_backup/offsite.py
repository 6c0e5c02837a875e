"""The offsite copy: a DigitalOcean Spaces bucket (or any S3 API) through boto3.

Written for both the test venv's boto3 and Debian bookworm's python3-boto3 (1.26): only old, stable
calls (upload_fileobj / download_fileobj / list_objects_v2 / put_object / get_object)."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import IO, Any, Dict, Iterator, Optional, Protocol, Tuple, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .config import Config
from .errors import NotFound, OffsiteError

MiB = 1024 * 1024
# A streaming upload holds its parts in memory: at most 3 parts of 8 MiB (2 in flight) keep the
# container far inside its 192M limit even when Spaces is slower than the dump.
TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                          max_concurrency=2, use_threads=True)
TRANSFER.max_in_memory_upload_chunks = 3  # s3transfer's own knob (default 10), in every version
# Downloads go to a file (parts are written as they arrive, memory stays at s3transfer's IO queue):
# fewer, larger ranged GETs. With 8 MiB parts a 285 MiB object took 7.8 s from moto's S3 server,
# with 64 MiB parts 1.4 s (bench/backup_throughput.py's restore ratio, issue 20).
DOWNLOAD = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB,
                          max_concurrency=2, use_threads=True)


class Readable(Protocol):
    """What a streaming upload reads from: a file, or a FollowReader."""

    def read(self, n: int = -1) -> bytes: ...


def _boto_config() -> BotoConfig:
    # Any: the stubs know every keyword, but not that older botocore lacks the checksum ones
    base: Dict[str, Any] = dict(connect_timeout=5, read_timeout=60,
                                retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"})
    try:  # botocore >= 1.36 adds CRC checksums by default, which S3-compatible stores may refuse
        return BotoConfig(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", **base)
    except TypeError:  # older botocore (Debian bookworm): nothing to switch off
        return BotoConfig(**base)


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


class Offsite:
    def __init__(self, cfg: Config):
        cfg.require_spaces()
        self.bucket = cfg.spaces_bucket
        self.prefix = cfg.prefix
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=cfg.spaces_endpoint, region_name=cfg.spaces_region or "us-east-1",
            aws_access_key_id=cfg.spaces_access_key_id,
            aws_secret_access_key=cfg.spaces_secret_access_key, config=_boto_config())

    def _wrap(self, what: str, exc: BaseException) -> OffsiteError:
        return OffsiteError(f"Spaces: {what} failed ({describe(exc)})")

    def upload_stream(self, fileobj: Readable, key: str) -> None:
        try:
            # cast: boto3 only calls read() on it (a FollowReader is no full file object)
            self.client.upload_fileobj(cast(IO[bytes], fileobj), self.bucket, key, Config=TRANSFER,
                                       ExtraArgs={"ContentType": "application/pgp-encrypted"})
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._wrap(f"upload of {key}", exc) from exc

    def upload_file(self, path: str, key: str) -> None:
        with open(path, "rb") as f:
            self.upload_stream(f, key)

    def put_json(self, key: str, data: dict) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, ContentType="application/json",
                                   Body=json.dumps(data, indent=2, sort_keys=True).encode())
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._wrap(f"upload of {key}", exc) from exc

    @contextmanager
    def _downloading(self, key: str) -> Iterator[None]:
        """A missing object becomes NotFound, any other failure an OffsiteError."""
        try:
            yield
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"no object {key} in the bucket") from exc
            raise self._wrap(f"download of {key}", exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._wrap(f"download of {key}", exc) from exc

    def get_manifest(self, key: str, limit: int) -> Tuple[bytes, Optional[str]]:
        """An object's bytes (at most `limit` + 1 of them: a larger object is not read whole) and its
        ETag."""
        with self._downloading(key):
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
            try:
                body = resp["Body"].read(limit + 1)
            finally:
                resp["Body"].close()
        etag = resp.get("ETag")
        return body, etag if isinstance(etag, str) else None

    def download(self, key: str, fileobj: IO[bytes]) -> None:
        with self._downloading(key):
            self.client.download_fileobj(self.bucket, key, fileobj, Config=DOWNLOAD)

    def delete(self, key: str) -> None:
        """A plain DELETE (no version id): in the versioned bucket the object becomes a noncurrent
        version, which the bucket's lifecycle rule removes days later."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._wrap(f"deleting {key}", exc) from exc

    def list(self) -> Dict[str, dict]:
        """All objects under the prefix: key -> {"size", "last_modified"}."""
        out: Dict[str, dict] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for obj in page.get("Contents", []) or []:
                    out[obj["Key"]] = {"size": obj["Size"], "last_modified": obj["LastModified"],
                                       "etag": obj.get("ETag")}
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._wrap("listing the bucket", exc) from exc
        return out


class FollowReader:
    """A read-only file object over a file another thread is still writing.

    `read(n)` blocks until n bytes are there or the writer called `finish()`, so boto3's streaming
    multipart upload gets full parts while the dump is still running."""

    def __init__(self, path: str):
        self._f = open(path, "rb")
        self._cond = threading.Condition()
        self._written = 0
        self._done = False
        self._aborted = False
        self._pos = 0

    # writer side
    def advance(self, n: int) -> None:
        with self._cond:
            self._written += n
            self._cond.notify_all()

    def finish(self, aborted: bool = False) -> None:
        with self._cond:
            self._done = True
            self._aborted = aborted
            self._cond.notify_all()

    # reader side (boto3)
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        with self._cond:
            while True:
                if self._aborted:
                    raise OSError("the backup was aborted while uploading")
                avail = self._written - self._pos
                if self._done or (n is not None and n >= 0 and avail >= n):
                    break
                self._cond.wait(1.0)
            want = avail if n is None or n < 0 else min(n, avail)
        data = self._f.read(want)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._f.close()
