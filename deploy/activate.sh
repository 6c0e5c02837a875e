#!/bin/sh
# activate.sh <release-id>: make $BOTSTACK_ROOT/releases/<release-id> the running stack.
#
# Run by pulumi-command over SSH on the droplet (as the deploy user, docker group) after the release's
# files were unpacked and shared/.env was written; run the same way by the local dress rehearsal.
#
#   1. checks the release (compose.yml renders with shared/.env) and builds its images while the
#      old release keeps running (a build failure changes nothing that runs);
#   2. with RESTORE_FROM in the .env: restore-into-empty (the backup tool) before any bot starts;
#      stops the old bot (two bots polling one token conflict);
#   3. `docker compose up -d --wait --wait-timeout $BOTSTACK_WAIT_TIMEOUT --remove-orphans`;
#   4. on failure: prints the last log lines of the services that are not up (never the .env),
#      brings the previous release back up (built and health-gated the same way), exits 1;
#   5. on success: current -> this release, previous -> the release that ran before, deletes the
#      other releases unpacked before this one (and their images), removes dangling images.
# Safe to re-run with the same id (converges, keeps previous) and on the first deploy (no previous).
#
# Environment: BOTSTACK_ROOT (default /opt/botstack), BOTSTACK_WAIT_TIMEOUT (seconds, default 180),
# BOTSTACK_LOG_LINES (default 60), BOTSTACK_COMPOSE_EXTRA and BOTSTACK_BOT_SERVICE (see lib.sh).
# Exports BOTSTACK_RELEASE=<release-id> to compose (the bot's /status shows it).
set -eu
PROG=activate
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: activate.sh <release-id>"
NEW=$1
case $NEW in
	'' | *[!0-9a-zA-Z._-]*) die "bad release id: $NEW" ;;
esac
WAIT_TIMEOUT=${BOTSTACK_WAIT_TIMEOUT:-180}
LOG_LINES=${BOTSTACK_LOG_LINES:-60}
NEW_DIR=$BOTSTACK_ROOT/releases/$NEW

[ -f "$NEW_DIR/compose/compose.yml" ] || die "no release $NEW ($NEW_DIR/compose/compose.yml missing)"
[ -f "$ENV_FILE" ] || die "$ENV_FILE missing (write-env.sh first)"

# one activation at a time
if command -v flock >/dev/null 2>&1; then
	exec 9>"$BOTSTACK_ROOT/.activate.lock"
	flock -w 600 9 || die "another activate.sh holds $BOTSTACK_ROOT/.activate.lock"
fi

CUR=$(release_of "$BOTSTACK_ROOT/current")
if [ -n "$CUR" ] && [ ! -f "$BOTSTACK_ROOT/releases/$CUR/compose/compose.yml" ]; then
	log "current points at a missing release ($CUR): treating this as a first deploy"
	CUR=
fi

# up_release <id>: build and start a release's stack, health-gated
up_release() {
	BOTSTACK_RELEASE=$1
	export BOTSTACK_RELEASE
	compose_in "$BOTSTACK_ROOT/releases/$1" up -d --wait --wait-timeout "$WAIT_TIMEOUT" --remove-orphans
}

# show_failures <id> [up-output-file]: status of every service, and the last log lines of the bot
# and of every service compose named as failing or that is not running/healthy (never the .env)
show_failures() {
	_dir=$BOTSTACK_ROOT/releases/$1
	_ps=$(compose_in "$_dir" ps -a --format '{{.Service}} {{.State}} {{.Health}} {{.ExitCode}}' 2>/dev/null || :)
	log "services of release $1 (service state health exit-code):"
	printf '%s\n' "$_ps" >&2
	_failing=$({
		echo "$BOT_SERVICE"
		printf '%s\n' "$_ps" | awk '$2 != "running" || ($3 != "" && $3 != "healthy" && $3 != "0") { print $1 }'
		# compose's own verdict: "container botstack-<service>-1 is unhealthy" / "... exited (1)"
		[ -z "${2:-}" ] || sed -n -e "s/.*container ${PROJECT}[-_]\([a-z0-9_-]*\)[-_][0-9][0-9]* is unhealthy.*/\1/p" \
			-e "s/.*container ${PROJECT}[-_]\([a-z0-9_-]*\)[-_][0-9][0-9]* exited.*/\1/p" "$2"
	} | sort -u)
	for _svc in $_failing; do
		log "last $LOG_LINES log lines of $_svc:"
		compose_in "$_dir" logs --no-color --tail "$LOG_LINES" "$_svc" >&2 || :
	done
}

