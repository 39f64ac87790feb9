#!/usr/bin/env bash
# bench/run.sh: side-by-side benchmark of Weir against nginx, HAProxy, h2o,
# Caddy and a raw TCP pass-through (the floor), all in front of one origin.
#
#   bash bench/run.sh                      # full run, writes bench/results/
#   BENCH_DURATION=5s BENCH_RUNS=1 bash bench/run.sh   # quicker look
#
# Every proxy gets ONE core (taskset -c $BENCH_PROXY_CPU); the origin and
# wrk (1 thread) share the other core. A second pass runs Weir with
# GOMAXPROCS=2 and no pinning. See BENCHMARKS.md for what is measured and
# how to read it. All traffic stays on 127.0.0.1; every load run is bounded
# by BENCH_DURATION.
#
# Knobs (environment):
#   BENCH_DURATION   length of one measured wrk run (default 10s)
#   BENCH_RUNS       runs per proxy and scenario; the median is reported (3)
#   BENCH_WARMUP     unmeasured wrk run before each measured one (2s)
#   BENCH_PROXIES    subset/order of: tcpfloor epollfloor weir nginx haproxy h2o caddy,
#                    and looproxy (an event-loop prototype for small64/small512 only)
#   BENCH_SCENARIOS  subset/order of: small64 small512 big64 close64 post64
#   BENCH_SCALING    1: also run Weir with GOMAXPROCS=2, unpinned (1)
#   BENCH_IDLE_CONNS idle keep-alive connections for the RSS test; 0 skips (10000)
#   BENCH_IDLE_PROXIES  proxies for the RSS test (default: all but tcpfloor)
#   BENCH_PROFILE    1: CPU-profile Weir under small64 load (1)
#   BENCH_GOBENCH    1: run the engine's Go benchmark for allocs/op (1)
#   BENCH_QUIET_PCT  before each run, wait until other processes use less
#                    than this % of one core (default 0: off)
#   BENCH_QUIET_MAX  longest wait for quiet, seconds (default 10)
#   BENCH_NICE       niceness of proxy, origin and wrk (default -20 as root, else 0)
#   BENCH_PORT_BASE  first of the ports used (default 18080; origin at +920)
#   BENCH_OUT        results directory (default bench/results)
#   BENCH_PROXY_CPU / BENCH_LOAD_CPU  cores for the proxy / origin+wrk (0 / 1)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. bench/lib.sh

BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_WARMUP=${BENCH_WARMUP:-2s}
BENCH_PROXIES=${BENCH_PROXIES:-"tcpfloor epollfloor weir nginx haproxy h2o caddy"}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-"small64 small512 big64 close64 post64"}
BENCH_SCALING=${BENCH_SCALING:-1}
BENCH_IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
# The TCP floor needs two descriptors per connection (client and origin),
# more than a 20000 hard limit allows for 10000 connections: not by default.
BENCH_IDLE_PROXIES=${BENCH_IDLE_PROXIES:-$(tr " " "\n" <<<"$BENCH_PROXIES" | grep -v -E "floor$|^looproxy$" | paste -sd" " -)}
BENCH_PROFILE=${BENCH_PROFILE:-1}
BENCH_GOBENCH=${BENCH_GOBENCH:-1}
BENCH_QUIET_PCT=${BENCH_QUIET_PCT:-0}
# Other work on the machine (builds, tests) steals CPU from the measured
# processes; as root they run at a higher priority (nice -20) by default.
if [ "$(id -u)" = 0 ]; then BENCH_NICE=${BENCH_NICE:--20}; else BENCH_NICE=${BENCH_NICE:-0}; fi
# With autogroup scheduling (kernel.sched_autogroup_enabled=1) niceness only
# ranks processes within one session; the session's own autogroup niceness
# ranks it against other sessions, so set that too (it covers only the
# processes of this session).
if [ "$BENCH_NICE" != 0 ] && [ -w /proc/self/autogroup ]; then
	echo "$BENCH_NICE" >/proc/self/autogroup 2>/dev/null || true
fi
BENCH_QUIET_MAX=${BENCH_QUIET_MAX:-10}
BENCH_PORT_BASE=${BENCH_PORT_BASE:-18080}
BENCH_OUT=${BENCH_OUT:-bench/results}
PCPU=${BENCH_PROXY_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}

