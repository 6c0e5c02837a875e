"""The safety dump `restore --force` takes of the database it is about to replace.

A restore over a live database throws away everything since the backup; the safety dump keeps it:
`pg_dump -Fc` of the target, encrypted like a backup (gpg, the backup passphrase), named
`safety-<database>-<time>.pgdump.gpg` in the backup directory (mode 0600). It is no backup (no
manifest, never uploaded, never pruned, never `latest`): restore it by hand (docs/backups.md)."""
from __future__ import annotations

import logging
import os
import subprocess
import tempfile

from . import gpg, pg
from .context import Context
from .errors import BackupError
from .store import fmt_ts

log = logging.getLogger("botstack_backup")

SUFFIX = ".pgdump.gpg"


def safety_dump(ctx: Context, target_url: str) -> str:
    """Dump and encrypt the target database into the backup directory; its path."""
    ctx.store.ensure_dir()
    name = f"safety-{pg.dbname(target_url)}-{fmt_ts(ctx.now())}{SUFFIX}"
    path = ctx.store.path(name)
    partial = path + ".partial"
    url_nopw, pgenv = pg.split_url(target_url)
    err = tempfile.TemporaryFile()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            dump = subprocess.Popen([pg.tool_path("pg_dump"), "--format=custom", "--no-password",
                                     f"--dbname={url_nopw}"], stdout=subprocess.PIPE, stderr=err,
                                    env=pg.child_env(pgenv))
            try:
                with gpg.encryptor(ctx.cfg.passphrase, dump.stdout, out) as enc:
                    enc.finish()
            finally:
                if dump.stdout:
                    dump.stdout.close()
                rc = dump.wait()
            if rc != 0:
                err.seek(0)
                msg = err.read().decode("utf-8", "replace").strip().splitlines()
                raise BackupError("the safety dump failed, nothing restored: pg_dump: "
                                  + (msg[-1] if msg else f"exit {rc}"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise
    finally:
        err.close()
    log.info("restore: safety dump of %r in %s (%d bytes)", pg.dbname(target_url), path, os.path.getsize(path))
    return path
