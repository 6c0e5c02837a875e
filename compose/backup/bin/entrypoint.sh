#!/bin/sh
# The backup container's entrypoint: make the backup directory (a bind mount of the block volume's
# backups/) writable for the unprivileged user, then run the command. botstack-backup drops root.
set -eu
dir="${BACKUP_DIR:-/backups}"
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$dir"
    chown botstack-backup:botstack-backup "$dir" || echo "entrypoint: cannot chown $dir" >&2
fi
exec "$@"
