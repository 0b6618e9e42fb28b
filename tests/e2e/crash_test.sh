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
rm -rf "$WORK"/.out.zip.portex-*
run "$PORTEX" export -q -c "$WORK/portex.yaml" -s email:bench@example.com \
	-o "$WORK/out.zip"
expect_code 0 "export after the crashes"
run "$PORTEX" verify "$WORK/out.zip"
expect_code 0 "verify after the crashes"
ok "the next export succeeds and verifies"
echo "$PASS passed"
