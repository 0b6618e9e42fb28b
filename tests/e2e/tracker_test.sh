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

# ---- attachment files ------------------------------------------------------
# Zammad and Freshdesk tickets whose messages carry attachments: ordinary
# files stored under attachments/tracker_1/<n>-<safe name> with their
# bytes and SHA-256 as the server sent them; hostile names made safe; a
# file over max_attachment_bytes and one the server always fails with 500
# withheld with the reason; no download URL anywhere in the bundle.
# make_attachment_scenario PRESET: writes $WORK/scenario.json and
# $WORK/expect.json ({name: [download path, "stored" | reason]})
make_attachment_scenario() {
	python3 - "$1" "$WORK" <<'EOF'
import base64, json, os, sys
preset, work = sys.argv[1], sys.argv[2]
LONG = "Q3 report " + "x" * 286 + ".txt"          # 300 characters
NONASCII = "Données été — 日本語.txt"
pdf = bytes((i * 7 + (i >> 8)) % 256 for i in range(70000))
B64 = base64.b64encode(pdf).decode()
LIMIT = "larger than the limit of 1048576 bytes"
FAIL = "attachment download: HTTP 500 (server error); gave up after 2 attempts"
# name, route options, outcome, declared size
files = [
    ("report.pdf", {"data_b64": B64, "content_type": "application/pdf"},
     "stored", len(pdf)),
    ("../../etc/passwd", {"data": "root:x:0:0:root:/root:/bin/bash\n"},
     "stored", 32),
    (LONG, {"data": "long name\n"}, "stored", 10),
    (NONASCII, {"data": "Grüße aus Saint-Hélier ☕\n"}, "stored", None),
    ("big-streamed.bin", {"data": "B", "repeat": 2000000,
                          "no_length": True}, LIMIT, 1000),
    ("big-declared.bin", {"data": "C", "repeat": 1500000}, LIMIT, None),
    ("broken.bin", {"data": "never", "fault": "500"}, FAIL, 5),
    ("dropped-once.txt", {"data": "abcdefgh", "repeat": 4096,
                          "fault": "drop_body", "fault_times": 1},
     "stored", 32768),
]
routes, expect, atts = [], {}, []
for i, (name, opts, outcome, size) in enumerate(files):
    aid = 11 + i
    if preset == "zammad":
        path = "/api/v1/ticket_attachment/1/9/%d" % aid
        a = {"id": aid, "filename": name,
             "preferences": {"Content-Type": opts.get("content_type",
                                                      "text/plain")}}
        if size is not None:
            a["size"] = str(size)
    else:
        path = "/files/fd/%d/%s" % (aid, "download")
        a = {"id": aid, "name": name, "attachment_url": "@BASE@" + path +
             "?token=fd-url-s3cret",
             "content_type": opts.get("content_type", "text/plain")}
        if size is not None:
            a["size"] = size
    atts.append(a)
    r = {"path": path}
    r.update(opts)
    routes.append(r)
    expect[name] = [path, outcome]
if preset == "zammad":
    routes += [
        {"path": "/api/v1/users/search",
         "file": "zammad/zammad_api_users_list_expand.json"},
        {"path": "/api/v1/tickets/search",
         "file": "zammad/zammad_api_tickets_list_expand.json"},
        {"path": "/api/v1/ticket_articles/by_ticket/1", "body": [
            {"id": 9, "ticket_id": 1, "sender": "Customer",
             "from": "Nicole Braun <nicole.braun@zammad.org>",
             "content_type": "text/plain", "body": "files attached",
             "internal": False, "created_at": "2021-08-02T11:57:18Z",
             "attachments": atts}]}]
else:
    routes += [
        {"path": "/api/v2/tickets", "file": "freshdesk/v2_all_tickets.json"},
        {"path": "/api/v2/tickets/1", "file": "freshdesk/v2_ticket_1.json"},
        {"path": "/api/v2/tickets/1/conversations", "body": [
            {"id": 5, "body": "<p>files attached</p>", "incoming": True,
             "private": False, "from_email": "dummyname@example.com",
             "created_at": "2016-05-20T08:00:00+02:00",
             "attachments": atts}]}]
    # the corpus ticket's own attachment is on Freshdesk's CDN host
    expect["attachment.txt"] = [None, "not on the tracker"]
json.dump({"routes": routes}, open(os.path.join(work, "scenario.json"), "w"))
json.dump(expect, open(os.path.join(work, "expect.json"), "w"))
EOF
}

