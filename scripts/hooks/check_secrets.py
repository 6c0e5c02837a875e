#!/usr/bin/env python3
"""pre-commit hook: refuse committing .env files and anything that looks like a credential.

Usage: check_secrets.py FILE...   (pre-commit passes the staged files). Exit 1 with one line per
finding, 0 when clean. A line that must contain such a string on purpose can carry the marker
`pragma: allowlist secret` (the detect-secrets convention). Standard library only.
"""
from __future__ import annotations

import math
import os
import re
import sys
from typing import Iterable, List, Tuple

ALLOWED_ENV_NAMES = {".env.example", ".env.sample", ".env.template"}
ALLOW_MARKER = "pragma: allowlist secret"
MAX_BYTES = 5 * 1024 * 1024

PATTERNS: List[Tuple[str, re.Pattern]] = [
    ("Telegram bot token", re.compile(r"(?<![0-9A-Za-z])\d{6,}:[A-Za-z0-9_-]{30,}")),
    ("AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("DigitalOcean Spaces access key", re.compile(r"(?<![A-Z0-9])DO[0-9A-Z]{18}(?![A-Z0-9])")),
    ("DigitalOcean API token", re.compile(r"\bdo[opr]_v1_[a-f0-9]{64}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})\b")),
    ("Pulumi access token", re.compile(r"\bpul-[a-f0-9]{40}\b")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("age secret key", re.compile(r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b")),
    ("URL with an embedded password", re.compile(
        r"\b(?:postgres(?:ql)?|mysql|redis|amqp|https?)://[^\s:/@'\"]+:(?P<pw>[^\s@/'\"]{8,})@")),
]
# KEY = value where the key names a secret and the value looks random (not a placeholder).
ASSIGNMENT = re.compile(
    r"(?i)\b[A-Z0-9_]*(?:SECRET|PASSWORD|PASSPHRASE|TOKEN|API_KEY|ACCESS_KEY)[A-Z0-9_]*\s*[:=]\s*"
    r"[\"']?(?P<value>[A-Za-z0-9+/=_\-.]{20,})")
PLACEHOLDER_WORDS = ("change", "replace", "example", "placeholder", "dummy", "xxxx", "your", "test",
                     "fake", "sample", "redacted", "secret")


def entropy(s: str) -> float:
    counts = {c: s.count(c) for c in set(s)}
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def looks_random(value: str) -> bool:
    low = value.lower()
    if any(w in low for w in PLACEHOLDER_WORDS):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return has_digit and has_alpha and entropy(value) >= 3.5


def is_env_file(path: str) -> bool:
    name = os.path.basename(path)
    if name in ALLOWED_ENV_NAMES or name.endswith(tuple(ALLOWED_ENV_NAMES)):
        return False
    return name == ".env" or name.endswith(".env") or name.startswith(".env.")


def scan_text(text: str) -> Iterable[Tuple[int, str]]:
    for lineno, line in enumerate(text.splitlines(), 1):
        if ALLOW_MARKER in line:
            continue
        for label, rx in PATTERNS:
            m = rx.search(line)
            if not m:
                continue
            if label.startswith("URL") and not looks_random(m.group("pw")) and "$" not in m.group("pw"):
                # postgresql://user:change-me@host is a placeholder; a random-looking one is not
                continue
            if label.startswith("URL") and "$" in m.group("pw"):
                continue  # ${POSTGRES_PASSWORD}: interpolated, not a literal
            yield lineno, label
        m = ASSIGNMENT.search(line)
        if m and looks_random(m.group("value")):
            yield lineno, "secret-looking assignment"


def check(paths: List[str]) -> List[str]:
    problems = []
    for path in paths:
        if is_env_file(path):
            problems.append(f"{path}: .env files are never committed (the deploy writes .env on the "
                            "server; document new keys in compose/.env.example)")
            continue
        try:
            if os.path.getsize(path) > MAX_BYTES:
                continue
            with open(path, "rb") as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError):
            continue
        if b"\0" in data:
            continue  # binary
        seen = set()
        for lineno, label in scan_text(data.decode("utf-8", "replace")):
            if (lineno, label) in seen:
                continue
            seen.add((lineno, label))
            problems.append(f"{path}:{lineno}: looks like a {label}; remove it (or, if it is a harmless "
                            f"fixture, add '{ALLOW_MARKER}' to the line)")
    return problems


def main(argv: List[str]) -> int:
    problems = check(argv)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"refusing the commit: {len(problems)} possible secret(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
