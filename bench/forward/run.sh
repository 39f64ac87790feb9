#!/usr/bin/env bash
# bench/forward/run.sh: Weir's forward proxy side by side with Squid (HTTP
# proxy: CONNECT tunnels and absolute-form requests) and Dante (danted,
# SOCKS5), all in front of local origins on 127.0.0.1.
#
#   bash bench/forward/run.sh                          # full run (~8 min)
#   FWD_DURATION=3s FWD_RUNS=1 bash bench/forward/run.sh   # quick look
#
# Every proxy gets ONE core (taskset -c $FWD_PROXY_CPU; Weir with
# GOMAXPROCS=1; Squid with workers 1; Dante's mother and all the children
# it forks on that core); the origins and the load generator (fwdload,
# GOMAXPROCS=1) share the other core. Each proxy is started fresh for each
# measured run, gets an unmeasured warm-up, and the run order interleaves
# the proxies. Medians of FWD_RUNS runs are reported. Every load run is
# bounded by FWD_DURATION (and each network step by a 5 s deadline).
#
# Scenarios:
#   ctput  CONNECT tunnel throughput: FWD_TPUT_CONNS tunnels streaming from
#          the origin for the whole run, MB/s in total       (Weir, Squid)
#   crate  CONNECT setup rate: per tunnel connect, CONNECT, 32-byte echo,
#          close; FWD_RATE_CONNS workers, tunnels/s          (Weir, Squid)
#   http   absolute-form GET http://origin/small over FWD_HTTP_CONNS
#          kept-alive connections to the proxy, requests/s   (Weir, Squid)
#   stput  SOCKS5 tunnel throughput, as ctput                (Weir, Dante)
#   srate  SOCKS5 setup rate, as crate                       (Weir, Dante)
#
# Knobs (environment):
#   FWD_DURATION     length of one measured run (default 6s)
#   FWD_RUNS         runs per proxy and scenario; the median is reported (3)
#   FWD_WARMUP       unmeasured run before each measured one (2s)
#   FWD_SCENARIOS    subset/order of: ctput crate http stput srate
#   FWD_TPUT_CONNS / FWD_RATE_CONNS / FWD_HTTP_CONNS   concurrency (8 / 32 / 64)
#   FWD_QUIET_PCT    before each run, wait until the machine's busy CPU (our
#                    processes idle) is below this % of one core (default 30;
#                    0: off)
#   FWD_QUIET_MAX    longest wait for quiet, seconds (default 8)
#   FWD_PROFILE      scenarios to CPU-profile Weir under (default "ctput crate http"; "" skips)
#   FWD_NICE         niceness of proxies, origins and load (default -20 as root, else 0)
#   FWD_PORT_BASE    first of the ports used (default 28080; origins at +860..+862)
#   FWD_OUT          results directory (default bench/results/forward)
#   FWD_PROXY_CPU / FWD_LOAD_CPU  cores for the proxy / origins + load (0 / 1)
#   FWD_REV          build Weir from this commit instead of the working tree
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. bench/lib.sh

FWD_DURATION=${FWD_DURATION:-6s}
FWD_RUNS=${FWD_RUNS:-3}
FWD_WARMUP=${FWD_WARMUP:-2s}
FWD_SCENARIOS=${FWD_SCENARIOS:-"ctput crate http stput srate"}
FWD_TPUT_CONNS=${FWD_TPUT_CONNS:-8}
FWD_RATE_CONNS=${FWD_RATE_CONNS:-32}
FWD_HTTP_CONNS=${FWD_HTTP_CONNS:-64}
FWD_QUIET_PCT=${FWD_QUIET_PCT:-30}
FWD_QUIET_MAX=${FWD_QUIET_MAX:-8}
FWD_PROFILE=${FWD_PROFILE-"ctput crate http"}
if [ "$(id -u)" = 0 ]; then FWD_NICE=${FWD_NICE:--20}; else FWD_NICE=${FWD_NICE:-0}; fi
# With autogroup scheduling niceness only ranks processes within a session;
# set the session's autogroup niceness too (it covers this session only).
if [ "$FWD_NICE" != 0 ] && [ -w /proc/self/autogroup ]; then
	echo "$FWD_NICE" >/proc/self/autogroup 2>/dev/null || true
fi
FWD_PORT_BASE=${FWD_PORT_BASE:-28080}
FWD_OUT=${FWD_OUT:-bench/results/forward}
PCPU=${FWD_PROXY_CPU:-0}
LCPU=${FWD_LOAD_CPU:-1}

DUR=$(secs "$FWD_DURATION")
WARM=$(secs "$FWD_WARMUP")

