#!/bin/sh
# wait-ready.sh: waits until the droplet can take a release: cloud-init finished (droplet only: skipped
# where cloud-init never ran, e.g. the local dress rehearsal), the Docker engine and the compose plugin
# answer, $BOTSTACK_ROOT is writable and $DATA_DIR (the block volume) is there.
#
# Environment: BOTSTACK_ROOT (default /opt/botstack), DATA_DIR (default /mnt/botstack-data),
# BOTSTACK_READY_TIMEOUT (seconds, default 900).
set -eu
PROG=wait-ready
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"
DATA_DIR=${DATA_DIR:-/mnt/botstack-data}
TIMEOUT=${BOTSTACK_READY_TIMEOUT:-900}

if command -v cloud-init >/dev/null 2>&1 && [ -e /var/lib/cloud/instance ]; then
	log "waiting for cloud-init to finish"
	rc=0
	timeout "$TIMEOUT" cloud-init status --wait >/dev/null || rc=$?
	case $rc in
		0) log "cloud-init done" ;;
		2) log "cloud-init finished with recoverable errors (degraded): continuing" ;;
		124) die "cloud-init still running after ${TIMEOUT}s" ;;
		*) cloud-init status --long >&2 || :; die "cloud-init failed (status $rc)" ;;
	esac
else
	log "no cloud-init run on this machine: not waiting for it"
fi

# the engine may still be starting right after cloud-init
i=0
until docker info >/dev/null 2>&1; do
	i=$((i + 1))
	[ "$i" -lt 60 ] || die "the Docker engine does not answer (docker info)"
	sleep 2
done
docker compose version >/dev/null 2>&1 || die "the docker compose plugin is missing"

mkdir -p "$BOTSTACK_ROOT/releases" "$BOTSTACK_ROOT/shared" || die "cannot create $BOTSTACK_ROOT"
[ -w "$BOTSTACK_ROOT/releases" ] || die "$BOTSTACK_ROOT/releases is not writable by $(id -un)"
[ -d "$DATA_DIR" ] || die "data directory $DATA_DIR missing (block volume not mounted?)"
log "ready: $(docker info --format 'Docker {{.ServerVersion}}'), $(docker compose version --short 2>/dev/null || echo compose), data in $DATA_DIR"