DUR=$(secs "$BENCH_DURATION")
WARM=$(secs "$BENCH_WARMUP")

# ---------------------------------------------------------------- install
install_tools() {
	local missing=()
	command -v nginx >/dev/null || missing+=(nginx)
	command -v haproxy >/dev/null || missing+=(haproxy)
	command -v h2o >/dev/null || missing+=(h2o)
	command -v caddy >/dev/null || missing+=(caddy)
	command -v wrk >/dev/null || missing+=(wrk)
	command -v h2load >/dev/null || missing+=(nghttp2-client)
	command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
	command -v curl >/dev/null || missing+=(curl)
	command -v taskset >/dev/null || missing+=(util-linux)
	if ((${#missing[@]})); then
		log "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	# Debian starts nginx/haproxy/h2o/caddy as services on install. Stop
	# them when a service manager exists; either way this script uses its
	# own ports and never touches 80/443 or processes it did not start.
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		for s in nginx haproxy h2o caddy; do
			systemctl stop "$s" >/dev/null 2>&1 || true
		done
	fi
}

# ---------------------------------------------------------------- setup
install_tools
(($(nproc) >= 2)) || log "warning: fewer than 2 cores; proxy and load generator will share one"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "open-file limit: $(ulimit -n)"

WORK=$(mktemp -d /tmp/weir-bench.XXXXXX)
BIN=$WORK/bin
mkdir -p "$BIN" "$WORK/logs" "$BENCH_OUT"
STARTED=() # PIDs this script started; only these are ever signalled

cleanup() {
	local p
	for p in "${STARTED[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	sleep 0.5
	for p in "${STARTED[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ -z "${BENCH_KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building Weir and the helpers"
go build -o "$BIN/weir" ./cmd/weir
go build -o "$BIN/" ./bench/origin ./bench/tcpproxy ./bench/epollfloor ./bench/looproxy ./bench/idleconns ./bench/weirprof ./bench/report

ORIGIN_PORT=$((BENCH_PORT_BASE + 920))
ORIGIN=127.0.0.1:$ORIGIN_PORT
declare -A PORT=([tcpfloor]=$BENCH_PORT_BASE [weir]=$((BENCH_PORT_BASE + 1)) [nginx]=$((BENCH_PORT_BASE + 2))
	[haproxy]=$((BENCH_PORT_BASE + 3)) [h2o]=$((BENCH_PORT_BASE + 4)) [caddy]=$((BENCH_PORT_BASE + 5))
	[weir2]=$((BENCH_PORT_BASE + 6)) [weirprof]=$((BENCH_PORT_BASE + 7)) [epollfloor]=$((BENCH_PORT_BASE + 8)) [looproxy]=$((BENCH_PORT_BASE + 9)))

for p in "$ORIGIN_PORT" "${PORT[@]}"; do
	port_busy "$p" && die "port $p is in use; set BENCH_PORT_BASE"
done

# ---------------------------------------------------------------- configs
write_configs() {
	local c=$WORK/conf
	mkdir -p "$c" "$WORK/nginx/logs" "$WORK/caddy"
	# nginx: one worker, streaming both ways like Weir (no disk buffering),
	# 128 idle upstream connections (Weir's default max_idle).
	cat >"$c/nginx.conf" <<-EOF
		worker_processes 1;
		worker_rlimit_nofile 19500;
		error_log $WORK/logs/nginx-error.log warn;
		pid $WORK/nginx/nginx.pid;
		events { worker_connections 19000; multi_accept on; }
		http {
		    access_log off;
		    client_body_temp_path $WORK/nginx/body;
		    proxy_temp_path $WORK/nginx/proxy;
		    fastcgi_temp_path $WORK/nginx/fastcgi;
		    uwsgi_temp_path $WORK/nginx/uwsgi;
		    scgi_temp_path $WORK/nginx/scgi;
		    keepalive_timeout 60s;
		    keepalive_requests 1000;
		    upstream origin { server $ORIGIN; keepalive 128; keepalive_requests 100000; }
		    server {
		        listen 127.0.0.1:\$PORT reuseport backlog=4096;
		        location / {
		            proxy_pass http://origin;
		            proxy_http_version 1.1;
		            proxy_set_header Connection "";
		            proxy_set_header Host \$http_host;
		            proxy_set_header X-Forwarded-For \$remote_addr;
		            proxy_set_header X-Forwarded-Proto \$scheme;
		            proxy_buffering off;
		            proxy_request_buffering off;
		            proxy_buffer_size 16k;
		            proxy_buffers 8 16k;
		            proxy_busy_buffers_size 32k;
		            client_max_body_size 0;
		        }
		    }
		}
	EOF
	# HAProxy: one thread, server connections shared between clients.
	cat >"$c/haproxy.cfg" <<-EOF
		global
		    nbthread 1
		    maxconn 10100
		    no strict-limits
		defaults
		    mode http
		    timeout connect 5s
		    timeout client 60s
		    timeout server 60s
		    timeout http-request 10s
		    timeout http-keep-alive 60s
		    option http-keep-alive
		    option forwardfor
		    http-reuse always
		frontend fe
		    bind 127.0.0.1:\$PORT
		    maxconn 10100
		    default_backend origin
		backend origin
		    server o1 $ORIGIN
	EOF
	# h2o: one thread, keep-alive to the origin.
	cat >"$c/h2o.conf" <<-EOF
		num-threads: 1
		max-connections: 19000
		http1-request-timeout: 60
		hosts:
		  default:
		    listen:
		      host: 127.0.0.1
		      port: \$PORT
		    paths:
		      /:
		        proxy.reverse.url: http://$ORIGIN/
		        proxy.preserve-host: ON
		        proxy.timeout.keepalive: 60000
	EOF
	# Caddy: plain HTTP, no admin endpoint, no access log (the default).
	cat >"$c/Caddyfile" <<-EOF
		{
		    admin off
		    auto_https off
		    servers {
		        timeouts {
		            idle 60s
		        }
		    }
		}
		http://127.0.0.1:\$PORT {
		    reverse_proxy $ORIGIN {
		        transport http {
		            keepalive 60s
		            keepalive_idle_conns 128
		            keepalive_idle_conns_per_host 128
		        }
		    }
		}
	EOF
	cat >"$c/post.lua" <<-'EOF'
		wrk.method = "POST"
		wrk.body = string.rep("a", 65536)
		wrk.headers["Content-Type"] = "application/octet-stream"
	EOF
}
write_configs
conf() { sed "s/\\\$PORT/$2/g" "$WORK/conf/$1" >"$WORK/conf/run-$1"; echo "$WORK/conf/run-$1"; }

# ---------------------------------------------------------------- /proc helpers
HZ=$(getconf CLK_TCK)
# children PIDs, recursively
# CPU seconds (user+system) used so far by a process tree
cpu_of() {
	local t=0 p v
	for p in $(tree "$1"); do
		v=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12+$13}') || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# peak RSS (VmHWM, KiB) summed over a process tree
hwm_of() {
	local t=0 p v
	for p in $(tree "$1"); do
		v=$(awk '/^VmHWM:/{print $2}' /proc/"$p"/status 2>/dev/null) || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# busy jiffies (user+nice+system+steal) of one cpu line of /proc/stat
# all non-idle jiffies (softirq included: loopback networking runs there)
# wait until processes other than ours use less than BENCH_QUIET_PCT of a
# core (measured over 1 s with our own processes idle); prints seconds waited
wait_quiet() {
	local waited=0 a b pct
	((BENCH_QUIET_PCT > 0)) || {
		echo 0
		return
	}
	while :; do
		a=$(busy_of cpu)
		sleep 1
		b=$(busy_of cpu)
		pct=$(((b - a) * 100 / HZ))
		if ((pct < BENCH_QUIET_PCT)) || ((waited >= BENCH_QUIET_MAX)); then
			((waited >= BENCH_QUIET_MAX)) && log "  still ${pct}% busy after ${waited}s; running anyway (see other_cpu_s)"
			echo "$waited"
			return
		fi
		waited=$((waited + 1))
	done
}

# ---------------------------------------------------------------- processes
PROXY_PID=
start_bg() { # name cmd... ; sets LAST_PID
	"$@" >"$WORK/logs/$LOGTAG.log" 2>&1 &
	LAST_PID=$!
	STARTED+=("$LAST_PID")
}
wait_ready() { # port pid
	local i
	for i in $(seq 1 100); do
		kill -0 "$2" 2>/dev/null || return 1
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/small")" = 200 ]; then return 0; fi
		sleep 0.1
	done
	return 1
}
# start_proxy NAME: starts it pinned to the proxy core (weir2: unpinned,
# GOMAXPROCS=2); sets PROXY_PID.
start_proxy() {
	local name=$1 port=${PORT[$1]} pin=(nice -n "$BENCH_NICE" taskset -c "$PCPU")
	LOGTAG=$name
	case $name in
	tcpfloor) start_bg env GOMAXPROCS=1 "${pin[@]}" "$BIN/tcpproxy" -from "127.0.0.1:$port" -to "$ORIGIN" ;;
	epollfloor) start_bg env GOMAXPROCS=1 "${pin[@]}" "$BIN/epollfloor" -from "127.0.0.1:$port" -to "$ORIGIN" ;;
	looproxy) start_bg env GOMAXPROCS=1 "${pin[@]}" "$BIN/looproxy" -from "127.0.0.1:$port" -to "$ORIGIN" ;;
	weir) start_bg env GOMAXPROCS=1 "${pin[@]}" "$BIN/weir" reverse-proxy --from "127.0.0.1:$port" --to "http://$ORIGIN" --access-log off ;;
	weir2) start_bg env GOMAXPROCS=2 nice -n "$BENCH_NICE" "$BIN/weir" reverse-proxy --from "127.0.0.1:$port" --to "http://$ORIGIN" --access-log off ;;
	nginx) start_bg "${pin[@]}" nginx -p "$WORK/nginx" -c "$(conf nginx.conf "$port")" -g 'daemon off;' ;;
	haproxy) start_bg "${pin[@]}" haproxy -db -f "$(conf haproxy.cfg "$port")" ;;
	h2o) start_bg "${pin[@]}" h2o -c "$(conf h2o.conf "$port")" ;;
	caddy) start_bg env GOMAXPROCS=1 XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" HOME="$WORK/caddy" \
		"${pin[@]}" caddy run --adapter caddyfile --config "$(conf Caddyfile "$port")" ;;
	*) die "unknown proxy $name" ;;
	esac
	PROXY_PID=$LAST_PID
	if ! wait_ready "$port" "$PROXY_PID"; then
		tail -20 "$WORK/logs/$name.log" >&2 || true
		die "$name did not come up on port $port"
	fi
}

