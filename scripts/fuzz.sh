#!/usr/bin/env bash
# fuzz.sh GO FUZZTIME PKG:NAME... — run each fuzz target for FUZZTIME.
#
# Go 1.26's fuzz coordinator can end a clean run with a bare "context
# deadline exceeded" when -fuzztime expires while a worker is busy (a race
# in internal/fuzz, go.dev/issue/75804, fixed in Go 1.27); on a loaded
# 2-core machine it happens. Such a run, with no failing input written, is
# retried once; any other failure fails at once.
set -euo pipefail
go=$1 fuzztime=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { "$go" test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$1" >"$out" 2>&1; }
deadline_race() { grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; }
for t in "$@"; do
	pkg=${t%%:*} name=${t##*:}
	echo "fuzz $pkg $name ($fuzztime)"
	if run "$pkg" "$name"; then continue; fi
	if deadline_race; then
		echo "fuzz $pkg $name: the fuzzer's own deadline race (go.dev/issue/75804), no failing input; once more"
		if run "$pkg" "$name"; then continue; fi
	fi
	cat "$out"
	exit 1
done
