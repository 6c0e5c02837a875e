"""The botstack Pulumi program (docs/infra.md). `__main__.py` wires the components; here:

- `config`: the typed, validated stack configuration (every `botstack:*` key documented there);
  `errors` (ConfigError), `memory` (the droplet-size rule)
- `contract`: every key of the stack's `.env` (pure Python; .env.example and docs are generated
  from it); `envfile`: its values for one stack
- `facts`: paths, names and sizes several layers share (shell, cloud-init and compose check them)
- `prices`: DigitalOcean facts and the dated price table behind `monthlyCostUsd`
- `release`: the release's files, id and archive (pure Python; the dress rehearsal uses it too)
- `cloudinit`: renders `cloud-init/user-data.yaml`
- `teardown`: what runs on the droplet when it goes (final backup, stop and flush), through an ssh
  wrapper that acts on its own droplet only and skips only one DigitalOcean says is gone; `passphrase`: the backup passphrase
  scripts/deploy stores in the stack's config (both pure Python)
- `resize`: the pre-resize step's script (final backup and graceful stop before a resize in place)
- one ComponentResource per concern, each with a typed Args: `network`, `server`, `storage`,
  `database`, `deploy`, `monitoring`, `project`
- `program`: config in, outputs out, around the wiring of `__main__.py`
"""
