"""A bucket lifecycle simulator: the rules exactly as the Pulumi program registers them on the
SpacesBucket (`lifecycleRules`, camelCase inputs), applied to a moto bucket's objects and versions
on a simulated clock, with S3's semantics (Spaces implements S3's lifecycle configuration):

- `expiration` (days or date) on a current version: in a versioned bucket S3 adds a delete marker
  and the version becomes noncurrent; with `expiredObjectDeleteMarker` (or an age expiration) a
  delete marker left without any other version is removed;
- `noncurrentVersionExpiration.days`: a noncurrent version (delete markers too) is deleted for good
  that many days after it became noncurrent (when its successor was written);
- `abortIncompleteMultipartUploadDays`: multipart uploads begun that many days ago are aborted;
- `prefix`: the rule covers keys starting with it ('' or absent: all keys); `enabled: false`: none.
Ages count from the time, rounded up to the next midnight UTC, as S3 does. moto's own timestamps
are wall-clock, so the simulator notes the simulated time at which it first sees each version and
upload (`observe` after every write). Anything in a rule it does not know is refused, so a rule the
program adds later cannot pass unexamined.
"""
from __future__ import annotations

import itertools
import datetime as dt
from typing import Dict, List

KNOWN = {"id", "enabled", "prefix", "abortIncompleteMultipartUploadDays", "expiration",
         "noncurrentVersionExpiration"}
KNOWN_EXPIRATION = {"days", "date", "expiredObjectDeleteMarker"}


def _due(t: dt.datetime, days: int) -> dt.datetime:
    """S3: creation (or noncurrent) time + days, rounded up to the next midnight UTC."""
    end = t + dt.timedelta(days=days)
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == end else midnight + dt.timedelta(days=1)


class LifecycleSimulator:
    def __init__(self, s3, bucket: str, rules: List[dict]):
        for rule in rules:
            unknown = set(rule) - KNOWN
            unknown |= set(rule.get("expiration") or {}) - KNOWN_EXPIRATION
            unknown |= set(rule.get("noncurrentVersionExpiration") or {}) - {"days"}
            if unknown:
                raise ValueError(f"lifecycle rule {rule.get('id')!r}: the simulator does not know {sorted(unknown)}")
        self.s3, self.bucket, self.rules = s3, bucket, rules
        self.seen: Dict[str, dt.datetime] = {}   # version id / upload id -> simulated time first seen
        self.log: List[str] = []

    # -- the bucket's state ----------------------------------------------------------------------
    def versions(self) -> Dict[str, List[dict]]:
        """key -> its versions and delete markers, newest first: {"id", "latest", "marker"}."""
        out: Dict[str, List[dict]] = {}
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for v in page.get("Versions", []):
                out.setdefault(v["Key"], []).append({"id": v["VersionId"], "latest": v["IsLatest"],
                                                     "marker": False, "modified": v["LastModified"]})
            for m in page.get("DeleteMarkers", []):
                out.setdefault(m["Key"], []).append({"id": m["VersionId"], "latest": m["IsLatest"],
                                                     "marker": True, "modified": m["LastModified"]})
        for vs in out.values():
            vs.sort(key=lambda v: (v["latest"], v["modified"]), reverse=True)
        return out

    def current_keys(self) -> List[str]:
        return sorted(k for k, vs in self.versions().items() if vs and vs[0]["latest"] and not vs[0]["marker"])

    def observe(self, now: dt.datetime) -> None:
        for vs in self.versions().values():
            for v in vs:
                self.seen.setdefault(v["id"], now)
        for u in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            self.seen.setdefault(u["UploadId"], now)

    # -- one day of lifecycle processing ---------------------------------------------------------
    def _rules_for(self, key: str) -> List[dict]:
        return [r for r in self.rules if r.get("enabled", True) and key.startswith(r.get("prefix") or "")]

    def run(self, now: dt.datetime) -> None:
        self.observe(now)
        for key, vs in self.versions().items():
            for rule in self._rules_for(key):
                vs = self._apply(rule, key, vs, now)
        for u in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            for rule in self._rules_for(u["Key"]):
                days = rule.get("abortIncompleteMultipartUploadDays")
                if days is not None and _due(self.seen[u["UploadId"]], days) <= now:
                    self.s3.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"])
                    self.log.append(f"{now:%Y-%m-%d} abort upload {u['Key']}")
                    break
        self.observe(now)

    def _apply(self, rule: dict, key: str, vs: List[dict], now: dt.datetime) -> List[dict]:
        exp = rule.get("expiration") or {}
        if vs and vs[0]["latest"] and not vs[0]["marker"]:
            cur = vs[0]
            date = dt.datetime.fromisoformat(exp["date"]).replace(tzinfo=dt.timezone.utc) if exp.get("date") else None
            if (exp.get("days") is not None and _due(self.seen[cur["id"]], exp["days"]) <= now) or \
                    (date is not None and date <= now):
                self.s3.delete_object(Bucket=self.bucket, Key=key)  # a delete marker on top
                self.log.append(f"{now:%Y-%m-%d} expire {key}")
                self.observe(now)
                vs = self.versions().get(key, [])
        nve = rule.get("noncurrentVersionExpiration") or {}
        if nve.get("days") is not None:
            gone = set()
            for newer, v in itertools.pairwise(vs):
                if _due(self.seen[newer["id"]], nve["days"]) <= now:  # noncurrent since its successor came
                    self.s3.delete_object(Bucket=self.bucket, Key=key, VersionId=v["id"])
                    self.log.append(f"{now:%Y-%m-%d} delete noncurrent {key} {v['id'][:8]}")
                    gone.add(v["id"])
            vs = [v for v in vs if v["id"] not in gone]
        if (exp.get("expiredObjectDeleteMarker") or exp.get("days") is not None) and len(vs) == 1 and vs[0]["marker"]:
            self.s3.delete_object(Bucket=self.bucket, Key=key, VersionId=vs[0]["id"])
            self.log.append(f"{now:%Y-%m-%d} remove expired delete marker {key}")
            vs = []
        return vs
