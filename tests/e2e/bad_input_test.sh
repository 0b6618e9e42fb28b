#!/usr/bin/env bash
# Bad input end to end: each case gets a clear message, the documented
# exit code, and no half-written bundle.
source "$(dirname "$0")/lib.sh"

demo=$(demo_copy)
cfg=$demo/portex.yaml
zip=$WORK/out.zip
S="-s email:alice@example.com"

nobundle() {
	[ ! -e "$zip" ] || fail "$1: a bundle was written"
	no_leftovers "$WORK"
	no_leftovers "$demo"
}

# -- usage errors: exit 2 ---------------------------------------------------
run "$PORTEX" export -c "$cfg" -o "$zip"
expect_code 2 "export without -s"
expect_in "$err" "-s TYPE:VALUE" "usage message"
run "$PORTEX" export -c "$cfg" -s alice@example.com -o "$zip"
expect_code 2 "identity without a type"
expect_in "$err" "TYPE:VALUE" "identity message"
run "$PORTEX" export -c "$cfg" -s ip:203.0.113.7 -o "$zip"
expect_code 2 "ip identity without a window"
expect_in "$err" "time window" "ip window message"
run "$PORTEX" export -c "$cfg" -s emial:alice@example.com -o "$zip"
expect_code 2 "a mistyped identity type"
expect_in "$err" "no source in $cfg searches by identities of type 'emial'" "says no source uses it"
expect_in "$err" "email" "names the types the config uses"
# types real but not this config's: the demo holds no web log, so an
# address or a user name would find nothing; an address with a window
# (weak) needs a source that accepts weak identities
# a query parameter misspelt (:cust_id): the CRM no longer searches by
# customer id, and nothing else does; the identity is refused, and the
# message shows what the query does take
sed 's/= :customer_id/= :cust_id/' "$cfg" > "$demo/param.yaml"
run "$PORTEX" export -c "$demo/param.yaml" -s customer_id:C-19 -o "$zip"
expect_code 2 "an identity only a misspelt query parameter would take"
expect_in "$err" "cust_id" "names the parameter the query takes"
# the scan for a query's parameters skips comments, quotes and casts: a
# quote inside a comment must not hide the :customer_id after it
sed "s|WHERE lower(email) = :email OR|WHERE lower(email) = :email /* it's the mail, not ::text */ OR|" "$cfg" > "$demo/comment.yaml"
grep -q "it's the mail" "$demo/comment.yaml" || fail "test config not made"
run "$PORTEX" export -c "$demo/comment.yaml" -s customer_id:C-17 -o "$zip"
expect_code 0 "a query with a quote in a comment before a parameter"
rm -f "$zip"
run "$PORTEX" export -c "$cfg" -s username:alice -o "$zip"
expect_code 2 "a type no source of this config searches by"
expect_in "$err" "type 'username'" "names the unused type"
run "$PORTEX" export -c "$cfg" -s ip:203.0.113.7@2026-01-03T10:00:00Z/PT30M -o "$zip"
expect_code 2 "a weak identity where no source accepts one"
expect_in "$err" "no source" "says no source would use it"
[ ! -e "$zip" ] || fail "a refused identity still wrote a bundle"
printf 'identities\nemail:alice@example.com\nemial:bob@harbourtrust.example\n' > "$WORK/subjects.csv"
mkdir -p "$WORK/batch"
run "$PORTEX" export -c "$cfg" --batch "$WORK/subjects.csv" --out-dir "$WORK/batch"
expect_code 2 "a mistyped identity type in a batch"
expect_in "$err" "type 'emial'" "names the type"
expect_in "$err" "subjects.csv:3:" "names the row"
[ -z "$(ls -A "$WORK/batch")" ] || fail "a batch with a bad row wrote bundles"
run "$PORTEX" export -c "$cfg" -s email:alice@example.com --out-dir "$WORK/batch"
expect_code 2 "--out-dir without --batch"
expect_in "$err" "goes with --batch" "says --out-dir is for --batch"
run "$PORTEX" export -c "$cfg" -s email:alice@example.com -o "$zip" --jobs 3
expect_code 2 "--jobs without --batch"
expect_in "$err" "--jobs goes with --batch" "says --jobs is for --batch"
run "$PORTEX" export -c "$cfg" -s email:alice@example.com -o "$zip" -q -v
expect_code 2 "-q with -v"
expect_in "$err" "-q and -v" "says -q and -v do not go together"
nobundle "-q with -v"
run "$PORTEX" export -c "$cfg" -s email:alice@example.com -o "$zip" --jsn
expect_code 2 "a mistyped option"
expect_in "$err" "see 'portex export --help'" "points to --help"
expect_in "$err" "portex export: unrecognized option '--jsn'" "names the program and the option"
run "$PORTEX" export -c "$cfg" -s EMAIL:alice@example.com -o "$zip"
expect_code 2 "an upper-case identity type"
expect_in "$err" "the type \"EMAIL\" must be 1 to 32 lower-case letters" "says what is wrong with the type"
run env -u PORTEX_CONFIG "$PORTEX" check
expect_code 2 "check without a config"
expect_in "$err" "no config: give it with -c or \$PORTEX_CONFIG" "says what is missing"
[ "$(printf '%s\n' "$err" | wc -l)" -le 3 ] || fail "a mistyped option buries the error in help text"
run "$PORTEX" frobnicate
expect_code 2 "unknown command"
for c in export verify validate check; do
	run "$PORTEX" $c --help
	expect_code 0 "$c --help"
	expect_in "$out" "usage: portex $c" "$c --help text"
