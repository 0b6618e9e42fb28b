#!/usr/bin/env bash
# Ctrl-C (SIGINT) or kill -TERM during an export must leave no personal
# data behind: no hidden temporary zip, work folder or batch spool folder
# beside the output, and no file at the output path unless it is a whole
# bundle. The exit code says which signal ended the run (128 + signal).
# Bundles already in the folder (an earlier bundle of the same name, or
# another person's) stay as they were. kill -9 is crash_test.sh's part.
#
# The input is a ~300 MB access log (bench/weblog-gen.py), so that the
# export is still reading when the signal comes. Each run is signalled
# either after a fixed delay or as soon as a hidden temporary path of the
# export appears; a run that finished before the signal must have written
# a bundle that verifies. At least the runs signalled on a work folder
# must really be interrupted (the scan goes on well after the folder is
# made), so the test cannot pass without testing anything.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s nullglob dotglob
# Under ThreadSanitizer: the _exit() that ends an interrupted run leaves
# finished, unjoined threads on purpose; that is not a leak to report.
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}report_thread_leaks=0"

LOG="$WORK/access.log"
OUT="$WORK/out"
mkdir -p "$OUT"
python3 "$PEX_SOURCE_DIR/bench/weblog-gen.py" bench \
	--size $((300 * 1024 * 1024)) "$LOG" >"$WORK/meta.json"
IDENT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))
["identity"])' "$WORK/meta.json")
cat >"$WORK/portex.yaml" <<EOF
version: 1
controller: {name: Interrupt Ltd, contact: privacy@interrupt.example}
categories:
  usage: {purposes: [security], lawful_basis: [legitimate_interests],
          retention: 26 months}
sources:
  - id: weblog
    collector: access_log
    category: usage
    weak_identities: true
    options: {paths: ["$LOG"], format: combined, match: [ip]}
EOF

hidden() { # DIR: its hidden entries, one a line
	local f
	for f in "$1"/.*; do
		case "${f##*/}" in . | ..) ;; *) echo "${f##*/}" ;; esac
	done
}

# A finished bundle of another person, and an earlier bundle at the very
# name the interrupted runs write to: both must come through unchanged.
run "$PORTEX" export -q -c "$WORK/portex.yaml" -s "$IDENT" \
	-o "$OUT/done.zip"
expect_code 0 "export to completion"
run "$PORTEX" verify "$OUT/done.zip"
expect_code 0 "verify the finished bundle"
[ -z "$(hidden "$OUT")" ] || fail "a finished export left:" \
	"$(hidden "$OUT")"
ok "a finished export leaves nothing hidden and verifies"
cp "$OUT/done.zip" "$OUT/out.zip"
DONE_SUM=$(sha256sum <"$OUT/done.zip")

# start: run portex in the background with its signals at their default
# disposition (a non-interactive shell would make SIGINT ignored for a
# background job, and an ignored signal never reaches portex)
start() {
	env --default-signal=INT,TERM,HUP "$@" >"$WORK/stdout" \
		2>"$WORK/stderr" &
	pid=$!
}

# finish SIG WHAT DIR [started]: wait for the run; check the code, the
# message and the output folder ("started": portex had begun its work, so
# the message is due). Sets $ended to the exit code and $interrupted to 1
# when the signal ended the run.
finish() {
	local sig=$1 what=$2 dir=$3 want left
	set +e
	wait "$pid"
	code=$?
	ended=$code
	set -e
	err=$(cat "$WORK/stderr")
	left=$(hidden "$dir")
	[ -z "$left" ] || fail "$what: left behind in the output folder:" \
		"$left"
	case $sig in INT) want=130 ;; TERM) want=143 ;; esac
	if [ "$code" -eq 0 ]; then
		# finished before the signal: then the bundle must be whole
		interrupted=0
		return
	fi
	[ "$code" -eq "$want" ] || fail "$what: exit $code, wanted $want" \
		"(or 0 if it finished first); stderr: $err"
	# an empty stderr: the signal came before main() had set up the
	# cleanup thread, so the default action ended portex before it
	# could make anything (the folder check above still holds)
	if [ -n "$err" ] || [ "$4" = started ]; then
		expect_in "$err" "interrupted (SIG$sig)" "$what: message"
		expect_in "$err" "temporary files removed" "$what: message"
	fi
	interrupted=1
}

