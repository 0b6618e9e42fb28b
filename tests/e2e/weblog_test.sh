#!/usr/bin/env bash
# End-to-end: the access_log collector through the real binary. A generated
# day of traffic (bench/weblog-gen.py e2e) in which the subject used a NAT
# address that other people used before and after them; the log is rotated
# and the older half gzip'd. The bundle must hold exactly the subject's
# events, visits, devices and address, and nothing of the others.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GEN="$PEX_SOURCE_DIR/bench/weblog-gen.py"
WCHECK="python3 $E2E_DIR/weblog_check.py"
D="$WORK/weblog"

python3 "$GEN" e2e "$D"
gzip "$D/access.log.1"
cat >"$D/portex.yaml" <<'EOF'
version: 1
controller:
  name: LeanIT Test Ltd
  contact: privacy@leanit.example
  authority: Jersey Office of the Information Commissioner
categories:
  usage:
    purposes: [keeping the website secure and working]
    lawful_basis: [legitimate_interests]
    retention: 26 months
  technical:
    purposes: [diagnosing faults for the browsers in use]
    lawful_basis: [legitimate_interests]
    retention: 14 months
sources:
  - id: weblog
    collector: access_log
    category: usage
    description: the website's access logs
    weak_identities: true
    options:
      paths: [access.log*]
      format: combined
      match: [ip]
      session_idle_minutes: 30
EOF
IDENT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["identity"])' "$D/expected.json")

run "$PORTEX" export -c "$D/portex.yaml" -s "$IDENT" -o "$WORK/subject.zip"
expect_code 0 "export by NAT address and window"
expect_in "$out" "complete" "export summary"
ok "export by $IDENT"

run $WCHECK "$WORK/subject.zip" "$D/expected.json" weblog
expect_code 0 "bundle against expected.json"
echo "$out" | sed 's/^/    /'
ok "exactly the subject's events, sessions, devices, address"

run $CHECK same "$WORK/subject.zip"
expect_code 0 "JSON and XML hold the same values"
run $CHECK hashes "$WORK/subject.zip"
expect_code 0 "manifest hashes"
ok "bundle consistent (same, hashes)"

# bundle.compression: the deflate level of the zip's files. The same
# records at 1 and at 9: both whole and verified, 9 the smaller.
for level in 1 9; do
	printf 'bundle:\n  compression: %s\n' "$level" |
		cat "$D/portex.yaml" - >"$D/level$level.yaml"
	run "$PORTEX" export -c "$D/level$level.yaml" -s "$IDENT" \
		-o "$WORK/level$level.zip"
	expect_code 0 "export at compression $level"
	run "$PORTEX" verify "$WORK/level$level.zip"
	expect_code 0 "verify at compression $level"
done
sizes=$(python3 - "$WORK/level1.zip" "$WORK/level9.zip" <<'PY'
import sys, zipfile
z1, z9 = (zipfile.ZipFile(p) for p in sys.argv[1:])
for name in ("data/bundle.json", "data/bundle.xml"):
    a, b = z1.getinfo(name), z9.getinfo(name)
    print(name, a.compress_size, b.compress_size, a.file_size)
PY
)
echo "$sizes" | sed 's/^/    /'
echo "$sizes" | awk '$3 >= $2 { bad = 1 } END { exit bad }' ||
	fail "compression 9 is not smaller than 1: $sizes"
printf 'bundle:\n  compression: 0\n' | cat "$D/portex.yaml" - >"$D/level0.yaml"
run "$PORTEX" export -c "$D/level0.yaml" -s "$IDENT" -o "$WORK/level0.zip"
expect_code 1 "compression 0"
expect_in "$err" "level0.yaml:27: bundle.compression" "the error names the file, line and setting"
[ ! -e "$WORK/level0.zip" ] || fail "a bundle was written with a bad config"
ok "bundle.compression 1 and 9 both verify, 9 smaller; 0 refused"

# Without weak_identities the source never sees the address. Alone, it
# is the only source that could: the address is refused before anything
# is read (a bundle would wrongly say nothing is held).
sed 's/weak_identities: true/weak_identities: false/' "$D/portex.yaml" \
	>"$D/strict.yaml"
run "$PORTEX" export -c "$D/strict.yaml" -s "$IDENT" -o "$WORK/strict.zip"
expect_code 2 "a weak identity and no source that accepts one"
echo "$err" | grep "weak_identities: true" >/dev/null ||
	fail "the refusal does not say what to set: $err"
[ ! -e "$WORK/strict.zip" ] || fail "a refused export wrote a bundle"
# Beside a source that accepts it (a second, empty log), the strict
# source still gets nothing of it.
: >"$D/empty.log"
cat >>"$D/strict.yaml" <<YAML
  - id: other
    collector: access_log
    category: usage
    weak_identities: true
    options: {paths: ["$D/empty.log"], format: combined, match: [ip]}
YAML
run "$PORTEX" export -c "$D/strict.yaml" -s "$IDENT" -o "$WORK/strict.zip"
expect_code 0 "export with a strict and a weak-accepting source"
n=$($CHECK ids "$WORK/strict.zip" events | grep -c . || true)
[ "$n" -eq 0 ] || fail "weak identity used without weak_identities: $n"
ok "weak identities stay out unless the source accepts them"