done
run "$PORTEX" --version
expect_code 0 "--version"
nobundle "usage errors"
ok "usage errors exit 2 with a hint; --help and --version work"

# -- -o replaces an earlier bundle, never another file ----------------------
before=$(sha256sum "$cfg")
run "$PORTEX" export -c "$cfg" $S -o "$cfg"
expect_code 2 "-o naming the config"
expect_in "$err" "not a portex bundle" "says the file is not a bundle"
[ "$before" = "$(sha256sum "$cfg")" ] || fail "-o overwrote the config"
# a zip of something else is no bundle either
python3 -c 'import sys, zipfile
zipfile.ZipFile(sys.argv[1], "w").writestr("notes.txt", "mine")' "$WORK/other.zip"
before=$(sha256sum "$WORK/other.zip")
run "$PORTEX" export -c "$cfg" $S -o "$WORK/other.zip"
expect_code 2 "-o naming a zip that is not a bundle"
expect_in "$err" "not a portex bundle" "says the zip is not a bundle"
[ "$before" = "$(sha256sum "$WORK/other.zip")" ] || fail "-o overwrote another zip"
run "$PORTEX" export -c "$cfg" $S -r "$(printf 'R\007')" -o "$zip"
expect_code 2 "a control character in the request id"
expect_in "$err" "control character" "says what is wrong with it"
nobundle "-o and -r refused"
run "$PORTEX" export -c "$cfg" $S -o "$zip"
expect_code 0 "a bundle"
[ "$(stat -c %a "$zip")" = 600 ] || fail "the bundle is not 0600"
modes=$(python3 -c 'import sys, zipfile
print(sorted({oct(i.external_attr >> 16) for i in zipfile.ZipFile(sys.argv[1]).infolist()}))' "$zip")
[ "$modes" = "['0o100644']" ] || fail "zip entries unpack as $modes"
run "$PORTEX" export -c "$cfg" $S -o "$zip"
expect_code 0 "an earlier bundle is replaced"
rm -f "$zip"
ok "-o: bundles replaced, other files refused; 0600 bundle, 0644 entries"

# -- -q still says which source failed and why ------------------------------
mkdir -p "$WORK/q"
cp -r "$demo/." "$WORK/q/"
rm "$WORK/q/newsletter.csv"
run "$PORTEX" export -c "$WORK/q/portex.yaml" $S -o "$zip" -q
expect_code 1 "a failed source with -q"
expect_in "$err" "source newsletter:" "-q names the failed source"
case $err in *"source newsletter: source newsletter:"*)
	fail "the failed source is named twice: $err" ;; esac