# ---------------------------------------------------------------- install
missing=()
command -v squid >/dev/null || missing+=(squid)
command -v danted >/dev/null || missing+=(dante-server)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts squid and danted as services on install; stop them when a
# service manager exists. This script uses its own ports either way.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	systemctl stop squid danted >/dev/null 2>&1 || true
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
log "open-file limit: $NOFILE"

WORK=$(mktemp -d /tmp/weir-fwdbench.XXXXXX)
BIN=$WORK/bin
mkdir -p "$BIN" "$WORK/logs" "$WORK/squid" "$FWD_OUT/out"
chmod 777 "$WORK/squid" # Squid drops to its own user
STARTED=() # PIDs this script started; only these are ever signalled

cleanup() {
	local p
	for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 1
	for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	if [ -z "${FWD_KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# FWD_REV=<commit> builds Weir from that commit (git archive) rather than
# the working tree, with this directory's helpers copied in: a clean
# snapshot while the tree is being edited.
SRC=$ROOT
WEIR_DESC=$(weir_desc)
if [ -n "${FWD_REV:-}" ]; then
	SRC=$WORK/src
	mkdir -p "$SRC"
	git archive "$FWD_REV" | tar -x -C "$SRC"
	rm -rf "$SRC/bench/forward"
	cp -r bench/forward "$SRC/bench/forward"
	WEIR_DESC="commit $(git rev-parse --short "$FWD_REV")"
fi
log "building Weir and the helpers ($WEIR_DESC)"
(
	cd "$SRC"
	go build -o "$BIN/weir" ./cmd/weir
	go build -o "$BIN/" ./bench/origin ./bench/forward/fwdorigin ./bench/forward/fwdload ./bench/forward/fwdprof ./bench/forward/fwdreport
)

SRC_PORT=$((FWD_PORT_BASE + 860))
ECHO_PORT=$((FWD_PORT_BASE + 861))
HTTP_PORT=$((FWD_PORT_BASE + 862))
declare -A PORT=([weir]=$((FWD_PORT_BASE + 1)) [squid]=$((FWD_PORT_BASE + 2)) [dante]=$((FWD_PORT_BASE + 3)) [fwdprof]=$((FWD_PORT_BASE + 4)))
for p in "$SRC_PORT" "$ECHO_PORT" "$HTTP_PORT" "${PORT[@]}"; do
	port_busy "$p" && die "port $p is in use; set FWD_PORT_BASE"
done

# ---------------------------------------------------------------- configs
# Squid: one process (workers 1), no cache, no logs, CONNECT to any port
# for 127.0.0.1 clients (the default SSL_ports rule is left out).
cat >"$WORK/squid.conf" <<EOF
http_port 127.0.0.1:${PORT[squid]}
workers 1
acl localclients src 127.0.0.1/32
http_access allow localclients
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log /dev/null
logfile_rotate 0
pid_filename $WORK/squid/squid.pid
coredump_dir $WORK/squid
max_filedescriptors $NOFILE
shutdown_lifetime 1 seconds
pinger_enable off
dns_nameservers 127.0.0.1
client_persistent_connections on
server_persistent_connections on
EOF
# Dante: no authentication, CONNECT only, no log. Dante forks a mother
# process and pools of negotiate/request/io children; all run on the proxy
# core (taskset is inherited) and all their CPU is counted.
cat >"$WORK/danted.conf" <<EOF
logoutput: /dev/null
internal: 127.0.0.1 port = ${PORT[dante]}
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
child.maxidle: no
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }
EOF

# ---------------------------------------------------------------- /proc helpers
HZ=$(getconf CLK_TCK)
# CPU jiffies used by a process tree; the root's cutime+cstime add the
# children it already reaped (Dante's short-lived children).
cpu_of() {
	local t=0 p v
	for p in $(tree "$1"); do
		v=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12+$13}') || v=0
		t=$((t + ${v:-0}))
	done
	v=$(sed 's/^.*) //' /proc/"$1"/stat 2>/dev/null | awk '{print $14+$15}') || v=0
	echo $((t + ${v:-0}))
}
wait_quiet() {
	local waited=0 a b pct
	((FWD_QUIET_PCT > 0)) || { echo "0 -"; return; }
	while :; do
		a=$(nonidle_of cpu)
		sleep 1
		b=$(nonidle_of cpu)
		pct=$(((b - a) * 100 / HZ))
		if ((pct < FWD_QUIET_PCT)) || ((waited >= FWD_QUIET_MAX)); then
			((pct >= FWD_QUIET_PCT)) && log "  still ${pct}% busy after ${waited}s; running anyway"
			echo "$waited $pct"
			return
		fi
		waited=$((waited + 1))
	done
}

