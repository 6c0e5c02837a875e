"""The botstack Pulumi program (docs/infra.md).

- `config`: the typed, validated stack configuration (every `botstack:*` key documented there)
- `prices`: DigitalOcean facts and the dated price table behind `monthlyCostUsd`
- `release`: the release's files, id and archive (pure Python; the dress rehearsal uses it too)
- `cloudinit`: renders `cloud-init/user-data.yaml`
- one ComponentResource per concern: `network`, `server`, `storage`, `database`, `deploy`,
  `monitoring` (Monitoring and Project)
- `program.build`: all of it, config first; `__main__.py` exports its outputs
"""