# The log is matched by address only (match: [ip]): a user name would
# find nothing, so it is refused rather than answered with an empty
# bundle; so is an email, which no log source searches by.
for id in username:carol email:carol@example.com; do
	run "$PORTEX" export -c "$D/portex.yaml" -s "$id" -o "$WORK/u.zip"
	expect_code 2 "$id with a log matched by address only"
	echo "$err" | grep "type '${id%%:*}'" >/dev/null ||
		fail "$id: the refusal does not name the type: $err"
done
[ ! -e "$WORK/u.zip" ] || fail "a refused identity wrote a bundle"
ok "identity types the log is not matched by are refused"

# A narrower window (its middle hour) gives the subject's requests inside
# it and nothing else.
read -r NARROW want < <(python3 - "$D/expected.json" <<'PY'
import datetime as dt, json, sys
e = json.load(open(sys.argv[1]))
ip, w = e["identity"][3:].split("@")
f = "%Y-%m-%dT%H:%M:%SZ"
a, b = (dt.datetime.strptime(x, f) for x in w.split("/"))
h = dt.timedelta(minutes=30)
lo, hi = (a + h).strftime(f), (b - h).strftime(f)
n = sum(1 for x in e["events"] if lo <= x["at"] <= hi)
print("ip:%s@%s/%s %d" % (ip, lo, hi, n))
PY
)
run "$PORTEX" export -c "$D/portex.yaml" -s "$NARROW" -o "$WORK/narrow.zip"
expect_code 0 "export with a narrower window"
run $CHECK absent "$WORK/narrow.zip" "Edg/119" "OPR/104"
expect_code 0 "no one else's user agent in a narrower window"
n=$($CHECK ids "$WORK/narrow.zip" events | grep -c . || true)
[ "$n" -eq "$want" ] || fail "narrow window: $n events, wanted $want"
[ "$n" -gt 0 ] || fail "narrow window: no events at all"
ok "a narrower window gives the subject's requests inside it only ($n)"

# A missing log fails the source; the bundle is not complete.
sed 's/paths: \[access.log\*\]/paths: [access.log, missing.log]/' \
	"$D/portex.yaml" >"$D/missing.yaml"
run "$PORTEX" export -c "$D/missing.yaml" -s "$IDENT" -o "$WORK/missing.zip"
[ "$code" -ne 0 ] || fail "a missing log file did not fail the export"
expect_in "$out$err" "missing.log" "missing file named"
ok "a missing log file fails the source"

# A malformed line that holds the subject's address: counted in the
# manifest's warnings, and README.txt tells the person that something
# could not be read, though the export is complete.
B="$WORK/badline"
mkdir -p "$B"
cp "$D/access.log" "$B/access.log"
printf '%s this line is not in the format\n' "${IDENT#ip:}" |
	sed 's/@[^ ]*//' >>"$B/access.log"
sed "s|paths: \[access.log\*\]|paths: [\"$B/access.log\"]|" \
	"$D/portex.yaml" >"$B/portex.yaml"
grep -q "$B/access.log" "$B/portex.yaml" || fail "test config not made"
run "$PORTEX" export -c "$B/portex.yaml" -s "$IDENT" -o "$B/out.zip"
expect_code 0 "export with a malformed line of the subject's"
run python3 - "$B/out.zip" <<'PY'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
m = json.loads(z.read("manifest.json"))
w = [x for x in m["warnings"] if "skipped" in x["message"]]
assert len(w) == 1 and w[0]["count"] == 1, m["warnings"]
r = z.read("README.txt").decode()
assert "could not be read" in r and "manifest.json" in r, r[:600]
print(w[0]["message"])
PY
expect_code 0 "warning in the manifest and in README.txt"
ok "a skipped line of the subject's is told in the manifest and README.txt"

# The web log's source is "usage", but its devices and addresses are
# technical data: README.txt gives the person that category's facts too,
# and never says none of their data is technical.
run python3 - "$B/out.zip" <<'PY'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
b = json.loads(z.read("data/bundle.json"))
assert b["technical"]["devices"] and b["technical"]["ip_addresses"]
r = z.read("README.txt").decode()
assert "none of your data among" not in r, r[:1200]
assert "  technical\n    purposes: diagnosing faults for the browsers" \
    " in use" in r and "kept for: 14 months" in r, r[:1200]
PY
expect_code 0 "README.txt describes the technical data"
ok "README.txt gives the technical category's facts for a web log's devices"

# portex check opens the logs: a misspelt path or a glob that matches
# nothing fails it, naming the file and the config's line
run "$PORTEX" check -c "$D/portex.yaml"
expect_code 0 "check with the day's logs"
sed 's/paths: \[access.log\*\]/paths: [acess.log]/' "$D/portex.yaml" \
	>"$D/misspelt.yaml"
run "$PORTEX" check -c "$D/misspelt.yaml"
expect_code 1 "check with a misspelt log path"
expect_in "$out$err" "acess.log" "names the missing file"
expect_in "$out$err" "misspelt.yaml:" "names the config and the source's line"
sed 's/paths: \[access.log\*\]/paths: ["nothing*.log"]/' \
	"$D/portex.yaml" >"$D/noglob.yaml"
run "$PORTEX" check -c "$D/noglob.yaml"
expect_code 1 "check with a glob that matches nothing"
expect_in "$out$err" "no log file matches" "says the glob matched nothing"
ok "check opens the log files: a missing one fails it"

echo "weblog: $PASS checks passed"
