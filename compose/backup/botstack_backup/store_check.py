"""What the backup store cannot guarantee, asked of the bucket at every run (docs/backups.md, "The store").

Three questions the S3 API can answer: is versioning on, could a lifecycle rule expire current
backups, is Object Lock on. Each answer is parsed fail-closed: a refusal (AccessDenied from a key
without the permission, NotImplemented from a store without the call), an error, or an answer of an
unexpected shape is "cannot verify", never a pass and never a crash.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Tuple

from botocore.exceptions import BotoCoreError, ClientError

from .offsite import Offsite

log = logging.getLogger("botstack_backup")

OK = "ok"            # guaranteed, as far as the API tells
RISK = "risk"        # the store may lose backups the tool means to keep
UNKNOWN = "unknown"  # the store would not say: cannot verify
INFO = "info"        # worth knowing, neither good nor bad

STATE_FILE = ".store-check.json"  # the problems last told to the admins (told again only when they change)

# the answers that mean "nothing configured" rather than "cannot verify"
NO_LIFECYCLE = "NoSuchLifecycleConfiguration"
NO_OBJECT_LOCK = "ObjectLockConfigurationNotFoundError"


@dataclass(frozen=True)
class Finding:
    topic: str  # "versioning", "lifecycle", "object lock"
    level: str  # OK, RISK, UNKNOWN or INFO
    text: str

    @property
    def problem(self) -> bool:
        return self.level in (RISK, UNKNOWN)

    def line(self) -> str:
        return f"{self.topic}: {self.text}"


@dataclass(frozen=True)
class StoreReport:
    findings: Tuple[Finding, ...]

    @property
    def problems(self) -> List[Finding]:
        return [f for f in self.findings if f.problem]

    def summary(self) -> str:
        """One line of the problems ("" when there are none)."""
        return "; ".join(f.line() for f in self.problems)

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(sorted(f.line() for f in self.problems)).encode()).hexdigest()


class Unanswered(Exception):
    """The store gave no usable answer (its text says why)."""


def _code(exc: ClientError) -> str:
    err = exc.response.get("Error") if isinstance(exc.response, dict) else None
    code = err.get("Code") if isinstance(err, dict) else None
    return str(code) if code else "an error without a code"


def _ask(call: Callable[..., Any], bucket: str, absent: Optional[str] = None) -> Optional[Mapping[str, Any]]:
    """The store's answer as a mapping; None when it answers `absent` (nothing configured)."""
    try:
        answer = call(Bucket=bucket)
    except ClientError as exc:
        code = _code(exc)
        if absent is not None and code == absent:
            return None
        raise Unanswered(f"cannot verify (the store answered {code})") from None
    except (BotoCoreError, OSError) as exc:
        raise Unanswered(f"cannot verify ({type(exc).__name__})") from None
    if not isinstance(answer, Mapping):
        raise Unanswered("cannot verify (an answer that is not a document)")
    return answer


# -- versioning ----------------------------------------------------------------------------------------
def versioning(answer: Mapping[str, Any]) -> Finding:
    status = answer.get("Status")
    if status == "Enabled":
        return Finding("versioning", OK, "on: a deleted or overwritten backup stays as an older version")
    if status == "Suspended":
        return Finding("versioning", RISK, "suspended: a deleted or overwritten backup is gone at once")
    if status is None:
        return Finding("versioning", RISK, "off: a deleted or overwritten backup is gone at once")
    return Finding("versioning", UNKNOWN, f"cannot verify (an unknown status {str(status)[:40]!r})")