# ---------------------------------------------------------------- processes
start_bg() { # logtag cmd...; sets LAST_PID
	local tag=$1
	shift
	"$@" >"$WORK/logs/$tag.log" 2>&1 &
	LAST_PID=$!
	STARTED+=("$LAST_PID")
}
PIN=(nice -n "$FWD_NICE" taskset -c "$PCPU")
LOADPIN=(env GOMAXPROCS=1 nice -n "$FWD_NICE" taskset -c "$LCPU")
CONNECT_PORTS=$SRC_PORT,$ECHO_PORT

# scenario -> "mode via target conns"
scenario() {
	case $1 in
	ctput) echo "tput connect 127.0.0.1:$SRC_PORT $FWD_TPUT_CONNS" ;;
	crate) echo "rate connect 127.0.0.1:$ECHO_PORT $FWD_RATE_CONNS" ;;
	http) echo "http connect 127.0.0.1:$HTTP_PORT $FWD_HTTP_CONNS" ;;
	stput) echo "tput socks 127.0.0.1:$SRC_PORT $FWD_TPUT_CONNS" ;;
	srate) echo "rate socks 127.0.0.1:$ECHO_PORT $FWD_RATE_CONNS" ;;
	*) die "unknown scenario $1" ;;
	esac
}
peers_of() {
	case $1 in
	ctput | crate | http) echo "weir squid" ;;
	stput | srate) echo "weir dante" ;;
	esac
}
load() { # port scenario seconds [extra fwdload args]
	local port=$1 sc=$2 d=$3 mode via target conns
	shift 3
	read -r mode via target conns <<<"$(scenario "$sc")"
	"${LOADPIN[@]}" "$BIN/fwdload" -mode "$mode" -via "$via" -proxy "127.0.0.1:$port" -target "$target" -c "$conns" -d "${d}s" "$@" 2>&1 || true
}
# start_proxy NAME SCENARIO: start it on the proxy core, wait until one
# operation of the scenario goes through; sets PROXY_PID
start_proxy() {
	local name=$1 sc=$2 port=${PORT[$1]} i
	case $name in
	weir) start_bg weir env GOMAXPROCS=1 "${PIN[@]}" "$BIN/weir" forward-proxy --listen "127.0.0.1:$port" \
		--allow-private --connect-ports "$CONNECT_PORTS" --access-log off --log-level warn ;;
	squid) start_bg squid "${PIN[@]}" squid -N -f "$WORK/squid.conf" ;;
	dante) start_bg dante "${PIN[@]}" danted -f "$WORK/danted.conf" ;;
	*) die "unknown proxy $name" ;;
	esac
	PROXY_PID=$LAST_PID
	for i in $(seq 1 100); do
		kill -0 "$PROXY_PID" 2>/dev/null || break
		if port_busy "$port" && load "$port" "$sc" 1 -c 1 -n 1 | grep -q 'ops=1 errors=0'; then return 0; fi
		sleep 0.1
	done
	tail -20 "$WORK/logs/$name.log" >&2 || true
	die "$name did not come up on port $port"
}

RAW=$FWD_OUT/raw.csv
echo "scenario,proxy,run,duration_s,ops,errors,rate,mbps,p50_ms,p99_ms,cpu_s,core_proxy_pct,core_load_pct,quiet_wait_s,busy_before_pct,elapsed_s" >"$RAW"