run "$PORTEX" export -c "$WORK/q/portex.yaml" $S -o "$zip" -q --allow-partial
expect_code 3 "a partial bundle with -q"
expect_in "$err" "source newsletter:" "-q names the failed source of a partial bundle"
rm -f "$zip"
ok "-q: errors only, the failed source and its reason among them"

# -- help: `portex help export` is `portex export --help` -----------------
run "$PORTEX" help export
expect_code 0 "portex help export"
expect_in "$out" "--batch SUBJECTS.csv" "shows export's own help"
run "$PORTEX" help exprot
expect_code 2 "help for a command that does not exist"
expect_in "$err" "no command 'exprot'" "says so"
ok "portex help COMMAND shows that command's help"

# -- batch outputs: a missing folder is made, nothing is written over -------
printf 'identities,request_id\nemail:alice@example.com,REQ/42\nemail:alicia@example.com,\n' > "$WORK/two.csv"
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new/"
expect_code 0 "a batch into a folder that does not exist yet"
[ -f "$WORK/new/REQ_42.zip" ] && [ -f "$WORK/new/subject-3.zip" ] ||
	fail "bundles not where expected: $(ls -A "$WORK/new")"
[ "$(stat -c %a "$WORK/new")" = 700 ] || fail "the new folder is not 0700"
expect_in "$out" "$WORK/new/REQ_42.zip" "the summary names the bundle"
case $out in *//*) fail "a doubled slash in: $out" ;; esac
before=$(sha256sum "$WORK/new/subject-3.zip")
# line 3 of another file: the same default name, another person
printf 'identities\nemail:x@example.com\nemail:brien@example.com\n' > "$WORK/other.csv"
run "$PORTEX" export -c "$cfg" --batch "$WORK/other.csv" --out-dir "$WORK/new"
expect_code 2 "a row whose bundle exists already"
expect_in "$err" "other.csv:3: $WORK/new/subject-3.zip exists already" "names the row and the file"
expect_in "$err" "--replace" "says how to write over it"
[ "$before" = "$(sha256sum "$WORK/new/subject-3.zip")" ] ||
	fail "a refused batch changed an existing bundle"
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --replace
expect_code 0 "--replace writes over an earlier run's bundles"
no_leftovers "$WORK/new"
# --replace writes over bundles only, as -o does
echo "important" > "$WORK/new/REQ_42.zip"
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --replace
expect_code 2 "--replace over a file that is not a bundle"
expect_in "$err" "two.csv:2: $WORK/new/REQ_42.zip exists and is not a portex bundle" "names the row and the file"
[ "$(cat "$WORK/new/REQ_42.zip")" = important ] ||
	fail "--replace wrote over a file that was not a bundle"
