#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests, on loopback only.
#
#   pg_test_server.sh start DIR [WATCH_PID]  -> prints the port on stdout
#   pg_test_server.sh stop DIR
#
# DIR must not exist yet (or be empty); the cluster, its unix socket and
# its log live there. When run as root the server runs as the user
# `nobody` (PostgreSQL refuses to run as root), with DIR owned by it.
# With WATCH_PID, a watchdog stops the server as soon as that process is
# gone, so a crashed test never leaves a server behind.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: $0 start|stop DIR [WATCH_PID]" >&2
	exit 2
}

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

stop() {
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w \
			stop >/dev/null 2>&1 || true
	fi
}

case "$cmd" in
stop)
	stop
	exit 0
	;;
start) ;;
*)
	echo "$0: unknown command $cmd" >&2
	exit 2
	;;
esac

[ -x "$PGBIN/initdb" ] || {
	echo "$0: $PGBIN/initdb not found (apt-get install postgresql-15)" >&2
	exit 1
}
mkdir -p "$dir/sock"
if [ "$(id -u)" -eq 0 ]; then
	chown -R nobody: "$dir"
	# nobody must be able to reach DIR through its parents.
	chmod 0755 "$(dirname "$dir")" 2>/dev/null || true
fi
as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
	-E SQL_ASCII --no-locale --no-sync >"$dir/initdb.log" 2>&1 || {
	cat "$dir/initdb.log" >&2
	exit 1
}

# Pick a free loopback port; a race with another process is retried.
for _ in 1 2 3 4 5; do
	port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
	if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
		-t 30 -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 \
		-c fsync=off -c full_page_writes=off" start \
		>/dev/null 2>&1; then
		if [ -n "${3:-}" ]; then
			watch=$3
			# Detached: outlives this script, not the test.
			(
				while kill -0 "$watch" 2>/dev/null; do
					sleep 1
				done
				stop
			) >/dev/null 2>&1 </dev/null &
			disown
		fi
		echo "$port"
		exit 0
	fi
done
cat "$dir/server.log" >&2
exit 1
