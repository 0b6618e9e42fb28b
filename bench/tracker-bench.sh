#!/usr/bin/env bash
# Export of one subject with many tickets from the tracker stand-in:
# tests/tracker/replay_server.py --generate serves a Zammad-shaped tracker
# (users/search, tickets/search paged, articles per ticket) built on the
# fly, and the real binary exports through the zammad preset. Prints the
# wall time and peak memory (GNU time -v) of the export.
#
#   bench/tracker-bench.sh [TICKETS] [MESSAGES_PER_TICKET]
#   (default 10000 tickets x 10 = 100,000 messages)
#   PORTEX=build/portex (use a Release build for figures)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PORTEX=${PORTEX:-$here/build/portex}
tickets=${1:-10000}
msgs=${2:-10}
work=$(mktemp -d)
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

[ -x "$PORTEX" ] || { echo "no portex binary at $PORTEX" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) needed" >&2; exit 1; }

python3 "$here/tests/tracker/replay_server.py" \
	--generate "$tickets,$msgs,alice@example.com" >"$work/port" &
server_pid=$!
for _ in $(seq 100); do
	grep -q '^PORT ' "$work/port" 2>/dev/null && break
	sleep 0.1
done
port=$(sed -n 's/^PORT //p' "$work/port")

cat >"$work/portex.yaml" <<EOF
version: 1
controller: {name: Bench Ltd, contact: privacy@bench.example}
categories:
  service:
    purposes: [providing the managed IT service]
    lawful_basis: [contract]
    retention: contract term plus 6 years
sources:
  - id: tracker
    collector: http_json
    category: service
    options:
      base_url: http://127.0.0.1:$port
      preset: zammad
      per_page: 200
EOF

/usr/bin/time -v "$PORTEX" export -c "$work/portex.yaml" \
	-s email:alice@example.com -o "$work/bundle.zip" \
	>"$work/out" 2>"$work/time"
n=$(python3 -c 'import json,sys,zipfile
d=json.loads(zipfile.ZipFile(sys.argv[1]).read("data/bundle.json"))
print(len(d["tickets"]), sum(len(t.get("messages",[])) for t in d["tickets"]))' \
	"$work/bundle.zip")
echo "tickets, messages in the bundle: $n"
echo "bundle bytes: $(stat -c %s "$work/bundle.zip")"
grep -E 'Elapsed \(wall|Maximum resident|User time|System time' "$work/time"
