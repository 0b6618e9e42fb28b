#!/usr/bin/env bash
# Peak memory of big web-log batches against the 64 MB the web-log issue
# allows whatever the log size:
#   (1) 20 heavy visitors: a 300 MB log in which 20 addresses made 90% of
#       the requests, each subject's window over the whole log;
#   (2) 1000 subjects: the first 1000 addresses of the 1 GiB bench log,
#       each with a window over the whole log;
#   (3) 10,000 subjects of one request each (a 2.4 MB log): what each
#       row of a batch costs, whatever its records.
# Peak RSS by /usr/bin/time (%M), with the default --jobs.
#
# usage: bench/weblog-batch-memory.sh
# env:   PORTEX     a portex binary (default: the one weblog-bench.sh built)
#        BENCH_DIR  weblog-bench.sh's folder (default /tmp/weblog-bench);
#                   run bench/weblog-bench.sh first: its 1 GiB log is used
set -euo pipefail
DIR=${BENCH_DIR:-/tmp/weblog-bench}
PORTEX=${PORTEX:-$DIR/build/portex}
LOG=$DIR/access-1024m.log
[ -s "$LOG" ] && [ -x "$PORTEX" ] || {
	echo "weblog-batch-memory: run bench/weblog-bench.sh first (it makes" \
	     "$LOG and $DIR/build/portex)" >&2
	exit 1
}
W=$DIR/batch-memory
rm -rf "$W"
mkdir -p "$W"

python3 - "$LOG" "$W" <<'PY'
import random, sys
log, w = sys.argv[1], sys.argv[2]
random.seed(3)
heavy = ["10.77.%d.%d" % (i, i * 3) for i in range(20)]
n = 0
with open(log, "rb") as f, open(w + "/heavy.log", "wb") as out:
    for line in f:
        if random.random() < 0.9:
            line = heavy[random.randrange(20)].encode() + \
                line[line.index(b" "):]
        out.write(line)
        n += len(line)
        if n > 300 << 20:
            break
win = "2025-12-01T00:00:00Z/2026-02-01T00:00:00Z"
with open(w + "/heavy.csv", "w") as c:
    c.write("identities,request_id\n")
    for i, ip in enumerate(heavy):
        c.write("ip:%s@%s,H-%d\n" % (ip, win, i))
seen, ips = set(), []
with open(log) as f:
    for line in f:
        ip = line.split(" ", 1)[0]
        if ip not in seen:
            seen.add(ip)
            ips.append(ip)
            if len(ips) == 1000:
                break
with open(w + "/many.csv", "w") as c:
    c.write("identities,request_id\n")
    for i, ip in enumerate(ips):
        c.write("ip:%s@%s,K-%d\n" % (ip, win, i))
with open(log, "rb") as f, open(w + "/rows.log", "wb") as out, \
        open(w + "/rows.csv", "w") as c:
    c.write("identities,request_id\n")
    for i in range(10000):
        ip = "172.%d.%d.%d" % (16 + i // 65536, i // 256 % 256, i % 256)
        line = f.readline()
        out.write(ip.encode() + line[line.index(b" "):])
        c.write("ip:%s@%s,R-%d\n" % (ip, win, i))
PY

# shellcheck source=bench/weblog-config.sh
source "$(dirname "$0")/weblog-config.sh"
weblog_config "$W/heavy.log" >"$W/heavy.yaml"
weblog_config "$LOG" >"$W/many.yaml"
weblog_config "$W/rows.log" >"$W/rows.yaml"

peak() { # name yaml csv
	/usr/bin/time -f "%e %M" -o "$W/time" "$PORTEX" export -c "$2" \
		--batch "$3" --out-dir "$W/out-$1" -q
	read -r secs kb <"$W/time"
	printf '  %-36s %7.2f s  %6d KB peak  (%s MB, target < 64)\n' \
		"$1" "$secs" "$kb" "$((kb / 1024))"
}
echo "portex: $PORTEX"
peak "20 heavy visitors, 300 MB log" "$W/heavy.yaml" "$W/heavy.csv"
peak "1000 subjects, 1 GiB log" "$W/many.yaml" "$W/many.csv"
peak "10,000 subjects, one request each" "$W/rows.yaml" "$W/rows.csv"
rm -rf "$W"