# ---------------------------------------------------------------- wrk
# scenario -> connections, path; sets EXTRA (more wrk arguments)
scenario_args() {
	EXTRA=()
	case $1 in
	small64) echo "64 /small" ;;
	small512) echo "512 /small" ;;
	big64) echo "64 /100k" ;;
	# wrk takes a -H header only in the form "Name: value" (with the space)
	close64) echo "64 /small" ; EXTRA=(-H "Connection: close") ;;
	post64) echo "64 /post" ; EXTRA=(-s "$WORK/conf/post.lua") ;;
	*) die "unknown scenario $1" ;;
	esac
}
# run_wrk PORT SCENARIO SECONDS -> wrk output, then "WRKCPU <seconds>"
run_wrk() {
	local port=$1 sc=$2 d=$3 conns path
	read -r conns path <<<"$(scenario_args "$sc")"
	scenario_args "$sc" >/dev/null # sets EXTRA in this shell
	(
		nice -n "$BENCH_NICE" taskset -c "$LCPU" wrk -t1 -c"$conns" -d"${d}s" --latency "${EXTRA[@]}" "http://127.0.0.1:$port$path" 2>&1 || true
		times >"$WORK/times.txt"
		tail -1 "$WORK/times.txt" | awk '{gsub("s","",$1); gsub("s","",$2); split($1,u,"m"); split($2,s,"m"); printf "WRKCPU %.2f\n", u[1]*60+u[2]+s[1]*60+s[2]}'
	)
}
to_ms() { # 1.23ms / 456.00us / 1.2s -> milliseconds
	awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub("us","",v); printf "%.3f", v/1000}
		else if (v ~ /ms$/) {sub("ms","",v); printf "%.3f", v}
		else if (v ~ /m$/) {sub("m","",v); printf "%.3f", v*60000}
		else if (v ~ /s$/) {sub("s","",v); printf "%.3f", v*1000}
		else printf "" }'
}

