# shellcheck shell=sh
# Shared helpers of the deploy scripts (sourced, never run). POSIX sh.
#
# Environment (all optional):
#   BOTSTACK_ROOT           releases, symlinks and shared/.env live here (default /opt/botstack)
#   BOTSTACK_COMPOSE_EXTRA  LOCAL/TEST HOOK: colon-separated absolute paths of extra compose files
#                           added after the release's compose.yml to every compose call (as
#                           `-f compose.yml -f extra...`; the dress rehearsal adds its
#                           Bot API double and S3 double this way). Never set on the droplet.
#   BOTSTACK_BOT_SERVICE    the bot's compose service name (default bot)

# shellcheck disable=SC2034  # used by the scripts that source this file
BOTSTACK_ROOT=${BOTSTACK_ROOT:-/opt/botstack}
ENV_FILE=$BOTSTACK_ROOT/shared/.env
# shellcheck disable=SC2034
BOT_SERVICE=${BOTSTACK_BOT_SERVICE:-bot}
PROJECT=botstack

log() { printf '%s: %s\n' "${PROG:-deploy}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# compose_in <release-dir> <compose args...>: docker compose on the stack of one release
compose_in() {
	_dir=$1
	shift
	_files="$_dir/compose/compose.yml${BOTSTACK_COMPOSE_EXTRA:+:$BOTSTACK_COMPOSE_EXTRA}"
	# COMPOSE_FILE (':'-separated) is what `-f a -f b` says; set only for this call
	COMPOSE_FILE=$_files COMPOSE_PATH_SEPARATOR=: \
		docker compose -p "$PROJECT" --env-file "$ENV_FILE" "$@"
}

# release_of <symlink>: the release id a symlink (current/previous) points to, or nothing
release_of() {
	if [ -L "$1" ]; then
		basename "$(readlink "$1")"
	fi
}

# relink <name> <release-id>: atomically point $BOTSTACK_ROOT/<name> at releases/<release-id>
relink() {
	ln -sfn "releases/$2" "$BOTSTACK_ROOT/.$1.tmp"
	mv -Tf "$BOTSTACK_ROOT/.$1.tmp" "$BOTSTACK_ROOT/$1"
}
