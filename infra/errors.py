"""The one error bad stack configuration raises (pure Python)."""
from __future__ import annotations

NAMESPACE = "botstack"


class ConfigError(Exception):
    """A bad stack configuration. str(error) is one line: `botstack:<key>: <problem>`."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{NAMESPACE}:{key}: {problem}")
