#!/bin/bash
# Build the JSON Schema libFuzzer targets with clang + ASan/UBSan in their
# own build folder and run each for SECONDS (default 120).
#
#   bench/fuzz-jsonschema.sh [SECONDS]
#
# Corpora are seeded from schemas/v1 and, when installed, from the
# JSON-Schema-Test-Suite (schemas and test data); they live in
# $BUILD/corpus-* and grow across runs. Crash inputs land in $BUILD.
set -euo pipefail

SECS=${1:-120}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PEX_FUZZ_BUILD:-$ROOT/build-fuzz-jsonschema}
SUITE=${PEX_JSON_SCHEMA_SUITE:-/usr/share/json-schema-test-suite}
TARGETS="jsonschema_compile_fuzz jsonschema_validate_fuzz"

mkdir -p "$BUILD"
# The whole project through CMake, as CI would, with the library
# instrumented for coverage (fuzzer-no-link); if someone else's
# half-written file breaks that build, fall back to compiling only the
# validator and the error module.
if ! { CC=clang cmake -S "$ROOT" -B "$BUILD" -DPEX_FUZZ=ON \
	-DPEX_SANITIZE=ON -DPEX_BUILD_TESTS=OFF \
	-DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/cmake.log" 2>&1 &&
	cmake --build "$BUILD" --target $TARGETS -j2 >>"$BUILD/cmake.log" 2>&1; }
then
	echo "CMake build failed (see $BUILD/cmake.log); building directly" >&2
	FLAGS="-std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
		-fno-sanitize-recover=undefined -I$ROOT/include -I$ROOT/src"
	LIBS="$(pkg-config --libs jansson libpcre2-8) -lm"
	for t in $TARGETS; do
		# shellcheck disable=SC2086
		clang $FLAGS -o "$BUILD/$t" "$ROOT/tests/fuzz/$t.c" \
			"$ROOT"/src/jsonschema/*.c "$ROOT/src/core/error.c" $LIBS
	done
fi

seed() { # seed DIR: schemas and instances as separate files
	local dir=$1 i=0 f
	mkdir -p "$dir"
	for f in "$ROOT"/schemas/v1/*.json; do
		[ -f "$f" ] && cp "$f" "$dir/"
	done
	if [ -d "$SUITE/tests/draft7" ] && command -v jq >/dev/null; then
		for f in "$SUITE"/tests/draft7/*.json \
			"$SUITE"/tests/draft7/optional/*.json \
			"$SUITE"/tests/draft7/optional/format/*.json; do
			jq -c '.[] | .schema' "$f" 2>/dev/null |
			while IFS= read -r line; do
				i=$((i + 1))
				printf '%s' "$line" >"$dir/$(basename "$f" .json)-s$i"
			done
			jq -c '.[] | .schema as $s | .tests[] |
				(($s | tojson) + "\n" + (.data | tojson))' \
				"$f" 2>/dev/null | head -c 2000000 |
			while IFS= read -r line; do
				i=$((i + 1))
				printf '%s' "$line" | jq -r '.' \
					>"$dir/$(basename "$f" .json)-p$i"
			done
		done
	fi
}

[ -d "$BUILD/corpus-compile" ] || seed "$BUILD/corpus-compile"
[ -d "$BUILD/corpus-validate" ] || seed "$BUILD/corpus-validate"

status=0
for t in $TARGETS; do
	name=${t%_fuzz}
	corpus="$BUILD/corpus-${name#jsonschema_}"
	echo "== $t for ${SECS}s (corpus $corpus)"
	if ! (cd "$BUILD" && "./$t" -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
		"$corpus" 2>&1 | tail -n 25); then
		status=1
	fi
	# the pipeline's exit status is tail's; look for artifacts instead
	if ls "$BUILD"/crash-* "$BUILD"/leak-* "$BUILD"/timeout-* \
		"$BUILD"/oom-* >/dev/null 2>&1; then
		echo "!! $t left artifacts in $BUILD" >&2
		status=1
	fi
done
exit $status