rm "$WORK/new/REQ_42.zip"
# an interrupted batch is finished with --skip-existing: the rows whose
# bundle is there are left out and said so, the others made
before=$(sha256sum "$WORK/new/subject-3.zip")
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --skip-existing
expect_code 0 "--skip-existing finishes a batch"
expect_in "$out" "skipped  $WORK/new/subject-3.zip" "says which rows it left out"
expect_in "$out" "2 subjects: 1 complete, 1 skipped" "ends with the counts"
[ -f "$WORK/new/REQ_42.zip" ] || fail "--skip-existing did not make the missing bundle"
[ "$before" = "$(sha256sum "$WORK/new/subject-3.zip")" ] ||
	fail "--skip-existing changed an existing bundle"
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --skip-existing --json
expect_code 0 "--skip-existing with every bundle there"
expect_in "$out" '"result": "skipped"' "the JSON summary says skipped"
expect_in "$out" '"request_id": "REQ/42"' "a skipped row keeps its request id"
# the summary lists the rows in the CSV's order, a skipped one where it
# stands: row i of the JSON array is the CSV's i-th subject
printf 'identities,request_id\nemail:alice@example.com,REQ/42\nemail:alicia@example.com,\nemail:brien@example.com,REQ/7\n' > "$WORK/three.csv"
rm "$WORK/new/REQ_42.zip"
run "$PORTEX" export -c "$cfg" --batch "$WORK/three.csv" --out-dir "$WORK/new" --skip-existing --json
expect_code 0 "--skip-existing with a row in the middle there"
order=$(printf '%s' "$out" | python3 -c 'import json, os, sys
print(" ".join("%s:%s" % (os.path.basename(r["bundle"]), r["result"])
               for r in json.load(sys.stdin)))')
[ "$order" = "REQ_42.zip:complete subject-3.zip:skipped REQ_7.zip:complete" ] ||
	fail "--json rows not in the CSV's order: $order"
rm "$WORK/new/REQ_42.zip" "$WORK/new/REQ_7.zip"
run "$PORTEX" export -c "$cfg" --batch "$WORK/three.csv" --out-dir "$WORK/new" --skip-existing
expect_code 0 "--skip-existing again, listed as text"
order=$(printf '%s\n' "$out" | awk '$2 ~ /zip$/ { sub(".*/", "", $2); printf "%s:%s ", $2, $1 }')
[ "$order" = "REQ_42.zip:complete subject-3.zip:skipped REQ_7.zip:complete " ] ||
	fail "listed rows not in the CSV's order: $order"
expect_in "$out" "3 subjects: 2 complete, 1 skipped" "ends with the counts"
# a file that only starts like a zip is no finished bundle either: the
# row is refused with what to do, and the file left as it is
printf 'PK\003\004not a zip at all' > "$WORK/new/REQ_42.zip"
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --skip-existing
expect_code 2 "--skip-existing with a broken zip for a bundle"
expect_in "$err" "REQ_42.zip is there but is not a whole bundle" "says it is not whole"
expect_in "$err" "remove it and run again" "says what to do"
[ "$(head -c 4 "$WORK/new/REQ_42.zip" | od -An -c | tr -d ' ')" = 'PK003004' ] ||
	fail "--skip-existing touched a broken zip"
rm "$WORK/new/REQ_42.zip"
# an empty file is no finished bundle: not skipped, and (as without
# --skip-existing) not written over unless --replace
: > "$WORK/new/REQ_42.zip"
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --skip-existing
expect_code 2 "--skip-existing with an empty file for a bundle"
expect_in "$err" "REQ_42.zip exists already" "does not take it for a bundle"
rm "$WORK/new/REQ_42.zip"
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --skip-existing --replace
expect_code 2 "--skip-existing with --replace"
expect_in "$err" "opposite things" "says to give one of them"
# a folder whose parents are missing: made, each 0700
run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/deep/a/b"
expect_code 0 "--out-dir with missing parents"
[ -f "$WORK/deep/a/b/REQ_42.zip" ] || fail "no bundle in the new folders"
[ "$(stat -c %a "$WORK/deep/a")" = 700 ] || fail "a made parent is not 0700"
chmod 500 "$WORK/new"
if [ "$(id -u)" != 0 ]; then
	run "$PORTEX" export -c "$cfg" --batch "$WORK/two.csv" --out-dir "$WORK/new" --replace
	expect_code 1 "an output folder that cannot be written"
	expect_in "$err" "cannot write in the output folder $WORK/new" "names the folder"
fi
chmod 700 "$WORK/new"
ok "batch outputs: folder made, bundles not written over without --replace"

# -- a failed source in a batch: each row says which and why ----------------
mkdir -p "$WORK/broken"
cp -r "$demo/." "$WORK/broken/"
rm "$WORK/broken/newsletter.csv"
run "$PORTEX" export -c "$WORK/broken/portex.yaml" --batch "$WORK/two.csv" --out-dir "$WORK/failed"
expect_code 1 "a batch whose csv source fails"
expect_in "$out" "failed" "the summary says failed"
expect_in "$out" "newsletter.csv" "the summary says which file and why"
[ -z "$(ls -A "$WORK/failed")" ] || fail "a failed batch wrote bundles"
ok "a failed source in a batch: the reason under each row"

# -- check opens CSV files: a misspelt path or column shows there ----------
sed 's/path: newsletter.csv/path: newsleter.csv/' "$cfg" > "$demo/csvpath.yaml"
run "$PORTEX" check -c "$demo/csvpath.yaml"
expect_code 1 "check with a misspelt CSV path"
expect_in "$out$err" "newsleter.csv" "names the missing file"
expect_in "$out$err" "csvpath.yaml:" "names the config and the source's line"
# the match column of the demo's CSV source, misspelt
sed 's/^        Email: email$/        EmailX: email/' "$cfg" > "$demo/csvcol.yaml"
col=Email
run "$PORTEX" check -c "$demo/csvcol.yaml"
expect_code 1 "check with a CSV column the file does not have"
expect_in "$out$err" "${col}X" "names the missing column"
# rows in another encoding below a header that reads: check reads them all
cp "$demo/newsletter.csv" "$demo/newsletter.csv.orig"
printf 'zo\351@example.com,Zo\351,Z,Z,2026-01-01T00:00:00Z,x,newsletter\n' >> "$demo/newsletter.csv"
run "$PORTEX" check -c "$cfg"
expect_code 1 "check with a CSV row that is not UTF-8"
expect_in "$out$err" "UTF-8" "says the row is not UTF-8"
mv "$demo/newsletter.csv.orig" "$demo/newsletter.csv"
ok "check opens CSV sources: a missing file or column, or a bad row, fails it"

# a misspelt identity type in a source (a match map, a query parameter):
# check says which and what was likely meant; a type of one's own is not
# taken for a typo
sed 's/^        Email: email$/        Email: emial/' "$cfg" > "$demo/typo.yaml"
sed -i 's/= :email/= :emali/' "$demo/typo.yaml"
grep -q ':emali' "$demo/typo.yaml" && grep -q 'Email: emial' "$demo/typo.yaml" ||
	fail "typo config not made"
run "$PORTEX" check -c "$demo/typo.yaml"
expect_code 0 "check with a misspelt identity type (a warning)"
expect_in "$out" "warning: searches by identity type 'emial': did you mean 'email'?" \
	"the match map's typo"
expect_in "$out" "warning: searches by identity type 'emali'" "the query's typo"
run "$PORTEX" check -c "$cfg"
expect_code 0 "check on the demo config"
case $out in *warning:*) fail "a warning on the demo config: $out" ;; esac
ok "check warns of a likely typo in an identity type"

