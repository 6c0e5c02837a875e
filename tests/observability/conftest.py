"""Fixtures for the observability tests: the bot's own fixtures (the Bot API double, the running
bot in-process or as `python -m bot`), a free local port, and a /metrics scraper."""
from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # botstack_cli, as scripts/botstack runs it

from tests.backup.conftest import bucket, botapi, clock, make_tool, s3_server, seeded_db  # noqa: F401 - fixtures
from tests.bot.conftest import api, make_bot, spawn_bot  # noqa: F401 - fixtures, re-exported


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page: {(name, sorted labels): value}. The page must parse as
    Prometheus' text format (the parser raises otherwise)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