# -- lifecycle -----------------------------------------------------------------------------------------
def _scope(rule: Mapping[str, Any]) -> Tuple[str, bool]:
    """(the rule's key prefix, whether it can apply to an untagged object). Raises Unanswered."""
    if "Filter" not in rule:  # the older form: a Prefix beside the rule's other fields
        prefix = rule.get("Prefix", "")
        if not isinstance(prefix, str):
            raise Unanswered("a rule with a prefix that is not text")
        return prefix, True
    filt = rule["Filter"]
    if not isinstance(filt, Mapping):
        raise Unanswered("a rule with a filter that is not a document")
    inner = filt.get("And", filt)
    if not isinstance(inner, Mapping):
        raise Unanswered("a rule with an And filter that is not a document")
    prefix = inner.get("Prefix", "")
    if not isinstance(prefix, str):
        raise Unanswered("a rule with a prefix that is not text")
    # The tool tags no object, so a rule that needs a tag never reaches a backup. Size filters may.
    tagged = bool(inner.get("Tag") or inner.get("Tags"))
    return prefix, not tagged


def _overlaps(rule_prefix: str, prefix: str) -> bool:
    return prefix.startswith(rule_prefix) or rule_prefix.startswith(prefix)


def _days(action: Mapping[str, Any]) -> str:
    if "Days" in action:
        days = action["Days"]
        if isinstance(days, bool) or not isinstance(days, int):
            raise Unanswered("a rule whose Days is not a number")
        return f"after {days} days"
    if "Date" in action:
        return f"on {str(action['Date'])[:32]}"
    raise Unanswered("a rule that says neither Days nor Date")


def _rule_findings(rule: Mapping[str, Any], prefix: str) -> List[Finding]:
    name = str(rule.get("ID") or "(no id)")[:60]
    status = rule.get("Status")
    if status not in ("Enabled", "Disabled"):
        raise Unanswered(f"the rule {name!r} has an unknown status")
    rule_prefix, untagged = _scope(rule)
    if status == "Disabled" or not untagged or not _overlaps(rule_prefix, prefix):
        return []
    out: List[Finding] = []
    expiration = rule.get("Expiration")
    if expiration is not None:
        if not isinstance(expiration, Mapping):
            raise Unanswered(f"the rule {name!r} has an Expiration that is not a document")
        if "Days" in expiration or "Date" in expiration:
            out.append(Finding("lifecycle", RISK, (
                f"the rule {name!r} expires current objects under {rule_prefix or '(every key)'!r} "
                f"{_days(expiration)}: it would delete backups the tool keeps (final, monthly)")))
        elif expiration.get("ExpiredObjectDeleteMarker") is not True:
            raise Unanswered(f"the rule {name!r} has an Expiration of an unknown kind")
    transitions = rule.get("Transitions") or ([rule["Transition"]] if rule.get("Transition") else [])
    if not isinstance(transitions, list):
        raise Unanswered(f"the rule {name!r} has Transitions that are not a list")
    for t in transitions:
        if not isinstance(t, Mapping):
            raise Unanswered(f"the rule {name!r} has a transition that is not a document")
        out.append(Finding("lifecycle", RISK, (
            f"the rule {name!r} moves objects under {rule_prefix or '(every key)'!r} to the storage class "
            f"{str(t.get('StorageClass'))[:30]} {_days(t)}: a restore would have to thaw them first")))
    return out


def lifecycle(answer: Optional[Mapping[str, Any]], prefix: str) -> List[Finding]:
    """Findings about the rules that reach objects under `prefix` (answer None: no rules at all)."""
    if answer is None:
        return [Finding("lifecycle", OK, "no rule: nothing expires a backup but the tool")]
    rules = answer.get("Rules")
    if not isinstance(rules, list):
        return [Finding("lifecycle", UNKNOWN, "cannot verify (an answer without a list of rules)")]
    out: List[Finding] = []
    try:
        for rule in rules:
            if not isinstance(rule, Mapping):
                raise Unanswered("a rule that is not a document")
            out.extend(_rule_findings(rule, prefix))
    except Unanswered as exc:
        return [Finding("lifecycle", UNKNOWN, f"cannot verify ({exc})")]
    return out or [Finding("lifecycle", OK, "no rule expires current backups")]