RAW=$BENCH_OUT/raw.csv
echo "pass,proxy,scenario,run,duration_s,requests,rps,p50_ms,p99_ms,non2xx,socket_errors,cpu_s,peak_rss_kib,core_proxy_pct,core_load_pct,other_cpu_s,wrk_cpu_s,origin_cpu_s,quiet_wait_s,proxy_log_errors,recover_s,elapsed_s" >"$RAW"
mkdir -p "$BENCH_OUT/wrk"

# measure PASS PROXY SCENARIO RUN
measure() {
	local pass=$1 name=$2 sc=$3 run=$4 port=${PORT[$2]} waited
	waited=$(wait_quiet)
	start_proxy "$name"
	run_wrk "$port" "$sc" "$WARM" >"$WORK/warmup.txt"
	sleep 0.3
	# The warm-up must leave the proxy healthy. If it answers anything but
	# 200 now, record it and give it up to 15 s to recover, so that the
	# measured run shows steady-state performance (the event stays in the
	# results: column recover_s and bench/results/errors/).
	local recover=0 st
	st=$(curl -s -m 2 -D "$WORK/probe.head" -o "$WORK/probe.body" -w "%{http_code}" "http://127.0.0.1:$port/small" || true)
	if [ "$st" != 200 ]; then
		mkdir -p "$BENCH_OUT/errors"
		{ echo "GET /small right after the warm-up: $st"; cat "$WORK/probe.head" "$WORK/probe.body"; echo; echo "warm-up wrk output:"; cat "$WORK/warmup.txt"; } >"$BENCH_OUT/errors/$pass-$name-$sc-$run.after-warmup.txt" 2>/dev/null || true
		log "  $name answers $st after the warm-up; waiting for it to recover"
		while [ "$st" != 200 ] && ((recover < 150)); do
			sleep 0.1
			recover=$((recover + 1))
			st=$(curl -s -m 2 -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/small" || true)
		done
		echo "recovered (status $st) after $((recover / 10)).$((recover % 10)) s" >>"$BENCH_OUT/errors/$pass-$name-$sc-$run.after-warmup.txt"
	fi
	local start_ns end_ns
	start_ns=$(date +%s%N)
	local c0 o0 p0 l0 t0 c1 o1 p1 l1 t1 out
	c0=$(cpu_of "$PROXY_PID")
	o0=$(cpu_of "$ORIGIN_PID")
	p0=$(nonidle_of "cpu$PCPU")
	l0=$(nonidle_of "cpu$LCPU")
	t0=$(busy_of cpu)
	out=$(run_wrk "$port" "$sc" "$DUR")
	c1=$(cpu_of "$PROXY_PID")
	o1=$(cpu_of "$ORIGIN_PID")
	p1=$(nonidle_of "cpu$PCPU")
	l1=$(nonidle_of "cpu$LCPU")
	t1=$(busy_of cpu)
	end_ns=$(date +%s%N)
	local el
	el=$(awk -v a="$start_ns" -v b="$end_ns" "BEGIN{printf \"%.3f\", (b-a)/1e9}")
	local hwm
	hwm=$(hwm_of "$PROXY_PID")
	if ! kill -0 "$PROXY_PID" 2>/dev/null; then
		log "  $name EXITED during the run; its log:"
		tail -20 "$WORK/logs/$name.log" >&2 || true
		mkdir -p "$BENCH_OUT/errors"
		cp "$WORK/logs/$name.log" "$BENCH_OUT/errors/$pass-$name-$sc-$run-exited.log" || true
	fi
	# One request right after the run, to see what the proxy answers now.
	local probe
	probe=$(curl -s -m 2 -D "$WORK/probe.head" -o "$WORK/probe.body" -w "%{http_code}" "http://127.0.0.1:$port/small" || true)
	stop_pid "$PROXY_PID"
	echo "$out" >"$BENCH_OUT/wrk/$pass-$name-$sc-$run.txt"

	local reqs rps p50 p99 non2xx serr wcpu cpu ocpu ppct lpct other errs
	reqs=$(awk '/requests in/{print $1}' <<<"$out")
	rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
	p50=$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
	non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF}' <<<"$out")
	serr=$(awk '/Socket errors:/{gsub(",",""); print $4+$6+$8+$10}' <<<"$out")
	wcpu=$(awk '/^WRKCPU/{print $2}' <<<"$out")
	cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
	ocpu=$(awk -v a="$o0" -v b="$o1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
	ppct=$(awk -v a="$p0" -v b="$p1" -v hz="$HZ" -v d="$el" 'BEGIN{printf "%.0f", (b-a)/hz/d*100}')
	lpct=$(awk -v a="$l0" -v b="$l1" -v hz="$HZ" -v d="$el" 'BEGIN{printf "%.0f", (b-a)/hz/d*100}')
	other=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v p="$cpu" -v w="$wcpu" -v o="$ocpu" \
		'BEGIN{x=(b-a)/hz-p-w-o; if (x<0) x=0; printf "%.2f", x}')
	errs=0
	case $name in weir | weir2)
		errs=$(grep -c -E 'level=(WARN|ERROR)' "$WORK/logs/$name.log" || true)
		if ((errs > 0)); then
			mkdir -p "$BENCH_OUT/errors"
			grep -E 'level=(WARN|ERROR)' "$WORK/logs/$name.log" | head -50 >"$BENCH_OUT/errors/$pass-$name-$sc-$run.log"
		fi
		;;
	esac
	if ((errs > 0)) || [ "${non2xx:-0}" != 0 ]; then
		mkdir -p "$BENCH_OUT/errors"
		cp "$WORK/logs/$name.log" "$BENCH_OUT/errors/$pass-$name-$sc-$run.proxy.log" || true
		{ echo "GET /small right after the run: $probe"; cat "$WORK/probe.head" "$WORK/probe.body"; } >"$BENCH_OUT/errors/$pass-$name-$sc-$run.probe.txt" 2>/dev/null || true
	fi
	echo "$pass,$name,$sc,$run,$DUR,${reqs:-0},${rps:-0},${p50:-},${p99:-},${non2xx:-0},${serr:-0},$cpu,$hwm,$ppct,$lpct,$other,${wcpu:-0},$ocpu,$waited,$errs,$((recover / 10)).$((recover % 10)),$el" >>"$RAW"
	log "$(printf '%-8s %-9s run %d: %9s req/s  p50 %7s ms  p99 %8s ms  cpu %5ss  rss %6s KiB  non2xx %s  sockerr %s  cores %s%%/%s%%  other %ss' \
		"$name" "$sc" "$run" "${rps:-0}" "$p50" "$p99" "$cpu" "$hwm" "${non2xx:-0}" "${serr:-0}" "$ppct" "$lpct" "$other")"
}