# wait_for 'GLOB': until a path matches (the pattern is expanded on each
# look, not once by the caller) or portex has ended
wait_for() {
	while kill -0 "$pid" 2>/dev/null; do
		compgen -G "$1" >/dev/null && return 0
	done
	return 0
}

check_outputs() { # what
	[ "$(sha256sum <"$OUT/done.zip")" = "$DONE_SUM" ] ||
		fail "$1: the earlier bundle done.zip changed"
	if [ "$(sha256sum <"$OUT/out.zip")" != "$DONE_SUM" ]; then
		# a new bundle: the run finished first, or the signal came
		# just after the bundle was renamed into place (on a slow
		# machine, under ThreadSanitizer): either way it must be
		# whole, never an unfinished one
		run "$PORTEX" verify "$OUT/out.zip"
		expect_code 0 "$1: verify the new out.zip"
		expect_in "$out" ": ok" "$1: the new out.zip verifies"
		case $out in *INCOMPLETE*) fail "$1: an incomplete out.zip" ;;
		esac
		cp "$OUT/done.zip" "$OUT/out.zip" # the earlier one again
	fi
}

real=0
for sig in INT TERM; do
	for delay in 0.05 0.2; do
		what="SIG$sig after ${delay}s"
		start "$PORTEX" export -q -c "$WORK/portex.yaml" -s "$IDENT" \
			-o "$OUT/out.zip"
		sleep "$delay"
		kill -s "$sig" "$pid" 2>/dev/null || true
		finish "$sig" "$what" "$OUT"
		check_outputs "$what"
		real=$((real + interrupted))
		ok "$what: exit $ended, no temporary files, bundles intact"
	done

	what="SIG$sig once the work folder exists"
	start "$PORTEX" export -q -c "$WORK/portex.yaml" -s "$IDENT" \
		-o "$OUT/out.zip"
	wait_for "$OUT/.out.zip.portex-*-work-*"
	kill -s "$sig" "$pid" 2>/dev/null || true
	finish "$sig" "$what" "$OUT" started
	[ "$interrupted" = 1 ] || fail "$what: the export ended before" \
		"the signal (exit $code); the input is too small to test this"
	check_outputs "$what"
	real=$((real + 1))
	ok "$what: exit $ended, work folder removed"

	# the temporary zip lives only while the bundle is sealed: the signal
	# may come too late, then the new bundle must verify. Once per signal
	# would double the slowest part of the test for little more.
	[ "$sig" = INT ] || continue
	what="SIG$sig once the temporary zip exists"
	start "$PORTEX" export -q -c "$WORK/portex.yaml" -s "$IDENT" \
		-o "$OUT/out.zip"
	wait_for "$OUT/.out.zip.portex-*.tmp*"
	kill -s "$sig" "$pid" 2>/dev/null || true
	finish "$sig" "$what" "$OUT" started
	check_outputs "$what"
	real=$((real + interrupted))
	ok "$what: exit $ended, no temporary zip left"
done
echo "# $real runs were interrupted, the others finished first"

# The signal once the bundle is in place (renamed over the earlier
# out.zip) and before the export has said so, made certain by a test shim:
# exit 130, and stderr says the bundle is there and whole, so that the
# exit code is not taken for "no bundle".
cc -shared -fPIC -o "$WORK/fault_rename.so" "$E2E_DIR/fault_rename.c" -ldl
# a sanitizer's runtime must come first among the preloaded libraries
preload=$(ldd "$PORTEX" | awk '/lib(a|ub|t)san/ { printf "%s:", $3 }')
what="SIGINT once the bundle is in place"
start env PEX_SIGNAL_AFTER_RENAME=/out.zip \
	LD_PRELOAD="$preload$WORK/fault_rename.so" \
	"$PORTEX" export -q -c "$WORK/portex.yaml" -s "$IDENT" -o "$OUT/out.zip"
finish INT "$what" "$OUT" started
[ "$interrupted" = 1 ] || fail "$what: not interrupted (exit $code)"
expect_in "$err" "the bundle $OUT/out.zip was written whole (complete)" \
	"$what: says the bundle is there"
[ "$(sha256sum <"$OUT/out.zip")" != "$DONE_SUM" ] ||
	fail "$what: out.zip is still the earlier bundle"