# -- two sources with one id: records would be told apart wrongly ---------
sed 's/^  - id: contact-form/  - id: crm/' "$cfg" > "$demo/dup.yaml"
run "$PORTEX" check -c "$demo/dup.yaml"
expect_code 1 "two sources with the same id"
expect_in "$err" "dup.yaml:" "names the file"
expect_in "$err" "'crm' is the id of sources[0] too" "names both"
ok "duplicate source ids are a config error"

# -- a source's category with no Art. 15 facts under categories: ----------
python3 - "$cfg" > "$demo/nocat.yaml" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
out, skip = [], False
for l in lines:  # drop the contact category's block
    if l == "  contact:":
        skip = True
        continue
    if skip and l.startswith("    "):
        continue
    skip = False
    out.append(l)
print("\n".join(out), end="")
PY
grep -q '^  contact:$' "$demo/nocat.yaml" && fail "the test did not drop the category"
run "$PORTEX" check -c "$demo/nocat.yaml"
expect_code 1 "a source's category not under categories"
line=$(grep -n 'category: contact' "$demo/nocat.yaml" | head -1 | cut -d: -f1)
expect_in "$err" "nocat.yaml:$line: sources[0].category: 'contact' is not under categories" \
	"names the file, line and category"
expect_in "$err" "purposes, lawful_basis and retention" "says what to add"
ok "a source's category must be declared with its facts"
sed 's/^    category: contact$/    category: contacts/' "$cfg" > "$demo/catname.yaml"
run "$PORTEX" check -c "$demo/catname.yaml"
expect_code 1 "a misspelt category"
expect_in "$err" "category: \"contacts\" is not one of the allowed values: \"contact\", \"service\", \"usage\", \"technical\"" \
	"names the value and the ones allowed"
