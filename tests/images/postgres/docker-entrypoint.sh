#!/usr/bin/env bash
# TEST-ONLY entrypoint of the botstack-test/postgres stand-in. It follows the official postgres
# image's docker-entrypoint.sh as far as botstack relies on it:
#   - `docker-entrypoint.sh postgres [args]` (or `-c ...` args, to which `postgres` is prepended);
#     any other command is exec'd as is (e.g. `pg_dump ...` in images built FROM this one);
#   - as root: create/chown PGDATA and /var/run/postgresql, then re-exec itself as `postgres`;
#   - empty PGDATA: initdb with POSTGRES_USER (default postgres) and POSTGRES_PASSWORD (required
#     unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_INITDB_ARGS; pg_hba `host all all all
#     <POSTGRES_HOST_AUTH_METHOD, default scram-sha-256>`; create POSTGRES_DB (default: the user);
#     run /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz on a socket-only temporary server;
#   - an initialised PGDATA is used as is (no re-init, no password change);
#   - exec postgres in the foreground (PID 1; SIGINT = fast shutdown, the image's STOPSIGNAL).
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 00700 "$PGDATA" || :
	chmod 03775 /var/run/postgresql || :
	# only touch ownership when needed (a big existing cluster would make this slow)
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
	exec gosu postgres "$BASH_SOURCE" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
		log 'Error: Database is uninitialized and superuser password is not specified.'
		log '       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser.'
		exit 1
	fi
	log "initialising a new cluster in $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list, as in the official image
	initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
		--auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA" >/dev/null
	rm -f "$pwfile"
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# a temporary server on the unix socket only, like the official image
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start >/dev/null
	psql_cmd=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		"${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" >/dev/null <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
			*.sh) log "running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
			*.sql) log "running $f"; "${psql_cmd[@]}" --dbname "$POSTGRES_DB" -f "$f" >/dev/null ;;
			*.sql.gz) log "running $f"; gunzip -c "$f" | "${psql_cmd[@]}" --dbname "$POSTGRES_DB" >/dev/null ;;
			*) log "ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	unset PGPASSWORD
	log 'init process complete; ready for start up'
else
	log "PostgreSQL database directory $PGDATA already initialised; skipping initialisation"
fi

exec "$@"