# ---------------------------------------------------------------- origin
LOGTAG=origin
start_bg env GOMAXPROCS=1 nice -n "$BENCH_NICE" taskset -c "$LCPU" "$BIN/origin" -addr "$ORIGIN"
ORIGIN_PID=$LAST_PID
for i in $(seq 1 50); do port_busy "$ORIGIN_PORT" && break; sleep 0.1; done
[ "$(curl -s "http://$ORIGIN/small")" = "hello world" ] || die "origin is not answering"

# ---------------------------------------------------------------- environment
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc: $(nproc)"
	lscpu | head -20 | grep -E '^(Architecture|CPU\(s\)|Model name|Thread|Core|Socket|Hypervisor|BogoMIPS)' || true
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "weir: $("$BIN/weir" version), $(weir_desc)"
	echo "nginx: $(nginx -v 2>&1)"
	echo "haproxy: $(haproxy -v 2>&1 | head -1)"
	echo "h2o: $(h2o --version 2>&1 | head -1)"
	echo "caddy: $(caddy version 2>&1 | head -1)"
	echo "wrk: $(wrk --version 2>&1 | head -1)"
	echo "gnuplot: $(gnuplot --version 2>&1 || echo none)"
	echo "duration: ${DUR}s per run, ${BENCH_RUNS} runs (median), warm-up ${WARM}s; niceness of measured processes: $BENCH_NICE"
	echo "loadavg at start: $(cat /proc/loadavg)"
} >"$BENCH_OUT/env.txt"

