#!/usr/bin/env bash
# bench/forward/maxidle.sh: absolute-form GET rate of Weir's forward proxy
# (fwdprof, one core, GOMAXPROCS=1) with forward.Options.MaxIdlePerDestination
# at its default of 16 and at 64, the number of client connections; 3 runs
# each, alternating, 6 s after a 2 s warm-up. Writes
# bench/results/forward/maxidle.txt. Same pinning as run.sh (proxy on cpu0,
# origin and fwdload on cpu1); all traffic on 127.0.0.1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${FWD_OUT:-bench/results/forward}
W=$(mktemp -d /tmp/weir-maxidle.XXXXXX)
trap 'rm -rf "$W"' EXIT
go build -o "$W/" ./bench/origin ./bench/forward/fwdload ./bench/forward/fwdprof
if [ "$(id -u)" = 0 ]; then NICE=-20; echo -20 >/proc/self/autogroup 2>/dev/null || true; else NICE=0; fi
LOAD=(env GOMAXPROCS=1 nice -n "$NICE" taskset -c 1)
PROX=(env GOMAXPROCS=1 nice -n "$NICE" taskset -c 0)
"${LOAD[@]}" "$W/origin" -addr 127.0.0.1:29862 >"$W/origin.log" 2>&1 &
OP=$!
sleep 0.5
: >"$OUT/maxidle.txt"
for run in 1 2 3; do
	for mi in 16 64; do
		"${PROX[@]}" "$W/fwdprof" -listen 127.0.0.1:29001 -cpuprofile "$W/p-$mi-$run.pprof" -delay 2s -seconds 6 -max-idle "$mi" >"$W/prof.log" 2>&1 &
		PP=$!
		sleep 0.5
		"${LOAD[@]}" "$W/fwdload" -mode http -proxy 127.0.0.1:29001 -target 127.0.0.1:29862 -c 64 -d 2s >/dev/null
		r=$("${LOAD[@]}" "$W/fwdload" -mode http -proxy 127.0.0.1:29001 -target 127.0.0.1:29862 -c 64 -d 6s | grep RESULT)
		echo "max_idle=$mi run=$run loadavg=$(cut -d' ' -f1 /proc/loadavg) $r" | tee -a "$OUT/maxidle.txt"
		kill "$PP"
		wait "$PP" 2>/dev/null || true
	done
done
kill "$OP"
wait "$OP" 2>/dev/null || true
for mi in 16 64; do
	echo "max_idle=$mi, run 2: share of Weir's CPU in forward.(*Server).dialOut (absent: below pprof's cut-off)"
	go tool pprof -top -cum -nodecount=300 "$W/fwdprof" "$W/p-$mi-2.pprof" 2>/dev/null | grep -E 'Total samples|forward.\(\*Server\).dialOut' || true
done | tee -a "$OUT/maxidle.txt"
