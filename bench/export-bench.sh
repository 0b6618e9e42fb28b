#!/usr/bin/env bash
# Export speed and memory against gzip -6, in one run.
#
# For a subject with 1k, 100k and 1M rows in a SQLite source, time
# `portex export` (reading, record validation, JSON, XML, XSD validation,
# hashing, compression) and its peak memory, then time `gzip -6` over the
# same uncompressed data/bundle.json + data/bundle.xml. Prints the ratios.
# Targets: peak memory at 1M within 1.5x of 1k; export time at 1M at most
# 1.5x gzip's. The bundle deflates at level 3 by default (config
# bundle.compression), so `gzip -3` over the same data is timed too: the
# ratio at the same level.
# usage: bench/export-bench.sh [SIZES...]   (default: 1000 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-1000 100000 1000000}")
[ $# -gt 0 ] || sizes=(1000 100000 1000000)

scripts/install-deps.sh all
bin=${PORTEX:-build/portex}
if [ -z "${PORTEX:-}" ]; then
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j"$(nproc)" --target portex >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp bench/export-bench.yaml "$work/portex.yaml"

secs() { # command...: wall seconds and peak KiB, "S KIB"
	/usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
	cat "$work/time"
}

printf '%-9s %9s %9s %10s %9s %7s %9s %7s %12s\n' rows export_s peak_MiB \
	data_MiB gzip6_s ratio gzip3_s ratio3 bundle_MiB
base_mem=
for n in "${sizes[@]}"; do
	python3 bench/export-gen.py "$work/hits.sqlite" "$n"
	rm -f "$work/out.zip"
	read -r t mem < <(secs "$bin" export -q -c "$work/portex.yaml" \
		-s email:bench@example.com -o "$work/out.zip")
	unzip -p "$work/out.zip" data/bundle.json data/bundle.xml > "$work/data"
	read -r g _ < <(secs gzip -6 -k -c "$work/data")
	read -r g3 _ < <(secs gzip -3 -k -c "$work/data")
	data_mib=$(du -m "$work/data" | cut -f1)
	zip_mib=$(du -m "$work/out.zip" | cut -f1)
	# below 0.05 s the clock says nothing useful about a ratio
	ratio=$(python3 -c "print(f'{$t/$g:.2f}' if $g >= 0.05 else 'n/a')")
	ratio3=$(python3 -c "print(f'{$t/$g3:.2f}' if $g3 >= 0.05 else 'n/a')")
	printf '%-9s %9s %9.1f %10s %9s %7s %9s %7s %12s\n' "$n" "$t" \
		"$(python3 -c "print($mem/1024)")" "$data_mib" "$g" "$ratio" \
		"$g3" "$ratio3" "$zip_mib"
	[ -n "$base_mem" ] || base_mem=$mem
	last_mem=$mem
	rm -f "$work/data"
done
python3 -c "print(f'peak memory, largest vs smallest: {$last_mem/$base_mem:.2f}x (target <= 1.5x)')"
echo "ratio = export time / gzip -6 time over the same JSON+XML (target <= 1.5, aim 1.0)"
echo "ratio3 = the same against gzip -3 (the bundle's default level)"
