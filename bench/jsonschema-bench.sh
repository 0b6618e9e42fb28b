#!/bin/bash
# JSON Schema validation throughput: builds jsonschema_bench (Release, no
# sanitizers) in its own build folder and runs it over RECORDS generated
# usage-event records (default 1,000,000) against
# schemas/v1/usage_event.schema.json, printing jansson's parse rate beside
# the validation rate.
#
#   bench/jsonschema-bench.sh [RECORDS]
set -euo pipefail

RECORDS=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PEX_BENCH_BUILD:-$ROOT/build-bench-jsonschema}
BIN=$BUILD/bench/jsonschema_bench

mkdir -p "$BUILD"
if ! { cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
	-DPEX_BUILD_TESTS=OFF >"$BUILD/cmake.log" 2>&1 &&
	cmake --build "$BUILD" --target jsonschema_bench -j2 \
		>>"$BUILD/cmake.log" 2>&1; }
then
	# someone else's half-written file broke the full build: compile
	# only what the benchmark needs
	echo "CMake build failed (see $BUILD/cmake.log); building directly" >&2
	mkdir -p "$BUILD/bench"
	# shellcheck disable=SC2046
	cc -std=c17 -D_GNU_SOURCE -O2 -I"$ROOT/include" -I"$ROOT/src" \
		-o "$BIN" "$ROOT/bench/jsonschema_bench.c" \
		"$ROOT"/src/jsonschema/*.c "$ROOT/src/core/error.c" \
		$(pkg-config --libs jansson libpcre2-8) -lm
fi
echo "single core; $(nproc) cores present; $(uname -m)"
taskset -c 0 "$BIN" "$ROOT/schemas/v1" "$RECORDS"