BOTSTACK_RELEASE=$NEW
export BOTSTACK_RELEASE

log "release $NEW (current: ${CUR:-none})"
compose_in "$NEW_DIR" config --quiet || die "release $NEW: compose.yml does not render; nothing changed"

log "building images of $NEW (the running stack is untouched)"
compose_in "$NEW_DIR" build || die "release $NEW: image build failed; nothing changed"

# botstack:restoreFrom (RESTORE_FROM in the .env): the newest authenticated backup of that store goes
# into the EMPTY database before the bot ever starts (docs/backups.md, "A new stack from existing
# backups"). A database with data is left alone (every later deploy: nothing is downloaded); a
# failure (nothing found, a refused backup) stops the deploy before the bot starts.
RESTORE_FROM=$(sed -n 's/^RESTORE_FROM=//p' "$ENV_FILE" | tail -n 1)
if [ -n "$RESTORE_FROM" ]; then
	log "restoring the newest backup of $RESTORE_FROM into the database if it is empty"
	compose_in "$NEW_DIR" run --rm -T backup botstack-backup restore-into-empty --skip-if-data ||
		die "release $NEW: restore-into-empty failed (above); the bot was not started"
fi

if [ -n "$CUR" ] && [ "$CUR" != "$NEW" ]; then
	log "stopping the bot of $CUR"
	BOTSTACK_RELEASE=$CUR compose_in "$BOTSTACK_ROOT/releases/$CUR" stop "$BOT_SERVICE" ||
		log "could not stop the old bot (continuing: up replaces it)"
fi

log "starting $NEW (waiting up to ${WAIT_TIMEOUT}s for health)"
UP_OUT=$(mktemp)
trap 'rm -f "$UP_OUT"' EXIT
if ! up_release "$NEW" >"$UP_OUT" 2>&1; then
	cat "$UP_OUT" >&2
	log "release $NEW did not become healthy"
	show_failures "$NEW" "$UP_OUT"
	if [ -n "$CUR" ] && [ "$CUR" != "$NEW" ]; then
		log "rolling back to $CUR"
		BOTSTACK_RELEASE=$CUR compose_in "$BOTSTACK_ROOT/releases/$CUR" build ||
			log "rebuilding $CUR failed (trying with the images at hand)"
		if up_release "$CUR"; then
			log "rolled back: $CUR is running again"
		else
			log "ROLLBACK FAILED: $CUR did not come back healthy"
			show_failures "$CUR"
		fi
	elif [ -n "$CUR" ]; then
		log "$NEW was already the current release: nothing to roll back to"
	else
		log "no previous release to roll back to (first deploy)"
	fi
	exit 1
fi
cat "$UP_OUT" >&2

if [ "$CUR" != "$NEW" ]; then
	if [ -n "$CUR" ]; then
		relink previous "$CUR"
	fi
	relink current "$NEW"
fi
PREV=$(release_of "$BOTSTACK_ROOT/previous")
log "current -> $NEW${PREV:+, previous -> $PREV}"

# delete the releases older than previous: keep current, previous, and any release unpacked after
# this one (waiting for its own activation)
for _d in "$BOTSTACK_ROOT"/releases/*; do
	[ -d "$_d" ] || continue
	_id=$(basename "$_d")
	case $_id in *.tmp) continue ;; esac
	[ -z "$(find "$_d" -prune -newer "$NEW_DIR")" ] || continue
	if [ "$_id" != "$NEW" ] && [ "$_id" != "$PREV" ]; then
		log "deleting old release $_id"
		rm -rf "$_d"
		# its images (compose.yml tags them botstack-<service>:<release-id>)
		docker image ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
			grep -E "^botstack-[a-z0-9_-]+:$_id\$" | xargs -r docker image rm >/dev/null 2>&1 || :
	fi
done

# images no tag points at any more; never images a container uses
docker image prune -f >/dev/null 2>&1 || :
log "release $NEW is live"
