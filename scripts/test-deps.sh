#!/usr/bin/env bash
# test-deps.sh runs every scripts/install-*.sh at once and fails if any
# fails. On a cold machine the installers are minutes of downloading and
# compiling each (MinIO, fake-gcs-server, Azurite, apt), so running them side
# by side overlaps the network waits of one with the compiling of another.
# Each installer's output is printed, whole, when it finishes.
set -euo pipefail
cd "$(dirname "$0")"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

declare -A pids
for s in install-*.sh; do
	bash "$s" >"$logs/$s.log" 2>&1 &
	pids[$s]=$!
done

failed=()
for s in "${!pids[@]}"; do
	if wait "${pids[$s]}"; then
		echo "== $s: ok"
	else
		echo "== $s: FAILED"
		failed+=("$s")
	fi
	sed 's/^/   /' "$logs/$s.log"
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "test-deps: failed: ${failed[*]}" >&2
	exit 1
fi