measure() { # scenario proxy run
	local sc=$1 name=$2 run=$3 port=${PORT[$2]} q waited busy
	q=$(wait_quiet)
	read -r waited busy <<<"$q"
	start_proxy "$name" "$sc"
	load "$port" "$sc" "$WARM" >"$WORK/warmup.txt"
	sleep 0.3
	local c0 c1 p0 p1 l0 l1 s0 s1 out
	c0=$(cpu_of "$PROXY_PID")
	p0=$(nonidle_of "cpu$PCPU")
	l0=$(nonidle_of "cpu$LCPU")
	s0=$(date +%s%N)
	out=$(load "$port" "$sc" "$DUR")
	s1=$(date +%s%N)
	c1=$(cpu_of "$PROXY_PID")
	p1=$(nonidle_of "cpu$PCPU")
	l1=$(nonidle_of "cpu$LCPU")
	kill -0 "$PROXY_PID" 2>/dev/null || log "  $name EXITED during the run"
	stop_pid "$PROXY_PID"
	echo "$out" >"$FWD_OUT/out/$sc-$name-$run.txt"
	local res el cpu ppct lpct
	res=$(awk '/^RESULT/' <<<"$out")
	[ -n "$res" ] || { log "  $name $sc: no result: $out"; res="RESULT ops=0 errors=0 rate=0 mbps=0 p50_ms= p99_ms="; }
	el=$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
	cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
	ppct=$(awk -v a="$p0" -v b="$p1" -v hz="$HZ" -v d="$el" 'BEGIN{printf "%.0f", (b-a)/hz/d*100}')
	lpct=$(awk -v a="$l0" -v b="$l1" -v hz="$HZ" -v d="$el" 'BEGIN{printf "%.0f", (b-a)/hz/d*100}')
	local ops errors rate mbps p50 p99
	eval "$(tr ' ' '\n' <<<"${res#RESULT }" | grep -E '^(ops|errors|rate|mbps|p50_ms|p99_ms)=' | sed 's/_ms=/=/')"
	echo "$sc,$name,$run,$DUR,$ops,$errors,$rate,$mbps,$p50,$p99,$cpu,$ppct,$lpct,$waited,$busy,$el" >>"$RAW"
	log "$(printf '%-6s %-6s run %d: %9s ops/s %8s MB/s  p50 %6s ms  p99 %7s ms  errors %s  cpu %5ss  cores %s%%/%s%%' \
		"$sc" "$name" "$run" "$rate" "$mbps" "$p50" "$p99" "$errors" "$cpu" "$ppct" "$lpct")"
}

# ---------------------------------------------------------------- origins
start_bg fwdorigin "${LOADPIN[@]}" "$BIN/fwdorigin" -source "127.0.0.1:$SRC_PORT" -echo "127.0.0.1:$ECHO_PORT"
start_bg origin "${LOADPIN[@]}" "$BIN/origin" -addr "127.0.0.1:$HTTP_PORT"
for i in $(seq 1 50); do port_busy "$HTTP_PORT" && port_busy "$ECHO_PORT" && break; sleep 0.1; done

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc: $(nproc)"
	lscpu | grep -E '^(Model name|Hypervisor vendor)' || true
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "weir: $("$BIN/weir" version 2>&1 | head -1), $WEIR_DESC"
	echo "squid: $(squid -v 2>&1 | head -1)"
	echo "dante: $(danted -v 2>&1 | head -1)"
	echo "runs: ${FWD_RUNS} x ${DUR}s (median), warm-up ${WARM}s; tunnels ${FWD_TPUT_CONNS} (tput), workers ${FWD_RATE_CONNS} (rate), connections ${FWD_HTTP_CONNS} (http)"
	echo "quiet wait: below ${FWD_QUIET_PCT}% of a core, at most ${FWD_QUIET_MAX}s; niceness $FWD_NICE"
	echo "loadavg at start: $(cat /proc/loadavg)"
} >"$FWD_OUT/env.txt"

# ---------------------------------------------------------------- runs
log "proxy on cpu$PCPU; origins + fwdload on cpu$LCPU; ${FWD_RUNS}x ${DUR}s per proxy and scenario"
for run in $(seq 1 "$FWD_RUNS"); do
	for sc in $FWD_SCENARIOS; do
		for name in $(peers_of "$sc"); do
			measure "$sc" "$name" "$run"
		done
	done
done
echo "loadavg at end: $(cat /proc/loadavg)" >>"$FWD_OUT/env.txt"

# ---------------------------------------------------------------- profiles
for sc in $FWD_PROFILE; do
	log "profiling Weir (GOMAXPROCS=1, cpu$PCPU) under $sc for ${DUR}s"
	port=${PORT[fwdprof]}
	rm -f "$FWD_OUT/weir-$sc.pprof"
	start_bg fwdprof env GOMAXPROCS=1 "${PIN[@]}" "$BIN/fwdprof" -listen "127.0.0.1:$port" -connect-ports "$CONNECT_PORTS" \
		-cpuprofile "$FWD_OUT/weir-$sc.pprof" -delay "$((WARM + 1))s" -seconds "$DUR"
	PROXY_PID=$LAST_PID
	for i in $(seq 1 50); do port_busy "$port" && break; sleep 0.1; done
	load "$port" "$sc" "$((WARM + DUR + 2))" >"$FWD_OUT/out/profile-$sc.txt"
	for i in $(seq 1 50); do grep -q wrote "$WORK/logs/fwdprof.log" && break; sleep 0.2; done
	stop_pid "$PROXY_PID"
	{
		echo "== Weir forward proxy under $sc: $(awk '/^RESULT/' "$FWD_OUT/out/profile-$sc.txt")"
		echo "== top 20 by flat"
		go tool pprof -top -nodecount=20 "$BIN/fwdprof" "$FWD_OUT/weir-$sc.pprof" 2>/dev/null
		echo
		echo "== top 30 by cum"
		go tool pprof -top -cum -nodecount=30 "$BIN/fwdprof" "$FWD_OUT/weir-$sc.pprof" 2>/dev/null
	} >"$FWD_OUT/profile-$sc.txt" || true
done

# ---------------------------------------------------------------- report
"$BIN/fwdreport" -raw "$RAW" -env "$FWD_OUT/env.txt" -out "$FWD_OUT" >&2
log "done: $FWD_OUT/latest.md, $FWD_OUT/summary.csv"
