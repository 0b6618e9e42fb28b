#!/usr/bin/env bash
# End to end on the demo data: the real binary, the real SQLite database
# and CSV file; the zip is read back with independent tools (Python's
# zipfile, Info-ZIP unzip, bsdtar) and checked record by record.
source "$(dirname "$0")/lib.sh"

demo=$(demo_copy)
zip=$WORK/alice.zip
run "$PORTEX" export -c "$demo/portex.yaml" -s email:alice@example.com \
	-r REQ-42 -o "$zip"
expect_code 0 "demo export"
[ -f "$zip" ] || fail "no bundle written"
no_leftovers "$WORK"
ok "export exits 0 and writes the bundle"

unzip -tq "$zip" >/dev/null || fail "unzip -t"
bsdtar -tf "$zip" | grep -x data/bundle.xml >/dev/null || fail "bsdtar listing"
for f in README.txt manifest.json data/bundle.json data/bundle.xml \
	schemas/v1/bundle.schema.json schemas/v1/bundle.xsd; do
	unzip -l "$zip" "$f" >/dev/null || fail "$f missing"
done
ok "zip opens with unzip and bsdtar and has the documented layout"

# Exactly Alice's records: the CRM row, both contact-form messages (one
# typed in capitals) and her newsletter subscription; nobody else's.
ids=$($CHECK ids "$zip" contacts | sort | tr '\n' ' ')
want="contact-form:1 contact-form:2 crm:C-17 newsletter:newsletter.csv:2 "
[ "$ids" = "$want" ] || fail "contact ids: got '$ids', want '$want'"
ok "exactly the subject's four records"

# Found by customer id alone: the CRM row gives her email, which finds
# the rest; the same four records.
run "$PORTEX" export -c "$demo/portex.yaml" -s customer_id:C-17 -o "$WORK/by-id.zip"
expect_code 0 "export by customer id"
ids=$($CHECK ids "$WORK/by-id.zip" contacts | sort | tr '\n' ' ')
[ "$ids" = "$want" ] || fail "by customer id: got '$ids', want '$want'"
ok "by customer id alone: the same four records"

# README.txt tells the person what was searched for, and plainly when
# nothing was found
unzip -p "$zip" README.txt | grep "Searched for: email alice@example.com; customer_id C-17 (found in your records)" >/dev/null ||
	fail "README.txt does not say what was searched for"
run "$PORTEX" export -c "$demo/portex.yaml" -s email:nobody@example.com -o "$WORK/none.zip"
expect_code 0 "export of someone nothing is held about"
unzip -p "$WORK/none.zip" README.txt | grep "Nothing about you was found" >/dev/null ||
	fail "README.txt of an empty bundle does not say nothing was found"
readme=$(unzip -p "$zip" README.txt)
echo "$readme" | grep "(none of your data among: service, usage, technical)" >/dev/null ||
	fail "README.txt does not say which kinds hold none of her data"
[ "$(echo "$readme" | grep -c "purposes:")" = 1 ] ||
	fail "README.txt describes kinds of data it holds none of"
ok "README.txt: what was searched for; nothing found said plainly"

$CHECK absent "$zip" alicia@example.com malice@example.com \
	alice@example.co\" alice.renouf@greve.example bob@harbourtrust.example \
	"Le Marquand" "Grève" C-18 C-19 "o'brien" \
	|| fail "another person's data is in the bundle"
ok "no other person's data (same name, same company, near-miss emails)"

v=$($CHECK get "$zip" '[r["extra"]["notes"] for r in d["contacts"] if r["id"]=="crm:C-17"]')
[ "$v" = '["prefers phone"]' ] || fail "unmapped column not kept in extra: $v"
v=$($CHECK get "$zip" '[r["collected_at"] for r in d["contacts"] if r["id"]=="crm:C-17"]')
[ "$v" = '["2025-02-01T09:30:00Z"]' ] || fail "timestamp not normalised: $v"
v=$($CHECK get "$zip" '[r["matched_by"] for r in d["contacts"] if r["id"]=="contact-form:2"]')
[ "$v" = '[{"type": "email", "value": "alice@example.com"}]' ] || fail "matched_by: $v"
ok "fields mapped, extra kept, timestamps in UTC, matched_by recorded"

v=$($CHECK get "$zip" '[d["complete"], d["request_id"], m["complete"], [s["status"] for s in d["sources"]], [s["records"] for s in m["sources"]]]')
[ "$v" = '[true, "REQ-42", true, ["ok", "ok", "ok"], [1, 2, 1]]' ] || fail "summary: $v"
v=$($CHECK get "$zip" '[i["type"]+":"+i["value"] for i in d["subject"]["identities"]]')
[ "$v" = '["email:alice@example.com", "customer_id:C-17"]' ] || fail "identities: $v"
v=$($CHECK get "$zip" '[c["name"] for c in d["categories"]] + [d["controller"]["name"]]')
[ "$v" = '["contact", "service", "usage", "technical", "LeanIT Demo Ltd"]' ] || fail "categories: $v"
ok "manifest and bundle say complete, list sources, identities and Art. 15 facts"

