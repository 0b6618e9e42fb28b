#!/usr/bin/env bash
# Install what is missing, build portex, and export the demo subject
# (email:alice@example.com) from the bundled demo data: a SQLite CRM and
# contact-form database and a CSV newsletter export. No server needed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

out=build/demo/alice.zip
rm -f "$out"
build/portex export -c build/demo/portex.yaml \
	-s email:alice@example.com -r REQ-42 -o "$out"
echo
echo "The bundle is $out. It holds:"
unzip -l "$out" | sed 's/^/  /'
echo
build/portex verify "$out"
echo "Look inside: unzip -p $out data/bundle.json | less"
