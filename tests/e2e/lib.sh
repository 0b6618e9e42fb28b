# Shared helpers for the end-to-end tests (sourced).
set -euo pipefail
: "${PORTEX:?PORTEX must name the portex binary}"
: "${PEX_BUILD_DIR:?}"
: "${PEX_SOURCE_DIR:?}"
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK="python3 $E2E_DIR/bundlecheck.py"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PASS=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { PASS=$((PASS + 1)); echo "ok $PASS - $*"; }

# run CMD...: sets $out, $err and $code without stopping the script
run() {
	set +e
	"$@" >"$WORK/stdout" 2>"$WORK/stderr"
	code=$?
	set -e
	out=$(cat "$WORK/stdout")
	err=$(cat "$WORK/stderr")
}

expect_code() {
	[ "$code" -eq "$1" ] || fail "$2: exit $code, wanted $1; stderr: $err"
}

expect_in() { # haystack needle what
	case "$1" in *"$2"*) ;; *) fail "$3: '$2' not in: $1" ;; esac
}

# a copy of the demo (config, database, CSV) to change freely
demo_copy() {
	mkdir -p "$WORK/demo"
	cp "$PEX_BUILD_DIR"/demo/* "$WORK/demo/"
	echo "$WORK/demo"
}

no_leftovers() { # dir: nothing half-written may stay behind
	local left
	left=$(find "$1" -maxdepth 1 \( -name '.*portex*' -o -name '*.tmp' \) -print)
	[ -z "$left" ] || fail "left behind: $left"
}
