"""tests/infra: the Pulumi program in Pulumi's unit-test runtime (see harness.py)."""


def pytest_configure(config):
    # the provider SDKs warn about their own deprecated resources on import
    for module in ("pulumi_digitalocean", "pulumi_command"):
        config.addinivalue_line("filterwarnings", f"ignore::DeprecationWarning:{module}.*")

