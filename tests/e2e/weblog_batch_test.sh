#!/usr/bin/env bash
# End-to-end: `portex export --batch` with the access_log collector. The
# generated day of traffic of weblog_test.sh (bench/weblog-gen.py e2e: a
# NAT address that Bob used before the subject's window and Carol after
# it; the log rotated and the older half gzip'd), read once for six
# people: the subject, Bob, Carol, Dave (the same NAT address during the
# last hour of the subject's window: at the same time), a background
# visitor on an address of their own, and someone with no request at all.
# Each bundle must hold exactly its person's events (worked out here in
# Python from the log lines, not by portex) and pass `portex verify`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GEN="$PEX_SOURCE_DIR/bench/weblog-gen.py"
WCHECK="python3 $E2E_DIR/weblog_check.py"
D="$WORK/weblog"
OUT="$WORK/bundles"

python3 "$GEN" e2e "$D"
gzip "$D/access.log.1"
mkdir -p "$OUT"
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

# The subjects and, per subject, the ids of the lines that are theirs:
# an address that is theirs, at a time inside their window.
ATTRIBUTE=$(cat <<'PY'
import datetime as dt, gzip, json, re, sys
d = sys.argv[1]
e = json.load(open(d + "/expected.json"))
nat, w = e["identity"][3:].split("@")
f = "%Y-%m-%dT%H:%M:%SZ"
utc = dt.timezone.utc
ws, we = (dt.datetime.strptime(x, f).replace(tzinfo=utc)
          for x in w.split("/"))
day = ws.replace(hour=0, minute=0, second=0)
sec = dt.timedelta(seconds=1)
fmt = lambda t: t.strftime(f)
people = [  # name, address, window start, end
    ("subject", nat, ws, we),
    ("bob", nat, day, ws - sec),
    ("carol", nat, we + sec, day + dt.timedelta(days=1)),
    ("dave", nat, we - dt.timedelta(hours=1), we),
    ("visitor", "192.0.2.5", day, day + dt.timedelta(days=1)),
    ("nobody", "192.0.2.250", day, day + dt.timedelta(days=1)),
]
line_re = re.compile(r'^(\S+) \S+ \S+ \[([^\]]+)\]')
lines = []
for name, opener in (("access.log.1.gz", gzip.open), ("access.log", open)):
    with opener(d + "/" + name, "rt") as fh:
        for n, text in enumerate(fh, 1):
            m = line_re.match(text)
            t = dt.datetime.strptime(m.group(2), "%d/%b/%Y:%H:%M:%S %z")
            lines.append(("%s:%d" % (name, n), m.group(1), t))
want = {}
print("identities,request_id,output")
for name, ip, a, b in people:
    want[name] = {
        "window": "%s/%s" % (fmt(a), fmt(b)),
        "events": sorted("weblog:" + i for i, lip, t in lines
                         if lip == ip and a <= t <= b)}
    print("ip:%s@%s/%s,REQ-%s,%s.zip" % (ip, fmt(a), fmt(b), name, name))
json.dump(want, open(d + "/want.json", "w"), indent=1)
PY
)
python3 -c "$ATTRIBUTE" "$D" >"$D/subjects.csv"
n=$(($(wc -l <"$D/subjects.csv") - 1))

# three bundles at a time, whatever the machine's CPUs
run "$PORTEX" export -c "$D/portex.yaml" --batch "$D/subjects.csv" \
	--out-dir "$OUT" --jobs 3
expect_code 0 "batch export of $n subjects"
ok "batch export of $n subjects"

got=$(find "$OUT" -maxdepth 1 -name '*.zip' | wc -l)
[ "$got" -eq "$n" ] || fail "$got bundles for $n subjects"
no_leftovers "$OUT"
ok "one bundle per subject, nothing left behind"