# check_attachments ZIP: the files, the manifest, the reasons
check_attachments() {
	python3 - "$1" "$WORK/expect.json" "$port" <<'EOF'
import hashlib, json, re, sys, urllib.request, zipfile
zpath, expect_path, port = sys.argv[1], sys.argv[2], sys.argv[3]
expect = json.load(open(expect_path))
z = zipfile.ZipFile(zpath)
assert z.testzip() is None
d = json.loads(z.read("data/bundle.json"))
m = json.loads(z.read("manifest.json"))
listed = {f["path"]: f for f in m["files"]}
seen, stored = set(), set()
for t in d["tickets"]:
    for msg in t.get("messages", []):
        for a in msg.get("attachments", []):
            name = a["name"]
            assert name in expect, "unexpected attachment %r" % name
            assert name not in seen, "listed twice: %r" % name
            seen.add(name)
            path, outcome = expect[name]
            if outcome != "stored":
                assert "path" not in a and "sha256" not in a, a
                assert outcome in a.get("withheld", ""), (name, a)
                if "larger than" in outcome and "bytes" in a:
                    # a size the download proved wrong is not kept
                    assert a["bytes"] > 1048576, (name, a)
                continue
            assert "withheld" not in a, (name, a)
            p = a["path"]
            mo = re.fullmatch(r"attachments/tracker_1/([0-9]+)-([^/]+)", p)
            assert mo, "path %r" % p
            safe = mo.group(2)
            assert ".." not in safe and "/" not in safe and "\\" not in safe
            assert len(safe.encode()) <= 120, (len(safe.encode()), safe)
            assert p not in stored, "two files at %r" % p
            stored.add(p)
            data = z.read(p)
            sent = urllib.request.urlopen(
                "http://127.0.0.1:%s%s" % (port, path)).read()
            assert data == sent, "%s: bytes differ from the server's" % p
            sha = hashlib.sha256(sent).hexdigest()
            assert a["bytes"] == len(sent) and a["sha256"] == sha, a
            f = listed.get(p)
            assert f, "%s not in the manifest" % p
            assert f["bytes"] == len(sent) and f["sha256"] == sha, f
            assert f.get("media_type") == a["media_type"], (f, a)
missing = set(expect) - seen
assert not missing, "attachments not listed: %r" % missing
in_zip = {n for n in z.namelist() if n.startswith("attachments/")}
assert in_zip == stored, "zip %r vs stored %r" % (in_zip, stored)
print(len(stored), len(seen) - len(stored))
EOF
}

# attachment_export PRESET SUBJECT "STORED WITHHELD"
attachment_export() {
	local z=$WORK/att-$1.zip
	make_attachment_scenario "$1"
	start_server "$(cat "$WORK/scenario.json")"
	write_config "      max_attachment_bytes: 1048576"
	if [ "$1" = freshdesk ]; then
		# the same source on the Freshdesk preset, basic auth
		sed -i -e 's/preset: zammad/preset: freshdesk/' \
			-e 's/auth: header/auth: basic/' \
			-e '/auth_header:/d' \
			-e 's/auth_token: .*/auth_user: "${PEX_E2E_ZAMMAD_TOKEN}"\n      auth_password: X/' \
			"$WORK/portex.yaml"
	fi
	run "$PORTEX" export -c "$WORK/portex.yaml" -s "$2" -r REQ-9 -o "$z"
	expect_code 0 "$1 export with attachments"
	[ -f "$z" ] || fail "$1: no bundle"
	no_leftovers "$WORK"
	v=$(check_attachments "$z") || fail "$1 attachments: $v"
	[ "$v" = "$3" ] || fail "$1: stored/withheld counts $v, wanted $3"
	$CHECK hashes "$z" || fail "$1: manifest hashes"
	$CHECK same "$z" || fail "$1: bundle.json and bundle.xml differ"
	python3 - "$z" <<'EOF' || fail "$1: a download URL is in the bundle"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if n.startswith("attachments/"):
        continue
    text = z.read(n).decode("utf-8", "replace")
    for needle in ("ticket_attachment", "/files/fd/", "fd-url-s3cret",
                   "127.0.0.1", "cdn.freshdesk.com"):
        assert needle not in text, "%s holds %r" % (n, needle)
EOF
	v=$(python3 - "$z" <<'EOF'
import json, sys, zipfile
m = json.loads(zipfile.ZipFile(sys.argv[1]).read("manifest.json"))
s = [s for s in m["sources"] if s["id"] == "tracker"][0]
print(m["complete"], s["status"], json.dumps(m).count("withheld"))
EOF
)
	case "$v" in "True ok "[1-9]*) ;; *) fail "$1: manifest $v" ;; esac
	run "$PORTEX" verify "$z"
	expect_code 0 "$1: portex verify"
	stop_server
}

attachment_export zammad email:nicole.braun@zammad.org "5 3"
ok "zammad: 5 files stored (safe names, server's bytes and SHA-256, in the manifest), 3 withheld with reasons, no URL, verify passes"
attachment_export freshdesk email:dummyname@example.com "5 4"
ok "freshdesk: 5 files stored from attachment_url, CDN and failing ones withheld, no URL, verify passes"

echo "all $PASS tracker checks passed"
