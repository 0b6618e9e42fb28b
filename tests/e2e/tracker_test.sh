#!/usr/bin/env bash
# End to end with the http_json collector: the real binary exports a
# subject's tickets from tests/tracker/replay_server.py (a stand-in
# tracker replaying the real Zammad responses in $PEX_CORPUS/tickets/),
# then again while the server fails in each way a real one does. A failed
# source must mean exit 1 and no bundle; with --allow-partial exit 3 and a
# bundle whose manifest says "complete": false.
source "$(dirname "$0")/lib.sh"

if [ ! -d "${PEX_CORPUS:-}/tickets/zammad" ]; then
	echo "SKIP: \$PEX_CORPUS/tickets/zammad is absent (corpus needed)" >&2
	exit 77
fi
SERVER=$PEX_SOURCE_DIR/tests/tracker/replay_server.py
export PEX_E2E_ZAMMAD_TOKEN=e2e-s3cret

# start_server SCENARIO_JSON: sets $port and $server_pid
start_server() {
	printf '%s' "$1" >"$WORK/scenario.json"
	rm -f "$WORK/port"
	python3 "$SERVER" --scenario "$WORK/scenario.json" \
		--corpus "$PEX_CORPUS/tickets" >"$WORK/port" 2>"$WORK/server.err" &
	server_pid=$!
	for _ in $(seq 100); do
		grep -q '^PORT ' "$WORK/port" 2>/dev/null && break
		sleep 0.1
	done
	port=$(sed -n 's/^PORT //p' "$WORK/port")
	[ -n "$port" ] || fail "replay server did not start"
}
stop_server() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# write_config EXTRA_OPTIONS_YAML_LINES: a config with one http_json source
write_config() {
	cat >"$WORK/portex.yaml" <<EOF
version: 1
controller:
  name: LeanIT Demo Ltd
  contact: privacy@leanit.example
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
      auth: header
      auth_header: Authorization
      auth_token: "Token token=\${PEX_E2E_ZAMMAD_TOKEN}"
      max_attempts: 2
      retry_backoff_ms: 10
$1
EOF
}

ROUTES_TAIL='{"path": "/api/v1/tickets/search",
  "file": "zammad/zammad_api_tickets_list_expand.json"},
 {"path": "/api/v1/ticket_articles/by_ticket/1",
  "file": "zammad/docs_examples/api_ticket_articles_01_list_articles_by_ticket.json"}]}'
# users/search with a fault (JSON members), then the normal routes
scenario() {
	printf '{"routes": [{"path": "/api/v1/users/search", %s
  "file": "zammad/zammad_api_users_list_expand.json",
  "require_header": {"Authorization": "Token token=e2e-s3cret"}},
 %s' "${1:+$1,}" "$ROUTES_TAIL"
}

# ---- the good export ------------------------------------------------------
start_server "$(scenario '')"
write_config ""
zip=$WORK/nicole.zip
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:nicole.braun@zammad.org \
	-r REQ-7 -o "$zip"
expect_code 0 "export from the tracker"
[ -f "$zip" ] || fail "no bundle written"
no_leftovers "$WORK"
ok "export exits 0 and writes the bundle"

ids=$($CHECK ids "$zip" tickets | tr '\n' ' ')
[ "$ids" = "tracker:1 " ] || fail "ticket ids: '$ids'"
v=$($CHECK get "$zip" '[(t["number"], t["title"], t["status"], t["requester"], len(t["messages"]), t["messages"][0]["direction"]) for t in d["tickets"]]')
[ "$v" = '[["77001", "Welcome to Zammad!", "new", "nicole.braun@zammad.org", 2, "inbound"]]' ] \
	|| fail "ticket fields: $v"