$CHECK same "$zip" || fail "bundle.json and bundle.xml differ"
ok "JSON and XML hold the same values"

$CHECK hashes "$zip" || fail "manifest hashes"
run "$PORTEX" verify "$zip"
expect_code 0 "verify"
ok "manifest sizes and SHA-256 hold (Python and portex verify)"

xmllint --noout --schema "$PEX_SOURCE_DIR/schemas/v1/bundle.xsd" \
	<(unzip -p "$zip" data/bundle.xml) 2>/dev/null || fail "xmllint XSD"
ok "bundle.xml meets the XSD according to xmllint"

# --json summary for machines
run "$PORTEX" export -c "$demo/portex.yaml" -s email:alice@example.com \
	-o "$WORK/a2.zip" --json
expect_code 0 "--json export"
v=$(printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["complete"], d["records"]["contacts"])')
[ "$v" = "True 4" ] || fail "--json summary: $v"
ok "--json prints a machine-readable summary"

# A tampered bundle is caught
python3 - "$zip" "$WORK/bad.zip" <<'PY'
import sys, zipfile
src, dst = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2], "w")
for i in src.infolist():
    data = src.read(i)
    if i.filename == "data/bundle.json":
        data = data.replace(b"prefers phone", b"prefers email")
    dst.writestr(i, data)
dst.writestr("extra.txt", b"not listed")
dst.close()
PY
run "$PORTEX" verify "$WORK/bad.zip"
expect_code 1 "verify on a tampered bundle"
expect_in "$out" "data/bundle.json: SHA-256" "tamper report"
expect_in "$out" "extra.txt: in the zip but not listed" "unlisted file report"
ok "verify reports a changed file and an unlisted one, exit 1"

# The data changed and the manifest rewritten to match: README.txt's
# hashes, the ones the person is told to check, still tell
python3 - "$zip" "$WORK/bad2.zip" <<'PY'
import hashlib, json, sys, zipfile
src, dst = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2], "w")
new = src.read("data/bundle.json").replace(b"prefers phone", b"prefers email")
m = json.loads(src.read("manifest.json"))
for f in m["files"]:
    if f["path"] == "data/bundle.json":
        f["sha256"] = hashlib.sha256(new).hexdigest()
        f["bytes"] = len(new)
for i in src.infolist():
    data = src.read(i)
    if i.filename == "data/bundle.json":
        data = new
    elif i.filename == "manifest.json":
        data = json.dumps(m, indent=2).encode()
    dst.writestr(i, data)
dst.close()
PY
run "$PORTEX" verify "$WORK/bad2.zip"
expect_code 1 "verify on a bundle whose manifest was rewritten"
expect_in "$out" "README.txt: the SHA-256 it gives for data/bundle.json is not the manifest's" \
	"README.txt against the manifest"
ok "verify compares README.txt's hashes with the manifest's"

# A person about whom nothing is held: not an error
run "$PORTEX" export -c "$demo/portex.yaml" -s email:nobody@example.org -o "$WORK/none.zip"
expect_code 0 "export for an unknown person"
v=$($CHECK get "$WORK/none.zip" '[len(d["contacts"]), d["complete"]]')
[ "$v" = "[0, true]" ] || fail "empty bundle: $v"
ok "nobody known: an empty, complete bundle and exit 0"

# Identity with quotes and SQL metacharacters matches exactly that person
run "$PORTEX" export -c "$demo/portex.yaml" -s "email:o'brien@example.com" -o "$WORK/ob.zip"
expect_code 0 "export for o'brien"
ids=$($CHECK ids "$WORK/ob.zip" contacts | sort | tr '\n' ' ')
[ "$ids" = "crm:C-22 newsletter:newsletter.csv:6 " ] || fail "o'brien ids: $ids"
# (spliced into the SQL, this one would end the string, add OR '1'='1
# and comment out the rest: every row)
run "$PORTEX" export -c "$demo/portex.yaml" -s "email:x'OR'1'='1'--@example.com" -o "$WORK/inj.zip"
expect_code 0 "export for an injection attempt"
v=$($CHECK get "$WORK/inj.zip" 'len(d["contacts"])')
[ "$v" = "0" ] || fail "injection identity matched $v records"
ok "identities with quotes are bound, not spliced"

# An email the command line cannot take: refused, not an empty bundle
for bad in "email:alice@exam ple.com" "email:alice" "email:a@b@c" "email:@example.com"; do
	run "$PORTEX" export -c "$demo/portex.yaml" -s "$bad" -o "$WORK/badmail.zip"
	expect_code 2 "$bad"
	expect_in "$err" "not an email address" "$bad: says why"
done
printf 'identities\nemail:alice@exam ple.com\n' >"$WORK/bad.csv"
run "$PORTEX" export -c "$demo/portex.yaml" --batch "$WORK/bad.csv" --out-dir "$WORK/badb"
expect_code 2 "a malformed email in a batch"
expect_in "$err" "bad.csv:2:" "names the row"
[ ! -e "$WORK/badmail.zip" ] || fail "a malformed email wrote a bundle"
ok "malformed emails are refused (exit 2)"

echo "$PASS passed"