# ---------------------------------------------------------------- passes
log "pass 1: one core per proxy (proxy on cpu$PCPU; origin + wrk on cpu$LCPU); ${BENCH_RUNS}x ${DUR}s"
for run in $(seq 1 "$BENCH_RUNS"); do
	for sc in $BENCH_SCENARIOS; do
		for name in $BENCH_PROXIES; do
			measure 1core "$name" "$sc" "$run"
		done
	done
done
if [ "$BENCH_SCALING" = 1 ]; then
	log "pass 2: Weir with GOMAXPROCS=2, unpinned"
	for run in $(seq 1 "$BENCH_RUNS"); do
		for sc in $BENCH_SCENARIOS; do
			measure 2core weir2 "$sc" "$run"
		done
	done
fi

# ---------------------------------------------------------------- idle connections
IDLE=$BENCH_OUT/idle.csv
echo "proxy,conns,alive,rss_before_kib,rss_after_kib,per_conn_bytes" >"$IDLE"
if ((BENCH_IDLE_CONNS > 0)); then
	log "idle connections: $BENCH_IDLE_CONNS per proxy"
	for name in $BENCH_IDLE_PROXIES; do
		start_proxy "$name"
		pids=$(tree "$PROXY_PID" | paste -sd, -)
		res=$("$BIN/idleconns" -addr "127.0.0.1:${PORT[$name]}" -n "$BENCH_IDLE_CONNS" -pid "$pids" -settle 3s 2>&1 | tee "$BENCH_OUT/wrk/idle-$name.txt" | awk '/^RESULT/') || true
		stop_pid "$PROXY_PID"
		if [ -n "$res" ]; then
			eval "$(sed 's/^RESULT //' <<<"$res")"
			echo "$name,$conns,$alive,$rss_before_kib,$rss_after_kib,$per_conn_bytes" >>"$IDLE"
			log "$(printf '%-8s %s idle conns (%s alive): RSS %s -> %s KiB, %s bytes/conn' "$name" "$conns" "$alive" "$rss_before_kib" "$rss_after_kib" "$per_conn_bytes")"
		else
			log "$name: idle test failed: $(tail -2 "$BENCH_OUT/wrk/idle-$name.txt")"
		fi
		sleep 1
	done