v=$($CHECK get "$zip" '"Café Kopi susu" in d["tickets"][0]["messages"][0]["body_text"]')
[ "$v" = "true" ] || fail "non-ASCII body text lost: $v"
$CHECK same "$zip" || fail "bundle.json and bundle.xml differ"
$CHECK hashes "$zip" || fail "manifest hashes"
$CHECK absent "$zip" e2e-s3cret "Token token" || fail "the token is in the bundle"
v=$(python3 - "$zip" <<'EOF'
import json, sys, zipfile
m = json.loads(zipfile.ZipFile(sys.argv[1]).read("manifest.json"))
print(m["complete"], [(s["id"], s["status"], s["records"]) for s in m["sources"]])
EOF
)
[ "$v" = "True [('tracker', 'ok', 1)]" ] || fail "manifest: $v"
case "$err$out" in *e2e-s3cret*) fail "the token was printed" ;; esac
ok "the ticket, its HTML/non-ASCII messages, manifest complete, no token"
stop_server

# ---- the same subject while the tracker fails -----------------------------
# fault_case NAME FAULT_JSON OPTIONS_YAML REASON
fault_case() {
	local name=$1 fault=$2 opts=$3 reason=$4 z=$WORK/$1.zip
	start_server "$(scenario "$fault")"
	write_config "$opts"
	run "$PORTEX" export -c "$WORK/portex.yaml" \
		-s email:nicole.braun@zammad.org -o "$z"
	expect_code 1 "$name"
	[ ! -e "$z" ] || fail "$name: a bundle was written"
	expect_in "$err$out" "$reason" "$name: reason"
	case "$err$out" in *e2e-s3cret*) fail "$name: token printed" ;; esac
	no_leftovers "$WORK"
	run "$PORTEX" export -c "$WORK/portex.yaml" \
		-s email:nicole.braun@zammad.org -o "$z" --allow-partial
	expect_code 3 "$name --allow-partial"
	[ -f "$z" ] || fail "$name: no partial bundle"
	v=$(python3 - "$z" <<'EOF'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
m = json.loads(z.read("manifest.json"))
d = json.loads(z.read("data/bundle.json"))
s = [s for s in m["sources"] if s["id"] == "tracker"][0]
print(m["complete"], d["complete"], s["status"], len(d.get("tickets", [])))
EOF
)
	[ "$v" = "False False failed 0" ] || fail "$name partial manifest: $v"
	rm -f "$z"
	stop_server
	ok "$name: exit 1 and no bundle; --allow-partial: exit 3, complete false"
}

fault_case http500 '"fault": "500"' "" "HTTP 500 (server error); gave up after 2 attempts"
fault_case slow '"fault": "slow", "delay": 2' "      timeout_ms: 300" \
	"no complete response within 300 ms"
fault_case truncated '"fault": "truncate"' "" "malformed JSON"
fault_case huge '"fault": "huge"' "" "larger than max_response_bytes"
fault_case html '"fault": "html"' "" "content type text/html"
fault_case redirects '"fault": "redirect_loop"' "" "more than 5 redirects"
fault_case auth '"fault": "401"' "" "HTTP 401: the tracker refused"

# 429 with Retry-After, then success: a complete bundle
start_server "$(scenario '"fault": "429", "fault_times": 1, "retry_after": "1"')"
write_config ""
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:nicole.braun@zammad.org \
	-o "$WORK/r429.zip"
expect_code 0 "429 then success"
[ -f "$WORK/r429.zip" ] || fail "429: no bundle"
stop_server
ok "429 with Retry-After, then 200: complete bundle"

# nothing listens: connection refused
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_config ""
run "$PORTEX" export -c "$WORK/portex.yaml" -s email:nicole.braun@zammad.org \
	-o "$WORK/refused.zip"
expect_code 1 "connection refused"
[ ! -e "$WORK/refused.zip" ] || fail "refused: a bundle was written"
expect_in "$err$out" "cannot connect to 127.0.0.1" "refused: reason"
ok "connection refused: exit 1, no bundle"

echo "all $PASS tracker checks passed"