# Each bundle: exactly its subject's events, each matched by the
# subject's own window; nothing of the others' user agents where the
# generator says so.
CHECK_EVENTS=$(cat <<'PY'
import json, sys, zipfile
want = json.load(open(sys.argv[1]))
for name, w in want.items():
    z = zipfile.ZipFile("%s/%s.zip" % (sys.argv[2], name))
    b = json.loads(z.read("data/bundle.json"))
    ev = [x for x in b["usage"]["events"] if x["source"] == "weblog"]
    got = sorted(x["id"] for x in ev)
    if got != w["events"]:
        sys.exit("%s: events differ: extra %s, missing %s" % (
            name, sorted(set(got) - set(w["events"])),
            sorted(set(w["events"]) - set(got))))
    recs = ev + b["usage"]["sessions"] + b["technical"]["devices"] + \
        b["technical"]["ip_addresses"]
    for r in recs:
        if r["matched_by"].get("window") != w["window"]:
            sys.exit("%s: %s matched by %s" % (name, r["id"],
                                               r["matched_by"]))
    if w["events"] and not b["usage"]["sessions"]:
        sys.exit("%s: events but no visit" % name)
    if not w["events"] and recs:
        sys.exit("%s: records without a request: %s" % (name, recs))
    print("%s: %d events" % (name, len(got)))
PY
)
run python3 -c "$CHECK_EVENTS" "$D/want.json" "$OUT"
expect_code 0 "each bundle against its subject's lines"
echo "$out" | sed 's/^/    /'
ok "each bundle holds exactly its subject's events"

# The subject's bundle in full detail: the same checks as weblog_test.sh
# (events, visits with pages and times, devices, address; none of Bob's
# or Carol's text), although Dave shared the address at the same time.
run $WCHECK "$OUT/subject.zip" "$D/expected.json" weblog
expect_code 0 "subject's bundle against expected.json"
ok "the subject's bundle is exactly theirs, visits and devices included"

for z in "$OUT"/*.zip; do
	run "$PORTEX" verify "$z"
	expect_code 0 "verify $(basename "$z")"
done
ok "portex verify passes on all $n bundles"

# A batch gives each subject what a run for them alone gives.
IDENT=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["identity"])' "$D/expected.json")
run "$PORTEX" export -c "$D/portex.yaml" -s "$IDENT" -o "$WORK/alone.zip"
expect_code 0 "the subject alone"
run python3 - "$WORK/alone.zip" "$OUT/subject.zip" <<'PY'
import json, sys, zipfile
def recs(p):
    b = json.loads(zipfile.ZipFile(p).read("data/bundle.json"))
    return {k: sorted(json.dumps(r, sort_keys=True) for r in v)
            for k, v in (("events", b["usage"]["events"]),
                         ("sessions", b["usage"]["sessions"]),
                         ("devices", b["technical"]["devices"]),
                         ("ips", b["technical"]["ip_addresses"]))}
a, b = recs(sys.argv[1]), recs(sys.argv[2])
for k in a:
    if a[k] != b[k]:
        sys.exit("%s differ between the batch and a run alone" % k)
PY
expect_code 0 "batch against a run alone"
ok "the batch gives the subject what a run alone gives"

# The same batch one bundle at a time, with every spool in a file (a
# memory budget of one byte), and with a budget that some spools cross
# half-way (their records so far go to the file first): the same
# records in every bundle, and nothing left in the output folder.
SAME_BUNDLES=$(cat <<'PY'
import json, os, sys, zipfile
def recs(p):  # in the order written: a spool must keep its records' order
    b = json.loads(zipfile.ZipFile(p).read("data/bundle.json"))
    return [[json.dumps(r, sort_keys=True) for r in v]
            for v in (b["usage"]["events"], b["usage"]["sessions"],
                      b["technical"]["devices"],
                      b["technical"]["ip_addresses"])]
names = sorted(os.listdir(sys.argv[1]))
if names != sorted(os.listdir(sys.argv[2])):
    sys.exit("different bundles: %s" % names)
for n in names:
    if recs(os.path.join(sys.argv[1], n)) != \
       recs(os.path.join(sys.argv[2], n)):
        sys.exit("%s differs from the default run" % n)
print("%d bundles alike" % len(names))
PY
)
OUT1="$WORK/bundles-j1"
mkdir -p "$OUT1"
PORTEX_BATCH_MEMORY=1 run "$PORTEX" export -c "$D/portex.yaml" \
	--batch "$D/subjects.csv" --out-dir "$OUT1" --jobs 1 -v
expect_code 0 "batch, one at a time, spooled to files"
echo "$err" | grep " 0 bytes of records held in memory" >/dev/null ||
	fail "the spools did not go to files: $err"
no_leftovers "$OUT1"
run python3 -c "$SAME_BUNDLES" "$OUT" "$OUT1"
expect_code 0 "file spools and --jobs 1 against the default run"
ok "spooled to files, one at a time: the same bundles"

OUT2="$WORK/bundles-half"
mkdir -p "$OUT2"
# (the records held cost about 500 KB by the estimate here: a budget of
# 100 KB keeps some spools and sends others to files half-way)
PORTEX_BATCH_MEMORY=100000 run "$PORTEX" export -c "$D/portex.yaml" \
	--batch "$D/subjects.csv" --out-dir "$OUT2" -v
expect_code 0 "batch with a budget crossed half-way"
held=$(echo "$err" | sed -n 's/.* \([0-9]*\) bytes of records held in memory.*/\1/p')
[ -n "$held" ] && [ "$held" -gt 0 ] && [ "$held" -le 100000 ] ||
	fail "expected some records in memory, at most 100000 bytes: $err"