# -- object lock ---------------------------------------------------------------------------------------
def object_lock(answer: Optional[Mapping[str, Any]]) -> Finding:
    if answer is None:
        return Finding("object lock", INFO, "off: a key that may delete versions can remove backups for good")
    conf = answer.get("ObjectLockConfiguration")
    if not isinstance(conf, Mapping):
        return Finding("object lock", UNKNOWN, "cannot verify (an answer without a configuration)")
    if conf.get("ObjectLockEnabled") != "Enabled":
        return Finding("object lock", INFO, "off: a key that may delete versions can remove backups for good")
    rule = conf.get("Rule")
    default = rule.get("DefaultRetention") if isinstance(rule, Mapping) else None
    if not isinstance(default, Mapping):
        return Finding("object lock", INFO, "on, without a default retention: backups are locked only if "
                                            "uploaded with a retention (the tool sets none)")
    span = (f"{default['Days']} days" if "Days" in default else
            f"{default['Years']} years" if "Years" in default else "an unknown time")
    return Finding("object lock", INFO, (
        f"on ({str(default.get('Mode'))[:12]}, {span}): pruning only hides a backup (a delete marker); its "
        f"versions stay, and are billed, until the lock ends, and no lifecycle rule removes them sooner"))


# -- all of it -----------------------------------------------------------------------------------------
def check(client: Any, bucket: str, prefix: str) -> StoreReport:
    """Ask the store the three questions (a boto3 S3 client); never raises."""
    findings: List[Finding] = []
    try:
        findings.append(versioning(_ask(client.get_bucket_versioning, bucket) or {}))
    except Unanswered as exc:
        findings.append(Finding("versioning", UNKNOWN, str(exc)))
    try:
        findings.extend(lifecycle(_ask(client.get_bucket_lifecycle_configuration, bucket, NO_LIFECYCLE), prefix))
    except Unanswered as exc:
        findings.append(Finding("lifecycle", UNKNOWN, str(exc)))
    try:
        findings.append(object_lock(_ask(client.get_object_lock_configuration, bucket, NO_OBJECT_LOCK)))
    except Unanswered as exc:
        findings.append(Finding("object lock", UNKNOWN, str(exc)))
    return StoreReport(tuple(findings))


# -- telling -------------------------------------------------------------------------------------------
def _last_told(path: str) -> str:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return ""
    told = data.get("told") if isinstance(data, dict) else None
    return told if isinstance(told, str) else ""


def _remember(path: str, fingerprint: str) -> None:
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"told": fingerprint}, f)
        os.replace(tmp, path)
    except OSError as exc:  # at worst the admins hear the same problems again next run
        log.error("store check: cannot save what was told: %s", exc.strerror)


def tell(report: StoreReport, backup_dir: str, send: Callable[[str], int], bucket: str) -> None:
    """Log every finding; alert the admins when the problems differ from the ones last told (a store
    without versioning should not page every day, and a new problem must not wait). Remembered as
    told only once an admin got it: an unreachable Bot API means trying again next run."""
    for f in report.findings:
        (log.warning if f.problem else log.info)("store %s: %s", bucket, f.line())
    path = os.path.join(backup_dir, STATE_FILE)
    told = _last_told(path)
    now = report.fingerprint() if report.problems else ""
    if now == told:
        return
    if report.problems:
        lines = "\n".join(f"- {f.line()}" for f in report.problems)
        sent = send(f"\u26a0\ufe0f botstack backup store {bucket}: what it cannot guarantee\n{lines}\n"
                    "(told again only when this changes; docs/backups.md, \"The store\")")
    else:
        sent = send(f"\u2705 botstack backup store {bucket}: the earlier store warnings are resolved")
    if sent:
        _remember(path, now)


def at_run(offsite: Offsite, backup_dir: str, send: Callable[[str], int]) -> str:
    """The check a backup run makes once its upload is done: told as above; the problems in one line
    for the run's record ("" when there are none)."""
    report = check(offsite.client, offsite.bucket, offsite.prefix)
    tell(report, backup_dir, send, offsite.bucket)
    return report.summary()
