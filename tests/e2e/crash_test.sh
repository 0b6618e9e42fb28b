#!/usr/bin/env bash
# kill -9 at any moment must leave no file at the output path that a user
# could take for a finished bundle; the next run must still succeed.
source "$(dirname "$0")/lib.sh"

cat > "$WORK/portex.yaml" <<YAML
controller: {name: Crash Ltd, contact: privacy@crash.example}
categories:
  usage:
    purposes: [measuring the website]
    lawful_basis: [legitimate_interests]
    retention: 26 months
sources:
  - id: analytics
    collector: sql
    category: usage
    options:
      database: hits.sqlite
      kind: usage_event
      query: SELECT id, at, path FROM hits WHERE email = :email
      id_column: id
      fields: {at: at, path: path}
YAML
python3 "$PEX_SOURCE_DIR/bench/export-gen.py" "$WORK/hits.sqlite" 150000

for delay in 0.2 0.5 0.9 1.5; do
	rm -f "$WORK/out.zip"
	"$PORTEX" export -q -c "$WORK/portex.yaml" \
		-s email:bench@example.com -o "$WORK/out.zip" &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if [ -e "$WORK/out.zip" ]; then
		# finished before the kill: then it must be whole
		"$PORTEX" verify "$WORK/out.zip" >/dev/null \
			|| fail "kill after ${delay}s left a broken out.zip"
	fi
	ok "kill -9 after ${delay}s: no partial out.zip"
done
# leftovers are hidden work files only, never the bundle's name
left=$(find "$WORK" -maxdepth 1 -name 'out.zip*' ! -name out.zip)
[ -z "$left" ] || fail "visible leftovers: $left"
# What the killed runs left holds personal data: the next run into the
# folder removes it. Not what a live process or another host made, nor
# what another host's process of the same number made.
tag=$(python3 -c 'import socket
h = 2166136261
for b in socket.gethostname().encode():
    h = ((h ^ b) * 16777619) & 0xffffffff
print("%08x" % h)')
other=$( [ "$tag" = 00000000 ] && echo 00000001 || echo 00000000 )
sleep 300 & live=$!
mkdir "$WORK/.out.zip.portex-$tag-$live-work-live01"
: >"$WORK/.out.zip.portex-$other-999999.tmp"
# a dead process of this host: the one just killed is gone for sure
: >"$WORK/.out.zip.portex-$tag-$pid.tmp"
mkdir -p "$WORK/.portex-$tag-$pid-batch-dead01/sub"
: >"$WORK/.portex-$tag-$pid-batch-dead01/sub/s0-0.spool"
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:bench@example.com \
	-o "$WORK/out.zip"
expect_code 0 "export after the crashes"
expect_in "$err" "that a killed earlier run left" "says what it removed"
left=$(cd "$WORK" && ls -A | grep '^\.' | sort | tr '\n' ' ')
[ "$left" = ".out.zip.portex-$other-999999.tmp .out.zip.portex-$tag-$live-work-live01 " ] ||
	fail "after the sweep: $left"
kill "$live" 2>/dev/null || true
ok "a killed run's leftovers are removed by the next run, no one else's"
run "$PORTEX" verify "$WORK/out.zip"
expect_code 0 "verify after the crashes"
ok "the next export succeeds and verifies"
echo "$PASS passed"
