"""Errors and the exit codes they map to (documented in docs/backups.md)."""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1            # the operation failed (details on stderr, alert sent, run recorded)
EXIT_USAGE = 2             # bad command line or configuration
EXIT_LOCAL_ONLY = 3        # backup made and kept locally, but the upload to Spaces failed
EXIT_CHECKSUM = 4          # a backup's checksum does not match its manifest: not restored
EXIT_REFUSED = 5           # restore target is not empty (use --force)
EXIT_VERSION = 6           # pg_dump / server major version mismatch
EXIT_BUSY = 7              # another backup operation holds the lock
EXIT_DRILL_MISMATCH = 8    # the drill restored, but row counts differ from the manifest
EXIT_NOT_FOUND = 9         # no such backup
EXIT_FORGED = 10           # a backup that is not provably ours (forged, altered, or unauthenticated): not restored
EXIT_OLDER = 11            # the backup chosen is older than the newest one the tool knows of: not restored


class BackupError(Exception):
    """An operation failed; `exit_code` says how."""

    exit_code = EXIT_FAILED


class ConfigError(BackupError):
    exit_code = EXIT_USAGE


class ChecksumError(BackupError):
    exit_code = EXIT_CHECKSUM


class RefusedError(BackupError):
    exit_code = EXIT_REFUSED


class VersionMismatch(BackupError):
    exit_code = EXIT_VERSION


class BusyError(BackupError):
    exit_code = EXIT_BUSY


class DrillMismatch(BackupError):
    exit_code = EXIT_DRILL_MISMATCH


class NotFound(BackupError):
    exit_code = EXIT_NOT_FOUND


class OffsiteError(BackupError):
    """Spaces (the S3 API) could not be reached or refused the request."""


class ForgedError(BackupError):
    """A backup that is not provably ours (unauthenticated manifest, unsafe name, data that is not
    passphrase-encrypted and integrity-protected): never restored."""

    exit_code = EXIT_FORGED


class RollbackError(BackupError):
    """The backup an operation would take is older than the newest one the tool knows of (its local
    copies, its records): newer ones were deleted from the bucket, or fail verification."""

    exit_code = EXIT_OLDER
