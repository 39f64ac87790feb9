#!/usr/bin/env bash
# bench/smoke.sh: a quick check, for CI, that the benchmark path works.
# Builds Weir and the bench origin, puts Weir (GOMAXPROCS=1) in front of
# the origin on 127.0.0.1, runs one 2-second wrk pass of small keep-alive
# requests, and fails unless wrk completed requests and every response was
# 2xx. It signals only the processes it started.
#
#   bash bench/smoke.sh
#
# SMOKE_DURATION (default 2s), SMOKE_CONNS (16), SMOKE_PORT_BASE (28080).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DUR=${SMOKE_DURATION:-2s}
CONNS=${SMOKE_CONNS:-16}
BASE=${SMOKE_PORT_BASE:-28080}

log() { printf 'smoke: %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
	log "installing wrk and curl"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq wrk curl >/dev/null
fi

WORK=$(mktemp -d /tmp/weir-smoke.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# find two free ports
for _ in $(seq 1 20); do
	if ! port_busy "$BASE" && ! port_busy "$((BASE + 1))"; then break; fi
	BASE=$((BASE + 2))
done
WEIR_PORT=$BASE
ORIGIN_PORT=$((BASE + 1))

log "building"
go build -o "$WORK/weir" ./cmd/weir
go build -o "$WORK/origin" ./bench/origin

GOMAXPROCS=1 "$WORK/origin" -addr "127.0.0.1:$ORIGIN_PORT" >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
GOMAXPROCS=1 "$WORK/weir" reverse-proxy --from "127.0.0.1:$WEIR_PORT" --to "http://127.0.0.1:$ORIGIN_PORT" \
	--access-log off >"$WORK/weir.log" 2>&1 &
WEIR_PID=$!
PIDS+=("$WEIR_PID")

ready=0
for _ in $(seq 1 100); do
	if ! kill -0 "$WEIR_PID" 2>/dev/null; then break; fi
	if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEIR_PORT/small")" = 200 ]; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ "$ready" != 1 ]; then
	log "FAIL: Weir did not answer 200 on 127.0.0.1:$WEIR_PORT/small"
	cat "$WORK/weir.log" "$WORK/origin.log" >&2
	exit 1
fi

log "wrk -t1 -c$CONNS -d$DUR against Weir"
out=$(wrk -t1 -c"$CONNS" -d"$DUR" --latency "http://127.0.0.1:$WEIR_PORT/small" 2>&1) || true
echo "$out"
reqs=$(awk '/requests in/{print $1}' <<<"$out")
non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF}' <<<"$out")
serr=$(awk '/Socket errors:/{sub(/^ *Socket errors: */, ""); print}' <<<"$out")
reqs=${reqs:-0}
non2xx=${non2xx:-0}

if ! kill -0 "$WEIR_PID" 2>/dev/null; then
	log "FAIL: Weir exited during the run"
	cat "$WORK/weir.log" >&2
	exit 1
fi
if [ "$reqs" -le 0 ]; then
	log "FAIL: wrk completed no requests"
	cat "$WORK/weir.log" >&2
	exit 1
fi
if [ "$non2xx" -ne 0 ]; then
	log "FAIL: $non2xx of $reqs responses were not 2xx"
	cat "$WORK/weir.log" >&2
	exit 1
fi
log "ok: $reqs requests, 0 non-2xx${serr:+, socket errors: $serr}"