check_outputs "$what"
ok "$what: exit $ended, the new bundle whole and said to be"

# --batch: a shared pass spools every subject's records into a hidden
# batch folder beside the bundles before any bundle is written.
python3 - "$IDENT" >"$WORK/subjects.csv" <<'PY'
import sys
print("identities,request_id,output")
print("%s,REQ-1,subject.zip" % sys.argv[1])
for k in range(2, 6):
    print("ip:10.0.0.%d@2026-01-01T01:00:00Z/PT30M,REQ-%d," % (k, k))
PY
BOUT="$WORK/batch"
for sig in INT TERM; do
	rm -rf "$BOUT"
	mkdir -p "$BOUT"
	what="--batch, SIG$sig once the batch folder exists"
	start "$PORTEX" export -q -c "$WORK/portex.yaml" \
		--batch "$WORK/subjects.csv" --out-dir "$BOUT"
	wait_for "$BOUT/.portex-*-batch-*"
	kill -s "$sig" "$pid" 2>/dev/null || true
	finish "$sig" "$what" "$BOUT" started
	[ "$interrupted" = 1 ] || fail "$what: the batch ended before the" \
		"signal (exit $code)"
	for z in "$BOUT"/*; do # what is there must be whole
		run "$PORTEX" verify "$z"
		expect_code 0 "$what: verify ${z##*/}"
	done
	ok "$what: exit $ended, batch folder removed"
done

# --batch with every spool in a file (a budget of one byte): the pass
# goes on writing spool lines while the signal's cleanup removes the
# batch folder, and must not make the files again there (nor leave the
# folder, which would hold subjects' records).
python3 - "$LOG" >"$WORK/spooled.csv" <<'PY'
import sys
seen = []
with open(sys.argv[1]) as fh:
    for text in fh:
        ip = text.split(" ", 1)[0]
        if ip not in seen:
            seen.append(ip)
            if len(seen) == 300:
                break
print("identities,request_id,output")
for k, ip in enumerate(seen):
    print("ip:%s@2000-01-01T00:00:00Z/2100-01-01T00:00:00Z,S-%d," % (ip, k))
PY
for round in 1 2 3; do
	rm -rf "$BOUT"
	mkdir -p "$BOUT"
	what="--batch on spool files, SIGINT mid-pass ($round)"
	start env PORTEX_BATCH_MEMORY=1 "$PORTEX" export -q \
		-c "$WORK/portex.yaml" --batch "$WORK/spooled.csv" \
		--out-dir "$BOUT"
	wait_for "$BOUT/.portex-*-batch-*/s0-*.spool"
	sleep 0.2 # well into the pass: lines are being written
	kill -s INT "$pid" 2>/dev/null || true
	finish INT "$what" "$BOUT" started
	[ "$interrupted" = 1 ] || fail "$what: the batch ended before the" \
		"signal (exit $code)"
	ok "$what: exit $ended, no spool file made again"
done

