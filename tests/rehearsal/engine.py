"""The engine helpers moved to tests/support/docker_engine.py (shared by every Docker-based test
package); this name stays for scripts/botstack_cli/local.py, which imports it."""
from tests.support.docker_engine import REPO, Engine, cache_dir, compose_binary, docker, docker_env

__all__ = ["REPO", "Engine", "cache_dir", "compose_binary", "docker", "docker_env"]
