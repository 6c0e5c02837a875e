#!/bin/sh
# final-backup.sh: one last backup to Spaces before the server goes (run by `pulumi destroy`).
#
# Container database mode (profile localdb: a `backup` service): runs `botstack-backup run --final`
# in the backup container (started first if it is not running) and exits with its status, so a
# failed backup stops the destroy. `--final` marks the backup (name `<BACKUP_NAME>-final-<time>`,
# `final: true` in its authenticated manifest): the tool's offsite retention never deletes it. Managed database mode (no backup service; DigitalOcean backs the managed
# database up), or nothing deployed: says so and exits 0.
#
# Environment: BOTSTACK_ROOT (default /opt/botstack), BOTSTACK_BACKUP_SERVICE (default backup),
# BOTSTACK_COMPOSE_EXTRA (see lib.sh).
set -eu
PROG=final-backup
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"
SVC=${BOTSTACK_BACKUP_SERVICE:-backup}

CUR=$(release_of "$BOTSTACK_ROOT/current")
if [ -z "$CUR" ] || [ ! -f "$BOTSTACK_ROOT/releases/$CUR/compose/compose.yml" ] || [ ! -f "$ENV_FILE" ]; then
	log "no release is deployed under $BOTSTACK_ROOT: no final backup to take"
	exit 0
fi
DIR=$BOTSTACK_ROOT/releases/$CUR
BOTSTACK_RELEASE=$CUR
export BOTSTACK_RELEASE

if ! compose_in "$DIR" config --services | grep -qx "$SVC"; then
	log "no $SVC service in this deployment (managed database mode): no final backup to take"
	exit 0
fi
if ! compose_in "$DIR" ps --services --status running | grep -qx "$SVC"; then
	log "the $SVC service is not running: starting it"
	compose_in "$DIR" up -d --wait --wait-timeout "${BOTSTACK_WAIT_TIMEOUT:-180}" "$SVC"
fi
log "running the final backup (release $CUR)"
if compose_in "$DIR" exec -T "$SVC" botstack-backup run --final; then
	log "final backup done"
else
	rc=$?
	die "final backup FAILED (exit $rc): the server's data is not safe offsite yet"
fi
