#!/bin/sh
# write-env.sh: writes the stack's environment, read from stdin, to $BOTSTACK_ROOT/shared/.env.
#
# Run by pulumi-command with the rendered .env (Pulumi secrets) on stdin; never as an argument, never
# echoed, never logged. The file is written to a temporary file in the same directory (umask 077) and
# moved into place, so readers see the old or the new file, whole, always mode 0600.
# Refuses empty input and lines that are not KEY=VALUE, blank or # comments (reports line numbers only).
set -eu
PROG=write-env
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"
umask 077

SHARED=$BOTSTACK_ROOT/shared
mkdir -p "$SHARED"
TMP=$(mktemp "$SHARED/.env.XXXXXX")
trap 'rm -f "$TMP"' EXIT
trap 'exit 1' HUP INT TERM
cat >"$TMP"

[ -s "$TMP" ] || die "no environment on stdin; $ENV_FILE left as it was"
BAD=$(awk '!/^[ \t]*(#.*)?$/ && !/^[A-Za-z_][A-Za-z0-9_]*=/ { printf "%s%d", sep, NR; sep = "," }' "$TMP")
[ -z "$BAD" ] || die "stdin line(s) $BAD are not KEY=VALUE; $ENV_FILE left as it was"

chmod 600 "$TMP"
mv -f "$TMP" "$ENV_FILE"
trap - EXIT
log "wrote $ENV_FILE ($(grep -c '^[A-Za-z_]' "$ENV_FILE") keys, mode 0600)"