no_leftovers "$OUT2"
run python3 -c "$SAME_BUNDLES" "$OUT" "$OUT2"
expect_code 0 "spools that left memory half-way against the default run"
ok "spools that leave memory half-way: the same bundles"

# Many subjects whose spools all leave memory, under a limit of open
# files far below their number (a spool on file once held a descriptor
# each: past 1024 subjects, the default limit, every source failed with
# "Too many open files"). Up to 400 subjects, each an address of the log
# within ten minutes when it made requests; the bundles must be
# those of a run that keeps every spool in memory.
python3 - "$D" >"$WORK/many.csv" <<'PY'
import datetime as dt, gzip, re, sys
line_re = re.compile(r'^(\S+) \S+ \S+ \[([^\]]+)\]')
slots = []
for name, opener in (("access.log.1.gz", gzip.open), ("access.log", open)):
    with opener(sys.argv[1] + "/" + name, "rt") as fh:
        for text in fh:
            m = line_re.match(text)
            t = dt.datetime.strptime(m.group(2), "%d/%b/%Y:%H:%M:%S %z")
            t = t.astimezone(dt.timezone.utc)
            key = (m.group(1), t.strftime("%Y-%m-%dT%H:") +
                   "%02d:00Z" % (t.minute // 10 * 10))
            if key not in slots:
                slots.append(key)
print("identities,request_id,output")
for k, (ip, start) in enumerate(slots[:400]):
    print("ip:%s@%s/PT10M,M-%d,m%d.zip" % (ip, start, k, k))
PY
nmany=$(($(wc -l <"$WORK/many.csv") - 1))
[ "$nmany" -ge 200 ] || fail "only $nmany subjects from the generated log"
mkdir -p "$WORK/many-mem" "$WORK/many-files"
PORTEX_BATCH_MEMORY=1073741824 run "$PORTEX" export -c "$D/portex.yaml" \
	--batch "$WORK/many.csv" --out-dir "$WORK/many-mem" -q
expect_code 0 "$nmany subjects, every spool in memory"
# (the budget's quarter for lines waiting to be written is at least 64 KB:
# 20 KB here makes them written to their files many times over)
(ulimit -n 64 && PORTEX_BATCH_MEMORY=1 run "$PORTEX" export \
	-c "$D/portex.yaml" --batch "$WORK/many.csv" \
	--out-dir "$WORK/many-files" -v && expect_code 0 \
	"$nmany subjects, every spool on file, 64 open files at most" &&
	echo "$err" | grep " 0 bytes of records held in memory" >/dev/null) ||
	fail "$nmany subjects on file under ulimit -n 64: $(echo "$err" | tail -3)"
no_leftovers "$WORK/many-files"
run python3 -c "$SAME_BUNDLES" "$WORK/many-mem" "$WORK/many-files"
expect_code 0 "$nmany subjects on file against in memory"
ok "$nmany subjects spooled to files under ulimit -n 64: the same bundles"

# The bundles of a batch are synced together and only then moved into
# place. One that cannot be moved (rename fails, by a test shim) fails
# its subject alone: exit 1, the others made and whole, its temporary zip
# gone, the summary naming the output it could not make.
OUT3="$WORK/bundles-fault"
mkdir -p "$OUT3"
cc -shared -fPIC -o "$WORK/fault_rename.so" "$E2E_DIR/fault_rename.c" -ldl
# a sanitizer's runtime must come first among the preloaded libraries
preload=$(ldd "$PORTEX" | awk '/lib(a|ub|t)san/ { printf "%s:", $3 }')
PEX_FAULT_RENAME=/carol.zip LD_PRELOAD="$preload$WORK/fault_rename.so" \
	run "$PORTEX" export -c "$D/portex.yaml" --batch "$D/subjects.csv" \
	--out-dir "$OUT3" --json
expect_code 1 "a batch with one bundle that cannot be moved into place"
printf '%s\n' "$out" >"$WORK/fault-summary.json"
run python3 - "$OUT3" "$n" "$WORK/fault-summary.json" <<'PY'
import json, os, sys
rows = json.load(open(sys.argv[3]))
bad = [r for r in rows if r["result"] == "failed"]
if len(bad) != 1 or bad[0].get("request_id") != "REQ-carol":
    sys.exit("failed rows: %s" % bad)
if "cannot move the bundle to" not in bad[0].get("error", "") or \
   "carol.zip" not in bad[0]["error"]:
    sys.exit("error: %s" % bad[0])
if bad[0].get("bundle") is not None or "bundle_id" in bad[0]:
    sys.exit("a failed row names a bundle: %s" % bad[0])
made = sorted(os.listdir(sys.argv[1]))
if "carol.zip" in made or len(made) != int(sys.argv[2]) - 1:
    sys.exit("bundles: %s" % made)
PY
expect_code 0 "the summary and the folder after the failed move"
no_leftovers "$OUT3"
for z in "$OUT3"/*.zip; do
	run "$PORTEX" verify "$z"
	expect_code 0 "verify $(basename "$z") beside the failed one"
done
ok "a bundle that cannot be moved into place fails alone, nothing left"

# A live log big enough to be read in parts (32 MiB or more: one part
# per CPU, each on a thread of its own): the day's lines with 36 MB of
# a crawler's requests woven in. Each bundle still holds exactly its
# person's lines, numbered as in the file.
BIG="$WORK/big"
mkdir -p "$BIG"
cp "$D/access.log.1.gz" "$D/expected.json" "$D/portex.yaml" "$BIG/"
python3 - "$D/access.log" "$BIG/access.log" <<'PY'
import sys
src = open(sys.argv[1]).readlines()
pad = ('198.51.100.77 - - [%s] "GET /assets/pad.css HTTP/1.1" 200 5120 '
       '"-" "PadBot/1.0 (+https://crawler.example/bot; a filler line to '
       'make the log long)"\n')
per = (36 << 20) // (len(src) * len(pad % "x")) + 1
with open(sys.argv[2], "w") as out:
    for line in src:
        out.write(line)
        out.write(pad % line.split("[", 1)[1].split("]", 1)[0] * per)
PY
python3 -c "$ATTRIBUTE" "$BIG" >"$BIG/subjects.csv"
run "$PORTEX" export -c "$BIG/portex.yaml" --batch "$BIG/subjects.csv" \
	--out-dir "$BIG/out"
expect_code 0 "batch over a log of $(($(stat -c %s "$BIG/access.log") >> 20)) MiB"
run python3 -c "$CHECK_EVENTS" "$BIG/want.json" "$BIG/out"
expect_code 0 "each bundle against its subject's lines in the big log"
ok "a log read in parts: each bundle holds exactly its subject's events"

# a budget that is not a plain number: said, and the default used
for bad in abc " 5" -0; do
	rm -rf "$WORK/bm"
	PORTEX_BATCH_MEMORY="$bad" run "$PORTEX" export -c "$D/portex.yaml" \
		--batch "$D/subjects.csv" --out-dir "$WORK/bm"
	expect_code 0 "PORTEX_BATCH_MEMORY='$bad'"
	echo "$err" | grep "PORTEX_BATCH_MEMORY=$bad is not a number" >/dev/null ||
		fail "PORTEX_BATCH_MEMORY='$bad' not reported: $err"
done
ok "a PORTEX_BATCH_MEMORY that is not a number is reported, the default used"

run "$PORTEX" export -c "$D/portex.yaml" --batch "$D/subjects.csv" \
	--out-dir "$OUT1" --jobs 0
expect_code 2 "--jobs 0"
echo "$err" | grep "give a number from 1 to" >/dev/null ||
	fail "--jobs 0 without a clear message: $err"
ok "--jobs 0 is refused with a clear message"

echo "weblog_batch: $PASS checks passed"