ok "a misspelt category is named with the ones allowed"

# -- malformed YAML -----------------------------------------------------------
printf 'controller:\n  name: "unterminated\n  contact: x\n' > "$WORK/bad.yaml"
run "$PORTEX" export -c "$WORK/bad.yaml" $S -o "$zip"
expect_code 1 "malformed YAML"
expect_in "$err" "bad.yaml:" "YAML error names the file"
nobundle "malformed YAML"
ok "malformed YAML: file and line, exit 1"

# -- schema violations in the config: path and line -------------------------
sed 's/^controller:/controler:/' "$cfg" > "$demo/typo.yaml"
run "$PORTEX" export -c "$demo/typo.yaml" $S -o "$zip"
expect_code 1 "unknown key"
expect_in "$err" "typo.yaml:" "names the file"
expect_in "$err" "controler" "names the unknown key"
sed 's/^    collector: csv/    collector: csv\n    colour: blue/' "$cfg" > "$demo/k.yaml"
run "$PORTEX" check -c "$demo/k.yaml"
expect_code 1 "unknown source key"
expect_in "$err" "sources[2]" "names the path"
line=$(grep -n 'colour: blue' "$demo/k.yaml" | cut -d: -f1)
expect_in "$err" "k.yaml:$line:" "names the line of the key"
sed 's/      query: >/      qurey: >/' "$cfg" > "$demo/q.yaml"
run "$PORTEX" export -c "$demo/q.yaml" $S -o "$zip"
expect_code 1 "unknown collector option"
expect_in "$err" "unknown option 'qurey'" "names the option"
expect_in "$err" "sources[0].options.qurey" "names the path of the option"
run "$PORTEX" check -c "$demo/q.yaml"
expect_code 1 "check on an unknown collector option"
expect_in "$err" "q.yaml:$(grep -n 'qurey:' "$demo/q.yaml" | head -1 | cut -d: -f1):" "names the option's line"
nobundle "config errors"
ok "config mistakes: file, line and path; unknown keys are errors"

# -- a missing database fails the source; --allow-partial marks it --------
sed 's/database: crm.sqlite/database: gone.sqlite/' "$cfg" > "$demo/gone.yaml"
run "$PORTEX" export -c "$demo/gone.yaml" $S -o "$zip"
expect_code 1 "missing database"
expect_in "$err" "gone.sqlite" "names the missing file"
nobundle "missing database"
run "$PORTEX" export -c "$demo/gone.yaml" $S -o "$zip" --allow-partial
expect_code 3 "missing database with --allow-partial"
expect_in "$out$err" "gone.sqlite" "the operator is told which file"
# the person is told what happened, not the server's paths or config
v=$($CHECK get "$zip" '[d["complete"], m["complete"], [(s["id"], s["status"]) for s in m["sources"]], "sqlite" in m["sources"][0]["error"] or "/" in m["sources"][0]["error"], "could not be read" in d["sources"][0]["error"]]')
[ "$v" = '[false, false, [["crm", "failed"], ["contact-form", "failed"], ["newsletter", "ok"]], false, true]' ] \
	|| fail "partial manifest: $v"