# --batch interrupted among its bundles: the summary (here --json) still
# says, row by row, which bundles were written ("complete") and which
# subjects were not done ("interrupted"); every bundle it names as
# written is there and verifies, and --skip-existing then makes the rest.
# 3000 subjects of a small log: the bundles take long enough that the
# signal, sent when the first one appears, comes while they are made.
head -n 2000 "$LOG" >"$WORK/small.log"
sed "s#$LOG#$WORK/small.log#" "$WORK/portex.yaml" >"$WORK/small.yaml"
python3 - >"$WORK/many.csv" <<'PY'
print("identities,request_id,output")
for k in range(3000):
    print("ip:198.51.%d.%d@2026-01-01T10:00:00Z/PT30M,R-%04d,"
          % (k // 250, k % 250, k))
PY
BOUT="$WORK/many"
rm -rf "$BOUT"
mkdir -p "$BOUT"
what="--batch --json, SIGINT among the bundles"
start "$PORTEX" export -c "$WORK/small.yaml" --batch "$WORK/many.csv" \
	--out-dir "$BOUT" --json
wait_for "$BOUT/R-*.zip"
kill -s INT "$pid" 2>/dev/null || true
finish INT "$what" "$BOUT" started
[ "$interrupted" = 1 ] || fail "$what: the batch ended before the signal"
python3 - "$WORK/stdout" "$BOUT" >"$WORK/report" <<'PY' ||
import json, os, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 3000, "%d rows" % len(rows)
done = [r["bundle"] for r in rows if r["result"] == "complete"]
left = [r["bundle"] for r in rows if r["result"] == "interrupted"]
assert len(done) + len(left) == 3000, "other results"
assert done and left, "%d done, %d left" % (len(done), len(left))
for b in done:
    assert os.path.isfile(b), "reported written, missing: " + b
for b in left: # a bundle renamed into place before its row was counted
    assert not os.path.exists(b), "written, reported interrupted: " + b
print(len(done), len(left), done[0], done[-1])
PY
	fail "$what: the summary: $(cat "$WORK/stdout" | head -c 300)"
read -r ndone nleft first last <"$WORK/report"
expect_in "$(cat "$WORK/stderr")" "$nleft subjects were not done" \
	"$what: the count on stderr"
expect_in "$(cat "$WORK/stderr")" "--skip-existing" "$what: the way on"
for z in "$first" "$last"; do
	run "$PORTEX" verify "$z"
	expect_code 0 "$what: verify ${z##*/}"
done
ok "$what: exit $ended, $ndone written and listed, $nleft listed as interrupted"
run "$PORTEX" export -q -c "$WORK/small.yaml" --batch "$WORK/many.csv" \
	--out-dir "$BOUT" --skip-existing
expect_code 0 "$what: --skip-existing after it"
[ "$(find "$BOUT" -name 'R-*.zip' | wc -l)" -eq 3000 ] ||
	fail "$what: --skip-existing left bundles unmade"
ok "$what: --skip-existing makes the other bundles"

# A batch syncs its bundles in groups before it renames them, but a
# finished bundle must not wait for the next subject: here that subject's
# CSV is a FIFO nobody writes to yet, so its export waits; the first
# bundle must be in place (and reported) meanwhile, and a SIGINT then
# keeps it and reports the other as interrupted.
FD="$WORK/fifo"
mkdir -p "$FD/out"
mkfifo "$FD/feed.csv"
cat >"$FD/portex.yaml" <<'YAML'
version: 1
controller: {name: Test Ltd, contact: privacy@test.example,
             authority: Jersey Office of the Information Commissioner}
categories:
  contact: {purposes: [answering requests], lawful_basis: [contract],
            retention: 2 years}
sources:
  - id: list
    collector: csv
    category: contact
    options:
      path: feed.csv
      match: {Email: email}
      fields: {Email: "emails[]"}
YAML
printf 'identities,request_id,output\nemail:a@example.com,REQ-a,a.zip\nemail:b@example.com,REQ-b,b.zip\n' \
	>"$FD/subjects.csv"
what="--batch --jobs 1, the second subject waiting on its source"
start "$PORTEX" export -c "$FD/portex.yaml" --batch "$FD/subjects.csv" \
	--out-dir "$FD/out" --jobs 1 --json
printf 'Email\na@example.com\nb@example.com\n' >"$FD/feed.csv"
for _ in $(seq 1 100); do # up to 10 s; the wait is 0.25 s
	[ -f "$FD/out/a.zip" ] && break
	sleep 0.1
done
[ -f "$FD/out/a.zip" ] || fail "$what: the first bundle is not in place"
kill -0 "$pid" 2>/dev/null || fail "$what: the batch did not wait"
run "$PORTEX" verify "$FD/out/a.zip"
expect_code 0 "$what: verify the first bundle while the batch runs"
ok "$what: the first bundle is in place while the batch waits"
kill -s INT "$pid" 2>/dev/null || true
finish INT "$what" "$FD/out" started
[ "$interrupted" = 1 ] || fail "$what: the batch ended before the signal"
python3 - "$WORK/stdout" <<'PY' ||
import json, sys
rows = {r["request_id"]: r["result"] for r in json.load(open(sys.argv[1]))}
assert rows == {"REQ-a": "complete", "REQ-b": "interrupted"}, rows
PY
	fail "$what: the summary: $(head -c 300 "$WORK/stdout")"
[ ! -e "$FD/out/b.zip" ] || fail "$what: b.zip exists"
ok "$what: SIGINT keeps the first bundle, the second is interrupted"
echo "$PASS passed"
