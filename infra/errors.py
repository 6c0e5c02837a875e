"""The one error bad stack configuration raises (pure Python)."""
from __future__ import annotations

NAMESPACE = "botstack"


class ConfigError(Exception):
    """A bad stack configuration. str(error) is one line: `botstack:<key>: <problem>`."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{NAMESPACE}:{key}: {problem}")


class StackNameError(ConfigError):
    """A stack name DigitalOcean would refuse inside a resource name: `stack <name>: <problem>`."""

    def __init__(self, stack: str, problem: str):
        ConfigError.__init__(self, "stack", problem)
        self.args = (f"stack {stack!r}: {problem}",)

    def __str__(self) -> str:
        return self.args[0]