unzip -p "$zip" README.txt | grep "NOT COMPLETE" >/dev/null || fail "README must say incomplete"
unzip -p "$zip" README.txt | grep "COULD NOT BE SEARCHED" >/dev/null ||
	fail "README must say which sources could not be searched"
! unzip -p "$zip" README.txt manifest.json data/bundle.json | grep "$demo" >/dev/null ||
	fail "the bundle names the server's paths"
run "$PORTEX" verify "$zip"
expect_code 0 "an incomplete bundle verifies"
expect_in "$out" "INCOMPLETE" "verify says the bundle is incomplete"
# --json: one document for all the bundles given, an entry each
run "$PORTEX" verify --json "$zip" "$cfg"
expect_code 1 "verify --json with a file that is no bundle"
v=$(printf '%s' "$out" | python3 -c 'import json, os, sys
print([(os.path.basename(e["bundle"]), e["ok"], e["complete"], len(e["problems"]) > 0) for e in json.load(sys.stdin)])')
[ "$v" = "[('out.zip', True, False, False), ('portex.yaml', False, None, True)]" ] ||
	fail "verify --json: $v"
# a path that is no UTF-8 still makes one valid document
cp "$zip" "$WORK/bad$(printf '\377')name.zip"
run "$PORTEX" verify --json "$zip" "$WORK/bad$(printf '\377')name.zip"
expect_code 0 "verify --json with a path that is not UTF-8"
v=$(printf '%s' "$out" | python3 -c 'import json, os, sys
print([(os.path.basename(e["bundle"]), e["ok"]) for e in json.load(sys.stdin)])')
[ "$v" = "[('out.zip', True), ('bad?name.zip', True)]" ] || fail "verify --json, odd path: $v"
# unpacked and packed again (zip -r adds folder entries): still verifies
command -v zip >/dev/null || fail "zip is missing (scripts/install-deps.sh test)"
rm -rf "$WORK/rz" "$WORK/rz.zip"
mkdir "$WORK/rz"
(cd "$WORK/rz" && unzip -q "$zip" && zip -qr "$WORK/rz.zip" .)
run "$PORTEX" verify "$WORK/rz.zip"
expect_code 0 "a bundle re-zipped with zip -r"
rm -f "$zip"
ok "a failed source: no bundle, or with --allow-partial one marked incomplete (exit 3)"

# a batch's partial bundles are made again by --skip-existing once the
# source is put right; its complete ones are left out
printf 'identities,request_id,output\nemail:alice@example.com,P-1,p1.zip\nemail:bob@example.com,P-2,p2.zip\n' > "$WORK/partial.csv"
rm -rf "$WORK/part"
run "$PORTEX" export -c "$demo/gone.yaml" --batch "$WORK/partial.csv" --out-dir "$WORK/part" --allow-partial
expect_code 3 "a batch with a failed source, --allow-partial"
run "$PORTEX" export -c "$cfg" $S -o "$WORK/part/p1.zip"
expect_code 0 "p1.zip made complete alone"
before=$(sha256sum <"$WORK/part/p1.zip")
run "$PORTEX" export -c "$cfg" --batch "$WORK/partial.csv" --out-dir "$WORK/part" --skip-existing
expect_code 0 "--skip-existing over a partial bundle"
expect_in "$out" "skipped  $WORK/part/p1.zip" "the complete bundle is left out"
expect_in "$out" "complete $WORK/part/p2.zip" "the partial one is made again"
[ "$before" = "$(sha256sum <"$WORK/part/p1.zip")" ] || fail "the complete bundle changed"
v=$($CHECK get "$WORK/part/p2.zip" 'm["complete"]')
[ "$v" = true ] || fail "p2.zip still partial: $v"
ok "--skip-existing makes partial bundles again, leaves complete ones"

# -- a locked database --------------------------------------------------------
python3 - "$demo/crm.sqlite" "$WORK/locked" <<'PY' &
import sqlite3, sys, time, os
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(30)
PY
locker=$!
for _ in $(seq 100); do [ -e "$WORK/locked" ] && break; sleep 0.1; done
sed 's/      id_column: customer_id/      id_column: customer_id\n      timeout_ms: 200/' "$cfg" > "$demo/lock.yaml"
run "$PORTEX" export -c "$demo/lock.yaml" $S -o "$zip"
kill $locker 2>/dev/null || true
wait $locker 2>/dev/null || true
expect_code 1 "locked database"
expect_in "$err" "locked" "says it is locked"
nobundle "locked database"
ok "a locked database: clear message, no bundle"

# -- CSV with broken quoting ----------------------------------------------------
printf 'Email,First Name\n"alice@example.com,Alice\nbob@x,"Bob\n' > "$demo/newsletter.csv"
run "$PORTEX" export -c "$cfg" $S -o "$zip"
expect_code 1 "broken CSV"
expect_in "$err" "newsletter.csv" "names the file"
nobundle "broken CSV"
ok "CSV with broken quoting fails the source with file and line"

# -- invalid UTF-8 and control characters in source values ------------------
printf 'Email,First Name,Last Name,Company,Subscribed On,Consent Text,Lists\nalice@example.com,Al\xffice,Re\x01nouf,Harbour \xc3\x28Trust,2025-02-03T10:00:00Z,ok,news\n' > "$demo/newsletter.csv"
cp "$PEX_BUILD_DIR/demo/crm.sqlite" "$demo/crm.sqlite"
run "$PORTEX" export -c "$cfg" $S -o "$zip"
expect_code 1 "non-UTF-8 CSV is refused"
expect_in "$err" "UTF-8" "says why"
python3 - "$demo/crm.sqlite" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE customers SET notes = CAST(X'707265ff66657273016f6e650b' AS TEXT) WHERE customer_id = 'C-17'")
c.commit()
PY
cp "$PEX_BUILD_DIR/demo/newsletter.csv" "$demo/newsletter.csv"
run "$PORTEX" export -c "$cfg" $S -o "$zip"
expect_code 0 "export with bad bytes in the database"
v=$($CHECK get "$zip" '[r["extra"]["notes"] for r in d["contacts"] if r["id"]=="crm:C-17"]')
[ "$v" = '["pre\ufffdfers\ufffdone\ufffd"]' ] || fail "replacement: $v"
v=$($CHECK get "$zip" '[w["count"] for w in m["warnings"] if w["source"]=="crm" and "U+FFFD" in w["message"]]')
[ "$v" = "[1]" ] || fail "replacement not counted in the manifest: $v"
$CHECK same "$zip" || fail "JSON and XML differ after replacement"
run "$PORTEX" verify "$zip"
expect_code 0 "verify after replacement"
rm -f "$zip"
ok "invalid UTF-8 and control characters replaced in JSON and XML, counted in warnings"

# -- unwritable output path -----------------------------------------------------
run "$PORTEX" export -c "$cfg" $S -o /nonexistent-dir/out.zip
expect_code 1 "output in a missing folder"
expect_in "$err" "/nonexistent-dir" "names the folder"
run "$PORTEX" export -c "$cfg" $S -o "$WORK"
expect_code 1 "output is a folder"
expect_in "$err" "is a folder" "says so"
if [ "$(id -u)" -ne 0 ]; then
	mkdir "$WORK/ro" && chmod 555 "$WORK/ro"
	run "$PORTEX" export -c "$cfg" $S -o "$WORK/ro/out.zip"
	expect_code 1 "read-only folder"
fi
nobundle "unwritable output"
ok "unwritable output: clear message, exit 1, nothing left behind"

echo "$PASS passed"
