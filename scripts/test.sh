#!/usr/bin/env bash
# Install what is missing, then build and run the whole test suite twice:
# an optimised build, and a build with AddressSanitizer and
# UndefinedBehaviorSanitizer; then the tests of the threaded parts (the
# bundle writer's workers, the log scanner's read-ahead, batch exports
# made several at a time) once more under ThreadSanitizer. Tests that need ../shared/corpus say so and
# are skipped when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test
jobs=$(nproc)

run_suite() {
	local dir=$1 only=$2; shift 2
	cmake -S . -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
	(cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900 \
		${only:+-R "$only"})
}

echo "== optimised build =="
run_suite build "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== sanitizer build (ASan + UBSan) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan "" -DCMAKE_BUILD_TYPE=Debug -DPEX_SANITIZE=ON
echo "== thread sanitizer build: the threaded parts =="
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	run_suite build-tsan "bundle|al_prefetch|cleanup|access_log|e2e_demo|e2e_weblog|e2e_crash|e2e_interrupt" \
	-DCMAKE_BUILD_TYPE=Debug -DPEX_TSAN=ON
