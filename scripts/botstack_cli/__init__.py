"""`botstack`: day-2 operations of a deployed stack from your machine (status, logs, ssh, backups,
restore, rollback, maintenance), driven by the stack's own outputs. Entry point: scripts/botstack.

- `outputs`: the stack's outputs (`pulumi stack output --json`, never with secrets, or a saved file)
- `remote`: SSH to the admin user with the host key pinned to the stack's `knownHostsLine`
- `agent`: the droplet side, sent over SSH and run as the deploy user
- `commands`: the command line
"""


class CliError(Exception):
    """A failure worth one line to the user; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code