fi

# ---------------------------------------------------------------- Go benchmark
if [ "$BENCH_GOBENCH" = 1 ]; then
	log "go test -bench ProxyKeepAlive"
	go test -run XXX -bench ProxyKeepAlive -benchtime 20000x -count 3 ./proxy 2>&1 | tee "$BENCH_OUT/gobench.txt" >&2 || true
fi

# ---------------------------------------------------------------- profile
if [ "$BENCH_PROFILE" = 1 ]; then
	log "profiling Weir (GOMAXPROCS=1, cpu$PCPU) under small64 load for ${DUR}s"
	port=${PORT[weirprof]}
	LOGTAG=weirprof
	start_bg env GOMAXPROCS=1 nice -n "$BENCH_NICE" taskset -c "$PCPU" "$BIN/weirprof" -from "127.0.0.1:$port" -to "http://$ORIGIN" \
		-cpuprofile "$BENCH_OUT/weir-cpu.pprof" -delay "$((WARM + 1))s" -seconds "$DUR"
	PROXY_PID=$LAST_PID
	wait_ready "$port" "$PROXY_PID" || die "weirprof did not come up"
	run_wrk "$port" small64 "$((WARM + DUR + 2))" >"$BENCH_OUT/wrk/profile-small64.txt"
	for i in $(seq 1 50); do grep -q wrote "$WORK/logs/weirprof.log" && break; sleep 0.2; done
	stop_pid "$PROXY_PID"
	{
		echo "== top 15 by flat"
		go tool pprof -top -nodecount=15 "$BIN/weirprof" "$BENCH_OUT/weir-cpu.pprof" 2>/dev/null
		echo
		echo "== top 25 by cum"
		go tool pprof -top -cum -nodecount=25 "$BIN/weirprof" "$BENCH_OUT/weir-cpu.pprof" 2>/dev/null
	} >"$BENCH_OUT/profile.txt" || true
	log "profile: $BENCH_OUT/weir-cpu.pprof, summary in $BENCH_OUT/profile.txt"
fi

# ---------------------------------------------------------------- report
"$BIN/report" -raw "$RAW" -idle "$IDLE" -env "$BENCH_OUT/env.txt" -out "$BENCH_OUT" >&2
log "done: $BENCH_OUT/latest.md, $BENCH_OUT/summary.csv, $BENCH_OUT/chart.png"
